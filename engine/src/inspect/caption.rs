//! Exact captions of our own outputs, from their recipes (docs/ARCHITECTURE.md §15,
//! *Captions*): the `Caption` node's `recipe` mode and the `caption` command.
//!
//! **Grammar.** `caption = [head] ("," " " defects)*`, every part separated by `", "`:
//! - `head` is the prompt of the sampler nodes (Txt2Img, Img2Img, Inpaint) upstream, when one
//!   is not empty (the first in run order, trimmed); else the materials of the Texture nodes
//!   upstream (`brushed_metal` → `brushed metal`, each once, in run order); else nothing (a
//!   photo loaded from a file has no known material).
//! - then, for each defect kind upstream in run order, `N noun` with the noun singular for 1
//!   and plural otherwise (`2 scratches`, `1 dent`); `N` sums the kind's nodes' `count`
//!   parameters (1 for a kind without one). Kinds with the same noun are summed together.
//! - a recipe with neither gives the empty caption.
//!
//! The caption of a whole recipe (an output PNG's `defect-studio/graph` chunk) describes what is
//! upstream of the `image` inputs of its sinks. Parameters take their catalogue defaults when
//! the recipe leaves them out, as the executor does, so the caption does not depend on how the
//! recipe was written, only on what it runs.
//!
//! Photos have no recipe: the Caption node's `blip` mode and `caption --blip` caption their
//! pixels with [`super::blip`], through [`blip_captioner`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use nodes::{Catalogue, GraphDoc, ParamValue};

use crate::error::{EngineError, Result};

/// The noun (singular, plural) of each defect kind of the catalogue's "Defects" category.
pub const DEFECT_NOUNS: &[(&str, &str, &str)] = &[
    ("Scratch", "scratch", "scratches"),
    ("Crack", "crack", "cracks"),
    ("Dent", "dent", "dents"),
    ("Stain", "stain", "stains"),
    ("Chip", "chip", "chips"),
    ("DraemAnomaly", "texture anomaly", "texture anomalies"),
    ("CutPaste", "pasted patch", "pasted patches"),
    ("CutPasteScar", "scar", "scars"),
    ("NsaPatch", "blended patch", "blended patches"),
];

/// The kinds whose `prompt` heads a caption.
const SAMPLERS: &[&str] = &["Txt2Img", "Img2Img", "Inpaint"];

/// The caption of what is upstream of the nodes `from` (included) in `doc`: see the module
/// docs for the grammar.
pub fn caption_upstream(doc: &GraphDoc, from: &[&str]) -> Result<String> {
    let order = doc.upstream_order(from).map_err(|path| {
        EngineError::Inspect(format!(
            "caption: the recipe has a cycle: {}",
            path.join(" -> ")
        ))
    })?;
    let catalogue = Catalogue::builtin();
    let param = |id: &str, name: &str| -> Option<ParamValue> {
        let node = doc.nodes.get(id)?;
        node.params.get(name).cloned().or_else(|| {
            catalogue
                .get(&node.kind)
                .and_then(|s| s.param(name))
                .map(|p| p.default_value())
        })
    };
    let mut prompt: Option<String> = None;
    let mut materials: Vec<String> = Vec::new();
    // (singular, plural, count) in first-seen order.
    let mut defects: Vec<(&str, &str, i64)> = Vec::new();
    for id in &order {
        let Some(node) = doc.nodes.get(id) else {
            continue;
        };
        let kind = node.kind.as_str();
        if SAMPLERS.contains(&kind) && prompt.is_none() {
            let p = param(id, "prompt")
                .and_then(|v| v.as_str().map(|s| s.trim().to_string()))
                .unwrap_or_default();
            if !p.is_empty() {
                prompt = Some(p);
            }
        } else if kind == "Texture" {
            let m = param(id, "material")
                .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
                .unwrap_or_default();
            if !m.is_empty() && !materials.contains(&m) {
                materials.push(m);
            }
        } else if let Some((_, one, many)) = DEFECT_NOUNS.iter().find(|(k, ..)| *k == kind) {
            let n = match param(id, "count") {
                Some(ParamValue::Int(n)) => n.max(0),
                Some(ParamValue::Float(f)) => f.round().max(0.0) as i64,
                _ => 1,
            };
            match defects.iter_mut().find(|(s, ..)| s == one) {
                Some(d) => d.2 += n,
                None => defects.push((one, many, n)),
            }
        }
    }
    let mut parts: Vec<String> = match prompt {
        Some(p) => vec![p],
        None => materials,
    };
    for (one, many, n) in defects {
        parts.push(format!("{n} {}", if n == 1 { one } else { many }));
    }
    Ok(parts.join(", "))
}

