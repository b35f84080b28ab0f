//! LoRA training on candle's autograd, for SD 1.x, 2.x and SDXL (UNet only; the text encoders
//! are not trained).
//!
//! [`LoraTrainer`] holds one low-rank adapter per targeted UNet layer as candle `Var`s, saved
//! with kohya's names: `lora_unet_<module path with . → _>.lora_down.weight` `[rank, in]` (convs:
//! `[rank, in, kh, kw]`), `.lora_up.weight` `[out, rank]` (convs: `[out, rank, 1, 1]`, LoCon's
//! layout), `.alpha`; the module path is diffusers' for SD 1.x/2.x and the LDM one
//! (`input_blocks.4.1…`) for SDXL, as kohya writes them. Targets ([`Targets`]): attention
//! q/k/v/out, optionally the transformer feed-forward and the ResNet/sampler convolutions. SDXL
//! conditions on both text encoders, the pooled embedding and the micro-conditioning time ids
//! (original size, crop top-left, target size), as diffusers' SDXL training does. The base
//! weights stay frozen:
//! every optimizer step rebuilds the UNet from the model's weight map in which each targeted
//! weight is replaced by `W + alpha/rank · up · down`, computed from the `Var`s, and runs it in
//! [`layers::grad_mode`](super::layers) (differentiable convolution and softmax) so that the
//! backward pass reaches the adapters.
//!
//! Loss: MSE between the UNet output and the noise (`epsilon`) or the velocity
//! (`v_prediction`), as the model's scheduler config says; timesteps uniform in
//! `[0, num_train_timesteps)`; noisy latents from the config's `alphas_cumprod`; optional
//! min-SNR-γ weighting. AdamW (decoupled weight decay, the update of `candle_nn::AdamW`, kept
//! here so that its moments can be checkpointed), linear warm-up then a constant or cosine
//! learning rate, gradient accumulation.
//!
//! Data (see [`data`]): a caption folder or an instance prompt, centre-cropped or bucketed by
//! aspect ratio; with a class folder, every sample also draws a class image whose loss is added
//! with [`TrainConfig::prior_loss_weight`] (DreamBooth's prior preservation).
//!
//! Every random draw comes from one [`TorchGenerator`] seeded by the user seed, in this order:
//! the `lora_down` initialisation (kohya's Kaiming-uniform, `U(-1/√in, 1/√in)`; `lora_up` is
//! zero), the VAE posterior samples when [`TrainConfig::sample_latents`] is set, then per
//! sample of each step: the example index, the flip, the timestep and the noise (then the same
//! four for its class image, if any). A checkpoint
//! (see [`LoraTrainer::save_checkpoint`]) holds the adapters, the AdamW moments, the step and
//! the generator state, so a resumed run gives the same weights as an uninterrupted one.
//!
//! [`job`] wraps a run for the studio and the CLI: model loading, cancellation, speed and ETA,
//! sample images every N steps, and the record in the store.
//!
//! Files: the trainer and the run loop here; `config` ([`TrainConfig`], the one definition of
//! the settings and their defaults) and [`fields`] (its field table, from which the CLI flags
//! and the studio's form are built); `optim` (AdamW); `metadata` (kohya's `ss_*` keys);
//! `checkpoint` (saving the LoRA, saving and restoring checkpoints); [`io`] (atomic
//! `.safetensors` writes); [`data`] (folders, captions, buckets).

mod checkpoint;
mod config;
pub mod data;
pub mod fields;
pub mod io;
pub mod job;
mod metadata;
mod optim;

pub use config::{LrSchedule, Targets, TrainConfig};

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Tensor, Var};
use candle_nn::VarBuilder;

use super::model::{Family, SdModel};
use super::scheduler::config::Prediction;
use super::scheduler::{schedule, SchedulerKind};
use super::torch_rng::TorchGenerator;
use super::unet::UNet2DConditionModel;
use crate::error::{EngineError, Result};
use metadata::model_hashes;
use optim::AdamState;

