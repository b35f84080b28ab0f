//! diffusers `config.json` parsing for [`UNetConfig`] and [`VaeConfig`].
//!
//! Missing keys take diffusers' constructor defaults. Options that this crate does not implement
//! are rejected by [`UNetConfig::validate`] / [`VaeConfig::validate`] with an error naming the
//! option.

use candle_core::{bail, Result};
use serde::Deserialize;
use std::path::Path;

/// A config value that diffusers accepts either as a single integer or as a per-block list.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum IntOrList {
    /// One value shared by every block.
    Int(usize),
    /// One value per block.
    List(Vec<usize>),
}

impl IntOrList {
    /// Expands to one value per block, checking the list length.
    pub fn per_block(&self, n: usize, name: &str) -> Result<Vec<usize>> {
        match self {
            IntOrList::Int(v) => Ok(vec![*v; n]),
            IntOrList::List(v) if v.len() == n => Ok(v.clone()),
            IntOrList::List(v) => {
                bail!(
                    "config option `{name}` has {} entries but there are {n} blocks",
                    v.len()
                )
            }
        }
    }
}

/// A boolean that diffusers accepts either as a single bool or as a per-block list.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum BoolOrList {
    /// One value for all blocks.
    Bool(bool),
    /// One value per block.
    List(Vec<bool>),
}

impl BoolOrList {
    fn any(&self) -> bool {
        match self {
            BoolOrList::Bool(b) => *b,
            BoolOrList::List(v) => v.iter().any(|b| *b),
        }
    }
}

