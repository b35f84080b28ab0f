//! Ultralytics YOLO segmentation layout: `images/<name>.png`, `labels/<name>.txt` with
//! one line per instance (`class x1 y1 x2 y2 …`, coordinates normalised to 0..1, class
//! = index into the sorted defect labels), an empty label file for defect-free images,
//! and `data.yaml`.

use super::manifest::Entry;
use super::{Out, Prepared};
use std::fmt::Write as _;

/// Writes images, label files and `data.yaml`; returns the manifest entries.
pub(crate) fn write(
    prepared: &[Prepared],
    categories: &[String],
    out: &mut Out,
) -> Result<Vec<Entry>, String> {
    let mut entries = Vec::with_capacity(prepared.len());
    for p in prepared {
        let image = format!("images/{}.png", p.stem);
        let label_file = format!("labels/{}.txt", p.stem);
        let mut text = String::new();
        if let Some(class) = p.class.as_deref() {
            let idx = categories
                .iter()
                .position(|c| c == class)
                .ok_or_else(|| p.ctx(&format!("label {class:?} is not a category")))?;
            let (w, h) = (f64::from(p.width), f64::from(p.height));
            for inst in &p.instances {
                let _ = write!(text, "{idx}");
                for &(x, y) in &inst.polygon {
                    let _ = write!(text, " {:.6} {:.6}", f64::from(x) / w, f64::from(y) / h);
                }
                text.push('\n');
            }
        }
        out.write(&image, &p.item.image_png)
            .map_err(|e| p.ctx(&e))?;
        out.write(&label_file, text.as_bytes())
            .map_err(|e| p.ctx(&e))?;
        let mut entry = Entry::new(p, image);
        entry.label_file = Some(label_file);
        entries.push(entry);
    }
    out.write("data.yaml", data_yaml(categories).as_bytes())?;
    Ok(entries)
}

/// `data.yaml` text. Names are written as JSON strings, which are valid YAML
/// double-quoted scalars.
pub(crate) fn data_yaml(categories: &[String]) -> String {
    let mut s = String::from(
        "# Ultralytics YOLO segmentation dataset exported by Defect Studio.\n\
         # 'path: .' is relative; if your Ultralytics version resolves it against its\n\
         # datasets_dir, replace it with this folder's absolute path.\n\
         path: .\ntrain: images\nval: images\n",
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
