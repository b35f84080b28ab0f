//! Seeded augmentations for detector training (docs/ARCHITECTURE.md, §15) and the network
//! input both training and scoring use.
//!
//! [`Augment::apply`] runs, in this order (each draw from the caller's RNG, so the same RNG
//! state gives the same pixels): random resized crop, horizontal flip, vertical flip, rotation
//! by a multiple of 90°, colour jitter (brightness, contrast, saturation in random order is
//! torchvision's; ours is fixed: brightness, contrast, saturation), then [`to_input`].
//!
//! **Defaults chosen for defects**, not ImageNet: the crop keeps 50–100% of the area (ratio
//! 3/4–4/3) instead of torchvision's 8–100%, which would often cut a small defect out of a
//! "defect" image and teach the network a wrong label; flips and 90° rotations are on (surface
//! textures have no up); jitter is ±20% (brightness, contrast, saturation: torchvision's
//! `ColorJitter(0.2, 0.2, 0.2)` formulas). Small-angle rotation is not done: its corners
//! would need filling, which a defect detector could learn to see.

use image::{GrayImage, ImageBuffer, Pixel, RgbImage};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::models::efficientnet::resize::pillow_bilinear;

/// Which augmentations run, and how strong.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Augment {
    /// Random resized crop: the crop's share of the image area, (min, max).
    pub crop_scale: (f32, f32),
    /// Random resized crop: the crop's aspect ratio (width / height), (min, max).
    pub crop_ratio: (f32, f32),
    pub hflip: bool,
    pub vflip: bool,
    /// Rotate by 0, 90, 180 or 270° (chosen uniformly).
    pub rot90: bool,
    /// Brightness factor drawn from [1 − b, 1 + b].
    pub brightness: f32,
    /// Contrast factor drawn from [1 − c, 1 + c] (blend with the mean grey level).
    pub contrast: f32,
    /// Saturation factor drawn from [1 − s, 1 + s] (blend with the grey image).
    pub saturation: f32,
}

impl Default for Augment {
    fn default() -> Augment {
        Augment {
            crop_scale: (0.5, 1.0),
            crop_ratio: (0.75, 4.0 / 3.0),
            hflip: true,
            vflip: true,
            rot90: true,
            brightness: 0.2,
            contrast: 0.2,
            saturation: 0.2,
        }
    }
}

impl Augment {
    /// No augmentation (evaluation).
    pub fn none() -> Augment {
        Augment {
            crop_scale: (1.0, 1.0),
            crop_ratio: (1.0, 1.0),
            hflip: false,
            vflip: false,
            rot90: false,
            brightness: 0.0,
            contrast: 0.0,
            saturation: 0.0,
        }
    }

    /// `img` → an augmented network input of `size`×`size` (see [`to_input`]).
    pub fn apply(&self, img: &RgbImage, size: u32, rng: &mut impl Rng) -> Vec<f32> {
        let g = self.draw(img.width(), img.height(), rng);
        let out = g.rgb(img, size);
        let mut x = to_input(&out, size);
        self.jitter(&mut x, rng);
        x
    }

    /// An image and its mask (same size) → the augmented input and the mask as 0/1 values
    /// (`size`×`size`, row-major), both through the same crop, flips and rotation; colour
    /// jitter touches the image only.
    pub fn apply_pair(
        &self,
        img: &RgbImage,
        mask: &GrayImage,
        size: u32,
        rng: &mut impl Rng,
    ) -> (Vec<f32>, Vec<f32>) {
        let g = self.draw(img.width(), img.height(), rng);
        let mut x = to_input(&g.rgb(img, size), size);
        self.jitter(&mut x, rng);
        (x, mask_values(&g.mask(mask, size), size))
    }

