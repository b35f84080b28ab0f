//! LoadControlNet and ControlNet through the executor, on the tiny SD 1.5 model and the tiny
//! ControlNets of `tests/fixtures/sd/controlnet/models`: a chain of ControlNets reaches the
//! sampler in order with its parameters, and the sampler gives exactly what the pipeline gives
//! for that stack; the cache reuses the sampler when only SaveImage changes and re-runs it when a
//! strength changes; a ControlNet is found by name in the model folders (a diffusers folder);
//! missing files, start ≥ end, a wrong-architecture ControlNet and the run's device behave as
//! documented.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use engine::sd::pipeline;
use engine::{
    CancelToken, EngineError, Executor, Image, Mask, OutputSink, Registry, Result, RunOutcome,
    RunRequest, Saved, Value,
};
use nodes::{Catalogue, FileRole, GraphDoc};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixtures() -> PathBuf {
    repo().join("tests/fixtures/sd")
}

fn controlnets() -> PathBuf {
    fixtures().join("controlnet/models")
}

fn path(p: PathBuf) -> String {
    p.display().to_string()
}

/// Remembers what SaveImage hands over.
#[derive(Default)]
struct Collect(Vec<String>);

impl OutputSink for Collect {
    fn save(
        &mut self,
        _node: &str,
        _image: &Image,
        _mask: Option<&Mask>,
        _clean: Option<&Image>,
        template: &str,
        _label: &str,
    ) -> Result<Saved> {
        self.0.push(template.to_string());
        Ok(Saved {
            path: template.into(),
            mask_path: None,
            output_id: None,
        })
    }
}

fn executor() -> Executor {
    let mut e = Executor::new(Catalogue::builtin(), Registry::builtin(), 1 << 30);
    e.set_device("cpu");
    e
}

fn run(exec: &mut Executor, doc: &GraphDoc) -> Result<RunOutcome> {
    let mut sink = Collect::default();
    let req = RunRequest {
        doc,
        targets: None,
        run_seed: 3,
        base_dir: Path::new("."),
    };
    exec.run(&req, Some(&mut sink), &|_| {}, &CancelToken::new())
}

fn ran(o: &RunOutcome, node: &str) -> bool {
    o.stats.iter().any(|s| s.node == node && !s.cached)
}

/// LoadCheckpoint (tiny sd15) → Txt2Img (64², 3 Euler steps) → SaveImage, and one
/// LoadControlNet + LoadImage → ControlNet per `(controlnet, strength)`, chained into the
/// sampler's `control` input.
fn graph(controls: &[(&str, f64)], filename: &str) -> GraphDoc {
    let mut nodes = serde_json::json!({
        "ckpt": {"kind": "LoadCheckpoint", "version": 1,
                 "params": {"checkpoint": path(fixtures().join("models/sd15"))}},
        "gen": {"kind": "Txt2Img", "version": 1, "params": {
            "prompt": "a scratch", "width": 64, "height": 64, "steps": 3, "cfg": 5.0,
            "scheduler": "euler"}},
        "save": {"kind": "SaveImage", "version": 1, "params": {"filename": filename}}
    });
    let mut links = vec![
        serde_json::json!({"from": ["ckpt", "model"], "to": ["gen", "model"]}),
        serde_json::json!({"from": ["gen", "image"], "to": ["save", "image"]}),
    ];
    let image = path(fixtures().join("inputs/init.png"));
    for (k, (net, strength)) in controls.iter().enumerate() {
        let k = k + 1;
        nodes[format!("load{k}")] = serde_json::json!({"kind": "LoadControlNet", "version": 1,
            "params": {"controlnet": net}});
        nodes[format!("img{k}")] = serde_json::json!({"kind": "LoadImage", "version": 1,
            "params": {"source": image}});
        nodes[format!("cn{k}")] = serde_json::json!({"kind": "ControlNet", "version": 1,
            "params": {"strength": strength, "start": 0.0, "end": 1.0}});
        links.push(
            serde_json::json!({"from": [format!("load{k}"), "controlnet"],
                                      "to": [format!("cn{k}"), "controlnet"]}),
        );
        links.push(serde_json::json!({"from": [format!("img{k}"), "image"],
                                      "to": [format!("cn{k}"), "image"]}));
        if k > 1 {
            links.push(
                serde_json::json!({"from": [format!("cn{}", k - 1), "control"],
                                          "to": [format!("cn{k}"), "control"]}),
            );
        }
    }
    if !controls.is_empty() {
        links.push(
            serde_json::json!({"from": [format!("cn{}", controls.len()), "control"],
                                      "to": ["gen", "control"]}),
        );
    }
    let doc = serde_json::json!({
        "format": "defect-studio/graph", "version": 1, "nodes": nodes, "links": links
    });
    GraphDoc::from_json(&doc.to_string()).unwrap()
}

