//! `file_params` lists every file parameter at the top level, inside (nested) definitions, in
//! a subgraph node's exposed parameters and in the exposed defaults; `repoint_file_params`
//! replaces every value naming a missing model there, only for the roles asked, re-keying
//! definitions so the document still flattens.

mod subgraph_common;

use std::path::Path;

use nodes::subgraph::{self, ExposedOutput, FileParamAt};
use nodes::{Catalogue, FileRole, GraphDoc, NodeDoc, ParamValue};
use subgraph_common::*;

fn text(v: &str) -> ParamValue {
    ParamValue::Text(v.into())
}

fn node(kind: &str, params: &[(&str, &str)]) -> NodeDoc {
    let mut n = NodeDoc::new(kind, 1);
    for (k, v) in params {
        n.params.insert(k.to_string(), text(v));
    }
    n
}

/// Top level: LoraLoader `top` (gone), LoadCheckpoint `base` named "gone.safetensors" (another
/// role), and `outer`, an instance of "outer block", which holds LoraLoader `extra` (another
/// file) and an instance of "lora block" whose exposed `style` is set to the missing LoRA.
/// "lora block" holds LoraLoader `lora` (the missing LoRA) and exposes `style` (default: it).
fn doc() -> GraphDoc {
    let mut inner = def("lora block");
    inner.nodes.insert(
        "ckpt".into(),
        node("LoadCheckpoint", &[("checkpoint", "base.safetensors")]),
    );
    inner.nodes.insert(
        "lora".into(),
        node("LoraLoader", &[("lora", "loras\\gone.safetensors")]),
    );
    inner.links = vec![link("ckpt", "model", "lora", "model")];
    inner.outputs = vec![ExposedOutput {
        name: "model".into(),
        from: pr("lora", "model"),
        doc: String::new(),
    }];
    let mut style = exposed_param("style", &[("lora", "lora")]);
    style.default = Some(text("gone"));
    inner.params = vec![style];
    let inner_hash = inner.hash();

    let mut outer = def("outer block");
    let mut block = instance(&inner_hash, "lora block");
    block
        .params
        .insert("style".into(), text("LORAS/Gone.safetensors"));
    outer.nodes.insert("block".into(), block);
    outer.nodes.insert(
        "extra".into(),
        node("LoraLoader", &[("lora", "other.safetensors")]),
    );
    outer.links = vec![link("block", "model", "extra", "model")];
    outer.outputs = vec![ExposedOutput {
        name: "model".into(),
        from: pr("extra", "model"),
        doc: String::new(),
    }];
    let outer_hash = outer.hash();

    let mut d = GraphDoc::new();
    d.definitions.insert(inner_hash, inner);
    d.definitions.insert(outer_hash.clone(), outer);
    d.nodes
        .insert("outer".into(), instance(&outer_hash, "outer block"));
    d.nodes.insert(
        "base".into(),
        node("LoadCheckpoint", &[("checkpoint", "gone.safetensors")]),
    );
    d.nodes
        .insert("top".into(), node("LoraLoader", &[("lora", "gone")]));
    d.links = vec![link("base", "model", "top", "model")];
    d
}

fn stem_is_gone(v: &str) -> bool {
    Path::new(&v.replace('\\', "/"))
        .file_stem()
        .is_some_and(|s| s.eq_ignore_ascii_case("gone"))
}

fn param<'a>(d: &'a GraphDoc, id: &str, name: &str) -> Option<&'a str> {
    d.nodes.get(id)?.params.get(name)?.as_str()
}