/// The caption of a whole recipe: what is upstream of its sinks' `image` inputs (every node of
/// the recipe when it has no sink).
pub fn caption_recipe(doc: &GraphDoc) -> Result<String> {
    let catalogue = Catalogue::builtin();
    let mut from: Vec<&str> = doc
        .links
        .iter()
        .filter(|l| {
            l.to.port() == "image"
                && doc
                    .nodes
                    .get(l.to.node())
                    .and_then(|n| catalogue.get(&n.kind))
                    .is_some_and(|s| s.sink)
        })
        .map(|l| l.from.node())
        .collect();
    if from.is_empty() {
        from = doc.nodes.keys().map(String::as_str).collect();
    }
    from.sort_unstable();
    from.dedup();
    caption_upstream(doc, &from)
}

/// The recipe an output PNG carries (its `defect-studio/graph` chunk), or an error naming the
/// file when it has none.
pub fn recipe_of_png(path: &Path) -> Result<GraphDoc> {
    let bytes = std::fs::read(path).map_err(|e| EngineError::io(path, e))?;
    let chunks = crate::interop::png_meta::read_text_chunks(&bytes).map_err(|e| {
        EngineError::Inspect(format!("{}: not a PNG we can read: {e}", path.display()))
    })?;
    let json = chunks
        .iter()
        .find(|(k, _)| k == crate::interop::png_meta::GRAPH_KEYWORD)
        .map(|(_, v)| v.clone())
        .ok_or_else(|| {
            EngineError::Inspect(format!(
                "{}: has no recipe (no {} chunk): only Defect Studio outputs have exact \
                 captions; use --blip MODEL for other images",
                path.display(),
                crate::interop::png_meta::GRAPH_KEYWORD
            ))
        })?;
    GraphDoc::from_json(&json).map_err(|e| {
        EngineError::Inspect(format!("{}: its recipe does not load: {e}", path.display()))
    })
}

/// The exact caption of one of our output PNGs (see the module docs).
pub fn caption_png(path: &Path) -> Result<String> {
    caption_recipe(&recipe_of_png(path)?)
}

/// The BLIP captioner of a model folder on a device, loaded once and kept (the last one used),
/// so a batch does not reload the weights for every item.
pub fn blip_captioner(
    dir: &Path,
    device_name: &str,
    device: &candle_core::Device,
) -> Result<Arc<super::blip::Captioner>> {
    type Kept = Option<(PathBuf, String, Arc<super::blip::Captioner>)>;
    static KEPT: Mutex<Kept> = Mutex::new(None);
    let mut kept = KEPT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((d, n, c)) = kept.as_ref() {
        if d == dir && n == device_name {
            return Ok(c.clone());
        }
    }
    let c = Arc::new(super::blip::Captioner::load(dir, device)?);
    *kept = Some((dir.to_path_buf(), device_name.to_string(), c.clone()));
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_defect_kind_has_a_noun() {
        for spec in Catalogue::builtin().specs() {
            if spec.category == nodes::builtin::DEFECTS {
                assert!(
                    DEFECT_NOUNS.iter().any(|(k, ..)| *k == spec.kind),
                    "{} has no caption noun",
                    spec.kind
                );
            }
        }
    }
}
