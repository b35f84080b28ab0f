//! The diffusion pipelines: [`generate`] runs txt2img, img2img or inpaint (9-channel inpainting
//! UNet, or latent blending with a normal UNet) exactly as diffusers' StableDiffusion(XL)
//! pipelines do for the same seed: same noise, same draw order, same scheduler arithmetic.
//! ControlNets ([`GenerateParams::controls`]) guide every step as diffusers' ControlNet
//! pipelines do (`control.rs`). On top: A1111's mask blur, "only masked" and paste-back, and
//! step previews.

use candle_core::{DType, Device, Tensor};

use super::model::SdModel;
use super::scheduler::{Scheduler, SchedulerKind};
use super::torch_rng::TorchGenerator;
use crate::error::{EngineError, Result};
use crate::image::{Image, Mask};
use crate::ops::{self, Filter};

mod conditioning;
mod control;
mod masked;
mod pil_resize;
mod vae_io;

use conditioning::encode_text;
pub use control::pil_resize_image;
pub use masked::crop_region;
use masked::{binarise, only_masked, paste};
use vae_io::{decide_tiling, decode, encode_sample, image_tensor, to_images};
pub use vae_io::{preview, vae_budget_bytes, vae_pass_bytes, VaeTiling};

/// Everything one generation needs besides the model.
#[derive(Clone, Debug)]
pub struct GenerateParams {
    pub prompt: String,
    /// `None` = no negative prompt (diffusers: empty-string embeddings for SD, zeros for SDXL).
    pub negative: Option<String>,
    /// 0 = default: the init image's size, else the first control image's (as diffusers'
    /// ControlNet pipelines), else the model's native size.
    pub width: u32,
    pub height: u32,
    pub steps: usize,
    pub cfg: f64,
    pub seed: u64,
    /// `None` = the model's own scheduler config class.
    pub scheduler: Option<SchedulerKind>,
    pub init_image: Option<Image>,
    pub strength: f64,
    pub mask: Option<Mask>,
    /// Gaussian sigma (px) of the mask used to paste the result back (0 = a hard edge).
    pub mask_blur: f32,
    pub only_masked: bool,
    pub padding: u32,
    /// Paste the result over the input outside the (blurred) mask.
    pub paste_back: bool,
    /// diffusers' `num_images_per_prompt`: one generator, one noise tensor.
    pub batch: usize,
    /// A1111 numbering: 1 = last layer.
    pub clip_skip: usize,
    pub weighting: bool,
    /// Whether the VAE works in tiles (diffusers' `enable_tiling()`).
    pub vae_tiling: VaeTiling,
    /// ControlNets guiding every step, their residuals summed (diffusers'
    /// `MultiControlNetModel`); empty = plain sampling.
    pub controls: Vec<crate::sd::controlnet::ControlSpec>,
}

impl Default for GenerateParams {
    fn default() -> Self {
        GenerateParams {
            prompt: String::new(),
            negative: None,
            width: 0,
            height: 0,
            steps: 20,
            cfg: 7.5,
            seed: 0,
            scheduler: None,
            init_image: None,
            strength: 1.0,
            mask: None,
            mask_blur: 0.0,
            only_masked: false,
            padding: 32,
            paste_back: false,
            batch: 1,
            clip_skip: 1,
            weighting: false,
            vae_tiling: VaeTiling::Off,
            controls: Vec::new(),
        }
    }
}

/// The result: one image per batch entry, and for inpainting the mask that was repainted.
#[derive(Clone, Debug)]
pub struct Generated {
    /// Float images (RGB in 0..1, alpha 1) before 8-bit rounding.
    pub images: Vec<Image>,
    pub mask: Option<Mask>,
    pub scheduler: SchedulerKind,
    pub width: u32,
    pub height: u32,
    /// What the user should know about how it ran (e.g. that auto VAE tiling switched on).
    pub notes: Vec<String>,
}

/// Step callback: `(step, total, latents)`; returning an error (e.g. cancelled) stops the run.
pub type StepFn<'a> = dyn FnMut(usize, usize, &Tensor) -> Result<()> + 'a;

pub(super) fn c(e: candle_core::Error) -> EngineError {
    EngineError::failed(e.to_string())
}

/// The largest image side we accept (latents and activations grow with its square).
pub const MAX_SIDE: u32 = 4096;

