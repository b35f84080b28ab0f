//! Recipes made from a gallery output: an Inpaint recipe with the output as its image (and a
//! painted mask), used by the output details' "send to" and by "paint a mask here".
//!
//! The recipe is `LoadImage (the output, embedded) → PaintMask → Inpaint → SaveImage`, with the
//! model chain (`LoadCheckpoint` and any `LoraLoader`s) and the sampler settings (prompts,
//! steps, cfg, scheduler, seed, prompt weighting) copied from the output's own recipe when it
//! has a sampler node (Txt2Img, Img2Img or Inpaint, the first by id, as the A1111 writer picks
//! it); otherwise a plain `LoadCheckpoint` and the Inpaint node's defaults.

use std::collections::BTreeMap;

use nodes::{Asset, Catalogue, GraphDoc, Link, NodeDoc, NodeLayout, ParamValue, PortRef};

/// The sampler parameters an Inpaint node takes over from the output's sampler.
const SAMPLER_PARAMS: &[&str] = &[
    "prompt",
    "negative",
    "steps",
    "cfg",
    "scheduler",
    "seed",
    "prompt_weighting",
];

/// The sampler kinds whose settings the recipe takes over.
const SAMPLERS: &[&str] = &["Txt2Img", "Img2Img", "Inpaint"];

/// How far upstream the model chain is followed (LoRA stacks are short).
const MAX_CHAIN: usize = 64;

/// An Inpaint recipe over `image_png` (embedded as an asset), with `mask_png` as its painted
/// mask when given; the checkpoint, prompts and sampler settings come from `like` (the
/// output's own recipe) when it has a sampler, else the nodes' defaults.
pub fn inpaint_recipe(
    image_png: &[u8],
    mask_png: Option<&[u8]>,
    like: Option<&GraphDoc>,
) -> Result<GraphDoc, String> {
    let catalogue = Catalogue::builtin();
    // Check the bytes now: a recipe over an unreadable image would only fail when it runs.
    let image = engine::codec::decode_image(image_png, "the output image")
        .map_err(|e| format!("cannot make an Inpaint recipe: {e}"))?;
    if let Some(m) = mask_png {
        let mask = engine::codec::decode_image(m, "the painted mask")
            .map_err(|e| format!("cannot make an Inpaint recipe: {e}"))?;
        if (mask.width, mask.height) != (image.width, image.height) {
            return Err(format!(
                "cannot make an Inpaint recipe: the mask is {}×{} but the image is {}×{}",
                mask.width, mask.height, image.width, image.height
            ));
        }
    }
    let mut doc = GraphDoc::new();
    let node = |doc: &mut GraphDoc, id: &str, kind: &str, params: Vec<(&str, ParamValue)>| {
        let version = catalogue.get(kind).map(|s| s.version).unwrap_or(1);
        let mut n = NodeDoc::new(kind, version);
        n.params = params
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        doc.nodes.insert(id.to_string(), n);
    };
    let image_ref = embed(&mut doc, image_png);
    node(
        &mut doc,
        "image",
        "LoadImage",
        vec![("source", ParamValue::Text(image_ref))],
    );
    let painting = mask_png.map(|m| embed(&mut doc, m)).unwrap_or_default();
    node(
        &mut doc,
        "mask",
        "PaintMask",
        vec![("painting", ParamValue::Text(painting))],
    );
    let like = like.map(flat);
    let sampler = like.as_ref().and_then(|d| {
        d.nodes
            .iter()
            .find(|(_, n)| SAMPLERS.contains(&n.kind.as_str()))
            .map(|(id, n)| (id.clone(), n.clone()))
    });
    let mut inpaint: BTreeMap<String, ParamValue> = BTreeMap::new();
    // The model chain, checkpoint first: copied nodes keep their parameters (LoRA strengths,
    // VAE, clip skip, device).
    let mut chain: Vec<(String, NodeDoc)> = Vec::new();
    if let (Some(like), Some((sid, snode))) = (&like, &sampler) {
        for k in SAMPLER_PARAMS {
            if let Some(v) = snode.params.get(*k) {
                inpaint.insert(k.to_string(), v.clone());
            }
        }
        let mut cur = sid.clone();
        for _ in 0..MAX_CHAIN {
            let Some(up) = like
                .link_into(&cur, "model")
                .and_then(|l| like.nodes.get_key_value(&l.from.0))
            else {
                break;
            };
            if !matches!(up.1.kind.as_str(), "LoraLoader" | "LoadCheckpoint") {
                break;
            }
            chain.push((up.0.clone(), up.1.clone()));
            if up.1.kind == "LoadCheckpoint" {
                break;
            }
            cur = up.0.clone();
        }
        chain.reverse();
        doc.models = like.models.clone();
        doc.meta.seed = like.meta.seed;
    }
    if chain
        .first()
        .is_none_or(|(_, n)| n.kind != "LoadCheckpoint")
    {
        chain.insert(
            0,
            ("checkpoint".to_string(), NodeDoc::new("LoadCheckpoint", 1)),
        );
    }
    let mut model_from = String::new();
    for (i, (_, mut n)) in chain.into_iter().enumerate() {
        let id = match n.kind.as_str() {
            "LoadCheckpoint" => "checkpoint".to_string(),
            _ => format!("lora{i}"),
        };
        n.version = catalogue.get(&n.kind).map(|s| s.version).unwrap_or(1);
        n.param_inputs.clear();
        doc.nodes.insert(id.clone(), n);
        if !model_from.is_empty() {
            link(&mut doc, (&model_from, "model"), (&id, "model"));
        }
        layout(&mut doc, &id, [0.0, 320.0 + 180.0 * i as f32]);
        model_from = id;
    }
    node(
        &mut doc,
        "inpaint",
        "Inpaint",
        inpaint
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect(),
    );
    node(&mut doc, "save", "SaveImage", vec![]);
    link(&mut doc, ("image", "image"), ("mask", "image"));
    link(&mut doc, (&model_from, "model"), ("inpaint", "model"));
    link(&mut doc, ("mask", "image"), ("inpaint", "image"));
    link(&mut doc, ("mask", "mask"), ("inpaint", "mask"));
    link(&mut doc, ("inpaint", "image"), ("save", "image"));
    link(&mut doc, ("inpaint", "mask"), ("save", "mask"));
    layout(&mut doc, "image", [0.0, 0.0]);
    layout(&mut doc, "mask", [300.0, 0.0]);
    layout(&mut doc, "inpaint", [600.0, 160.0]);
    layout(&mut doc, "save", [900.0, 160.0]);
    doc.meta.title = "Inpaint an output".into();
    nodes::validate(&doc, &catalogue)
        .map_err(|e| format!("the Inpaint recipe is not valid (a bug): {e}"))?;
    Ok(doc)
}

