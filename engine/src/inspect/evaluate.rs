//! `evaluate`: a trained detector on a held-out labelled set (docs/ARCHITECTURE.md, §15).
//!
//! [`evaluate`] scores every image in batches through the [`Scorer`], then computes the image
//! metrics (AUROC, AP, best F1 and its threshold, ROC and PR curves) and, when the scorer
//! gives anomaly maps and the set has masks (good images: empty masks), the pixel metrics
//! (AUROC, AP, AUPRO at FPR 0.3 and its curve). The [`EvalReport`] holds them with **every
//! image's path, true label and score** (anyone can recompute the metrics), the model's sha256
//! and the data hash. [`write_plots`] writes its curves as `roc.png` and `pr.png`; the CLI and
//! the studio both go through these functions, and the store keeps the report
//! ([`crate::store::EvaluationRecord`]).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::data::{data_hash, read_dataset, LabeledSet, Layout};
use super::metrics::{image_metrics, BestF1, PixelMetrics, PrCurve, RocCurve, PRO_FPR_LIMIT};
use super::plot::{pr_plot, roc_plot, PLOT_SIZE};
use super::{DetectorKind, Scorer, GOOD};
use crate::error::{EngineError, Result};
use crate::store::EvaluationRecord;

/// How to evaluate.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalOptions {
    /// Images scored per call to the scorer.
    pub batch_size: usize,
    /// The FPR limit of the PRO curve (anomalib's default 0.3).
    pub pro_fpr_limit: f64,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            batch_size: 16,
            pro_fpr_limit: PRO_FPR_LIMIT,
        }
    }
}

/// One scored image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalItem {
    /// The image file.
    pub path: String,
    /// Its true label ([`GOOD`] = defect-free).
    pub label: String,
    /// True when the label is not [`GOOD`] (the positive class of the metrics).
    pub defect: bool,
    /// The detector's defect score (higher = more defective).
    pub score: f32,
    /// The detector's predicted label.
    pub predicted: String,
}

/// Pixel-level metrics (segmenters on sets with masks).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PixelReport {
    pub auroc: f64,
    pub ap: f64,
    /// anomalib's `AUPRO` at [`PixelReport::pro_fpr_limit`].
    pub pro: f64,
    pub pro_fpr_limit: f64,
    /// The PRO curve (global FPR, mean per-region overlap), cut at the limit.
    pub pro_fpr: Vec<f64>,
    pub pro_overlap: Vec<f64>,
    /// Pixels and ground-truth regions the metrics were computed on.
    pub pixels: usize,
}

/// Everything an evaluation found: metrics, curves, and every image's score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub model_kind: DetectorKind,
    /// The model's labels ([`GOOD`] first when it has it).
    pub model_labels: Vec<String>,
    pub model_sha256: String,
    /// The data folder, its layout and [`data_hash`].
    pub data_root: String,
    pub data_layout: Layout,
    pub data_hash: String,
    pub images: usize,
    pub defects: usize,
    /// Image AUROC (scikit-learn's `roc_auc_score`).
    pub auroc: f64,
    /// Image AP (scikit-learn's `average_precision_score`).
    pub ap: f64,
    /// The best F1 on the PR curve and its score threshold (anomalib's `F1Max`).
    pub f1: BestF1,
    /// Accuracy when `score ≥ f1.threshold` means defect.
    pub accuracy_at_threshold: f64,
    pub roc: RocCurve,
    pub pr: PrCurve,
    /// Present when the scorer gives anomaly maps and the set has masks.
    pub pixel: Option<PixelReport>,
    pub items: Vec<EvalItem>,
    /// Files the data reader left out (symlinks, FIFOs …), `path: why`.
    pub skipped: Vec<String>,
}

