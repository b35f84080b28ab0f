//! A1111 infotext: parsing, writing back, sampler mapping and recipes built from it.

mod interop_common;

use engine::interop::a1111::{
    format_parameters, from_graph, map_sampler, parse_parameters, procedural_parameters, to_graph,
    to_graph_with_report, GraphOptions, LoraTag,
};
use engine::interop::Outcome;
use interop_common::*;
use nodes::{ParamValue, SeedValue};

const BASIC: &str = "a photo of a scratched aluminium panel, macro, sharp focus
Negative prompt: blurry, lowres, watermark
Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 1234567890, Size: 512x512, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Version: v1.6.0";

const NO_NEGATIVE: &str = "industrial photo of a dented steel can
Steps: 30, Sampler: Euler a, CFG scale: 7.5, Seed: 42, Size: 768x512, Model hash: e6bb9ea85b, Model: sd_xl_base_1.0, Clip skip: 2, Version: v1.7.0";

const MULTILINE: &str = "masterpiece, best quality,
close-up of a cracked ceramic tile,
(hairline crack:1.3)
Negative prompt: lowres,
bad anatomy
Steps: 25, Sampler: DDIM, CFG scale: 6, Seed: 3, Size: 512x768, Model: v1-5";

const LORAS: &str = "rusty pipe <lora:rust_stain:0.8>, photo, <lora:scratch_v2:0.6:0.9>
Negative prompt: cartoon
Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 5, Seed: 987654321, Size: 640x448, Model hash: 463d6a9fe8, Model: dreamshaper_8, Lora hashes: \"rust_stain: 1a2b3c4d5e6f, scratch_v2: abcdef123456\", Version: v1.10.1";

const HIRES: &str = "a scratched phone screen, studio photo
Negative prompt: text
Steps: 20, Sampler: Euler, CFG scale: 7, Seed: 5, Size: 512x512, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Denoising strength: 0.55, Hires upscale: 2, Hires steps: 10, Hires upscaler: Latent, Version: v1.6.0";

const IMG2IMG: &str = "a dented car door, photo
Steps: 30, Sampler: UniPC, CFG scale: 7, Seed: 77, Size: 512x512, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Denoising strength: 0.6, Version: v1.6.0";

const INPAINT: &str = "a deep scratch
Negative prompt: blurry
Steps: 30, Sampler: LMS, CFG scale: 7, Seed: 11, Size: 512x512, Model hash: c6bbc15e32, Model: sd-v1-5-inpainting, Denoising strength: 0.75, Mask blur: 4, Inpaint area: Only masked, Masked area padding: 32, RNG: CPU, Version: v1.6.0";

const QUOTED: &str = "a stain on fabric
Steps: 20, Sampler: DPM++ SDE Karras, CFG scale: 7, Seed: 100, Size: 512x512, Model: realisticVision, VAE hash: 735e4c3a44, VAE: vae-ft-mse-840000-ema-pruned.safetensors, ADetailer prompt: \"detailed, sharp\", TI hashes: \"easynegative: c74b4e810b03\", Version: v1.6.0";

const ALL: &[&str] = &[
    BASIC,
    NO_NEGATIVE,
    MULTILINE,
    LORAS,
    HIRES,
    IMG2IMG,
    INPAINT,
    QUOTED,
];

#[test]
fn basic_fields() {
    let p = parse_parameters(BASIC).unwrap();
    assert_eq!(
        p.prompt,
        "a photo of a scratched aluminium panel, macro, sharp focus"
    );
    assert_eq!(p.negative.as_deref(), Some("blurry, lowres, watermark"));
    assert_eq!(p.steps, Some(20));
    assert_eq!(p.sampler.as_deref(), Some("DPM++ 2M Karras"));
    assert_eq!(p.cfg_scale, Some(7.0));
    assert_eq!(p.seed, Some(1234567890));
    assert_eq!(p.size, Some((512, 512)));
    assert_eq!(p.model_hash.as_deref(), Some("6ce0161689"));
    assert_eq!(p.model.as_deref(), Some("v1-5-pruned-emaonly"));
    assert_eq!(p.extra, vec![("Version".to_string(), "v1.6.0".to_string())]);
    assert_eq!(p.scheduler(), Some(Ok("dpmpp_2m_karras")));
}

