//! The graph document: what a recipe file holds.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::error::NodesError;
use crate::migrate;
use crate::quote::clip;
use crate::subgraph::{Definition, Frame, SubgraphRef};

/// The value of the document's `format` field.
pub const FORMAT: &str = "defect-studio/graph";
/// The document version this build writes. Older versions are migrated on load.
/// Version 2 added subgraph `definitions`, subgraph instance nodes, parameters shown as input
/// ports (`param_inputs`) and `frames`.
pub const VERSION: u32 = 2;

/// A recipe: nodes with named parameters, links between named ports, the models and assets it
/// needs, the editor layout (ignored by the executor) and meta data.
///
/// Maps are ordered, and [`GraphDoc::to_json`] writes one canonical form, so loading and saving a
/// file gives the same bytes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphDoc {
    pub format: String,
    pub version: u32,
    pub nodes: BTreeMap<String, NodeDoc>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<ModelRef>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub assets: BTreeMap<String, Asset>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub layout: BTreeMap<String, NodeLayout>,
    /// Titled, coloured groups of nodes in the editor. Ignored by the executor.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frames: Vec<Frame>,
    /// The subgraph definitions the document's subgraph nodes use (nested ones too), keyed by
    /// their content hash ([`Definition::hash`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub definitions: BTreeMap<String, Definition>,
    #[serde(default, skip_serializing_if = "Meta::is_empty")]
    pub meta: Meta,
}

/// One node: its kind, the kind's version it was written for, and its named parameters.
/// Parameters left out take the kind's defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeDoc {
    pub kind: String,
    pub version: u32,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, ParamValue>,
    /// Parameters the user turned into input ports (besides those the kind declares as inputs).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub param_inputs: BTreeSet<String>,
    /// For a subgraph node (kind [`crate::subgraph::SUBGRAPH_KIND`]): the definition it
    /// instantiates. Its `params` are the definition's exposed parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subgraph: Option<SubgraphRef>,
}

impl NodeDoc {
    /// A node of `kind@version` with no parameters set.
    pub fn new(kind: impl Into<String>, version: u32) -> NodeDoc {
        NodeDoc {
            kind: kind.into(),
            version,
            params: BTreeMap::new(),
            param_inputs: BTreeSet::new(),
            subgraph: None,
        }
    }
}

/// A parameter value. Integers and floats are distinct in JSON (`2` vs `2.0`); a float
/// parameter accepts either.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ParamValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    Seed(SeedValue),
}

/// A seed parameter's value. `Run` (the default) uses the run seed plus an offset, so
/// `--seed`/`--count` vary it; `Fixed` keeps its own value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum SeedValue {
    Run {
        #[serde(default)]
        offset: u64,
    },
    Fixed {
        value: u64,
    },
}

impl SeedValue {
    /// The seed this value gives in a run with seed `run_seed`.
    pub fn resolve(self, run_seed: u64) -> u64 {
        match self {
            SeedValue::Run { offset } => run_seed.wrapping_add(offset),
            SeedValue::Fixed { value } => value,
        }
    }
}

impl ParamValue {
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            ParamValue::Int(i) => Some(*i as f64),
            ParamValue::Float(f) => Some(*f),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            ParamValue::Text(s) => Some(s),
            _ => None,
        }
    }
    /// A seed value; a bare integer counts as a fixed seed.
    pub fn as_seed(&self) -> Option<SeedValue> {
        match self {
            ParamValue::Seed(s) => Some(*s),
            ParamValue::Int(i) if *i >= 0 => Some(SeedValue::Fixed { value: *i as u64 }),
            _ => None,
        }
    }
    /// The value as compact JSON, for messages and cache keys.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// One end of a link: `[node id, port name]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PortRef(pub String, pub String);

impl PortRef {
    pub fn node(&self) -> &str {
        &self.0
    }
    pub fn port(&self) -> &str {
        &self.1
    }
}

impl std::fmt::Display for PortRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// A link from an output port to an input port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    pub from: PortRef,
    pub to: PortRef,
}

/// A model the graph needs, found by content hash first and by name second.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelRef {
    pub name: String,
    pub sha256: String,
    #[serde(default)]
    pub arch: String,
}

/// A small file carried inside the document (a painted mask, a small input image), keyed by the
/// sha256 of its bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Asset {
    pub mime: String,
    /// The bytes, base64; empty for an external asset.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub data_base64: String,
    /// Bytes left out of the document (a large input written into an output PNG): found by
    /// their sha256 key in the data folder's `assets/`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub external: bool,
    /// Decoded size in bytes of an external asset, so the user knows what is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// Where a node sits in the editor. Ignored by the executor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeLayout {
    pub pos: [f32; 2],
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub collapsed: bool,
}

/// Free-form information about the recipe.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub notes: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author: String,
    /// The default run seed (`--seed` overrides it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Tags for the recipe library's search.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

impl Meta {
    pub fn is_empty(&self) -> bool {
        *self == Meta::default()
    }
}

impl Default for GraphDoc {
    fn default() -> Self {
        GraphDoc::new()
    }
}

impl GraphDoc {
    /// An empty document of the current version.
    pub fn new() -> GraphDoc {
        GraphDoc {
            format: FORMAT.to_string(),
            version: VERSION,
            nodes: BTreeMap::new(),
            links: Vec::new(),
            models: Vec::new(),
            assets: BTreeMap::new(),
            layout: BTreeMap::new(),
            frames: Vec::new(),
            definitions: BTreeMap::new(),
            meta: Meta::default(),
        }
    }

