//! ControlNet interop: ComfyUI workflows (real public files under
//! tests/fixtures/interop/controlnet-real, see its SOURCES.md) and A1111 infotexts with
//! ControlNet units (real ones too), imported node by node and validated; our `parameters` text
//! written and read back.

mod interop_common;

use engine::interop::a1111::{
    format_parameters, from_graph, parse_parameters, parse_unit, to_graph_with_report, ControlMode,
    GraphOptions,
};
use engine::interop::comfy::{import_workflow, widget_names};
use engine::interop::{ImportResult, Outcome};
use interop_common::*;
use nodes::{GraphDoc, Link, ModelRef, NodeDoc, ParamValue, PortRef};

fn fixture(name: &str) -> String {
    let path = manifest_dir().join("../tests/fixtures/interop").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn comfy(name: &str) -> ImportResult {
    import_workflow(&fixture(&format!("controlnet-real/{name}"))).unwrap()
}

fn f(v: f64) -> ParamValue {
    ParamValue::Float(v)
}

fn i(v: i64) -> ParamValue {
    ParamValue::Int(v)
}

/// The `why` of report entry `id`, joined.
fn why(r: &ImportResult, id: &str) -> String {
    r.report
        .get(id)
        .unwrap_or_else(|| panic!("no report entry {id}: {}", r.report.text()))
        .why
        .join(" | ")
}

fn outcome(r: &ImportResult, id: &str) -> Outcome {
    r.report
        .get(id)
        .unwrap_or_else(|| panic!("no report entry {id}: {}", r.report.text()))
        .outcome()
}

/// Every link into `(node, port)`.
fn sources(g: &GraphDoc, node: &str, port: &str) -> Vec<String> {
    g.links
        .iter()
        .filter(|l| l.to.node() == node && l.to.port() == port)
        .map(|l| l.from.node().to_string())
        .collect()
}

// ---------------------------------------------------------------- ComfyUI

#[test]
fn comfy_old_apply_becomes_a_controlnet_on_the_sampler() {
    // Xhswd/CUI: CLIPTextEncode → ControlNetApply (old) → KSampler; LoadImage straight in.
    let r = comfy("api_apply_old_placeholders.json");
    let g = &r.graph;
    assert_eq!(kind(g, "17"), "LoadControlNet");
    assert_eq!(
        param(g, "17", "controlnet"),
        t("CONTROLNET_MODEL_PLACEHOLDER")
    );
    assert_eq!(kind(g, "16"), "ControlNet");
    assert_eq!(param(g, "16", "strength"), f(1.0));
    assert!(linked(g, ("17", "controlnet"), ("16", "controlnet")));
    assert!(linked(g, ("18", "image"), ("16", "image")));
    assert!(linked(g, ("16", "control"), ("3", "control")));
    assert_eq!(sources(g, "16", "control"), Vec::<String>::new());
    // The prompt is still found through the apply node, which is not reported as dropped.
    assert_eq!(kind(g, "3"), "Txt2Img");
    assert_eq!(param(g, "3", "prompt"), t("POSITIVE_PLACEHOLDER"));
    assert_eq!(param(g, "3", "negative"), t("NEGATIVE_PLACEHOLDER"));
    assert_eq!(outcome(&r, "16"), Outcome::Approximated);
    assert!(
        why(&r, "16").contains("positive prompt only"),
        "{}",
        why(&r, "16")
    );
    assert_eq!(outcome(&r, "17"), Outcome::Imported);
    assert!(r.report.unsupported().is_empty(), "{}", r.report.text());
    valid(g);
}

#[test]
fn comfy_unknown_preprocessor_is_reported_not_dropped_silently() {
    // coltrosetech/inference-worker: SetUnionControlNetType and a controlnet_aux
    // AIO_Preprocessor between the image and ControlNetApplyAdvanced; img2img.
    let r = comfy("api_union_aio_img2img.json");
    let g = &r.graph;
    assert_eq!(kind(g, "sampler"), "Img2Img");
    assert_eq!(param(g, "sampler", "strength"), f(0.7));
    // Both prompts are found through ControlNetApplyAdvanced's two outputs.
    assert_eq!(param(g, "sampler", "prompt"), t(""));
    assert_eq!(
        param(g, "sampler", "negative"),
        t("blurry, low quality, distorted")
    );
    // The apply node cannot get its image: not imported, with the preprocessor named.
    assert!(!g.nodes.contains_key("cn_apply"));
    assert_eq!(outcome(&r, "cn_apply"), Outcome::NotImported);
    assert!(
        why(&r, "cn_apply").contains("AIO_Preprocessor"),
        "{}",
        why(&r, "cn_apply")
    );
    assert_eq!(outcome(&r, "preprocessor"), Outcome::NotImported);
    assert!(why(&r, "preprocessor").contains("preprocessor"));
    assert_eq!(outcome(&r, "cn_union_type"), Outcome::NotImported);
    assert!(sources(g, "sampler", "control").is_empty());
    assert!(r.is_usable());
    valid(g);
}

#[test]
fn comfy_canny_thresholds_move_to_our_scale() {
    // pwillia7/Basic_ComfyUI_Workflows: Canny 0.4/0.8 → ControlNetApplyAdvanced → a custom
    // sampler ("KSampler //Inspire") that has no equivalent.
    let r = comfy("ui_canny_advanced_custom_sampler.json");
    let g = &r.graph;
    assert_eq!(kind(g, "14"), "Canny");
    assert_eq!(param(g, "14", "low"), i(102));
    assert_eq!(param(g, "14", "high"), i(204));
    assert!(linked(g, ("15", "image"), ("14", "image")));
    let w = why(&r, "14");
    assert!(w.contains("0..255") && w.contains("102/204"), "{w}");
    // The preview of the edges is kept; the sampler and its ControlNet are reported.
    assert!(linked(g, ("14", "image"), ("17", "image")));
    assert_eq!(outcome(&r, "19"), Outcome::NotImported);
    assert_eq!(outcome(&r, "13"), Outcome::NotImported);
    assert_eq!(kind(g, "12"), "LoadControlNet");
    assert_eq!(
        param(g, "12", "controlnet"),
        t("diffusers_xl_canny_full.safetensors")
    );
    valid(g);
}

#[test]
fn comfy_ui_two_samplers_only_one_controlled() {
    // OhYee/fc-comfyui: the same prompts sampled with and without a lineart ControlNet.
    let r = comfy("ui_lineart_advanced_two_samplers.json");
    let g = &r.graph;
    assert_eq!(kind(g, "3"), "Txt2Img");
    assert_eq!(kind(g, "24"), "Txt2Img");
    assert_eq!(kind(g, "23"), "ControlNet");
    assert_eq!(param(g, "23", "strength"), f(1.0));
    assert_eq!(param(g, "23", "start"), f(0.0));
    assert_eq!(param(g, "23", "end"), f(1.0));
    assert_eq!(sources(g, "3", "control"), vec!["23".to_string()]);
    assert!(sources(g, "24", "control").is_empty());
    assert!(linked(g, ("16", "controlnet"), ("23", "controlnet")));
    assert!(linked(g, ("12", "image"), ("23", "image")));
    for ks in ["3", "24"] {
        assert_eq!(param(g, ks, "prompt"), t("1 girl"));
        assert_eq!(param(g, ks, "negative"), t("nsfw"));
    }
    // Both outputs of the advanced node feed the sampler: imported as it is.
    assert_eq!(outcome(&r, "23"), Outcome::Imported, "{}", r.report.text());
    // The .pth name is noted (pickles are never loaded).
    assert!(why(&r, "16").contains("pickle"), "{}", why(&r, "16"));
    assert_eq!(
        param(g, "16", "controlnet"),
        t("control_v11p_sd15_lineart.pth")
    );
    valid(g);
}

/// A chain of two apply nodes (advanced, then old) with a CannyEdgePreprocessor, shared by two
/// samplers.
const CHAIN: &str = r#"{
 "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15.safetensors"}},
 "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a dent", "clip": ["1", 1]}},
 "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "blur", "clip": ["1", 1]}},
 "4": {"class_type": "ControlNetLoader", "inputs": {"control_net_name": "canny.safetensors"}},
 "5": {"class_type": "DiffControlNetLoader", "inputs": {"control_net_name": "depth.safetensors", "model": ["1", 0]}},
 "6": {"class_type": "LoadImage", "inputs": {"image": "part.png"}},
 "7": {"class_type": "CannyEdgePreprocessor", "inputs": {"image": ["6", 0], "low_threshold": 50, "high_threshold": 150, "resolution": 512}},
 "8": {"class_type": "ControlNetApplyAdvanced", "inputs": {"positive": ["2", 0], "negative": ["3", 0], "control_net": ["4", 0], "image": ["7", 0], "strength": 0.6, "start_percent": 0.2, "end_percent": 0.8}},
 "9": {"class_type": "ControlNetApply", "inputs": {"conditioning": ["8", 0], "control_net": ["5", 0], "image": ["6", 0], "strength": 1.5}},
 "10": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
 "11": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 20, "cfg": 7, "sampler_name": "euler", "scheduler": "normal", "denoise": 1, "model": ["1", 0], "positive": ["9", 0], "negative": ["8", 1], "latent_image": ["10", 0]}},
 "12": {"class_type": "VAEDecode", "inputs": {"samples": ["11", 0], "vae": ["1", 2]}},
 "13": {"class_type": "SaveImage", "inputs": {"filename_prefix": "a", "images": ["12", 0]}},
 "14": {"class_type": "KSampler", "inputs": {"seed": 2, "steps": 20, "cfg": 7, "sampler_name": "euler", "scheduler": "normal", "denoise": 1, "model": ["1", 0], "positive": ["8", 0], "negative": ["8", 1], "latent_image": ["10", 0]}},
 "15": {"class_type": "VAEDecode", "inputs": {"samples": ["14", 0], "vae": ["1", 2]}},
 "16": {"class_type": "SaveImage", "inputs": {"filename_prefix": "b", "images": ["15", 0]}}
}"#;