pub(super) fn check_size(w: u32, h: u32, scale: usize) -> Result<()> {
    let m = 8.max(scale as u32);
    if w == 0 || h == 0 || w > MAX_SIDE || h > MAX_SIDE {
        return Err(EngineError::failed(format!(
            "size {w}×{h}: each side must be 8..{MAX_SIDE}"
        )));
    }
    if !w.is_multiple_of(m) || !h.is_multiple_of(m) {
        return Err(EngineError::failed(format!(
            "size {w}×{h}: width and height must be multiples of {m}"
        )));
    }
    Ok(())
}

/// Resolves the scheduler: the asked one, or the class named in the model's scheduler config.
pub fn scheduler_kind(model: &SdModel, asked: Option<SchedulerKind>) -> Result<SchedulerKind> {
    if let Some(k) = asked {
        return Ok(k);
    }
    let class = model
        .scheduler_config
        .get("_class_name")
        .and_then(|v| v.as_str())
        .unwrap_or("PNDMScheduler");
    let karras = model
        .scheduler_config
        .get("use_karras_sigmas")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    Ok(match class {
        "DDIMScheduler" => SchedulerKind::Ddim,
        "EulerDiscreteScheduler" => SchedulerKind::Euler,
        "EulerAncestralDiscreteScheduler" => SchedulerKind::EulerAncestral,
        "DPMSolverMultistepScheduler" if karras => SchedulerKind::DpmPp2MKarras,
        "DPMSolverMultistepScheduler" => SchedulerKind::DpmPp2M,
        "LMSDiscreteScheduler" => SchedulerKind::Lms,
        "PNDMScheduler" => SchedulerKind::Pndm,
        "UniPCMultistepScheduler" => SchedulerKind::UniPc,
        other => {
            return Err(EngineError::failed(format!(
                "the model's scheduler {other} is not supported; choose one with --scheduler"
            )))
        }
    })
}

pub(super) fn randn(gen: &mut TorchGenerator, shape: &[usize], device: &Device) -> Result<Tensor> {
    let n = shape.iter().product();
    Tensor::from_vec(gen.randn(n), shape, &Device::Cpu)
        .and_then(|t| t.to_device(device))
        .map_err(c)
}

/// Generates images. `on_step` is called after every sampler step with the latents.
pub fn generate(model: &SdModel, p: &GenerateParams, on_step: &mut StepFn) -> Result<Generated> {
    if p.batch == 0 || p.batch > 64 {
        return Err(EngineError::failed(format!(
            "batch {}: must be 1..64",
            p.batch
        )));
    }
    if p.steps == 0 || p.steps > 1000 {
        return Err(EngineError::failed(format!(
            "steps {}: must be 1..1000",
            p.steps
        )));
    }
    if !(0.0..=1.0).contains(&p.strength) {
        return Err(EngineError::failed(format!(
            "strength {}: must be between 0 and 1",
            p.strength
        )));
    }
    let scale = model.vae_scale();
    let native = model.native_size() as u32;
    match (&p.init_image, &p.mask) {
        (None, Some(_)) => {
            return Err(EngineError::failed(
                "a mask needs an image to inpaint (--init-image)",
            ))
        }
        (Some(img), Some(mask)) => {
            if (mask.width, mask.height) != (img.width, img.height) {
                return Err(EngineError::failed(format!(
                    "the mask is {}×{} but the image is {}×{}: they must have the same size",
                    mask.width, mask.height, img.width, img.height
                )));
            }
            if p.only_masked {
                return only_masked(model, p, img, mask, on_step);
            }
        }
        _ => {}
    }
    // Output size: explicit, else the init image's (rounded down to the VAE's grid), else native.
    let grid = 8.max(scale as u32);
    let (w, h) = match &p.init_image {
        Some(img) => (
            if p.width > 0 {
                p.width
            } else {
                img.width / grid * grid
            },
            if p.height > 0 {
                p.height
            } else {
                img.height / grid * grid
            },
        ),
        None => {
            let (dw, dh) = control::default_size(&p.controls, grid).unwrap_or((native, native));
            (
                if p.width > 0 { p.width } else { dw },
                if p.height > 0 { p.height } else { dh },
            )
        }
    };
    check_size(w, h, scale)?;
    let init = p.init_image.as_ref().map(|img| {
        if (img.width, img.height) == (w, h) {
            img.clone()
        } else {
            ops::resize_image(img, w, h, Filter::Lanczos)
        }
    });
    let mask = p.mask.as_ref().map(|m| {
        let m = if (m.width, m.height) == (w, h) {
            m.clone()
        } else {
            ops::resize_mask(m, w, h, Filter::Bilinear)
        };
        binarise(&m)
    });
    let out = run(model, p, w, h, init.as_ref(), mask.as_ref(), on_step)?;
    let mut images = out.0;
    let mut out_mask = mask.clone();
    if let (Some(init), Some(mask)) = (&init, &mask) {
        if p.paste_back || p.mask_blur > 0.0 {
            let blend = if p.mask_blur > 0.0 {
                ops::blur_mask(mask, p.mask_blur)
            } else {
                mask.clone()
            };
            for img in &mut images {
                paste(img, init, &blend);
            }
            out_mask = Some(blend);
        }
    }
    Ok(Generated {
        images,
        mask: out_mask,
        scheduler: out.1,
        width: w,
        height: h,
        notes: out.2.into_iter().collect(),
    })
}