/// One adapter: the target weight's key in the UNet weight map, its shape, and its factors
/// (`down` `[rank, in·kh·kw]`, `up` `[out, rank]`; reshaped to kohya's 4-D layout for convs).
struct Adapter {
    /// kohya module name (`lora_unet_…`).
    name: String,
    key: String,
    shape: Vec<usize>,
    down: Var,
    up: Var,
}

impl Adapter {
    /// kohya's shapes of `lora_down` and `lora_up`.
    fn kohya_shapes(&self) -> (Vec<usize>, Vec<usize>) {
        let r = self.up.as_tensor().dim(1).unwrap_or(0);
        if self.shape.len() == 4 {
            let s = &self.shape;
            (vec![r, s[1], s[2], s[3]], vec![s[0], r, 1, 1])
        } else {
            (vec![r, self.shape[1]], vec![self.shape[0], r])
        }
    }
}

/// One cached example: latents (unflipped, and flipped when flips are on), the text embedding,
/// and for SDXL the pooled embedding and the time ids `[1, 6]`.
struct Cached {
    latents: Vec<Tensor>,
    embeds: Tensor,
    added: Option<super::unet::AddedCond>,
}

/// What one optimizer step did.
#[derive(Clone, Copy, Debug)]
pub struct StepInfo {
    /// Optimizer steps done (1-based after the step).
    pub step: usize,
    pub total: usize,
    /// The (weighted) loss of the step, averaged over its samples.
    pub loss: f32,
    pub lr: f64,
}

fn ce(e: candle_core::Error) -> EngineError {
    EngineError::failed(format!("train-lora: {e}"))
}

/// A LoRA trainer over a loaded model and a cached data set.
pub struct LoraTrainer<'m> {
    model: &'m SdModel,
    cfg: TrainConfig,
    adapters: Vec<Adapter>,
    opt: AdamState,
    data: Vec<Cached>,
    /// DreamBooth class images (empty without a class folder).
    class: Vec<Cached>,
    alphas_cumprod: Vec<f32>,
    prediction: Prediction,
    gen: TorchGenerator,
    step: usize,
    data_dir: PathBuf,
    examples: Vec<data::Example>,
    class_examples: Vec<data::Example>,
    /// The base model's sha256 and A1111's legacy 8-digit hash, for the metadata.
    model_hash: Option<(String, String)>,
}

impl<'m> LoraTrainer<'m> {
    /// Prepares training: creates the adapters, then encodes every image of `data_dir` with the
    /// VAE and every caption with the text encoder (once).
    pub fn new(model: &'m SdModel, cfg: TrainConfig, data_dir: &Path) -> Result<Self> {
        cfg.check()?;
        if model.is_inpaint() {
            return Err(EngineError::failed(format!(
                "{}: LoRA training needs a 4-channel (non-inpainting) UNet",
                model.source
            )));
        }
        let examples = data::scan_folder(data_dir, cfg.instance_prompt.as_deref())?;
        let class_examples = match &cfg.class_data {
            Some(dir) => data::scan_folder(dir, cfg.class_prompt.as_deref())?,
            None => Vec::new(),
        };
        let sched = super::scheduler::config::resolve(SchedulerKind::Ddim, &model.scheduler_config)
            .map_err(|e| EngineError::failed(format!("{}: scheduler config: {e}", model.source)))?;
        let betas = schedule::betas(&sched)
            .map_err(|e| EngineError::failed(format!("{}: scheduler config: {e}", model.source)))?;
        let alphas_cumprod = schedule::alphas_cumprod(&betas);
        if sched.prediction == Prediction::Sample {
            return Err(EngineError::failed(format!(
                "{}: prediction_type `sample` is not supported for training",
                model.source
            )));
        }
        let mut gen = TorchGenerator::new(cfg.seed);
        let adapters = make_adapters(model, &cfg, &mut gen)?;
        if adapters.is_empty() {
            return Err(EngineError::failed(format!(
                "{}: no UNet layer matches the LoRA targets",
                model.source
            )));
        }
        let mut vars = Vec::new();
        for a in &adapters {
            vars.push(a.down.as_tensor().zeros_like().map_err(ce)?);
            vars.push(a.up.as_tensor().zeros_like().map_err(ce)?);
        }
        let opt = AdamState {
            m: vars.clone(),
            v: vars,
            t: 0,
        };
        let data = cache_examples(model, &cfg, &examples, &mut gen)?;
        let class = cache_examples(model, &cfg, &class_examples, &mut gen)?;
        Ok(LoraTrainer {
            model,
            cfg,
            adapters,
            opt,
            data,
            class,
            alphas_cumprod,
            prediction: sched.prediction,
            gen,
            step: 0,
            data_dir: data_dir.to_path_buf(),
            examples,
            class_examples,
            model_hash: model_hashes(Path::new(&model.source)),
        })
    }

    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    /// Optimizer steps done.
    pub fn step(&self) -> usize {
        self.step
    }

