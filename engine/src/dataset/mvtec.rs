//! MVTec-AD layout, and the train/test plan it shares with the anomalib folder layout
//! ([`super::anomalib_folder`]).
//!
//! ```text
//! <out>/                          the category folder: anomalib's `MVTecAD(root=<out>/.., category=<out name>)`
//!   train/good/NNN.png            good images of train items
//!   test/good/NNN.png             good images of test items
//!   test/<label>/NNN.png          defect images of test items
//!   ground_truth/<label>/NNN_mask.png   their masks (0/255 grey)
//!   manifest.json
//! ```
//!
//! **What anomalib reads** (`make_mvtec_ad_dataset` in
//! `anomalib/data/datasets/image/mvtecad.py`, anomalib 2.7): it globs every `.png`/`.PNG` under
//! the category folder and takes the last three path parts as `split/label/file`; images with
//! label `good` are normal. Masks (`split == "ground_truth"`) and images are each sorted by
//! their full path as strings, and the sorted masks are assigned, in order, to the sorted
//! anomalous test images; the only check is that the image's stem is contained in the mask's
//! stem. So a mask pairs with its image only when both lists sort alike: within one export
//! every number has the same width, at least 3 digits and more when a folder holds 1,000 or
//! more images (`0999.png` ↔ `0999_mask.png`, `1000.png` ↔ `1000_mask.png`). Unpadded,
//! `1000.png` sorts after `100.png` but `1000_mask.png` before `100_mask.png`. No other PNG is
//! written under the export folder (a PNG at another depth would be misread). The category
//! folder itself is not required: the export folder is the category.
//!
//! **The items' images and the split.** An item's *good image* is its image when it is
//! defect-free (label `good` or an empty mask), else its clean image (SaveImage's `clean`
//! input), if any. Items are split into train and test, per label (stratified), seeded: within
//! each label the items that have a good image are ordered by `sha256(seed, file stem)` and the
//! first `ceil(n · val_fraction)` go to test. Defect items without a clean image always go to
//! test (they have no good image to give train). A test item writes its good image to
//! `test/good` and its defect image and mask to `test/<label>` / `ground_truth/<label>`; a train
//! item writes only its good image to `train/good`: MVTec's train split holds only good images,
//! so its defect image is left out (counted in [`super::ExportReport::left_out`]). An item's
//! images are thus always in one split. An export with no good image in train or in test is
//! refused. Numbers count from 0 in each folder, in item order; `manifest.json` maps them to
//! the items.

use super::manifest::Entry;
use super::{sanitize, ExportOptions, Out, Prepared};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};

/// Which split an item's images go to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Split {
    Train,
    Test,
}

impl Split {
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

/// One item of an anomaly export.
pub(crate) struct Planned<'p, 'a> {
    pub p: &'p Prepared<'a>,
    pub split: Split,
    /// The defect folder name (sanitised label) of a defect item; `None` for good items.
    pub folder: Option<String>,
    /// The item's good image: its own image when defect-free, else its clean image (checked:
    /// a decodable PNG of the item's size), if it has one.
    pub good_png: Option<&'a [u8]>,
}

/// The train/test plan of an anomaly export, shared by the MVTec and anomalib folder writers.
pub(crate) struct Plan<'p, 'a> {
    pub items: Vec<Planned<'p, 'a>>,
    /// Digits of every file number in the MVTec layout (its largest folder decides).
    pub mvtec_width: usize,
    /// Digits of every file number in the anomalib folder layout (`abnormal/` holds every
    /// defect image).
    pub folder_width: usize,
    /// Defect images left out (train items: only their good image is written).
    pub left_out: usize,
}

/// `n` zero-padded to `width` digits.
pub(crate) fn num(n: usize, width: usize) -> String {
    format!("{n:0width$}")
}

/// Digits needed so every number of a folder of `count` files has one width: at least 3, and
/// the digits of `count` itself (1,000 files → `0000` … `0999`).
pub(crate) fn width_for(count: usize) -> usize {
    count.to_string().len().max(3)
}

/// Checks the clean images, assigns every item a split and folder, and sizes the numbers.
pub(crate) fn plan<'p, 'a>(
    prepared: &'p [Prepared<'a>],
    opts: &ExportOptions,
) -> Result<Plan<'p, 'a>, String> {
    let f = opts.val_fraction;
    if !(0.0..=1.0).contains(&f) {
        return Err(format!(
            "the test fraction (val_fraction) must be between 0 and 1, not {f}"
        ));
    }
    let folders = defect_folders(prepared)?;
    let mut items = Vec::with_capacity(prepared.len());
    for p in prepared {
        let good_png = match &p.class {
            None => Some(p.item.image_png.as_slice()),
            Some(_) => match &p.item.clean_png {
                Some(bytes) => {
                    check_clean(p, bytes)?;
                    Some(bytes.as_slice())
                }
                None => None,
            },
        };
        items.push(Planned {
            p,
            split: Split::Test,
            folder: p
                .class
                .as_deref()
                .map(|c| folders.get(c).cloned().unwrap_or_else(|| sanitize(c))),
            good_png,
        });
    }
    // Stratified by label, seeded: per label, the items with a good image in hash order.
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, it) in items.iter().enumerate() {
        if it.good_png.is_some() {
            groups
                .entry(it.p.class.as_deref().unwrap_or("good"))
                .or_default()
                .push(i);
        }
    }
    for group in groups.values_mut() {
        group.sort_by_cached_key(|&i| split_key(opts.seed, &items[i].p.stem));
        let n = group.len();
        let test = ((n as f64 * f) - 1e-9).ceil().clamp(0.0, n as f64) as usize;
        for &i in &group[test..] {
            items[i].split = Split::Train;
        }
    }
    for split in [Split::Train, Split::Test] {
        if !items
            .iter()
            .any(|it| it.split == split && it.good_png.is_some())
        {
            let have = items.iter().filter(|it| it.good_png.is_some()).count();
            return Err(format!(
                "an anomaly dataset needs good images in train and in test, but {} would have \
                 none ({have} of {} item(s) have a good image: label \"good\", an empty mask, \
                 or a defect image with its clean image from SaveImage's `clean` input; test \
                 fraction {f}). Connect the image before the defect nodes to `clean`, or change \
                 the test fraction",
                split.name(),
                items.len()
            ));
        }
    }
    // One width for every folder of a layout: its largest folder decides.
    let mut counts: HashMap<(Split, Option<&str>), usize> = HashMap::new();
    let mut left_out = 0;
    for it in &items {
        if it.good_png.is_some() {
            *counts.entry((it.split, None)).or_default() += 1;
        }
        if let Some(folder) = &it.folder {
            match it.split {
                Split::Test => *counts.entry((Split::Test, Some(folder))).or_default() += 1,
                Split::Train => left_out += 1,
            }
        }
    }
    // The anomalib folder layout numbers all defect images in one folder.
    let defects = items
        .iter()
        .filter(|it| it.folder.is_some() && it.split == Split::Test)
        .count();
    let largest = counts.values().copied().max().unwrap_or(0);
    Ok(Plan {
        mvtec_width: width_for(largest),
        folder_width: width_for(largest.max(defects)),
        items,
        left_out,
    })
}

