//! [`flatten`]: a document with every subgraph inlined and every reroute removed.
//!
//! Each subgraph instance becomes a *scope*: a copy of its definition's nodes, with the
//! instance's exposed parameter values written into their targets, named under the instance's
//! path. Links are then made per plain (not subgraph, not reroute) input port, by walking from
//! the port to its source: up through exposed inputs into the enclosing scope, across reroutes,
//! and down through exposed outputs into nested scopes.

use std::collections::{BTreeMap, BTreeSet};

use super::ports::{self, MAX_DEPTH};
use super::{
    error, is_reroute, is_subgraph, join_path, Definition, Flat, PATH_MARK, SUBGRAPH_KIND,
};
use crate::catalogue::Catalogue;
use crate::graph::{GraphDoc, Link, NodeDoc, PortRef};
use crate::quote::quote;
use crate::validate::{Problem, ValidationError, ValidationErrors};

/// One graph level: the top level, or one instance's copy of its definition.
struct Scope<'a> {
    /// The instance's path (empty at the top level).
    path: String,
    /// The enclosing scope and this instance's id in it.
    parent: Option<(usize, String)>,
    def: Option<&'a Definition>,
    /// Hashes of the definitions this scope is inside, outermost first.
    chain: Vec<String>,
    nodes: BTreeMap<String, NodeDoc>,
    links: &'a [Link],
    /// Nested instances: id → scope index.
    children: BTreeMap<String, usize>,
}

/// Inlines every subgraph node (recursively) and removes reroutes. Refuses, with errors naming
/// the path: a missing or library-only definition, a definition whose key is not its hash, a
/// recursive definition (A contains B contains A), an exposed port or parameter naming a
/// missing inner node, port or parameter, and a reroute without a source.
pub fn flatten(doc: &GraphDoc, catalogue: &Catalogue) -> Result<Flat, ValidationErrors> {
    let mut errors = Vec::new();
    check_ids(doc, &mut errors);
    for (key, def) in &doc.definitions {
        let hash = def.hash();
        if &hash != key {
            errors.push(ValidationError {
                node: None,
                field: None,
                problem: Problem::DefinitionHashMismatch {
                    name: def.name.clone(),
                    key: key.clone(),
                    hash,
                },
            });
        }
    }
    if let Some((path, chain)) =
        find_recursion(doc, &doc.nodes, "", &mut Vec::new(), &mut BTreeSet::new())
    {
        let chain = chain_names(doc, &chain);
        errors.push(error(&path, None, Problem::RecursiveDefinition { chain }));
        return Err(ValidationErrors(errors));
    }
    let mut scopes = vec![Scope {
        path: String::new(),
        parent: None,
        def: None,
        chain: Vec::new(),
        nodes: doc.nodes.clone(),
        links: &doc.links,
        children: BTreeMap::new(),
    }];
    let mut checked_defs = BTreeSet::new();
    expand(
        doc,
        catalogue,
        &mut scopes,
        0,
        &mut checked_defs,
        &mut errors,
    );
    if !errors.is_empty() {
        return Err(ValidationErrors(errors));
    }

    let mut flat = GraphDoc {
        nodes: BTreeMap::new(),
        links: Vec::new(),
        layout: BTreeMap::new(),
        definitions: BTreeMap::new(),
        ..doc.clone()
    };
    let mut scopes_out = BTreeMap::new();
    let r = Resolver { scopes: &scopes };
    for (si, scope) in scopes.iter().enumerate() {
        // Links into nodes that do not exist stay, for validation to report.
        for l in scope.links {
            if !scope.nodes.contains_key(l.to.node()) {
                let from = r.source(si, l.from.node(), l.from.port(), 0);
                let from = match from {
                    Ok(Some(f)) => f,
                    _ => PortRef(join_path(&scope.path, l.from.node()), l.from.port().into()),
                };
                flat.links.push(Link {
                    from,
                    to: PortRef(join_path(&scope.path, l.to.node()), l.to.port().into()),
                });
            }
        }
        for (id, node) in &scope.nodes {
            if is_subgraph(node) {
                check_instance_links(&r, si, id, node, &mut errors);
                continue;
            }
            if is_reroute(node) {
                check_reroute(&r, si, id, &mut errors);
                continue;
            }
            let flat_id = join_path(&scope.path, id);
            let mut ports: BTreeSet<&str> = scope
                .links
                .iter()
                .filter(|l| l.to.node() == id)
                .map(|l| l.to.port())
                .collect();
            if let Some(def) = scope.def {
                let exposed = def
                    .inputs
                    .iter()
                    .flat_map(|e| &e.targets)
                    .chain(def.params.iter().flat_map(|e| &e.targets));
                for t in exposed.filter(|t| t.node() == id) {
                    ports.insert(t.port());
                }
            }
            for port in ports {
                match r.source_of_input(si, id, port, 0) {
                    Ok(Some(from)) => flat.links.push(Link {
                        from,
                        to: PortRef(flat_id.clone(), port.to_string()),
                    }),
                    Ok(None) => {}
                    Err(e) => errors.push(e),
                }
            }
            if !scope.chain.is_empty() {
                scopes_out.insert(flat_id.clone(), scope.chain.clone());
            } else if let Some(l) = doc.layout.get(id) {
                flat.layout.insert(id.clone(), l.clone());
            }
            flat.nodes.insert(flat_id, node.clone());
        }
    }
    if !errors.is_empty() {
        return Err(ValidationErrors(errors));
    }
    flat.links
        .sort_by(|a, b| (&a.to, &a.from).cmp(&(&b.to, &b.from)));
    flat.links.dedup();
    let mut outputs = BTreeMap::new();
    for (id, node) in &scopes[0].nodes {
        let ports: Vec<String> = if is_reroute(node) {
            vec!["out".into()]
        } else if let Some(def) = scopes[0].children.get(id).and_then(|&c| scopes[c].def) {
            def.outputs.iter().map(|o| o.name.clone()).collect()
        } else {
            continue;
        };
        for port in ports {
            if let Ok(Some(src)) = r.source(0, id, &port, 0) {
                outputs.insert(PortRef(id.clone(), port), src);
            }
        }
    }
    Ok(Flat {
        doc: flat,
        scopes: scopes_out,
        outputs,
    })
}

