//! ComfyUI import on real public workflows (tests/fixtures/interop/comfy-real, sources in its
//! SOURCES.md): what each imports to, and a report that lists every node exactly once.

mod interop_common;

use engine::interop::comfy::import_workflow;
use engine::interop::{ImportResult, Outcome};
use interop_common::*;
use nodes::{ParamValue, SeedValue};

fn load(name: &str) -> (serde_json::Value, ImportResult) {
    let path = manifest_dir()
        .join("../tests/fixtures/interop/comfy-real")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let result = import_workflow(&text).unwrap();
    (serde_json::from_str(&text).unwrap(), result)
}

/// The node ids of a workflow in either format.
fn workflow_ids(v: &serde_json::Value) -> Vec<String> {
    let mut ids: Vec<String> = match v.get("nodes").and_then(|n| n.as_array()) {
        Some(nodes) => nodes.iter().map(|n| n["id"].to_string()).collect(),
        None => v.as_object().unwrap().keys().cloned().collect(),
    };
    ids.sort();
    ids
}

/// Every node of the file is in the report exactly once, and the report's text lists each
/// once too.
fn each_node_once(v: &serde_json::Value, r: &ImportResult) {
    let mut reported: Vec<String> = r.report.entries.iter().map(|e| e.id.clone()).collect();
    reported.sort();
    assert_eq!(reported, workflow_ids(v), "{}", r.report.text());
    let text = r.report.text();
    for e in &r.report.entries {
        let line = format!("\n  {} {}", e.id, e.kind);
        assert_eq!(
            format!("\n{text}").matches(&line).count(),
            1,
            "{line:?} in\n{text}"
        );
    }
}

fn outcome(r: &ImportResult, id: &str) -> Outcome {
    r.report
        .get(id)
        .unwrap_or_else(|| panic!("node {id} is not in the report:\n{}", r.report.text()))
        .outcome()
}

fn why(r: &ImportResult, id: &str) -> String {
    r.report
        .get(id)
        .map(|e| e.why.join("; "))
        .unwrap_or_default()
}

fn seed(v: u64) -> ParamValue {
    ParamValue::Seed(SeedValue::Fixed { value: v })
}

#[test]
fn ui_img2img_from_comfyui_examples() {
    let (v, r) = load("ui_img2img_examples.json");
    let g = &r.graph;
    each_node_once(&v, &r);
    assert_eq!(g.nodes.len(), 4, "{}", g.to_json());
    assert_eq!(kind(g, "13"), "LoadCheckpoint");
    assert_eq!(
        param(g, "13", "checkpoint"),
        t("v1-5-pruned-emaonly-fp16.safetensors")
    );
    assert_eq!(kind(g, "16"), "Img2Img");
    assert_eq!(param(g, "16", "strength"), ParamValue::Float(1.0));
    assert_eq!(param(g, "16", "steps"), ParamValue::Int(20));
    assert_eq!(param(g, "16", "cfg"), ParamValue::Float(8.0));
    assert_eq!(param(g, "16", "seed"), seed(881719264574257));
    assert_eq!(
        param(g, "16", "prompt"),
        t("Photograph of victorian woman with wings, ske clouds, meadow grass")
    );
    assert_eq!(param(g, "16", "negative"), t("watermark, text"));
    // euler + simple has no exact equivalent: the model's default is used, and said.
    assert!(!g.nodes["16"].params.contains_key("scheduler"));
    assert_eq!(outcome(&r, "16"), Outcome::Approximated);
    assert!(why(&r, "16").contains("randomize"), "{}", why(&r, "16"));
    assert_eq!(param(g, "18", "source"), t("example.png"));
    assert!(linked(g, ("18", "image"), ("16", "image")));
    assert!(linked(g, ("16", "image"), ("21", "image")));
    // Folded nodes say where they went; nothing is "not imported".
    assert_eq!(outcome(&r, "17"), Outcome::Imported);
    assert_eq!(outcome(&r, "20"), Outcome::Imported);
    assert!(r.report.unsupported().is_empty(), "{}", r.report.text());
    assert!(r.is_usable());
    valid(g);
}

