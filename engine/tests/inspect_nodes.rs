//! The inspection nodes (issue 20, docs/ARCHITECTURE.md §15): Classify and FilterByScore with
//! a fake detector (retries are deterministic and rejected items save nothing), MaskFidelity
//! on synthetic changes, recipe captions, parameters fed by links, and a PoD sweep.

use std::path::Path;
use std::sync::Arc;

use engine::exec::{CancelToken, Executor, Registry, RunRequest, DEFAULT_CACHE_BUDGET};
use engine::inspect::{DetectorKind, Score, Scorer};
use engine::run::{plan, pod::pod_report, run_batch, BatchJob, BatchSummary, PlanSpec, Sweep};
use engine::{Outputs, RunStatus, Store, Value};
use nodes::{Catalogue, GraphDoc, NodeSpec, ParamSpec, ParamValue, PortSpec, PortType};

/// A detector whose score is a function of the pixels, without weights.
struct Fake {
    labels: Vec<String>,
    rule: fn(&image::RgbImage) -> f32,
}

impl Scorer for Fake {
    fn kind(&self) -> DetectorKind {
        DetectorKind::Classifier
    }
    fn labels(&self) -> &[String] {
        &self.labels
    }
    fn sha256(&self) -> &str {
        "fake"
    }
    fn score(&self, images: &[image::RgbImage]) -> engine::Result<Vec<Score>> {
        Ok(images
            .iter()
            .map(|img| {
                let s = (self.rule)(img);
                Score {
                    score: s,
                    label: if s >= 0.5 { "defect" } else { "good" }.into(),
                    probs: vec![1.0 - s, s],
                    map: None,
                }
            })
            .collect())
    }
}

/// A pseudo-random score from the pixels' hash: about half the images pass 0.5.
fn hash_rule(img: &image::RgbImage) -> f32 {
    let h = engine::hashing::sha256_hex(img.as_raw());
    f32::from(u8::from_str_radix(&h[..2], 16).unwrap()) / 255.0
}

/// The contrast of the darkest pixel against the mid grey background, 0..1.
fn contrast_rule(img: &image::RgbImage) -> f32 {
    let min = img
        .pixels()
        .map(|p| (u32::from(p[0]) + u32::from(p[1]) + u32::from(p[2])) / 3)
        .min()
        .unwrap_or(128);
    ((128.0 - min as f32) / 128.0).clamp(0.0, 1.0)
}

/// The built-in executor with LoadDetector giving the fake detector.
fn executor(rule: fn(&image::RgbImage) -> f32) -> Executor {
    let mut r = Registry::builtin();
    r.register("LoadDetector", move |_ctx| {
        let mut o = Outputs::new();
        let fake = Fake {
            labels: vec!["good".into(), "defect".into()],
            rule,
        };
        o.insert("detector", Value::Detector(Arc::new(fake)));
        Ok(o)
    });
    Executor::new(Catalogue::builtin(), r, DEFAULT_CACHE_BUDGET)
}

fn doc(v: serde_json::Value) -> GraphDoc {
    let mut v = v;
    v["format"] = "defect-studio/graph".into();
    v["version"] = 1.into();
    GraphDoc::from_json(&v.to_string()).unwrap()
}

/// Texture → Scratch → Classify → FilterByScore → SaveImage, 32².
fn filtered(threshold: f64, max_attempts: i64) -> GraphDoc {
    doc(serde_json::json!({
        "nodes": {
            "tex": {"kind": "Texture", "version": 1, "params": {"width": 32, "height": 32}},
            "scratch": {"kind": "Scratch", "version": 1,
                        "params": {"count": 1, "length": 20.0, "width": 1.5}},
            "det": {"kind": "LoadDetector", "version": 1, "params": {"model": "fake"}},
            "classify": {"kind": "Classify", "version": 1},
            "filter": {"kind": "FilterByScore", "version": 1,
                       "params": {"threshold": threshold, "max_attempts": max_attempts}},
            "save": {"kind": "SaveImage", "version": 1, "params": {"filename": "{item:03}.png"}}
        },
        "links": [
            {"from": ["tex", "image"], "to": ["scratch", "image"]},
            {"from": ["det", "detector"], "to": ["classify", "detector"]},
            {"from": ["scratch", "image"], "to": ["classify", "image"]},
            {"from": ["classify", "score"], "to": ["filter", "score"]},
            {"from": ["scratch", "image"], "to": ["filter", "image"]},
            {"from": ["scratch", "mask"], "to": ["filter", "mask"]},
            {"from": ["filter", "image"], "to": ["save", "image"]},
            {"from": ["filter", "mask"], "to": ["save", "mask"]}
        ]
    }))
}

