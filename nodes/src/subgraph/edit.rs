//! Editing subgraphs: making one from a selection, swapping a definition for an edited one,
//! turning a recipe into a definition, exposing parameters and unpacking an instance.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    is_subgraph, Definition, ExposedOutput, ExposedParam, ExposedPort, SubgraphRef, PATH_MARK,
    SUBGRAPH_KIND,
};
use crate::catalogue::Catalogue;
use crate::error::NodesError;
use crate::graph::{GraphDoc, Link, NodeDoc, NodeLayout, PortRef};
use crate::quote::quote;

/// The version of the subgraph node kind.
pub const SUBGRAPH_VERSION: u32 = 1;

fn fail(message: String) -> NodesError {
    NodesError::Subgraph(message)
}

/// `base`, or `base-2`, `base-3`, … : the first not in `taken`.
fn unique(base: &str, taken: impl Fn(&str) -> bool) -> String {
    if !taken(base) {
        return base.to_string();
    }
    (2..)
        .map(|i| format!("{base}-{i}"))
        .find(|c| !taken(c))
        .unwrap_or_else(|| base.to_string())
}

/// A node id made from a definition's name: lower case, words joined by `-`.
fn slug(name: &str) -> String {
    let s: String = name
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| *c != PATH_MARK)
        .map(|c| if c.is_whitespace() { '-' } else { c })
        .collect();
    if s.is_empty() {
        "subgraph".into()
    } else {
        s
    }
}

/// Moves the `selection` (node ids of `doc`) into a new definition named `name` and puts one
/// subgraph node in their place (at their centroid). Links crossing the selection become exposed
/// inputs and outputs (one per distinct outer source / inner source), named after the inner
/// port (made unique); no parameter is exposed. Returns the new node's id.
pub fn make_subgraph(
    doc: &mut GraphDoc,
    selection: &[String],
    name: &str,
    catalogue: &Catalogue,
) -> Result<String, NodesError> {
    let _ = catalogue;
    let sel: BTreeSet<&str> = selection.iter().map(String::as_str).collect();
    if sel.is_empty() {
        return Err(fail("select at least one node to make a subgraph".into()));
    }
    if let Some(missing) = sel.iter().find(|id| !doc.nodes.contains_key(**id)) {
        return Err(fail(format!("node {} is not in the graph", quote(missing))));
    }
    let inside = |p: &PortRef| sel.contains(p.node());
    let mut def = Definition {
        name: name.trim().to_string(),
        doc: String::new(),
        tags: Vec::new(),
        nodes: BTreeMap::new(),
        links: Vec::new(),
        inputs: Vec::new(),
        outputs: Vec::new(),
        params: Vec::new(),
        layout: BTreeMap::new(),
        frames: Vec::new(),
    };
    if def.name.is_empty() {
        return Err(fail("a subgraph needs a name".into()));
    }
    // Crossing links, grouped by their source, in link order.
    let mut incoming: Vec<(PortRef, Vec<PortRef>)> = Vec::new();
    let mut outgoing: Vec<(PortRef, Vec<PortRef>)> = Vec::new();
    let mut kept = Vec::new();
    for l in std::mem::take(&mut doc.links) {
        match (inside(&l.from), inside(&l.to)) {
            (true, true) => def.links.push(l),
            (false, true) => match incoming.iter_mut().find(|(f, _)| *f == l.from) {
                Some((_, ts)) => ts.push(l.to),
                None => incoming.push((l.from, vec![l.to])),
            },
            (true, false) => match outgoing.iter_mut().find(|(f, _)| *f == l.from) {
                Some((_, ts)) => ts.push(l.to),
                None => outgoing.push((l.from, vec![l.to])),
            },
            (false, false) => kept.push(l),
        }
    }
    let mut centroid = [0.0f32; 2];
    let mut placed = 0usize;
    for id in &sel {
        if let Some(n) = doc.nodes.remove(*id) {
            def.nodes.insert(id.to_string(), n);
        }
        if let Some(l) = doc.layout.remove(*id) {
            centroid[0] += l.pos[0];
            centroid[1] += l.pos[1];
            placed += 1;
            def.layout.insert(id.to_string(), l);
        }
    }
    if placed > 0 {
        centroid = [centroid[0] / placed as f32, centroid[1] / placed as f32];
    }
    // Frames wholly inside move in; the others lose the moved nodes.
    let mut frames = Vec::new();
    for mut f in std::mem::take(&mut doc.frames) {
        if !f.nodes.is_empty() && f.nodes.iter().all(|n| sel.contains(n.as_str())) {
            def.frames.push(f);
        } else {
            f.nodes.retain(|n| !sel.contains(n.as_str()));
            frames.push(f);
        }
    }
    doc.frames = frames;

    let id = unique(&slug(name), |c| doc.nodes.contains_key(c));
    for (from, targets) in incoming {
        let port = unique(targets[0].port(), |c| {
            def.inputs.iter().any(|e| e.name == c)
        });
        kept.push(Link {
            from,
            to: PortRef(id.clone(), port.clone()),
        });
        def.inputs.push(ExposedPort {
            name: port,
            targets,
            doc: String::new(),
        });
    }
    for (from, targets) in outgoing {
        let port = unique(from.port(), |c| def.outputs.iter().any(|e| e.name == c));
        for to in targets {
            kept.push(Link {
                from: PortRef(id.clone(), port.clone()),
                to,
            });
        }
        def.outputs.push(ExposedOutput {
            name: port,
            from,
            doc: String::new(),
        });
    }
    doc.links = kept;
    let hash = def.hash();
    let mut node = NodeDoc::new(SUBGRAPH_KIND, SUBGRAPH_VERSION);
    node.subgraph = Some(SubgraphRef {
        hash: hash.clone(),
        name: def.name.clone(),
        library: false,
    });
    doc.nodes.insert(id.clone(), node);
    doc.layout.insert(
        id.clone(),
        NodeLayout {
            pos: centroid,
            collapsed: false,
        },
    );
    doc.definitions.insert(hash, def);
    Ok(id)
}