    /// Changes the total number of steps (e.g. to extend a resumed run).
    pub fn set_total_steps(&mut self, steps: usize) {
        self.cfg.steps = steps;
    }

    /// Number of adapted UNet layers.
    pub fn num_modules(&self) -> usize {
        self.adapters.len()
    }

    pub fn examples(&self) -> &[data::Example] {
        &self.examples
    }

    fn vars(&self) -> Vec<&Var> {
        self.adapters
            .iter()
            .flat_map(|a| [&a.down, &a.up])
            .collect()
    }

    /// The UNet with the current adapters merged into its weights, differentiable w.r.t. them.
    /// Must be built (and run) in grad mode.
    fn unet(&self) -> Result<UNet2DConditionModel> {
        let vb =
            VarBuilder::from_tensors(self.merged_unet()?, self.model.dtype, &self.model.device);
        UNet2DConditionModel::new(vb, &self.model.unet_config).map_err(ce)
    }

    /// The model with the current adapters merged (detached), e.g. to draw sample images.
    pub fn merged_model(&self) -> Result<SdModel> {
        let unet: HashMap<String, Tensor> = self
            .merged_unet()?
            .into_iter()
            .map(|(k, t)| (k, t.detach()))
            .collect();
        let weights = super::model::Weights {
            unet: std::sync::Arc::new(unet),
            ..self.model.weights.clone()
        };
        self.model.with_weights(
            weights,
            format!("{} + LoRA at step {}", self.model.source, self.step),
        )
    }

    /// The UNet weight map with every adapter merged: `W + alpha/rank · up · down`.
    fn merged_unet(&self) -> Result<HashMap<String, Tensor>> {
        let model = self.model;
        let scale = self.cfg.alpha / self.cfg.rank as f64;
        let mut map: HashMap<String, Tensor> = (*model.weights.unet).clone();
        for a in &self.adapters {
            let w = map.get(&a.key).ok_or_else(|| {
                EngineError::failed(format!("{}: missing UNet weight {}", model.source, a.key))
            })?;
            let delta = (a.up.as_tensor().matmul(a.down.as_tensor()).map_err(ce)? * scale)
                .and_then(|d| d.reshape(a.shape.as_slice()))
                .map_err(ce)?;
            let merged = w
                .to_dtype(DType::F32)
                .and_then(|w| w + delta)
                .and_then(|w| w.to_dtype(model.dtype))
                .map_err(ce)?;
            map.insert(a.key.clone(), merged);
        }
        Ok(map)
    }

