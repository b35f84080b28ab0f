//! Diffusers `config.json` inference from LDM tensor shapes.

use candle_core::Result;

use super::bail;
use serde_json::{json, Map, Value};

/// What to do when a value cannot be inferred from the weights.
const CONFIG_HINT: &str =
    "give a diffusers folder with the configs: `generate --config DIR` or LoadCheckpoint's `config`";

use crate::sd::ldm::arch::{
    text_encoder_location, vae_prefix, Arch, Component, TextLayout, UNET_PREFIX,
};
use crate::sd::ldm::header::Header;
use crate::sd::ldm::mapping::{index_count, open_clip_served_layers, vae_up_blocks, UnetLayout};

/// Infers the diffusers config of `component` from the checkpoint's shapes.
///
/// Values the weights cannot tell are taken from `overrides` when present there (they are
/// also merged over the result at the end): UNet `attention_head_dim` (default: 8 heads for
/// SD1, `channels / 64` per block for SD2/SDXL), text encoder `num_attention_heads` (default
/// `hidden / 64`), `sample_size`, VAE `scaling_factor`, and anything else.
pub fn infer_config(
    header: &Header,
    arch: Arch,
    component: Component,
    overrides: &Map<String, Value>,
) -> Result<Value> {
    let mut cfg = match component {
        Component::Unet => unet_config(header, arch, overrides)?,
        Component::Vae => vae_config(header, arch)?,
        Component::TextEncoder | Component::TextEncoder2 => {
            clip_config(header, arch, component, overrides)?
        }
    };
    for (k, v) in overrides {
        cfg.insert(k.clone(), v.clone());
    }
    Ok(Value::Object(cfg))
}

fn vae_scale_factor(header: &Header) -> Result<usize> {
    let n = match vae_prefix(header) {
        Some(p) => vae_up_blocks(header, p)?,
        None => 4,
    }
    .max(1);
    match u32::try_from(n - 1)
        .ok()
        .and_then(|s| 1usize.checked_shl(s))
    {
        Some(f) => Ok(f),
        None => bail!("the VAE has {n} up blocks, too many for a scale factor"),
    }
}

