//! Dataset export: turns generated defect images and their pixel-exact masks into
//! the on-disk layouts that training code reads.
//!
//! Entry point: [`export`] takes a slice of [`ExportItem`]s, the [`ExportOptions`] (format,
//! instance rule, split, mask threshold, soft masks) and an output directory (which must
//! be empty or absent), and returns an [`ExportReport`].
//!
//! | [`Format`] | layout |
//! |---|---|
//! | [`Format::Folder`] | `images/<name>.png`, `masks/<name>_mask.png` (0/255 grey, always written) |
//! | [`Format::Coco`] | `images/<name>.png`, `annotations.json` (instance segmentation, uncompressed RLE) |
//! | [`Format::Yolo`] | `images/{train,val}/<name>.png`, `labels/{train,val}/<name>.txt` (Ultralytics polygons), `data.yaml` |
//! | [`Format::Mvtec`] | `train/good/NNN.png`, `test/good/NNN.png`, `test/<label>/NNN.png`, `ground_truth/<label>/NNN_mask.png` (see `mvtec.rs`) |
//! | [`Format::AnomalibFolder`] | `normal/NNN.png`, `normal_test/NNN.png`, `abnormal/NNN.png`, `mask/NNN_mask.png` (see `anomalib_folder.rs`) |
//!
//! Every format also writes `manifest.json` (written last, so its presence marks a
//! complete export) with one entry per image: file paths, label, instance and region
//! counts, split (YOLO) and the item's provenance copied verbatim.
//!
//! Conventions:
//! * A mask pixel is *defect* when its 8-bit luma is ≥ `mask_threshold` (default 128; RGB
//!   masks are converted to luma first; alpha is ignored). `keep_soft_masks` writes the
//!   mask's own 8-bit luma where the format stores mask images (folder; MVTec ground truth);
//!   instances and labels always use the threshold.
//! * An item is defect-free when its label is `good` (case-insensitive) or its mask is
//!   absent or all black. A `good` item whose mask has defect pixels is an error.
//! * **Instances — one rule for COCO, YOLO and the manifest** ([`InstanceRule`]): with
//!   [`InstanceRule::Components`] (the default) each 8-connected region of the binarised
//!   mask is one instance: one COCO annotation, one YOLO line, one count in the manifest.
//!   With [`InstanceRule::PerDefect`] the generator's own instances are used (an item's
//!   `instance_png` map; a Stain with count 3 = 3 instances however many regions each
//!   has): each region goes to the instance id holding most of its pixels, and an
//!   instance with several regions is one COCO RLE and one YOLO line whose region
//!   polygons are joined as Ultralytics' `merge_multi_segment` joins them. Items without
//!   an instance map (painted or edited masks) fall back to components, counted in
//!   [`ExportReport::per_defect_fallbacks`].
//! * COCO segmentations are **uncompressed RLE** (`{"size": [h, w], "counts": [...]}`)
//!   in COCO's column-major (Fortran) order, starting with the count of zeros
//!   ([`rle_encode`], [`rle_decode`]), so masks stay pixel-exact even with holes.
//!   `pycocotools` reads these with `iscrowd: 0` through `mask.frPyObjects(segm, h, w)`
//!   (which `COCO.annToRLE` and detectron2's loader call for list counts). Reading
//!   ([`read_coco`]) also takes pycocotools' **compressed** RLE (string `counts`,
//!   [`rle_from_string`]), which other tools write.
//! * YOLO polygons run through the **centres of the region's boundary pixels**, holes
//!   joined by zero-width bridges, so that Ultralytics' `polygons2masks` (`cv2.fillPoly`
//!   at the image's size) gives back exactly the region (the rule and why:
//!   `polygons.rs`; [`rasterize_like_fillpoly`] mirrors it for tests).
//! * YOLO's train/val split is seeded and stratified by label (`split.rs`):
//!   `val_fraction` (default 0.2) of each label goes to `val`, at least one item of each
//!   label stays in `train`; 0 = no `val` folder and `data.yaml`'s `val:` points at
//!   `images/train`. `data.yaml` has no `path:` key, so Ultralytics resolves it from the
//!   yaml's own folder, from any working directory.
//! * **Dedupe:** an item whose image and mask bytes equal an earlier item's (a re-run of the
//!   same seeds) is left out and counted in [`ExportReport::duplicates`].
//! * Images are copied byte-for-byte (after checking that they decode), so 16-bit and
//!   RGBA images are kept as they are.
//!
//! [`read_coco`] reads an exported COCO dataset back and validates it.
//!
//! Nothing is written until every item has been decoded and checked, and the output
//! directory must be empty or absent: an existing dataset is never mixed with a new one.

