//! A LoRA training run as the studio's Training panel and `defect-studio train-lora` both run
//! it: [`TrainJob`] names the base model, the data and the settings; [`run_job`] loads the
//! model, trains through [`train_lora`](super::train_lora), reports [`TrainEvent`]s (steps
//! with speed and ETA, sample images every N steps, checkpoints), stops within one step when
//! its [`CancelToken`] is cancelled (the last checkpoint stays, so the run can resume), and
//! records the run, its loss curve, its samples and the LoRA's hash in the store
//! ([`TrainingRecord`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use super::{train_lora, Progress, RunOptions, TrainConfig, TrainSummary};
use crate::error::{EngineError, Result};
use crate::exec::CancelToken;
use crate::image::Image;
use crate::sd::pipeline::{generate, GenerateParams};
use crate::store::{now_ms, RunStatus, Store, TrainingRecord};

/// Sample images drawn with the LoRA as it trains.
#[derive(Clone, Debug, PartialEq)]
pub struct SampleSpec {
    /// Every N optimizer steps (and after the last step); 0 = never.
    pub every: usize,
    pub prompt: String,
    pub negative: Option<String>,
    pub steps: usize,
    pub cfg: f64,
    pub seed: u64,
}

/// One training run.
#[derive(Clone, Debug)]
pub struct TrainJob {
    /// The base checkpoint: a path, or a name in the model folders.
    pub model: String,
    /// `cpu`, `cuda`, `cuda:N`.
    pub device: String,
    /// `auto` (f32 on the CPU, f16 on CUDA), `f32`, `f16`, `bf16`: the base weights' dtype (the
    /// adapters and their optimizer state are always f32).
    pub dtype: String,
    pub data: PathBuf,
    pub cfg: TrainConfig,
    pub run: RunOptions,
    pub sample: Option<SampleSpec>,
    /// Where sample PNGs go (`None`: `<LoRA stem>-samples/` beside the LoRA).
    pub samples_dir: Option<PathBuf>,
    /// The store to record the run in (`None`: not recorded).
    pub store: Option<PathBuf>,
}

impl TrainJob {
    /// The LoRA's name: its file stem.
    pub fn name(&self) -> String {
        self.run
            .out
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "lora".into())
    }

    pub fn samples_dir(&self) -> PathBuf {
        self.samples_dir.clone().unwrap_or_else(|| {
            self.run
                .out
                .with_file_name(format!("{}-samples", self.name()))
        })
    }

    /// The settings as the record keeps them: the serialised [`TrainConfig`] (every field,
    /// under its own name) and the job's own options.
    fn params(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(&self.cfg).unwrap_or_default();
        if let Some(m) = v.as_object_mut() {
            let job = serde_json::json!({
                "device": self.device, "dtype": self.dtype, "save_every": self.run.save_every,
                "sample_every": self.sample.as_ref().map(|s| s.every),
                "sample_prompt": self.sample.as_ref().map(|s| s.prompt.clone()),
            });
            if let serde_json::Value::Object(extra) = job {
                m.extend(extra);
            }
        }
        v
    }

    /// The training settings a record's `params` hold (what [`TrainJob::params`] wrote; the
    /// job's own options are ignored, missing settings take their defaults).
    pub fn config_of(params: &serde_json::Value) -> Result<TrainConfig> {
        serde_json::from_value(params.clone())
            .map_err(|e| EngineError::failed(format!("train-lora: stored settings: {e}")))
    }
}

/// What a running job reports.
#[derive(Clone, Debug)]
pub enum TrainEvent {
    /// A phase that takes a while (loading, caching latents).
    Status(String),
    /// Training is about to start (data cached, checkpoint restored).
    Started {
        training_id: Option<u64>,
        total: usize,
        resumed_from: usize,
        images: usize,
        class_images: usize,
        /// Adapted layers, UNet and text encoders.
        modules: usize,
        /// Of which in the text encoder(s).
        text_modules: usize,
    },
    Step {
        step: usize,
        total: usize,
        loss: f32,
        lr: f64,
        /// Optimizer steps per second over this run so far (sampling excluded).
        steps_per_s: f64,
        /// Seconds left at that speed.
        eta_s: f64,
    },
    /// A sample image with the LoRA at `step`.
    Sample {
        step: usize,
        image: Arc<Image>,
        path: PathBuf,
    },
    /// A checkpoint and the LoRA were written.
    Saved { step: usize, path: PathBuf },
}

