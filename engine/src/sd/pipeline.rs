//! The diffusion pipelines: [`generate`] runs txt2img, img2img or inpaint (9-channel inpainting
//! UNet, or latent blending with a normal UNet) exactly as diffusers' StableDiffusion(XL)
//! pipelines do for the same seed: same noise, same draw order, same scheduler arithmetic.
//! On top: A1111's mask blur, "only masked" and paste-back, and step previews.

use candle_core::{DType, Device, Tensor};

use super::clip;
use super::model::{Family, SdModel};
use super::scheduler::{Scheduler, SchedulerKind};
use super::torch_rng::TorchGenerator;
use super::unet::AddedCond;
use crate::error::{EngineError, Result};
use crate::image::{Image, Mask};
use crate::ops::{self, Filter};

/// Everything one generation needs besides the model.
#[derive(Clone, Debug)]
pub struct GenerateParams {
    pub prompt: String,
    /// `None` = no negative prompt (diffusers: empty-string embeddings for SD, zeros for SDXL).
    pub negative: Option<String>,
    /// 0 = default: the init image's size, else the model's native size.
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
}

/// The VAE tiling choice: `Off` is diffusers' default (one pass), `On` equals diffusers after
/// `enable_tiling()` (tiles whenever the image exceeds the VAE's tile size), `Auto` tiles only
/// when one pass is estimated to need more than [`vae_budget_bytes`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VaeTiling {
    #[default]
    Off,
    On,
    Auto,
}

/// The VAE memory budget of [`VaeTiling::Auto`]: 4 GiB, or `DEFECT_STUDIO_VAE_BUDGET_MB`.
pub fn vae_budget_bytes() -> u64 {
    std::env::var("DEFECT_STUDIO_VAE_BUDGET_MB")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|mb| mb.saturating_mul(1 << 20))
        .unwrap_or(4 << 30)
}

/// Estimated peak bytes of one untiled VAE pass over a `w`×`h` image: the decoder's
/// full-resolution activations (`block_out_channels[0]` channels, about six alive at once) plus
/// the mid-block attention's score matrix at latent resolution.
pub fn vae_pass_bytes(model: &SdModel, w: u32, h: u32) -> u64 {
    let cfg = &model.vae_config;
    let elem = model.vae_dtype.size_in_bytes() as u64;
    let c0 = cfg.block_out_channels.first().copied().unwrap_or(128) as u64;
    let px = u64::from(w) * u64::from(h);
    let scale = model.vae_scale().max(1) as u64;
    let tokens = px / (scale * scale);
    6 * c0 * px * elem + tokens * tokens * 4
}

