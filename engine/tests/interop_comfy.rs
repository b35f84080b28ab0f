//! ComfyUI import: real-shaped files under tests/data, checked node by node and validated.

mod interop_common;

use engine::interop::comfy::{import_workflow, map_sampler, widget_names};
use engine::interop::ImportResult;
use interop_common::*;
use nodes::{GraphDoc, ParamValue, SeedValue};

fn load(name: &str) -> ImportResult {
    let path = manifest_dir().join("../tests/fixtures/interop").join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    import_workflow(&text).unwrap()
}

fn check_default_txt2img(g: &GraphDoc) {
    assert_eq!(g.nodes.len(), 3, "{}", g.to_json());
    assert_eq!(kind(g, "4"), "LoadCheckpoint");
    assert_eq!(
        param(g, "4", "checkpoint"),
        t("v1-5-pruned-emaonly.safetensors")
    );
    assert_eq!(kind(g, "3"), "Txt2Img");
    assert_eq!(
        param(g, "3", "prompt"),
        t("beautiful scenery nature glass bottle landscape, , purple galaxy bottle,")
    );
    assert_eq!(param(g, "3", "negative"), t("text, watermark"));
    assert_eq!(param(g, "3", "width"), ParamValue::Int(512));
    assert_eq!(param(g, "3", "height"), ParamValue::Int(512));
    assert_eq!(param(g, "3", "steps"), ParamValue::Int(20));
    assert_eq!(param(g, "3", "cfg"), ParamValue::Float(8.0));
    assert_eq!(param(g, "3", "scheduler"), t("euler"));
    assert_eq!(
        param(g, "3", "seed"),
        ParamValue::Seed(SeedValue::Fixed {
            value: 156680208700286
        })
    );
    assert_eq!(kind(g, "9"), "SaveImage");
    assert_eq!(
        param(g, "9", "filename"),
        t("ComfyUI_{run:05}-{item:04}.png")
    );
    assert!(linked(g, ("4", "model"), ("3", "model")));
    assert!(linked(g, ("3", "image"), ("9", "image")));
    assert_eq!(g.links.len(), 2);
    valid(g);
}

#[test]
fn default_txt2img_api() {
    let r = load("txt2img_api.json");
    check_default_txt2img(&r.graph);
    assert!(r.report.is_clean(), "{:?}", r.report);
    assert!(r.graph.layout.is_empty());
}

#[test]
fn default_txt2img_ui_keeps_positions() {
    let r = load("txt2img_ui.json");
    check_default_txt2img(&r.graph);
    assert!(r.report.is_clean(), "{:?}", r.report);
    assert_eq!(r.graph.layout["4"].pos, [26.0, 474.0]);
    assert_eq!(r.graph.layout["3"].pos, [863.0, 186.0]);
    assert_eq!(r.graph.layout["9"].pos, [1451.0, 189.0]);
}

#[test]
fn api_and_ui_give_the_same_nodes() {
    let a = load("txt2img_api.json").graph;
    let b = load("txt2img_ui.json").graph;
    assert_eq!(a.nodes, b.nodes);
    assert_eq!(a.links, b.links);
}

#[test]
fn img2img_ui_with_scale_and_reroute() {
    let r = load("img2img_ui.json");
    let g = &r.graph;
    assert_eq!(g.nodes.len(), 5, "{}", g.to_json());
    assert_eq!(kind(g, "3"), "Img2Img");
    assert_eq!(param(g, "3", "strength"), ParamValue::Float(0.6));
    assert_eq!(param(g, "3", "scheduler"), t("dpmpp_2m_karras"));
    assert_eq!(param(g, "3", "cfg"), ParamValue::Float(7.5));
    assert_eq!(param(g, "3", "steps"), ParamValue::Int(25));
    assert_eq!(
        param(g, "3", "seed"),
        ParamValue::Seed(SeedValue::Fixed { value: 42 })
    );
    assert_eq!(param(g, "3", "negative"), t("cartoon, drawing, lowres"));
    assert_eq!(kind(g, "10"), "LoadImage");
    assert_eq!(param(g, "10", "source"), t("product_photo.png"));
    assert_eq!(kind(g, "12"), "Resize");
    assert_eq!(param(g, "12", "width"), ParamValue::Int(768));
    assert_eq!(param(g, "12", "height"), ParamValue::Int(512));
    assert_eq!(param(g, "12", "filter"), t("bilinear"));
    assert_eq!(param(g, "12", "mode"), t("stretch"));
    assert!(linked(g, ("10", "image"), ("12", "image")));
    assert!(linked(g, ("12", "image"), ("3", "image")));
    assert!(linked(g, ("4", "model"), ("3", "model")));
    // Through the Reroute.
    assert!(linked(g, ("3", "image"), ("9", "image")));
    assert_eq!(
        param(g, "9", "filename"),
        t("defects/img2img_{run:05}-{item:04}.png")
    );
    assert!(r.report.unsupported().is_empty(), "{:?}", r.report);
    assert_eq!(g.layout["12"].pos, [400.0, 760.0]);
    valid(g);
}

