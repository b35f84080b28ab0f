//! Every validation error is produced, names the node, and says what was expected.

use nodes::{Catalogue, GraphDoc, Problem, ValidationError};

/// A valid base graph: texture -> composite <- solid, composite -> save.
fn base() -> serde_json::Value {
    serde_json::json!({
        "format": "defect-studio/graph",
        "version": 1,
        "nodes": {
            "tex": {"kind": "Texture", "version": 1},
            "solid": {"kind": "SolidColor", "version": 1},
            "comp": {"kind": "Composite", "version": 1},
            "save": {"kind": "SaveImage", "version": 1}
        },
        "links": [
            {"from": ["solid", "image"], "to": ["comp", "top"]},
            {"from": ["tex", "image"], "to": ["comp", "bottom"]},
            {"from": ["comp", "image"], "to": ["save", "image"]}
        ]
    })
}

fn errors(v: serde_json::Value) -> Vec<ValidationError> {
    let doc: GraphDoc = GraphDoc::from_json(&v.to_string()).expect("parses");
    match nodes::validate(&doc, &Catalogue::builtin()) {
        Ok(()) => Vec::new(),
        Err(e) => e.0,
    }
}

/// Asserts exactly one error, on `node`, matching `pred`, and that its message names the node.
fn expect_one(v: serde_json::Value, node: &str, pred: impl Fn(&Problem) -> bool) -> String {
    let errs = errors(v);
    assert_eq!(errs.len(), 1, "expected one error, got {errs:#?}");
    let e = &errs[0];
    assert_eq!(e.node.as_deref(), Some(node), "{e}");
    assert!(pred(&e.problem), "unexpected problem: {e}");
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("\"{node}\"")),
        "message does not name the node: {msg}"
    );
    msg
}

#[test]
fn base_graph_is_valid() {
    assert!(errors(base()).is_empty());
}

#[test]
fn unknown_kind() {
    let mut v = base();
    v["nodes"]["blur"] = serde_json::json!({"kind": "GaussianBlurXL", "version": 1});
    let msg = expect_one(v, "blur", |p| matches!(p, Problem::UnknownKind { .. }));
    assert!(msg.contains("GaussianBlurXL"));
}

#[test]
fn newer_node_version() {
    let mut v = base();
    v["nodes"]["tex"]["version"] = 3.into();
    expect_one(v, "tex", |p| {
        matches!(
            p,
            Problem::NewerNodeVersion {
                found: 3,
                supported: 1,
                ..
            }
        )
    });
}

#[test]
fn unknown_param_lists_known_ones() {
    let mut v = base();
    v["nodes"]["tex"]["params"] = serde_json::json!({"colour": "#ffffff"});
    let msg = expect_one(v, "tex", |p| matches!(p, Problem::UnknownParam { .. }));
    assert!(msg.contains("\"colour\"") && msg.contains("color"), "{msg}");
}

#[test]
fn out_of_range_value() {
    let mut v = base();
    v["nodes"]["tex"]["params"] = serde_json::json!({"width": 100000});
    let msg = expect_one(v, "tex", |p| matches!(p, Problem::OutOfRange { .. }));
    assert!(
        msg.contains("width") && msg.contains("100000") && msg.contains("16384"),
        "{msg}"
    );
}

#[test]
fn wrong_value_types_and_choices() {
    let mut v = base();
    v["nodes"]["tex"]["params"] = serde_json::json!({"material": "marble"});
    let msg = expect_one(v, "tex", |p| matches!(p, Problem::BadParamValue { .. }));
    assert!(msg.contains("brushed_metal"), "{msg}");
    let mut v = base();
    v["nodes"]["tex"]["params"] = serde_json::json!({"width": "wide"});
    expect_one(v, "tex", |p| matches!(p, Problem::BadParamValue { .. }));
    let mut v = base();
    v["nodes"]["solid"]["params"] = serde_json::json!({"color": "red"});
    expect_one(v, "solid", |p| matches!(p, Problem::BadParamValue { .. }));
    let mut v = base();
    v["nodes"]["tex"]["params"] = serde_json::json!({"seed": -4});
    expect_one(v, "tex", |p| matches!(p, Problem::BadParamValue { .. }));
}

#[test]
fn float_params_accept_integers() {
    let mut v = base();
    v["nodes"]["comp"]["params"] = serde_json::json!({"opacity": 1});
    assert!(errors(v).is_empty());
}

