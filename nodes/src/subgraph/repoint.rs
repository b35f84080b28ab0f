//! Pointing a graph's file parameters at another file, wherever they sit: top-level nodes, a
//! subgraph node's exposed parameters, the nodes inside definitions (nested ones too) and the
//! exposed parameters' defaults. Definitions are content-addressed, so each one changed is
//! re-keyed with [`replace_definition`] (which updates the subgraph nodes naming it). The
//! missing-models dialog uses it when the user locates a model.

use std::collections::BTreeMap;

use super::ports::{param_spec, Body};
use super::{replace_definition, Definition, ExposedParam};
use crate::catalogue::{Catalogue, FileRole};
use crate::graph::{GraphDoc, NodeDoc, ParamValue};

/// Sets to `to` every file parameter of a role `want` accepts whose value `names` matches (and
/// is not `to` already), including parameters left at a default that matches. Returns how many
/// values changed.
pub fn repoint_file_params(
    doc: &mut GraphDoc,
    catalogue: &Catalogue,
    want: impl Fn(FileRole) -> bool,
    names: impl Fn(&str) -> bool,
    to: &str,
) -> usize {
    let hit = |role: Option<FileRole>, value: Option<&ParamValue>| {
        role.is_some_and(&want)
            && value
                .and_then(|v| v.as_str())
                .is_some_and(|v| v != to && names(v))
    };
    let top = body_changes(doc, Body::of_doc(doc), catalogue, &hit);
    let mut changed = top.len();
    set_all(&mut doc.nodes, top, to);
    // One definition at a time: replacing it re-keys it and those enclosing it. Each pass
    // leaves one definition with nothing to change (its values are now `to`), so this ends.
    for _ in 0..=doc.definitions.len() * 4 + 4 {
        let next = doc.definitions.iter().find_map(|(key, def)| {
            let params = body_changes(doc, Body::of_def(def), catalogue, &hit);
            let defaults: Vec<usize> = (0..def.params.len())
                .filter(|&i| {
                    let p = &def.params[i];
                    hit(exposed_role(doc, def, p, catalogue), p.default.as_ref())
                })
                .collect();
            (!params.is_empty() || !defaults.is_empty())
                .then(|| (key.clone(), def.clone(), params, defaults))
        });
        let Some((key, mut def, params, defaults)) = next else {
            break;
        };
        changed += params.len() + defaults.len();
        set_all(&mut def.nodes, params, to);
        for i in defaults {
            def.params[i].default = Some(ParamValue::Text(to.to_string()));
        }
        // The key was just read from the map, so it is there.
        let _ = replace_definition(doc, &key, def);
    }
    changed
}

fn set_all(nodes: &mut BTreeMap<String, NodeDoc>, changes: Vec<(String, String)>, to: &str) {
    for (id, param) in changes {
        if let Some(n) = nodes.get_mut(&id) {
            n.params.insert(param, ParamValue::Text(to.to_string()));
        }
    }
}

/// The (node id, parameter) pairs of `body` whose value is to change.
fn body_changes(
    doc: &GraphDoc,
    body: Body,
    catalogue: &Catalogue,
    hit: &dyn Fn(Option<FileRole>, Option<&ParamValue>) -> bool,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (id, node) in body.nodes {
        for (param, role, value) in file_values(doc, &body, id, node, catalogue) {
            if hit(role, Some(&value)) {
                out.push((id.clone(), param));
            }
        }
    }
    out
}

/// Each parameter of `node` (in `body`) with its file role and value: a kind's parameters
/// (set, or at their default), or a subgraph node's exposed parameters that are set on it.
fn file_values(
    doc: &GraphDoc,
    body: &Body,
    id: &str,
    node: &NodeDoc,
    catalogue: &Catalogue,
) -> Vec<(String, Option<FileRole>, ParamValue)> {
    if super::is_subgraph(node) {
        return node
            .params
            .iter()
            .filter_map(|(name, v)| {
                let b = Body {
                    nodes: body.nodes,
                    links: body.links,
                };
                let (spec, _) = param_spec(doc, b, id, name, catalogue, 0).ok()?;
                Some((name.clone(), spec.file, v.clone()))
            })
            .collect();
    }
    let Some(spec) = catalogue.get(&node.kind) else {
        return Vec::new();
    };
    spec.params
        .iter()
        .filter(|p| p.file.is_some())
        .map(|p| {
            let v = node
                .params
                .get(p.name)
                .cloned()
                .unwrap_or_else(|| p.default_value());
            (p.name.to_string(), p.file, v)
        })
        .collect()
}

/// The file role of the (first) inner parameter exposed parameter `p` of `def` sets.
fn exposed_role(
    doc: &GraphDoc,
    def: &Definition,
    p: &ExposedParam,
    catalogue: &Catalogue,
) -> Option<FileRole> {
    let t = p.targets.first()?;
    let (spec, _) = param_spec(doc, Body::of_def(def), t.node(), t.port(), catalogue, 0).ok()?;
    spec.file
}
