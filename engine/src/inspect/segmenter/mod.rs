//! `train-segmenter`: a pixel-level defect segmenter, a U-Net-style decoder ([`decoder`]) on
//! the Lite0 encoder ([`super::net::Net::encode`], ImageNet weights), trained on image + mask
//! pairs (docs/ARCHITECTURE.md, §15). Loss: mean binary cross-entropy on the logits plus the
//! soft Dice loss of the sigmoid map (smoothing 1). The anomaly map is the sigmoid at the input
//! size, resized bilinearly to the image; the image score is the map's maximum.
//!
//! The job shares the classifier's settings ([`ClassifierJob`]; `multiclass` is ignored), its
//! seeded stratified split (good vs defect), RNG streams, AdamW (the decoder at ten times the
//! encoder's learning rate), early stopping on the validation loss, store record (kind `segmenter`, per-epoch loss and validation pixel
//! AUROC) and model file (`defect_studio.kind = segmenter`). Not done
//! yet: per-epoch checkpoints and `--resume` (the classifier has them).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use candle_core::{Device, Tensor};
use rayon::prelude::*;

use super::augment::{mask_values, to_input};
use super::classifier::optim::{rng, stratified_split, AdamW, Stream};
use super::classifier::{snapshot, ClassifierJob, DetectorEvent, DetectorOutcome, Recorder};
use super::data::{data_hash, read_dataset};
use super::metrics::PixelMetrics;
use super::model_file::{self, ModelMeta};
use super::net::{ce, Net};
use super::{AnomalyMap, DetectorKind, GOOD};
use crate::error::{EngineError, Result};
use crate::exec::CancelToken;
use crate::store::{EpochMetrics, TrainingKind};

pub mod decoder;

pub use decoder::Decoder;

/// The decoder's learning rate as a multiple of the encoder's.
const DECODER_LR: f64 = 10.0;

/// The labels a segmenter file carries.
pub const LABELS: [&str; 2] = [GOOD, "defect"];

/// Encoder + decoder.
pub struct Segmenter {
    pub net: Net,
    pub decoder: Decoder,
}

impl Segmenter {
    /// Logits [N, 1, H, W] at the input size.
    pub fn logits(&self, x: &Tensor) -> Result<Tensor> {
        let feats = self.net.encode(x)?;
        self.decoder.forward(&feats)
    }

    /// Every trained parameter, (name, var): the encoder's (not its unused `_fc`), then the
    /// decoder's.
    fn vars(&self) -> Result<Vec<(String, candle_core::Var)>> {
        let mut out: Vec<(String, candle_core::Var)> = self
            .net
            .names()
            .iter()
            .cloned()
            .zip(self.net.vars()?)
            .filter(|(n, _)| !n.starts_with("_fc."))
            .collect();
        out.extend(self.decoder.vars().iter().cloned());
        Ok(out)
    }

    /// Sigmoid maps at the input size for a batch of inputs.
    pub fn maps(&self, x: &Tensor) -> Result<Vec<Vec<f32>>> {
        let p = candle_nn::ops::sigmoid(&self.logits(x)?.detach()).map_err(ce)?;
        let (n, _, h, w) = p.dims4().map_err(ce)?;
        p.reshape((n, h * w))
            .and_then(|t| t.to_vec2::<f32>())
            .map_err(ce)
    }
}

/// BCE with logits (mean) + soft Dice (1 − (2Σpt + 1) / (Σp + Σt + 1)), over the batch.
fn loss(logits: &Tensor, target: &Tensor) -> candle_core::Result<Tensor> {
    // BCE = max(z, 0) − z·t + log(1 + e^(−|z|))
    let bce = (logits.relu()? - (logits * target)?
        + ((logits.abs()?.neg()?.exp()? + 1.0)?.log()?))?
    .mean_all()?;
    let p = candle_nn::ops::sigmoid(logits)?;
    let inter = (&p * target)?.sum_all()?;
    let dice = ((inter * 2.0)? + 1.0)?.div(&((p.sum_all()? + target.sum_all()?)? + 1.0)?)?;
    bce + (dice.neg()? + 1.0)?
}

