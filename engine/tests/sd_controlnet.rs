//! ControlNet in the pipelines, against diffusers 0.42.1's `StableDiffusion(XL)ControlNet*`
//! pipelines on the tiny fixture models (`tests/fixtures/sd/make_controlnet_cases.py`):
//! one net, two stacked, a start/end window, guess mode with and without CFG, img2img,
//! 9- and 4-channel inpaint (an inpaint control built from image + mask), SDXL, LoRA +
//! ControlNet and a control image of the wrong size. Every case must pass the three parity bars
//! and differ from the same run without its control by more than 100× the latent tolerance,
//! so an ignored (or half-applied) control cannot pass.

mod sd_common;

use std::path::PathBuf;
use std::sync::Arc;

use engine::image::Mask;
use engine::sd::controlnet::{load_cached, ControlNetLoadOptions, ControlSpec};
use engine::sd::lora::{apply, LoraSpec};
use engine::sd::model::SdModel;
use engine::sd::pipeline::{generate, pil_resize_image, GenerateParams};
use sd_common::*;
use serde_json::Value;

fn cn_dir() -> PathBuf {
    fixtures().join("controlnet")
}

fn cn_cases() -> Vec<Value> {
    let text = std::fs::read_to_string(cn_dir().join("cases.json")).expect("controlnet cases");
    let doc: Value = serde_json::from_str(&text).expect("parses");
    doc["cases"].as_array().expect("cases").clone()
}

fn cn_case(name: &str) -> Value {
    cn_cases()
        .into_iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no case {name}"))
}

fn mask_png(rel: &str) -> Mask {
    let img = load_png(&fixtures().join(rel));
    Mask {
        width: img.width,
        height: img.height,
        data: img.data.chunks_exact(4).map(|px| px[0]).collect(),
    }
}

fn controls(c: &Value) -> Vec<ControlSpec> {
    c["controls"]
        .as_array()
        .expect("controls")
        .iter()
        .map(|s| {
            let net = load_cached(
                &fixtures().join(s["model"].as_str().unwrap()),
                &ControlNetLoadOptions::default(),
            )
            .unwrap_or_else(|e| panic!("{e}"));
            ControlSpec {
                net,
                image: Arc::new(load_png(&fixtures().join(s["image"].as_str().unwrap()))),
                mask: s["mask"].as_str().map(|m| Arc::new(mask_png(m))),
                strength: s["strength"].as_f64().unwrap(),
                start: s["start"].as_f64().unwrap(),
                end: s["end"].as_f64().unwrap(),
                guess_mode: s["guess_mode"].as_bool().unwrap(),
            }
        })
        .collect()
}

fn cn_params(c: &Value) -> GenerateParams {
    GenerateParams {
        controls: controls(c),
        ..params(c)
    }
}

/// The case's model, with its LoRA merged when it has one.
fn cn_model(c: &Value) -> Arc<SdModel> {
    let base = model(c["model"].as_str().unwrap());
    let Some(loras) = c["lora"].as_array() else {
        return base;
    };
    let specs: Vec<LoraSpec> = loras
        .iter()
        .map(|l| LoraSpec {
            path: fixtures().join(l["file"].as_str().unwrap()),
            unet: l["weight"].as_f64().unwrap(),
            text: l["te_weight"].as_f64().unwrap(),
        })
        .collect();
    Arc::new(apply(&base, &specs).unwrap_or_else(|e| panic!("{e}")).0)
}

