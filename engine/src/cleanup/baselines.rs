//! Cheap hole fills: [`mean_fill`], [`blur_fill`] and [`laplace_fill`].
//!
//! They are smooth by construction (no texture), which makes them useful as fast options, as
//! the starting estimate of [`fill`](super::fill) at its coarsest level, and as the yardstick
//! the tests measure PatchMatch against. Like [`fill`](super::fill), they treat `hole >= 0.5`
//! as the hole, leave every other pixel bitwise unchanged and fill all four channels.
//! Mismatched sizes or an image with no known pixel return the input unchanged.

use crate::image::{Image, Mask};
use crate::ops::{blur_image, blur_mask, distance_to};

/// Width in pixels of the known ring around the hole whose mean [`mean_fill`] uses.
const RING_PX: f32 = 8.0;

/// The hole as booleans (`hole >= 0.5`), or `None` if the sizes do not match the image.
fn hole_bits(img: &Image, hole: &Mask) -> Option<Vec<bool>> {
    let n = img.width as usize * img.height as usize;
    if hole.width != img.width
        || hole.height != img.height
        || hole.data.len() != n
        || img.data.len() != n * 4
    {
        return None;
    }
    Some(hole.data.iter().map(|&v| v >= 0.5).collect())
}

/// Fills the hole with the mean colour of the known pixels within 8 px of it (of the whole
/// known image if that ring is empty).
pub fn mean_fill(img: &Image, hole: &Mask) -> Image {
    let mut out = img.clone();
    let Some(bits) = hole_bits(img, hole) else {
        return out;
    };
    let (w, h) = (img.width as usize, img.height as usize);
    let dist = distance_to(&bits, w, h);
    let mean = |limit: f32| -> Option<[f32; 4]> {
        let mut sum = [0.0f64; 4];
        let mut count = 0usize;
        for (i, (&b, &d)) in bits.iter().zip(&dist).enumerate() {
            if !b && d <= limit {
                for (s, &v) in sum.iter_mut().zip(&img.data[i * 4..i * 4 + 4]) {
                    *s += f64::from(v);
                }
                count += 1;
            }
        }
        (count > 0).then(|| sum.map(|s| (s / count as f64) as f32))
    };
    let Some(colour) = mean(RING_PX).or_else(|| mean(f32::INFINITY)) else {
        return out;
    };
    for (i, _) in bits.iter().enumerate().filter(|(_, &b)| b) {
        out.data[i * 4..i * 4 + 4].copy_from_slice(&colour);
    }
    out
}

/// Normalised-convolution fill: repeatedly replaces every hole pixel by the Gaussian-weighted
/// mean (σ = 2 px) of the known and already-filled pixels around it, growing inwards from the
/// boundary, then smooths the filled region a few more times with the known pixels held fixed.
pub fn blur_fill(img: &Image, hole: &Mask) -> Image {
    const SIGMA: f32 = 2.0;
    const SMOOTHING_PASSES: usize = 20;
    let mut out = img.clone();
    let Some(bits) = hole_bits(img, hole) else {
        return out;
    };
    if bits.iter().all(|&b| b) {
        return out;
    }
    let (w, h) = (img.width, img.height);
    // Weight 1 on pixels that hold a value (known, or filled in an earlier pass).
    let mut have = Mask {
        width: w,
        height: h,
        data: bits.iter().map(|&b| if b { 0.0 } else { 1.0 }).collect(),
    };
    let mut missing = bits.iter().filter(|&&b| b).count();
    let mut passes_left = SMOOTHING_PASSES;
    while missing > 0 || passes_left > 0 {
        if missing == 0 {
            passes_left -= 1;
        }
        let mut weighted = out.clone();
        for (px, &wt) in weighted.data.chunks_exact_mut(4).zip(&have.data) {
            px.iter_mut().for_each(|v| *v *= wt);
        }
        let num = blur_image(&weighted, SIGMA);
        let den = blur_mask(&have, SIGMA);
        let mut newly = Vec::new();
        for (i, &b) in bits.iter().enumerate() {
            let d = den.data[i];
            if b && d > 1e-6 {
                for c in 0..4 {
                    out.data[i * 4 + c] = (num.data[i * 4 + c] / d).clamp(0.0, 1.0);
                }
                if have.data[i] == 0.0 {
                    newly.push(i);
                }
            }
        }
        if missing > 0 && newly.is_empty() {
            break;
        }
        for i in newly {
            have.data[i] = 1.0;
            missing -= 1;
        }
    }
    out
}