/// Runs a segmenter training job; `emit` receives its progress (see the module docs).
pub fn run_segmenter(
    job: &ClassifierJob,
    cancel: &CancelToken,
    emit: &mut dyn FnMut(DetectorEvent),
) -> Result<DetectorOutcome> {
    job.cfg.check()?;
    let device = crate::sd::nodes::parse_device(&job.device)?;
    emit(DetectorEvent::Status(format!(
        "reading {}",
        job.data.display()
    )));
    let set = read_dataset(&job.data)?;
    set.require_classes(2)?;
    if !set.has_masks() {
        return Err(EngineError::Inspect(format!(
            "{}: train-segmenter needs a mask for every defect image (image + mask folders, \
             MVTec, anomalib folder, COCO or YOLO with shapes)",
            set.root.display()
        )));
    }
    let size = job.cfg.size;
    let pairs = set
        .samples
        .par_iter()
        .map(|s| {
            let img = s.load_image()?;
            let mask = s
                .load_mask(img.width(), img.height())?
                .unwrap_or_else(|| image::GrayImage::new(img.width(), img.height()));
            Ok((img, mask))
        })
        .collect::<Result<Vec<_>>>()?;
    let classes: Vec<usize> = set
        .samples
        .iter()
        .map(|s| usize::from(!s.is_good()))
        .collect();
    let hash = data_hash(&set)?;
    let mut recorder = Recorder::begin(job, TrainingKind::Segmenter)?;
    let result = train(
        job,
        &device,
        &pairs,
        &classes,
        &hash,
        size,
        cancel,
        emit,
        &mut recorder,
    );
    recorder.end(&result, |o| o.sha256.clone());
    result
}

type Pairs = [(image::RgbImage, image::GrayImage)];

