//! The classifier training loop and its checkpoints (see the module docs of
//! [`super`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use rayon::prelude::*;

use super::optim::{balanced_accuracy, balanced_order, rng, stratified_split, AdamW, Stream};
use super::{ClassifierConfig, ClassifierJob, DetectorEvent, DetectorOutcome};
use crate::error::{EngineError, Result};
use crate::exec::CancelToken;
use crate::inspect::augment::{to_input, Augment};
use crate::inspect::data::{data_hash, read_dataset, LabeledSet};
use crate::inspect::model_file::{self, ModelMeta};
use crate::inspect::net::{ce, Net};
use crate::inspect::{DetectorKind, GOOD};
use crate::store::{now_ms, EpochMetrics, RunStatus, Store, TrainingKind, TrainingRecord};

/// The label of every non-good image in a good-vs-defect model.
pub const DEFECT: &str = "defect";

/// Checkpoint metadata key (JSON of [`CkptState`]).
const CKPT_KEY: &str = "defect_studio.checkpoint";

/// Where a run stands at the end of an epoch: what a checkpoint restores besides tensors.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct CkptState {
    epochs_done: usize,
    adam_t: usize,
    best_loss: Option<f32>,
    best_epoch: usize,
    bad_epochs: usize,
    stopped: bool,
    history: Vec<EpochMetrics>,
    /// What the run was started with: a resume with other settings or data is refused.
    config: ClassifierConfig,
    data_hash: String,
    labels: Vec<String>,
}

/// The labelled images in memory, with their class indices.
struct Prepared {
    images: Vec<image::RgbImage>,
    classes: Vec<usize>,
    labels: Vec<String>,
}

