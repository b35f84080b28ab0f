//! The studio window driven through egui_kittest: menus, the inspector, the mask painter, a
//! run, the gallery, and a broken file. Widgets inside the node canvas are clicked through
//! AccessKit (pointer clicks miss there because of the canvas's zoom and pan).

mod common;
use common::*;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use egui::{Key, Modifiers};
use egui_kittest::kittest::Queryable;

/// File → New, then two nodes added from the add-node menu (Shift+A).
fn two_nodes() -> H {
    let mut h = harness();
    h.run_steps(3);
    h.get_by_label("File").click();
    h.run_steps(2);
    h.get_by_label("New").click();
    h.run_steps(2);
    assert!(doc(&mut h).nodes.is_empty());
    for kind in ["Texture", "SaveImage"] {
        h.key_press_modifiers(Modifiers::SHIFT, Key::A);
        h.run_steps(2);
        h.get_by_label(kind).click();
        h.run_steps(3);
    }
    let d = doc(&mut h);
    let kinds: Vec<&str> = d.nodes.values().map(|n| n.kind.as_str()).collect();
    assert_eq!(kinds, ["SaveImage", "Texture"], "{:?}", d.nodes.keys());
    h
}

#[test]
fn add_two_nodes_from_the_menu_and_connect_them() {
    let mut h = two_nodes();
    // Inspect the SaveImage node and pick the texture as its image source.
    h.get_by_label("SaveImage").click_accesskit();
    h.run_steps(2);
    h.get_by_label("image (Image)").click();
    h.run_steps(2);
    h.get_by_label("texture.image (Image)").click();
    h.run_steps(3);
    let d = doc(&mut h);
    assert_eq!(d.links.len(), 1, "{:?}", d.links);
    assert_eq!(d.links[0].from.to_string(), "texture.image");
    assert_eq!(d.links[0].to.to_string(), "saveimage.image");
    nodes::validate(&d, &nodes::Catalogue::builtin()).unwrap();
}

#[test]
fn an_incompatible_link_is_refused_with_a_reason() {
    let mut h = two_nodes();
    h.get_by_label("SaveImage").click_accesskit();
    h.run_steps(2);
    // The second input is the optional mask: offering it an image is refused.
    h.get_by_label("mask (Mask)").click();
    h.run_steps(2);
    h.get_by_label("texture.image (Image)").click();
    h.run_steps(3);
    assert!(doc(&mut h).links.is_empty());
    h.get_by_label_contains("types differ");
    h.get_by_label_contains("saveimage.mask (Mask)");
}

#[test]
fn edit_a_parameter_and_undo_it() {
    let mut h = two_nodes();
    h.get_by_label("Texture").click_accesskit();
    h.run_steps(2);
    let before = doc(&mut h);
    // The inspector's seed "fixed" checkbox comes first (the node body draws later).
    h.get_all_by_label("fixed").next().unwrap().click();
    h.run_steps(3);
    let edited = doc(&mut h);
    assert_ne!(edited, before);
    assert!(edited.nodes["texture"].params.contains_key("seed"));
    h.get_by_label("Edit").click();
    h.run_steps(2);
    h.get_by_label("Undo").click();
    h.run_steps(3);
    assert_eq!(doc(&mut h), before);
    h.get_by_label("Edit").click();
    h.run_steps(2);
    h.get_by_label("Redo").click();
    h.run_steps(3);
    assert_eq!(doc(&mut h), edited);
}