#[test]
fn comfy_apply_chains_become_chained_controlnets_in_order() {
    let r = import_workflow(CHAIN).unwrap();
    let g = &r.graph;
    // First applied (8) first: 8 → 9 → sampler 11; sampler 14 takes 8 alone.
    assert_eq!(sources(g, "9", "control"), vec!["8".to_string()]);
    assert_eq!(sources(g, "11", "control"), vec!["9".to_string()]);
    assert_eq!(sources(g, "14", "control"), vec!["8".to_string()]);
    assert!(sources(g, "8", "control").is_empty());
    assert_eq!(param(g, "8", "strength"), f(0.6));
    assert_eq!(param(g, "8", "start"), f(0.2));
    assert_eq!(param(g, "8", "end"), f(0.8));
    assert_eq!(param(g, "9", "strength"), f(1.5));
    assert!(why(&r, "8").contains("sigma schedule"), "{}", why(&r, "8"));
    // controlnet_aux's Canny has OpenCV's scale already.
    assert_eq!(kind(g, "7"), "Canny");
    assert_eq!(param(g, "7", "low"), i(50));
    assert_eq!(param(g, "7", "high"), i(150));
    assert!(why(&r, "7").contains("512"));
    assert!(linked(g, ("7", "image"), ("8", "image")));
    assert!(linked(g, ("6", "image"), ("9", "image")));
    assert!(linked(g, ("5", "controlnet"), ("9", "controlnet")));
    assert!(why(&r, "5").contains("difference ControlNet"));
    // The prompts come through both kinds of apply node.
    assert_eq!(param(g, "11", "prompt"), t("a dent"));
    assert_eq!(param(g, "11", "negative"), t("blur"));
    assert_eq!(param(g, "14", "prompt"), t("a dent"));
    valid(g);
}

