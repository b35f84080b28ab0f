//! Studio polish, driven through egui_kittest: the shortcuts sheet (F1 or `?`) lists every key
//! the shortcut table binds, the window title names the graph and marks unsaved changes, and a
//! text field inside a node is wide enough to read.

mod common;
use common::*;

use egui::{Key, Modifiers};
use egui_kittest::kittest::Queryable;
use studio::app::shortcuts::SHORTCUTS;

#[test]
fn f1_opens_a_sheet_listing_every_bound_key() {
    let mut h = settled();
    assert!(h.query_by_label("Keyboard shortcuts").is_none());
    h.key_press(Key::F1);
    h.run_steps(2);
    assert!(app(&mut h).shortcuts_open);
    let ctx = h.ctx.clone();
    for s in SHORTCUTS {
        let keys = s.label(&ctx);
        assert!(
            h.query_all_by_label(&keys).next().is_some(),
            "the sheet lacks {keys} ({})",
            s.what
        );
        assert!(
            h.query_all_by_label(s.what).next().is_some(),
            "the sheet lacks {:?}",
            s.what
        );
    }
    // Escape closes it; `?` opens it again.
    h.key_press(Key::Escape);
    h.run_steps(2);
    assert!(!app(&mut h).shortcuts_open);
    h.key_press_modifiers(Modifiers::SHIFT, Key::Questionmark);
    h.run_steps(2);
    assert!(app(&mut h).shortcuts_open);
}

#[test]
fn a_bound_key_does_what_the_sheet_says() {
    let mut h = settled();
    let before = doc(&mut h).nodes.len();
    // Ctrl+N: a new, empty graph (the example has no unsaved changes).
    h.key_press_modifiers(Modifiers::COMMAND, Key::N);
    h.run_steps(3);
    assert!(before > 0);
    assert_eq!(doc(&mut h).nodes.len(), 0);
    // Ctrl+Z in the graph undoes nothing here, but must not panic; Ctrl+Shift+Z neither.
    h.key_press_modifiers(Modifiers::COMMAND | Modifiers::SHIFT, Key::Z);
    h.run_steps(1);
}

#[test]
fn the_window_title_names_the_graph_and_marks_unsaved_changes() {
    let mut h = settled();
    let title = {
        let a = app(&mut h);
        a.doc.window_title(&a.catalogue)
    };
    assert_eq!(title, "brushed-metal-scratch (not saved) — Defect Studio");
    // An edit marks it.
    let ctx = h.ctx.clone();
    app(&mut h).apply(
        &ctx,
        studio::app::AppCommand::AddNode {
            kind: "SolidColor".into(),
            pos: egui::pos2(100.0, 100.0),
        },
    );
    // The editor commits edits on a frame with input.
    h.event(egui::Event::PointerMoved(egui::pos2(5.0, 500.0)));
    h.run_steps(3);
    let title = {
        let a = app(&mut h);
        a.doc.window_title(&a.catalogue)
    };
    assert!(title.starts_with("● brushed-metal-scratch"), "{title}");
    // The menu bar shows the same name.
    assert!(h.query_by_label("brushed-metal-scratch •").is_some());
}

#[test]
fn a_node_text_field_is_wide_enough_to_read() {
    let h = settled();
    let field = h
        .query_all_by_value("{graph}/{seed:04}-{node}.png")
        .next()
        .expect("SaveImage's filename field");
    let w = field.rect().width();
    // The canvas may be zoomed out to fit the graph; before the fix the field was ~30 px.
    assert!(w >= 120.0, "the filename field is {w} px wide");
}