fn d_true() -> bool {
    true
}
fn d_4() -> usize {
    4
}
fn d_3() -> usize {
    3
}
fn d_1() -> usize {
    1
}
fn d_one_f() -> f64 {
    1.0
}
fn d_silu() -> String {
    "silu".into()
}
fn d_default() -> String {
    "default".into()
}
fn d_norm_groups() -> Option<usize> {
    Some(32)
}
fn d_unet_down() -> Vec<String> {
    [
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "DownBlock2D",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}
fn d_unet_up() -> Vec<String> {
    [
        "UpBlock2D",
        "CrossAttnUpBlock2D",
        "CrossAttnUpBlock2D",
        "CrossAttnUpBlock2D",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}
fn d_unet_mid() -> Option<String> {
    Some("UNetMidBlock2DCrossAttn".into())
}
fn d_unet_channels() -> Vec<usize> {
    vec![320, 640, 1280, 1280]
}
fn d_layers_per_block() -> IntOrList {
    IntOrList::Int(2)
}
fn d_one_int() -> IntOrList {
    IntOrList::Int(1)
}
fn d_head_dim() -> IntOrList {
    IntOrList::Int(8)
}
fn d_cross_dim() -> serde_json::Value {
    serde_json::Value::from(1280)
}
fn d_norm_eps() -> f64 {
    1e-5
}
fn d_false_list() -> BoolOrList {
    BoolOrList::Bool(false)
}
fn d_positional() -> String {
    "positional".into()
}

/// diffusers `UNet2DConditionModel` configuration (unet/config.json).
#[derive(Debug, Clone, Deserialize)]
pub struct UNetConfig {
    /// Nominal latent size (informational).
    #[serde(default)]
    pub sample_size: Option<serde_json::Value>,
    /// Input latent channels (4, or 9 for inpainting).
    #[serde(default = "d_4")]
    pub in_channels: usize,
    /// Output channels.
    #[serde(default = "d_4")]
    pub out_channels: usize,
    /// Must be false.
    #[serde(default)]
    pub center_input_sample: bool,
    /// Sinusoidal embedding order: cos first when true.
    #[serde(default = "d_true")]
    pub flip_sin_to_cos: bool,
    /// `downscale_freq_shift` of the timestep embedding.
    #[serde(default)]
    pub freq_shift: f64,
    /// Down block class names.
    #[serde(default = "d_unet_down")]
    pub down_block_types: Vec<String>,
    /// Mid block class name (only `UNetMidBlock2DCrossAttn`).
    #[serde(default = "d_unet_mid")]
    pub mid_block_type: Option<String>,
    /// Up block class names.
    #[serde(default = "d_unet_up")]
    pub up_block_types: Vec<String>,
    /// Must be false.
    #[serde(default = "d_false_list")]
    pub only_cross_attention: BoolOrList,
    /// Channels per resolution level.
    #[serde(default = "d_unet_channels")]
    pub block_out_channels: Vec<usize>,
    /// Resnets per down block (up blocks have one more).
    #[serde(default = "d_layers_per_block")]
    pub layers_per_block: IntOrList,
    /// Padding of the down-sampling convolutions.
    #[serde(default = "d_1")]
    pub downsample_padding: usize,
    /// Output scale factor of the mid block resnets.
    #[serde(default = "d_one_f")]
    pub mid_block_scale_factor: f64,
    /// Activation; only `silu`.
    #[serde(default = "d_silu")]
    pub act_fn: String,
    /// GroupNorm group count.
    #[serde(default = "d_norm_groups")]
    pub norm_num_groups: Option<usize>,
    /// GroupNorm epsilon of the resnets and the output norm.
    #[serde(default = "d_norm_eps")]
    pub norm_eps: f64,
    /// Context feature size (int; per-block lists are rejected).
    #[serde(default = "d_cross_dim")]
    pub cross_attention_dim: serde_json::Value,
    /// Transformer depth per block.
    #[serde(default = "d_one_int")]
    pub transformer_layers_per_block: IntOrList,
    /// Unsupported (error if set).
    #[serde(default)]
    pub reverse_transformer_layers_per_block: Option<serde_json::Value>,
    /// Unsupported (error if set).
    #[serde(default)]
    pub encoder_hid_dim: Option<serde_json::Value>,
    /// Unsupported (error if set).
    #[serde(default)]
    pub encoder_hid_dim_type: Option<serde_json::Value>,
    /// diffusers' (mis-named) number of heads when `num_attention_heads` is absent.
    #[serde(default = "d_head_dim")]
    pub attention_head_dim: IntOrList,
    /// Number of attention heads (overrides `attention_head_dim`).
    #[serde(default)]
    pub num_attention_heads: Option<IntOrList>,
    /// Must be false.
    #[serde(default)]
    pub dual_cross_attention: bool,
    /// Linear (true) or 1x1 conv (false) `proj_in`/`proj_out`.
    #[serde(default)]
    pub use_linear_projection: bool,
    /// Only `null` is supported.
    #[serde(default)]
    pub class_embed_type: Option<String>,
    /// `null` or `"text_time"` (SDXL).
    #[serde(default)]
    pub addition_embed_type: Option<String>,
    /// Sinusoid size for each SDXL time id.
    #[serde(default)]
    pub addition_time_embed_dim: Option<usize>,
    /// Unsupported (error if set).
    #[serde(default)]
    pub num_class_embeds: Option<serde_json::Value>,
    /// Attention in f32 (always true here on CPU f32).
    #[serde(default)]
    pub upcast_attention: bool,
    /// Only `default`.
    #[serde(default = "d_default")]
    pub resnet_time_scale_shift: String,
    /// Must be false.
    #[serde(default)]
    pub resnet_skip_time_act: bool,
    /// Must be 1.0.
    #[serde(default = "d_one_f")]
    pub resnet_out_scale_factor: f64,
    /// Only `positional`.
    #[serde(default = "d_positional")]
    pub time_embedding_type: String,
    /// Time embedding width (default `4 * block_out_channels[0]`).
    #[serde(default)]
    pub time_embedding_dim: Option<usize>,
    /// Unsupported (error if set).
    #[serde(default)]
    pub time_embedding_act_fn: Option<String>,
    /// Unsupported (error if set).
    #[serde(default)]
    pub timestep_post_act: Option<String>,
    /// Unsupported (error if set; LCM-style guidance embedding).
    #[serde(default)]
    pub time_cond_proj_dim: Option<usize>,
    /// Kernel size of `conv_in`.
    #[serde(default = "d_3")]
    pub conv_in_kernel: usize,
    /// Kernel size of `conv_out`.
    #[serde(default = "d_3")]
    pub conv_out_kernel: usize,
    /// Input width of `add_embedding` (SDXL).
    #[serde(default)]
    pub projection_class_embeddings_input_dim: Option<usize>,
    /// Only `default`.
    #[serde(default = "d_default")]
    pub attention_type: String,
    /// Must be false.
    #[serde(default)]
    pub class_embeddings_concat: bool,
    /// Must be null/false.
    #[serde(default)]
    pub mid_block_only_cross_attention: Option<bool>,
    /// Must be null.
    #[serde(default)]
    pub cross_attention_norm: Option<String>,
}

impl UNetConfig {
    /// Parses a diffusers unet/config.json text.
    pub fn from_json_str(s: &str) -> Result<Self> {
        let cfg: Self = serde_json::from_str(s)
            .map_err(|e| candle_core::Error::Msg(format!("invalid UNet config.json: {e}")))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads and parses a diffusers unet/config.json file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let s = std::fs::read_to_string(path)
            .map_err(|e| candle_core::Error::Msg(format!("cannot read {}: {e}", path.display())))?;
        Self::from_json_str(&s)
    }

    /// Number of resolution levels.
    pub fn num_blocks(&self) -> usize {
        self.block_out_channels.len()
    }

    /// Heads per block (diffusers: `num_attention_heads or attention_head_dim`).
    pub fn heads_per_block(&self) -> Result<Vec<usize>> {
        let n = self.num_blocks();
        match &self.num_attention_heads {
            Some(h) => h.per_block(n, "num_attention_heads"),
            None => self.attention_head_dim.per_block(n, "attention_head_dim"),
        }
    }

    /// Resnets per down block.
    pub fn layers_per_block_list(&self) -> Result<Vec<usize>> {
        self.layers_per_block
            .per_block(self.num_blocks(), "layers_per_block")
    }

    /// Transformer depth per down block.
    pub fn transformer_layers_list(&self) -> Result<Vec<usize>> {
        self.transformer_layers_per_block
            .per_block(self.num_blocks(), "transformer_layers_per_block")
    }

    /// The (single integer) context feature size.
    pub fn cross_attention_dim(&self) -> Result<usize> {
        match self.cross_attention_dim.as_u64() {
            Some(v) => Ok(v as usize),
            None => bail!(
                "unsupported UNet config option `cross_attention_dim` = {} (only an integer is supported)",
                self.cross_attention_dim
            ),
        }
    }

    /// GroupNorm group count (must be set).
    pub fn groups(&self) -> Result<usize> {
        match self.norm_num_groups {
            Some(g) => Ok(g),
            None => bail!("unsupported UNet config option `norm_num_groups` = null"),
        }
    }

    /// Width of the time embedding.
    pub fn time_embed_dim(&self) -> Result<usize> {
        match (self.time_embedding_dim, self.block_out_channels.first()) {
            (Some(d), _) => Ok(d),
            (None, Some(c)) => Ok(c * 4),
            (None, None) => bail!("UNet config option `block_out_channels` is empty"),
        }
    }

    /// Checks that every option is one this crate implements.
    pub fn validate(&self) -> Result<()> {
        let n = self.num_blocks();
        if n == 0 {
            bail!("UNet config option `block_out_channels` is empty");
        }
        if self.down_block_types.len() != n || self.up_block_types.len() != n {
            bail!(
                "UNet config options `down_block_types`/`up_block_types` must have {n} entries (len of `block_out_channels`)"
            );
        }
        for t in &self.down_block_types {
            if t != "CrossAttnDownBlock2D" && t != "DownBlock2D" {
                bail!("unsupported UNet config option `down_block_types` entry `{t}`");
            }
        }
        for t in &self.up_block_types {
            if t != "CrossAttnUpBlock2D" && t != "UpBlock2D" {
                bail!("unsupported UNet config option `up_block_types` entry `{t}`");
            }
        }
        if self.mid_block_type.as_deref() != Some("UNetMidBlock2DCrossAttn") {
            bail!(
                "unsupported UNet config option `mid_block_type` = {:?}",
                self.mid_block_type
            );
        }
        if self.center_input_sample {
            bail!("unsupported UNet config option `center_input_sample` = true");
        }
        if self.only_cross_attention.any() {
            bail!("unsupported UNet config option `only_cross_attention` = true");
        }
        if self.dual_cross_attention {
            bail!("unsupported UNet config option `dual_cross_attention` = true");
        }
        if self.act_fn != "silu" {
            bail!("unsupported UNet config option `act_fn` = {}", self.act_fn);
        }
        if self.resnet_time_scale_shift != "default" {
            bail!(
                "unsupported UNet config option `resnet_time_scale_shift` = {}",
                self.resnet_time_scale_shift
            );
        }
        if self.resnet_skip_time_act {
            bail!("unsupported UNet config option `resnet_skip_time_act` = true");
        }
        if self.resnet_out_scale_factor != 1.0 {
            bail!(
                "unsupported UNet config option `resnet_out_scale_factor` = {}",
                self.resnet_out_scale_factor
            );
        }
        if self.time_embedding_type != "positional" {
            bail!(
                "unsupported UNet config option `time_embedding_type` = {}",
                self.time_embedding_type
            );
        }
        if let Some(v) = &self.time_embedding_act_fn {
            bail!("unsupported UNet config option `time_embedding_act_fn` = {v}");
        }
        if let Some(v) = &self.timestep_post_act {
            bail!("unsupported UNet config option `timestep_post_act` = {v}");
        }
        if let Some(v) = self.time_cond_proj_dim {
            bail!("unsupported UNet config option `time_cond_proj_dim` = {v}");
        }
        if let Some(v) = &self.class_embed_type {
            bail!("unsupported UNet config option `class_embed_type` = {v}");
        }
        if let Some(v) = &self.num_class_embeds {
            bail!("unsupported UNet config option `num_class_embeds` = {v}");
        }
        if let Some(v) = &self.encoder_hid_dim {
            bail!("unsupported UNet config option `encoder_hid_dim` = {v}");
        }
        if let Some(v) = &self.encoder_hid_dim_type {
            bail!("unsupported UNet config option `encoder_hid_dim_type` = {v}");
        }
        if let Some(v) = &self.reverse_transformer_layers_per_block {
            bail!("unsupported UNet config option `reverse_transformer_layers_per_block` = {v}");
        }
        if self.attention_type != "default" {
            bail!(
                "unsupported UNet config option `attention_type` = {}",
                self.attention_type
            );
        }
        if self.class_embeddings_concat {
            bail!("unsupported UNet config option `class_embeddings_concat` = true");
        }
        if self.mid_block_only_cross_attention == Some(true) {
            bail!("unsupported UNet config option `mid_block_only_cross_attention` = true");
        }
        if let Some(v) = &self.cross_attention_norm {
            bail!("unsupported UNet config option `cross_attention_norm` = {v}");
        }
        if self.conv_in_kernel.is_multiple_of(2) || self.conv_out_kernel.is_multiple_of(2) {
            bail!(
                "unsupported UNet config option `conv_in_kernel`/`conv_out_kernel` (must be odd)"
            );
        }
        match self.addition_embed_type.as_deref() {
            None => {}
            Some("text_time") => {
                if self.addition_time_embed_dim.is_none() {
                    bail!("UNet config: `addition_embed_type` text_time needs `addition_time_embed_dim`");
                }
                if self.projection_class_embeddings_input_dim.is_none() {
                    bail!(
                        "UNet config: `addition_embed_type` text_time needs `projection_class_embeddings_input_dim`"
                    );
                }
            }
            Some(v) => bail!("unsupported UNet config option `addition_embed_type` = {v}"),
        }
        self.cross_attention_dim()?;
        self.groups()?;
        let heads = self.heads_per_block()?;
        for (c, h) in self.block_out_channels.iter().zip(heads.iter()) {
            if *h == 0 || c % h != 0 {
                bail!("UNet config: block channels {c} not divisible by {h} attention heads");
            }
        }
        self.layers_per_block_list()?;
        self.transformer_layers_list()?;
        Ok(())
    }
}

fn d_vae_down() -> Vec<String> {
    vec!["DownEncoderBlock2D".into()]
}
fn d_vae_up() -> Vec<String> {
    vec!["UpDecoderBlock2D".into()]
}
fn d_vae_channels() -> Vec<usize> {
    vec![64]
}
fn d_vae_groups() -> usize {
    32
}
fn d_vae_sample() -> IntOrList {
    IntOrList::Int(32)
}
fn d_scaling() -> f64 {
    0.18215
}

/// diffusers `AutoencoderKL` configuration (vae/config.json).
#[derive(Debug, Clone, Deserialize)]
pub struct VaeConfig {
    /// Image channels in.
    #[serde(default = "d_3")]
    pub in_channels: usize,
    /// Image channels out.
    #[serde(default = "d_3")]
    pub out_channels: usize,
    /// Encoder block class names (only `DownEncoderBlock2D`).
    #[serde(default = "d_vae_down")]
    pub down_block_types: Vec<String>,
    /// Decoder block class names (only `UpDecoderBlock2D`).
    #[serde(default = "d_vae_up")]
    pub up_block_types: Vec<String>,
    /// Channels per resolution level.
    #[serde(default = "d_vae_channels")]
    pub block_out_channels: Vec<usize>,
    /// Resnets per encoder block (decoder blocks have one more).
    #[serde(default = "d_1")]
    pub layers_per_block: usize,
    /// Activation; only `silu`.
    #[serde(default = "d_silu")]
    pub act_fn: String,
    /// Latent channels.
    #[serde(default = "d_4")]
    pub latent_channels: usize,
    /// GroupNorm group count.
    #[serde(default = "d_vae_groups")]
    pub norm_num_groups: usize,
    /// Image tile size used by tiling (int or [h, w]; the first entry is used like diffusers).
    #[serde(default = "d_vae_sample")]
    pub sample_size: IntOrList,
    /// Latent scaling factor (applied by the caller).
    #[serde(default = "d_scaling")]
    pub scaling_factor: f64,
    /// Latent shift (applied by the caller; null for SD/SDXL).
    #[serde(default)]
    pub shift_factor: Option<f64>,
    /// Per-channel latent means (informational).
    #[serde(default)]
    pub latents_mean: Option<Vec<f64>>,
    /// Per-channel latent stds (informational).
    #[serde(default)]
    pub latents_std: Option<Vec<f64>>,
    /// Whether diffusers runs this VAE in f32 when the pipeline is f16.
    #[serde(default = "d_true")]
    pub force_upcast: bool,
    /// Whether `quant_conv` exists.
    #[serde(default = "d_true")]
    pub use_quant_conv: bool,
    /// Whether `post_quant_conv` exists.
    #[serde(default = "d_true")]
    pub use_post_quant_conv: bool,
    /// Whether the mid blocks have self-attention.
    #[serde(default = "d_true")]
    pub mid_block_add_attention: bool,
}

impl VaeConfig {
    /// Parses a diffusers vae/config.json text.
    pub fn from_json_str(s: &str) -> Result<Self> {
        let cfg: Self = serde_json::from_str(s)
            .map_err(|e| candle_core::Error::Msg(format!("invalid VAE config.json: {e}")))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads and parses a diffusers vae/config.json file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let s = std::fs::read_to_string(path)
            .map_err(|e| candle_core::Error::Msg(format!("cannot read {}: {e}", path.display())))?;
        Self::from_json_str(&s)
    }

    /// Tile size in image pixels (diffusers `tile_sample_min_size`).
    pub fn tile_sample_size(&self) -> Result<usize> {
        match &self.sample_size {
            IntOrList::Int(v) => Ok(*v),
            IntOrList::List(v) => match v.first() {
                Some(v) => Ok(*v),
                None => bail!("VAE config option `sample_size` is an empty list"),
            },
        }
    }

    /// Spatial down-scaling factor image → latent (`2^(levels-1)`).
    pub fn scale_factor(&self) -> usize {
        1usize << self.block_out_channels.len().saturating_sub(1)
    }

    /// Checks that every option is one this crate implements.
    pub fn validate(&self) -> Result<()> {
        let n = self.block_out_channels.len();
        if n == 0 {
            bail!("VAE config option `block_out_channels` is empty");
        }
        if self.down_block_types.len() != n || self.up_block_types.len() != n {
            bail!("VAE config options `down_block_types`/`up_block_types` must have {n} entries");
        }
        if let Some(t) = self
            .down_block_types
            .iter()
            .find(|t| *t != "DownEncoderBlock2D")
        {
            bail!("unsupported VAE config option `down_block_types` entry `{t}`");
        }
        if let Some(t) = self
            .up_block_types
            .iter()
            .find(|t| *t != "UpDecoderBlock2D")
        {
            bail!("unsupported VAE config option `up_block_types` entry `{t}`");
        }
        if self.act_fn != "silu" {
            bail!("unsupported VAE config option `act_fn` = {}", self.act_fn);
        }
        self.tile_sample_size()?;
        Ok(())
    }
}