/// The sort key of an item within its label: `sha256(seed as 8 little-endian bytes ‖ stem)`.
fn split_key(seed: u64, stem: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(stem.as_bytes());
    h.finalize().into()
}

/// A clean image must be a PNG of the item's size.
fn check_clean(p: &Prepared, bytes: &[u8]) -> Result<(), String> {
    let img = ::image::load_from_memory_with_format(bytes, ::image::ImageFormat::Png)
        .map_err(|e| p.ctx(&format!("clean image is not a decodable PNG: {e}")))?;
    if (img.width(), img.height()) != (p.width, p.height) {
        return Err(p.ctx(&format!(
            "clean image is {}x{} but the image is {}x{}",
            img.width(),
            img.height(),
            p.width,
            p.height
        )));
    }
    Ok(())
}

/// The folder name of every defect label; refuses labels that would share a folder or use
/// the reserved `good`.
fn defect_folders<'a>(prepared: &[Prepared<'a>]) -> Result<HashMap<String, String>, String> {
    let mut folder_of: HashMap<String, String> = HashMap::new();
    let mut owner: HashMap<String, String> = HashMap::new();
    for p in prepared {
        let Some(class) = p.class.as_deref() else {
            continue;
        };
        if folder_of.contains_key(class) {
            continue;
        }
        let folder = sanitize(class);
        let key = folder.to_ascii_lowercase();
        if let Some(other) = owner.get(&key) {
            return Err(p.ctx(&format!(
                "label {class:?} and label {other:?} map to the same folder {folder:?}"
            )));
        }
        if key == "good" {
            return Err(p.ctx(&format!(
                "label {class:?} would use the reserved folder \"good\""
            )));
        }
        owner.insert(key, class.to_string());
        folder_of.insert(class.to_string(), folder);
    }
    Ok(folder_of)
}

/// The manifest entry of an item's good image.
pub(crate) fn good_entry(it: &Planned, image: String) -> Entry {
    let mut e = Entry::new(it.p, image);
    e.split = Some(it.split.name());
    if it.p.class.is_some() {
        e.clean_image = true;
        e.defect = false;
        e.instances = 0;
    }
    e
}

/// Writes a test item's defect image and its mask under the given names; returns its manifest
/// entry (`good`: where its clean image went, if anywhere).
pub(crate) fn defect_entry(
    it: &Planned,
    image: String,
    mask: String,
    good: Option<String>,
    out: &mut Out,
) -> Result<Entry, String> {
    out.write(&image, &it.p.item.image_png)
        .map_err(|e| it.p.ctx(&e))?;
    out.write(&mask, &it.p.mask_png()?)
        .map_err(|e| it.p.ctx(&e))?;
    let mut e = Entry::new(it.p, image);
    e.mask = Some(mask);
    e.clean = good;
    e.split = Some(it.split.name());
    Ok(e)
}

/// Writes the MVTec tree; returns the manifest entries (one per image written).
pub(crate) fn write(plan: &Plan, out: &mut Out) -> Result<Vec<Entry>, String> {
    let mut counters: HashMap<String, usize> = HashMap::new();
    let mut next = |folder: String| -> String {
        let c = counters.entry(folder.clone()).or_insert(0);
        let path = format!("{folder}/{}", num(*c, plan.mvtec_width));
        *c += 1;
        path
    };
    let mut entries = Vec::new();
    for it in &plan.items {
        let split = it.split.name();
        let good = match it.good_png {
            Some(bytes) => {
                let image = format!("{}.png", next(format!("{split}/good")));
                out.write(&image, bytes).map_err(|e| it.p.ctx(&e))?;
                Some(image)
            }
            None => None,
        };
        if let (Some(folder), Split::Test) = (&it.folder, it.split) {
            let stem = next(folder.clone());
            let image = format!("test/{stem}.png");
            let mask = format!("ground_truth/{stem}_mask.png");
            entries.push(defect_entry(it, image, mask, good.clone(), out)?);
        }
        if let Some(image) = good {
            entries.push(good_entry(it, image));
        }
    }
    Ok(entries)
}
