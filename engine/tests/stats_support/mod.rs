//! Shared by the statistics tests: a fixture store made of real batches and runs recorded
//! through the public `Store` API, and a brute-force count over its records, written
//! independently of `engine::stats` (plain loops over `runs()`, `outputs()`, `trainings()`).

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use engine::exec::{CancelToken, Executor};
use engine::run::{plan, run_batch, BatchEvent, BatchJob, PlanSpec};
use engine::stats::{
    iso_week, DeviceRow, GraphRow, KindRow, LabelRow, ModelRow, PeriodRow, Stats, StatsFilter,
    TrainingRow,
};
use engine::store::{
    NodeTiming, OutputRecord, RunModel, RunRecord, RunStatsInfo, RunStatus, Store, TrainingKind,
    TrainingRecord,
};
use nodes::GraphDoc;

pub const DAY_MS: u64 = 86_400_000;
/// 2026-11-30 (a Monday).
pub const BASE_DAY: u64 = 20_787;

pub fn at(day: u64, hour: u64) -> u64 {
    day * DAY_MS + hour * 3_600_000
}

pub fn graph(json: serde_json::Value) -> GraphDoc {
    let mut j = json;
    j["format"] = "defect-studio/graph".into();
    j["version"] = 1.into();
    GraphDoc::from_json(&j.to_string()).unwrap()
}

/// A solid plate with a scratch, saved with its mask as `scratch`.
pub fn plates() -> GraphDoc {
    graph(serde_json::json!({
        "nodes": {
            "solid": {"kind": "SolidColor", "version": 1, "params": {"width": 16, "height": 16}},
            "scratch": {"kind": "Scratch", "version": 1},
            "save": {"kind": "SaveImage", "version": 1, "params": {"label": "scratch"}}
        },
        "links": [
            {"from": ["solid", "image"], "to": ["scratch", "image"]},
            {"from": ["scratch", "image"], "to": ["save", "image"]},
            {"from": ["scratch", "mask"], "to": ["save", "mask"]}
        ]
    }))
}

/// A solid saved twice: as `dent` and as `scratch`.
pub fn bolts() -> GraphDoc {
    graph(serde_json::json!({
        "nodes": {
            "solid": {"kind": "SolidColor", "version": 1, "params": {"width": 8, "height": 8}},
            "noise": {"kind": "Noise", "version": 1, "params": {"width": 8, "height": 8}},
            "a": {"kind": "SaveImage", "version": 1, "params": {"label": "dent"}},
            "b": {"kind": "SaveImage", "version": 1, "params": {"label": "scratch"}}
        },
        "links": [
            {"from": ["solid", "image"], "to": ["a", "image"]},
            {"from": ["noise", "image"], "to": ["b", "image"]}
        ]
    }))
}

/// A detector (a file that is not one) scoring a solid: fails in LoadDetector, after the model
/// was recorded with its sha256.
pub fn inspect(detector: &Path) -> GraphDoc {
    graph(serde_json::json!({
        "nodes": {
            "solid": {"kind": "SolidColor", "version": 1, "params": {"width": 8, "height": 8}},
            "det": {"kind": "LoadDetector", "version": 1,
                    "params": {"model": detector.to_string_lossy()}},
            "classify": {"kind": "Classify", "version": 1},
            "save": {"kind": "SaveImage", "version": 1, "params": {"label": "good"}}
        },
        "links": [
            {"from": ["det", "detector"], "to": ["classify", "detector"]},
            {"from": ["solid", "image"], "to": ["classify", "image"]},
            {"from": ["solid", "image"], "to": ["save", "image"]}
        ]
    }))
}

/// A LoadImage of a file that is not a PNG: fails in LoadImage.
pub fn broken(file: &Path) -> GraphDoc {
    graph(serde_json::json!({
        "nodes": {
            "load": {"kind": "LoadImage", "version": 1,
                     "params": {"source": file.to_string_lossy()}},
            "save": {"kind": "SaveImage", "version": 1}
        },
        "links": [{"from": ["load", "image"], "to": ["save", "image"]}]
    }))
}

