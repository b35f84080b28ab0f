//! The executor, tested with fake node kinds that count how often they run.

use std::path::Path;
use std::sync::{Arc, Mutex};

use engine::exec::{CancelToken, Event, Executor, NodeCtx, Registry, RunRequest};
use engine::{EngineError, Outputs, Value};
use nodes::{Catalogue, GraphDoc, NodeSpec, ParamSpec, PortSpec, PortType};

static SRC: NodeSpec = NodeSpec {
    kind: "Src",
    version: 1,
    category: "Test",
    doc: "An integer constant.",
    inputs: &[],
    outputs: &[PortSpec::new("out", PortType::Int, "")],
    params: &[ParamSpec::int("value", -1000, 1000, 1, "")],
    deterministic: true,
    sink: false,
};
static FILE_SRC: NodeSpec = NodeSpec {
    kind: "FileSrc",
    version: 1,
    category: "Test",
    doc: "The length of a file.",
    inputs: &[],
    outputs: &[PortSpec::new("out", PortType::Int, "")],
    params: &[ParamSpec::input_file("path", &["txt"], "")],
    deterministic: true,
    sink: false,
};
static SCALE: NodeSpec = NodeSpec {
    kind: "Scale",
    version: 1,
    category: "Test",
    doc: "x * factor.",
    inputs: &[PortSpec::new("x", PortType::Int, "")],
    outputs: &[PortSpec::new("out", PortType::Int, "")],
    params: &[ParamSpec::int("factor", -1000, 1000, 2, "")],
    deterministic: true,
    sink: false,
};
static ADD: NodeSpec = NodeSpec {
    kind: "Add",
    version: 1,
    category: "Test",
    doc: "a + b.",
    inputs: &[
        PortSpec::new("a", PortType::Int, ""),
        PortSpec::new("b", PortType::Int, ""),
    ],
    outputs: &[PortSpec::new("out", PortType::Int, "")],
    params: &[],
    deterministic: true,
    sink: false,
};
static RANDOM: NodeSpec = NodeSpec {
    kind: "Random",
    version: 1,
    category: "Test",
    doc: "Not deterministic.",
    inputs: &[],
    outputs: &[PortSpec::new("out", PortType::Int, "")],
    params: &[],
    deterministic: false,
    sink: false,
};
static SLOW: NodeSpec = NodeSpec {
    kind: "Slow",
    version: 1,
    category: "Test",
    doc: "Many steps.",
    inputs: &[PortSpec::new("x", PortType::Int, "")],
    outputs: &[PortSpec::new("out", PortType::Int, "")],
    params: &[ParamSpec::int("steps", 1, 100000, 1000, "")],
    deterministic: true,
    sink: false,
};
static BLOB: NodeSpec = NodeSpec {
    kind: "Blob",
    version: 1,
    category: "Test",
    doc: "A big output.",
    inputs: &[],
    outputs: &[PortSpec::new("out", PortType::Text, "")],
    params: &[
        ParamSpec::int("bytes", 0, 1 << 30, 1000, ""),
        ParamSpec::int("tag", 0, 1000, 0, ""),
    ],
    deterministic: true,
    sink: false,
};