fn output<'a>(o: &'a RunOutcome, node: &str, port: &str) -> &'a Value {
    o.outputs[node]
        .get(port)
        .unwrap_or_else(|| panic!("{node}.{port}"))
}

fn pixels(v: &Value) -> Vec<f32> {
    v.as_image().expect("an image").data.clone()
}

fn node_message(e: EngineError, node: &str) -> String {
    match e {
        EngineError::Node {
            node: n, message, ..
        } => {
            assert_eq!(n, node, "{message}");
            message
        }
        other => panic!("not a node error: {other}"),
    }
}

#[test]
fn a_chain_reaches_the_sampler_in_order_and_equals_the_pipeline() {
    let (a, b) = (
        path(controlnets().join("cn-sd15")),
        path(controlnets().join("cn-sd15-b")),
    );
    let mut exec = executor();
    let o = run(&mut exec, &graph(&[(&a, 1.0), (&b, 0.5)], "x.png")).unwrap();
    let stack = output(&o, "cn2", "control").as_control().unwrap().clone();
    assert_eq!(stack.len(), 2);
    assert!(stack[0].net.source.contains("cn-sd15") && !stack[0].net.source.contains("-b"));
    assert!(
        stack[1].net.source.contains("cn-sd15-b"),
        "{}",
        stack[1].net.source
    );
    assert_eq!(
        stack
            .iter()
            .map(|s| (s.strength, s.start, s.end))
            .collect::<Vec<_>>(),
        [(1.0, 0.0, 1.0), (0.5, 0.0, 1.0)]
    );
    assert!(stack[0].net.device.is_cpu() && stack[0].mask.is_none());
    // The sampler hands that stack to the pipeline: the same image as calling it directly.
    let handle = output(&o, "ckpt", "model").as_model().unwrap().clone();
    let (model, _) = handle.resolve().unwrap();
    let params = pipeline::GenerateParams {
        prompt: "a scratch".into(),
        width: 64,
        height: 64,
        steps: 3,
        cfg: 5.0,
        seed: 3,
        scheduler: Some(engine::sd::scheduler::SchedulerKind::parse("euler").unwrap()),
        controls: stack.as_ref().clone(),
        ..pipeline::GenerateParams::default()
    };
    let direct = pipeline::generate(&model, &params, &mut |_, _, _| Ok(())).unwrap();
    let via_nodes = pixels(output(&o, "gen", "image"));
    assert_eq!(via_nodes, direct.images[0].data);
    // And the controls matter: without them, or with one only, the image differs.
    let plain = run(&mut exec, &graph(&[], "x.png")).unwrap();
    let one = run(&mut exec, &graph(&[(&a, 1.0)], "x.png")).unwrap();
    let (p, s) = (
        pixels(output(&plain, "gen", "image")),
        pixels(output(&one, "gen", "image")),
    );
    assert_ne!(p, via_nodes);
    assert_ne!(s, via_nodes);
    assert_ne!(p, s);
}

#[test]
fn only_what_changed_runs_again() {
    let a = path(controlnets().join("cn-sd15"));
    let mut exec = executor();
    let first = run(&mut exec, &graph(&[(&a, 1.0)], "one.png")).unwrap();
    assert!(ran(&first, "load1") && ran(&first, "cn1") && ran(&first, "gen"));
    // Only SaveImage's file name changed: everything upstream is a cache hit.
    let renamed = run(&mut exec, &graph(&[(&a, 1.0)], "two.png")).unwrap();
    for node in ["load1", "img1", "cn1", "ckpt", "gen"] {
        assert!(
            !ran(&renamed, node),
            "{node} ran again: {:?}",
            renamed.stats
        );
    }
    assert!(ran(&renamed, "save"));
    // A new strength re-runs the ControlNet node and the sampler, not the loaders.
    let stronger = run(&mut exec, &graph(&[(&a, 0.4)], "two.png")).unwrap();
    assert!(
        ran(&stronger, "cn1") && ran(&stronger, "gen"),
        "{:?}",
        stronger.stats
    );
    assert!(!ran(&stronger, "load1") && !ran(&stronger, "ckpt"));
    assert_ne!(
        pixels(output(&stronger, "gen", "image")),
        pixels(output(&first, "gen", "image"))
    );
}

