//! Stains: soft fBm-distorted contamination blobs with an optional darker coffee-ring rim.

use super::common::{check_input, check_min, finish, smoothstep, with_owners, Anchors};
use super::Defect;
use crate::image::{Image, Mask};
use crate::procedural::{fbm, Rng};

/// Soft-edge band of [`stain`] in px: the colour change and the mask are both functions of the
/// same signed distance and are both zero outside the blob, so 0 would do; 1 px for safety.
pub const STAIN_BAND: f32 = 1.0;

/// Parameters of [`stain`].
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StainParams {
    /// Seed of every random choice.
    pub seed: u64,
    /// Number of blobs (>= 1).
    pub count: u32,
    /// Mean blob radius in px (each is 60..130 % of it).
    pub size: f32,
    /// Stain colour, sRGB 0..1.
    pub color: [f32; 3],
    /// Strength of the colour shift at the blob centre, 0..1.
    pub opacity: f32,
    /// Width of the soft edge as a fraction of the blob radius, 0.05..1.
    pub softness: f32,
    /// Outline distortion, 0..1 (fBm displacement relative to the radius).
    pub distortion: f32,
    /// Strength of the darker coffee-ring rim, 0..1 (0 = none).
    pub ring: f32,
}

impl Default for StainParams {
    fn default() -> Self {
        StainParams {
            seed: 0,
            count: 2,
            size: 50.0,
            color: [0.42, 0.3, 0.16],
            opacity: 0.6,
            softness: 0.4,
            distortion: 0.45,
            ring: 0.6,
        }
    }
}

/// Adds `count` stains. Mask: the blobs' soft coverage (0 outside the fBm-distorted outline,
/// ramping to 1 over the soft edge); band [`STAIN_BAND`].
pub fn stain(img: &Image, p: &StainParams, placement: Option<&Mask>) -> Result<Defect, String> {
    check_input(img, placement)?;
    check_min("size", p.size, 1.0)?;
    check_min("opacity", p.opacity, 0.0)?;
    check_min("softness", p.softness, 0.0)?;
    check_min("distortion", p.distortion, 0.0)?;
    check_min("ring", p.ring, 0.0)?;
    if p.count == 0 {
        return Err("count must be >= 1".to_string());
    }
    let (w, h) = (img.width as usize, img.height as usize);
    let anchors = Anchors::new(img.width, img.height, placement);
    let mut rng = Rng::new(p.seed);
    let color = p.color.map(|c| {
        if c.is_finite() {
            c.clamp(0.0, 1.0)
        } else {
            0.5
        }
    });
    let opacity = p.opacity.min(1.0);
    let ring = p.ring.min(1.0);
    let dist = p.distortion.min(1.0);
    // Per pixel: coverage `e` (soft interior) and rim weight.
    let mut cover = vec![0.0f32; w * h];
    let mut rim = vec![0.0f32; w * h];
    // The stain (1-based) with the strongest coverage or rim at each pixel.
    let mut owner = vec![0u32; w * h];
    let mut strength = vec![0.0f32; w * h];
    let mottle_seed = rng.next_u64();
    for k in 0..p.count.min(256) {
        let c = anchors.pick(&mut rng);
        let s = p.size * rng.range_f32(0.6, 1.3);
        let nseed = rng.next_u64();
        let elong = rng.range_f32(0.75, 1.0);
        let rot = rng.range_f32(0.0, std::f32::consts::PI);
        let (ca, sa) = (rot.cos(), rot.sin());
        let soft = (p.softness.clamp(0.05, 1.0) * s).max(1.0);
        let ring_w = (0.1 * s).max(1.5);
        let reach = s * (1.0 + dist) + 2.0;
        let x0 = (c.0 - reach).floor().max(0.0) as usize;
        let y0 = (c.1 - reach).floor().max(0.0) as usize;
        let x1 = ((c.0 + reach).ceil().max(0.0) as usize).min(w);
        let y1 = ((c.1 + reach).ceil().max(0.0) as usize).min(h);
        for y in y0..y1 {
            for x in x0..x1 {
                let (dx, dy) = (x as f32 + 0.5 - c.0, y as f32 + 0.5 - c.1);
                let (u, v) = (dx * ca + dy * sa, (-dx * sa + dy * ca) / elong);
                let rho = (u * u + v * v).sqrt() / s;
                let n = fbm(
                    nseed,
                    x as f32 / (s * 0.7),
                    y as f32 / (s * 0.7),
                    4,
                    2.0,
                    0.5,
                );
                // Signed distance (px, approximate) to the distorted outline; < 0 inside.
                let sd = (rho - 1.0 - dist * 1.2 * n) * s;
                if sd >= 0.0 {
                    continue;
                }
                let i = y * w + x;
                let e = smoothstep(0.0, soft, -sd);
                cover[i] = cover[i].max(e);
                let mut r = 0.0;
                if ring > 0.0 {
                    r = smoothstep(0.0, 1.5, -sd) * (-(-sd - 1.5).max(0.0) / ring_w).exp();
                    rim[i] = rim[i].max(r);
                }
                let s = e.max(r * ring);
                if owner[i] == 0 || s > strength[i] {
                    owner[i] = k + 1;
                    strength[i] = s;
                }
            }
        }
    }
    let mut out = img.clone();
    let mut mask = Mask::filled(img.width, img.height, 0.0);
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let (e, r) = (cover[i], rim[i] * ring);
            if e <= 0.0 && r <= 0.0 {
                continue;
            }
            let mottle =
                0.75 + 0.25 * fbm(mottle_seed, x as f32 / 23.0, y as f32 / 23.0, 3, 2.0, 0.5);
            let alpha = (opacity * (e * mottle).max(r)).clamp(0.0, 1.0);
            for c in 0..3 {
                let v = img.data[i * 4 + c];
                // Keep the surface's texture: the stain tints it towards `color`.
                let target = color[c] * (0.55 + 0.9 * v) * (1.0 - 0.45 * r);
                out.data[i * 4 + c] = v + (target - v) * alpha;
            }
            mask.data[i] = e.max(r.min(1.0) * f32::from(u8::from(ring > 0.0)));
        }
    }
    Ok(with_owners(
        finish(img, out, mask, STAIN_BAND, placement, true),
        &owner,
    ))
}
