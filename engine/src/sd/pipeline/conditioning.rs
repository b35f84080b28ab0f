//! Prompt conditioning as diffusers' `encode_prompt` computes it: CLIP embeddings (with A1111
//! weighting and long prompts when asked), CFG's negative half, and SDXL's pooled embedding and
//! time ids.

use candle_core::Tensor;

use super::super::clip;
use super::super::model::{Family, SdModel};
use super::super::unet::AddedCond;
use super::{c, GenerateParams};
use crate::error::{EngineError, Result};

pub(super) struct Conditioning {
    /// `[neg…, pos…]` with CFG, else `[pos…]`; one row per image.
    pub(super) embeds: Tensor,
    pub(super) added: Option<AddedCond>,
}

pub(super) fn encode_text(
    model: &SdModel,
    p: &GenerateParams,
    cfg_on: bool,
    w: u32,
    h: u32,
) -> Result<Conditioning> {
    let b = p.batch;
    let repeat = |t: &Tensor| -> Result<Tensor> {
        let parts: Vec<Tensor> = (0..b).map(|_| t.clone()).collect();
        Tensor::cat(&parts, 0).map_err(c)
    };
    match model.family {
        Family::Sd1 | Family::Sd2 => {
            let te = &model.text_encoder;
            let enc = |text: &str| {
                clip::encode_sd(&te.model, &te.tokenizer, text, p.clip_skip, p.weighting).map_err(c)
            };
            let (pos, neg) = if p.weighting && cfg_on {
                // Both prompts as A1111 chunks, padded to the same count so CFG can batch them.
                let tok = &te.tokenizer;
                let mut a = clip::tokenize_weighted(tok, &p.prompt);
                let mut n = clip::tokenize_weighted(tok, p.negative.as_deref().unwrap_or(""));
                clip::pad_to_same_count(tok, &mut a, tok, &mut n);
                (
                    clip::encode_sd_chunks(&te.model, &a, p.clip_skip).map_err(c)?,
                    Some(clip::encode_sd_chunks(&te.model, &n, p.clip_skip).map_err(c)?),
                )
            } else {
                let pos = enc(&p.prompt)?;
                let neg = if cfg_on {
                    Some(enc(p.negative.as_deref().unwrap_or(""))?)
                } else {
                    None
                };
                (pos, neg)
            };
            let pos = repeat(&pos)?;
            let embeds = match neg {
                Some(n) => Tensor::cat(&[repeat(&n)?, pos], 0).map_err(c)?,
                None => pos,
            };
            Ok(Conditioning {
                embeds: embeds.to_dtype(model.dtype).map_err(c)?,
                added: None,
            })
        }
        Family::Sdxl => {
            let te1 = &model.text_encoder;
            let te2 = model
                .text_encoder_2
                .as_ref()
                .ok_or_else(|| EngineError::failed("SDXL model without a second text encoder"))?;
            let enc = |text: &str| {
                clip::encode_sdxl(
                    &te1.model,
                    &te1.tokenizer,
                    &te2.model,
                    &te2.tokenizer,
                    text,
                    p.weighting,
                )
                .map_err(c)
            };
            let weighted_pair = p.weighting && cfg_on && p.negative.is_some();
            let (pos, pooled, neg_pair) = if weighted_pair {
                let neg_text = p.negative.as_deref().unwrap_or("");
                let (t1, t2) = (&te1.tokenizer, &te2.tokenizer);
                let (mut a1, mut n1) = (
                    clip::tokenize_weighted(t1, &p.prompt),
                    clip::tokenize_weighted(t1, neg_text),
                );
                let (mut a2, mut n2) = (
                    clip::tokenize_weighted(t2, &p.prompt),
                    clip::tokenize_weighted(t2, neg_text),
                );
                clip::pad_to_same_count(t1, &mut a1, t1, &mut n1);
                clip::pad_to_same_count(t2, &mut a2, t2, &mut n2);
                let (pos, pooled) =
                    clip::encode_sdxl_chunks(&te1.model, &a1, &te2.model, &a2).map_err(c)?;
                let neg = clip::encode_sdxl_chunks(&te1.model, &n1, &te2.model, &n2).map_err(c)?;
                (pos, pooled, Some(neg))
            } else {
                let (pos, pooled) = enc(&p.prompt)?;
                (pos, pooled, None)
            };
            let time_ids = Tensor::new(
                &[h as f32, w as f32, 0.0, 0.0, h as f32, w as f32],
                &model.device,
            )
            .and_then(|t| t.unsqueeze(0))
            .map_err(c)?;
            let (pos, pooled) = (repeat(&pos)?, repeat(&pooled)?);
            let time_ids = repeat(&time_ids)?;
            let (embeds, text_embeds, time_ids) = if cfg_on {
                let (neg, neg_pooled) = match (&p.negative, neg_pair) {
                    (_, Some((a, b2))) => (repeat(&a)?, repeat(&b2)?),
                    // diffusers' force_zeros_for_empty_prompt
                    (None, None) => (
                        pos.zeros_like().map_err(c)?,
                        pooled.zeros_like().map_err(c)?,
                    ),
                    (Some(n), None) => {
                        let (a, b2) = enc(n)?;
                        (repeat(&a)?, repeat(&b2)?)
                    }
                };
                (
                    Tensor::cat(&[neg, pos], 0).map_err(c)?,
                    Tensor::cat(&[neg_pooled, pooled], 0).map_err(c)?,
                    Tensor::cat(&[time_ids.clone(), time_ids], 0).map_err(c)?,
                )
            } else {
                (pos, pooled, time_ids)
            };
            let dt = model.dtype;
            Ok(Conditioning {
                embeds: embeds.to_dtype(dt).map_err(c)?,
                added: Some(AddedCond {
                    text_embeds: text_embeds.to_dtype(dt).map_err(c)?,
                    time_ids: time_ids.to_dtype(dt).map_err(c)?,
                }),
            })
        }
    }
}
