//! Importing ComfyUI workflows into our coarse graph.
//!
//! ComfyUI saves two formats, and both are read:
//!
//! - the **API "prompt"** format (what its `/prompt` endpoint takes and what it stores in a PNG's
//!   `prompt` chunk): `{"3": {"class_type": "KSampler", "inputs": {"seed": 5, "model": ["4", 0],
//!   …}}}`, where an input is either a value or a link `[source node id, output slot]`;
//! - the **UI workflow** format (the editor's save file and the PNG's `workflow` chunk):
//!   `{"nodes": [{"id", "type", "pos", "mode", "widgets_values": […], "inputs": [{"name",
//!   "link"}], "outputs": [{"links": […]}]}], "links": [[id, from_node, from_slot, to_node,
//!   to_slot, type]]}`. Widget values are positional; [`widget_names`] documents the order per
//!   node type. `Reroute` nodes and bypassed nodes (mode 4) are looked through, muted nodes
//!   (mode 2) are dropped, `Note`s are editor-only, and a `PrimitiveNode`'s value is already in
//!   the widget it feeds.
//!
//! Both are first read into one neutral form (node id → class and named inputs), then
//! converted:
//!
//! | ComfyUI | ours |
//! |---|---|
//! | CheckpointLoaderSimple (+ VAELoader on the VAEDecode, + CLIPSetLastLayer on the text path) | LoadCheckpoint (`vae`, `clip_skip`) |
//! | LoraLoader, LoraLoaderModelOnly | LoraLoader (`strength` = strength_model, `text_strength` = strength_clip) |
//! | EmptyLatentImage → KSampler → VAEDecode | Txt2Img |
//! | VAEEncode → KSampler → VAEDecode | Img2Img, `strength` = denoise |
//! | KSamplerAdvanced | as KSampler, `strength` = the share of steps from `start_at_step` on |
//! | sampler → sampler (an SDXL refiner pass) | Img2Img of the first sampler's image (noted) |
//! | VAEEncodeForInpaint (or VAEEncode + SetLatentNoiseMask) → KSampler → VAEDecode | Inpaint (+ MaskOps grow for `grow_mask_by`) |
//! | CLIPTextEncode | the sampler's `prompt` / `negative`, by the KSampler input it feeds |
//! | LoadImage | LoadImage; its MASK output (1 − alpha) becomes our alpha mask + MaskOps invert |
//! | LoadImageMask | LoadMask |
//! | ImageScale | Resize |
//! | SaveImage, PreviewImage, custom `SaveImage*` nodes | SaveImage |
//! | PrimitiveNode (UI), Primitive* value nodes (API) | the value, where it is used |
//! | ControlNetLoader, DiffControlNetLoader | LoadControlNet |
//! | ControlNetApply, ControlNetApplyAdvanced on a sampler's conditioning | ControlNet nodes, chained into the sampler's `control` input (see `control.rs`) |
//! | Canny (thresholds 0..1), CannyEdgePreprocessor (0..255) | Canny (0..255) |
//!
//! The [`ImportReport`](crate::interop::ImportReport) lists every ComfyUI node once: imported,
//! approximated (with why) or not imported (with why). Model and conditioning inputs that pass
//! through a node without an equivalent (e.g. a custom conditioning node) are followed to their source. Our
//! nodes left without a required input (a SaveImage whose image comes from a node that was not
//! imported) are removed and reported, so what remains is a valid recipe; whether anything usable
//! remains is [`ImportResult::is_usable`](crate::interop::ImportResult::is_usable).

mod control;
mod convert;
mod parse;
mod sampler;
mod tables;

use std::collections::BTreeMap;

use serde_json::Value;

use crate::interop::{ImportResult, InteropError, Result};

pub use parse::{copy_positions_from_workflow, import_api, import_ui};
pub use tables::{map_sampler, widget_names};

/// One input of a neutral-form node: a link to `(source node id, output slot)` or a value.
#[derive(Clone, Debug, PartialEq)]
enum Input {
    Link(String, u64),
    Value(Value),
}

/// A node in the neutral form both formats are read into.
#[derive(Clone, Debug)]
struct CNode {
    class: String,
    inputs: BTreeMap<String, Input>,
    pos: Option<[f32; 2]>,
}

type Flow = BTreeMap<String, CNode>;

/// Imports either format: a JSON object with a `nodes` array is a UI workflow, anything else
/// an API prompt. A wrapper `{"prompt": {…}}` (as sent to `/prompt`) is also accepted.
pub fn import_workflow(json: &str) -> Result<ImportResult> {
    let v: Value = serde_json::from_str(json)?;
    if v.get("nodes").map(Value::is_array).unwrap_or(false) {
        import_ui(&v)
    } else if let Some(inner) = v.get("prompt").filter(|p| p.is_object()) {
        import_api(inner)
    } else {
        import_api(&v)
    }
}

fn comfy_err(msg: impl Into<String>) -> InteropError {
    InteropError::Comfy(msg.into())
}
