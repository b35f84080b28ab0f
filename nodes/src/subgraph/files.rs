//! A graph's file parameters wherever they sit: top-level nodes, the values set on a subgraph
//! node's exposed parameters, the nodes inside definitions (nested ones too) and the exposed
//! parameters' defaults. [`file_params`] lists them (a bundle's manifest of models and input
//! files); [`repoint_file_params`] points those naming one file at another (the missing-models
//! dialog). Definitions are content-addressed, so each one changed is re-keyed with
//! [`replace_definition`] (which updates the subgraph nodes naming it).

use std::collections::BTreeMap;

use super::ports::{param_spec, Body};
use super::{replace_definition, Definition, ExposedParam};
use crate::catalogue::{Catalogue, FileRole};
use crate::graph::{GraphDoc, NodeDoc, ParamValue};

/// Where a file parameter's value lives.
#[derive(Clone, Debug, PartialEq)]
pub enum FileParamAt {
    /// Parameter `param` of node `node`, at the top level (`definition` `None`) or inside the
    /// definition keyed `definition`. For a subgraph node, one of its exposed parameters.
    Node {
        definition: Option<String>,
        node: String,
        param: String,
    },
    /// The default of exposed parameter number `index` (named `param`) of definition
    /// `definition`.
    ExposedDefault {
        definition: String,
        index: usize,
        param: String,
    },
}

/// One file parameter and its value (set, or the kind's default).
#[derive(Clone, Debug, PartialEq)]
pub struct FileParam {
    pub at: FileParamAt,
    pub role: FileRole,
    pub value: ParamValue,
}

/// Every file parameter of `doc`: top-level nodes in id order, then each definition (in key
/// order) with its nodes and its exposed defaults. A kind's parameter left unset counts with its
/// default; a subgraph node's exposed parameter counts only when set on it (else its default
/// counts in the definition).
pub fn file_params(doc: &GraphDoc, catalogue: &Catalogue) -> Vec<FileParam> {
    let mut out = Vec::new();
    body_params(doc, Body::of_doc(doc), None, catalogue, &mut out);
    for (key, def) in &doc.definitions {
        body_params(doc, Body::of_def(def), Some(key), catalogue, &mut out);
        for (index, p) in def.params.iter().enumerate() {
            if let (Some(role), Some(value)) = (exposed_role(doc, def, p, catalogue), &p.default) {
                out.push(FileParam {
                    at: FileParamAt::ExposedDefault {
                        definition: key.clone(),
                        index,
                        param: p.name.clone(),
                    },
                    role,
                    value: value.clone(),
                });
            }
        }
    }
    out
}

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
    let hits = |doc: &GraphDoc| -> Vec<FileParamAt> {
        file_params(doc, catalogue)
            .into_iter()
            .filter(|f| want(f.role) && f.value.as_str().is_some_and(|v| v != to && names(v)))
            .map(|f| f.at)
            .collect()
    };
    let text = || ParamValue::Text(to.to_string());
    let mut changed = 0;
    // The top level first, then one definition at a time: replacing it re-keys it and those
    // enclosing it. Each pass leaves one definition with nothing to change, so this ends.
    for _ in 0..=doc.definitions.len() + 1 {
        let found = hits(doc);
        let Some(def_key) = found.iter().find_map(|at| match at {
            FileParamAt::Node {
                definition: Some(d),
                ..
            }
            | FileParamAt::ExposedDefault { definition: d, .. } => Some(d.clone()),
            FileParamAt::Node {
                definition: None, ..
            } => None,
        }) else {
            // Only top-level values (if any) are left.
            for at in found {
                if let FileParamAt::Node { node, param, .. } = at {
                    set(&mut doc.nodes, &node, param, text());
                    changed += 1;
                }
            }
            return changed;
        };
        let Some(mut def) = doc.definitions.get(&def_key).cloned() else {
            return changed;
        };
        for at in found {
            match at {
                FileParamAt::Node {
                    definition: Some(d),
                    node,
                    param,
                } if d == def_key => {
                    set(&mut def.nodes, &node, param, text());
                    changed += 1;
                }
                FileParamAt::ExposedDefault {
                    definition, index, ..
                } if definition == def_key => {
                    if let Some(p) = def.params.get_mut(index) {
                        p.default = Some(text());
                        changed += 1;
                    }
                }
                _ => {}
            }
        }
        // The key was just read from the map, so it is there.
        let _ = replace_definition(doc, &def_key, def);
    }
    changed
}

fn set(nodes: &mut BTreeMap<String, NodeDoc>, id: &str, param: String, value: ParamValue) {
    if let Some(n) = nodes.get_mut(id) {
        n.params.insert(param, value);
    }
}

/// The file parameters of the nodes of `body` (of definition `definition`, or the top level).
fn body_params(
    doc: &GraphDoc,
    body: Body,
    definition: Option<&String>,
    catalogue: &Catalogue,
    out: &mut Vec<FileParam>,
) {
    for (id, node) in body.nodes {
        let at = |param: &str| FileParamAt::Node {
            definition: definition.cloned(),
            node: id.clone(),
            param: param.to_string(),
        };
        if super::is_subgraph(node) {
            for (name, value) in &node.params {
                let b = Body {
                    nodes: body.nodes,
                    links: body.links,
                };
                let Ok((spec, _)) = param_spec(doc, b, id, name, catalogue, 0) else {
                    continue;
                };
                if let Some(role) = spec.file {
                    out.push(FileParam {
                        at: at(name),
                        role,
                        value: value.clone(),
                    });
                }
            }
            continue;
        }
        let Some(spec) = catalogue.get(&node.kind) else {
            continue;
        };
        for p in spec.params {
            let Some(role) = p.file else {
                continue;
            };
            let value = node
                .params
                .get(p.name)
                .cloned()
                .unwrap_or_else(|| p.default_value());
            out.push(FileParam {
                at: at(p.name),
                role,
                value,
            });
        }
    }
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
