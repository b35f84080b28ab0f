//! Devices through runs: `device: auto` means the executor's device (and so the cache key
//! follows it), a batch records the device it ran on, a queued batch keeps its target device
//! through the store and a restart, and the studio can change a waiting batch's device.

mod batch_common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use batch_common::{store, texture_job};
use engine::exec::{CancelToken, Executor, Registry, RunRequest, DEFAULT_CACHE_BUDGET};
use engine::queue::pending_jobs;
use engine::run::BatchJob;
use engine::{devices, Outputs, Store, Value, Worker, WorkerEvent};
use nodes::{Catalogue, GraphDoc, NodeSpec, ParamSpec, PortSpec, PortType};

static ON_DEVICE: NodeSpec = NodeSpec {
    kind: "OnDevice",
    version: 1,
    category: "Test",
    doc: "",
    inputs: &[],
    outputs: &[PortSpec::new("text", PortType::Text, "")],
    params: &[ParamSpec::choice(
        "device",
        &["auto", "cpu", "cuda", "cuda:1"],
        "auto",
        "",
    )],
    deterministic: true,
    sink: false,
};

/// An executor whose one kind records each device it runs with.
fn counting(seen: Arc<Mutex<Vec<String>>>) -> Executor {
    let mut r = Registry::new();
    r.register("OnDevice", move |ctx| {
        let device = ctx.text("device")?.to_string();
        seen.lock().unwrap().push(device.clone());
        let mut o = Outputs::new();
        o.insert("text", Value::Text(device.into()));
        Ok(o)
    });
    Executor::new(Catalogue::new(vec![&ON_DEVICE]), r, DEFAULT_CACHE_BUDGET)
}

fn graph(v: serde_json::Value) -> GraphDoc {
    let mut v = v;
    v["format"] = "defect-studio/graph".into();
    v["version"] = 1.into();
    GraphDoc::from_json(&v.to_string()).unwrap()
}

fn run_all(exec: &mut Executor, doc: &GraphDoc) {
    let req = RunRequest {
        doc,
        targets: Some(doc.nodes.keys().cloned().collect()),
        run_seed: 0,
        base_dir: Path::new("."),
    };
    exec.run(&req, None, &|_| {}, &CancelToken::new()).unwrap();
}

#[test]
fn auto_means_the_executors_device_and_keys_follow_it() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut exec = counting(seen.clone());
    let doc = graph(serde_json::json!({
        "nodes": {
            "auto": {"kind": "OnDevice", "version": 1},
            "fixed": {"kind": "OnDevice", "version": 1, "params": {"device": "cuda:1"}}
        }
    }));
    let take = |seen: &Arc<Mutex<Vec<String>>>| {
        let mut v = std::mem::take(&mut *seen.lock().unwrap());
        v.sort();
        v
    };
    // Never set: `auto` stays for the node to choose.
    assert_eq!(exec.device(), "auto");
    run_all(&mut exec, &doc);
    assert_eq!(take(&seen), ["auto", "cuda:1"]);

    exec.set_device("cpu");
    run_all(&mut exec, &doc);
    assert_eq!(
        take(&seen),
        ["cpu"],
        "auto now means cpu: a new key; fixed is cached"
    );
    run_all(&mut exec, &doc);
    assert!(take(&seen).is_empty(), "the same device: every node cached");

    exec.set_device("cuda:0");
    run_all(&mut exec, &doc);
    assert_eq!(
        take(&seen),
        ["cuda:0"],
        "another device recomputes the auto node only"
    );
    exec.set_device("cpu");
    run_all(&mut exec, &doc);
    assert!(take(&seen).is_empty(), "back on cpu: still cached");
    // `auto` meaning cuda:1 is the very key of the node that names cuda:1.
    exec.set_device("cuda:1");
    run_all(&mut exec, &doc);
    assert!(take(&seen).is_empty(), "the same parameters: the same key");
}

/// A tiny procedural batch (a texture, saved) into `dir`'s store.
fn job(dir: &Path, name: &str, device: Option<&str>) -> BatchJob {
    texture_job(dir, name, 1, 16, 3, device)
}

/// How the next `n` batches ended (panics after a minute).
fn finished(worker: &Worker, n: usize) -> Vec<Result<u64, String>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut out = Vec::new();
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match worker.events().recv_timeout(left).expect("batches end") {
            WorkerEvent::Finished(r) => out.push(r.map(|s| s.run_id)),
            _ => continue,
        }
    }
    out
}

/// Each recorded run's graph name and device.
fn run_devices(dir: &Path) -> Vec<(String, Option<String>)> {
    Store::open(&store(dir))
        .unwrap()
        .runs()
        .unwrap()
        .into_iter()
        .map(|(_, r)| (r.graph_name, r.device))
        .collect()
}

