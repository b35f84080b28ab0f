//! ControlNet, equal to diffusers' `ControlNetModel` and its pipelines: a copy of the UNet's
//! encoder that reads a control image and adds residuals to the UNet's skip connections and mid
//! block ([`crate::sd::unet::UNet2DConditionModel::forward_with_control`]).
//!
//! - [`ControlNet`]: a loaded network ([`load`], [`load_cached`]): from a diffusers folder
//!   (`config.json`, `diffusion_pytorch_model.safetensors`) or a single `.safetensors` (the
//!   original `control_v11*` names with or without `control_model.`, or diffusers names), in
//!   f32, f16 or bf16, for SD 1.x/2.x or SDXL ([`ControlNet::check_compatible`]).
//! - [`ControlSpec`]: one applied ControlNet (network, control image, optional inpaint mask,
//!   strength, start/end, guess mode); the pipelines take a list of them
//!   ([`crate::sd::pipeline::GenerateParams::controls`]) and sum their residuals as diffusers'
//!   `MultiControlNetModel`.

use std::sync::Arc;

use candle_core::{DType, Device, Tensor};

use super::model::{Family, SdModel};
use super::unet::AddedCond;
use crate::error::Result;
use crate::image::{Image, Mask};

pub mod config;
mod infer;
pub mod ldm;
pub mod load;
pub mod model;

pub use config::ControlNetConfig;
pub use load::{load, load_cached, load_with_config, ControlNetLoadOptions};
pub use model::ControlNetModel;

/// A loaded ControlNet.
pub struct ControlNet {
    pub model: ControlNetModel,
    pub config: ControlNetConfig,
    /// The UNet family it was trained for (SD 1.x, 2.x or SDXL), from its configuration.
    pub family: Family,
    pub dtype: DType,
    pub device: Device,
    /// What was loaded, for messages (the path).
    pub source: String,
}

impl std::fmt::Debug for ControlNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlNet")
            .field("source", &self.source)
            .field("family", &self.family)
            .field("dtype", &self.dtype)
            .finish()
    }
}

/// What a ControlNet adds to the UNet: one residual per skip connection (in the order the
/// down blocks push them, `conv_in` first) and one for the mid block's output.
#[derive(Clone, Debug)]
pub struct ControlResiduals {
    pub down: Vec<Tensor>,
    pub mid: Tensor,
}

impl ControlResiduals {
    /// The sum of two ControlNets' residuals (diffusers' `MultiControlNetModel`).
    pub fn add(&self, other: &ControlResiduals) -> candle_core::Result<ControlResiduals> {
        if self.down.len() != other.down.len() {
            candle_core::bail!(
                "ControlNets with {} and {} residuals cannot be stacked",
                self.down.len(),
                other.down.len()
            );
        }
        let down = self
            .down
            .iter()
            .zip(&other.down)
            .map(|(a, b)| a + b)
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(ControlResiduals {
            down,
            mid: (&self.mid + &other.mid)?,
        })
    }
}

impl ControlNet {
    /// diffusers' `ControlNetModel.forward`: `sample` is the scaled latent model input
    /// `[B, 4, h, w]`, `cond` the prepared control image `[B, 3, H, W]` (RGB in 0..1, −1 where
    /// an inpaint control marks pixels to fill), `scale` the conditioning scale already
    /// multiplied by the step's keep factor. Guess mode scales the residuals geometrically
    /// from 0.1 to 1 (`torch.logspace(-1, 0, n + 1)`).
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        sample: &Tensor,
        timestep: f64,
        encoder_hidden_states: &Tensor,
        added: Option<&AddedCond>,
        cond: &Tensor,
        scale: f64,
        guess_mode: bool,
    ) -> candle_core::Result<ControlResiduals> {
        self.model.forward(
            sample,
            timestep,
            encoder_hidden_states,
            added,
            cond,
            scale,
            guess_mode || self.config.global_pool_conditions,
        )
    }

    /// Refuses a ControlNet made for another architecture than `model`'s UNet, with one line
    /// naming both (e.g. "ControlNet x.safetensors is for SD 1.x (cross-attention 768) but the
    /// checkpoint is SDXL (2048)").
    pub fn check_compatible(&self, model: &SdModel) -> Result<()> {
        load::check_compatible(self, model)
    }
}

/// One ControlNet applied to a control image, as a ControlNet node outputs it.
#[derive(Clone, Debug)]
pub struct ControlSpec {
    pub net: Arc<ControlNet>,
    /// The control image as given (resized to the output size by the pipeline, Lanczos, as
    /// diffusers' control image processor).
    pub image: Arc<Image>,
    /// For inpainting ControlNets: pixels under the mask (≥ 0.5) become −1 in the control
    /// image (diffusers' `make_inpaint_condition`).
    pub mask: Option<Arc<Mask>>,
    /// `controlnet_conditioning_scale`.
    pub strength: f64,
    /// `control_guidance_start` / `control_guidance_end`, fractions of the steps.
    pub start: f64,
    pub end: f64,
    pub guess_mode: bool,
}

impl ControlSpec {
    /// diffusers' `controlnet_keep` for step `i` of `n`: 0 outside [start, end], else 1.
    pub fn keep(&self, i: usize, n: usize) -> f64 {
        let n = n.max(1) as f64;
        let (a, b) = (i as f64 / n, (i + 1) as f64 / n);
        if a < self.start || b > self.end {
            0.0
        } else {
            1.0
        }
    }
}
