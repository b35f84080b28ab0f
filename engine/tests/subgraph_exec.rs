//! The executor through subgraphs, reroutes and parameters fed by value nodes, with fake kinds
//! that count how often they run (as in executor.rs's diamond test).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use engine::exec::{CancelToken, Executor, NodeCtx, Registry, RunRequest};
use engine::{EngineError, Outputs, Value};
use nodes::subgraph::{
    Definition, ExposedOutput, ExposedParam, ExposedPort, SubgraphRef, PATH_SEP, REROUTE_KIND,
    SUBGRAPH_KIND,
};
use nodes::{
    Catalogue, GraphDoc, Link, NodeDoc, NodeLayout, NodeSpec, ParamSpec, ParamValue, PortRef,
    PortSpec, PortType, SeedValue,
};

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
/// A Txt2Img stand-in: outputs its (resolved) seed.
static GEN: NodeSpec = NodeSpec {
    kind: "Gen",
    version: 1,
    category: "Test",
    doc: "Outputs its seed.",
    inputs: &[],
    outputs: &[PortSpec::new("out", PortType::Int, "")],
    params: &[
        ParamSpec::seed("seed", ""),
        ParamSpec::int("steps", 1, 100, 20, ""),
    ],
    deterministic: true,
    sink: false,
};
/// Parameters of several kinds, echoed as JSON text.
static ECHO: NodeSpec = NodeSpec {
    kind: "Echo",
    version: 1,
    category: "Test",
    doc: "Echoes its parameters.",
    inputs: &[],
    outputs: &[PortSpec::new("out", PortType::Text, "")],
    params: &[
        ParamSpec::float("f", 0.0, 10.0, 1.0, ""),
        ParamSpec::choice("c", &["a", "b"], "a", ""),
        ParamSpec::text("t", "x", ""),
        ParamSpec::bool("b", false, ""),
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
#[allow(dead_code)]
struct GenParams {
    seed: u64,
    steps: u32,
}

fn setup() -> (Executor, Log) {
    let log: Log = Arc::default();
    // The built-in executors (value kinds) plus the fake kinds.
    let mut r = Registry::builtin();
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
    r.register_typed("Gen", move |ctx: &mut NodeCtx, p: GenParams| {
        l.lock().unwrap().push(ctx.node.clone());
        Ok(out(p.seed as i64))
    });
    let l = log.clone();
    r.register("Echo", move |ctx: &mut NodeCtx| {
        l.lock().unwrap().push(ctx.node.clone());
        let p: serde_json::Value = ctx.params()?;
        let mut o = Outputs::new();
        o.insert("out", Value::Text(p.to_string().into()));
        Ok(o)
    });
    let cat = Catalogue::new(vec![
        &SRC,
        &SCALE,
        &ADD,
        &GEN,
        &ECHO,
        &nodes::values::INT,
        &nodes::values::FLOAT,
        &nodes::values::TEXT,
        &nodes::values::SEED,
        &nodes::values::CHOICE,
        &nodes::values::REROUTE,
        &nodes::values::SUBGRAPH,
    ]);
    (Executor::new(cat, r, 1 << 30), log)
}

fn out(v: i64) -> Outputs {
    let mut o = Outputs::new();
    o.insert("out", Value::Int(v));
    o
}

fn pr(n: &str, p: &str) -> PortRef {
    PortRef(n.into(), p.into())
}

fn link(a: &str, ap: &str, b: &str, bp: &str) -> Link {
    Link {
        from: pr(a, ap),
        to: pr(b, bp),
    }
}

fn node(kind: &str, params: &[(&str, ParamValue)]) -> NodeDoc {
    let mut n = NodeDoc::new(kind, 1);
    for (k, v) in params {
        n.params.insert(k.to_string(), v.clone());
    }
    n
}

fn instance(hash: &str, name: &str, params: &[(&str, ParamValue)]) -> NodeDoc {
    let mut n = node(SUBGRAPH_KIND, params);
    n.subgraph = Some(SubgraphRef {
        hash: hash.into(),
        name: name.into(),
        library: false,
    });
    n
}

fn def(name: &str) -> Definition {
    Definition {
        name: name.into(),
        doc: String::new(),
        tags: Vec::new(),
        nodes: BTreeMap::new(),
        links: Vec::new(),
        inputs: Vec::new(),
        outputs: Vec::new(),
        params: Vec::new(),
        layout: BTreeMap::new(),
        frames: Vec::new(),
    }
}

fn exposed(name: &str, targets: &[(&str, &str)]) -> ExposedParam {
    ExposedParam {
        name: name.into(),
        targets: targets.iter().map(|(n, p)| pr(n, p)).collect(),
        doc: String::new(),
        default: None,
        min: None,
        max: None,
    }
}

/// "block": x → s1 (·2) and x → s2 (·3, through a reroute) → add. Exposes input `x`, output
/// `out`, params `f1` (s1's factor) and `f2` (s2's).
fn block() -> Definition {
    let mut d = def("block");
    d.nodes.insert(
        "s1".into(),
        node("Scale", &[("factor", ParamValue::Int(2))]),
    );
    d.nodes.insert(
        "s2".into(),
        node("Scale", &[("factor", ParamValue::Int(3))]),
    );
    d.nodes.insert("r".into(), NodeDoc::new(REROUTE_KIND, 1));
    d.nodes.insert("add".into(), NodeDoc::new("Add", 1));
    d.links = vec![
        link("s1", "out", "add", "a"),
        link("s2", "out", "r", "in"),
        link("r", "out", "add", "b"),
    ];
    d.inputs = vec![ExposedPort {
        name: "x".into(),
        targets: vec![pr("s1", "x"), pr("s2", "x")],
        doc: String::new(),
    }];
    d.outputs = vec![ExposedOutput {
        name: "out".into(),
        from: pr("add", "out"),
        doc: String::new(),
    }];
    d.params = vec![
        exposed("f1", &[("s1", "factor")]),
        exposed("f2", &[("s2", "factor")]),
    ];
    d.layout.insert(
        "s1".into(),
        NodeLayout {
            pos: [0.0, 0.0],
            collapsed: false,
        },
    );
    d
}

/// "outer": A (Src) → blk (block) → C (Scale ·1). Exposes `out`, `f1` (blk's f1) and `v`
/// (A's value). The top level: two instances o1, o2 of outer with the same parameters, T adds
/// their outputs, and A2 is a top-level Src like o1 › A.
fn graph() -> (GraphDoc, String, String) {
    let b = block();
    let bh = b.hash();
    let mut o = def("outer");
    o.nodes
        .insert("A".into(), node("Src", &[("value", ParamValue::Int(4))]));
    o.nodes.insert("blk".into(), instance(&bh, "block", &[]));
    o.nodes
        .insert("C".into(), node("Scale", &[("factor", ParamValue::Int(1))]));
    o.links = vec![link("A", "out", "blk", "x"), link("blk", "out", "C", "x")];
    o.outputs = vec![ExposedOutput {
        name: "out".into(),
        from: pr("C", "out"),
        doc: String::new(),
    }];
    o.params = vec![
        exposed("f1", &[("blk", "f1")]),
        exposed("v", &[("A", "value")]),
    ];
    let oh = o.hash();
    let mut doc = GraphDoc::new();
    doc.definitions.insert(bh.clone(), b);
    doc.definitions.insert(oh.clone(), o);
    doc.nodes.insert("o1".into(), instance(&oh, "outer", &[]));
    doc.nodes.insert("o2".into(), instance(&oh, "outer", &[]));
    doc.nodes.insert("T".into(), NodeDoc::new("Add", 1));
    doc.nodes
        .insert("A2".into(), node("Src", &[("value", ParamValue::Int(4))]));
    doc.links = vec![link("o1", "out", "T", "a"), link("o2", "out", "T", "b")];
    (doc, oh, bh)
}

fn p(parts: &[&str]) -> String {
    parts.join(PATH_SEP)
}

/// Runs `targets`; returns the outcome and the sorted ids of the nodes that ran.
fn run(
    exec: &mut Executor,
    log: &Log,
    doc: &GraphDoc,
    targets: &[&str],
    seed: u64,
) -> (engine::exec::RunOutcome, Vec<String>) {
    log.lock().unwrap().clear();
    let req = RunRequest {
        doc,
        targets: Some(targets.iter().map(|t| t.to_string()).collect()),
        run_seed: seed,
        base_dir: Path::new("."),
    };
    let outcome = exec.run(&req, None, &|_| {}, &CancelToken::new()).unwrap();
    let mut ran = log.lock().unwrap().clone();
    ran.sort();
    (outcome, ran)
}

fn int(o: &engine::exec::RunOutcome, id: &str) -> i64 {
    match o.outputs[id].get("out") {
        Some(Value::Int(i)) => *i,
        other => panic!("{id}: no int output: {other:?}"),
    }
}

#[test]
fn editing_one_exposed_parameter_recomputes_exactly_what_it_reaches() {
    let (mut exec, log) = setup();
    let (mut doc, _, bh) = graph();
    // First run: o2 is the same definition with the same parameters and inputs, so every one
    // of its nodes is a cache hit of o1's (keys hold no node ids for deterministic kinds).
    let (o, ran) = run(&mut exec, &log, &doc, &["T"], 0);
    let mut want = vec![
        p(&["o1", "A"]),
        p(&["o1", "C"]),
        p(&["o1", "blk", "add"]),
        p(&["o1", "blk", "s1"]),
        p(&["o1", "blk", "s2"]),
        "T".to_string(),
    ];
    want.sort();
    assert_eq!(ran, want);
    assert_eq!(int(&o, "T"), 2 * (4 * 2 + 4 * 3));
    let cached: Vec<&str> = o
        .stats
        .iter()
        .filter(|s| s.cached)
        .map(|s| s.node.as_str())
        .collect();
    assert!(
        cached.contains(&p(&["o2", "blk", "s1"]).as_str()),
        "{cached:?}"
    );

    // Nothing changed: everything is a hit.
    let (_, ran) = run(&mut exec, &log, &doc, &["T"], 0);
    assert!(ran.is_empty(), "{ran:?}");

    // One exposed parameter on o1: s1 (which it sets) and what depends on it recompute; s2,
    // A and all of o2 are hits.
    doc.nodes
        .get_mut("o1")
        .unwrap()
        .params
        .insert("f1".into(), ParamValue::Int(5));
    let (o, ran) = run(&mut exec, &log, &doc, &["T"], 0);
    let mut want = vec![
        p(&["o1", "C"]),
        p(&["o1", "blk", "add"]),
        p(&["o1", "blk", "s1"]),
        "T".to_string(),
    ];
    want.sort();
    assert_eq!(ran, want);
    assert_eq!(int(&o, "T"), (4 * 5 + 4 * 3) + (4 * 2 + 4 * 3));

    // Editing the definition's layout recomputes nothing (the hash leaves it out).
    let mut moved = doc.definitions[&bh].clone();
    moved.layout.get_mut("s1").unwrap().pos = [300.0, 40.0];
    let same = nodes::subgraph::replace_definition(&mut doc, &bh, moved).unwrap();
    assert_eq!(same, bh);
    let (_, ran) = run(&mut exec, &log, &doc, &["T"], 0);
    assert!(ran.is_empty(), "{ran:?}");

    // Editing inside the definition re-keys it (and the enclosing one): its nodes recompute,
    // for both instances; o1 › A and o2 › A too, since the scope chain is in their keys.
    let mut inner = doc.definitions[&bh].clone();
    inner.nodes.get_mut("add").unwrap().params.clear();
    inner.nodes.insert("extra".into(), node("Src", &[]));
    nodes::subgraph::replace_definition(&mut doc, &bh, inner).unwrap();
    let (_, ran) = run(&mut exec, &log, &doc, &["T"], 0);
    assert!(ran.contains(&p(&["o1", "blk", "s2"])), "{ran:?}");
    assert!(ran.contains(&p(&["o2", "blk", "s1"])), "{ran:?}");
}

#[test]
fn scope_chains_keep_inner_and_top_level_keys_apart() {
    let (mut exec, log) = setup();
    let (doc, _, _) = graph();
    let (_, ran) = run(&mut exec, &log, &doc, &["T", "A2"], 0);
    // A2 is a top-level Src like o1 › A, but not inside the definition: its own key.
    assert!(ran.contains(&"A2".to_string()), "{ran:?}");
    assert!(ran.contains(&p(&["o1", "A"])), "{ran:?}");
}

#[test]
fn a_subgraph_node_can_be_a_target_and_events_name_paths() {
    let (mut exec, log) = setup();
    let (mut doc, _, _) = graph();
    doc.nodes
        .get_mut("o2")
        .unwrap()
        .params
        .insert("v".into(), ParamValue::Int(10));
    let (o, ran) = run(&mut exec, &log, &doc, &["o2"], 0);
    assert_eq!(int(&o, "o2"), 10 * 2 + 10 * 3);
    assert!(ran.iter().all(|id| id.starts_with("o2 › ")), "{ran:?}");
    assert!(o.stats.iter().any(|s| s.node == p(&["o2", "blk", "add"])));
    let req = RunRequest {
        doc: &doc,
        targets: Some(vec!["ghost".into()]),
        run_seed: 0,
        base_dir: Path::new("."),
    };
    let e = exec
        .run(&req, None, &|_| {}, &CancelToken::new())
        .unwrap_err();
    assert!(e.to_string().contains("ghost"), "{e}");
}

#[test]
fn bad_subgraphs_are_refused_before_anything_runs() {
    let (mut exec, log) = setup();
    let (mut doc, oh, _) = graph();
    // A definition edited without being re-keyed.
    doc.definitions
        .get_mut(&oh)
        .unwrap()
        .nodes
        .get_mut("A")
        .unwrap()
        .params
        .insert("value".into(), ParamValue::Int(5));
    log.lock().unwrap().clear();
    let req = RunRequest {
        doc: &doc,
        targets: Some(vec!["T".into()]),
        run_seed: 0,
        base_dir: Path::new("."),
    };
    let e = exec
        .run(&req, None, &|_| {}, &CancelToken::new())
        .unwrap_err();
    assert!(matches!(e, EngineError::Invalid(_)), "{e}");
    assert!(e.to_string().contains("content hashes to"), "{e}");
    assert!(log.lock().unwrap().is_empty());
    // An out-of-range value inside names the path.
    let (mut doc, oh, _) = graph();
    let mut o = doc.definitions[&oh].clone();
    o.nodes
        .get_mut("A")
        .unwrap()
        .params
        .insert("value".into(), ParamValue::Int(5000));
    nodes::subgraph::replace_definition(&mut doc, &oh, o).unwrap();
    let req = RunRequest {
        doc: &doc,
        targets: Some(vec!["T".into()]),
        run_seed: 0,
        base_dir: Path::new("."),
    };
    let e = exec
        .run(&req, None, &|_| {}, &CancelToken::new())
        .unwrap_err();
    assert!(
        e.to_string().contains("node \"o1 › A\" param \"value\""),
        "{e}"
    );
}

/// One Seed node drives the seed of two generators through `param_inputs`.
fn seeded(seed: ParamValue) -> GraphDoc {
    let mut doc = GraphDoc::new();
    doc.nodes
        .insert("seed".into(), node("Seed", &[("seed", seed)]));
    for g in ["g1", "g2"] {
        // Different steps, so the two are not each other's cache hits.
        let steps = ParamValue::Int(if g == "g1" { 20 } else { 30 });
        let mut n = node("Gen", &[("seed", ParamValue::Int(1)), ("steps", steps)]);
        n.param_inputs.insert("seed".into());
        doc.nodes.insert(g.into(), n);
        doc.links.push(link("seed", "value", g, "seed"));
    }
    doc
}

#[test]
fn a_seed_node_drives_two_generators() {
    let (mut exec, log) = setup();
    let fixed = |v| ParamValue::Seed(SeedValue::Fixed { value: v });
    let (o, ran) = run(&mut exec, &log, &seeded(fixed(5)), &["g1", "g2"], 0);
    assert_eq!((int(&o, "g1"), int(&o, "g2")), (5, 5));
    assert_eq!(ran, vec!["g1", "g2"]);
    // Same seed: hits. Another seed: both keys change, both run.
    let (_, ran) = run(&mut exec, &log, &seeded(fixed(5)), &["g1", "g2"], 0);
    assert!(ran.is_empty(), "{ran:?}");
    let (o, ran) = run(&mut exec, &log, &seeded(fixed(6)), &["g1", "g2"], 0);
    assert_eq!((int(&o, "g1"), int(&o, "g2")), (6, 6));
    assert_eq!(ran, vec!["g1", "g2"]);
    // "From run": the run seed plus the offset reaches both.
    let run_mode = ParamValue::Seed(SeedValue::Run { offset: 3 });
    let (o, _) = run(
        &mut exec,
        &log,
        &seeded(run_mode.clone()),
        &["g1", "g2"],
        10,
    );
    assert_eq!((int(&o, "g1"), int(&o, "g2")), (13, 13));
    let (o, ran) = run(&mut exec, &log, &seeded(run_mode), &["g1", "g2"], 11);
    assert_eq!((int(&o, "g1"), int(&o, "g2")), (14, 14));
    assert_eq!(ran, vec!["g1", "g2"]);
    // Without the parameter shown as an input, the link is refused.
    let mut doc = seeded(fixed(5));
    doc.nodes.get_mut("g1").unwrap().param_inputs.clear();
    let req = RunRequest {
        doc: &doc,
        targets: None,
        run_seed: 0,
        base_dir: Path::new("."),
    };
    let e = exec
        .run(&req, None, &|_| {}, &CancelToken::new())
        .unwrap_err();
    assert!(e.to_string().contains("node \"g1\" input \"seed\""), "{e}");
}

#[test]
fn value_nodes_feed_parameters_of_every_kind() {
    let (mut exec, log) = setup();
    let mut doc = GraphDoc::new();
    doc.nodes
        .insert("i".into(), node("Int", &[("value", ParamValue::Int(3))]));
    doc.nodes.insert(
        "c".into(),
        node(
            "Choice",
            &[
                ("value", ParamValue::Text("b".into())),
                ("options", ParamValue::Text("a, b".into())),
            ],
        ),
    );
    doc.nodes.insert(
        "t".into(),
        node("Text", &[("value", ParamValue::Text("rust".into()))]),
    );
    let mut e = node("Echo", &[("t", ParamValue::Text("deep {input}".into()))]);
    for p in ["f", "c", "t", "b"] {
        e.param_inputs.insert(p.into());
    }
    doc.nodes.insert("e".into(), e);
    doc.links = vec![
        link("i", "value", "e", "f"),
        link("c", "value", "e", "c"),
        link("t", "value", "e", "t"),
        link("i", "value", "e", "b"),
    ];
    let (o, _) = run(&mut exec, &log, &doc, &["e"], 0);
    let text = match o.outputs["e"].get("out") {
        Some(Value::Text(t)) => t.to_string(),
        other => panic!("{other:?}"),
    };
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["f"], 3.0);
    assert_eq!(v["c"], "b");
    assert_eq!(v["t"], "deep rust");
    assert_eq!(v["b"], true);
    // A choice the parameter does not offer fails, naming the node and parameter.
    doc.nodes
        .get_mut("c")
        .unwrap()
        .params
        .insert("options".into(), ParamValue::Text(String::new()));
    doc.nodes
        .get_mut("c")
        .unwrap()
        .params
        .insert("value".into(), ParamValue::Text("z".into()));
    let req = RunRequest {
        doc: &doc,
        targets: Some(vec!["e".into()]),
        run_seed: 0,
        base_dir: Path::new("."),
    };
    let err = exec
        .run(&req, None, &|_| {}, &CancelToken::new())
        .unwrap_err();
    let m = err.to_string();
    assert!(m.contains("\"c\"") && m.contains("not one of a, b"), "{m}");
    // A Choice node refuses a value outside its own options.
    doc.nodes
        .get_mut("c")
        .unwrap()
        .params
        .insert("options".into(), ParamValue::Text("x,y".into()));
    let req = RunRequest {
        doc: &doc,
        targets: Some(vec!["e".into()]),
        run_seed: 0,
        base_dir: Path::new("."),
    };
    let err = exec
        .run(&req, None, &|_| {}, &CancelToken::new())
        .unwrap_err();
    assert!(
        err.to_string().contains("not one of the options (x, y)"),
        "{err}"
    );
}
