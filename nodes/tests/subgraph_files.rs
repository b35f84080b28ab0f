//! Graph files with subgraphs: a nested golden file round-trips byte for byte, and a version-1
//! file migrates to version 2.
//!
//! `UPDATE_GOLDEN=1 cargo test -p nodes --test subgraph_files` rewrites the golden file from the
//! document built here.

use std::collections::BTreeMap;
use std::path::PathBuf;

use nodes::subgraph::{
    self, Definition, ExposedOutput, ExposedParam, ExposedPort, Frame, SubgraphRef, PATH_SEP,
    REROUTE_KIND, SUBGRAPH_KIND,
};
use nodes::{
    Catalogue, GraphDoc, Link, NodeDoc, NodeLayout, ParamValue, PortRef, SeedValue, VERSION,
};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
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

fn at(x: f32, y: f32) -> NodeLayout {
    NodeLayout {
        pos: [x, y],
        collapsed: false,
    }
}

fn instance(def: &Definition) -> NodeDoc {
    let mut n = NodeDoc::new(SUBGRAPH_KIND, 1);
    n.subgraph = Some(SubgraphRef {
        hash: def.hash(),
        name: def.name.clone(),
        library: false,
    });
    n
}

fn param(name: &str, targets: &[(&str, &str)]) -> ExposedParam {
    ExposedParam {
        name: name.into(),
        targets: targets.iter().map(|(n, p)| pr(n, p)).collect(),
        doc: String::new(),
        default: None,
        min: None,
        max: None,
    }
}

fn output(name: &str, node: &str, port: &str) -> ExposedOutput {
    ExposedOutput {
        name: name.into(),
        from: pr(node, port),
        doc: String::new(),
    }
}

/// A graph with an instance (`outer`) of a definition that holds an instance (`sb`) of another;
/// exposed parameters at both levels (one of them shown as an input and fed by a Seed node),
/// frames at the top and inside, a reroute at the top and one inside.
fn nested() -> GraphDoc {
    let mut inner = Definition {
        name: "scratch block".into(),
        doc: "A crack and a scratch on one surface.".into(),
        tags: vec!["metal".into()],
        nodes: BTreeMap::new(),
        links: vec![
            link("crack", "image", "r", "in"),
            link("r", "out", "scratch", "image"),
        ],
        inputs: vec![ExposedPort {
            name: "image".into(),
            targets: vec![pr("crack", "image")],
            doc: "The surface.".into(),
        }],
        outputs: vec![
            output("image", "scratch", "image"),
            output("mask", "crack", "mask"),
        ],
        params: vec![
            ExposedParam {
                doc: "How deep both defects go.".into(),
                default: Some(ParamValue::Float(0.5)),
                min: Some(0.1),
                max: Some(0.9),
                ..param("depth", &[("crack", "depth"), ("scratch", "depth")])
            },
            param("seed", &[("crack", "seed")]),
        ],
        layout: BTreeMap::new(),
        frames: vec![Frame {
            title: "defects".into(),
            color: "#aa3300".into(),
            nodes: vec!["crack".into(), "scratch".into()],
        }],
    };
    inner.nodes.insert("crack".into(), NodeDoc::new("Crack", 1));
    inner
        .nodes
        .insert("scratch".into(), NodeDoc::new("Scratch", 1));
    inner
        .nodes
        .insert("r".into(), NodeDoc::new(REROUTE_KIND, 1));
    for (id, x) in [("crack", 0.0), ("r", 150.0), ("scratch", 300.0)] {
        inner.layout.insert(id.into(), at(x, 10.0));
    }

    let mut outer = Definition {
        name: "plate with scratches".into(),
        doc: String::new(),
        tags: Vec::new(),
        nodes: BTreeMap::new(),
        links: vec![link("bg", "image", "sb", "image")],
        inputs: Vec::new(),
        outputs: vec![output("image", "sb", "image"), output("mask", "sb", "mask")],
        params: vec![
            ExposedParam {
                max: Some(0.6),
                ..param("depth", &[("sb", "depth")])
            },
            param("seed", &[("sb", "seed")]),
        ],
        layout: BTreeMap::new(),
        frames: Vec::new(),
    };
    let mut bg = NodeDoc::new("SolidColor", 1);
    bg.params
        .insert("color".into(), ParamValue::Text("#b4b8bd".into()));
    outer.nodes.insert("bg".into(), bg);
    let mut sb = instance(&inner);
    sb.params.insert("depth".into(), ParamValue::Float(0.4));
    sb.param_inputs.insert("seed".into());
    outer.nodes.insert("sb".into(), sb);
    outer.layout.insert("bg".into(), at(0.0, 0.0));
    outer.layout.insert("sb".into(), at(240.0, 0.0));

    let mut doc = GraphDoc::new();
    let mut seed = NodeDoc::new("Seed", 1);
    seed.params.insert(
        "seed".into(),
        ParamValue::Seed(SeedValue::Fixed { value: 7 }),
    );
    doc.nodes.insert("seed".into(), seed);
    let mut o = instance(&outer);
    o.params.insert("depth".into(), ParamValue::Float(0.3));
    o.param_inputs.insert("seed".into());
    doc.nodes.insert("outer".into(), o);
    doc.nodes.insert("r".into(), NodeDoc::new(REROUTE_KIND, 1));
    doc.nodes
        .insert("save".into(), NodeDoc::new("SaveImage", 1));
    doc.links = vec![
        link("seed", "value", "outer", "seed"),
        link("outer", "image", "r", "in"),
        link("r", "out", "save", "image"),
        link("outer", "mask", "save", "mask"),
    ];
    for (id, x) in [
        ("seed", 0.0),
        ("outer", 200.0),
        ("r", 400.0),
        ("save", 600.0),
    ] {
        doc.layout.insert(id.into(), at(x, 0.0));
    }
    doc.frames.push(Frame {
        title: "output".into(),
        color: "#3366ff".into(),
        nodes: vec!["r".into(), "save".into()],
    });
    doc.definitions.insert(inner.hash(), inner);
    doc.definitions.insert(outer.hash(), outer);
    doc.meta.title = "nested subgraphs".into();
    doc.meta.tags = vec!["golden".into(), "subgraph".into()];
    doc
}

