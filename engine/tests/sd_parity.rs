//! Parity with Hugging Face diffusers on tiny random-weight models
//! (`tests/fixtures/sd/make_fixtures.py` made the models and the reference outputs).
//!
//! Three bars (docs/ARCHITECTURE.md, "Conventions"): every step's latents within 1e-4 × their max magnitude, the
//! decoded float image ≥ 80 dB PSNR, the 8-bit PNG ≥ 55 dB.

mod sd_common;

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use engine::sd::model::{load, LoadOptions};
use engine::sd::pipeline::generate;
use engine::sd::scheduler::SchedulerKind;
use sd_common::*;
use serde_json::Value;

#[test]
fn every_case_matches_diffusers() {
    let mut failures = Vec::new();
    let all = cases();
    assert!(all.len() >= 20, "expected the full case list");
    for c in &all {
        let name = c["name"].as_str().unwrap().to_string();
        let r = std::panic::catch_unwind(|| check_case(&name));
        if let Err(e) = r {
            let msg = panic_message(e);
            failures.push(format!("{name}: {msg}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn cases_cover_every_scheduler_and_pipeline() {
    let all = cases();
    for s in SchedulerKind::ALL {
        assert!(
            all.iter()
                .any(|c| c["scheduler"] == s.name() && c["pipeline"] == "txt2img"),
            "no txt2img case for {}",
            s.name()
        );
    }
    for (model, pipe) in [
        ("sd15", "img2img"),
        ("sd15", "inpaint"),
        ("sd15-inpaint", "inpaint"),
        ("sdxl", "txt2img"),
    ] {
        assert!(all
            .iter()
            .any(|c| c["model"] == model && c["pipeline"] == pipe));
    }
    assert!(all.iter().any(|c| c["cfg"].as_f64() == Some(1.0)));
    assert!(all
        .iter()
        .any(|c| c["negative"].is_null() && c["cfg"].as_f64() > Some(1.0)));
}

/// The same weights from a single-file LDM checkpoint (stored in f16) give the same result.
#[test]
fn single_file_equals_folder() {
    for (file, folder, name) in [
        ("sd15.safetensors", "sd15", "sd15_txt2img_euler"),
        ("sdxl.safetensors", "sdxl", "sdxl_txt2img_euler"),
    ] {
        let opts = LoadOptions {
            config_dir: Some(fixtures().join("models").join(folder)),
            ..LoadOptions::default()
        };
        let m = load(&fixtures().join("models").join(file), &opts).expect("single file loads");
        let r = check_case_with(name, &m);
        assert!(r.worst_step <= 1e-4 && r.float_db >= 80.0 && r.png_db >= 55.0);
    }
}

/// The CLIP tokenizer gives transformers' ids (SD1's pad, SDXL's second tokenizer's pad 0).
#[test]
fn tokenizer_matches_transformers() {
    use engine::sd::clip::ClipTokenizer;
    let text = std::fs::read_to_string(fixtures().join("text/tokens.json")).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let prompts = doc["prompts"].as_array().unwrap();
    assert!(prompts.len() >= 10);
    let (sd1, sdxl2) = (ClipTokenizer::new(49407), ClipTokenizer::new(0));
    let ids = |v: &Value| -> Vec<u32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect()
    };
    for p in prompts {
        let prompt = p["prompt"].as_str().unwrap();
        assert_eq!(sd1.encode_plain(prompt), ids(&p["sd1"]), "sd1: {prompt:?}");
        assert_eq!(
            sdxl2.encode_plain(prompt),
            ids(&p["sdxl_2"]),
            "sdxl_2: {prompt:?}"
        );
    }
}

/// Prompt weighting changes the conditioning (and so the image) only where the prompt asks:
/// a plain prompt gives the diffusers result; an emphasised word gives another image.
#[test]
fn prompt_weighting_is_opt_in_and_effective() {
    let name = "sd15_txt2img_euler";
    let c = case(name);
    let m = model("sd15");
    let mut p = params(&c);
    p.weighting = true;
    let mut none = |_: usize, _: usize, _: &Tensor| Ok(());
    let plain = generate(&m, &p, &mut none).unwrap();
    let reference = generate(&m, &params(&c), &mut none).unwrap();
    let db = psnr(&rgb(&plain.images[0]), &rgb(&reference.images[0]));
    assert!(
        db > 80.0,
        "weighting a plain prompt changed the image: {db:.1} dB"
    );
    p.prompt = format!("({}:1.6)", p.prompt);
    let weighted = generate(&m, &p, &mut none).unwrap();
    let db = psnr(&rgb(&weighted.images[0]), &rgb(&reference.images[0]));
    assert!(
        db < 60.0,
        "an emphasised prompt should change the image: {db:.1} dB"
    );
}

/// `--vae`: a separate VAE file replaces the checkpoint's, in diffusers names or in LDM names
/// (a stand-alone `encoder.down.0…` file as A1111 users download). The same weights give the
/// same image; another VAE changes it.
#[test]
fn vae_override_diffusers_and_ldm_names() {
    let name = "sd15_txt2img_euler";
    let dir = tempfile::tempdir().unwrap();
    // An LDM-named VAE: the single file's first_stage_model.* without the prefix.
    let all =
        candle_core::safetensors::load(fixtures().join("models/sd15.safetensors"), &Device::Cpu)
            .unwrap();
    let vae: HashMap<String, Tensor> = all
        .into_iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("first_stage_model.")
                .map(|k| (k.to_string(), v))
        })
        .collect();
    assert!(vae.len() > 50);
    let ldm_vae = dir.path().join("vae-ldm.safetensors");
    candle_core::safetensors::save(&vae, &ldm_vae).unwrap();
    let folder_vae = fixtures().join("models/sd15/vae/diffusion_pytorch_model.safetensors");
    for file in [folder_vae.clone(), ldm_vae] {
        let opts = LoadOptions {
            vae: Some(file),
            ..LoadOptions::default()
        };
        let m = load(&fixtures().join("models/sd15"), &opts).expect("loads with a VAE override");
        let r = check_case_with(name, &m);
        assert!(r.float_db >= 80.0);
    }
    // The SDXL fixture's VAE has other weights: the image must change.
    let opts = LoadOptions {
        vae: Some(fixtures().join("models/sdxl/vae/diffusion_pytorch_model.safetensors")),
        ..LoadOptions::default()
    };
    let m = load(&fixtures().join("models/sd15"), &opts).unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check_case_with(name, &m)));
    assert!(
        r.is_err(),
        "a different VAE must not reproduce the reference"
    );
}
