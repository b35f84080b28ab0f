//! Golden files, parsing errors and migration of graph documents.

use std::path::PathBuf;

use nodes::migrate::{migrate, DocMigration};
use nodes::{Catalogue, GraphDoc, NodesError, ParamValue, SeedValue};

fn golden_files() -> Vec<PathBuf> {
    let root = manifest_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("tests/golden"))
        .unwrap()
        .chain(std::fs::read_dir(root.join("../examples")).unwrap())
        .chain(std::fs::read_dir(root.join("../examples/inspection")).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "golden files missing: {files:?}");
    files
}

#[test]
fn golden_files_round_trip_byte_stable() {
    for path in golden_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        let doc = GraphDoc::from_json(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            doc.to_json(),
            text,
            "{} does not round-trip byte for byte",
            path.display()
        );
        // And a second generation is identical too.
        assert_eq!(GraphDoc::from_json(&doc.to_json()).unwrap(), doc);
    }
}

#[test]
fn golden_files_validate() {
    for path in golden_files() {
        let doc = GraphDoc::from_json(&std::fs::read_to_string(&path).unwrap()).unwrap();
        nodes::validate(&doc, &Catalogue::builtin())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

#[test]
fn values_keep_their_types() {
    let text = std::fs::read_to_string(manifest_dir().join("tests/golden/all-kinds.json")).unwrap();
    let doc = GraphDoc::from_json(&text).unwrap();
    let p = |n: &str, k: &str| doc.nodes[n].params[k].clone();
    assert_eq!(p("comp", "x"), ParamValue::Int(-12));
    assert_eq!(p("comp", "opacity"), ParamValue::Float(0.5));
    assert_eq!(p("mask", "invert"), ParamValue::Bool(true));
    assert_eq!(
        p("noise", "seed"),
        ParamValue::Seed(SeedValue::Fixed { value: u64::MAX })
    );
    assert_eq!(
        p("tex", "seed"),
        ParamValue::Seed(SeedValue::Run { offset: 7 })
    );
    assert_eq!(SeedValue::Run { offset: 7 }.resolve(42), 49);
    assert_eq!(doc.layout["comp"].pos, [520.5, -80.25]);
    assert_eq!(doc.meta.seed, Some(123456789));
}

#[test]
fn malformed_json_reports_line_and_column() {
    let err = GraphDoc::from_json(
        "{\n  \"format\": \"defect-studio/graph\",\n  \"version\": 1,\n  \"nodes\": {,}\n}",
    )
    .unwrap_err();
    match err {
        NodesError::Json { line, .. } => assert_eq!(line, 4),
        other => panic!("expected a JSON error, got {other}"),
    }
}

#[test]
fn wrong_format_and_versions_are_refused_clearly() {
    let e = GraphDoc::from_json(r#"{"format": "comfyui", "version": 1, "nodes": {}}"#).unwrap_err();
    assert!(matches!(e, NodesError::WrongFormat { .. }), "{e}");
    let e = GraphDoc::from_json(r#"{"format": "defect-studio/graph", "nodes": {}}"#).unwrap_err();
    assert!(matches!(e, NodesError::MissingVersion), "{e}");
    let e = GraphDoc::from_json(r#"{"format": "defect-studio/graph", "version": 7, "nodes": {}}"#)
        .unwrap_err();
    assert!(
        matches!(
            e,
            NodesError::UnsupportedVersion {
                found: 7,
                supported: nodes::VERSION
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("newer"), "{e}");
    // Version 0 predates the format: there is no migration for it.
    let e = GraphDoc::from_json(r#"{"format": "defect-studio/graph", "version": 0, "nodes": {}}"#)
        .unwrap_err();
    assert!(matches!(e, NodesError::Migration { from: 0, .. }), "{e}");
}

#[test]
fn schema_errors_name_the_path() {
    let e = GraphDoc::from_json(
        r#"{"format": "defect-studio/graph", "version": 1, "nodes": {"a": {"kind": "Crop"}}}"#,
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("nodes.a") && msg.contains("version"), "{msg}");
    let e = GraphDoc::from_json(
        r#"{"format": "defect-studio/graph", "version": 1, "nodes": {}, "linkz": []}"#,
    )
    .unwrap_err();
    assert!(e.to_string().contains("linkz"), "{e}");
}

#[test]
fn migration_steps_apply_in_order_and_set_the_version() {
    fn rename_title(v: &mut serde_json::Value) -> Result<(), String> {
        let meta = v
            .get_mut("meta")
            .and_then(|m| m.as_object_mut())
            .ok_or("no meta")?;
        let name = meta.remove("name").ok_or("no meta.name")?;
        meta.insert("title".into(), name);
        Ok(())
    }
    let steps = [
        DocMigration {
            from: 0,
            describe: "meta.name became meta.title",
            apply: rename_title,
        },
        // The shipped steps from version 1 on.
        DocMigration {
            from: 1,
            describe: nodes::migrate::DOC_MIGRATIONS[0].describe,
            apply: nodes::migrate::DOC_MIGRATIONS[0].apply,
        },
    ];
    let old = serde_json::json!({"format": "defect-studio/graph", "version": 0, "nodes": {}, "meta": {"name": "plate"}});
    let new = migrate(old, 0, &steps).unwrap();
    assert_eq!(new["version"], nodes::VERSION);
    let doc: GraphDoc = serde_json::from_value(new).unwrap();
    assert_eq!(doc.meta.title, "plate");
    // A failing step says which step failed.
    let bad = serde_json::json!({"format": "defect-studio/graph", "version": 0, "nodes": {}});
    let e = migrate(bad, 0, &steps).unwrap_err();
    assert!(e.to_string().contains("meta.name became meta.title"), "{e}");
}

#[test]
fn upstream_order_is_topological_and_minimal() {
    let doc = GraphDoc::from_json(
        &std::fs::read_to_string(manifest_dir().join("tests/golden/all-kinds.json")).unwrap(),
    )
    .unwrap();
    let order = doc.upstream_order(&["comp"]).unwrap();
    assert_eq!(order, vec!["load", "resize", "crop", "solid", "comp"]);
    let pos = |n: &str| order.iter().position(|x| x == n).unwrap();
    for l in &doc.links {
        if order.contains(&l.to.0) {
            assert!(pos(&l.from.0) < pos(&l.to.0));
        }
    }
}

#[test]
fn param_values_parse_from_text() {
    let spec = Catalogue::builtin().get("Noise").unwrap();
    let seed = spec.param("seed").unwrap();
    assert_eq!(
        seed.parse_value("17").unwrap(),
        ParamValue::Seed(SeedValue::Fixed { value: 17 })
    );
    assert_eq!(
        seed.parse_value("run+3").unwrap(),
        ParamValue::Seed(SeedValue::Run { offset: 3 })
    );
    assert!(seed.parse_value("-1").is_err());
    assert_eq!(
        spec.param("scale").unwrap().parse_value("12.5").unwrap(),
        ParamValue::Float(12.5)
    );
    assert!(spec.param("scale").unwrap().parse_value("NaN").is_err());
    assert_eq!(
        spec.param("octaves").unwrap().parse_value("3").unwrap(),
        ParamValue::Int(3)
    );
    assert!(spec.param("octaves").unwrap().parse_value("3.5").is_err());
}

/// This package's folder, read when the test runs: a test binary reused from another checkout
/// that shared the target folder would otherwise read that checkout's files.
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}
