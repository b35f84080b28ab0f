//! The version history window: a graph saved twice with a parameter changed between shows the
//! change as a diff line; restoring the first version replaces the editor's document (unsaved),
//! and Undo brings the second back.

mod common;
use common::*;

use std::path::PathBuf;

use egui::{Key, Modifiers};
use egui_kittest::kittest::{NodeT, Queryable};
use nodes::ParamValue;
use studio::app::AppCommand;

fn set_angle(h: &mut H, angle: f64) {
    let a = app(h);
    let nid = a.doc.find("plate").expect("the example has a plate");
    a.doc
        .snarl
        .get_node_mut(nid)
        .unwrap()
        .params
        .insert("angle".into(), ParamValue::Float(angle));
}

#[test]
fn restore_an_older_version() {
    let mut h = harness();
    h.run_steps(3);
    let path = home().join("plate.json");
    std::fs::write(&path, studio::app::EXAMPLE).unwrap();
    let ctx = h.ctx.clone();
    app(&mut h).apply(&ctx, AppCommand::Open(path.clone()));
    h.run_steps(2);
    // Version 1: angle 8 (as in the example); version 2: angle 12.5. Ctrl+S saves both.
    set_angle(&mut h, 8.0);
    h.key_press_modifiers(Modifiers::COMMAND, Key::S);
    h.run_steps(2);
    let v1 = doc(&mut h);
    set_angle(&mut h, 12.5);
    h.key_press_modifiers(Modifiers::COMMAND, Key::S);
    h.run_steps(2);
    let v2 = doc(&mut h);
    assert_ne!(v1, v2);
    assert!(!app(&mut h).doc.dirty(&nodes::Catalogue::builtin()));

    h.get_by_label("File").click();
    h.run_steps(2);
    h.get_by_label("Version history…").click();
    h.run_steps(3);
    let versions: Vec<u64> = app(&mut h)
        .versions
        .versions
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(versions, [2, 1], "newest first");
    // The newest is selected: no difference from the document, the angle changed since v1.
    h.get_by_label("no differences");
    let line = h
        .get_by_label_contains("plate.angle")
        .accesskit_node()
        .value()
        .unwrap_or_default();
    assert!(line.starts_with('~') && line.contains("12.5"), "{line}");

    // Select v1: against the document the angle goes back up to 12.5; it is the first version.
    h.get_by_label_contains("v1 · ").click();
    h.run_steps(2);
    h.get_by_label("the first saved version");
    h.get_by_label_contains("plate.angle");
    // `DEFECT_STUDIO_SCREENSHOTS=DIR` saves the window as it looks here.
    if let Some(dir) = std::env::var_os("DEFECT_STUDIO_SCREENSHOTS") {
        let img = h.render().expect("render");
        img.save(PathBuf::from(dir).join("version-history.png"))
            .unwrap();
    }
    h.get_by_label("Restore this version").click();
    h.run_steps(3);
    assert_eq!(doc(&mut h), v1, "the editor holds version 1");
    assert!(
        app(&mut h).doc.dirty(&nodes::Catalogue::builtin()),
        "a restored version is unsaved"
    );
    // With v1 restored, the window now shows no difference for v1.
    h.get_by_label("no differences");

    h.get_by_label("Edit").click();
    h.run_steps(2);
    h.get_by_label("Undo").click();
    h.run_steps(3);
    assert_eq!(doc(&mut h), v2, "undo brings version 2 back");
}