#[test]
fn paint_a_stroke_then_undo_then_apply() {
    let mut h = harness();
    h.run_steps(3);
    h.key_press_modifiers(Modifiers::SHIFT, Key::A);
    h.run_steps(2);
    h.get_by_label("PaintMask").click();
    h.run_steps(3);
    h.get_all_by_label("Paint mask…")
        .next()
        .unwrap()
        .click_accesskit();
    h.run_steps(3);
    assert!(app(&mut h).painter.is_some());
    let painted = |h: &mut H| {
        app(h)
            .painter
            .as_ref()
            .unwrap()
            .mask
            .data
            .iter()
            .filter(|v| **v > 0.5)
            .count()
    };
    assert_eq!(painted(&mut h), 0);
    let rect = h.get_by_label("mask canvas").rect();
    let (a, b) = (
        rect.center() - egui::vec2(80.0, 20.0),
        rect.center() + egui::vec2(80.0, 20.0),
    );
    drag(&mut h, a, b, 10);
    let after_stroke = painted(&mut h);
    assert!(after_stroke > 500, "the stroke painted {after_stroke} px");
    h.get_all_by_label("Undo").last().unwrap().click();
    h.run_steps(2);
    assert_eq!(painted(&mut h), 0, "undo restores the empty mask");
    h.get_all_by_label("Redo").last().unwrap().click();
    h.run_steps(2);
    assert_eq!(painted(&mut h), after_stroke);
    h.get_by_label("✔ Apply").click();
    h.run_steps(3);
    assert!(app(&mut h).painter.is_none());
    let d = doc(&mut h);
    let painting = d.nodes["paintmask"].params["painting"]
        .as_str()
        .unwrap()
        .to_string();
    let sha = painting.strip_prefix("asset:").unwrap();
    assert!(
        d.assets.contains_key(sha),
        "the painting travels in the graph's assets"
    );
}

#[test]
fn run_the_example_and_see_the_output_in_the_gallery() {
    let mut h = harness();
    h.run_steps(3);
    let before = app(&mut h).gallery.outputs.len();
    run_and_wait(&mut h);
    h.run_steps(5);
    let a = app(&mut h);
    assert_eq!(a.gallery.outputs.len(), before + 1);
    assert!(a
        .states
        .values()
        .all(|s| !matches!(s, studio::app::editor::NodeRunState::Error(_))));
    assert!(
        a.outputs.contains_key("stamp"),
        "node outputs are kept for the inspector"
    );
    let label = format!("{} outputs", before + 1);
    h.get_by_label_contains(&label);
}

