//! Detection metrics equal to scikit-learn's and anomalib's (docs/ARCHITECTURE.md, §15).
//!
//! - Image level: [`roc_curve`], [`roc_auc`], [`precision_recall_curve`],
//!   [`average_precision`] mirror scikit-learn 1.9 (`_binary_clf_curve` thresholds at each
//!   distinct score, ties as one point, `drop_intermediate`, AP as the step-wise sum
//!   `Σ (R_n − R_{n−1}) P_n`, not interpolated); [`best_f1`] is anomalib's `F1Max` (the PR
//!   curve's best F1 and its threshold).
//! - Pixel level: [`PixelMetrics`] gathers anomaly maps and masks image by image as `f32`
//!   scores and `u32` region ids (8 bytes a pixel), then gives pixel AUROC and AP (scikit-learn
//!   on the flattened pixels) and [`PixelMetrics::pro`], anomalib 2.7's `AUPRO`: per-region
//!   overlap of the 8-connected regions of the masks (OpenCV's `connectedComponents` default,
//!   which anomalib's CPU path calls), the curve cut at the FPR limit with linear
//!   interpolation, its area divided by the limit.
//!
//! Labels are `true` = defect (positive). Fixtures computed by scikit-learn and anomalib
//! check all of them (`tests/fixtures/inspect/metrics/`).

use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};

/// anomalib's default `AUPRO` FPR limit.
pub const PRO_FPR_LIMIT: f64 = 0.3;

/// A ROC curve as scikit-learn's `roc_curve` returns it (first threshold `+∞`, written as
/// `null` in JSON).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RocCurve {
    pub fpr: Vec<f64>,
    pub tpr: Vec<f64>,
    #[serde(with = "infinite_as_null")]
    pub thresholds: Vec<f64>,
}

/// Thresholds with `+∞` (the ROC curve's first) written as JSON `null` and read back.
mod infinite_as_null {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
        let o: Vec<Option<f64>> = v.iter().map(|x| x.is_finite().then_some(*x)).collect();
        o.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        let o = Vec::<Option<f64>>::deserialize(d)?;
        Ok(o.into_iter().map(|x| x.unwrap_or(f64::INFINITY)).collect())
    }
}

/// A precision–recall curve as scikit-learn's `precision_recall_curve` returns it (recall
/// decreasing, ending at precision 1, recall 0; one threshold fewer than points).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrCurve {
    pub precision: Vec<f64>,
    pub recall: Vec<f64>,
    pub thresholds: Vec<f64>,
}

/// The best F1 on the PR curve and the score threshold giving it (`score ≥ threshold` =
/// defect), as anomalib's `F1Max` computes them.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BestF1 {
    pub f1: f64,
    pub threshold: f64,
}

/// Cumulative false and true positives at each distinct score, highest first
/// (scikit-learn's `confusion_matrix_at_thresholds`).
struct ClfCurve {
    fps: Vec<f64>,
    tps: Vec<f64>,
    thresholds: Vec<f64>,
}

fn check(labels: &[bool], scores: &[f32], what: &str) -> Result<()> {
    if labels.len() != scores.len() {
        return Err(EngineError::Inspect(format!(
            "{what}: {} labels but {} scores",
            labels.len(),
            scores.len()
        )));
    }
    if let Some(i) = scores.iter().position(|s| !s.is_finite()) {
        return Err(EngineError::Inspect(format!(
            "{what}: score {i} is {} (scores must be finite)",
            scores[i]
        )));
    }
    let pos = labels.iter().filter(|&&l| l).count();
    if pos == 0 || pos == labels.len() {
        return Err(EngineError::Inspect(format!(
            "{what} needs both good and defect images (got {} image(s), {} of them defect)",
            labels.len(),
            pos
        )));
    }
    Ok(())
}

/// The order of `scores` from highest to lowest (ties in any order: only the end of each
/// tie group is used).
fn order_desc(scores: &[f32]) -> Vec<u32> {
    let mut idx: Vec<u32> = (0..scores.len() as u32).collect();
    idx.sort_unstable_by(|&a, &b| scores[b as usize].total_cmp(&scores[a as usize]));
    idx
}

fn clf_curve(labels: &[bool], scores: &[f32], what: &str) -> Result<ClfCurve> {
    check(labels, scores, what)?;
    let idx = order_desc(scores);
    let mut out = ClfCurve {
        fps: Vec::new(),
        tps: Vec::new(),
        thresholds: Vec::new(),
    };
    let mut tp = 0.0f64;
    for (k, &i) in idx.iter().enumerate() {
        if labels[i as usize] {
            tp += 1.0;
        }
        let s = scores[i as usize];
        let last = k + 1 == idx.len() || scores[idx[k + 1] as usize] != s;
        if last {
            out.tps.push(tp);
            out.fps.push((k + 1) as f64 - tp);
            out.thresholds.push(f64::from(s));
        }
    }
    Ok(out)
}

