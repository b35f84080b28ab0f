//! Interop: recipes inside PNG files, AUTOMATIC1111's "parameters" text, and
//! importing ComfyUI workflows.
//!
//! Every importer turns a foreign description into a [`nodes::GraphDoc`] made of our coarse
//! nodes (LoadCheckpoint → LoraLoader… → Txt2Img / Img2Img / Inpaint → SaveImage), and says what
//! became of each foreign node in an [`ImportReport`] (imported, approximated or not imported,
//! each node once) instead of guessing silently.
//!
//! - [`a1111`]: [`a1111::A1111Params`] parsed from and written back to A1111's infotext
//!   ([`a1111::parse_parameters`], [`a1111::format_parameters`]), its LoRA tags
//!   ([`a1111::LoraTag`]), the sampler-name mapping ([`a1111::map_sampler`]) and
//!   [`a1111::to_graph`], which builds an equivalent recipe.
//! - [`comfy`]: [`comfy::import_workflow`] reads ComfyUI's API "prompt" format and its UI
//!   "workflow" format, collapses the standard latent chains into our sampler nodes and returns
//!   an [`ImportResult`].
//! - [`png_meta`]: [`png_meta::read_text_chunks`] (tEXt, zTXt, iTXt),
//!   [`png_meta::embed_graph`] / [`png_meta::embed_text_chunks`], the chunk keywords
//!   ([`png_meta::GRAPH_KEYWORD`], [`png_meta::A1111_KEYWORD`], …), [`png_meta::graph_from_png`]
//!   (our chunk first, then A1111, then ComfyUI) and [`png_meta::prepare_assets`], which swaps
//!   large embedded assets for hash references.
//! - [`catalogue`] is the node catalogue the produced graphs are written for.

pub mod a1111;
pub mod comfy;
pub mod png_meta;
mod report;
mod settings_report;

pub use report::{ImportReport, Outcome, ReportEntry};

use std::collections::BTreeMap;

use nodes::{Catalogue, GraphDoc, Link, NodeDoc, NodeLayout, ParamValue, PortRef};

/// Import errors are engine errors ([`EngineError::A1111`], [`EngineError::Png`],
/// [`EngineError::Comfy`], [`EngineError::Json`], [`EngineError::Graph`]).
pub use crate::error::EngineError as InteropError;

/// The module's result type.
pub type Result<T> = std::result::Result<T, InteropError>;

/// An imported graph and what the import could not carry over.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportResult {
    pub graph: GraphDoc,
    pub report: ImportReport,
}

/// Our node kinds that make an import usable: a sampler, or an image being saved.
const USABLE_KINDS: &[&str] = &["Txt2Img", "Img2Img", "Inpaint", "SaveImage"];

impl ImportResult {
    /// Whether anything usable was imported: at least one sampler or SaveImage. An import that
    /// is not usable should be refused with its report, not written as an empty recipe.
    pub fn is_usable(&self) -> bool {
        self.graph
            .nodes
            .values()
            .any(|n| USABLE_KINDS.contains(&n.kind.as_str()))
    }
}

/// The catalogue our produced graphs are written for: the builtin kinds plus
/// [`nodes::diffusion::LORA_LOADER`] when the builtin list does not hold it yet.
pub fn catalogue() -> Catalogue {
    let builtin = Catalogue::builtin();
    if builtin.get(nodes::diffusion::LORA_LOADER.kind).is_some() {
        return builtin;
    }
    let mut specs = builtin.specs().to_vec();
    specs.push(&nodes::diffusion::LORA_LOADER);
    Catalogue::new(specs)
}

/// A small helper that writes graph documents with the catalogue's node versions.
pub(crate) struct GraphBuilder {
    pub doc: GraphDoc,
    catalogue: Catalogue,
}

impl GraphBuilder {
    pub fn new() -> GraphBuilder {
        GraphBuilder {
            doc: GraphDoc::new(),
            catalogue: catalogue(),
        }
    }

    /// Adds (or replaces) node `id` of `kind` with the given parameters.
    pub fn node(&mut self, id: &str, kind: &str, params: Vec<(&str, ParamValue)>) {
        let version = self.catalogue.get(kind).map(|s| s.version).unwrap_or(1);
        let params: BTreeMap<String, ParamValue> = params
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        self.doc.nodes.insert(
            id.to_string(),
            NodeDoc {
                kind: kind.to_string(),
                version,
                params,
                param_inputs: Default::default(),
                subgraph: None,
            },
        );
    }

    /// Sets one parameter of an existing node (does nothing if the node is missing).
    pub fn set(&mut self, id: &str, param: &str, value: ParamValue) {
        if let Some(n) = self.doc.nodes.get_mut(id) {
            n.params.insert(param.to_string(), value);
        }
    }

    /// Links `from.port` → `to.port`.
    pub fn link(&mut self, from: (&str, &str), to: (&str, &str)) {
        self.doc.links.push(Link {
            from: PortRef(from.0.to_string(), from.1.to_string()),
            to: PortRef(to.0.to_string(), to.1.to_string()),
        });
    }

    /// Places a node in the editor.
    pub fn pos(&mut self, id: &str, pos: [f32; 2]) {
        self.doc.layout.insert(
            id.to_string(),
            NodeLayout {
                pos,
                collapsed: false,
            },
        );
    }

    /// A node id not used yet, `base` or `base_2`, `base_3`, …
    pub fn fresh_id(&self, base: &str) -> String {
        if !self.doc.nodes.contains_key(base) {
            return base.to_string();
        }
        (2..)
            .map(|i| format!("{base}_{i}"))
            .find(|id| !self.doc.nodes.contains_key(id))
            .unwrap_or_else(|| base.to_string())
    }
}

/// `ParamValue::Text` from anything string-like.
pub(crate) fn text(s: impl Into<String>) -> ParamValue {
    ParamValue::Text(s.into())
}

/// A fixed seed parameter.
pub(crate) fn fixed_seed(value: u64) -> ParamValue {
    ParamValue::Seed(nodes::SeedValue::Fixed { value })
}

/// Clamps `v` into `[min, max]`, noting it in `notes` when it changed.
pub(crate) fn clamp_f(v: f64, min: f64, max: f64, what: &str, notes: &mut Vec<String>) -> f64 {
    if v < min || v > max || !v.is_finite() {
        let c = if v.is_finite() {
            v.clamp(min, max)
        } else {
            min
        };
        notes.push(format!("{what} = {v} is outside {min}..={max}; set to {c}"));
        c
    } else {
        v
    }
}

/// Clamps an integer into `[min, max]`, noting it when it changed.
pub(crate) fn clamp_i(v: i64, min: i64, max: i64, what: &str, notes: &mut Vec<String>) -> i64 {
    if v < min || v > max {
        let c = v.clamp(min, max);
        notes.push(format!("{what} = {v} is outside {min}..={max}; set to {c}"));
        c
    } else {
        v
    }
}

/// A size rounded down to a multiple of 8 (our samplers' requirement), noting any change.
pub(crate) fn size8(v: i64, what: &str, notes: &mut Vec<String>) -> i64 {
    let v = clamp_i(v, 0, 4096, what, notes);
    let r = v - v % 8;
    if r != v {
        notes.push(format!(
            "{what} = {v} is not a multiple of 8; rounded down to {r}"
        ));
    }
    r
}