/// ComfyUI-Advanced-ControlNet's apply nodes (v1 and v2) and loader, with the inputs the real
/// workflows found with the code search use (`model_optional` on a v1 apply, `mask_optional`
/// on a v2 apply, `ControlNetLoaderAdvanced` with only `control_net_name`; search-index files
/// 8943069483 and 67605996091), chained on one sampler.
const ACN: &str = r#"{
 "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15.safetensors"}},
 "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a scratch", "clip": ["1", 1]}},
 "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "blur", "clip": ["1", 1]}},
 "4": {"class_type": "ControlNetLoaderAdvanced", "inputs": {"control_net_name": "control_v11p_sd15_canny.safetensors"}},
 "5": {"class_type": "LoadImage", "inputs": {"image": "part.png", "upload": "image"}},
 "6": {"class_type": "LoadImageMask", "inputs": {"image": "roi.png", "channel": "red"}},
 "7": {"class_type": "ACN_AdvancedControlNetApply", "inputs": {"strength": 0.5, "start_percent": 0, "end_percent": 0.5, "positive": ["2", 0], "negative": ["3", 0], "control_net": ["4", 0], "image": ["5", 0], "model_optional": ["1", 0]}},
 "8": {"class_type": "ACN_AdvancedControlNetApply_v2", "inputs": {"positive": ["7", 0], "negative": ["7", 1], "control_net": ["4", 0], "image": ["5", 0], "strength": 0.75, "start_percent": 0, "end_percent": 1, "mask_optional": ["6", 0]}},
 "9": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
 "10": {"class_type": "KSampler", "inputs": {"seed": 5, "steps": 20, "cfg": 7, "sampler_name": "euler", "scheduler": "normal", "denoise": 1, "model": ["1", 0], "positive": ["8", 0], "negative": ["8", 1], "latent_image": ["9", 0]}},
 "11": {"class_type": "VAEDecode", "inputs": {"samples": ["10", 0], "vae": ["1", 2]}},
 "12": {"class_type": "SaveImage", "inputs": {"filename_prefix": "acn", "images": ["11", 0]}}
}"#;

