//! LoRA training on candle's autograd, for SD 1.x, 2.x and SDXL: the UNet, and optionally the
//! text encoder(s).
//!
//! [`LoraTrainer`] holds one low-rank adapter per targeted layer as candle `Var`s, saved
//! with kohya's names (see [`adapters`]): `lora_unet_<module path with . → _>.lora_down.weight`
//! `[rank, in]` (convs: `[rank, in, kh, kw]`), `.lora_up.weight` `[out, rank]` (convs:
//! `[out, rank, 1, 1]`, LoCon's layout), `.alpha`; the module path is diffusers' for SD 1.x/2.x
//! and the LDM one (`input_blocks.4.1…`) for SDXL, as kohya writes them. UNet targets
//! ([`Targets`]): attention q/k/v/out, optionally the transformer feed-forward and the
//! ResNet/sampler convolutions. With [`TrainConfig::train_text_encoder`], every CLIP encoder
//! layer's `self_attn.{q,k,v,out}_proj` and `mlp.fc1/fc2` gets an adapter too (`lora_te_…` for
//! SD 1.x/2.x, `lora_te1_…`/`lora_te2_…` for SDXL's two encoders), same rank and alpha, trained
//! at [`TrainConfig::text_encoder_lr`] (AdamW's second parameter group, same warm-up and
//! schedule). SDXL conditions on both text encoders, the pooled embedding and the
//! micro-conditioning time ids (original size, crop top-left, target size), as diffusers' SDXL
//! training does. The base weights stay frozen: every optimizer step rebuilds the UNet from the
//! model's weight map in which each targeted weight is replaced by `W + alpha/rank · up · down`,
//! computed from the `Var`s, and runs it in [`layers::grad_mode`](super::layers)
//! (differentiable convolution and softmax) so that the backward pass reaches the adapters.
//! The text embeddings are computed once per caption from the base encoders when only the
//! UNet trains; when the text encoder trains they are recomputed at every step from the
//! LoRA-merged encoders, also in grad mode (see [`text`]).
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
//! the UNet adapters' `lora_down` initialisation (kohya's Kaiming-uniform, `U(-1/√in, 1/√in)`;
//! `lora_up` is zero), then the text encoders' (first, then SDXL's second; only when the text
//! encoder is trained, so a UNet-only run draws what it always drew), the VAE posterior samples
//! when [`TrainConfig::sample_latents`] is set, then per sample of each step: the example
//! index, the flip, the timestep and the noise (then the same four for its class image, if
//! any). A checkpoint (see [`LoraTrainer::save_checkpoint`]) holds the adapters (UNet and text
//! encoders), the AdamW moments, the step and the generator state, so a resumed run gives the
//! same weights as an uninterrupted one.
//!
//! [`job`] wraps a run for the studio and the CLI: model loading, cancellation, speed and ETA,
//! sample images every N steps, and the record in the store.
//!
//! Files: the trainer (steps, losses, merged models) here; `run` (the run loop
//! [`train_lora`]); `adapters` (targets, kohya names, initialisation, merging); `text` (text
//! conditioning, the merged encoders); `cache` (encoding the data set once); `config`
//! ([`TrainConfig`], the one definition of the settings and their defaults) and [`fields`] (its
//! field table, from which the CLI flags and the studio's form are built); `optim` (AdamW);
//! `metadata` (kohya's `ss_*` keys); `checkpoint` (saving the LoRA, saving and restoring
//! checkpoints); [`io`] (atomic `.safetensors` writes); [`data`] (folders, captions, buckets).

mod adapters;
mod cache;
mod checkpoint;
mod config;
pub mod data;
pub mod fields;
pub mod io;
pub mod job;
mod metadata;
mod optim;
mod run;
mod text;

pub use config::{LrSchedule, Targets, TrainConfig};
pub use run::{train_lora, Progress, RunOptions, TrainSummary};

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Tensor, Var};
use candle_nn::VarBuilder;

use super::model::SdModel;
use super::scheduler::config::Prediction;
use super::scheduler::{schedule, SchedulerKind};
use super::torch_rng::TorchGenerator;
use super::unet::UNet2DConditionModel;
use crate::error::{EngineError, Result};
use adapters::{Adapter, Part};
use metadata::model_hashes;
use optim::AdamState;
use text::{MergedText, TextCond};

/// One cached example: its caption, latents (unflipped, and flipped when flips are on), the
/// base encoders' text embedding, and for SDXL the pooled embedding and the time ids `[1, 6]`.
struct Cached {
    caption: String,
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
    /// The UNet adapters' learning rate of the step.
    pub lr: f64,
    /// The text-encoder adapters' learning rate of the step, when the text encoder is trained.
    pub text_lr: Option<f64>,
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
        let adapters = adapters::make_all(model, &cfg, &mut gen)?;
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
        let data = cache::cache_examples(model, &cfg, &examples, &mut gen)?;
        let class = cache::cache_examples(model, &cfg, &class_examples, &mut gen)?;
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

    /// Number of adapted layers (UNet and text encoders).
    pub fn num_modules(&self) -> usize {
        self.adapters.len()
    }

