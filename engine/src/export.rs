//! Exporting stored outputs as datasets: reads one or several stores (shards of one batch, or
//! separate runs) and hands their images, masks, labels and provenance to [`crate::dataset`].

use std::path::{Path, PathBuf};

use crate::dataset::{self, ExportItem, ExportReport, Format};
use crate::error::{EngineError, Result};
use crate::hashing::sha256_hex;
use crate::store::{format_utc, Store};

/// Every output of every store as an export item, with its provenance: the store, run,
/// graph name and sha256, node, seed, item, parameter overrides, label and model references.
/// Names are `s<store>-r<run>-o<output>`, unique across the merged stores.
pub fn items_from_stores(paths: &[PathBuf]) -> Result<Vec<ExportItem>> {
    let mut items = Vec::new();
    for (si, path) in paths.iter().enumerate() {
        if !path.exists() {
            return Err(EngineError::Store {
                path: path.clone(),
                message: "no such store".into(),
            });
        }
        let store = Store::open(path)?;
        let ids: Vec<u64> = store.outputs(None)?.into_iter().map(|(id, _)| id).collect();
        items.extend(items_from_store(&store, si, &ids)?);
    }
    Ok(items)
}

/// The given outputs of one store as export items (`si` numbers the store in the names).
pub fn items_from_store(store: &Store, si: usize, ids: &[u64]) -> Result<Vec<ExportItem>> {
    let path = store.path().to_path_buf();
    let runs = store.runs()?;
    let outputs = store.outputs(None)?;
    let mut items = Vec::new();
    for id in ids {
        let Some((oid, rec)) = outputs.iter().find(|(o, _)| o == id) else {
            return Err(EngineError::Store {
                path: path.clone(),
                message: format!("no output {id}"),
            });
        };
        let run = runs
            .iter()
            .find(|(rid, _)| *rid == rec.run_id)
            .map(|(_, r)| r);
        let png = store.output_png(*oid)?.ok_or_else(|| EngineError::Store {
            path: path.clone(),
            message: format!("output {oid} has no image bytes"),
        })?;
        let mask = store.output_mask_png(*oid)?;
        let doc = run.and_then(|r| nodes::GraphDoc::from_json(&r.graph_json).ok());
        let models = doc.as_ref().map(|d| d.models.clone()).unwrap_or_default();
        // Every node's parameters as this item ran them: the graph's values, then the item's
        // overrides (folder items, sweeps).
        let mut node_params = serde_json::Map::new();
        if let Some(d) = &doc {
            for (id, n) in &d.nodes {
                let mut p = serde_json::to_value(&n.params).unwrap_or_default();
                if let (Some(obj), Some(over)) = (p.as_object_mut(), rec.overrides.as_object()) {
                    for (k, v) in over {
                        if let Some(param) = k.strip_prefix(&format!("{id}.")) {
                            obj.insert(param.to_string(), v.clone());
                        }
                    }
                }
                node_params.insert(id.clone(), serde_json::json!({"kind": n.kind, "params": p}));
            }
        }
        let provenance = serde_json::json!({
            "store": path.to_string_lossy(),
            "run": rec.run_id,
            "output": oid,
            "graph": run.map(|r| r.graph_name.clone()),
            "graph_sha256": run.map(|r| sha256_hex(r.graph_json.as_bytes())),
            "graph_file": run.and_then(|r| r.graph_path.clone()),
            "node": rec.node,
            "seed": rec.seed,
            "item": rec.item,
            "parameters": rec.overrides,
            "nodes": node_params,
            "models": models.iter().map(|m| serde_json::json!({"name": m.name, "sha256": m.sha256, "arch": m.arch})).collect::<Vec<_>>(),
            "image_sha256": rec.sha256,
            "source_file": rec.path,
            "created": format_utc(rec.created_ms),
        });
        let label = if rec.label.trim().is_empty() {
            "defect".to_string()
        } else {
            rec.label.clone()
        };
        items.push(ExportItem {
            name: format!("s{si}-r{}-o{oid}", rec.run_id),
            image_png: png,
            mask_png: mask,
            label,
            provenance,
        });
    }
    Ok(items)
}

/// Exports the outputs of `stores` in `format` into `out` (which must be empty or new).
pub fn export_stores(stores: &[PathBuf], format: Format, out: &Path) -> Result<ExportReport> {
    let items = items_from_stores(stores)?;
    if items.is_empty() {
        return Err(EngineError::Plan(
            "the store(s) hold no outputs to export".into(),
        ));
    }
    dataset::export(&items, format, out).map_err(EngineError::Plan)
}
