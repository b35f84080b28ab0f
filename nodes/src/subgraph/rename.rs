//! Renamed exposed ports and parameters follow through to where a definition is used. When the
//! user renames an exposed input, output or parameter of an open subgraph, the links into and
//! out of its instances, the values set on them (and their parameters turned into inputs), and
//! an enclosing definition's exposed targets naming them are renamed too, at every level;
//! otherwise they would name a port the node no longer has.

use std::collections::BTreeMap;

use super::{Definition, ExposedOutput, ExposedParam, ExposedPort};
use crate::graph::{GraphDoc, Link, NodeDoc, PortRef};

/// Old name → new name of the inputs (and parameters) and of the outputs. Matched by position
/// when a list keeps its length (a rename edits a name in place; an added or removed entry is
/// not a rename).
#[derive(Default)]
struct Renames {
    /// Input ports and parameters (both are link targets on an instance).
    into: BTreeMap<String, String>,
    params: BTreeMap<String, String>,
    outputs: BTreeMap<String, String>,
}

impl Renames {
    fn between(old: &Definition, new: &Definition) -> Renames {
        fn pairs<'a, T>(
            old: &'a [T],
            new: &'a [T],
            name: impl Fn(&T) -> &str,
        ) -> BTreeMap<String, String> {
            if old.len() != new.len() {
                return BTreeMap::new();
            }
            old.iter()
                .zip(new)
                .filter(|(a, b)| name(a) != name(b))
                .map(|(a, b)| (name(a).to_string(), name(b).to_string()))
                .collect()
        }
        let inputs = pairs(&old.inputs, &new.inputs, |p: &ExposedPort| &p.name);
        let params = pairs(&old.params, &new.params, |p: &ExposedParam| &p.name);
        let outputs = pairs(&old.outputs, &new.outputs, |p: &ExposedOutput| &p.name);
        let mut into = inputs;
        into.extend(params.clone());
        Renames {
            into,
            params,
            outputs,
        }
    }

    fn is_empty(&self) -> bool {
        self.into.is_empty() && self.outputs.is_empty()
    }
}

/// Applies the renames between `old` and `new` (two versions of definition `hash`) to every
/// instance of `hash`: in `doc`'s top level and inside its definitions (edited in place; the
/// caller re-keys them).
pub(crate) fn follow_renames(doc: &mut GraphDoc, hash: &str, old: &Definition, new: &Definition) {
    let r = Renames::between(old, new);
    if r.is_empty() {
        return;
    }
    rename_in_body(&mut doc.nodes, &mut doc.links, None, hash, &r);
    for def in doc.definitions.values_mut() {
        rename_in_body(
            &mut def.nodes,
            &mut def.links,
            Some((&mut def.inputs, &mut def.outputs, &mut def.params)),
            hash,
            &r,
        );
    }
}

type Exposed<'a> = (
    &'a mut Vec<ExposedPort>,
    &'a mut Vec<ExposedOutput>,
    &'a mut Vec<ExposedParam>,
);

fn rename_in_body(
    nodes: &mut BTreeMap<String, NodeDoc>,
    links: &mut [Link],
    exposed: Option<Exposed>,
    hash: &str,
    r: &Renames,
) {
    let instances: Vec<String> = nodes
        .iter()
        .filter(|(_, n)| n.subgraph.as_ref().is_some_and(|s| s.hash == hash))
        .map(|(id, _)| id.clone())
        .collect();
    if instances.is_empty() {
        return;
    }
    let is_instance = |id: &str| instances.iter().any(|i| i == id);
    let rename = |p: &mut PortRef, map: &BTreeMap<String, String>| {
        if is_instance(&p.0) {
            if let Some(new) = map.get(&p.1) {
                p.1 = new.clone();
            }
        }
    };
    for l in links.iter_mut() {
        rename(&mut l.to, &r.into);
        rename(&mut l.from, &r.outputs);
    }
    for id in &instances {
        let Some(n) = nodes.get_mut(id) else {
            continue;
        };
        // All at once, so that swapped names stay swapped.
        let params = std::mem::take(&mut n.params);
        n.params = params
            .into_iter()
            .map(|(k, v)| (r.params.get(&k).cloned().unwrap_or(k), v))
            .collect();
        let inputs = std::mem::take(&mut n.param_inputs);
        n.param_inputs = inputs
            .into_iter()
            .map(|k| r.params.get(&k).cloned().unwrap_or(k))
            .collect();
    }
    if let Some((inputs, outputs, params)) = exposed {
        for t in inputs.iter_mut().flat_map(|p| p.targets.iter_mut()) {
            rename(t, &r.into);
        }
        for o in outputs.iter_mut() {
            rename(&mut o.from, &r.outputs);
        }
        for t in params.iter_mut().flat_map(|p| p.targets.iter_mut()) {
            rename(t, &r.params);
        }
    }
}
