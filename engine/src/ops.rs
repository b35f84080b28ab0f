//! Classical image and mask operations used by the built-in nodes.

use crate::image::{Image, Mask};

/// A Gaussian blur of a mask with standard deviation `sigma` pixels (edges clamped).
pub fn blur_mask(mask: &Mask, sigma: f32) -> Mask {
    let data = blur_channels(
        &mask.data,
        mask.width as usize,
        mask.height as usize,
        1,
        sigma,
    );
    Mask {
        width: mask.width,
        height: mask.height,
        data,
    }
}

/// A Gaussian blur of an image's four channels.
pub fn blur_image(img: &Image, sigma: f32) -> Image {
    let data = blur_channels(&img.data, img.width as usize, img.height as usize, 4, sigma);
    Image {
        width: img.width,
        height: img.height,
        data,
    }
}

fn gaussian_kernel(sigma: f32) -> Vec<f32> {
    let r = (sigma * 3.0).ceil().max(1.0) as i32;
    let mut k: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f32 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= sum);
    k
}

/// Separable Gaussian blur of interleaved channels.
fn blur_channels(src: &[f32], w: usize, h: usize, ch: usize, sigma: f32) -> Vec<f32> {
    if sigma <= 0.0 || w == 0 || h == 0 {
        return src.to_vec();
    }
    let k = gaussian_kernel(sigma);
    let r = (k.len() / 2) as isize;
    let mut tmp = vec![0.0f32; src.len()];
    for y in 0..h {
        let row = &src[y * w * ch..(y + 1) * w * ch];
        for x in 0..w {
            for c in 0..ch {
                let mut acc = 0.0;
                for (i, kv) in k.iter().enumerate() {
                    let sx = (x as isize + i as isize - r).clamp(0, w as isize - 1) as usize;
                    acc += kv * row[sx * ch + c];
                }
                tmp[(y * w + x) * ch + c] = acc;
            }
        }
    }
    let mut out = vec![0.0f32; src.len()];
    for y in 0..h {
        for (i, kv) in k.iter().enumerate() {
            let sy = (y as isize + i as isize - r).clamp(0, h as isize - 1) as usize;
            let s = &tmp[sy * w * ch..(sy + 1) * w * ch];
            let d = &mut out[y * w * ch..(y + 1) * w * ch];
            for (dv, sv) in d.iter_mut().zip(s) {
                *dv += kv * sv;
            }
        }
    }
    out
}

/// Exact Euclidean distance from every pixel to the nearest pixel where `seed` is true
/// (Felzenszwalb & Huttenlocher's separable squared-distance transform). Infinite if none.
pub fn distance_to(seed: &[bool], w: usize, h: usize) -> Vec<f32> {
    const INF: f32 = 1e20;
    let mut f: Vec<f32> = seed.iter().map(|&s| if s { 0.0 } else { INF }).collect();
    let n = w.max(h);
    let (mut v, mut z, mut d, mut col) = (
        vec![0usize; n],
        vec![0.0f32; n + 1],
        vec![0.0f32; n],
        vec![0.0f32; n],
    );
    for x in 0..w {
        for y in 0..h {
            col[y] = f[y * w + x];
        }
        edt_1d(&col[..h], &mut d[..h], &mut v, &mut z);
        for y in 0..h {
            f[y * w + x] = d[y];
        }
    }
    for y in 0..h {
        col[..w].copy_from_slice(&f[y * w..(y + 1) * w]);
        edt_1d(&col[..w], &mut d[..w], &mut v, &mut z);
        f[y * w..(y + 1) * w].copy_from_slice(&d[..w]);
    }
    f.iter()
        .map(|&s| {
            if s >= INF * 0.5 {
                f32::INFINITY
            } else {
                s.sqrt()
            }
        })
        .collect()
}

