//! Peak resident memory over a long batch: the node cache's budget must hold, so peak RSS at
//! item 10,000 stays within 5% of the peak at item 1,000 (docs/ARCHITECTURE.md, "Hostile
//! input"). Runs an example recipe through the same batch runner as `defect-studio run`
//! (executor, store, output folder) and prints the peak at each checkpoint.
//!
//! `cargo bench -p engine --bench batch_memory -- [RECIPE] [ITEMS]` (default
//! `examples/concrete-stain.json`, 10000 items).

use std::path::{Path, PathBuf};
use std::time::Instant;

use engine::exec::{CancelToken, Executor};
use engine::run::{plan, run_batch, BatchEvent, BatchJob, PlanSpec};
use nodes::GraphDoc;

/// `VmHWM` (peak resident set) or `VmRSS` of this process, in MiB, from /proc.
fn proc_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let recipe = args
        .first()
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("examples/concrete-stain.json"));
    let items: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let text = std::fs::read_to_string(&recipe).expect("the recipe");
    let doc = GraphDoc::from_json(&text).expect("a graph");
    let dir = tempfile::tempdir().expect("a temp folder");
    let base: &Path = recipe.parent().unwrap_or(Path::new("."));
    let (plan, _) = plan(&PlanSpec {
        doc: &doc,
        base_dir: base,
        count: items,
        seed: 1,
        sweeps: &[],
        shard: None,
    })
    .expect("a plan");
    let job = BatchJob {
        doc,
        graph_name: "bench".into(),
        base_dir: base.to_path_buf(),
        items: plan,
        base_seed: 1,
        shard: None,
        out_dir: dir.path().join("out"),
        store_path: dir.path().join("store.redb"),
        targets: None,
        graph_path: None,
        embed_assets: false,
        device: None,
    };
    let mut exec = Executor::builtin();
    let started = Instant::now();
    let checkpoints: Vec<usize> = [100, 1_000, 2_000, 5_000, 10_000, 20_000]
        .into_iter()
        .filter(|&k| k as u64 <= items)
        .collect();
    let peaks = std::sync::Mutex::new(Vec::new());
    let emit = |e: BatchEvent| {
        if let BatchEvent::ItemFinished { item, .. } = e {
            let done = item + 1;
            if checkpoints.contains(&done) {
                let hwm = proc_mib("VmHWM:").unwrap_or(f64::NAN);
                let rss = proc_mib("VmRSS:").unwrap_or(f64::NAN);
                let s = started.elapsed().as_secs_f64();
                println!("item {done:>6}: peak RSS {hwm:8.1} MiB, RSS {rss:8.1} MiB, {s:7.1} s");
                if let Ok(mut p) = peaks.lock() {
                    p.push((done, hwm));
                }
            }
        }
    };
    let summary = run_batch(&mut exec, &job, &emit, &CancelToken::new()).expect("the batch");
    println!(
        "{} items of {} in {:.1} s ({:.1} items/s), {} outputs",
        items,
        recipe.display(),
        summary.seconds,
        items as f64 / summary.seconds.max(1e-9),
        summary.saved.len()
    );
    let p = peaks.into_inner().unwrap_or_default();
    let at = |k: usize| p.iter().find(|(d, _)| *d == k).map(|(_, m)| *m);
    if let (Some(a), Some(b)) = (at(1_000), at(items.min(10_000) as usize)) {
        let growth = (b / a - 1.0) * 100.0;
        println!(
            "peak at item {}: {:.1} MiB vs {:.1} MiB at item 1000: {:+.1}% (target ≤ +5%)",
            items.min(10_000),
            b,
            a,
            growth
        );
    }
}