/// Node ids (top level and inside definitions) may not contain `›`.
fn check_ids(doc: &GraphDoc, errors: &mut Vec<ValidationError>) {
    for id in doc.nodes.keys().filter(|id| id.contains(PATH_MARK)) {
        errors.push(error(id, None, Problem::BadNodeId));
    }
    for def in doc.definitions.values() {
        for id in def.nodes.keys().filter(|id| id.contains(PATH_MARK)) {
            errors.push(error(
                &format!("{} › {id}", def.name),
                None,
                Problem::BadNodeId,
            ));
        }
    }
}

/// Creates the scopes of every instance inside scope `si`, recursively.
fn expand<'a>(
    doc: &'a GraphDoc,
    catalogue: &Catalogue,
    scopes: &mut Vec<Scope<'a>>,
    si: usize,
    checked_defs: &mut BTreeSet<String>,
    errors: &mut Vec<ValidationError>,
) {
    let instances: Vec<(String, NodeDoc)> = scopes[si]
        .nodes
        .iter()
        .filter(|(_, n)| is_subgraph(n) || n.subgraph.is_some())
        .map(|(id, n)| (id.clone(), n.clone()))
        .collect();
    for (id, node) in instances {
        let path = join_path(&scopes[si].path, &id);
        let Some(r) = node.subgraph.as_ref() else {
            errors.push(error(
                &path,
                None,
                Problem::BadSubgraphRef {
                    message: format!(
                        "a {SUBGRAPH_KIND} node needs a \"subgraph\" reference naming its definition"
                    ),
                },
            ));
            continue;
        };
        if !is_subgraph(&node) {
            errors.push(error(
                &path,
                None,
                Problem::BadSubgraphRef {
                    message: format!(
                        "only {SUBGRAPH_KIND} nodes may have a \"subgraph\" reference (this is a {})",
                        node.kind
                    ),
                },
            ));
            continue;
        }
        let Some(def) = doc.definitions.get(&r.hash) else {
            let (name, hash) = (r.name.clone(), r.hash.clone());
            let problem = if r.library {
                Problem::LibraryDefinition { name, hash }
            } else {
                Problem::MissingDefinition { name, hash }
            };
            errors.push(error(&path, None, problem));
            continue;
        };
        if scopes[si].chain.contains(&r.hash) || scopes[si].chain.len() >= MAX_DEPTH {
            let mut chain = chain_names(doc, &scopes[si].chain);
            chain.push(def.name.clone());
            errors.push(error(&path, None, Problem::RecursiveDefinition { chain }));
            continue;
        }
        let mut nodes = def.nodes.clone();
        if !apply_params(
            doc,
            catalogue,
            def,
            &path,
            &node,
            &mut nodes,
            checked_defs,
            errors,
        ) {
            continue;
        }
        let mut chain = scopes[si].chain.clone();
        chain.push(r.hash.clone());
        scopes.push(Scope {
            path,
            parent: Some((si, id.clone())),
            def: Some(def),
            chain,
            nodes,
            links: &def.links,
            children: BTreeMap::new(),
        });
        let child = scopes.len() - 1;
        scopes[si].children.insert(id, child);
        expand(doc, catalogue, scopes, child, checked_defs, errors);
    }
}