/// scikit-learn's `roc_curve(labels, scores, drop_intermediate=…)`.
pub fn roc_curve(labels: &[bool], scores: &[f32], drop_intermediate: bool) -> Result<RocCurve> {
    let c = clf_curve(labels, scores, "ROC curve")?;
    let n = c.fps.len();
    let keep: Vec<usize> = if drop_intermediate && n > 2 {
        let d2 = |v: &[f64], i: usize| v[i + 2] - 2.0 * v[i + 1] + v[i];
        (0..n)
            .filter(|&i| {
                i == 0 || i == n - 1 || d2(&c.fps, i - 1) != 0.0 || d2(&c.tps, i - 1) != 0.0
            })
            .collect()
    } else {
        (0..n).collect()
    };
    let (fp_n, tp_n) = (c.fps[n - 1], c.tps[n - 1]);
    let mut curve = RocCurve {
        fpr: vec![0.0],
        tpr: vec![0.0],
        thresholds: vec![f64::INFINITY],
    };
    for i in keep {
        curve.fpr.push(c.fps[i] / fp_n);
        curve.tpr.push(c.tps[i] / tp_n);
        curve.thresholds.push(c.thresholds[i]);
    }
    Ok(curve)
}

/// The trapezoidal area under `y(x)` (`np.trapezoid`; `x` monotonic).
fn trapezoid(x: &[f64], y: &[f64]) -> f64 {
    x.windows(2)
        .zip(y.windows(2))
        .map(|(x, y)| (x[1] - x[0]) * (y[1] + y[0]) / 2.0)
        .sum()
}

/// scikit-learn's `roc_auc_score` for binary labels.
pub fn roc_auc(labels: &[bool], scores: &[f32]) -> Result<f64> {
    let c = roc_curve(labels, scores, true)?;
    Ok(trapezoid(&c.fpr, &c.tpr))
}

/// scikit-learn's `precision_recall_curve(labels, scores)` (no points dropped).
pub fn precision_recall_curve(labels: &[bool], scores: &[f32]) -> Result<PrCurve> {
    let c = clf_curve(labels, scores, "precision-recall curve")?;
    let tp_n = c.tps[c.tps.len() - 1];
    let mut curve = PrCurve {
        precision: Vec::with_capacity(c.tps.len() + 1),
        recall: Vec::with_capacity(c.tps.len() + 1),
        thresholds: Vec::with_capacity(c.tps.len()),
    };
    for i in (0..c.tps.len()).rev() {
        let ps = c.tps[i] + c.fps[i];
        curve
            .precision
            .push(if ps != 0.0 { c.tps[i] / ps } else { 0.0 });
        curve.recall.push(c.tps[i] / tp_n);
        curve.thresholds.push(c.thresholds[i]);
    }
    curve.precision.push(1.0);
    curve.recall.push(0.0);
    Ok(curve)
}

/// scikit-learn's `average_precision_score`: `−Σ diff(recall) · precision[:-1]`, at least 0.
pub fn average_precision(labels: &[bool], scores: &[f32]) -> Result<f64> {
    let c = precision_recall_curve(labels, scores)?;
    Ok(ap_of(&c))
}

fn ap_of(c: &PrCurve) -> f64 {
    let s: f64 = c
        .recall
        .windows(2)
        .zip(&c.precision)
        .map(|(r, p)| (r[1] - r[0]) * p)
        .sum();
    (-s).max(0.0)
}

/// anomalib's `F1Max`: the largest `2PR / (P + R + 1e-10)` over the PR curve, and the
/// threshold of the first (lowest-threshold) point reaching it.
pub fn best_f1(labels: &[bool], scores: &[f32]) -> Result<BestF1> {
    let c = precision_recall_curve(labels, scores)?;
    Ok(best_f1_of(&c))
}

fn best_f1_of(c: &PrCurve) -> BestF1 {
    let mut best = BestF1 {
        f1: f64::NEG_INFINITY,
        threshold: f64::NAN,
    };
    for (i, &t) in c.thresholds.iter().enumerate() {
        let (p, r) = (c.precision[i], c.recall[i]);
        let f1 = 2.0 * p * r / (p + r + 1e-10);
        if f1 > best.f1 {
            best = BestF1 { f1, threshold: t };
        }
    }
    best
}

/// Image-level metrics and curves, computed once from the labels and scores.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageMetrics {
    pub auroc: f64,
    pub ap: f64,
    pub f1: BestF1,
    pub roc: RocCurve,
    pub pr: PrCurve,
}

/// All image-level metrics of `labels` (true = defect) and `scores`.
pub fn image_metrics(labels: &[bool], scores: &[f32]) -> Result<ImageMetrics> {
    let roc = roc_curve(labels, scores, true)?;
    let pr = precision_recall_curve(labels, scores)?;
    Ok(ImageMetrics {
        auroc: trapezoid(&roc.fpr, &roc.tpr),
        ap: ap_of(&pr),
        f1: best_f1_of(&pr),
        roc,
        pr,
    })
}

/// Pixel scores and ground-truth regions gathered image by image (8 bytes a pixel).
#[derive(Clone, Debug, Default)]
pub struct PixelMetrics {
    scores: Vec<f32>,
    /// 0 = defect-free pixel; else the id (from 1, unique over all images) of the mask's
    /// 8-connected region the pixel is in.
    regions: Vec<u32>,
    /// Pixels per region id (index 0 unused).
    sizes: Vec<u64>,
}