#[allow(clippy::too_many_arguments)]
fn train(
    job: &ClassifierJob,
    device: &Device,
    pairs: &Pairs,
    classes: &[usize],
    hash: &str,
    size: u32,
    cancel: &CancelToken,
    emit: &mut dyn FnMut(DetectorEvent),
    recorder: &mut Recorder,
) -> Result<DetectorOutcome> {
    let cfg = &job.cfg;
    let (train_idx, val_idx) = stratified_split(classes, 2, cfg.val_fraction, cfg.seed);
    emit(DetectorEvent::Status(
        "loading the EfficientNet-Lite0 ImageNet weights".into(),
    ));
    let weights = job
        .weights
        .clone()
        .or_else(crate::models::efficientnet::installed_path)
        .ok_or_else(|| {
            EngineError::Inspect(
                "train-segmenter: the EfficientNet-Lite0 ImageNet weights are not installed; \
                 run `defect-studio models fetch efficientnet-lite0`"
                    .into(),
            )
        })?;
    let model = Segmenter {
        net: Net::from_imagenet(&weights, 2, cfg.seed, device)?,
        decoder: Decoder::new(cfg.seed, device)?,
    };
    let named = model.vars()?;
    let vars: Vec<candle_core::Var> = named.iter().map(|(_, v)| v.clone()).collect();
    let mut opt = AdamW::new(&vars, cfg.lr, cfg.weight_decay)?;
    // The decoder starts from scratch: ten times the encoder's learning rate.
    opt.scales = named
        .iter()
        .map(|(n, _)| {
            if n.starts_with("_decoder.") {
                DECODER_LR
            } else {
                1.0
            }
        })
        .collect();
    let mut best = snapshot(&vars)?;
    let (mut best_loss, mut best_epoch, mut bad, mut stopped) = (None::<f32>, 0, 0, false);
    let steps = train_idx.len().div_ceil(cfg.batch);
    recorder.rec.steps_total = (steps * cfg.epochs) as u64;
    recorder.save();
    emit(DetectorEvent::Started {
        training_id: recorder.store.as_ref().map(|(_, id)| *id),
        labels: LABELS.iter().map(|s| s.to_string()).collect(),
        train: train_idx.len(),
        val: val_idx.len(),
        epochs: cfg.epochs,
        steps_per_epoch: steps,
        resumed_from: 0,
    });
    let s = size as usize;
    let started = Instant::now();
    let mut history: Vec<EpochMetrics> = Vec::new();
    for epoch in 0..cfg.epochs {
        let t0 = Instant::now();
        // Every training image once per epoch, in a seeded order.
        let mut order = train_idx.clone();
        {
            use rand::seq::SliceRandom;
            order.shuffle(&mut rng(cfg.seed, Stream::Order, epoch as u64, 0));
        }
        let mut loss_sum = 0f64;
        for (step, chunk) in order.chunks(cfg.batch).enumerate() {
            if cancel.is_cancelled() {
                return Err(EngineError::Cancelled);
            }
            let per: Vec<(Vec<f32>, Vec<f32>)> = chunk
                .par_iter()
                .enumerate()
                .map(|(k, &i)| {
                    let mut r = rng(
                        cfg.seed,
                        Stream::Augment,
                        epoch as u64,
                        (step << 20 | k) as u64,
                    );
                    cfg.augment
                        .apply_pair(&pairs[i].0, &pairs[i].1, size, &mut r)
                })
                .collect();
            let n = chunk.len();
            let x: Vec<f32> = per.iter().flat_map(|p| p.0.iter().copied()).collect();
            let t: Vec<f32> = per.iter().flat_map(|p| p.1.iter().copied()).collect();
            let x = Tensor::from_vec(x, (n, 3, s, s), device).map_err(ce)?;
            let t = Tensor::from_vec(t, (n, 1, s, s), device).map_err(ce)?;
            let l = loss(&model.logits(&x)?, &t).map_err(ce)?;
            let grads = l.backward().map_err(ce)?;
            opt.step(&vars, &grads)?;
            let lv = l.to_scalar::<f32>().map_err(ce)?;
            if !lv.is_finite() {
                return Err(EngineError::Inspect(format!(
                    "train-segmenter: the loss became {lv} at epoch {}; try a lower --lr",
                    epoch + 1
                )));
            }
            loss_sum += f64::from(lv) * n as f64;
            let done = epoch * steps + step + 1;
            recorder.rec.steps_done = done as u64;
            recorder.rec.losses.push((done as u64, lv));
            let per_step = started.elapsed().as_secs_f64() / done as f64;
            emit(DetectorEvent::Step {
                epoch: epoch + 1,
                step: step + 1,
                steps,
                loss: lv,
                eta_s: per_step * (cfg.epochs * steps - done) as f64,
            });
        }
        let mut m = EpochMetrics {
            epoch: epoch as u64 + 1,
            train_loss: (loss_sum / order.len().max(1) as f64) as f32,
            ..EpochMetrics::default()
        };
        if !val_idx.is_empty() {
            let (vl, auroc) = validate(&model, pairs, &val_idx, size, cfg.batch, device)?;
            m.val_loss = Some(vl);
            m.val_pixel_auroc = auroc;
        }
        m.seconds = t0.elapsed().as_secs_f64();
        let improved = match (m.val_loss, best_loss) {
            (None, _) => true,
            (Some(v), None) => v.is_finite(),
            (Some(v), Some(b)) => v < b,
        };
        if improved {
            best_loss = m.val_loss;
            best_epoch = epoch + 1;
            bad = 0;
            best = snapshot(&vars)?;
        } else {
            bad += 1;
            if cfg.patience > 0 && bad >= cfg.patience {
                stopped = true;
            }
        }
        history.push(m.clone());
        recorder.rec.epochs = history.clone();
        recorder.save();
        emit(DetectorEvent::Epoch {
            metrics: m,
            eta_s: started.elapsed().as_secs_f64() / (epoch + 1) as f64
                * (cfg.epochs - epoch - 1) as f64,
        });
        if stopped {
            break;
        }
    }
    let meta = ModelMeta {
        kind: DetectorKind::Segmenter,
        labels: LABELS.iter().map(|s| s.to_string()).collect(),
        input_size: size,
        data_hash: hash.to_string(),
        seed: cfg.seed,
        epochs: history.len(),
        best_epoch,
        val: history.get(best_epoch.saturating_sub(1)).cloned(),
        config: serde_json::to_value(cfg)?,
    };
    let tensors: BTreeMap<String, Tensor> =
        named.iter().map(|(n, _)| n.clone()).zip(best).collect();
    let sha256 = model_file::write(&job.out, &tensors, &meta)?;
    Ok(DetectorOutcome {
        model: job.out.clone(),
        sha256,
        training_id: recorder.store.as_ref().map(|(_, id)| *id),
        labels: meta.labels,
        epochs: history,
        best_epoch,
        stopped_early: stopped,
    })
}

