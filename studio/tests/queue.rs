//! The queue panel: with the queue paused and three runs queued, the last is moved up to first
//! with the panel's buttons and the middle one removed; after Resume the runs execute in the new
//! order (the store's run records) and the removed one never runs.

mod common;
use common::*;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use egui_kittest::kittest::Queryable;
use studio::app::{AppCommand, RunState};

/// A small graph saved as `NAME.json` (runs are named after the file).
fn tiny(name: &str) -> PathBuf {
    let p = home().join(format!("{name}.json"));
    std::fs::write(
        &p,
        r#"{"format": "defect-studio/graph", "version": 2,
            "nodes": {"bg": {"kind": "SolidColor", "version": 1, "params": {"width": 16, "height": 12}},
                      "save": {"kind": "SaveImage", "version": 1}},
            "links": [{"from": ["bg", "image"], "to": ["save", "image"]}]}"#,
    )
    .unwrap();
    p
}

/// Opens each graph and presses ▶ Run.
fn queue_runs(h: &mut H, names: &[&str]) {
    for n in names {
        let ctx = h.ctx.clone();
        app(h).apply(&ctx, AppCommand::Open(tiny(n)));
        h.run_steps(2);
        h.get_by_label("▶ Run").click();
        h.run_steps(2);
    }
}

fn queued_labels(h: &mut H) -> Vec<String> {
    app(h)
        .queue
        .entries
        .iter()
        .map(|e| e.label.clone())
        .collect()
}

/// Steps until no run is queued or running.
fn wait_for_runs(h: &mut H) {
    let start = Instant::now();
    while app(h).running() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the runs did not finish"
        );
        std::thread::sleep(Duration::from_millis(20));
        h.step();
    }
    h.run_steps(3);
}

fn stored_runs() -> Vec<String> {
    let store = engine::Store::open(&engine::paths::store_path()).unwrap();
    store
        .runs()
        .unwrap()
        .into_iter()
        .map(|(_, r)| r.graph_name)
        .collect()
}

#[test]
fn reorder_the_queue() {
    let mut h = harness();
    h.run_steps(3);
    h.get_by_label("⏸ Pause").click_accesskit();
    h.run_steps(2);
    h.get_by_label("paused");
    queue_runs(&mut h, &["q-first", "q-second", "q-third"]);
    assert_eq!(queued_labels(&mut h), ["q-first", "q-second", "q-third"]);
    assert!(stored_runs().is_empty(), "nothing starts while paused");

    // The last one up twice: first.
    h.get_all_by_label("⬆").nth(2).unwrap().click_accesskit();
    h.run_steps(2);
    assert_eq!(queued_labels(&mut h), ["q-first", "q-third", "q-second"]);
    h.get_all_by_label("⬆").nth(1).unwrap().click_accesskit();
    h.run_steps(2);
    assert_eq!(queued_labels(&mut h), ["q-third", "q-first", "q-second"]);
    // Down for the (now) second, then remove the last.
    h.get_all_by_label("⬇").nth(1).unwrap().click_accesskit();
    h.run_steps(2);
    assert_eq!(queued_labels(&mut h), ["q-third", "q-second", "q-first"]);
    h.get_all_by_label("Remove")
        .nth(1)
        .unwrap()
        .click_accesskit();
    h.run_steps(2);
    assert_eq!(queued_labels(&mut h), ["q-third", "q-first"]);
    let removed = app(&mut h)
        .runs
        .iter()
        .find(|r| r.label == "q-second")
        .map(|r| r.state.clone());
    assert_eq!(removed, Some(RunState::Removed));

    // `DEFECT_STUDIO_SCREENSHOTS=DIR` saves the window as it looks here.
    if let Some(dir) = std::env::var_os("DEFECT_STUDIO_SCREENSHOTS") {
        let img = h.render().expect("render");
        img.save(PathBuf::from(dir).join("queue-panel.png"))
            .unwrap();
    }
    h.get_by_label("▶ Resume").click_accesskit();
    wait_for_runs(&mut h);
    assert_eq!(
        stored_runs(),
        ["q-third", "q-first"],
        "run in the new order, the removed one never"
    );
    let states: Vec<(String, RunState)> = app(&mut h)
        .runs
        .iter()
        .map(|r| (r.label.clone(), r.state.clone()))
        .collect();
    assert_eq!(
        states,
        [
            ("q-first".to_string(), RunState::Succeeded),
            ("q-second".to_string(), RunState::Removed),
            ("q-third".to_string(), RunState::Succeeded),
        ]
    );
    assert!(app(&mut h).queue.entries.is_empty());
}