/// Harmonic fill: solves the discrete Laplace equation ∇²f = 0 (4-neighbour stencil) inside
/// the hole with the known pixels as Dirichlet boundary (and a zero-flux image border), by
/// conjugate gradients to a relative residual of 1e-7.
pub fn laplace_fill(img: &Image, hole: &Mask) -> Image {
    let mut out = img.clone();
    if let Some(bits) = hole_bits(img, hole) {
        if bits.iter().any(|&b| !b) {
            laplace_solve(
                &mut out.data,
                img.width as usize,
                img.height as usize,
                &bits,
            );
        }
    }
    out
}

/// Solves ∇²f = 0 for the `hole` pixels of the RGBA buffer `data` (`w`×`h`), in place; the
/// other pixels are the boundary values. Hole components that touch no known pixel are left
/// at the mean of the known pixels.
pub(crate) fn laplace_solve(data: &mut [f32], w: usize, h: usize, hole: &[bool]) {
    let cells: Vec<usize> = (0..w * h).filter(|&i| hole[i]).collect();
    if cells.is_empty() {
        return;
    }
    // Unknown index of each pixel.
    let mut index = vec![usize::MAX; w * h];
    for (k, &i) in cells.iter().enumerate() {
        index[i] = k;
    }
    // Neighbours of each unknown: unknown neighbours and the count of in-image neighbours.
    let mut nbrs: Vec<[usize; 4]> = Vec::with_capacity(cells.len());
    let mut degree: Vec<f64> = Vec::with_capacity(cells.len());
    let mut known_nbrs: Vec<Vec<usize>> = Vec::with_capacity(cells.len());
    for &i in &cells {
        let (x, y) = (i % w, i / w);
        let mut un = [usize::MAX; 4];
        let mut kn = Vec::new();
        let mut deg = 0.0;
        let around = [
            (x > 0).then(|| i - 1),
            (x + 1 < w).then(|| i + 1),
            (y > 0).then(|| i - w),
            (y + 1 < h).then(|| i + w),
        ];
        for (slot, j) in un.iter_mut().zip(around) {
            let Some(j) = j else { continue };
            deg += 1.0;
            if hole[j] {
                *slot = index[j];
            } else {
                kn.push(j);
            }
        }
        nbrs.push(un);
        degree.push(deg);
        known_nbrs.push(kn);
    }
    let known_count = hole.iter().filter(|&&b| !b).count().max(1);
    for c in 0..4 {
        let mean = (0..w * h)
            .filter(|&i| !hole[i])
            .map(|i| f64::from(data[i * 4 + c]))
            .sum::<f64>()
            / known_count as f64;
        let b: Vec<f64> = known_nbrs
            .iter()
            .map(|kn| kn.iter().map(|&j| f64::from(data[j * 4 + c])).sum())
            .collect();
        let apply = |x: &[f64], y: &mut [f64]| {
            for k in 0..x.len() {
                let mut s = degree[k] * x[k];
                for &j in &nbrs[k] {
                    if j != usize::MAX {
                        s -= x[j];
                    }
                }
                y[k] = s;
            }
        };
        let x = conjugate_gradient(&apply, &b, mean);
        for (k, &i) in cells.iter().enumerate() {
            data[i * 4 + c] = x[k] as f32;
        }
    }
}

/// Conjugate gradients for the symmetric positive (semi-)definite operator `apply`, starting
/// from the constant `start`, to a relative residual of 1e-7.
fn conjugate_gradient(apply: &dyn Fn(&[f64], &mut [f64]), b: &[f64], start: f64) -> Vec<f64> {
    let n = b.len();
    let mut x = vec![start; n];
    let mut ax = vec![0.0; n];
    apply(&x, &mut ax);
    let mut r: Vec<f64> = b.iter().zip(&ax).map(|(b, a)| b - a).collect();
    let mut p = r.clone();
    let mut rr: f64 = r.iter().map(|v| v * v).sum();
    let b_norm: f64 = b.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
    let mut ap = vec![0.0; n];
    for _ in 0..(4 * n + 100) {
        if rr.sqrt() <= 1e-7 * b_norm {
            break;
        }
        apply(&p, &mut ap);
        let pap: f64 = p.iter().zip(&ap).map(|(a, b)| a * b).sum();
        if pap <= 0.0 {
            break;
        }
        let alpha = rr / pap;
        for k in 0..n {
            x[k] += alpha * p[k];
            r[k] -= alpha * ap[k];
        }
        let rr_new: f64 = r.iter().map(|v| v * v).sum();
        let beta = rr_new / rr;
        rr = rr_new;
        for k in 0..n {
            p[k] = r[k] + beta * p[k];
        }
    }
    x
}