fn batch(
    exec: &mut Executor,
    doc: &GraphDoc,
    dir: &Path,
    count: u64,
    seed: u64,
    sweeps: &[Sweep],
) -> BatchSummary {
    // LoadDetector's file must exist (the run checks it first); the fake ignores it.
    let mut doc = doc.clone();
    if let Some(det) = doc.nodes.get_mut("det") {
        let model = dir.join("fake.safetensors");
        std::fs::write(&model, b"fake").unwrap();
        det.params.insert(
            "model".into(),
            ParamValue::Text(model.to_string_lossy().into_owned()),
        );
    }
    let doc = &doc;
    let (items, _) = plan(&PlanSpec {
        doc,
        base_dir: dir,
        count,
        seed,
        sweeps,
        shard: None,
    })
    .unwrap();
    let job = BatchJob {
        doc: doc.clone(),
        graph_name: "g".into(),
        base_dir: dir.to_path_buf(),
        items,
        base_seed: seed,
        shard: None,
        out_dir: dir.join("out"),
        store_path: dir.join("store.redb"),
        targets: None,
        graph_path: None,
        embed_assets: false,
        device: None,
    };
    run_batch(exec, &job, &|_| {}, &CancelToken::new()).unwrap()
}

/// (item, seed) of every stored output, sorted.
fn kept(dir: &Path) -> Vec<(u64, u64)> {
    let store = Store::open(&dir.join("store.redb")).unwrap();
    let mut v: Vec<(u64, u64)> = store
        .outputs(None)
        .unwrap()
        .into_iter()
        .map(|(_, o)| (o.item, o.seed))
        .collect();
    v.sort();
    v
}

#[test]
fn filter_retries_are_deterministic_and_recorded() {
    let doc = filtered(0.5, 8);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut exec = executor(hash_rule);
    let first = batch(&mut exec, &doc, a.path(), 12, 1000, &[]);
    assert_eq!(first.status, RunStatus::Succeeded, "{:?}", first.error);
    // A fresh executor (no cache) and the same seed keep the same items with the same seeds.
    let second = batch(&mut executor(hash_rule), &doc, b.path(), 12, 1000, &[]);
    assert_eq!(kept(a.path()), kept(b.path()));
    assert_eq!(first.items, second.items);
    // So does the same executor again, with its cache warm.
    let c = tempfile::tempdir().unwrap();
    batch(&mut exec, &doc, c.path(), 12, 1000, &[]);
    assert_eq!(kept(a.path()), kept(c.path()));

    // Some items were retried, and a retried item's output says which attempt it was.
    let retried: Vec<_> = first.items.iter().filter(|r| r.seeds.len() > 1).collect();
    assert!(
        !retried.is_empty(),
        "no item was retried: {:?}",
        first.items
    );
    let store = Store::open(&a.path().join("store.redb")).unwrap();
    let outputs = store.outputs(None).unwrap();
    for r in retried.iter().filter(|r| r.kept) {
        let (_, o) = outputs.iter().find(|(_, o)| o.item == r.index).unwrap();
        assert_eq!(o.seed, *r.seeds.last().unwrap());
        assert_eq!(o.inspection["attempt"], serde_json::json!(r.seeds.len()));
        assert!(o.inspection["filter.score"].as_f64().unwrap() >= 0.5);
        assert_eq!(r.reasons.len(), r.seeds.len() - 1);
        // Retry seeds are no item's own seed.
        for s in &r.seeds[1..] {
            assert!(!(1000..1012).contains(s), "{s}");
        }
    }
    // Every kept output passed the filter; the run record lists the retried items.
    for (_, o) in &outputs {
        assert!(o.inspection["filter.score"].as_f64().unwrap() >= 0.5);
        assert!(o.inspection.contains_key("classify.label"));
    }
    let run = store.run(first.run_id).unwrap().unwrap();
    assert_eq!(run.retries.len(), retried.len());
}

