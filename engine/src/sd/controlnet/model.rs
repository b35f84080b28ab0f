//! diffusers' `ControlNetModel` network: the UNet's encoder ([`UNetEncoder`], the same modules
//! and weight names), a conditioning embedding for the control image, and one zero-initialised
//! 1x1 conv per residual.
//!
//! Weight names (diffusers): `conv_in`, `time_embedding`, `add_embedding` (SDXL `text_time`),
//! `controlnet_cond_embedding.{conv_in, blocks.N, conv_out}`, `down_blocks.N`, `mid_block`,
//! `controlnet_down_blocks.N`, `controlnet_mid_block`.

use candle_core::{DType, Result, Tensor};
use candle_nn::{Conv2d, VarBuilder};

use super::{ControlNetConfig, ControlResiduals};
use crate::sd::layers::{conv2d, conv_forward, conv_forward_fused, Activation};
use crate::sd::unet::{AddedCond, UNetEncoder};

/// diffusers `ControlNetConditioningEmbedding`: `conv_in`, SiLU, then pairs of 3x3 convs (the
/// second with stride 2) each followed by SiLU, and `conv_out` to the UNet's first width.
#[derive(Debug, Clone)]
struct CondEmbedding {
    conv_in: Conv2d,
    blocks: Vec<Conv2d>,
    conv_out: Conv2d,
}

impl CondEmbedding {
    fn new(vb: VarBuilder, cfg: &ControlNetConfig, out: usize) -> Result<Self> {
        let ch = &cfg.conditioning_embedding_out_channels;
        let conv_in = conv2d(cfg.conditioning_channels, ch[0], 3, 1, 1, vb.pp("conv_in"))?;
        let mut blocks = Vec::with_capacity(2 * ch.len());
        for (i, w) in ch.windows(2).enumerate() {
            let bvb = vb.pp("blocks");
            blocks.push(conv2d(w[0], w[0], 3, 1, 1, bvb.pp(2 * i))?);
            blocks.push(conv2d(w[0], w[1], 3, 2, 1, bvb.pp(2 * i + 1))?);
        }
        let last = ch[ch.len() - 1];
        let conv_out = conv2d(last, out, 3, 1, 1, vb.pp("conv_out"))?;
        Ok(Self {
            conv_in,
            blocks,
            conv_out,
        })
    }

    /// `sample + conv_out(embedding(cond))`.
    fn forward_added(&self, cond: &Tensor, sample: &Tensor) -> Result<Tensor> {
        let mut h = conv_forward_fused(&self.conv_in, &[cond], Activation::Silu, None)?;
        for b in &self.blocks {
            h = conv_forward_fused(b, &[&h], Activation::Silu, None)?;
        }
        let c = conv_forward(&self.conv_out, &h)?;
        if c.dims() != sample.dims() {
            candle_core::bail!(
                "the control image embeds to {:?} but the latents are {:?}: the control image \
                 must be the output size (the latents times the VAE scale)",
                c.dims(),
                sample.dims()
            );
        }
        sample + c
    }
}

/// diffusers `ControlNetModel`.
#[derive(Debug, Clone)]
pub struct ControlNetModel {
    encoder: UNetEncoder,
    cond_embedding: CondEmbedding,
    down_zero_convs: Vec<Conv2d>,
    mid_zero_conv: Conv2d,
    cfg: ControlNetConfig,
    dtype: DType,
}

impl ControlNetModel {
    /// Builds the network from `cfg`, weights by diffusers names (in `vb`'s dtype).
    pub fn new(vb: VarBuilder, cfg: &ControlNetConfig) -> Result<Self> {
        cfg.validate()?;
        let ucfg = &cfg.unet;
        let encoder = UNetEncoder::new(vb.clone(), ucfg)?;
        let ch = &ucfg.block_out_channels;
        let cond_embedding = CondEmbedding::new(vb.pp("controlnet_cond_embedding"), cfg, ch[0])?;
        // One residual per skip, in the order the encoder pushes them.
        let layers = ucfg.layers_per_block_list()?;
        let mut widths = vec![ch[0]];
        for (i, &c) in ch.iter().enumerate() {
            widths.extend(std::iter::repeat_n(c, layers[i]));
            if i + 1 < ch.len() {
                widths.push(c);
            }
        }
        let zvb = vb.pp("controlnet_down_blocks");
        let down_zero_convs = widths
            .iter()
            .enumerate()
            .map(|(i, &c)| conv2d(c, c, 1, 1, 0, zvb.pp(i)))
            .collect::<Result<Vec<_>>>()?;
        let mid_c = ch[ch.len() - 1];
        let mid_zero_conv = conv2d(mid_c, mid_c, 1, 1, 0, vb.pp("controlnet_mid_block"))?;
        Ok(Self {
            encoder,
            cond_embedding,
            down_zero_convs,
            mid_zero_conv,
            cfg: cfg.clone(),
            dtype: vb.dtype(),
        })
    }