#[test]
fn a_batch_records_its_target_else_the_default_device() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    devices::set_default_device(&Store::open(&store(d)).unwrap(), "cpu").unwrap();
    let worker = Worker::spawn(Executor::builtin());
    worker.submit(job(d, "default", None)).unwrap();
    worker.submit(job(d, "target", Some("CPU"))).unwrap();
    let auto = devices::resolve_device("auto").unwrap();
    worker.submit(job(d, "auto", Some("auto"))).unwrap();
    assert!(finished(&worker, 3).iter().all(Result::is_ok));
    assert_eq!(
        run_devices(d),
        [
            ("default".into(), Some("cpu".into())),
            ("target".into(), Some("cpu".into())),
            ("auto".into(), Some(auto)),
        ]
    );
    // A name that is not a device is refused when queued.
    let e = worker.submit(job(d, "bad", Some("tpu"))).unwrap_err();
    assert!(e.to_string().contains("\"tpu\""), "{e}");
}

#[test]
fn a_gpu_target_that_cannot_be_used_fails_naming_it() {
    if cfg!(feature = "cuda") {
        return; // a CUDA build may have that GPU
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let worker = Worker::spawn(Executor::builtin());
    worker.submit(job(d, "gpu", Some("cuda:3"))).unwrap();
    let ended = finished(&worker, 1);
    let e = ended[0].as_ref().unwrap_err();
    assert!(e.contains("cuda:3") && e.contains("target"), "{e}");
    // The default device a run falls back to is named as such.
    devices::set_default_device(&Store::open(&store(d)).unwrap(), "cuda:3").unwrap();
    worker.submit(job(d, "default-gpu", None)).unwrap();
    worker.submit(job(d, "override", Some("cpu"))).unwrap();
    let ended = finished(&worker, 2);
    let e = ended[0].as_ref().unwrap_err();
    assert!(e.contains("cuda:3") && e.contains("default device"), "{e}");
    assert!(ended[1].is_ok(), "a cpu target overrides the default");
    assert_eq!(run_devices(d), [("override".into(), Some("cpu".into()))]);
}

#[test]
fn a_queued_batch_keeps_its_device_through_the_store_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    {
        let first = Worker::spawn(Executor::builtin());
        first.pause();
        let a = first.submit(job(d, "a", Some("cpu"))).unwrap();
        let b = first.submit(job(d, "b", None)).unwrap();
        let c = first.submit(job(d, "c", None)).unwrap();
        let devices_now: Vec<Option<String>> =
            first.queue().into_iter().map(|e| e.device).collect();
        assert_eq!(devices_now, [Some("cpu".into()), None, None]);

        // The studio changes a waiting batch's device: the queue and the stored row follow.
        assert!(first.set_device(b, Some("cuda".into())));
        assert!(first.set_device(a, None));
        assert!(first.set_device(c, Some("cpu".into())));
        assert!(!first.set_device(c, Some("gpu0".into())), "not a device");
        assert!(!first.set_device(999, Some("cpu".into())), "no such job");
        let devices_now: Vec<Option<String>> =
            first.queue().into_iter().map(|e| e.device).collect();
        assert_eq!(
            devices_now,
            [None, Some("cuda:0".into()), Some("cpu".into())]
        );
        // Each change was reported: the last queue report has the new devices.
        let reported = first
            .events()
            .try_iter()
            .filter_map(|e| match e {
                WorkerEvent::Queue(q) => Some(q),
                _ => None,
            })
            .last()
            .unwrap();
        let reported: Vec<Option<String>> = reported.into_iter().map(|e| e.device).collect();
        assert_eq!(reported, devices_now);
        let stored: Vec<Option<String>> = Store::open(&store(d))
            .unwrap()
            .queued()
            .unwrap()
            .into_iter()
            .map(|(_, r)| r.device)
            .collect();
        assert_eq!(stored, [None, Some("cuda:0".into()), Some("cpu".into())]);
        // Dropped while paused: the rows stay for a later session.
    }
    let pending: Vec<(String, Option<String>)> = pending_jobs(&store(d))
        .unwrap()
        .into_iter()
        .map(|(_, j)| (j.graph_name, j.device))
        .collect();
    assert_eq!(
        pending,
        [
            ("a".into(), None),
            ("b".into(), Some("cuda:0".into())),
            ("c".into(), Some("cpu".into()))
        ]
    );
    devices::set_default_device(&Store::open(&store(d)).unwrap(), "cpu").unwrap();
    let second = Worker::spawn(Executor::builtin());
    second.pause();
    let restored = second.restore(&store(d)).unwrap();
    assert_eq!(restored.len(), 3);
    let devices_now: Vec<Option<String>> = second.queue().into_iter().map(|e| e.device).collect();
    assert_eq!(
        devices_now,
        [None, Some("cuda:0".into()), Some("cpu".into())]
    );
    // Before it runs, b is moved back to the CPU (a GPU is not there on every machine).
    assert!(second.set_device(restored[1], Some("cpu".into())));
    second.resume();
    assert!(finished(&second, 3).iter().all(Result::is_ok));
    assert_eq!(
        run_devices(d),
        [
            ("a".into(), Some("cpu".into())),
            ("b".into(), Some("cpu".into())),
            ("c".into(), Some("cpu".into()))
        ]
    );
    assert!(
        Store::open(&store(d)).unwrap().queued().unwrap().is_empty(),
        "every row was taken"
    );
}
