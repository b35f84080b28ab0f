//! Ultralytics YOLO segmentation layout:
//!
//! ```text
//! images/train/<name>.png   labels/train/<name>.txt
//! images/val/<name>.png     labels/val/<name>.txt
//! data.yaml
//! ```
//!
//! One label line per instance: `class x1 y1 x2 y2 …`, class = index into the sorted defect
//! labels, points = the pixel centres `((x + 0.5) / w, (y + 0.5) / h)` of the instance's
//! polygon ([`super::polygons`]: one polygon per region, holes bridged in; at least three
//! points, so Ultralytics never reads a line as a box). Defect-free images get an empty
//! label file. The split is [`super::split`]'s; `data.yaml` has **no `path:`**, so
//! Ultralytics takes the yaml's own folder as the dataset root, from any working
//! directory; with no validation images, `val:` points at `images/train`.

use super::manifest::Entry;
use super::{Out, Prepared, Split};
use std::fmt::Write as _;

/// One label line for `polygon` (pixel-index vertices) of class `idx`.
pub(crate) fn label_line(idx: usize, polygon: &[(i64, i64)], width: u32, height: u32) -> String {
    let (w, h) = (f64::from(width), f64::from(height));
    let mut pts: Vec<(i64, i64)> = polygon.to_vec();
    while let (Some(&last), true) = (pts.last(), pts.len() < 3) {
        pts.push(last);
    }
    let mut text = format!("{idx}");
    for (x, y) in pts {
        let _ = write!(
            text,
            " {:.6} {:.6}",
            (x as f64 + 0.5) / w,
            (y as f64 + 0.5) / h
        );
    }
    text.push('\n');
    text
}

/// Writes images, label files and `data.yaml`; returns the manifest entries.
pub(crate) fn write(
    prepared: &[Prepared],
    categories: &[String],
    out: &mut Out,
) -> Result<Vec<Entry>, String> {
    let mut entries = Vec::with_capacity(prepared.len());
    for p in prepared {
        let part = p.split.name();
        let image = format!("images/{part}/{}.png", p.stem);
        let label_file = format!("labels/{part}/{}.txt", p.stem);
        let mut text = String::new();
        if let Some(class) = p.class.as_deref() {
            let idx = categories
                .iter()
                .position(|c| c == class)
                .ok_or_else(|| p.ctx(&format!("label {class:?} is not a category")))?;
            for inst in &p.instances {
                text.push_str(&label_line(idx, &inst.polygon, p.width, p.height));
            }
        }
        out.write(&image, &p.item.image_png)
            .map_err(|e| p.ctx(&e))?;
        out.write(&label_file, text.as_bytes())
            .map_err(|e| p.ctx(&e))?;
        let mut entry = Entry::new(p, image);
        entry.label_file = Some(label_file);
        entry.split = Some(part);
        entries.push(entry);
    }
    let has_val = prepared.iter().any(|p| p.split == Split::Val);
    out.write("data.yaml", data_yaml(categories, has_val).as_bytes())?;
    Ok(entries)
}

/// `data.yaml` text. Names are written as JSON strings, which are valid YAML
/// double-quoted scalars. No `path:` key: Ultralytics' `check_det_dataset` then uses the
/// yaml's folder as the root (a relative `path: .` would be taken from the working
/// directory).
pub(crate) fn data_yaml(categories: &[String], has_val: bool) -> String {
    let val = if has_val {
        "images/val"
    } else {
        "images/train"
    };
    let mut s = format!(
        "# Ultralytics YOLO segmentation dataset exported by Defect Studio.\n\
         # No 'path:' on purpose: Ultralytics then resolves train/val against this file's\n\
         # folder, from any working directory.\n\
         train: images/train\nval: {val}\n"
    );
    if categories.is_empty() {
        s.push_str("names: {}\n");
    } else {
        s.push_str("names:\n");
        for (i, c) in categories.iter().enumerate() {
            let quoted = serde_json::to_string(c).unwrap_or_else(|_| format!("\"{i}\""));
            let _ = writeln!(s, "  {i}: {quoted}");
        }
    }
    s
}
