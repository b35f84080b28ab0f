//! Frames and the minimap in the studio window, driven through egui_kittest: a frame made from
//! nodes survives save and load, dragging its title bar moves its nodes, and clicking the
//! minimap moves the view (which is on by default for big graphs).

mod common;
use common::*;

use egui::{Modifiers, PointerButton};
use egui_kittest::kittest::Queryable;
use studio::app::editor::EditorCommand;
use studio::app::AppCommand;

fn apply(h: &mut H, cmd: AppCommand) {
    let ctx = h.ctx.clone();
    app(h).apply(&ctx, cmd);
    h.run_steps(3);
}

#[test]
fn a_frame_survives_save_and_load_and_its_title_bar_moves_its_nodes() {
    let mut h = settled();
    apply(
        &mut h,
        AppCommand::Editor(EditorCommand::FrameSelection(vec![
            "mark".into(),
            "plate".into(),
        ])),
    );
    let d = doc(&mut h);
    assert_eq!(d.frames.len(), 1);
    assert_eq!(d.frames[0].nodes, ["mark", "plate"]);
    // Its title bar is a widget over the canvas: dragging it moves exactly the framed nodes.
    let bar = h.get_by_label("frame Frame").rect();
    let scale = {
        let a = app(&mut h);
        a.canvas.rects["mark"].width()
    };
    assert!(scale > 0.0);
    drag(
        &mut h,
        bar.center(),
        bar.center() + egui::vec2(120.0, 60.0),
        8,
    );
    let moved = doc(&mut h);
    let shift = |id: &str, k: usize| moved.layout[id].pos[k] - d.layout[id].pos[k];
    assert!(
        shift("mark", 0) > 20.0,
        "mark moved by {}",
        shift("mark", 0)
    );
    assert!(shift("mark", 1) > 10.0);
    assert_eq!(shift("plate", 0), shift("mark", 0));
    assert_eq!(shift("plate", 1), shift("mark", 1));
    assert_eq!(shift("save", 0), 0.0, "a node outside the frame stays");
    // Undo takes the move back (one drag, one edit).
    h.key_press_modifiers(Modifiers::COMMAND, egui::Key::Z);
    h.run_steps(3);
    assert_eq!(doc(&mut h).layout, d.layout);
    h.key_press_modifiers(Modifiers::COMMAND | Modifiers::SHIFT, egui::Key::Z);
    h.run_steps(3);
    // Save and open again: the frame is in the file.
    let path = home().join("framed.json");
    apply(&mut h, AppCommand::SaveTo(path.clone()));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"frames\""), "{text}");
    apply(&mut h, AppCommand::NewGraph);
    assert!(doc(&mut h).frames.is_empty());
    apply(&mut h, AppCommand::Open(path));
    let loaded = doc(&mut h);
    assert_eq!(loaded.frames, moved.frames);
    assert_eq!(loaded, nodes::GraphDoc::from_json(&text).unwrap());
    h.get_by_label("frame Frame");
}

#[test]
fn clicking_the_minimap_moves_the_view() {
    let mut h = settled();
    // A small graph has no minimap until View → Minimap.
    assert!(h.query_by_label("minimap").is_none());
    h.get_by_label("View").click();
    h.run_steps(2);
    h.get_by_label("Minimap").click();
    h.run_steps(3);
    h.key_press(egui::Key::Escape);
    h.run_steps(2);
    let map = h.get_by_label("minimap").rect();
    let before = app(&mut h).canvas.to_screen;
    // Click near the minimap's top-left corner: the view centres there, so the graph moves right
    // and down on screen.
    let at = map.min + egui::vec2(6.0, 6.0);
    h.event(egui::Event::PointerMoved(at));
    h.run_steps(1);
    h.event(egui::Event::PointerButton {
        pos: at,
        button: PointerButton::Primary,
        pressed: true,
        modifiers: Modifiers::NONE,
    });
    h.run_steps(1);
    h.event(egui::Event::PointerButton {
        pos: at,
        button: PointerButton::Primary,
        pressed: false,
        modifiers: Modifiers::NONE,
    });
    h.run_steps(4);
    let after = app(&mut h).canvas.to_screen;
    let moved = after.translation - before.translation;
    assert!(
        moved.x > 50.0 && moved.y > 20.0,
        "the view did not move: {before:?} → {after:?}"
    );
    assert_eq!(after.scaling, before.scaling, "the zoom stays");
}

#[test]
fn a_big_graph_shows_the_minimap() {
    let mut h = settled();
    let mut g = nodes::GraphDoc::new();
    for i in 0..40 {
        g.nodes
            .insert(format!("t{i}"), nodes::NodeDoc::new("Texture", 1));
    }
    {
        let a = app(&mut h);
        a.doc = studio::app::doc::EditorDoc::new(&g, &a.catalogue, None);
    }
    h.run_steps(3);
    h.get_by_label("minimap");
}
