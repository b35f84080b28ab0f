//! BLIP's safetensors for candle-transformers' `VarBuilder`: the file goes through the one
//! validator (`models::safetensors_check`), is memory-mapped, and two names are mapped, as
//! transformers' `_tied_weights_keys` do it:
//!
//! - `text_decoder.cls.predictions.decoder.weight` is the word embedding matrix when the
//!   config ties them (transformers 5 does not even save it); an untied checkpoint must have it;
//! - `text_decoder.cls.predictions.bias` is `…decoder.bias` in checkpoints that saved only that
//!   name.

use std::collections::HashMap;
use std::path::Path;

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;

use crate::error::{EngineError, Result};

const DECODER_WEIGHT: &str = "text_decoder.cls.predictions.decoder.weight";
const WORD_EMBEDDINGS: &str = "text_decoder.bert.embeddings.word_embeddings.weight";
const LM_BIAS: &str = "text_decoder.cls.predictions.bias";
const DECODER_BIAS: &str = "text_decoder.cls.predictions.decoder.bias";

/// A safetensors file read under other names: `aliases[wanted] = stored`.
struct Aliased {
    inner: MmapedSafetensors,
    aliases: HashMap<String, String>,
}

impl Aliased {
    fn name<'a>(&'a self, name: &'a str) -> &'a str {
        self.aliases.get(name).map_or(name, String::as_str)
    }
}

impl SimpleBackend for Aliased {
    fn get(
        &self,
        s: Shape,
        name: &str,
        h: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        SimpleBackend::get(&self.inner, s, self.name(name), h, dtype, dev)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        SimpleBackend::get_unchecked(&self.inner, self.name(name), dtype, dev)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        SimpleBackend::contains_tensor(&self.inner, self.name(name))
    }
}

/// A float32 `VarBuilder` over the BLIP weights at `path`, with the tied names mapped.
pub fn var_builder(path: &Path, tied: bool, device: &Device) -> Result<VarBuilder<'static>> {
    let (inner, header) = crate::models::safetensors_check::open_mmap(path)
        .map_err(|e| EngineError::Inspect(format!("BLIP weights: {e}")))?;
    let has = |n: &str| header.tensors.contains_key(n);
    let mut aliases = HashMap::new();
    if tied {
        aliases.insert(DECODER_WEIGHT.to_string(), WORD_EMBEDDINGS.to_string());
    }
    if !has(LM_BIAS) && has(DECODER_BIAS) {
        aliases.insert(LM_BIAS.to_string(), DECODER_BIAS.to_string());
    }
    for wanted in [
        WORD_EMBEDDINGS,
        "vision_model.embeddings.patch_embedding.weight",
    ] {
        if !has(wanted) {
            return Err(EngineError::Inspect(format!(
                "{}: no tensor {wanted}: not a BlipForConditionalGeneration checkpoint",
                path.display()
            )));
        }
    }
    let backend: Box<dyn SimpleBackend> = Box::new(Aliased { inner, aliases });
    Ok(VarBuilder::from_backend(
        backend,
        DType::F32,
        device.clone(),
    ))
}
