//! Diffusers-name → LDM-tensor maps (the inverse of diffusers' `single_file_utils` converters).

use std::collections::BTreeMap;

use candle_core::Result;

use super::bail;

use crate::sd::ldm::arch::{
    text_encoder_location, vae_prefix, Arch, Component, TextLayout, UNET_PREFIX,
};
use crate::sd::ldm::header::Header;

/// How the LDM tensor becomes the diffusers tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transform {
    /// Served as stored.
    Identity,
    /// Rows `start..start + len` along dim 0 (q/k/v out of OpenCLIP's fused `in_proj`).
    Narrow {
        /// First row.
        start: usize,
        /// Number of rows.
        len: usize,
    },
    /// Same data, new shape (VAE attention 1x1 conv `[C, C, 1, 1]` → linear `[C, C]`).
    Reshape,
    /// 2-D transpose (OpenCLIP `text_projection` `[hidden, proj]` → linear `[proj, hidden]`).
    Transpose,
}

/// Where one diffusers tensor comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Full tensor name in the checkpoint.
    pub ldm_name: String,
    /// Transform applied after loading.
    pub transform: Transform,
    /// Shape of the tensor as stored in the checkpoint.
    pub ldm_shape: Vec<usize>,
    /// Shape of the diffusers tensor (after the transform).
    pub shape: Vec<usize>,
}

/// Diffusers parameter name → source, for one component.
pub type TensorMap = BTreeMap<String, Source>;

fn identity(name: &str, shape: &[usize]) -> Source {
    Source {
        ldm_name: name.to_string(),
        transform: Transform::Identity,
        ldm_shape: shape.to_vec(),
        shape: shape.to_vec(),
    }
}

/// The largest block or layer index a tensor name may carry (real checkpoints stay below 100);
/// larger ones are refused with the tensor named, so counts derived from them cannot overflow.
pub const MAX_INDEX: usize = 10_000;

/// The indices `N` of the names under `prefix` that continue with `N.`, in name order, with an
/// error naming the first tensor whose index is above [`MAX_INDEX`].
fn indices(header: &Header, prefix: &str) -> Result<Vec<usize>> {
    let mut v = Vec::new();
    for (n, _) in header.with_prefix(prefix) {
        if let Some((i, _)) = split_index(&n[prefix.len()..]) {
            if i > MAX_INDEX {
                bail!("tensor `{n}`: index {i} is out of range (at most {MAX_INDEX})")
            }
            v.push(i);
        }
    }
    Ok(v)
}

/// `max index + 1` over the names under `prefix` (0 when none); see [`indices`].
pub(crate) fn index_count(header: &Header, prefix: &str) -> Result<usize> {
    Ok(indices(header, prefix)?
        .into_iter()
        .max()
        .map_or(0, |m| m + 1))
}

/// Splits `"12.rest"` into `(12, "rest")`.
fn split_index(s: &str) -> Option<(usize, &str)> {
    let (head, rest) = s.split_once('.')?;
    Some((head.parse().ok()?, rest))
}

/// Renames the leading sub-module of `rest` according to `table` (`(from., to.)` pairs).
fn rename_sub(rest: &str, table: &[(&str, &str)]) -> Option<String> {
    table
        .iter()
        .find(|(from, _)| rest.starts_with(from))
        .map(|(from, to)| format!("{to}{}", &rest[from.len()..]))
}

/// LDM ResBlock sub-modules → diffusers ResnetBlock2D (UNet).
const UNET_RESNET: &[(&str, &str)] = &[
    ("in_layers.0.", "norm1."),
    ("in_layers.2.", "conv1."),
    ("emb_layers.1.", "time_emb_proj."),
    ("out_layers.0.", "norm2."),
    ("out_layers.3.", "conv2."),
    ("skip_connection.", "conv_shortcut."),
];

/// LDM ResnetBlock sub-modules → diffusers ResnetBlock2D (VAE).
const VAE_RESNET: &[(&str, &str)] = &[
    ("norm1.", "norm1."),
    ("conv1.", "conv1."),
    ("norm2.", "norm2."),
    ("conv2.", "conv2."),
    ("nin_shortcut.", "conv_shortcut."),
];

/// LDM AttnBlock → diffusers Attention (VAE mid block).
const VAE_ATTN: &[(&str, &str)] = &[
    ("norm.", "group_norm."),
    ("q.", "to_q."),
    ("k.", "to_k."),
    ("v.", "to_v."),
    ("proj_out.", "to_out.0."),
];