    /// The loss of one example at timestep `t` with `noise` (unweighted MSE and its min-SNR
    /// weight), as a scalar tensor carrying the graph.
    fn sample_loss(
        &self,
        unet: &UNet2DConditionModel,
        x0: &Tensor,
        ex: &Cached,
        t: usize,
        noise: &Tensor,
    ) -> Result<Tensor> {
        let a = f64::from(self.alphas_cumprod[t]);
        let (sa, s1) = (a.sqrt(), (1.0 - a).sqrt());
        let xt = ((x0 * sa).map_err(ce)? + (noise * s1).map_err(ce)?).map_err(ce)?;
        let target = match self.prediction {
            Prediction::VPrediction => {
                ((noise * sa).map_err(ce)? - (x0 * s1).map_err(ce)?).map_err(ce)?
            }
            _ => noise.clone(),
        };
        let pred = unet
            .forward(
                &xt.to_dtype(self.model.dtype).map_err(ce)?,
                t as f64,
                &ex.embeds,
                ex.added.as_ref(),
            )
            .and_then(|p| p.to_dtype(DType::F32))
            .map_err(ce)?;
        let mse = (pred - target)
            .and_then(|d| d.sqr())
            .and_then(|d| d.mean_all())
            .map_err(ce)?;
        let w = match self.cfg.min_snr_gamma {
            Some(gamma) => {
                let snr = a / (1.0 - a);
                match self.prediction {
                    Prediction::VPrediction => snr.min(gamma) / (snr + 1.0),
                    _ => snr.min(gamma) / snr,
                }
            }
            None => 1.0,
        };
        (mse * w).map_err(ce)
    }

    fn randn(&mut self, like: &Tensor) -> Result<Tensor> {
        let v = self.gen.randn(like.elem_count());
        Tensor::from_vec(v, like.shape(), like.device()).map_err(ce)
    }

    /// One optimizer step (`grad_accum` micro-batches of `batch` examples); returns its loss.
    pub fn train_step(&mut self) -> Result<StepInfo> {
        let _grad = super::layers::enable_grad_mode();
        let unet = self.unet()?;
        let n_vars = self.adapters.len() * 2;
        let mut acc: Vec<Option<Tensor>> = vec![None; n_vars];
        let denom = (self.cfg.batch * self.cfg.grad_accum) as f64;
        let mut total = 0f64;
        let nt = self.alphas_cumprod.len();
        for _ in 0..self.cfg.grad_accum {
            let mut losses = Vec::with_capacity(self.cfg.batch);
            for _ in 0..self.cfg.batch {
                let (idx, x0, t, noise) = self.draw(false, nt)?;
                losses.push(self.sample_loss(&unet, &x0, &self.data[idx], t, &noise)?);
                if !self.class.is_empty() {
                    let (idx, x0, t, noise) = self.draw(true, nt)?;
                    let prior = self.sample_loss(&unet, &x0, &self.class[idx], t, &noise)?;
                    losses.push((prior * self.cfg.prior_loss_weight).map_err(ce)?);
                }
            }
            let loss = (Tensor::stack(&losses, 0)
                .and_then(|l| l.sum_all())
                .map_err(ce)?
                / denom)
                .map_err(ce)?;
            total += f64::from(loss.to_scalar::<f32>().map_err(ce)?);
            let grads = loss.backward().map_err(ce)?;
            for (slot, var) in acc.iter_mut().zip(self.vars()) {
                if let Some(g) = grads.get(var.as_tensor()) {
                    *slot = Some(match slot.take() {
                        Some(prev) => (prev + g).map_err(ce)?,
                        None => g.clone(),
                    });
                }
            }
        }
        drop(unet);
        let lr = self.cfg.lr_at(self.step);
        self.adamw(&acc, lr)?;
        self.step += 1;
        Ok(StepInfo {
            step: self.step,
            total: self.cfg.steps,
            loss: total as f32,
            lr,
        })
    }