#[test]
fn without_negative() {
    let p = parse_parameters(NO_NEGATIVE).unwrap();
    assert_eq!(p.negative, None);
    assert_eq!(p.cfg_scale, Some(7.5));
    assert_eq!(p.clip_skip, Some(2));
    assert_eq!(p.size, Some((768, 512)));
    assert_eq!(p.scheduler(), Some(Ok("euler_a")));
}

#[test]
fn multi_line_prompt_and_negative() {
    let p = parse_parameters(MULTILINE).unwrap();
    assert_eq!(
        p.prompt,
        "masterpiece, best quality,\nclose-up of a cracked ceramic tile,\n(hairline crack:1.3)"
    );
    assert_eq!(p.negative.as_deref(), Some("lowres,\nbad anatomy"));
    assert_eq!(p.scheduler(), Some(Ok("ddim")));
}

#[test]
fn lora_tags_and_hashes() {
    let p = parse_parameters(LORAS).unwrap();
    // The tags are cut out as A1111 cuts them; the separators stay (they are tokens too).
    assert_eq!(p.prompt, "rusty pipe , photo, ");
    assert_eq!(
        p.loras,
        vec![
            LoraTag {
                name: "rust_stain".into(),
                te: 0.8,
                unet: 0.8
            },
            LoraTag {
                name: "scratch_v2".into(),
                te: 0.6,
                unet: 0.9
            },
        ]
    );
    assert_eq!(
        p.lora_hashes,
        vec![
            ("rust_stain".to_string(), "1a2b3c4d5e6f".to_string()),
            ("scratch_v2".to_string(), "abcdef123456".to_string()),
        ]
    );
    assert_eq!(p.schedule_type.as_deref(), Some("Karras"));
    assert_eq!(p.scheduler(), Some(Ok("dpmpp_2m_karras")));

    let r = to_graph_with_report(
        &p,
        &GraphOptions {
            checkpoint_hint: Some("dreamshaper_8.safetensors"),
            ..GraphOptions::default()
        },
    );
    let g = &r.graph;
    assert_eq!(
        param(g, "checkpoint", "checkpoint"),
        t("dreamshaper_8.safetensors")
    );
    assert_eq!(param(g, "lora1", "lora"), t("rust_stain.safetensors"));
    assert_eq!(param(g, "lora1", "strength"), ParamValue::Float(0.8));
    assert_eq!(param(g, "lora2", "lora"), t("scratch_v2.safetensors"));
    assert_eq!(param(g, "lora2", "strength"), ParamValue::Float(0.9));
    assert_eq!(param(g, "lora2", "text_strength"), ParamValue::Float(0.6));
    assert!(linked(g, ("checkpoint", "model"), ("lora1", "model")));
    assert!(linked(g, ("lora1", "model"), ("lora2", "model")));
    assert!(linked(g, ("lora2", "model"), ("txt2img", "model")));
    assert_eq!(param(g, "txt2img", "prompt"), t("rusty pipe , photo, "));
    assert_eq!(param(g, "txt2img", "width"), ParamValue::Int(640));
    assert_eq!(param(g, "txt2img", "height"), ParamValue::Int(448));
    valid(g);
}

#[test]
fn quoted_values_and_unsupported_sampler() {
    let p = parse_parameters(QUOTED).unwrap();
    assert_eq!(p.extra("ADetailer prompt"), Some("detailed, sharp"));
    assert_eq!(p.extra("TI hashes"), Some("easynegative: c74b4e810b03"));
    assert_eq!(
        p.vae.as_deref(),
        Some("vae-ft-mse-840000-ema-pruned.safetensors")
    );
    assert!(matches!(p.scheduler(), Some(Err(_))));
    let r = to_graph_with_report(&p, &GraphOptions::default());
    // The sampler node is imported with the model's default scheduler: approximated, once.
    let sampler = r.report.get("Sampler").expect("a Sampler entry");
    assert_eq!(sampler.kind, "DPM++ SDE Karras");
    assert_eq!(sampler.outcome(), engine::interop::Outcome::Approximated);
    assert!(!r.graph.nodes["txt2img"].params.contains_key("scheduler"));
    assert_eq!(
        param(&r.graph, "checkpoint", "vae"),
        t("vae-ft-mse-840000-ema-pruned.safetensors")
    );
    assert!(r
        .report
        .notes
        .iter()
        .any(|n| n.contains("ADetailer prompt")));
    valid(&r.graph);
}