#[test]
fn comfy_advanced_controlnet_nodes_become_chained_controlnets() {
    let r = import_workflow(ACN).unwrap();
    let g = &r.graph;
    assert_eq!(kind(g, "4"), "LoadControlNet");
    assert_eq!(
        param(g, "4", "controlnet"),
        t("control_v11p_sd15_canny.safetensors")
    );
    assert_eq!(kind(g, "7"), "ControlNet");
    assert_eq!(kind(g, "8"), "ControlNet");
    // Applied first (7) first: 7 → 8 → the sampler.
    assert_eq!(sources(g, "8", "control"), vec!["7".to_string()]);
    assert_eq!(sources(g, "10", "control"), vec!["8".to_string()]);
    assert_eq!(param(g, "7", "strength"), f(0.5));
    assert_eq!(param(g, "7", "start"), f(0.0));
    assert_eq!(param(g, "7", "end"), f(0.5));
    assert_eq!(param(g, "8", "strength"), f(0.75));
    assert!(linked(g, ("4", "controlnet"), ("7", "controlnet")));
    assert!(linked(g, ("4", "controlnet"), ("8", "controlnet")));
    assert!(linked(g, ("5", "image"), ("8", "image")));
    // What has no equivalent is said on the node that had it.
    assert!(why(&r, "7").contains("model_optional"), "{}", why(&r, "7"));
    assert!(why(&r, "8").contains("mask_optional"), "{}", why(&r, "8"));
    assert!(!why(&r, "8").contains("model_optional"), "{}", why(&r, "8"));
    // The prompts come through both apply nodes.
    assert_eq!(param(g, "10", "prompt"), t("a scratch"));
    assert_eq!(param(g, "10", "negative"), t("blur"));
    valid(g);
}

#[test]
fn comfy_widget_order_of_the_controlnet_nodes() {
    assert_eq!(
        widget_names("ControlNetApplyAdvanced"),
        Some(&["strength", "start_percent", "end_percent"][..])
    );
    assert_eq!(widget_names("ControlNetApply"), Some(&["strength"][..]));
    assert_eq!(
        widget_names("Canny"),
        Some(&["low_threshold", "high_threshold"][..])
    );
    assert_eq!(
        widget_names("ControlNetLoader"),
        Some(&["control_net_name"][..])
    );
    // ComfyUI-Advanced-ControlNet's, as its UI files store them (widgets_values [1, 0, 1] in
    // search-index file 9401436218).
    for class in [
        "ACN_AdvancedControlNetApply",
        "ACN_AdvancedControlNetApply_v2",
    ] {
        assert_eq!(
            widget_names(class),
            Some(&["strength", "start_percent", "end_percent"][..])
        );
    }
    assert_eq!(
        widget_names("ControlNetLoaderAdvanced"),
        Some(&["control_net_name"][..])
    );
}

