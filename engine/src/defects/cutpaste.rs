//! CutPaste (Li et al., CVPR 2021): a patch of the same image pasted elsewhere, as a
//! rectangle ([`cutpaste`]) or as a thin rotated "scar" ([`cutpaste_scar`]).

use super::common::{check_input, finish, Anchors};
use super::Defect;
use crate::image::{Image, Mask};
use crate::procedural::Rng;

/// Soft-edge band of [`cutpaste`] in px: the paste is exactly the (binary) rectangle.
pub const CUTPASTE_BAND: f32 = 0.0;
/// Soft-edge band of [`cutpaste_scar`] in px: the paste weight is the mask (antialiased
/// rotated rectangle), so changes stay on `mask > 0`.
pub const SCAR_BAND: f32 = 1.0;

/// Parameters of [`cutpaste`].
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CutPasteParams {
    /// Seed of every random choice.
    pub seed: u64,
    /// Patch area as a fraction of the image area: uniform in `[area_min, area_max)`.
    pub area_min: f32,
    pub area_max: f32,
    /// Patch aspect ratio (width / height): log-uniform in `[aspect_min, aspect_max)`.
    pub aspect_min: f32,
    pub aspect_max: f32,
    /// Colour jitter strength, 0..1: brightness, contrast and per-channel gain change by up
    /// to this relative amount (0 = exact copy).
    pub color_jitter: f32,
}

impl Default for CutPasteParams {
    fn default() -> Self {
        CutPasteParams {
            seed: 0,
            area_min: 0.02,
            area_max: 0.15,
            aspect_min: 0.3,
            aspect_max: 3.3,
            color_jitter: 0.1,
        }
    }
}

/// Parameters of [`cutpaste_scar`]. Sizes are given for a 256 px image and scaled by
/// `min(width, height) / 256`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScarParams {
    /// Seed of every random choice.
    pub seed: u64,
    /// Scar width in px at 256 px: uniform in `[width_min, width_max)`.
    pub width_min: f32,
    pub width_max: f32,
    /// Scar length in px at 256 px: uniform in `[length_min, length_max)`.
    pub length_min: f32,
    pub length_max: f32,
    /// Rotation in degrees: uniform in `[angle_min, angle_max)`.
    pub angle_min: f32,
    pub angle_max: f32,
    /// Colour jitter strength, as in [`CutPasteParams::color_jitter`].
    pub color_jitter: f32,
}

impl Default for ScarParams {
    fn default() -> Self {
        ScarParams {
            seed: 0,
            width_min: 2.0,
            width_max: 16.0,
            length_min: 10.0,
            length_max: 25.0,
            angle_min: -45.0,
            angle_max: 45.0,
            color_jitter: 0.1,
        }
    }
}

fn check_range(name: &str, r: (f32, f32), lo: f32) -> Result<(), String> {
    if r.0.is_finite() && r.1.is_finite() && r.0 >= lo && r.1 >= r.0 {
        Ok(())
    } else {
        Err(format!(
            "{name}_min and {name}_max must be finite with {lo} <= {name}_min <= {name}_max, got {} and {}",
            r.0,
            r.1
        ))
    }
}

/// Random colour jitter: `(brightness, contrast, per-channel gain)`.
fn jitter(rng: &mut Rng, j: f32) -> (f32, f32, [f32; 3]) {
    let j = j.clamp(0.0, 1.0);
    let b = 1.0 + j * rng.range_f32(-1.0, 1.0);
    let c = 1.0 + j * rng.range_f32(-1.0, 1.0);
    let g = [0; 3].map(|_| 1.0 + 0.5 * j * rng.range_f32(-1.0, 1.0));
    (b, c, g)
}

fn apply_jitter(v: f32, c: usize, (b, k, g): (f32, f32, [f32; 3])) -> f32 {
    (((v - 0.5) * k + 0.5) * b * g[c]).clamp(0.0, 1.0)
}

/// Bilinear sample of RGB at continuous pixel coordinates (pixel centres at `+0.5`), clamped.
fn sample(img: &Image, x: f32, y: f32) -> [f32; 3] {
    let (w, h) = (img.width as i64, img.height as i64);
    let (fx, fy) = (x - 0.5, y - 0.5);
    let (x0, y0) = (fx.floor(), fy.floor());
    let (tx, ty) = (fx - x0, fy - y0);
    let px = |xi: i64, yi: i64| img.pixel(xi.clamp(0, w - 1) as u32, yi.clamp(0, h - 1) as u32);
    let (x0, y0) = (x0 as i64, y0 as i64);
    let (a, b, c, d) = (
        px(x0, y0),
        px(x0 + 1, y0),
        px(x0, y0 + 1),
        px(x0 + 1, y0 + 1),
    );
    [0, 1, 2].map(|k| {
        let top = a[k] + (b[k] - a[k]) * tx;
        let bot = c[k] + (d[k] - c[k]) * tx;
        top + (bot - top) * ty
    })
}