#[test]
fn type_mismatch() {
    let mut v = base();
    v["nodes"]["shape"] = serde_json::json!({"kind": "ShapeMask", "version": 1});
    v["links"][0] = serde_json::json!({"from": ["shape", "mask"], "to": ["comp", "top"]});
    let msg = expect_one(v, "comp", |p| matches!(p, Problem::TypeMismatch { .. }));
    assert!(
        msg.contains("shape.mask") && msg.contains("Mask") && msg.contains("Image"),
        "{msg}"
    );
}

#[test]
fn missing_required_input() {
    let mut v = base();
    v["links"].as_array_mut().unwrap().remove(1);
    let msg = expect_one(v, "comp", |p| {
        matches!(p, Problem::MissingRequiredInput { .. })
    });
    assert!(msg.contains("bottom"), "{msg}");
}

#[test]
fn duplicate_link_into_one_input() {
    let mut v = base();
    v["links"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"from": ["tex", "image"], "to": ["comp", "top"]}));
    let msg = expect_one(v, "comp", |p| {
        matches!(p, Problem::DuplicateInputLink { .. })
    });
    assert!(
        msg.contains("solid.image") && msg.contains("tex.image"),
        "{msg}"
    );
}

#[test]
fn unknown_ports_and_nodes_in_links() {
    let mut v = base();
    v["links"][2] = serde_json::json!({"from": ["comp", "picture"], "to": ["save", "image"]});
    let msg = expect_one(v, "save", |p| {
        matches!(p, Problem::UnknownOutputPort { .. })
    });
    assert!(msg.contains("comp.picture"), "{msg}");
    let mut v = base();
    v["links"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"from": ["tex", "image"], "to": ["save", "img"]}));
    expect_one(v, "save", |p| matches!(p, Problem::UnknownInputPort { .. }));
    let mut v = base();
    v["links"][0] = serde_json::json!({"from": ["ghost", "image"], "to": ["comp", "top"]});
    let msg = expect_one(v, "comp", |p| {
        matches!(p, Problem::LinkFromMissingNode { .. })
    });
    assert!(msg.contains("ghost"), "{msg}");
}

#[test]
fn cycle_names_the_nodes_on_it() {
    let v = serde_json::json!({
        "format": "defect-studio/graph",
        "version": 1,
        "nodes": {
            "a": {"kind": "MaskOps", "version": 1},
            "b": {"kind": "MaskOps", "version": 1}
        },
        "links": [
            {"from": ["a", "mask"], "to": ["b", "mask"]},
            {"from": ["b", "mask"], "to": ["a", "mask"]}
        ]
    });
    let errs = errors(v);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    match &errs[0].problem {
        Problem::Cycle { path } => {
            assert!(path.contains(&"a".to_string()) && path.contains(&"b".to_string()));
            assert_eq!(path.first(), path.last());
        }
        other => panic!("expected a cycle, got {other:?}"),
    }
    assert!(errs[0].node.is_some());
}

#[test]
fn output_paths_may_not_escape() {
    for bad in [
        "../outside.png",
        "a/../../b.png",
        "/etc/cron.d/x.png",
        "C:\\x.png",
        "~/x.png",
        "{unknown}.png",
        "{seed:5}.png",
        "",
    ] {
        let mut v = base();
        v["nodes"]["save"]["params"] = serde_json::json!({"filename": bad});
        let msg = expect_one(v, "save", |p| matches!(p, Problem::UnsafeOutputPath { .. }));
        assert!(msg.contains("filename"), "{msg}");
    }
    let mut v = base();
    v["nodes"]["save"]["params"] = serde_json::json!({"filename": "defects/{graph}_{seed:06}.png"});
    assert!(errors(v).is_empty());
}

#[test]
fn missing_asset() {
    let mut v = base();
    v["nodes"]["m"] =
        serde_json::json!({"kind": "LoadMask", "version": 1, "params": {"source": "asset:abc123"}});
    let msg = expect_one(v, "m", |p| matches!(p, Problem::MissingAsset { .. }));
    assert!(msg.contains("abc123"), "{msg}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut v = base();
    v["nodes"]["tex"]["params"] = serde_json::json!({"width": 0, "bogus": 1});
    v["nodes"]["x"] = serde_json::json!({"kind": "Nope", "version": 1});
    let errs = errors(v);
    assert_eq!(errs.len(), 3, "{errs:#?}");
}