#[test]
fn comfy_older_fixture_now_imports_its_controlnet() {
    let r = import_workflow(&fixture("controlnet_api.json")).unwrap();
    let g = &r.graph;
    assert_eq!(kind(g, "12"), "ControlNet");
    assert_eq!(param(g, "12", "strength"), f(0.9));
    assert!(linked(g, ("12", "control"), ("3", "control")));
    assert!(linked(g, ("10", "controlnet"), ("12", "controlnet")));
    valid(g);
}

// ---------------------------------------------------------------- A1111

fn a1111(name: &str) -> ImportResult {
    let p = parse_parameters(&fixture(name)).unwrap();
    to_graph_with_report(&p, &GraphOptions::default())
}

#[test]
fn a1111_canny_and_softedge_units() {
    // ctpemho7/DetectionPalletDefects: canny (192/255, "ControlNet is more important") and
    // softedge_pidinet, A1111 1.10.1.
    let text = fixture("controlnet-real/a1111_canny_softedge_pallets.txt");
    let p = parse_parameters(&text).unwrap();
    let units = p.controlnets().unwrap();
    assert_eq!(units.len(), 2);
    let u = &units[0];
    assert_eq!((u.index, u.module.as_str()), (0, "canny"));
    assert_eq!(u.model, "control_v11p_sd15_canny");
    assert_eq!(u.model_hash.as_deref(), Some("d14c016b"));
    assert_eq!(
        (u.weight, u.guidance_start, u.guidance_end),
        (1.0, 0.0, 1.0)
    );
    assert_eq!((u.threshold_a, u.threshold_b), (Some(192.0), Some(255.0)));
    assert_eq!(u.processor_res, Some(512.0));
    assert_eq!(u.resize_mode.as_deref(), Some("Crop and Resize"));
    assert_eq!(u.control_mode, ControlMode::ControlNetMoreImportant);
    assert_eq!(units[1].module, "softedge_pidinet");
    assert_eq!(units[1].control_mode, ControlMode::Balanced);
    // The text reads back byte for byte (the units stay as written).
    assert_eq!(format_parameters(&p), text);

    let r = to_graph_with_report(&p, &GraphOptions::default());
    let g = &r.graph;
    assert_eq!(kind(g, "cn0_model"), "LoadControlNet");
    assert_eq!(
        param(g, "cn0_model", "controlnet"),
        t("control_v11p_sd15_canny.safetensors")
    );
    assert_eq!(param(g, "cn0_image", "source"), t(""));
    assert_eq!(param(g, "cn0_canny", "low"), i(192));
    assert_eq!(param(g, "cn0_canny", "high"), i(255));
    assert_eq!(param(g, "cn0", "guess_mode"), ParamValue::Bool(true));
    assert_eq!(param(g, "cn0", "strength"), f(1.0));
    assert!(linked(g, ("cn0_canny", "image"), ("cn0", "image")));
    assert!(linked(g, ("cn0", "control"), ("cn1", "control")));
    assert!(linked(g, ("cn1", "control"), ("txt2img", "control")));
    assert!(linked(g, ("cn1_image", "image"), ("cn1", "image")));
    assert!(!g.nodes.contains_key("cn1_canny"));
    assert_eq!(param(g, "cn1", "guess_mode"), ParamValue::Bool(false));
    assert_eq!(outcome(&r, "ControlNet 0"), Outcome::Approximated);
    assert!(why(&r, "ControlNet 0").contains("guess_mode"));
    assert!(why(&r, "ControlNet 0").contains("d14c016b"));
    assert!(why(&r, "ControlNet 1").contains("softedge_pidinet is not supported"));
    assert!(r
        .report
        .notes
        .iter()
        .any(|n| n.starts_with("missing input") && n.contains("cn0_image")));
    assert!(!r
        .report
        .notes
        .iter()
        .any(|n| n.contains("not carried over: ControlNet")));
    valid(g);
}