#[test]
fn items_that_never_pass_are_rejected_and_save_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // A score of 0.25 never reaches 1.0; 2 attempts.
    let doc = filtered(1.0, 2);
    let s = batch(&mut executor(|_| 0.25), &doc, dir.path(), 3, 7, &[]);
    assert_eq!(s.status, RunStatus::Succeeded);
    assert!(s.saved.is_empty());
    assert_eq!(s.items.len(), 3);
    for r in &s.items {
        assert!(!r.kept);
        assert_eq!(r.seeds.len(), 2);
        assert!(r.reasons[0].contains("filter"), "{}", r.reasons[0]);
        assert!(r.reasons[0].contains("0.2500"), "{}", r.reasons[0]);
    }
    let store = Store::open(&dir.path().join("store.redb")).unwrap();
    assert!(store.outputs(None).unwrap().is_empty());
    let run = store.run(s.run_id).unwrap().unwrap();
    assert_eq!(run.retries.len(), 3);
    assert!(run.retries.iter().all(|r| !r.kept && r.seeds.len() == 2));
}

/// clean = grey 32²; changed = a white 8×8 square pasted at (8, 8); the mask is the pasted
/// region (`inside`) or a 4×4 part of it (spilling).
fn fidelity_doc(inside: bool, action: &str) -> GraphDoc {
    let mask_from = if inside {
        serde_json::json!(["paste", "mask"])
    } else {
        serde_json::json!(["small", "mask"])
    };
    doc(serde_json::json!({
        "nodes": {
            "clean": {"kind": "SolidColor", "version": 1, "params": {"width": 32, "height": 32}},
            "top": {"kind": "SolidColor", "version": 1,
                    "params": {"width": 8, "height": 8, "color": "#ffffff"}},
            "paste": {"kind": "Composite", "version": 1, "params": {"x": 8, "y": 8}},
            "small": {"kind": "ShapeMask", "version": 1,
                      "params": {"shape": "rectangle", "x": 0.375, "y": 0.375,
                                 "size_x": 4.0, "size_y": 4.0, "feather": 0.0}},
            "fid": {"kind": "MaskFidelity", "version": 1,
                    "params": {"action": action, "max_attempts": 2}},
            "save": {"kind": "SaveImage", "version": 1}
        },
        "links": [
            {"from": ["top", "image"], "to": ["paste", "top"]},
            {"from": ["clean", "image"], "to": ["paste", "bottom"]},
            {"from": ["clean", "image"], "to": ["small", "like"]},
            {"from": ["clean", "image"], "to": ["fid", "clean"]},
            {"from": ["paste", "image"], "to": ["fid", "changed"]},
            {"from": mask_from, "to": ["fid", "mask"]},
            {"from": ["fid", "image"], "to": ["save", "image"]}
        ]
    }))
}

fn fidelity(exec: &mut Executor, doc: &GraphDoc) -> (f64, f64, i64) {
    let req = RunRequest {
        doc,
        targets: Some(vec!["fid".into()]),
        run_seed: 0,
        base_dir: Path::new("."),
    };
    let o = exec.run(&req, None, &|_| {}, &CancelToken::new()).unwrap();
    let out = &o.outputs["fid"];
    let f = |k: &str| match out.get(k) {
        Some(Value::Float(v)) => *v,
        other => panic!("{k}: {other:?}"),
    };
    let flagged = match out.get("flagged") {
        Some(Value::Int(i)) => *i,
        other => panic!("flagged: {other:?}"),
    };
    assert_eq!(o.notes["fid"]["flagged"], serde_json::json!(flagged == 1));
    (f("iou"), f("outside"), flagged)
}