mod anomalib_folder;
mod coco;
mod components;
mod contours;
mod folder;
mod manifest;
mod mvtec;
mod polygons;
mod rle;
mod split;
mod yolo;

#[cfg(test)]
mod tests;

pub use coco::{read_coco, CocoAnnotation, CocoCategory, CocoDataset, CocoImage, CocoSegmentation};
pub use components::components;
/// Component labelling for the explorer's mask fields (`defects`, `area`).
pub(crate) use components::label_components;
pub use contours::outer_contour;
pub use polygons::rasterize_like_fillpoly;
pub use rle::{rle_decode, rle_encode, rle_from_string, rle_to_string};
pub use split::Split;

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

/// One image of the dataset.
#[derive(Clone, Debug)]
pub struct ExportItem {
    /// Unique file stem, e.g. `"s0-r12-o345"`; sanitised to `[A-Za-z0-9._-]` on export.
    pub name: String,
    /// The image as PNG bytes (RGB or RGBA, 8 or 16 bit); copied verbatim.
    pub image_png: Vec<u8>,
    /// The defect mask as PNG (grey or RGB); luma ≥ 128 = defect. `None` = no mask.
    pub mask_png: Option<Vec<u8>>,
    /// Defect class, e.g. `"scratch"`; `"good"` (or an empty/all-black mask) = defect-free.
    pub label: String,
    /// Graph hash, node, seed, params, model hashes …; copied into the manifest verbatim.
    pub provenance: serde_json::Value,
    /// The generator's instance map as a 16-bit grey PNG (pixel value = instance id,
    /// 0 = none), same size as the mask; used by [`InstanceRule::PerDefect`]. `None` = the
    /// mask has no instance ids (painted or edited masks): components are used.
    pub instance_png: Option<Vec<u8>>,
    /// The item's defect-free image as PNG (SaveImage's `clean` input: the image before the
    /// defect nodes), same size as `image_png`. The anomaly layouts (MVTec, anomalib folder)
    /// write it as a good image in the item's split; other formats ignore it.
    pub clean_png: Option<Vec<u8>>,
}

/// An on-disk dataset layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `images/`, `masks/` (binary masks), `manifest.json`.
    Folder,
    /// COCO instance segmentation: `images/`, `annotations.json` (uncompressed RLE).
    Coco,
    /// Ultralytics YOLO segmentation: `images/`, `labels/`, `data.yaml`.
    Yolo,
    /// MVTec-AD layout: `train/good/`, `test/good/`, `test/<label>/`, `ground_truth/<label>/`.
    Mvtec,
    /// anomalib's `Folder` datamodule layout: `normal/`, `normal_test/`, `abnormal/`, `mask/`.
    AnomalibFolder,
}

impl Format {
    /// All formats, in a stable order.
    pub const ALL: [Format; 5] = [
        Format::Folder,
        Format::Coco,
        Format::Yolo,
        Format::Mvtec,
        Format::AnomalibFolder,
    ];

