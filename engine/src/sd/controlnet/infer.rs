//! A ControlNet `config.json` read from the shapes of its (diffusers-named) tensors, for single
//! files, which carry no config.
//!
//! What the weights cannot tell follows the real models: attention heads are 8 per block for
//! SD 1.x (conv projections) and `channels / 64` for SD 2.x / SDXL (linear projections, or a
//! `text_time` embedding); SDXL's time-id width is `(input − 1280) / 6` (1280 = the pooled
//! OpenCLIP width); GroupNorm has 32 groups. Anything else comes from a given config
//! ([`super::load::load_with_config`]), which also replaces these guesses.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

/// Shapes by diffusers name.
pub type Shapes = BTreeMap<String, Vec<usize>>;

const HINT: &str = "give its diffusers config.json (load_with_config)";

fn dim(shapes: &Shapes, name: &str, d: usize) -> Result<usize, String> {
    match shapes.get(name) {
        Some(s) => s.get(d).copied().ok_or_else(|| {
            format!(
                "tensor `{name}` has shape {s:?}, expected at least {} dims",
                d + 1
            )
        }),
        None => Err(format!("no tensor `{name}` (a ControlNet has one)")),
    }
}

/// `max index + 1` of the names continuing `prefix` with `N.`.
fn count(shapes: &Shapes, prefix: &str) -> usize {
    shapes
        .keys()
        .filter_map(|k| {
            k.strip_prefix(prefix)?
                .split('.')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .max()
        .map_or(0, |m| m + 1)
}

/// The inferred config, with `overrides` merged over it.
pub fn infer_config(shapes: &Shapes, overrides: &Map<String, Value>) -> Result<Value, String> {
    let n_blocks = count(shapes, "down_blocks.");
    if n_blocks == 0 {
        return Err("no `down_blocks.N` tensors".into());
    }
    let layers = count(shapes, "down_blocks.0.resnets.");
    let mut channels = Vec::with_capacity(n_blocks);
    let mut types = Vec::with_capacity(n_blocks);
    let mut depth = Vec::with_capacity(n_blocks);
    for b in 0..n_blocks {
        channels.push(dim(
            shapes,
            &format!("down_blocks.{b}.resnets.0.conv1.weight"),
            0,
        )?);
        let attn = format!("down_blocks.{b}.attentions.0.");
        let d = count(shapes, &format!("{attn}transformer_blocks."));
        types.push(if d > 0 {
            "CrossAttnDownBlock2D"
        } else {
            "DownBlock2D"
        });
        depth.push(d.max(1));
    }
    let mid_depth = count(shapes, "mid_block.attentions.0.transformer_blocks.");
    if mid_depth == 0 {
        return Err(
            "the mid block has no attention (only UNetMidBlock2DCrossAttn is supported)".into(),
        );
    }
    if let Some(last) = depth.last_mut() {
        // diffusers builds the mid block with transformer_layers_per_block[-1].
        if types[n_blocks - 1] == "DownBlock2D" {
            *last = mid_depth;
        } else if *last != mid_depth {
            return Err(format!(
                "the mid block has transformer depth {mid_depth} but the last down block {last}"
            ));
        }
    }
    let mut cross = None;
    let mut linear = None;
    for (k, s) in shapes {
        if cross.is_none() && k.ends_with(".attn2.to_k.weight") {
            cross = s.get(1).copied();
        }
        if linear.is_none() && k.ends_with(".proj_in.weight") {
            linear = Some(s.len() == 2);
        }
    }
    let Some(cross) = cross else {
        return Err("no cross-attention (`*.attn2.to_k.weight`)".into());
    };
    let linear = linear.unwrap_or(false);

    let sdxl = shapes.contains_key("add_embedding.linear_1.weight");
    let (add_type, time_dim, proj_dim) = if sdxl {
        let p = dim(shapes, "add_embedding.linear_1.weight", 1)?;
        let t = match overrides.get("addition_time_embed_dim") {
            Some(v) => v.clone(),
            None if p > 1280 && (p - 1280).is_multiple_of(6) => json!((p - 1280) / 6),
            None => {
                return Err(format!(
                    "cannot tell the SDXL time-id width from `add_embedding` input {p}; {HINT}"
                ))
            }
        };
        (json!("text_time"), t, json!(p))
    } else {
        (Value::Null, Value::Null, Value::Null)
    };

    let heads = match overrides.get("attention_head_dim") {
        Some(v) => v.clone(),
        None if !(linear || sdxl) => json!(8),
        None => {
            let mut h = Vec::with_capacity(n_blocks);
            for &c in &channels {
                if !c.is_multiple_of(64) {
                    return Err(format!(
                        "cannot tell the attention heads of {c} channels (SD 2.x/SDXL use head \
                         width 64); {HINT}"
                    ));
                }
                h.push(c / 64);
            }
            json!(h)
        }
    };

    let cond_blocks = count(shapes, "controlnet_cond_embedding.blocks.");
    let mut cond_channels = vec![dim(shapes, "controlnet_cond_embedding.conv_in.weight", 0)?];
    for j in (1..cond_blocks).step_by(2) {
        cond_channels.push(dim(
            shapes,
            &format!("controlnet_cond_embedding.blocks.{j}.weight"),
            0,
        )?);
    }
    let conv_in = |d| dim(shapes, "conv_in.weight", d);
    let temb = dim(shapes, "time_embedding.linear_1.weight", 0)?;
    let uniform = depth.iter().all(|&d| d == depth[0]);
    let v = json!({
        "_class_name": "ControlNetModel",
        "act_fn": "silu",
        "addition_embed_type": add_type,
        "addition_time_embed_dim": time_dim,
        "attention_head_dim": heads,
        "block_out_channels": channels,
        "conditioning_channels": dim(shapes, "controlnet_cond_embedding.conv_in.weight", 1)?,
        "conditioning_embedding_out_channels": cond_channels,
        "controlnet_conditioning_channel_order": "rgb",
        "conv_in_kernel": conv_in(2)?,
        "cross_attention_dim": cross,
        "down_block_types": types,
        "downsample_padding": 1,
        "flip_sin_to_cos": true,
        "freq_shift": 0,
        "global_pool_conditions": false,
        "in_channels": conv_in(1)?,
        "layers_per_block": layers,
        "mid_block_scale_factor": 1,
        "mid_block_type": "UNetMidBlock2DCrossAttn",
        "norm_eps": 1e-05,
        "norm_num_groups": 32,
        "projection_class_embeddings_input_dim": proj_dim,
        "time_embedding_dim": if temb == 4 * channels[0] { Value::Null } else { json!(temb) },
        "transformer_layers_per_block": if uniform { json!(depth[0]) } else { json!(depth) },
        "use_linear_projection": linear,
    });
    let Value::Object(mut cfg) = v else {
        return Err("internal: config is not an object".into());
    };
    for (k, v) in overrides {
        cfg.insert(k.clone(), v.clone());
    }
    Ok(Value::Object(cfg))
}