pub struct Batch<'a> {
    pub doc: GraphDoc,
    pub name: &'a str,
    pub count: u64,
    pub seed: u64,
    pub device: Option<&'a str>,
    /// Cancel once this many items finished.
    pub cancel_after: Option<usize>,
}

/// Runs a real batch into `store_path`; returns (run id, status).
pub fn run(base: &Path, store_path: &Path, b: Batch) -> (u64, RunStatus) {
    let (items, _) = plan(&PlanSpec {
        doc: &b.doc,
        base_dir: base,
        count: b.count,
        seed: b.seed,
        sweeps: &[],
        shard: None,
    })
    .unwrap();
    let job = BatchJob {
        doc: b.doc.clone(),
        graph_name: b.name.into(),
        base_dir: base.to_path_buf(),
        items,
        base_seed: b.seed,
        shard: None,
        out_dir: base.join("out"),
        store_path: store_path.to_path_buf(),
        targets: None,
        graph_path: None,
        embed_assets: false,
        device: b.device.map(str::to_string),
    };
    let mut exec = Executor::builtin();
    let cancel = CancelToken::new();
    let finished = std::cell::Cell::new(0usize);
    let emit = |e: BatchEvent| {
        if let BatchEvent::ItemFinished { .. } = e {
            finished.set(finished.get() + 1);
            if b.cancel_after.is_some_and(|n| finished.get() >= n) {
                cancel.cancel();
            }
        }
    };
    let s = run_batch(&mut exec, &job, &emit, &cancel).unwrap();
    (s.run_id, s.status)
}

fn timing(item: u64, node: &str, kind: &str, seconds: f64, cached: bool) -> NodeTiming {
    NodeTiming {
        item,
        node: node.into(),
        kind: kind.into(),
        seconds,
        cached,
    }
}

/// A diffusion run recorded through the `Store` API (no checkpoint needed): a checkpoint and a
/// LoRA on `cuda:0`, `items` items, outputs with `labels` (one per item, cycled), ending as
/// `end` (`None`: still running).
pub fn manual_run(
    store: &Store,
    graph: &str,
    started_ms: u64,
    items: u64,
    labels: &[&str],
    end: Option<RunStatus>,
    lora: &str,
) -> u64 {
    let mut rec = RunRecord {
        graph_name: graph.into(),
        graph_json: "{}".into(),
        items,
        started_ms,
        device: Some("cuda:0".into()),
        stats: RunStatsInfo {
            models: vec![
                RunModel {
                    role: "checkpoint".into(),
                    name: "sd15.safetensors".into(),
                    sha256: "c".repeat(64),
                    nodes: vec!["ckpt".into(), "gen".into(), "lora".into()],
                },
                RunModel {
                    role: "lora".into(),
                    name: lora.into(),
                    sha256: String::new(),
                    nodes: vec!["gen".into(), "lora".into()],
                },
            ],
            node_devices: [("ckpt", "cuda:0"), ("lora", "cuda:0"), ("gen", "cuda:0")]
                .into_iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            failed_kind: None,
        },
        ..RunRecord::default()
    };
    let id = store.begin_run(&rec).unwrap();
    for item in 0..items {
        let t = vec![
            timing(item, "ckpt", "LoadCheckpoint", 1.25, item > 0),
            timing(item, "lora", "LoraLoader", 0.3333, item > 0),
            timing(item, "gen", "Txt2Img", 2.0 + item as f64 * 0.1234567, false),
            timing(item, "save", "SaveImage", 0.01, false),
        ];
        store.add_run_usage(id, 1, &t).unwrap();
        rec.node_timings.extend(t);
        let label = labels[item as usize % labels.len()];
        store
            .add_output(&output(id, item, label, started_ms), b"png", None)
            .unwrap();
    }
    if end.is_none() {
        // Still running: its record as a mid-run update leaves it.
        store.update_run(id, &rec).unwrap();
    }
    if let Some(end) = end {
        rec.status = end;
        rec.ended_ms = Some(started_ms + 60_000);
        if end == RunStatus::Failed {
            rec.stats.failed_kind = Some("Txt2Img".into());
            rec.error = Some("gen: out of memory".into());
        }
        store.update_run(id, &rec).unwrap();
    }
    id
}