#[test]
fn every_lora_value_naming_the_missing_file_is_repointed() {
    let cat = Catalogue::builtin();
    let mut d = doc();
    let to = "loras/gone-v2.safetensors";
    let n = subgraph::repoint_file_params(&mut d, &cat, |r| r == FileRole::Lora, stem_is_gone, to);
    // top.lora, the instance's `style`, the inner node's lora and the exposed default.
    assert_eq!(n, 4);
    assert_eq!(param(&d, "top", "lora"), Some(to));
    assert_eq!(
        param(&d, "base", "checkpoint"),
        Some("gone.safetensors"),
        "a checkpoint is another role"
    );
    // Definitions are keyed by their new content, the old ones are gone, and every subgraph
    // node names a definition the document holds.
    assert_eq!(d.definitions.len(), 2);
    for (k, def) in &d.definitions {
        assert_eq!(k, &def.hash());
    }
    let inner = d
        .definitions
        .values()
        .find(|x| x.name == "lora block")
        .unwrap();
    assert_eq!(inner.nodes["lora"].params["lora"].as_str(), Some(to));
    assert_eq!(
        inner.params[0].default.as_ref().and_then(|v| v.as_str()),
        Some(to)
    );
    let outer = d
        .definitions
        .values()
        .find(|x| x.name == "outer block")
        .unwrap();
    assert_eq!(outer.nodes["block"].params["style"].as_str(), Some(to));
    assert_eq!(
        outer.nodes["extra"].params["lora"].as_str(),
        Some("other.safetensors")
    );

    // The flattened graph (what runs) names the new file wherever the old one was.
    let flat = subgraph::flatten(&d, &cat).unwrap();
    let loras: Vec<(String, String)> = flat
        .doc
        .nodes
        .iter()
        .filter(|(_, n)| n.kind == "LoraLoader")
        .map(|(id, n)| (id.clone(), n.params["lora"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(loras.len(), 3);
    for (id, v) in &loras {
        let want = if id.ends_with("extra") {
            "other.safetensors"
        } else {
            to
        };
        assert_eq!(v, want, "{id}");
    }

    // Done once: nothing is left to change.
    let before = d.clone();
    assert_eq!(
        subgraph::repoint_file_params(&mut d, &cat, |r| r == FileRole::Lora, stem_is_gone, to),
        0
    );
    assert_eq!(d, before);
}

/// The new name may match the old one (same stem in another folder): values already equal to it
/// are left alone, so repointing ends and counts only real changes.
#[test]
fn a_new_name_with_the_same_stem_is_not_counted_again() {
    let cat = Catalogue::builtin();
    let mut d = doc();
    let to = "gone.safetensors";
    let n = subgraph::repoint_file_params(&mut d, &cat, |r| r.is_model(), stem_is_gone, to);
    // The four LoRA values, and now the checkpoint is a model role too but already says it.
    assert_eq!(n, 4);
    assert_eq!(param(&d, "base", "checkpoint"), Some(to));
    assert!(subgraph::flatten(&d, &cat).is_ok());
}

#[test]
fn every_file_parameter_is_listed_where_it_lives() {
    let cat = Catalogue::builtin();
    let d = doc();
    let key = |name: &str| {
        d.definitions
            .iter()
            .find(|(_, x)| x.name == name)
            .map(|(k, _)| k.clone())
            .unwrap()
    };
    let (inner, outer) = (key("lora block"), key("outer block"));
    let found: Vec<(FileParamAt, FileRole, String)> = subgraph::file_params(&d, &cat)
        .into_iter()
        .filter(|f| f.value.as_str().is_some_and(|v| !v.is_empty()))
        .map(|f| (f.at, f.role, f.value.as_str().unwrap().to_string()))
        .collect();
    let node = |def: Option<&String>, n: &str, p: &str| FileParamAt::Node {
        definition: def.cloned(),
        node: n.into(),
        param: p.into(),
    };
    let mut want = vec![
        (
            node(None, "base", "checkpoint"),
            FileRole::Checkpoint,
            "gone.safetensors",
        ),
        (node(None, "top", "lora"), FileRole::Lora, "gone"),
    ];
    let inner_entries = vec![
        (
            node(Some(&inner), "ckpt", "checkpoint"),
            FileRole::Checkpoint,
            "base.safetensors",
        ),
        (
            node(Some(&inner), "lora", "lora"),
            FileRole::Lora,
            "loras\\gone.safetensors",
        ),
        (
            FileParamAt::ExposedDefault {
                definition: inner.clone(),
                index: 0,
                param: "style".into(),
            },
            FileRole::Lora,
            "gone",
        ),
    ];
    let outer_entries = vec![
        (
            node(Some(&outer), "block", "style"),
            FileRole::Lora,
            "LORAS/Gone.safetensors",
        ),
        (
            node(Some(&outer), "extra", "lora"),
            FileRole::Lora,
            "other.safetensors",
        ),
    ];
    // Definitions in key order.
    if inner < outer {
        want.extend(inner_entries);
        want.extend(outer_entries);
    } else {
        want.extend(outer_entries);
        want.extend(inner_entries);
    }
    let want: Vec<(FileParamAt, FileRole, String)> = want
        .into_iter()
        .map(|(a, r, v)| (a, r, v.to_string()))
        .collect();
    assert_eq!(found, want);
}
