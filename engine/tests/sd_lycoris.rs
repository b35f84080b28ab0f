//! LyCORIS LoHa and LoKr parity, on the tiny fixture models: LoHa (plain and Tucker convs,
//! different UNet and text-encoder strengths), LoKr with both factors full (scale 1, the file's
//! alpha ignored), LoKr with factorised halves and a Tucker conv, SDXL LoHa and LoKr with LDM
//! UNet names and both text encoders, and a mixed stack (kohya LoRA + LoHa + LoKr). Each case must
//! match the reference at the three bars, use every key, and clearly differ from the base image;
//! a LoKr whose Kronecker shape is not its layer's is refused. The references are the LyCORIS
//! package's modules (checked against PEFT's LoHa/LoKr layers where PEFT can express the file):
//! `tests/fixtures/sd/make_lycoris_fixtures.py` made them and says which one each file uses.

mod sd_common;

use std::path::PathBuf;

use engine::sd::lora::{apply, LoraSpec};
use sd_common::lora::*;
use sd_common::*;
use serde_json::Value;

fn lycoris_dir() -> PathBuf {
    fixtures().join("lycoris")
}

fn manifest() -> Value {
    let text = std::fs::read_to_string(lycoris_dir().join("manifest.json")).expect("manifest");
    serde_json::from_str(&text).expect("manifest parses")
}

fn spec(file: &str) -> LoraSpec {
    LoraSpec {
        path: lycoris_dir().join(file),
        unet: 1.0,
        text: 1.0,
    }
}

#[test]
fn every_lycoris_case_matches_the_reference_and_changes_the_image() {
    let text = std::fs::read_to_string(lycoris_dir().join("cases.json")).expect("cases");
    let doc: Value = serde_json::from_str(&text).expect("parses");
    let names: Vec<&str> = doc["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    for want in [
        "loha_sd15_08",
        "lokr_full_sd15_10",
        "lokr_factor_sd15_07",
        "loha_sdxl_08",
        "lokr_sdxl_10",
        "mixed_sd15",
    ] {
        assert!(names.contains(&want), "case {want} missing: {names:?}");
    }
    let failures = check_lora_cases(&lycoris_dir());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Modules applied per file and component equal the manifest's (the LyCORIS modules the fixture
/// script wrote), with no key left unused.
#[test]
fn module_counts_equal_the_manifest() {
    let manifest = manifest();
    let mut mismatches = Vec::new();
    for (file, model_name) in [
        ("loha_sd15", "sd15"),
        ("lokr_full_sd15", "sd15"),
        ("lokr_factor_sd15", "sd15"),
        ("loha_sdxl", "sdxl"),
        ("lokr_sdxl", "sdxl"),
    ] {
        let entry = &manifest["files"][file]["applied"];
        let unet = entry["unet"].as_u64().expect("unet count") as usize;
        let text: usize = ["text_encoder", "text_encoder_2"]
            .iter()
            .filter_map(|k| entry[*k].as_u64())
            .sum::<u64>() as usize;
        assert!(unet > 0 && text > 0, "{file}: manifest {entry}");
        let (_, reports) = match apply(&model(model_name), &[spec(&format!("{file}.safetensors"))])
        {
            Ok(r) => r,
            Err(e) => {
                mismatches.push(format!("{file}: {e}"));
                continue;
            }
        };
        let r = &reports[0];
        if r.unet_modules != unet || r.text_modules != text || !r.unmatched.is_empty() {
            mismatches.push(format!(
                "{file}: expected {unet} UNet + {text} text-encoder modules, none unused; got {}",
                r.summary()
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// The integers of `s`, in order (`[16, 64]`, `16x64` and `(16, 64)` all give 16, 64).
fn integers(s: &str) -> Vec<u64> {
    s.split(|c: char| !c.is_ascii_digit())
        .filter(|t| !t.is_empty())
        .filter_map(|t| t.parse().ok())
        .collect()
}

fn mentions_shape(msg: &str, shape: &[u64]) -> bool {
    integers(msg).windows(shape.len()).any(|w| w == shape)
}

#[test]
fn the_shape_check_of_integers_sees_every_usual_spelling() {
    for msg in [
        "[16, 64] vs [32, 32]",
        "16x64 != 32x32",
        "(16, 64) (32, 32)",
    ] {
        assert!(mentions_shape(msg, &[16, 64]) && mentions_shape(msg, &[32, 32]));
    }
    assert!(!mentions_shape("[16, 32] vs [64, 32]", &[16, 64]));
}

/// A LoKr module whose Kronecker product has the layer's element count but not its shape is
/// refused with one error that names the module's key and both shapes.
#[test]
fn a_lokr_whose_kronecker_shape_does_not_match_is_refused() {
    let bad = &manifest()["files"]["bad_lokr_shape"]["bad_module"];
    let key = bad["key"].as_str().expect("key");
    let dims = |v: &Value| -> Vec<u64> {
        v.as_array()
            .expect("shape")
            .iter()
            .map(|d| d.as_u64().expect("dim"))
            .collect()
    };
    let (kron, layer) = (dims(&bad["kron_shape"]), dims(&bad["layer_shape"]));
    assert_eq!(
        kron.iter().product::<u64>(),
        layer.iter().product::<u64>(),
        "the fixture keeps the element count, so reshaping alone would hide the error"
    );
    let r = apply(&model("sd15"), &[spec("bad_lokr_shape.safetensors")]);
    let e = match r {
        Ok((_, reports)) => panic!("accepted: {}", reports[0].summary()),
        Err(e) => e.to_string(),
    };
    assert!(e.contains(key), "the error names the key {key}: {e}");
    assert!(
        mentions_shape(&e, &kron) && mentions_shape(&e, &layer),
        "the error names both shapes {kron:?} and {layer:?}: {e}"
    );
    assert!(!e.contains('\n'), "one line: {e}");
}

/// The fixture files stay small and the manifest records that the references agreed.
#[test]
fn the_fixtures_are_small_and_their_references_agree() {
    let manifest = manifest();
    let files = manifest["files"].as_object().expect("files");
    let mut total = 0u64;
    for entry in std::fs::read_dir(lycoris_dir()).expect("lycoris dir") {
        let entry = entry.expect("entry");
        let len = entry.metadata().expect("metadata").len();
        assert!(len < 2_000_000, "{:?}: {len} bytes", entry.file_name());
        total += len;
    }
    assert!(total < 3_000_000, "lycoris/ holds {total} bytes");
    for (name, f) in files {
        if name == "bad_lokr_shape" {
            continue;
        }
        for k in ["file_reader_max_rel_err", "peft_max_rel_err"] {
            let err = f[k].as_f64().unwrap_or(f64::INFINITY);
            assert!(err < 1e-5, "{name}: {k} = {err}");
        }
    }
}
