//! Subgraphs: reusable blocks of nodes with the inputs, outputs and parameters the user exposes.
//!
//! A [`Definition`] is a small graph (nodes, links, layout) plus its interface: exposed inputs
//! ([`ExposedPort`], each feeding one or more inner input ports), exposed outputs
//! ([`ExposedOutput`], each read from one inner output port) and exposed parameters
//! ([`ExposedParam`], each setting one or more inner parameters, with its own name, default,
//! range and doc). A document keeps its definitions in `definitions`, keyed by
//! [`Definition::hash`] (sha256 of the definition's canonical JSON without its layout), and a
//! subgraph node (kind [`SUBGRAPH_KIND`]) names one through [`SubgraphRef`]. Definitions nest: an
//! inner node may itself be a subgraph node; every definition a document uses, at any depth, sits
//! in the document's one `definitions` map.
//!
//! The executor never sees a subgraph: [`flatten`] inlines every instance (recursively), drops
//! [`REROUTE_KIND`] nodes (their links are joined) and gives each inner node the id of its path,
//! joined with [`PATH_SEP`] (`outer › scratch-block › crack`), so validation errors and run events
//! name the path. [`Flat::scopes`] gives, per inlined node, the chain of definition hashes it came
//! through; the executor mixes it into the node's cache key.
//!
//! Editing: [`make_subgraph`] turns a selection into a definition and one node;
//! [`replace_definition`] swaps a definition for an edited one and re-keys every reference,
//! nested ones included (an inner change changes every enclosing definition's hash);
//! [`definition_from_recipe`] turns a whole recipe (a library entry) into a definition.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::catalogue::{ParamSpec, PortType};
use crate::graph::{GraphDoc, Link, NodeDoc, NodeLayout, ParamValue, PortRef};

/// The kind of a subgraph node.
pub const SUBGRAPH_KIND: &str = "Subgraph";
/// The kind of a reroute point: one input `in`, one output `out`, of any one type.
pub const REROUTE_KIND: &str = "Reroute";
/// Joins the ids of a flattened node's path: `outer › scratch-block › crack`. Node ids of a
/// document may not contain it.
pub const PATH_SEP: &str = " › ";

/// What a subgraph node instantiates: a definition by content hash, and its name for people and
/// for library lookups.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubgraphRef {
    pub hash: String,
    pub name: String,
    /// The definition is not in the file: it comes from the recipe library, found by name and
    /// checked by hash (`engine::recipes` fills it in before a run).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub library: bool,
}

/// A titled, coloured group of nodes in the editor. Ignored by the executor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Frame {
    pub title: String,
    /// `#rrggbb`.
    pub color: String,
    /// The node ids inside the frame; the editor draws the frame around them.
    pub nodes: Vec<String>,
}

/// A reusable block: a small graph and the interface it shows as one node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    /// Shown as the node's title and used for library lookups.
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub doc: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    pub nodes: BTreeMap<String, NodeDoc>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<ExposedPort>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<ExposedOutput>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<ExposedParam>,
    /// Editor layout of the inner nodes: not part of the hash.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub layout: BTreeMap<String, NodeLayout>,
    /// Editor frames inside: not part of the hash.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frames: Vec<Frame>,
}

/// An exposed input: the subgraph node's input port `name` feeds every inner port in `targets`.
/// Its type is the inner ports' type (they must agree); it is optional when every target is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExposedPort {
    pub name: String,
    pub targets: Vec<PortRef>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub doc: String,
}

/// An exposed output: the subgraph node's output port `name` is inner output `from`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExposedOutput {
    pub name: String,
    pub from: PortRef,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub doc: String,
}

/// An exposed parameter: the subgraph node's parameter `name` sets every inner parameter in
/// `targets` (`[node, param]`, all of one kind). Left unset on the node, the inner nodes keep
/// their own values, or `default` when given. `min`/`max` narrow the inner parameter's range.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExposedParam {
    pub name: String,
    pub targets: Vec<PortRef>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub doc: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<ParamValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// A subgraph node's ports and parameters, as the editor and validation see them.
#[derive(Clone, Debug)]
pub struct Interface {
    pub inputs: Vec<InterfacePort>,
    pub outputs: Vec<InterfacePort>,
    pub params: Vec<InterfaceParam>,
}

