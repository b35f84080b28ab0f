//! Replays the synthetic denoising loops recorded by `py/make_ref.py` with
//! diffusers 0.42.1 and compares every step.
//!
//! Tolerances: timesteps exact; `alphas_cumprod` bit-exact; sigmas and
//! `init_noise_sigma` within 2e-7 relative (float32 ulp level); per-step
//! tensors within 1e-5 x max |reference|; LMS coefficients within 1e-9 relative.

mod sd_common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use sd_common::manifest_dir;

use candle_core::{Device, Tensor};
use engine::sd::scheduler::{lms_coefficient, Scheduler, SchedulerKind};
use engine::sd::torch_rng::TorchGenerator;
use serde_json::Value;

// sd15 and sdxl configs are covered end to end by sd_parity.rs.
const VARIANTS: [&str; 4] = ["sd15_v", "sdxl_trailing", "linear_prk", "cos_linspace"];
const STEP_TOL: f64 = 1e-5;

fn data_dir() -> PathBuf {
    manifest_dir().join("../tests/fixtures/sd/unit/sched")
}

struct Fixture {
    meta: Value,
    tensors: std::collections::HashMap<String, Tensor>,
}

fn load(variant: &str) -> Fixture {
    let dir = data_dir();
    let meta: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(format!("{variant}.json"))).expect("read json"),
    )
    .expect("parse json");
    let tensors =
        candle_core::safetensors::load(dir.join(format!("{variant}.safetensors")), &Device::Cpu)
            .expect("load safetensors");
    Fixture { meta, tensors }
}

impl Fixture {
    fn get(&self, key: &str) -> &Tensor {
        self.tensors
            .get(key)
            .unwrap_or_else(|| panic!("missing tensor {key}"))
    }
}

/// max |a - b| / max |b|.
fn rel_diff(a: &Tensor, b: &Tensor) -> f64 {
    let a: Vec<f32> = a.flatten_all().unwrap().to_vec1().unwrap();
    let b: Vec<f32> = b.flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(a.len(), b.len());
    let mut md = 0f64;
    let mut mm = 0f64;
    for (x, y) in a.iter().zip(b.iter()) {
        md = md.max((*x as f64 - *y as f64).abs());
        mm = mm.max((*y as f64).abs());
    }
    if md.is_nan() || a.iter().any(|v| v.is_nan()) {
        return f64::INFINITY;
    }
    md / mm.max(1e-30)
}

fn fake_model(scaled: &Tensor, t: f64) -> Tensor {
    let c = (0.1 * (t / 100.0).sin()) as f32;
    scaled.affine(0.5, c as f64).unwrap()
}

#[derive(Default)]
struct Worst {
    step: f64,
    closed: f64,
    scaled: f64,
    add_noise: f64,
    sigma: f64,
    lms: f64,
    cases: usize,
}

fn check_close(what: &str, got: &Tensor, want: &Tensor, worst: &mut f64) {
    let d = rel_diff(got, want);
    *worst = worst.max(d);
    assert!(
        d <= STEP_TOL,
        "{what}: relative max diff {d:e} > {STEP_TOL:e}"
    );
}

/// Runs the loop from `start`; returns Err on the first scheduler error.
#[allow(clippy::too_many_arguments)]
fn run_loop(
    fx: &Fixture,
    s: &mut Scheduler,
    mut latents: Tensor,
    start: usize,
    prefix: &str,
    inpaint: bool,
    seed: u64,
    w: &mut Worst,
    closed: bool,
) -> candle_core::Result<()> {
    let mut gen = TorchGenerator::new(seed);
    let n = s.timesteps().len();
    for i in start..n {
        let t = s.timesteps()[i];
        let scaled = s.scale_model_input(&latents, i)?;
        if let Some(r) = fx.tensors.get(&format!("{prefix}/scaled/{i}")) {
            check_close(&format!("{prefix}/scaled/{i}"), &scaled, r, &mut w.scaled);
        }
        let mo = fake_model(&scaled, t);
        latents = s.step(&mo, i, &latents, &mut gen)?;
        if closed {
            // Our own trajectory end to end (errors accumulate over steps).
            check_close(
                &format!("{prefix}/out/{i} (closed loop)"),
                &latents,
                fx.get(&format!("{prefix}/out/{i}")),
                &mut w.closed,
            );
        } else {
            check_close(
                &format!("{prefix}/out/{i}"),
                &latents,
                fx.get(&format!("{prefix}/out/{i}")),
                &mut w.step,
            );
            // Continue from the reference so each step is checked on the same input.
            latents = fx.get(&format!("{prefix}/out/{i}")).clone();
        }
        if inpaint && i + 1 < n {
            let key = format!("{prefix}/inpaint_noised/{}", i + 1);
            let got = s.add_noise(fx.get("orig"), fx.get("noise2"), i + 1)?;
            check_close(&key, &got, fx.get(&key), &mut w.add_noise);
        }
    }
    Ok(())
}