#[test]
fn mask_fidelity_flags_a_change_that_spills_outside_the_mask() {
    let mut exec = Executor::builtin();
    let (iou, outside, flagged) = fidelity(&mut exec, &fidelity_doc(true, "flag"));
    assert_eq!((iou, outside, flagged), (1.0, 0.0, 0));
    // About 4×4 of the 8×8 change is inside the mask (IoU 16/64, 48/64 outside); the
    // rectangle's edge pixels may be partly covered, hence the margins.
    let (iou, outside, flagged) = fidelity(&mut exec, &fidelity_doc(false, "flag"));
    assert_eq!(flagged, 1);
    assert!((0.1..0.45).contains(&iou), "{iou}");
    assert!((0.55..0.9).contains(&outside), "{outside}");

    // action reject: the item is retried, then rejected; nothing is saved.
    let dir = tempfile::tempdir().unwrap();
    let s = batch(
        &mut exec,
        &fidelity_doc(false, "reject"),
        dir.path(),
        1,
        0,
        &[],
    );
    assert!(s.saved.is_empty());
    assert_eq!(s.items.len(), 1);
    assert!(!s.items[0].kept);
    assert!(s.items[0].reasons[0].contains("outside the mask"));
    // A flagged item is saved with its flag.
    let dir = tempfile::tempdir().unwrap();
    let s = batch(
        &mut exec,
        &fidelity_doc(false, "flag"),
        dir.path(),
        1,
        0,
        &[],
    );
    assert_eq!(s.saved.len(), 1);
    let store = Store::open(&dir.path().join("store.redb")).unwrap();
    let (_, o) = &store.outputs(None).unwrap()[0];
    assert_eq!(o.inspection["fid.flagged"], serde_json::json!(true));
}

/// Texture (brushed metal) → 2 scratches → 1 dent → SaveImage, with a Caption on the result.
fn captioned() -> GraphDoc {
    doc(serde_json::json!({
        "nodes": {
            "tex": {"kind": "Texture", "version": 1, "params": {"width": 32, "height": 32}},
            "scratch": {"kind": "Scratch", "version": 1,
                        "params": {"count": 2, "length": 12.0, "width": 1.0}},
            "dent": {"kind": "Dent", "version": 1, "params": {"radius": 4.0}},
            "cap": {"kind": "Caption", "version": 1},
            "save": {"kind": "SaveImage", "version": 1}
        },
        "links": [
            {"from": ["tex", "image"], "to": ["scratch", "image"]},
            {"from": ["scratch", "image"], "to": ["dent", "image"]},
            {"from": ["dent", "image"], "to": ["cap", "image"]},
            {"from": ["dent", "image"], "to": ["save", "image"]}
        ]
    }))
}

#[test]
fn a_known_recipe_gives_its_exact_caption() {
    let doc = captioned();
    let want = "brushed metal, 2 scratches, 1 dent";
    assert_eq!(
        engine::inspect::caption::caption_recipe(&doc).unwrap(),
        want
    );
    // The Caption node says the same.
    let req = RunRequest {
        doc: &doc,
        targets: Some(vec!["cap".into()]),
        run_seed: 3,
        base_dir: Path::new("."),
    };
    let o = Executor::builtin()
        .run(&req, None, &|_| {}, &CancelToken::new())
        .unwrap();
    match o.outputs["cap"].get("text") {
        Some(Value::Text(t)) => assert_eq!(&**t, want),
        other => panic!("{other:?}"),
    }
    // And so does the output PNG's recipe.
    let dir = tempfile::tempdir().unwrap();
    let s = batch(&mut Executor::builtin(), &doc, dir.path(), 1, 5, &[]);
    let png = &s.saved[0].path;
    assert_eq!(engine::inspect::caption::caption_png(png).unwrap(), want);
    // Counts follow the recipe; a sampler's prompt heads the caption instead of the material.
    let mut one = doc.clone();
    let n = one.nodes.get_mut("scratch").unwrap();
    n.params.insert("count".into(), ParamValue::Int(1));
    assert_eq!(
        engine::inspect::caption::caption_recipe(&one).unwrap(),
        "brushed metal, 1 scratch, 1 dent"
    );
    let prompted = doc_of(serde_json::json!({
        "nodes": {
            "ckpt": {"kind": "LoadCheckpoint", "version": 1, "params": {"checkpoint": "x"}},
            "gen": {"kind": "Txt2Img", "version": 1, "params": {"prompt": " steel plate "}},
            "stain": {"kind": "Stain", "version": 1},
            "save": {"kind": "SaveImage", "version": 1}
        },
        "links": [
            {"from": ["ckpt", "model"], "to": ["gen", "model"]},
            {"from": ["gen", "image"], "to": ["stain", "image"]},
            {"from": ["stain", "image"], "to": ["save", "image"]}
        ]
    }));
    assert_eq!(
        engine::inspect::caption::caption_recipe(&prompted).unwrap(),
        "steel plate, 2 stains"
    );
}