/// How a job ended well.
#[derive(Clone, Debug)]
pub struct TrainOutcome {
    pub summary: TrainSummary,
    pub training_id: Option<u64>,
    pub lora: PathBuf,
    pub lora_sha256: String,
}

/// The record kept in the store while the job runs.
struct Recorder {
    store: Option<(Store, u64)>,
    rec: TrainingRecord,
}

impl Recorder {
    fn save(&mut self) {
        if let Some((store, id)) = &self.store {
            // A store hiccup must not kill hours of training: the LoRA files are the truth.
            let _ = store.update_training(*id, &self.rec);
        }
    }
}

/// Runs `job`, reporting through `emit`; see the module docs.
pub fn run_job(
    job: &TrainJob,
    cancel: &CancelToken,
    emit: &mut dyn FnMut(TrainEvent),
) -> Result<TrainOutcome> {
    use crate::sd::{model, nodes as sdn};
    emit(TrainEvent::Status(format!("loading {}", job.model)));
    let path = sdn::resolve_checkpoint(&job.model)?;
    let device = sdn::parse_device(&job.device)?;
    let dtype = sdn::parse_dtype(&job.dtype, &device)?;
    let opts = model::LoadOptions {
        dtype,
        device,
        ..model::LoadOptions::default()
    };
    let base = model::load_cached(&path, &opts)?;
    let mut recorder = Recorder {
        store: None,
        rec: TrainingRecord {
            kind: crate::store::TrainingKind::Lora,
            name: job.name(),
            model: path.display().to_string(),
            model_sha256: None,
            data: job.data.display().to_string(),
            lora_path: job.run.out.display().to_string(),
            lora_sha256: None,
            checkpoint_path: job.run.checkpoint_path().display().to_string(),
            params: job.params(),
            status: RunStatus::Running,
            pid: std::process::id(),
            started_ms: now_ms(),
            ended_ms: None,
            steps_done: 0,
            steps_total: job.cfg.steps as u64,
            resumed_from: 0,
            losses: Vec::new(),
            samples: Vec::new(),
            epochs: Vec::new(),
            error: None,
        },
    };
    if let Some(p) = &job.store {
        let store = Store::open(p)?;
        let id = store.begin_training(&recorder.rec)?;
        recorder.store = Some((store, id));
    }
    let training_id = recorder.store.as_ref().map(|(_, id)| *id);
    emit(TrainEvent::Status(
        "encoding the images and captions (once)".into(),
    ));
    let mut started: Option<(Instant, usize)> = None;
    let mut sampling_s = 0f64;
    let samples_dir = job.samples_dir();
    let result = train_lora(
        &base,
        job.cfg.clone(),
        &job.data,
        &job.run,
        &mut |p| match p {
            Progress::Ready(trainer) => {
                recorder.rec.resumed_from = trainer.step() as u64;
                recorder.rec.steps_done = trainer.step() as u64;
                recorder.rec.model_sha256 = trainer.model_hash.as_ref().map(|h| h.0.clone());
                recorder.save();
                started = Some((Instant::now(), trainer.step()));
                emit(TrainEvent::Started {
                    training_id,
                    total: trainer.config().steps,
                    resumed_from: trainer.step(),
                    images: trainer.examples().len(),
                    class_images: trainer.class_examples.len(),
                    modules: trainer.num_modules(),
                    text_modules: trainer.num_text_modules(),
                });
                Ok(())
            }
            Progress::Step {
                trainer,
                info,
                saved,
            } => {
                let (t0, first) = started.unwrap_or((Instant::now(), 0));
                let elapsed = (t0.elapsed().as_secs_f64() - sampling_s).max(1e-9);
                let speed = (info.step - first) as f64 / elapsed;
                let eta = info.total.saturating_sub(info.step) as f64 / speed.max(1e-9);
                recorder.rec.steps_done = info.step as u64;
                recorder.rec.losses.push((info.step as u64, info.loss));
                emit(TrainEvent::Step {
                    step: info.step,
                    total: info.total,
                    loss: info.loss,
                    lr: info.lr,
                    steps_per_s: speed,
                    eta_s: eta,
                });
                if saved {
                    emit(TrainEvent::Saved {
                        step: info.step,
                        path: job.run.out.clone(),
                    });
                }
                let sample_now = job.sample.as_ref().filter(|s| {
                    s.every > 0 && (info.step % s.every == 0 || info.step == info.total)
                });
                if let Some(spec) = sample_now {
                    if cancel.is_cancelled() {
                        return Err(EngineError::Cancelled);
                    }
                    let t = Instant::now();
                    let (image, path) =
                        draw_sample(trainer, spec, &samples_dir, info.step, cancel)?;
                    sampling_s += t.elapsed().as_secs_f64();
                    recorder
                        .rec
                        .samples
                        .push((info.step as u64, path.display().to_string()));
                    emit(TrainEvent::Sample {
                        step: info.step,
                        image: Arc::new(image),
                        path,
                    });
                }
                if saved || sample_now.is_some() || info.step % 10 == 0 {
                    recorder.save();
                }
                if cancel.is_cancelled() {
                    return Err(EngineError::Cancelled);
                }
                Ok(())
            }
        },
    );
    recorder.rec.ended_ms = Some(now_ms());
    match result {
        Ok(summary) => {
            let sha = crate::models::manager::hash_file(&job.run.out, &mut |_, _| {})?;
            recorder.rec.status = RunStatus::Succeeded;
            recorder.rec.lora_sha256 = Some(sha.clone());
            recorder.save();
            emit(TrainEvent::Saved {
                step: summary.steps,
                path: job.run.out.clone(),
            });
            Ok(TrainOutcome {
                summary,
                training_id,
                lora: job.run.out.clone(),
                lora_sha256: sha,
            })
        }
        Err(e) => {
            recorder.rec.status = if matches!(e, EngineError::Cancelled) {
                RunStatus::Cancelled
            } else {
                RunStatus::Failed
            };
            recorder.rec.error = Some(e.to_string());
            recorder.save();
            Err(e)
        }
    }
}