#[test]
fn format_round_trips() {
    for s in ALL {
        let p = parse_parameters(s).unwrap();
        assert_eq!(format_parameters(&p), *s);
        assert_eq!(parse_parameters(&format_parameters(&p)).unwrap(), p);
    }
}

#[test]
fn format_from_scratch_parses_back() {
    let mut p = parse_parameters(LORAS).unwrap();
    p.raw_prompt.clear(); // Forces the prompt to be rebuilt from the cleaned text and the tags.
    p.loras[0].unet = 1.2;
    let text = format_parameters(&p);
    // The tags follow the prompt directly, as A1111 appends them, so the prompt the text
    // encoder sees is unchanged.
    assert!(
        text.starts_with(
            "rusty pipe , photo, <lora:rust_stain:0.8:1.2><lora:scratch_v2:0.6:0.9>\n"
        ),
        "{text}"
    );
    let q = parse_parameters(&text).unwrap();
    assert_eq!(q.loras, p.loras);
    assert_eq!(q.prompt, p.prompt);
    assert_eq!(q.lora_hashes, p.lora_hashes);
}

#[test]
fn txt2img_graph() {
    let p = parse_parameters(BASIC).unwrap();
    let g = to_graph(&p, None, "init.png");
    assert_eq!(g.nodes.len(), 3);
    assert_eq!(g.nodes["checkpoint"].kind, "LoadCheckpoint");
    assert_eq!(
        param(&g, "checkpoint", "checkpoint"),
        t("v1-5-pruned-emaonly.safetensors")
    );
    assert_eq!(g.nodes["txt2img"].kind, "Txt2Img");
    assert_eq!(param(&g, "txt2img", "steps"), ParamValue::Int(20));
    assert_eq!(param(&g, "txt2img", "cfg"), ParamValue::Float(7.0));
    assert_eq!(param(&g, "txt2img", "scheduler"), t("dpmpp_2m_karras"));
    assert_eq!(
        param(&g, "txt2img", "seed"),
        ParamValue::Seed(SeedValue::Fixed { value: 1234567890 })
    );
    assert_eq!(
        param(&g, "txt2img", "negative"),
        t("blurry, lowres, watermark")
    );
    assert_eq!(
        param(&g, "txt2img", "prompt_weighting"),
        ParamValue::Bool(true)
    );
    assert_eq!(g.nodes["save"].kind, "SaveImage");
    assert!(linked(&g, ("txt2img", "image"), ("save", "image")));
    // The GPU-noise caveat is written into the recipe.
    assert!(g.meta.notes.contains("GPU"));
    valid(&g);
}

#[test]
fn img2img_graph_uses_the_given_image() {
    let p = parse_parameters(IMG2IMG).unwrap();
    assert_eq!(p.denoising_strength, Some(0.6));
    let g = to_graph(&p, Some("sd15.safetensors"), "photos/door.png");
    assert_eq!(g.nodes["img2img"].kind, "Img2Img");
    assert_eq!(param(&g, "img2img", "strength"), ParamValue::Float(0.6));
    assert_eq!(param(&g, "img2img", "scheduler"), t("unipc"));
    assert_eq!(g.nodes["image"].kind, "LoadImage");
    assert_eq!(param(&g, "image", "source"), t("photos/door.png"));
    assert!(linked(&g, ("image", "image"), ("img2img", "image")));
    assert!(linked(&g, ("checkpoint", "model"), ("img2img", "model")));
    valid(&g);
}