    /// Parses a format name (case-insensitive): `folder`, `coco`, `yolo`, `mvtec`
    /// (also `mvtec-ad`, `mvtec_ad`), `anomalib-folder` (also `anomalib_folder`).
    pub fn from_name(s: &str) -> Option<Format> {
        match s.trim().to_ascii_lowercase().as_str() {
            "folder" => Some(Format::Folder),
            "coco" => Some(Format::Coco),
            "yolo" => Some(Format::Yolo),
            "mvtec" | "mvtec-ad" | "mvtec_ad" => Some(Format::Mvtec),
            "anomalib-folder" | "anomalib_folder" => Some(Format::AnomalibFolder),
            _ => None,
        }
    }

    /// The canonical lower-case name, accepted by [`Format::from_name`].
    pub fn name(self) -> &'static str {
        match self {
            Format::Folder => "folder",
            Format::Coco => "coco",
            Format::Yolo => "yolo",
            Format::Mvtec => "mvtec",
            Format::AnomalibFolder => "anomalib-folder",
        }
    }
}

/// Which pixels form one defect instance (the same rule for COCO, YOLO and the manifest).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InstanceRule {
    /// Each connected region of the binarised mask is an instance.
    #[default]
    Components,
    /// The generator's own instances (one defect = one instance, however many regions).
    PerDefect,
}

impl InstanceRule {
    /// Both rules, in a stable order.
    pub const ALL: [InstanceRule; 2] = [InstanceRule::Components, InstanceRule::PerDefect];

    /// Parses `components` or `per-defect` (also `per_defect`), case-insensitive.
    pub fn from_name(s: &str) -> Option<InstanceRule> {
        match s.trim().to_ascii_lowercase().as_str() {
            "components" => Some(InstanceRule::Components),
            "per-defect" | "per_defect" => Some(InstanceRule::PerDefect),
            _ => None,
        }
    }

    /// The canonical name, accepted by [`InstanceRule::from_name`].
    pub fn name(self) -> &'static str {
        match self {
            InstanceRule::Components => "components",
            InstanceRule::PerDefect => "per-defect",
        }
    }
}

/// How [`export`] writes a dataset: the format and its options.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportOptions {
    pub format: Format,
    pub instances: InstanceRule,
    /// Fraction of items held out for validation / testing.
    pub val_fraction: f64,
    /// Seed of the train/val split.
    pub seed: u64,
    /// A mask pixel is defect when its 8-bit luma is at least this.
    pub mask_threshold: u8,
    /// Keep 8-bit soft masks where the format allows.
    pub keep_soft_masks: bool,
}

impl From<Format> for ExportOptions {
    fn from(format: Format) -> Self {
        ExportOptions {
            format,
            instances: InstanceRule::default(),
            val_fraction: 0.2,
            seed: 0,
            mask_threshold: 128,
            keep_soft_masks: false,
        }
    }
}

/// What [`export`] wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportReport {
    /// Number of images written.
    pub images: usize,
    /// Number of defect instances over all images (by the options' [`InstanceRule`]).
    pub instances: usize,
    /// Items left out because an earlier item had the same image and mask bytes.
    pub duplicates: usize,
    /// Defect items that fell back to components under [`InstanceRule::PerDefect`] because
    /// their mask carries no instance ids.
    pub per_defect_fallbacks: usize,
    /// Images in the validation split (YOLO; 0 for the other formats).
    pub val_images: usize,
    /// Defect categories, sorted; `good` is never a category.
    pub categories: Vec<String>,
    /// Every file written, in write order (`manifest.json` last).
    pub files: Vec<PathBuf>,
    /// Defect images not written: the anomaly layouts' train split holds only good images, so
    /// a train item gives its clean image and leaves its defect image out.
    pub left_out: usize,
}