    /// The geometric draws: crop (torchvision's `RandomResizedCrop.get_params`: up to 10 tries
    /// at a random area and log-uniform ratio, else the whole image), flips, rotation.
    fn draw(&self, w: u32, h: u32, rng: &mut impl Rng) -> Geometry {
        let area = (w * h) as f32;
        let (s0, s1) = self.crop_scale;
        let (r0, r1) = (self.crop_ratio.0.ln(), self.crop_ratio.1.ln());
        let mut crop = None;
        if s0 < 1.0 || s1 < 1.0 {
            for _ in 0..10 {
                let target = area * uniform(rng, s0, s1);
                let ratio = uniform(rng, r0, r1).exp();
                let cw = (target * ratio).sqrt().round() as u32;
                let ch = (target / ratio).sqrt().round() as u32;
                if cw > 0 && ch > 0 && cw <= w && ch <= h {
                    let x = rng.random_range(0..=w - cw);
                    let y = rng.random_range(0..=h - ch);
                    crop = Some((x, y, cw, ch));
                    break;
                }
            }
        }
        Geometry {
            crop,
            hflip: self.hflip && rng.random::<bool>(),
            vflip: self.vflip && rng.random::<bool>(),
            rot: if self.rot90 {
                rng.random_range(0..4u8)
            } else {
                0
            },
        }
    }

    /// Colour jitter on a network input (CHW, (x − 127) / 128), in pixel units.
    fn jitter(&self, x: &mut [f32], rng: &mut impl Rng) {
        let plane = x.len() / 3;
        let to_px = |v: f32| v * 128.0 + 127.0;
        let to_in = |p: f32| (p.clamp(0.0, 255.0) - 127.0) / 128.0;
        if self.brightness > 0.0 {
            let f = uniform(rng, 1.0 - self.brightness, 1.0 + self.brightness);
            x.iter_mut().for_each(|v| *v = to_in(to_px(*v) * f));
        }
        let grey = |x: &[f32], i: usize| {
            0.299 * to_px(x[i]) + 0.587 * to_px(x[plane + i]) + 0.114 * to_px(x[2 * plane + i])
        };
        if self.contrast > 0.0 {
            let f = uniform(rng, 1.0 - self.contrast, 1.0 + self.contrast);
            let mean = (0..plane).map(|i| grey(x, i)).sum::<f32>() / plane.max(1) as f32;
            x.iter_mut()
                .for_each(|v| *v = to_in(f * to_px(*v) + (1.0 - f) * mean));
        }
        if self.saturation > 0.0 {
            let f = uniform(rng, 1.0 - self.saturation, 1.0 + self.saturation);
            for i in 0..plane {
                let g = grey(x, i);
                for c in 0..3 {
                    let v = &mut x[c * plane + i];
                    *v = to_in(f * to_px(*v) + (1.0 - f) * g);
                }
            }
        }
    }
}

/// One draw of the geometric augmentations.
struct Geometry {
    crop: Option<(u32, u32, u32, u32)>,
    hflip: bool,
    vflip: bool,
    /// Quarter turns clockwise.
    rot: u8,
}

impl Geometry {
    fn rgb(&self, img: &RgbImage, size: u32) -> RgbImage {
        let cropped = match self.crop {
            Some((x, y, w, h)) => image::imageops::crop_imm(img, x, y, w, h).to_image(),
            None => img.clone(),
        };
        self.orient(pillow_bilinear(&cropped, size, size))
    }

    /// The mask through the same crop, resized bilinearly (then thresholded by
    /// [`mask_values`]).
    fn mask(&self, mask: &GrayImage, size: u32) -> GrayImage {
        let cropped = match self.crop {
            Some((x, y, w, h)) => image::imageops::crop_imm(mask, x, y, w, h).to_image(),
            None => mask.clone(),
        };
        let resized = if cropped.dimensions() == (size, size) {
            cropped
        } else {
            image::imageops::resize(&cropped, size, size, image::imageops::FilterType::Triangle)
        };
        self.orient(resized)
    }

