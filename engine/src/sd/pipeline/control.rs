//! ControlNet guidance inside the pipelines, as diffusers' `StableDiffusion(XL)ControlNet*`
//! pipelines (0.42) run it:
//!
//! - **control image** (`prepare_control_image`): 8-bit RGB resized to the working size with
//!   Pillow's Lanczos ([`super::pil_resize`]), divided by 255 (no `2x − 1`), repeated for the
//!   batch and doubled for CFG unless in guess mode. An inpaint control (a [`ControlSpec`] with a
//!   mask) is diffusers' documented `make_inpaint_condition`: pixels whose 8-bit mask value is
//!   above 0.5 become −1, built at the control image's own size; a tensor that size differs is
//!   resized by `F.interpolate` (nearest), as the image processor does with tensors.
//! - **per step** (`controlnet_keep`): scale = strength × keep(i, n) over the steps that run (the
//!   truncated list for img2img/inpaint). The net sees the scaled 4-channel latent input (before
//!   a 9-channel UNet's mask concat), the prompt embeddings and SDXL's added conditioning. Guess
//!   mode with CFG runs it on the conditional half only and pads zero residuals for the
//!   unconditional half. Several controls sum (`MultiControlNetModel`). A control whose scale
//!   is 0 this step is skipped: its residuals would be exact zeros.

use std::sync::Arc;

use candle_core::Tensor;

use super::super::controlnet::{ControlResiduals, ControlSpec};
use super::super::model::SdModel;
use super::super::unet::AddedCond;
use super::pil_resize::resize_rgb8;
use super::{c, GenerateParams};
use crate::error::{EngineError, Result};
use crate::image::Image;
use crate::ops;

/// One control ready for the denoising loop.
pub(super) struct Prepared {
    spec: ControlSpec,
    /// `[B, 3, H, W]` (`[2B, …]` with CFG outside guess mode), in the net's dtype and device.
    cond: Tensor,
    /// Guess mode asked, or forced by the net (`global_pool_conditions`).
    guess: bool,
}

/// Checks every control against the model and its own settings (one line naming the net).
pub(super) fn check(model: &SdModel, specs: &[ControlSpec]) -> Result<()> {
    for s in specs {
        s.net.check_compatible(model)?;
        let name = &s.net.source;
        if !s.strength.is_finite() {
            return Err(EngineError::failed(format!(
                "ControlNet {name}: strength {} is not a number",
                s.strength
            )));
        }
        // diffusers' check_inputs: start < end, start >= 0, end <= 1.
        if !(s.start >= 0.0 && s.end <= 1.0 && s.start < s.end) {
            return Err(EngineError::failed(format!(
                "ControlNet {name}: start {} and end {} must satisfy 0 ≤ start < end ≤ 1",
                s.start, s.end
            )));
        }
        if s.image.width == 0 || s.image.height == 0 {
            return Err(EngineError::failed(format!(
                "ControlNet {name}: the control image is empty"
            )));
        }
    }
    Ok(())
}

/// The output size diffusers' txt2img ControlNet pipelines default to: the first control
/// image's, rounded down to `grid`.
pub(super) fn default_size(specs: &[ControlSpec], grid: u32) -> Option<(u32, u32)> {
    specs
        .first()
        .map(|s| (s.image.width / grid * grid, s.image.height / grid * grid))
}

/// Prepares every control for a `w`×`h` run of `batch` images.
pub(super) fn prepare(
    specs: &[ControlSpec],
    w: u32,
    h: u32,
    batch: usize,
    cfg_on: bool,
) -> Result<Vec<Prepared>> {
    specs
        .iter()
        .map(|s| {
            let guess = s.guess_mode || s.net.config.global_pool_conditions;
            let (w_, h_) = (w as usize, h as usize);
            let data = control_pixels(s, w_, h_);
            let one = Tensor::from_vec(data, (1, 3, h_, w_), &s.net.device).map_err(c)?;
            let copies = if cfg_on && !guess { 2 * batch } else { batch };
            let parts: Vec<&Tensor> = (0..copies).map(|_| &one).collect();
            let cond = Tensor::cat(&parts, 0)
                .and_then(|t| t.to_dtype(s.net.dtype))
                .map_err(c)?;
            Ok(Prepared {
                spec: s.clone(),
                cond,
                guess,
            })
        })
        .collect()
}