/// Exports `items` to `out` in `format`.
///
/// `out` must be an empty directory or not exist yet (it is then created). All items
/// are decoded and checked before anything is written. Errors (undecodable PNG, mask
/// size different from the image size, empty item list, non-empty or unwritable
/// output directory, …) are returned as a message naming the item or path concerned.
pub fn export(
    items: &[ExportItem],
    opts: &ExportOptions,
    out: &Path,
) -> Result<ExportReport, String> {
    let format = opts.format;
    if items.is_empty() {
        return Err("nothing to export: the item list is empty".to_string());
    }
    check_output_dir(out)?;
    split::check_fraction(opts.val_fraction)?;
    let (mut prepared, duplicates) = prepare(items, opts)?;
    if format == Format::Yolo {
        split::assign(&mut prepared, opts.val_fraction, opts.seed);
    }
    let categories = categories(&prepared);
    // The anomaly layouts' split and clean images are checked before anything is written too.
    let anomaly = match format {
        Format::Mvtec | Format::AnomalibFolder => Some(mvtec::plan(&prepared, opts)?),
        _ => None,
    };
    fs::create_dir_all(out)
        .map_err(|e| format!("cannot create output directory {}: {e}", out.display()))?;
    let mut writer = Out::new(out);
    let left_out = anomaly.as_ref().map_or(0, |plan| plan.left_out);
    let entries = match (format, &anomaly) {
        (Format::Folder, _) => folder::write(&prepared, opts.keep_soft_masks, &mut writer)?,
        (Format::Coco, _) => coco::write(&prepared, &categories, &mut writer)?,
        (Format::Yolo, _) => yolo::write(&prepared, &categories, &mut writer)?,
        (Format::Mvtec, Some(plan)) => mvtec::write(plan, &mut writer)?,
        (Format::AnomalibFolder, Some(plan)) => anomalib_folder::write(plan, &mut writer)?,
        (Format::Mvtec | Format::AnomalibFolder, None) => {
            return Err("internal error: no train/test plan for an anomaly layout".to_string())
        }
    };
    // Counted over what was written (an anomaly layout may leave train defect images out).
    let images = entries.len();
    let instances = entries.iter().map(|e| e.instances).sum();
    manifest::write(opts, &categories, instances, entries, &mut writer)?;
    Ok(ExportReport {
        images,
        instances,
        duplicates,
        per_defect_fallbacks: prepared.iter().filter(|p| p.per_defect_fallback).count(),
        val_images: prepared.iter().filter(|p| p.split == Split::Val).count(),
        categories,
        files: writer.files,
        left_out,
    })
}

/// One defect instance (8-connected component) of an item's mask.
pub(crate) struct Instance {
    /// COCO bbox `[x, y, w, h]` in pixels.
    pub bbox: [u32; 4],
    /// Pixel count.
    pub area: u64,
    /// Full-image uncompressed RLE (column-major).
    pub rle: Vec<u32>,
    /// YOLO polygon: pixel-index vertices (written as pixel centres), holes and regions
    /// joined by zero-width bridges ([`polygons`]).
    pub polygon: Vec<(i64, i64)>,
    /// Number of connected regions in the instance.
    pub regions: usize,
}

/// An item after decoding and checking.
pub(crate) struct Prepared<'a> {
    pub item: &'a ExportItem,
    pub index: usize,
    /// Sanitised, unique file stem.
    pub stem: String,
    pub width: u32,
    pub height: u32,
    /// Defect class; `None` for defect-free items.
    pub class: Option<String>,
    /// RLE of the whole binarised mask (all zeros for defect-free items).
    pub mask_rle: Vec<u32>,
    pub instances: Vec<Instance>,
    /// Train or val (YOLO; always train for the other formats).
    pub split: Split,
    /// Per-defect instances were asked for but the item has no instance map.
    pub per_defect_fallback: bool,
}

impl Prepared<'_> {
    /// Prefixes a message with the item's index and name.
    pub fn ctx(&self, msg: &str) -> String {
        item_ctx(self.index, &self.item.name, msg)
    }

    /// The binarised mask as a 0/255 greyscale PNG.
    pub fn mask_png(&self) -> Result<Vec<u8>, String> {
        let mask = rle_decode(&self.mask_rle, self.width, self.height).map_err(|e| self.ctx(&e))?;
        let grey: Vec<u8> = mask.iter().map(|&v| if v { 255 } else { 0 }).collect();
        let mut png = Vec::new();
        ::image::ImageEncoder::write_image(
            ::image::codecs::png::PngEncoder::new(&mut png),
            &grey,
            self.width,
            self.height,
            ::image::ExtendedColorType::L8,
        )
        .map_err(|e| self.ctx(&format!("cannot encode mask PNG: {e}")))?;
        Ok(png)
    }
}