#[test]
fn a_controlnet_folder_is_found_by_name_in_the_model_folders() {
    engine::models::manager::set_extra_dirs(vec![controlnets()]);
    // `cn-sd15-b` is only a folder (`cn-sd15` would find cn-sd15.safetensors by its stem).
    let locate = |name: &str| engine::files::locate(FileRole::ControlNet, name, Path::new(""));
    assert_eq!(
        locate("cn-sd15-b").unwrap(),
        controlnets().join("cn-sd15-b")
    );
    assert_eq!(
        locate("cn-sd15.safetensors").unwrap(),
        controlnets().join("cn-sd15.safetensors")
    );
    // The weights file of a folder stands for the folder, whose config.json says the shapes.
    assert_eq!(
        locate("cn-sd15-b/diffusion_pytorch_model.safetensors").unwrap(),
        controlnets().join("cn-sd15-b")
    );
    let mut exec = executor();
    let o = run(&mut exec, &graph(&[("cn-sd15-b", 1.0)], "x.png")).unwrap();
    assert!(output(&o, "load1", "controlnet").as_controlnet().is_some());
    // A folder that is not a diffusers ControlNet is refused by path, saying what it lacks.
    let e = engine::files::locate(
        FileRole::ControlNet,
        &path(fixtures().join("models/sd15")),
        Path::new(""),
    )
    .unwrap_err();
    assert!(
        e.contains("is not a diffusers ControlNet") && e.contains("config.json"),
        "{e}"
    );
}

#[test]
fn a_missing_controlnet_is_listed_with_its_kind() {
    let doc = graph(&[("no-such-controlnet.safetensors", 1.0)], "x.png");
    let missing =
        engine::files::missing_files(&doc, &Catalogue::builtin(), Path::new("."), None, &[]);
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert_eq!(missing[0].role, FileRole::ControlNet);
    let text = engine::files::describe_missing(&missing);
    assert!(
        text.contains("ControlNet \"no-such-controlnet.safetensors\" not found")
            && text.contains("node \"load1\" LoadControlNet.controlnet"),
        "{text}"
    );
}

#[test]
fn start_at_or_after_end_is_refused_naming_the_parameters() {
    let a = path(controlnets().join("cn-sd15"));
    let with = |start: f64, end: f64| {
        let mut doc = graph(&[(&a, 1.0)], "x.png");
        let cn = doc.nodes.get_mut("cn1").unwrap();
        cn.params
            .insert("start".into(), nodes::ParamValue::Float(start));
        cn.params
            .insert("end".into(), nodes::ParamValue::Float(end));
        run(&mut executor(), &doc).unwrap_err()
    };
    // An inverted window is an inverted range of the catalogue (`end` is at least `start`):
    // validation names the node and both parameters before anything runs.
    let msg = with(0.6, 0.4).to_string();
    assert!(
        msg.contains("cn1") && msg.contains("\"start\"") && msg.contains("\"end\""),
        "{msg}"
    );
    assert_eq!(
        msg.lines().skip(1).count(),
        1,
        "one problem after the header: {msg:?}"
    );
    // An empty window passes validation; the node refuses it.
    let msg = node_message(with(0.5, 0.5), "cn1");
    assert!(
        msg.contains("start (0.5) and end (0.5)") && msg.contains("less than end"),
        "{msg}"
    );
    assert!(!msg.contains('\n'));
}

#[test]
fn a_controlnet_for_another_architecture_is_refused_by_the_sampler() {
    let xl = path(controlnets().join("cn-sdxl"));
    let msg = node_message(
        run(&mut executor(), &graph(&[(&xl, 1.0)], "x.png"))
            .err()
            .expect("an SDXL ControlNet on SD 1.5 is refused"),
        "gen",
    );
    assert!(msg.contains("SDXL") && !msg.contains('\n'), "{msg}");
}

#[test]
fn device_auto_is_the_runs_device() {
    // The executor substitutes its device into `device: auto`, as for LoadCheckpoint: a GPU
    // that does not exist makes the loader fail, naming it.
    let a = path(controlnets().join("cn-sd15"));
    let mut exec = executor();
    exec.set_device("cuda:7");
    let doc = graph(&[(&a, 1.0)], "x.png");
    let req = RunRequest {
        doc: &doc,
        targets: Some(vec!["load1".into()]),
        run_seed: 0,
        base_dir: Path::new("."),
    };
    let e = exec
        .run(&req, None, &|_| {}, &CancelToken::new())
        .unwrap_err();
    let msg = node_message(e, "load1");
    assert!(msg.contains("cuda:7"), "{msg}");
    exec.set_device("cpu");
    let o = exec.run(&req, None, &|_| {}, &CancelToken::new()).unwrap();
    let net: Arc<_> = output(&o, "load1", "controlnet")
        .as_controlnet()
        .unwrap()
        .clone();
    assert!(net.device.is_cpu());
}
