//! Engine benchmarks: executor overhead per node, and store write throughput for 512×512 PNG
//! outputs. Run with `cargo bench -p engine --bench engine`; figures print as a table.

use std::path::Path;
use std::time::Instant;

use engine::exec::{CancelToken, Executor, NodeCtx, Registry, RunRequest};
use engine::run::{run_batch, BatchJob, WorkItem};
use engine::store::{now_ms, OutputRecord, Store};
use engine::{Outputs, Value};
use nodes::{Catalogue, GraphDoc, NodeDoc, NodeSpec, ParamSpec, PortRef, PortSpec, PortType};

static PASS: NodeSpec = NodeSpec {
    kind: "Pass",
    version: 1,
    category: "Bench",
    doc: "x + 1.",
    inputs: &[PortSpec::optional("x", PortType::Int, "")],
    outputs: &[PortSpec::new("out", PortType::Int, "")],
    params: &[ParamSpec::int("k", 0, 1 << 40, 0, "")],
    deterministic: true,
    sink: false,
};

fn chain(n: usize, k: i64) -> GraphDoc {
    let mut g = GraphDoc::new();
    for i in 0..n {
        let mut node = NodeDoc {
            kind: "Pass".into(),
            version: 1,
            params: Default::default(),
            param_inputs: Default::default(),
            subgraph: None,
        };
        node.params.insert(
            "k".into(),
            nodes::ParamValue::Int(if i == 0 { k } else { 0 }),
        );
        g.nodes.insert(format!("n{i:05}"), node);
        if i > 0 {
            g.links.push(nodes::Link {
                from: PortRef(format!("n{:05}", i - 1), "out".into()),
                to: PortRef(format!("n{i:05}"), "x".into()),
            });
        }
    }
    g
}

fn bench_executor() {
    let mut r = Registry::new();
    r.register("Pass", |ctx: &mut NodeCtx| {
        let x = match ctx.input("x") {
            Some(Value::Int(i)) => *i,
            _ => ctx.int("k")?,
        };
        let mut o = Outputs::new();
        o.insert("out", Value::Int(x + 1));
        Ok(o)
    });
    let mut exec = Executor::new(Catalogue::new(vec![&PASS]), r, 1 << 30);
    let n = 2000;
    let reps = 5;
    let (mut cold, mut warm) = (f64::MAX, f64::MAX);
    for rep in 0..reps {
        // A new head value each repetition: every node recomputes (cold), then all hit (warm).
        let g = chain(n, rep as i64 * 1000);
        let target = format!("n{:05}", n - 1);
        let req = RunRequest {
            doc: &g,
            targets: Some(vec![target]),
            run_seed: 0,
            base_dir: Path::new("."),
        };
        let t = Instant::now();
        exec.run(&req, None, &|_| {}, &CancelToken::new())
            .expect("cold run");
        cold = cold.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let o = exec
            .run(&req, None, &|_| {}, &CancelToken::new())
            .expect("warm run");
        warm = warm.min(t.elapsed().as_secs_f64());
        assert!(o.stats.iter().all(|s| s.cached));
    }
    println!("executor overhead, chain of {n} trivial nodes (best of {reps}, validation + planning + keys included):");
    println!("  executed      {:>8.2} µs/node", cold / n as f64 * 1e6);
    println!("  cache hit     {:>8.2} µs/node", warm / n as f64 * 1e6);
}

fn bench_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tex = engine::procedural::texture(&engine::procedural::TextureParams {
        kind: engine::procedural::TextureKind::BrushedMetal,
        width: 512,
        height: 512,
        seed: 1,
        scale: 1.0,
        color: [0.7, 0.72, 0.75],
        contrast: 1.0,
        angle_deg: 0.0,
    });
    let t = Instant::now();
    let png = engine::codec::encode_image_png(&tex, &[]).expect("png");
    let encode_s = t.elapsed().as_secs_f64();
    let store = Store::open(&dir.path().join("bench.redb")).expect("store");
    let n = 200;
    let t = Instant::now();
    for i in 0..n {
        let rec = OutputRecord {
            run_id: 1,
            item: i,
            node: "save".into(),
            seed: i,
            path: format!("/bench/{i}.png"),
            sha256: engine::hashing::sha256_hex(&png),
            width: 512,
            height: 512,
            mask_path: None,
            mask_sha256: None,
            created_ms: now_ms(),
            label: "defect".into(),
            overrides: serde_json::Value::Null,
            clean_path: None,
            clean_sha256: None,
            inspection: Default::default(),
        };
        store.add_output(&rec, &png, None).expect("commit");
    }
    let commit_s = t.elapsed().as_secs_f64();
    println!(
        "store writes, 512×512 brushed-metal PNG ({} KiB), {n} durable commits:",
        png.len() / 1024
    );
    println!(
        "  store commit only         {:>8.1} outputs/s",
        n as f64 / commit_s
    );
    println!("  PNG encode (one)          {:>8.1} ms", encode_s * 1e3);

    // The whole save path: a batch whose texture is cached after the first item, so each item is
    // PNG encode + mask encode + two file writes + one store commit.
    let g = GraphDoc::from_json(
        r#"{"format": "defect-studio/graph", "version": 1,
            "nodes": {"tex": {"kind": "Texture", "version": 1, "params": {"seed": {"mode": "fixed", "value": 1}}},
                      "m": {"kind": "ShapeMask", "version": 1},
                      "save": {"kind": "SaveImage", "version": 1}},
            "links": [{"from": ["tex", "image"], "to": ["save", "image"]},
                      {"from": ["m", "mask"], "to": ["save", "mask"]}]}"#,
    )
    .expect("graph");
    let items = 100;
    let job = BatchJob {
        doc: g,
        graph_name: "bench".into(),
        base_dir: dir.path().to_path_buf(),
        items: (0..items)
            .map(|i| WorkItem {
                index: i,
                seed: i,
                overrides: Vec::new(),
            })
            .collect(),
        base_seed: 0,
        shard: None,
        out_dir: dir.path().join("out"),
        store_path: dir.path().join("batch.redb"),
        targets: None,
        graph_path: None,
        embed_assets: false,
        device: None,
    };
    let mut exec = Executor::builtin();
    let t = Instant::now();
    let summary = run_batch(&mut exec, &job, &|_| {}, &CancelToken::new()).expect("batch");
    let batch_s = t.elapsed().as_secs_f64();
    assert_eq!(summary.saved.len(), items as usize);
    println!(
        "  full save path (PNG+mask encode, files, commit) {:>6.1} outputs/s over {items} items",
        items as f64 / batch_s
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing special. Both run it.
    println!(
        "defect-studio engine benchmarks ({})",
        if cfg!(debug_assertions) {
            "debug build"
        } else {
            "release build"
        }
    );
    bench_executor();
    bench_store();
}
