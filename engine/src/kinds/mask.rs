//! Mask kinds: MaskOps, ShapeMask, PaintMask.

use serde::Deserialize;

use super::{canvas_size, outputs};
use crate::codec::decode_image;
use crate::error::{EngineError, Result};
use crate::exec::NodeCtx;
use crate::image::Mask;
use crate::ops::{self, Filter};
use crate::procedural::{shape_mask, Shape, ShapeParams};
use crate::registry::Registry;
use crate::value::{Outputs, Value};

pub(super) fn register(r: &mut Registry) {
    r.register_typed("MaskOps", mask_ops);
    r.register_typed("ShapeMask", shape_mask_node);
    r.register_typed("PaintMask", paint_mask);
}

/// The operations of MaskOps.
#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum MaskOp {
    Threshold,
    Invert,
    Grow,
    Shrink,
    Feather,
    Blur,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MaskOps {
    op: MaskOp,
    radius: f32,
    threshold: f32,
}

fn mask_ops(ctx: &mut NodeCtx, p: MaskOps) -> Result<Outputs> {
    let mask = ctx.mask("mask")?;
    let out = match p.op {
        MaskOp::Threshold => ops::threshold(&mask, p.threshold),
        MaskOp::Invert => ops::invert(&mask),
        MaskOp::Grow => ops::grow(&mask, p.radius),
        MaskOp::Shrink => ops::shrink(&mask, p.radius),
        MaskOp::Feather => ops::feather(&mask, p.radius),
        MaskOp::Blur => ops::blur_mask(&mask, p.radius),
    };
    Ok(outputs([("mask", out.into())]))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShapeMask {
    width: u32,
    height: u32,
    shape: Shape,
    /// Centre, as a fraction of the canvas width.
    x: f32,
    /// Centre, as a fraction of the canvas height.
    y: f32,
    size_x: f32,
    size_y: f32,
    rotation: f32,
    feather: f32,
}

fn shape_mask_node(ctx: &mut NodeCtx, p: ShapeMask) -> Result<Outputs> {
    let (width, height) = canvas_size(ctx, p.width, p.height)?;
    let s = ShapeParams {
        shape: p.shape,
        width,
        height,
        cx: p.x * width as f32,
        cy: p.y * height as f32,
        size_x: p.size_x,
        size_y: p.size_y,
        rotation_deg: p.rotation,
        feather_px: p.feather,
    };
    Ok(outputs([("mask", shape_mask(&s).into())]))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PaintMask {
    painting: String,
}

fn paint_mask(ctx: &mut NodeCtx, p: PaintMask) -> Result<Outputs> {
    let image = ctx.image("image")?;
    let mask = if p.painting.trim().is_empty() {
        Mask::filled(image.width, image.height, 0.0)
    } else {
        let bytes = ctx.file("painting")?;
        let painted = decode_image(&bytes, "painting").map_err(EngineError::failed)?;
        // The painter stores masks as greyscale PNGs: white = 1.
        let m = Mask {
            width: painted.width,
            height: painted.height,
            data: painted.data.chunks_exact(4).map(|px| px[0]).collect(),
        };
        ops::resize_mask(&m, image.width, image.height, Filter::Nearest)
    };
    Ok(outputs([
        ("mask", mask.into()),
        ("image", Value::Image(image)),
    ]))
}
