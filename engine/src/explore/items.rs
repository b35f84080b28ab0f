//! Working out an item's automatic tags and numeric fields: from an output's records (run,
//! recipe snapshot, label, mask) for a generated item, and from any image file's A1111
//! `parameters` chunk (model, model hash, LoRAs) for both kinds.

use std::collections::{BTreeMap, HashMap};

use nodes::{GraphDoc, ParamValue, SeedValue};

use super::{ItemRecord, ItemSource};
use crate::store::{OutputRecord, RunRecord};

/// Adds `key:value` unless the value is empty (values are trimmed; tags are single-line).
pub(crate) fn push_tag(tags: &mut Vec<String>, key: &str, value: &str) {
    let v = value.trim().replace(['\n', '\r'], " ");
    if !v.is_empty() && !tags.iter().any(|t| t == &format!("{key}:{v}")) {
        tags.push(format!("{key}:{v}"));
    }
}

/// Model and LoRA tags from a PNG's A1111 `parameters` chunk (what every output carries, and
/// what A1111/Forge photos carry): `model:NAME`, `model_hash:AUTOV2`, `lora:NAME`,
/// `lora_hash:HASH`. Nothing for other files or unreadable chunks.
pub(crate) fn a1111_tags(png: &[u8], tags: &mut Vec<String>) {
    use crate::interop::{a1111, png_meta};
    if !png.starts_with(b"\x89PNG") {
        return;
    }
    let Ok(chunks) = png_meta::read_text_chunks(png) else {
        return;
    };
    let Some(text) = png_meta::find_text(&chunks, png_meta::A1111_KEYWORD) else {
        return;
    };
    let Ok(p) = a1111::parse_parameters(&text) else {
        return;
    };
    if let Some(m) = &p.model {
        push_tag(tags, "model", m);
    }
    if let Some(h) = &p.model_hash {
        push_tag(tags, "model_hash", h);
    }
    for l in &p.loras {
        push_tag(tags, "lora", &l.name);
    }
    for (name, hash) in &p.lora_hashes {
        push_tag(tags, "lora", name);
        push_tag(tags, "lora_hash", hash);
    }
}

/// Mask pixels (luma ≥ 128) and 8-connected regions of a mask PNG.
fn mask_stats(mask_png: &[u8]) -> Option<(f64, f64)> {
    let (w, h, rgb, _) = crate::codec::decode_rgb8(mask_png, "mask").ok()?;
    let on: Vec<bool> = rgb.chunks_exact(3).map(|p| p[0] >= 128).collect();
    let area = on.iter().filter(|&&b| b).count();
    let regions = crate::dataset::label_components(&on, w, h).comps.len();
    Some((area as f64, regions as f64))
}

/// The recipe's numeric parameters as `node.param` fields: the run's recipe snapshot with the
/// work item's overrides on top. Booleans count as 0/1; a fixed seed is its value.
fn recipe_fields(doc: Option<&GraphDoc>, overrides: &serde_json::Value) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    if let Some(doc) = doc {
        for (node, n) in &doc.nodes {
            for (param, v) in &n.params {
                let x = match v {
                    ParamValue::Int(i) => *i as f64,
                    ParamValue::Float(f) => *f,
                    ParamValue::Bool(b) => f64::from(u8::from(*b)),
                    ParamValue::Seed(SeedValue::Fixed { value }) => *value as f64,
                    _ => continue,
                };
                out.insert(format!("{node}.{param}"), x);
            }
        }
    }
    if let Some(map) = overrides.as_object() {
        for (k, v) in map {
            if let Some(x) = v.as_f64() {
                out.insert(k.clone(), x);
            } else if let Some(b) = v.as_bool() {
                out.insert(k.clone(), f64::from(u8::from(b)));
            }
        }
    }
    out.retain(|_, v| v.is_finite());
    out
}

/// Parsed recipe snapshots by run id, so a batch parses each run's recipe once.
pub(crate) type RunDocs = HashMap<u64, Option<(RunRecord, Option<GraphDoc>)>>;

/// The item of a stored output: its tags (source, graph, run, label, models) and fields
/// (size, mask area and regions, seed, created, the recipe's numeric parameters).
pub(crate) fn generated_item(
    out_id: u64,
    rec: &OutputRecord,
    png: Option<&[u8]>,
    mask_png: Option<&[u8]>,
    run: Option<&(RunRecord, Option<GraphDoc>)>,
) -> ItemRecord {
    let mut tags = vec!["source:generated".to_string()];
    if let Some((r, _)) = run {
        push_tag(&mut tags, "graph", &r.graph_name);
    }
    push_tag(&mut tags, "run", &rec.run_id.to_string());
    push_tag(&mut tags, "label", &rec.label);
    push_tag(&mut tags, "node", &rec.node);
    if let Some(png) = png {
        a1111_tags(png, &mut tags);
    }
    let mut fields = recipe_fields(run.and_then(|(_, d)| d.as_ref()), &rec.overrides);
    fields.insert("width".into(), f64::from(rec.width));
    fields.insert("height".into(), f64::from(rec.height));
    fields.insert("seed".into(), rec.seed as f64);
    fields.insert("created".into(), rec.created_ms as f64);
    fields.insert("item".into(), rec.item as f64);
    if let Some((area, regions)) = mask_png.and_then(mask_stats) {
        fields.insert("area".into(), area);
        fields.insert("defects".into(), regions);
    }
    ItemRecord {
        sha256: rec.sha256.clone(),
        source: ItemSource::Generated,
        output_id: Some(out_id),
        dataset: None,
        name: rec.path.clone(),
        created_ms: rec.created_ms,
        width: rec.width,
        height: rec.height,
        auto_tags: tags,
        tags: Vec::new(),
        fields,
    }
}

/// A run's record and parsed recipe snapshot.
pub(crate) fn run_doc(run: RunRecord) -> (RunRecord, Option<GraphDoc>) {
    let doc = GraphDoc::from_json(&run.graph_json).ok();
    (run, doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipe_fields_take_overrides() {
        let doc = GraphDoc::from_json(
            r#"{"format":"defect-studio/graph","version":1,"nodes":{"s":{"kind":"Texture","version":1,"params":{"width":3.5,"count":2,"label":"x"}}},"links":[]}"#,
        )
        .unwrap();
        let f = recipe_fields(Some(&doc), &serde_json::json!({"s.count": 5}));
        assert_eq!(f.get("s.width"), Some(&3.5));
        assert_eq!(f.get("s.count"), Some(&5.0));
        assert!(!f.contains_key("s.label"));
    }

    #[test]
    fn mask_stats_count_regions() {
        let mut px = vec![0u8; 16 * 8];
        for (x, y) in [(1, 1), (2, 1), (10, 5), (11, 6)] {
            px[y * 16 + x] = 255;
        }
        let png = crate::codec::encode_gray8_png(16, 8, &px).unwrap();
        assert_eq!(mask_stats(&png), Some((4.0, 2.0)));
    }
}