    /// Parses a document, migrating older versions and refusing newer ones. This checks the
    /// shape of the file only; call [`crate::validate()`] to check it against a catalogue.
    pub fn from_json(text: &str) -> Result<GraphDoc, NodesError> {
        let json_error = |e: serde_json::Error| NodesError::Json {
            line: e.line(),
            column: e.column(),
            message: clip(&e.to_string()),
        };
        let mut value: serde_json::Value = serde_json::from_str(text).map_err(json_error)?;
        // Duplicate keys (two nodes of one id, two values of one parameter) are refused: the
        // parse above silently keeps the last.
        crate::dupkeys::check(text).map_err(json_error)?;
        let format = value
            .get("format")
            .cloned()
            .unwrap_or(serde_json::Value::Null);
        if format.as_str() != Some(FORMAT) {
            return Err(NodesError::WrongFormat {
                found: format.to_string(),
                expected: FORMAT,
            });
        }
        let version = value
            .get("version")
            .and_then(|v| v.as_u64())
            .ok_or(NodesError::MissingVersion)?;
        if version > u64::from(VERSION) {
            return Err(NodesError::UnsupportedVersion {
                found: version,
                supported: VERSION,
            });
        }
        if version < u64::from(VERSION) {
            value = migrate::migrate(value, version as u32, migrate::DOC_MIGRATIONS)?;
        }
        let migrated = migrate::migrate_nodes(&mut value, migrate::NODE_MIGRATIONS);
        let de = value;
        let mut doc: GraphDoc =
            serde_path_to_error::deserialize(de).map_err(|e| NodesError::Schema {
                path: clip(&e.path().to_string()),
                message: clip(&e.inner().to_string()),
            })?;
        // Definitions whose nodes a migration changed hash differently now: re-key them (and
        // the definitions that enclose them). Only those: a definition that does not match its
        // key for another reason is refused by validation.
        for key in migrated {
            let Some(def) = doc.definitions.get(&key).cloned() else {
                continue;
            };
            if def.hash() != key {
                crate::subgraph::replace_definition(&mut doc, &key, def)?;
            }
        }
        Ok(doc)
    }

    /// The canonical text of the document: pretty JSON with sorted maps and a final newline.
    pub fn to_json(&self) -> String {
        // Serialising plain maps and strings cannot fail.
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Every node's incoming links, by node id (one pass over the links; use it instead of
    /// [`GraphDoc::links_into`] in loops over all nodes).
    pub fn links_by_target(&self) -> std::collections::HashMap<&str, Vec<&Link>> {
        let mut map: std::collections::HashMap<&str, Vec<&Link>> = std::collections::HashMap::new();
        for l in &self.links {
            map.entry(l.to.node()).or_default().push(l);
        }
        map
    }

    /// The links that end at `node`'s inputs.
    pub fn links_into<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a Link> + 'a {
        self.links.iter().filter(move |l| l.to.node() == node)
    }

    /// The link into one input port, if any.
    pub fn link_into(&self, node: &str, port: &str) -> Option<&Link> {
        self.links
            .iter()
            .find(|l| l.to.node() == node && l.to.port() == port)
    }

    /// `targets` and every node they depend on, in a topological order (dependencies first;
    /// ties broken by node id, so the order is deterministic). Returns `Err(cycle)` with the node
    /// ids on a cycle if there is one.
    pub fn upstream_order(&self, targets: &[&str]) -> Result<Vec<String>, Vec<String>> {
        // Iterative DFS with colours: 0 = new, 1 = on stack, 2 = done.
        let incoming = self.links_by_target();
        let deps_of = |node: &str| -> Vec<&str> {
            let mut d: Vec<&str> = incoming
                .get(node)
                .map(|ls| {
                    ls.iter()
                        .map(|l| l.from.node())
                        .filter(|n| self.nodes.contains_key(*n))
                        .collect()
                })
                .unwrap_or_default();
            // Descending, so that popping yields ascending ids.
            d.sort_unstable_by(|a, b| b.cmp(a));
            d.dedup();
            d
        };
        let mut colour: BTreeMap<&str, u8> = BTreeMap::new();
        let mut order = Vec::new();
        let mut sorted_targets: Vec<&str> = targets.to_vec();
        sorted_targets.sort_unstable();
        for &t in &sorted_targets {
            if colour.get(t).copied().unwrap_or(0) != 0 {
                continue;
            }
            let mut stack: Vec<(&str, Vec<&str>)> = vec![(t, deps_of(t))];
            colour.insert(t, 1);
            while let Some((node, deps)) = stack.last_mut() {
                if let Some(dep) = deps.pop() {
                    match colour.get(dep).copied().unwrap_or(0) {
                        0 => {
                            colour.insert(dep, 1);
                            let d = deps_of(dep);
                            stack.push((dep, d));
                        }
                        1 => {
                            let start = stack.iter().position(|(n, _)| *n == dep).unwrap_or(0);
                            let mut cycle: Vec<String> =
                                stack[start..].iter().map(|(n, _)| n.to_string()).collect();
                            cycle.push(dep.to_string());
                            return Err(cycle);
                        }
                        _ => {}
                    }
                } else {
                    let node = *node;
                    colour.insert(node, 2);
                    order.push(node.to_string());
                    stack.pop();
                }
            }
        }
        Ok(order)
    }

    /// A title for file names and listings: `meta.title`, or `fallback`.
    pub fn title_or<'a>(&'a self, fallback: &'a str) -> &'a str {
        if self.meta.title.trim().is_empty() {
            fallback
        } else {
            &self.meta.title
        }
    }
}
