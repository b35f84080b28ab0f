//! Labelled image sets as users have them (docs/ARCHITECTURE.md, §15): one reader,
//! [`read_dataset`], recognises the layout of a folder by its content and gives every image
//! with its label, its ground-truth mask (where the layout has one) and its split.
//!
//! Recognised, in this order:
//! 1. our exports (`manifest.json`: `folder`, `coco`, `yolo`, `mvtec`, `anomalib-folder`):
//!    labels and splits from the manifest, masks from the layout's mask files, COCO RLE or
//!    YOLO polygons;
//! 2. a COCO `annotations.json` with `images/` (label = the category of the largest
//!    annotation, none = good), or a YOLO `data.yaml` with `images/` and `labels/`;
//! 3. an MVTec AD category folder (`train/good`, `test/<label>`,
//!    `ground_truth/<label>/<stem>_mask.png`), or anomalib's `Folder` layout (`normal/`,
//!    `normal_test/`, `abnormal/`, `mask/`);
//! 4. an image + mask folder pair (`images/` + `masks/`, same stems, `_mask` suffix allowed;
//!    a missing or empty mask = good, else `defect`);
//! 5. plain class folders `DIR/<label>/*.{png,jpg,jpeg,bmp,webp,tif,tiff}` (also one level of
//!    `train`/`val`/`test` above them).
//!
//! Only regular files are read: symlinks, FIFOs and devices are skipped and listed in
//! [`LabeledSet::skipped`]. Images and masks are decoded lazily ([`Sample::load_image`],
//! [`Sample::load_mask`]) through [`crate::codec`] under its limits; every error names the file.

mod read;
mod walk;

use std::path::{Path, PathBuf};

use crate::error::{EngineError, Result};
use crate::hashing::sha256_hex;

use super::GOOD;

/// Which layout a set was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// `DIR/<label>/*.png` (plain class folders; `good` = defect-free).
    ClassFolders,
    /// Our `export --format folder` (manifest.json).
    Folder,
    Coco,
    Yolo,
    /// MVTec AD category folder (`train/good`, `test/<label>`, `ground_truth/<label>`).
    Mvtec,
    /// anomalib `Folder` (`normal/`, `normal_test/`, `abnormal/`, `mask/`).
    AnomalibFolder,
    /// `DIR/images/*` with `DIR/masks/*` of the same stems (an empty or missing mask = good).
    ImageMask,
}

impl Layout {
    /// Whether the layout gives every image a ground-truth mask (good images: an empty one).
    pub fn has_masks(self) -> bool {
        !matches!(self, Layout::ClassFolders)
    }
}

/// A defect region given as a shape instead of a mask file (COCO and YOLO).
#[derive(Clone, Debug, PartialEq)]
pub enum MaskShape {
    /// COCO RLE counts (column-major, zeros first; a compressed string is decoded on reading)
    /// of a `width` × `height` mask.
    Rle {
        width: u32,
        height: u32,
        counts: Vec<u32>,
    },
    /// A polygon, vertices normalised to the image size (`x / width`, `y / height`, pixel
    /// centres at `(i + 0.5) / size`, as YOLO stores them); filled as `cv2.fillPoly` does.
    Polygon(Vec<(f64, f64)>),
}

/// One labelled image.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub path: PathBuf,
    /// Its label: [`super::GOOD`] for defect-free images, else the defect label.
    pub label: String,
    /// Its ground-truth mask file (white = defect), where the layout has one. Good images may
    /// have none (an all-black mask). Read it with [`Sample::load_mask`].
    pub mask: Option<PathBuf>,
    /// Its defect regions as shapes (COCO, YOLO), filled by [`Sample::load_mask`].
    pub shapes: Vec<MaskShape>,
    /// Which split the layout put it in (`train`, `val`, `test`), if any.
    pub split: Option<String>,
}

impl Sample {
    /// Whether the image is defect-free.
    pub fn is_good(&self) -> bool {
        self.label == GOOD
    }

    /// Decodes the image as 8-bit RGB (alpha dropped); errors name the file.
    pub fn load_image(&self) -> Result<image::RgbImage> {
        let bytes = walk::read_file(&self.path)?;
        let (w, h, rgb, _) = crate::codec::decode_rgb8(&bytes, &self.path.display().to_string())
            .map_err(EngineError::Inspect)?;
        image::RgbImage::from_raw(w, h, rgb).ok_or_else(|| {
            EngineError::Inspect(format!("{}: decoded to a wrong size", self.path.display()))
        })
    }