fn unet_config(
    header: &Header,
    arch: Arch,
    overrides: &Map<String, Value>,
) -> Result<Map<String, Value>> {
    let u = |s: &str| format!("{UNET_PREFIX}{s}");
    let layout = UnetLayout::from_header(header)?;
    let per = layout.layers_per_block + 1;
    let n_blocks = layout.block_out_channels.len();
    let conv_in = header.require(&u("input_blocks.0.0.weight"), "UNet in_channels")?;
    if conv_in.len() != 4 {
        bail!(
            "tensor `{}` has shape {conv_in:?}, expected a 4-D conv weight",
            u("input_blocks.0.0.weight")
        )
    }
    let out_channels = header.dim(&u("out.2.weight"), 0, "UNet out_channels")?;
    let conv_out_kernel = header.dim(&u("out.2.weight"), 2, "UNet conv_out_kernel")?;

    // Attentions: cross-attention width, projection kind and depth per block.
    let mut cross_attention_dim = None;
    let mut linear = None;
    for (name, shape) in header.with_prefix(UNET_PREFIX) {
        if name.ends_with(".attn2.to_k.weight") && cross_attention_dim.is_none() {
            cross_attention_dim = shape.get(1).copied();
        }
        if name.ends_with(".proj_in.weight") && linear.is_none() {
            linear = Some(shape.len() == 2);
        }
    }
    let Some(cross_attention_dim) = cross_attention_dim else {
        bail!(
            "UNet has no cross-attention (`*.attn2.to_k.weight`); cannot infer cross_attention_dim"
        )
    };
    let use_linear_projection = linear.unwrap_or(false);

    let mut depth = Vec::with_capacity(n_blocks);
    for b in 0..n_blocks {
        let d = UnetLayout::transformer_depth(header, &format!("input_blocks.{}.1.", 1 + b * per))?;
        depth.push(d.max(1));
    }
    for b in 0..n_blocks {
        if layout.up_attention[b] {
            let d =
                UnetLayout::transformer_depth(header, &format!("output_blocks.{}.1.", b * per))?;
            let want = depth[n_blocks - 1 - b];
            if d != want {
                bail!(
                    "asymmetric UNet: up block {b} has transformer depth {d}, down block {} has {want}; not supported",
                    n_blocks - 1 - b
                )
            }
        }
    }
    let mid_depth = UnetLayout::transformer_depth(header, "middle_block.1.")?;
    let has_mid_attention = mid_depth > 0;
    if has_mid_attention && depth.last() != Some(&mid_depth) {
        // diffusers builds the mid block with transformer_layers_per_block[-1].
        bail!(
            "UNet mid block has transformer depth {mid_depth}, last down block has {:?}; not representable",
            depth.last()
        )
    }
    let transformer_layers_per_block = if depth.iter().all(|&d| d == depth[0]) {
        json!(depth[0])
    } else {
        json!(depth)
    };

    let attention_head_dim = match overrides.get("attention_head_dim") {
        Some(v) => v.clone(),
        None if !(arch.is_sd2() || arch.is_sdxl()) => json!(8),
        None => {
            let mut heads = Vec::with_capacity(n_blocks);
            for &c in &layout.block_out_channels {
                if c % 64 != 0 {
                    bail!(
                        "cannot infer attention heads for {c} channels (SD2/SDXL use head dim 64); \
                         {CONFIG_HINT}"
                    )
                }
                heads.push(c / 64);
            }
            json!(heads)
        }
    };

    let down_block_types: Vec<&str> = layout
        .down_attention
        .iter()
        .map(|&a| {
            if a {
                "CrossAttnDownBlock2D"
            } else {
                "DownBlock2D"
            }
        })
        .collect();
    let up_block_types: Vec<&str> = layout
        .up_attention
        .iter()
        .map(|&a| if a { "CrossAttnUpBlock2D" } else { "UpBlock2D" })
        .collect();

    let (addition_embed_type, addition_time_embed_dim, projection_dim) = if arch.is_sdxl() {
        let label = u("label_emb.0.0.weight");
        let adm_in = header.dim(&label, 1, "SDXL projection_class_embeddings_input_dim")?;
        let time_dim = match overrides
            .get("addition_time_embed_dim")
            .and_then(Value::as_u64)
        {
            Some(t) => t as usize,
            None => {
                let te2_proj = text_encoder_location(arch, Component::TextEncoder2)
                    .and_then(|(p, _)| header.shape(&format!("{p}text_projection")))
                    .and_then(|s| s.get(1).copied());
                // Real SDXL: 2816 = 1280 (pooled text embeds) + 6 x 256 (time ids).
                let pooled = te2_proj.unwrap_or(1280);
                if adm_in <= pooled || !(adm_in - pooled).is_multiple_of(6) {
                    bail!(
                        "cannot infer addition_time_embed_dim from `{label}` input {adm_in} and pooled width {pooled}; \
                         {CONFIG_HINT}"
                    )
                }
                (adm_in - pooled) / 6
            }
        };
        (json!("text_time"), json!(time_dim), json!(adm_in))
    } else {
        (Value::Null, Value::Null, Value::Null)
    };

    let sample_size = arch.default_image_size() / vae_scale_factor(header)?;
    let v = json!({
        "_class_name": "UNet2DConditionModel",
        "_diffusers_version": "0.42.1",
        "act_fn": "silu",
        "addition_embed_type": addition_embed_type,
        "addition_embed_type_num_heads": 64,
        "addition_time_embed_dim": addition_time_embed_dim,
        "attention_head_dim": attention_head_dim,
        "attention_type": "default",
        "block_out_channels": layout.block_out_channels,
        "center_input_sample": false,
        "class_embed_type": null,
        "class_embeddings_concat": false,
        "conv_in_kernel": conv_in[2],
        "conv_out_kernel": conv_out_kernel,
        "cross_attention_dim": cross_attention_dim,
        "cross_attention_norm": null,
        "down_block_types": down_block_types,
        "downsample_padding": 1,
        "dropout": 0.0,
        "dual_cross_attention": false,
        "encoder_hid_dim": null,
        "encoder_hid_dim_type": null,
        "flip_sin_to_cos": true,
        "freq_shift": 0,
        "in_channels": conv_in[1],
        "layers_per_block": layout.layers_per_block,
        "mid_block_only_cross_attention": null,
        "mid_block_scale_factor": 1,
        "mid_block_type": if has_mid_attention { "UNetMidBlock2DCrossAttn" } else { "UNetMidBlock2D" },
        "norm_eps": 1e-05,
        "norm_num_groups": 32,
        "num_attention_heads": null,
        "num_class_embeds": null,
        "only_cross_attention": false,
        "out_channels": out_channels,
        "projection_class_embeddings_input_dim": projection_dim,
        "resnet_out_scale_factor": 1.0,
        "resnet_skip_time_act": false,
        "resnet_time_scale_shift": "default",
        "reverse_transformer_layers_per_block": null,
        "sample_size": sample_size,
        "time_cond_proj_dim": null,
        "time_embedding_act_fn": null,
        "time_embedding_dim": null,
        "time_embedding_type": "positional",
        "timestep_post_act": null,
        "transformer_layers_per_block": transformer_layers_per_block,
        "up_block_types": up_block_types,
        "upcast_attention": false,
        "use_linear_projection": use_linear_projection,
    });
    as_object(v)
}

