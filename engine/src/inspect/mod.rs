//! The inspection loop (docs/ARCHITECTURE.md, §15): does the synthetic data help?
//!
//! - [`data`]: labelled image sets as users have them: plain class folders and every export
//!   layout we write (folder, COCO, YOLO, MVTec, anomalib folder), with masks where the layout
//!   has them, and a content hash of the set.
//! - [`net`]: EfficientNet-Lite0 as a trainable network (candle autograd, CPU or CUDA),
//!   started from its ImageNet weights; its encoder's multi-scale features feed the segmenter.
//! - [`augment`]: seeded augmentations (flip, rotate, colour jitter, random resized crop).
//! - [`classifier`]: `train-classifier` (good vs defect, or multi-class by label) as one job
//!   for the CLI and the studio, the trained model file, and scoring an image with it.
//! - [`segmenter`]: `train-segmenter`: a U-Net-style decoder on the Lite0 encoder, trained on
//!   image + mask pairs; it gives an anomaly map per image.
//! - [`model_file`]: a trained detector file (safetensors with our metadata) → a [`Scorer`].
//! - [`metrics`]: image AUROC, AP, best-threshold F1; pixel AUROC, AP and PRO (anomalib's
//!   `AUPRO`), equal to scikit-learn's and anomalib's; [`plot`]: ROC and PR curves as PNGs.
//! - [`evaluate`]: a detector on a held-out folder of real images → metrics, curves, and every
//!   image's path, label and score; stored with the model and data hashes.
//! - [`caption`]: image → prompt: exact captions of our own outputs from their recipes;
//!   [`blip`]: BLIP image captioning for photos, with weights the user provides.

use std::path::Path;
use std::sync::Arc;

use candle_core::Device;

use crate::error::Result;

pub mod augment;
pub mod blip;
pub mod caption;
pub mod classifier;
pub mod data;
pub mod evaluate;
pub mod metrics;
pub mod model_file;
pub mod net;
pub mod plot;
pub mod segmenter;

/// The label of defect-free images in every layout (`train/good`, class folder `good`).
pub const GOOD: &str = "good";

/// What a trained detector is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DetectorKind {
    /// Image → class probabilities (good vs defect, or one class per label).
    Classifier,
    /// Image → a per-pixel anomaly map (and an image score from it).
    Segmenter,
}

/// A per-pixel anomaly map in [0, 1], at the scored image's size, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct AnomalyMap {
    pub width: u32,
    pub height: u32,
    pub values: Vec<f32>,
}

/// What a detector says about one image.
#[derive(Clone, Debug, PartialEq)]
pub struct Score {
    /// The defect score in [0, 1]: the probability that the image is not good (a classifier),
    /// or the image score of the anomaly map (a segmenter). Higher = more defective.
    pub score: f32,
    /// The predicted label (one of [`Scorer::labels`]).
    pub label: String,
    /// Per-label probabilities, in [`Scorer::labels`] order (a segmenter: `[1 − s, s]`).
    pub probs: Vec<f32>,
    /// The anomaly map (segmenters only).
    pub map: Option<AnomalyMap>,
}

/// A trained detector, as `evaluate`, the `Classify` node and `FilterByScore` use it.
pub trait Scorer: Send + Sync {
    fn kind(&self) -> DetectorKind;
    /// The class labels, [`GOOD`] first when the model has it.
    fn labels(&self) -> &[String];
    /// sha256 (hex) of the model file.
    fn sha256(&self) -> &str;
    /// Scores a batch of RGB images (any size; each is preprocessed as the model was trained).
    fn score(&self, images: &[image::RgbImage]) -> Result<Vec<Score>>;
}

/// Loads a trained classifier or segmenter file (`train-classifier` / `train-segmenter`
/// output), telling them apart by its metadata; any other file is an error naming it.
pub fn load_scorer(path: &Path, device: &Device) -> Result<Arc<dyn Scorer>> {
    model_file::load(path, device)
}
