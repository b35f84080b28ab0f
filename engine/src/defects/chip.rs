//! Chips: irregular holes in the top layer revealing a textured under-layer, with a lit bevel.

use super::common::{check_input, check_min, dir, finish, shade, with_owners, Anchors};
use super::Defect;
use crate::image::{Image, Mask};
use crate::ops;
use crate::procedural::{fbm, texture, Rng, TextureKind, TextureParams};

/// Soft-edge band of [`chip`] in px: every change (hole fill, bevel, inner shadow) is inside
/// the hole outline, where the mask is > 0; 1 px covers the antialiasing.
pub const CHIP_BAND: f32 = 1.0;

/// Parameters of [`chip`].
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChipParams {
    /// Seed of every random choice.
    pub seed: u64,
    /// Number of chips (>= 1).
    pub count: u32,
    /// Mean chip radius in px (each is 70..130 % of it).
    pub size: f32,
    /// Irregularity of the outline, 0..1.
    pub roughness: f32,
    /// Base colour of the exposed under-layer (primer, concrete, bare metal), sRGB 0..1.
    pub under_color: [f32; 3],
    /// Texture of the under-layer.
    pub under_texture: TextureKind,
    /// Width of the bevel (broken edge) in px.
    pub bevel: f32,
    /// Direction towards the light in degrees (225 = top-left).
    #[serde(rename = "light")]
    pub light_deg: f32,
    /// Preference for the placement mask's boundary (0 = anywhere; k: weight
    /// `exp(-k * distance_to_boundary / size)`). Ignored without a placement mask.
    pub edge_affinity: f32,
}

impl Default for ChipParams {
    fn default() -> Self {
        ChipParams {
            seed: 0,
            count: 1,
            size: 30.0,
            roughness: 0.5,
            under_color: [0.62, 0.6, 0.56],
            under_texture: TextureKind::Concrete,
            bevel: 2.5,
            light_deg: 225.0,
            edge_affinity: 2.0,
        }
    }
}

/// Knocks `count` chips out of the surface. Mask: the antialiased hole outline (a noisy
/// polygon from random harmonics of the angle); band [`CHIP_BAND`].
pub fn chip(img: &Image, p: &ChipParams, placement: Option<&Mask>) -> Result<Defect, String> {
    check_input(img, placement)?;
    check_min("size", p.size, 2.0)?;
    check_min("roughness", p.roughness, 0.0)?;
    check_min("bevel", p.bevel, 0.0)?;
    check_min("edge_affinity", p.edge_affinity, 0.0)?;
    if p.count == 0 {
        return Err("count must be >= 1".to_string());
    }
    let (w, h) = (img.width as usize, img.height as usize);
    let anchors = match placement {
        Some(pl) if p.edge_affinity > 0.0 => {
            let outside: Vec<bool> = pl.data.iter().map(|&v| v < 0.5).collect();
            let d = ops::distance_to(&outside, w, h);
            let k = p.edge_affinity / p.size;
            Anchors::weighted(img.width, img.height, placement, |i| (-k * d[i]).exp())
        }
        _ => Anchors::new(img.width, img.height, placement),
    };
    let mut rng = Rng::new(p.seed);
    let rough = p.roughness.min(1.0);
    let mut sd = vec![f32::INFINITY; w * h];
    // The chip (1-based) nearest to each pixel's inside.
    let mut owner = vec![0u32; w * h];
    for k in 0..p.count.min(256) {
        let c = anchors.pick(&mut rng);
        let r0 = p.size * rng.range_f32(0.7, 1.3);
        // Radius as a function of angle: random harmonics, 1/k falloff (a jagged blob).
        let harm: Vec<(f32, f32, f32)> = (2..14)
            .map(|k| {
                let k = k as f32;
                (
                    k,
                    rng.normal() * 0.4 / k.powf(1.25),
                    rng.range_f32(0.0, std::f32::consts::TAU),
                )
            })
            .collect();
        let jag_seed = rng.next_u64();
        let reach = r0 * (1.0 + 1.2 * rough) + 2.0 + 3.0 * rough;
        let x0 = (c.0 - reach).floor().max(0.0) as usize;
        let y0 = (c.1 - reach).floor().max(0.0) as usize;
        let x1 = ((c.0 + reach).ceil().max(0.0) as usize).min(w);
        let y1 = ((c.1 + reach).ceil().max(0.0) as usize).min(h);
        for y in y0..y1 {
            for x in x0..x1 {
                let (dx, dy) = (x as f32 + 0.5 - c.0, y as f32 + 0.5 - c.1);
                let th = dy.atan2(dx);
                let wobble: f32 = harm.iter().map(|&(k, a, ph)| a * (k * th + ph).cos()).sum();
                let r = r0 * (1.0 + rough * wobble).max(0.2);
                let i = y * w + x;
                // Fine jaggedness of the broken edge (up to ~3 px).
                let jag = 3.0 * rough * fbm(jag_seed, x as f32 / 5.0, y as f32 / 5.0, 3, 2.0, 0.5);
                let d = dx.hypot(dy) - r + jag;
                if d < sd[i] {
                    sd[i] = d;
                    owner[i] = k + 1;
                }
            }
        }
    }
    let under = texture(&TextureParams {
        kind: p.under_texture,
        width: img.width,
        height: img.height,
        seed: rng.next_u64(),
        scale: 0.7,
        color: p.under_color,
        contrast: 1.3,
        angle_deg: rng.range_f32(0.0, 180.0),
    });
    let (lx, ly) = dir(p.light_deg);
    let bevel = p.bevel.max(0.5);
    let mut out = img.clone();
    let mut mask = Mask::filled(img.width, img.height, 0.0);
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let m = (0.5 - sd[i]).clamp(0.0, 1.0);
            if m <= 0.0 {
                continue;
            }
            // Outward normal of the outline from the distance field.
            let at = |x: usize, y: usize| {
                let v = sd[y * w + x];
                if v.is_finite() {
                    v
                } else {
                    sd[i] + 1.0
                }
            };
            let gx = at((x + 1).min(w - 1), y) - at(x.saturating_sub(1), y);
            let gy = at(x, (y + 1).min(h - 1)) - at(x, y.saturating_sub(1));
            let gl = gx.hypot(gy).max(1e-6);
            let facing = -(gx * lx + gy * ly) / gl; // > 0: wall faces the light
            let inside = -sd[i];
            let bev = (1.0 - inside / bevel).clamp(0.0, 1.0);
            // Shadow cast by the wall nearest the light onto the hole floor.
            let shadow = 0.35 * (-facing).max(0.0) * (-inside / 4.0).exp();
            for c in 0..3 {
                let top = img.data[i * 4 + c];
                let floor = shade(under.data[i * 4 + c], -shadow);
                let wall = shade(0.5 * (top + floor), 0.55 * facing);
                let v = floor + (wall - floor) * bev;
                out.data[i * 4 + c] = top + (v - top) * m;
            }
            mask.data[i] = m;
        }
    }
    Ok(with_owners(
        finish(img, out, mask, CHIP_BAND, placement, true),
        &owner,
    ))
}
