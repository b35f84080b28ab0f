//! Validation gaps found by attacking graph files (issue 24, section 7): inverted ranges,
//! duplicate keys, output names without a real stem or with control/bidi characters, and
//! error messages that echo huge values.

use nodes::{Catalogue, GraphDoc, ParamKind, Problem, ValidationErrors, QUOTE_MAX};

fn graph(nodes: serde_json::Value) -> String {
    serde_json::json!({"format": "defect-studio/graph", "version": 1, "nodes": nodes}).to_string()
}

/// Validates a graph of lone nodes: unconnected required inputs are not reported.
fn validate(text: &str) -> Result<(), ValidationErrors> {
    let doc = GraphDoc::from_json(text).expect("parses");
    match nodes::validate(&doc, &Catalogue::builtin()) {
        Ok(()) => Ok(()),
        Err(ValidationErrors(errs)) => {
            let errs: Vec<_> = errs
                .into_iter()
                .filter(|e| !matches!(e.problem, Problem::MissingRequiredInput { .. }))
                .collect();
            if errs.is_empty() {
                Ok(())
            } else {
                Err(ValidationErrors(errs))
            }
        }
    }
}

fn one_node(kind: &str, params: serde_json::Value) -> String {
    graph(serde_json::json!({"n": {"kind": kind, "version": 1, "params": params}}))
}

#[test]
fn inverted_ranges_are_refused_naming_node_and_both_params() {
    let cases = [
        ("CutPaste", "area_min", "area_max", 0.5, 0.1),
        ("CutPaste", "aspect_min", "aspect_max", 2.0, 1.0),
        ("CutPasteScar", "width_min", "width_max", 20.0, 3.0),
        ("CutPasteScar", "length_min", "length_max", 30.0, 20.0),
        ("CutPasteScar", "angle_min", "angle_max", 10.0, -10.0),
        ("NsaPatch", "size_min", "size_max", 0.5, 0.1),
        ("DraemAnomaly", "min_scale", "max_scale", 64.0, 32.0),
    ];
    for (kind, lo, hi, a, b) in cases {
        let text = one_node(kind, serde_json::json!({lo: a, hi: b}));
        let errs = validate(&text).expect_err(kind).0;
        assert_eq!(errs.len(), 1, "{kind}: {errs:?}");
        assert!(
            matches!(&errs[0].problem, Problem::InvertedRange { min, max, .. } if min == lo && max == hi),
            "{kind}: {errs:?}"
        );
        let msg = errs[0].to_string();
        for needle in ["\"n\"", lo, hi] {
            assert!(msg.contains(needle), "{kind}: {msg}");
        }
        // Equal ends are a valid (degenerate) range.
        assert!(validate(&one_node(kind, serde_json::json!({lo: b, hi: b}))).is_ok());
    }
    // One end set, the other from the default: still checked (CutPaste area_max defaults to
    // 0.15).
    let errs = validate(&one_node("CutPaste", serde_json::json!({"area_min": 0.9}))).unwrap_err();
    assert!(errs.to_string().contains("area_max"), "{errs}");
}

#[test]
fn every_min_max_pair_of_the_catalogue_is_declared() {
    for spec in Catalogue::builtin().specs() {
        for p in spec.params {
            let partner = match p.name.strip_suffix("_max") {
                Some(stem) => Some(format!("{stem}_min")),
                None => p
                    .name
                    .strip_prefix("max_")
                    .map(|stem| format!("min_{stem}")),
            };
            if let Some(lo) = partner.filter(|lo| spec.param(lo).is_some()) {
                assert_eq!(p.at_least, Some(lo.as_str()), "{}.{}", spec.kind, p.name);
            }
            if let Some(lo) = p.at_least {
                let lo = spec
                    .param(lo)
                    .unwrap_or_else(|| panic!("{}.{lo}", spec.kind));
                let numeric =
                    |k: &ParamKind| matches!(k, ParamKind::Int { .. } | ParamKind::Float { .. });
                assert!(
                    numeric(&lo.kind) && numeric(&p.kind),
                    "{}.{}",
                    spec.kind,
                    p.name
                );
                // The defaults are an ordered range.
                assert!(
                    lo.default_value().as_f64() <= p.default_value().as_f64(),
                    "{}.{}",
                    spec.kind,
                    p.name
                );
            }
        }
    }
}

