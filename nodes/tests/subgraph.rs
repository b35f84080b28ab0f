//! Subgraphs: flattening, interfaces, refusals and the edit operations (`nodes::subgraph`).

use std::collections::BTreeMap;

use nodes::subgraph::{
    self, Definition, ExposedOutput, ExposedParam, ExposedPort, SubgraphRef, PATH_SEP,
    REROUTE_KIND, SUBGRAPH_KIND,
};
use nodes::{
    Catalogue, GraphDoc, Link, NodeDoc, NodeLayout, ParamValue, PortRef, PortType, Problem,
};

fn pr(n: &str, p: &str) -> PortRef {
    PortRef(n.into(), p.into())
}

fn link(a: &str, ap: &str, b: &str, bp: &str) -> Link {
    Link {
        from: pr(a, ap),
        to: pr(b, bp),
    }
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

fn exposed_param(name: &str, targets: &[(&str, &str)]) -> ExposedParam {
    ExposedParam {
        name: name.into(),
        targets: targets.iter().map(|(n, p)| pr(n, p)).collect(),
        doc: String::new(),
        default: None,
        min: None,
        max: None,
    }
}

fn instance(hash: &str, name: &str) -> NodeDoc {
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
fn scratch_block() -> Definition {
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
fn nested() -> (GraphDoc, String, String) {
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

fn path(parts: &[&str]) -> String {
    parts.join(PATH_SEP)
}

#[test]
fn flatten_inlines_nested_instances_and_reroutes() {
    let cat = Catalogue::builtin();
    let (doc, outer_hash, inner_hash) = nested();
    nodes::validate(&doc, &cat).unwrap();
    let flat = subgraph::flatten(&doc, &cat).unwrap();
    let ids: Vec<&str> = flat.doc.nodes.keys().map(String::as_str).collect();
    let crack = path(&["outer", "scratch-block", "crack"]);
    let scratch = path(&["outer", "scratch-block", "scratch"]);
    let bg = path(&["outer", "bg"]);
    assert_eq!(
        ids,
        vec![bg.as_str(), crack.as_str(), scratch.as_str(), "save"]
    );
    let mut links: Vec<String> = flat
        .doc
        .links
        .iter()
        .map(|l| format!("{} -> {}", l.from, l.to))
        .collect();
    links.sort();
    let mut want = vec![
        format!("{bg}.image -> {crack}.image"),
        format!("{crack}.image -> {scratch}.image"),
        format!("{scratch}.image -> save.image"),
        format!("{crack}.mask -> save.mask"),
    ];
    want.sort();
    assert_eq!(links, want);
    // The outer instance's value wins over the nested instance's, at every target.
    for id in [&crack, &scratch] {
        assert_eq!(flat.doc.nodes[id].params["depth"], ParamValue::Float(0.4));
    }
    assert_eq!(
        flat.scopes[&crack],
        vec![outer_hash.clone(), inner_hash.clone()]
    );
    assert_eq!(flat.scopes[&bg], vec![outer_hash]);
    assert!(!flat.scopes.contains_key("save"));
    assert!(flat.doc.definitions.is_empty());
    nodes::validate_flat(&flat.doc, &cat).unwrap();
}

#[test]
fn unset_exposed_params_keep_inner_values_or_the_default() {
    let cat = Catalogue::builtin();
    let (mut doc, outer_hash, _) = nested();
    doc.nodes.get_mut("outer").unwrap().params.clear();
    let flat = subgraph::flatten(&doc, &cat).unwrap();
    let crack = path(&["outer", "scratch-block", "crack"]);
    // The nested instance's own value (0.3) now reaches the crack.
    assert_eq!(
        flat.doc.nodes[&crack].params["depth"],
        ParamValue::Float(0.3)
    );
    // An exposed default applies when the instance leaves the parameter unset.
    let mut d = doc.definitions[&outer_hash].clone();
    d.params[0].default = Some(ParamValue::Float(0.1));
    subgraph::replace_definition(&mut doc, &outer_hash, d).unwrap();
    let flat = subgraph::flatten(&doc, &cat).unwrap();
    assert_eq!(
        flat.doc.nodes[&crack].params["depth"],
        ParamValue::Float(0.1)
    );
}

#[test]
fn errors_inside_subgraphs_name_the_path() {
    let cat = Catalogue::builtin();
    let (mut doc, _, inner_hash) = nested();
    let mut inner = doc.definitions[&inner_hash].clone();
    inner
        .nodes
        .get_mut("crack")
        .unwrap()
        .params
        .insert("branches".into(), ParamValue::Int(99));
    subgraph::replace_definition(&mut doc, &inner_hash, inner).unwrap();
    let e = nodes::validate(&doc, &cat).unwrap_err();
    assert_eq!(e.0.len(), 1, "{e}");
    assert_eq!(
        e.0[0].node.as_deref(),
        Some("outer › scratch-block › crack")
    );
    assert!(
        e.to_string()
            .contains("node \"outer › scratch-block › crack\" param \"branches\""),
        "{e}"
    );
}

#[test]
fn recursive_definitions_are_refused_naming_the_chain() {
    let cat = Catalogue::builtin();
    // A contains B contains A: only possible with keys that are not hashes, which is refused
    // too; the recursion is named on its own.
    let mut a = def("A");
    a.nodes.insert("b".into(), instance("hash-b", "B"));
    let mut b = def("B");
    b.nodes.insert("a".into(), instance("hash-a", "A"));
    let mut doc = GraphDoc::new();
    doc.definitions.insert("hash-a".into(), a);
    doc.definitions.insert("hash-b".into(), b);
    doc.nodes.insert("top".into(), instance("hash-a", "A"));
    let e = subgraph::flatten(&doc, &cat).unwrap_err();
    let rec =
        e.0.iter()
            .find(|e| matches!(e.problem, Problem::RecursiveDefinition { .. }))
            .expect("a recursion error");
    assert_eq!(rec.node.as_deref(), Some("top › b › a"));
    let text = rec.to_string();
    assert!(text.contains("recursive subgraph"), "{text}");
    assert!(text.contains("A › B › A"), "{text}");
    assert!(nodes::validate(&doc, &cat).is_err());
    assert!(subgraph::interface(&doc, "hash-a", &cat).is_err());
}

#[test]
fn a_key_that_is_not_the_hash_is_refused_naming_both() {
    let cat = Catalogue::builtin();
    let (mut doc, _, inner_hash) = nested();
    // Edit the definition in place without re-keying it.
    doc.definitions
        .get_mut(&inner_hash)
        .unwrap()
        .nodes
        .get_mut("crack")
        .unwrap()
        .params
        .insert("branches".into(), ParamValue::Int(2));
    let real = doc.definitions[&inner_hash].hash();
    let e = nodes::validate(&doc, &cat).unwrap_err();
    let text = e.to_string();
    assert!(
        matches!(e.0[0].problem, Problem::DefinitionHashMismatch { .. }),
        "{text}"
    );
    assert!(text.contains(&inner_hash) && text.contains(&real), "{text}");
    assert!(text.contains("scratch block"), "{text}");
}

#[test]
fn missing_and_library_definitions_are_refused() {
    let cat = Catalogue::builtin();
    let (mut doc, outer_hash, _) = nested();
    doc.definitions.remove(&outer_hash);
    let e = nodes::validate(&doc, &cat).unwrap_err();
    assert!(
        matches!(e.0[0].problem, Problem::MissingDefinition { .. }),
        "{e}"
    );
    assert_eq!(e.0[0].node.as_deref(), Some("outer"));
    assert!(e.to_string().contains(&outer_hash), "{e}");
    doc.nodes
        .get_mut("outer")
        .unwrap()
        .subgraph
        .as_mut()
        .unwrap()
        .library = true;
    let e = nodes::validate(&doc, &cat).unwrap_err();
    assert!(
        matches!(e.0[0].problem, Problem::LibraryDefinition { .. }),
        "{e}"
    );
    assert!(e.to_string().contains("recipe library must provide"), "{e}");
}

#[test]
fn bad_exposed_targets_are_refused() {
    let cat = Catalogue::builtin();
    let bad_cases: Vec<(&str, Box<dyn Fn(&mut Definition)>)> = vec![
        (
            "does not exist",
            Box::new(|d| d.params.push(exposed_param("x", &[("ghost", "depth")]))),
        ),
        (
            "has no parameter",
            Box::new(|d| d.params.push(exposed_param("x", &[("crack", "wobble")]))),
        ),
        (
            "differ in kind",
            Box::new(|d| {
                d.params.push(exposed_param(
                    "x",
                    &[("crack", "depth"), ("crack", "branches")],
                ))
            }),
        ),
        (
            "has no input",
            Box::new(|d| {
                d.inputs.push(ExposedPort {
                    name: "x".into(),
                    targets: vec![pr("crack", "nope")],
                    doc: String::new(),
                })
            }),
        ),
        (
            "has no output",
            Box::new(|d| {
                d.outputs.push(ExposedOutput {
                    name: "x".into(),
                    from: pr("scratch", "nope"),
                    doc: String::new(),
                })
            }),
        ),
    ];
    for (want, edit) in bad_cases {
        let (mut doc, _, inner_hash) = nested();
        let mut inner = doc.definitions[&inner_hash].clone();
        edit(&mut inner);
        subgraph::replace_definition(&mut doc, &inner_hash, inner).unwrap();
        let e = nodes::validate(&doc, &cat).unwrap_err();
        let text = e.to_string();
        assert!(text.contains(want), "{want}: {text}");
        assert!(text.contains("outer › scratch-block"), "{want}: {text}");
        assert!(text.contains("\"x\""), "{want}: {text}");
    }
}

#[test]
fn exposed_range_and_unknown_instance_params_are_refused() {
    let cat = Catalogue::builtin();
    let (mut doc, _, _) = nested();
    let outer = doc.nodes.get_mut("outer").unwrap();
    outer.params.insert("depth".into(), ParamValue::Float(0.9));
    let e = nodes::validate(&doc, &cat).unwrap_err();
    assert!(matches!(e.0[0].problem, Problem::OutOfRange { .. }), "{e}");
    assert!(e.to_string().contains("0..=0.5"), "{e}");
    let outer = doc.nodes.get_mut("outer").unwrap();
    outer.params.clear();
    outer.params.insert("wobble".into(), ParamValue::Float(0.2));
    let e = nodes::validate(&doc, &cat).unwrap_err();
    assert!(
        matches!(e.0[0].problem, Problem::UnknownParam { .. }),
        "{e}"
    );
    assert!(e.to_string().contains("depth"), "{e}");
}

#[test]
fn reroutes_without_a_source_are_refused_and_typed_by_their_source() {
    let cat = Catalogue::builtin();
    let mut doc = GraphDoc::new();
    doc.nodes.insert("bg".into(), NodeDoc::new("SolidColor", 1));
    doc.nodes.insert("r".into(), NodeDoc::new(REROUTE_KIND, 1));
    doc.nodes.insert("r2".into(), NodeDoc::new(REROUTE_KIND, 1));
    doc.nodes
        .insert("save".into(), NodeDoc::new("SaveImage", 1));
    doc.links = vec![
        link("bg", "image", "r", "in"),
        link("r", "out", "r2", "in"),
        link("r2", "out", "save", "image"),
    ];
    nodes::validate(&doc, &cat).unwrap();
    let flat = subgraph::flatten(&doc, &cat).unwrap();
    assert_eq!(flat.doc.links, vec![link("bg", "image", "save", "image")]);
    assert_eq!(
        subgraph::reroute_type(&doc, "r2", &cat),
        Some(PortType::Image)
    );
    assert_eq!(subgraph::reroute_type(&doc, "bg", &cat), None);
    // Fed by nothing: typed by what it feeds, and refused.
    doc.links.remove(0);
    assert_eq!(
        subgraph::reroute_type(&doc, "r", &cat),
        Some(PortType::Image)
    );
    let e = nodes::validate(&doc, &cat).unwrap_err();
    assert!(
        e.0.iter()
            .any(|e| e.problem == Problem::RerouteWithoutSource && e.node.as_deref() == Some("r")),
        "{e}"
    );
}

#[test]
fn interface_reports_types_defaults_and_ranges() {
    let cat = Catalogue::builtin();
    let (doc, outer_hash, inner_hash) = nested();
    let i = subgraph::interface(&doc, &inner_hash, &cat).unwrap();
    assert_eq!(i.inputs.len(), 1);
    assert_eq!(
        (i.inputs[0].name.as_str(), i.inputs[0].ty),
        ("image", PortType::Image)
    );
    assert!(!i.inputs[0].optional);
    let outs: Vec<(&str, PortType)> = i.outputs.iter().map(|p| (p.name.as_str(), p.ty)).collect();
    assert_eq!(
        outs,
        vec![("image", PortType::Image), ("mask", PortType::Mask)]
    );
    let params: Vec<&str> = i.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(params, vec!["depth", "seed"]);
    // Crack's own default depth.
    assert_eq!(i.params[0].default, ParamValue::Float(0.8));
    let o = subgraph::interface(&doc, &outer_hash, &cat).unwrap();
    assert!(o.inputs.is_empty());
    // The nested instance's value is the outer default; the range is the exposed one.
    assert_eq!(o.params[0].default, ParamValue::Float(0.3));
    assert_eq!((o.params[0].min, o.params[0].max), (Some(0.0), Some(0.5)));
    assert_eq!(o.params[0].spec.name, "depth");
    assert!(subgraph::interface(&doc, "nope", &cat).is_err());
}

#[test]
fn node_ids_may_not_contain_the_path_mark() {
    let cat = Catalogue::builtin();
    let mut doc = GraphDoc::new();
    doc.nodes
        .insert("a › b".into(), NodeDoc::new("SolidColor", 1));
    let e = nodes::validate(&doc, &cat).unwrap_err();
    assert_eq!(e.0[0].problem, Problem::BadNodeId);
    let (mut doc, _, inner_hash) = nested();
    let mut inner = doc.definitions[&inner_hash].clone();
    let n = inner.nodes.remove("scratch").unwrap();
    inner.nodes.insert("x›y".into(), n);
    let key = inner.hash();
    doc.definitions.insert(key, inner);
    let e = nodes::validate(&doc, &cat).unwrap_err();
    assert!(e.0.iter().any(|e| e.problem == Problem::BadNodeId), "{e}");
}

#[test]
fn hash_ignores_layout_and_frames_only() {
    let d = scratch_block();
    let h = d.hash();
    assert_eq!(h.len(), 64);
    assert!(h
        .chars()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    let mut moved = d.clone();
    moved.layout.clear();
    moved.frames.push(subgraph::Frame {
        title: "t".into(),
        color: "#ff0000".into(),
        nodes: vec!["crack".into()],
    });
    assert_eq!(moved.hash(), h);
    let mut edited = d.clone();
    edited.params[0].max = Some(0.9);
    assert_ne!(edited.hash(), h);
}

/// A plain graph: bg → crack → scratch → save, plus noise → crack.placement.
fn plain() -> GraphDoc {
    let mut doc = GraphDoc::new();
    for (id, kind) in [
        ("bg", "SolidColor"),
        ("noise", "Noise"),
        ("crack", "Crack"),
        ("scratch", "Scratch"),
        ("save", "SaveImage"),
    ] {
        doc.nodes.insert(id.into(), NodeDoc::new(kind, 1));
    }
    for (i, id) in ["bg", "noise", "crack", "scratch", "save"]
        .iter()
        .enumerate()
    {
        doc.layout.insert(
            id.to_string(),
            NodeLayout {
                pos: [100.0 * i as f32, 0.0],
                collapsed: false,
            },
        );
    }
    doc.nodes
        .get_mut("crack")
        .unwrap()
        .params
        .insert("depth".into(), ParamValue::Float(0.25));
    doc.links = vec![
        link("bg", "image", "crack", "image"),
        link("noise", "mask", "crack", "placement"),
        link("crack", "image", "scratch", "image"),
        link("scratch", "image", "save", "image"),
        link("crack", "mask", "save", "mask"),
    ];
    doc
}

/// The flat graph as text lines, with the subgraph path prefix `prefix` removed from ids.
fn shape(doc: &GraphDoc, prefix: &str) -> (Vec<String>, Vec<String>) {
    let cat = Catalogue::builtin();
    let flat = subgraph::flatten(doc, &cat).unwrap();
    let strip = |s: &str| s.strip_prefix(prefix).unwrap_or(s).to_string();
    let mut nodes: Vec<String> = flat
        .doc
        .nodes
        .iter()
        .map(|(id, n)| format!("{} {} {:?}", strip(id), n.kind, n.params))
        .collect();
    nodes.sort();
    let mut links: Vec<String> = flat
        .doc
        .links
        .iter()
        .map(|l| {
            format!(
                "{}.{} -> {}.{}",
                strip(l.from.node()),
                l.from.port(),
                strip(l.to.node()),
                l.to.port()
            )
        })
        .collect();
    links.sort();
    (nodes, links)
}

#[test]
fn make_subgraph_then_flatten_gives_the_same_graph() {
    let cat = Catalogue::builtin();
    let before = plain();
    let mut doc = before.clone();
    let id = subgraph::make_subgraph(
        &mut doc,
        &["crack".into(), "scratch".into()],
        "Scratch block",
        &cat,
    )
    .unwrap();
    assert_eq!(id, "scratch-block");
    let node = &doc.nodes[&id];
    assert_eq!(node.kind, SUBGRAPH_KIND);
    let hash = node.subgraph.as_ref().unwrap().hash.clone();
    let d = &doc.definitions[&hash];
    assert_eq!(d.hash(), hash);
    let ins: Vec<&str> = d.inputs.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(ins, vec!["image", "placement"]);
    let outs: Vec<&str> = d.outputs.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(outs, vec!["image", "mask"]);
    // The layout moved into the definition; the node sits at the centroid.
    assert_eq!(d.layout.len(), 2);
    assert_eq!(doc.layout[&id].pos, [250.0, 0.0]);
    assert!(!doc.layout.contains_key("crack"));
    nodes::validate(&doc, &cat).unwrap();
    let (n0, l0) = shape(&before, "");
    let (n1, l1) = shape(&doc, &format!("scratch-block{PATH_SEP}"));
    assert_eq!(n0, n1);
    assert_eq!(l0, l1);

    // Unpacking gives the original graph back.
    let ids = subgraph::unpack(&mut doc, &id).unwrap();
    assert_eq!(ids, vec!["crack", "scratch"]);
    assert!(doc.definitions.is_empty());
    let (n2, l2) = shape(&doc, "");
    assert_eq!((n0, l0), (n2, l2));
    assert_eq!(doc.layout["crack"].pos, before.layout["crack"].pos);
}

#[test]
fn make_subgraph_groups_links_by_source_and_refuses_bad_selections() {
    let cat = Catalogue::builtin();
    let mut doc = plain();
    // bg feeds both crack and (now) scratch's image through one exposed input.
    doc.links.retain(|l| l.to.node() != "scratch");
    doc.links.push(link("bg", "image", "scratch", "image"));
    let id =
        subgraph::make_subgraph(&mut doc, &["crack".into(), "scratch".into()], "b", &cat).unwrap();
    let d = &doc.definitions[&doc.nodes[&id].subgraph.as_ref().unwrap().hash];
    assert_eq!(
        d.inputs[0].targets,
        vec![pr("crack", "image"), pr("scratch", "image")]
    );
    assert_eq!(doc.links.iter().filter(|l| l.to.node() == id).count(), 2);
    nodes::validate(&doc, &cat).unwrap();
    let mut doc = plain();
    assert!(subgraph::make_subgraph(&mut doc, &[], "x", &cat).is_err());
    let e = subgraph::make_subgraph(&mut doc, &["ghost".into()], "x", &cat).unwrap_err();
    assert!(e.to_string().contains("ghost"), "{e}");
    assert_eq!(doc, plain());
}

#[test]
fn replace_definition_rekeys_enclosing_definitions_and_drops_unused() {
    let cat = Catalogue::builtin();
    let (mut doc, outer_hash, inner_hash) = nested();
    let mut inner = doc.definitions[&inner_hash].clone();
    inner.params[1].max = Some(5.0);
    let new_inner = subgraph::replace_definition(&mut doc, &inner_hash, inner).unwrap();
    assert_ne!(new_inner, inner_hash);
    assert_eq!(doc.definitions.len(), 2);
    assert!(!doc.definitions.contains_key(&inner_hash));
    assert!(
        !doc.definitions.contains_key(&outer_hash),
        "the enclosing one re-keyed"
    );
    let top = doc.nodes["outer"].subgraph.as_ref().unwrap().hash.clone();
    assert_eq!(doc.definitions[&top].hash(), top);
    assert_eq!(
        doc.definitions[&top].nodes["scratch-block"]
            .subgraph
            .as_ref()
            .unwrap()
            .hash,
        new_inner
    );
    nodes::validate(&doc, &cat).unwrap();
    // Only the layout changed: same key, nothing re-keyed.
    let mut moved = doc.definitions[&new_inner].clone();
    moved.layout.clear();
    assert_eq!(
        subgraph::replace_definition(&mut doc, &new_inner, moved).unwrap(),
        new_inner
    );
    assert!(doc.definitions[&new_inner].layout.is_empty());
    assert!(doc.definitions.contains_key(&top));
    // A hash not in the document is an error.
    assert!(subgraph::replace_definition(&mut doc, "nope", def("x")).is_err());
    // Removing the only instance drops both definitions on the next edit.
    doc.nodes.remove("outer");
    let d = doc.definitions[&top].clone();
    subgraph::replace_definition(&mut doc, &top, d).unwrap();
    assert!(doc.definitions.is_empty());
}

#[test]
fn definition_from_recipe_drops_sinks_and_exposes_open_ends() {
    let cat = Catalogue::builtin();
    let mut recipe = plain();
    recipe.links.retain(|l| l.from.node() != "bg");
    recipe.meta.tags = vec!["metal".into()];
    let (d, others) = subgraph::definition_from_recipe(&recipe, "scratches", &cat).unwrap();
    assert!(others.is_empty());
    assert!(!d.nodes.contains_key("save"));
    assert_eq!(d.tags, vec!["metal".to_string()]);
    let outs: Vec<(&str, String)> = d
        .outputs
        .iter()
        .map(|o| (o.name.as_str(), o.from.to_string()))
        .collect();
    assert_eq!(
        outs,
        vec![
            ("image", "scratch.image".into()),
            ("mask", "crack.mask".into())
        ]
    );
    let ins: Vec<String> = d
        .inputs
        .iter()
        .flat_map(|e| e.targets.iter().map(|t| t.to_string()))
        .collect();
    assert_eq!(ins, vec!["crack.image".to_string()]);
    // A recipe that is one subgraph node gives that definition as it is.
    let (doc, outer_hash, inner_hash) = nested();
    let mut one = doc.clone();
    one.nodes.remove("save");
    one.links.clear();
    let (d, others) = subgraph::definition_from_recipe(&one, "ignored", &cat).unwrap();
    assert_eq!(d.hash(), outer_hash);
    assert_eq!(others.keys().collect::<Vec<_>>(), vec![&inner_hash]);
}

#[test]
fn expose_and_unexpose_params() {
    let cat = Catalogue::builtin();
    let (mut doc, _, inner_hash) = nested();
    let mut inner = doc.definitions[&inner_hash].clone();
    subgraph::expose_param(&mut inner, "scratch", "count", "count").unwrap();
    subgraph::expose_param(&mut inner, "scratch", "count", "count").unwrap();
    assert_eq!(inner.params.len(), 3);
    assert_eq!(inner.params[2].targets, vec![pr("scratch", "count")]);
    assert!(subgraph::expose_param(&mut inner, "ghost", "count", "n").is_err());
    let e = subgraph::expose_param(&mut inner, "scratch", "count", "other").unwrap_err();
    assert!(e.to_string().contains("already exposed"), "{e}");
    let h = subgraph::replace_definition(&mut doc, &inner_hash, inner.clone()).unwrap();
    let i = subgraph::interface(&doc, &h, &cat).unwrap();
    assert_eq!(i.params[2].default, ParamValue::Int(3));
    subgraph::unexpose_param(&mut inner, "count").unwrap();
    assert!(subgraph::unexpose_param(&mut inner, "count").is_err());
    assert_eq!(inner.params.len(), 2);
}

#[test]
fn param_inputs_add_ports_and_accept_compatible_links() {
    let cat = Catalogue::builtin();
    let crack = cat.get("Crack").unwrap();
    let mut node = NodeDoc::new("Crack", 1);
    node.param_inputs.insert("depth".into());
    node.param_inputs.insert("branches".into());
    let names: Vec<&str> = nodes::input_ports(crack, &node)
        .iter()
        .map(|p| p.name)
        .collect();
    // Declared inputs, then the parameters in parameter order.
    assert_eq!(names, vec!["image", "placement", "branches", "depth"]);
    let mut doc = GraphDoc::new();
    doc.nodes.insert("bg".into(), NodeDoc::new("SolidColor", 1));
    doc.nodes.insert("n".into(), NodeDoc::new("Noise", 1));
    doc.nodes.insert("crack".into(), node);
    doc.links = vec![link("bg", "image", "crack", "image")];
    nodes::validate(&doc, &cat).unwrap();
    // An Image into a Float parameter is refused; an unknown name is refused.
    doc.links.push(link("n", "image", "crack", "depth"));
    let e = nodes::validate(&doc, &cat).unwrap_err();
    assert!(
        matches!(e.0[0].problem, Problem::TypeMismatch { .. }),
        "{e}"
    );
    doc.links.pop();
    doc.nodes
        .get_mut("crack")
        .unwrap()
        .param_inputs
        .insert("wobble".into());
    let e = nodes::validate(&doc, &cat).unwrap_err();
    assert!(
        matches!(e.0[0].problem, Problem::UnknownParamInput { .. }),
        "{e}"
    );
    assert!(
        e.to_string().contains("crack") && e.to_string().contains("wobble"),
        "{e}"
    );
    // The compatibility table.
    use nodes::ParamKind as K;
    assert!(nodes::param_accepts(
        &K::Float {
            min: 0.0,
            max: 1.0,
            default: 0.0
        },
        PortType::Int
    ));
    assert!(!nodes::param_accepts(
        &K::Int {
            min: 0,
            max: 1,
            default: 0
        },
        PortType::Float
    ));
    assert!(nodes::param_accepts(&K::Seed, PortType::Seed));
    assert!(nodes::param_accepts(&K::Seed, PortType::Int));
    assert!(nodes::param_accepts(
        &K::Choice {
            options: &[],
            default: ""
        },
        PortType::Text
    ));
    assert!(!nodes::param_accepts(
        &K::Text { default: "" },
        PortType::Choice
    ));
}

#[test]
fn an_exposed_param_shown_as_an_input_links_to_every_target() {
    let cat = Catalogue::builtin();
    let (mut doc, outer_hash, _) = nested();
    // Feed the nested crack's seed from the outside: `seed` exposed on the outer definition
    // from the nested instance, shown as an input on the outer instance.
    let mut outer = doc.definitions[&outer_hash].clone();
    outer
        .params
        .push(exposed_param("seed", &[("scratch-block", "seed")]));
    let h = subgraph::replace_definition(&mut doc, &outer_hash, outer).unwrap();
    assert_ne!(h, outer_hash);
    doc.nodes.insert("n".into(), NodeDoc::new("Noise", 1));
    doc.nodes
        .get_mut("outer")
        .unwrap()
        .param_inputs
        .insert("seed".into());
    // A Float into a Seed is refused (type check on the flat graph) ...
    doc.links.push(link("n", "image", "outer", "seed"));
    let e = nodes::validate(&doc, &cat).unwrap_err();
    assert!(
        e.to_string().contains("outer › scratch-block › crack"),
        "{e}"
    );
    // ... and a link into a port the instance does not show is refused.
    doc.links.pop();
    doc.links.push(link("n", "image", "outer", "ghost"));
    let e = nodes::validate(&doc, &cat).unwrap_err();
    assert!(
        matches!(e.0[0].problem, Problem::UnknownInputPort { .. }),
        "{e}"
    );
    assert_eq!(e.0[0].node.as_deref(), Some("outer"));
}