/// Checks definition `def`'s exposures (once per definition) and the instance's values, and
/// writes the instance's exposed parameter values (or the exposed defaults) into the inner
/// nodes. Returns false when the instance cannot be expanded.
#[allow(clippy::too_many_arguments)]
fn apply_params(
    doc: &GraphDoc,
    catalogue: &Catalogue,
    def: &Definition,
    path: &str,
    instance: &NodeDoc,
    nodes: &mut BTreeMap<String, NodeDoc>,
    checked_defs: &mut BTreeSet<String>,
    errors: &mut Vec<ValidationError>,
) -> bool {
    let bad = |message: String| {
        error(
            path,
            None,
            Problem::BadExposed {
                message: format!("definition {}: {message}", quote(&def.name)),
            },
        )
    };
    // The interface checks every exposed target: nodes, ports, parameters, kinds.
    let mut ok = true;
    match ports::interface_of(doc, def, catalogue, 0) {
        Ok(iface) => check_values(&iface, path, instance, &mut ok, errors),
        Err(m) => {
            // A nested definition's own problem is reported at the nested instance's path.
            let nested_fails = def.instances().any(|(_, r)| {
                doc.definitions
                    .get(&r.hash)
                    .is_none_or(|d| ports::interface_of(doc, d, catalogue, 0).is_err())
            });
            if !nested_fails {
                if checked_defs.insert(format!("{path}\n{m}")) {
                    errors.push(error(path, None, Problem::BadExposed { message: m }));
                }
                return false;
            }
        }
    }
    apply_values(def, instance, nodes, &bad, &mut ok, errors);
    ok
}

/// Checks an instance's parameter values and parameters shown as inputs against the interface.
fn check_values(
    iface: &super::Interface,
    path: &str,
    instance: &NodeDoc,
    ok: &mut bool,
    errors: &mut Vec<ValidationError>,
) {
    for (name, value) in &instance.params {
        let Some(p) = iface.params.iter().find(|p| &p.name == name) else {
            errors.push(error(
                path,
                Some(format!("param \"{name}\"")),
                Problem::UnknownParam {
                    known: iface.params.iter().map(|p| p.name.clone()).collect(),
                },
            ));
            *ok = false;
            continue;
        };
        if let Some(v) = value.as_f64() {
            let below = p.min.is_some_and(|m| v < m);
            let above = p.max.is_some_and(|m| v > m);
            if below || above {
                let range = format!(
                    "{}..={}",
                    p.min.map_or("".into(), |m| m.to_string()),
                    p.max.map_or("".into(), |m| m.to_string())
                );
                errors.push(error(
                    path,
                    Some(format!("param \"{name}\"")),
                    Problem::OutOfRange {
                        value: value.to_json(),
                        expected: format!("a number in {range} (the subgraph's range)"),
                    },
                ));
                *ok = false;
            }
        }
    }
    for name in &instance.param_inputs {
        if !iface.params.iter().any(|p| &p.name == name) {
            errors.push(error(
                path,
                Some(format!("param \"{name}\"")),
                Problem::UnknownParamInput {
                    known: iface.params.iter().map(|p| p.name.clone()).collect(),
                },
            ));
            *ok = false;
        }
    }
}

