//! Pillow's bilinear and bicubic resizes of 8-bit RGB images, bit for bit (`Image.resize(size,
//! Image.BILINEAR)`, what torchvision's `Resize` does to a PIL image and what the Lite0
//! fixtures were made with; `Image.BICUBIC`, what transformers' BLIP image processor does:
//! [`crate::inspect::blip`]).
//!
//! Lite0's top-5 on real photos contains near-ties (coffee: "consomme" 0.012 vs "coffee mug"
//! 0.013) that a ±1-level difference in the input flips, and the `image` crate's triangle filter
//! differs from Pillow by up to one level on about 15% of the values (it runs the vertical
//! pass first, in f32). So this follows Pillow's `libImaging/Resample.c`: coefficients from the
//! filter (triangle, or Keys' cubic with a = −0.5) with its support scaled by the reduction
//! factor, normalised, converted to 22-bit fixed point; the horizontal pass first (into 8-bit
//! rows, rounded and clipped), then the vertical pass.

/// Pillow's fixed-point precision for 8-bit images (`PRECISION_BITS = 32 - 8 - 2`).
const PRECISION_BITS: u32 = 22;

/// Pillow's resampling filters we reproduce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PillowFilter {
    /// `Image.BILINEAR` (2): the triangle filter, support 1.
    Bilinear,
    /// `Image.BICUBIC` (3): Keys' cubic convolution with a = −0.5, support 2.
    Bicubic,
}

impl PillowFilter {
    /// The filter for Pillow's resample code (`PIL.Image.Resampling`), if we have it.
    pub fn from_pil_code(code: u32) -> Option<PillowFilter> {
        match code {
            2 => Some(PillowFilter::Bilinear),
            3 => Some(PillowFilter::Bicubic),
            _ => None,
        }
    }

    fn support(self) -> f64 {
        match self {
            PillowFilter::Bilinear => 1.0,
            PillowFilter::Bicubic => 2.0,
        }
    }

    /// `bilinear_filter` / `bicubic_filter` of `libImaging/Resample.c`.
    fn weight(self, x: f64) -> f64 {
        let x = x.abs();
        match self {
            PillowFilter::Bilinear => (1.0 - x).max(0.0),
            PillowFilter::Bicubic => {
                const A: f64 = -0.5;
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
        }
    }
}

/// Per output index: first input index and the fixed-point weights.
struct Coeffs {
    bounds: Vec<(usize, usize)>,
    weights: Vec<i32>,
    ksize: usize,
}

/// Pillow's `precompute_coeffs` and `normalize_coeffs_8bpc`.
fn coeffs(in_size: usize, out_size: usize, filter: PillowFilter) -> Coeffs {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filter.support() * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size);
    let mut weights = vec![0i32; out_size * ksize];
    let mut k = vec![0f64; ksize];
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        // C's (int) cast truncates toward zero; negative values are clamped to 0 anyway.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let n = xmax.saturating_sub(xmin).min(ksize);
        let mut ww = 0.0;
        for (x, kx) in k.iter_mut().enumerate().take(n) {
            let w = filter.weight(((x + xmin) as f64 - center + 0.5) * ss);
            *kx = w;
            ww += w;
        }
        for (x, kx) in k.iter().enumerate().take(n) {
            let w = if ww != 0.0 { kx / ww } else { *kx };
            let fixed = w * f64::from(1u32 << PRECISION_BITS);
            weights[xx * ksize + x] = if w < 0.0 {
                (-0.5 + fixed) as i32
            } else {
                (0.5 + fixed) as i32
            };
        }
        bounds.push((xmin, n));
    }
    Coeffs {
        bounds,
        weights,
        ksize,
    }
}

/// Pillow's `clip8`: the arithmetic shift of the (possibly negative, with the cubic's negative
/// lobes) sum, clamped to 0..=255.
fn clip8(v: i32) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes an RGB8 image to `ow`×`oh` exactly as Pillow's `BILINEAR` does.
pub fn pillow_bilinear(img: &image::RgbImage, ow: u32, oh: u32) -> image::RgbImage {
    pillow_resize(img, ow, oh, PillowFilter::Bilinear)
}