pub fn output(run_id: u64, item: u64, label: &str, ms: u64) -> OutputRecord {
    OutputRecord {
        run_id,
        item,
        node: "save".into(),
        seed: item,
        path: format!("/out/{run_id}-{item}.png"),
        sha256: "0".repeat(64),
        width: 8,
        height: 8,
        mask_path: None,
        mask_sha256: None,
        created_ms: ms,
        label: label.into(),
        overrides: serde_json::Value::Null,
        clean_path: None,
        clean_sha256: None,
        inspection: Default::default(),
    }
}

pub fn training(
    kind: TrainingKind,
    started_ms: u64,
    hours: f64,
    status: RunStatus,
) -> TrainingRecord {
    TrainingRecord {
        kind,
        name: "t".into(),
        model: "sd15".into(),
        model_sha256: None,
        data: "data".into(),
        lora_path: "t.safetensors".into(),
        lora_sha256: None,
        checkpoint_path: "t.ckpt".into(),
        params: serde_json::Value::Null,
        status,
        pid: std::process::id(),
        started_ms,
        ended_ms: (status != RunStatus::Running).then(|| started_ms + (hours * 3_600_000.0) as u64),
        steps_done: 1,
        steps_total: 1,
        resumed_from: 0,
        losses: Vec::new(),
        samples: Vec::new(),
        epochs: Vec::new(),
        error: None,
    }
}

/// Builds the fixture store in `base`: real batches (several graphs, labels, a failure in
/// LoadDetector and one in LoadImage, a cancelled run, a GPU run device), moved to other days
/// through `update_run`, diffusion runs through the `Store` API, and trainings.
pub fn fixture(base: &Path) -> std::path::PathBuf {
    let store_path = base.join("store.redb");
    std::fs::write(base.join("detector.safetensors"), b"not a detector").unwrap();
    std::fs::write(base.join("broken.png"), b"not a png").unwrap();
    let real = [
        Batch {
            doc: plates(),
            name: "plates",
            count: 3,
            seed: 1,
            device: None,
            cancel_after: None,
        },
        Batch {
            doc: bolts(),
            name: "bolts",
            count: 2,
            seed: 7,
            device: None,
            cancel_after: None,
        },
        Batch {
            doc: plates(),
            name: "plates",
            count: 4,
            seed: 2,
            device: None,
            cancel_after: Some(2),
        },
        Batch {
            doc: inspect(&base.join("detector.safetensors")),
            name: "inspect",
            count: 2,
            seed: 3,
            device: Some("cuda:1"),
            cancel_after: None,
        },
        Batch {
            doc: broken(&base.join("broken.png")),
            name: "broken",
            count: 1,
            seed: 4,
            device: None,
            cancel_after: None,
        },
        Batch {
            doc: bolts(),
            name: "bolts",
            count: 1,
            seed: 9,
            device: Some("cuda:1"),
            cancel_after: None,
        },
        Batch {
            doc: plates(),
            name: "plates",
            count: 2,
            seed: 5,
            device: None,
            cancel_after: None,
        },
    ];
    let mut ids = Vec::new();
    for (i, b) in real.into_iter().enumerate() {
        let (id, status) = run(base, &store_path, b);
        ids.push((i, id, status));
    }
    let store = Store::open(&store_path).unwrap();
    // Spread the real runs over two weeks (a run's day is the day it started).
    for (i, id, _) in &ids {
        let mut rec = store.run(*id).unwrap().unwrap();
        rec.started_ms = at(BASE_DAY + (*i as u64 * 3) % 11, 9 + *i as u64);
        rec.ended_ms = rec.ended_ms.map(|_| rec.started_ms + 1000);
        store.update_run(*id, &rec).unwrap();
    }
    let statuses: Vec<RunStatus> = ids.iter().map(|(_, _, s)| *s).collect();
    assert!(statuses.contains(&RunStatus::Failed), "{statuses:?}");
    assert!(statuses.contains(&RunStatus::Cancelled), "{statuses:?}");
    manual_run(
        &store,
        "diffusion",
        at(BASE_DAY + 1, 10),
        3,
        &["scratch", "dent"],
        Some(RunStatus::Succeeded),
        "rust.safetensors",
    );
    manual_run(
        &store,
        "diffusion",
        at(BASE_DAY + 1, 23),
        2,
        &["crack"],
        Some(RunStatus::Failed),
        "rust.safetensors",
    );
    manual_run(
        &store,
        "diffusion",
        at(BASE_DAY + 8, 1),
        2,
        &["dent"],
        Some(RunStatus::Cancelled),
        "oil.safetensors",
    );
    manual_run(
        &store,
        "plates",
        at(BASE_DAY + 12, 5),
        1,
        &[""],
        None,
        "rust.safetensors",
    );
    manual_run(
        &store,
        "diffusion",
        at(BASE_DAY - 1, 22),
        4,
        &["scratch"],
        Some(RunStatus::Succeeded),
        "oil.safetensors",
    );
    for (kind, day, hours, status) in [
        (TrainingKind::Lora, BASE_DAY, 1.5, RunStatus::Succeeded),
        (TrainingKind::Lora, BASE_DAY + 9, 0.25, RunStatus::Failed),
        (
            TrainingKind::Classifier,
            BASE_DAY + 2,
            0.5,
            RunStatus::Succeeded,
        ),
        (
            TrainingKind::Segmenter,
            BASE_DAY + 2,
            2.0,
            RunStatus::Cancelled,
        ),
        (TrainingKind::Lora, BASE_DAY + 3, 0.0, RunStatus::Running),
    ] {
        store
            .begin_training(&training(kind, at(day, 8), hours, status))
            .unwrap();
    }
    store_path
}