    /// Number of adapted text-encoder layers (0 unless the text encoder is trained).
    pub fn num_text_modules(&self) -> usize {
        self.adapters
            .iter()
            .filter(|a| a.part != Part::Unet)
            .count()
    }

    /// The DreamBooth class images (empty without a class folder).
    pub fn class_examples(&self) -> &[data::Example] {
        &self.class_examples
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

    /// The model with the current adapters merged (detached), e.g. to draw sample images: the
    /// UNet's and, when the text encoder is trained, the text encoders'.
    pub fn merged_model(&self) -> Result<SdModel> {
        let detached = |map: HashMap<String, Tensor>| -> std::sync::Arc<HashMap<String, Tensor>> {
            std::sync::Arc::new(map.into_iter().map(|(k, t)| (k, t.detach())).collect())
        };
        let mut weights = super::model::Weights {
            unet: detached(self.merged_unet()?),
            ..self.model.weights.clone()
        };
        if self.cfg.train_text_encoder {
            weights.text_encoder = detached(self.merged(Part::Text1)?);
            if self.model.text_encoder_2.is_some() {
                weights.text_encoder_2 = Some(detached(self.merged(Part::Text2)?));
            }
        }
        self.model.with_weights(
            weights,
            format!("{} + LoRA at step {}", self.model.source, self.step),
        )
    }

    /// The UNet weight map with every adapter merged: `W + alpha/rank · up · down`.
    fn merged_unet(&self) -> Result<HashMap<String, Tensor>> {
        self.merged(Part::Unet)
    }

    /// One component's weight map with its adapters merged.
    fn merged(&self, part: Part) -> Result<HashMap<String, Tensor>> {
        adapters::merged(self.model, &self.cfg, &self.adapters, part)
    }

    /// The text encoders with the current adapters merged, when the text encoder is trained
    /// (built in grad mode, they carry the adapters' graph).
    fn merged_text(&self) -> Result<Option<MergedText>> {
        if !self.cfg.train_text_encoder {
            return Ok(None);
        }
        MergedText::new(self.model, &self.cfg, &self.adapters).map(Some)
    }

    /// The text embedding and SDXL's added conditioning of `ex`: cached from the base encoders,
    /// or from the merged encoders `text` (each caption encoded once per `memo`).
    fn conditioning(
        &self,
        ex: &Cached,
        text: Option<&MergedText>,
        memo: &mut HashMap<String, TextCond>,
    ) -> Result<(Tensor, Option<super::unet::AddedCond>)> {
        let Some(text) = text else {
            return Ok((ex.embeds.clone(), ex.added.clone()));
        };
        let (embeds, pooled) = text.encode(self.model, &ex.caption, memo)?;
        let added = match (&ex.added, pooled) {
            (Some(a), Some(text_embeds)) => Some(super::unet::AddedCond {
                text_embeds,
                time_ids: a.time_ids.clone(),
            }),
            _ => None,
        };
        Ok((embeds, added))
    }

    /// The loss of one example at timestep `t` with `noise` (unweighted MSE and its min-SNR
    /// weight), as a scalar tensor carrying the graph.
    fn sample_loss(
        &self,
        unet: &UNet2DConditionModel,
        x0: &Tensor,
        cond: &(Tensor, Option<super::unet::AddedCond>),
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
                &cond.0,
                cond.1.as_ref(),
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
        let text = self.merged_text()?;
        let mut memo = HashMap::new();
        let n_vars = self.adapters.len() * 2;
        let mut acc: Vec<Option<Tensor>> = vec![None; n_vars];
        let denom = (self.cfg.batch * self.cfg.grad_accum) as f64;
        let mut total = 0f64;
        let nt = self.alphas_cumprod.len();
        for _ in 0..self.cfg.grad_accum {
            let mut losses = Vec::with_capacity(self.cfg.batch);
            for _ in 0..self.cfg.batch {
                let (idx, x0, t, noise) = self.draw(false, nt)?;
                let cond = self.conditioning(&self.data[idx], text.as_ref(), &mut memo)?;
                losses.push(self.sample_loss(&unet, &x0, &cond, t, &noise)?);
                if !self.class.is_empty() {
                    let (idx, x0, t, noise) = self.draw(true, nt)?;
                    let cond = self.conditioning(&self.class[idx], text.as_ref(), &mut memo)?;
                    let prior = self.sample_loss(&unet, &x0, &cond, t, &noise)?;
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
        drop(text);
        drop(memo);
        let lr = self.cfg.lr_at(self.step);
        let text_lr = self.cfg.text_encoder_lr_at(self.step);
        self.adamw(&acc, lr, text_lr)?;
        self.step += 1;
        Ok(StepInfo {
            step: self.step,
            total: self.cfg.steps,
            loss: total as f32,
            lr,
            text_lr: self.cfg.train_text_encoder.then_some(text_lr),
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
        let text = self.merged_text()?;
        let mut memo = HashMap::new();
        let mut gen = TorchGenerator::new(seed);
        let nt = self.alphas_cumprod.len();
        let mut sum = 0f64;
        let mut count = 0usize;
        for ex in &self.data {
            let (embeds, added) = self.conditioning(ex, text.as_ref(), &mut memo)?;
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
                        &embeds,
                        added.as_ref(),
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
