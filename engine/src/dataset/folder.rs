//! Folder layout: `images/<name>.png`, `masks/<name>_mask.png` (0/255 grey, all black
//! for defect-free items; with `keep_soft_masks` the mask's own 8-bit luma instead, see
//! [`Prepared::soft_mask_png`]), `manifest.json`.

use super::manifest::Entry;
use super::{Out, Prepared};

/// Writes images and binary masks; returns the manifest entries.
pub(crate) fn write(
    prepared: &[Prepared],
    keep_soft_masks: bool,
    out: &mut Out,
) -> Result<Vec<Entry>, String> {
    let mut entries = Vec::with_capacity(prepared.len());
    for p in prepared {
        let image = format!("images/{}.png", p.stem);
        let mask = format!("masks/{}_mask.png", p.stem);
        out.write(&image, &p.item.image_png)
            .map_err(|e| p.ctx(&e))?;
        let png = if keep_soft_masks {
            p.soft_mask_png()?
        } else {
            p.mask_png()?
        };
        out.write(&mask, &png).map_err(|e| p.ctx(&e))?;
        let mut entry = Entry::new(p, image);
        entry.mask = Some(mask);
        entries.push(entry);
    }
    Ok(entries)
}
