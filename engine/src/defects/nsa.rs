//! NSA, Natural Synthetic Anomalies (Schlüter et al., ECCV 2022): a patch from elsewhere
//! (same image or a source image) seamlessly cloned into the image with Poisson editing.

use super::common::{check_input, Anchors, EPS};
use super::poisson::poisson_blend;
use super::Defect;
use crate::image::{Image, Mask};
use crate::ops;
use crate::procedural::Rng;

/// Band of [`nsa`] in px. (a) holds with band 0: the Poisson solve only writes region pixels.
/// (b) cannot hold for every pixel: next to the seam the seamless fill converges to the
/// surroundings (that is its purpose). What holds: at least [`NsaParams::min_changed`] of the
/// pixels of the region eroded by `NSA_BAND` differ by more than [`EPS`] (the generator retries
/// placements until this holds and otherwise returns its best attempt).
pub const NSA_BAND: f32 = 3.0;

/// Parameters of [`nsa`].
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NsaParams {
    /// Seed of every random choice.
    pub seed: u64,
    /// Patch width and height as fractions of `min(width, height)`: each uniform in
    /// `[size_min, size_max)`, with `0 < size_min <= size_max <= 0.9`.
    pub size_min: f32,
    pub size_max: f32,
    /// Strength of the appearance change of the cloned patch, 0..1: contrast gain
    /// `1 + intensity..1 + 2 intensity` and a smooth brightness dome of height `±intensity`
    /// that is zero on the patch rim (a constant offset would vanish in the Poisson solve).
    pub intensity: f32,
    /// Required fraction (0..1) of visibly changed pixels in the region eroded by
    /// [`NSA_BAND`].
    pub min_changed: f32,
    /// Number of placements tried before returning the best.
    pub max_tries: u32,
}

impl Default for NsaParams {
    fn default() -> Self {
        NsaParams {
            seed: 0,
            size_min: 0.08,
            size_max: 0.2,
            intensity: 0.12,
            min_changed: 0.95,
            max_tries: 6,
        }
    }
}

/// Fraction of the pixels of `region` eroded by [`NSA_BAND`] whose RGB differs from `img` by
/// more than [`EPS`] (1 when the eroded region is empty).
pub fn nsa_changed_fraction(img: &Image, out: &Image, region: &Mask) -> f32 {
    let core = ops::shrink(region, NSA_BAND);
    let (mut n, mut changed) = (0usize, 0usize);
    for (i, &v) in core.data.iter().enumerate() {
        if v < 0.5 {
            continue;
        }
        n += 1;
        let d = (0..3)
            .map(|c| (out.data[i * 4 + c] - img.data[i * 4 + c]).abs())
            .fold(0.0, f32::max);
        changed += usize::from(d > EPS);
    }
    if n == 0 {
        1.0
    } else {
        changed as f32 / n as f32
    }
}

