//! Shared kittest helpers: one data folder per test binary, and the studio window in a harness.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

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

/// A 1600×1000 window with default settings, not yet drawn.
pub fn harness() -> H {
    home();
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