impl Prepared<'_> {
    /// The mask as an 8-bit grey PNG of its own luma (soft edges kept; `--keep-soft-masks`):
    /// the given bytes when already 8-bit grey, else converted; all black without a mask.
    pub fn soft_mask_png(&self) -> Result<Vec<u8>, String> {
        let Some(bytes) = &self.item.mask_png else {
            return self.mask_png();
        };
        let m = ::image::load_from_memory_with_format(bytes, ::image::ImageFormat::Png)
            .map_err(|e| self.ctx(&format!("mask is not a decodable PNG: {e}")))?;
        if let ::image::DynamicImage::ImageLuma8(_) = m {
            return Ok(bytes.clone());
        }
        let grey = m.to_luma8();
        let mut png = Vec::new();
        ::image::ImageEncoder::write_image(
            ::image::codecs::png::PngEncoder::new(&mut png),
            grey.as_raw(),
            self.width,
            self.height,
            ::image::ExtendedColorType::L8,
        )
        .map_err(|e| self.ctx(&format!("cannot encode mask PNG: {e}")))?;
        Ok(png)
    }
}

fn item_ctx(index: usize, name: &str, msg: &str) -> String {
    format!("item #{index} {name:?}: {msg}")
}

/// True for the defect-free label.
fn is_good_label(label: &str) -> bool {
    label.trim().eq_ignore_ascii_case("good")
}

/// Makes a safe file stem: keeps `[A-Za-z0-9._-]`, replaces anything else with `_`,
/// drops leading dots, caps the length and avoids Windows device names.
pub(crate) fn sanitize(s: &str) -> String {
    let mut out: String = s
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .skip_while(|&c| c == '.')
        .take(120)
        .collect();
    if out.is_empty() {
        out.push_str("item");
    }
    let base = out.split('.').next().unwrap_or("").to_ascii_uppercase();
    let reserved = ["CON", "PRN", "AUX", "NUL"];
    let numbered = (base.starts_with("COM") || base.starts_with("LPT"))
        && base.len() == 4
        && base.as_bytes()[3].is_ascii_digit();
    if reserved.contains(&base.as_str()) || numbered {
        out.insert(0, '_');
    }
    out
}