#[test]
fn duplicate_keys_are_refused_naming_the_key() {
    let node = r#"{"kind": "SolidColor", "version": 1}"#;
    let cases = [
        (
            format!(r#"{{"format": "defect-studio/graph", "version": 1, "nodes": {{"n1": {node}, "n1": {node}}}}}"#),
            "\"n1\"",
        ),
        (
            r#"{"format": "defect-studio/graph", "version": 1, "nodes": {"n1": {"kind": "SolidColor", "version": 1, "params": {"width": 8, "width": 16}}}}"#.to_string(),
            "\"width\"",
        ),
        (
            format!(r#"{{"format": "defect-studio/graph", "version": 1, "version": 1, "nodes": {{"n1": {node}}}}}"#),
            "\"version\"",
        ),
        (
            format!(r#"{{"format": "defect-studio/graph", "version": 1, "nodes": {{"n1": {node}}}, "layout": {{"n1": {{"pos": [0, 0]}}, "n1": {{"pos": [1, 1]}}}}}}"#),
            "\"n1\"",
        ),
    ];
    for (text, key) in cases {
        let e = GraphDoc::from_json(&text).expect_err(&text).to_string();
        assert!(e.contains("duplicate key") && e.contains(key), "{e}");
    }
    // The same documents without the repeat parse.
    let ok = format!(
        r#"{{"format": "defect-studio/graph", "version": 1, "nodes": {{"n1": {node}, "n2": {node}}}}}"#
    );
    assert!(GraphDoc::from_json(&ok).is_ok());
}

#[test]
fn output_names_need_a_real_stem_and_plain_characters() {
    let bad = [
        ".",
        "..png",
        "sub/.",
        "sub/./x.png",
        ".png",
        "sub/",
        "a\nb.png",
        "a\rb.png",
        "a\u{7f}b.png",
        "evil\u{202E}gnp.exe",
        "a\u{2066}b.png",
        "a\u{200F}b.png",
        "a\u{061C}b.png",
        "{graph}/..png",
        "x.png\n",
        "\tx.png",
    ];
    for name in bad {
        assert!(nodes::check_output_template(name).is_err(), "{name:?}");
        let save = validate(&one_node(
            "SaveImage",
            serde_json::json!({"filename": name}),
        ));
        assert!(save.is_err(), "SaveImage {name:?}");
        let export = validate(&one_node(
            "ExportDataset",
            serde_json::json!({"folder": name}),
        ));
        assert!(export.is_err(), "ExportDataset {name:?}");
    }
    for name in [
        "x",
        "a.b.png",
        "{graph}/{run:05}-{node}.png",
        "{node}",
        "sub/x.png",
        "é.png",
    ] {
        assert_eq!(nodes::check_output_template(name), Ok(()), "{name:?}");
        let save = validate(&one_node(
            "SaveImage",
            serde_json::json!({"filename": name}),
        ));
        assert_eq!(save, Ok(()), "SaveImage {name:?}");
    }
}

#[test]
fn messages_quote_at_most_a_short_piece_of_a_huge_value() {
    let huge = "x".repeat(1 << 20);
    let short = |msg: &str| {
        assert!(
            msg.len() < 4 * QUOTE_MAX + 300,
            "{} bytes: {}…",
            msg.len(),
            &msg[..200]
        );
    };
    // Validation problems.
    let texts = [
        one_node(
            "SaveImage",
            serde_json::json!({"filename": format!("{huge}\n")}),
        ),
        one_node(
            "SaveImage",
            serde_json::json!({"filename": format!("/{huge}")}),
        ),
        one_node("Resize", serde_json::json!({"mode": huge})),
        one_node("SolidColor", serde_json::json!({"color": huge})),
        one_node("SolidColor", serde_json::json!({huge.clone(): 1})),
        one_node(&huge, serde_json::json!({})),
        graph(serde_json::json!({huge.clone(): {"kind": "Frobnicate", "version": 1}})),
    ];
    for text in &texts {
        let e = validate(text).unwrap_err().to_string();
        short(&e);
    }
    // Parse errors: schema, duplicate keys.
    let schema = graph(serde_json::json!({"n": {"kind": "SolidColor", "version": huge}}));
    short(&GraphDoc::from_json(&schema).unwrap_err().to_string());
    let dup = format!(
        r#"{{"format": "defect-studio/graph", "version": 1, "nodes": {{}}, "meta": {{"{huge}": 1, "{huge}": 2}}}}"#
    );
    short(&GraphDoc::from_json(&dup).unwrap_err().to_string());
    short(&nodes::check_output_template(&format!("{{{huge}}}")).unwrap_err());
}
