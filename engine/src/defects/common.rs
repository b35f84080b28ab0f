//! Helpers shared by the defect generators: input checks, anchor sampling, stroke distance
//! fields, height-field shading and the common finishing step.

use super::Defect;
use crate::image::{Image, Mask};
use crate::ops;
use crate::procedural::Rng;

/// The "visibly changed" threshold of the mask contract: a pixel counts as changed when one of
/// its RGB channels moved by more than `EPS` (2/255, i.e. two 8-bit levels).
pub const EPS: f32 = 2.0 / 255.0;

/// Minimum contrast of a defect: wherever the mask is `m > 0`, the finishing step makes the
/// largest RGB change at least `MIN_VISIBLE * m` (5/255 at `m = 1`). So every pixel with
/// `m >= 0.5` changes by at least 2.5/255 > [`EPS`], even where the physical model gives a
/// near-zero change (the flat bottom of a dent, a pasted patch equal to its surroundings).
pub const MIN_VISIBLE: f32 = 5.0 / 255.0;

/// Checks the image and the placement mask; returns `Err` with a clear message when unusable.
pub fn check_input(img: &Image, placement: Option<&Mask>) -> Result<(), String> {
    if img.width == 0 || img.height == 0 {
        return Err(format!(
            "image has zero size ({}x{})",
            img.width, img.height
        ));
    }
    let n = img.width as usize * img.height as usize;
    if img.data.len() != n * 4 {
        return Err(format!(
            "image data has {} samples, expected {} for {}x{} RGBA",
            img.data.len(),
            n * 4,
            img.width,
            img.height
        ));
    }
    if let Some(p) = placement {
        if p.width != img.width || p.height != img.height {
            return Err(format!(
                "placement mask is {}x{} but the image is {}x{}",
                p.width, p.height, img.width, img.height
            ));
        }
        if p.data.len() != n {
            return Err("placement mask data length does not match its size".to_string());
        }
        if !p.data.iter().any(|&v| v >= 0.5) {
            return Err("placement mask is empty (no pixel >= 0.5)".to_string());
        }
    }
    Ok(())
}

/// Returns `Err` unless `v` is finite and `>= lo`.
pub fn check_min(name: &str, v: f32, lo: f32) -> Result<(), String> {
    if v.is_finite() && v >= lo {
        Ok(())
    } else {
        Err(format!("{name} must be a finite number >= {lo}, got {v}"))
    }
}

/// Candidate anchor pixels: all pixels, or those with placement `>= 0.5`, optionally weighted.
pub struct Anchors {
    w: u32,
    h: u32,
    /// Candidate pixel indices (`None`: every pixel).
    idx: Option<Vec<u32>>,
    /// Cumulative weights of `idx` (`None`: uniform).
    cum: Option<Vec<f64>>,
}

impl Anchors {
    /// Uniform over the placement region (or the whole image).
    pub fn new(w: u32, h: u32, placement: Option<&Mask>) -> Anchors {
        let idx = placement.map(|p| {
            p.data
                .iter()
                .enumerate()
                .filter(|(_, &v)| v >= 0.5)
                .map(|(i, _)| i as u32)
                .collect()
        });
        Anchors {
            w,
            h,
            idx,
            cum: None,
        }
    }

    /// Like [`Anchors::new`] but each candidate pixel `i` is drawn with probability proportional
    /// to `weight(i)` (falls back to uniform when all weights are zero).
    pub fn weighted(
        w: u32,
        h: u32,
        placement: Option<&Mask>,
        weight: impl Fn(usize) -> f32,
    ) -> Anchors {
        let idx: Vec<u32> = match placement {
            Some(p) => p
                .data
                .iter()
                .enumerate()
                .filter(|(_, &v)| v >= 0.5)
                .map(|(i, _)| i as u32)
                .collect(),
            None => (0..w * h).collect(),
        };
        let mut acc = 0.0f64;
        let cum: Vec<f64> = idx
            .iter()
            .map(|&i| {
                let wt = weight(i as usize);
                if wt.is_finite() && wt > 0.0 {
                    acc += wt as f64;
                }
                acc
            })
            .collect();
        let cum = if acc > 0.0 { Some(cum) } else { None };
        Anchors {
            w,
            h,
            idx: Some(idx),
            cum,
        }
    }