/// Whether to tile the VAE at `w`×`h`, and the note to show when `Auto` decided to.
fn decide_tiling(model: &SdModel, mode: VaeTiling, w: u32, h: u32) -> (bool, Option<String>) {
    match mode {
        VaeTiling::Off => (false, None),
        VaeTiling::On => (true, None),
        VaeTiling::Auto => {
            let need = vae_pass_bytes(model, w, h);
            let budget = vae_budget_bytes();
            if need > budget {
                let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
                (
                    true,
                    Some(format!(
                        "VAE tiling (auto): on, one pass at {w}×{h} would need about {:.1} GiB, \
                         over the {:.1} GiB budget",
                        gib(need),
                        gib(budget)
                    )),
                )
            } else {
                (false, None)
            }
        }
    }
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

fn c(e: candle_core::Error) -> EngineError {
    EngineError::failed(e.to_string())
}

/// The largest image side we accept (latents and activations grow with its square).
pub const MAX_SIDE: u32 = 4096;

fn check_size(w: u32, h: u32, scale: usize) -> Result<()> {
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

/// `[1, 3, H, W]` in `-1..1` from an image, as diffusers' image processor does with a PIL image
/// (8-bit values divided by 255, then `2x − 1`).
fn image_tensor(img: &Image, device: &Device) -> Result<Tensor> {
    let (w, h) = (img.width as usize, img.height as usize);
    let mut data = vec![0f32; 3 * w * h];
    for (i, p) in img.data.chunks_exact(4).enumerate() {
        for ch in 0..3 {
            let v8 = (p[ch].clamp(0.0, 1.0) * 255.0).round();
            data[ch * w * h + i] = 2.0 * (v8 / 255.0) - 1.0;
        }
    }
    Tensor::from_vec(data, (1, 3, h, w), device).map_err(c)
}

/// A binarised mask (`>= 0.5` → 1), as diffusers' mask processor does.
fn binarise(mask: &Mask) -> Mask {
    Mask {
        width: mask.width,
        height: mask.height,
        data: mask
            .data
            .iter()
            .map(|v| {
                let v8 = (v.clamp(0.0, 1.0) * 255.0).round() / 255.0;
                if v8 < 0.5 {
                    0.0
                } else {
                    1.0
                }
            })
            .collect(),
    }
}

/// Float images `[B, 3, H, W]` in `-1..1` → our RGBA images, as diffusers' postprocess
/// (`(x / 2 + 0.5).clamp(0, 1)`).
fn to_images(x: &Tensor) -> Result<Vec<Image>> {
    let x = x
        .to_dtype(DType::F32)
        .and_then(|x| x.to_device(&Device::Cpu))
        .and_then(|x| (x / 2.0)? + 0.5)
        .and_then(|x| x.clamp(0f32, 1f32))
        .map_err(c)?;
    let (b, _, h, w) = x.dims4().map_err(c)?;
    let mut out = Vec::with_capacity(b);
    for i in 0..b {
        let v: Vec<f32> = x
            .get(i)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1())
            .map_err(c)?;
        let plane = w * h;
        let data = (0..plane)
            .flat_map(|p| [v[p], v[plane + p], v[2 * plane + p], 1.0])
            .collect();
        out.push(Image {
            width: w as u32,
            height: h as u32,
            data,
        });
    }
    Ok(out)
}

fn randn(gen: &mut TorchGenerator, shape: &[usize], device: &Device) -> Result<Tensor> {
    let n = shape.iter().product();
    Tensor::from_vec(gen.randn(n), shape, &Device::Cpu)
        .and_then(|t| t.to_device(device))
        .map_err(c)
}

struct Conditioning {
    /// `[neg…, pos…]` with CFG, else `[pos…]`; one row per image.
    embeds: Tensor,
    added: Option<AddedCond>,
}

fn encode_text(
    model: &SdModel,
    p: &GenerateParams,
    cfg_on: bool,
    w: u32,
    h: u32,
) -> Result<Conditioning> {
    let b = p.batch;
    let repeat = |t: &Tensor| -> Result<Tensor> {
        let parts: Vec<Tensor> = (0..b).map(|_| t.clone()).collect();
        Tensor::cat(&parts, 0).map_err(c)
    };
    match model.family {
        Family::Sd1 | Family::Sd2 => {
            let te = &model.text_encoder;
            let enc = |text: &str| {
                clip::encode_sd(&te.model, &te.tokenizer, text, p.clip_skip, p.weighting).map_err(c)
            };
            let (pos, neg) = if p.weighting && cfg_on {
                // Both prompts as A1111 chunks, padded to the same count so CFG can batch them.
                let tok = &te.tokenizer;
                let mut a = clip::tokenize_weighted(tok, &p.prompt);
                let mut n = clip::tokenize_weighted(tok, p.negative.as_deref().unwrap_or(""));
                clip::pad_to_same_count(tok, &mut a, tok, &mut n);
                (
                    clip::encode_sd_chunks(&te.model, &a, p.clip_skip).map_err(c)?,
                    Some(clip::encode_sd_chunks(&te.model, &n, p.clip_skip).map_err(c)?),
                )
            } else {
                let pos = enc(&p.prompt)?;
                let neg = if cfg_on {
                    Some(enc(p.negative.as_deref().unwrap_or(""))?)
                } else {
                    None
                };
                (pos, neg)
            };
            let pos = repeat(&pos)?;
            let embeds = match neg {
                Some(n) => Tensor::cat(&[repeat(&n)?, pos], 0).map_err(c)?,
                None => pos,
            };
            Ok(Conditioning {
                embeds: embeds.to_dtype(model.dtype).map_err(c)?,
                added: None,
            })
        }
        Family::Sdxl => {
            let te1 = &model.text_encoder;
            let te2 = model
                .text_encoder_2
                .as_ref()
                .ok_or_else(|| EngineError::failed("SDXL model without a second text encoder"))?;
            let enc = |text: &str| {
                clip::encode_sdxl(
                    &te1.model,
                    &te1.tokenizer,
                    &te2.model,
                    &te2.tokenizer,
                    text,
                    p.weighting,
                )
                .map_err(c)
            };
            let weighted_pair = p.weighting && cfg_on && p.negative.is_some();
            let (pos, pooled, neg_pair) = if weighted_pair {
                let neg_text = p.negative.as_deref().unwrap_or("");
                let (t1, t2) = (&te1.tokenizer, &te2.tokenizer);
                let (mut a1, mut n1) = (
                    clip::tokenize_weighted(t1, &p.prompt),
                    clip::tokenize_weighted(t1, neg_text),
                );
                let (mut a2, mut n2) = (
                    clip::tokenize_weighted(t2, &p.prompt),
                    clip::tokenize_weighted(t2, neg_text),
                );
                clip::pad_to_same_count(t1, &mut a1, t1, &mut n1);
                clip::pad_to_same_count(t2, &mut a2, t2, &mut n2);
                let (pos, pooled) =
                    clip::encode_sdxl_chunks(&te1.model, &a1, &te2.model, &a2).map_err(c)?;
                let neg = clip::encode_sdxl_chunks(&te1.model, &n1, &te2.model, &n2).map_err(c)?;
                (pos, pooled, Some(neg))
            } else {
                let (pos, pooled) = enc(&p.prompt)?;
                (pos, pooled, None)
            };
            let time_ids = Tensor::new(
                &[h as f32, w as f32, 0.0, 0.0, h as f32, w as f32],
                &model.device,
            )
            .and_then(|t| t.unsqueeze(0))
            .map_err(c)?;
            let (pos, pooled) = (repeat(&pos)?, repeat(&pooled)?);
            let time_ids = repeat(&time_ids)?;
            let (embeds, text_embeds, time_ids) = if cfg_on {
                let (neg, neg_pooled) = match (&p.negative, neg_pair) {
                    (_, Some((a, b2))) => (repeat(&a)?, repeat(&b2)?),
                    // diffusers' force_zeros_for_empty_prompt
                    (None, None) => (
                        pos.zeros_like().map_err(c)?,
                        pooled.zeros_like().map_err(c)?,
                    ),
                    (Some(n), None) => {
                        let (a, b2) = enc(n)?;
                        (repeat(&a)?, repeat(&b2)?)
                    }
                };
                (
                    Tensor::cat(&[neg, pos], 0).map_err(c)?,
                    Tensor::cat(&[neg_pooled, pooled], 0).map_err(c)?,
                    Tensor::cat(&[time_ids.clone(), time_ids], 0).map_err(c)?,
                )
            } else {
                (pos, pooled, time_ids)
            };
            let dt = model.dtype;
            Ok(Conditioning {
                embeds: embeds.to_dtype(dt).map_err(c)?,
                added: Some(AddedCond {
                    text_embeds: text_embeds.to_dtype(dt).map_err(c)?,
                    time_ids: time_ids.to_dtype(dt).map_err(c)?,
                }),
            })
        }
    }
}

/// VAE posterior sample × scaling factor (diffusers' `retrieve_latents(..., generator)`).
fn encode_sample(
    model: &SdModel,
    image: &Tensor,
    gen: &mut TorchGenerator,
    tiled: bool,
) -> Result<Tensor> {
    let x = image.to_dtype(model.vae_dtype).map_err(c)?;
    let dist = if tiled {
        model.vae.encode_auto(&x)
    } else {
        model.vae.encode(&x)
    }
    .map_err(c)?;
    let shape = dist.mean.dims().to_vec();
    let noise = randn(gen, &shape, &model.device)?
        .to_dtype(model.vae_dtype)
        .map_err(c)?;
    let z = dist.sample_with(&noise).map_err(c)?;
    let z = (z.to_dtype(DType::F32).map_err(c)? * model.vae_config.scaling_factor).map_err(c)?;
    Ok(z)
}

fn decode(model: &SdModel, latents: &Tensor, tiled: bool) -> Result<Tensor> {
    let z = (latents.to_dtype(DType::F32).map_err(c)? / model.vae_config.scaling_factor)
        .and_then(|z| z.to_dtype(model.vae_dtype))
        .map_err(c)?;
    if tiled {
        model.vae.decode_auto(&z)
    } else {
        model.vae.decode(&z)
    }
    .map_err(c)
}

/// The region "only masked" works on: the mask's bounding box grown by `pad`, then grown to
/// the target aspect ratio and kept inside the image (diffusers' `get_crop_region`).
pub fn crop_region(mask: &Mask, width: u32, height: u32, pad: u32) -> Option<(u32, u32, u32, u32)> {
    let (w, h) = (mask.width as i64, mask.height as i64);
    let (mut x1, mut y1, mut x2, mut y2) = (w, h, 0i64, 0i64);
    for y in 0..h {
        for x in 0..w {
            if mask.data[(y * w + x) as usize] > 0.0 {
                x1 = x1.min(x);
                y1 = y1.min(y);
                x2 = x2.max(x + 1);
                y2 = y2.max(y + 1);
            }
        }
    }
    if x2 <= x1 || y2 <= y1 {
        return None;
    }
    let pad = pad as i64;
    let (mut x1, mut y1) = ((x1 - pad).max(0), (y1 - pad).max(0));
    let (mut x2, mut y2) = ((x2 + pad).min(w), (y2 + pad).min(h));
    let target = width as f64 / height as f64;
    let (cw, ch) = ((x2 - x1) as f64, (y2 - y1) as f64);
    if cw / ch < target {
        // Too tall: widen.
        let want = (ch * target).round() as i64;
        let grow = want - (x2 - x1);
        x1 -= grow / 2;
        x2 += grow - grow / 2;
        if x1 < 0 {
            x2 -= x1;
            x1 = 0;
        }
        if x2 > w {
            x1 -= x2 - w;
            x2 = w;
        }
        x1 = x1.max(0);
    } else {
        let want = (cw / target).round() as i64;
        let grow = want - (y2 - y1);
        y1 -= grow / 2;
        y2 += grow - grow / 2;
        if y1 < 0 {
            y2 -= y1;
            y1 = 0;
        }
        if y2 > h {
            y1 -= y2 - h;
            y2 = h;
        }
        y1 = y1.max(0);
    }
    Some((x1 as u32, y1 as u32, x2 as u32, y2 as u32))
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
        None => (
            if p.width > 0 { p.width } else { native },
            if p.height > 0 { p.height } else { native },
        ),
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

/// `top ← base·(1−m) + top·m` over images of one size (diffusers' `apply_overlay`).
fn paste(top_into: &mut Image, base: &Image, m: &Mask) {
    for (i, (px, b)) in top_into
        .data
        .chunks_exact_mut(4)
        .zip(base.data.chunks_exact(4))
        .enumerate()
    {
        let a = m.data[i];
        for ch in 0..4 {
            px[ch] = b[ch] * (1.0 - a) + px[ch] * a;
        }
    }
}

fn only_masked(
    model: &SdModel,
    p: &GenerateParams,
    img: &Image,
    mask: &Mask,
    on_step: &mut StepFn,
) -> Result<Generated> {
    let native = model.native_size() as u32;
    let (w, h) = (
        if p.width > 0 { p.width } else { native },
        if p.height > 0 { p.height } else { native },
    );
    check_size(w, h, model.vae_scale())?;
    let bin = binarise(mask);
    let region = crop_region(&bin, w, h, p.padding).ok_or_else(|| {
        EngineError::failed("the mask is empty: nothing to inpaint (only-masked)")
    })?;
    let (x1, y1, x2, y2) = region;
    let crop_img = ops::resize_image(
        &ops::crop_image(img, x1, y1, x2 - x1, y2 - y1),
        w,
        h,
        Filter::Lanczos,
    );
    let crop_m = binarise(&ops::resize_mask(
        &ops::crop_mask(&bin, x1, y1, x2 - x1, y2 - y1),
        w,
        h,
        Filter::Bilinear,
    ));
    let (gen_images, kind, note) = run(model, p, w, h, Some(&crop_img), Some(&crop_m), on_step)?;
    let blend = if p.mask_blur > 0.0 {
        ops::blur_mask(&bin, p.mask_blur)
    } else {
        bin.clone()
    };
    let (x1, y1, x2, y2) = region;
    let mut images = Vec::new();
    for g in gen_images {
        let back = ops::resize_image(&g, x2 - x1, y2 - y1, Filter::Lanczos);
        let mut full = img.clone();
        for y in y1..y2 {
            for x in x1..x2 {
                let i = (y * img.width + x) as usize;
                let a = blend.data[i];
                let s = back.pixel(x - x1, y - y1);
                for (ch, v) in s.iter().enumerate().take(3) {
                    full.data[i * 4 + ch] = img.data[i * 4 + ch] * (1.0 - a) + v * a;
                }
            }
        }
        images.push(full);
    }
    Ok(Generated {
        images,
        mask: Some(blend),
        scheduler: kind,
        width: img.width,
        height: img.height,
        notes: note.into_iter().collect(),
    })
}

/// The denoising run at the working size, returning float images and the scheduler used.
fn run(
    model: &SdModel,
    p: &GenerateParams,
    w: u32,
    h: u32,
    init: Option<&Image>,
    mask: Option<&Mask>,
    on_step: &mut StepFn,
) -> Result<(Vec<Image>, SchedulerKind, Option<String>)> {
    let dev = &model.device;
    let (tiled, note) = decide_tiling(model, p.vae_tiling, w, h);
    let kind = scheduler_kind(model, p.scheduler)?;
    let mut sched = Scheduler::new(kind, &model.scheduler_config, p.steps).map_err(c)?;
    let cfg_on = p.cfg > 1.0;
    let cond = encode_text(model, p, cfg_on, w, h)?;
    let b = p.batch;
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
        if let Some((mm, ml)) = &mask_cond {
            input = Tensor::cat(&[&input, mm, ml], 1).map_err(c)?;
        }
        let out = model
            .unet
            .forward(
                &input.to_dtype(model.dtype).map_err(c)?,
                t,
                &cond.embeds,
                cond.added.as_ref(),
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

/// A cheap RGB preview of latents (a fixed linear map per family, as A1111's "approx cheap"),
/// at latent resolution; for step previews.
pub fn preview(model: &SdModel, latents: &Tensor) -> Result<Image> {
    const SD: [[f32; 3]; 4] = [
        [0.298, 0.207, 0.208],
        [0.187, 0.286, 0.173],
        [-0.158, 0.189, 0.264],
        [-0.184, -0.271, -0.473],
    ];
    const XL: [[f32; 3]; 4] = [
        [0.3651, 0.4232, 0.4341],
        [-0.2533, -0.0042, 0.1068],
        [0.1076, 0.1111, -0.0362],
        [-0.3165, -0.2492, -0.2188],
    ];
    let f = if model.family == Family::Sdxl { XL } else { SD };
    let l = latents
        .get(0)
        .and_then(|t| t.to_dtype(DType::F32))
        .and_then(|t| t.to_device(&Device::Cpu))
        .map_err(c)?;
    let (ch, h, w) = l.dims3().map_err(c)?;
    let v: Vec<f32> = l.flatten_all().and_then(|t| t.to_vec1()).map_err(c)?;
    let plane = h * w;
    Ok(Image::from_fn(w as u32, h as u32, |x, y| {
        let i = y as usize * w + x as usize;
        let mut rgb = [0f32; 3];
        for (k, row) in f.iter().enumerate().take(ch.min(4)) {
            for j in 0..3 {
                rgb[j] += v[k * plane + i] * row[j];
            }
        }
        let m = |v: f32| ((v + 1.0) / 2.0).clamp(0.0, 1.0);
        [m(rgb[0]), m(rgb[1]), m(rgb[2]), 1.0]
    }))
}
