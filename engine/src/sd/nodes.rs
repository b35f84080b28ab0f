//! Executors of the Stable Diffusion node kinds (declared in `nodes::diffusion`): they resolve
//! the checkpoint through the model manager, call [`pipeline::generate`] (the same function the
//! CLI's `generate` uses) and turn its step callback into progress events with previews. A
//! sampler's optional `control` input (ControlNet nodes, [`super::control_nodes`]) becomes
//! [`GenerateParams::controls`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device};
use nodes::FileRole;
use serde::Deserialize;

use super::lora::LoraSpec;
use super::model::{load_cached, LoadOptions};
use super::pipeline::{self, GenerateParams, VaeTiling};
use super::scheduler::SchedulerKind;
use super::ModelHandle;
use crate::error::{EngineError, Result};
use crate::exec::NodeCtx;
use crate::registry::Registry;
use crate::value::{Outputs, Value};

pub(crate) fn register(r: &mut Registry) {
    r.register_typed("LoadCheckpoint", load_checkpoint);
    r.register_typed("LoraLoader", lora_loader);
    r.register_typed("Txt2Img", txt2img);
    r.register_typed("Img2Img", img2img);
    r.register_typed("Inpaint", inpaint);
}

/// Parses `cpu`, `cuda`, `cuda:N` or `auto` (CUDA when available).
pub fn parse_device(name: &str) -> Result<Device> {
    let cuda = |n: usize| {
        Device::new_cuda(n).map_err(|e| {
            EngineError::failed(format!(
                "device cuda:{n}: {e} (this build needs the `cuda` feature and an NVIDIA GPU)"
            ))
        })
    };
    match name {
        "" | "cpu" => Ok(Device::Cpu),
        "auto" => Ok(Device::cuda_if_available(0).unwrap_or(Device::Cpu)),
        "cuda" => cuda(0),
        other => match other.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
            Some(n) => cuda(n),
            None => Err(EngineError::failed(format!(
                "device \"{other}\": use cpu, cuda or cuda:N"
            ))),
        },
    }
}

/// Parses a dtype name; `auto` is f32 on the CPU and f16 on CUDA.
pub fn parse_dtype(name: &str, device: &Device) -> Result<DType> {
    Ok(match name {
        "" | "auto" if device.is_cpu() => DType::F32,
        "" | "auto" => DType::F16,
        "f32" => DType::F32,
        "f16" => DType::F16,
        "bf16" if device.is_cpu() => {
            return Err(EngineError::failed(
                "dtype bf16 is not available on the CPU (candle has no bf16 convolution there): \
                 use f32 or f16",
            ))
        }
        "bf16" => DType::BF16,
        other => {
            return Err(EngineError::failed(format!(
                "dtype \"{other}\": use f32, f16 or bf16"
            )))
        }
    })
}

/// Finds a checkpoint by path or by name in the model folders ([`crate::files::locate`]).
pub fn resolve_checkpoint(name: &str) -> Result<PathBuf> {
    crate::files::locate_for_node(FileRole::Checkpoint, name, Path::new(""))
}

/// LoadCheckpoint's parameters (`nodes::diffusion::LOAD_CHECKPOINT`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoadCheckpointParams {
    checkpoint: String,
    vae: String,
    clip_skip: u32,
    prediction: String,
    dtype: String,
    device: String,
    config: String,
}

fn load_checkpoint(ctx: &mut NodeCtx, p: LoadCheckpointParams) -> Result<Outputs> {
    let path = resolve_checkpoint(&p.checkpoint)?;
    let device = parse_device(&p.device)?;
    let dtype = parse_dtype(&p.dtype, &device)?;
    let vae = match p.vae.trim() {
        "" => None,
        v => Some(crate::files::locate_for_node(
            FileRole::Vae,
            v,
            Path::new(""),
        )?),
    };
    let prediction = match p.prediction.as_str() {
        "auto" => None,
        other => Some(other.to_string()),
    };
    let config_dir = match p.config.trim() {
        "" => None,
        c => {
            let dir = PathBuf::from(c);
            if !dir.is_dir() {
                return Err(EngineError::failed(format!(
                    "config \"{c}\": not a folder (expected a diffusers folder with \
                     unet/config.json, vae/config.json, …)"
                )));
            }
            Some(dir)
        }
    };
    let opts = LoadOptions {
        vae,
        config_dir,
        prediction,
        dtype,
        device,
    };
    ctx.progress(0, 1, None)?;
    let model = load_cached(&path, &opts)?;
    ctx.progress(1, 1, None)?;
    let handle = ModelHandle {
        model,
        loras: Vec::new(),
        clip_skip: p.clip_skip.max(1) as usize,
    };
    Ok([("model", Value::Model(Arc::new(handle)))]
        .into_iter()
        .collect())
}

/// LoraLoader's parameters (`nodes::diffusion::LORA_LOADER`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoraLoaderParams {
    lora: String,
    strength: f64,
    text_strength: f64,
}