/// Generates the sample image of `spec` with the trainer's current LoRA, at the training
/// resolution, and writes it as `step-NNNNNN.png` in `dir`.
fn draw_sample(
    trainer: &super::LoraTrainer,
    spec: &SampleSpec,
    dir: &Path,
    step: usize,
    cancel: &CancelToken,
) -> Result<(Image, PathBuf)> {
    let model = trainer.merged_model()?;
    let res = trainer.config().resolution;
    let params = GenerateParams {
        prompt: spec.prompt.clone(),
        negative: spec.negative.clone(),
        width: res,
        height: res,
        steps: spec.steps,
        cfg: spec.cfg,
        seed: spec.seed,
        ..GenerateParams::default()
    };
    let mut on_step = |_: usize, _: usize, _: &candle_core::Tensor| {
        if cancel.is_cancelled() {
            Err(EngineError::Cancelled)
        } else {
            Ok(())
        }
    };
    let out = generate(&model, &params, &mut on_step)?;
    let image = out
        .images
        .into_iter()
        .next()
        .ok_or_else(|| EngineError::failed("sample: the pipeline returned no image"))?;
    std::fs::create_dir_all(dir).map_err(|e| EngineError::io(dir, e))?;
    let path = dir.join(format!("step-{step:06}.png"));
    let text = format!(
        "{}\nSteps: {}, CFG scale: {}, Seed: {}, LoRA step: {step}",
        spec.prompt, spec.steps, spec.cfg, spec.seed
    );
    let png = crate::codec::encode_image_png(&image, &[("parameters", text.as_str())])
        .map_err(|e| EngineError::failed(format!("{}: {e}", path.display())))?;
    std::fs::write(&path, png).map_err(|e| EngineError::io(&path, e))?;
    Ok((image, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_keeps_every_setting_and_gives_it_back() {
        let cfg = TrainConfig {
            steps: 7,
            rank: 3,
            min_snr_gamma: Some(5.0),
            class_data: Some(PathBuf::from("/class")),
            class_prompt: Some("a part".into()),
            save_dtype: candle_core::DType::F16,
            ..TrainConfig::default()
        };
        let job = TrainJob {
            model: "m".into(),
            device: "cpu".into(),
            dtype: "auto".into(),
            data: PathBuf::from("/data"),
            cfg: cfg.clone(),
            run: RunOptions {
                out: PathBuf::from("/out/l.safetensors"),
                checkpoint: None,
                save_every: 2,
                resume: false,
            },
            sample: None,
            samples_dir: None,
            store: None,
        };
        let params = job.params();
        for name in TrainConfig::field_names() {
            assert!(params.get(&name).is_some(), "the record lacks `{name}`");
        }
        assert_eq!(params["save_every"], 2);
        assert_eq!(TrainJob::config_of(&params).unwrap(), cfg);
    }
}