#[test]
fn ui_inpaint_from_comfyui_examples() {
    let (v, r) = load("ui_inpaint_examples.json");
    let g = &r.graph;
    each_node_once(&v, &r);
    assert_eq!(kind(g, "25"), "Inpaint");
    assert_eq!(param(g, "25", "seed"), seed(432738214482944));
    assert_eq!(
        param(g, "25", "prompt"),
        t("Closeup photograph of maine coon (cat:1.2) in the yosemite national park mountains nature")
    );
    assert_eq!(
        param(g, "22", "checkpoint"),
        t("STableDiffusionv2-1_768-ema-pruned.safetensors")
    );
    assert_eq!(kind(g, "26_grow"), "MaskOps");
    assert_eq!(param(g, "26_grow", "radius"), ParamValue::Float(6.0));
    assert!(linked(g, ("27", "mask"), ("27_mask_invert", "mask")));
    assert!(linked(g, ("27_mask_invert", "mask"), ("26_grow", "mask")));
    assert!(linked(g, ("26_grow", "mask"), ("25", "mask")));
    assert!(linked(g, ("27", "image"), ("25", "image")));
    assert_eq!(outcome(&r, "27"), Outcome::Approximated);
    assert!(why(&r, "27").contains("1 − alpha"));
    assert_eq!(outcome(&r, "26"), Outcome::Approximated);
    assert!(r.report.unsupported().is_empty(), "{}", r.report.text());
    valid(g);
}

#[test]
fn ui_sdxl_base_and_refiner_with_primitive_nodes() {
    let (v, r) = load("ui_sdxl_refiner_primitives.json");
    let g = &r.graph;
    each_node_once(&v, &r);
    let prompt = "film still. A woman in a white dress looking out over a city-scape. cinematic. \
                  shallow depth of field, vignette, highly detailed, high budget, bokeh, \
                  cinemascope, moody, epic, gorgeous, film grain, grainy";
    let negative = "anime, cartoon, graphic, text, painting, crayon, graphite, abstract, glitch, \
                    deformed, mutated, ugly, disfigured";
    // Base: KSamplerAdvanced on an empty latent (through a Reroute) → Txt2Img.
    assert_eq!(kind(g, "3"), "Txt2Img");
    assert_eq!(param(g, "3", "prompt"), t(prompt));
    assert_eq!(param(g, "3", "negative"), t(negative));
    assert_eq!(param(g, "3", "steps"), ParamValue::Int(25));
    assert_eq!(param(g, "3", "cfg"), ParamValue::Float(8.0));
    assert_eq!(param(g, "3", "seed"), seed(892517649155709));
    assert_eq!(param(g, "3", "scheduler"), t("euler"));
    assert_eq!(param(g, "3", "width"), ParamValue::Int(1024));
    assert_eq!(param(g, "3", "height"), ParamValue::Int(1024));
    assert_eq!(param(g, "1", "checkpoint"), t("sd_xl_base_1.0.safetensors"));
    assert!(linked(g, ("1", "model"), ("3", "model")));
    // Refiner: continues at step 20 of 25 → Img2Img of the base image, strength 0.2, its own
    // checkpoint and prompts.
    assert_eq!(kind(g, "19"), "Img2Img");
    assert_eq!(param(g, "19", "strength"), ParamValue::Float(0.2));
    assert_eq!(param(g, "19", "steps"), ParamValue::Int(25));
    assert_eq!(param(g, "19", "seed"), seed(0));
    assert_eq!(param(g, "19", "prompt"), t(prompt));
    assert_eq!(
        param(g, "20", "checkpoint"),
        t("sd_xl_refiner_1.0.safetensors")
    );
    assert!(linked(g, ("3", "image"), ("19", "image")));
    assert!(linked(g, ("20", "model"), ("19", "model")));
    assert!(linked(g, ("19", "image"), ("24", "image")));
    assert_eq!(g.nodes.len(), 5, "{}", g.to_json());
    // Both samplers are approximations, and say why.
    assert_eq!(outcome(&r, "3"), Outcome::Approximated);
    assert!(
        why(&r, "3").contains("stops at step 20 of 25"),
        "{}",
        why(&r, "3")
    );
    assert_eq!(outcome(&r, "19"), Outcome::Approximated);
    assert!(why(&r, "19").contains("strength 0.20"), "{}", why(&r, "19"));
    // The PrimitiveNodes and the Reroute are carried; the unused size presets and the rgthree
    // seed node are not.
    for id in ["17", "18", "21", "22", "38", "36"] {
        assert_eq!(outcome(&r, id), Outcome::Imported, "{id}");
    }
    let mut dropped: Vec<String> = r.report.unsupported().into_iter().map(|(i, _)| i).collect();
    dropped.sort();
    assert_eq!(dropped, ["29", "30", "32", "33", "34", "35", "37"]);
    assert!(why(&r, "37").contains("no equivalent"));
    valid(g);
}

