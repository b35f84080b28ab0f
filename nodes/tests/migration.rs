//! Node-kind migrations: an older node keeps giving the result it gave, with its old defaults
//! written explicitly, and a current node is left untouched.

use nodes::{Catalogue, GraphDoc, ParamValue};

fn doc_with(kind: &str, version: u32, params: &str) -> String {
    format!(
        r#"{{"format": "defect-studio/graph", "version": 1,
            "nodes": {{"n": {{"kind": "{kind}", "version": {version}, "params": {params}}}}},
            "links": []}}"#
    )
}

#[test]
fn img2img_v1_keeps_its_old_strength_default() {
    let doc = GraphDoc::from_json(&doc_with("Img2Img", 1, "{}")).unwrap();
    let n = &doc.nodes["n"];
    let spec = Catalogue::builtin().get("Img2Img").unwrap();
    assert_eq!(n.version, spec.version);
    assert_eq!(n.params["strength"].as_f64(), Some(0.75));
    // The current default is diffusers' 0.8, so the migration must have written 0.75.
    assert_eq!(
        spec.param("strength").unwrap().default_value().as_f64(),
        Some(0.8)
    );
}

#[test]
fn inpaint_v1_keeps_blur_and_paste_back_but_not_over_explicit_values() {
    let doc = GraphDoc::from_json(&doc_with("Inpaint", 1, r#"{"mask_blur": 2.0}"#)).unwrap();
    let n = &doc.nodes["n"];
    assert_eq!(n.version, 2);
    assert_eq!(n.params["mask_blur"].as_f64(), Some(2.0));
    assert_eq!(n.params["paste_back"], ParamValue::Bool(true));
}

#[test]
fn current_nodes_are_not_rewritten() {
    let doc = GraphDoc::from_json(&doc_with("Inpaint", 2, "{}")).unwrap();
    assert!(doc.nodes["n"].params.is_empty());
}