/// One dimension of the squared distance transform (lower envelope of parabolas).
fn edt_1d(f: &[f32], d: &mut [f32], v: &mut [usize], z: &mut [f32]) {
    let n = f.len();
    if n == 0 {
        return;
    }
    let mut k = 0usize;
    v[0] = 0;
    z[0] = f32::NEG_INFINITY;
    z[1] = f32::INFINITY;
    for q in 1..n {
        loop {
            let p = v[k];
            let s =
                ((f[q] + (q * q) as f32) - (f[p] + (p * p) as f32)) / (2.0 * (q as f32 - p as f32));
            if s <= z[k] && k > 0 {
                k -= 1;
            } else {
                k += 1;
                v[k] = q;
                z[k] = s;
                z[k + 1] = f32::INFINITY;
                break;
            }
        }
    }
    k = 0;
    for (q, dq) in d.iter_mut().enumerate().take(n) {
        while z[k + 1] < q as f32 {
            k += 1;
        }
        let p = v[k];
        let dx = q as f32 - p as f32;
        *dq = dx * dx + f[p];
    }
}

fn inside(mask: &Mask) -> Vec<bool> {
    mask.data.iter().map(|&v| v >= 0.5).collect()
}

/// Pixels within `radius` of the mask (binarised at 0.5) become 1; others 0.
pub fn grow(mask: &Mask, radius: f32) -> Mask {
    let d = distance_to(&inside(mask), mask.width as usize, mask.height as usize);
    Mask {
        width: mask.width,
        height: mask.height,
        data: d
            .iter()
            .map(|&v| f32::from(u8::from(v <= radius)))
            .collect(),
    }
}

/// Pixels farther than `radius` from the outside of the mask (binarised at 0.5) stay 1.
pub fn shrink(mask: &Mask, radius: f32) -> Mask {
    let outside: Vec<bool> = mask.data.iter().map(|&v| v < 0.5).collect();
    let d = distance_to(&outside, mask.width as usize, mask.height as usize);
    Mask {
        width: mask.width,
        height: mask.height,
        data: d.iter().map(|&v| f32::from(u8::from(v > radius))).collect(),
    }
}

/// A linear soft edge `width` pixels wide centred on the outline of the mask (binarised at 0.5):
/// 1 deeper than `width/2` inside, 0 farther than `width/2` outside.
pub fn feather(mask: &Mask, width: f32) -> Mask {
    let (w, h) = (mask.width as usize, mask.height as usize);
    let ins = inside(mask);
    let outs: Vec<bool> = ins.iter().map(|b| !b).collect();
    let to_out = distance_to(&outs, w, h);
    let to_in = distance_to(&ins, w, h);
    let data = ins
        .iter()
        .enumerate()
        .map(|(i, &is_in)| {
            // Signed distance to the outline, which lies half a pixel from the pixel centres.
            let s = if is_in {
                to_out[i] - 0.5
            } else {
                -(to_in[i] - 0.5)
            };
            if width <= 0.0 {
                f32::from(u8::from(is_in))
            } else {
                (0.5 + s / width).clamp(0.0, 1.0)
            }
        })
        .collect();
    Mask {
        width: mask.width,
        height: mask.height,
        data,
    }
}

/// Values above `level` become 1, others 0.
pub fn threshold(mask: &Mask, level: f32) -> Mask {
    Mask {
        width: mask.width,
        height: mask.height,
        data: mask
            .data
            .iter()
            .map(|&v| f32::from(u8::from(v > level)))
            .collect(),
    }
}

pub fn invert(mask: &Mask) -> Mask {
    Mask {
        width: mask.width,
        height: mask.height,
        data: mask.data.iter().map(|&v| 1.0 - v).collect(),
    }
}

/// Resampling filters.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Filter {
    Nearest,
    Bilinear,
    Bicubic,
    Lanczos,
}