    /// A random anchor: the centre of a candidate pixel, in pixel coordinates.
    pub fn pick(&self, rng: &mut Rng) -> (f32, f32) {
        let i = match &self.idx {
            None => (rng.next_u64() % (self.w as u64 * self.h as u64)) as u32,
            Some(v) if v.is_empty() => 0,
            Some(v) => match &self.cum {
                Some(cum) => {
                    let total = cum.last().copied().unwrap_or(0.0);
                    let r = rng.next_f32() as f64 * total;
                    let k = cum.partition_point(|&c| c <= r).min(v.len() - 1);
                    v[k]
                }
                None => v[(rng.next_u64() % v.len() as u64) as usize],
            },
        };
        ((i % self.w) as f32 + 0.5, (i / self.w) as f32 + 0.5)
    }
}

/// Unit vector of an angle in degrees, measured from +x towards +y (clockwise on screen).
pub fn dir(deg: f32) -> (f32, f32) {
    let (s, c) = crate::procedural::sin_cos_deg(deg);
    (c as f32, s as f32)
}

/// Distance field of thick polylines: for each pixel near a stroke, the signed distance `sd`
/// (px) to the stroke's outline (negative inside) and the local stroke radius `r`.
pub struct StrokeField {
    pub sd: Vec<f32>,
    pub r: Vec<f32>,
    /// The stroke (1-based index into the strokes) nearest each pixel; 0 = none in reach.
    pub owner: Vec<u32>,
}

/// Renders strokes given as polylines of `(x, y, radius)` vertices. Pixels farther than
/// `reach` px outside every stroke keep `sd = +inf`.
pub fn stroke_field(w: u32, h: u32, strokes: &[Vec<(f32, f32, f32)>], reach: f32) -> StrokeField {
    let (wu, hu) = (w as usize, h as usize);
    let mut sd = vec![f32::INFINITY; wu * hu];
    let mut rr = vec![0.0f32; wu * hu];
    let mut owner = vec![0u32; wu * hu];
    for (k, s) in strokes.iter().enumerate() {
        for seg in s.windows(2) {
            let (a, b) = (seg[0], seg[1]);
            let pad = a.2.max(b.2) + reach + 1.0;
            let x0 = (a.0.min(b.0) - pad).floor().max(0.0) as usize;
            let y0 = (a.1.min(b.1) - pad).floor().max(0.0) as usize;
            let x1 = ((a.0.max(b.0) + pad).ceil().max(0.0) as usize).min(wu);
            let y1 = ((a.1.max(b.1) + pad).ceil().max(0.0) as usize).min(hu);
            let (dx, dy) = (b.0 - a.0, b.1 - a.1);
            let len2 = dx * dx + dy * dy;
            for y in y0..y1 {
                for x in x0..x1 {
                    let (px, py) = (x as f32 + 0.5 - a.0, y as f32 + 0.5 - a.1);
                    let t = if len2 > 0.0 {
                        ((px * dx + py * dy) / len2).clamp(0.0, 1.0)
                    } else {
                        0.0
                    };
                    let (ex, ey) = (px - t * dx, py - t * dy);
                    let r = a.2 + (b.2 - a.2) * t;
                    let s = (ex * ex + ey * ey).sqrt() - r;
                    let i = y * wu + x;
                    if s < sd[i] && s <= reach {
                        sd[i] = s;
                        rr[i] = r;
                        owner[i] = k as u32 + 1;
                    }
                }
            }
        }
    }
    StrokeField { sd, r: rr, owner }
}

/// Points of a cubic Bézier curve, `n + 1` samples including both ends.
pub fn bezier(p: [(f32, f32); 4], n: usize) -> Vec<(f32, f32)> {
    let n = n.max(1);
    (0..=n)
        .map(|i| {
            let t = i as f32 / n as f32;
            let u = 1.0 - t;
            let (a, b, c, d) = (u * u * u, 3.0 * u * u * t, 3.0 * u * t * t, t * t * t);
            (
                a * p[0].0 + b * p[1].0 + c * p[2].0 + d * p[3].0,
                a * p[0].1 + b * p[1].1 + c * p[2].1 + d * p[3].1,
            )
        })
        .collect()
}

/// Central-difference gradient of a scalar field (one-sided at the image border).
pub fn gradient(f: &[f32], w: usize, h: usize, x: usize, y: usize) -> (f32, f32) {
    let at = |x: usize, y: usize| f[y * w + x];
    let (xl, xr) = (x.saturating_sub(1), (x + 1).min(w - 1));
    let (yu, yd) = (y.saturating_sub(1), (y + 1).min(h - 1));
    let gx = if xr > xl {
        (at(xr, y) - at(xl, y)) / (xr - xl) as f32
    } else {
        0.0
    };
    let gy = if yd > yu {
        (at(x, yd) - at(x, yu)) / (yd - yu) as f32
    } else {
        0.0
    };
    (gx, gy)
}