/// The denoising run at the working size, returning float images and the scheduler used.
pub(super) fn run(
    model: &SdModel,
    p: &GenerateParams,
    w: u32,
    h: u32,
    init: Option<&Image>,
    mask: Option<&Mask>,
    on_step: &mut StepFn,
) -> Result<(Vec<Image>, SchedulerKind, Option<String>)> {
    let dev = &model.device;
    control::check(model, &p.controls)?;
    let (tiled, note) = decide_tiling(model, p.vae_tiling, w, h);
    let kind = scheduler_kind(model, p.scheduler)?;
    let mut sched = Scheduler::new(kind, &model.scheduler_config, p.steps).map_err(c)?;
    let cfg_on = p.cfg > 1.0;
    let cond = encode_text(model, p, cfg_on, w, h)?;
    let b = p.batch;
    let controls = control::prepare(&p.controls, w, h, b, cfg_on)?;
    let scale = model.vae_scale();
    let lat_shape = [
        b,
        model.vae_config.latent_channels,
        h as usize / scale,
        w as usize / scale,
    ];
    let mut gen = TorchGenerator::new(p.seed);

    // Timesteps: img2img/inpaint start later (diffusers' get_timesteps).
    let all = sched.timesteps().to_vec();
    let order = sched.order();
    let (start, strength_max) = if init.is_some() {
        let init_t = ((p.steps as f64 * p.strength) as usize).min(p.steps);
        let t_start = p.steps - init_t;
        if init_t == 0 {
            return Err(EngineError::failed(format!(
                "strength {} with {} steps runs no step: raise one of them",
                p.strength, p.steps
            )));
        }
        sched.set_begin_index(t_start * order);
        (t_start * order, p.strength >= 1.0)
    } else {
        (0, true)
    };
    let inpaint = mask.is_some();
    let nine = model.is_inpaint();
    if nine && !inpaint {
        return Err(EngineError::failed(
            "this is an inpainting model (9-channel UNet): give it an image and a mask",
        ));
    }

    let image_t = match init {
        Some(img) => Some(image_tensor(img, dev)?),
        None => None,
    };
    // Draw order as in diffusers.
    let mut image_latents = None;
    let mut noise_for_blend = None;
    let mut latents;
    if !inpaint {
        match &image_t {
            None => {
                latents =
                    (randn(&mut gen, &lat_shape, dev)? * sched.init_noise_sigma()).map_err(c)?;
            }
            Some(x) => {
                let z = encode_sample(model, x, &mut gen, tiled)?;
                let z = repeat_batch(&z, b)?;
                let noise = randn(&mut gen, &lat_shape, dev)?;
                latents = sched.add_noise(&z, &noise, start).map_err(c)?;
            }
        }
    } else {
        let x = image_t
            .as_ref()
            .ok_or_else(|| EngineError::failed("inpaint needs an image"))?;
        if !nine || !strength_max {
            let z = encode_sample(model, x, &mut gen, tiled)?;
            image_latents = Some(repeat_batch(&z, b)?);
        }
        let noise = randn(&mut gen, &lat_shape, dev)?;
        latents = if strength_max {
            (&noise * sched.init_noise_sigma()).map_err(c)?
        } else {
            let z = image_latents
                .as_ref()
                .ok_or_else(|| EngineError::failed("missing image latents"))?;
            sched.add_noise(z, &noise, start).map_err(c)?
        };
        noise_for_blend = Some(noise);
    }
    // Mask latents (diffusers' prepare_mask_latents: it always encodes the masked image, so its
    // draw happens for both UNet kinds).
    let mut mask_cond = None;
    let mut init_mask = None;
    if let (Some(m), Some(x)) = (mask, &image_t) {
        let (mw, mh) = (m.width as usize, m.height as usize);
        let mt = Tensor::from_vec(m.data.clone(), (1, 1, mh, mw), dev).map_err(c)?;
        let keep = mt
            .lt(0.5f32)
            .and_then(|k| k.to_dtype(DType::F32))
            .map_err(c)?;
        let masked = x.broadcast_mul(&keep).map_err(c)?;
        let masked_latents = encode_sample(model, &masked, &mut gen, tiled)?;
        let small = nearest_resize(&mt, mh / scale, mw / scale)?;
        let small = repeat_batch(&small, b)?;
        let masked_latents = repeat_batch(&masked_latents, b)?;
        init_mask = Some(small.clone());
        if nine {
            let (mm, ml) = if cfg_on {
                (
                    Tensor::cat(&[&small, &small], 0).map_err(c)?,
                    Tensor::cat(&[&masked_latents, &masked_latents], 0).map_err(c)?,
                )
            } else {
                (small, masked_latents)
            };
            mask_cond = Some((mm, ml));
        }
    }

    let timesteps = &all[start..];
    let total = timesteps.len();
    for (k, &t) in timesteps.iter().enumerate() {
        let i = start + k;
        let input = if cfg_on {
            Tensor::cat(&[&latents, &latents], 0).map_err(c)?
        } else {
            latents.clone()
        };
        let mut input = sched.scale_model_input(&input, i).map_err(c)?;
        // The ControlNets see the 4-channel input, before a 9-channel UNet's mask concat.
        let residuals = control::residuals(
            model,
            &controls,
            &control::StepInputs {
                input: &input,
                t,
                embeds: &cond.embeds,
                added: cond.added.as_ref(),
                cfg_on,
                batch: b,
                k,
                total,
            },
        )?;
        if let Some((mm, ml)) = &mask_cond {
            input = Tensor::cat(&[&input, mm, ml], 1).map_err(c)?;
        }
        let out = model
            .unet
            .forward_with_control(
                &input.to_dtype(model.dtype).map_err(c)?,
                t,
                &cond.embeds,
                cond.added.as_ref(),
                residuals.as_ref(),
            )
            .and_then(|o| o.to_dtype(DType::F32))
            .map_err(c)?;
        let noise_pred = if cfg_on {
            let uncond = out.narrow(0, 0, b).map_err(c)?;
            let text = out.narrow(0, b, b).map_err(c)?;
            ((&text - &uncond).map_err(c)? * p.cfg)
                .and_then(|d| &uncond + d)
                .map_err(c)?
        } else {
            out
        };
        latents = sched.step(&noise_pred, i, &latents, &mut gen).map_err(c)?;
        if inpaint && !nine {
            if let (Some(z), Some(m), Some(noise)) = (&image_latents, &init_mask, &noise_for_blend)
            {
                let proper = if k + 1 < total {
                    sched.add_noise(z, noise, i + 1).map_err(c)?
                } else {
                    z.clone()
                };
                // (1 − m)·proper + m·latents
                let inv = (m.ones_like().map_err(c)? - m).map_err(c)?;
                latents = (proper.broadcast_mul(&inv).map_err(c)?
                    + latents.broadcast_mul(m).map_err(c)?)
                .map_err(c)?;
            }
        }
        on_step(k + 1, total, &latents)?;
    }
    let decoded = decode(model, &latents, tiled)?;
    Ok((to_images(&decoded)?, kind, note))
}

