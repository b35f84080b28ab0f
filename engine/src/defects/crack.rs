//! Cracks: a fractal main path with recursive tapering branches; dark interior, light lip.

use super::common::{check_input, check_min, dir, finish, shade, stroke_field, Anchors};
use super::Defect;
use crate::image::{Image, Mask};
use crate::procedural::Rng;

/// Width in px of the slightly lighter lip just outside the crack outline.
const LIP: f32 = 1.5;

/// Soft-edge band of [`crack`] in px: the lip is at most `LIP` px outside the outline.
pub const CRACK_BAND: f32 = 3.0;

/// Parameters of [`crack`].
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrackParams {
    /// Seed of every random choice.
    pub seed: u64,
    /// Length of the main path in px (end to end).
    pub length: f32,
    /// Maximum opening width in px (middle of the main path); branches and ends taper.
    pub width: f32,
    /// Number of first-level branches (each may get a sub-branch).
    pub branches: u32,
    /// Jaggedness of the path, 0..1 (midpoint displacement relative to segment length).
    pub roughness: f32,
    /// Darkness of the interior, 0..1.
    pub depth: f32,
    /// Main direction in degrees, from +x towards +y.
    pub angle: f32,
    /// Maximum deviation from `angle` in degrees.
    pub angle_jitter: f32,
}

impl Default for CrackParams {
    fn default() -> Self {
        CrackParams {
            seed: 0,
            length: 260.0,
            width: 4.0,
            branches: 4,
            roughness: 0.5,
            depth: 0.8,
            angle: 0.0,
            angle_jitter: 180.0,
        }
    }
}

/// A jagged path from `a` to `b` by recursive midpoint displacement (segments <= 3 px).
fn fractal_path(rng: &mut Rng, a: (f32, f32), b: (f32, f32), rough: f32) -> Vec<(f32, f32)> {
    let mut pts = vec![a, b];
    for _ in 0..12 {
        let longest = pts
            .windows(2)
            .map(|s| (s[1].0 - s[0].0).hypot(s[1].1 - s[0].1))
            .fold(0.0, f32::max);
        if longest <= 3.0 {
            break;
        }
        let mut next = Vec::with_capacity(pts.len() * 2);
        for s in pts.windows(2) {
            let (p, q) = (s[0], s[1]);
            let (dx, dy) = (q.0 - p.0, q.1 - p.1);
            let off = rng.range_f32(-1.0, 1.0) * rough * 0.35;
            next.push(p);
            next.push(((p.0 + q.0) * 0.5 - dy * off, (p.1 + q.1) * 0.5 + dx * off));
        }
        next.push(b);
        pts = next;
    }
    pts
}

/// Adds a branch leaving `path[k]` and, recursively, its sub-branches.
#[allow(clippy::too_many_arguments)]
fn branch(
    rng: &mut Rng,
    out: &mut Vec<Vec<(f32, f32, f32)>>,
    start: (f32, f32),
    heading: (f32, f32),
    len: f32,
    r0: f32,
    rough: f32,
    level: u32,
) {
    let side = if rng.next_f32() < 0.5 { -1.0 } else { 1.0 };
    let turn = side * rng.range_f32(20.0, 60.0);
    let base = heading.1.atan2(heading.0).to_degrees();
    let (dx, dy) = dir(base + turn);
    let end = (start.0 + dx * len, start.1 + dy * len);
    let pts = fractal_path(rng, start, end, rough);
    let n = (pts.len() - 1).max(1) as f32;
    let stroke: Vec<(f32, f32, f32)> = pts
        .iter()
        .enumerate()
        .map(|(i, &(x, y))| (x, y, (r0 * (1.0 - i as f32 / n)).max(0.4)))
        .collect();
    if level < 2 && rng.next_f32() < 0.5 && stroke.len() > 4 {
        let k = rng.range_f32(0.3, 0.7) * (stroke.len() - 1) as f32;
        let k = k as usize;
        let (x, y, r) = stroke[k];
        let h = (stroke[k + 1].0 - x, stroke[k + 1].1 - y);
        branch(rng, out, (x, y), h, len * 0.5, r * 0.8, rough, level + 1);
    }
    out.push(stroke);
}

/// Draws one branching crack centred on an anchor. Mask: the antialiased crack opening (from
/// the paths' distance field); band [`CRACK_BAND`].
pub fn crack(img: &Image, p: &CrackParams, placement: Option<&Mask>) -> Result<Defect, String> {
    check_input(img, placement)?;
    check_min("width", p.width, 0.8)?;
    check_min("length", p.length, 4.0)?;
    check_min("depth", p.depth, 0.0)?;
    check_min("roughness", p.roughness, 0.0)?;
    let (w, h) = (img.width as usize, img.height as usize);
    let mut rng = Rng::new(p.seed);
    let c = Anchors::new(img.width, img.height, placement).pick(&mut rng);
    let ang = p.angle + p.angle_jitter * rng.range_f32(-1.0, 1.0);
    let (dx, dy) = dir(ang);
    let half = p.length * 0.5;
    let rough = p.roughness.min(1.5);
    let main = fractal_path(
        &mut rng,
        (c.0 - dx * half, c.1 - dy * half),
        (c.0 + dx * half, c.1 + dy * half),
        rough,
    );
    let n = (main.len() - 1).max(1) as f32;
    let r0 = p.width * 0.5;
    let main: Vec<(f32, f32, f32)> = main
        .iter()
        .enumerate()
        .map(|(i, &(x, y))| {
            let t = i as f32 / n;
            let taper = (std::f32::consts::PI * t).sin().max(0.0).powf(0.6);
            (x, y, (r0 * (0.15 + 0.85 * taper)).max(0.4))
        })
        .collect();
    let mut strokes = Vec::new();
    for _ in 0..p.branches.min(64) {
        let k = (rng.range_f32(0.1, 0.9) * (main.len() - 1) as f32) as usize;
        let k = k.min(main.len().saturating_sub(2));
        let (x, y, r) = main[k];
        let heading = (main[k + 1].0 - x, main[k + 1].1 - y);
        let len = p.length * rng.range_f32(0.15, 0.4);
        branch(
            &mut rng,
            &mut strokes,
            (x, y),
            heading,
            len,
            r * 0.75,
            rough,
            1,
        );
    }
    strokes.push(main);
    let f = stroke_field(img.width, img.height, &strokes, LIP + 0.5);
    let mut out = img.clone();
    let mut mask = Mask::filled(img.width, img.height, 0.0);
    for i in 0..w * h {
        let sd = f.sd[i];
        if sd >= LIP {
            continue;
        }
        for c in 0..3 {
            let v = img.data[i * 4 + c];
            out.data[i * 4 + c] = if sd < 0.0 {
                // Interior: darkest on the centre line, a little lighter towards the walls.
                let t = ((sd + f.r[i]) / f.r[i].max(1e-3)).clamp(0.0, 1.0);
                let dark = p.depth * (0.6 + 0.35 * (1.0 - t * t));
                let edge_mix = (-sd).min(1.0);
                v + (v * (1.0 - dark) - v) * (0.4 + 0.6 * edge_mix)
            } else {
                // Lip: slightly lighter, fading out over LIP px.
                shade(v, 0.18 * p.depth * (1.0 - sd / LIP))
            };
        }
        mask.data[i] = (0.5 - sd).clamp(0.0, 1.0);
    }
    Ok(finish(img, out, mask, CRACK_BAND, placement, true))
}