/// The filters the tests compare under.
pub fn filters() -> Vec<StatsFilter> {
    let f = |since: Option<u64>, until: Option<u64>, graph: Option<&str>, label: Option<&str>| {
        StatsFilter {
            since: since.map(|d| d as u32),
            until: until.map(|d| d as u32),
            graph: graph.map(str::to_string),
            label: label.map(str::to_string),
        }
    };
    vec![
        f(None, None, None, None),
        f(Some(BASE_DAY), None, None, None),
        f(None, Some(BASE_DAY + 3), None, None),
        f(Some(BASE_DAY + 1), Some(BASE_DAY + 8), None, None),
        f(Some(BASE_DAY + 3), Some(BASE_DAY + 3), None, None),
        f(None, None, Some("plates"), None),
        f(None, None, Some("diffusion"), None),
        f(None, None, None, Some("scratch")),
        f(None, None, None, Some("dent")),
        f(None, None, None, Some("nothing")),
        f(
            Some(BASE_DAY),
            Some(BASE_DAY + 9),
            Some("diffusion"),
            Some("scratch"),
        ),
        f(Some(BASE_DAY + 1), None, Some("bolts"), Some("dent")),
        f(Some(BASE_DAY + 5), Some(BASE_DAY + 4), None, None),
    ]
}

fn us(seconds: f64) -> u64 {
    (seconds * 1e6).round() as u64
}

fn secs(us: u64) -> f64 {
    us as f64 / 1e6
}