#[test]
fn every_case_matches_diffusers() {
    let all = cn_cases();
    assert!(all.len() >= 11, "expected the full case list");
    let mut failures = Vec::new();
    for c in &all {
        let name = c["name"].as_str().unwrap().to_string();
        let r = std::panic::catch_unwind(|| {
            let m = cn_model(c);
            check_against_params(c, &cn_dir().join("cases"), &m, &cn_params(c))
        });
        if let Err(e) = r {
            failures.push(format!("{name}: {}", panic_message(e)));
        }
    }
    assert!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The same run without its control (and, for a stack, without each one of its controls)
/// lands far outside the tolerance: the references really depend on every control.
#[test]
fn control_matters() {
    let mut weak = Vec::new();
    for c in &cn_cases() {
        let name = c["name"].as_str().unwrap();
        let m = cn_model(c);
        let refs = refs_of(&cn_dir().join("cases"), name);
        let full = cn_params(c);
        let mut variants = vec![("no control".to_string(), Vec::new())];
        if full.controls.len() > 1 {
            for i in 0..full.controls.len() {
                let mut rest = full.controls.clone();
                rest.remove(i);
                variants.push((format!("without control {i}"), rest));
            }
        }
        for (what, ctl) in variants {
            let p = GenerateParams {
                controls: ctl,
                ..full.clone()
            };
            let (steps, _) = run_steps(&m, &p);
            let ratio = worst_step_ratio(&steps, &refs);
            eprintln!("{name} {what}: {ratio:.0}× the tolerance");
            if ratio <= 100.0 {
                weak.push(format!("{name} {what}: only {ratio:.1}×"));
            }
        }
    }
    assert!(
        weak.is_empty(),
        "controls that hardly matter:\n{}",
        weak.join("\n")
    );
}

/// The wrong-size case really is one (80×72 control, 64×64 output), and our Pillow Lanczos
/// port gives Pillow's bytes for up- and down-scaling on both axes.
#[test]
fn wrong_size_control_is_resized_as_pillow() {
    let c = cn_case("cn_sd15_resize_euler");
    let ctl = load_png(&fixtures().join(c["controls"][0]["image"].as_str().unwrap()));
    assert_eq!((ctl.width, ctl.height), (80, 72));
    assert_eq!(
        (c["width"].as_u64(), c["height"].as_u64()),
        (Some(64), Some(64))
    );
    let dir = cn_dir().join("inputs/lanczos");
    let mut checked = 0;
    for (src, outs) in [
        (
            "src_37x53.png",
            vec![(64, 48), (20, 30), (37, 64), (90, 53)],
        ),
        ("../edges_80x72.png", vec![(64, 64)]),
    ] {
        let img = load_png(&dir.join(src));
        let stem = std::path::Path::new(src)
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .to_string();
        for (w, h) in outs {
            let want = load_png(&dir.join(format!("{stem}_{w}x{h}.png")));
            let got = pil_resize_image(&img, w, h);
            let bad = rgb(&got)
                .iter()
                .zip(rgb(&want))
                .filter(|(a, b)| (*a - b).abs() > 0.5 / 255.0)
                .count();
            assert_eq!(bad, 0, "{stem} → {w}×{h}: {bad} values differ from Pillow");
            checked += 1;
        }
    }
    assert_eq!(checked, 5);
}

/// Without a size, a txt2img run takes the control image's (as diffusers' ControlNet
/// pipelines do), rounded down to a multiple of 8.
#[test]
fn size_defaults_to_the_control_image() {
    let c = cn_case("cn_sd15_resize_euler");
    let m = cn_model(&c);
    let p = GenerateParams {
        width: 0,
        height: 0,
        steps: 1,
        ..cn_params(&c)
    };
    let g = generate(&m, &p, &mut |_, _, _| Ok(())).expect("runs");
    assert_eq!((g.width, g.height), (80, 72));
    assert_eq!((g.images[0].width, g.images[0].height), (80, 72));
}

/// An SDXL ControlNet on an SD1.5 model is refused before sampling, in one line naming the
/// ControlNet; so is a window with start ≥ end.
#[test]
fn wrong_architecture_and_bad_window_are_refused() {
    let c = cn_case("cn_sd15_euler");
    let m = cn_model(&c);
    let xl = load_cached(
        &fixtures().join("controlnet/models/cn-sdxl"),
        &ControlNetLoadOptions::default(),
    )
    .expect("loads");
    let mut p = cn_params(&c);
    p.controls[0].net = xl;
    let mut steps = 0;
    let err = generate(&m, &p, &mut |_, _, _| {
        steps += 1;
        Ok(())
    })
    .expect_err("an SDXL ControlNet on SD1.5 must fail")
    .to_string();
    assert_eq!(steps, 0, "refused before sampling");
    assert!(!err.contains('\n'), "one line: {err}");
    assert!(err.contains("cn-sdxl"), "names the ControlNet: {err}");

    let mut p = cn_params(&c);
    p.controls[0].start = 0.6;
    p.controls[0].end = 0.4;
    let err = generate(&m, &p, &mut |_, _, _| Ok(()))
        .expect_err("start ≥ end must fail")
        .to_string();
    assert!(
        err.contains("start") && err.contains("end") && !err.contains('\n'),
        "{err}"
    );
}

/// "Only masked" crops the control images with the image: it runs and returns the full size.
#[test]
fn only_masked_crops_the_controls() {
    let c = cn_case("cn_sd15_inpaint4ch_dpmpp_2m_s075");
    let m = cn_model(&c);
    let p = GenerateParams {
        only_masked: true,
        padding: 4,
        width: 32,
        height: 32,
        steps: 2,
        ..cn_params(&c)
    };
    let g = generate(&m, &p, &mut |_, _, _| Ok(())).expect("runs");
    assert_eq!((g.width, g.height), (64, 64));
}
