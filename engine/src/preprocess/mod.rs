//! Control-image preprocessors that need no downloaded weights (the ControlNet node kinds
//! `Canny`, `SoftEdge` and `MaskToControl` in `nodes::control`). (contract stub: helper D.)

use serde::Deserialize;

use crate::image::{Image, Mask};

/// OpenCV's `cv2.Canny(image, low, high)` on the 8-bit RGB image (3×3 Sobel, L1 gradient, the
/// strongest channel per pixel, hysteresis): white edges on black. (contract stub)
pub fn canny(img: &Image, _low: f64, _high: f64) -> Image {
    Image::filled(img.width, img.height, [0.0, 0.0, 0.0, 1.0])
}

/// Soft edges from gradients: Gaussian blur (`blur` sigma, px), gradient magnitude normalised to
/// 0..1 and raised to `1 / gain`, grey on black. (contract stub)
pub fn soft_edge(img: &Image, _blur: f32, _gain: f32) -> Image {
    Image::filled(img.width, img.height, [0.0, 0.0, 0.0, 1.0])
}

/// MaskToControl's modes (`nodes::control::MASK_CONTROL_MODES`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MaskControlMode {
    Edges,
    Scribble,
    Fill,
}

/// A mask as a control image: its outline (`Edges`, `width` px), thick outline strokes
/// (`Scribble`), or the mask itself (`Fill`), white on black. (contract stub)
pub fn mask_to_control(mask: &Mask, _mode: MaskControlMode, _width: u32) -> Image {
    Image::filled(mask.width, mask.height, [0.0, 0.0, 0.0, 1.0])
}