#[test]
fn nested_subgraphs_round_trip_byte_for_byte() {
    let path = fixtures().join("nested_subgraphs.json");
    let built = nested();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, built.to_json()).unwrap();
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let doc = GraphDoc::from_json(&text).unwrap();
    assert_eq!(doc.to_json(), text, "the golden file does not round-trip");
    assert_eq!(doc, built, "the golden file is not the document built here");
    assert_eq!(doc.version, VERSION);
    for (key, def) in &doc.definitions {
        assert_eq!(&def.hash(), key);
    }
    // It is a valid graph, and it flattens as meant.
    let cat = Catalogue::builtin();
    nodes::validate(&doc, &cat).unwrap();
    let flat = subgraph::flatten(&doc, &cat).unwrap();
    let crack = ["outer", "sb", "crack"].join(PATH_SEP);
    let scratch = ["outer", "sb", "scratch"].join(PATH_SEP);
    let ids: Vec<&String> = flat.doc.nodes.keys().collect();
    assert_eq!(
        ids,
        vec![
            &["outer", "bg"].join(PATH_SEP),
            &crack,
            &scratch,
            &"save".to_string(),
            &"seed".to_string()
        ]
    );
    // The Seed node feeds the crack's seed through both levels.
    assert!(flat
        .doc
        .links
        .contains(&link("seed", "value", &crack, "seed")));
    assert!(flat.doc.nodes[&crack].param_inputs.contains("seed"));
    assert!(flat
        .doc
        .links
        .contains(&link(&scratch, "image", "save", "image")));
    assert!(flat
        .doc
        .links
        .contains(&link(&crack, "image", &scratch, "image")));
    // The outer value (0.3) reaches both targets at the bottom.
    assert_eq!(
        flat.doc.nodes[&scratch].params["depth"],
        ParamValue::Float(0.3)
    );
    assert_eq!(
        flat.doc.nodes[&crack].params["depth"],
        ParamValue::Float(0.3)
    );
    assert_eq!(flat.outputs[&pr("outer", "image")], pr(&scratch, "image"));
    assert_eq!(flat.outputs[&pr("r", "out")], pr(&scratch, "image"));
}

#[test]
fn a_version_1_file_migrates_to_version_2() {
    let v1 = std::fs::read_to_string(fixtures().join("graph_v1.json")).unwrap();
    assert!(
        v1.contains("\"version\": 1,\n  \"nodes\""),
        "the fixture must stay version 1"
    );
    let doc = GraphDoc::from_json(&v1).unwrap();
    assert_eq!(doc.version, 2);
    assert!(doc.definitions.is_empty() && doc.frames.is_empty());
    let text = doc.to_json();
    assert!(text.starts_with("{\n  \"format\": \"defect-studio/graph\",\n  \"version\": 2,"));
    // The same nodes, links and layout as the version-1 file holds.
    let raw: serde_json::Value = serde_json::from_str(&v1).unwrap();
    let ids: Vec<&String> = raw["nodes"].as_object().unwrap().keys().collect();
    assert_eq!(doc.nodes.keys().collect::<Vec<_>>(), ids);
    assert_eq!(doc.links.len(), raw["links"].as_array().unwrap().len());
    // Only the version line differs from the file written back.
    let changed: Vec<(&str, &str)> = v1
        .lines()
        .zip(text.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(changed, vec![("  \"version\": 1,", "  \"version\": 2,")]);
    assert_eq!(v1.lines().count(), text.lines().count());
    nodes::validate(&doc, &Catalogue::builtin()).unwrap();
}