type Log = Arc<Mutex<Vec<String>>>;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Value1 {
    value: i64,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Factor {
    factor: i64,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Steps {
    steps: u32,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct BlobParams {
    bytes: usize,
    tag: u32,
}

fn setup() -> (Executor, Log) {
    setup_with_budget(1 << 30)
}

fn setup_with_budget(budget: usize) -> (Executor, Log) {
    let log: Log = Arc::default();
    let mut r = Registry::new();
    let int = |ctx: &NodeCtx, port: &str| match ctx.input(port) {
        Some(Value::Int(i)) => *i,
        _ => 0,
    };
    let l = log.clone();
    r.register_typed("Src", move |ctx: &mut NodeCtx, p: Value1| {
        l.lock().unwrap().push(ctx.node.clone());
        Ok(out(p.value))
    });
    let l = log.clone();
    r.register("FileSrc", move |ctx: &mut NodeCtx| {
        l.lock().unwrap().push(ctx.node.clone());
        Ok(out(ctx.file("path")?.len() as i64))
    });
    let l = log.clone();
    r.register_typed("Scale", move |ctx: &mut NodeCtx, p: Factor| {
        l.lock().unwrap().push(ctx.node.clone());
        Ok(out(int(ctx, "x") * p.factor))
    });
    let l = log.clone();
    r.register("Add", move |ctx: &mut NodeCtx| {
        l.lock().unwrap().push(ctx.node.clone());
        Ok(out(int(ctx, "a") + int(ctx, "b")))
    });
    let l = log.clone();
    r.register("Random", move |ctx: &mut NodeCtx| {
        l.lock().unwrap().push(ctx.node.clone());
        Ok(out(7))
    });
    let l = log.clone();
    r.register_typed("Slow", move |ctx: &mut NodeCtx, p: Steps| {
        l.lock().unwrap().push(ctx.node.clone());
        let steps = p.steps;
        for i in 1..=steps {
            ctx.progress(i, steps, None)?;
        }
        Ok(out(int(ctx, "x")))
    });
    let l = log.clone();
    r.register_typed("Blob", move |ctx: &mut NodeCtx, p: BlobParams| {
        l.lock().unwrap().push(ctx.node.clone());
        let mut o = Outputs::new();
        o.insert("out", Value::Text("x".repeat(p.bytes).into()));
        Ok(o)
    });
    let cat = Catalogue::new(vec![&SRC, &FILE_SRC, &SCALE, &ADD, &RANDOM, &SLOW, &BLOB]);
    (Executor::new(cat, r, budget), log)
}

fn out(v: i64) -> Outputs {
    let mut o = Outputs::new();
    o.insert("out", Value::Int(v));
    o
}

fn doc(v: serde_json::Value) -> GraphDoc {
    let mut v = v;
    v["format"] = "defect-studio/graph".into();
    v["version"] = 1.into();
    GraphDoc::from_json(&v.to_string()).unwrap()
}

/// A→B, A→C, B+C→D, plus an unrelated E.
fn diamond() -> GraphDoc {
    doc(serde_json::json!({
        "nodes": {
            "A": {"kind": "Src", "version": 1, "params": {"value": 3}},
            "B": {"kind": "Scale", "version": 1, "params": {"factor": 2}},
            "C": {"kind": "Scale", "version": 1, "params": {"factor": 5}},
            "D": {"kind": "Add", "version": 1},
            "E": {"kind": "Src", "version": 1, "params": {"value": 99}}
        },
        "links": [
            {"from": ["A", "out"], "to": ["B", "x"]},
            {"from": ["A", "out"], "to": ["C", "x"]},
            {"from": ["B", "out"], "to": ["D", "a"]},
            {"from": ["C", "out"], "to": ["D", "b"]}
        ],
        "layout": {"A": {"pos": [0.0, 0.0]}}
    }))
}

fn run(exec: &mut Executor, log: &Log, doc: &GraphDoc, target: &str) -> (i64, Vec<String>) {
    run_in(exec, log, doc, target, Path::new("."))
}

fn run_in(
    exec: &mut Executor,
    log: &Log,
    doc: &GraphDoc,
    target: &str,
    base: &Path,
) -> (i64, Vec<String>) {
    log.lock().unwrap().clear();
    let req = RunRequest {
        doc,
        targets: Some(vec![target.into()]),
        run_seed: 0,
        base_dir: base,
    };
    let outcome = exec.run(&req, None, &|_| {}, &CancelToken::new()).unwrap();
    let v = match outcome.outputs[target].get("out") {
        Some(Value::Int(i)) => *i,
        other => panic!("no int output: {other:?}"),
    };
    let mut ran = log.lock().unwrap().clone();
    ran.sort();
    (v, ran)
}

#[test]
fn runs_only_the_needed_subgraph_in_order() {
    let (mut exec, log) = setup();
    let (v, ran) = run(&mut exec, &log, &diamond(), "D");
    assert_eq!(v, 3 * 2 + 3 * 5);
    assert_eq!(ran, ["A", "B", "C", "D"], "E must not run");
    let order = log.lock().unwrap().clone();
    assert_eq!(order.first().map(String::as_str), Some("A"));
    assert_eq!(order.last().map(String::as_str), Some("D"));
}

#[test]
fn editing_one_parameter_recomputes_exactly_its_node_and_dependents() {
    let (mut exec, log) = setup();
    let mut g = diamond();
    run(&mut exec, &log, &g, "D");
    let (_, ran) = run(&mut exec, &log, &g, "D");
    assert!(
        ran.is_empty(),
        "an unchanged graph recomputes nothing, ran {ran:?}"
    );
    g.nodes
        .get_mut("B")
        .unwrap()
        .params
        .insert("factor".into(), nodes::ParamValue::Int(4));
    let (v, ran) = run(&mut exec, &log, &g, "D");
    assert_eq!(ran, ["B", "D"]);
    assert_eq!(v, 3 * 4 + 3 * 5);
    // Back to the old value: everything is still cached.
    g.nodes
        .get_mut("B")
        .unwrap()
        .params
        .insert("factor".into(), nodes::ParamValue::Int(2));
    let (v, ran) = run(&mut exec, &log, &g, "D");
    assert!(ran.is_empty(), "ran {ran:?}");
    assert_eq!(v, 21);
}

#[test]
fn editing_layout_or_meta_recomputes_nothing() {
    let (mut exec, log) = setup();
    let mut g = diamond();
    run(&mut exec, &log, &g, "D");
    g.layout.get_mut("A").unwrap().pos = [500.0, 20.0];
    g.layout.insert(
        "D".into(),
        nodes::NodeLayout {
            pos: [1.0, 2.0],
            collapsed: true,
        },
    );
    g.meta.title = "renamed".into();
    let (_, ran) = run(&mut exec, &log, &g, "D");
    assert!(ran.is_empty(), "ran {ran:?}");
}

#[test]
fn a_default_written_out_is_the_same_signature() {
    let (mut exec, log) = setup();
    let mut g = diamond();
    run(&mut exec, &log, &g, "D");
    g.nodes.get_mut("D").unwrap().params.clear();
    g.nodes
        .get_mut("C")
        .unwrap()
        .params
        .insert("factor".into(), nodes::ParamValue::Int(5));
    let (_, ran) = run(&mut exec, &log, &g, "D");
    assert!(ran.is_empty(), "ran {ran:?}");
}

#[test]
fn changing_a_loaded_file_recomputes_its_consumers() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.txt"), b"12345").unwrap();
    let g = doc(serde_json::json!({
        "nodes": {
            "F": {"kind": "FileSrc", "version": 1, "params": {"path": "in.txt"}},
            "S": {"kind": "Scale", "version": 1},
            "K": {"kind": "Src", "version": 1},
            "T": {"kind": "Add", "version": 1}
        },
        "links": [
            {"from": ["F", "out"], "to": ["S", "x"]},
            {"from": ["S", "out"], "to": ["T", "a"]},
            {"from": ["K", "out"], "to": ["T", "b"]}
        ]
    }));
    let (mut exec, log) = setup();
    let (v, ran) = run_in(&mut exec, &log, &g, "T", dir.path());
    assert_eq!((v, ran.len()), (5 * 2 + 1, 4));
    // Same content rewritten: nothing recomputes (keys are content hashes, not times).
    std::fs::write(dir.path().join("in.txt"), b"12345").unwrap();
    let (_, ran) = run_in(&mut exec, &log, &g, "T", dir.path());
    assert!(ran.is_empty(), "ran {ran:?}");
    // New content of the same length: the file node and its consumers recompute, K does not.
    std::fs::write(dir.path().join("in.txt"), b"54321").unwrap();
    let (_, ran) = run_in(&mut exec, &log, &g, "T", dir.path());
    assert_eq!(ran, ["F", "S", "T"]);
    std::fs::write(dir.path().join("in.txt"), b"123").unwrap();
    let (v, _) = run_in(&mut exec, &log, &g, "T", dir.path());
    assert_eq!(v, 3 * 2 + 1);
}

#[test]
fn identical_deterministic_nodes_share_a_key_nondeterministic_ones_do_not() {
    let g = doc(serde_json::json!({
        "nodes": {
            "p": {"kind": "Src", "version": 1, "params": {"value": 4}},
            "q": {"kind": "Src", "version": 1, "params": {"value": 4}},
            "r1": {"kind": "Random", "version": 1},
            "r2": {"kind": "Random", "version": 1},
            "s": {"kind": "Add", "version": 1},
            "t": {"kind": "Add", "version": 1},
            "u": {"kind": "Add", "version": 1}
        },
        "links": [
            {"from": ["p", "out"], "to": ["s", "a"]},
            {"from": ["q", "out"], "to": ["s", "b"]},
            {"from": ["r1", "out"], "to": ["t", "a"]},
            {"from": ["r2", "out"], "to": ["t", "b"]},
            {"from": ["s", "out"], "to": ["u", "a"]},
            {"from": ["t", "out"], "to": ["u", "b"]}
        ]
    }));
    let (mut exec, log) = setup();
    let (_, ran) = run(&mut exec, &log, &g, "u");
    assert!(
        ran.contains(&"p".to_string()) ^ ran.contains(&"q".to_string()),
        "p and q share one computation: {ran:?}"
    );
    assert!(
        ran.contains(&"r1".to_string()) && ran.contains(&"r2".to_string()),
        "{ran:?}"
    );
}

#[test]
fn events_report_start_finish_and_cache_hits() {
    let (mut exec, _) = setup();
    let g = diamond();
    let events = Mutex::new(Vec::new());
    let emit = |e: Event| events.lock().unwrap().push(e);
    let req = RunRequest {
        doc: &g,
        targets: Some(vec!["D".into()]),
        run_seed: 0,
        base_dir: Path::new("."),
    };
    exec.run(&req, None, &emit, &CancelToken::new()).unwrap();
    let first: Vec<Event> = std::mem::take(&mut *events.lock().unwrap());
    assert_eq!(
        first
            .iter()
            .filter(|e| matches!(e, Event::NodeStarted { .. }))
            .count(),
        4
    );
    assert_eq!(
        first
            .iter()
            .filter(|e| matches!(e, Event::NodeFinished { cached: false, .. }))
            .count(),
        4
    );
    let outcome = exec.run(&req, None, &emit, &CancelToken::new()).unwrap();
    let second = events.lock().unwrap().clone();
    assert_eq!(
        second
            .iter()
            .filter(|e| matches!(e, Event::NodeStarted { .. }))
            .count(),
        0
    );
    assert_eq!(
        second
            .iter()
            .filter(|e| matches!(e, Event::NodeFinished { cached: true, .. }))
            .count(),
        4
    );
    assert!(outcome.stats.iter().all(|s| s.cached));
}

#[test]
fn cancel_stops_within_one_step() {
    let (mut exec, _) = setup();
    let g = doc(serde_json::json!({
        "nodes": {
            "a": {"kind": "Src", "version": 1},
            "slow": {"kind": "Slow", "version": 1, "params": {"steps": 100000}},
            "after": {"kind": "Scale", "version": 1}
        },
        "links": [
            {"from": ["a", "out"], "to": ["slow", "x"]},
            {"from": ["slow", "out"], "to": ["after", "x"]}
        ]
    }));
    let cancel = CancelToken::new();
    let steps = Mutex::new(0u32);
    let emit = |e: Event| {
        if let Event::NodeProgress { step, .. } = e {
            *steps.lock().unwrap() = step;
            if step == 3 {
                cancel.cancel();
            }
        }
    };
    let req = RunRequest {
        doc: &g,
        targets: Some(vec!["after".into()]),
        run_seed: 0,
        base_dir: Path::new("."),
    };
    let err = exec.run(&req, None, &emit, &cancel).unwrap_err();
    assert!(matches!(err, EngineError::Cancelled), "{err}");
    assert_eq!(
        *steps.lock().unwrap(),
        3,
        "the node went on after the cancel"
    );
    // A cancelled token stops the next run before any node.
    let (mut exec2, log2) = setup();
    let err = exec2.run(&req, None, &|_| {}, &cancel).unwrap_err();
    assert!(matches!(err, EngineError::Cancelled));
    assert!(log2.lock().unwrap().is_empty());
}

#[test]
fn cache_respects_its_memory_budget_lru() {
    let (mut exec, log) = setup_with_budget(2500);
    let blob = |tag: i64| {
        doc(
            serde_json::json!({"nodes": {"b": {"kind": "Blob", "version": 1, "params": {"bytes": 1000, "tag": tag}}}}),
        )
    };
    let run_blob = |exec: &mut Executor, tag: i64| {
        log.lock().unwrap().clear();
        let g = blob(tag);
        let req = RunRequest {
            doc: &g,
            targets: Some(vec!["b".into()]),
            run_seed: 0,
            base_dir: Path::new("."),
        };
        exec.run(&req, None, &|_| {}, &CancelToken::new()).unwrap();
        log.lock().unwrap().len()
    };
    assert_eq!(run_blob(&mut exec, 1), 1);
    assert_eq!(run_blob(&mut exec, 2), 1);
    assert_eq!(run_blob(&mut exec, 1), 0, "1 is cached");
    assert_eq!(run_blob(&mut exec, 3), 1); // evicts 2, the least recently used
    let (used, entries) = exec.cache_usage();
    assert!(
        used <= 2500 && entries == 2,
        "{used} bytes in {entries} entries"
    );
    assert_eq!(run_blob(&mut exec, 1), 0, "1 was used recently and stays");
    assert_eq!(run_blob(&mut exec, 2), 1, "2 was evicted");
    // An output larger than the whole budget is not cached at all.
    let big = doc(
        serde_json::json!({"nodes": {"b": {"kind": "Blob", "version": 1, "params": {"bytes": 5000}}}}),
    );
    let req = RunRequest {
        doc: &big,
        targets: Some(vec!["b".into()]),
        run_seed: 0,
        base_dir: Path::new("."),
    };
    exec.run(&req, None, &|_| {}, &CancelToken::new()).unwrap();
    log.lock().unwrap().clear();
    exec.run(&req, None, &|_| {}, &CancelToken::new()).unwrap();
    assert_eq!(log.lock().unwrap().len(), 1);
}

#[test]
fn errors_name_the_node() {
    let (mut exec, _) = setup();
    let g = doc(
        serde_json::json!({"nodes": {"f": {"kind": "FileSrc", "version": 1, "params": {"path": "does-not-exist.txt"}}}}),
    );
    let events = Mutex::new(Vec::new());
    let req = RunRequest {
        doc: &g,
        targets: Some(vec!["f".into()]),
        run_seed: 0,
        base_dir: Path::new("/nonexistent-dir"),
    };
    let err = exec
        .run(
            &req,
            None,
            &|e| events.lock().unwrap().push(e),
            &CancelToken::new(),
        )
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("\"f\"") && msg.contains("does-not-exist.txt"),
        "{msg}"
    );
    assert!(events
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, Event::NodeError { node, .. } if node == "f")));
    // Invalid graphs are refused before anything runs.
    let bad = doc(serde_json::json!({"nodes": {"s": {"kind": "Scale", "version": 1}}}));
    let req = RunRequest {
        doc: &bad,
        targets: Some(vec!["s".into()]),
        run_seed: 0,
        base_dir: Path::new("."),
    };
    let err = exec
        .run(&req, None, &|_| {}, &CancelToken::new())
        .unwrap_err();
    assert!(
        matches!(err, EngineError::Invalid(_)) && err.to_string().contains("\"s\""),
        "{err}"
    );
    // Unknown targets and graphs without sinks say so.
    let req = RunRequest {
        doc: &bad,
        targets: Some(vec!["zz".into()]),
        run_seed: 0,
        base_dir: Path::new("."),
    };
    assert!(exec.run(&req, None, &|_| {}, &CancelToken::new()).is_err());
}

