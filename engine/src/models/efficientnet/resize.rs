//! Pillow's bilinear resize of 8-bit RGB images, bit for bit (`Image.resize(size,
//! Image.BILINEAR)`, what torchvision's `Resize` does to a PIL image and what the Lite0
//! fixtures were made with).
//!
//! Lite0's top-5 on real photos contains near-ties (coffee: "consomme" 0.012 vs "coffee mug"
//! 0.013) that a ±1-level difference in the input flips, and the `image` crate's triangle filter
//! differs from Pillow by up to one level on about 15% of the values (it runs the vertical
//! pass first, in f32). So this follows Pillow's `libImaging/Resample.c`: coefficients from the
//! triangle filter with its support scaled by the reduction factor, normalised, converted to
//! 22-bit fixed point; the horizontal pass first (into 8-bit rows, rounded), then the vertical
//! pass.

/// Pillow's fixed-point precision for 8-bit images (`PRECISION_BITS = 32 - 8 - 2`).
const PRECISION_BITS: u32 = 22;

/// Per output index: first input index and the fixed-point weights.
struct Coeffs {
    bounds: Vec<(usize, usize)>,
    weights: Vec<i32>,
    ksize: usize,
}

/// Pillow's `precompute_coeffs` for the bilinear filter (support 1) and
/// `normalize_coeffs_8bpc`.
fn coeffs(in_size: usize, out_size: usize) -> Coeffs {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filterscale;
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
            let t = ((x + xmin) as f64 - center + 0.5) * ss;
            let w = (1.0 - t.abs()).max(0.0);
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

fn clip8(v: i32) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes an RGB8 image to `ow`×`oh` exactly as Pillow's `BILINEAR` does.
pub fn pillow_bilinear(img: &image::RgbImage, ow: u32, oh: u32) -> image::RgbImage {
    let (iw, ih) = (img.width() as usize, img.height() as usize);
    let (ow_, oh_) = (ow as usize, oh as usize);
    if (iw, ih) == (ow_, oh_) || iw == 0 || ih == 0 || ow == 0 || oh == 0 {
        return image::imageops::resize(img, ow, oh, image::imageops::FilterType::Triangle);
    }
    let src = img.as_raw();
    let h = coeffs(iw, ow_);
    let v = coeffs(ih, oh_);
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
        for (i, o) in [(451, 224), (600, 224), (100, 224), (7, 3)] {
            let c = coeffs(i, o);
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
