//! Single-file ControlNet names: the original ControlNet (`cldm`) layout, as lllyasviel's
//! `control_v11*` files and A1111/ComfyUI use it, mapped to diffusers names (the inverse of
//! diffusers' `convert_controlnet_checkpoint`, generalised to any conditioning-embedding depth).
//!
//! | original (after an optional `control_model.`) | diffusers |
//! |---|---|
//! | `time_embed.{0,2}`, `label_emb.0.{0,2}`, `input_blocks.*`, `middle_block.*` | the UNet encoder's names ([`crate::sd::ldm`]) |
//! | `zero_convs.N.0` | `controlnet_down_blocks.N` |
//! | `middle_block_out.0` | `controlnet_mid_block` |
//! | `input_hint_block.0` / `.2(J+1)` / last index | `controlnet_cond_embedding.conv_in` / `.blocks.J` / `.conv_out` |

use std::collections::BTreeMap;

use crate::sd::ldm::unet_encoder_name;

/// The optional prefix of original ControlNet files.
pub const LDM_CONTROLNET_PREFIX: &str = "control_model.";

/// How a single file names its tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// diffusers `ControlNetModel` names (`controlnet_cond_embedding.conv_in.weight`…).
    Diffusers,
    /// The original names, with `control_model.` or without.
    Original { prefixed: bool },
}

/// Tells the naming from the tensor names, or says what the file looks like instead.
pub fn detect(names: &[&str]) -> std::result::Result<Naming, String> {
    let has = |n: &str| names.contains(&n);
    if has("controlnet_cond_embedding.conv_in.weight") {
        return Ok(Naming::Diffusers);
    }
    if has("control_model.input_hint_block.0.weight") {
        return Ok(Naming::Original { prefixed: true });
    }
    if has("input_hint_block.0.weight") {
        return Ok(Naming::Original { prefixed: false });
    }
    if names
        .iter()
        .any(|n| n.starts_with("model.diffusion_model."))
    {
        return Err("this is a Stable Diffusion checkpoint, not a ControlNet".into());
    }
    if names
        .iter()
        .any(|n| n.starts_with("lora_") || n.contains("lora_down") || n.contains(".lora_A."))
    {
        return Err("this is a LoRA, not a ControlNet".into());
    }
    Err(
        "not a ControlNet: no `controlnet_cond_embedding.conv_in.weight` (diffusers) or \
         `[control_model.]input_hint_block.0.weight` (original) tensor"
            .into(),
    )
}

/// `layers_per_block` of an original file: the first down-sampler (`input_blocks.N.0.op`) sits
/// after that many resnets; a net with one level has none, and then it is the last input block.
fn layers_per_block(keys: &[&str]) -> usize {
    let index = |k: &str| -> Option<usize> {
        k.strip_prefix("input_blocks.")?
            .split('.')
            .next()?
            .parse()
            .ok()
    };
    let first_op = keys
        .iter()
        .filter(|k| k.contains(".0.op."))
        .filter_map(|k| index(k))
        .min();
    match first_op {
        Some(i) => i.saturating_sub(1),
        None => keys.iter().filter_map(|k| index(k)).max().unwrap_or(0),
    }
}

/// The diffusers name of each tensor of an original-named file: `(diffusers, stored)` pairs.
/// Every tensor must map; the first that does not is named in the error.
pub fn original_to_diffusers(
    names: &[&str],
    prefixed: bool,
) -> std::result::Result<BTreeMap<String, String>, String> {
    let strip = |n: &'_ str| -> Option<String> {
        if prefixed {
            n.strip_prefix(LDM_CONTROLNET_PREFIX).map(str::to_string)
        } else {
            Some(n.to_string())
        }
    };
    let keys: Vec<(String, &str)> = names
        .iter()
        .filter_map(|n| strip(n).map(|k| (k, *n)))
        .collect();
    let bare: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
    let lpb = layers_per_block(&bare);
    let sdxl = bare.iter().any(|k| k.starts_with("label_emb.0."));
    let hint_last = bare
        .iter()
        .filter_map(|k| {
            k.strip_prefix("input_hint_block.")?
                .split('.')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .max()
        .unwrap_or(0);
    let mut out = BTreeMap::new();
    for (key, stored) in &keys {
        let name = map_key(key, lpb, sdxl, hint_last).ok_or_else(|| {
            format!("tensor `{stored}` is not part of an original-layout ControlNet")
        })?;
        if let Some(prev) = out.insert(name.clone(), stored.to_string()) {
            return Err(format!(
                "tensors `{prev}` and `{stored}` both map to `{name}`"
            ));
        }
    }
    if prefixed {
        if let Some(n) = names.iter().find(|n| !n.starts_with(LDM_CONTROLNET_PREFIX)) {
            return Err(format!(
                "tensor `{n}` is outside `{LDM_CONTROLNET_PREFIX}` (a ControlNet merged into another file?)"
            ));
        }
    }
    Ok(out)
}

fn map_key(key: &str, lpb: usize, sdxl: bool, hint_last: usize) -> Option<String> {
    let (idx_rest, head) = if let Some(r) = key.strip_prefix("zero_convs.") {
        (r, "zero")
    } else if let Some(r) = key.strip_prefix("input_hint_block.") {
        (r, "hint")
    } else if let Some(r) = key.strip_prefix("middle_block_out.0.") {
        return Some(format!("controlnet_mid_block.{r}"));
    } else {
        return unet_encoder_name(key, lpb, sdxl);
    };
    let (i, rest) = idx_rest.split_once('.')?;
    let i: usize = i.parse().ok()?;
    match head {
        "zero" => rest
            .strip_prefix("0.")
            .map(|p| format!("controlnet_down_blocks.{i}.{p}")),
        _ => {
            let module = if i == 0 {
                "conv_in".to_string()
            } else if i == hint_last {
                "conv_out".to_string()
            } else if i.is_multiple_of(2) {
                format!("blocks.{}", i / 2 - 1)
            } else {
                return None; // SiLU slots hold no weights
            };
            Some(format!("controlnet_cond_embedding.{module}.{rest}"))
        }
    }
}
