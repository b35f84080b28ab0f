//! The text chunks every output PNG of a work item carries: the recipe as the item ran it and
//! A1111's `parameters` (docs/ARCHITECTURE.md, *The store and the output folder*).

use std::collections::HashMap;
use std::path::Path;

use nodes::{FileRole, GraphDoc, ParamKind, ParamValue};

use crate::exec::resolve_path;

/// The text chunks of a work item's output PNGs: the recipe as the item ran it and A1111's
/// `parameters` (see [`recipe_chunks`]).
pub(super) struct RecipeChunks {
    /// `defect-studio/graph`: the recipe JSON.
    graph: (String, String),
    /// A1111's parameters: from the sampler node ([`crate::interop::a1111::from_graph`]), or
    /// seed and recipe summary for a procedural recipe
    /// ([`crate::interop::a1111::procedural_parameters`]).
    parameters: crate::interop::a1111::A1111Params,
    /// The sampler node `parameters` describe, if any (the first by id, as
    /// [`crate::interop::a1111::from_graph`] picks it).
    sampler: Option<String>,
}

impl RecipeChunks {
    /// The chunks of one output PNG. `parameters` gets the image's `Size` where the recipe sets
    /// none (a procedural recipe, or a sampler node without width and height).
    pub(super) fn for_image(&self, width: u32, height: u32) -> Vec<(String, String)> {
        use crate::interop::{a1111, png_meta};
        let mut p = self.parameters.clone();
        p.size.get_or_insert((width, height));
        vec![
            self.graph.clone(),
            (
                png_meta::A1111_KEYWORD.to_string(),
                a1111::format_parameters(&p),
            ),
        ]
    }

    /// A parameter of `node` was fed by a link (`crate::exec`, *Parameters fed by links*): the
    /// A1111 `parameters` show the prompt or negative prompt the sampler really used (the
    /// recipe chunk keeps the template and the link, so the recipe runs again as written).
    pub(super) fn resolved_param(&mut self, node: &str, param: &str, value: &ParamValue) {
        if self.sampler.as_deref() != Some(node) {
            return;
        }
        let Some(text) = value.as_str() else {
            return;
        };
        let p = &mut self.parameters;
        match param {
            "prompt" => {
                let tags: String = p.loras.iter().map(|t| t.to_tag()).collect();
                p.prompt = text.to_string();
                p.raw_prompt = format!("{text}{tags}");
            }
            "negative" => p.negative = (!text.is_empty()).then(|| text.to_string()),
            _ => {}
        }
    }
}

/// The text chunks of an output PNG: the recipe as this work item ran it (its seed as the
/// graph's seed, so `defect-studio run OUTPUT.png` repeats it; inputs over 256 KB referenced by
/// hash and kept in the data folder's `assets/`), and A1111's `parameters`, which every output
/// carries: a recipe with a sampler node gets its settings (`RNG: CPU` and `Lora hashes`
/// included), a procedural one its seed, size and a short summary.
pub(super) fn recipe_chunks(
    doc: &GraphDoc,
    seed: u64,
    base_dir: &Path,
    embed_assets: bool,
    models: &mut ModelMemo,
) -> RecipeChunks {
    use crate::interop::{a1111, png_meta};
    let mut run_doc = doc.clone();
    run_doc.meta.seed = Some(seed);
    // Input files by absolute path: the PNG does not live beside the graph file. Inside
    // subgraph definitions too (each changed definition re-keyed, its enclosing ones with it).
    let catalogue = nodes::Catalogue::builtin();
    absolute_inputs(run_doc.nodes.values_mut(), &catalogue, base_dir);
    let mut guard = run_doc.definitions.len();
    while let Some((key, def)) = run_doc.definitions.iter().find_map(|(k, d)| {
        let mut fixed = d.clone();
        absolute_inputs(fixed.nodes.values_mut(), &catalogue, base_dir).then(|| (k.clone(), fixed))
    }) {
        if guard == 0 || nodes::subgraph::replace_definition(&mut run_doc, &key, def).is_err() {
            break;
        }
        guard -= 1;
    }
    crate::exec::keep_assets(&run_doc, png_meta::LARGE_ASSET_BYTES);
    // The A1111 parameters read the flat graph (subgraphs inlined; ids are paths, as the
    // executor reports them). The embedded recipe is the document as written, definitions and
    // all.
    let flat_doc = match nodes::subgraph::needs_flatten(&run_doc) {
        true => nodes::subgraph::flatten(&run_doc, &catalogue)
            .map(|f| f.doc)
            .unwrap_or_else(|_| run_doc.clone()),
        false => run_doc.clone(),
    };
    // The checkpoint's and LoRAs' hashes for `Model hash` and `Lora hashes`: known at run time
    // (the recipe's own `models` list rarely names them). Only the parameters see them; the
    // embedded recipe stays as written.
    let mut hashed = flat_doc.clone();
    hashed.models.extend(model_refs(&flat_doc, models));
    let from_sampler = a1111::from_graph(&hashed, seed);
    let sampler = from_sampler.as_ref().and_then(|_| {
        flat_doc
            .nodes
            .iter()
            .find(|(_, n)| matches!(n.kind.as_str(), "Txt2Img" | "Img2Img" | "Inpaint"))
            .map(|(id, _)| id.clone())
    });
    RecipeChunks {
        graph: (
            png_meta::GRAPH_KEYWORD.to_string(),
            png_meta::prepare_assets(&run_doc, embed_assets).to_json(),
        ),
        parameters: from_sampler.unwrap_or_else(|| a1111::procedural_parameters(&flat_doc, seed)),
        sampler,
    }
}

