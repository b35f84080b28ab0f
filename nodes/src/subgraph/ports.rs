//! The types of ports and parameters inside definitions: a subgraph node's [`interface`], and
//! a reroute's type ([`reroute_type`]).

use std::collections::BTreeMap;

use super::{
    is_reroute, is_subgraph, Definition, Interface, InterfaceParam, InterfacePort, REROUTE_KIND,
};
use crate::catalogue::{input_ports, Catalogue, ParamSpec, PortType};
use crate::graph::{GraphDoc, Link, NodeDoc, ParamValue};
use crate::quote::quote;
use crate::validate::{Problem, ValidationError, ValidationErrors};

/// How deep definitions and reroute chains are followed before giving up (a recursive
/// definition or a reroute loop).
pub(crate) const MAX_DEPTH: usize = 64;

/// The nodes and links of one graph level: the document's top level or a definition's inside.
#[derive(Clone, Copy)]
pub(crate) struct Body<'a> {
    pub nodes: &'a BTreeMap<String, NodeDoc>,
    pub links: &'a [Link],
}

impl<'a> Body<'a> {
    pub fn of_doc(doc: &'a GraphDoc) -> Body<'a> {
        Body {
            nodes: &doc.nodes,
            links: &doc.links,
        }
    }
    pub fn of_def(def: &'a Definition) -> Body<'a> {
        Body {
            nodes: &def.nodes,
            links: &def.links,
        }
    }
}

/// The definition a subgraph node refers to, from `doc`'s definitions.
pub(crate) fn definition_of<'d>(
    doc: &'d GraphDoc,
    id: &str,
    node: &NodeDoc,
) -> Result<&'d Definition, String> {
    let r = node
        .subgraph
        .as_ref()
        .ok_or_else(|| format!("subgraph node {} names no definition", quote(id)))?;
    doc.definitions.get(&r.hash).ok_or_else(|| {
        if r.library {
            format!(
                "subgraph {} ({}) is a recipe-library reference the recipe library has not \
                 provided",
                quote(&r.name),
                r.hash
            )
        } else {
            format!(
                "subgraph {} refers to definition {}, which the graph does not hold",
                quote(&r.name),
                r.hash
            )
        }
    })
}

/// The type of input `port` of node `id` in `body`, and whether it may stay unconnected.
pub(crate) fn input_type(
    doc: &GraphDoc,
    body: Body,
    id: &str,
    port: &str,
    catalogue: &Catalogue,
    depth: usize,
) -> Result<(PortType, bool), String> {
    let node = body
        .nodes
        .get(id)
        .ok_or_else(|| format!("inner node {} does not exist", quote(id)))?;
    if depth > MAX_DEPTH {
        return Err("definitions nest too deeply (a recursive definition?)".into());
    }
    if is_subgraph(node) {
        let def = definition_of(doc, id, node)?;
        let iface = interface_of(doc, def, catalogue, depth + 1)?;
        if let Some(p) = iface.inputs.iter().find(|p| p.name == port) {
            return Ok((p.ty, p.optional));
        }
        if node.param_inputs.contains(port) {
            if let Some(p) = iface.params.iter().find(|p| p.name == port) {
                return Ok((PortType::of_param(&p.spec.kind), true));
            }
        }
        let known: Vec<String> = iface.inputs.iter().map(|p| p.name.clone()).collect();
        return Err(format!(
            "subgraph node {} has no input {} (inputs: {})",
            quote(id),
            quote(port),
            known.join(", ")
        ));
    }
    if is_reroute(node) {
        if port != "in" {
            return Err(format!(
                "reroute {} has one input, \"in\", not {}",
                quote(id),
                quote(port)
            ));
        }
        let ty = reroute_in(doc, body, id, catalogue, depth + 1)
            .ok_or_else(|| format!("reroute {} has no type: nothing feeds it", quote(id)))?;
        return Ok((ty, true));
    }
    let spec = catalogue.get(&node.kind).ok_or_else(|| {
        format!(
            "inner node {} has unknown kind {}",
            quote(id),
            quote(&node.kind)
        )
    })?;
    let ports = input_ports(spec, node);
    ports
        .iter()
        .find(|p| p.name == port)
        .map(|p| (p.ty, p.optional))
        .ok_or_else(|| {
            let known: Vec<&str> = ports.iter().map(|p| p.name).collect();
            format!(
                "node {} ({}) has no input {} (inputs: {})",
                quote(id),
                spec.kind,
                quote(port),
                known.join(", ")
            )
        })
}

