//! BLIP image captioning (docs/ARCHITECTURE.md §15, *Image to prompt*): photos → prompts,
//! with `blip-image-captioning-base`-style weights the user provides, through
//! candle-transformers' BLIP; greedy captions equal transformers'
//! `BlipForConditionalGeneration.generate` token for token.
//!
//! # API (the `Caption` node and the `caption` command)
//!
//! ```no_run
//! # fn main() -> engine::Result<()> {
//! use engine::inspect::blip::{self, CaptionParams, Captioner};
//! // A path (the folder, or its model.safetensors), or a folder's name in the model folders.
//! let dir = blip::resolve("blip-image-captioning-base")?;
//! let captioner = Captioner::load(&dir, &candle_core::Device::Cpu)?;
//! let images: Vec<image::RgbImage> = Vec::new();
//! let captions: Vec<String> = captioner.caption(&images)?; // one per image
//! let prompted = captioner.caption_with(
//!     &images,
//!     &CaptionParams { prompt: Some("a photography of".into()), ..Default::default() },
//! )?; // each begins with the prompt, as transformers' decode gives it
//! # Ok(()) }
//! ```
//!
//! - **The folder** ([`folder`]): `config.json`, `model.safetensors`, `tokenizer.json` and/or
//!   `vocab.txt`, `preprocessor_config.json` (or transformers 5's `processor_config.json`).
//!   [`locate`] / [`folder::locate_in`] find it by path or by name in the model folders and
//!   give the missing-model message (`String`, as `files::locate`); [`folder::check_folder`]
//!   lists every missing file of an incomplete folder. [`Captioner::load`] checks the same.
//! - **Weights**: transformers 5 saves the tied LM-head decoder without its weight (it is the
//!   word embedding matrix) and older checkpoints may name the bias `decoder.bias`; the
//!   [`weights`] backend maps those names for candle-transformers' `VarBuilder` paths.
//! - **Preprocessing** ([`preprocess`]): Pillow's bicubic resize bit for bit, 1/255, CLIP
//!   mean/std.
//! - **Decoding**: greedy; the input is the bos token (`[DEC]`) then the prompt's tokens; it
//!   stops at `[SEP]` or after `max_length` tokens in all (transformers' default 20, counting
//!   the bos and prompt tokens); the text skips special tokens ([`tokenizer`]).

pub mod folder;
pub mod preprocess;
pub mod tokenizer;
pub mod weights;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, IndexOp, Module, Tensor};
use candle_transformers::models::blip::BlipForConditionalGeneration;

use crate::error::{EngineError, Result};
pub use folder::{locate, BlipFiles};
use preprocess::ImageProcessor;
use tokenizer::BlipTokenizer;

/// transformers' `GenerationConfig.max_length` default, what BLIP's `generate` runs with.
pub const DEFAULT_MAX_LENGTH: usize = 20;

/// How to caption.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptionParams {
    /// Text the caption continues (conditional captioning, e.g. "a photography of"); the
    /// caption starts with it. `None` or empty: unconditional.
    pub prompt: Option<String>,
    /// The most tokens in all, bos and prompt included (transformers' `max_length`); at least
    /// one token is generated.
    pub max_length: usize,
}

impl Default for CaptionParams {
    fn default() -> Self {
        CaptionParams {
            prompt: None,
            max_length: DEFAULT_MAX_LENGTH,
        }
    }
}

/// [`locate`] with the error as [`EngineError::Inspect`].
pub fn resolve(value: &str) -> Result<PathBuf> {
    locate(value).map_err(EngineError::Inspect)
}

/// A loaded BLIP captioning model.
pub struct Captioner {
    dir: PathBuf,
    model: BlipForConditionalGeneration,
    processor: ImageProcessor,
    tokenizer: BlipTokenizer,
    bos: u32,
    sep: u32,
    device: Device,
}

impl Captioner {
    /// Loads a BLIP folder (or the folder of the given `model.safetensors`) onto `device`.
    /// An incomplete folder is one error listing what is missing; a bad file is named.
    pub fn load(path: &Path, device: &Device) -> Result<Captioner> {
        let dir = if path.is_file() {
            path.parent().unwrap_or(path)
        } else {
            path
        };
        let files = folder::check_folder(dir).map_err(EngineError::Inspect)?;
        let err = |m: String| EngineError::Inspect(format!("BLIP model {}: {m}", dir.display()));
        let config: folder::BlipConfig = folder::read_json(&files.config).map_err(err)?;
        let pcfg = folder::ImageProcessorConfig::read(&files.image_processor).map_err(err)?;
        let processor = ImageProcessor::new(&pcfg)
            .map_err(|m| err(format!("{}: {m}", files.image_processor.display())))?;
        let side = config.vision_config.image_size as u32;
        if processor.size().is_some_and(|s| s != (side, side)) {
            return Err(err(format!(
                "the image processor resizes to {:?} but the vision model takes {side}×{side}",
                processor.size()
            )));
        }
        let tokenizer = BlipTokenizer::load(&files).map_err(err)?;
        let text = &config.text_config;
        for (what, id) in [("bos", text.bos_token_id), ("sep", text.sep_token_id)] {
            if id as usize >= text.vocab_size {
                return Err(err(format!(
                    "text_config.{what}_token_id {id} is outside the vocabulary ({})",
                    text.vocab_size
                )));
            }
        }
        let vb = weights::var_builder(&files.weights, config.tied(), device)?;
        let model = BlipForConditionalGeneration::new(&config.to_candle(), vb)
            .map_err(|e| err(format!("{}: {e}", files.weights.display())))?;
        Ok(Captioner {
            dir: dir.to_path_buf(),
            model,
            processor,
            tokenizer,
            bos: text.bos_token_id,
            sep: text.sep_token_id,
            device: device.clone(),
        })
    }