impl Filter {
    pub fn from_name(name: &str) -> Option<Filter> {
        Some(match name {
            "nearest" => Filter::Nearest,
            "bilinear" => Filter::Bilinear,
            "bicubic" => Filter::Bicubic,
            "lanczos" => Filter::Lanczos,
            _ => return None,
        })
    }

    fn image_filter(self) -> image::imageops::FilterType {
        match self {
            Filter::Nearest => image::imageops::FilterType::Nearest,
            Filter::Bilinear => image::imageops::FilterType::Triangle,
            Filter::Bicubic => image::imageops::FilterType::CatmullRom,
            Filter::Lanczos => image::imageops::FilterType::Lanczos3,
        }
    }
}

/// Resizes an image to exactly `w`×`h` (values clamped to 0..1 after ringing filters).
pub fn resize_image(img: &Image, w: u32, h: u32, filter: Filter) -> Image {
    if img.width == w && img.height == h {
        return img.clone();
    }
    let Some(buf) = image::ImageBuffer::<image::Rgba<f32>, _>::from_raw(
        img.width,
        img.height,
        img.data.clone(),
    ) else {
        return Image::filled(w, h, [0.0; 4]);
    };
    let out = image::imageops::resize(&buf, w, h, filter.image_filter());
    let mut data = out.into_raw();
    data.iter_mut().for_each(|v| *v = v.clamp(0.0, 1.0));
    Image {
        width: w,
        height: h,
        data,
    }
}

/// Resizes a mask to exactly `w`×`h`: nearest when asked, bilinear otherwise (no ringing).
pub fn resize_mask(mask: &Mask, w: u32, h: u32, filter: Filter) -> Mask {
    if mask.width == w && mask.height == h {
        return mask.clone();
    }
    let Some(buf) = image::ImageBuffer::<image::Luma<f32>, _>::from_raw(
        mask.width,
        mask.height,
        mask.data.clone(),
    ) else {
        return Mask::filled(w, h, 0.0);
    };
    let f = if filter == Filter::Nearest {
        Filter::Nearest
    } else {
        Filter::Bilinear
    };
    let out = image::imageops::resize(&buf, w, h, f.image_filter());
    let mut data = out.into_raw();
    data.iter_mut().for_each(|v| *v = v.clamp(0.0, 1.0));
    Mask {
        width: w,
        height: h,
        data,
    }
}

/// Copies the `w`×`h` rectangle at (`x`, `y`); the caller keeps it inside the image.
pub fn crop_image(img: &Image, x: u32, y: u32, w: u32, h: u32) -> Image {
    Image::from_fn(w, h, |cx, cy| img.pixel(x + cx, y + cy))
}

/// Copies the `w`×`h` rectangle at (`x`, `y`); the caller keeps it inside the mask.
pub fn crop_mask(mask: &Mask, x: u32, y: u32, w: u32, h: u32) -> Mask {
    Mask::from_fn(w, h, |cx, cy| mask.get(x + cx, y + cy))
}

/// Places `img` at (`x`, `y`) on a transparent `w`×`h` canvas.
pub fn place_image(img: &Image, w: u32, h: u32, x: i64, y: i64) -> Image {
    let mut out = Image::filled(w, h, [0.0; 4]);
    for sy in 0..img.height {
        let ty = y + i64::from(sy);
        if ty < 0 || ty >= i64::from(h) {
            continue;
        }
        for sx in 0..img.width {
            let tx = x + i64::from(sx);
            if tx >= 0 && tx < i64::from(w) {
                out.set_pixel(tx as u32, ty as u32, img.pixel(sx, sy));
            }
        }
    }
    out
}

/// Places `mask` at (`x`, `y`) on a zero `w`×`h` mask.
pub fn place_mask(mask: &Mask, w: u32, h: u32, x: i64, y: i64) -> Mask {
    let mut out = Mask::filled(w, h, 0.0);
    for sy in 0..mask.height {
        let ty = y + i64::from(sy);
        if ty < 0 || ty >= i64::from(h) {
            continue;
        }
        for sx in 0..mask.width {
            let tx = x + i64::from(sx);
            if tx >= 0 && tx < i64::from(w) {
                out.set(tx as u32, ty as u32, mask.get(sx, sy));
            }
        }
    }
    out
}

