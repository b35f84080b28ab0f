//! LoRA parity helpers shared by the LoRA test files (`sd_lora.rs` and the LyCORIS/DoRA
//! tests): a case's stack, its image, and checking every case of a fixture folder's
//! `cases.json` at the three parity bars, with every key used and the image clearly changed.

use std::path::Path;

use engine::sd::lora::{apply, LoraSpec};
use serde_json::Value;

use super::*;

/// The LoRA stack of case `c`, files in `dir`.
pub fn stack(c: &Value, dir: &Path) -> Vec<LoraSpec> {
    c["loras"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| LoraSpec {
            path: dir.join(l["file"].as_str().unwrap()),
            unet: l["weight"].as_f64().unwrap(),
            text: l["te_weight"].as_f64().unwrap(),
        })
        .collect()
}

pub fn image_of(c: &Value, m: &engine::sd::model::SdModel) -> Vec<f32> {
    let mut none = |_: usize, _: usize, _: &candle_core::Tensor| Ok(());
    let g = engine::sd::pipeline::generate(m, &params(c), &mut none).unwrap();
    rgb(&g.images[0])
}

/// Checks every case of `dir/cases.json` against diffusers (the three parity bars) and that
/// each LoRA case clearly changes the base image; returns the failures.
pub fn check_lora_cases(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("cases.json")).expect("cases");
    let doc: Value = serde_json::from_str(&text).expect("parses");
    let cases = doc["cases"].as_array().expect("cases").clone();
    let mut failures = Vec::new();
    for c in &cases {
        let name = c["name"].as_str().unwrap().to_string();
        let base = model(c["model"].as_str().unwrap());
        let specs = stack(c, dir);
        // A UNet-only LoRA (e.g. one our trainer made) leaves the text encoder alone.
        let text_expected = c["applied"]["text_encoder"].as_u64() != Some(0);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let (merged, reports) = apply(&base, &specs).unwrap_or_else(|e| panic!("{e}"));
            for r in &reports {
                assert!(r.unmatched.is_empty(), "{}", r.summary());
                assert!(r.unet_modules > 0, "{}", r.summary());
                assert_eq!(r.text_modules > 0, text_expected, "{}", r.summary());
            }
            let rep = check_against(c, dir, &merged);
            if !specs.is_empty() {
                // The LoRA must clearly change the result.
                let db = psnr(&image_of(c, &merged), &image_of(c, &base));
                assert!(db < 30.0, "{name}: LoRA vs base {db:.1} dB");
            }
            rep
        }));
        if let Err(e) = r {
            let msg = panic_message(e);
            failures.push(format!("{name}: {msg}"));
        }
    }
    failures
}