#[test]
fn a_broken_file_shows_its_errors_and_keeps_the_graph() {
    let mut h = harness();
    h.run_steps(3);
    let before = doc(&mut h);
    let broken = home().join("broken.json");
    std::fs::write(&broken, r#"{"format": "defect-studio/graph", "version": 1, "nodes": {"x": {"kind": "Teleporter", "version": 1}}}"#).unwrap();
    h.get_by_label("File").click();
    h.run_steps(2);
    h.get_by_label("Open…").click();
    h.run_steps(3);
    // No desktop portal here, so the studio asks for a path.
    h.get_by_label("Path").focus();
    h.run_steps(1);
    h.get_by_label("Path").type_text(broken.to_str().unwrap());
    h.run_steps(2);
    h.get_by_label("Open").click();
    h.run_steps(3);
    h.get_by_label_contains("unknown node kind \"Teleporter\"");
    assert_eq!(doc(&mut h), before, "the current graph is untouched");
    h.get_by_label("OK").click();
    h.run_steps(2);
    assert!(app(&mut h).dialog.is_none());
    // A newer format version is refused the same way.
    let newer = home().join("newer.json");
    std::fs::write(
        &newer,
        r#"{"format": "defect-studio/graph", "version": 99, "nodes": {}}"#,
    )
    .unwrap();
    let ctx = h.ctx.clone();
    app(&mut h).apply(&ctx, studio::app::AppCommand::Open(newer));
    h.run_steps(2);
    h.get_by_label_contains("newer than this Defect Studio supports");
    assert_eq!(doc(&mut h), before);
}

/// Train → Train LoRA…: a short run on the tiny SD 1.5 fixture through the panel shows the loss
/// curve and the samples, records the run in the store, writes the LoRA where the model manager
/// finds it, and "Use in graph" adds a LoraLoader with it.
#[test]
fn train_a_lora_in_the_training_panel() {
    let mut h = harness();
    h.run_steps(3);
    h.get_by_label("Train").click();
    h.run_steps(2);
    h.get_by_label("Train LoRA…").click();
    h.run_steps(3);
    assert!(app(&mut h).training.open);
    // The form has a row for every training setting (it is drawn from the config's table).
    for f in engine::sd::train::fields::FIELDS {
        assert!(
            h.query_all_by_label(f.label).next().is_some(),
            "the Training form has no `{}` row",
            f.label
        );
    }
    let data = tempfile::tempdir().unwrap();
    for i in 0..2u32 {
        let img = image::RgbImage::from_fn(64, 64, |x, y| {
            if (16 + i * 20..28 + i * 20).contains(&y) {
                image::Rgb([220, 40, 40])
            } else {
                image::Rgb([120 + (x % 8) as u8, 120, 120])
            }
        });
        img.save(data.path().join(format!("s{i}.png"))).unwrap();
    }
    let model = manifest_dir().join("../tests/fixtures/sd/models/sd15");
    // A longer run when the README's screenshot is being made, for a real loss curve.
    let shots = std::env::var_os("DEFECT_STUDIO_SCREENSHOTS");
    let steps = if shots.is_some() { 40 } else { 4 };
    app(&mut h).settings.training = studio::app::training::TrainForm {
        name: "ui-lora".into(),
        model: model.display().to_string(),
        data: data.path().display().to_string(),
        config: engine::sd::train::TrainConfig {
            instance_prompt: Some("a red scratch".into()),
            steps,
            rank: 2,
            alpha: 2.0,
            lr: 1e-2,
            warmup: 0,
            resolution: 64,
            buckets: false,
            ..Default::default()
        },
        save_every: steps / 2,
        sample_every: steps / 2,
        sample_prompt: "a red scratch".into(),
        sample_steps: if shots.is_some() { 8 } else { 2 },
        resume: false,
    };
    h.run_steps(2);
    h.get_by_label("▶ Start training").click();
    let start = Instant::now();
    loop {
        h.step();
        match app(&mut h).training.state.clone() {
            studio::app::training::TrainState::Succeeded(_) => break,
            studio::app::training::TrainState::Failed(e) => panic!("training failed: {e}"),
            _ => {}
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "the training did not finish"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    h.run_steps(3);
    let lora = home().join("models/loras/ui-lora.safetensors");
    {
        let t = &app(&mut h).training;
        assert_eq!(
            t.losses.iter().map(|l| l.0).collect::<Vec<_>>(),
            (1..=steps).collect::<Vec<_>>()
        );
        assert!(t.losses.iter().all(|l| l.1.is_finite() && l.1 > 0.0));
        assert_eq!(
            t.samples.iter().map(|s| s.0).collect::<Vec<_>>(),
            [steps / 2, steps],
            "a sample every {} steps",
            steps / 2
        );
        assert!(t.steps_per_s > 0.0);
        let (_, rec) = t.history.last().expect("the run is in the store");
        assert_eq!(rec.name, "ui-lora");
        assert_eq!(rec.status, engine::RunStatus::Succeeded);
        assert_eq!(rec.steps_done, steps as u64);
        assert_eq!(rec.losses.len(), steps);
        assert_eq!(rec.samples.len(), 2);
        assert!(std::path::Path::new(&rec.samples[1].1).is_file());
        assert_eq!(rec.lora_path, lora.display().to_string());
        assert!(rec.model_sha256.is_some(), "base model hash recorded");
        let sha = engine::models::manager::hash_file(&lora, &mut |_, _| {}).unwrap();
        assert_eq!(rec.lora_sha256.as_deref(), Some(sha.as_str()));
    }
    h.get_by_label_contains(&format!("step {steps}/{steps}"));
    // `DEFECT_STUDIO_SCREENSHOTS=DIR` saves the panel as the README shows it.
    if let Some(dir) = shots {
        let img = h.render().expect("render");
        img.save(PathBuf::from(dir).join("training-panel.png"))
            .unwrap();
    }
    // The model manager lists it as an SD1 LoRA with kohya metadata.
    let listed = engine::models::manager::ModelManager::default_dirs()
        .scan(&mut |_, _, _| {})
        .unwrap();
    let info = listed
        .iter()
        .find(|m| m.path == lora)
        .expect("the LoRA is in the model manager");
    assert_eq!(info.arch, "lora-sd1");
    assert_eq!(info.metadata["ss_steps"], steps.to_string());
    h.get_by_label("Use in graph").click();
    h.run_steps(3);
    let d = doc(&mut h);
    let loader = d
        .nodes
        .values()
        .find(|n| n.kind == "LoraLoader")
        .expect("a LoraLoader node was added");
    assert_eq!(
        loader.params.get("lora"),
        Some(&nodes::ParamValue::Text(lora.display().to_string()))
    );
}

/// This package's folder, read when the test runs: a test binary reused from another checkout
/// that shared the target folder would otherwise read that checkout's files.
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}
