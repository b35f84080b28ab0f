//! OpenCV's `cv2.Canny(rgb_uint8, low, high)` (apertureSize 3, L2gradient false), bit for bit.
//!
//! The steps follow OpenCV's `modules/imgproc/src/canny.cpp`:
//! 1. 3×3 Sobel `dx`, `dy` of each 8-bit channel with replicated borders (`BORDER_REPLICATE`);
//! 2. per pixel the channel with the largest `|dx| + |dy|` (the first one on ties, in R, G, B
//!    order), whose `dx`, `dy` give the direction;
//! 3. non-maximum suppression in one of four directions chosen with the fixed-point
//!    tan 22.5° test (`TG22 = 13573` in 1/2¹⁵), with OpenCV's exact comparisons: `m > low` to be
//!    a candidate, `>` towards the previous neighbour and `>=` towards the next one
//!    (horizontal and vertical), `>` on both sides (diagonals); magnitudes outside the image
//!    count as 0;
//! 4. hysteresis: candidates with `m > high` are edges, and so is every candidate 8-connected
//!    to an edge through candidates.

use crate::image::Image;

/// OpenCV's fixed-point tan(22.5°) (`0.4142135623730950488 * 2^15 + 0.5`, truncated).
const TG22: i32 = 13573;
const SHIFT: u32 = 15;

/// A map cell: cannot be an edge / candidate / edge (OpenCV's 1, 0, 2).
const NOT: u8 = 1;
const CANDIDATE: u8 = 0;
const EDGE: u8 = 2;

/// `cv2.Canny` on the image's RGB quantised to 8 bits as the PNG writer would
/// (`(v·255).round()`, alpha ignored): white edges on black, alpha 1. Thresholds are floored as
/// OpenCV does (`cvFloor`), and swapped when `low > high` (the node refuses that case before).
pub fn canny(img: &Image, low: f64, high: f64) -> Image {
    let (w, h) = (img.width as usize, img.height as usize);
    let (low, high) = if low > high { (high, low) } else { (low, high) };
    let (low, high) = (floor_i32(low), floor_i32(high));
    let mut out = Image::filled(img.width, img.height, [0.0, 0.0, 0.0, 1.0]);
    if w == 0 || h == 0 {
        return out;
    }
    let rgb = quantise_rgb(img);
    let g = gradients(&rgb, w, h);
    let mut map = suppress(&g, w, h, low, high);
    hysteresis(&mut map, w + 2);
    for y in 0..h {
        let row = &map[(y + 1) * (w + 2) + 1..][..w];
        let dst = &mut out.data[y * w * 4..(y + 1) * w * 4];
        for (px, &m) in dst.chunks_exact_mut(4).zip(row) {
            if m == EDGE {
                px[..3].fill(1.0);
            }
        }
    }
    out
}

/// `cvFloor` with saturation to the `int` range.
fn floor_i32(v: f64) -> i32 {
    v.floor().clamp(i32::MIN as f64, i32::MAX as f64) as i32
}

/// The RGB samples as bytes, `(v.clamp(0, 1)·255).round()` (the PNG writer's quantisation).
fn quantise_rgb(img: &Image) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(img.data.len() / 4 * 3);
    for px in img.data.chunks_exact(4) {
        for &v in &px[..3] {
            rgb.push((v.clamp(0.0, 1.0) * 255.0).round() as u8);
        }
    }
    rgb
}

/// The strongest channel's gradient per pixel; `mag` is zero-padded by one pixel all round
/// (row stride `w + 2`), `dx`/`dy` are not padded.
struct Gradients {
    mag: Vec<i32>,
    dx: Vec<i16>,
    dy: Vec<i16>,
}

fn gradients(rgb: &[u8], w: usize, h: usize) -> Gradients {
    let stride = w + 2;
    let mut g = Gradients {
        mag: vec![0; stride * (h + 2)],
        dx: vec![0; w * h],
        dy: vec![0; w * h],
    };
    let row = |y: usize| &rgb[y * w * 3..(y + 1) * w * 3];
    for y in 0..h {
        let (up, mid, down) = (row(y.saturating_sub(1)), row(y), row((y + 1).min(h - 1)));
        let mag = &mut g.mag[(y + 1) * stride + 1..][..w];
        let dxs = &mut g.dx[y * w..][..w];
        let dys = &mut g.dy[y * w..][..w];
        for x in 0..w {
            let (l, c, r) = (x.saturating_sub(1) * 3, x * 3, (x + 1).min(w - 1) * 3);
            let mut best = (-1i32, 0i32, 0i32);
            for k in 0..3 {
                let v = |s: &[u8], i: usize| i32::from(s[i + k]);
                let dx =
                    (v(up, r) - v(up, l)) + 2 * (v(mid, r) - v(mid, l)) + (v(down, r) - v(down, l));
                let dy = (v(down, l) + 2 * v(down, c) + v(down, r))
                    - (v(up, l) + 2 * v(up, c) + v(up, r));
                let m = dx.abs() + dy.abs();
                if m > best.0 {
                    best = (m, dx, dy);
                }
            }
            mag[x] = best.0;
            // |dx|, |dy| <= 4·255, well inside i16 (OpenCV's CV_16S, no saturation happens).
            dxs[x] = best.1 as i16;
            dys[x] = best.2 as i16;
        }
    }
    g
}

/// Non-maximum suppression and the double threshold: the map (padded by one cell of `NOT`
/// all round, stride `w + 2`) with `EDGE` for strong maxima, `CANDIDATE` for weak ones.
fn suppress(g: &Gradients, w: usize, h: usize, low: i32, high: i32) -> Vec<u8> {
    let stride = w + 2;
    let mut map = vec![NOT; stride * (h + 2)];
    for y in 0..h {
        for x in 0..w {
            let i = (y + 1) * stride + x + 1;
            let m = g.mag[i];
            if m <= low {
                continue;
            }
            let (xs, ys) = (i32::from(g.dx[y * w + x]), i32::from(g.dy[y * w + x]));
            let ax = xs.abs();
            let ay = ys.abs() << SHIFT;
            let tg22x = ax * TG22;
            let maximum = if ay < tg22x {
                m > g.mag[i - 1] && m >= g.mag[i + 1]
            } else if ay > tg22x + (ax << (SHIFT + 1)) {
                m > g.mag[i - stride] && m >= g.mag[i + stride]
            } else {
                // Gradient along a diagonal: compare across it (OpenCV's `s`).
                let (prev, next) = if (xs ^ ys) < 0 {
                    (i - stride + 1, i + stride - 1)
                } else {
                    (i - stride - 1, i + stride + 1)
                };
                m > g.mag[prev] && m > g.mag[next]
            };
            if maximum {
                map[i] = if m > high { EDGE } else { CANDIDATE };
            }
        }
    }
    map
}

/// Grows the edges into the 8-connected candidates (the padding stops the walk at the border).
fn hysteresis(map: &mut [u8], stride: usize) {
    let mut stack: Vec<usize> = (0..map.len()).filter(|&i| map[i] == EDGE).collect();
    while let Some(i) = stack.pop() {
        for n in [
            i - stride - 1,
            i - stride,
            i - stride + 1,
            i - 1,
            i + 1,
            i + stride - 1,
            i + stride,
            i + stride + 1,
        ] {
            if map[n] == CANDIDATE {
                map[n] = EDGE;
                stack.push(n);
            }
        }
    }
}
