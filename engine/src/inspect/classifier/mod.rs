//! `train-classifier`: fine-tunes EfficientNet-Lite0 ([`super::net`]) from its ImageNet
//! weights on a labelled set, good vs defect or one class per label (docs/ARCHITECTURE.md,
//! §15). One job ([`run_classifier`]) serves the CLI and the studio: it reports
//! [`DetectorEvent`]s, stops within one step when cancelled, checkpoints every epoch (a killed
//! run resumes to the same weights), records the run with its curves in the store
//! ([`crate::store::TrainingRecord`], kind `classifier`), and writes the model file
//! ([`super::model_file`]).
//!
//! **Recipe.** The set is read by [`super::data::read_dataset`] (any layout). A seeded
//! stratified split holds out `val_fraction` of every class. Each epoch draws as many samples
//! as the training split has, classes balanced (a class uniformly, then one of its images),
//! augments them ([`super::augment`]), and takes AdamW steps on the mean cross-entropy (dropout
//! 0.2 before the head). After each epoch the validation loss, accuracy and balanced accuracy
//! are measured; training stops early when the validation loss has not improved for
//! `patience` epochs, and the model file holds the weights of the best validation loss (the
//! last epoch's without a validation split).
//!
//! **Determinism.** Every random draw comes from an RNG derived from (seed, purpose, epoch,
//! step or sample), never from a running stream; kernels sum in fixed orders. The same seed
//! and data give bit-identical weights, and a run resumed from its epoch-k checkpoint (weights,
//! AdamW moments, best weights, history) equals an uninterrupted one.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::augment::Augment;
use crate::error::{EngineError, Result};
use crate::store::EpochMetrics;

pub(crate) mod optim;
mod train;

pub use train::{run_classifier, DEFECT};
pub(crate) use train::{snapshot, Recorder};

/// The settings of a classifier training: the CLI's flags and the panel's form come from this
/// one struct (its serialised names are the flags, with `-` for `_`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClassifierConfig {
    /// Epochs at most (early stopping may end sooner).
    pub epochs: usize,
    /// Images per optimizer step.
    pub batch: usize,
    /// AdamW learning rate.
    pub lr: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// Network input side, a multiple of 32.
    pub size: u32,
    /// Share of each class held out for validation (0 = none: no early stopping).
    pub val_fraction: f64,
    /// Stop when the validation loss has not improved for this many epochs (0 = never).
    pub patience: usize,
    pub seed: u64,
    /// One class per label instead of good vs defect.
    pub multiclass: bool,
    pub augment: Augment,
}

impl Default for ClassifierConfig {
    fn default() -> ClassifierConfig {
        ClassifierConfig {
            epochs: 20,
            batch: 16,
            lr: 1e-4,
            weight_decay: 0.01,
            size: 224,
            val_fraction: 0.2,
            patience: 5,
            seed: 0,
            multiclass: false,
            augment: Augment::default(),
        }
    }
}

impl ClassifierConfig {
    /// Refuses settings that cannot train, naming the setting.
    pub fn check(&self) -> Result<()> {
        let bad = |m: String| Err(EngineError::Inspect(format!("train-classifier: {m}")));
        if self.epochs == 0 {
            return bad("--epochs must be at least 1".into());
        }
        if self.batch == 0 {
            return bad("--batch must be at least 1".into());
        }
        if self.size < 32 || self.size % 32 != 0 || self.size > 1024 {
            return bad(format!(
                "--size {} must be a multiple of 32 from 32 to 1024",
                self.size
            ));
        }
        if !(0.0..0.9).contains(&self.val_fraction) {
            return bad(format!(
                "--val-fraction {} must be in [0, 0.9)",
                self.val_fraction
            ));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad(format!("--lr {} must be positive", self.lr));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return bad(format!(
                "--weight-decay {} must be 0 or more",
                self.weight_decay
            ));
        }
        Ok(())
    }
}

/// One classifier training run.
#[derive(Clone, Debug)]
pub struct ClassifierJob {
    /// The labelled set (any layout [`super::data::read_dataset`] reads).
    pub data: PathBuf,
    /// The model file to write (`.safetensors`).
    pub out: PathBuf,
    /// `cpu`, `cuda`, `cuda:N`, `auto`.
    pub device: String,
    pub cfg: ClassifierConfig,
    /// Continue from the checkpoint beside `out` if there is one.
    pub resume: bool,
    /// The store to record the run in (`None`: not recorded).
    pub store: Option<PathBuf>,
    /// The ImageNet weights (`None`: the installed `efficientnet-lite0.safetensors`).
    pub weights: Option<PathBuf>,
}

impl ClassifierJob {
    /// The checkpoint written every epoch: `<out stem>.ckpt.safetensors` beside `out`.
    pub fn checkpoint_path(&self) -> PathBuf {
        checkpoint_path(&self.out)
    }
}

pub(crate) fn checkpoint_path(out: &Path) -> PathBuf {
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    out.with_file_name(format!("{stem}.ckpt.safetensors"))
}

/// What a running detector training reports.
#[derive(Clone, Debug)]
pub enum DetectorEvent {
    /// A phase that takes a while (reading the images, loading the weights).
    Status(String),
    Started {
        training_id: Option<u64>,
        labels: Vec<String>,
        train: usize,
        val: usize,
        epochs: usize,
        steps_per_epoch: usize,
        /// Epochs already done (a resumed run).
        resumed_from: usize,
    },
    Step {
        epoch: usize,
        step: usize,
        steps: usize,
        loss: f32,
        /// Seconds left at this run's speed.
        eta_s: f64,
    },
    Epoch {
        metrics: EpochMetrics,
        eta_s: f64,
    },
    /// The checkpoint was written.
    Saved {
        epoch: usize,
        path: PathBuf,
    },
}

/// How a detector training ended well.
#[derive(Clone, Debug)]
pub struct DetectorOutcome {
    pub model: PathBuf,
    pub sha256: String,
    pub training_id: Option<u64>,
    pub labels: Vec<String>,
    pub epochs: Vec<EpochMetrics>,
    /// The epoch whose weights were written (1-based).
    pub best_epoch: usize,
    pub stopped_early: bool,
}