/// The NSA augmentation. The patch is cut from `source` (or from `img` itself, at least a
/// patch size away), contrast-boosted and given a smooth brightness dome, then Poisson-blended
/// into a rectangle centred on an anchor (inside the placement, clipped to it). Mask: the
/// blended region (binary). Never raises contrast artificially: see [`NSA_BAND`] for the
/// exact guarantee.
pub fn nsa(
    img: &Image,
    p: &NsaParams,
    source: Option<&Image>,
    placement: Option<&Mask>,
) -> Result<Defect, String> {
    check_input(img, placement)?;
    let ok = |v: f32| v.is_finite() && v > 0.0;
    if !(ok(p.size_min) && ok(p.size_max) && p.size_max >= p.size_min && p.size_max <= 0.9) {
        return Err(format!(
            "size_min and size_max must satisfy 0 < size_min <= size_max <= 0.9, got {} and {}",
            p.size_min, p.size_max
        ));
    }
    if !p.intensity.is_finite() || p.intensity < 0.0 {
        return Err(format!("intensity must be >= 0, got {}", p.intensity));
    }
    let (w, h) = (img.width, img.height);
    let src = source.unwrap_or(img);
    if src.width == 0 || src.height == 0 || src.data.len() != (src.width * src.height * 4) as usize
    {
        return Err("source image is empty or malformed".to_string());
    }
    let min_side = 2 * NSA_BAND as u32 + 4;
    if w < min_side + 2 || h < min_side + 2 {
        return Err(format!("image too small for nsa ({w}x{h})"));
    }
    let mut rng = Rng::new(p.seed);
    let anchors = Anchors::new(w, h, placement);
    let base = w.min(h) as f32;
    let mut best: Option<(f32, Image, Mask)> = None;
    for _ in 0..p.max_tries.max(1) {
        let pw = (rng.range_f32(p.size_min, p.size_max) * base) as u32;
        let ph = (rng.range_f32(p.size_min, p.size_max) * base) as u32;
        let pw = pw.clamp(min_side, (w - 2).min(src.width));
        let ph = ph.clamp(min_side, (h - 2).min(src.height));
        let c = anchors.pick(&mut rng);
        // Destination rectangle, kept one pixel off the image border.
        let dx0 = (c.0 - pw as f32 / 2.0)
            .round()
            .clamp(1.0, (w - pw - 1) as f32) as u32;
        let dy0 = (c.1 - ph as f32 / 2.0)
            .round()
            .clamp(1.0, (h - ph - 1) as f32) as u32;
        let (mut sx0, mut sy0) = (0, 0);
        for _ in 0..16 {
            sx0 = (rng.next_u64() % u64::from(src.width - pw + 1)) as u32;
            sy0 = (rng.next_u64() % u64::from(src.height - ph + 1)) as u32;
            let far = (sx0 as f32 - dx0 as f32).hypot(sy0 as f32 - dy0 as f32)
                >= 0.75 * pw.max(ph) as f32;
            if source.is_some() || far {
                break;
            }
        }
        let gain = 1.0 + p.intensity * rng.range_f32(1.0, 2.0);
        let sign = if rng.next_f32() < 0.5 { -1.0 } else { 1.0 };
        let patch = ops::crop_image(src, sx0, sy0, pw, ph);
        let n = (pw * ph) as f32;
        let mean: Vec<f32> = (0..3)
            .map(|c| patch.data.chunks_exact(4).map(|v| v[c]).sum::<f32>() / n)
            .collect();
        let mut guide = patch.clone();
        for y in 0..ph {
            for x in 0..pw {
                let dome = (std::f32::consts::PI * (x as f32 + 0.5) / pw as f32).sin()
                    * (std::f32::consts::PI * (y as f32 + 0.5) / ph as f32).sin();
                let i = ((y * pw + x) * 4) as usize;
                for c in 0..3 {
                    // Guidance only: values may leave 0..1, the blend clamps its output.
                    guide.data[i + c] =
                        (patch.data[i + c] - mean[c]) * gain + mean[c] + sign * p.intensity * dome;
                }
            }
        }
        let region = Mask::from_fn(w, h, |x, y| {
            let inside = x >= dx0 && x < dx0 + pw && y >= dy0 && y < dy0 + ph;
            let allowed = placement.is_none_or(|pl| pl.get(x, y) >= 0.5);
            f32::from(u8::from(inside && allowed))
        });
        if !region.data.iter().any(|&v| v > 0.0) {
            continue;
        }
        let out = poisson_blend(img, &guide, &region, (i64::from(dx0), i64::from(dy0)))?;
        let frac = nsa_changed_fraction(img, &out, &region);
        let better = best.as_ref().is_none_or(|b| frac > b.0);
        if better {
            best = Some((frac, out, region));
        }
        if frac >= p.min_changed {
            break;
        }
    }
    let (_, image, mask) = best.ok_or("no placement of the patch intersects the placement mask")?;
    let instances = mask.data.iter().map(|&m| u32::from(m > 0.0)).collect();
    Ok(Defect {
        image,
        mask,
        band: NSA_BAND,
        instances,
    })
}