/// Replaces definition `old_hash` with `new`, re-keys it under its new hash, updates every
/// subgraph node that referred to it (at any depth; links, values and exposed targets follow
/// renamed exposed ports and parameters) and, since that changes the enclosing definitions,
/// re-keys those too. Definitions nothing refers to any more are removed. Returns
/// the new hash.
pub fn replace_definition(
    doc: &mut GraphDoc,
    old_hash: &str,
    new: Definition,
) -> Result<String, NodesError> {
    let Some(old) = doc.definitions.get(old_hash).cloned() else {
        return Err(fail(format!(
            "definition {old_hash} is not in the graph, so it cannot be replaced"
        )));
    };
    super::rename::follow_renames(doc, old_hash, &old, &new);
    let new_hash = new.hash();
    doc.definitions.remove(old_hash);
    doc.definitions.insert(new_hash.clone(), new);
    let mut renames = vec![(old_hash.to_string(), new_hash.clone())];
    let mut guard = 0usize;
    while let Some((old, new)) = renames.pop() {
        guard += 1;
        if old == new || guard > 10_000 {
            continue;
        }
        retarget(doc.nodes.values_mut(), &old, &new);
        let enclosing: Vec<String> = doc
            .definitions
            .iter()
            .filter(|(_, d)| d.instances().any(|(_, r)| r.hash == old))
            .map(|(k, _)| k.clone())
            .collect();
        for key in enclosing {
            let Some(mut d) = doc.definitions.remove(&key) else {
                continue;
            };
            retarget(d.nodes.values_mut(), &old, &new);
            let h = d.hash();
            doc.definitions.insert(h.clone(), d);
            renames.push((key, h));
        }
    }
    drop_unused(doc);
    Ok(new_hash)
}

fn retarget<'a>(nodes: impl Iterator<Item = &'a mut NodeDoc>, old: &str, new: &str) {
    for n in nodes {
        if let Some(r) = n.subgraph.as_mut().filter(|r| r.hash == old) {
            r.hash = new.to_string();
        }
    }
}

