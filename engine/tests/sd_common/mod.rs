//! Helpers shared by the Stable Diffusion parity tests: the fixtures, running a reference case
//! and checking it at the three parity bars of docs/ARCHITECTURE.md, "Conventions".

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{Device, Tensor};
use engine::image::{Image, Mask};
use engine::sd::model::{load, LoadOptions, SdModel};
use engine::sd::pipeline::{generate, GenerateParams, VaeTiling};
use engine::sd::scheduler::SchedulerKind;
use serde_json::Value;

pub mod lora;

pub fn fixtures() -> PathBuf {
    manifest_dir().join("../tests/fixtures/sd")
}

pub fn cases() -> Vec<Value> {
    let text = std::fs::read_to_string(fixtures().join("cases.json")).expect("cases.json");
    serde_json::from_str::<Vec<Value>>(&text).expect("cases.json parses")
}

pub fn case(name: &str) -> Value {
    cases()
        .into_iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no case {name}"))
}

pub fn load_png(path: &Path) -> Image {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    engine::codec::decode_image(&bytes, &path.display().to_string()).expect("decodes")
}

pub fn model(name: &str) -> Arc<SdModel> {
    static MODELS: std::sync::Mutex<Vec<(String, Arc<SdModel>)>> =
        std::sync::Mutex::new(Vec::new());
    let mut m = MODELS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, model)) = m.iter().find(|(n, _)| n == name) {
        return model.clone();
    }
    let path = fixtures().join("models").join(name);
    let loaded = Arc::new(load(&path, &LoadOptions::default()).expect("model loads"));
    m.push((name.to_string(), loaded.clone()));
    loaded
}

pub fn params(c: &Value) -> GenerateParams {
    let dir = fixtures();
    let init_image = c["init_image"].as_str().map(|p| load_png(&dir.join(p)));
    let mask = c["mask"].as_str().map(|p| {
        let img = load_png(&dir.join(p));
        Mask {
            width: img.width,
            height: img.height,
            data: img.data.chunks_exact(4).map(|px| px[0]).collect(),
        }
    });
    GenerateParams {
        prompt: c["prompt"].as_str().unwrap_or("").to_string(),
        negative: c["negative"].as_str().map(str::to_string),
        width: c["width"].as_u64().unwrap_or(0) as u32,
        height: c["height"].as_u64().unwrap_or(0) as u32,
        steps: c["steps"].as_u64().expect("steps") as usize,
        cfg: c["cfg"].as_f64().expect("cfg"),
        seed: c["seed"].as_u64().expect("seed"),
        scheduler: Some(SchedulerKind::parse(c["scheduler"].as_str().expect("scheduler")).unwrap()),
        strength: c["strength"].as_f64().unwrap_or(1.0),
        init_image,
        mask,
        batch: c["batch"].as_u64().unwrap_or(1) as usize,
        vae_tiling: match c["vae_tiling"].as_str() {
            Some("on") => VaeTiling::On,
            Some("auto") => VaeTiling::Auto,
            _ => VaeTiling::Off,
        },
        ..GenerateParams::default()
    }
}

pub fn psnr(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let mse: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (1.0 / mse).log10()
    }
}

pub fn rgb(img: &Image) -> Vec<f32> {
    img.data
        .chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect()
}

pub struct Report {
    pub worst_step: f64,
    pub float_db: f64,
    pub png_db: f64,
}

/// Runs a case with `m` and checks all three bars.
pub fn check_case_with(name: &str, m: &SdModel) -> Report {
    check_against(&case(name), &fixtures().join("cases"), m)
}

/// Runs case `c` (references in `dir/<name>.safetensors` and `dir/<name>.png`) with `m`.
pub fn check_against(c: &Value, dir: &Path, m: &SdModel) -> Report {
    check_against_params(c, dir, m, &params(c))
}

/// The reference tensors of case `name` in `dir`.
pub fn refs_of(dir: &Path, name: &str) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(dir.join(format!("{name}.safetensors")), &Device::Cpu)
        .expect("reference tensors")
}

