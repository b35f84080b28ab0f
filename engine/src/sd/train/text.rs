//! The trainer's text conditioning: a caption's prompt embeddings (and SDXL's pooled
//! embedding), from the base encoders once per caption when only the UNet is trained, or from
//! the LoRA-merged encoders at every step when the text encoder is trained.
//!
//! The encoding is the pipelines' (diffusers' `encode_prompt` for the positive prompt, no
//! weighting): SD 1.x/2.x the last layer after `final_layer_norm`, SDXL both encoders'
//! penultimate layers concatenated and the second encoder's projected pooled output. When the
//! text encoder is trained, the encoders are rebuilt each step from their weight maps with the
//! adapters merged and run in [`grad_mode`](crate::sd::layers) (a differentiable softmax in
//! CLIP's attention), so the UNet loss back-propagates into the text-encoder adapters.

use std::collections::HashMap;

use candle_core::Tensor;
use candle_nn::VarBuilder;

use super::adapters::{merged, Adapter, Part};
use super::{ce, TrainConfig};
use crate::error::{EngineError, Result};
use crate::sd::clip::text_model::{encode_sd, encode_sdxl};
use crate::sd::clip::ClipTextModel;
use crate::sd::model::SdModel;

/// A caption's conditioning: prompt embeddings `[1, 77, C]` and, for SDXL, the pooled
/// embedding `[1, P]`, in the model's dtype.
pub(super) type TextCond = (Tensor, Option<Tensor>);

/// Encodes `caption` with `te1` (and SDXL's `te2`) and the model's tokenizers.
pub(super) fn encode(
    model: &SdModel,
    te1: &ClipTextModel,
    te2: Option<&ClipTextModel>,
    caption: &str,
) -> candle_core::Result<TextCond> {
    let tok1 = &model.text_encoder.tokenizer;
    match (te2, &model.text_encoder_2) {
        (Some(te2), Some(t2)) => {
            let (e, p) = encode_sdxl(te1, tok1, te2, &t2.tokenizer, caption, false)?;
            Ok((e.to_dtype(model.dtype)?, Some(p.to_dtype(model.dtype)?)))
        }
        _ => Ok((
            encode_sd(te1, tok1, caption, 1, false)?.to_dtype(model.dtype)?,
            None,
        )),
    }
}

/// The base model's encoders.
pub(super) fn encode_base(model: &SdModel, caption: &str) -> candle_core::Result<TextCond> {
    let te2 = model.text_encoder_2.as_ref().map(|t| &t.model);
    encode(model, &model.text_encoder.model, te2, caption)
}

/// The text encoders with the current adapters merged, differentiable w.r.t. them when built
/// (and run) in grad mode.
pub(super) struct MergedText {
    te1: ClipTextModel,
    te2: Option<ClipTextModel>,
}

impl MergedText {
    pub(super) fn new(model: &SdModel, cfg: &TrainConfig, adapters: &[Adapter]) -> Result<Self> {
        let build = |part: Part, te: &crate::sd::model::TextEncoder| -> Result<ClipTextModel> {
            let map = merged(model, cfg, adapters, part)?;
            let vb = VarBuilder::from_tensors(map, model.dtype, &model.device);
            ClipTextModel::new(vb, &te.config, te.model.has_projection())
                .map_err(|e| EngineError::failed(format!("{}: text encoder: {e}", model.source)))
        };
        let te1 = build(Part::Text1, &model.text_encoder)?;
        let te2 = match &model.text_encoder_2 {
            Some(te) => Some(build(Part::Text2, te)?),
            None => None,
        };
        Ok(MergedText { te1, te2 })
    }

    /// `caption`'s conditioning from these encoders, each caption encoded once per `memo`.
    pub(super) fn encode(
        &self,
        model: &SdModel,
        caption: &str,
        memo: &mut HashMap<String, TextCond>,
    ) -> Result<TextCond> {
        if let Some(c) = memo.get(caption) {
            return Ok(c.clone());
        }
        let c = encode(model, &self.te1, self.te2.as_ref(), caption).map_err(ce)?;
        memo.insert(caption.to_string(), c.clone());
        Ok(c)
    }
}