#[test]
fn api_partial_import_keeps_the_base_pass_and_lists_each_node_once() {
    let (v, r) = load("api_lora_vae_dual_sampler.json");
    let g = &r.graph;
    each_node_once(&v, &r);
    assert!(r.is_usable());
    // The base pass: checkpoint (subfolder name kept as written) → two LoRAs → Txt2Img.
    assert_eq!(
        param(g, "7", "checkpoint"),
        t("StableDiffusion\\Originals\\sd1.5\\cyberrealistic_v33.safetensors")
    );
    assert_eq!(
        param(g, "6", "lora"),
        t("LoRA\\sd15\\berserk\\Guts_05.safetensors")
    );
    assert_eq!(
        param(g, "13", "lora"),
        t("LoRA\\sd15\\berserk\\berserk_guts-10.safetensors")
    );
    assert_eq!(param(g, "13", "strength"), ParamValue::Float(0.5));
    assert_eq!(param(g, "13", "text_strength"), ParamValue::Float(0.5));
    assert!(linked(g, ("7", "model"), ("6", "model")));
    assert!(linked(g, ("6", "model"), ("13", "model")));
    assert!(linked(g, ("13", "model"), ("8", "model")));
    assert_eq!(kind(g, "8"), "Txt2Img");
    assert_eq!(param(g, "8", "seed"), seed(25668654));
    assert_eq!(param(g, "8", "cfg"), ParamValue::Float(6.5));
    assert_eq!(
        param(g, "8", "prompt"),
        t("guts, berserk, masterpiece, best quality, anime, upper body")
    );
    assert_eq!(
        param(g, "8", "negative"),
        t("(low quality, worst quality:1.4), embedding:EasyNegative, embedding:FastNegativeV2, ")
    );
    assert_eq!(outcome(&r, "8"), Outcome::Approximated);
    assert!(why(&r, "8").contains("dpm_fast"), "{}", why(&r, "8"));
    // The second pass starts from LatentUpscaleBy: it and both save nodes are dropped, each
    // listed once with its reason, and the graph is still valid.
    for id in ["4", "3", "2", "1", "17", "5"] {
        assert_eq!(outcome(&r, id), Outcome::NotImported, "{id}");
    }
    assert!(
        why(&r, "4").contains("LatentUpscaleBy 2"),
        "{}",
        why(&r, "4")
    );
    assert_eq!(
        why(&r, "1"),
        "its image comes from VAEDecode 3, which is not imported"
    );
    assert!(!g.nodes.contains_key("1") && !g.nodes.contains_key("17"));
    assert_eq!(g.nodes.len(), 4, "{}", g.to_json());
    valid(g);
}

