//! Shared kittest helpers: one data folder per test binary, and the studio window in a harness.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use studio::app::{Settings, StudioApp};

/// The studio window under test (created on the first frame, so it gets the harness's context).
pub type H = Harness<'static, Option<StudioApp>>;

/// One data folder for the test binary: `DEFECT_STUDIO_HOME` is read when the store is opened.
pub fn home() -> &'static PathBuf {
    static HOME: OnceLock<PathBuf> = OnceLock::new();
    HOME.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        std::env::set_var("DEFECT_STUDIO_HOME", &dir);
        dir
    })
}

/// A 1600×1000 window with default settings in this binary's data folder, not yet drawn.
pub fn harness() -> H {
    home();
    window()
}

/// A 1600×1000 window with default settings, not yet drawn, on whatever data folder
/// `DEFECT_STUDIO_HOME` names (a test binary with its own folder sets it first).
pub fn window() -> H {
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

/// [`harness`] after three frames, so the canvas has laid out its nodes.
pub fn settled() -> H {
    let mut h = harness();
    h.run_steps(3);
    h
}

pub fn app(h: &mut H) -> &mut StudioApp {
    h.state_mut().as_mut().unwrap()
}

/// The whole document the editor holds.
pub fn doc(h: &mut H) -> nodes::GraphDoc {
    let a = app(h);
    a.doc.to_doc(&a.catalogue)
}

/// Presses ▶ Run and waits (at most 300 s) for the run it starts to succeed, then lets the
/// window settle; returns the run's index in `app.runs`. A failed run fails the test.
pub fn run_and_wait(h: &mut H) -> usize {
    click_and_wait_for_run(h, "▶ Run")
}

/// Clicks the button labelled `label` (▶ Run, ▶ Run to here) and waits as [`run_and_wait`].
pub fn click_and_wait_for_run(h: &mut H, label: &str) -> usize {
    use std::time::{Duration, Instant};
    use studio::app::RunState;
    let index = app(h).runs.len();
    h.get_by_label(label).click();
    let start = Instant::now();
    loop {
        h.step();
        match app(h).runs.get(index).map(|r| r.state.clone()) {
            Some(RunState::Succeeded) => break,
            Some(RunState::Failed(e)) => panic!("run failed: {e}"),
            _ => {}
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "the run did not finish"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    h.run_steps(3);
    index
}

/// A primary-button drag from `a` to `b` in `moves` pointer moves, a frame after each.
pub fn drag(h: &mut H, a: egui::Pos2, b: egui::Pos2, moves: usize) {
    use egui::{Modifiers, PointerButton};
    h.event(egui::Event::PointerMoved(a));
    h.run_steps(1);
    h.event(egui::Event::PointerButton {
        pos: a,
        button: PointerButton::Primary,
        pressed: true,
        modifiers: Modifiers::NONE,
    });
    h.run_steps(1);
    for i in 1..=moves {
        h.event(egui::Event::PointerMoved(
            a + (b - a) * (i as f32 / moves as f32),
        ));
        h.run_steps(1);
    }
    h.event(egui::Event::PointerButton {
        pos: b,
        button: PointerButton::Primary,
        pressed: false,
        modifiers: Modifiers::NONE,
    });
    h.run_steps(3);
}

/// Clicks an output's thumbnail in the gallery (once the thumbnails have loaded).
pub fn select_output(h: &mut H, id: u64) {
    let label = format!("output {id}");
    for _ in 0..20 {
        if h.query_by_label(&label).is_some() {
            break;
        }
        h.step();
    }
    h.get_by_label(&label).click_accesskit();
    h.run_steps(3);
    let selected: Vec<u64> = app(h).gallery.selected.iter().copied().collect();
    assert_eq!(selected, [id]);
}

/// Opens the selected output's "Send to…" menu and clicks `item`.
pub fn send_to(h: &mut H, item: &str) {
    h.get_by_label("Send to…").click();
    h.run_steps(2);
    h.get_by_label(item).click();
    h.run_steps(3);
}

/// Steps frames until `done` holds (background jobs: scans, hashes, fetches), for at most
/// `secs` seconds, then two more.
pub fn wait_for(h: &mut H, what: &str, secs: u64, done: impl Fn(&StudioApp) -> bool) {
    use std::time::{Duration, Instant};
    let start = Instant::now();
    while !done(h.state().as_ref().unwrap()) {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "timed out waiting for {what}"
        );
        h.run_steps(1);
        std::thread::sleep(Duration::from_millis(20));
    }
    h.run_steps(2);
}
