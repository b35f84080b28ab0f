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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sd::layers::enable_grad_mode;
    use crate::sd::model::{load, LoadOptions};
    use crate::sd::torch_rng::TorchGenerator;
    use candle_core::{DType, Var};

    fn tiny(name: &str) -> SdModel {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/sd/models")
            .join(name);
        load(&dir, &LoadOptions::default()).unwrap()
    }

    /// `sum(embeds · r) (+ sum(pooled · r2))`: a scalar that depends on every output value.
    fn probe(c: &TextCond, gen: &mut TorchGenerator) -> Tensor {
        let dot = |t: &Tensor, gen: &mut TorchGenerator| {
            let r = Tensor::from_vec(gen.randn(t.elem_count()), t.shape(), t.device()).unwrap();
            (t.to_dtype(DType::F32).unwrap() * r)
                .unwrap()
                .sum_all()
                .unwrap()
        };
        let mut l = dot(&c.0, gen);
        if let Some(p) = &c.1 {
            l = (l + dot(p, gen)).unwrap();
        }
        l
    }

    /// The merged encoders in grad mode give the inference path's embeddings, and their
    /// gradient w.r.t. a text-encoder adapter equals a central finite difference (so the
    /// differentiable softmax, layer norms and activations back-propagate correctly).
    fn gradient_check(name: &str) {
        let model = tiny(name);
        let cfg = TrainConfig {
            train_text_encoder: true,
            rank: 2,
            alpha: 2.0,
            ..TrainConfig::default()
        };
        let mut gen = TorchGenerator::new(3);
        let adapters = super::super::adapters::make_all(&model, &cfg, &mut gen).unwrap();
        // Non-zero up factors, so that every factor has a gradient.
        for a in adapters.iter().filter(|a| a.part != Part::Unet) {
            let up = a.up.as_tensor();
            let v: Vec<f32> = gen.randn(up.elem_count()).iter().map(|x| x * 0.1).collect();
            a.up.set(&Tensor::from_vec(v, up.shape(), up.device()).unwrap())
                .unwrap();
        }
        let caption = "a scratch on brushed metal";
        let loss = |adapters: &[Adapter]| -> (Tensor, TextCond) {
            let t = MergedText::new(&model, &cfg, adapters).unwrap();
            let c = t.encode(&model, caption, &mut HashMap::new()).unwrap();
            (probe(&c, &mut TorchGenerator::new(9)), c)
        };
        let (_, plain) = loss(&adapters);
        let (l, graded) = {
            let _g = enable_grad_mode();
            loss(&adapters)
        };
        let d = crate::sd::layers::tests::max_abs(&plain.0, &graded.0);
        assert!(d < 1e-5, "{name}: grad mode changes the embeddings by {d}");
        let grads = l.backward().unwrap();
        // The first encoder's first-layer q_proj and the last text adapter's down factor.
        let picks: Vec<&Var> = [
            adapters.iter().find(|a| a.part == Part::Text1).unwrap(),
            adapters.last().unwrap(),
        ]
        .into_iter()
        .flat_map(|a| [&a.up, &a.down])
        .collect();
        for var in picks {
            let g = grads.get(var.as_tensor()).expect("a gradient");
            let w0 = var.as_tensor().copy().unwrap();
            let dir =
                Tensor::from_vec(gen.randn(w0.elem_count()), w0.shape(), w0.device()).unwrap();
            let analytic = (g * &dir)
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap() as f64;
            let h = 1e-2;
            let at = |s: f64| {
                var.set(&(&w0 + (&dir * s).unwrap()).unwrap()).unwrap();
                loss(&adapters).0.to_scalar::<f32>().unwrap() as f64
            };
            let numeric = (at(h) - at(-h)) / (2.0 * h);
            var.set(&w0).unwrap();
            let rel = (analytic - numeric).abs() / numeric.abs().max(1e-3);
            eprintln!("{name}: analytic {analytic:.6} numeric {numeric:.6} ({rel:.1e})");
            assert!(
                rel < 5e-3,
                "{name}: gradient {analytic} vs finite difference {numeric}"
            );
        }
    }

    #[test]
    fn sd15_text_gradients_match_finite_differences() {
        gradient_check("sd15");
    }

    #[test]
    fn sdxl_text_gradients_match_finite_differences() {
        gradient_check("sdxl");
    }
}