#[test]
fn inpaint_api_with_loadimage_mask() {
    let r = load("inpaint_api.json");
    let g = &r.graph;
    assert_eq!(kind(g, "6"), "Inpaint");
    assert_eq!(param(g, "6", "strength"), ParamValue::Float(1.0));
    assert_eq!(param(g, "6", "scheduler"), t("unipc"));
    assert_eq!(
        param(g, "6", "prompt"),
        t("a deep scratch on brushed steel, macro photo")
    );
    assert_eq!(param(g, "6", "negative"), t("blurry, painting"));
    assert_eq!(param(g, "6", "paste_back"), ParamValue::Bool(false));
    assert_eq!(param(g, "6", "mask_blur"), ParamValue::Float(0.0));
    assert_eq!(kind(g, "2"), "LoadImage");
    assert_eq!(param(g, "2", "source"), t("metal_plate.png"));
    // ComfyUI's mask = 1 - alpha: our alpha mask, inverted, then grown by grow_mask_by.
    assert_eq!(kind(g, "2_mask_invert"), "MaskOps");
    assert_eq!(param(g, "2_mask_invert", "op"), t("invert"));
    assert_eq!(kind(g, "3_grow"), "MaskOps");
    assert_eq!(param(g, "3_grow", "op"), t("grow"));
    assert_eq!(param(g, "3_grow", "radius"), ParamValue::Float(6.0));
    assert!(linked(g, ("2", "mask"), ("2_mask_invert", "mask")));
    assert!(linked(g, ("2_mask_invert", "mask"), ("3_grow", "mask")));
    assert!(linked(g, ("3_grow", "mask"), ("6", "mask")));
    assert!(linked(g, ("2", "image"), ("6", "image")));
    assert!(linked(g, ("1", "model"), ("6", "model")));
    assert!(linked(g, ("6", "image"), ("8", "image")));
    assert_eq!(
        param(g, "8", "filename"),
        t("inpaint/scratch_{run:05}-{item:04}.png")
    );
    assert_eq!(g.nodes.len(), 6);
    assert!(r.report.unsupported().is_empty());
    assert!(r.report.text().contains("1 − alpha"));
    valid(g);
}