/// Writes the instance's exposed parameter values (or the exposed defaults) into the inner
/// nodes, and marks the targets of exposed parameters shown as inputs.
fn apply_values(
    def: &Definition,
    instance: &NodeDoc,
    nodes: &mut BTreeMap<String, NodeDoc>,
    bad: &dyn Fn(String) -> ValidationError,
    ok: &mut bool,
    errors: &mut Vec<ValidationError>,
) {
    for e in &def.params {
        let value = instance.params.get(&e.name).or(e.default.as_ref());
        for t in &e.targets {
            let Some(n) = nodes.get_mut(t.node()) else {
                errors.push(bad(format!(
                    "exposed parameter {} sets {t}, but there is no inner node {}",
                    quote(&e.name),
                    quote(t.node())
                )));
                *ok = false;
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
}

/// Links into a subgraph node must go into one of its inputs (or a parameter shown as one).
fn check_instance_links(
    r: &Resolver,
    si: usize,
    id: &str,
    node: &NodeDoc,
    errors: &mut Vec<ValidationError>,
) {
    let scope = &r.scopes[si];
    let Some(def) = scope.children.get(id).and_then(|&c| r.scopes[c].def) else {
        return;
    };
    for l in scope.links.iter().filter(|l| l.to.node() == id) {
        let p = l.to.port();
        let known = def.inputs.iter().any(|e| e.name == p)
            || (node.param_inputs.contains(p) && def.params.iter().any(|e| e.name == p));
        if !known {
            errors.push(error(
                &join_path(&scope.path, id),
                Some(format!("input \"{p}\"")),
                Problem::UnknownInputPort {
                    known: def
                        .inputs
                        .iter()
                        .map(|e| e.name.clone())
                        .chain(node.param_inputs.iter().cloned())
                        .collect(),
                },
            ));
        }
    }
}

/// A reroute must be fed: by a link at its level or through an exposed input.
fn check_reroute(r: &Resolver, si: usize, id: &str, errors: &mut Vec<ValidationError>) {
    let scope = &r.scopes[si];
    let linked = scope
        .links
        .iter()
        .any(|l| l.to.node() == id && l.to.port() == "in");
    let exposed = scope.def.is_some_and(|d| {
        d.inputs
            .iter()
            .flat_map(|e| &e.targets)
            .any(|t| t.node() == id && t.port() == "in")
    });
    if !linked && !exposed {
        errors.push(error(
            &join_path(&scope.path, id),
            None,
            Problem::RerouteWithoutSource,
        ));
    }
    for l in scope
        .links
        .iter()
        .filter(|l| l.to.node() == id && l.to.port() != "in")
    {
        errors.push(error(
            &join_path(&scope.path, id),
            Some(format!("input \"{}\"", l.to.port())),
            Problem::UnknownInputPort {
                known: vec!["in".into()],
            },
        ));
    }
}

/// Finds the flat source of ports across scopes.
struct Resolver<'s, 'a> {
    scopes: &'s [Scope<'a>],
}

impl Resolver<'_, '_> {
    /// The flat output that output `port` of node `id` in scope `si` stands for: itself for a
    /// plain node, a reroute's source, a subgraph's exposed inner output. `None` when nothing
    /// feeds it (an unlinked reroute, an exposed input left unconnected).
    fn source(
        &self,
        si: usize,
        id: &str,
        port: &str,
        depth: usize,
    ) -> Result<Option<PortRef>, ValidationError> {
        let scope = &self.scopes[si];
        let path = join_path(&scope.path, id);
        if depth > 4 * MAX_DEPTH {
            return Err(error(
                &path,
                None,
                Problem::Cycle {
                    path: vec![path.clone()],
                },
            ));
        }
        let Some(node) = scope.nodes.get(id) else {
            return Ok(Some(PortRef(path, port.to_string())));
        };
        if is_reroute(node) {
            if port != "out" {
                return Err(error(
                    &path,
                    Some(format!("output \"{port}\"")),
                    Problem::UnknownOutputPort {
                        node: path.clone(),
                        port: port.to_string(),
                        known: vec!["out".into()],
                    },
                ));
            }
            return self.source_of_input(si, id, "in", depth + 1);
        }
        if is_subgraph(node) {
            let Some(&child) = scope.children.get(id) else {
                return Ok(None); // its definition's problem is reported already
            };
            let def = self.scopes[child].def;
            let Some(out) = def.and_then(|d| d.outputs.iter().find(|o| o.name == port)) else {
                return Err(error(
                    &path,
                    Some(format!("output \"{port}\"")),
                    Problem::UnknownOutputPort {
                        node: path.clone(),
                        port: port.to_string(),
                        known: def
                            .map(|d| d.outputs.iter().map(|o| o.name.clone()).collect())
                            .unwrap_or_default(),
                    },
                ));
            };
            return self.source(child, out.from.node(), out.from.port(), depth + 1);
        }
        Ok(Some(PortRef(path, port.to_string())))
    }

    /// The flat source feeding input `port` of node `id` in scope `si`: the link into it at
    /// its level, or, for a target of an exposed input (or of an exposed parameter shown as an
    /// input), whatever feeds the instance's port in the enclosing scope.
    fn source_of_input(
        &self,
        si: usize,
        id: &str,
        port: &str,
        depth: usize,
    ) -> Result<Option<PortRef>, ValidationError> {
        let scope = &self.scopes[si];
        if let Some(l) = scope
            .links
            .iter()
            .find(|l| l.to.node() == id && l.to.port() == port)
        {
            return self.source(si, l.from.node(), l.from.port(), depth + 1);
        }
        let (Some((parent, inst)), Some(def)) = (&scope.parent, scope.def) else {
            return Ok(None);
        };
        let hits = |targets: &[PortRef]| targets.iter().any(|t| t.node() == id && t.port() == port);
        if let Some(e) = def.inputs.iter().find(|e| hits(&e.targets)) {
            return self.source_of_input(*parent, inst, &e.name, depth + 1);
        }
        let shown = &self.scopes[*parent].nodes[inst.as_str()].param_inputs;
        if let Some(e) = def
            .params
            .iter()
            .find(|e| shown.contains(&e.name) && hits(&e.targets))
        {
            return self.source_of_input(*parent, inst, &e.name, depth + 1);
        }
        Ok(None)
    }
}

/// The first recursive definition reachable from `nodes` (inside the definitions on `stack`):
/// the path of the instance that closes the loop, and the chain of definition hashes.
pub(crate) fn find_recursion(
    doc: &GraphDoc,
    nodes: &BTreeMap<String, NodeDoc>,
    path: &str,
    stack: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<(String, Vec<String>)> {
    for (id, n) in nodes {
        let Some(r) = &n.subgraph else { continue };
        let p = join_path(path, id);
        if let Some(start) = stack.iter().position(|h| h == &r.hash) {
            let mut chain = stack[start..].to_vec();
            chain.push(r.hash.clone());
            return Some((p, chain));
        }
        if done.contains(&r.hash) {
            continue;
        }
        if let Some(def) = doc.definitions.get(&r.hash) {
            stack.push(r.hash.clone());
            let found = find_recursion(doc, &def.nodes, &p, stack, done);
            stack.pop();
            if found.is_some() {
                return found;
            }
        }
        done.insert(r.hash.clone());
    }
    None
}

/// The names of a chain of definition hashes.
pub(crate) fn chain_names(doc: &GraphDoc, chain: &[String]) -> Vec<String> {
    chain
        .iter()
        .map(|h| doc.definitions.get(h).map_or(h.clone(), |d| d.name.clone()))
        .collect()
}
