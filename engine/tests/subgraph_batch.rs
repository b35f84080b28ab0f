//! Batches of graphs with subgraphs: a folder input inside a subgraph becomes work items, an
//! override on an instance's exposed parameter reaches its inner node, sinks inside and outside
//! run, the missing-file check sees inner nodes, and the PNGs carry the original recipe with its
//! definitions.

use std::collections::BTreeMap;
use std::path::Path;

use engine::exec::{CancelToken, Executor};
use engine::files::missing_files;
use engine::interop::png_meta;
use engine::run::{apply_override, plan, run_batch, BatchJob, Override, PlanSpec};
use engine::RunStatus;
use nodes::subgraph::{Definition, ExposedOutput, ExposedParam, SubgraphRef, SUBGRAPH_KIND};
use nodes::{Catalogue, GraphDoc, Link, NodeDoc, ParamValue, PortRef};

fn pr(n: &str, p: &str) -> PortRef {
    PortRef(n.into(), p.into())
}

fn text(s: &str) -> ParamValue {
    ParamValue::Text(s.into())
}

/// "block": a LoadImage of the folder `imgs` and a 8×8 SolidColor whose colour is exposed as
/// `color`; saves the solid itself (a sink inside) and exposes both images.
fn graph() -> GraphDoc {
    let mut d = Definition {
        name: "block".into(),
        doc: String::new(),
        tags: Vec::new(),
        nodes: BTreeMap::new(),
        links: vec![Link {
            from: pr("solid", "image"),
            to: pr("inner_save", "image"),
        }],
        inputs: Vec::new(),
        outputs: vec![
            ExposedOutput {
                name: "photo".into(),
                from: pr("load", "image"),
                doc: String::new(),
            },
            ExposedOutput {
                name: "flat".into(),
                from: pr("solid", "image"),
                doc: String::new(),
            },
        ],
        params: vec![ExposedParam {
            name: "color".into(),
            targets: vec![pr("solid", "color")],
            doc: String::new(),
            default: None,
            min: None,
            max: None,
        }],
        layout: BTreeMap::new(),
        frames: Vec::new(),
    };
    let mut load = NodeDoc::new("LoadImage", 1);
    load.params.insert("source".into(), text("imgs"));
    d.nodes.insert("load".into(), load);
    let mut solid = NodeDoc::new("SolidColor", 1);
    solid.params.insert("width".into(), ParamValue::Int(8));
    solid.params.insert("height".into(), ParamValue::Int(8));
    d.nodes.insert("solid".into(), solid);
    let mut inner_save = NodeDoc::new("SaveImage", 1);
    inner_save
        .params
        .insert("filename".into(), text("{item}-inner.png"));
    d.nodes.insert("inner_save".into(), inner_save);
    let hash = d.hash();
    let mut doc = GraphDoc::new();
    doc.definitions.insert(hash.clone(), d);
    let mut b = NodeDoc::new(SUBGRAPH_KIND, 1);
    b.subgraph = Some(SubgraphRef {
        hash,
        name: "block".into(),
        library: false,
    });
    doc.nodes.insert("b".into(), b);
    for (id, port, name) in [
        ("save_photo", "photo", "{item}-photo.png"),
        ("save_flat", "flat", "{item}-flat.png"),
    ] {
        let mut s = NodeDoc::new("SaveImage", 1);
        s.params.insert("filename".into(), text(name));
        doc.nodes.insert(id.into(), s);
        doc.links.push(Link {
            from: pr("b", port),
            to: pr(id, "image"),
        });
    }
    doc
}

fn write_png(path: &Path, rgb: [u8; 3]) {
    image::RgbImage::from_pixel(4, 4, image::Rgb(rgb))
        .save(path)
        .unwrap();
}