    /// The model folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The image processor (its output is `pixel_values`).
    pub fn processor(&self) -> &ImageProcessor {
        &self.processor
    }

    /// Unconditional greedy captions, one per image.
    pub fn caption(&self, images: &[image::RgbImage]) -> Result<Vec<String>> {
        self.caption_with(images, &CaptionParams::default())
    }

    /// Greedy captions, one per image.
    pub fn caption_with(
        &self,
        images: &[image::RgbImage],
        params: &CaptionParams,
    ) -> Result<Vec<String>> {
        self.generate_ids(images, params)?
            .iter()
            .map(|ids| self.tokenizer.decode(ids).map_err(|m| self.error(m)))
            .collect()
    }

    /// The greedy token ids per image, as transformers' `generate` returns them: the bos
    /// token, the prompt's tokens, the generated ones (`[SEP]` last if it was reached; no
    /// padding).
    pub fn generate_ids(
        &self,
        images: &[image::RgbImage],
        params: &CaptionParams,
    ) -> Result<Vec<Vec<u32>>> {
        let mut start = vec![self.bos];
        if let Some(p) = params.prompt.as_deref().filter(|p| !p.trim().is_empty()) {
            start.extend(self.tokenizer.encode(p).map_err(|m| self.error(m))?);
        }
        images
            .iter()
            .map(|img| self.generate_one(img, &start, params.max_length))
            .collect()
    }

    fn error(&self, m: impl std::fmt::Display) -> EngineError {
        EngineError::Inspect(format!("BLIP model {}: {m}", self.dir.display()))
    }

    fn generate_one(
        &self,
        img: &image::RgbImage,
        start: &[u32],
        max_length: usize,
    ) -> Result<Vec<u32>> {
        let c = |e: candle_core::Error| self.error(e);
        let (w, h) = self.processor.size().unwrap_or((img.width(), img.height()));
        let pixels = Tensor::from_vec(
            self.processor.pixels(img),
            (1, 3, h as usize, w as usize),
            &self.device,
        )
        .and_then(|t| t.to_dtype(DType::F32))
        .map_err(c)?;
        let embeds = self.model.vision_model().forward(&pixels).map_err(c)?;
        // The decoder keeps a key/value cache: each caption runs on its own copy (the weights
        // are shared).
        let mut model = self.model.clone();
        model.reset_kv_cache();
        let decoder = model.text_decoder();
        let mut ids = start.to_vec();
        let mut input = start.to_vec();
        let steps = max_length.saturating_sub(start.len()).max(1);
        for _ in 0..steps {
            let t = Tensor::new(input.as_slice(), &self.device)
                .and_then(|t| t.unsqueeze(0))
                .map_err(c)?;
            let logits = decoder.forward(&t, &embeds).map_err(c)?;
            let last = logits
                .i((0, input.len() - 1))
                .and_then(|l| l.to_dtype(DType::F32))
                .and_then(|l| l.to_vec1::<f32>())
                .map_err(c)?;
            let next = argmax(&last).ok_or_else(|| self.error("the logits are not finite"))?;
            ids.push(next);
            if next == self.sep {
                break;
            }
            input = vec![next];
        }
        Ok(ids)
    }
}

/// The index of the largest value, the first on ties (as `torch.argmax`); `None` on NaN.
fn argmax(v: &[f32]) -> Option<u32> {
    let mut best: Option<(usize, f32)> = None;
    for (i, &x) in v.iter().enumerate() {
        if x.is_nan() {
            return None;
        }
        if best.is_none_or(|(_, b)| x > b) {
            best = Some((i, x));
        }
    }
    best.map(|(i, _)| i as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_the_first_of_ties_and_refuses_nan() {
        assert_eq!(argmax(&[0.0, 2.0, 2.0, -1.0]), Some(1));
        assert_eq!(argmax(&[f32::NEG_INFINITY, -3.0]), Some(1));
        assert_eq!(argmax(&[1.0, f32::NAN]), None);
        assert_eq!(argmax(&[]), None);
    }
}