/// Validation loss and pixel AUROC (at the input size; `None` when the split has no defect
/// pixel or no good pixel).
fn validate(
    model: &Segmenter,
    pairs: &Pairs,
    idx: &[usize],
    size: u32,
    batch: usize,
    device: &Device,
) -> Result<(f32, Option<f32>)> {
    let s = size as usize;
    let (mut loss_sum, mut pm) = (0f64, PixelMetrics::new());
    for chunk in idx.chunks(batch.max(1)) {
        let n = chunk.len();
        let x: Vec<f32> = chunk
            .iter()
            .flat_map(|&i| to_input(&pairs[i].0, size))
            .collect();
        let t: Vec<f32> = chunk
            .iter()
            .flat_map(|&i| mask_values(&pairs[i].1, size))
            .collect();
        let x = Tensor::from_vec(x, (n, 3, s, s), device).map_err(ce)?;
        let tt = Tensor::from_vec(t.clone(), (n, 1, s, s), device).map_err(ce)?;
        let logits = model.logits(&x)?.detach();
        let l = loss(&logits, &tt)
            .and_then(|l| l.to_scalar::<f32>())
            .map_err(ce)?;
        loss_sum += f64::from(l) * n as f64;
        let p = candle_nn::ops::sigmoid(&logits)
            .and_then(|p| p.flatten_all())
            .and_then(|p| p.to_vec1::<f32>())
            .map_err(ce)?;
        for k in 0..n {
            let map = &p[k * s * s..(k + 1) * s * s];
            let mask: Vec<bool> = t[k * s * s..(k + 1) * s * s]
                .iter()
                .map(|&v| v > 0.5)
                .collect();
            pm.add(map, &mask, size, size, "validation")?;
        }
    }
    Ok((
        (loss_sum / idx.len() as f64) as f32,
        pm.auroc().ok().map(|a| a as f32),
    ))
}

/// A trained segmenter as a [`super::Scorer`]: the anomaly map at the image's size, the image
/// score its maximum.
pub struct SegmenterScorer {
    model: Segmenter,
    meta: ModelMeta,
    sha256: String,
}

impl SegmenterScorer {
    pub(crate) fn load(
        vb: &candle_nn::VarBuilder,
        meta: ModelMeta,
        sha256: String,
        path: &Path,
    ) -> Result<SegmenterScorer> {
        let err = |e: candle_core::Error| EngineError::Inspect(format!("{}: {e}", path.display()));
        let net = Net::from_folded_encoder(vb)?;
        let decoder = Decoder::load(|n, shape| vb.get(shape, n).map_err(err))?;
        Ok(SegmenterScorer {
            model: Segmenter { net, decoder },
            meta,
            sha256,
        })
    }
}

impl super::Scorer for SegmenterScorer {
    fn kind(&self) -> DetectorKind {
        DetectorKind::Segmenter
    }

    fn labels(&self) -> &[String] {
        &self.meta.labels
    }

    fn sha256(&self) -> &str {
        &self.sha256
    }

    fn score(&self, images: &[image::RgbImage]) -> Result<Vec<super::Score>> {
        let size = self.meta.input_size;
        let s = size as usize;
        let device = self.model.net.device();
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(8) {
            let x: Vec<f32> = chunk.iter().flat_map(|i| to_input(i, size)).collect();
            let x = Tensor::from_vec(x, (chunk.len(), 3, s, s), device).map_err(ce)?;
            for (img, m) in chunk.iter().zip(self.model.maps(&x)?) {
                let small =
                    image::ImageBuffer::<image::Luma<f32>, Vec<f32>>::from_raw(size, size, m)
                        .ok_or_else(|| EngineError::Inspect("segmenter: map size".into()))?;
                let (w, h) = img.dimensions();
                let full = if (w, h) == (size, size) {
                    small
                } else {
                    image::imageops::resize(&small, w, h, image::imageops::FilterType::Triangle)
                };
                let values: Vec<f32> = full
                    .into_raw()
                    .into_iter()
                    .map(|v| v.clamp(0.0, 1.0))
                    .collect();
                let score = values.iter().copied().fold(0f32, f32::max);
                out.push(super::Score {
                    score,
                    label: if score >= 0.5 { "defect" } else { GOOD }.to_string(),
                    probs: vec![1.0 - score, score],
                    map: Some(AnomalyMap {
                        width: w,
                        height: h,
                        values,
                    }),
                });
            }
        }
        Ok(out)
    }
}