/// Removes the definitions no subgraph node (at the top level or inside a used definition)
/// refers to.
pub(crate) fn drop_unused(doc: &mut GraphDoc) {
    let mut used: BTreeSet<String> = BTreeSet::new();
    let mut todo: Vec<String> = doc
        .nodes
        .values()
        .filter_map(|n| n.subgraph.as_ref().map(|r| r.hash.clone()))
        .collect();
    while let Some(h) = todo.pop() {
        if !used.insert(h.clone()) {
            continue;
        }
        if let Some(d) = doc.definitions.get(&h) {
            todo.extend(d.instances().map(|(_, r)| r.hash.clone()));
        }
    }
    doc.definitions.retain(|k, _| used.contains(k));
}

/// Turns a whole recipe into a definition (for dropping a library recipe into a graph): sinks
/// (SaveImage, ExportDataset, …) are removed and what fed their inputs becomes the outputs;
/// required inputs left unconnected become inputs; no parameter is exposed unless the recipe is
/// itself one subgraph node, whose definition is returned as it is. The recipe's own
/// definitions are returned too, to be merged into the target document.
pub fn definition_from_recipe(
    recipe: &GraphDoc,
    name: &str,
    catalogue: &Catalogue,
) -> Result<(Definition, BTreeMap<String, Definition>), NodesError> {
    if recipe.nodes.len() == 1 {
        if let Some((id, node)) = recipe.nodes.iter().next().filter(|(_, n)| is_subgraph(n)) {
            let r = node
                .subgraph
                .as_ref()
                .ok_or_else(|| fail(format!("subgraph node {} names no definition", quote(id))))?;
            let def = recipe.definitions.get(&r.hash).cloned().ok_or_else(|| {
                fail(format!(
                    "recipe {}: definition {} of node {} is not in the file",
                    quote(name),
                    r.hash,
                    quote(id)
                ))
            })?;
            let mut others = recipe.definitions.clone();
            others.remove(&r.hash);
            return Ok((def, others));
        }
    }
    let is_sink = |n: &NodeDoc| catalogue.get(&n.kind).is_some_and(|s| s.sink);
    let mut def = Definition {
        name: name.trim().to_string(),
        doc: recipe.meta.notes.clone(),
        tags: recipe.meta.tags.clone(),
        nodes: BTreeMap::new(),
        links: Vec::new(),
        inputs: Vec::new(),
        outputs: Vec::new(),
        params: Vec::new(),
        layout: BTreeMap::new(),
        frames: Vec::new(),
    };
    if def.name.is_empty() {
        return Err(fail("a subgraph needs a name".into()));
    }
    for (id, n) in &recipe.nodes {
        if !is_sink(n) {
            def.nodes.insert(id.clone(), n.clone());
            if let Some(l) = recipe.layout.get(id) {
                def.layout.insert(id.clone(), l.clone());
            }
        }
    }
    for l in &recipe.links {
        let from_kept = def.nodes.contains_key(l.from.node());
        if from_kept && def.nodes.contains_key(l.to.node()) {
            def.links.push(l.clone());
        } else if from_kept && !def.outputs.iter().any(|o| o.from == l.from) {
            let port = unique(l.from.port(), |c| def.outputs.iter().any(|o| o.name == c));
            def.outputs.push(ExposedOutput {
                name: port,
                from: l.from.clone(),
                doc: String::new(),
            });
        }
    }
    for (id, n) in &def.nodes {
        let Some(spec) = catalogue.get(&n.kind) else {
            continue;
        };
        for p in spec.inputs.iter().filter(|p| !p.optional) {
            let linked = def
                .links
                .iter()
                .any(|l| l.to.node() == id && l.to.port() == p.name);
            if !linked {
                let port = unique(p.name, |c| def.inputs.iter().any(|e| e.name == c));
                def.inputs.push(ExposedPort {
                    name: port,
                    targets: vec![PortRef(id.clone(), p.name.to_string())],
                    doc: p.doc.to_string(),
                });
            }
        }
    }
    for f in &recipe.frames {
        if f.nodes.iter().all(|n| def.nodes.contains_key(n)) {
            def.frames.push(f.clone());
        }
    }
    Ok((def, recipe.definitions.clone()))
}