    fn orient<P: Pixel + 'static>(
        &self,
        mut img: ImageBuffer<P, Vec<P::Subpixel>>,
    ) -> ImageBuffer<P, Vec<P::Subpixel>> {
        if self.hflip {
            image::imageops::flip_horizontal_in_place(&mut img);
        }
        if self.vflip {
            image::imageops::flip_vertical_in_place(&mut img);
        }
        match self.rot {
            1 => image::imageops::rotate90(&img),
            2 => image::imageops::rotate180(&img),
            3 => image::imageops::rotate270(&img),
            _ => img,
        }
    }
}

/// A mask → 0/1 values (luma ≥ 128 = 1), resized to `size`×`size` first if needed.
pub fn mask_values(mask: &GrayImage, size: u32) -> Vec<f32> {
    let resized;
    let m = if mask.dimensions() == (size, size) {
        mask
    } else {
        resized = image::imageops::resize(mask, size, size, image::imageops::FilterType::Triangle);
        &resized
    };
    m.pixels()
        .map(|p| f32::from(u8::from(p[0] >= 128)))
        .collect()
}

fn uniform(rng: &mut impl Rng, lo: f32, hi: f32) -> f32 {
    if hi > lo {
        rng.random_range(lo..hi)
    } else {
        lo
    }
}

/// An RGB image → the network input: resized to `size`×`size` (Pillow's bilinear, as the
/// ImageNet features do), then (x − 127) / 128 per channel, CHW.
pub fn to_input(img: &RgbImage, size: u32) -> Vec<f32> {
    let resized;
    let img = if img.dimensions() == (size, size) {
        img
    } else {
        resized = pillow_bilinear(img, size, size);
        &resized
    };
    let plane = (size * size) as usize;
    let mut out = vec![0f32; 3 * plane];
    for (i, p) in img.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + i] = (f32::from(p[c]) - 127.0) / 128.0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn photo() -> RgbImage {
        RgbImage::from_fn(40, 30, |x, y| {
            image::Rgb([(x * 6) as u8, (y * 8) as u8, 90])
        })
    }

    #[test]
    fn same_seed_same_pixels_other_seed_other_pixels() {
        let a = Augment::default();
        let run = |seed| a.apply(&photo(), 16, &mut ChaCha8Rng::seed_from_u64(seed));
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
        assert_eq!(run(3).len(), 3 * 16 * 16);
    }

    #[test]
    fn image_and_mask_move_together() {
        // A mask marking the image's bright pixels stays on them through every draw.
        let img = RgbImage::from_fn(24, 24, |x, y| {
            let on = (x + 2 * y) % 7 == 0;
            image::Rgb(if on { [250, 250, 250] } else { [10, 10, 10] })
        });
        let mask = GrayImage::from_fn(24, 24, |x, y| image::Luma([img.get_pixel(x, y)[0]]));
        let mut a = Augment::default();
        a.brightness = 0.0;
        a.contrast = 0.0;
        a.saturation = 0.0;
        a.crop_scale = (1.0, 1.0);
        for seed in 0..8 {
            let (x, m) = a.apply_pair(&img, &mask, 24, &mut ChaCha8Rng::seed_from_u64(seed));
            let bright: Vec<f32> = x[..24 * 24]
                .iter()
                .map(|&v| f32::from(u8::from(v * 128.0 + 127.0 >= 128.0)))
                .collect();
            assert_eq!(bright, m, "seed {seed}");
        }
    }

    #[test]
    fn none_is_the_plain_input() {
        let got = Augment::none().apply(&photo(), 16, &mut ChaCha8Rng::seed_from_u64(1));
        assert_eq!(got, to_input(&photo(), 16));
        let flat = RgbImage::from_pixel(8, 8, image::Rgb([255, 127, 0]));
        let x = to_input(&flat, 8);
        assert_eq!((x[0], x[64], x[128]), (1.0, 0.0, -127.0 / 128.0));
    }
}