/// Makes the relative input-file parameters of `nodes` absolute (against `base_dir`); true when
/// one changed.
fn absolute_inputs<'a>(
    nodes: impl Iterator<Item = &'a mut nodes::NodeDoc>,
    catalogue: &nodes::Catalogue,
    base_dir: &Path,
) -> bool {
    let mut changed = false;
    for node in nodes {
        let Some(spec) = catalogue.get(&node.kind) else {
            continue;
        };
        for p in spec.params {
            if !matches!(p.kind, ParamKind::InputFile { .. }) {
                continue;
            }
            if let Some(ParamValue::Text(v)) = node.params.get_mut(p.name) {
                if !v.is_empty() && !v.starts_with("asset:") && Path::new(v.as_str()).is_relative()
                {
                    *v = resolve_path(base_dir, v).to_string_lossy().into_owned();
                    changed = true;
                }
            }
        }
    }
    changed
}

/// Model references already worked out in this batch, by (file kind, name as written): so a
/// long batch looks each checkpoint or LoRA up (a walk of the model folders) and hashes it once,
/// not once per work item. `None`: not found, or not a file.
pub(super) type ModelMemo = HashMap<(FileRole, String), Option<nodes::ModelRef>>;

/// Model references for the recipe's checkpoint and LoRA files (the parameters the catalogue
/// marks [`FileRole::Checkpoint`] or [`FileRole::Lora`]) that its `models` list lacks: each
/// located as its node locates it ([`crate::files::locate`]) and hashed through the model
/// manager's cache. A model that cannot be found or read, or a diffusers folder, is left out
/// (its node reports any error when it runs).
pub(super) fn model_refs(doc: &GraphDoc, memo: &mut ModelMemo) -> Vec<nodes::ModelRef> {
    let listed = |name: &str| {
        let stem = Path::new(name).file_stem().unwrap_or_default();
        doc.models
            .iter()
            .any(|m| Path::new(&m.name).file_stem() == Some(stem) && !m.sha256.is_empty())
    };
    let catalogue = nodes::Catalogue::builtin();
    let mut refs = Vec::new();
    for node in doc.nodes.values() {
        let Some(spec) = catalogue.get(&node.kind) else {
            continue;
        };
        for p in spec.params {
            let Some(role @ (FileRole::Checkpoint | FileRole::Lora)) = p.file else {
                continue;
            };
            let Some(name) = node.params.get(p.name).and_then(|v| v.as_str()) else {
                continue;
            };
            if name.is_empty() || listed(name) {
                continue;
            }
            let found = memo.entry((role, name.to_string())).or_insert_with(|| {
                let path = crate::files::locate(role, name, Path::new("")).ok()?;
                if !path.is_file() {
                    return None;
                }
                let manager = crate::models::manager::ModelManager::default_dirs();
                let sha256 = manager.sha256(&path).ok()?;
                Some(nodes::ModelRef {
                    name: path.to_string_lossy().into_owned(),
                    sha256,
                    arch: String::new(),
                })
            });
            refs.extend(found.clone());
        }
    }
    refs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_linked_prompt_shows_resolved_in_the_a1111_parameters() {
        let doc = GraphDoc::from_json(
            &serde_json::json!({
                "format": "defect-studio/graph", "version": 1,
                "nodes": {
                    "ckpt": {"kind": "LoadCheckpoint", "version": 1},
                    "gen": {"kind": "Txt2Img", "version": 1,
                            "params": {"prompt": "{input}, deep scratch", "steps": 4}},
                    "save": {"kind": "SaveImage", "version": 1}
                },
                "links": [
                    {"from": ["ckpt", "model"], "to": ["gen", "model"]},
                    {"from": ["gen", "image"], "to": ["save", "image"]}
                ]
            })
            .to_string(),
        )
        .unwrap();
        let mut chunks = recipe_chunks(&doc, 3, Path::new("."), false, &mut ModelMemo::new());
        chunks.resolved_param("other", "prompt", &ParamValue::Text("nope".into()));
        chunks.resolved_param(
            "gen",
            "prompt",
            &ParamValue::Text("brushed metal, deep scratch".into()),
        );
        chunks.resolved_param("gen", "negative", &ParamValue::Text("blurry".into()));
        let out = chunks.for_image(8, 8);
        let params = &out.iter().find(|(k, _)| k == "parameters").unwrap().1;
        assert!(
            params.starts_with("brushed metal, deep scratch\nNegative prompt: blurry\n"),
            "{params}"
        );
        // The recipe keeps the template.
        let graph = &out
            .iter()
            .find(|(k, _)| k == "defect-studio/graph")
            .unwrap()
            .1;
        assert!(graph.contains("{input}, deep scratch"), "{graph}");
    }
}
