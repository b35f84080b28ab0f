//! The Stable Diffusion engine, our own code on candle, equal to diffusers for the same seed.
//!
//! - [`model::SdModel`]: a checkpoint (diffusers folder or single-file LDM `.safetensors`,
//!   SD 1.x / 2.x / SDXL, 4- or 9-channel UNet), loaded once through [`model::load_cached`].
//! - [`unet::UNet2DConditionModel`], [`vae::AutoencoderKL`] (tiled for large images) and
//!   [`clip::text_model::ClipTextModel`] mirror the diffusers/transformers weight names; all
//!   attention goes through [`attention::attention`] (chunked on the CPU).
//! - [`clip`]: the real CLIP BPE tokenizer and A1111-style prompt weighting.
//! - [`scheduler::Scheduler`]: DDIM, Euler, Euler a, DPM++ 2M (Karras), LMS, PNDM, UniPC, each
//!   equal to its diffusers class built from the model's scheduler config.
//! - [`torch_rng::TorchGenerator`]: torch's CPU generator, bit for bit, in diffusers' draw order.
//! - [`pipeline::generate`]: txt2img, img2img, inpaint; [`nodes`] holds the node executors.
//! - [`ldm`]: single-file checkpoint key mapping and architecture detection.
//! - [`controlnet`]: ControlNets (diffusers folders and single files) guiding the pipelines.
//! - [`lora`]: kohya / PEFT / LoCon LoRAs merged into a model, with a report of what matched.
//! - [`train`]: UNet LoRA training on candle's autograd, writing kohya-format LoRAs.

use std::sync::Arc;

pub mod attention;
pub mod clip;
pub mod config;
pub mod control_nodes;
pub mod controlnet;
mod layers;
pub mod ldm;
mod load_cache;
pub mod lora;
pub mod model;
pub mod nodes;
pub mod pipeline;
pub mod scheduler;
pub mod torch_rng;
pub mod train;
pub mod unet;
pub mod vae;

/// What flows on a Model port: a loaded checkpoint, the LoRAs to apply to it, and how to
/// condition it. LoRAs are merged lazily (and cached) when a sampler needs the model.
pub struct ModelHandle {
    /// The base checkpoint, shared with the model cache.
    pub model: Arc<model::SdModel>,
    pub loras: Vec<lora::LoraSpec>,
    /// A1111 numbering: 1 = the text encoder's last layer.
    pub clip_skip: usize,
}

impl ModelHandle {
    /// The model with the LoRA stack merged, and a report per LoRA.
    pub fn resolve(&self) -> crate::error::Result<(Arc<model::SdModel>, Vec<lora::LoraReport>)> {
        lora::apply_cached(&self.model, &self.loras)
    }
}

impl std::fmt::Debug for ModelHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelHandle")
            .field("source", &self.model.source)
            .field("loras", &self.loras)
            .field("clip_skip", &self.clip_skip)
            .finish()
    }
}