/// Refuses an output path that exists and is not an empty directory.
pub(crate) fn check_output_dir(out: &Path) -> Result<(), String> {
    match fs::metadata(out) {
        Ok(md) if !md.is_dir() => Err(format!(
            "output path {} exists and is not a directory",
            out.display()
        )),
        Ok(_) => {
            let mut entries = fs::read_dir(out)
                .map_err(|e| format!("cannot read output directory {}: {e}", out.display()))?;
            match entries.next() {
                None => Ok(()),
                Some(entry) => {
                    let what = entry
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .unwrap_or_else(|_| "an entry".to_string());
                    Err(format!(
                        "output directory {} is not empty (it contains {what:?}); refusing to \
                         mix datasets: choose an empty or new directory",
                        out.display()
                    ))
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("cannot access output path {}: {e}", out.display())),
    }
}

/// Decodes and checks every item, computing masks and instances. Items whose image and
/// mask bytes equal an earlier item's are left out (dedupe by content); their count is
/// returned with the prepared items.
fn prepare<'a>(
    items: &'a [ExportItem],
    opts: &ExportOptions,
) -> Result<(Vec<Prepared<'a>>, usize), String> {
    let mut taken: HashSet<String> = HashSet::new();
    let mut seen: HashSet<(String, Option<String>)> = HashSet::new();
    let mut duplicates = 0;
    let mut prepared = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let ctx = |msg: &str| item_ctx(index, &item.name, msg);
        let content = (
            crate::hashing::sha256_hex(&item.image_png),
            item.mask_png.as_deref().map(crate::hashing::sha256_hex),
        );
        if !seen.insert(content) {
            duplicates += 1;
            continue;
        }
        let img = ::image::load_from_memory_with_format(&item.image_png, ::image::ImageFormat::Png)
            .map_err(|e| ctx(&format!("image is not a decodable PNG: {e}")))?;
        let (width, height) = (img.width(), img.height());
        drop(img);
        let n = width as usize * height as usize;
        let mask: Vec<bool> = match &item.mask_png {
            None => vec![false; n],
            Some(bytes) => {
                let m = ::image::load_from_memory_with_format(bytes, ::image::ImageFormat::Png)
                    .map_err(|e| ctx(&format!("mask is not a decodable PNG: {e}")))?;
                if (m.width(), m.height()) != (width, height) {
                    return Err(ctx(&format!(
                        "mask is {}x{} but the image is {width}x{height}",
                        m.width(),
                        m.height()
                    )));
                }
                m.to_luma8()
                    .as_raw()
                    .iter()
                    .map(|&v| v >= opts.mask_threshold)
                    .collect()
            }
        };
        let defect_pixels = mask.iter().filter(|&&v| v).count();
        let label = item.label.trim();
        let class = if defect_pixels == 0 {
            None
        } else if is_good_label(label) {
            return Err(ctx(&format!(
                "labelled \"good\" but its mask has {defect_pixels} defect pixels"
            )));
        } else if label.is_empty() {
            return Err(ctx("the mask has defect pixels but the label is empty"));
        } else {
            Some(label.to_string())
        };
        let ids = match (&item.instance_png, opts.instances) {
            (Some(bytes), InstanceRule::PerDefect) if class.is_some() => {
                Some(decode_instance_map(bytes, width, height).map_err(|e| ctx(&e))?)
            }
            _ => None,
        };
        let per_defect_fallback =
            class.is_some() && opts.instances == InstanceRule::PerDefect && ids.is_none();
        let instances = if class.is_some() {
            instances(&mask, width, height, opts.instances, ids.as_deref())
        } else {
            Vec::new()
        };
        let mask_rle = rle_encode(&mask, width, height);
        let mut stem = sanitize(&item.name);
        let mut k = 1;
        while !taken.insert(stem.to_ascii_lowercase()) {
            stem = format!("{}-{index}-{k}", sanitize(&item.name));
            k += 1;
        }
        prepared.push(Prepared {
            item,
            index,
            stem,
            width,
            height,
            class,
            mask_rle,
            instances,
            split: Split::Train,
            per_defect_fallback,
        });
    }
    Ok((prepared, duplicates))
}

/// Decodes an instance map PNG (16- or 8-bit grey) of the image's size.
fn decode_instance_map(bytes: &[u8], width: u32, height: u32) -> Result<Vec<u32>, String> {
    let m = ::image::load_from_memory_with_format(bytes, ::image::ImageFormat::Png)
        .map_err(|e| format!("instance map is not a decodable PNG: {e}"))?;
    if (m.width(), m.height()) != (width, height) {
        return Err(format!(
            "instance map is {}x{} but the image is {width}x{height}",
            m.width(),
            m.height()
        ));
    }
    Ok(m.to_luma16()
        .as_raw()
        .iter()
        .map(|&v| u32::from(v))
        .collect())
}

