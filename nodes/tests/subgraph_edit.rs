//! Editing subgraphs: make, unpack, replace, from a recipe, expose, set by path
//! (`nodes::subgraph`).

mod subgraph_common;
#[allow(unused_imports)]
use subgraph_common::*;

use nodes::subgraph::{self, PATH_SEP, SUBGRAPH_KIND};
use nodes::{Catalogue, GraphDoc, NodeDoc, NodeLayout, ParamValue};

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
fn set_param_by_path_specialises_only_that_instance() {
    let cat = Catalogue::builtin();
    let (mut doc, outer_hash, _) = nested();
    // A second instance of the same definition.
    let o2 = doc.nodes["outer"].clone();
    doc.nodes.insert("outer2".into(), o2);
    let crack = path(&["outer", "scratch-block", "crack"]);
    subgraph::set_param(&mut doc, &crack, "branches", ParamValue::Int(7)).unwrap();
    nodes::validate(&doc, &cat).unwrap();
    let flat = subgraph::flatten(&doc, &cat).unwrap();
    assert_eq!(
        flat.doc.nodes[&crack].params["branches"],
        ParamValue::Int(7)
    );
    let other = path(&["outer2", "scratch-block", "crack"]);
    assert!(!flat.doc.nodes[&other].params.contains_key("branches"));
    // outer2 keeps the original definitions; outer has its own chain.
    assert_eq!(
        doc.nodes["outer2"].subgraph.as_ref().unwrap().hash,
        outer_hash
    );
    assert_ne!(
        doc.nodes["outer"].subgraph.as_ref().unwrap().hash,
        outer_hash
    );
    assert_eq!(doc.definitions.len(), 4);
    for (k, d) in &doc.definitions {
        assert_eq!(&d.hash(), k);
    }
    // Top-level nodes and exposed parameters of instances are set in place.
    subgraph::set_param(&mut doc, "outer2", "depth", ParamValue::Float(0.2)).unwrap();
    assert_eq!(doc.nodes["outer2"].params["depth"], ParamValue::Float(0.2));
    let e = subgraph::set_param(&mut doc, "outer › ghost", "x", ParamValue::Int(1)).unwrap_err();
    assert!(e.to_string().contains("outer › ghost"), "{e}");
    assert!(subgraph::set_param(&mut doc, "nope", "x", ParamValue::Int(1)).is_err());
}

#[test]
fn node_param_and_flat_targets_see_through_subgraph_nodes() {
    let cat = Catalogue::builtin();
    let (doc, _, _) = nested();
    let p = subgraph::node_param(&doc, "outer", "depth", &cat).unwrap();
    assert_eq!(p.name, "depth");
    assert!(matches!(p.kind, nodes::ParamKind::Float { .. }));
    let e = subgraph::node_param(&doc, "outer", "wobble", &cat).unwrap_err();
    assert!(e.contains("depth"), "{e}");
    assert_eq!(
        subgraph::node_param(&doc, "save", "filename", &cat)
            .unwrap()
            .name,
        "filename"
    );
    let flat = subgraph::flatten(&doc, &cat).unwrap();
    assert_eq!(
        flat.targets(&["outer".into(), "save".into(), "ghost".into()]),
        vec![
            "ghost".to_string(),
            path(&["outer", "scratch-block", "crack"]),
            path(&["outer", "scratch-block", "scratch"]),
            "save".to_string(),
        ]
    );
}

/// The flattened graph's nodes and links: what runs, which renaming an exposed name must not
/// change.
fn runs_as(doc: &GraphDoc, cat: &Catalogue) -> (String, String) {
    let flat = subgraph::flatten(doc, cat).unwrap();
    (
        serde_json::to_string(&flat.doc.nodes).unwrap(),
        serde_json::to_string(&flat.doc.links).unwrap(),
    )
}

/// Renaming an exposed input, output and parameter of the inner "scratch block" renames the
/// enclosing definition's link into its instance, its exposed output's source, its exposed
/// parameter's target and the value set on the instance; renaming the outer block's parameter
/// renames the top-level instance's value. The graph runs exactly as before.
#[test]
fn renamed_exposed_names_follow_to_every_instance() {
    let cat = Catalogue::builtin();
    let (mut doc, outer_hash, inner_hash) = nested();
    let before = runs_as(&doc, &cat);
    let mut inner = doc.definitions[&inner_hash].clone();
    inner.inputs[0].name = "surface".into();
    inner.outputs[1].name = "defect_mask".into();
    inner.params[0].name = "scratch_depth".into();
    subgraph::replace_definition(&mut doc, &inner_hash, inner).unwrap();
    nodes::validate(&doc, &cat).unwrap();
    let top = doc.nodes["outer"].subgraph.as_ref().unwrap().hash.clone();
    assert_ne!(top, outer_hash);
    let outer = &doc.definitions[&top];
    assert_eq!(
        outer.links,
        vec![link("bg", "image", "scratch-block", "surface")]
    );
    assert_eq!(outer.outputs[1].from, pr("scratch-block", "defect_mask"));
    assert_eq!(
        outer.params[0].targets,
        vec![pr("scratch-block", "scratch_depth")]
    );
    let sb = &outer.nodes["scratch-block"].params;
    assert_eq!(sb.keys().collect::<Vec<_>>(), ["scratch_depth"]);
    assert_eq!(runs_as(&doc, &cat), before);

    let mut outer = doc.definitions[&top].clone();
    outer.params[0].name = "d".into();
    subgraph::replace_definition(&mut doc, &top, outer).unwrap();
    assert_eq!(
        doc.nodes["outer"].params.get("d"),
        Some(&ParamValue::Float(0.4))
    );
    assert!(!doc.nodes["outer"].params.contains_key("depth"));
    nodes::validate(&doc, &cat).unwrap();
    assert_eq!(runs_as(&doc, &cat), before);
}

/// Two outputs swapping names swap where the links go, so each link still reads the same inner
/// output; adding an output is not a rename.
#[test]
fn swapped_output_names_keep_every_link_on_its_source() {
    let cat = Catalogue::builtin();
    let (mut doc, _, inner_hash) = nested();
    let before = runs_as(&doc, &cat);
    let mut inner = doc.definitions[&inner_hash].clone();
    inner.outputs[0].name = "mask".into();
    inner.outputs[1].name = "image".into();
    let h = subgraph::replace_definition(&mut doc, &inner_hash, inner).unwrap();
    let top = doc.nodes["outer"].subgraph.as_ref().unwrap().hash.clone();
    let outer = &doc.definitions[&top];
    assert_eq!(outer.outputs[0].from, pr("scratch-block", "mask"));
    assert_eq!(outer.outputs[1].from, pr("scratch-block", "image"));
    assert_eq!(runs_as(&doc, &cat), before);

    let mut more = doc.definitions[&h].clone();
    more.outputs.push(nodes::subgraph::ExposedOutput {
        name: "extra".into(),
        from: pr("crack", "image"),
        doc: String::new(),
    });
    subgraph::replace_definition(&mut doc, &h, more).unwrap();
    assert_eq!(runs_as(&doc, &cat), before);
}