fn doc_of(v: serde_json::Value) -> GraphDoc {
    doc(v)
}

// A fake kind with a Text parameter that is an input, and a source of Text.
static SRC: NodeSpec = NodeSpec {
    kind: "Src",
    version: 1,
    category: "Test",
    doc: "",
    inputs: &[],
    outputs: &[PortSpec::new("text", PortType::Text, "")],
    params: &[ParamSpec::text("value", "", "")],
    deterministic: true,
    sink: false,
};
static ECHO: NodeSpec = NodeSpec {
    kind: "Echo",
    version: 1,
    category: "Test",
    doc: "",
    inputs: &[],
    outputs: &[PortSpec::new("text", PortType::Text, "")],
    params: &[
        ParamSpec::text("prompt", "", "").as_input(),
        ParamSpec::int("n", 0, 10, 1, "").as_input(),
    ],
    deterministic: true,
    sink: false,
};

fn echo_exec(runs: Arc<std::sync::atomic::AtomicUsize>) -> Executor {
    let mut r = Registry::new();
    r.register("Src", |ctx| {
        let mut o = Outputs::new();
        o.insert("text", Value::Text(ctx.text("value")?.into()));
        Ok(o)
    });
    r.register("Echo", move |ctx| {
        runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut o = Outputs::new();
        let n = ctx.int("n")?;
        o.insert(
            "text",
            Value::Text(format!("{} x{n}", ctx.text("prompt")?).into()),
        );
        Ok(o)
    });
    Executor::new(Catalogue::new(vec![&SRC, &ECHO]), r, DEFAULT_CACHE_BUDGET)
}

fn echo(exec: &mut Executor, source: &str, template: &str) -> String {
    let d = doc(serde_json::json!({
        "nodes": {
            "src": {"kind": "Src", "version": 1, "params": {"value": source}},
            "echo": {"kind": "Echo", "version": 1, "params": {"prompt": template}}
        },
        "links": [{"from": ["src", "text"], "to": ["echo", "prompt"]}]
    }));
    let req = RunRequest {
        doc: &d,
        targets: Some(vec!["echo".into()]),
        run_seed: 0,
        base_dir: Path::new("."),
    };
    let o = exec.run(&req, None, &|_| {}, &CancelToken::new()).unwrap();
    match o.outputs["echo"].get("text") {
        Some(Value::Text(t)) => t.to_string(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_text_link_fills_a_parameter_template() {
    let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut exec = echo_exec(runs.clone());
    assert_eq!(
        echo(&mut exec, "brushed metal", "{input}, deep scratch"),
        "brushed metal, deep scratch x1"
    );
    // Without the placeholder the template follows the input; empty gives the input alone.
    assert_eq!(echo(&mut exec, "cap", "deep"), "cap, deep x1");
    assert_eq!(echo(&mut exec, "cap", ""), "cap x1");
    assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 3);
    // The same input and template is a cache hit; another input text recomputes.
    echo(&mut exec, "cap", "");
    assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 3);
    assert_eq!(echo(&mut exec, "other", ""), "other x1");
    assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 4);

    // The parameter ports are inputs of the kind; a link of the wrong type is refused.
    let ports: Vec<(&str, PortType, bool)> = ECHO
        .input_ports()
        .iter()
        .map(|p| (p.name, p.ty, p.optional))
        .collect();
    assert_eq!(
        ports,
        [("prompt", PortType::Text, true), ("n", PortType::Int, true)]
    );
    let bad = doc(serde_json::json!({
        "nodes": {
            "src": {"kind": "Src", "version": 1},
            "echo": {"kind": "Echo", "version": 1}
        },
        "links": [{"from": ["src", "text"], "to": ["echo", "n"]}]
    }));
    let e = nodes::validate(&bad, exec.catalogue())
        .unwrap_err()
        .to_string();
    assert!(e.contains("echo") && e.contains("Int"), "{e}");
}

