//! Where a LoRA module lands: the kohya, LDM (SDXL kohya) and diffusers/PEFT names of every
//! weight of a model ([`lookup`]), the diffusers → LDM UNet path mapping ([`ldm_unet_path`],
//! also used by the trainer to write kohya names) and the family a file was made for.

use std::collections::HashMap;

use super::LoraFile;
use crate::sd::config::UNetConfig;
use crate::sd::model::{SdModel, WeightMap};

/// Which model component a LoRA module targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Part {
    Unet,
    Text1,
    Text2,
}

/// The LDM (original Stable Diffusion) path of a diffusers UNet module, for kohya's SDXL names:
/// `down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q` →
/// `input_blocks.4.1.transformer_blocks.0.attn1.to_q`.
pub(crate) fn ldm_unet_path(m: &str, cfg: &UNetConfig) -> Option<String> {
    let layers = cfg.layers_per_block_list().ok()?;
    let n = layers.len();
    let seg: Vec<&str> = m.split('.').collect();
    let resnet_inner = |rest: &[&str]| -> Option<String> {
        let first = *rest.first()?;
        let tail = rest[1..].join(".");
        let mapped = match first {
            "norm1" => "in_layers.0",
            "conv1" => "in_layers.2",
            "time_emb_proj" => "emb_layers.1",
            "norm2" => "out_layers.0",
            "conv2" => "out_layers.3",
            "conv_shortcut" => "skip_connection",
            _ => return None,
        };
        Some(if tail.is_empty() {
            mapped.to_string()
        } else {
            format!("{mapped}.{tail}")
        })
    };
    let join = |head: String, tail: &[&str]| {
        if tail.is_empty() {
            head
        } else {
            format!("{head}.{}", tail.join("."))
        }
    };
    match seg.as_slice() {
        ["conv_in", ..] => Some(join("input_blocks.0.0".into(), &seg[1..])),
        ["time_embedding", "linear_1", ..] => Some(join("time_embed.0".into(), &seg[2..])),
        ["time_embedding", "linear_2", ..] => Some(join("time_embed.2".into(), &seg[2..])),
        ["add_embedding", "linear_1", ..] => Some(join("label_emb.0.0".into(), &seg[2..])),
        ["add_embedding", "linear_2", ..] => Some(join("label_emb.0.2".into(), &seg[2..])),
        ["conv_norm_out", ..] => Some(join("out.0".into(), &seg[1..])),
        ["conv_out", ..] => Some(join("out.2".into(), &seg[1..])),
        ["down_blocks", b, kind, j, rest @ ..] => {
            let (b, j): (usize, usize) = (b.parse().ok()?, j.parse().ok()?);
            let base: usize = 1 + layers[..b].iter().map(|l| l + 1).sum::<usize>();
            match *kind {
                "resnets" => Some(format!(
                    "input_blocks.{}.0.{}",
                    base + j,
                    resnet_inner(rest)?
                )),
                "attentions" => Some(join(format!("input_blocks.{}.1", base + j), rest)),
                "downsamplers" => {
                    // downsamplers.0.conv → input_blocks.K.0.op
                    let tail = rest.get(1..)?;
                    Some(join(
                        format!("input_blocks.{}.0.op", base + layers[b]),
                        tail,
                    ))
                }
                _ => None,
            }
        }
        ["mid_block", kind, j, rest @ ..] => {
            let j: usize = j.parse().ok()?;
            match *kind {
                "resnets" => Some(format!("middle_block.{}.{}", j * 2, resnet_inner(rest)?)),
                "attentions" => Some(join("middle_block.1".into(), rest)),
                _ => None,
            }
        }
        ["up_blocks", b, kind, j, rest @ ..] => {
            let (b, j): (usize, usize) = (b.parse().ok()?, j.parse().ok()?);
            // Up block b mirrors down block n-1-b and has one more layer.
            let up_layers: Vec<usize> = (0..n).map(|i| layers[n - 1 - i] + 1).collect();
            let base: usize = up_layers[..b].iter().sum();
            match *kind {
                "resnets" => Some(format!(
                    "output_blocks.{}.0.{}",
                    base + j,
                    resnet_inner(rest)?
                )),
                "attentions" => Some(join(format!("output_blocks.{}.1", base + j), rest)),
                "upsamplers" => {
                    let has_attn = cfg
                        .up_block_types
                        .get(b)
                        .is_some_and(|t| t.contains("CrossAttn"));
                    // upsamplers.0.conv → output_blocks.K.{1|2}.conv
                    Some(join(
                        format!(
                            "output_blocks.{}.{}",
                            base + up_layers[b] - 1,
                            if has_attn { 2 } else { 1 }
                        ),
                        rest,
                    ))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// Every name a LoRA file may use for each weight of the model: module name → (part, weight
/// key in the model's map).
pub(crate) fn lookup(model: &SdModel) -> HashMap<String, (Part, String)> {
    let mut out = HashMap::new();
    let weight_modules = |map: &WeightMap| -> Vec<(String, String)> {
        map.iter()
            .filter(|(k, t)| k.ends_with(".weight") && t.rank() >= 2)
            .map(|(k, _)| (k.trim_end_matches(".weight").to_string(), k.clone()))
            .collect()
    };
    for (m, key) in weight_modules(&model.weights.unet) {
        let kohya = |p: &str| format!("lora_unet_{}", p.replace('.', "_"));
        out.insert(kohya(&m), (Part::Unet, key.clone()));
        if let Some(ldm) = ldm_unet_path(&m, &model.unet_config) {
            out.insert(kohya(&ldm), (Part::Unet, key.clone()));
        }
        out.insert(format!("unet.{m}"), (Part::Unet, key.clone()));
        // SimpleTuner's LyCORIS files (also read by ComfyUI).
        out.insert(
            format!("lycoris_{}", m.replace('.', "_")),
            (Part::Unet, key.clone()),
        );
    }
    let text =
        |map: &WeightMap, part: Part, kohya: &[&str], peft: &str, out: &mut HashMap<_, _>| {
            for (m, key) in weight_modules(map) {
                let full = if m.starts_with("text_model.") || m == "text_projection" {
                    m.clone()
                } else {
                    format!("text_model.{m}")
                };
                for k in kohya {
                    out.insert(
                        format!("{k}_{}", full.replace('.', "_")),
                        (part, key.clone()),
                    );
                }
                out.insert(format!("{peft}.{full}"), (part, key.clone()));
                // transformers ≥ 5 names the modules without `text_model.` (diffusers' PEFT
                // files then say `text_encoder.encoder.layers.0…`).
                if let Some(short) = full.strip_prefix("text_model.") {
                    out.insert(format!("{peft}.{short}"), (part, key.clone()));
                }
            }
        };
    match &model.weights.text_encoder_2 {
        Some(te2) => {
            text(
                &model.weights.text_encoder,
                Part::Text1,
                &["lora_te1"],
                "text_encoder",
                &mut out,
            );
            text(te2, Part::Text2, &["lora_te2"], "text_encoder_2", &mut out);
        }
        None => text(
            &model.weights.text_encoder,
            Part::Text1,
            &["lora_te", "lora_te1"],
            "text_encoder",
            &mut out,
        ),
    }
    out
}

/// The family a LoRA was made for, from its key names; `None` when they do not say.
pub(crate) fn lora_family(file: &LoraFile) -> Option<&'static str> {
    let has = |p: &str| file.modules.keys().any(|k| k.starts_with(p));
    if has("lora_te1_") || has("lora_te2_") || has("text_encoder_2.") {
        Some("SDXL")
    } else if has("lora_te_") {
        Some("SD 1.x/2.x")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sdxl_like() -> UNetConfig {
        UNetConfig::from_json_str(
            r#"{"block_out_channels": [320, 640, 1280], "layers_per_block": 2,
                "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
                "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
                "cross_attention_dim": 2048, "attention_head_dim": [5, 10, 20],
                "transformer_layers_per_block": [1, 2, 10], "use_linear_projection": true,
                "addition_embed_type": "text_time", "addition_time_embed_dim": 256,
                "projection_class_embeddings_input_dim": 2816}"#,
        )
        .unwrap()
    }

    #[test]
    fn ldm_names_of_sdxl_modules() {
        let cfg = sdxl_like();
        let cases = [
            (
                "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q",
                "input_blocks.4.1.transformer_blocks.0.attn1.to_q",
            ),
            (
                "down_blocks.2.attentions.1.proj_in",
                "input_blocks.8.1.proj_in",
            ),
            (
                "down_blocks.0.resnets.1.conv2",
                "input_blocks.2.0.out_layers.3",
            ),
            ("down_blocks.1.downsamplers.0.conv", "input_blocks.6.0.op"),
            ("mid_block.attentions.0.proj_out", "middle_block.1.proj_out"),
            ("mid_block.resnets.1.conv1", "middle_block.2.in_layers.2"),
            (
                "up_blocks.0.attentions.2.transformer_blocks.9.ff.net.2",
                "output_blocks.2.1.transformer_blocks.9.ff.net.2",
            ),
            ("up_blocks.0.upsamplers.0.conv", "output_blocks.2.2.conv"),
            (
                "up_blocks.2.resnets.0.conv_shortcut",
                "output_blocks.6.0.skip_connection",
            ),
            ("time_embedding.linear_2", "time_embed.2"),
            ("add_embedding.linear_1", "label_emb.0.0"),
        ];
        for (d, l) in cases {
            assert_eq!(ldm_unet_path(d, &cfg).as_deref(), Some(l), "{d}");
        }
    }
}
