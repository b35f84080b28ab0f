//! Scratches: thin curved grooves rendered from a height field and lit from `light_deg`.

use super::common::{
    bezier, check_input, check_min, dir, finish, gradient, shade, stroke_field, Anchors,
};
use super::Defect;
use crate::image::{Image, Mask};
use crate::procedural::Rng;

/// Soft-edge band of [`scratch`] in px: the groove's shading reaches at most one pixel past
/// the groove outline (central differences), which lies within this distance of a `mask > 0`
/// pixel.
pub const SCRATCH_BAND: f32 = 2.5;

/// Parameters of [`scratch`].
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScratchParams {
    /// Seed of every random choice.
    pub seed: u64,
    /// Number of strokes (>= 1).
    pub count: u32,
    /// Mean stroke length in px (each stroke is 60..100 % of it).
    pub length: f32,
    /// Groove width in px at the middle of a stroke (the ends taper).
    pub width: f32,
    /// Mean stroke direction in degrees, from +x towards +y (clockwise on screen).
    pub angle: f32,
    /// Maximum deviation from `angle` in degrees (uniform in ±`angle_jitter`).
    pub angle_jitter: f32,
    /// Bend of the strokes as a fraction of their length (0 = straight).
    pub curvature: f32,
    /// Contrast / depth of the groove, 0..1.
    pub depth: f32,
    /// Direction towards the light in degrees, same convention as `angle` (225 = top-left).
    #[serde(rename = "light")]
    pub light_deg: f32,
}

impl Default for ScratchParams {
    fn default() -> Self {
        ScratchParams {
            seed: 0,
            count: 3,
            length: 180.0,
            width: 3.0,
            angle: 30.0,
            angle_jitter: 25.0,
            curvature: 0.15,
            depth: 0.6,
            light_deg: 225.0,
        }
    }
}

/// Draws `count` scratches. Mask: the antialiased groove footprint (from the strokes' exact
/// distance field); band [`SCRATCH_BAND`].
pub fn scratch(img: &Image, p: &ScratchParams, placement: Option<&Mask>) -> Result<Defect, String> {
    check_input(img, placement)?;
    check_min("width", p.width, 0.5)?;
    check_min("length", p.length, 1.0)?;
    check_min("depth", p.depth, 0.0)?;
    check_min("curvature", p.curvature, 0.0)?;
    if p.count == 0 {
        return Err("count must be >= 1".to_string());
    }
    let (w, h) = (img.width as usize, img.height as usize);
    let anchors = Anchors::new(img.width, img.height, placement);
    let mut rng = Rng::new(p.seed);
    let mut strokes = Vec::new();
    for _ in 0..p.count.min(1000) {
        let c = anchors.pick(&mut rng);
        let ang = p.angle + p.angle_jitter * rng.range_f32(-1.0, 1.0);
        let len = p.length * rng.range_f32(0.6, 1.0);
        let (dx, dy) = dir(ang);
        let (nx, ny) = (-dy, dx);
        let bend1 = p.curvature * len * rng.normal() * 0.5;
        let bend2 = p.curvature * len * rng.normal() * 0.5;
        let at = |t: f32, b: f32| (c.0 + dx * len * t + nx * b, c.1 + dy * len * t + ny * b);
        let ctrl = [
            at(-0.5, 0.0),
            at(-0.17, bend1),
            at(0.17, bend2),
            at(0.5, 0.0),
        ];
        let pts = bezier(ctrl, (len / 2.0).ceil() as usize + 2);
        let n = pts.len() - 1;
        let r0 = p.width * 0.5;
        let stroke = pts
            .iter()
            .enumerate()
            .map(|(i, &(x, y))| {
                let t = i as f32 / n as f32;
                let taper = (std::f32::consts::PI * t).sin().max(0.0).sqrt();
                (x, y, (r0 * (0.3 + 0.7 * taper)).max(0.35))
            })
            .collect::<Vec<_>>();
        strokes.push(stroke);
    }
    let f = stroke_field(img.width, img.height, &strokes, 1.5);
    // Height field in px: a smooth groove of depth ~ depth * radius.
    let profile = |i: usize| {
        if f.sd[i] < 0.0 {
            let t = ((f.sd[i] + f.r[i]) / f.r[i].max(1e-3)).clamp(0.0, 1.0);
            let q = 1.0 - t * t;
            q * q
        } else {
            0.0
        }
    };
    let height: Vec<f32> = (0..w * h)
        .map(|i| -p.depth * 1.5 * f.r[i].max(0.8) * profile(i))
        .collect();
    let (lx, ly) = dir(p.light_deg);
    let mut out = img.clone();
    let mut mask = Mask::filled(img.width, img.height, 0.0);
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            if f.sd[i] > 1.2 {
                continue;
            }
            let (gx, gy) = gradient(&height, w, h, x, y);
            // Lambert-like slope term: surfaces tilted towards the light get brighter.
            let s = -(gx * lx + gy * ly) * 0.8;
            let dark = 1.0 - 0.45 * p.depth * profile(i);
            for c in 0..3 {
                out.data[i * 4 + c] = shade(img.data[i * 4 + c] * dark, s);
            }
            mask.data[i] = (0.5 - f.sd[i]).clamp(0.0, 1.0);
        }
    }
    Ok(super::common::with_owners(
        finish(img, out, mask, SCRATCH_BAND, placement, true),
        &f.owner,
    ))
}