/// One port of a subgraph node.
#[derive(Clone, Debug)]
pub struct InterfacePort {
    pub name: String,
    pub ty: PortType,
    pub optional: bool,
    pub doc: String,
}

/// One parameter of a subgraph node: the inner parameter's spec (its kind and widget) under the
/// exposed name, with the exposed default and range.
#[derive(Clone, Debug)]
pub struct InterfaceParam {
    pub name: String,
    /// The (first) inner parameter's spec.
    pub spec: &'static ParamSpec,
    /// The value the node has when the parameter is not set on it.
    pub default: ParamValue,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub doc: String,
}

/// A document with every subgraph inlined and every reroute removed.
#[derive(Clone, Debug)]
pub struct Flat {
    /// No subgraph or reroute nodes; inner nodes are named by their path ([`PATH_SEP`]).
    /// `definitions` is empty; `layout` keeps only top-level nodes.
    pub doc: GraphDoc,
    /// For each inlined node: the hashes of the definitions it came through, outermost first.
    /// Top-level nodes are absent.
    pub scopes: BTreeMap<String, Vec<String>>,
    /// The outputs of the top-level subgraph and reroute nodes (which the flat document does
    /// not hold): `[node, port]` → the flat output it reads, when something feeds it. A run
    /// asked for a subgraph node's outputs reads these.
    pub outputs: BTreeMap<PortRef, PortRef>,
}

impl Flat {
    /// The flat nodes that stand for `ids` (top-level ids of the original document): a node
    /// the flat document holds is itself; a subgraph (or reroute) node is the nodes its outputs
    /// read. Ids that are neither are kept as they are (the caller reports them). Sorted, no
    /// duplicates.
    pub fn targets(&self, ids: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        for id in ids {
            let reads: Vec<String> = self
                .outputs
                .iter()
                .filter(|(from, _)| from.node() == id)
                .map(|(_, src)| src.node().to_string())
                .collect();
            if self.doc.nodes.contains_key(id) || reads.is_empty() {
                out.push(id.clone());
            } else {
                out.extend(reads);
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

mod edit;
mod files;
mod flatten;
mod ports;
mod rename;

pub use edit::{
    definition_from_recipe, expose_param, make_subgraph, node_param, replace_definition, set_param,
    unexpose_param, unpack, SUBGRAPH_VERSION,
};
pub use files::{file_params, repoint_file_params, FileParam, FileParamAt};
pub use flatten::flatten;
pub use ports::{interface, reroute_type};

impl Definition {
    /// The content hash: sha256 (lowercase hex) of the canonical compact JSON of the
    /// definition with `layout` and `frames` emptied.
    pub fn hash(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut bare = self.clone();
        bare.layout.clear();
        bare.frames.clear();
        // Serialising ordered maps, strings and numbers cannot fail.
        let json = serde_json::to_string(&bare).unwrap_or_default();
        Sha256::digest(json.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The subgraph nodes inside, with the definition each refers to.
    pub fn instances(&self) -> impl Iterator<Item = (&String, &SubgraphRef)> + '_ {
        self.nodes
            .iter()
            .filter_map(|(id, n)| n.subgraph.as_ref().map(|r| (id, r)))
    }
}

/// `prefix › id`, or `id` at the top level (empty prefix).
pub fn join_path(prefix: &str, id: &str) -> String {
    if prefix.is_empty() {
        id.to_string()
    } else {
        format!("{prefix}{PATH_SEP}{id}")
    }
}

/// True for a subgraph node.
pub fn is_subgraph(node: &NodeDoc) -> bool {
    node.kind == SUBGRAPH_KIND
}

/// True for a reroute node.
pub fn is_reroute(node: &NodeDoc) -> bool {
    node.kind == REROUTE_KIND
}

/// True when the document needs [`flatten`] before it runs: it has subgraph or reroute nodes
/// (or definitions to check).
pub fn needs_flatten(doc: &GraphDoc) -> bool {
    !doc.definitions.is_empty()
        || doc
            .nodes
            .values()
            .any(|n| is_subgraph(n) || is_reroute(n) || n.subgraph.is_some())
}

/// The `›` that [`PATH_SEP`] is made of: refused in node ids.
pub(crate) const PATH_MARK: char = '›';

fn error(node: &str, field: Option<String>, problem: crate::validate::Problem) -> ValidationError {
    ValidationError {
        node: Some(node.to_string()),
        field,
        problem,
    }
}

use crate::validate::ValidationError;
