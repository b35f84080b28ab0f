//! The selected gallery output's details (issue 26 §3): its prompt and seed, "Copy as A1111
//! text" (parsed back with our A1111 parser), and "send to": an Inpaint recipe over the output,
//! a LoadImage input with it, and the before/after viewer with another output.

mod common;
use common::*;

use std::path::PathBuf;

use egui_kittest::kittest::Queryable;
use engine::interop::a1111;
use studio::app::AppCommand;

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Presses ▶ Run and waits for the run to succeed; returns the ids of its outputs (the other
/// test of this file may add outputs to the same store meanwhile).
fn run_outputs(h: &mut H) -> Vec<u64> {
    let runs = common::run_and_wait(h);
    let run = app(h).runs[runs].run_id.expect("the run has a store id");
    app(h)
        .gallery
        .outputs
        .iter()
        .filter(|(_, o)| o.run_id == run)
        .map(|(id, _)| *id)
        .collect()
}

/// Clicks "Copy as A1111 text" and returns what went to the clipboard.
fn copy_a1111(h: &mut H) -> String {
    h.get_by_label("Copy as A1111 text").click();
    for _ in 0..4 {
        h.step();
        let copied = h
            .output()
            .platform_output
            .commands
            .iter()
            .find_map(|c| match c {
                egui::OutputCommand::CopyText(t) => Some(t.clone()),
                _ => None,
            });
        if let Some(t) = copied {
            return t;
        }
    }
    panic!("nothing was copied");
}

/// The decoded pixels of an output in the store.
fn output_pixels(h: &mut H, id: u64) -> engine::Image {
    let png = app(h)
        .store
        .as_ref()
        .unwrap()
        .output_png(id)
        .unwrap()
        .unwrap();
    engine::codec::decode_image(&png, "output").unwrap()
}

/// The decoded pixels of an `asset:<sha>` image of the document.
fn asset_pixels(d: &nodes::GraphDoc, source: &str) -> engine::Image {
    let sha = source.strip_prefix("asset:").expect("an embedded image");
    let bytes = engine::hashing::decode_base64(&d.assets[sha].data_base64).unwrap();
    engine::codec::decode_image(&bytes, "asset").unwrap()
}

#[test]
fn a_txt2img_outputs_details_copy_as_a1111_and_open_in_inpaint() {
    let model = manifest_dir().join("../tests/fixtures/sd/models/sd15");
    let dir = tempfile::tempdir().unwrap();
    let graph = dir.path().join("txt2img.json");
    let prompt = "a deep scratch on brushed steel, macro";
    std::fs::write(
        &graph,
        serde_json::json!({
            "format": "defect-studio/graph", "version": 2,
            "nodes": {
                "ckpt": {"kind": "LoadCheckpoint", "version": 1,
                         "params": {"checkpoint": model.display().to_string()}},
                "gen": {"kind": "Txt2Img", "version": 1,
                        "params": {"prompt": prompt, "negative": "blurry, lowres",
                                   "width": 64, "height": 64, "steps": 2, "cfg": 6.5,
                                   "scheduler": "euler",
                                   "seed": {"mode": "fixed", "value": 1234}}},
                "save": {"kind": "SaveImage", "version": 1,
                         "params": {"filename": "details/{seed}.png"}}
            },
            "links": [
                {"from": ["ckpt", "model"], "to": ["gen", "model"]},
                {"from": ["gen", "image"], "to": ["save", "image"]}
            ]
        })
        .to_string(),
    )
    .unwrap();
    let mut h = settled();
    app(&mut h).push(AppCommand::Open(graph.clone()));
    h.run_steps(3);
    assert!(doc(&mut h).nodes.contains_key("gen"), "the graph opened");
    let new = run_outputs(&mut h);
    assert_eq!(new.len(), 1, "{new:?}");
    let id = new[0];
    let count = |h: &mut H, text: &str| h.query_all_by_label(text).count();
    let (prompts, negatives) = (count(&mut h, prompt), count(&mut h, "blurry, lowres"));
    common::select_output(&mut h, id);

    // The details show the prompt, the negative and the seed.
    h.get_by_label(&format!("Output {id}"));
    h.get_by_label("seed 1234");
    // (Shown under "prompt" and in the sampler node's parameters.)
    assert!(count(&mut h, prompt) > prompts);
    assert!(count(&mut h, "blurry, lowres") > negatives);
    h.get_by_label("gen · Txt2Img");

    // The copied text is A1111's and parses back to the recipe's values.
    let text = copy_a1111(&mut h);
    let p = a1111::parse_parameters(&text).unwrap();
    assert_eq!(p.prompt, prompt, "{text}");
    assert_eq!(p.negative.as_deref(), Some("blurry, lowres"), "{text}");
    assert_eq!(p.seed, Some(1234), "{text}");
    assert_eq!(p.steps, Some(2), "{text}");
    assert_eq!(p.cfg_scale, Some(6.5), "{text}");
    assert_eq!(p.size, Some((64, 64)), "{text}");
    assert_eq!(p.sampler.as_deref(), Some("Euler"), "{text}");
    // The checkpoint is listed with its hash, and the AutoV2 hash is the one A1111 writes.
    let details = app(&mut h).gallery.details.clone().unwrap();
    let ckpt = details
        .models
        .iter()
        .find(|m| m.role == "checkpoint")
        .expect("the checkpoint is listed");
    if let Some(hash) = &p.model_hash {
        assert_eq!(&ckpt.autov2, hash);
    }
    assert!(
        details.timings.iter().any(|t| t.kind == "Txt2Img"),
        "{:?}",
        details.timings
    );

    // `DEFECT_STUDIO_SCREENSHOTS=DIR` saves the details as the README shows them.
    if let Some(dir) = std::env::var_os("DEFECT_STUDIO_SCREENSHOTS") {
        let img = h.render().expect("render");
        img.save(PathBuf::from(dir).join("output-details.png"))
            .unwrap();
    }

    // Send to → an Inpaint recipe over the output, with its model and sampler settings.
    let pixels = output_pixels(&mut h, id);
    common::send_to(&mut h, "Open in an Inpaint recipe");
    let d = doc(&mut h);
    assert!(app(&mut h).doc.path.is_none(), "a new untitled document");
    let inpaint = d
        .nodes
        .values()
        .find(|n| n.kind == "Inpaint")
        .expect("an Inpaint node");
    assert_eq!(inpaint.params["prompt"].as_str(), Some(prompt));
    assert_eq!(inpaint.params["steps"].as_f64(), Some(2.0));
    let image = d.link_into("inpaint", "image").unwrap().from.0.clone();
    let image = d
        .link_into(&image, "image")
        .map(|l| l.from.0.clone())
        .unwrap_or(image);
    let source = d.nodes[&image].params["source"]
        .as_str()
        .unwrap()
        .to_string();
    let img = asset_pixels(&d, &source);
    assert_eq!((img.width, img.height), (pixels.width, pixels.height));
    assert_eq!(
        img.data, pixels.data,
        "the Inpaint image is the output's pixels"
    );
    nodes::validate(&d, &nodes::Catalogue::builtin()).unwrap();
    // An empty PaintMask is refused before anything runs; with a painted rectangle (as the
    // painter applies it) the recipe runs on the tiny model.
    let (w, h_) = (pixels.width, pixels.height);
    let mask = engine::Mask {
        width: w,
        height: h_,
        data: (0..w * h_)
            .map(|i| ((16..48).contains(&(i % w)) && (16..48).contains(&(i / w))) as u8 as f32)
            .collect(),
    };
    app(&mut h).apply_painting("mask", &mask).unwrap();
    h.run_steps(2);
    let inpainted = run_outputs(&mut h);
    assert_eq!(inpainted.len(), 1);
}

#[test]
fn use_an_output_as_input_and_compare_two_outputs() {
    let mut h = settled();
    app(&mut h).settings.run_count = 2;
    let new = run_outputs(&mut h);
    assert_eq!(new.len(), 2, "{new:?}");
    let (a, b) = (new[0], new[1]);
    common::select_output(&mut h, a);
    let seed = app(&mut h).gallery.details.as_ref().unwrap().seed;
    h.get_by_label(&format!("seed {seed}"));
    h.get_by_label("stamp · Composite");
    // A procedural output's A1111 text carries its seed and size.
    let text = copy_a1111(&mut h);
    let p = a1111::parse_parameters(&text).unwrap();
    let px = output_pixels(&mut h, a);
    assert_eq!(p.seed, Some(seed), "{text}");
    assert_eq!(p.size, Some((px.width, px.height)), "{text}");

    // Use as input: a LoadImage node whose image is the output.
    let before = doc(&mut h);
    common::send_to(&mut h, "Use as input (embedded)");
    let after = doc(&mut h);
    let added: Vec<_> = after
        .nodes
        .iter()
        .filter(|(id, n)| n.kind == "LoadImage" && !before.nodes.contains_key(*id))
        .collect();
    assert_eq!(added.len(), 1, "{:?}", after.nodes.keys());
    let source = added[0].1.params["source"].as_str().unwrap();
    assert_eq!(asset_pixels(&after, source).data, px.data);
    // By path: the output's file.
    common::send_to(&mut h, "Use as input (by path)");
    let path = app(&mut h).gallery.details.as_ref().unwrap().path.clone();
    let by_path = doc(&mut h);
    assert!(
        by_path
            .nodes
            .values()
            .any(|n| n.kind == "LoadImage" && n.params["source"].as_str() == Some(path.as_str())),
        "{path}"
    );

    // Compare with the other output: the viewer shows both.
    h.get_by_label("Send to…").click();
    h.run_steps(2);
    h.get_by_label_contains("Compare with").click();
    h.run_steps(2);
    h.get_by_label_contains(&format!("output {b} ·")).click();
    h.run_steps(3);
    let v = app(&mut h)
        .gallery
        .viewer
        .as_ref()
        .expect("the viewer is open");
    assert_eq!(v.id, a);
    assert_eq!(
        v.before.as_ref().map(|(n, _)| n.clone()),
        Some(format!("output {b}"))
    );
    app(&mut h).gallery.viewer = None;
    h.run_steps(2);

    // The graph has unsaved changes now: opening an Inpaint recipe asks first.
    common::send_to(&mut h, "Open in an Inpaint recipe");
    h.get_by_label("The graph has unsaved changes.");
    assert!(!doc(&mut h).nodes.values().any(|n| n.kind == "Inpaint"));
    h.get_by_label("Discard").click();
    h.run_steps(4);
    let d = doc(&mut h);
    assert!(
        d.nodes.values().any(|n| n.kind == "Inpaint"),
        "{:?}",
        d.nodes
    );
    assert!(
        app(&mut h).doc.dirty(&nodes::Catalogue::builtin()),
        "not saved yet"
    );
}