/// Block structure of an LDM UNet, read from its tensor names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnetLayout {
    /// ResBlocks per down block (`layers_per_block`).
    pub layers_per_block: usize,
    /// Output channels of each down block.
    pub block_out_channels: Vec<usize>,
    /// Whether each down block (diffusers order) has attentions.
    pub down_attention: Vec<bool>,
    /// Whether each up block (diffusers order) has attentions.
    pub up_attention: Vec<bool>,
}

impl UnetLayout {
    /// Reads the layout from the `model.diffusion_model.*` names.
    pub fn from_header(header: &Header) -> Result<Self> {
        let input_idx = block_indices(header, "input_blocks.")?;
        let n_out = index_count(header, &format!("{UNET_PREFIX}output_blocks."))?;
        let Some(&max_in) = input_idx.iter().max() else {
            bail!("UNet has no `{UNET_PREFIX}input_blocks.*` tensors")
        };
        if max_in == 0 {
            bail!("UNet has only `input_blocks.0` (conv_in); cannot read its block structure")
        }
        // The first downsampler (`input_blocks.N.0.op`) sits right after layers_per_block resnets.
        let first_op = input_idx
            .iter()
            .copied()
            .find(|i| header.contains(&format!("{UNET_PREFIX}input_blocks.{i}.0.op.weight")));
        let layers_per_block = match first_op {
            Some(0) => bail!(
                "tensor `{UNET_PREFIX}input_blocks.0.0.op.weight`: input block 0 is conv_in, \
                 it cannot be a downsampler"
            ),
            Some(i) => i - 1,
            None => max_in,
        };
        // Indices are at most MAX_INDEX (block_indices), so these sums cannot overflow.
        let per = layers_per_block + 1;
        if layers_per_block == 0 || (max_in + 1) % per != 0 {
            bail!(
                "UNet input blocks do not form a regular pattern (last input block {max_in}, \
                 first downsampler {first_op:?})"
            )
        }
        let n_blocks = (max_in + 1) / per;
        if n_out != n_blocks * per {
            bail!(
                "UNet has {n_out} output blocks, expected {} for {n_blocks} blocks of {layers_per_block} layers",
                n_blocks * per
            )
        }
        let mut block_out_channels = Vec::new();
        let mut down_attention = Vec::new();
        let mut up_attention = Vec::new();
        for b in 0..n_blocks {
            let first = 1 + b * per;
            let name = format!("{UNET_PREFIX}input_blocks.{first}.0.out_layers.3.weight");
            block_out_channels.push(header.dim(&name, 0, "UNet block_out_channels")?);
            down_attention.push(has_attention(header, &format!("input_blocks.{first}.1.")));
            up_attention.push(has_attention(
                header,
                &format!("output_blocks.{}.1.", b * per),
            ));
        }
        Ok(Self {
            layers_per_block,
            block_out_channels,
            down_attention,
            up_attention,
        })
    }

    /// Number of transformer blocks in the attention at `ldm_path` (e.g. `input_blocks.1.1.`).
    pub fn transformer_depth(header: &Header, ldm_path: &str) -> Result<usize> {
        index_count(
            header,
            &format!("{UNET_PREFIX}{ldm_path}transformer_blocks."),
        )
    }
}

fn has_attention(header: &Header, ldm_path: &str) -> bool {
    header.contains(&format!("{UNET_PREFIX}{ldm_path}proj_in.weight"))
}

/// The block indices under `model.diffusion_model.{kind}` (see [`indices`]).
fn block_indices(header: &Header, kind: &str) -> Result<Vec<usize>> {
    let mut v = indices(header, &format!("{UNET_PREFIX}{kind}"))?;
    v.dedup();
    Ok(v)
}