#[test]
fn sampler_prompts_take_text_links() {
    let cat = Catalogue::builtin();
    for kind in ["Txt2Img", "Img2Img", "Inpaint"] {
        let spec = cat.get(kind).unwrap();
        for name in ["prompt", "negative"] {
            let p = spec.input(name).unwrap();
            assert_eq!((p.ty, p.optional), (PortType::Text, true), "{kind}.{name}");
        }
    }
    // Caption → Txt2Img.prompt validates.
    let d = doc(serde_json::json!({
        "nodes": {
            "img": {"kind": "SolidColor", "version": 1},
            "cap": {"kind": "Caption", "version": 1},
            "ckpt": {"kind": "LoadCheckpoint", "version": 1, "params": {"checkpoint": "x"}},
            "gen": {"kind": "Txt2Img", "version": 1, "params": {"prompt": "{input}, deep scratch"}},
            "save": {"kind": "SaveImage", "version": 1}
        },
        "links": [
            {"from": ["img", "image"], "to": ["cap", "image"]},
            {"from": ["cap", "text"], "to": ["gen", "prompt"]},
            {"from": ["ckpt", "model"], "to": ["gen", "model"]},
            {"from": ["gen", "image"], "to": ["save", "image"]}
        ]
    }));
    nodes::validate(&d, &cat).unwrap();
    // No kind has a parameter port named like one of its declared inputs.
    for spec in cat.specs() {
        for p in spec.params.iter().filter(|p| p.input) {
            assert!(
                spec.inputs.iter().all(|i| i.name != p.name),
                "{}",
                spec.kind
            );
        }
    }
}