    /// Draws one training sample (from the class images when `class`): the example, its flip,
    /// the timestep and the noise; returns the example's index, the clean latents, `t` and the
    /// noise.
    fn draw(&mut self, class: bool, nt: usize) -> Result<(usize, Tensor, usize, Tensor)> {
        let n = if class {
            self.class.len()
        } else {
            self.data.len()
        };
        let idx = ((self.gen.rand_f64(1)[0] * n as f64) as usize).min(n - 1);
        let flip = self.cfg.flip && self.gen.rand_f64(1)[0] < 0.5;
        let t = ((self.gen.rand_f64(1)[0] * nt as f64) as usize).min(nt - 1);
        let ex = if class {
            &self.class[idx]
        } else {
            &self.data[idx]
        };
        let x0 = ex.latents[usize::from(flip)].clone();
        let noise = self.randn(&x0)?;
        Ok((idx, x0, t, noise))
    }

    /// The mean (unweighted) loss over every cached example (unflipped) at `timesteps`, with
    /// noise drawn from a separate generator seeded by `seed`: a fixed validation set that does
    /// not touch the training stream.
    pub fn validation_loss(&self, timesteps: &[usize], seed: u64) -> Result<f32> {
        let _grad = super::layers::enable_grad_mode();
        let unet = self.unet()?;
        let mut gen = TorchGenerator::new(seed);
        let nt = self.alphas_cumprod.len();
        let mut sum = 0f64;
        let mut count = 0usize;
        for ex in &self.data {
            for &t in timesteps {
                let x0 = &ex.latents[0];
                let noise = Tensor::from_vec(gen.randn(x0.elem_count()), x0.shape(), x0.device())
                    .map_err(ce)?;
                let a = f64::from(self.alphas_cumprod[t.min(nt - 1)]);
                let xt = ((x0 * a.sqrt()).map_err(ce)?
                    + (&noise * (1.0 - a).sqrt()).map_err(ce)?)
                .map_err(ce)?;
                let target = match self.prediction {
                    Prediction::VPrediction => ((&noise * a.sqrt()).map_err(ce)?
                        - (x0 * (1.0 - a).sqrt()).map_err(ce)?)
                    .map_err(ce)?,
                    _ => noise.clone(),
                };
                let pred = unet
                    .forward(
                        &xt.to_dtype(self.model.dtype).map_err(ce)?,
                        t as f64,
                        &ex.embeds,
                        ex.added.as_ref(),
                    )
                    .and_then(|p| p.to_dtype(DType::F32))
                    .map_err(ce)?
                    .detach();
                let mse = (pred - target)
                    .and_then(|d| d.sqr())
                    .and_then(|d| d.mean_all())
                    .and_then(|d| d.to_scalar::<f32>())
                    .map_err(ce)?;
                sum += f64::from(mse);
                count += 1;
            }
        }
        Ok((sum / count.max(1) as f64) as f32)
    }
}

/// The adapters for every targeted 2-D weight of the UNet, sorted by key, `lora_down`
/// initialised from `gen`.
fn make_adapters(
    model: &SdModel,
    cfg: &TrainConfig,
    gen: &mut TorchGenerator,
) -> Result<Vec<Adapter>> {
    let mut keys: Vec<&String> = model
        .weights
        .unet
        .keys()
        .filter(|k| cfg.targets.covers(k))
        .collect();
    keys.sort();
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        let shape = model.weights.unet[key].dims().to_vec();
        // A linear [out, in] or a conv [out, in, kh, kw]: the factors see it as [out, in·kh·kw].
        let (o, i) = match shape.as_slice() {
            [o, i] => (*o, *i),
            [o, i, kh, kw] => (*o, i * kh * kw),
            _ => {
                return Err(EngineError::failed(format!(
                    "{}: {key}: shape {shape:?} is neither a linear nor a conv weight",
                    model.source
                )))
            }
        };
        let bound = 1.0 / (i as f32).sqrt();
        let init: Vec<f32> = gen
            .rand(cfg.rank * i)
            .into_iter()
            .map(|u| (2.0 * u - 1.0) * bound)
            .collect();
        let dev = &model.device;
        let down = Tensor::from_vec(init, (cfg.rank, i), dev).map_err(ce)?;
        let down = Var::from_tensor(&down).map_err(ce)?;
        let up = Var::zeros((o, cfg.rank), DType::F32, dev).map_err(ce)?;
        let module = key.strip_suffix(".weight").unwrap_or(key);
        // kohya names SDXL modules by their LDM path.
        let named = match model.family {
            Family::Sdxl => {
                super::lora::ldm_unet_path(module, &model.unet_config).ok_or_else(|| {
                    EngineError::failed(format!(
                        "{}: {module}: no LDM name for this UNet module",
                        model.source
                    ))
                })?
            }
            _ => module.to_string(),
        };
        out.push(Adapter {
            name: format!("lora_unet_{}", named.replace('.', "_")),
            key: key.clone(),
            shape,
            down,
            up,
        });
    }
    Ok(out)
}