/// Diffusers name of one UNet tensor given its LDM name without prefix, or `None` if unknown.
fn unet_name(key: &str, layout: &UnetLayout, arch: Arch) -> Option<String> {
    let per = layout.layers_per_block + 1;
    const SIMPLE: &[(&str, &str)] = &[
        ("time_embed.0.", "time_embedding.linear_1."),
        ("time_embed.2.", "time_embedding.linear_2."),
        ("input_blocks.0.0.", "conv_in."),
        ("out.0.", "conv_norm_out."),
        ("out.2.", "conv_out."),
    ];
    if let Some(n) = rename_sub(key, SIMPLE) {
        return Some(n);
    }
    if let Some(rest) = key.strip_prefix("label_emb.0.") {
        if !arch.is_sdxl() {
            return None;
        }
        return rename_sub(
            rest,
            &[
                ("0.", "add_embedding.linear_1."),
                ("2.", "add_embedding.linear_2."),
            ],
        );
    }
    if let Some(rest) = key.strip_prefix("input_blocks.") {
        let (i, rest) = split_index(rest)?;
        let (j, rest) = split_index(rest)?;
        if i == 0 {
            return None;
        }
        let (b, l) = ((i - 1) / per, (i - 1) % per);
        if l == layout.layers_per_block {
            let conv = rest.strip_prefix("op.")?;
            return (j == 0).then(|| format!("down_blocks.{b}.downsamplers.0.conv.{conv}"));
        }
        return match j {
            0 => Some(format!(
                "down_blocks.{b}.resnets.{l}.{}",
                rename_sub(rest, UNET_RESNET)?
            )),
            1 => Some(format!("down_blocks.{b}.attentions.{l}.{rest}")),
            _ => None,
        };
    }
    if let Some(rest) = key.strip_prefix("middle_block.") {
        let (k, rest) = split_index(rest)?;
        return if k % 2 == 0 {
            Some(format!(
                "mid_block.resnets.{}.{}",
                k / 2,
                rename_sub(rest, UNET_RESNET)?
            ))
        } else {
            Some(format!("mid_block.attentions.{}.{rest}", k / 2))
        };
    }
    if let Some(rest) = key.strip_prefix("output_blocks.") {
        let (i, rest) = split_index(rest)?;
        let (j, rest) = split_index(rest)?;
        let (b, l) = (i / per, i % per);
        if let Some(conv) = rest.strip_prefix("conv.") {
            if j >= 1 && l == layout.layers_per_block {
                return Some(format!("up_blocks.{b}.upsamplers.0.conv.{conv}"));
            }
        }
        return match j {
            0 => Some(format!(
                "up_blocks.{b}.resnets.{l}.{}",
                rename_sub(rest, UNET_RESNET)?
            )),
            1 => Some(format!("up_blocks.{b}.attentions.{l}.{rest}")),
            _ => None,
        };
    }
    None
}

/// Diffusers name of one LDM UNet *encoder* tensor given its name without prefix
/// (`time_embed.*`, `label_emb.0.*` when `sdxl`, `input_blocks.*`, `middle_block.*`), or
/// `None`: the names a ControlNet (`control_model.*`) shares with the UNet it was copied from.
pub(crate) fn unet_encoder_name(key: &str, layers_per_block: usize, sdxl: bool) -> Option<String> {
    let encoder = [
        "time_embed.",
        "label_emb.",
        "input_blocks.",
        "middle_block.",
    ];
    if !encoder.iter().any(|p| key.starts_with(p)) {
        return None;
    }
    let layout = UnetLayout {
        layers_per_block,
        block_out_channels: Vec::new(),
        down_attention: Vec::new(),
        up_attention: Vec::new(),
    };
    unet_name(key, &layout, if sdxl { Arch::Sdxl } else { Arch::Sd1 })
}

/// Diffusers name of one VAE tensor given its LDM name without prefix (and whether it is a
/// mid-block attention weight that may need reshaping).
fn vae_name(key: &str, n_up: usize) -> Option<(String, bool)> {
    for side in ["encoder", "decoder"] {
        let Some(rest) = key.strip_prefix(side).and_then(|r| r.strip_prefix('.')) else {
            continue;
        };
        const SIMPLE: &[(&str, &str)] = &[
            ("conv_in.", "conv_in."),
            ("conv_out.", "conv_out."),
            ("norm_out.", "conv_norm_out."),
        ];
        if let Some(n) = rename_sub(rest, SIMPLE) {
            return Some((format!("{side}.{n}"), false));
        }
        if let Some(mid) = rest.strip_prefix("mid.") {
            if let Some(r) = mid.strip_prefix("attn_1.") {
                return Some((
                    format!("{side}.mid_block.attentions.0.{}", rename_sub(r, VAE_ATTN)?),
                    true,
                ));
            }
            let (k, r) = mid.strip_prefix("block_").and_then(split_index)?;
            if k == 0 {
                return None;
            }
            return Some((
                format!(
                    "{side}.mid_block.resnets.{}.{}",
                    k - 1,
                    rename_sub(r, VAE_RESNET)?
                ),
                false,
            ));
        }
        if side == "encoder" {
            let (i, r) = rest.strip_prefix("down.").and_then(split_index)?;
            if let Some(conv) = r.strip_prefix("downsample.conv.") {
                return Some((
                    format!("encoder.down_blocks.{i}.downsamplers.0.conv.{conv}"),
                    false,
                ));
            }
            let (j, r) = r.strip_prefix("block.").and_then(split_index)?;
            return Some((
                format!(
                    "encoder.down_blocks.{i}.resnets.{j}.{}",
                    rename_sub(r, VAE_RESNET)?
                ),
                false,
            ));
        }
        let (k, r) = rest.strip_prefix("up.").and_then(split_index)?;
        let i = n_up.checked_sub(k.checked_add(1)?)?;
        if let Some(conv) = r.strip_prefix("upsample.conv.") {
            return Some((
                format!("decoder.up_blocks.{i}.upsamplers.0.conv.{conv}"),
                false,
            ));
        }
        let (j, r) = r.strip_prefix("block.").and_then(split_index)?;
        return Some((
            format!(
                "decoder.up_blocks.{i}.resnets.{j}.{}",
                rename_sub(r, VAE_RESNET)?
            ),
            false,
        ));
    }
    match key {
        k if k.starts_with("quant_conv.") || k.starts_with("post_quant_conv.") => {
            Some((k.to_string(), false))
        }
        _ => None,
    }
}