    /// The ground-truth mask for an image of `width` × `height`, binarised (luma ≥ 128 =
    /// defect, stored as 255): the mask file or the shapes; `None` when the sample has no
    /// mask information (class folders). A mask whose size differs from the image's is an
    /// error naming both files.
    pub fn load_mask(&self, width: u32, height: u32) -> Result<Option<image::GrayImage>> {
        let mut out = image::GrayImage::new(width, height);
        let mut any = false;
        if let Some(path) = &self.mask {
            let m = read::decode_mask(path)?;
            if m.dimensions() != (width, height) {
                return Err(EngineError::Inspect(format!(
                    "{}: the mask is {}x{} but its image {} is {width}x{height}",
                    path.display(),
                    m.width(),
                    m.height(),
                    self.path.display()
                )));
            }
            out = m;
            any = true;
        }
        for shape in &self.shapes {
            let filled = read::fill_shape(shape, width, height).map_err(|e| {
                EngineError::Inspect(format!("{}: its annotation: {e}", self.path.display()))
            })?;
            for (px, on) in out.pixels_mut().zip(filled) {
                if on {
                    px.0[0] = 255;
                }
            }
            any = true;
        }
        Ok(any.then_some(out))
    }
}

/// A labelled image set.
#[derive(Clone, Debug, PartialEq)]
pub struct LabeledSet {
    pub root: PathBuf,
    pub layout: Layout,
    pub samples: Vec<Sample>,
    /// The distinct labels, sorted, with [`super::GOOD`] first when present.
    pub labels: Vec<String>,
    /// Entries left out, each `path: why` (symlinks, FIFOs, other non-regular files).
    pub skipped: Vec<String>,
}

impl LabeledSet {
    /// Fails unless the set has at least `n` distinct labels (a classifier needs 2), naming
    /// the folder and the labels it has.
    pub fn require_classes(&self, n: usize) -> Result<()> {
        if self.labels.len() >= n {
            return Ok(());
        }
        Err(EngineError::Inspect(format!(
            "{}: needs at least {n} classes (for example good and defect images), found {} ({})",
            self.root.display(),
            self.labels.len(),
            if self.labels.is_empty() {
                "none".to_string()
            } else {
                self.labels.join(", ")
            }
        )))
    }

    /// Whether every sample has ground-truth mask information (good images: an empty mask;
    /// defect images: a mask file or shapes).
    pub fn has_masks(&self) -> bool {
        self.layout.has_masks()
            && self
                .samples
                .iter()
                .all(|s| s.is_good() || s.mask.is_some() || !s.shapes.is_empty())
    }

    /// The number of samples per label, in [`LabeledSet::labels`] order.
    pub fn counts(&self) -> Vec<(String, usize)> {
        self.labels
            .iter()
            .map(|l| {
                let n = self.samples.iter().filter(|s| &s.label == l).count();
                (l.clone(), n)
            })
            .collect()
    }
}

/// Reads the set in `dir`, recognising its layout (see the module docs). Fails, naming the
/// folder, when it is empty, unreadable or has no recognisable layout.
pub fn read_dataset(dir: &Path) -> Result<LabeledSet> {
    let mut set = read::read(dir)?;
    set.samples.sort_by(|a, b| a.path.cmp(&b.path));
    let mut labels: Vec<String> = set.samples.iter().map(|s| s.label.clone()).collect();
    labels.sort();
    labels.dedup();
    if let Some(i) = labels.iter().position(|l| l == GOOD) {
        let good = labels.remove(i);
        labels.insert(0, good);
    }
    set.labels = labels;
    Ok(set)
}

/// A content hash of the set: sha256 over its samples sorted by path relative to the root,
/// each as `relative path \0 label \0 image sha256 \0 mask sha256 (or "-") \0 shapes \n`.
/// Equal files under the same names and labels give the same hash wherever the folder is.
pub fn data_hash(set: &LabeledSet) -> Result<String> {
    let mut rows: Vec<String> = Vec::with_capacity(set.samples.len());
    for s in &set.samples {
        let rel = s
            .path
            .strip_prefix(&set.root)
            .unwrap_or(&s.path)
            .to_string_lossy()
            .replace('\\', "/");
        let image = sha256_hex(&walk::read_file(&s.path)?);
        let mask = match &s.mask {
            Some(m) => sha256_hex(&walk::read_file(m)?),
            None => "-".to_string(),
        };
        rows.push(format!(
            "{rel}\0{}\0{image}\0{mask}\0{:?}\n",
            s.label, s.shapes
        ));
    }
    rows.sort();
    Ok(sha256_hex(rows.concat().as_bytes()))
}