fn to_u8(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0).round() as u8
}

/// The control image as planar RGB floats at `w`×`h` (see the module docs).
fn control_pixels(s: &ControlSpec, w: usize, h: usize) -> Vec<f32> {
    let img = &s.image;
    let (iw, ih) = (img.width as usize, img.height as usize);
    let rgb8: Vec<u8> = img
        .data
        .chunks_exact(4)
        .flat_map(|p| [to_u8(p[0]), to_u8(p[1]), to_u8(p[2])])
        .collect();
    match &s.mask {
        None => {
            let px = if (iw, ih) == (w, h) {
                rgb8
            } else {
                resize_rgb8(&rgb8, iw, ih, w, h)
            };
            planar(w * h, |i, ch| f32::from(px[i * 3 + ch]) / 255.0)
        }
        Some(mask) => {
            let mask = if (mask.width, mask.height) == (img.width, img.height) {
                mask.as_ref().clone()
            } else {
                ops::resize_mask(mask, img.width, img.height, ops::Filter::Nearest)
            };
            // make_inpaint_condition at the image's size, then torch's nearest resize.
            let cond = planar(iw * ih, |i, ch| {
                if f32::from(to_u8(mask.data[i])) / 255.0 > 0.5 {
                    -1.0
                } else {
                    f32::from(rgb8[i * 3 + ch]) / 255.0
                }
            });
            nearest_planar(&cond, iw, ih, w, h)
        }
    }
}

fn planar(n: usize, f: impl Fn(usize, usize) -> f32) -> Vec<f32> {
    (0..3)
        .flat_map(|ch| (0..n).map(move |i| (i, ch)))
        .map(|(i, ch)| f(i, ch))
        .collect()
}

/// torch's `F.interpolate(mode="nearest")` on 3 planes: source `floor(dst · (in / out))` in
/// float32, clamped.
fn nearest_planar(src: &[f32], iw: usize, ih: usize, w: usize, h: usize) -> Vec<f32> {
    if (iw, ih) == (w, h) {
        return src.to_vec();
    }
    let idx = |o: usize, i_n: usize, o_n: usize| -> usize {
        let scale = i_n as f32 / o_n as f32;
        ((o as f32 * scale).floor() as usize).min(i_n - 1)
    };
    let mut out = Vec::with_capacity(3 * w * h);
    for ch in 0..3 {
        for y in 0..h {
            let sy = idx(y, ih, h);
            for x in 0..w {
                out.push(src[ch * iw * ih + sy * iw + idx(x, iw, w)]);
            }
        }
    }
    out
}

/// What the UNet needs from the text side at one step.
pub(super) struct StepInputs<'a> {
    /// The scaled 4-channel latent model input (`[2B, …]` with CFG).
    pub input: &'a Tensor,
    pub t: f64,
    pub embeds: &'a Tensor,
    pub added: Option<&'a AddedCond>,
    pub cfg_on: bool,
    pub batch: usize,
    /// Index of this step among the `total` that run.
    pub k: usize,
    pub total: usize,
}

