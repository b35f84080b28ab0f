//! A queued batch's device: the run toolbar's device goes with the next batches ▶ Run submits,
//! and a waiting batch's device is changed in the queue panel (in the worker's queue and in the
//! store's queued row, so a restart keeps it). After Resume the batches run on their devices:
//! the one on `cpu` records `cpu`, the one sent to a GPU this build cannot use fails naming it.

mod common;
use common::*;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use egui_kittest::kittest::Queryable;
use engine::devices::{FakeGpus, GpuInfo};
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

fn run_graph(h: &mut H, name: &str) {
    let ctx = h.ctx.clone();
    app(h).apply(&ctx, AppCommand::Open(tiny(name)));
    h.run_steps(2);
    h.get_by_label("▶ Run").click();
    h.run_steps(2);
}

/// Picks `choice` in the combo labelled `label` (the `nth` of them).
fn pick(h: &mut H, label: &str, nth: usize, choice: &str) {
    h.get_all_by_label(label).nth(nth).unwrap().click();
    h.run_steps(2);
    h.get_all_by_label(choice).last().unwrap().click();
    h.run_steps(2);
}

fn devices(h: &mut H) -> Vec<Option<String>> {
    app(h)
        .queue
        .entries
        .iter()
        .map(|e| e.device.clone())
        .collect()
}

#[test]
fn queued_batches_target_devices() {
    let mut h = harness();
    h.run_steps(3);
    let gpu = |index: u32| GpuInfo {
        index,
        name: format!("Fake GPU {index}"),
        memory_total_bytes: 8 << 30,
        ..Default::default()
    };
    app(&mut h).set_gpu_provider(FakeGpus(vec![gpu(0), gpu(1)]));
    h.get_by_label("⏸ Pause").click_accesskit();
    h.run_steps(2);

    // The toolbar's device goes with the next batch; back to default for the second.
    pick(&mut h, "device", 0, "cpu");
    assert_eq!(app(&mut h).run_device.as_deref(), Some("cpu"));
    run_graph(&mut h, "qd-cpu");
    pick(&mut h, "device", 0, "default");
    run_graph(&mut h, "qd-gpu");
    assert_eq!(devices(&mut h), [Some("cpu".to_string()), None]);

    // The second waiting batch to cuda:1 through its combo.
    pick(&mut h, "on", 1, "cuda:1");
    assert_eq!(
        devices(&mut h),
        [Some("cpu".to_string()), Some("cuda:1".to_string())]
    );
    let kept: Vec<Option<String>> = engine::queue::pending_jobs(&engine::paths::store_path())
        .unwrap()
        .into_iter()
        .map(|(_, j)| j.device)
        .collect();
    assert_eq!(kept, [Some("cpu".to_string()), Some("cuda:1".to_string())]);

    // `DEFECT_STUDIO_SCREENSHOTS=DIR` saves the window as it looks here.
    if let Some(dir) = std::env::var_os("DEFECT_STUDIO_SCREENSHOTS") {
        let img = h.render().expect("render");
        img.save(PathBuf::from(dir).join("queue-devices.png"))
            .unwrap();
    }
    h.get_by_label("▶ Resume").click_accesskit();
    let start = Instant::now();
    while app(&mut h).running() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the runs did not finish"
        );
        std::thread::sleep(Duration::from_millis(20));
        h.step();
    }
    h.run_steps(3);
    let runs = engine::Store::open(&engine::paths::store_path())
        .unwrap()
        .runs()
        .unwrap();
    let on_cpu = runs.iter().find(|(_, r)| r.graph_name == "qd-cpu").unwrap();
    assert_eq!(on_cpu.1.device.as_deref(), Some("cpu"));
    if !cfg!(feature = "cuda") {
        let gpu_run = app(&mut h)
            .runs
            .iter()
            .find(|r| r.label == "qd-gpu")
            .map(|r| r.state.clone());
        match gpu_run {
            Some(RunState::Failed(e)) => assert!(e.contains("cuda:1"), "{e}"),
            other => panic!("the cuda:1 batch should fail in a CPU build: {other:?}"),
        }
    }
}
