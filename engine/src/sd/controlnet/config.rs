//! diffusers' `ControlNetModel` configuration (`config.json`): the UNet encoder's fields plus the
//! conditioning embedding's.

use serde::Deserialize;

use crate::sd::config::UNetConfig;

/// `ControlNetModel`'s `config.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct ControlNetConfig {
    /// The fields it shares with the UNet (block types, channels, heads, cross-attention width,
    /// SDXL's addition embedding…).
    #[serde(flatten)]
    pub unet: UNetConfig,
    /// Channels of `controlnet_cond_embedding`'s blocks.
    #[serde(default = "d_cond_channels")]
    pub conditioning_embedding_out_channels: Vec<usize>,
    /// Channels of the control image (3).
    #[serde(default = "d_3")]
    pub conditioning_channels: usize,
    /// Shuffle ControlNets pool their residuals (and always run in guess mode).
    #[serde(default)]
    pub global_pool_conditions: bool,
    /// `rgb` (or `bgr`: the control image's channels are flipped first).
    #[serde(default = "d_rgb")]
    pub controlnet_conditioning_channel_order: String,
}

fn d_cond_channels() -> Vec<usize> {
    vec![16, 32, 96, 256]
}

fn d_3() -> usize {
    3
}

fn d_rgb() -> String {
    "rgb".into()
}