#[test]
fn hires_fix_becomes_resize_and_img2img() {
    let p = parse_parameters(HIRES).unwrap();
    assert!(p.has_hires_fix());
    let r = to_graph_with_report(&p, &GraphOptions::default());
    let g = &r.graph;
    assert_eq!(g.nodes["txt2img"].kind, "Txt2Img");
    assert_eq!(g.nodes["hires_resize"].kind, "Resize");
    assert_eq!(param(g, "hires_resize", "width"), ParamValue::Int(1024));
    assert_eq!(g.nodes["hires"].kind, "Img2Img");
    assert_eq!(param(g, "hires", "steps"), ParamValue::Int(10));
    assert_eq!(param(g, "hires", "strength"), ParamValue::Float(0.55));
    assert!(linked(g, ("txt2img", "image"), ("hires_resize", "image")));
    assert!(linked(g, ("hires_resize", "image"), ("hires", "image")));
    assert!(linked(g, ("hires", "image"), ("save", "image")));
    assert!(r.report.notes.iter().any(|n| n.contains("Latent")));
    valid(g);
}

#[test]
fn inpaint_graph() {
    let p = parse_parameters(INPAINT).unwrap();
    assert_eq!(p.mask_blur, Some(4.0));
    let r = to_graph_with_report(
        &p,
        &GraphOptions {
            checkpoint_hint: None,
            init_image: "a.png",
            mask_image: "a_mask.png",
        },
    );
    let g = &r.graph;
    assert_eq!(g.nodes["inpaint"].kind, "Inpaint");
    assert_eq!(param(g, "inpaint", "mask_blur"), ParamValue::Float(4.0));
    assert_eq!(param(g, "inpaint", "only_masked"), ParamValue::Bool(true));
    assert_eq!(param(g, "inpaint", "padding"), ParamValue::Int(32));
    assert_eq!(param(g, "inpaint", "strength"), ParamValue::Float(0.75));
    assert_eq!(param(g, "inpaint", "scheduler"), t("lms"));
    assert_eq!(param(g, "mask", "source"), t("a_mask.png"));
    assert!(linked(g, ("mask", "mask"), ("inpaint", "mask")));
    assert!(linked(g, ("image", "image"), ("inpaint", "image")));
    // RNG: CPU means no GPU-noise caveat.
    assert!(!r.report.notes.iter().any(|n| n.contains("GPU")));
    valid(g);
}

#[test]
fn sampler_names() {
    assert_eq!(
        map_sampler("DPM++ 2M", Some("Karras")),
        Ok("dpmpp_2m_karras")
    );
    assert_eq!(map_sampler("DPM++ 2M", Some("Automatic")), Ok("dpmpp_2m"));
    assert_eq!(map_sampler("DPM++ 2M", None), Ok("dpmpp_2m"));
    assert_eq!(map_sampler("Euler", None), Ok("euler"));
    assert_eq!(map_sampler("PNDM", None), Ok("pndm"));
    assert_eq!(map_sampler("UniPC", Some("Automatic")), Ok("unipc"));
    assert!(map_sampler("Euler", Some("Karras")).is_err());
    assert!(map_sampler("DPM++ 2M", Some("Exponential")).is_err());
    assert!(map_sampler("Heun", None).is_err());
}

#[test]
fn prompt_only_and_bad_values() {
    let p = parse_parameters("just a prompt, style: photo").unwrap();
    assert_eq!(p.prompt, "just a prompt, style: photo");
    assert!(p.key_order.is_empty());
    let e = parse_parameters("x\nSteps: many, Sampler: Euler, Seed: 1").unwrap_err();
    assert!(e.to_string().contains("Steps: many"), "{e}");
    assert!(parse_parameters("x <lora::0.5>\nSteps: 1, Seed: 1, CFG scale: 7").is_err());
}

#[test]
fn unquoted_comma_in_value_is_kept() {
    // Older versions left some commas unquoted; the stray part joins the previous value.
    let p = parse_parameters(
        "p\nSteps: 20, Sampler: Euler, Hires upscaler: Latent (nearest, exact), Seed: 9",
    )
    .unwrap();
    assert_eq!(p.extra("Hires upscaler"), Some("Latent (nearest, exact)"));
    assert_eq!(p.seed, Some(9));
}