/// Applies a shading term `s` in `-1..1`: positive moves towards white, negative towards black.
pub fn shade(v: f32, s: f32) -> f32 {
    let s = s.clamp(-1.0, 1.0);
    if s >= 0.0 {
        v + s * (1.0 - v)
    } else {
        v * (1.0 + s)
    }
}

/// Hermite smoothstep of `x` from `e0` to `e1`.
pub fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    if e1 <= e0 {
        return f32::from(u8::from(x >= e0));
    }
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// Sets a defect's instance ids from `owner` (1-based instance of each pixel, 0 = none),
/// kept only where the final mask is > 0 (after placement clipping).
pub fn with_owners(mut d: Defect, owner: &[u32]) -> Defect {
    for (i, id) in d.instances.iter_mut().enumerate() {
        *id = if d.mask.data[i] > 0.0 {
            owner.get(i).copied().unwrap_or(0).max(1)
        } else {
            0
        };
    }
    d
}

/// The common last step of every generator (except NSA, see `nsa`):
///
/// 1. with a placement mask `P`, the change and the mask are both scaled by `P`
///    (`out = in + (out - in) * P`, `mask *= P`). Then pixels farther than `band` from any
///    `mask > 0` pixel are restored to the input where the defect may have been clipped: along
///    the placement border (with a placement) and within `band + 2` px of the image border
///    (geometry whose body lies off-canvas, e.g. a crack's lip next to an off-image stroke).
///    Elsewhere the band is met by the geometry itself (the tests check this);
/// 2. where `mask > 0` and `min_visible`, the largest RGB change is raised to at least
///    `MIN_VISIBLE * mask` (see [`MIN_VISIBLE`]);
/// 3. RGB is clamped to `0..1`, alpha is the input's, the mask is clamped to `0..1`.
pub fn finish(
    input: &Image,
    mut out: Image,
    mut mask: Mask,
    band: f32,
    placement: Option<&Mask>,
    min_visible: bool,
) -> Defect {
    let (w, h) = (input.width as usize, input.height as usize);
    for v in mask.data.iter_mut() {
        *v = if v.is_finite() {
            v.clamp(0.0, 1.0)
        } else {
            0.0
        };
    }
    if let Some(p) = placement {
        for (i, m) in mask.data.iter_mut().enumerate() {
            let pv = p.data[i].clamp(0.0, 1.0);
            *m *= pv;
            for c in 0..3 {
                let k = i * 4 + c;
                out.data[k] = input.data[k] + (out.data[k] - input.data[k]) * pv;
            }
        }
    }
    let seed: Vec<bool> = mask.data.iter().map(|&m| m > 0.0).collect();
    let d = ops::distance_to(&seed, w, h);
    let margin = (band + 2.0).ceil() as usize;
    for (i, &di) in d.iter().enumerate() {
        let (x, y) = (i % w, i / w);
        let near_border = x < margin || y < margin || x + margin >= w || y + margin >= h;
        if di > band && (placement.is_some() || near_border) {
            out.data[i * 4..i * 4 + 3].copy_from_slice(&input.data[i * 4..i * 4 + 3]);
        }
    }
    for i in 0..w * h {
        let k = i * 4;
        for c in 0..3 {
            let v = out.data[k + c];
            out.data[k + c] = if v.is_finite() {
                v.clamp(0.0, 1.0)
            } else {
                input.data[k + c]
            };
        }
        out.data[k + 3] = input.data[k + 3];
        let m = mask.data[i];
        if !min_visible || m <= 0.0 {
            continue;
        }
        let target = MIN_VISIBLE * m;
        let diff = |o: &[f32]| {
            (0..3)
                .map(|c| (o[c] - input.data[k + c]).abs())
                .fold(0.0, f32::max)
        };
        if diff(&out.data[k..k + 3]) >= target {
            continue;
        }
        let mean: f32 = (0..3).map(|c| out.data[k + c] - input.data[k + c]).sum();
        let first = if mean > 0.0 { 1.0 } else { -1.0 };
        for sign in [first, -first] {
            let mut cand = [0.0f32; 3];
            for (c, v) in cand.iter_mut().enumerate() {
                *v = (input.data[k + c] + sign * target).clamp(0.0, 1.0);
            }
            if diff(&cand) >= target * 0.999 {
                out.data[k..k + 3].copy_from_slice(&cand);
                break;
            }
        }
    }
    let instances = mask.data.iter().map(|&m| u32::from(m > 0.0)).collect();
    Defect {
        image: out,
        mask,
        band,
        instances,
    }
}