/// The document with its subgraphs inlined (the sampler may sit inside one), or as it is when
/// it cannot be flattened.
fn flat(doc: &GraphDoc) -> GraphDoc {
    if !nodes::subgraph::needs_flatten(doc) {
        return doc.clone();
    }
    nodes::subgraph::flatten(doc, &Catalogue::builtin())
        .map(|f| f.doc)
        .unwrap_or_else(|_| doc.clone())
}

/// Embeds PNG bytes in the document's assets; returns the `asset:<sha256>` reference.
pub fn embed(doc: &mut GraphDoc, png: &[u8]) -> String {
    let sha = engine::hashing::sha256_hex(png);
    doc.assets.insert(
        sha.clone(),
        Asset {
            mime: "image/png".into(),
            data_base64: engine::hashing::encode_base64(png),
            external: false,
            size: None,
        },
    );
    format!("asset:{sha}")
}

fn link(doc: &mut GraphDoc, from: (&str, &str), to: (&str, &str)) {
    doc.links.push(Link {
        from: PortRef(from.0.to_string(), from.1.to_string()),
        to: PortRef(to.0.to_string(), to.1.to_string()),
    });
}

fn layout(doc: &mut GraphDoc, id: &str, pos: [f32; 2]) {
    doc.layout.insert(
        id.to_string(),
        NodeLayout {
            pos,
            collapsed: false,
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32, v: u8) -> Vec<u8> {
        engine::codec::encode_rgba8_png(w, h, &vec![v; (w * h * 4) as usize]).unwrap()
    }

    fn txt2img_recipe() -> GraphDoc {
        GraphDoc::from_json(
            &serde_json::json!({
                "format": "defect-studio/graph", "version": 2,
                "nodes": {
                    "ckpt": {"kind": "LoadCheckpoint", "version": 1,
                             "params": {"checkpoint": "tiny-sd15", "clip_skip": 2}},
                    "lora": {"kind": "LoraLoader", "version": 1,
                             "params": {"lora": "scratch.safetensors", "strength": 0.7}},
                    "gen": {"kind": "Txt2Img", "version": 1,
                            "params": {"prompt": "a dent", "negative": "blurry", "steps": 3,
                                       "cfg": 5.5, "scheduler": "euler",
                                       "width": 64, "height": 64}},
                    "save": {"kind": "SaveImage", "version": 1}
                },
                "links": [
                    {"from": ["ckpt", "model"], "to": ["lora", "model"]},
                    {"from": ["lora", "model"], "to": ["gen", "model"]},
                    {"from": ["gen", "image"], "to": ["save", "image"]}
                ],
                "models": [{"name": "tiny-sd15", "sha256": "ab", "arch": "sd15"}],
                "meta": {"seed": 9}
            })
            .to_string(),
        )
        .unwrap()
    }

    #[test]
    fn takes_the_model_chain_and_sampler_settings_of_the_output() {
        let image = png(16, 8, 200);
        let mask = png(16, 8, 255);
        let d = inpaint_recipe(&image, Some(&mask), Some(&txt2img_recipe())).unwrap();
        let inpaint = &d.nodes["inpaint"];
        assert_eq!(inpaint.kind, "Inpaint");
        assert_eq!(inpaint.params["prompt"].as_str(), Some("a dent"));
        assert_eq!(inpaint.params["negative"].as_str(), Some("blurry"));
        assert_eq!(inpaint.params["steps"].as_f64(), Some(3.0));
        assert_eq!(inpaint.params["cfg"].as_f64(), Some(5.5));
        assert_eq!(inpaint.params["scheduler"].as_str(), Some("euler"));
        // The size follows the input image, not the Txt2Img size.
        assert!(!inpaint.params.contains_key("width"));
        assert_eq!(
            d.nodes["checkpoint"].params["checkpoint"].as_str(),
            Some("tiny-sd15")
        );
        assert_eq!(
            d.nodes["checkpoint"].params["clip_skip"].as_f64(),
            Some(2.0)
        );
        let lora = d.nodes.values().find(|n| n.kind == "LoraLoader").unwrap();
        assert_eq!(lora.params["strength"].as_f64(), Some(0.7));
        assert_eq!(d.models.len(), 1);
        assert_eq!(d.meta.seed, Some(9));
        // The image and the mask travel as assets, byte for byte.
        let src = d.nodes["image"].params["source"].as_str().unwrap();
        let sha = src.strip_prefix("asset:").unwrap();
        let bytes = engine::hashing::decode_base64(&d.assets[sha].data_base64).unwrap();
        assert_eq!(bytes, image);
        let painting = d.nodes["mask"].params["painting"].as_str().unwrap();
        let sha = painting.strip_prefix("asset:").unwrap();
        let bytes = engine::hashing::decode_base64(&d.assets[sha].data_base64).unwrap();
        assert_eq!(bytes, mask);
        assert_eq!(
            d.link_into("inpaint", "mask").unwrap().from,
            PortRef("mask".into(), "mask".into())
        );
    }

    #[test]
    fn a_procedural_output_gets_a_plain_checkpoint_and_defaults() {
        let d = inpaint_recipe(&png(8, 8, 10), None, Some(&GraphDoc::new())).unwrap();
        assert_eq!(d.nodes["checkpoint"].kind, "LoadCheckpoint");
        assert!(d.nodes["inpaint"].params.is_empty());
        assert_eq!(d.nodes["mask"].params["painting"].as_str(), Some(""));
        assert_eq!(d.assets.len(), 1);
        let d2 = inpaint_recipe(&png(8, 8, 10), None, None).unwrap();
        assert_eq!(d, d2);
    }

    #[test]
    fn bad_bytes_and_a_mask_of_another_size_are_refused() {
        let e = inpaint_recipe(b"not a png", None, None).unwrap_err();
        assert!(e.contains("output image"), "{e}");
        let e = inpaint_recipe(&png(8, 8, 1), Some(&png(4, 4, 1)), None).unwrap_err();
        assert!(e.contains("4×4") && e.contains("8×8"), "{e}");
    }
}