/// Runs `p` with `m`, returning every step's latents and the result.
pub fn run_steps(
    m: &SdModel,
    p: &GenerateParams,
) -> (Vec<Tensor>, engine::sd::pipeline::Generated) {
    let mut steps: Vec<Tensor> = Vec::new();
    let mut on_step = |_: usize, _: usize, l: &Tensor| {
        steps.push(l.clone());
        Ok(())
    };
    let g = generate(m, p, &mut on_step).unwrap_or_else(|e| panic!("{e}"));
    (steps, g)
}

/// The largest step difference to the references, in units of the parity tolerance
/// (1e-4 × max |ref| of that step); over the steps both have.
pub fn worst_step_ratio(steps: &[Tensor], refs: &HashMap<String, Tensor>) -> f64 {
    let mut worst = 0f64;
    for (i, ours) in steps.iter().enumerate() {
        let Some(r) = refs.get(&format!("latents_step_{i:03}")) else {
            break;
        };
        let max = max_abs(r) as f64;
        let diff = max_abs(&(ours - r).unwrap()) as f64;
        worst = worst.max(diff / (1e-4 * max));
    }
    worst
}

/// [`check_against`] with the parameters given (e.g. with ControlNets added).
pub fn check_against_params(c: &Value, dir: &Path, m: &SdModel, p: &GenerateParams) -> Report {
    let name = c["name"].as_str().expect("name");
    let refs = refs_of(dir, name);
    let mut steps: Vec<Tensor> = Vec::new();
    let mut on_step = |_: usize, _: usize, l: &Tensor| {
        steps.push(l.clone());
        Ok(())
    };
    let g = generate(m, p, &mut on_step).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut worst = 0f64;
    let n_ref = refs
        .keys()
        .filter(|k| k.starts_with("latents_step_"))
        .count();
    assert_eq!(steps.len(), n_ref, "{name}: number of steps");
    for (i, ours) in steps.iter().enumerate() {
        let r = &refs[&format!("latents_step_{i:03}")];
        let max = max_abs(r) as f64;
        let diff = max_abs(&(ours - r).unwrap()) as f64;
        let rel = diff / max;
        worst = worst.max(rel);
        assert!(
            rel <= 1e-4,
            "{name}: step {i} latents differ by {diff:e} (max |ref| {max}, rel {rel:e} > 1e-4)"
        );
    }
    let image_ref = &refs["image"]; // [B, H, W, 3]
    let (b, _, _, _) = image_ref.dims4().unwrap();
    assert_eq!(g.images.len(), b, "{name}: batch size");
    let mut float_db = f64::INFINITY;
    let mut png_db = f64::INFINITY;
    for (k, img) in g.images.iter().enumerate() {
        let r: Vec<f32> = image_ref
            .get(k)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let ours = rgb(img);
        let db = psnr(&ours, &r);
        float_db = float_db.min(db);
        assert!(db >= 80.0, "{name}[{k}]: float image PSNR {db:.1} dB < 80");
        let png_name = if b == 1 {
            format!("{name}.png")
        } else {
            format!("{name}-{k}.png")
        };
        let png_ref = rgb(&load_png(&dir.join(png_name)));
        let ours8: Vec<f32> = ours
            .iter()
            .map(|v| (v * 255.0).round_ties_even() / 255.0)
            .collect();
        let db8 = psnr(&ours8, &png_ref);
        png_db = png_db.min(db8);
        assert!(db8 >= 55.0, "{name}[{k}]: 8-bit PSNR {db8:.1} dB < 55");
    }
    eprintln!(
        "{name}: worst step rel diff {worst:.2e}, float {float_db:.1} dB, png {png_db:.1} dB"
    );
    Report {
        worst_step: worst,
        float_db,
        png_db,
    }
}

pub fn check_case(name: &str) -> Report {
    let c = case(name);
    let m = model(c["model"].as_str().expect("model"));
    check_case_with(name, &m)
}

/// This package's folder, read when the test runs: a test binary reused from another checkout
/// that shared the target folder would otherwise read that checkout's files.
pub fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}

/// The message of a caught panic (`catch_unwind`), so a case list can report every failure.
pub fn panic_message(e: Box<dyn std::any::Any + Send>) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// Max |t| over all elements, as f32.
pub fn max_abs(t: &Tensor) -> f32 {
    t.abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_dtype(candle_core::DType::F32)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}
