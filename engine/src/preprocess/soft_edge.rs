//! Soft edges from gradients, the kind of control image softedge ControlNets (HED, PiDiNet)
//! take: soft, a few pixels thick lines on dark flat areas. No network runs.
//!
//! What it computes, per pixel:
//! 1. luminance `Y = 0.299 R + 0.587 G + 0.114 B` of the sRGB samples (alpha ignored);
//! 2. a Gaussian blur of `Y` with standard deviation `blur` px (none at 0; edges clamped);
//! 3. the 3×3 Sobel gradient divided by 8 (a central difference per pixel, borders
//!    replicated) and its length `m = √(gx² + gy²)`;
//! 4. `m` normalised by `s = max(p99, 0.05)`, where `p99` is the 99th percentile of the `m`
//!    that exceed [`EDGE_MIN`] (the strength of the image's clear edges, robust to a few
//!    outliers); an image without such gradients is black;
//! 5. `v = min(m / s, 1)^(1 / gain)`, written as grey (R = G = B = v), alpha 1.

use crate::image::{Image, Mask};
use crate::ops::blur_mask;

/// Gradient length (per pixel, luminance 0..1) below which a pixel is not an edge for the
/// normalisation: about a 2-level step of an 8-bit image.
pub const EDGE_MIN: f32 = 0.004;
/// The smallest normaliser: gradients weaker than this never reach white.
const SCALE_MIN: f32 = 0.05;
/// The percentile of the edge pixels' gradient lengths that maps to white.
const PERCENTILE: f32 = 0.99;

/// The soft-edge map of the module docs: grey on black, alpha 1. `gain` below 0.01 counts as
/// 0.01.
pub fn soft_edge(img: &Image, blur: f32, gain: f32) -> Image {
    let (w, h) = (img.width as usize, img.height as usize);
    let mut out = Image::filled(img.width, img.height, [0.0, 0.0, 0.0, 1.0]);
    if w == 0 || h == 0 {
        return out;
    }
    let luma = Mask {
        width: img.width,
        height: img.height,
        data: img
            .data
            .chunks_exact(4)
            .map(|p| 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2])
            .collect(),
    };
    let y = if blur > 0.0 {
        blur_mask(&luma, blur)
    } else {
        luma
    };
    let mag = sobel_magnitude(&y.data, w, h);
    let mut strong: Vec<f32> = mag.iter().copied().filter(|&m| m > EDGE_MIN).collect();
    if strong.is_empty() {
        return out;
    }
    let k = ((strong.len() - 1) as f32 * PERCENTILE).round() as usize;
    let (_, p, _) = strong.select_nth_unstable_by(k, f32::total_cmp);
    let scale = p.max(SCALE_MIN);
    let inv_gain = 1.0 / gain.max(0.01);
    for (px, &m) in out.data.chunks_exact_mut(4).zip(&mag) {
        let v = (m / scale).min(1.0).powf(inv_gain);
        px[..3].fill(v);
    }
    out
}

/// `√(gx² + gy²)` of the 3×3 Sobel gradient / 8, borders replicated.
fn sobel_magnitude(y: &[f32], w: usize, h: usize) -> Vec<f32> {
    let mut mag = vec![0.0f32; w * h];
    for r in 0..h {
        let up = &y[r.saturating_sub(1) * w..][..w];
        let mid = &y[r * w..][..w];
        let down = &y[(r + 1).min(h - 1) * w..][..w];
        let dst = &mut mag[r * w..][..w];
        for x in 0..w {
            let (l, rr) = (x.saturating_sub(1), (x + 1).min(w - 1));
            let gx = (up[rr] - up[l]) + 2.0 * (mid[rr] - mid[l]) + (down[rr] - down[l]);
            let gy = (down[l] + 2.0 * down[x] + down[rr]) - (up[l] + 2.0 * up[x] + up[rr]);
            dst[x] = (gx * gx + gy * gy).sqrt() / 8.0;
        }
    }
    mag
}
