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

impl ControlNetConfig {
    /// Parses a ControlNet `config.json` (as a JSON value) and checks it (see [`Self::validate`]).
    pub fn from_value(v: serde_json::Value) -> candle_core::Result<Self> {
        let mut cfg: Self = serde_json::from_value(v)
            .map_err(|e| candle_core::Error::Msg(format!("invalid ControlNet config.json: {e}")))?;
        cfg.mirror_up_blocks();
        cfg.validate()?;
        Ok(cfg)
    }

    /// A ControlNet config has no up blocks; the UNet config it embeds gets the mirror of the
    /// down blocks so that [`UNetConfig::validate`] applies (the encoder never reads them).
    fn mirror_up_blocks(&mut self) {
        self.unet.up_block_types = self
            .unet
            .down_block_types
            .iter()
            .rev()
            .map(|t| {
                if t == "CrossAttnDownBlock2D" {
                    "CrossAttnUpBlock2D".to_string()
                } else {
                    "UpBlock2D".to_string()
                }
            })
            .collect();
    }

    /// Checks that every option is one this crate implements.
    pub fn validate(&self) -> candle_core::Result<()> {
        self.unet.validate()?;
        if self.conditioning_embedding_out_channels.is_empty() {
            candle_core::bail!(
                "ControlNet config option `conditioning_embedding_out_channels` is empty"
            );
        }
        if self.conditioning_channels == 0 {
            candle_core::bail!("ControlNet config option `conditioning_channels` is 0");
        }
        match self.controlnet_conditioning_channel_order.as_str() {
            "rgb" | "bgr" => Ok(()),
            other => candle_core::bail!(
                "unknown ControlNet config option `controlnet_conditioning_channel_order` = {other} (rgb or bgr)"
            ),
        }
    }

    /// The number of residuals the net gives (diffusers' `controlnet_down_blocks`): `conv_in`'s
    /// output, one per resnet, one per down-sampler.
    pub fn num_down_residuals(&self) -> candle_core::Result<usize> {
        let layers = self.unet.layers_per_block_list()?;
        let n = layers.len();
        Ok(1 + layers.iter().sum::<usize>() + n.saturating_sub(1))
    }
}
