//! The Settings window's devices section: with two fake GPUs their names and memory show;
//! choosing `cuda:1` as the default device and pressing Apply keeps it in the store
//! (`engine::devices::default_device`), and a new studio on the same data folder starts with it
//! selected; the devices are asked when Settings opens and on Refresh, not every frame; with no
//! NVIDIA driver the section says so.

mod common;
use common::*;

use egui_kittest::kittest::Queryable;
use engine::devices::{FakeGpus, GpuInfo, GpuProcess, GpuProvider, GpuStatus};

fn gpu(index: u32, name: &str, used_gib: u64, total_gib: u64) -> GpuInfo {
    GpuInfo {
        index,
        name: name.into(),
        uuid: Some(format!("GPU-fake-{index}")),
        memory_used_bytes: used_gib << 30,
        memory_total_bytes: total_gib << 30,
        utilization_percent: Some(37 + index),
        temperature_c: Some(55 + index),
        processes: vec![GpuProcess {
            pid: 4242 + index,
            name: Some("trainer".into()),
            memory_bytes: Some(1 << 30),
        }],
    }
}

fn two_gpus() -> FakeGpus {
    FakeGpus(vec![
        gpu(0, "NVIDIA RTX A6000", 3, 48),
        gpu(1, "NVIDIA GeForce RTX 4090", 20, 24),
    ])
}

/// A machine whose NVIDIA library cannot be loaded.
struct NoDriver;

impl GpuProvider for NoDriver {
    fn query(&self) -> GpuStatus {
        GpuStatus::NoDriver {
            reason: "libnvidia-ml.so.1: cannot open shared object file".into(),
        }
    }
}

fn open_settings(h: &mut H) {
    h.get_by_label("File").click();
    h.run_steps(2);
    h.get_by_label("Settings…").click();
    h.run_steps(3);
}

fn stored_default(h: &mut H) -> String {
    engine::devices::default_device(app(h).store.as_ref().expect("store")).unwrap()
}

#[test]
fn default_device_through_settings() {
    let mut h = harness();
    h.run_steps(3);
    app(&mut h).set_gpu_provider(two_gpus());
    open_settings(&mut h);
    h.get_by_label("NVIDIA RTX A6000");
    h.get_by_label("NVIDIA GeForce RTX 4090");
    h.get_by_label_contains("memory 3.0 GiB / 48.0 GiB");
    h.get_by_label_contains("memory 20.0 GiB / 24.0 GiB");
    h.get_by_label_contains("utilisation 38 % · 56 °C");
    h.get_by_label_contains("pid 4243 trainer (1.0 GiB)");
    h.get_by_label_contains("CPU: ");

    // Asked when Settings opened, again on Refresh, not per frame.
    let queries = app(&mut h).devices.queries;
    h.run_steps(10);
    assert_eq!(app(&mut h).devices.queries, queries);
    h.get_by_label("Refresh devices").click();
    h.run_steps(2);
    assert_eq!(app(&mut h).devices.queries, queries + 1);

    // Choose cuda:1 and apply.
    assert_eq!(stored_default(&mut h), "auto");
    h.get_by_label("Default device").click();
    h.run_steps(2);
    h.get_all_by_label("cuda:1").last().unwrap().click();
    h.run_steps(2);
    h.get_by_label("Apply").click();
    h.run_steps(2);
    assert_eq!(stored_default(&mut h), "cuda:1");
    assert_eq!(app(&mut h).settings.device, "cuda:1");
    drop(h);

    // A new studio on the same data folder (settings not carried over) starts with it.
    let mut h = harness();
    h.run_steps(3);
    assert_eq!(app(&mut h).settings.device, "cuda:1");
    app(&mut h).set_gpu_provider(two_gpus());
    open_settings(&mut h);
    let combo = h.get_by_label("Default device");
    assert_eq!(combo.value().as_deref(), Some("cuda:1"), "{combo:?}");

    // No driver: said so, and the choices are auto and cpu (and the kept cuda:1).
    app(&mut h).set_gpu_provider(NoDriver);
    h.run_steps(2);
    h.get_by_label_contains("no NVIDIA driver (libnvidia-ml.so.1: cannot open");
    assert!(h.query_by_label("NVIDIA RTX A6000").is_none());
    assert_eq!(app(&mut h).devices.targets(), ["cpu"]);
}
