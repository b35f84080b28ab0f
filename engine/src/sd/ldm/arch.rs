//! Architecture detection from tensor names and shapes.

use std::fmt;

use candle_core::Result;

use super::bail;

use crate::sd::ldm::header::Header;

/// LDM prefix of the UNet.
pub const UNET_PREFIX: &str = "model.diffusion_model.";
/// LDM prefixes of the VAE (diffusers accepts both).
pub const VAE_PREFIXES: &[&str] = &["first_stage_model.", "vae."];
/// SD1 text encoder (HF CLIP layout under this prefix).
pub const SD1_CLIP_PREFIX: &str = "cond_stage_model.transformer.";
/// SD2 text encoder (OpenCLIP layout).
pub const SD2_OPEN_CLIP_PREFIX: &str = "cond_stage_model.model.";
/// SDXL first text encoder (HF CLIP layout).
pub const SDXL_CLIP_PREFIX: &str = "conditioner.embedders.0.transformer.";
/// SDXL second text encoder (OpenCLIP layout).
pub const SDXL_OPEN_CLIP_PREFIX: &str = "conditioner.embedders.1.model.";
/// SDXL refiner's only text encoder (OpenCLIP layout at embedder 0).
pub const SDXL_REFINER_OPEN_CLIP_PREFIX: &str = "conditioner.embedders.0.model.";

/// A supported Stable Diffusion architecture.
///
/// SD2 v-prediction cannot be told from the weights, so both SD2 flavours report [`Arch::Sd2`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    /// Stable Diffusion 1.x (CLIP ViT-L text encoder, 4-channel UNet input).
    Sd1,
    /// SD1 inpainting (9-channel UNet input).
    Sd1Inpaint,
    /// Stable Diffusion 2.x (OpenCLIP ViT-H text encoder, linear transformer projections).
    Sd2,
    /// SD2 inpainting (9-channel UNet input).
    Sd2Inpaint,
    /// Stable Diffusion XL base (two text encoders, text_time embedding).
    Sdxl,
    /// SDXL inpainting (9-channel UNet input).
    SdxlInpaint,
}

impl Arch {
    /// Short name: "sd1", "sd1-inpaint", "sd2", "sd2-inpaint", "sdxl", "sdxl-inpaint".
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::Sd1 => "sd1",
            Arch::Sd1Inpaint => "sd1-inpaint",
            Arch::Sd2 => "sd2",
            Arch::Sd2Inpaint => "sd2-inpaint",
            Arch::Sdxl => "sdxl",
            Arch::SdxlInpaint => "sdxl-inpaint",
        }
    }

    /// Whether the UNet takes the 9-channel inpainting input.
    pub fn is_inpaint(self) -> bool {
        matches!(
            self,
            Arch::Sd1Inpaint | Arch::Sd2Inpaint | Arch::SdxlInpaint
        )
    }

    /// Whether this is an SDXL variant.
    pub fn is_sdxl(self) -> bool {
        matches!(self, Arch::Sdxl | Arch::SdxlInpaint)
    }

    /// Whether this is an SD2 variant.
    pub fn is_sd2(self) -> bool {
        matches!(self, Arch::Sd2 | Arch::Sd2Inpaint)
    }

    /// Default image size diffusers assumes for this family (used for `sample_size`).
    pub fn default_image_size(self) -> usize {
        match self {
            Arch::Sd1 | Arch::Sd1Inpaint | Arch::Sd2Inpaint => 512,
            Arch::Sd2 => 768,
            Arch::Sdxl | Arch::SdxlInpaint => 1024,
        }
    }

    /// The components a full checkpoint of this architecture has.
    pub fn components(self) -> &'static [Component] {
        if self.is_sdxl() {
            &[
                Component::Unet,
                Component::Vae,
                Component::TextEncoder,
                Component::TextEncoder2,
            ]
        } else {
            &[Component::Unet, Component::Vae, Component::TextEncoder]
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A pipeline component, named like the diffusers folder's subfolders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Component {
    /// `unet` (UNet2DConditionModel).
    Unet,
    /// `vae` (AutoencoderKL).
    Vae,
    /// `text_encoder` (CLIPTextModel).
    TextEncoder,
    /// `text_encoder_2` (CLIPTextModelWithProjection, SDXL only).
    TextEncoder2,
}

impl Component {
    /// All components, in pipeline order.
    pub const ALL: [Component; 4] = [
        Component::Unet,
        Component::Vae,
        Component::TextEncoder,
        Component::TextEncoder2,
    ];

