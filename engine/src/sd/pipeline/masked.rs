//! Inpainting's mask handling on top of diffusers: the binarised mask, A1111's "only masked"
//! (a padded crop at full resolution, pasted back with a feathered seam) and paste-back.

use super::super::model::SdModel;
use super::{check_size, run, GenerateParams, Generated, StepFn};
use crate::error::{EngineError, Result};
use crate::image::{Image, Mask};
use crate::ops::{self, Filter};

/// A binarised mask (`>= 0.5` → 1), as diffusers' mask processor does.
pub(super) fn binarise(mask: &Mask) -> Mask {
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

/// `top ← base·(1−m) + top·m` over images of one size (diffusers' `apply_overlay`).
pub(super) fn paste(top_into: &mut Image, base: &Image, m: &Mask) {
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

pub(super) fn only_masked(
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
    let q = super::control::crop_controls(p, (img.width, img.height), region);
    let (gen_images, kind, note) = run(model, &q, w, h, Some(&crop_img), Some(&crop_m), on_step)?;
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
