//! Masks as control images (MaskToControl): the outline as lines, as scribble strokes, or the
//! shape itself. Masks are binarised at 0.5 (1 = the shape); the image border is not an
//! outline (a shape cut by the border has no line along it).

use serde::Deserialize;

use crate::image::{Image, Mask};
use crate::ops::{blur_mask, distance_to};

/// MaskToControl's modes (`nodes::control::MASK_CONTROL_MODES`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MaskControlMode {
    /// The outline as a line `width` px wide, centred on the shape's edge.
    Edges,
    /// The (slightly smoothed) outline drawn with a round brush of radius `width`: strokes
    /// `2·width + 1` px wide with rounded ends, as scribble ControlNets expect.
    Scribble,
    /// The binarised mask itself.
    Fill,
}

impl MaskControlMode {
    /// The mode of a `mode` parameter value.
    pub fn from_name(name: &str) -> Option<MaskControlMode> {
        match name {
            "edges" => Some(MaskControlMode::Edges),
            "scribble" => Some(MaskControlMode::Scribble),
            "fill" => Some(MaskControlMode::Fill),
            _ => None,
        }
    }
}

/// Upper bound of the Gaussian that smooths a mask's jagged outline before scribbling (px).
const SCRIBBLE_SMOOTH_MAX: f32 = 3.0;

/// The mask as a control image in `mode` (see [`MaskControlMode`]): white on black, alpha 1.
/// `width` 0 counts as 1.
pub fn mask_to_control(mask: &Mask, mode: MaskControlMode, width: u32) -> Image {
    let width = width.max(1);
    let (w, h) = (mask.width as usize, mask.height as usize);
    let on = match mode {
        MaskControlMode::Fill => binarise(mask),
        MaskControlMode::Edges => edge_band(&binarise(mask), w, h, width),
        MaskControlMode::Scribble => {
            let sigma = (width as f32 / 2.0).min(SCRIBBLE_SMOOTH_MAX);
            let inside = binarise(&blur_mask(mask, sigma));
            let outline = outline(&inside, w, h);
            let r = width as f32;
            distance_to(&outline, w, h)
                .into_iter()
                .map(|d| d <= r)
                .collect()
        }
    };
    white_on_black(mask.width, mask.height, &on)
}

/// Pixels of the mask (>= 0.5).
fn binarise(mask: &Mask) -> Vec<bool> {
    mask.data.iter().map(|&v| v >= 0.5).collect()
}

/// Inside pixels with a 4-neighbour outside (neighbours beyond the border do not count).
fn outline(inside: &[bool], w: usize, h: usize) -> Vec<bool> {
    let mut out = vec![false; inside.len()];
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            out[i] = inside[i]
                && ((x > 0 && !inside[i - 1])
                    || (x + 1 < w && !inside[i + 1])
                    || (y > 0 && !inside[i - w])
                    || (y + 1 < h && !inside[i + w]));
        }
    }
    out
}

/// A band `width` px wide centred on the edge between inside and outside: inside pixels within
/// `ceil(width / 2)` px of an outside pixel and outside pixels within `floor(width / 2)` px of
/// an inside one (Euclidean distances between pixel centres). `width` 1 gives the inside
/// pixels with a 4-neighbour outside, an 8-connected line.
fn edge_band(inside: &[bool], w: usize, h: usize, width: u32) -> Vec<bool> {
    let r_in = width.div_ceil(2) as f32;
    let r_out = (width / 2) as f32;
    let outside: Vec<bool> = inside.iter().map(|&v| !v).collect();
    let to_outside = distance_to(&outside, w, h);
    let to_inside = if r_out > 0.0 {
        distance_to(inside, w, h)
    } else {
        vec![f32::INFINITY; inside.len()]
    };
    inside
        .iter()
        .zip(to_outside.iter().zip(&to_inside))
        .map(|(&i, (&d_out, &d_in))| if i { d_out <= r_in } else { d_in <= r_out })
        .collect()
}

fn white_on_black(width: u32, height: u32, on: &[bool]) -> Image {
    let mut img = Image::filled(width, height, [0.0, 0.0, 0.0, 1.0]);
    for (px, &v) in img.data.chunks_exact_mut(4).zip(on) {
        if v {
            px[..3].fill(1.0);
        }
    }
    img
}
