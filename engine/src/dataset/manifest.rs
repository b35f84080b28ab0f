//! `manifest.json`: one entry per exported image with its files, label, instance
//! count and the item's provenance verbatim.

use super::{ExportOptions, InstanceRule, Out, Prepared};
use serde::Serialize;

/// One image in `manifest.json`.
#[derive(Serialize)]
pub(crate) struct Entry {
    /// The item's name as given.
    pub name: String,
    /// The item's label as given.
    pub label: String,
    /// Whether the image has at least one defect instance.
    pub defect: bool,
    /// Defect instances (by the export's instance rule): one COCO annotation and one YOLO
    /// line each.
    pub instances: usize,
    /// Connected regions (8-connected) of the binarised mask over all instances.
    pub regions: usize,
    pub width: u32,
    pub height: u32,
    /// Image path relative to the dataset root.
    pub image: String,
    /// Mask path, where the format writes one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask: Option<String>,
    /// YOLO label file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label_file: Option<String>,
    /// COCO image id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coco_image_id: Option<u64>,
    /// The item's defect-free image (its `clean` input), where the format writes one beside
    /// the defect image (anomaly layouts, test split).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clean: Option<String>,
    /// True when `image` is the item's defect-free image, not its output (anomaly layouts).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub clean_image: bool,
    /// The split the image belongs to, where the format has one (`train`/`val` for YOLO,
    /// `train`/`test` for the anomaly layouts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split: Option<&'static str>,
    pub provenance: serde_json::Value,
}

impl Entry {
    /// An entry for `p` with its image path; format-specific fields left empty.
    pub fn new(p: &Prepared, image: String) -> Self {
        Entry {
            name: p.item.name.clone(),
            label: p.item.label.clone(),
            defect: p.class.is_some(),
            instances: p.instances.len(),
            regions: p.instances.iter().map(|i| i.regions).sum(),
            width: p.width,
            height: p.height,
            image,
            mask: None,
            label_file: None,
            coco_image_id: None,
            clean: None,
            clean_image: false,
            split: None,
            provenance: p.item.provenance.clone(),
        }
    }
}

#[derive(Serialize)]
struct Manifest<'a> {
    format: &'static str,
    generator: &'static str,
    created: String,
    note: String,
    images: usize,
    instances: usize,
    categories: &'a [String],
    items: Vec<Entry>,
}

/// Writes `manifest.json` (call last: its presence marks a complete export).
pub(crate) fn write(
    opts: &ExportOptions,
    categories: &[String],
    instances: usize,
    items: Vec<Entry>,
    out: &mut Out,
) -> Result<(), String> {
    let manifest = Manifest {
        format: opts.format.name(),
        generator: "Defect Studio dataset export",
        created: now_utc(),
        note: format!(
            "Synthetic defect images with pixel-exact masks. Mask pixels with luma >= {} are \
             defects. Instances ({}): {}. 'regions' counts the 8-connected mask regions. \
             'provenance' is copied verbatim from the generator; its 'source_file' is the \
             absolute path the output was saved to (stores written with relative paths are \
             resolved against the store's folder).",
            opts.mask_threshold,
            opts.instances.name(),
            match opts.instances {
                InstanceRule::Components =>
                    "each 8-connected region of the binarised mask is \
                    one instance (one COCO annotation, one YOLO line)",
                InstanceRule::PerDefect =>
                    "the generator's own instances (one COCO RLE and \
                    one YOLO line each, its regions joined as Ultralytics' \
                    merge_multi_segment does); masks without instance ids use regions",
            }
        ),
        images: items.len(),
        instances,
        categories,
        items,
    };
    let json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| format!("cannot serialise manifest.json: {e}"))?;
    out.write("manifest.json", &json)
}

/// The current time as ISO-8601 UTC (`YYYY-MM-DDTHH:MM:SSZ`).
pub(crate) fn now_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