fn repeat_batch(t: &Tensor, b: usize) -> Result<Tensor> {
    let n = t.dim(0).map_err(c)?;
    if n == b {
        return Ok(t.clone());
    }
    let parts: Vec<&Tensor> = (0..b / n.max(1)).map(|_| t).collect();
    Tensor::cat(&parts, 0).map_err(c)
}

/// torch's `F.interpolate(mode="nearest")`: source index `floor(dst · in / out)`.
fn nearest_resize(t: &Tensor, oh: usize, ow: usize) -> Result<Tensor> {
    let (_, _, ih, iw) = t.dims4().map_err(c)?;
    let rows: Vec<u32> = (0..oh)
        .map(|y| ((y as f64 * ih as f64 / oh as f64).floor() as usize).min(ih - 1) as u32)
        .collect();
    let cols: Vec<u32> = (0..ow)
        .map(|x| ((x as f64 * iw as f64 / ow as f64).floor() as usize).min(iw - 1) as u32)
        .collect();
    let dev = t.device();
    let r = Tensor::new(rows.as_slice(), dev).map_err(c)?;
    let cc = Tensor::new(cols.as_slice(), dev).map_err(c)?;
    t.index_select(&r, 2)
        .and_then(|t| t.index_select(&cc, 3))
        .map_err(c)
}
