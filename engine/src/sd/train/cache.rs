//! Encoding the data set once, before training: every image's latents (and its flip), every
//! caption's text conditioning from the base encoders, and SDXL's micro-conditioning time ids.

use std::collections::HashMap;

use candle_core::{DType, Tensor};

use super::{data, text, Cached, TrainConfig};
use crate::error::{EngineError, Result};
use crate::sd::model::SdModel;
use crate::sd::torch_rng::TorchGenerator;

/// Encodes every example once: latents (× scaling factor; posterior mean or a seeded sample;
/// flipped too when flips are on) and the caption's text embedding.
pub(super) fn cache_examples(
    model: &SdModel,
    cfg: &TrainConfig,
    examples: &[data::Example],
    gen: &mut TorchGenerator,
) -> Result<Vec<Cached>> {
    let dev = &model.device;
    // Per caption: the text embedding, and for SDXL the pooled one.
    let mut embeds_by_caption: HashMap<String, (Tensor, Option<Tensor>)> = HashMap::new();
    let mut out = Vec::with_capacity(examples.len());
    let buckets = data::buckets(cfg.resolution);
    for ex in examples {
        let at =
            |e: candle_core::Error| EngineError::failed(format!("{}: {e}", ex.image.display()));
        let rgb = data::open_rgb(&ex.image)?;
        let size = if cfg.buckets {
            data::bucket_for(rgb.width(), rgb.height(), &buckets)
                .unwrap_or((cfg.resolution, cfg.resolution))
        } else {
            (cfg.resolution, cfg.resolution)
        };
        let mut latents = Vec::new();
        for flipped in [false, true] {
            if flipped && !cfg.flip {
                break;
            }
            let img = data::prepare_image(&rgb, size, flipped, dev)
                .and_then(|t| t.to_dtype(model.vae_dtype))
                .map_err(at)?;
            let dist = model.vae.encode(&img).map_err(at)?;
            let z = if cfg.sample_latents {
                let noise =
                    Tensor::from_vec(gen.randn(dist.mean.elem_count()), dist.mean.shape(), dev)
                        .and_then(|n| n.to_dtype(model.vae_dtype))
                        .map_err(at)?;
                dist.sample_with(&noise).map_err(at)?
            } else {
                dist.mean.clone()
            };
            let mut z = (z.to_dtype(DType::F32).map_err(at)? * model.vae_config.scaling_factor)
                .map_err(at)?;
            if let Some(shift) = model.vae_config.shift_factor {
                z = (z - shift * model.vae_config.scaling_factor).map_err(at)?;
            }
            latents.push(z.detach());
        }
        let (embeds, pooled) = match embeds_by_caption.get(&ex.caption) {
            Some(e) => e.clone(),
            None => {
                let e = text::encode_base(model, &ex.caption).map_err(at)?;
                let e = (e.0.detach(), e.1.map(|p| p.detach()));
                embeds_by_caption.insert(ex.caption.clone(), e.clone());
                e
            }
        };
        let added = match pooled {
            Some(text_embeds) => {
                let ids = data::sdxl_time_ids(rgb.width(), rgb.height(), size);
                Some(crate::sd::unet::AddedCond {
                    text_embeds,
                    time_ids: Tensor::from_vec(ids.to_vec(), (1, 6), dev)
                        .and_then(|t| t.to_dtype(model.dtype))
                        .map_err(at)?,
                })
            }
            None => None,
        };
        out.push(Cached {
            caption: ex.caption.clone(),
            latents,
            embeds,
            added,
        });
    }
    Ok(out)
}