impl PixelMetrics {
    pub fn new() -> Self {
        PixelMetrics {
            sizes: vec![0],
            ..Default::default()
        }
    }

    /// Adds one image's anomaly map and mask (row-major, `true` = defect; the same length).
    /// `name` is used in errors.
    pub fn add(
        &mut self,
        map: &[f32],
        mask: &[bool],
        width: u32,
        height: u32,
        name: &str,
    ) -> Result<()> {
        let n = (width as usize) * (height as usize);
        if map.len() != n || mask.len() != n {
            return Err(EngineError::Inspect(format!(
                "{name}: the anomaly map has {} values and the mask {} for a {width}x{height} image",
                map.len(),
                mask.len()
            )));
        }
        if let Some(i) = map.iter().position(|s| !s.is_finite()) {
            return Err(EngineError::Inspect(format!(
                "{name}: anomaly map value {i} is {}",
                map[i]
            )));
        }
        if self.sizes.is_empty() {
            self.sizes.push(0);
        }
        let lab = crate::dataset::label_components(mask, width, height);
        let offset = (self.sizes.len() - 1) as u32;
        self.sizes.extend(lab.comps.iter().map(|c| c.area));
        self.scores.extend_from_slice(map);
        self.regions.extend(
            lab.labels
                .iter()
                .map(|&l| if l == 0 { 0 } else { l + offset }),
        );
        Ok(())
    }

    /// The number of pixels gathered.
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    fn labels(&self) -> Vec<bool> {
        self.regions.iter().map(|&r| r != 0).collect()
    }

    fn check_pixels(&self, what: &str) -> Result<()> {
        let defect = self.regions.iter().filter(|&&r| r != 0).count();
        if defect == 0 || defect == self.regions.len() {
            return Err(EngineError::Inspect(format!(
                "{what} needs both defect and defect-free pixels, i.e. good and defect images \
                 with masks (got {} pixel(s), {defect} of them defect)",
                self.regions.len()
            )));
        }
        Ok(())
    }

    /// Pixel AUROC (scikit-learn's `roc_auc_score` on the flattened pixels).
    pub fn auroc(&self) -> Result<f64> {
        self.check_pixels("pixel AUROC")?;
        roc_auc(&self.labels(), &self.scores)
    }

    /// Pixel AP (scikit-learn's `average_precision_score` on the flattened pixels).
    pub fn ap(&self) -> Result<f64> {
        self.check_pixels("pixel AP")?;
        average_precision(&self.labels(), &self.scores)
    }

    /// The PRO curve (global FPR, mean per-region overlap), cut at `fpr_limit` as anomalib's
    /// `_AUPRO._compute` does.
    pub fn pro_curve(&self, fpr_limit: f64) -> Result<(Vec<f64>, Vec<f64>)> {
        self.check_pixels("PRO")?;
        let num_bg = self.regions.iter().filter(|&&r| r == 0).count() as f64;
        let num_regions = self.sizes.iter().skip(1).filter(|&&s| s > 0).count() as f64;
        let idx = order_desc(&self.scores);
        let (mut fpr, mut pro) = (vec![0.0f64], vec![0.0f64]);
        let (mut bg, mut overlap) = (0.0f64, 0.0f64);
        for (k, &i) in idx.iter().enumerate() {
            let r = self.regions[i as usize];
            if r == 0 {
                bg += 1.0;
            } else {
                overlap += 1.0 / self.sizes[r as usize] as f64;
            }
            let s = self.scores[i as usize];
            if k + 1 == idx.len() || self.scores[idx[k + 1] as usize] != s {
                fpr.push((bg / num_bg).min(1.0));
                pro.push((overlap / num_regions).min(1.0));
            }
        }
        match fpr.iter().rposition(|&f| f <= fpr_limit) {
            Some(i) if fpr[i] < fpr_limit && i + 1 < fpr.len() => {
                let (f1, f2, p1, p2) = (fpr[i], fpr[i + 1], pro[i], pro[i + 1]);
                let p_lim = p1 + (p2 - p1) * (fpr_limit - f1) / (f2 - f1);
                fpr.truncate(i + 1);
                pro.truncate(i + 1);
                fpr.push(fpr_limit);
                pro.push(p_lim);
            }
            Some(i) => {
                fpr.truncate(i + 1);
                pro.truncate(i + 1);
            }
            None => {
                fpr = vec![0.0, fpr_limit];
                pro = vec![0.0, 0.0];
            }
        }
        Ok((fpr, pro))
    }

    /// anomalib's `AUPRO(fpr_limit)`: the area under [`Self::pro_curve`] divided by its last
    /// FPR (the limit).
    pub fn pro(&self, fpr_limit: f64) -> Result<f64> {
        let (fpr, pro) = self.pro_curve(fpr_limit)?;
        let last = fpr[fpr.len() - 1];
        Ok(trapezoid(&fpr, &pro) / last)
    }
}
