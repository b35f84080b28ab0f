//! LoRA parity with diffusers (`load_lora_weights` + `set_adapters`), on the tiny fixture
//! models: kohya at 0.8, two stacked at 0.7 and 0.5, PEFT, LyCORIS LoCon with 3×3 convs, an
//! SDXL kohya LoRA with LDM UNet names. Each must match diffusers at the three bars, apply every
//! module with no unmatched key, and clearly differ from the base model (PSNR < 30 dB), so an
//! ignored LoRA cannot pass. `tests/fixtures/sd/make_lora_fixtures.py` made the references.

mod sd_common;

use std::path::PathBuf;

use engine::sd::lora::{apply, LoraSpec};
use sd_common::lora::*;
use sd_common::*;
use serde_json::Value;

fn lora_dir() -> PathBuf {
    fixtures().join("lora")
}

fn lora_cases() -> Vec<Value> {
    let text = std::fs::read_to_string(lora_dir().join("cases.json")).expect("lora cases");
    let doc: Value = serde_json::from_str(&text).expect("parses");
    doc["cases"].as_array().expect("cases").clone()
}

#[test]
fn every_lora_case_matches_diffusers_and_changes_the_image() {
    assert!(lora_cases().len() >= 7);
    let failures = check_lora_cases(&lora_dir());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The LoRA our trainer made (committed; `sd_train.rs` checks the trainer still makes it),
/// loaded in diffusers by `make_train_fixtures.py`: our engine gives diffusers' image with it.
#[test]
fn the_lora_our_trainer_made_matches_diffusers() {
    let dir = fixtures().join("train");
    let text = std::fs::read_to_string(dir.join("cases.json")).expect("train cases");
    let doc: Value = serde_json::from_str(&text).expect("parses");
    let case = &doc["cases"][0];
    assert_eq!(
        case["applied"]["unet"], 48,
        "diffusers applied every module"
    );
    assert!(case["psnr_vs_base_db"].as_f64().unwrap() < 30.0);
    let failures = check_lora_cases(&dir);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Modules applied per file equal what diffusers applied (from the fixtures' manifest).
#[test]
fn module_counts_equal_diffusers() {
    let text = std::fs::read_to_string(lora_dir().join("manifest.json")).unwrap();
    let manifest: Value = serde_json::from_str(&text).unwrap();
    eprintln!(
        "{}",
        serde_json::to_string(&manifest)
            .unwrap()
            .chars()
            .take(600)
            .collect::<String>()
    );
    for (file, model_name) in [
        ("kohya_a.safetensors", "sd15"),
        ("peft.safetensors", "sd15"),
        ("locon.safetensors", "sd15"),
        ("sdxl_kohya.safetensors", "sdxl"),
    ] {
        let base = model(model_name);
        let spec = LoraSpec {
            path: lora_dir().join(file),
            unet: 1.0,
            text: 1.0,
        };
        let (_, reports) = apply(&base, &[spec]).unwrap();
        let key = file.trim_end_matches(".safetensors");
        let entry = &manifest["files"][key]["applied"];
        let unet = entry["unet"].as_u64().unwrap() as usize;
        let text: usize = ["text_encoder", "text_encoder_2", "te", "te1", "te2"]
            .iter()
            .filter_map(|k| entry[*k].as_u64())
            .sum::<u64>() as usize;
        assert_eq!(reports[0].unet_modules, unet, "{file}: UNet modules");
        assert_eq!(
            reports[0].text_modules, text,
            "{file}: text-encoder modules"
        );
    }
}

#[test]
fn unknown_keys_are_listed() {
    let base = model("sd15");
    let spec = LoraSpec {
        path: lora_dir().join("extra_keys.safetensors"),
        unet: 1.0,
        text: 1.0,
    };
    let (_, reports) = apply(&base, &[spec]).unwrap();
    let r = &reports[0];
    assert_eq!(
        r.unmatched,
        vec!["lora_unet_nonexistent_block".to_string()],
        "{}",
        r.summary()
    );
    assert!(r.summary().contains("lora_unet_nonexistent_block"));
    // kohya's metadata is read and summarised.
    assert!(
        r.info.as_deref().unwrap_or("").contains("base"),
        "{:?}",
        r.info
    );
}

#[test]
fn a_lora_for_another_architecture_is_refused() {
    let sdxl_lora = LoraSpec {
        path: lora_dir().join("sdxl_kohya.safetensors"),
        unet: 1.0,
        text: 1.0,
    };
    let e = apply(&model("sd15"), &[sdxl_lora])
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("SDXL LoRA") && e.contains("sdxl_kohya"), "{e}");
    let sd_lora = LoraSpec {
        path: lora_dir().join("kohya_a.safetensors"),
        unet: 1.0,
        text: 1.0,
    };
    let e = apply(&model("sdxl"), &[sd_lora])
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("model is SDXL"), "{e}");
}

/// Changing a strength re-merges from the cached base weights: the base model object is the
/// same, and a zero strength gives the base model's image back.
#[test]
fn strength_zero_is_the_base_model() {
    let c = lora_cases()
        .into_iter()
        .find(|c| c["name"] == "lora_kohya_a_08")
        .unwrap();
    let base = model("sd15");
    let spec = LoraSpec {
        path: lora_dir().join("kohya_a.safetensors"),
        unet: 0.0,
        text: 0.0,
    };
    let (merged, _) = apply(&base, &[spec]).unwrap();
    let db = psnr(&image_of(&c, &merged), &image_of(&c, &base));
    assert!(db > 100.0, "{db:.1} dB");
}
