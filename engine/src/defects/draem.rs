//! DRAEM-style anomalies (Zavrtanik et al., ICCV 2021): a thresholded Perlin mask filled with
//! a blend of a foreign texture and the image.

use super::common::{check_input, check_min, finish};
use super::Defect;
use crate::image::{Image, Mask};
use crate::procedural::{noise_field, texture, NoiseKind, Rng, TextureKind, TextureParams};

/// Soft-edge band of [`draem`] in px: the mask is binary and the blend happens exactly on it.
pub const DRAEM_BAND: f32 = 0.0;

/// Parameters of [`draem`].
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DraemParams {
    /// Seed of every random choice.
    pub seed: u64,
    /// Opacity of the source texture in the anomaly, 0..1; `None`: uniform in `[0.1, 1.0)`.
    #[serde(deserialize_with = "super::zero_is_none")]
    pub beta: Option<f32>,
    /// Threshold on the `0..1` Perlin field; higher gives smaller anomalies (0.5 = half).
    pub threshold: f32,
    /// Smallest Perlin cell size in px (the size is `2^k`, `k` uniform between the log2s).
    pub min_scale: f32,
    /// Largest Perlin cell size in px.
    pub max_scale: f32,
    /// Minimum covered fraction of the image (or placement); the field is redrawn (up to 32
    /// times) until reached, then the last field is thresholded lower to reach it.
    pub min_coverage: f32,
}

impl Default for DraemParams {
    fn default() -> Self {
        DraemParams {
            seed: 0,
            beta: None,
            threshold: 0.7,
            min_scale: 16.0,
            max_scale: 128.0,
            min_coverage: 0.005,
        }
    }
}

/// The DRAEM augmentation. `source` is the anomaly texture (tiled if its size differs); when
/// `None`, a procedural texture of a random kind and colour is used. Mask: the thresholded
/// Perlin field (binary); band [`DRAEM_BAND`].
pub fn draem(
    img: &Image,
    p: &DraemParams,
    source: Option<&Image>,
    placement: Option<&Mask>,
) -> Result<Defect, String> {
    check_input(img, placement)?;
    check_min("min_scale", p.min_scale, 1.0)?;
    check_min("max_scale", p.max_scale, p.min_scale)?;
    check_min("min_coverage", p.min_coverage, 0.0)?;
    if !(0.0..=1.0).contains(&p.threshold) {
        return Err(format!("threshold must be in 0..=1, got {}", p.threshold));
    }
    if let Some(s) = source {
        if s.width == 0 || s.height == 0 || s.data.len() != s.width as usize * s.height as usize * 4
        {
            return Err("source image is empty or malformed".to_string());
        }
    }
    let (w, h) = (img.width, img.height);
    let n = w as usize * h as usize;
    let mut rng = Rng::new(p.seed);
    let beta = match p.beta {
        Some(b) if b.is_finite() => b.clamp(0.0, 1.0),
        Some(b) => return Err(format!("beta must be finite, got {b}")),
        None => rng.range_f32(0.1, 1.0),
    };
    let area = placement.map_or(n, |pl| pl.data.iter().filter(|&&v| v >= 0.5).count());
    let allowed = |i: usize| placement.is_none_or(|pl| pl.data[i] >= 0.5);
    let mut mask = None;
    let mut last_field = None;
    for _ in 0..32 {
        let k = rng.range_f32(p.min_scale.log2(), p.max_scale.log2());
        let field = noise_field(NoiseKind::Perlin, w, h, rng.next_u64(), k.exp2(), 1);
        let m = threshold_mask(w, h, &field.data, p.threshold, allowed);
        let covered = m.data.iter().filter(|&&v| v > 0.0).count();
        if covered > 0 && covered as f32 >= p.min_coverage * area as f32 {
            mask = Some(m);
            break;
        }
        last_field = Some(field);
    }
    // No field reached the coverage at `threshold` (a threshold near 1, a coverage near 1, or
    // cells much larger than the image): the last field is thresholded at the level that
    // covers `min_coverage` of the area (at least one pixel), so every value gives an anomaly.
    let mask = match (mask, last_field) {
        (Some(m), _) => m,
        (None, Some(field)) => {
            let mut values: Vec<f32> = (0..n)
                .filter(|&i| allowed(i))
                .map(|i| field.data[i])
                .collect();
            values.sort_unstable_by(|a, b| b.total_cmp(a));
            let want = ((p.min_coverage.min(1.0) * area as f32).ceil() as usize)
                .clamp(1, values.len().max(1));
            let level = values.get(want - 1).copied().unwrap_or(0.0);
            // Inclusive: the `want` highest values are in.
            threshold_mask(
                w,
                h,
                &field.data,
                level.min(p.threshold).next_down(),
                allowed,
            )
        }
        (None, None) => return Err("no anomaly region could be drawn".to_string()),
    };
    let generated;
    let src = match source {
        Some(s) => s,
        None => {
            let kind = TextureKind::ALL[(rng.next_u64() % TextureKind::ALL.len() as u64) as usize];
            generated = texture(&TextureParams {
                kind,
                width: w,
                height: h,
                seed: rng.next_u64(),
                scale: rng.range_f32(0.5, 2.0),
                color: [rng.next_f32(), rng.next_f32(), rng.next_f32()],
                contrast: rng.range_f32(1.0, 2.0),
                angle_deg: rng.range_f32(0.0, 360.0),
            });
            &generated
        }
    };
    let mut out = img.clone();
    for y in 0..h {
        for x in 0..w {
            let i = (y * w + x) as usize;
            if mask.data[i] <= 0.0 {
                continue;
            }
            let s = src.pixel(x % src.width, y % src.height);
            for c in 0..3 {
                let v = img.data[i * 4 + c];
                out.data[i * 4 + c] = beta * s[c] + (1.0 - beta) * v;
            }
        }
    }
    // The placement is already part of the mask (binary), so no further clipping is needed.
    Ok(finish(img, out, mask, DRAEM_BAND, None, true))
}

/// The pixels of `field` above `level` (and allowed by the placement) as a binary mask.
fn threshold_mask(
    w: u32,
    h: u32,
    field: &[f32],
    level: f32,
    allowed: impl Fn(usize) -> bool,
) -> Mask {
    Mask {
        width: w,
        height: h,
        data: field
            .iter()
            .enumerate()
            .map(|(i, &v)| f32::from(u8::from(v > level && allowed(i))))
            .collect(),
    }
}