/// A solid grey 32² with one scratch of swept depth, scored by contrast.
#[test]
fn a_severity_sweep_gives_a_rising_pod_curve() {
    let d = doc(serde_json::json!({
        "nodes": {
            "bg": {"kind": "SolidColor", "version": 1, "params": {"width": 32, "height": 32}},
            "scratch": {"kind": "Scratch", "version": 1,
                        "params": {"count": 1, "length": 20.0, "width": 2.0}},
            "det": {"kind": "LoadDetector", "version": 1, "params": {"model": "fake"}},
            "classify": {"kind": "Classify", "version": 1, "params": {"threshold": 0.3}},
            "save": {"kind": "SaveImage", "version": 1}
        },
        "links": [
            {"from": ["bg", "image"], "to": ["scratch", "image"]},
            {"from": ["det", "detector"], "to": ["classify", "detector"]},
            {"from": ["scratch", "image"], "to": ["classify", "image"]},
            {"from": ["scratch", "image"], "to": ["save", "image"]}
        ]
    }));
    let sweeps = [Sweep {
        node: "scratch".into(),
        param: "depth".into(),
        values: [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
            .into_iter()
            .map(ParamValue::Float)
            .collect(),
    }];
    let dir = tempfile::tempdir().unwrap();
    let s = batch(&mut executor(contrast_rule), &d, dir.path(), 4, 11, &sweeps);
    assert_eq!(s.status, RunStatus::Succeeded, "{:?}", s.error);
    let pod = pod_report(&sweeps, &s.items).unwrap();
    assert_eq!(pod.parameter, "scratch.depth");
    assert_eq!(pod.classifier, "classify");
    let rates: Vec<f64> = pod.points.iter().map(|p| p.rate).collect();
    assert!(pod.points.iter().all(|p| p.n == 4), "{pod:?}");
    assert!(rates.windows(2).all(|w| w[0] <= w[1]), "{rates:?}");
    assert_eq!(rates[0], 0.0, "{rates:?}");
    assert_eq!(*rates.last().unwrap(), 1.0, "{rates:?}");
    for p in &pod.points {
        assert!(p.ci_low <= p.rate && p.rate <= p.ci_high, "{p:?}");
    }
}

#[test]
fn a_filter_that_nothing_reads_still_gates_the_item() {
    // Classify → FilterByScore (score only) beside Texture → SaveImage: the filter is a check,
    // so it runs in every item, before the sink, without its image ports.
    let d = doc(serde_json::json!({
        "nodes": {
            "tex": {"kind": "Texture", "version": 1, "params": {"width": 16, "height": 16}},
            "det": {"kind": "LoadDetector", "version": 1},
            "classify": {"kind": "Classify", "version": 1},
            "filter": {"kind": "FilterByScore", "version": 1,
                       "params": {"threshold": 0.5, "max_attempts": 1}},
            "save": {"kind": "SaveImage", "version": 1}
        },
        "links": [
            {"from": ["det", "detector"], "to": ["classify", "detector"]},
            {"from": ["tex", "image"], "to": ["classify", "image"]},
            {"from": ["classify", "score"], "to": ["filter", "score"]},
            {"from": ["tex", "image"], "to": ["save", "image"]}
        ]
    }));
    let dir = tempfile::tempdir().unwrap();
    let s = batch(&mut executor(hash_rule), &d, dir.path(), 8, 0, &[]);
    assert_eq!(s.status, RunStatus::Succeeded, "{:?}", s.error);
    let kept = s.items.iter().filter(|r| r.kept).count();
    assert_eq!(s.saved.len(), kept);
    assert!(kept > 0 && kept < 8, "{:?}", s.items);
}

// ---- end to end: a classifier trained by `run_classifier`, loaded by LoadDetector ----

#[path = "../../tests/tests/common/lite0.rs"]
#[allow(dead_code)]
mod lite0;

/// Class folders of 32² images: `good/` (noise) and `scratch/` (the same with a dark stroke).
fn class_folders(root: &Path, per_class: usize) {
    for (label, defect) in [("good", false), ("scratch", true)] {
        for k in 0..per_class {
            let img = image::RgbImage::from_fn(32, 32, |x, y| {
                let h = ((x * 31 + y * 17 + k as u32 * 7) % 40) as u8;
                let on = defect && (x as i64 - y as i64 - (k as i64 % 5)).abs() <= 1;
                let v = if on { 20 } else { 150 + h };
                image::Rgb([v, v, v])
            });
            let p = root.join(label).join(format!("{k:02}.png"));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            img.save(p).unwrap();
        }
    }
}

#[test]
fn a_trained_detector_file_classifies_a_sweep() {
    use engine::inspect::classifier::{run_classifier, ClassifierConfig, ClassifierJob};
    let Some(weights) = lite0::lite0_weights() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let train = dir.path().join("train");
    class_folders(&train, 8);
    let model = dir.path().join("clf.safetensors");
    let job = ClassifierJob {
        data: train,
        out: model.clone(),
        device: "cpu".into(),
        cfg: ClassifierConfig {
            epochs: 1,
            batch: 8,
            size: 32,
            val_fraction: 0.0,
            patience: 0,
            ..ClassifierConfig::default()
        },
        resume: false,
        store: None,
        weights: Some(weights.clone()),
    };
    run_classifier(&job, &CancelToken::default(), &mut |_| {}).unwrap();
    // The recipe names the real file; the builtin LoadDetector loads it.
    let d = doc(serde_json::json!({
        "nodes": {
            "bg": {"kind": "SolidColor", "version": 1,
                   "params": {"width": 32, "height": 32, "color": "#a0a0a0"}},
            "scratch": {"kind": "Scratch", "version": 1,
                        "params": {"count": 1, "length": 30.0, "width": 2.0}},
            "det": {"kind": "LoadDetector", "version": 1,
                    "params": {"model": model.to_string_lossy(), "device": "cpu"}},
            "classify": {"kind": "Classify", "version": 1},
            "save": {"kind": "SaveImage", "version": 1}
        },
        "links": [
            {"from": ["bg", "image"], "to": ["scratch", "image"]},
            {"from": ["det", "detector"], "to": ["classify", "detector"]},
            {"from": ["scratch", "image"], "to": ["classify", "image"]},
            {"from": ["scratch", "image"], "to": ["save", "image"]}
        ]
    }));
    let sweeps = [Sweep {
        node: "scratch".into(),
        param: "depth".into(),
        values: vec![ParamValue::Float(0.0), ParamValue::Float(1.0)],
    }];
    let (items, _) = plan(&PlanSpec {
        doc: &d,
        base_dir: dir.path(),
        count: 2,
        seed: 0,
        sweeps: &sweeps,
        shard: None,
    })
    .unwrap();
    let job = BatchJob {
        doc: d.clone(),
        graph_name: "g".into(),
        base_dir: dir.path().to_path_buf(),
        items,
        base_seed: 0,
        shard: None,
        out_dir: dir.path().join("out"),
        store_path: dir.path().join("store.redb"),
        targets: None,
        graph_path: None,
        embed_assets: false,
        device: None,
    };
    let s = run_batch(&mut Executor::builtin(), &job, &|_| {}, &CancelToken::new()).unwrap();
    assert_eq!(s.status, RunStatus::Succeeded, "{:?}", s.error);
    let pod = pod_report(&sweeps, &s.items).unwrap();
    assert!(pod.points.iter().all(|p| p.n == 2), "{pod:?}");
    for r in &s.items {
        let score = r.notes["classify"]["score"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&score), "{score}");
        let label = r.notes["classify"]["label"].as_str().unwrap();
        // good vs defect, as train-classifier trains by default.
        let labels = engine::inspect::load_scorer(&model, &candle_core::Device::Cpu)
            .unwrap()
            .labels()
            .to_vec();
        assert!(
            labels.iter().any(|l| l == label),
            "{label} not in {labels:?}"
        );
    }
}

