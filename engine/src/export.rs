//! Exporting stored outputs as datasets: reads one or several stores (shards of one batch, or
//! separate runs) and hands their images, masks, labels and provenance to [`crate::dataset`].
//! Also checking a store's outputs ([`check_store`]): `store check` reports the bad ones, and
//! an export skips them (or, strict, refuses).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::dataset::{self, ExportItem, ExportOptions, ExportReport};
use crate::error::{EngineError, Result};
use crate::hashing::sha256_hex;
use crate::store::{format_utc, OutputRecord, Store};

/// A stored output that fails its check.
#[derive(Clone, Debug, PartialEq)]
pub struct BadOutput {
    pub store: PathBuf,
    /// The output's id in its store.
    pub id: u64,
    /// What is wrong, in words.
    pub problem: String,
}

/// What [`check_store`] found.
#[derive(Clone, Debug, Default)]
pub struct CheckReport {
    /// Outputs checked.
    pub checked: usize,
    pub bad: Vec<BadOutput>,
}

/// Checks stored PNG bytes against the recorded sha256 and size: `None` when they are sound.
fn check_png(bytes: Option<&[u8]>, sha256: &str, size: Option<(u32, u32)>) -> Option<String> {
    let Some(bytes) = bytes else {
        return Some("no PNG bytes stored".into());
    };
    let found = sha256_hex(bytes);
    if found != sha256 {
        return Some(format!(
            "the stored bytes have sha256 {found}, the record says {sha256}"
        ));
    }
    match ::image::load_from_memory_with_format(bytes, ::image::ImageFormat::Png) {
        Err(e) => Some(format!("the stored PNG does not decode: {e}")),
        Ok(img) => match size {
            Some((w, h)) if (img.width(), img.height()) != (w, h) => Some(format!(
                "the stored PNG is {}×{}, the record says {w}×{h}",
                img.width(),
                img.height()
            )),
            _ => None,
        },
    }
}

/// Checks one stored output: its image (and mask and clean image, when it has them) is stored, matches the
/// recorded sha256 and decodes, at the recorded size. Returns what is wrong, if anything.
pub fn check_output(store: &Store, id: u64, rec: &OutputRecord) -> Result<Option<String>> {
    let png = store.output_png(id)?;
    if let Some(p) = check_png(png.as_deref(), &rec.sha256, Some((rec.width, rec.height))) {
        return Ok(Some(format!("image: {p}")));
    }
    if let Some(sha) = &rec.mask_sha256 {
        let mask = store.output_mask_png(id)?;
        if let Some(p) = check_png(mask.as_deref(), sha, Some((rec.width, rec.height))) {
            return Ok(Some(format!("mask: {p}")));
        }
    }
    if let Some(sha) = &rec.clean_sha256 {
        let clean = store.output_clean_png(id)?;
        if let Some(p) = check_png(clean.as_deref(), sha, Some((rec.width, rec.height))) {
            return Ok(Some(format!("clean image: {p}")));
        }
    }
    Ok(None)
}

/// Checks every output of a store ([`check_output`]).
pub fn check_store(store: &Store) -> Result<CheckReport> {
    let mut report = CheckReport::default();
    for (id, rec) in store.outputs(None)? {
        report.checked += 1;
        if let Some(problem) = check_output(store, id, &rec)? {
            report.bad.push(BadOutput {
                store: store.path().to_path_buf(),
                id,
                problem,
            });
        }
    }
    Ok(report)
}

/// The sound outputs of every store as export items (see [`items_from_store`]), and the bad
/// ones left out ([`check_store`]); `strict` refuses instead when any is bad. Names are
/// `s<store>-r<run>-o<output>`, unique across the merged stores. The stores are opened
/// read-only.
pub fn items_from_stores(
    paths: &[PathBuf],
    strict: bool,
) -> Result<(Vec<ExportItem>, Vec<BadOutput>)> {
    let mut items = Vec::new();
    let mut skipped = Vec::new();
    for (si, path) in paths.iter().enumerate() {
        let store = Store::open_read_only(path)?;
        let report = check_store(&store)?;
        let ids: Vec<u64> = store
            .outputs(None)?
            .into_iter()
            .map(|(id, _)| id)
            .filter(|id| !report.bad.iter().any(|b| b.id == *id))
            .collect();
        skipped.extend(report.bad);
        let store_digits = digits(paths.len().saturating_sub(1) as u64);
        items.extend(items_named(&store, si, store_digits, &ids)?);
    }
    if strict && !skipped.is_empty() {
        return Err(EngineError::Plan(format!(
            "refusing to export (--strict): {} bad stored output(s): {}",
            skipped.len(),
            describe_bad(&skipped)
        )));
    }
    Ok((items, skipped))
}