#[test]
fn api_string_primitives_and_a_pickle_vae() {
    let (v, r) = load("api_string_primitives_denoise.json");
    let g = &r.graph;
    each_node_once(&v, &r);
    assert_eq!(kind(g, "5"), "Txt2Img");
    // The prompts come through PrimitiveStringMultiline nodes.
    assert_eq!(
        param(g, "5", "prompt"),
        t("masterpiece, best quality, hatsune miku, upper body")
    );
    assert_eq!(
        param(g, "5", "negative"),
        t("(low quality, worst quality:1.4), embedding:EasyNegative")
    );
    assert_eq!(param(g, "5", "scheduler"), t("dpmpp_2m_karras"));
    assert_eq!(param(g, "5", "seed"), seed(123));
    assert_eq!(param(g, "5", "width"), ParamValue::Int(512));
    assert!(why(&r, "5").contains("denoise 0.7"));
    for id in ["3", "4", "10"] {
        assert_eq!(outcome(&r, id), Outcome::Imported, "{id}");
    }
    // The .ckpt VAE is kept by name, with the note that pickles are refused.
    assert_eq!(param(g, "2", "vae"), t("vae-ft-mse-840000-ema-pruned.ckpt"));
    assert_eq!(outcome(&r, "8"), Outcome::Approximated);
    assert!(why(&r, "8").contains("pickle"), "{}", why(&r, "8"));
    assert!(why(&r, "8").contains("vae-ft-mse-840000-ema-pruned.safetensors"));
    // The custom save node becomes a SaveImage with a safe name from the linked prefix.
    assert_eq!(kind(g, "12"), "SaveImage");
    let ParamValue::Text(name) = param(g, "12", "filename") else {
        panic!()
    };
    assert!(name.starts_with("Test/_model_10_/"), "{name}");
    assert!(!name.contains('%') && !name.contains('\\'), "{name}");
    assert!(linked(g, ("5", "image"), ("12", "image")));
    assert!(r.report.unsupported().is_empty(), "{}", r.report.text());
    valid(g);
}

#[test]
fn api_with_nothing_usable_is_reported_not_usable() {
    for (file, sampler) in [
        ("api_clip_skip_custom_latent.json", "7"),
        ("api_flux_sampler_custom_advanced.json", "4"),
    ] {
        let (v, r) = load(file);
        each_node_once(&v, &r);
        assert!(!r.is_usable(), "{file}: {}", r.graph.to_json());
        assert_eq!(outcome(&r, sampler), Outcome::NotImported, "{file}");
        assert!(
            !r.graph.nodes.values().any(|n| n.kind == "SaveImage"),
            "{file}"
        );
    }
    let (_, r) = load("api_clip_skip_custom_latent.json");
    assert!(
        why(&r, "7").contains("SDXLEmptyLatentSizePicker+"),
        "{}",
        why(&r, "7")
    );
}

/// A hostile chain of 2,000 samplers, each refining the last: bounded, no stack overflow, every
/// node reported once, and the first samplers still imported.
#[test]
fn long_sampler_chains_are_bounded() {
    let mut api = serde_json::Map::new();
    api.insert(
        "ck".into(),
        serde_json::json!({"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "a.safetensors"}}),
    );
    api.insert(
        "lat".into(),
        serde_json::json!({"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}}),
    );
    let n = 2000;
    for i in 0..n {
        let latent = if i == 0 {
            serde_json::json!(["lat", 0])
        } else {
            serde_json::json!([format!("s{}", i - 1), 0])
        };
        api.insert(
            format!("s{i}"),
            serde_json::json!({"class_type": "KSampler", "inputs": {
                "seed": i, "steps": 4, "cfg": 7, "sampler_name": "euler", "scheduler": "normal",
                "denoise": 0.5, "model": ["ck", 0], "latent_image": latent}}),
        );
    }
    api.insert(
        "dec".into(),
        serde_json::json!({"class_type": "VAEDecode", "inputs": {"samples": [format!("s{}", n - 1), 0], "vae": ["ck", 2]}}),
    );
    let v = serde_json::Value::Object(api);
    let r = import_workflow(&v.to_string()).unwrap();
    each_node_once(&v, &r);
    assert_eq!(kind(&r.graph, "s0"), "Txt2Img");
    assert_eq!(kind(&r.graph, "s1"), "Img2Img");
    assert!(r.is_usable());
    assert_eq!(outcome(&r, &format!("s{}", n - 1)), Outcome::NotImported);
    valid(&r.graph);
}
