//! DoRA parity (issue 25) on the tiny fixture models: kohya/LyCORIS files with an output-axis
//! `dora_scale` (SD1.5 at 1.0 and at 0.6/0.9 UNet/text strength, SDXL with `lora_te1_`/`lora_te2_`
//! at 0.8), a PEFT-named file as diffusers saves it (`lora_magnitude_vector`), an input-axis file
//! (LyCORIS `wd_on_out=False`), and a plain LoRA stacked before a DoRA on shared layers. The
//! reference is PEFT's DoRA layer through diffusers (`W' = m / ||W0 + s dW|| * (W + s dW)`, in
//! stack order), or LyCORIS' `weight_decompose` for the input axis; each case must match at the
//! three bars, use every key and clearly change the image. `make_dora_fixtures.py` made them; its
//! manifest records how far a loader that ignores `dora_scale` lands (23–28 dB).

mod sd_common;

use std::path::PathBuf;

use engine::sd::lora::{apply, LoraSpec};
use sd_common::lora::*;
use sd_common::*;
use serde_json::Value;

fn dora_dir() -> PathBuf {
    fixtures().join("dora")
}

fn read_json(name: &str) -> Value {
    let text = std::fs::read_to_string(dora_dir().join(name)).expect(name);
    serde_json::from_str(&text).expect("parses")
}

#[test]
fn every_dora_case_matches_the_reference_and_changes_the_image() {
    let doc = read_json("cases.json");
    let names: Vec<&str> = doc["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for want in [
        "dora_kohya_sd15_10",
        "dora_kohya_sd15_06",
        "dora_peft_sd15_10",
        "dora_sdxl_08",
        "dora_stack_sd15",
        "dora_input_axis_sd15_10",
    ] {
        assert!(names.contains(&want), "{want} missing from dora/cases.json");
    }
    let failures = check_lora_cases(&dora_dir());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Modules applied per file and component equal what the reference applied (manifest.json),
/// and every key of the file is used.
#[test]
fn module_counts_equal_the_manifest() {
    let manifest = read_json("manifest.json");
    let files = manifest["files"].as_object().expect("files");
    assert_eq!(files.len(), 4);
    let mut failures = Vec::new();
    for (key, entry) in files {
        let base = model(entry["model"].as_str().unwrap());
        let spec = LoraSpec {
            path: dora_dir().join(entry["file"].as_str().unwrap()),
            unet: 1.0,
            text: 1.0,
        };
        let applied = &entry["applied"];
        let unet = applied["unet"].as_u64().unwrap() as usize;
        let text: usize = ["text_encoder", "text_encoder_2"]
            .iter()
            .filter_map(|k| applied[*k].as_u64())
            .sum::<u64>() as usize;
        match apply(&base, &[spec]) {
            Err(e) => failures.push(format!("{key}: {e}")),
            Ok((_, reports)) => {
                let r = &reports[0];
                if (r.unet_modules, r.text_modules) != (unet, text) || !r.unmatched.is_empty() {
                    failures.push(format!(
                        "{key}: expected {unet} UNet + {text} text-encoder modules, every key used; got {}",
                        r.summary().chars().take(400).collect::<String>()
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A `dora_scale` whose shape fits neither axis of its layer is refused with one error that
/// names the module, not applied half-way and not a panic.
#[test]
fn a_dora_scale_of_the_wrong_shape_is_a_clear_error() {
    use safetensors::tensor::{Dtype, TensorView};

    let module = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q";
    let bytes = std::fs::read(dora_dir().join("dora_kohya_sd15.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let bad_key = format!("{module}.dora_scale");
    assert_eq!(st.tensor(&bad_key).unwrap().shape(), &[32, 1]);
    let bad_data = vec![0u8; 33 * 2]; // f16 [33, 1]: one row more than the layer has
    let mut views: Vec<(String, TensorView)> = Vec::new();
    for (name, view) in st.tensors() {
        let v = if name == bad_key {
            TensorView::new(Dtype::F16, vec![33, 1], &bad_data).unwrap()
        } else {
            view
        };
        views.push((name, v));
    }
    views.sort_by(|a, b| a.0.cmp(&b.0));
    let out = safetensors::serialize(views, None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad_dora_scale.safetensors");
    std::fs::write(&path, out).unwrap();

    let spec = LoraSpec {
        path,
        unet: 1.0,
        text: 1.0,
    };
    let r = std::panic::catch_unwind(|| apply(&model("sd15"), &[spec]).map(|_| ()));
    let e = match r {
        Err(p) => panic!("panicked: {}", panic_message(p)),
        Ok(Ok(())) => panic!("a [33, 1] dora_scale on a 32-row layer was accepted"),
        Ok(Err(e)) => e.to_string(),
    };
    assert!(
        e.contains(module) && e.contains("dora_scale") && e.contains("33"),
        "{e}"
    );
}
