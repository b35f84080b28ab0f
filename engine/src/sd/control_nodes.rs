//! Executors of LoadControlNet and ControlNet (declared in `nodes::control`):
//!
//! - LoadControlNet finds the ControlNet (a single `.safetensors` or a diffusers folder, by path
//!   or by name in the model folders: [`crate::files::locate`]), parses `dtype` and `device` as
//!   LoadCheckpoint does (`device: auto` is the run's device, substituted by the executor), and
//!   loads it through the process-wide cache ([`controlnet::load_cached`]).
//! - ControlNet appends one [`ControlSpec`] to the stack on its `control` input (none: an empty
//!   stack), so chained nodes give the samplers every ControlNet in chain order; the pipelines sum
//!   their residuals as diffusers' `MultiControlNetModel`. Whether a ControlNet suits the
//!   checkpoint is checked when a sampler runs ([`controlnet::ControlNet::check_compatible`],
//!   in the pipeline), the first place that sees both.

use std::path::Path;
use std::sync::Arc;

use nodes::FileRole;
use serde::Deserialize;

use super::controlnet::{self, ControlNetLoadOptions, ControlSpec};
use super::nodes::{parse_device, parse_dtype};
use crate::error::{EngineError, Result};
use crate::exec::NodeCtx;
use crate::registry::Registry;
use crate::value::{Outputs, Value};

pub(crate) fn register(r: &mut Registry) {
    r.register_typed("LoadControlNet", load_controlnet);
    r.register_typed("ControlNet", apply_controlnet);
}

/// LoadControlNet's parameters (`nodes::control::LOAD_CONTROLNET`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoadControlNetParams {
    controlnet: String,
    dtype: String,
    device: String,
}

fn load_controlnet(ctx: &mut NodeCtx, p: LoadControlNetParams) -> Result<Outputs> {
    let path = crate::files::locate_for_node(FileRole::ControlNet, &p.controlnet, Path::new(""))?;
    let device = parse_device(&p.device)?;
    let dtype = parse_dtype(&p.dtype, &device)?;
    ctx.progress(0, 1, None)?;
    let net = controlnet::load_cached(&path, &ControlNetLoadOptions { dtype, device })?;
    ctx.progress(1, 1, None)?;
    ctx.status(format!(
        "ControlNet for {} ({:?})",
        net.family.name(),
        net.dtype
    ));
    Ok([("controlnet", Value::ControlNet(net))]
        .into_iter()
        .collect())
}

/// ControlNet's parameters (`nodes::control::CONTROLNET`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ControlNetParams {
    strength: f64,
    start: f64,
    end: f64,
    guess_mode: bool,
}

fn apply_controlnet(ctx: &mut NodeCtx, p: ControlNetParams) -> Result<Outputs> {
    // diffusers refuses the same ("control guidance start … cannot be larger or equal to
    // control guidance end"): the control would act on no step.
    if p.start >= p.end {
        return Err(EngineError::failed(format!(
            "parameters start ({}) and end ({}): start must be less than end (they are the \
             fractions of the steps between which the control acts)",
            p.start, p.end
        )));
    }
    let net = ctx
        .input("controlnet")
        .ok_or_else(|| EngineError::failed("input \"controlnet\" is not connected"))?
        .as_controlnet()
        .cloned()
        .ok_or_else(|| EngineError::failed("input \"controlnet\" is not a ControlNet"))?;
    let image = ctx.image("image")?;
    let mask = ctx.opt_mask("mask")?;
    let mut stack = match control_input(ctx)? {
        Some(previous) => previous.as_ref().clone(),
        None => Vec::new(),
    };
    stack.push(ControlSpec {
        net,
        image,
        mask,
        strength: p.strength,
        start: p.start,
        end: p.end,
        guess_mode: p.guess_mode,
    });
    Ok([("control", Value::Control(Arc::new(stack)))]
        .into_iter()
        .collect())
}

/// The stack on a node's optional `control` input (ControlNet nodes and the samplers).
pub(crate) fn control_input(ctx: &NodeCtx) -> Result<Option<Arc<Vec<ControlSpec>>>> {
    match ctx.input("control") {
        None => Ok(None),
        Some(v) => v
            .as_control()
            .cloned()
            .map(Some)
            .ok_or_else(|| EngineError::failed("input \"control\" is not a Control value")),
    }
}