/// Splits a binarised mask into instances with bbox, area, RLE and YOLO polygon, by `rule`
/// (see the module documentation). `ids` is the generator's per-pixel instance map (0 = none),
/// used by [`InstanceRule::PerDefect`]; without one, components are used.
fn instances(
    mask: &[bool],
    width: u32,
    height: u32,
    rule: InstanceRule,
    ids: Option<&[u32]>,
) -> Vec<Instance> {
    let lab = components::label_components(mask, width, height);
    // Groups of components, one group per instance.
    let groups: Vec<Vec<usize>> = match (rule, ids) {
        (InstanceRule::PerDefect, Some(ids)) => {
            // Each component goes to the generator instance holding most of its pixels
            // (components with no id at all become instances of their own).
            let mut by_id: std::collections::BTreeMap<u32, Vec<usize>> = Default::default();
            let mut votes: Vec<std::collections::BTreeMap<u32, u64>> =
                vec![Default::default(); lab.comps.len()];
            for (i, &l) in lab.labels.iter().enumerate() {
                if l > 0 {
                    let id = ids.get(i).copied().unwrap_or(0);
                    *votes[l as usize - 1].entry(id).or_default() += 1;
                }
            }
            let mut alone = Vec::new();
            for (k, v) in votes.iter().enumerate() {
                let best = v
                    .iter()
                    .filter(|(&id, _)| id != 0)
                    .max_by_key(|(&id, &n)| (n, std::cmp::Reverse(id)))
                    .map(|(&id, _)| id);
                match best {
                    Some(id) => by_id.entry(id).or_default().push(k),
                    None => alone.push(vec![k]),
                }
            }
            let mut groups: Vec<Vec<usize>> = by_id.into_values().chain(alone).collect();
            groups.sort_by_key(|g| g.first().copied().unwrap_or(usize::MAX));
            groups
        }
        _ => (0..lab.comps.len()).map(|k| vec![k]).collect(),
    };
    groups
        .into_iter()
        .filter(|g| !g.is_empty())
        .map(|g| {
            let bb = g
                .iter()
                .map(|&k| lab.comps[k].bbox)
                .fold((u32::MAX, u32::MAX, 0, 0), |a, b| {
                    (a.0.min(b.0), a.1.min(b.1), a.2.max(b.2), a.3.max(b.3))
                });
            let area = g.iter().map(|&k| lab.comps[k].area).sum();
            let member = |x: i64, y: i64| g.iter().any(|&k| lab.is(k, x, y));
            let rle = rle::rle_encode_in_box(width, height, bb, |x, y| {
                member(i64::from(x), i64::from(y))
            });
            let regions = g
                .iter()
                .map(|&k| polygons::region_polygon(&lab, k))
                .collect();
            let (x0, y0, x1, y1) = bb;
            Instance {
                bbox: [x0, y0, x1 - x0 + 1, y1 - y0 + 1],
                area,
                rle,
                polygon: polygons::compress(&polygons::merge_regions(regions)),
                regions: g.len(),
            }
        })
        .collect()
}

/// Sorted, distinct defect classes of the prepared items.
fn categories(prepared: &[Prepared]) -> Vec<String> {
    let mut cats: Vec<String> = prepared.iter().filter_map(|p| p.class.clone()).collect();
    cats.sort();
    cats.dedup();
    cats
}

/// Writes files under the output root and records their paths.
pub(crate) struct Out {
    root: PathBuf,
    made: HashSet<PathBuf>,
    /// Every file written so far.
    pub files: Vec<PathBuf>,
}

impl Out {
    fn new(root: &Path) -> Self {
        Out {
            root: root.to_path_buf(),
            made: HashSet::new(),
            files: Vec::new(),
        }
    }

    /// Writes `bytes` to a new file `rel` (a `/`-separated path under the root), creating
    /// folders. Never writes through a symbolic link or over an existing file
    /// ([`crate::paths::real_dirs`], [`crate::paths::write_new_file`]).
    pub fn write(&mut self, rel: &str, bytes: &[u8]) -> Result<(), String> {
        let rel = Path::new(rel);
        let parent = rel.parent().unwrap_or(Path::new(""));
        let dir = self.root.join(parent);
        if self.made.insert(dir.clone()) {
            crate::paths::real_dirs(&self.root, parent)
                .map_err(|e| format!("cannot create directory {}: {e}", dir.display()))?;
        }
        let path = self.root.join(rel);
        crate::paths::write_new_file(&path, bytes)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        self.files.push(path);
        Ok(())
    }
}