/// Runs the whole loop without comparisons (for cases where diffusers fails).
fn run_free(s: &mut Scheduler, mut latents: Tensor, seed: u64) -> candle_core::Result<()> {
    let mut gen = TorchGenerator::new(seed);
    for i in 0..s.timesteps().len() {
        let scaled = s.scale_model_input(&latents, i)?;
        let mo = fake_model(&scaled, s.timesteps()[i]);
        latents = s.step(&mo, i, &latents, &mut gen)?;
    }
    Ok(())
}

#[test]
fn noise_matches_sdrng() {
    let fx = load("sd15_v");
    let n0 = fx.get("noise0");
    let mut g = TorchGenerator::new(0);
    let ours = Tensor::from_vec(g.randn(n0.elem_count()), n0.shape(), &Device::Cpu).unwrap();
    assert_eq!(rel_diff(&ours, n0), 0.0);
}

#[test]
fn parse_names() {
    for k in SchedulerKind::ALL {
        assert_eq!(SchedulerKind::parse(k.name()).unwrap(), k);
    }
    let e = SchedulerKind::parse("heun").unwrap_err().to_string();
    assert!(e.contains("dpmpp_2m_karras") && e.contains("unipc"), "{e}");
}

#[test]
fn rejects_unsupported_config() {
    let cfg = serde_json::json!({"thresholding": true});
    assert!(Scheduler::new(SchedulerKind::Ddim, &cfg, 10).is_err());
    let cfg = serde_json::json!({"rescale_betas_zero_snr": true});
    assert!(Scheduler::new(SchedulerKind::Euler, &cfg, 10).is_err());
    // Keys the class does not accept are ignored, as in from_config.
    let cfg = serde_json::json!({"rescale_betas_zero_snr": true});
    assert!(Scheduler::new(SchedulerKind::Lms, &cfg, 10).is_ok());
}