/// Encodes every example once: latents (× scaling factor; posterior mean or a seeded sample;
/// flipped too when flips are on) and the caption's text embedding.
fn cache_examples(
    model: &SdModel,
    cfg: &TrainConfig,
    examples: &[data::Example],
    gen: &mut TorchGenerator,
) -> Result<Vec<Cached>> {
    let dev = &model.device;
    let te = &model.text_encoder;
    // Per caption: the text embedding, and for SDXL the pooled one.
    let mut embeds_by_caption: HashMap<String, (Tensor, Option<Tensor>)> = HashMap::new();
    let mut out = Vec::with_capacity(examples.len());
    let buckets = data::buckets(cfg.resolution);
    for ex in examples {
        let at =
            |e: candle_core::Error| EngineError::failed(format!("{}: {e}", ex.image.display()));
        let rgb = data::open_rgb(&ex.image)?;
        let size = if cfg.buckets {
            data::bucket_for(rgb.width(), rgb.height(), &buckets)
                .unwrap_or((cfg.resolution, cfg.resolution))
        } else {
            (cfg.resolution, cfg.resolution)
        };
        let mut latents = Vec::new();
        for flipped in [false, true] {
            if flipped && !cfg.flip {
                break;
            }
            let img = data::prepare_image(&rgb, size, flipped, dev)
                .and_then(|t| t.to_dtype(model.vae_dtype))
                .map_err(at)?;
            let dist = model.vae.encode(&img).map_err(at)?;
            let z = if cfg.sample_latents {
                let noise =
                    Tensor::from_vec(gen.randn(dist.mean.elem_count()), dist.mean.shape(), dev)
                        .and_then(|n| n.to_dtype(model.vae_dtype))
                        .map_err(at)?;
                dist.sample_with(&noise).map_err(at)?
            } else {
                dist.mean.clone()
            };
            let mut z = (z.to_dtype(DType::F32).map_err(at)? * model.vae_config.scaling_factor)
                .map_err(at)?;
            if let Some(shift) = model.vae_config.shift_factor {
                z = (z - shift * model.vae_config.scaling_factor).map_err(at)?;
            }
            latents.push(z.detach());
        }
        let (embeds, pooled) = match embeds_by_caption.get(&ex.caption) {
            Some(e) => e.clone(),
            None => {
                let e = match &model.text_encoder_2 {
                    Some(te2) => super::clip::text_model::encode_sdxl(
                        &te.model,
                        &te.tokenizer,
                        &te2.model,
                        &te2.tokenizer,
                        &ex.caption,
                        false,
                    )
                    .and_then(|(e, p)| {
                        Ok((e.to_dtype(model.dtype)?, Some(p.to_dtype(model.dtype)?)))
                    })
                    .map_err(at)?,
                    None => (
                        super::clip::text_model::encode_sd(
                            &te.model,
                            &te.tokenizer,
                            &ex.caption,
                            1,
                            false,
                        )
                        .and_then(|e| e.to_dtype(model.dtype))
                        .map_err(at)?,
                        None,
                    ),
                };
                let e = (e.0.detach(), e.1.map(|p| p.detach()));
                embeds_by_caption.insert(ex.caption.clone(), e.clone());
                e
            }
        };
        let added = match pooled {
            Some(text_embeds) => {
                let ids = data::sdxl_time_ids(rgb.width(), rgb.height(), size);
                Some(super::unet::AddedCond {
                    text_embeds,
                    time_ids: Tensor::from_vec(ids.to_vec(), (1, 6), dev)
                        .and_then(|t| t.to_dtype(model.dtype))
                        .map_err(at)?,
                })
            }
            None => None,
        };
        out.push(Cached {
            latents,
            embeds,
            added,
        });
    }
    Ok(out)
}

