//! transformers' BLIP image processor (`BlipImageProcessorPil`, the PIL backend; the
//! torchvision backend resizes 8-bit images with the same Pillow-style filter): resize to the
//! configured size with Pillow's filter bit for bit (bicubic for BLIP), rescale by 1/255,
//! normalise with OpenAI CLIP's mean and std, channels first.

use super::folder::ImageProcessorConfig;
use crate::models::efficientnet::resize::{pillow_resize, PillowFilter};

/// An image processor ready to run: the checked resize target and the per-channel affine map.
#[derive(Clone, Debug)]
pub struct ImageProcessor {
    resize: Option<(u32, u32, PillowFilter)>,
    scale: f32,
    mean: [f32; 3],
    std: [f32; 3],
}

impl ImageProcessor {
    /// Checks `cfg` (see [`ImageProcessorConfig::resize_to`]).
    pub fn new(cfg: &ImageProcessorConfig) -> Result<ImageProcessor, String> {
        let (mean, std) = if cfg.do_normalize {
            (cfg.image_mean, cfg.image_std)
        } else {
            ([0.0; 3], [1.0; 3])
        };
        if std.iter().any(|s| *s == 0.0 || !s.is_finite()) {
            return Err(format!("image processor image_std {std:?} has a zero"));
        }
        Ok(ImageProcessor {
            resize: cfg.resize_to()?,
            scale: if cfg.do_rescale {
                cfg.rescale_factor as f32
            } else {
                1.0
            },
            mean,
            std,
        })
    }

    /// The output size (width, height), when the processor resizes.
    pub fn size(&self) -> Option<(u32, u32)> {
        self.resize.map(|(w, h, _)| (w, h))
    }

    /// The pixel values of one image: 3 × height × width, channels first (`pixel_values[i]`).
    pub fn pixels(&self, img: &image::RgbImage) -> Vec<f32> {
        let resized;
        let img = match self.resize {
            Some((w, h, filter)) => {
                resized = pillow_resize(img, w, h, filter);
                &resized
            }
            None => img,
        };
        let plane = (img.width() * img.height()) as usize;
        let mut out = vec![0f32; 3 * plane];
        for (i, p) in img.pixels().enumerate() {
            for c in 0..3 {
                // As numpy: (x · scale, in float32) − mean, / std.
                out[c * plane + i] = (f32::from(p.0[c]) * self.scale - self.mean[c]) / self.std[c];
            }
        }
        out
    }
}
