//! Executors of the control-image preprocessors (`nodes::control::{CANNY, SOFT_EDGE,
//! MASK_TO_CONTROL}`), on [`crate::preprocess`].

use serde::Deserialize;

use super::outputs;
use crate::error::{EngineError, Result};
use crate::exec::NodeCtx;
use crate::preprocess::{self, MaskControlMode};
use crate::registry::Registry;
use crate::value::Outputs;

pub(super) fn register(r: &mut Registry) {
    r.register_typed("Canny", canny);
    r.register_typed("SoftEdge", soft_edge);
    r.register_typed("MaskToControl", mask_to_control);
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Canny {
    low: i64,
    high: i64,
}

fn canny(ctx: &mut NodeCtx, p: Canny) -> Result<Outputs> {
    if p.low > p.high {
        return Err(EngineError::failed(format!(
            "parameter \"low\" ({}) is above \"high\" ({}): the lower hysteresis threshold \
             must not exceed the upper one",
            p.low, p.high
        )));
    }
    let image = ctx.image("image")?;
    let edges = preprocess::canny(&image, p.low as f64, p.high as f64);
    Ok(outputs([("image", edges.into())]))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SoftEdge {
    blur: f32,
    gain: f32,
}

fn soft_edge(ctx: &mut NodeCtx, p: SoftEdge) -> Result<Outputs> {
    let image = ctx.image("image")?;
    let edges = preprocess::soft_edge(&image, p.blur, p.gain);
    Ok(outputs([("image", edges.into())]))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MaskToControl {
    mode: MaskControlMode,
    width: u32,
}

fn mask_to_control(ctx: &mut NodeCtx, p: MaskToControl) -> Result<Outputs> {
    let mask = ctx.mask("mask")?;
    let image = preprocess::mask_to_control(&mask, p.mode, p.width);
    Ok(outputs([("image", image.into())]))
}