/// CutPaste: cuts a random rectangle and pastes it (colour-jittered) centred on an anchor,
/// at least half a patch away from where it was cut. Mask: the pasted rectangle (binary);
/// band [`CUTPASTE_BAND`].
pub fn cutpaste(
    img: &Image,
    p: &CutPasteParams,
    placement: Option<&Mask>,
) -> Result<Defect, String> {
    check_input(img, placement)?;
    check_range("area", (p.area_min, p.area_max), 0.0)?;
    check_range("aspect", (p.aspect_min, p.aspect_max), 0.01)?;
    if p.area_max > 1.0 {
        return Err("area_max must be <= 1".to_string());
    }
    let (w, h) = (img.width, img.height);
    if w < 4 || h < 4 {
        return Err(format!("image too small for cutpaste ({w}x{h})"));
    }
    let mut rng = Rng::new(p.seed);
    let area = rng.range_f32(p.area_min, p.area_max) * (w * h) as f32;
    let aspect = rng.range_f32(p.aspect_min.ln(), p.aspect_max.ln()).exp();
    let pw = ((area * aspect).sqrt().round() as u32).clamp(1, w - 1);
    let ph = ((area / aspect).sqrt().round() as u32).clamp(1, h - 1);
    let anchors = Anchors::new(w, h, placement);
    let (mut best, mut best_d) = (None, -1.0f32);
    for _ in 0..32 {
        let c = anchors.pick(&mut rng);
        let dx0 = (c.0 - pw as f32 / 2.0).round().clamp(0.0, (w - pw) as f32) as u32;
        let dy0 = (c.1 - ph as f32 / 2.0).round().clamp(0.0, (h - ph) as f32) as u32;
        let sx0 = (rng.next_u64() % u64::from(w - pw + 1)) as u32;
        let sy0 = (rng.next_u64() % u64::from(h - ph + 1)) as u32;
        let d = (dx0 as f32 - sx0 as f32).hypot(dy0 as f32 - sy0 as f32);
        if d > best_d {
            best = Some((dx0, dy0, sx0, sy0));
            best_d = d;
        }
        if d >= 0.5 * pw.max(ph) as f32 {
            break;
        }
    }
    let (dx0, dy0, sx0, sy0) = best.ok_or("no paste position found")?;
    let jit = jitter(&mut rng, p.color_jitter);
    let mut out = img.clone();
    let mut mask = Mask::filled(w, h, 0.0);
    for y in 0..ph {
        for x in 0..pw {
            let s = img.pixel(sx0 + x, sy0 + y);
            let (tx, ty) = (dx0 + x, dy0 + y);
            let i = (ty * w + tx) as usize;
            for c in 0..3 {
                out.data[i * 4 + c] = apply_jitter(s[c], c, jit);
            }
            mask.data[i] = 1.0;
        }
    }
    Ok(finish(img, out, mask, CUTPASTE_BAND, placement, true))
}

/// CutPaste-scar: cuts a thin upright rectangle, rotates it and pastes it (colour-jittered,
/// bilinear, antialiased) centred on an anchor. Mask: the rotated rectangle's antialiased
/// footprint; band [`SCAR_BAND`].
pub fn cutpaste_scar(
    img: &Image,
    p: &ScarParams,
    placement: Option<&Mask>,
) -> Result<Defect, String> {
    check_input(img, placement)?;
    check_range("width", (p.width_min, p.width_max), 0.5)?;
    check_range("length", (p.length_min, p.length_max), 0.5)?;
    check_range("angle", (p.angle_min, p.angle_max), -3600.0)?;
    let (w, h) = (img.width, img.height);
    let scale = w.min(h) as f32 / 256.0;
    let mut rng = Rng::new(p.seed);
    let sw = (rng.range_f32(p.width_min, p.width_max) * scale).max(1.0);
    let sl = (rng.range_f32(p.length_min, p.length_max) * scale).max(1.0);
    let ang = rng.range_f32(p.angle_min, p.angle_max).to_radians();
    let (ca, sa) = (ang.cos(), ang.sin());
    let c = Anchors::new(w, h, placement).pick(&mut rng);
    // Source centre: anywhere the upright patch fits, preferably away from the paste.
    let mut src = (w as f32 / 2.0, h as f32 / 2.0);
    for _ in 0..16 {
        let fx = (w as f32 - sw).max(0.0) * rng.next_f32() + sw.min(w as f32) / 2.0;
        let fy = (h as f32 - sl).max(0.0) * rng.next_f32() + sl.min(h as f32) / 2.0;
        src = (fx, fy);
        if (fx - c.0).hypot(fy - c.1) > sl {
            break;
        }
    }
    let jit = jitter(&mut rng, p.color_jitter);
    let reach = 0.5 * sw.hypot(sl) + 2.0;
    let x0 = (c.0 - reach).floor().max(0.0) as u32;
    let y0 = (c.1 - reach).floor().max(0.0) as u32;
    let x1 = ((c.0 + reach).ceil().max(0.0) as u32).min(w);
    let y1 = ((c.1 + reach).ceil().max(0.0) as u32).min(h);
    let mut out = img.clone();
    let mut mask = Mask::filled(w, h, 0.0);
    for y in y0..y1 {
        for x in x0..x1 {
            let (dx, dy) = (x as f32 + 0.5 - c.0, y as f32 + 0.5 - c.1);
            // Into the patch frame: u across (width), v along (length).
            let (u, v) = (dx * ca + dy * sa, -dx * sa + dy * ca);
            let inner = (sw / 2.0 - u.abs()).min(sl / 2.0 - v.abs());
            let m = (0.5 + inner).clamp(0.0, 1.0);
            if m <= 0.0 {
                continue;
            }
            let s = sample(img, src.0 + u, src.1 + v);
            let i = (y * w + x) as usize;
            for (k, &sv) in s.iter().enumerate() {
                let t = img.data[i * 4 + k];
                out.data[i * 4 + k] = t + (apply_jitter(sv, k, jit) - t) * m;
            }
            mask.data[i] = m;
        }
    }
    Ok(finish(img, out, mask, SCAR_BAND, placement, true))
}