#[test]
fn parity_with_diffusers() {
    let mut worst: BTreeMap<String, Worst> = BTreeMap::new();
    for variant in VARIANTS {
        let fx = load(variant);
        let cfg = fx.meta["config"].clone();
        let seed = fx.meta["euler_a_seed"].as_u64().unwrap();
        // Training schedule, bit-exact.
        let ddim = Scheduler::new(SchedulerKind::Ddim, &cfg, 10).unwrap();
        let ac_ref: Vec<f32> = fx.get("alphas_cumprod").to_vec1().unwrap();
        let mismatches = ac_ref
            .iter()
            .zip(ddim.alphas_cumprod())
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count();
        assert_eq!(
            mismatches, 0,
            "{variant}: alphas_cumprod differs in {mismatches} entries"
        );

        for case in fx.meta["cases"].as_array().unwrap() {
            let name = case["scheduler"].as_str().unwrap();
            let steps = case["steps"].as_u64().unwrap() as usize;
            let prefix = case["prefix"].as_str().unwrap();
            let tag = format!("{variant}/{prefix}");
            let kind = SchedulerKind::parse(name).unwrap();
            let w = worst.entry(name.to_string()).or_default();
            w.cases += 1;
            let mut s = Scheduler::new(kind, &cfg, steps).unwrap_or_else(|e| panic!("{tag}: {e}"));
            let ts_ref: Vec<f64> = fx.get(&format!("{prefix}/timesteps")).to_vec1().unwrap();
            assert_eq!(s.timesteps(), &ts_ref[..], "{tag}: timesteps");
            let sig_ref: Vec<f64> = fx.get(&format!("{prefix}/sigmas")).to_vec1().unwrap();
            assert_eq!(s.sigmas().len(), sig_ref.len(), "{tag}: sigma count");
            for (a, b) in s.sigmas().iter().zip(&sig_ref) {
                let d = (*a as f64 - b).abs() / b.abs().max(1e-30);
                w.sigma = w.sigma.max(d);
                assert!(d <= 2e-7, "{tag}: sigma {a} vs {b}");
            }
            let ins = case["init_noise_sigma"].as_f64().unwrap();
            assert!(
                (s.init_noise_sigma() - ins).abs() <= 2e-7 * ins,
                "{tag}: init_noise_sigma {} vs {ins}",
                s.init_noise_sigma()
            );

            let latents = fx.get("noise0").affine(s.init_noise_sigma(), 0.0).unwrap();
            if case.get("error").is_some() {
                let r = run_free(&mut s, latents, seed);
                assert!(
                    r.is_err(),
                    "{tag}: diffusers fails ({}) but we did not",
                    case["error"]
                );
                continue;
            }
            run_loop(
                &fx,
                &mut s,
                latents.clone(),
                0,
                prefix,
                false,
                seed,
                w,
                false,
            )
            .unwrap_or_else(|e| panic!("{tag}: {e}"));
            let mut s_closed = Scheduler::new(kind, &cfg, steps).unwrap();
            run_loop(&fx, &mut s_closed, latents, 0, prefix, false, seed, w, true)
                .unwrap_or_else(|e| panic!("{tag}: {e}"));

            // LMS integration coefficients.
            let lms_ref: Vec<f64> = match fx.tensors.get(&format!("{prefix}/lms_coeffs")) {
                Some(t) => t.to_vec1().unwrap(),
                None => Vec::new(),
            };
            if kind == SchedulerKind::Lms {
                // Quadrature check on diffusers' own sigma table (torch's float32
                // sqrt on this CPU build is MKL's, which is not always correctly
                // rounded, so our sigmas may differ from it by 1 ulp).
                let ref_sig: Vec<f32> = sig_ref.iter().map(|&v| v as f32).collect();
                let mut ours = Vec::new();
                for i in 0..s.timesteps().len() {
                    let order = (i + 1).min(4);
                    for c in 0..order {
                        ours.push(lms_coefficient(&ref_sig, order, i, c).unwrap());
                    }
                }
                assert_eq!(ours.len(), lms_ref.len(), "{tag}: lms coefficient count");
                for (a, b) in ours.iter().zip(&lms_ref) {
                    let d = (a - b).abs() / b.abs().max(1e-300);
                    w.lms = w.lms.max(d);
                    assert!(d <= 1e-9, "{tag}: lms coeff {a} vs {b} (rel {d:e})");
                }
            }

            // img2img from begin index k, with inpaint-style add_noise after each step.
            for k in case["img2img_begins"].as_array().unwrap() {
                let k = k.as_u64().unwrap() as usize;
                let p2 = format!("{prefix}/img2img/{k}");
                let mut s2 = Scheduler::new(kind, &cfg, steps).unwrap();
                s2.set_begin_index(k);
                let noised = s2.add_noise(fx.get("orig"), fx.get("noise2"), k).unwrap();
                check_close(
                    &format!("{tag} img2img noised"),
                    &noised,
                    fx.get(&format!("{p2}/noised")),
                    &mut w.add_noise,
                );
                run_loop(&fx, &mut s2, noised, k, &p2, true, seed, w, false)
                    .unwrap_or_else(|e| panic!("{tag} img2img {k}: {e}"));
            }
        }
    }
    println!("scheduler        cases  step(rel)   closed(rel) scaled(rel) add_noise   sigma(rel)  lms(rel)");
    for (name, w) in &worst {
        println!(
            "{name:<16} {:>5}  {:.2e}    {:.2e}    {:.2e}    {:.2e}    {:.2e}    {:.2e}",
            w.cases, w.step, w.closed, w.scaled, w.add_noise, w.sigma, w.lms
        );
    }
}