/// Exposes parameter `param` of inner node `node` as the definition's parameter `name` (adding
/// it to the targets of an existing exposed parameter of that name). The caller re-keys the
/// definition ([`replace_definition`]).
pub fn expose_param(
    def: &mut Definition,
    node: &str,
    param: &str,
    name: &str,
) -> Result<(), NodesError> {
    if !def.nodes.contains_key(node) {
        return Err(fail(format!(
            "definition {}: there is no inner node {}",
            quote(&def.name),
            quote(node)
        )));
    }
    let name = name.trim();
    if name.is_empty() {
        return Err(fail("an exposed parameter needs a name".into()));
    }
    let target = PortRef(node.to_string(), param.to_string());
    if let Some(other) = def
        .params
        .iter()
        .find(|e| e.name != name && e.targets.contains(&target))
    {
        return Err(fail(format!(
            "definition {}: {target} is already exposed as {}",
            quote(&def.name),
            quote(&other.name)
        )));
    }
    match def.params.iter_mut().find(|e| e.name == name) {
        Some(e) if e.targets.contains(&target) => {}
        Some(e) => e.targets.push(target),
        None => def.params.push(ExposedParam {
            name: name.to_string(),
            targets: vec![target],
            doc: String::new(),
            default: None,
            min: None,
            max: None,
        }),
    }
    Ok(())
}

/// Removes the definition's exposed parameter `name` (its inner nodes keep their own values).
pub fn unexpose_param(def: &mut Definition, name: &str) -> Result<(), NodesError> {
    let before = def.params.len();
    def.params.retain(|e| e.name != name);
    if def.params.len() == before {
        return Err(fail(format!(
            "definition {} exposes no parameter {}",
            quote(&def.name),
            quote(name)
        )));
    }
    Ok(())
}

/// "Ungroup": inlines subgraph node `node_id` back into `doc`: its definition's nodes (ids kept
/// where free, else prefixed with the instance id), with the instance's exposed parameter
/// values written into them, its inner links, and the outer links rewired to the inner ports.
/// Nested subgraph nodes stay subgraph nodes. Returns the ids of the inlined nodes.
pub fn unpack(doc: &mut GraphDoc, node_id: &str) -> Result<Vec<String>, NodesError> {
    let instance = doc
        .nodes
        .get(node_id)
        .cloned()
        .ok_or_else(|| fail(format!("node {} is not in the graph", quote(node_id))))?;
    let r = instance
        .subgraph
        .as_ref()
        .filter(|_| is_subgraph(&instance))
        .ok_or_else(|| fail(format!("node {} is not a subgraph", quote(node_id))))?;
    let def = doc.definitions.get(&r.hash).cloned().ok_or_else(|| {
        fail(format!(
            "subgraph {}: its definition {} is not in the graph",
            quote(node_id),
            r.hash
        ))
    })?;
    doc.nodes.remove(node_id);
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    for inner in def.nodes.keys() {
        let taken = |c: &str| doc.nodes.contains_key(c) || ids.values().any(|v| v == c);
        let new = if taken(inner) {
            unique(&format!("{node_id}-{inner}"), taken)
        } else {
            inner.clone()
        };
        ids.insert(inner.clone(), new);
    }
    let map = |p: &PortRef| PortRef(ids[p.node()].clone(), p.port().to_string());
    let mut nodes: BTreeMap<String, NodeDoc> = def
        .nodes
        .iter()
        .map(|(k, n)| (ids[k].clone(), n.clone()))
        .collect();
    for e in &def.params {
        let value = instance.params.get(&e.name).or(e.default.as_ref());
        for t in &e.targets {
            let Some(n) = nodes.get_mut(&ids[t.node()]) else {
                continue;
            };
            if let Some(v) = value {
                n.params.insert(t.port().to_string(), v.clone());
            }
            if instance.param_inputs.contains(&e.name) {
                n.param_inputs.insert(t.port().to_string());
            }
        }
    }
    let mut links = Vec::new();
    for l in std::mem::take(&mut doc.links) {
        if l.to.node() == node_id {
            let targets = def
                .inputs
                .iter()
                .find(|e| e.name == l.to.port())
                .map(|e| e.targets.clone())
                .or_else(|| {
                    def.params
                        .iter()
                        .find(|e| e.name == l.to.port())
                        .map(|e| e.targets.clone())
                })
                .unwrap_or_default();
            for t in targets {
                links.push(Link {
                    from: l.from.clone(),
                    to: map(&t),
                });
            }
        } else if l.from.node() == node_id {
            if let Some(o) = def.outputs.iter().find(|o| o.name == l.from.port()) {
                links.push(Link {
                    from: map(&o.from),
                    to: l.to,
                });
            }
        } else {
            links.push(l);
        }
    }
    links.extend(def.links.iter().map(|l| Link {
        from: map(&l.from),
        to: map(&l.to),
    }));
    doc.links = links;
    // Layout: the inner layout, centred on the instance.
    let at = doc
        .layout
        .remove(node_id)
        .map(|l| l.pos)
        .unwrap_or([0.0, 0.0]);
    let n = def.layout.len().max(1) as f32;
    let c = def.layout.values().fold([0.0f32; 2], |a, l| {
        [a[0] + l.pos[0] / n, a[1] + l.pos[1] / n]
    });
    for (k, l) in &def.layout {
        if let Some(new) = ids.get(k) {
            doc.layout.insert(
                new.clone(),
                NodeLayout {
                    pos: [at[0] + l.pos[0] - c[0], at[1] + l.pos[1] - c[1]],
                    collapsed: l.collapsed,
                },
            );
        }
    }
    let new_ids: Vec<String> = def.nodes.keys().map(|k| ids[k].clone()).collect();
    for f in &mut doc.frames {
        if f.nodes.iter().any(|n| n == node_id) {
            f.nodes.retain(|n| n != node_id);
            f.nodes.extend(new_ids.iter().cloned());
        }
    }
    doc.nodes.extend(nodes);
    drop_unused(doc);
    Ok(new_ids)
}

