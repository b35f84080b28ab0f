//! Dents: smooth (raised-cosine) depressions shaded from the height field's normals.

use super::common::{check_input, check_min, dir, finish, gradient, shade, with_owners, Anchors};
use super::Defect;
use crate::image::{Image, Mask};
use crate::procedural::Rng;

/// Soft-edge band of [`dent`] in px: shading comes from central differences, so it reaches
/// one pixel past the support; the elliptical distance estimate adds up to ~1 px.
pub const DENT_BAND: f32 = 3.0;

/// Parameters of [`dent`].
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DentParams {
    /// Seed of every random choice.
    pub seed: u64,
    /// Number of dents (>= 1).
    pub count: u32,
    /// Mean radius in px (major semi-axis).
    pub radius: f32,
    /// Relative radius variation, 0..1 (each dent's radius is `radius * (1 ± jitter)`).
    pub radius_jitter: f32,
    /// Depth in px (height units equal pixel units); slopes are `~depth * 1.6 / radius`.
    pub depth: f32,
    /// Flattening, 0..0.9: minor semi-axis = major * (1 - ellipticity).
    pub ellipticity: f32,
    /// Orientation of the major axis in degrees, from +x towards +y.
    pub angle: f32,
    /// Maximum deviation from `angle` in degrees.
    pub angle_jitter: f32,
    /// Direction towards the light in degrees (225 = top-left).
    #[serde(rename = "light")]
    pub light_deg: f32,
}

impl Default for DentParams {
    fn default() -> Self {
        DentParams {
            seed: 0,
            count: 1,
            radius: 45.0,
            radius_jitter: 0.3,
            depth: 7.0,
            ellipticity: 0.25,
            angle: 0.0,
            angle_jitter: 180.0,
            light_deg: 225.0,
        }
    }
}

/// Presses `count` dents into the surface. Mask: the dents' support (height != 0),
/// antialiased; band [`DENT_BAND`].
pub fn dent(img: &Image, p: &DentParams, placement: Option<&Mask>) -> Result<Defect, String> {
    check_input(img, placement)?;
    check_min("radius", p.radius, 1.0)?;
    check_min("depth", p.depth, 0.0)?;
    check_min("radius_jitter", p.radius_jitter, 0.0)?;
    check_min("ellipticity", p.ellipticity, 0.0)?;
    if p.count == 0 {
        return Err("count must be >= 1".to_string());
    }
    let (w, h) = (img.width as usize, img.height as usize);
    let anchors = Anchors::new(img.width, img.height, placement);
    let mut rng = Rng::new(p.seed);
    let mut height = vec![0.0f32; w * h];
    let mut sdist = vec![f32::INFINITY; w * h];
    // The dent (1-based) whose outline is nearest inside each pixel.
    let mut owner = vec![0u32; w * h];
    for k in 0..p.count.min(256) {
        let c = anchors.pick(&mut rng);
        let a = p.radius * (1.0 + p.radius_jitter.min(0.9) * rng.range_f32(-1.0, 1.0));
        let b = a * (1.0 - p.ellipticity.min(0.9));
        let (ux, uy) = dir(p.angle + p.angle_jitter * rng.range_f32(-1.0, 1.0));
        let depth = p.depth * rng.range_f32(0.8, 1.2);
        let x0 = (c.0 - a - 2.0).floor().max(0.0) as usize;
        let y0 = (c.1 - a - 2.0).floor().max(0.0) as usize;
        let x1 = ((c.0 + a + 2.0).ceil().max(0.0) as usize).min(w);
        let y1 = ((c.1 + a + 2.0).ceil().max(0.0) as usize).min(h);
        for y in y0..y1 {
            for x in x0..x1 {
                let (dx, dy) = (x as f32 + 0.5 - c.0, y as f32 + 0.5 - c.1);
                let (u, v) = (dx * ux + dy * uy, -dx * uy + dy * ux);
                let rho = ((u / a).powi(2) + (v / b).powi(2)).sqrt();
                let i = y * w + x;
                // Approximate distance to the ellipse outline (exact for circles).
                let d = (rho - 1.0) * b;
                if d < sdist[i] {
                    sdist[i] = d;
                    owner[i] = k + 1;
                }
                if rho < 1.0 {
                    let g = 0.5 * (1.0 + (std::f32::consts::PI * rho).cos());
                    height[i] = height[i].min(-depth * g);
                }
            }
        }
    }
    let (lx, ly) = dir(p.light_deg);
    let max_depth = p.depth.max(1e-3) * 1.2;
    let mut out = img.clone();
    let mut mask = Mask::filled(img.width, img.height, 0.0);
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            if sdist[i] > 2.0 {
                continue;
            }
            let (gx, gy) = gradient(&height, w, h, x, y);
            // Normal n ~ (-gx, -gy, 1): the slope facing the light brightens, the other darkens.
            let s = -(gx * lx + gy * ly) * 1.2;
            // A little ambient occlusion at the bottom.
            let ao = 1.0 - 0.12 * (-height[i] / max_depth);
            for c in 0..3 {
                out.data[i * 4 + c] = shade(img.data[i * 4 + c] * ao, s);
            }
            mask.data[i] = (0.5 - sdist[i]).clamp(0.0, 1.0);
        }
    }
    Ok(with_owners(
        finish(img, out, mask, DENT_BAND, placement, true),
        &owner,
    ))
}