/// The summed residuals of every control active at this step, in the UNet's dtype and on its
/// device; `None` when none is active.
pub(super) fn residuals(
    model: &SdModel,
    controls: &[Prepared],
    s: &StepInputs,
) -> Result<Option<ControlResiduals>> {
    let mut sum: Option<ControlResiduals> = None;
    for ctl in controls {
        let scale = ctl.spec.strength * ctl.spec.keep(s.k, s.total);
        if scale == 0.0 {
            continue;
        }
        let net = &ctl.spec.net;
        let half = ctl.guess && s.cfg_on;
        let on_net = |t: &Tensor| -> Result<Tensor> {
            let t = if half {
                t.narrow(0, s.batch, s.batch).map_err(c)?
            } else {
                t.clone()
            };
            t.to_device(&net.device)
                .and_then(|t| t.to_dtype(net.dtype))
                .map_err(c)
        };
        let sample = on_net(s.input)?;
        let ehs = on_net(s.embeds)?;
        let added = match s.added {
            Some(a) => Some(AddedCond {
                text_embeds: on_net(&a.text_embeds)?,
                time_ids: on_net(&a.time_ids)?,
            }),
            None => None,
        };
        let r = net
            .forward(
                &sample,
                s.t,
                &ehs,
                added.as_ref(),
                &ctl.cond,
                scale,
                ctl.guess,
            )
            .map_err(|e| EngineError::failed(format!("ControlNet {}: {e}", net.source)))?;
        let back = |t: &Tensor| -> Result<Tensor> {
            let t = t
                .to_device(&model.device)
                .and_then(|t| t.to_dtype(model.dtype))
                .map_err(c)?;
            if half {
                Tensor::cat(&[&t.zeros_like().map_err(c)?, &t], 0).map_err(c)
            } else {
                Ok(t)
            }
        };
        let r = ControlResiduals {
            down: r.down.iter().map(back).collect::<Result<Vec<_>>>()?,
            mid: back(&r.mid)?,
        };
        sum = Some(match sum {
            None => r,
            Some(acc) => acc.add(&r).map_err(c)?,
        });
    }
    Ok(sum)
}

/// The controls of an "only masked" run: each control image (and its mask) cropped to the
/// region the run works on, after resizing it to the full image's size if it differs.
pub(super) fn crop_controls(
    p: &GenerateParams,
    full: (u32, u32),
    region: (u32, u32, u32, u32),
) -> GenerateParams {
    let (x1, y1, x2, y2) = region;
    let mut q = p.clone();
    q.controls = p
        .controls
        .iter()
        .map(|s| {
            let img = if (s.image.width, s.image.height) == full {
                s.image.as_ref().clone()
            } else {
                pil_resize_image(&s.image, full.0, full.1)
            };
            let mask = s.mask.as_ref().map(|m| {
                let m = if (m.width, m.height) == full {
                    m.as_ref().clone()
                } else {
                    ops::resize_mask(m, full.0, full.1, ops::Filter::Nearest)
                };
                Arc::new(ops::crop_mask(&m, x1, y1, x2 - x1, y2 - y1))
            });
            ControlSpec {
                image: Arc::new(ops::crop_image(&img, x1, y1, x2 - x1, y2 - y1)),
                mask,
                ..s.clone()
            }
        })
        .collect();
    q
}

/// An image resized as Pillow's LANCZOS on its 8-bit RGB (alpha set to 1).
pub fn pil_resize_image(img: &Image, w: u32, h: u32) -> Image {
    let rgb8: Vec<u8> = img
        .data
        .chunks_exact(4)
        .flat_map(|p| [to_u8(p[0]), to_u8(p[1]), to_u8(p[2])])
        .collect();
    let out = resize_rgb8(
        &rgb8,
        img.width as usize,
        img.height as usize,
        w as usize,
        h as usize,
    );
    Image {
        width: w,
        height: h,
        data: out
            .chunks_exact(3)
            .flat_map(|p| {
                [
                    f32::from(p[0]) / 255.0,
                    f32::from(p[1]) / 255.0,
                    f32::from(p[2]) / 255.0,
                    1.0,
                ]
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_is_torch_nearest() {
        // 2 → 4 repeats each source twice; 4 → 3 takes floor(o · 4/3) = 0, 1, 2.
        let src: Vec<f32> = (0..3 * 2).map(|v| v as f32).collect();
        let out = nearest_planar(&src, 2, 1, 4, 1);
        assert_eq!(&out[..4], &[0.0, 0.0, 1.0, 1.0]);
        let src: Vec<f32> = (0..3 * 4).map(|v| v as f32).collect();
        assert_eq!(&nearest_planar(&src, 4, 1, 3, 1)[..3], &[0.0, 1.0, 2.0]);
    }
}