/// Decodes every image (in parallel, in sample order), scaled down to at most 2× the input
/// size on its longer side (the crops never need more), and assigns classes.
fn prepare(set: &LabeledSet, cfg: &ClassifierConfig) -> Result<Prepared> {
    set.require_classes(2)?;
    let labels: Vec<String> = if cfg.multiclass {
        set.labels.clone()
    } else {
        if !set.labels.iter().any(|l| l == GOOD) {
            return Err(EngineError::Inspect(format!(
                "{}: good-vs-defect training needs `{GOOD}` images; the labels are {} \
                 (use --multiclass to train one class per label)",
                set.root.display(),
                set.labels.join(", ")
            )));
        }
        vec![GOOD.to_string(), DEFECT.to_string()]
    };
    let classes: Vec<usize> = set
        .samples
        .iter()
        .map(|s| {
            if cfg.multiclass {
                set.labels.iter().position(|l| *l == s.label).unwrap_or(0)
            } else {
                usize::from(!s.is_good())
            }
        })
        .collect();
    let cap = 2 * cfg.size;
    let images = set
        .samples
        .par_iter()
        .map(|s| {
            let img = s.load_image()?;
            let (w, h) = img.dimensions();
            if w.max(h) <= cap {
                return Ok(img);
            }
            let k = f64::from(cap) / f64::from(w.max(h));
            let (nw, nh) = (
                ((f64::from(w) * k).round() as u32).max(1),
                ((f64::from(h) * k).round() as u32).max(1),
            );
            Ok(image::imageops::resize(
                &img,
                nw,
                nh,
                image::imageops::FilterType::Triangle,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Prepared {
        images,
        classes,
        labels,
    })
}

/// The run's record in the store, kept up to date.
pub(crate) struct Recorder {
    pub(crate) store: Option<(Store, u64)>,
    pub(crate) rec: TrainingRecord,
}

impl Recorder {
    /// A new record of `kind` for `job`, begun in the job's store if it has one.
    pub(crate) fn begin(job: &ClassifierJob, kind: TrainingKind) -> Result<Recorder> {
        let mut r = Recorder {
            store: None,
            rec: TrainingRecord {
                kind,
                name: job
                    .out
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| kind.name().into()),
                model: "efficientnet-lite0".into(),
                model_sha256: None,
                data: job.data.display().to_string(),
                lora_path: job.out.display().to_string(),
                lora_sha256: None,
                checkpoint_path: job.checkpoint_path().display().to_string(),
                params: serde_json::to_value(&job.cfg)?,
                status: RunStatus::Running,
                pid: std::process::id(),
                started_ms: now_ms(),
                ended_ms: None,
                steps_done: 0,
                steps_total: 0,
                resumed_from: 0,
                losses: Vec::new(),
                samples: Vec::new(),
                epochs: Vec::new(),
                error: None,
            },
        };
        if let Some(p) = &job.store {
            let store = Store::open(p)?;
            let id = store.begin_training(&r.rec)?;
            r.store = Some((store, id));
        }
        Ok(r)
    }

    /// Records how `result` ended.
    pub(crate) fn end<T>(&mut self, result: &Result<T>, sha256: impl Fn(&T) -> String) {
        match result {
            Ok(o) => {
                self.rec.lora_sha256 = Some(sha256(o));
                self.finish(RunStatus::Succeeded, None);
            }
            Err(EngineError::Cancelled) => self.finish(RunStatus::Cancelled, None),
            Err(e) => self.finish(RunStatus::Failed, Some(e.to_string())),
        }
    }

    pub(crate) fn save(&mut self) {
        if let Some((store, id)) = &self.store {
            // A store hiccup must not kill the training: the model files are the truth.
            let _ = store.update_training(*id, &self.rec);
        }
    }

    fn finish(&mut self, status: RunStatus, error: Option<String>) {
        self.rec.status = status;
        self.rec.error = error;
        self.rec.ended_ms = Some(now_ms());
        self.save();
    }
}

/// Runs a classifier training job (see the module docs); `emit` receives its progress.
pub fn run_classifier(
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
    let prepared = prepare(&set, &job.cfg)?;
    let hash = data_hash(&set)?;
    let mut recorder = Recorder::begin(job, TrainingKind::Classifier)?;
    let result = train(job, &device, &prepared, &hash, cancel, emit, &mut recorder);
    recorder.end(&result, |o| o.sha256.clone());
    result
}

#[allow(clippy::too_many_arguments)]
fn train(
    job: &ClassifierJob,
    device: &Device,
    data: &Prepared,
    hash: &str,
    cancel: &CancelToken,
    emit: &mut dyn FnMut(DetectorEvent),
    recorder: &mut Recorder,
) -> Result<DetectorOutcome> {
    let cfg = &job.cfg;
    let n_classes = data.labels.len();
    let (train_idx, val_idx) =
        stratified_split(&data.classes, n_classes, cfg.val_fraction, cfg.seed);
    let ckpt_path = job.checkpoint_path();
    let resume = job.resume && ckpt_path.is_file();
    emit(DetectorEvent::Status(if resume {
        format!("resuming from {}", ckpt_path.display())
    } else {
        "loading the EfficientNet-Lite0 ImageNet weights".into()
    }));
    let (net, mut opt, mut state) = if resume {
        load_checkpoint(&ckpt_path, cfg, hash, &data.labels, device)?
    } else {
        let weights = job
            .weights
            .clone()
            .or_else(crate::models::efficientnet::installed_path)
            .ok_or_else(|| {
                EngineError::Inspect(
                    "train-classifier: the EfficientNet-Lite0 ImageNet weights are not \
                     installed; run `defect-studio models fetch efficientnet-lite0`"
                        .into(),
                )
            })?;
        let net = Net::from_imagenet(&weights, n_classes, cfg.seed, device)?;
        let opt = AdamW::new(&net.vars()?, cfg.lr, cfg.weight_decay)?;
        let state = CkptState {
            epochs_done: 0,
            adam_t: 0,
            best_loss: None,
            best_epoch: 0,
            bad_epochs: 0,
            stopped: false,
            history: Vec::new(),
            config: cfg.clone(),
            data_hash: hash.to_string(),
            labels: data.labels.clone(),
        };
        (net, opt, state)
    };
    let vars = net.vars()?;
    let mut best: Vec<Tensor> = if resume {
        load_best(&ckpt_path, net.names(), device)?
    } else {
        snapshot(&vars)?
    };
    let steps = train_idx.len().div_ceil(cfg.batch);
    recorder.rec.steps_total = (steps * cfg.epochs) as u64;
    recorder.rec.resumed_from = (state.epochs_done * steps) as u64;
    recorder.rec.steps_done = recorder.rec.resumed_from;
    recorder.rec.epochs = state.history.clone();
    recorder.save();
    emit(DetectorEvent::Started {
        training_id: recorder.store.as_ref().map(|(_, id)| *id),
        labels: data.labels.clone(),
        train: train_idx.len(),
        val: val_idx.len(),
        epochs: cfg.epochs,
        steps_per_epoch: steps,
        resumed_from: state.epochs_done,
    });
    let started = Instant::now();
    let mut steps_run = 0usize;
    while state.epochs_done < cfg.epochs && !state.stopped {
        let epoch = state.epochs_done;
        let t0 = Instant::now();
        let order = balanced_order(&train_idx, &data.classes, n_classes, cfg.seed, epoch);
        let (mut loss_sum, mut hits) = (0f64, 0usize);
        for (step, chunk) in order.chunks(cfg.batch).enumerate() {
            if cancel.is_cancelled() {
                return Err(EngineError::Cancelled);
            }
            let x = batch(
                data,
                chunk,
                cfg.size,
                &cfg.augment,
                cfg.seed,
                epoch,
                step,
                device,
            )?;
            let y = labels_tensor(data, chunk, device)?;
            let mask = net.dropout_mask(
                &mut rng(cfg.seed, Stream::Dropout, epoch as u64, step as u64),
                chunk.len(),
            )?;
            let logits = net.classify(&x, Some(&mask))?;
            let loss = candle_nn::loss::cross_entropy(&logits, &y).map_err(ce)?;
            let grads = loss.backward().map_err(ce)?;
            opt.step(&vars, &grads)?;
            let l = loss.to_scalar::<f32>().map_err(ce)?;
            if !l.is_finite() {
                return Err(EngineError::Inspect(format!(
                    "train-classifier: the loss became {l} at epoch {} step {}; try a lower --lr",
                    epoch + 1,
                    step + 1
                )));
            }
            loss_sum += f64::from(l) * chunk.len() as f64;
            hits += argmax(&logits)?
                .iter()
                .zip(chunk)
                .filter(|(p, &i)| **p == data.classes[i])
                .count();
            steps_run += 1;
            let done = epoch * steps + step + 1;
            let per = started.elapsed().as_secs_f64() / steps_run as f64;
            let eta_s = per * (cfg.epochs * steps - done) as f64;
            recorder.rec.steps_done = done as u64;
            recorder.rec.losses.push((done as u64, l));
            emit(DetectorEvent::Step {
                epoch: epoch + 1,
                step: step + 1,
                steps,
                loss: l,
                eta_s,
            });
        }
        let mut m = EpochMetrics {
            epoch: epoch as u64 + 1,
            train_loss: (loss_sum / order.len().max(1) as f64) as f32,
            train_accuracy: hits as f32 / order.len().max(1) as f32,
            ..EpochMetrics::default()
        };
        if !val_idx.is_empty() {
            let (loss, acc, bacc) = evaluate(&net, data, &val_idx, cfg, device)?;
            m.val_loss = Some(loss);
            m.val_accuracy = Some(acc);
            m.val_balanced_accuracy = Some(bacc);
        }
        m.seconds = t0.elapsed().as_secs_f64();
        // Early stopping on the validation loss; without validation the last epoch is best.
        let improved = match (m.val_loss, state.best_loss) {
            (None, _) => true,
            (Some(v), None) => v.is_finite(),
            (Some(v), Some(b)) => v < b,
        };
        if improved {
            state.best_loss = m.val_loss;
            state.best_epoch = epoch + 1;
            state.bad_epochs = 0;
            best = snapshot(&vars)?;
        } else {
            state.bad_epochs += 1;
            if cfg.patience > 0 && state.bad_epochs >= cfg.patience {
                state.stopped = true;
            }
        }
        state.epochs_done = epoch + 1;
        state.adam_t = opt.t;
        state.history.push(m.clone());
        save_checkpoint(&ckpt_path, &net, &opt, &best, &state)?;
        emit(DetectorEvent::Saved {
            epoch: epoch + 1,
            path: ckpt_path.clone(),
        });
        recorder.rec.epochs = state.history.clone();
        recorder.save();
        let per_epoch = started.elapsed().as_secs_f64() / (steps_run.max(1) as f64) * steps as f64;
        emit(DetectorEvent::Epoch {
            metrics: m,
            eta_s: per_epoch * (cfg.epochs - state.epochs_done) as f64,
        });
    }
    emit(DetectorEvent::Status(format!(
        "writing {}",
        job.out.display()
    )));
    let meta = ModelMeta {
        kind: DetectorKind::Classifier,
        labels: data.labels.clone(),
        input_size: cfg.size,
        data_hash: hash.to_string(),
        seed: cfg.seed,
        epochs: state.epochs_done,
        best_epoch: state.best_epoch,
        val: state
            .history
            .get(state.best_epoch.saturating_sub(1))
            .cloned(),
        config: serde_json::to_value(cfg)?,
    };
    let tensors: BTreeMap<String, Tensor> = net.names().iter().cloned().zip(best).collect();
    let sha256 = model_file::write(&job.out, &tensors, &meta)?;
    Ok(DetectorOutcome {
        model: job.out.clone(),
        sha256,
        training_id: recorder.store.as_ref().map(|(_, id)| *id),
        labels: data.labels.clone(),
        epochs: state.history.clone(),
        best_epoch: state.best_epoch,
        stopped_early: state.stopped,
    })
}

/// Copies of the variables' current values.
pub(crate) fn snapshot(vars: &[candle_core::Var]) -> Result<Vec<Tensor>> {
    vars.iter()
        .map(|v| v.as_tensor().copy().map_err(ce))
        .collect()
}

/// The augmented batch of samples `chunk` (in parallel; sample k of the epoch draws from
/// its own RNG, so the order of work does not matter).
#[allow(clippy::too_many_arguments)]
fn batch(
    data: &Prepared,
    chunk: &[usize],
    size: u32,
    aug: &Augment,
    seed: u64,
    epoch: usize,
    step: usize,
    device: &Device,
) -> Result<Tensor> {
    let per: Vec<Vec<f32>> = chunk
        .par_iter()
        .enumerate()
        .map(|(k, &i)| {
            let mut r = rng(seed, Stream::Augment, epoch as u64, (step << 20 | k) as u64);
            aug.apply(&data.images[i], size, &mut r)
        })
        .collect();
    let s = size as usize;
    Tensor::from_vec(per.concat(), (chunk.len(), 3, s, s), device).map_err(ce)
}

fn labels_tensor(data: &Prepared, chunk: &[usize], device: &Device) -> Result<Tensor> {
    let y: Vec<u32> = chunk.iter().map(|&i| data.classes[i] as u32).collect();
    Tensor::from_vec(y, chunk.len(), device).map_err(ce)
}

fn argmax(logits: &Tensor) -> Result<Vec<usize>> {
    Ok(logits
        .argmax(1)
        .and_then(|t| t.to_vec1::<u32>())
        .map_err(ce)?
        .into_iter()
        .map(|v| v as usize)
        .collect())
}

/// Mean loss, accuracy and balanced accuracy on samples `idx`, without augmentation.
fn evaluate(
    net: &Net,
    data: &Prepared,
    idx: &[usize],
    cfg: &ClassifierConfig,
    device: &Device,
) -> Result<(f32, f32, f32)> {
    let (mut loss_sum, mut pred) = (0f64, Vec::new());
    let s = cfg.size as usize;
    for chunk in idx.chunks(cfg.batch.max(1)) {
        let per: Vec<Vec<f32>> = chunk
            .par_iter()
            .map(|&i| to_input(&data.images[i], cfg.size))
            .collect();
        let x = Tensor::from_vec(per.concat(), (chunk.len(), 3, s, s), device).map_err(ce)?;
        let logits = net.classify(&x, None)?.detach();
        let y = labels_tensor(data, chunk, device)?;
        let l = candle_nn::loss::cross_entropy(&logits, &y)
            .and_then(|l| l.to_scalar::<f32>())
            .map_err(ce)?;
        loss_sum += f64::from(l) * chunk.len() as f64;
        pred.extend(argmax(&logits)?);
    }
    let truth: Vec<usize> = idx.iter().map(|&i| data.classes[i]).collect();
    let acc = truth.iter().zip(&pred).filter(|(a, b)| a == b).count() as f32 / idx.len() as f32;
    let bacc = balanced_accuracy(&truth, &pred, data.labels.len());
    Ok(((loss_sum / idx.len() as f64) as f32, acc, bacc))
}

fn save_checkpoint(
    path: &Path,
    net: &Net,
    opt: &AdamW,
    best: &[Tensor],
    state: &CkptState,
) -> Result<()> {
    let mut t = BTreeMap::new();
    for (i, (name, w)) in net.tensors()?.into_iter().enumerate() {
        t.insert(format!("m.{name}"), opt.m[i].clone());
        t.insert(format!("v.{name}"), opt.v[i].clone());
        t.insert(format!("best.{name}"), best[i].clone());
        t.insert(format!("w.{name}"), w);
    }
    let mut meta = BTreeMap::new();
    meta.insert(CKPT_KEY.to_string(), serde_json::to_string(state)?);
    crate::sd::train::io::write_safetensors(path, &t, &meta)
        .map_err(|e| EngineError::Inspect(e.to_string()))
}

fn read_checkpoint(path: &Path) -> Result<(Vec<u8>, CkptState)> {
    let bytes = std::fs::read(path).map_err(|e| EngineError::io(path, e))?;
    let bad = |m: String| EngineError::Inspect(format!("{}: {m}", path.display()));
    let (_, header) =
        safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| bad(e.to_string()))?;
    let json = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(CKPT_KEY))
        .ok_or_else(|| bad("not a train-classifier checkpoint".into()))?;
    let state: CkptState =
        serde_json::from_str(json).map_err(|e| bad(format!("checkpoint state: {e}")))?;
    Ok((bytes, state))
}