#[test]
fn a1111_older_single_unit_spelling_with_hires_fix() {
    // A1111 1.6 with extension 1.1.2xx: `ControlNet: "preprocessor: …, starting/ending: (0, 1),
    // …, preprocessor params: (512, 1, 64)"`, and hires fix.
    let p = parse_parameters(&fixture("controlnet-real/a1111_old_single_unit_tile.txt")).unwrap();
    let units = p.controlnets().unwrap();
    assert_eq!(units.len(), 1);
    let u = &units[0];
    assert_eq!(u.keys, vec!["ControlNet".to_string()]);
    assert_eq!(u.module, "tile_resample");
    assert_eq!(u.model, "control_v11f1e_sd15_tile");
    assert_eq!(u.model_hash.as_deref(), Some("a371b31b"));
    assert_eq!((u.guidance_start, u.guidance_end), (0.0, 1.0));
    assert_eq!(
        (u.processor_res, u.threshold_a, u.threshold_b),
        (Some(512.0), Some(1.0), Some(64.0))
    );
    assert_eq!(u.pixel_perfect, Some(false));
    let r = to_graph_with_report(&p, &GraphOptions::default());
    let g = &r.graph;
    // Hr Option unset = both passes.
    assert!(linked(g, ("cn0", "control"), ("txt2img", "control")));
    assert!(linked(g, ("cn0", "control"), ("hires", "control")));
    assert!(why(&r, "ControlNet").contains("tile_resample"));
    valid(g);
}

#[test]
fn a1111_first_spelling_one_key_per_field_on_an_inpaint() {
    // Early 2023: `ControlNet-0 Enabled: True, ControlNet-0 Module: canny, …`, two units, with
    // Denoising strength + Mask blur (an inpaint recipe).
    let p = parse_parameters(&fixture("controlnet-real/a1111_dash_form_canny_normal.txt")).unwrap();
    let units = p.controlnets().unwrap();
    assert_eq!(units.len(), 2);
    assert_eq!(units[0].module, "canny");
    assert_eq!(units[0].model, "control_canny-fp16");
    assert_eq!(units[0].weight, 0.5);
    assert_eq!(units[0].keys.len(), 6);
    assert_eq!(units[1].module, "normal_map");
    assert!(units[0].other.is_empty(), "{:?}", units[0].other);
    let r = to_graph_with_report(&p, &GraphOptions::default());
    let g = &r.graph;
    assert_eq!(kind(g, "inpaint"), "Inpaint");
    // No thresholds in the text: the extension's defaults 100/200.
    assert_eq!(param(g, "cn0_canny", "low"), i(100));
    assert_eq!(param(g, "cn0_canny", "high"), i(200));
    assert_eq!(param(g, "cn0", "strength"), f(0.5));
    assert!(linked(g, ("cn1", "control"), ("inpaint", "control")));
    // Every key of the units is accounted for once.
    assert_eq!(outcome(&r, "ControlNet-0 Weight"), Outcome::Imported);
    assert!(!r
        .report
        .notes
        .iter()
        .any(|n| n.contains("not carried over: ControlNet")));
    valid(g);
}

#[test]
fn a1111_existing_real_fixtures_with_controlnet() {
    // tests/fixtures/interop/a1111-real: lineart (txt2img) and scribble (inpaint).
    let r = a1111("a1111-real/02-controlnet-lineart.txt");
    assert_eq!(kind(&r.graph, "cn0"), "ControlNet");
    assert!(linked(&r.graph, ("cn0", "control"), ("txt2img", "control")));
    assert!(why(&r, "ControlNet 0").contains("lineart_standard"));
    valid(&r.graph);
    let r = a1111("a1111-real/03-adetailer-controlnet-scribble.txt");
    assert!(linked(&r.graph, ("cn0", "control"), ("inpaint", "control")));
    assert_eq!(
        param(&r.graph, "cn0_model", "controlnet"),
        t("control_v11p_sd15_scribble.safetensors")
    );
    valid(&r.graph);
}