#[test]
fn every_builtin_kind_has_an_executor() {
    let registry = Registry::builtin();
    let missing: Vec<&str> = Catalogue::builtin()
        .specs()
        .iter()
        .map(|s| s.kind)
        .filter(|k| !registry.contains(k))
        .collect();
    assert!(missing.is_empty(), "kinds without an executor: {missing:?}");
    assert!(!registry.contains("NoSuchKind"));
}

#[test]
fn seeds_resolve_from_the_run_seed() {
    // The built-in Noise node with a "from run" seed: a different run seed gives a different
    // field (and a different cache key), a fixed seed ignores the run seed.
    let mut exec = Executor::builtin();
    let field = |exec: &mut Executor, seed_param: serde_json::Value, run_seed: u64| -> Vec<f32> {
        let g = doc(
            serde_json::json!({"nodes": {"n": {"kind": "Noise", "version": 1, "params": {"width": 16, "height": 16, "seed": seed_param}}}}),
        );
        let req = RunRequest {
            doc: &g,
            targets: Some(vec!["n".into()]),
            run_seed,
            base_dir: Path::new("."),
        };
        let o = exec.run(&req, None, &|_| {}, &CancelToken::new()).unwrap();
        o.outputs["n"]["mask"].as_mask().unwrap().data.clone()
    };
    let run_mode = serde_json::json!({"mode": "run", "offset": 0});
    assert_ne!(
        field(&mut exec, run_mode.clone(), 1),
        field(&mut exec, run_mode.clone(), 2)
    );
    let off = serde_json::json!({"mode": "run", "offset": 1});
    assert_eq!(field(&mut exec, off, 1), field(&mut exec, run_mode, 2));
    let fixed = serde_json::json!({"mode": "fixed", "value": 9});
    assert_eq!(
        field(&mut exec, fixed.clone(), 1),
        field(&mut exec, fixed, 2)
    );
}

