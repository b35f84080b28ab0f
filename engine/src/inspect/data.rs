//! Labelled image sets (being written by the `metrics` helper; the types below are the
//! contract other modules code against).

use std::path::{Path, PathBuf};

use crate::error::{EngineError, Result};

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

/// One labelled image.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub path: PathBuf,
    /// Its label: [`super::GOOD`] for defect-free images, else the defect label.
    pub label: String,
    /// Its ground-truth mask (white = defect), where the layout has one. Good images may have
    /// none (an all-black mask).
    pub mask: Option<PathBuf>,
    /// Which split the layout put it in (`train`, `val`, `test`), if any.
    pub split: Option<String>,
}

/// A labelled image set.
#[derive(Clone, Debug, PartialEq)]
pub struct LabeledSet {
    pub root: PathBuf,
    pub layout: Layout,
    pub samples: Vec<Sample>,
    /// The distinct labels, sorted, with [`super::GOOD`] first when present.
    pub labels: Vec<String>,
}

/// Reads the set in `dir`, recognising its layout.
pub fn read_dataset(dir: &Path) -> Result<LabeledSet> {
    Err(EngineError::Inspect(format!(
        "{}: reading data sets is being written",
        dir.display()
    )))
}
