//! The trainer's low-rank adapters: which weights get one (UNet targets, and with
//! [`TrainConfig::train_text_encoder`] every CLIP encoder layer's attention and MLP), their
//! kohya names, their initialisation, and merging them into a weight map.
//!
//! Names, as kohya's sd-scripts write them: `lora_unet_<module path with . → _>` (diffusers'
//! path for SD 1.x/2.x, the LDM one for SDXL); text encoders `lora_te_text_model_encoder_layers_N_
//! self_attn_q_proj` (SD 1.x/2.x) or `lora_te1_…` / `lora_te2_…` (SDXL's CLIP-L and
//! OpenCLIP-bigG), on `self_attn.{q,k,v,out}_proj` and `mlp.fc{1,2}` (kohya's
//! `CLIPAttention` / `CLIPMLP` targets).
//!
//! Initialisation (kohya's): `lora_down` Kaiming-uniform `U(-1/√in, 1/√in)` from the trainer's
//! one generator, `lora_up` zero. The draws come in this order: every UNet adapter (sorted by
//! weight key), then the first text encoder's (sorted by key), then the second's — so a
//! UNet-only run draws exactly what it drew before text-encoder training existed.

use std::collections::HashMap;

use candle_core::{DType, Tensor, Var};

use super::{ce, TrainConfig};
use crate::error::{EngineError, Result};
use crate::sd::model::{Family, SdModel};
use crate::sd::torch_rng::TorchGenerator;

/// Which weight map an adapter's weight lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Part {
    Unet,
    /// The (first) text encoder.
    Text1,
    /// SDXL's second text encoder.
    Text2,
}

/// One adapter: the target weight's key in its weight map, its shape, and its factors
/// (`down` `[rank, in·kh·kw]`, `up` `[out, rank]`; reshaped to kohya's 4-D layout for convs).
pub(super) struct Adapter {
    /// kohya module name (`lora_unet_…`, `lora_te_…`).
    pub(super) name: String,
    pub(super) part: Part,
    pub(super) key: String,
    pub(super) shape: Vec<usize>,
    pub(super) down: Var,
    pub(super) up: Var,
}

impl Adapter {
    /// kohya's shapes of `lora_down` and `lora_up`.
    pub(super) fn kohya_shapes(&self) -> (Vec<usize>, Vec<usize>) {
        let r = self.up.as_tensor().dim(1).unwrap_or(0);
        if self.shape.len() == 4 {
            let s = &self.shape;
            (vec![r, s[1], s[2], s[3]], vec![s[0], r, 1, 1])
        } else {
            (vec![r, self.shape[1]], vec![self.shape[0], r])
        }
    }
}

/// Every adapter of a run, in the generator's order: the UNet's, then (when the text
/// encoder is trained) the first and the second text encoder's.
pub(super) fn make_all(
    model: &SdModel,
    cfg: &TrainConfig,
    gen: &mut TorchGenerator,
) -> Result<Vec<Adapter>> {
    let mut all = make_unet(model, cfg, gen)?;
    if all.is_empty() {
        return Err(EngineError::failed(format!(
            "{}: no UNet layer matches the LoRA targets",
            model.source
        )));
    }
    if cfg.train_text_encoder {
        let xl = model.text_encoder_2.is_some();
        let first = if xl { "lora_te1" } else { "lora_te" };
        let te1 = make_text(model, cfg, gen, Part::Text1, first)?;
        if te1.is_empty() {
            return Err(EngineError::failed(format!(
                "{}: the text encoder has no CLIP attention or MLP layer to train",
                model.source
            )));
        }
        all.extend(te1);
        if xl {
            all.extend(make_text(model, cfg, gen, Part::Text2, "lora_te2")?);
        }
    }
    Ok(all)
}

/// A `down` factor `[rank, i]` drawn from `gen` (kohya's Kaiming-uniform) and a zero `up`
/// `[o, rank]`.
fn factors(
    model: &SdModel,
    cfg: &TrainConfig,
    gen: &mut TorchGenerator,
    o: usize,
    i: usize,
) -> Result<(Var, Var)> {
    let bound = 1.0 / (i as f32).sqrt();
    let init: Vec<f32> = gen
        .rand(cfg.rank * i)
        .into_iter()
        .map(|u| (2.0 * u - 1.0) * bound)
        .collect();
    let dev = &model.device;
    let down = Tensor::from_vec(init, (cfg.rank, i), dev).map_err(ce)?;
    let down = Var::from_tensor(&down).map_err(ce)?;
    let up = Var::zeros((o, cfg.rank), DType::F32, dev).map_err(ce)?;
    Ok((down, up))
}