#[test]
fn lora_chain_ui() {
    let r = load("lora_chain_ui.json");
    let g = &r.graph;
    assert_eq!(kind(g, "10"), "LoraLoader");
    assert_eq!(param(g, "10", "lora"), t("scratch_v2.safetensors"));
    assert_eq!(param(g, "10", "strength"), ParamValue::Float(0.8));
    assert_eq!(param(g, "10", "text_strength"), ParamValue::Float(0.6));
    assert_eq!(kind(g, "11"), "LoraLoader");
    assert_eq!(param(g, "11", "strength"), ParamValue::Float(0.5));
    assert_eq!(param(g, "11", "text_strength"), ParamValue::Float(1.0));
    // The bypassed third LoRA is not imported; the chain goes around it.
    assert!(!g.nodes.contains_key("14"));
    assert!(linked(g, ("4", "model"), ("10", "model")));
    assert!(linked(g, ("10", "model"), ("11", "model")));
    assert!(linked(g, ("11", "model"), ("3", "model")));
    // CLIPSetLastLayer -2 and the VAELoader fold into the checkpoint.
    assert_eq!(param(g, "4", "clip_skip"), ParamValue::Int(2));
    assert_eq!(
        param(g, "4", "vae"),
        t("vae-ft-mse-840000-ema-pruned.safetensors")
    );
    assert_eq!(kind(g, "3"), "Txt2Img");
    assert_eq!(param(g, "3", "width"), ParamValue::Int(640));
    assert_eq!(param(g, "3", "height"), ParamValue::Int(448));
    assert_eq!(param(g, "3", "scheduler"), t("euler_a"));
    assert_eq!(param(g, "3", "cfg"), ParamValue::Float(6.5));
    assert_eq!(
        param(g, "3", "prompt"),
        t("rusty scratched steel pipe, (deep scratch:1.2), photo")
    );
    assert_eq!(g.nodes.len(), 5, "{}", g.to_json());
    // The bypassed LoRA and the editor note are listed as not imported, each once.
    let mut dropped = r.report.unsupported();
    dropped.sort();
    assert_eq!(
        dropped,
        vec![
            ("14".to_string(), "LoraLoader".to_string()),
            ("16".to_string(), "Note".to_string())
        ],
        "{:?}",
        r.report
    );
    assert_eq!(r.report.get("14").map(|e| e.why.len()), Some(1));
    let notes = r.report.text();
    assert!(notes.contains("batch_size 4"), "{notes}");
    assert!(notes.contains("randomize"), "{notes}");
    assert!(notes.contains("bypassed"), "{notes}");
    valid(g);
}

#[test]
fn unsupported_nodes_are_reported() {
    let r = load("controlnet_api.json");
    let g = &r.graph;
    let unsupported = r.report.unsupported();
    let ids: Vec<(&str, &str)> = unsupported
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    // The ControlNet is imported (engine/tests/interop_controlnet.rs checks it in detail).
    assert!(
        !ids.iter().any(|(i, _)| *i == "12" || *i == "10"),
        "{ids:?}"
    );
    assert_eq!(g.nodes["12"].kind, "ControlNet");
    assert_eq!(g.nodes["10"].kind, "LoadControlNet");
    // The KSampler is imported with the model's default scheduler: approximated, listed once
    // and not also as "not imported".
    assert!(!ids.iter().any(|(i, _)| *i == "3"), "{ids:?}");
    let ks = r.report.get("3").unwrap();
    assert_eq!(ks.outcome(), engine::interop::Outcome::Approximated);
    assert!(ks.why.iter().any(|w| w.contains("dpmpp_sde")), "{ks:?}");
    // The prompt is found through the ControlNetApply's conditioning, and that is said.
    assert_eq!(
        param(g, "3", "prompt"),
        t("a cracked ceramic tile, top view")
    );
    assert!(!g.nodes["3"].params.contains_key("scheduler"));
    assert!(r.report.text().contains("ControlNetApply"));
    assert!(g.meta.notes.contains("ControlNetApply"));
    valid(g);
}

#[test]
fn sampler_mapping() {
    assert_eq!(map_sampler("euler", "normal"), Ok("euler"));
    assert_eq!(map_sampler("euler_ancestral", "normal"), Ok("euler_a"));
    assert_eq!(map_sampler("ddim", "ddim_uniform"), Ok("ddim"));
    assert_eq!(map_sampler("dpmpp_2m", "karras"), Ok("dpmpp_2m_karras"));
    assert_eq!(map_sampler("dpmpp_2m", "normal"), Ok("dpmpp_2m"));
    assert_eq!(map_sampler("lms", "normal"), Ok("lms"));
    assert_eq!(map_sampler("uni_pc", "normal"), Ok("unipc"));
    assert!(map_sampler("euler", "karras").is_err());
    assert!(map_sampler("dpmpp_2m_sde", "karras").is_err());
    assert_eq!(widget_names("KSampler").unwrap().len(), 7);
}

#[test]
fn malformed_input_is_an_error() {
    assert!(import_workflow("[1,2]").is_err());
    assert!(import_workflow(r#"{"1": {"inputs": {}}}"#).is_err());
    assert!(import_workflow(r#"{"nodes": [{"type": "KSampler"}], "links": []}"#).is_err());
}