/// Number of up blocks of the LDM VAE decoder (`decoder.up.N`).
pub(crate) fn vae_up_blocks(header: &Header, prefix: &str) -> Result<usize> {
    index_count(header, &format!("{prefix}decoder.up."))
}

/// Number of OpenCLIP resblocks under `prefix`.
pub(crate) fn open_clip_layers(header: &Header, prefix: &str) -> Result<usize> {
    index_count(header, &format!("{prefix}transformer.resblocks."))
}

/// Number of OpenCLIP layers served as diffusers layers: like diffusers, SD2's 24th layer
/// (`resblocks.23`) is dropped because SD2 uses the penultimate layer's output.
pub(crate) fn open_clip_served_layers(header: &Header, arch: Arch, prefix: &str) -> Result<usize> {
    let n = open_clip_layers(header, prefix)?;
    Ok(if arch.is_sd2() && n == 24 { 23 } else { n })
}

fn open_clip_map(
    header: &Header,
    arch: Arch,
    prefix: &str,
    with_projection: bool,
) -> Result<(TensorMap, Vec<String>)> {
    let token = format!("{prefix}token_embedding.weight");
    let hidden = header.dim(&token, 1, "OpenCLIP hidden size")?;
    let served_layers = open_clip_served_layers(header, arch, prefix)?;
    let mut map = TensorMap::new();
    let mut unmapped = Vec::new();
    for (name, shape) in header.with_prefix(prefix) {
        let key = &name[prefix.len()..];
        let mapped: Option<Vec<(String, Source)>> = match key {
            "token_embedding.weight" => Some(vec![(
                "text_model.embeddings.token_embedding.weight".into(),
                identity(name, shape),
            )]),
            "positional_embedding" => Some(vec![(
                "text_model.embeddings.position_embedding.weight".into(),
                identity(name, shape),
            )]),
            "ln_final.weight" | "ln_final.bias" => Some(vec![(
                format!("text_model.final_layer_norm.{}", &key["ln_final.".len()..]),
                identity(name, shape),
            )]),
            "text_projection" if with_projection => {
                if shape.len() != 2 {
                    bail!("tensor `{name}` has shape {shape:?}, expected 2-D [hidden, projection]")
                }
                Some(vec![(
                    "text_projection.weight".into(),
                    Source {
                        ldm_name: name.to_string(),
                        transform: Transform::Transpose,
                        ldm_shape: shape.to_vec(),
                        shape: vec![shape[1], shape[0]],
                    },
                )])
            }
            _ => match key
                .strip_prefix("transformer.resblocks.")
                .and_then(split_index)
            {
                Some((layer, _)) if layer >= served_layers => Some(vec![]),
                Some((layer, rest)) => open_clip_layer(name, shape, layer, rest, hidden)?,
                None => None,
            },
        };
        match mapped {
            Some(entries) => map.extend(entries),
            None => unmapped.push(name.to_string()),
        }
    }
    Ok((map, unmapped))
}