/// `store S output N: problem; …` (the first ten, then a count).
pub fn describe_bad(bad: &[BadOutput]) -> String {
    let mut parts: Vec<String> = bad
        .iter()
        .take(10)
        .map(|b| format!("store {} output {}: {}", b.store.display(), b.id, b.problem))
        .collect();
    if bad.len() > 10 {
        parts.push(format!("and {} more", bad.len() - 10));
    }
    parts.join("; ")
}

/// Decimal digits of `n` (at least 1).
fn digits(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// The export name of output `oid` of run `run` in store `si`: `s<store>-r<run>-o<output>`,
/// each number zero-padded to the width of its maximum (stores in the export; runs and
/// outputs in the store), so names sort in run and output order.
pub fn item_name(si: usize, run: u64, oid: u64, widths: (usize, usize, usize)) -> String {
    let (ws, wr, wo) = widths;
    format!("s{si:0ws$}-r{run:0wr$}-o{oid:0wo$}")
}

/// Where an output's image file is: the recorded path when absolute; a relative one (stores
/// written before paths were recorded absolute) resolved against the store's folder, by
/// its longest tail that exists there (else the whole path joined to the folder).
pub fn source_file(store_path: &Path, recorded: &str) -> PathBuf {
    let rec = Path::new(recorded);
    if rec.is_absolute() {
        return rec.to_path_buf();
    }
    let dir = store_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    let parts: Vec<_> = rec.components().collect();
    for skip in 0..parts.len() {
        let tail: PathBuf = parts[skip..].iter().collect();
        let candidate = dir.join(&tail);
        if candidate.exists() {
            return candidate;
        }
    }
    dir.join(rec)
}

/// The given outputs of one store as export items (`si` numbers the store in the names; see
/// [`item_name`]).
pub fn items_from_store(store: &Store, si: usize, ids: &[u64]) -> Result<Vec<ExportItem>> {
    items_named(store, si, digits(si as u64), ids)
}

fn items_named(
    store: &Store,
    si: usize,
    store_digits: usize,
    ids: &[u64],
) -> Result<Vec<ExportItem>> {
    let path = store.path().to_path_buf();
    let runs = store.runs()?;
    let outputs: BTreeMap<u64, OutputRecord> = store.outputs(None)?.into_iter().collect();
    let widths = (
        store_digits,
        digits(outputs.values().map(|r| r.run_id).max().unwrap_or(0)),
        digits(outputs.keys().copied().max().unwrap_or(0)),
    );
    let mut items = Vec::new();
    for id in ids {
        let Some((oid, rec)) = outputs.get_key_value(id) else {
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
        let clean_png = store.output_clean_png(*oid)?;
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
            "source_file": source_file(&path, &rec.path).to_string_lossy(),
            "created": format_utc(rec.created_ms),
        });
        let label = if rec.label.trim().is_empty() {
            "defect".to_string()
        } else {
            rec.label.clone()
        };
        items.push(ExportItem {
            name: item_name(si, rec.run_id, *oid, widths),
            image_png: png,
            mask_png: mask,
            label,
            provenance,
            instance_png: store.output_instances_png(*oid)?,
            clean_png,
        });
    }
    Ok(items)
}

/// Exports the sound outputs of `stores` as `opts` says into `out` (which must be empty or new).
/// Returns the report and the bad outputs left out; `strict` refuses when any is bad.
pub fn export_stores(
    stores: &[PathBuf],
    opts: &ExportOptions,
    out: &Path,
    strict: bool,
) -> Result<(ExportReport, Vec<BadOutput>)> {
    let (items, skipped) = items_from_stores(stores, strict)?;
    if items.is_empty() {
        let why = if skipped.is_empty() {
            String::new()
        } else {
            format!(
                " ({} bad output(s) left out: {})",
                skipped.len(),
                describe_bad(&skipped)
            )
        };
        return Err(EngineError::Plan(format!(
            "the store(s) hold no outputs to export{why}"
        )));
    }
    let report = dataset::export(&items, opts, out).map_err(EngineError::Plan)?;
    Ok((report, skipped))
}