/// The statistics, counted by brute force over the store's records.
pub fn brute_force(store: &Store, f: &StatsFilter) -> Stats {
    let runs = store.runs().unwrap();
    let outputs = store.outputs(None).unwrap();
    let mut s = Stats {
        filter: f.clone(),
        ..Stats::default()
    };
    let mut days: BTreeMap<u32, (u64, u64, u64)> = BTreeMap::new();
    let mut graphs: BTreeMap<String, GraphRow> = BTreeMap::new();
    let mut labels: BTreeMap<String, u64> = BTreeMap::new();
    let mut kinds: BTreeMap<String, KindRow> = BTreeMap::new();
    let mut kind_us: BTreeMap<String, u64> = BTreeMap::new();
    let mut models: BTreeMap<(String, String, String), (u64, u64, u64)> = BTreeMap::new();
    let mut devices: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut total_us = 0u64;
    let mut graph_us: BTreeMap<String, u64> = BTreeMap::new();
    for (id, r) in &runs {
        let day = (r.started_ms / DAY_MS) as u32;
        if f.since.is_some_and(|x| day < x) || f.until.is_some_and(|x| day > x) {
            continue;
        }
        if f.graph.as_ref().is_some_and(|g| g != &r.graph_name) {
            continue;
        }
        let outs: Vec<&OutputRecord> = outputs
            .iter()
            .filter(|(_, o)| o.run_id == *id)
            .map(|(_, o)| o)
            .collect();
        let images = match &f.label {
            Some(l) => {
                let n = outs.iter().filter(|o| &o.label == l).count() as u64;
                if n == 0 {
                    continue;
                }
                n
            }
            None => outs.len() as u64,
        };
        for o in &outs {
            if !o.label.is_empty() && f.label.as_ref().is_none_or(|l| l == &o.label) {
                *labels.entry(o.label.clone()).or_default() += 1;
            }
        }
        s.totals.runs += 1;
        match r.status {
            RunStatus::Succeeded => s.totals.succeeded += 1,
            RunStatus::Failed => s.totals.failed += 1,
            RunStatus::Cancelled => s.totals.cancelled += 1,
            _ => s.totals.unfinished += 1,
        }
        let items: BTreeSet<u64> = r.node_timings.iter().map(|t| t.item).collect();
        s.totals.items += items.len() as u64;
        s.totals.images += images;
        let mut run_us = 0;
        let mut kinds_seen = BTreeSet::new();
        let mut node_us: BTreeMap<&str, u64> = BTreeMap::new();
        for t in &r.node_timings {
            let k = kinds.entry(t.kind.clone()).or_insert_with(|| KindRow {
                kind: t.kind.clone(),
                ..KindRow::default()
            });
            kinds_seen.insert(t.kind.clone());
            if t.cached {
                k.cached += 1;
                continue;
            }
            k.executed += 1;
            let u = us(t.seconds);
            *kind_us.entry(t.kind.clone()).or_default() += u;
            run_us += u;
            *node_us.entry(&t.node).or_default() += u;
            let dev = r
                .stats
                .node_devices
                .get(&t.node)
                .cloned()
                .unwrap_or_else(|| "cpu".into());
            devices.entry(dev).or_default().1 += u;
        }
        if let Some(k) = &r.stats.failed_kind {
            kinds
                .entry(k.clone())
                .or_insert_with(|| KindRow {
                    kind: k.clone(),
                    ..KindRow::default()
                })
                .failed += 1;
            kinds_seen.insert(k.clone());
        }
        for k in kinds_seen {
            kinds.get_mut(&k).unwrap().runs += 1;
        }
        if let Some(d) = &r.device {
            devices.entry(d.clone()).or_default().0 += 1;
        }
        for m in &r.stats.models {
            let e = models
                .entry((m.role.clone(), m.name.clone(), m.sha256.clone()))
                .or_default();
            e.0 += 1;
            e.1 += images;
            e.2 += m
                .nodes
                .iter()
                .map(|n| node_us.get(n.as_str()).copied().unwrap_or(0))
                .sum::<u64>();
        }
        total_us += run_us;
        let d = days.entry(day).or_default();
        d.0 += 1;
        d.1 += images;
        d.2 += run_us;
        let g = graphs
            .entry(r.graph_name.clone())
            .or_insert_with(|| GraphRow {
                graph: r.graph_name.clone(),
                ..GraphRow::default()
            });
        g.runs += 1;
        g.succeeded += u64::from(r.status == RunStatus::Succeeded);
        g.failed += u64::from(r.status == RunStatus::Failed);
        g.images += images;
        *graph_us.entry(r.graph_name.clone()).or_default() += run_us;
    }
    s.totals.seconds = secs(total_us);
    s.per_day = days
        .iter()
        .map(|(d, (r, i, u))| PeriodRow {
            period: engine::stats::format_day(*d),
            runs: *r,
            images: *i,
            seconds: secs(*u),
        })
        .collect();
    let mut weeks: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    for (d, (r, i, u)) in &days {
        let w = weeks.entry(iso_week(*d)).or_default();
        w.0 += r;
        w.1 += i;
        w.2 += u;
    }
    s.per_week = weeks
        .into_iter()
        .map(|(period, (runs, images, u))| PeriodRow {
            period,
            runs,
            images,
            seconds: secs(u),
        })
        .collect();
    s.graphs = graphs
        .into_values()
        .map(|mut g| {
            g.seconds = secs(graph_us[&g.graph]);
            g
        })
        .collect();
    s.labels = labels
        .into_iter()
        .map(|(label, images)| LabelRow { label, images })
        .collect();
    s.kinds = kinds
        .into_values()
        .map(|mut k| {
            k.seconds = secs(kind_us.get(&k.kind).copied().unwrap_or(0));
            k.failure_rate = if k.executed + k.failed == 0 {
                0.0
            } else {
                k.failed as f64 / (k.executed + k.failed) as f64
            };
            k
        })
        .collect();
    for ((role, name, sha256), (runs, images, u)) in models {
        let row = ModelRow {
            role: role.clone(),
            name,
            sha256,
            runs,
            images,
            seconds: secs(u),
        };
        if role == "lora" {
            s.loras.push(row);
        } else {
            s.models.push(row);
        }
    }
    s.devices = devices
        .into_iter()
        .filter(|(_, (r, u))| *r > 0 || *u > 0)
        .map(|(device, (runs, u))| DeviceRow {
            device,
            runs,
            seconds: secs(u),
        })
        .collect();
    let mut tr: BTreeMap<String, (u64, u64, u64, u64)> = BTreeMap::new();
    for (_, t) in store.trainings().unwrap() {
        let day = (t.started_ms / DAY_MS) as u32;
        if f.since.is_some_and(|x| day < x) || f.until.is_some_and(|x| day > x) {
            continue;
        }
        let e = tr.entry(t.kind.name().to_string()).or_default();
        e.0 += 1;
        e.1 += u64::from(t.status == RunStatus::Succeeded);
        e.2 += u64::from(t.status == RunStatus::Failed);
        if let Some(end) = t.ended_ms {
            e.3 += end - t.started_ms;
        }
    }
    s.trainings = tr
        .into_iter()
        .map(|(kind, (runs, succeeded, failed, ms))| TrainingRow {
            kind,
            runs,
            succeeded,
            failed,
            hours: ms as f64 / 3_600_000.0,
        })
        .collect();
    // The documented order.
    let most = |a: (u64, f64, &str), b: (u64, f64, &str)| {
        b.0.cmp(&a.0)
            .then(b.1.partial_cmp(&a.1).unwrap())
            .then(a.2.cmp(b.2))
    };
    s.graphs
        .sort_by(|a, b| most((a.runs, a.seconds, &a.graph), (b.runs, b.seconds, &b.graph)));
    s.kinds
        .sort_by(|a, b| most((a.runs, a.seconds, &a.kind), (b.runs, b.seconds, &b.kind)));
    for rows in [&mut s.models, &mut s.loras] {
        rows.sort_by(|a, b| {
            most((a.runs, a.seconds, &a.name), (b.runs, b.seconds, &b.name))
                .then(a.role.cmp(&b.role))
                .then(a.sha256.cmp(&b.sha256))
        });
    }
    s.devices.sort_by(|a, b| {
        most(
            (a.runs, a.seconds, &a.device),
            (b.runs, b.seconds, &b.device),
        )
    });
    s.labels
        .sort_by(|a, b| b.images.cmp(&a.images).then(a.label.cmp(&b.label)));
    s.trainings
        .sort_by(|a, b| b.runs.cmp(&a.runs).then(a.kind.cmp(&b.kind)));
    s
}