#[test]
fn a1111_inpaint_module_uses_the_inpaint_image_and_mask() {
    let text = "a dent\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, \
                Denoising strength: 0.75, Mask blur: 4, ControlNet 0: \"Module: \
                inpaint_global_harmonious, Model: control_v11p_sd15_inpaint [ebff9138], Weight: \
                1, Guidance Start: 0, Guidance End: 1, Control Mode: My prompt is more \
                important\"";
    let p = parse_parameters(text).unwrap();
    let r = to_graph_with_report(&p, &GraphOptions::default());
    let g = &r.graph;
    assert!(linked(g, ("image", "image"), ("cn0", "image")));
    assert!(linked(g, ("mask", "mask"), ("cn0", "mask")));
    assert!(!g.nodes.contains_key("cn0_image"));
    // "My prompt is more important" has no diffusers equivalent: Balanced, reported.
    assert_eq!(param(g, "cn0", "guess_mode"), ParamValue::Bool(false));
    assert!(why(&r, "ControlNet 0").contains("My prompt is more important"));
    valid(g);
}

#[test]
fn a1111_unit_errors_and_empty_units() {
    let e = parse_unit("ControlNet 0", "Module: canny, Weight: heavy").unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("ControlNet 0") && msg.contains("Weight: heavy"),
        "{msg}"
    );
    let e = parse_unit("ControlNet 1", "Module: canny, Control Mode: Loud").unwrap_err();
    assert!(e.to_string().contains("Control Mode"), "{e}");
    // Numbers for the modes (the extension's API).
    let u = parse_unit("ControlNet 0", "Module: none, Model: m, Control Mode: 2").unwrap();
    assert_eq!(u.control_mode, ControlMode::ControlNetMoreImportant);
    assert_eq!(
        ControlMode::parse("1"),
        Some(ControlMode::PromptMoreImportant)
    );
    // An empty unit (Model: None) and a bad one are reported, not imported, and the recipe
    // still validates.
    let text = "x\nSteps: 20, Sampler: Euler, Seed: 1, Size: 512x512, ControlNet 0: \"Module: \
                none, Model: None, Weight: 1\"";
    let r = to_graph_with_report(&parse_parameters(text).unwrap(), &GraphOptions::default());
    assert_eq!(outcome(&r, "ControlNet 0"), Outcome::NotImported);
    assert!(!r.graph.nodes.contains_key("cn0"));
    valid(&r.graph);
    let text = "x\nSteps: 20, Sampler: Euler, Seed: 1, Size: 512x512, ControlNet 0: \"Module: \
                canny, Model: c, Weight: lots\"";
    let r = to_graph_with_report(&parse_parameters(text).unwrap(), &GraphOptions::default());
    assert_eq!(outcome(&r, "ControlNet 0"), Outcome::NotImported);
    assert!(why(&r, "ControlNet 0").contains("Weight: lots"));
    valid(&r.graph);
}

/// Adds node `id` of `kind` (at the catalogue's version) with `params`.
fn add(g: &mut GraphDoc, id: &str, kind: &str, params: Vec<(&str, ParamValue)>) {
    let version = engine::interop::catalogue().get(kind).unwrap().version;
    g.nodes.insert(
        id.into(),
        NodeDoc {
            kind: kind.into(),
            version,
            params: params
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            param_inputs: Default::default(),
            subgraph: None,
        },
    );
}

fn link(g: &mut GraphDoc, from: (&str, &str), to: (&str, &str)) {
    g.links.push(Link {
        from: PortRef(from.0.into(), from.1.into()),
        to: PortRef(to.0.into(), to.1.into()),
    });
}

