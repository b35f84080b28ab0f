//! MVTec-AD layout: `train/good/NNN.png` for defect-free items, `test/<label>/NNN.png`
//! for defect items with `ground_truth/<label>/NNN_mask.png` (0/255 grey). `NNN` counts
//! from 000 in each folder, in item order; `manifest.json` maps the item names.

use super::manifest::Entry;
use super::{sanitize, Out, Prepared};
use std::collections::HashMap;

/// Writes the MVTec tree; returns the manifest entries.
pub(crate) fn write(prepared: &[Prepared], out: &mut Out) -> Result<Vec<Entry>, String> {
    // Folder name per label; refuse labels that would share a folder.
    let mut folder_of: HashMap<&str, String> = HashMap::new();
    let mut owner: HashMap<String, &str> = HashMap::new();
    for p in prepared {
        if let Some(class) = p.class.as_deref() {
            if folder_of.contains_key(class) {
                continue;
            }
            let folder = sanitize(class);
            let key = folder.to_ascii_lowercase();
            if let Some(other) = owner.get(&key) {
                return Err(p.ctx(&format!(
                    "label {class:?} and label {other:?} map to the same MVTec folder {folder:?}"
                )));
            }
            if key == "good" {
                return Err(p.ctx(&format!(
                    "label {class:?} would use the reserved MVTec folder \"good\""
                )));
            }
            owner.insert(key, class);
            folder_of.insert(class, folder);
        }
    }
    let mut counters: HashMap<String, usize> = HashMap::new();
    let mut entries = Vec::with_capacity(prepared.len());
    for p in prepared {
        let folder = match p.class.as_deref() {
            Some(class) => folder_of
                .get(class)
                .cloned()
                .unwrap_or_else(|| sanitize(class)),
            None => "good".to_string(),
        };
        let counter = counters.entry(folder.clone()).or_insert(0);
        let num = format!("{:03}", *counter);
        *counter += 1;
        let mut entry;
        if p.class.is_some() {
            let image = format!("test/{folder}/{num}.png");
            let mask = format!("ground_truth/{folder}/{num}_mask.png");
            out.write(&image, &p.item.image_png)
                .map_err(|e| p.ctx(&e))?;
            out.write(&mask, &p.mask_png()?).map_err(|e| p.ctx(&e))?;
            entry = Entry::new(p, image);
            entry.mask = Some(mask);
        } else {
            let image = format!("train/good/{num}.png");
            out.write(&image, &p.item.image_png)
                .map_err(|e| p.ctx(&e))?;
            entry = Entry::new(p, image);
        }
        entries.push(entry);
    }
    Ok(entries)
}