/// Scores every image of `set` with `scorer` and computes the metrics. `progress(done, total)`
/// is called after each batch. Fails, naming the folder, when the set lacks good or defect
/// images; a file that does not decode, or a mask of the wrong size, is an error naming it.
pub fn evaluate(
    scorer: &dyn Scorer,
    set: &LabeledSet,
    opts: &EvalOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<EvalReport> {
    let defects = set.samples.iter().filter(|s| !s.is_good()).count();
    if defects == 0 || defects == set.samples.len() {
        return Err(EngineError::Inspect(format!(
            "{}: evaluation needs both good and defect images (found {} image(s), {defects} \
             defect); labels: {}",
            set.root.display(),
            set.samples.len(),
            set.labels.join(", ")
        )));
    }
    let hash = data_hash(set)?;
    let batch = opts.batch_size.max(1);
    let want_pixels = set.has_masks();
    let mut pixels = PixelMetrics::new();
    let mut maps_seen = 0usize;
    let mut items = Vec::with_capacity(set.samples.len());
    let total = set.samples.len();
    progress(0, total);
    for chunk in set.samples.chunks(batch) {
        let images = chunk
            .iter()
            .map(|s| s.load_image())
            .collect::<Result<Vec<_>>>()?;
        let scores = scorer.score(&images)?;
        if scores.len() != images.len() {
            return Err(EngineError::Inspect(format!(
                "the detector gave {} scores for {} images",
                scores.len(),
                images.len()
            )));
        }
        for ((s, img), sc) in chunk.iter().zip(&images).zip(scores) {
            let name = s.path.display().to_string();
            if let (true, Some(map)) = (want_pixels, &sc.map) {
                let (w, h) = img.dimensions();
                if (map.width, map.height) != (w, h) {
                    return Err(EngineError::Inspect(format!(
                        "{name}: the anomaly map is {}x{} but the image is {w}x{h}",
                        map.width, map.height
                    )));
                }
                let mask: Vec<bool> = match s.load_mask(w, h)? {
                    Some(m) => m.pixels().map(|p| p.0[0] != 0).collect(),
                    None => vec![false; (w as usize) * (h as usize)],
                };
                pixels.add(&map.values, &mask, w, h, &name)?;
                maps_seen += 1;
            }
            items.push(EvalItem {
                path: name,
                label: s.label.clone(),
                defect: !s.is_good(),
                score: sc.score,
                predicted: sc.label,
            });
        }
        progress(items.len(), total);
    }
    let labels: Vec<bool> = items.iter().map(|i| i.defect).collect();
    let scores: Vec<f32> = items.iter().map(|i| i.score).collect();
    let m = image_metrics(&labels, &scores)
        .map_err(|e| EngineError::Inspect(format!("{}: {e}", set.root.display())))?;
    let correct = items
        .iter()
        .filter(|i| (f64::from(i.score) >= m.f1.threshold) == i.defect)
        .count();
    let pixel = if want_pixels && maps_seen == items.len() {
        let (pro_fpr, pro_overlap) = pixels.pro_curve(opts.pro_fpr_limit)?;
        Some(PixelReport {
            auroc: pixels.auroc()?,
            ap: pixels.ap()?,
            pro: pixels.pro(opts.pro_fpr_limit)?,
            pro_fpr_limit: opts.pro_fpr_limit,
            pro_fpr,
            pro_overlap,
            pixels: pixels.len(),
        })
    } else {
        None
    };
    Ok(EvalReport {
        model_kind: scorer.kind(),
        model_labels: scorer.labels().to_vec(),
        model_sha256: scorer.sha256().to_string(),
        data_root: set.root.display().to_string(),
        data_layout: set.layout,
        data_hash: hash,
        images: items.len(),
        defects,
        auroc: m.auroc,
        ap: m.ap,
        f1: m.f1,
        accuracy_at_threshold: correct as f64 / items.len() as f64,
        roc: m.roc,
        pr: m.pr,
        pixel,
        items,
        skipped: set.skipped.clone(),
    })
}

impl EvalReport {
    /// A short table for a terminal.
    pub fn table(&self) -> String {
        let mut s = format!(
            "images        {} ({} defect, {} {GOOD})\n\
             image AUROC   {:.4}\n\
             image AP      {:.4}\n\
             best F1       {:.4} at score >= {:.4} (accuracy {:.4})\n",
            self.images,
            self.defects,
            self.images - self.defects,
            self.auroc,
            self.ap,
            self.f1.f1,
            self.f1.threshold,
            self.accuracy_at_threshold
        );
        if let Some(p) = &self.pixel {
            s.push_str(&format!(
                "pixel AUROC   {:.4}\npixel AP      {:.4}\nPRO (FPR {})  {:.4}\n",
                p.auroc, p.ap, p.pro_fpr_limit, p.pro
            ));
        }
        s
    }
}

/// One `evaluate` run as the CLI and the studio's Inspection window start it.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalJob {
    /// The trained detector file.
    pub model: PathBuf,
    /// The labelled folder.
    pub data: PathBuf,
    /// `cpu`, `cuda`, `cuda:N`.
    pub device: String,
    /// Where `roc.png` and `pr.png` go (`None`: [`default_plot_dir`] of the model).
    pub plots: Option<PathBuf>,
    /// The store that keeps the result (`None`: not stored).
    pub store: Option<PathBuf>,
    pub opts: EvalOptions,
}

/// What an `evaluate` run gives.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalOutcome {
    /// The report with the model's and data's paths and hashes.
    pub record: EvaluationRecord,
    /// The evaluation's id in the store, when stored.
    pub id: Option<u64>,
    /// The plot files written.
    pub plots: Vec<PathBuf>,
}

/// Runs `job`: reads the set, loads the detector, evaluates, writes the plots and stores the
/// result (one transaction, after everything else succeeded, so a failure stores nothing).
/// `progress(done, total)` follows the scoring.
pub fn run_evaluation(
    job: &EvalJob,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<EvalOutcome> {
    let data = std::path::absolute(&job.data).unwrap_or_else(|_| job.data.clone());
    let model = std::path::absolute(&job.model).unwrap_or_else(|_| job.model.clone());
    let set = read_dataset(&data)?;
    let device = crate::sd::nodes::parse_device(&job.device)?;
    let scorer = super::load_scorer(&model, &device)?;
    let report = evaluate(scorer.as_ref(), &set, &job.opts, progress)?;
    let dir = job
        .plots
        .clone()
        .unwrap_or_else(|| default_plot_dir(&model));
    let plots = write_plots(&report, &dir)?;
    let record = EvaluationRecord::new(&model.display().to_string(), report);
    let id = match &job.store {
        Some(path) => Some(crate::Store::open(path)?.add_evaluation(&record)?),
        None => None,
    };
    Ok(EvalOutcome { record, id, plots })
}

/// The default plot folder of a model: `<stem>-eval/` beside it.
pub fn default_plot_dir(model: &Path) -> PathBuf {
    let stem = model
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    model.with_file_name(format!("{stem}-eval"))
}

/// Writes the report's curves as `roc.png` and `pr.png` in `dir` (created if needed); returns
/// the paths.
pub fn write_plots(report: &EvalReport, dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| EngineError::io(dir, e))?;
    let roc = roc_plot(&report.roc, report.auroc, "ROC (images)", PLOT_SIZE)?;
    let pr = pr_plot(
        &report.pr,
        report.ap,
        "Precision-recall (images)",
        PLOT_SIZE,
    )?;
    let mut out = Vec::new();
    for (name, plot) in [("roc.png", roc), ("pr.png", pr)] {
        let path = dir.join(name);
        std::fs::write(&path, &plot.png).map_err(|e| EngineError::io(&path, e))?;
        out.push(path);
    }
    Ok(out)
}
