//! `train-classifier` and `train-segmenter`: one engine training job each
//! (`engine::inspect::classifier`, `engine::inspect::segmenter`), the same the studio's panel
//! runs. Every setting's default comes from `ClassifierConfig::default()`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use engine::inspect::classifier::{run_classifier, ClassifierConfig, ClassifierJob, DetectorEvent};

use crate::fmt::format_duration;

/// The options of `train-classifier`. Settings left out take `ClassifierConfig`'s defaults
/// (epochs 20, batch 16, lr 1e-4, weight decay 0.01, size 224, val fraction 0.2, patience 5,
/// seed 0).
#[derive(clap::Args, Debug)]
pub struct TrainClassifierArgs {
    /// The labelled images: class folders (`good/`, `<defect>/`) or any export layout (for
    /// train-segmenter, one with masks: images + masks folders, MVTec, anomalib, COCO, YOLO).
    #[arg(long)]
    pub data: PathBuf,
    /// The model file to write (.safetensors).
    #[arg(long)]
    pub out: PathBuf,
    /// Epochs at most (early stopping may end sooner).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Share of each class held out for validation (0 = none, no early stopping).
    #[arg(long)]
    pub val_fraction: Option<f64>,
    /// Network input side (a multiple of 32).
    #[arg(long)]
    pub size: Option<u32>,
    /// Images per optimizer step.
    #[arg(long)]
    pub batch: Option<usize>,
    /// AdamW learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    /// AdamW decoupled weight decay.
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Stop when the validation loss has not improved for N epochs (0 = never).
    #[arg(long)]
    pub patience: Option<usize>,
    /// One class per label instead of good vs defect (train-classifier only).
    #[arg(long)]
    pub multiclass: bool,
    /// Continue from OUT's checkpoint (<out stem>.ckpt.safetensors) if there is one.
    #[arg(long)]
    pub resume: bool,
    /// Store to record the run in (default: the user store).
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// The EfficientNet-Lite0 ImageNet weights (default: the installed ones).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

impl TrainClassifierArgs {
    /// The settings: the defaults with every given flag applied.
    pub fn config(&self) -> ClassifierConfig {
        let d = ClassifierConfig::default();
        ClassifierConfig {
            epochs: self.epochs.unwrap_or(d.epochs),
            batch: self.batch.unwrap_or(d.batch),
            lr: self.lr.unwrap_or(d.lr),
            weight_decay: self.weight_decay.unwrap_or(d.weight_decay),
            size: self.size.unwrap_or(d.size),
            val_fraction: self.val_fraction.unwrap_or(d.val_fraction),
            patience: self.patience.unwrap_or(d.patience),
            seed: self.seed.unwrap_or(d.seed),
            multiclass: self.multiclass,
            augment: d.augment,
        }
    }
}

/// Which detector a command trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detector {
    Classifier,
    Segmenter,
}

pub fn train_classifier_cmd(a: &TrainClassifierArgs) -> Result<i32> {
    train_cmd(a, Detector::Classifier)
}

pub fn train_segmenter_cmd(a: &TrainClassifierArgs) -> Result<i32> {
    train_cmd(a, Detector::Segmenter)
}

fn train_cmd(a: &TrainClassifierArgs, which: Detector) -> Result<i32> {
    let job = ClassifierJob {
        data: a.data.clone(),
        out: a.out.clone(),
        device: a.device.clone(),
        cfg: a.config(),
        resume: a.resume,
        store: Some(a.store.clone().unwrap_or_else(engine::paths::store_path)),
        weights: a.weights.clone(),
    };
    let bar = if std::io::stderr().is_terminal() && !a.json {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} steps {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b.enable_steady_tick(Duration::from_millis(120));
        Some(b)
    } else {
        None
    };
    let say = |m: String| match &bar {
        Some(b) => b.suspend(|| eprintln!("{m}")),
        None => eprintln!("{m}"),
    };
    let mut steps_per_epoch = 0;
    let mut on_event = |e: DetectorEvent| {
        match e {
        DetectorEvent::Status(m) => match &bar {
            Some(b) => b.set_message(m),
            None => eprintln!("{m}"),
        },
        DetectorEvent::Started {
            labels,
            train,
            val,
            epochs,
            steps_per_epoch: s,
            resumed_from,
            ..
        } => {
            steps_per_epoch = s;
            if let Some(b) = &bar {
                b.set_length((epochs * s) as u64);
                b.set_position((resumed_from * s) as u64);
            }
            say(format!(
                "training on {train} images, validating on {val}; classes {}{}",
                labels.join(", "),
                if resumed_from > 0 {
                    format!("; resumed after epoch {resumed_from}")
                } else {
                    String::new()
                }
            ));
        }
        DetectorEvent::Step {
            epoch,
            step,
            steps,
            loss,
            eta_s,
        } => {
            if let Some(b) = &bar {
                b.set_position(((epoch - 1) * steps_per_epoch.max(steps) + step) as u64);
                b.set_message(format!(
                    "epoch {epoch} loss {loss:.4} ETA {}",
                    format_duration(eta_s)
                ));
            }
        }
        DetectorEvent::Epoch { metrics: m, .. } => say(format!(
            "epoch {:>3}: train loss {:.4} acc {:.3}  val loss {} acc {} balanced acc {}{}  ({:.1} s)",
            m.epoch,
            m.train_loss,
            m.train_accuracy,
            m.val_loss.map_or("-".into(), |v| format!("{v:.4}")),
            m.val_accuracy.map_or("-".into(), |v| format!("{v:.3}")),
            m.val_balanced_accuracy
                .map_or("-".into(), |v| format!("{v:.3}")),
            m.val_pixel_auroc
                .map_or(String::new(), |v| format!(" pixel AUROC {v:.3}")),
            m.seconds
        )),
        DetectorEvent::Saved { .. } => {}
    }
    };
    let cancel = engine::CancelToken::new();
    let outcome = match which {
        Detector::Classifier => run_classifier(&job, &cancel, &mut on_event)?,
        Detector::Segmenter => {
            engine::inspect::segmenter::run_segmenter(&job, &cancel, &mut on_event)?
        }
    };
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let best = outcome.epochs.get(outcome.best_epoch.saturating_sub(1));
    if a.json {
        let v = serde_json::json!({
            "model": outcome.model,
            "sha256": outcome.sha256,
            "training_id": outcome.training_id,
            "labels": outcome.labels,
            "best_epoch": outcome.best_epoch,
            "stopped_early": outcome.stopped_early,
            "epochs": outcome.epochs,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "{}: {} epochs{}, weights of epoch {} (val {} {}); sha256 {}",
            outcome.model.display(),
            outcome.epochs.len(),
            if outcome.stopped_early {
                " (stopped early)"
            } else {
                ""
            },
            outcome.best_epoch,
            match which {
                Detector::Classifier => "balanced accuracy",
                Detector::Segmenter => "pixel AUROC",
            },
            best.and_then(|m| match which {
                Detector::Classifier => m.val_balanced_accuracy,
                Detector::Segmenter => m.val_pixel_auroc,
            })
            .map_or("-".into(), |v| format!("{v:.3}")),
            &outcome.sha256[..10.min(outcome.sha256.len())]
        );
    }
    Ok(0)
}
