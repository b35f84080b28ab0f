//! Executors of the Stable Diffusion node kinds (declared in `nodes::diffusion`): they resolve
//! the checkpoint through the model manager, call [`pipeline::generate`] (the same function the
//! CLI's `generate` uses) and turn its step callback into progress events with previews.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device};

use super::lora::LoraSpec;
use super::model::{load_cached, LoadOptions};
use super::pipeline::{self, GenerateParams, VaeTiling};
use super::scheduler::SchedulerKind;
use super::ModelHandle;
use crate::error::{EngineError, Result};
use crate::exec::{NodeCtx, Registry};
use crate::value::{Outputs, Value};

pub(crate) fn register(r: &mut Registry) {
    r.register("LoadCheckpoint", load_checkpoint);
    r.register("LoraLoader", lora_loader);
    r.register("Txt2Img", txt2img);
    r.register("Img2Img", img2img);
    r.register("Inpaint", inpaint);
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

/// Finds a checkpoint: an existing path, else a file (or diffusers folder) of that name in the
/// model folders.
pub fn resolve_checkpoint(name: &str) -> Result<PathBuf> {
    if name.trim().is_empty() {
        return Err(EngineError::failed(
            "no checkpoint chosen: set the node's `checkpoint` parameter",
        ));
    }
    let p = Path::new(name);
    if p.exists() {
        return Ok(p.to_path_buf());
    }
    let manager = crate::models::manager::ModelManager::default_dirs();
    if let Some(found) = manager.find_by_name(name) {
        return Ok(found);
    }
    for dir in &manager.dirs {
        let d = dir.join(name);
        if d.join("unet/config.json").is_file() {
            return Ok(d);
        }
    }
    Err(EngineError::failed(format!(
        "checkpoint \"{name}\" not found: not a path, and not in the model folders ({})",
        manager
            .dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

fn load_checkpoint(ctx: &mut NodeCtx) -> Result<Outputs> {
    let path = resolve_checkpoint(ctx.text("checkpoint")?)?;
    let device = parse_device(ctx.text("device")?)?;
    let dtype = parse_dtype(ctx.text("dtype")?, &device)?;
    let vae = ctx.text("vae")?.trim().to_string();
    let vae = if vae.is_empty() {
        None
    } else {
        Some(resolve_checkpoint(&vae)?)
    };
    let prediction = match ctx.text("prediction")? {
        "auto" => None,
        p => Some(p.to_string()),
    };
    let config = ctx.text("config")?.trim().to_string();
    let config_dir = if config.is_empty() {
        None
    } else {
        let dir = PathBuf::from(&config);
        if !dir.is_dir() {
            return Err(EngineError::failed(format!(
                "config \"{config}\": not a folder (expected a diffusers folder with \
                 unet/config.json, vae/config.json, …)"
            )));
        }
        Some(dir)
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
    let clip_skip = ctx.int("clip_skip")?.max(1) as usize;
    let handle = ModelHandle {
        model,
        loras: Vec::new(),
        clip_skip,
    };
    Ok([("model", Value::Model(Arc::new(handle)))]
        .into_iter()
        .collect())
}

fn lora_loader(ctx: &mut NodeCtx) -> Result<Outputs> {
    let handle = model_input(ctx)?;
    let path = resolve_checkpoint(ctx.text("lora")?)?;
    let spec = LoraSpec {
        path,
        unet: ctx.float("strength")?,
        text: ctx.float("text_strength")?,
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

fn common(ctx: &NodeCtx, handle: &ModelHandle) -> Result<GenerateParams> {
    let scheduler = match ctx.text("scheduler")? {
        "default" => None,
        name => Some(SchedulerKind::parse(name).map_err(|e| EngineError::failed(e.to_string()))?),
    };
    let negative = ctx.text("negative")?;
    let size = |name: &str| -> Result<u32> { Ok(u32::try_from(ctx.int(name)?).unwrap_or(0)) };
    Ok(GenerateParams {
        prompt: ctx.text("prompt")?.to_string(),
        negative: (!negative.is_empty()).then(|| negative.to_string()),
        width: size("width")?,
        height: size("height")?,
        steps: ctx.int("steps")?.max(1) as usize,
        cfg: ctx.float("cfg")?,
        seed: ctx.seed("seed")?,
        scheduler,
        clip_skip: handle.clip_skip,
        weighting: ctx.bool("prompt_weighting")?,
        batch: ctx.int("batch")?.max(1) as usize,
        vae_tiling: match ctx.text("vae_tiling")? {
            "on" => VaeTiling::On,
            "auto" => VaeTiling::Auto,
            _ => VaeTiling::Off,
        },
        ..GenerateParams::default()
    })
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

fn txt2img(ctx: &mut NodeCtx) -> Result<Outputs> {
    let handle = model_input(ctx)?;
    let p = common(ctx, &handle)?;
    let g = sample(ctx, &handle, &p)?;
    Ok([("image", images(g)?)].into_iter().collect())
}

fn img2img(ctx: &mut NodeCtx) -> Result<Outputs> {
    let handle = model_input(ctx)?;
    let mut p = common(ctx, &handle)?;
    p.init_image = Some((*ctx.image("image")?).clone());
    p.strength = ctx.float("strength")?;
    let g = sample(ctx, &handle, &p)?;
    Ok([("image", images(g)?)].into_iter().collect())
}

fn inpaint(ctx: &mut NodeCtx) -> Result<Outputs> {
    let handle = model_input(ctx)?;
    let mut p = common(ctx, &handle)?;
    p.init_image = Some((*ctx.image("image")?).clone());
    p.mask = Some((*ctx.mask("mask")?).clone());
    p.strength = ctx.float("strength")?;
    p.mask_blur = ctx.float("mask_blur")? as f32;
    p.only_masked = ctx.bool("only_masked")?;
    p.padding = u32::try_from(ctx.int("padding")?).unwrap_or(0);
    p.paste_back = ctx.bool("paste_back")?;
    let g = sample(ctx, &handle, &p)?;
    let mask = g
        .mask
        .clone()
        .ok_or_else(|| EngineError::failed("the pipeline returned no mask"))?;
    Ok([("image", images(g)?), ("mask", mask.into())]
        .into_iter()
        .collect())
}