/// The network, optimizer and state of a checkpoint, refused (naming the file) when it was
/// made with other settings, data or labels.
fn load_checkpoint(
    path: &Path,
    cfg: &ClassifierConfig,
    hash: &str,
    labels: &[String],
    device: &Device,
) -> Result<(Net, AdamW, CkptState)> {
    let (bytes, state) = read_checkpoint(path)?;
    let bad = |m: &str| {
        Err(EngineError::Inspect(format!(
            "{}: {m}; delete it or leave out --resume to start over",
            path.display()
        )))
    };
    if state.config != *cfg {
        return bad("the checkpoint was made with other settings");
    }
    if state.data_hash != hash || state.labels != labels {
        return bad("the checkpoint was made on other data");
    }
    let err = |e: candle_core::Error| EngineError::Inspect(format!("{}: {e}", path.display()));
    let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, device).map_err(err)?;
    let net = Net::from_folded(&vb.pp("w"), labels.len())?;
    let get = |p: &str| -> Result<Vec<Tensor>> {
        net.vars()?
            .iter()
            .zip(net.names())
            .map(|(v, n)| {
                vb.get(v.as_tensor().dims(), &format!("{p}.{n}"))
                    .map_err(err)
            })
            .collect()
    };
    let opt = AdamW {
        m: get("m")?,
        v: get("v")?,
        t: state.adam_t,
        lr: cfg.lr,
        weight_decay: cfg.weight_decay,
        scales: Vec::new(),
    };
    Ok((net, opt, state))
}

fn load_best(path: &Path, names: &[String], device: &Device) -> Result<Vec<Tensor>> {
    let all = candle_core::safetensors::load(path, device)
        .map_err(|e| EngineError::Inspect(format!("{}: {e}", path.display())))?;
    names
        .iter()
        .map(|n| {
            all.get(&format!("best.{n}")).cloned().ok_or_else(|| {
                EngineError::Inspect(format!("{}: no tensor best.{n}", path.display()))
            })
        })
        .collect()
}