    /// The diffusers subfolder name.
    pub fn as_str(self) -> &'static str {
        match self {
            Component::Unet => "unet",
            Component::Vae => "vae",
            Component::TextEncoder => "text_encoder",
            Component::TextEncoder2 => "text_encoder_2",
        }
    }

    /// Whether the component is a CLIP text encoder.
    pub fn is_text_encoder(self) -> bool {
        matches!(self, Component::TextEncoder | Component::TextEncoder2)
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a text encoder is laid out in the checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextLayout {
    /// Hugging Face CLIP names (`<prefix>text_model.*`).
    HfClip,
    /// OpenCLIP names (`<prefix>transformer.resblocks.N.*`, fused in_proj).
    OpenClip,
}

/// Where (and in which layout) `component` lives for `arch`.
pub fn text_encoder_location(
    arch: Arch,
    component: Component,
) -> Option<(&'static str, TextLayout)> {
    match (component, arch.is_sdxl(), arch.is_sd2()) {
        (Component::TextEncoder, true, _) => Some((SDXL_CLIP_PREFIX, TextLayout::HfClip)),
        (Component::TextEncoder2, true, _) => Some((SDXL_OPEN_CLIP_PREFIX, TextLayout::OpenClip)),
        (Component::TextEncoder, false, true) => Some((SD2_OPEN_CLIP_PREFIX, TextLayout::OpenClip)),
        (Component::TextEncoder, false, false) => Some((SD1_CLIP_PREFIX, TextLayout::HfClip)),
        _ => None,
    }
}

/// The VAE prefix used by this checkpoint, if it has a VAE.
pub fn vae_prefix(header: &Header) -> Option<&'static str> {
    VAE_PREFIXES.iter().copied().find(|p| header.has_prefix(p))
}

/// Detects the architecture from the tensor names/shapes.
///
/// Text-encoder layout decides the family (SDXL: `conditioner.embedders.1.model.*`; SD2:
/// `cond_stage_model.model.*`; SD1: `cond_stage_model.transformer.*`); UNet-only files fall
/// back to the UNet itself (`label_emb` → SDXL, cross-attention width 1024 → SD2, else SD1).
/// The UNet input width (4 or 9) decides inpainting. SDXL refiner checkpoints (OpenCLIP at
/// embedder 0 only) and other UNet input widths are refused.
pub fn detect_arch(header: &Header) -> Result<Arch> {
    let conv_in = format!("{UNET_PREFIX}input_blocks.0.0.weight");
    let Some(shape) = header.shape(&conv_in) else {
        bail!(
            "not a Stable Diffusion LDM checkpoint: no `{conv_in}` (UNet weights under `{UNET_PREFIX}`); \
             diffusers-format, SD3/Flux and other model families are not handled here"
        )
    };
    let in_channels = match shape.get(1) {
        Some(&c) => c,
        None => bail!("tensor `{conv_in}` has shape {shape:?}, expected a 4-D conv weight"),
    };
    let inpaint = match in_channels {
        4 => false,
        9 => true,
        c => bail!(
            "unsupported UNet with {c} input channels (`{conv_in}` shape {shape:?}); only 4 (txt2img) \
             and 9 (inpainting) are supported"
        ),
    };

    let has_te1_sdxl = header.has_prefix(SDXL_CLIP_PREFIX);
    let has_te2_sdxl = header.has_prefix(SDXL_OPEN_CLIP_PREFIX);
    let has_refiner_te = header.has_prefix(SDXL_REFINER_OPEN_CLIP_PREFIX);
    let family = if has_te2_sdxl || has_te1_sdxl {
        Family::Sdxl
    } else if has_refiner_te {
        bail!(
            "this looks like an SDXL refiner checkpoint (OpenCLIP text encoder at `{SDXL_REFINER_OPEN_CLIP_PREFIX}`); \
             the refiner is not supported"
        )
    } else if header.has_prefix(SD2_OPEN_CLIP_PREFIX) {
        Family::Sd2
    } else if header.has_prefix(SD1_CLIP_PREFIX) {
        Family::Sd1
    } else if header.has_prefix(&format!("{UNET_PREFIX}label_emb.")) {
        Family::Sdxl
    } else {
        let context = header
            .with_prefix(UNET_PREFIX)
            .find(|(n, s)| n.ends_with(".attn2.to_k.weight") && s.len() == 2)
            .map(|(_, s)| s[1]);
        match context {
            Some(1024) => Family::Sd2,
            _ => Family::Sd1,
        }
    };
    if family == Family::Sdxl && !header.has_prefix(&format!("{UNET_PREFIX}label_emb.")) {
        bail!(
            "SDXL text encoders found but the UNet has no `{UNET_PREFIX}label_emb.*` (text_time embedding); \
             unsupported checkpoint"
        )
    }
    Ok(match (family, inpaint) {
        (Family::Sd1, false) => Arch::Sd1,
        (Family::Sd1, true) => Arch::Sd1Inpaint,
        (Family::Sd2, false) => Arch::Sd2,
        (Family::Sd2, true) => Arch::Sd2Inpaint,
        (Family::Sdxl, false) => Arch::Sdxl,
        (Family::Sdxl, true) => Arch::SdxlInpaint,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Sd1,
    Sd2,
    Sdxl,
}