/// Blend modes of [`composite`], on sRGB values.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Blend {
    Normal,
    Multiply,
    Screen,
    Overlay,
    Darken,
    Lighten,
}

impl Blend {
    pub fn from_name(name: &str) -> Option<Blend> {
        Some(match name {
            "normal" => Blend::Normal,
            "multiply" => Blend::Multiply,
            "screen" => Blend::Screen,
            "overlay" => Blend::Overlay,
            "darken" => Blend::Darken,
            "lighten" => Blend::Lighten,
            _ => return None,
        })
    }

    /// Combines a bottom value `b` with a top value `t`.
    fn apply(self, b: f32, t: f32) -> f32 {
        match self {
            Blend::Normal => t,
            Blend::Multiply => b * t,
            Blend::Screen => 1.0 - (1.0 - b) * (1.0 - t),
            Blend::Overlay => {
                if b < 0.5 {
                    2.0 * b * t
                } else {
                    1.0 - 2.0 * (1.0 - b) * (1.0 - t)
                }
            }
            Blend::Darken => b.min(t),
            Blend::Lighten => b.max(t),
        }
    }
}

/// Pastes `top` over `bottom` with its top-left at (`x`, `y`). Coverage is `cover` (same size as
/// top; top's alpha when `None`) times `opacity`. Returns the composite and `cover` placed in
/// bottom's coordinates (where the paste is, whatever its opacity: the defect's mask).
pub fn composite(
    bottom: &Image,
    top: &Image,
    cover: Option<&Mask>,
    x: i64,
    y: i64,
    opacity: f32,
    blend: Blend,
) -> (Image, Mask) {
    let alpha;
    let cover = match cover {
        Some(m) => m,
        None => {
            alpha = top.alpha();
            &alpha
        }
    };
    let mut out = bottom.clone();
    let mut placed = Mask::filled(bottom.width, bottom.height, 0.0);
    for ty in 0..top.height {
        let by = y + i64::from(ty);
        if by < 0 || by >= i64::from(bottom.height) {
            continue;
        }
        for tx in 0..top.width {
            let bx = x + i64::from(tx);
            if bx < 0 || bx >= i64::from(bottom.width) {
                continue;
            }
            let m = cover.get(tx, ty).clamp(0.0, 1.0);
            let c = m * opacity.clamp(0.0, 1.0);
            let (bx, by) = (bx as u32, by as u32);
            placed.set(bx, by, m);
            if c <= 0.0 {
                continue;
            }
            let b = bottom.pixel(bx, by);
            let t = top.pixel(tx, ty);
            let mut p = [0.0; 4];
            for i in 0..3 {
                p[i] = b[i] + (blend.apply(b[i], t[i]) - b[i]) * c;
            }
            p[3] = b[3] + c * (1.0 - b[3]);
            out.set_pixel(bx, by, p);
        }
    }
    (out, placed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(w: u32, h: u32, x0: u32, y0: u32, s: u32) -> Mask {
        Mask::from_fn(w, h, |x, y| {
            f32::from(u8::from(x >= x0 && x < x0 + s && y >= y0 && y < y0 + s))
        })
    }

    #[test]
    fn distance_transform_matches_brute_force() {
        let (w, h) = (23usize, 17usize);
        let seed: Vec<bool> = (0..w * h).map(|i| (i * 7919) % 37 == 3).collect();
        let d = distance_to(&seed, w, h);
        for y in 0..h {
            for x in 0..w {
                let mut best = f32::INFINITY;
                for sy in 0..h {
                    for sx in 0..w {
                        if seed[sy * w + sx] {
                            let dx = x as f32 - sx as f32;
                            let dy = y as f32 - sy as f32;
                            best = best.min((dx * dx + dy * dy).sqrt());
                        }
                    }
                }
                assert!(
                    (d[y * w + x] - best).abs() < 1e-4,
                    "({x},{y}) {} vs {best}",
                    d[y * w + x]
                );
            }
        }
    }

    #[test]
    fn grow_and_shrink_are_euclidean() {
        let m = Mask::from_fn(41, 41, |x, y| f32::from(u8::from(x == 20 && y == 20)));
        let g = grow(&m, 5.0);
        let area: f32 = g.data.iter().sum();
        // Lattice points within radius 5 of a point: 81.
        assert_eq!(area, 81.0);
        let s = shrink(&square(40, 40, 10, 10, 20), 3.0);
        assert_eq!(s.data.iter().sum::<f32>(), 14.0 * 14.0);
    }

    #[test]
    fn feather_ramp_is_centred_on_the_outline() {
        let m = square(40, 40, 10, 10, 20);
        let f = feather(&m, 4.0);
        // Deep inside 1, far outside 0, and across the left edge a ramp 0.125, 0.375, 0.625, 0.875.
        assert_eq!(f.get(20, 20), 1.0);
        assert_eq!(f.get(2, 20), 0.0);
        let ramp: Vec<f32> = (8..12).map(|x| f.get(x, 20)).collect();
        for (got, want) in ramp.iter().zip([0.125, 0.375, 0.625, 0.875]) {
            assert!((got - want).abs() < 1e-5, "{ramp:?}");
        }
    }

    #[test]
    fn blur_preserves_mass_and_spreads() {
        let m = Mask::from_fn(64, 64, |x, y| f32::from(u8::from(x == 32 && y == 32)));
        let b = blur_mask(&m, 3.0);
        let sum: f32 = b.data.iter().sum();
        assert!((sum - 1.0).abs() < 1e-3);
        assert!(b.get(32, 32) < 0.05 && b.get(35, 32) > 0.0);
    }

    #[test]
    fn composite_pastes_through_mask_and_reports_placement() {
        let bottom = Image::filled(10, 10, [0.0, 0.0, 0.0, 1.0]);
        let top = Image::filled(4, 4, [1.0, 0.5, 0.0, 1.0]);
        let cover = Mask::from_fn(4, 4, |x, _| if x < 2 { 1.0 } else { 0.5 });
        let (img, placed) = composite(&bottom, &top, Some(&cover), 8, 3, 1.0, Blend::Normal);
        assert_eq!(img.pixel(8, 3), [1.0, 0.5, 0.0, 1.0]);
        assert_eq!(img.pixel(9, 3), [1.0, 0.5, 0.0, 1.0]);
        assert_eq!(img.pixel(7, 3), [0.0, 0.0, 0.0, 1.0]);
        assert_eq!(placed.data.iter().sum::<f32>(), 8.0);
        let (img, _) = composite(&bottom, &top, Some(&cover), 0, 0, 1.0, Blend::Normal);
        assert_eq!(img.pixel(3, 0), [0.5, 0.25, 0.0, 1.0]);
        let (img, _) = composite(
            &Image::filled(2, 2, [0.5; 4]),
            &Image::filled(2, 2, [0.5, 0.5, 0.5, 1.0]),
            None,
            0,
            0,
            1.0,
            Blend::Multiply,
        );
        assert_eq!(img.pixel(0, 0)[0], 0.25);
    }

    #[test]
    fn resize_keeps_constant_images_constant() {
        let img = Image::filled(30, 20, [0.25, 0.5, 0.75, 1.0]);
        let r = resize_image(&img, 61, 7, Filter::Lanczos);
        assert_eq!((r.width, r.height), (61, 7));
        for v in r.data.chunks_exact(4) {
            assert!((v[0] - 0.25).abs() < 1e-4 && (v[2] - 0.75).abs() < 1e-4);
        }
    }
}