fn lora_loader(ctx: &mut NodeCtx, p: LoraLoaderParams) -> Result<Outputs> {
    let handle = model_input(ctx)?;
    let spec = LoraSpec {
        path: crate::files::locate_for_node(FileRole::Lora, &p.lora, Path::new(""))?,
        unet: p.strength,
        text: p.text_strength,
    };
    let mut loras = handle.loras.clone();
    loras.push(spec);
    let next = ModelHandle {
        model: handle.model.clone(),
        loras,
        clip_skip: handle.clip_skip,
    };
    // Merge now, so a bad or mismatched LoRA fails on this node, and report what it did.
    let (_, reports) = next.resolve()?;
    if let Some(r) = reports.last() {
        ctx.status(r.summary());
    }
    Ok([("model", Value::Model(Arc::new(next)))]
        .into_iter()
        .collect())
}

/// The parameters of the sampler kinds (`nodes::diffusion::{TXT2IMG, IMG2IMG, INPAINT}`); the
/// optional ones exist on Img2Img and Inpaint only (their spec declares them, so the catalogue
/// check still fails if a name drifts).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SamplerParams {
    prompt: String,
    negative: String,
    width: u32,
    height: u32,
    steps: u32,
    cfg: f64,
    scheduler: String,
    seed: u64,
    prompt_weighting: bool,
    batch: u32,
    vae_tiling: VaeTiling,
    strength: Option<f64>,
    mask_blur: Option<f64>,
    only_masked: Option<bool>,
    padding: Option<u32>,
    paste_back: Option<bool>,
}

impl SamplerParams {
    fn generate_params(&self, handle: &ModelHandle) -> Result<GenerateParams> {
        let scheduler = match self.scheduler.as_str() {
            "default" => None,
            name => {
                Some(SchedulerKind::parse(name).map_err(|e| EngineError::failed(e.to_string()))?)
            }
        };
        Ok(GenerateParams {
            prompt: self.prompt.clone(),
            negative: (!self.negative.is_empty()).then(|| self.negative.clone()),
            width: self.width,
            height: self.height,
            steps: self.steps.max(1) as usize,
            cfg: self.cfg,
            seed: self.seed,
            scheduler,
            clip_skip: handle.clip_skip,
            weighting: self.prompt_weighting,
            batch: self.batch.max(1) as usize,
            vae_tiling: self.vae_tiling,
            strength: self.strength.unwrap_or(1.0),
            mask_blur: self.mask_blur.unwrap_or(0.0) as f32,
            only_masked: self.only_masked.unwrap_or(false),
            padding: self.padding.unwrap_or(0),
            paste_back: self.paste_back.unwrap_or(false),
            ..GenerateParams::default()
        })
    }
}

fn model_input(ctx: &NodeCtx) -> Result<Arc<ModelHandle>> {
    ctx.input("model")
        .and_then(|v| v.as_model().cloned())
        .ok_or_else(|| EngineError::failed("input \"model\" is not connected"))
}

fn sample(
    ctx: &mut NodeCtx,
    handle: &ModelHandle,
    p: &GenerateParams,
) -> Result<pipeline::Generated> {
    let (model, _) = handle.resolve()?;
    let mut on_step = |step: usize, total: usize, latents: &candle_core::Tensor| -> Result<()> {
        let preview = pipeline::preview(&model, latents).ok().map(Arc::new);
        ctx.progress(step as u32, total as u32, preview)
    };
    let m = model.clone();
    let g = pipeline::generate(&m, p, &mut on_step)?;
    for note in &g.notes {
        ctx.status(note.clone());
    }
    Ok(g)
}

/// The generated images as the `image` output: one image, or a batch.
fn images(g: pipeline::Generated) -> Result<Value> {
    if g.images.is_empty() {
        return Err(EngineError::failed("the pipeline returned no image"));
    }
    Ok(Value::from_images(g.images))
}

/// A sampler's parameters with its `control` input.
fn sampler_params(
    ctx: &NodeCtx,
    p: &SamplerParams,
    handle: &ModelHandle,
) -> Result<GenerateParams> {
    let mut gp = p.generate_params(handle)?;
    if let Some(stack) = super::control_nodes::control_input(ctx)? {
        gp.controls = stack.as_ref().clone();
    }
    Ok(gp)
}

fn txt2img(ctx: &mut NodeCtx, p: SamplerParams) -> Result<Outputs> {
    let handle = model_input(ctx)?;
    let gp = sampler_params(ctx, &p, &handle)?;
    let g = sample(ctx, &handle, &gp)?;
    Ok([("image", images(g)?)].into_iter().collect())
}

fn img2img(ctx: &mut NodeCtx, p: SamplerParams) -> Result<Outputs> {
    let handle = model_input(ctx)?;
    let mut gp = sampler_params(ctx, &p, &handle)?;
    gp.init_image = Some((*ctx.image("image")?).clone());
    let g = sample(ctx, &handle, &gp)?;
    Ok([("image", images(g)?)].into_iter().collect())
}

fn inpaint(ctx: &mut NodeCtx, p: SamplerParams) -> Result<Outputs> {
    let handle = model_input(ctx)?;
    let mut gp = sampler_params(ctx, &p, &handle)?;
    gp.init_image = Some((*ctx.image("image")?).clone());
    gp.mask = Some((*ctx.mask("mask")?).clone());
    let g = sample(ctx, &handle, &gp)?;
    let mask = g
        .mask
        .clone()
        .ok_or_else(|| EngineError::failed("the pipeline returned no mask"))?;
    Ok([("image", images(g)?), ("mask", mask.into())]
        .into_iter()
        .collect())
}
