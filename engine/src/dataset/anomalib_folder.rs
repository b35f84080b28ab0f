//! anomalib `Folder` layout: the same items, splits and good images as the MVTec layout
//! ([`super::mvtec`], which plans both), in the four flat folders anomalib's `Folder`
//! datamodule reads.
//!
//! ```text
//! <out>/
//!   normal/NNN.png        good images of train items   (normal_dir)
//!   normal_test/NNN.png   good images of test items    (normal_test_dir)
//!   abnormal/NNN.png      defect images of test items  (abnormal_dir)
//!   mask/NNN_mask.png     their masks, 0/255 grey      (mask_dir)
//!   manifest.json         which item and label each file is
//! ```
//!
//! Read it with `Folder(name=…, root=<out>, normal_dir="normal", normal_test_dir="normal_test",
//! abnormal_dir="abnormal", mask_dir="mask")`.
//!
//! **What anomalib reads** (`make_folder_dataset` in
//! `anomalib/data/datasets/image/folder.py`, anomalib 2.7): every file under each folder
//! (recursively) whose extension is an image extension; all of them, masks included, are sorted
//! together by full path, and the masks, in that order, are assigned to the abnormal images in
//! that order; the check is only that the image's stem is contained in the mask's stem. So, as
//! in the MVTec layout, every number of the export has one width (at least 3 digits, more when
//! a folder holds 1,000 or more files), and `abnormal/` is flat (one numbering for every defect
//! label; the label is in the manifest). `normal/` is anomalib's train split, `normal_test/`
//! and `abnormal/` its test split.

use super::manifest::Entry;
use super::mvtec::{defect_entry, good_entry, num, Plan, Split};
use super::Out;

/// Writes the four folders; returns the manifest entries (one per image written).
pub(crate) fn write(plan: &Plan, out: &mut Out) -> Result<Vec<Entry>, String> {
    let (mut normal, mut normal_test, mut abnormal) = (0usize, 0usize, 0usize);
    let w = plan.folder_width;
    let mut entries = Vec::new();
    for it in &plan.items {
        let good = match it.good_png {
            Some(bytes) => {
                let counter = match it.split {
                    Split::Train => &mut normal,
                    Split::Test => &mut normal_test,
                };
                let folder = match it.split {
                    Split::Train => "normal",
                    Split::Test => "normal_test",
                };
                let image = format!("{folder}/{}.png", num(*counter, w));
                *counter += 1;
                out.write(&image, bytes).map_err(|e| it.p.ctx(&e))?;
                Some(image)
            }
            None => None,
        };
        if it.folder.is_some() && it.split == Split::Test {
            let n = num(abnormal, w);
            abnormal += 1;
            let image = format!("abnormal/{n}.png");
            let mask = format!("mask/{n}_mask.png");
            entries.push(defect_entry(it, image, mask, good.clone(), out)?);
        }
        if let Some(image) = good {
            entries.push(good_entry(it, image));
        }
    }
    Ok(entries)
}
