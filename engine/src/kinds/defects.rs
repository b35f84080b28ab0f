//! Defect kinds: each deserialises its node parameters straight into the generator's own
//! parameter struct (`defects::ScratchParams`, …).

use std::sync::Arc;

use super::{outputs, same_size};
use crate::defects::{self, Defect};
use crate::error::{EngineError, Result};
use crate::exec::NodeCtx;
use crate::image::{Image, Mask};
use crate::registry::Registry;
use crate::value::{Outputs, Value};

pub(super) fn register(r: &mut Registry) {
    r.register_typed("Scratch", |ctx, p: defects::ScratchParams| {
        defect(ctx, |img, m| defects::scratch(img, &p, m))
    });
    r.register_typed("Crack", |ctx, p: defects::CrackParams| {
        defect(ctx, |img, m| defects::crack(img, &p, m))
    });
    r.register_typed("Dent", |ctx, p: defects::DentParams| {
        defect(ctx, |img, m| defects::dent(img, &p, m))
    });
    r.register_typed("Stain", |ctx, p: defects::StainParams| {
        defect(ctx, |img, m| defects::stain(img, &p, m))
    });
    r.register_typed("Chip", |ctx, p: defects::ChipParams| {
        defect(ctx, |img, m| defects::chip(img, &p, m))
    });
    r.register_typed("CutPaste", |ctx, p: defects::CutPasteParams| {
        defect(ctx, |img, m| defects::cutpaste(img, &p, m))
    });
    r.register_typed("CutPasteScar", |ctx, p: defects::ScarParams| {
        defect(ctx, |img, m| defects::cutpaste_scar(img, &p, m))
    });
    r.register_typed("DraemAnomaly", |ctx, p: defects::DraemParams| {
        let source = ctx.opt_image("source")?;
        defect(ctx, |img, m| defects::draem(img, &p, source.as_deref(), m))
    });
    r.register_typed("NsaPatch", |ctx, p: defects::NsaParams| {
        let source = ctx.opt_image("source")?;
        defect(ctx, |img, m| defects::nsa(img, &p, source.as_deref(), m))
    });
}

/// Runs a generator on the `image` input and the optional `placement` mask.
fn defect(
    ctx: &NodeCtx,
    generate: impl FnOnce(&Image, Option<&Mask>) -> std::result::Result<Defect, String>,
) -> Result<Outputs> {
    let image: Arc<Image> = ctx.image("image")?;
    let placement = ctx.opt_mask("placement")?;
    if let Some(p) = &placement {
        same_size("input \"placement\"", &image, p)?;
    }
    let d = generate(&image, placement.as_deref()).map_err(EngineError::failed)?;
    Ok(outputs([
        ("image", d.image.into()),
        (
            "mask",
            Value::InstanceMask(Arc::new(d.mask), Arc::new(d.instances)),
        ),
    ]))
}