#[test]
fn the_caption_node_runs_blip_and_reports_a_missing_model() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("tests/fixtures/inspect/blip/expected.json")).unwrap(),
    )
    .unwrap();
    let coffee = &expected["images"]["coffee"];
    let graph = |model: &str| {
        doc(serde_json::json!({
            "nodes": {
                "img": {"kind": "LoadImage", "version": 1,
                        "params": {"source": root.join(coffee["file"].as_str().unwrap())
                                                 .to_string_lossy()}},
                "cap": {"kind": "Caption", "version": 1,
                        "params": {"mode": "blip", "model": model, "device": "cpu"}}
            },
            "links": [{"from": ["img", "image"], "to": ["cap", "image"]}]
        }))
    };
    let model = root.join("tests/fixtures/inspect/blip/tiny-blip");
    let d = graph(&model.to_string_lossy());
    let req = RunRequest {
        doc: &d,
        targets: Some(vec!["cap".into()]),
        run_seed: 0,
        base_dir: Path::new("."),
    };
    let o = Executor::builtin()
        .run(&req, None, &|_| {}, &CancelToken::new())
        .unwrap();
    match o.outputs["cap"].get("text") {
        Some(Value::Text(t)) => assert_eq!(&**t, coffee["caption"].as_str().unwrap()),
        other => panic!("{other:?}"),
    }
    // A missing model is listed before a run, as every missing model is.
    let d = graph("no-such-blip");
    let missing = engine::files::missing_files(
        &d,
        &Catalogue::builtin(),
        Path::new("."),
        Some(&["cap".to_string()]),
        &[],
    );
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert_eq!(missing[0].role, nodes::FileRole::CaptionModel);
    assert!(
        missing[0].to_string().contains("no-such-blip"),
        "{}",
        missing[0]
    );
}