#[test]
fn every_builtin_kind_takes_a_parameter_struct_that_fits_its_spec() {
    let registry = Registry::builtin();
    let mut problems = Vec::new();
    for spec in Catalogue::builtin().specs() {
        match registry.check_params(spec) {
            Some(Ok(())) => {}
            Some(Err(e)) => problems.push(format!("{}: {e}", spec.kind)),
            None => problems.push(format!("{}: no typed executor", spec.kind)),
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

static RENAMED: NodeSpec = NodeSpec {
    kind: "Renamed",
    version: 1,
    category: "Test",
    doc: "A spec whose parameter the struct names differently.",
    inputs: &[],
    outputs: &[PortSpec::new("out", PortType::Int, "")],
    params: &[
        ParamSpec::float("radius", 0.0, 10.0, 1.0, ""),
        ParamSpec::int("count", 1, 10, 2, ""),
    ],
    deterministic: true,
    sink: false,
};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct RenamedParams {
    radius_px: f32,
    count: u32,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct FittingParams {
    radius: f32,
    count: u32,
}

#[test]
fn a_parameter_renamed_on_one_side_fails_the_spec_check() {
    let mut r = Registry::new();
    r.register_typed("Renamed", |_: &mut NodeCtx, _: RenamedParams| Ok(out(0)));
    let e = r.check_params(&RENAMED).unwrap().unwrap_err();
    assert!(e.contains("radius"), "{e}");
    r.register_typed("Renamed", |_: &mut NodeCtx, p: FittingParams| {
        Ok(out(p.count as i64))
    });
    assert_eq!(r.check_params(&RENAMED), Some(Ok(())));
    // An untyped registration has no check.
    r.register("Renamed", |_: &mut NodeCtx| Ok(out(0)));
    assert_eq!(r.check_params(&RENAMED), None);

    // At run time the same mismatch is an error naming the node, not a panic.
    r.register_typed("Renamed", |_: &mut NodeCtx, _: RenamedParams| Ok(out(0)));
    let mut exec = Executor::new(Catalogue::new(vec![&RENAMED]), r, 1 << 20);
    let g = GraphDoc::from_json(
        r#"{"format":"defect-studio/graph","version":1,"nodes":{"n":{"kind":"Renamed","version":1}}}"#,
    )
    .unwrap();
    let req = RunRequest {
        doc: &g,
        targets: Some(vec!["n".into()]),
        run_seed: 0,
        base_dir: Path::new("."),
    };
    let e = exec
        .run(&req, None, &|_| {}, &CancelToken::new())
        .unwrap_err();
    assert!(
        matches!(&e, EngineError::Node { node, .. } if node == "n")
            && e.to_string().contains("radius"),
        "{e}"
    );
}
