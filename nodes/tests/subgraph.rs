//! Subgraphs: flattening, interfaces, refusals, and parameters shown as inputs
//! (`nodes::subgraph`, `nodes::input_ports`).

mod subgraph_common;
#[allow(unused_imports)]
use subgraph_common::*;

use nodes::subgraph::{self, Definition, ExposedOutput, ExposedPort, REROUTE_KIND};
use nodes::{Catalogue, GraphDoc, NodeDoc, ParamValue, PortType, Problem};

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
    type Edit = Box<dyn Fn(&mut Definition)>;
    let bad_cases: Vec<(&str, Edit)> = vec![
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