/// The pair `key` of A1111's own reading of `text`.
fn a1111_pair(text: &str, key: &str) -> Option<String> {
    a1111_reference(text)
        .2
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

#[test]
fn procedural_parameters_are_read_by_a1111_and_by_us() {
    let path = manifest_dir().join("../examples/scratches-on-brushed-metal.json");
    let doc = nodes::GraphDoc::from_json(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(from_graph(&doc, 42).is_none(), "no sampler node");
    let mut p = procedural_parameters(&doc, 42);
    p.size = Some((512, 384)); // the batch runner sets it from the image
    let text = format_parameters(&p);
    assert!(!text.contains("Steps") && !text.contains("RNG"), "{text}");
    // A1111's rule: one line with three pairs or more is the parameters line.
    assert_eq!(a1111_pair(&text, "Seed").as_deref(), Some("42"), "{text}");
    assert_eq!(a1111_pair(&text, "Size").as_deref(), Some("512x384"));
    assert_eq!(
        a1111_pair(&text, "Recipe").as_deref(),
        Some("Texture > Scratch > SaveImage")
    );
    assert_eq!(a1111_reference(&text).0, "");
    let q = parse_parameters(&text).unwrap();
    assert_eq!((q.seed, q.size), (Some(42), Some((512, 384))));
    assert_eq!(q.prompt, "");
    assert_eq!(q.extra("Recipe"), Some("Texture > Scratch > SaveImage"));
    assert_eq!(
        q.extra("Defect studio version"),
        Some(env!("CARGO_PKG_VERSION"))
    );
}

const SD_RECIPE: &str = r#"{"format": "defect-studio/graph", "version": 1,
    "nodes": {
        "ckpt": {"kind": "LoadCheckpoint", "version": 1, "params": {"checkpoint": "models/sd15.safetensors"}},
        "lora": {"kind": "LoraLoader", "version": 1, "params": {"lora": "loras/rust,stain:v2.safetensors", "strength": 0.7, "text_strength": 0.5}},
        "gen": {"kind": "Txt2Img", "version": 1, "params": {
            "prompt": "a dent , steel,", "negative": "blurry", "width": 64, "height": 64,
            "steps": 3, "cfg": 6.0, "scheduler": "euler_a"}},
        "save": {"kind": "SaveImage", "version": 1, "params": {"filename": "x.png"}}
    },
    "links": [
        {"from": ["ckpt", "model"], "to": ["lora", "model"]},
        {"from": ["lora", "model"], "to": ["gen", "model"]},
        {"from": ["gen", "image"], "to": ["save", "image"]}
    ],
    "models": [
        {"name": "sd15.safetensors", "sha256": "6ce0161689b3853acaa03779ec93eafe75a02f4ced659bee03f50797806fa2fa"},
        {"name": "rust,stain:v2.safetensors", "sha256": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
    ]}"#;

#[test]
fn sampler_recipe_parameters_carry_rng_and_lora_hashes() {
    let doc = nodes::GraphDoc::from_json(SD_RECIPE).unwrap();
    let p = from_graph(&doc, 7).unwrap();
    let text = format_parameters(&p);
    // The tag follows the prompt directly, so the prompt comes back byte for byte.
    assert!(
        text.starts_with("a dent , steel,<lora:rust,stainv2:0.5:0.7>\nNegative prompt: blurry\n"),
        "{text}"
    );
    assert!(text.contains(", RNG: CPU"), "{text}");
    assert!(
        text.contains("Model hash: 6ce0161689, Model: sd15"),
        "{text}"
    );
    // A1111's spelling: the name without ':' and ',', AutoV2 (10 hex digits).
    assert_eq!(
        a1111_pair(&text, "Lora hashes").as_deref(),
        Some("ruststainv2: 0123456789")
    );
    assert_eq!(a1111_pair(&text, "RNG").as_deref(), Some("CPU"));
    assert_eq!(a1111_pair(&text, "Seed").as_deref(), Some("7"));
    assert_eq!(a1111_pair(&text, "Size").as_deref(), Some("64x64"));
    let q = parse_parameters(&text).unwrap();
    assert_eq!(q.prompt, "a dent , steel,");
    assert_eq!(q.negative.as_deref(), Some("blurry"));
    assert_eq!(
        q.lora_hashes,
        vec![("ruststainv2".to_string(), "0123456789".to_string())]
    );
    assert_eq!(q.extra("RNG"), Some("CPU"));
    // Read back: CPU noise, so no warning that the image will differ.
    let r = to_graph_with_report(&q, &GraphOptions::default());
    assert!(
        !r.report.notes.iter().any(|n| n.contains("GPU")),
        "{:?}",
        r.report.notes
    );
    assert_eq!(param(&r.graph, "txt2img", "prompt"), t("a dent , steel,"));
}

#[test]
fn crlf_text_and_other_extra_networks() {
    let p = parse_parameters(
        "a<hypernet:grain:0.5> plate ,\r\nNegative prompt: smooth\r\nSteps: 5, Seed: 1, CFG scale: 7\r\n",
    )
    .unwrap();
    // A1111 cuts every <name:args> tag from the text it encodes.
    assert_eq!(p.prompt, "a plate ,");
    assert_eq!(p.raw_prompt, "a<hypernet:grain:0.5> plate ,");
    assert_eq!(p.negative.as_deref(), Some("smooth"));
    assert_eq!((p.steps, p.seed), (Some(5), Some(1)));
    let r = to_graph_with_report(&p, &GraphOptions::default());
    // The prompt comes over, approximated: its hypernet tag is named as left out, once.
    let prompt = r.report.get("prompt").expect("the prompt is in the report");
    assert_eq!(prompt.outcome(), Outcome::Approximated, "{prompt:?}");
    assert!(
        prompt.why.iter().any(|w| w.contains("hypernet")),
        "{prompt:?}"
    );
    assert_eq!(
        r.report.entries.iter().filter(|e| e.id == "prompt").count(),
        1
    );
}

#[test]
fn lines_after_the_parameters_line_are_fields() {
    let text = "p\nSteps: 5, Seed: 1, Size: 64x64\nnote from an extension\nTemplate:p {a|b}";
    let p = parse_parameters(text).unwrap();
    assert_eq!(p.prompt, "p");
    assert_eq!((p.steps, p.size), (Some(5), Some((64, 64))));
    assert_eq!(
        p.trailing,
        vec![
            (String::new(), "note from an extension".to_string()),
            ("Template".to_string(), "p {a|b}".to_string()),
        ]
    );
    assert_eq!(p.extra("Template"), Some("p {a|b}"));
    assert_eq!(format_parameters(&p), text);
    let notes = to_graph_with_report(&p, &GraphOptions::default())
        .report
        .notes;
    assert!(notes.contains(&"not carried over: note from an extension".to_string()));
    assert!(notes.contains(&"not carried over: Template: p {a|b}".to_string()));
    // Without a Steps line the last line still counts when it holds three pairs (A1111's rule),
    // and a text with neither is all prompt.
    let q = parse_parameters("p\nSeed: 3, Size: 8x8, Recipe: A > B").unwrap();
    assert_eq!((q.seed, q.size), (Some(3), Some((8, 8))));
    let r = parse_parameters("a photo, Seed: 3\nTemplate: x").unwrap();
    assert_eq!(r.prompt, "a photo, Seed: 3\nTemplate: x");
    assert!(r.trailing.is_empty() && r.seed.is_none());
}

/// `Seed: -1` (typed by hand, or written by tools that keep A1111's "random" setting) is
/// A1111's random seed: it parses, the recipe's sampler takes the run's seed, the report says
/// so, and the text writes back unchanged.
#[test]
fn seed_minus_one_is_random() {
    let text = BASIC.replace("Seed: 1234567890", "Seed: -1");
    let p = parse_parameters(&text).unwrap();
    assert_eq!((p.seed, p.random_seed), (None, true));
    assert_eq!(format_parameters(&p), text);
    let r = to_graph_with_report(&p, &GraphOptions::default());
    let g = &r.graph;
    assert!(
        !g.nodes["txt2img"].params.contains_key("seed"),
        "no fixed seed: the node's default (the run's seed) applies"
    );
    assert!(r.report.text().contains("Seed: -1"), "{}", r.report.text());
    valid(g);
    // Other negative seeds are still refused, naming the field.
    let err = parse_parameters(&BASIC.replace("Seed: 1234567890", "Seed: -7")).unwrap_err();
    assert!(err.to_string().contains("Seed: -7"), "{err}");
}
