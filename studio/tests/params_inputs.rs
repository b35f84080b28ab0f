//! Parameters as inputs in the studio window, driven through egui_kittest: turn the example's
//! plate seed into an input, feed it from a Seed node, run, and check the run used the Seed
//! node's value (the image equals a run with that seed set on the plate itself, and differs
//! from the example's own); converting back removes the link.

mod common;
use common::*;

use std::time::{Duration, Instant};

use egui::{Key, Modifiers};
use egui_kittest::kittest::Queryable;
use nodes::{ParamValue, SeedValue};

/// Sets a parameter of node `id` as its widget would.
fn set_param(h: &mut H, id: &str, name: &str, v: ParamValue) {
    let a = app(h);
    let nid = a.doc.find(id).unwrap();
    a.doc
        .snarl
        .get_node_mut(nid)
        .unwrap()
        .params
        .insert(name.into(), v);
}

/// Runs the graph and returns the saved image's pixels.
fn run(h: &mut H) -> Vec<u8> {
    let outputs = app(h).gallery.outputs.len();
    run_and_wait(h);
    // The gallery refreshes once the worker reports the run done.
    let start = Instant::now();
    while app(h).gallery.outputs.len() <= outputs && start.elapsed().as_secs() < 20 {
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    let a = app(h);
    assert_eq!(a.gallery.outputs.len(), outputs + 1, "one new output");
    let (_, rec) = a
        .gallery
        .outputs
        .iter()
        .max_by_key(|(id, _)| *id)
        .expect("an output");
    image::open(&rec.path).unwrap().to_rgb8().into_raw()
}

/// Right-clicks parameter row `name` in the inspector (the right-hand panel; the menu bar has
/// a "seed" label too, and the canvas's rows are further left).
fn right_click_in_inspector(h: &mut H, name: &str) {
    h.get_all_by_label(name)
        .find(|n| n.rect().min.x > 1250.0 && n.rect().min.y > 40.0)
        .unwrap_or_else(|| panic!("no {name} row in the inspector"))
        .click_secondary();
    h.run_steps(2);
}

fn inspect_plate(h: &mut H) {
    h.get_by_label("Texture").click_accesskit();
    h.run_steps(3);
}

#[test]
fn convert_a_parameter_to_an_input_and_feed_it_from_a_seed_node() {
    let mut h = settled();
    let example = run(&mut h);
    // Right-click the plate's seed in the inspector: Convert to input.
    inspect_plate(&mut h);
    right_click_in_inspector(&mut h, "seed");
    h.get_by_label("Convert to input").click();
    h.run_steps(3);
    assert!(doc(&mut h).nodes["plate"].param_inputs.contains("seed"));
    // A Seed node from the add-node menu, fixed at 4242.
    // (The menu opens at the pointer: over the canvas, and filtered, so the entry is on screen.)
    h.event(egui::Event::PointerMoved(egui::Pos2::new(300.0, 120.0)));
    h.run_steps(1);
    h.key_press_modifiers(Modifiers::SHIFT, Key::A);
    h.run_steps(2);
    h.event(egui::Event::Text("Seed".into()));
    h.run_steps(2);
    h.get_by_label("Seed").click();
    h.run_steps(3);
    let seed_node = doc(&mut h)
        .nodes
        .iter()
        .find(|(_, n)| n.kind == "Seed")
        .map(|(k, _)| k.clone())
        .expect("a Seed node was added");
    let fixed = ParamValue::Seed(SeedValue::Fixed { value: 4242 });
    set_param(&mut h, &seed_node, "seed", fixed.clone());
    // Link it to the plate's new seed input from the inspector.
    inspect_plate(&mut h);
    h.get_by_label("seed (Seed)").click();
    h.run_steps(2);
    h.get_by_label(&format!("{seed_node}.value (Seed)")).click();
    h.run_steps(3);
    let d = doc(&mut h);
    assert!(
        d.links
            .iter()
            .any(|l| l.from.to_string() == format!("{seed_node}.value")
                && l.to.to_string() == "plate.seed"),
        "{:?}",
        d.links
    );
    nodes::validate(&d, &nodes::Catalogue::builtin()).unwrap();
    let fed = run(&mut h);
    assert_ne!(fed, example, "the seed node's value changed the plate");

    // Back to a parameter: the link goes, and the same seed set on the plate itself gives the
    // same image, so the run above used the Seed node's value.
    inspect_plate(&mut h);
    right_click_in_inspector(&mut h, "seed");
    h.get_by_label("Convert to parameter").click();
    h.run_steps(3);
    let d = doc(&mut h);
    assert!(!d.nodes["plate"].param_inputs.contains("seed"));
    assert!(!d.links.iter().any(|l| l.to.to_string() == "plate.seed"));
    set_param(&mut h, "plate", "seed", fixed);
    h.run_steps(2);
    assert_eq!(run(&mut h), fed);
}