/// The type of output `port` of node `id` in `body`.
pub(crate) fn output_type(
    doc: &GraphDoc,
    body: Body,
    id: &str,
    port: &str,
    catalogue: &Catalogue,
    depth: usize,
) -> Result<PortType, String> {
    let node = body
        .nodes
        .get(id)
        .ok_or_else(|| format!("inner node {} does not exist", quote(id)))?;
    if depth > MAX_DEPTH {
        return Err("definitions nest too deeply (a recursive definition?)".into());
    }
    if is_subgraph(node) {
        let def = definition_of(doc, id, node)?;
        let iface = interface_of(doc, def, catalogue, depth + 1)?;
        return iface
            .outputs
            .iter()
            .find(|p| p.name == port)
            .map(|p| p.ty)
            .ok_or_else(|| {
                let known: Vec<&str> = iface.outputs.iter().map(|p| p.name.as_str()).collect();
                format!(
                    "subgraph node {} has no output {} (outputs: {})",
                    quote(id),
                    quote(port),
                    known.join(", ")
                )
            });
    }
    if is_reroute(node) {
        if port != "out" {
            return Err(format!(
                "reroute {} has one output, \"out\", not {}",
                quote(id),
                quote(port)
            ));
        }
        return reroute_in(doc, body, id, catalogue, depth + 1)
            .ok_or_else(|| format!("reroute {} has no type: nothing feeds it", quote(id)));
    }
    let spec = catalogue.get(&node.kind).ok_or_else(|| {
        format!(
            "inner node {} has unknown kind {}",
            quote(id),
            quote(&node.kind)
        )
    })?;
    spec.output(port).map(|p| p.ty).ok_or_else(|| {
        let known: Vec<&str> = spec.outputs.iter().map(|p| p.name).collect();
        format!(
            "node {} ({}) has no output {} (outputs: {})",
            quote(id),
            spec.kind,
            quote(port),
            known.join(", ")
        )
    })
}

/// The spec of parameter `param` of node `id` in `body` (for a subgraph node: the spec its
/// exposed parameter shows), and the value the node has for it.
pub(crate) fn param_spec(
    doc: &GraphDoc,
    body: Body,
    id: &str,
    param: &str,
    catalogue: &Catalogue,
    depth: usize,
) -> Result<(&'static ParamSpec, ParamValue), String> {
    let node = body
        .nodes
        .get(id)
        .ok_or_else(|| format!("inner node {} does not exist", quote(id)))?;
    if depth > MAX_DEPTH {
        return Err("definitions nest too deeply (a recursive definition?)".into());
    }
    if is_subgraph(node) {
        let def = definition_of(doc, id, node)?;
        let iface = interface_of(doc, def, catalogue, depth + 1)?;
        let p = iface
            .params
            .iter()
            .find(|p| p.name == param)
            .ok_or_else(|| {
                let known: Vec<&str> = iface.params.iter().map(|p| p.name.as_str()).collect();
                format!(
                    "subgraph node {} has no parameter {} (parameters: {})",
                    quote(id),
                    quote(param),
                    known.join(", ")
                )
            })?;
        let value = node
            .params
            .get(param)
            .cloned()
            .unwrap_or_else(|| p.default.clone());
        return Ok((p.spec, value));
    }
    let spec = catalogue.get(&node.kind).ok_or_else(|| {
        format!(
            "inner node {} has unknown kind {}",
            quote(id),
            quote(&node.kind)
        )
    })?;
    let p = spec.param(param).ok_or_else(|| {
        let known: Vec<&str> = spec.params.iter().map(|p| p.name).collect();
        format!(
            "node {} ({}) has no parameter {} (parameters: {})",
            quote(id),
            spec.kind,
            quote(param),
            known.join(", ")
        )
    })?;
    let value = node
        .params
        .get(param)
        .cloned()
        .unwrap_or_else(|| p.default_value());
    Ok((p, value))
}

/// A reroute's type: its source's, or, with nothing feeding it, the type of the first input it
/// feeds.
fn reroute_in(
    doc: &GraphDoc,
    body: Body,
    id: &str,
    catalogue: &Catalogue,
    depth: usize,
) -> Option<PortType> {
    reroute_up(doc, body, id, catalogue, depth)
        .or_else(|| reroute_down(doc, body, id, catalogue, depth))
}

/// The type of what feeds reroute `id`, following reroute chains upstream.
fn reroute_up(
    doc: &GraphDoc,
    body: Body,
    id: &str,
    catalogue: &Catalogue,
    depth: usize,
) -> Option<PortType> {
    if depth > MAX_DEPTH {
        return None;
    }
    let l = body
        .links
        .iter()
        .find(|l| l.to.node() == id && l.to.port() == "in")?;
    match body.nodes.get(l.from.node()) {
        Some(n) if is_reroute(n) => reroute_up(doc, body, l.from.node(), catalogue, depth + 1),
        _ => output_type(
            doc,
            body,
            l.from.node(),
            l.from.port(),
            catalogue,
            depth + 1,
        )
        .ok(),
    }
}

/// The type of the first input reroute `id` feeds, following reroute chains downstream.
fn reroute_down(
    doc: &GraphDoc,
    body: Body,
    id: &str,
    catalogue: &Catalogue,
    depth: usize,
) -> Option<PortType> {
    if depth > MAX_DEPTH {
        return None;
    }
    body.links
        .iter()
        .filter(|l| l.from.node() == id)
        .find_map(|l| match body.nodes.get(l.to.node()) {
            Some(n) if is_reroute(n) => reroute_down(doc, body, l.to.node(), catalogue, depth + 1),
            _ => input_type(doc, body, l.to.node(), l.to.port(), catalogue, depth + 1)
                .ok()
                .map(|(ty, _)| ty),
        })
}