fn open_clip_layer(
    name: &str,
    shape: &[usize],
    layer: usize,
    rest: &str,
    hidden: usize,
) -> Result<Option<Vec<(String, Source)>>> {
    let base = format!("text_model.encoder.layers.{layer}.");
    let kind = match rest {
        "attn.in_proj_weight" => Some("weight"),
        "attn.in_proj_bias" => Some("bias"),
        _ => None,
    };
    if let Some(kind) = kind {
        let Some(rows) = hidden.checked_mul(3) else {
            bail!("tensor `{name}`: hidden size {hidden} is out of range")
        };
        if shape.first() != Some(&rows) {
            bail!("tensor `{name}` has shape {shape:?}, expected {rows} rows (3 x hidden {hidden})")
        }
        let entries = ["q", "k", "v"]
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut s = shape.to_vec();
                s[0] = hidden;
                (
                    format!("{base}self_attn.{p}_proj.{kind}"),
                    Source {
                        ldm_name: name.to_string(),
                        transform: Transform::Narrow {
                            start: i * hidden,
                            len: hidden,
                        },
                        ldm_shape: shape.to_vec(),
                        shape: s,
                    },
                )
            })
            .collect();
        return Ok(Some(entries));
    }
    const LAYER: &[(&str, &str)] = &[
        ("ln_1.", "layer_norm1."),
        ("ln_2.", "layer_norm2."),
        ("mlp.c_fc.", "mlp.fc1."),
        ("mlp.c_proj.", "mlp.fc2."),
        ("attn.out_proj.", "self_attn.out_proj."),
    ];
    Ok(rename_sub(rest, LAYER).map(|n| vec![(format!("{base}{n}"), identity(name, shape))]))
}

/// Builds the diffusers-name map of `component`, plus the LDM names under the component's
/// prefix that map to nothing.
pub fn component_map(
    header: &Header,
    arch: Arch,
    component: Component,
) -> Result<(TensorMap, Vec<String>)> {
    let mut map = TensorMap::new();
    let mut unmapped = Vec::new();
    match component {
        Component::Unet => {
            let layout = UnetLayout::from_header(header)?;
            for (name, shape) in header.with_prefix(UNET_PREFIX) {
                match unet_name(&name[UNET_PREFIX.len()..], &layout, arch) {
                    Some(n) => {
                        map.insert(n, identity(name, shape));
                    }
                    None => unmapped.push(name.to_string()),
                }
            }
        }
        Component::Vae => {
            let Some(prefix) = vae_prefix(header) else {
                bail!("checkpoint has no VAE (no `first_stage_model.*` tensors)")
            };
            let (m, u) = vae_map(header, prefix)?;
            map = m;
            unmapped = u;
        }
        Component::TextEncoder | Component::TextEncoder2 => {
            let Some((prefix, layout)) = text_encoder_location(arch, component) else {
                bail!("{arch} checkpoints have no {component}")
            };
            if !header.has_prefix(prefix) {
                bail!("checkpoint has no {component} (no `{prefix}*` tensors)")
            }
            match layout {
                TextLayout::HfClip => {
                    for (name, shape) in header.with_prefix(prefix) {
                        let key = &name[prefix.len()..];
                        if key.starts_with("text_model.") && !key.ends_with("position_ids") {
                            map.insert(key.to_string(), identity(name, shape));
                        } else {
                            unmapped.push(name.to_string());
                        }
                    }
                }
                TextLayout::OpenClip => {
                    return open_clip_map(
                        header,
                        arch,
                        prefix,
                        component == Component::TextEncoder2,
                    )
                }
            }
        }
    }
    Ok((map, unmapped))
}

/// The diffusers-name map of the VAE tensors under `prefix` (`first_stage_model.` in a
/// checkpoint, `""` in a stand-alone LDM VAE file such as `vae-ft-mse-840000-ema-pruned`).
pub fn vae_map(header: &Header, prefix: &str) -> Result<(TensorMap, Vec<String>)> {
    let mut map = TensorMap::new();
    let mut unmapped = Vec::new();
    let n_up = vae_up_blocks(header, prefix)?;
    for (name, shape) in header.with_prefix(prefix) {
        match vae_name(&name[prefix.len()..], n_up) {
            Some((n, true))
                if shape.len() > 2 && n.ends_with(".weight") && !n.contains("group_norm") =>
            {
                if shape[2..].iter().any(|&d| d != 1) {
                    bail!("tensor `{name}` has shape {shape:?}, expected a 1x1 conv weight [C, C, 1, 1]")
                }
                map.insert(
                    n,
                    Source {
                        ldm_name: name.to_string(),
                        transform: Transform::Reshape,
                        ldm_shape: shape.to_vec(),
                        shape: shape[..2].to_vec(),
                    },
                );
            }
            Some((n, _)) => {
                map.insert(n, identity(name, shape));
            }
            None => unmapped.push(name.to_string()),
        }
    }
    Ok((map, unmapped))
}