fn vae_config(header: &Header, arch: Arch) -> Result<Map<String, Value>> {
    let Some(p) = vae_prefix(header) else {
        bail!("checkpoint has no VAE (no `first_stage_model.*` tensors)")
    };
    let t = |s: &str| format!("{p}{s}");
    let n_blocks = vae_up_blocks(header, p)?;
    let mut block_out_channels = Vec::new();
    for i in 0.. {
        let name = t(&format!("encoder.down.{i}.block.0.conv2.weight"));
        if !header.contains(&name) {
            break;
        }
        block_out_channels.push(header.dim(&name, 0, "VAE block_out_channels")?);
    }
    if block_out_channels.is_empty() || block_out_channels.len() != n_blocks {
        bail!(
            "VAE encoder has {} down blocks but the decoder has {n_blocks} up blocks",
            block_out_channels.len()
        )
    }
    let lpb_prefix = t("encoder.down.0.block.");
    let layers_per_block = index_count(header, &lpb_prefix)?;
    let in_channels = header.dim(&t("encoder.conv_in.weight"), 1, "VAE in_channels")?;
    let out_channels = header.dim(&t("decoder.conv_out.weight"), 0, "VAE out_channels")?;
    let latent_channels = header.dim(&t("decoder.conv_in.weight"), 1, "VAE latent_channels")?;
    let scaling_factor = if arch.is_sdxl() { 0.13025 } else { 0.18215 };
    let v = json!({
        "_class_name": "AutoencoderKL",
        "_diffusers_version": "0.42.1",
        "act_fn": "silu",
        "block_out_channels": block_out_channels,
        "down_block_types": vec!["DownEncoderBlock2D"; n_blocks],
        "force_upcast": true,
        "in_channels": in_channels,
        "latent_channels": latent_channels,
        "latents_mean": null,
        "latents_std": null,
        "layers_per_block": layers_per_block,
        "mid_block_add_attention": header.has_prefix(&t("encoder.mid.attn_1.")),
        "norm_num_groups": 32,
        "out_channels": out_channels,
        "sample_size": arch.default_image_size(),
        "scaling_factor": scaling_factor,
        "shift_factor": null,
        "up_block_types": vec!["UpDecoderBlock2D"; n_blocks],
        "use_post_quant_conv": header.contains(&t("post_quant_conv.weight")),
        "use_quant_conv": header.contains(&t("quant_conv.weight")),
    });
    as_object(v)
}

fn clip_config(
    header: &Header,
    arch: Arch,
    component: Component,
    overrides: &Map<String, Value>,
) -> Result<Map<String, Value>> {
    let Some((prefix, layout)) = text_encoder_location(arch, component) else {
        bail!("{arch} checkpoints have no {component}")
    };
    let (token, position, fc1_of, layers) = match layout {
        TextLayout::HfClip => {
            let lp = format!("{prefix}text_model.encoder.layers.");
            let layers = index_count(header, &lp)?;
            (
                format!("{prefix}text_model.embeddings.token_embedding.weight"),
                format!("{prefix}text_model.embeddings.position_embedding.weight"),
                format!("{prefix}text_model.encoder.layers.0.mlp.fc1.weight"),
                layers,
            )
        }
        TextLayout::OpenClip => (
            format!("{prefix}token_embedding.weight"),
            format!("{prefix}positional_embedding"),
            format!("{prefix}transformer.resblocks.0.mlp.c_fc.weight"),
            open_clip_served_layers(header, arch, prefix)?,
        ),
    };
    let what = format!("{component} config");
    let vocab_size = header.dim(&token, 0, &what)?;
    let hidden_size = header.dim(&token, 1, &what)?;
    let max_position_embeddings = header.dim(&position, 0, &what)?;
    let intermediate_size = header.dim(&fc1_of, 0, &what)?;
    if layers == 0 {
        bail!("{component} has no transformer layers under `{prefix}`")
    }
    let num_attention_heads = match overrides.get("num_attention_heads") {
        Some(v) => v.clone(),
        None if hidden_size % 64 == 0 => json!(hidden_size / 64),
        None => bail!(
            "cannot infer {component} num_attention_heads for hidden size {hidden_size} (real CLIP models use \
             head dim 64); {CONFIG_HINT}"
        ),
    };
    let with_projection = component == Component::TextEncoder2;
    let projection_dim = match layout {
        TextLayout::OpenClip => header
            .shape(&format!("{prefix}text_projection"))
            .and_then(|s| s.get(1).copied())
            .unwrap_or(hidden_size),
        TextLayout::HfClip => hidden_size,
    };
    let (hidden_act, pad_token_id) = match layout {
        TextLayout::HfClip => ("quick_gelu", 49407),
        TextLayout::OpenClip => ("gelu", 0),
    };
    let class = if with_projection {
        "CLIPTextModelWithProjection"
    } else {
        "CLIPTextModel"
    };
    let v = json!({
        "architectures": [class],
        "attention_dropout": 0.0,
        "bos_token_id": 49406,
        "dropout": 0.0,
        "eos_token_id": 49407,
        "hidden_act": hidden_act,
        "hidden_size": hidden_size,
        "initializer_factor": 1.0,
        "initializer_range": 0.02,
        "intermediate_size": intermediate_size,
        "layer_norm_eps": 1e-05,
        "max_position_embeddings": max_position_embeddings,
        "model_type": "clip_text_model",
        "num_attention_heads": num_attention_heads,
        "num_hidden_layers": layers,
        "pad_token_id": pad_token_id,
        "projection_dim": projection_dim,
        "vocab_size": vocab_size,
    });
    as_object(v)
}

fn as_object(v: Value) -> Result<Map<String, Value>> {
    match v {
        Value::Object(m) => Ok(m),
        other => bail!("internal error: config is not an object: {other}"),
    }
}
