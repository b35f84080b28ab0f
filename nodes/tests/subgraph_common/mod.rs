//! Documents the subgraph tests share (`subgraph.rs`, `subgraph_edit.rs`).
#![allow(dead_code)]

use std::collections::BTreeMap;

use nodes::subgraph::{
    Definition, ExposedOutput, ExposedParam, ExposedPort, SubgraphRef, PATH_SEP, REROUTE_KIND,
    SUBGRAPH_KIND,
};
use nodes::{GraphDoc, Link, NodeDoc, NodeLayout, ParamValue, PortRef};

pub fn pr(n: &str, p: &str) -> PortRef {
    PortRef(n.into(), p.into())
}

pub fn link(a: &str, ap: &str, b: &str, bp: &str) -> Link {
    Link {
        from: pr(a, ap),
        to: pr(b, bp),
    }
}

pub fn def(name: &str) -> Definition {
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

pub fn exposed_param(name: &str, targets: &[(&str, &str)]) -> ExposedParam {
    ExposedParam {
        name: name.into(),
        targets: targets.iter().map(|(n, p)| pr(n, p)).collect(),
        doc: String::new(),
        default: None,
        min: None,
        max: None,
    }
}

pub fn instance(hash: &str, name: &str) -> NodeDoc {
    let mut n = NodeDoc::new(SUBGRAPH_KIND, 1);
    n.subgraph = Some(SubgraphRef {
        hash: hash.into(),
        name: name.into(),
        library: false,
    });
    n
}

/// "scratch block": a crack whose image goes through a reroute into a scratch; exposes the
/// image input, both outputs, `depth` (both defects) and `seed` (the crack).
pub fn scratch_block() -> Definition {
    let mut d = def("scratch block");
    d.nodes.insert("crack".into(), NodeDoc::new("Crack", 1));
    d.nodes.insert("scratch".into(), NodeDoc::new("Scratch", 1));
    d.nodes.insert("r".into(), NodeDoc::new(REROUTE_KIND, 1));
    d.links = vec![
        link("crack", "image", "r", "in"),
        link("r", "out", "scratch", "image"),
    ];
    d.inputs = vec![ExposedPort {
        name: "image".into(),
        targets: vec![pr("crack", "image")],
        doc: String::new(),
    }];
    d.outputs = vec![
        ExposedOutput {
            name: "image".into(),
            from: pr("scratch", "image"),
            doc: String::new(),
        },
        ExposedOutput {
            name: "mask".into(),
            from: pr("crack", "mask"),
            doc: String::new(),
        },
    ];
    d.params = vec![
        exposed_param("depth", &[("crack", "depth"), ("scratch", "depth")]),
        exposed_param("seed", &[("crack", "seed")]),
    ];
    d.layout.insert(
        "crack".into(),
        NodeLayout {
            pos: [10.0, 20.0],
            collapsed: false,
        },
    );
    d
}

/// A graph: `outer` (an instance of "outer block": a background into a nested "scratch block"
/// instance `scratch-block`) saved by `save`. Exposed `depth` at both levels.
pub fn nested() -> (GraphDoc, String, String) {
    let inner = scratch_block();
    let inner_hash = inner.hash();
    let mut outer = def("outer block");
    outer
        .nodes
        .insert("bg".into(), NodeDoc::new("SolidColor", 1));
    let mut sb = instance(&inner_hash, "scratch block");
    sb.params.insert("depth".into(), ParamValue::Float(0.3));
    outer.nodes.insert("scratch-block".into(), sb);
    outer.links = vec![link("bg", "image", "scratch-block", "image")];
    outer.outputs = vec![
        ExposedOutput {
            name: "image".into(),
            from: pr("scratch-block", "image"),
            doc: String::new(),
        },
        ExposedOutput {
            name: "mask".into(),
            from: pr("scratch-block", "mask"),
            doc: String::new(),
        },
    ];
    let mut depth = exposed_param("depth", &[("scratch-block", "depth")]);
    depth.min = Some(0.0);
    depth.max = Some(0.5);
    outer.params = vec![depth];
    let outer_hash = outer.hash();
    let mut doc = GraphDoc::new();
    doc.definitions.insert(inner_hash.clone(), inner);
    doc.definitions.insert(outer_hash.clone(), outer);
    let mut o = instance(&outer_hash, "outer block");
    o.params.insert("depth".into(), ParamValue::Float(0.4));
    doc.nodes.insert("outer".into(), o);
    doc.nodes
        .insert("save".into(), NodeDoc::new("SaveImage", 1));
    doc.links = vec![
        link("outer", "image", "save", "image"),
        link("outer", "mask", "save", "mask"),
    ];
    (doc, outer_hash, inner_hash)
}

pub fn path(parts: &[&str]) -> String {
    parts.join(PATH_SEP)
}