/// The adapters for every targeted 2-D (or conv) weight of the UNet, sorted by key.
fn make_unet(model: &SdModel, cfg: &TrainConfig, gen: &mut TorchGenerator) -> Result<Vec<Adapter>> {
    let mut keys: Vec<&String> = model
        .weights
        .unet
        .keys()
        .filter(|k| cfg.targets.covers(k))
        .collect();
    keys.sort();
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        let shape = model.weights.unet[key].dims().to_vec();
        // A linear [out, in] or a conv [out, in, kh, kw]: the factors see it as [out, in·kh·kw].
        let (o, i) = match shape.as_slice() {
            [o, i] => (*o, *i),
            [o, i, kh, kw] => (*o, i * kh * kw),
            _ => {
                return Err(EngineError::failed(format!(
                    "{}: {key}: shape {shape:?} is neither a linear nor a conv weight",
                    model.source
                )))
            }
        };
        let (down, up) = factors(model, cfg, gen, o, i)?;
        let module = key.strip_suffix(".weight").unwrap_or(key);
        // kohya names SDXL modules by their LDM path.
        let named = match model.family {
            Family::Sdxl => {
                crate::sd::lora::ldm_unet_path(module, &model.unet_config).ok_or_else(|| {
                    EngineError::failed(format!(
                        "{}: {module}: no LDM name for this UNet module",
                        model.source
                    ))
                })?
            }
            _ => module.to_string(),
        };
        out.push(Adapter {
            name: format!("lora_unet_{}", named.replace('.', "_")),
            part: Part::Unet,
            key: key.clone(),
            shape,
            down,
            up,
        });
    }
    Ok(out)
}

/// Whether a text-encoder weight key is one of kohya's targets: an encoder layer's
/// `self_attn.{q,k,v,out}_proj.weight` or `mlp.fc{1,2}.weight`.
pub(super) fn text_target(key: &str) -> bool {
    key.contains("encoder.layers.")
        && [
            ".self_attn.q_proj.weight",
            ".self_attn.k_proj.weight",
            ".self_attn.v_proj.weight",
            ".self_attn.out_proj.weight",
            ".mlp.fc1.weight",
            ".mlp.fc2.weight",
        ]
        .iter()
        .any(|s| key.ends_with(s))
}

/// kohya's name of a text-encoder weight: `<prefix>_text_model_<path with . → _>` (the
/// weight map may hold the keys with or without transformers' `text_model.` prefix).
pub(super) fn text_name(prefix: &str, key: &str) -> String {
    let module = key.strip_suffix(".weight").unwrap_or(key);
    let module = module.strip_prefix("text_model.").unwrap_or(module);
    format!("{prefix}_text_model_{}", module.replace('.', "_"))
}

/// The adapters of one text encoder, sorted by weight key.
fn make_text(
    model: &SdModel,
    cfg: &TrainConfig,
    gen: &mut TorchGenerator,
    part: Part,
    prefix: &str,
) -> Result<Vec<Adapter>> {
    let Some(map) = text_map(model, part) else {
        return Ok(Vec::new());
    };
    let mut keys: Vec<&String> = map.keys().filter(|k| text_target(k)).collect();
    keys.sort();
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        let shape = map[key].dims().to_vec();
        let [o, i] = shape.as_slice() else {
            return Err(EngineError::failed(format!(
                "{}: text encoder weight {key}: shape {shape:?} is not a linear weight",
                model.source
            )));
        };
        let (down, up) = factors(model, cfg, gen, *o, *i)?;
        out.push(Adapter {
            name: text_name(prefix, key),
            part,
            key: key.clone(),
            shape,
            down,
            up,
        });
    }
    Ok(out)
}

/// The weight map an adapter part lives in.
pub(super) fn text_map(model: &SdModel, part: Part) -> Option<&HashMap<String, Tensor>> {
    match part {
        Part::Unet => Some(&model.weights.unet),
        Part::Text1 => Some(&model.weights.text_encoder),
        Part::Text2 => model.weights.text_encoder_2.as_deref(),
    }
}

/// `base` with every adapter of `part` merged: `W + alpha/rank · up · down` (in f32, then the
/// model's dtype). The result carries the adapters' graph (for training) until detached.
pub(super) fn merged(
    model: &SdModel,
    cfg: &TrainConfig,
    adapters: &[Adapter],
    part: Part,
) -> Result<HashMap<String, Tensor>> {
    let base = text_map(model, part)
        .ok_or_else(|| EngineError::failed(format!("{}: no second text encoder", model.source)))?;
    let scale = cfg.alpha / cfg.rank as f64;
    let mut map: HashMap<String, Tensor> = base.clone();
    for a in adapters.iter().filter(|a| a.part == part) {
        let w = map.get(&a.key).ok_or_else(|| {
            EngineError::failed(format!("{}: missing weight {}", model.source, a.key))
        })?;
        let delta = (a.up.as_tensor().matmul(a.down.as_tensor()).map_err(ce)? * scale)
            .and_then(|d| d.reshape(a.shape.as_slice()))
            .map_err(ce)?;
        let merged = w
            .to_dtype(DType::F32)
            .and_then(|w| w + delta)
            .and_then(|w| w.to_dtype(model.dtype))
            .map_err(ce)?;
        map.insert(a.key.clone(), merged);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_names_are_kohyas() {
        for key in [
            "text_model.encoder.layers.3.self_attn.q_proj.weight",
            "encoder.layers.3.self_attn.q_proj.weight",
        ] {
            assert!(text_target(key));
            assert_eq!(
                text_name("lora_te", key),
                "lora_te_text_model_encoder_layers_3_self_attn_q_proj"
            );
        }
        assert_eq!(
            text_name("lora_te2", "text_model.encoder.layers.0.mlp.fc2.weight"),
            "lora_te2_text_model_encoder_layers_0_mlp_fc2"
        );
        for key in [
            "text_model.encoder.layers.3.self_attn.q_proj.bias",
            "text_model.encoder.layers.3.layer_norm1.weight",
            "text_projection.weight",
            "text_model.embeddings.token_embedding.weight",
        ] {
            assert!(!text_target(key), "{key}");
        }
    }
}