/// Our recipe: a checkpoint, a Canny-fed ControlNet chained into a plain one, a Txt2Img.
fn our_recipe() -> GraphDoc {
    let mut g = GraphDoc::new();
    add(
        &mut g,
        "ck",
        "LoadCheckpoint",
        vec![("checkpoint", t("models/sd15.safetensors"))],
    );
    add(
        &mut g,
        "net_a",
        "LoadControlNet",
        vec![("controlnet", t("nets/control_v11p_sd15_canny.safetensors"))],
    );
    add(
        &mut g,
        "net_b",
        "LoadControlNet",
        vec![("controlnet", t("control_v11p_sd15_scribble.safetensors"))],
    );
    add(
        &mut g,
        "photo",
        "LoadImage",
        vec![("source", t("part.png"))],
    );
    add(
        &mut g,
        "edges",
        "Canny",
        vec![("low", i(60)), ("high", i(180))],
    );
    add(
        &mut g,
        "a",
        "ControlNet",
        vec![
            ("strength", f(0.75)),
            ("start", f(0.1)),
            ("end", f(0.9)),
            ("guess_mode", ParamValue::Bool(true)),
        ],
    );
    add(
        &mut g,
        "b",
        "ControlNet",
        vec![
            ("strength", f(1.25)),
            ("start", f(0.0)),
            ("end", f(0.5)),
            ("guess_mode", ParamValue::Bool(false)),
        ],
    );
    add(
        &mut g,
        "gen",
        "Txt2Img",
        vec![
            ("prompt", t("a scratch")),
            ("steps", i(20)),
            ("cfg", f(7.0)),
            ("width", i(512)),
            ("height", i(512)),
        ],
    );
    link(&mut g, ("ck", "model"), ("gen", "model"));
    link(&mut g, ("net_a", "controlnet"), ("a", "controlnet"));
    link(&mut g, ("photo", "image"), ("edges", "image"));
    link(&mut g, ("edges", "image"), ("a", "image"));
    link(&mut g, ("net_b", "controlnet"), ("b", "controlnet"));
    link(&mut g, ("photo", "image"), ("b", "image"));
    link(&mut g, ("a", "control"), ("b", "control"));
    link(&mut g, ("b", "control"), ("gen", "control"));
    g.models.push(ModelRef {
        name: "control_v11p_sd15_canny.safetensors".into(),
        sha256: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into(),
        arch: "controlnet".into(),
    });
    nodes::validate(&g, &engine::interop::catalogue()).unwrap();
    g
}

#[test]
fn a1111_round_trip_of_our_controlnets() {
    let g = our_recipe();
    let p = from_graph(&g, 7).unwrap();
    let text = format_parameters(&p);
    assert!(
        text.contains(
            "ControlNet 0: \"Module: canny, Model: control_v11p_sd15_canny [0123456789], \
             Weight: 0.75, Resize Mode: Just Resize, Threshold A: 60, Threshold B: 180, Guidance \
             Start: 0.1, Guidance End: 0.9, Control Mode: ControlNet is more important\""
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "ControlNet 1: \"Module: none, Model: control_v11p_sd15_scribble, Weight: 1.25,"
        ),
        "{text}"
    );
    // Read back: the same values.
    let back = parse_parameters(&text).unwrap();
    let units = back.controlnets().unwrap();
    assert_eq!(units.len(), 2);
    let (a, b) = (&units[0], &units[1]);
    assert_eq!(
        (a.weight, a.guidance_start, a.guidance_end),
        (0.75, 0.1, 0.9)
    );
    assert_eq!((a.threshold_a, a.threshold_b), (Some(60.0), Some(180.0)));
    assert_eq!(a.control_mode, ControlMode::ControlNetMoreImportant);
    assert_eq!(a.model_hash.as_deref(), Some("0123456789"));
    assert_eq!(
        (b.weight, b.guidance_start, b.guidance_end),
        (1.25, 0.0, 0.5)
    );
    assert_eq!(b.control_mode, ControlMode::Balanced);
    assert_eq!(b.model_hash, None);
    // And into a recipe again: the same node parameters.
    let r = to_graph_with_report(&back, &GraphOptions::default());
    let h = &r.graph;
    for (ours, theirs) in [("a", "cn0"), ("b", "cn1")] {
        for k in ["strength", "start", "end", "guess_mode"] {
            assert_eq!(param(h, theirs, k), param(&g, ours, k), "{theirs}.{k}");
        }
    }
    assert_eq!(param(h, "cn0_canny", "low"), i(60));
    assert_eq!(param(h, "cn0_canny", "high"), i(180));
    assert_eq!(
        param(h, "cn0_model", "controlnet"),
        t("control_v11p_sd15_canny.safetensors")
    );
    assert!(linked(h, ("cn0", "control"), ("cn1", "control")));
    assert!(linked(h, ("cn1", "control"), ("txt2img", "control")));
    valid(h);
    // A recipe without ControlNets writes no unit.
    let mut plain = g.clone();
    plain.links.retain(|l| l.to.port() != "control");
    let text = format_parameters(&from_graph(&plain, 7).unwrap());
    assert!(!text.contains("ControlNet"), "{text}");
}
