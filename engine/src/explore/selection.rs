//! "Export selection": the chosen items written as a dataset in one of our formats (folder,
//! COCO, YOLO, MVTec, anomalib folder) through the same exporter as `export`
//! (docs/ARCHITECTURE.md §5). Generated items bring their mask, instances and clean image;
//! imported photos have no mask, so they go in only with a `label:` tag (from their metadata
//! or added by hand: `label:good` for a defect-free photo); the others are left out and listed.

use std::path::Path;

use super::{Catalog, ItemSource};
use crate::dataset::{self, ExportItem, ExportOptions, ExportReport};
use crate::error::{EngineError, Result};

/// What [`export_selection`] did: the exporter's report and the items left out, with why.
#[derive(Clone, Debug)]
pub struct SelectionExport {
    pub report: ExportReport,
    pub left_out: Vec<(u64, String)>,
}

/// Writes the items `ids` into `out` (new or empty) as `opts` says.
pub fn export_selection(
    catalog: &Catalog,
    ids: &[u64],
    opts: &ExportOptions,
    out: &Path,
) -> Result<SelectionExport> {
    let store = catalog.store();
    let mut left_out = Vec::new();
    let mut outputs = Vec::new();
    let mut imported = Vec::new();
    for &id in ids {
        let Some(item) = catalog.item(id)? else {
            left_out.push((id, "no such item".to_string()));
            continue;
        };
        match (item.source, item.output_id) {
            (ItemSource::Generated, Some(out_id)) => outputs.push(out_id),
            (ItemSource::Imported, _) => {
                let label = item
                    .all_tags()
                    .find_map(|t| t.strip_prefix("label:"))
                    .map(str::to_string);
                let Some(label) = label else {
                    left_out.push((id, "an imported photo without a label: tag".to_string()));
                    continue;
                };
                let bytes = catalog.image_bytes(id)?.ok_or_else(|| {
                    EngineError::failed(format!("item {id}: image missing from the store"))
                })?;
                // PNG bytes go in as they are; other formats are decoded and written as PNG.
                let image_png = match crate::codec::decode_image(&bytes, &item.name) {
                    Ok(_) if bytes.starts_with(b"\x89PNG") => bytes,
                    Ok(img) => {
                        crate::codec::encode_image_png(&img, &[]).map_err(EngineError::failed)?
                    }
                    Err(e) => {
                        left_out.push((id, format!("unreadable: {e}")));
                        continue;
                    }
                };
                imported.push(ExportItem {
                    name: format!("item{id:06}"),
                    image_png,
                    mask_png: None,
                    label,
                    provenance: serde_json::json!({
                        "item": id, "dataset": item.dataset, "file": item.name, "sha256": item.sha256,
                    }),
                    instance_png: None,
                    clean_png: None,
                });
            }
            _ => left_out.push((id, "a generated item without its output".to_string())),
        }
    }
    let mut items = crate::export::items_from_store(store, 0, &outputs)?;
    items.extend(imported);
    if items.is_empty() {
        return Err(EngineError::Plan(format!(
            "nothing to export: none of the {} selected item(s) can be exported{}",
            ids.len(),
            left_out
                .first()
                .map(|(id, why)| format!(" (item {id}: {why})"))
                .unwrap_or_default()
        )));
    }
    let report = dataset::export(&items, opts, out).map_err(EngineError::Plan)?;
    Ok(SelectionExport { report, left_out })
}
