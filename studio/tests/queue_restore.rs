//! Batches queued in one session and never started are listed by the next one as "not started
//! (last session)"; one is discarded, "Resume all" runs the other.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use studio::app::{AppCommand, RunState, Settings, StudioApp};

type H = Harness<'static, Option<StudioApp>>;

fn harness() -> H {
    Harness::builder()
        .with_size([1600.0, 1000.0])
        .build_ui_state(
            |ui, app: &mut Option<StudioApp>| {
                let a =
                    app.get_or_insert_with(|| StudioApp::new(ui.ctx(), Settings::default(), None));
                a.ui(ui);
            },
            None,
        )
}

fn app(h: &mut H) -> &mut StudioApp {
    h.state_mut().as_mut().unwrap()
}

fn tiny(home: &std::path::Path, name: &str) -> PathBuf {
    let p = home.join(format!("{name}.json"));
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
fn queued_runs_of_the_last_session_are_shown_as_not_started() {
    let home = tempfile::tempdir().unwrap().keep();
    std::env::set_var("DEFECT_STUDIO_HOME", &home);
    {
        // Session 1: paused, two runs queued, then the studio closes.
        let mut h = harness();
        h.run_steps(3);
        h.get_by_label("⏸ Pause").click_accesskit();
        h.run_steps(2);
        for n in ["kept", "dropped"] {
            let ctx = h.ctx.clone();
            app(&mut h).apply(&ctx, AppCommand::Open(tiny(&home, n)));
            h.run_steps(2);
            h.get_by_label("▶ Run").click();
            h.run_steps(2);
        }
        assert_eq!(app(&mut h).queue.entries.len(), 2);
    }
    assert!(stored_runs().is_empty());

    // Session 2: both are listed as not started, and nothing runs by itself.
    let mut h = harness();
    h.run_steps(3);
    h.get_by_label("2 batches not started (last session)");
    h.get_by_label_contains("kept · 1 items · not started");
    h.get_by_label_contains("dropped · 1 items · not started");
    assert!(app(&mut h).queue.entries.is_empty());
    // Discard one (its ✖ is the second), resume the rest.
    h.get_all_by_label("✖").nth(1).unwrap().click_accesskit();
    h.run_steps(2);
    h.get_by_label("1 batches not started (last session)");
    h.get_by_label("Resume all").click_accesskit();
    h.run_steps(2);
    assert!(h.query_by_label_contains("not started").is_none());
    let start = Instant::now();
    while app(&mut h).running() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the run did not finish"
        );
        std::thread::sleep(Duration::from_millis(20));
        h.step();
    }
    h.run_steps(2);
    assert_eq!(stored_runs(), ["kept"]);
    let states: Vec<(String, RunState)> = app(&mut h)
        .runs
        .iter()
        .map(|r| (r.label.clone(), r.state.clone()))
        .collect();
    assert_eq!(states, [("kept".to_string(), RunState::Succeeded)]);
    assert!(engine::queue::pending_jobs(&engine::paths::store_path())
        .unwrap()
        .is_empty());
}