/// Resizes an RGB8 image to `ow`×`oh` exactly as Pillow's `Image.resize((ow, oh), filter)`
/// does (a copy when the size is unchanged, as in Pillow).
pub fn pillow_resize(
    img: &image::RgbImage,
    ow: u32,
    oh: u32,
    filter: PillowFilter,
) -> image::RgbImage {
    let (iw, ih) = (img.width() as usize, img.height() as usize);
    let (ow_, oh_) = (ow as usize, oh as usize);
    if (iw, ih) == (ow_, oh_) {
        return img.clone();
    }
    if iw == 0 || ih == 0 || ow == 0 || oh == 0 {
        return image::RgbImage::new(ow, oh);
    }
    let src = img.as_raw();
    let h = coeffs(iw, ow_, filter);
    let v = coeffs(ih, oh_, filter);
    // Only the input rows the vertical pass reads.
    let first = v.bounds[0].0;
    let last = v.bounds[oh_ - 1].0 + v.bounds[oh_ - 1].1;
    let rows = last - first;
    // Horizontal pass (skipped when the width does not change, as in Pillow).
    let tmp: Vec<u8> = if iw != ow_ {
        let mut tmp = vec![0u8; rows * ow_ * 3];
        for y in 0..rows {
            let row = &src[(y + first) * iw * 3..(y + first + 1) * iw * 3];
            for (xx, &(xmin, n)) in h.bounds.iter().enumerate() {
                let k = &h.weights[xx * h.ksize..xx * h.ksize + n];
                for c in 0..3 {
                    let mut ss: i32 = 1 << (PRECISION_BITS - 1);
                    for (x, &w) in k.iter().enumerate() {
                        ss += i32::from(row[(xmin + x) * 3 + c]) * w;
                    }
                    tmp[(y * ow_ + xx) * 3 + c] = clip8(ss);
                }
            }
        }
        tmp
    } else {
        src[first * iw * 3..last * iw * 3].to_vec()
    };
    if ih == oh_ {
        return image::RgbImage::from_raw(ow, oh, tmp).unwrap_or_default();
    }
    // Vertical pass.
    let mut out = vec![0u8; oh_ * ow_ * 3];
    for (yy, &(ymin, n)) in v.bounds.iter().enumerate() {
        let k = &v.weights[yy * v.ksize..yy * v.ksize + n];
        let ymin = ymin - first;
        for i in 0..ow_ * 3 {
            let mut ss: i32 = 1 << (PRECISION_BITS - 1);
            for (y, &w) in k.iter().enumerate() {
                ss += i32::from(tmp[(ymin + y) * ow_ * 3 + i]) * w;
            }
            out[yy * ow_ * 3 + i] = clip8(ss);
        }
    }
    image::RgbImage::from_raw(ow, oh, out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_sum_to_one_and_flat_stays_flat() {
        for (i, o, f) in [
            (451, 224, PillowFilter::Bilinear),
            (600, 224, PillowFilter::Bilinear),
            (100, 224, PillowFilter::Bilinear),
            (7, 3, PillowFilter::Bilinear),
            (600, 384, PillowFilter::Bicubic),
            (96, 384, PillowFilter::Bicubic),
            (7, 3, PillowFilter::Bicubic),
        ] {
            let c = coeffs(i, o, f);
            for (xx, &(xmin, n)) in c.bounds.iter().enumerate() {
                assert!(xmin + n <= i);
                let s: i64 = c.weights[xx * c.ksize..xx * c.ksize + n]
                    .iter()
                    .map(|&w| i64::from(w))
                    .sum();
                assert!(
                    (s - (1 << PRECISION_BITS)).abs() <= n as i64,
                    "{i}->{o} at {xx}: {s}"
                );
            }
        }
        let flat = image::RgbImage::from_pixel(451, 300, image::Rgb([10, 200, 77]));
        let r = pillow_bilinear(&flat, 224, 224);
        assert!(r.pixels().all(|p| p.0 == [10, 200, 77]));
        for (w, h) in [(384, 384), (100, 500)] {
            let r = pillow_resize(&flat, w, h, PillowFilter::Bicubic);
            assert!(r.pixels().all(|p| p.0 == [10, 200, 77]));
        }
    }

    #[test]
    fn halving_averages_pixel_pairs() {
        // 4×1 → 2×1: scale 2, support 2, each output is a triangle-weighted mean of 4 inputs.
        let img = image::RgbImage::from_fn(4, 2, |x, _| image::Rgb([(x * 60) as u8, 0, 255]));
        let r = pillow_bilinear(&img, 2, 1);
        // Output 0 centred at 1.0: weights of inputs 0,1,2 = 0.75,0.75,0.25 (normalised /1.75).
        let want0 = ((0.0 * 0.75 + 60.0 * 0.75 + 120.0 * 0.25) / 1.75f64).round() as u8;
        assert_eq!(r.get_pixel(0, 0).0, [want0, 0, 255]);
    }
}