/// The type of reroute `id` at `doc`'s top level: its source's type, or, with nothing feeding
/// it, the type of the first input it feeds; `None` when neither says (or `id` is no reroute).
pub fn reroute_type(doc: &GraphDoc, id: &str, catalogue: &Catalogue) -> Option<PortType> {
    let node = doc.nodes.get(id)?;
    if node.kind != REROUTE_KIND {
        return None;
    }
    reroute_in(doc, Body::of_doc(doc), id, catalogue, 0)
}

/// The interface of definition `def`, whose nested definitions `doc` holds.
pub(crate) fn interface_of(
    doc: &GraphDoc,
    def: &Definition,
    catalogue: &Catalogue,
    depth: usize,
) -> Result<Interface, String> {
    let body = Body::of_def(def);
    let at = |what: &str, name: &str, e: String| {
        format!(
            "definition {}: exposed {what} {}: {e}",
            quote(&def.name),
            quote(name)
        )
    };
    let mut inputs = Vec::new();
    for e in &def.inputs {
        let mut ty = None;
        let mut optional = true;
        if e.targets.is_empty() {
            return Err(at("input", &e.name, "it feeds no inner port".into()));
        }
        for t in &e.targets {
            let (t_ty, t_opt) = input_type(doc, body, t.node(), t.port(), catalogue, depth)
                .map_err(|m| at("input", &e.name, m))?;
            optional &= t_opt;
            match ty {
                None => ty = Some(t_ty),
                Some(first) if first != t_ty => {
                    return Err(at(
                        "input",
                        &e.name,
                        format!("its targets differ in type ({first} and {t_ty} at {t})"),
                    ))
                }
                Some(_) => {}
            }
        }
        inputs.push(InterfacePort {
            name: e.name.clone(),
            ty: ty.unwrap_or(PortType::Image),
            optional,
            doc: e.doc.clone(),
        });
    }
    let mut outputs = Vec::new();
    for e in &def.outputs {
        let ty = output_type(doc, body, e.from.node(), e.from.port(), catalogue, depth)
            .map_err(|m| at("output", &e.name, m))?;
        outputs.push(InterfacePort {
            name: e.name.clone(),
            ty,
            optional: false,
            doc: e.doc.clone(),
        });
    }
    let mut params = Vec::new();
    for e in &def.params {
        let mut first: Option<(&'static ParamSpec, ParamValue)> = None;
        if e.targets.is_empty() {
            return Err(at(
                "parameter",
                &e.name,
                "it sets no inner parameter".into(),
            ));
        }
        for t in &e.targets {
            let (spec, value) = param_spec(doc, body, t.node(), t.port(), catalogue, depth)
                .map_err(|m| at("parameter", &e.name, m))?;
            match &first {
                None => first = Some((spec, value)),
                Some((f, _))
                    if std::mem::discriminant(&f.kind) != std::mem::discriminant(&spec.kind) =>
                {
                    return Err(at(
                        "parameter",
                        &e.name,
                        format!(
                            "its targets differ in kind ({} is {}, {t} is {})",
                            e.targets[0],
                            f.expected(),
                            spec.expected()
                        ),
                    ))
                }
                Some(_) => {}
            }
        }
        let Some((spec, own)) = first else { continue };
        params.push(InterfaceParam {
            name: e.name.clone(),
            spec,
            default: e.default.clone().unwrap_or(own),
            min: e.min,
            max: e.max,
            doc: if e.doc.is_empty() {
                spec.doc.to_string()
            } else {
                e.doc.clone()
            },
        });
    }
    Ok(Interface {
        inputs,
        outputs,
        params,
    })
}

/// The interface of definition `hash` in `doc` (which must hold it and its nested definitions).
pub fn interface(
    doc: &GraphDoc,
    hash: &str,
    catalogue: &Catalogue,
) -> Result<Interface, ValidationErrors> {
    let def = doc.definitions.get(hash).ok_or_else(|| {
        ValidationErrors(vec![ValidationError {
            node: None,
            field: None,
            problem: Problem::MissingDefinition {
                name: String::new(),
                hash: hash.to_string(),
            },
        }])
    })?;
    let mut stack = vec![hash.to_string()];
    if let Some((path, chain)) = super::flatten::find_recursion(
        doc,
        &def.nodes,
        &def.name,
        &mut stack,
        &mut Default::default(),
    ) {
        return Err(ValidationErrors(vec![ValidationError {
            node: Some(path),
            field: None,
            problem: Problem::RecursiveDefinition {
                chain: super::flatten::chain_names(doc, &chain),
            },
        }]));
    }
    interface_of(doc, def, catalogue, 0).map_err(|message| {
        ValidationErrors(vec![ValidationError {
            node: None,
            field: None,
            problem: Problem::BadExposed { message },
        }])
    })
}