/// Sets parameter `param` of node `path` in `doc`: a top-level node, or an inner node named by
/// its flattened path (`outer › scratch-block › crack`). An inner node's definitions are
/// specialised for that one instance: copies with the value set are added under their new
/// hashes and the instances on the path refer to them (other instances keep the originals;
/// definitions nothing uses any more are dropped).
pub fn set_param(
    doc: &mut GraphDoc,
    path: &str,
    param: &str,
    value: crate::graph::ParamValue,
) -> Result<(), NodesError> {
    let parts: Vec<&str> = path.split(super::PATH_SEP).collect();
    let missing = || fail(format!("the graph has no node {}", quote(path)));
    if parts.len() == 1 {
        let n = doc.nodes.get_mut(path).ok_or_else(missing)?;
        n.params.insert(param.to_string(), value);
        return Ok(());
    }
    // The definitions along the path, outermost first.
    let mut chain: Vec<Definition> = Vec::new();
    let mut node = doc.nodes.get(parts[0]).ok_or_else(missing)?;
    for part in &parts[1..] {
        let r = node.subgraph.as_ref().ok_or_else(missing)?;
        let def = doc.definitions.get(&r.hash).ok_or_else(missing)?;
        chain.push(def.clone());
        node = def.nodes.get(*part).ok_or_else(missing)?;
    }
    let mut hash = String::new();
    for (i, mut def) in chain.into_iter().enumerate().rev() {
        let inner = def.nodes.get_mut(parts[i + 1]).ok_or_else(missing)?;
        if hash.is_empty() {
            inner.params.insert(param.to_string(), value.clone());
        } else if let Some(r) = inner.subgraph.as_mut() {
            r.hash = hash.clone();
        }
        hash = def.hash();
        doc.definitions.insert(hash.clone(), def);
    }
    if let Some(r) = doc
        .nodes
        .get_mut(parts[0])
        .and_then(|n| n.subgraph.as_mut())
    {
        r.hash = hash;
    }
    drop_unused(doc);
    Ok(())
}

/// The spec of parameter `param` of node `id` at `doc`'s top level: the kind's parameter, or,
/// for a subgraph node, the spec its exposed parameter shows ([`super::interface`]). For
/// `--set NODE.PARAM=VALUE`.
pub fn node_param(
    doc: &GraphDoc,
    id: &str,
    param: &str,
    catalogue: &Catalogue,
) -> Result<&'static crate::catalogue::ParamSpec, String> {
    super::ports::param_spec(
        doc,
        super::ports::Body::of_doc(doc),
        id,
        param,
        catalogue,
        0,
    )
    .map(|(spec, _)| spec)
}
