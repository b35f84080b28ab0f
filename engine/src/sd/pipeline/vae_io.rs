//! The VAE side of the pipelines: images to and from tensors as diffusers' image processor
//! does, the posterior sample and the decode, the VAE tiling choice (off, on, auto over a
//! memory budget), and cheap step previews.

use candle_core::{DType, Device, Tensor};

use super::super::model::{Family, SdModel};
use super::super::torch_rng::TorchGenerator;
use super::{c, randn};
use crate::error::Result;
use crate::image::Image;

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
pub(super) fn decide_tiling(
    model: &SdModel,
    mode: VaeTiling,
    w: u32,
    h: u32,
) -> (bool, Option<String>) {
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

/// `[1, 3, H, W]` in `-1..1` from an image, as diffusers' image processor does with a PIL image
/// (8-bit values divided by 255, then `2x − 1`).
pub(super) fn image_tensor(img: &Image, device: &Device) -> Result<Tensor> {
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

/// Float images `[B, 3, H, W]` in `-1..1` → our RGBA images, as diffusers' postprocess
/// (`(x / 2 + 0.5).clamp(0, 1)`).
pub(super) fn to_images(x: &Tensor) -> Result<Vec<Image>> {
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

/// VAE posterior sample × scaling factor (diffusers' `retrieve_latents(..., generator)`).
pub(super) fn encode_sample(
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

pub(super) fn decode(model: &SdModel, latents: &Tensor, tiled: bool) -> Result<Tensor> {
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