/// Where to write, and how often.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The LoRA `.safetensors`.
    pub out: PathBuf,
    /// The checkpoint file; `None` = `<out stem>.ckpt.safetensors` beside `out`.
    pub checkpoint: Option<PathBuf>,
    /// Write a checkpoint (and the LoRA) every N steps; 0 = only at the end.
    pub save_every: usize,
    /// Continue from the checkpoint if it exists.
    pub resume: bool,
}

impl RunOptions {
    pub fn checkpoint_path(&self) -> PathBuf {
        self.checkpoint.clone().unwrap_or_else(|| {
            let stem = self
                .out
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "lora".into());
            self.out.with_file_name(format!("{stem}.ckpt.safetensors"))
        })
    }
}

/// How a run went.
#[derive(Clone, Debug)]
pub struct TrainSummary {
    pub steps: usize,
    /// The step the run started from (0, or the checkpoint's).
    pub resumed_from: usize,
    pub modules: usize,
    pub images: usize,
    pub class_images: usize,
    pub last_loss: Option<f32>,
}

/// What [`train_lora`] reports as it goes.
pub enum Progress<'a, 'm> {
    /// The trainer is ready (data cached, checkpoint restored): nothing trained yet this run.
    Ready(&'a LoraTrainer<'m>),
    /// An optimizer step is done; `saved` = a checkpoint and the LoRA were just written.
    Step {
        trainer: &'a LoraTrainer<'m>,
        info: StepInfo,
        saved: bool,
    },
}

/// Trains a LoRA: prepares the trainer, resumes from the checkpoint if asked, steps to
/// `cfg.steps` calling `on_progress` after each (an error from it — e.g.
/// [`EngineError::Cancelled`] — stops the run, keeping the last checkpoint), writes a
/// checkpoint and the LoRA every `save_every` steps and at the end.
pub fn train_lora(
    model: &SdModel,
    cfg: TrainConfig,
    data_dir: &Path,
    run: &RunOptions,
    on_progress: &mut dyn FnMut(Progress) -> Result<()>,
) -> Result<TrainSummary> {
    let ckpt = run.checkpoint_path();
    for file in [&run.out, &ckpt] {
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| EngineError::io(dir, e))?;
        }
    }
    let mut trainer = LoraTrainer::new(model, cfg, data_dir)?;
    if run.resume && ckpt.is_file() {
        trainer.load_checkpoint(&ckpt)?;
    }
    let resumed_from = trainer.step();
    on_progress(Progress::Ready(&trainer))?;
    let mut last_loss = None;
    while trainer.step() < trainer.config().steps {
        let info = trainer.train_step()?;
        last_loss = Some(info.loss);
        if !info.loss.is_finite() {
            return Err(EngineError::failed(format!(
                "train-lora: the loss became {} at step {} (lower the learning rate?)",
                info.loss, info.step
            )));
        }
        let saved = run.save_every > 0 && info.step % run.save_every == 0 && info.step < info.total;
        if saved {
            trainer.save_checkpoint(&ckpt)?;
            trainer.save_lora(&run.out)?;
        }
        on_progress(Progress::Step {
            trainer: &trainer,
            info,
            saved,
        })?;
    }
    trainer.save_checkpoint(&ckpt)?;
    trainer.save_lora(&run.out)?;
    Ok(TrainSummary {
        steps: trainer.step(),
        resumed_from,
        modules: trainer.num_modules(),
        images: trainer.examples().len(),
        class_images: trainer.class_examples.len(),
        last_loss,
    })
}