#[test]
fn a_batch_runs_through_a_subgraph() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    let cat = Catalogue::builtin();
    let mut doc = graph();
    nodes::validate(&doc, &cat).unwrap();

    // The inner LoadImage's folder is missing: the check names the inner node by its path.
    let missing = missing_files(&doc, &cat, base, None, &[]);
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert_eq!(missing[0].node, "b › load");
    // So it does when the subgraph node is the run's target.
    let missing = missing_files(&doc, &cat, base, Some(&["b".to_string()]), &[]);
    assert_eq!(missing.len(), 1, "{missing:?}");

    std::fs::create_dir(base.join("imgs")).unwrap();
    write_png(&base.join("imgs/a.png"), [255, 0, 0]);
    write_png(&base.join("imgs/b.png"), [0, 0, 255]);
    assert!(missing_files(&doc, &cat, base, None, &[]).is_empty());

    // `--set b.color=#00ff00`: the instance's exposed parameter.
    apply_override(
        &mut doc,
        &Override {
            node: "b".into(),
            param: "color".into(),
            value: text("#00ff00"),
        },
    )
    .unwrap();
    // The folder inside the subgraph is a folder input: one item per file, set by path.
    let (items, total) = plan(&PlanSpec {
        doc: &doc,
        base_dir: base,
        count: 1,
        seed: 5,
        sweeps: &[],
        shard: None,
    })
    .unwrap();
    assert_eq!(total, 2);
    let first = items.get(0).unwrap();
    assert_eq!(first.overrides[0].node, "b › load");
    assert_eq!(first.overrides[0].param, "source");

    let job = BatchJob {
        doc: doc.clone(),
        graph_name: "g".into(),
        base_dir: base.to_path_buf(),
        items,
        base_seed: 5,
        shard: None,
        out_dir: base.join("out"),
        store_path: base.join("store.redb"),
        targets: None,
        graph_path: None,
        embed_assets: false,
        device: None,
    };
    let mut exec = Executor::builtin();
    let summary = run_batch(&mut exec, &job, &|_| {}, &CancelToken::new()).unwrap();
    assert_eq!(summary.status, RunStatus::Succeeded, "{:?}", summary.error);
    // Two items × (two sinks outside + one inside).
    assert_eq!(summary.saved.len(), 6, "{:?}", summary.saved);
    let pixel = |name: &str| {
        let p = summary
            .saved
            .iter()
            .find(|s| s.path.file_name().unwrap().to_string_lossy() == name)
            .unwrap_or_else(|| panic!("{name} not saved: {:?}", summary.saved))
            .path
            .clone();
        let img = image::open(&p).unwrap().to_rgb8();
        (p, img.get_pixel(0, 0).0)
    };
    // Each item loaded its own file; the override reached the inner solid.
    assert_eq!(pixel("0-photo.png").1, [255, 0, 0]);
    assert_eq!(pixel("1-photo.png").1, [0, 0, 255]);
    assert_eq!(pixel("0-flat.png").1, [0, 255, 0]);
    assert_eq!(pixel("1-inner.png").1, [0, 255, 0]);

    // The PNG carries the original recipe (the subgraph node and its definition), which runs.
    let (path, _) = pixel("1-photo.png");
    let embedded = png_meta::graph_from_png(&std::fs::read(path).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(embedded.nodes["b"].kind, SUBGRAPH_KIND);
    assert_eq!(embedded.definitions.len(), 1);
    let (key, def) = embedded.definitions.iter().next().unwrap();
    assert_eq!(&def.hash(), key);
    // The item's file, made absolute inside the definition.
    let source = def.nodes["load"].params["source"].as_str().unwrap();
    assert!(
        source.ends_with("imgs/b.png") && Path::new(source).is_absolute(),
        "{source}"
    );
    assert_eq!(embedded.nodes["b"].params["color"], text("#00ff00"));
    nodes::validate(&embedded, &cat).unwrap();
}

/// The shipped example with a subgraph runs: its Seed node drives the inner scratch, two
/// variations give two different scratches, each with a non-empty exact mask.
#[test]
fn the_subgraph_example_runs() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let text = std::fs::read_to_string(root.join("subgraph-deep-scratch.json")).unwrap();
    let mut doc = GraphDoc::from_json(&text).unwrap();
    for p in ["width", "height"] {
        nodes::subgraph::set_param(&mut doc, "plate", p, ParamValue::Int(64)).unwrap();
    }
    let (items, _) = plan(&PlanSpec {
        doc: &doc,
        base_dir: &root,
        count: 2,
        seed: 1,
        sweeps: &[],
        shard: None,
    })
    .unwrap();
    let job = BatchJob {
        doc,
        graph_name: "ex".into(),
        base_dir: root.clone(),
        items,
        base_seed: 1,
        shard: None,
        out_dir: dir.path().join("out"),
        store_path: dir.path().join("store.redb"),
        targets: None,
        graph_path: None,
        embed_assets: false,
        device: None,
    };
    let mut events = Vec::new();
    let log = std::sync::Mutex::new(&mut events);
    let summary = run_batch(
        &mut Executor::builtin(),
        &job,
        &|e| {
            if let engine::run::BatchEvent::Node {
                event: engine::Event::NodeFinished { node, .. },
                ..
            } = e
            {
                log.lock().unwrap().push(node);
            }
        },
        &CancelToken::new(),
    )
    .unwrap();
    assert_eq!(summary.status, RunStatus::Succeeded, "{:?}", summary.error);
    assert_eq!(summary.saved.len(), 2);
    assert!(
        events.iter().any(|n| n == "scratches › scratch"),
        "{events:?}"
    );
    let masks: Vec<Vec<u8>> = summary
        .saved
        .iter()
        .map(|s| {
            let m = image::open(s.mask_path.as_ref().unwrap())
                .unwrap()
                .to_luma8();
            assert!(m.pixels().any(|p| p.0[0] > 127), "empty mask");
            m.into_raw()
        })
        .collect();
    assert_ne!(
        masks[0], masks[1],
        "the Seed node must vary with the run seed"
    );
}
