//! The image/hole pyramid of [`fill`](super::fill) and the coarse-to-fine image upsampling.

use super::patchmatch::Level;
use super::{COARSE_HOLE_RADIUS, SEAM_MARGIN};
use crate::ops::distance_to;

/// One pyramid level before search: RGBA data (hole pixels undefined), the hole, and the
/// pixels no source patch may touch.
pub(crate) struct LevelSpec {
    /// Width in pixels.
    pub w: usize,
    /// Height in pixels.
    pub h: usize,
    /// RGBA samples, 4 per pixel.
    pub data: Vec<f32>,
    /// Pixels to synthesise.
    pub fill: Vec<bool>,
    /// Pixels no source patch may contain (`fill` grown by the seam margin).
    pub exclude: Vec<bool>,
}

/// `bits` grown by `m` px (square neighbourhood).
pub(crate) fn grow(bits: &[bool], w: usize, h: usize, m: usize) -> Vec<bool> {
    let mut rows = vec![false; w * h];
    for y in 0..h {
        for x in 0..w {
            if bits[y * w + x] {
                for gx in x.saturating_sub(m)..(x + m + 1).min(w) {
                    rows[y * w + gx] = true;
                }
            }
        }
    }
    let mut out = vec![false; w * h];
    for y in 0..h {
        for x in 0..w {
            if rows[y * w + x] {
                for gy in y.saturating_sub(m)..(y + m + 1).min(h) {
                    out[gy * w + x] = true;
                }
            }
        }
    }
    out
}

/// Whether at least one `(2r+1)²` window lies inside the image and avoids `exclude`.
fn has_source(exclude: &[bool], w: usize, h: usize, r: usize) -> bool {
    if w < 2 * r + 1 || h < 2 * r + 1 {
        return false;
    }
    // Per column, the run of non-excluded pixels ending at the current row.
    let side = 2 * r + 1;
    let mut run = vec![0usize; w];
    for y in 0..h {
        let mut wide = 0usize;
        for x in 0..w {
            run[x] = if exclude[y * w + x] { 0 } else { run[x] + 1 };
            wide = if run[x] >= side { wide + 1 } else { 0 };
            if wide >= side {
                return true;
            }
        }
    }
    false
}

/// Halves a level: known coarse values are [1 3 3 1]-weighted means of known fine pixels only;
/// a coarse pixel is in the hole if any of its 2×2 children is.
fn downsample(
    data: &[f32],
    fill: &[bool],
    w: usize,
    h: usize,
) -> (Vec<f32>, Vec<bool>, usize, usize) {
    const TAP: [f32; 4] = [1.0, 3.0, 3.0, 1.0];
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let mut out = vec![0.0f32; cw * ch * 4];
    let mut cfill = vec![false; cw * ch];
    for cy in 0..ch {
        for cx in 0..cw {
            let ci = cy * cw + cx;
            let children = (2 * cy..(2 * cy + 2).min(h))
                .flat_map(|y| (2 * cx..(2 * cx + 2).min(w)).map(move |x| y * w + x));
            cfill[ci] = children.into_iter().any(|i| fill[i]);
            if cfill[ci] {
                continue;
            }
            let mut acc = [0.0f32; 4];
            let mut wsum = 0.0f32;
            for (ky, wy) in TAP.iter().enumerate() {
                let y = 2 * cy as isize + ky as isize - 1;
                if y < 0 || y >= h as isize {
                    continue;
                }
                for (kx, wx) in TAP.iter().enumerate() {
                    let x = 2 * cx as isize + kx as isize - 1;
                    if x < 0 || x >= w as isize {
                        continue;
                    }
                    let i = y as usize * w + x as usize;
                    if fill[i] {
                        continue;
                    }
                    let wt = wx * wy;
                    for c in 0..4 {
                        acc[c] += wt * data[i * 4 + c];
                    }
                    wsum += wt;
                }
            }
            for c in 0..4 {
                out[ci * 4 + c] = acc[c] / wsum.max(1e-12);
            }
        }
    }
    (out, cfill, cw, ch)
}

/// Builds the pyramid, finest level first. Empty if even the full-resolution level has no
/// room for a source patch.
pub(crate) fn build(
    data: &[f32],
    w: usize,
    h: usize,
    hole: &[bool],
    r: usize,
    min_size: usize,
) -> Vec<LevelSpec> {
    let exclude = grow(hole, w, h, SEAM_MARGIN);
    if !has_source(&exclude, w, h, r) {
        return Vec::new();
    }
    let mut levels = vec![LevelSpec {
        w,
        h,
        data: data.to_vec(),
        fill: hole.to_vec(),
        exclude,
    }];
    let min_side = min_size.max(4 * r + 2);
    while let Some(top) = levels.last() {
        let known: Vec<bool> = top.fill.iter().map(|&b| !b).collect();
        let widest = distance_to(&known, top.w, top.h)
            .iter()
            .zip(&top.fill)
            .filter(|(_, &f)| f)
            .fold(0.0f32, |m, (&d, _)| m.max(d));
        if widest <= COARSE_HOLE_RADIUS || top.w.min(top.h).div_ceil(2) < min_side {
            break;
        }
        let (cdata, cfill, cw, ch) = downsample(&top.data, &top.fill, top.w, top.h);
        if cfill.iter().all(|&b| b) {
            break;
        }
        let cexclude = grow(&cfill, cw, ch, SEAM_MARGIN);
        if !has_source(&cexclude, cw, ch, r) {
            break;
        }
        levels.push(LevelSpec {
            w: cw,
            h: ch,
            data: cdata,
            fill: cfill,
            exclude: cexclude,
        });
    }
    levels
}

/// Sets the `fill` pixels of the RGBA buffer `data` (`w`×`h`) by bilinear interpolation of the
/// half-resolution level `coarse`.
pub(crate) fn upsample_into(data: &mut [f32], w: usize, h: usize, fill: &[bool], coarse: &Level) {
    let (cw, ch) = (coarse.w, coarse.h);
    for y in 0..h {
        let fy = ((y as f32 + 0.5) * 0.5 - 0.5).clamp(0.0, (ch - 1) as f32);
        let y0 = fy.floor() as usize;
        let y1 = (y0 + 1).min(ch - 1);
        let ty = fy - y0 as f32;
        for x in 0..w {
            if !fill[y * w + x] {
                continue;
            }
            let fx = ((x as f32 + 0.5) * 0.5 - 0.5).clamp(0.0, (cw - 1) as f32);
            let x0 = fx.floor() as usize;
            let x1 = (x0 + 1).min(cw - 1);
            let tx = fx - x0 as f32;
            for c in 0..4 {
                let at = |xx: usize, yy: usize| coarse.data[(yy * cw + xx) * 4 + c];
                let top = at(x0, y0) * (1.0 - tx) + at(x1, y0) * tx;
                let bottom = at(x0, y1) * (1.0 - tx) + at(x1, y1) * tx;
                data[(y * w + x) * 4 + c] = top * (1.0 - ty) + bottom * ty;
            }
        }
    }
}
