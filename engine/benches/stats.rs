//! Statistics over 100,000 stored runs (issue 22, target ≤ 200 ms): builds a store of 100,000
//! finished runs (20 recipes over a year, 1–3 outputs each with one of 5 labels, checkpoints,
//! LoRAs, three devices, some failed or cancelled) through `Store::import_runs` (the same
//! aggregate code as `begin_run`/`add_output`/`add_run_usage`/`update_run`, many runs per
//! transaction), then times `stats::stats` with no filter and with a date + graph + label
//! filter, and prints the medians. Run with `cargo bench -p engine --bench stats`.

use std::time::Instant;

use engine::stats::{parse_day, stats, StatsFilter};
use engine::store::{
    ImportRun, NodeTiming, OutputRecord, RunModel, RunRecord, RunStatsInfo, RunStatus, Store,
};

const N: usize = 100_000;
const PER_TX: usize = 5_000;
const REPEAT: usize = 9;
const DAY_MS: u64 = 86_400_000;
const LABELS: [&str; 5] = ["scratch", "dent", "stain", "crack", "chip"];

fn hash(i: usize) -> u64 {
    (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn run(i: usize, first_day: u64) -> ImportRun {
    let h = hash(i);
    let r = |k: u32| (h.rotate_left(k * 7) >> 16) as usize;
    let started_ms = (first_day + (i * 365 / N) as u64) * DAY_MS + (r(1) as u64 % DAY_MS);
    let diffusion = r(2) % 4 != 0;
    let status = match r(3) % 20 {
        0 => RunStatus::Failed,
        1 => RunStatus::Cancelled,
        _ => RunStatus::Succeeded,
    };
    let items = 1 + r(4) % 3;
    let mut stats = RunStatsInfo::default();
    let mut nodes: Vec<(&str, &str)> = vec![("save", "SaveImage")];
    if diffusion {
        let device = ["cuda:0", "cuda:1"][r(5) % 2];
        stats.models.push(RunModel {
            role: "checkpoint".into(),
            name: ["sd15.safetensors", "sdxl.safetensors", "turbo.safetensors"][r(6) % 3].into(),
            sha256: format!("{:064x}", r(6) % 3),
            nodes: vec!["ckpt".into(), "gen".into(), "lora".into()],
        });
        stats.models.push(RunModel {
            role: "lora".into(),
            name: format!("lora-{}.safetensors", r(7) % 6),
            sha256: format!("{:064x}", 100 + r(7) % 6),
            nodes: vec!["gen".into(), "lora".into()],
        });
        for n in ["ckpt", "lora", "gen"] {
            stats.node_devices.insert(n.into(), device.into());
        }
        nodes.extend([
            ("ckpt", "LoadCheckpoint"),
            ("lora", "LoraLoader"),
            ("gen", "Txt2Img"),
            ("scratch", "Scratch"),
        ]);
    } else {
        nodes.extend([("solid", "Texture"), ("crack", "Crack"), ("dent", "Dent")]);
    }
    if status == RunStatus::Failed {
        stats.failed_kind = Some(nodes[nodes.len() - 1].1.to_string());
    }
    let mut node_timings = Vec::new();
    for item in 0..items as u64 {
        for (k, (node, kind)) in nodes.iter().enumerate() {
            node_timings.push(NodeTiming {
                item,
                node: (*node).into(),
                kind: (*kind).into(),
                seconds: (r(8 + k as u32) % 5000) as f64 / 1000.0,
                cached: item > 0 && k % 2 == 1,
            });
        }
    }
    let record = RunRecord {
        graph_name: format!("recipe-{}", r(9) % 20),
        graph_json: "{}".into(),
        seed: h,
        items: items as u64,
        status,
        started_ms,
        ended_ms: Some(started_ms + 60_000),
        node_timings,
        device: Some(if diffusion { "cuda:0" } else { "cpu" }.into()),
        stats,
        ..RunRecord::default()
    };
    let outputs = (0..items as u64)
        .map(|item| {
            let rec = OutputRecord {
                run_id: 0,
                item,
                node: "save".into(),
                seed: h + item,
                path: format!("/out/{i}-{item}.png"),
                sha256: format!("{:064x}", h + item),
                width: 512,
                height: 512,
                mask_path: None,
                mask_sha256: None,
                created_ms: started_ms,
                label: LABELS[(r(10) + item as usize) % 5].into(),
                overrides: serde_json::Value::Null,
                clean_path: None,
                clean_sha256: None,
                inspection: Default::default(),
            };
            (rec, b"png".to_vec())
        })
        .collect();
    ImportRun { record, outputs }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time(store: &Store, filter: &StatsFilter) -> (f64, engine::stats::Stats) {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..REPEAT {
        let t = Instant::now();
        let s = stats(store, filter).expect("stats");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        last = Some(s);
    }
    (median(times), last.expect("repeated"))
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store.redb");
    let store = Store::open(&path).expect("store");
    let first_day = u64::from(parse_day("2025-12-01").expect("day"));
    let t = Instant::now();
    let mut batch = Vec::with_capacity(PER_TX);
    for i in 0..N {
        batch.push(run(i, first_day));
        if batch.len() == PER_TX || i + 1 == N {
            store.import_runs(&batch).expect("import");
            batch.clear();
        }
    }
    let build = t.elapsed().as_secs_f64();
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "built {N} runs in {build:.1} s ({:.0} runs/s), store {:.1} MB",
        N as f64 / build,
        size as f64 / 1e6
    );
    let (all_ms, all) = time(&store, &StatsFilter::default());
    assert_eq!(all.totals.runs, N as u64);
    println!(
        "stats, no filter: median {all_ms:.1} ms over {REPEAT} ({} runs, {} images, {} days, {} graphs)",
        all.totals.runs,
        all.totals.images,
        all.per_day.len(),
        all.graphs.len()
    );
    let filter = StatsFilter {
        since: Some(first_day as u32 + 90),
        until: Some(first_day as u32 + 180),
        graph: Some("recipe-3".into()),
        label: Some("scratch".into()),
    };
    let (some_ms, some) = time(&store, &filter);
    println!(
        "stats, 91 days + graph + label: median {some_ms:.1} ms over {REPEAT} ({} runs, {} images)",
        some.totals.runs, some.totals.images
    );
    let (year_ms, _) = time(
        &store,
        &StatsFilter {
            label: Some("dent".into()),
            ..StatsFilter::default()
        },
    );
    println!("stats, label only: median {year_ms:.1} ms over {REPEAT}");
    println!(
        "target: <= 200 ms: {}",
        if all_ms.max(some_ms).max(year_ms) <= 200.0 {
            "met"
        } else {
            "NOT met"
        }
    );
}