    /// The configuration the net was built from.
    pub fn config(&self) -> &ControlNetConfig {
        &self.cfg
    }

    /// See [`super::ControlNet::forward`]. Inputs are cast to the net's dtype; the residuals
    /// come out in it. Guess mode (`logspace(-1, 0)` scales) does not apply to a net with
    /// `global_pool_conditions`, whose residuals are averaged over space instead (diffusers).
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        sample: &Tensor,
        timestep: f64,
        encoder_hidden_states: &Tensor,
        added: Option<&AddedCond>,
        cond: &Tensor,
        scale: f64,
        guess_mode: bool,
    ) -> Result<ControlResiduals> {
        let dt = self.dtype;
        let sample = sample.to_dtype(dt)?;
        let ctx = encoder_hidden_states.to_dtype(dt)?;
        let mut cond = cond.to_dtype(dt)?;
        if self.cfg.controlnet_conditioning_channel_order == "bgr" {
            let c = cond.dim(1)?;
            let rev: Vec<u32> = (0..c as u32).rev().collect();
            let idx = Tensor::new(rev.as_slice(), cond.device())?;
            cond = cond.index_select(&idx, 1)?;
        }
        let enc = &self.encoder;
        let emb = enc.embed(&sample, timestep, added)?;
        let h = self
            .cond_embedding
            .forward_added(&cond, &enc.conv_in(&sample)?)?;
        let (h, skips) = enc.down(h, &emb, &ctx)?;
        let h = enc.mid(&h, &emb, &ctx)?;
        if skips.len() != self.down_zero_convs.len() {
            candle_core::bail!(
                "ControlNet: {} skip connections for {} zero convs",
                skips.len(),
                self.down_zero_convs.len()
            );
        }
        let down = skips
            .iter()
            .zip(&self.down_zero_convs)
            .map(|(s, z)| conv_forward(z, s))
            .collect::<Result<Vec<_>>>()?;
        let mid = conv_forward(&self.mid_zero_conv, &h)?;

        let pool = self.cfg.global_pool_conditions;
        let n = down.len();
        let scales: Vec<f64> = if guess_mode && !pool {
            logspace_f32(n + 1)
                .into_iter()
                .map(|s| (s * scale as f32) as f64)
                .collect()
        } else {
            vec![scale as f32 as f64; n + 1]
        };
        let finish = |t: &Tensor, s: f64| -> Result<Tensor> {
            let t = t.affine(s, 0.0)?;
            if pool {
                t.mean_keepdim(3)?.mean_keepdim(2)
            } else {
                Ok(t)
            }
        };
        let down = down
            .iter()
            .zip(&scales)
            .map(|(t, &s)| finish(t, s))
            .collect::<Result<Vec<_>>>()?;
        let mid = finish(&mid, scales[n])?;
        Ok(ControlResiduals { down, mid })
    }
}

/// `torch.logspace(-1, 0, steps)` in float32 (computed as torch's CPU kernel does: in double
/// from the near end, then rounded).
fn logspace_f32(steps: usize) -> Vec<f32> {
    let (start, end) = (-1.0f64, 0.0f64);
    if steps == 1 {
        return vec![10f64.powf(start) as f32];
    }
    let step = (end - start) / (steps - 1) as f64;
    let half = steps / 2;
    (0..steps)
        .map(|i| {
            let e = if i < half {
                start + step * i as f64
            } else {
                end - step * (steps - i - 1) as f64
            };
            10f64.powf(e) as f32
        })
        .collect()
}
