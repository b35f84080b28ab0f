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

/// The shipped example `examples/subgraph-deep-scratch.json`: a brushed plate with a "deep
/// scratch" subgraph (a reroute into a Scratch, exposing depth with a range, count and seed),
/// its seed fed by a Seed value node through a parameter shown as an input.
fn example() -> GraphDoc {
    let mut def = Definition {
        name: "deep scratch".into(),
        doc: "One to a few deep scratches with their exact mask.".into(),
        tags: vec!["metal".into(), "scratch".into()],
        nodes: BTreeMap::new(),
        links: vec![link("in", "out", "scratch", "image")],
        inputs: vec![ExposedPort {
            name: "image".into(),
            targets: vec![pr("in", "in")],
            doc: "The surface to scratch.".into(),
        }],
        outputs: vec![
            output("image", "scratch", "image"),
            output("mask", "scratch", "mask"),
        ],
        params: vec![
            ExposedParam {
                doc: "Contrast of the groove.".into(),
                default: Some(ParamValue::Float(0.8)),
                min: Some(0.3),
                max: Some(1.0),
                ..param("depth", &[("scratch", "depth")])
            },
            param("count", &[("scratch", "count")]),
            param("seed", &[("scratch", "seed")]),
        ],
        layout: BTreeMap::new(),
        frames: Vec::new(),
    };
    def.nodes.insert("in".into(), NodeDoc::new(REROUTE_KIND, 1));
    let mut scratch = NodeDoc::new("Scratch", 1);
    scratch
        .params
        .insert("width".into(), ParamValue::Float(4.0));
    def.nodes.insert("scratch".into(), scratch);
    def.layout.insert("in".into(), at(0.0, 40.0));
    def.layout.insert("scratch".into(), at(160.0, 0.0));

    let mut doc = GraphDoc::new();
    let mut plate = NodeDoc::new("Texture", 1);
    plate
        .params
        .insert("material".into(), text_value("brushed_metal"));
    plate.params.insert("width".into(), ParamValue::Int(256));
    plate.params.insert("height".into(), ParamValue::Int(256));
    doc.nodes.insert("plate".into(), plate);
    let mut seed = NodeDoc::new("Seed", 1);
    seed.params.insert(
        "seed".into(),
        ParamValue::Seed(SeedValue::Run { offset: 100 }),
    );
    doc.nodes.insert("seed".into(), seed);
    let mut s = instance(&def);
    s.params.insert("depth".into(), ParamValue::Float(0.9));
    s.params.insert("count".into(), ParamValue::Int(2));
    s.param_inputs.insert("seed".into());
    doc.nodes.insert("scratches".into(), s);
    let mut save = NodeDoc::new("SaveImage", 1);
    save.params
        .insert("filename".into(), text_value("{graph}/{seed:05}.png"));
    save.params.insert("label".into(), text_value("scratch"));
    doc.nodes.insert("save".into(), save);
    doc.links = vec![
        link("plate", "image", "scratches", "image"),
        link("seed", "value", "scratches", "seed"),
        link("scratches", "image", "save", "image"),
        link("scratches", "mask", "save", "mask"),
        link("plate", "image", "save", "clean"),
    ];
    for (id, x, y) in [
        ("plate", 40.0, 40.0),
        ("seed", 40.0, 300.0),
        ("scratches", 400.0, 120.0),
        ("save", 760.0, 120.0),
    ] {
        doc.layout.insert(id.into(), at(x, y));
    }
    doc.frames.push(Frame {
        title: "defect".into(),
        color: "#c05030".into(),
        nodes: vec!["seed".into(), "scratches".into()],
    });
    doc.definitions.insert(def.hash(), def);
    doc.meta.title = "subgraph-deep-scratch".into();
    doc.meta.notes = "A brushed plate scratched by a reusable \"deep scratch\" subgraph that \
                      exposes depth (0.3..1), count and seed; a Seed node feeds the seed, from \
                      the run seed, so --count varies it."
        .into();
    doc.meta.author = "Defect Studio examples".into();
    doc.meta.seed = Some(1);
    doc.meta.tags = vec!["subgraph".into(), "metal".into()];
    doc
}

fn text_value(s: &str) -> ParamValue {
    ParamValue::Text(s.into())
}

#[test]
fn the_subgraph_example_is_the_document_built_here() {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/subgraph-deep-scratch.json");
    let built = example();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, built.to_json()).unwrap();
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let doc = GraphDoc::from_json(&text).unwrap();
    assert_eq!(doc, built);
    assert_eq!(doc.to_json(), text);
    let cat = Catalogue::builtin();
    nodes::validate(&doc, &cat).unwrap();
    let flat = subgraph::flatten(&doc, &cat).unwrap();
    let scratch = ["scratches", "scratch"].join(PATH_SEP);
    assert!(flat
        .doc
        .links
        .contains(&link("plate", "image", &scratch, "image")));
    assert!(flat
        .doc
        .links
        .contains(&link("seed", "value", &scratch, "seed")));
    assert_eq!(
        flat.doc.nodes[&scratch].params["depth"],
        ParamValue::Float(0.9)
    );
}

#[test]
fn node_migrations_reach_inside_definitions_and_re_key_them() {
    let cat = Catalogue::builtin();
    // A definition with an Img2Img@1 node (strength's default was 0.75), written by hand with
    // its version-1 hash.
    let mut def = Definition {
        name: "refine".into(),
        doc: String::new(),
        tags: Vec::new(),
        nodes: BTreeMap::new(),
        links: Vec::new(),
        inputs: Vec::new(),
        outputs: vec![output("image", "i2i", "image")],
        params: Vec::new(),
        layout: BTreeMap::new(),
        frames: Vec::new(),
    };
    def.nodes.insert("i2i".into(), NodeDoc::new("Img2Img", 1));
    let old = def.hash();
    let mut outer = Definition {
        name: "outer".into(),
        outputs: vec![output("image", "r", "image")],
        ..def.clone()
    };
    outer.nodes.clear();
    outer.nodes.insert("r".into(), instance(&def));
    let old_outer = outer.hash();
    let mut doc = GraphDoc::new();
    doc.definitions.insert(old.clone(), def);
    doc.definitions.insert(old_outer.clone(), outer.clone());
    doc.nodes.insert("o".into(), instance(&outer));
    let loaded = GraphDoc::from_json(&doc.to_json()).unwrap();
    assert!(!loaded.definitions.contains_key(&old));
    assert!(!loaded.definitions.contains_key(&old_outer));
    let top = &loaded.nodes["o"].subgraph.as_ref().unwrap().hash;
    let inner_ref = &loaded.definitions[top].nodes["r"]
        .subgraph
        .as_ref()
        .unwrap()
        .hash;
    let i2i = &loaded.definitions[inner_ref].nodes["i2i"];
    assert_eq!(i2i.version, 2);
    assert_eq!(i2i.params["strength"].as_f64(), Some(0.75));
    for (k, d) in &loaded.definitions {
        assert_eq!(&d.hash(), k);
    }
    // A definition changed by hand (no migration) is still refused, not re-keyed.
    let mut bad = loaded.clone();
    let key = inner_ref.clone();
    bad.definitions.get_mut(&key).unwrap().doc = "edited".into();
    let reread = GraphDoc::from_json(&bad.to_json()).unwrap();
    assert!(nodes::validate(&reread, &cat).is_err());
}
