//! diffusers-equivalent [`UNet2DConditionModel`] (SD1.x, SD2.x, SDXL incl. `text_time`
//! added conditioning via [`AddedCond`]), built from a [`UNetConfig`].
//!
//! Weight names mirror diffusers exactly (`down_blocks.0.attentions.1.transformer_blocks.0.
//! attn2.to_k.weight`, ...), so a diffusers `unet/diffusion_pytorch_model.safetensors` loads
//! through `VarBuilder::from_mmaped_safetensors`.

use super::attention::attention;
use super::config::UNetConfig;
use super::layers::{
    conv2d, conv_forward, timestep_embedding, Downsample2D, GroupNorm, ResnetBlock2D,
    TimestepEmbedding, Upsample2D,
};
use candle_core::{bail, Module, Result, Tensor};
use candle_nn::{Conv2d, LayerNorm, Linear, VarBuilder};

/// SDXL additional conditioning (`added_cond_kwargs`).
#[derive(Debug, Clone)]
pub struct AddedCond {
    /// Pooled text embeddings `[B, P]`.
    pub text_embeds: Tensor,
    /// Micro-conditioning ids `[B, K]` (6 for SDXL: original size, crop, target size).
    pub time_ids: Tensor,
}

/// diffusers `Attention` as used in transformer blocks (no q/k/v bias, `to_out.0` with bias).
#[derive(Debug, Clone)]
struct CrossAttention {
    to_q: Linear,
    to_k: Linear,
    to_v: Linear,
    to_out: Linear,
    heads: usize,
    head_dim: usize,
}

impl CrossAttention {
    fn new(
        vb: VarBuilder,
        query_dim: usize,
        context_dim: usize,
        heads: usize,
        head_dim: usize,
    ) -> Result<Self> {
        let inner = heads * head_dim;
        Ok(Self {
            to_q: super::layers::linear_no_bias(query_dim, inner, vb.pp("to_q"))?,
            to_k: super::layers::linear_no_bias(context_dim, inner, vb.pp("to_k"))?,
            to_v: super::layers::linear_no_bias(context_dim, inner, vb.pp("to_v"))?,
            to_out: super::layers::linear(inner, query_dim, vb.pp("to_out").pp("0"))?,
            heads,
            head_dim,
        })
    }

    fn split_heads(&self, x: &Tensor) -> Result<Tensor> {
        let (b, l, _) = x.dims3()?;
        x.reshape((b, l, self.heads, self.head_dim))?
            .transpose(1, 2)?
            .contiguous()
    }

    fn forward(&self, x: &Tensor, context: Option<&Tensor>) -> Result<Tensor> {
        let ctx = context.unwrap_or(x);
        let q = self.split_heads(&self.to_q.forward(x)?)?;
        let k = self.split_heads(&self.to_k.forward(ctx)?)?;
        let v = self.split_heads(&self.to_v.forward(ctx)?)?;
        let o = attention(&q, &k, &v, 1.0 / (self.head_dim as f64).sqrt())?;
        let (b, _, l, _) = o.dims4()?;
        let o = o
            .transpose(1, 2)?
            .reshape((b, l, self.heads * self.head_dim))?;
        self.to_out.forward(&o)
    }
}

/// GEGLU feed-forward: `ff.net.0.proj` (dim → 2·inner), `hidden * gelu_erf(gate)`, `ff.net.2`.
///
/// The projection is evaluated as two matmuls against the (contiguous, copy-free) halves of
/// its weight, so `hidden` and `gate` come out contiguous and the GELU/product run on the fast
/// parallel element-wise paths instead of strided views of one `[.., 2·inner]` tensor.
#[derive(Debug, Clone)]
struct FeedForward {
    proj_hidden: Linear,
    proj_gate: Linear,
    out: Linear,
}

impl FeedForward {
    fn new(vb: VarBuilder, dim: usize) -> Result<Self> {
        let inner = dim * 4;
        let proj = super::layers::linear(dim, inner * 2, vb.pp("net.0.proj"))?;
        let half = |t: &Tensor, i: usize| t.narrow(0, i * inner, inner);
        let (w, b) = (proj.weight(), proj.bias());
        let part = |i: usize| -> Result<Linear> {
            Ok(Linear::new(
                half(w, i)?,
                match b {
                    Some(b) => Some(half(b, i)?),
                    None => None,
                },
            ))
        };
        Ok(Self {
            proj_hidden: part(0)?,
            proj_gate: part(1)?,
            out: super::layers::linear(inner, dim, vb.pp("net.2"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let gate = self.proj_gate.forward(x)?;
        let hidden = self.proj_hidden.forward(x)?;
        let y = if x.device().is_cpu() && !super::layers::grad_mode() {
            // One vectorised pass (torch's CPU erf) instead of candle's scalar erf and a product.
            kernels::geglu::gelu_mul(&hidden, &gate)?
        } else {
            (hidden * gate.gelu_erf()?)?
        };
        self.out.forward(&y)
    }
}

/// diffusers `BasicTransformerBlock` (layer_norm, self-attn, cross-attn, GEGLU).
#[derive(Debug, Clone)]
struct BasicTransformerBlock {
    norm1: LayerNorm,
    attn1: CrossAttention,
    norm2: LayerNorm,
    attn2: CrossAttention,
    norm3: LayerNorm,
    ff: FeedForward,
}

impl BasicTransformerBlock {
    fn new(
        vb: VarBuilder,
        dim: usize,
        heads: usize,
        head_dim: usize,
        context_dim: usize,
    ) -> Result<Self> {
        Ok(Self {
            norm1: super::layers::layer_norm(dim, 1e-5, vb.pp("norm1"))?,
            attn1: CrossAttention::new(vb.pp("attn1"), dim, dim, heads, head_dim)?,
            norm2: super::layers::layer_norm(dim, 1e-5, vb.pp("norm2"))?,
            attn2: CrossAttention::new(vb.pp("attn2"), dim, context_dim, heads, head_dim)?,
            norm3: super::layers::layer_norm(dim, 1e-5, vb.pp("norm3"))?,
            ff: FeedForward::new(vb.pp("ff"), dim)?,
        })
    }

    fn forward(&self, x: &Tensor, context: &Tensor) -> Result<Tensor> {
        let x = (self.attn1.forward(&self.norm1.forward(x)?, None)? + x)?;
        let x = (self
            .attn2
            .forward(&self.norm2.forward(&x)?, Some(context))?
            + &x)?;
        self.ff.forward(&self.norm3.forward(&x)?)? + &x
    }
}

/// `proj_in`/`proj_out`: 1x1 conv or linear (`use_linear_projection`).
#[derive(Debug, Clone)]
enum Proj {
    Conv(Conv2d),
    Linear(Linear),
}

/// diffusers `Transformer2DModel` (continuous input).
#[derive(Debug, Clone)]
struct Transformer2D {
    norm: GroupNorm,
    proj_in: Proj,
    blocks: Vec<BasicTransformerBlock>,
    proj_out: Proj,
}

impl Transformer2D {
    fn new(
        vb: VarBuilder,
        channels: usize,
        heads: usize,
        layers: usize,
        context_dim: usize,
        groups: usize,
        linear: bool,
    ) -> Result<Self> {
        let head_dim = channels / heads;
        let inner = heads * head_dim;
        let (proj_in, proj_out) = if linear {
            (
                Proj::Linear(super::layers::linear(channels, inner, vb.pp("proj_in"))?),
                Proj::Linear(super::layers::linear(inner, channels, vb.pp("proj_out"))?),
            )
        } else {
            (
                Proj::Conv(conv2d(channels, inner, 1, 1, 0, vb.pp("proj_in"))?),
                Proj::Conv(conv2d(inner, channels, 1, 1, 0, vb.pp("proj_out"))?),
            )
        };
        let blocks = (0..layers)
            .map(|i| {
                BasicTransformerBlock::new(
                    vb.pp("transformer_blocks").pp(i),
                    inner,
                    heads,
                    head_dim,
                    context_dim,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            norm: GroupNorm::new(groups, channels, 1e-6, vb.pp("norm"))?,
            proj_in,
            blocks,
            proj_out,
        })
    }

    fn forward(&self, x: &Tensor, context: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let n = self.norm.forward(x)?;
        let to_seq = |t: &Tensor| -> Result<Tensor> {
            let ch = t.dim(1)?;
            t.permute((0, 2, 3, 1))?.reshape((b, h * w, ch))
        };
        let mut hs = match &self.proj_in {
            Proj::Conv(conv) => to_seq(&conv_forward(conv, &n)?)?,
            Proj::Linear(lin) => lin.forward(&to_seq(&n)?.contiguous()?)?,
        };
        for blk in &self.blocks {
            hs = blk.forward(&hs, context)?;
        }
        let out = match &self.proj_out {
            Proj::Linear(lin) => lin
                .forward(&hs)?
                .reshape((b, h, w, c))?
                .permute((0, 3, 1, 2))?,
            Proj::Conv(conv) => {
                let inner = hs.dim(2)?;
                let hs = hs
                    .reshape((b, h, w, inner))?
                    .permute((0, 3, 1, 2))?
                    .contiguous()?;
                conv_forward(conv, &hs)?
            }
        };
        out + x
    }
}

/// One down block (CrossAttnDownBlock2D when `attentions` is non-empty, else DownBlock2D).
#[derive(Debug, Clone)]
struct DownBlock {
    resnets: Vec<ResnetBlock2D>,
    attentions: Vec<Transformer2D>,
    downsampler: Option<Downsample2D>,
}

impl DownBlock {
    /// Returns the output and pushes every skip tensor onto `skips`.
    fn forward(
        &self,
        x: &Tensor,
        temb: &Tensor,
        ctx: &Tensor,
        skips: &mut Vec<Tensor>,
    ) -> Result<Tensor> {
        let mut h = x.clone();
        for (i, r) in self.resnets.iter().enumerate() {
            h = r.forward(&h, Some(temb))?;
            if let Some(a) = self.attentions.get(i) {
                h = a.forward(&h, ctx)?;
            }
            skips.push(h.clone());
        }
        if let Some(d) = &self.downsampler {
            h = d.forward(&h)?;
            skips.push(h.clone());
        }
        Ok(h)
    }
}

/// One up block (CrossAttnUpBlock2D when `attentions` is non-empty, else UpBlock2D).
#[derive(Debug, Clone)]
struct UpBlock {
    resnets: Vec<ResnetBlock2D>,
    attentions: Vec<Transformer2D>,
    upsampler: Option<Upsample2D>,
}

impl UpBlock {
    fn forward(
        &self,
        x: &Tensor,
        temb: &Tensor,
        ctx: &Tensor,
        skips: &mut Vec<Tensor>,
        upsample_size: Option<(usize, usize)>,
    ) -> Result<Tensor> {
        let mut h = x.clone();
        for (i, r) in self.resnets.iter().enumerate() {
            let skip = match skips.pop() {
                Some(s) => s,
                None => bail!("UNet up block: ran out of skip connections"),
            };
            h = Tensor::cat(&[&h, &skip], 1)?;
            h = r.forward(&h, Some(temb))?;
            if let Some(a) = self.attentions.get(i) {
                h = a.forward(&h, ctx)?;
            }
        }
        if let Some(u) = &self.upsampler {
            h = u.forward(&h, upsample_size)?;
        }
        Ok(h)
    }
}

/// `UNetMidBlock2DCrossAttn`: resnet, then (transformer, resnet) pairs.
#[derive(Debug, Clone)]
struct MidBlock {
    resnets: Vec<ResnetBlock2D>,
    attentions: Vec<Transformer2D>,
}

/// The per-block sizes both halves of the UNet are built from.
struct Dims {
    heads: Vec<usize>,
    layers: Vec<usize>,
    tlayers: Vec<usize>,
    ctx_dim: usize,
    groups: usize,
    eps: f64,
    temb_dim: usize,
    linear: bool,
}

impl Dims {
    fn of(cfg: &UNetConfig) -> Result<Self> {
        Ok(Self {
            heads: cfg.heads_per_block()?,
            layers: cfg.layers_per_block_list()?,
            tlayers: cfg.transformer_layers_list()?,
            ctx_dim: cfg.cross_attention_dim()?,
            groups: cfg.groups()?,
            eps: cfg.norm_eps,
            temb_dim: cfg.time_embed_dim()?,
            linear: cfg.use_linear_projection,
        })
    }
}

/// The encoder half of the UNet: time (and SDXL addition) embedding, `conv_in`, down blocks
/// and mid block. [`UNet2DConditionModel`] and the ControlNet
/// ([`crate::sd::controlnet::ControlNetModel`], whose weights carry the same names) are both
/// built and run through it.
#[derive(Debug, Clone)]
pub(crate) struct UNetEncoder {
    conv_in: Conv2d,
    time_embedding: TimestepEmbedding,
    add_embedding: Option<TimestepEmbedding>,
    down_blocks: Vec<DownBlock>,
    mid_block: MidBlock,
    cfg: UNetConfig,
}

impl UNetEncoder {
    /// Builds the encoder modules of `cfg` from `vb` (diffusers names at the root:
    /// `conv_in`, `time_embedding`, `add_embedding`, `down_blocks.N`, `mid_block`).
    /// `cfg.up_block_types` is not read.
    pub(crate) fn new(vb: VarBuilder, cfg: &UNetConfig) -> Result<Self> {
        let ch = &cfg.block_out_channels;
        let n = ch.len();
        let Dims {
            heads,
            layers,
            tlayers,
            ctx_dim,
            groups,
            eps,
            temb_dim,
            linear,
        } = Dims::of(cfg)?;

        let conv_in = conv2d(
            cfg.in_channels,
            ch[0],
            cfg.conv_in_kernel,
            1,
            (cfg.conv_in_kernel - 1) / 2,
            vb.pp("conv_in"),
        )?;
        let time_embedding = TimestepEmbedding::new(vb.pp("time_embedding"), ch[0], temb_dim)?;
        let add_embedding = match (
            cfg.addition_embed_type.as_deref(),
            cfg.projection_class_embeddings_input_dim,
        ) {
            (Some("text_time"), Some(p)) => {
                Some(TimestepEmbedding::new(vb.pp("add_embedding"), p, temb_dim)?)
            }
            _ => None,
        };
        let mut down_blocks = Vec::with_capacity(n);
        let mut out_c = ch[0];
        for (i, ty) in cfg.down_block_types.iter().enumerate() {
            let in_c = out_c;
            out_c = ch[i];
            let bvb = vb.pp("down_blocks").pp(i);
            let cross = ty == "CrossAttnDownBlock2D";
            let mut resnets = Vec::new();
            let mut attentions = Vec::new();
            for j in 0..layers[i] {
                let rin = if j == 0 { in_c } else { out_c };
                resnets.push(ResnetBlock2D::new(
                    bvb.pp("resnets").pp(j),
                    rin,
                    out_c,
                    Some(temb_dim),
                    groups,
                    eps,
                    1.0,
                )?);
                if cross {
                    attentions.push(Transformer2D::new(
                        bvb.pp("attentions").pp(j),
                        out_c,
                        heads[i],
                        tlayers[i],
                        ctx_dim,
                        groups,
                        linear,
                    )?);
                }
            }
            let downsampler = if i + 1 < n {
                Some(Downsample2D::new(
                    bvb.pp("downsamplers").pp(0),
                    out_c,
                    out_c,
                    cfg.downsample_padding,
                )?)
            } else {
                None
            };
            down_blocks.push(DownBlock {
                resnets,
                attentions,
                downsampler,
            });
        }

        let mid_c = ch[n - 1];
        let mvb = vb.pp("mid_block");
        let msf = cfg.mid_block_scale_factor;
        let mut mid_resnets = vec![ResnetBlock2D::new(
            mvb.pp("resnets").pp(0),
            mid_c,
            mid_c,
            Some(temb_dim),
            groups,
            eps,
            msf,
        )?];
        // diffusers' UNetMidBlock2DCrossAttn uses num_layers = 1.
        let mid_attentions = vec![Transformer2D::new(
            mvb.pp("attentions").pp(0),
            mid_c,
            heads[n - 1],
            tlayers[n - 1],
            ctx_dim,
            groups,
            linear,
        )?];
        mid_resnets.push(ResnetBlock2D::new(
            mvb.pp("resnets").pp(1),
            mid_c,
            mid_c,
            Some(temb_dim),
            groups,
            eps,
            msf,
        )?);
        let mid_block = MidBlock {
            resnets: mid_resnets,
            attentions: mid_attentions,
        };

        Ok(Self {
            conv_in,
            time_embedding,
            add_embedding,
            down_blocks,
            mid_block,
            cfg: cfg.clone(),
        })
    }

    /// `conv_in` applied to the latent `sample`.
    pub(crate) fn conv_in(&self, sample: &Tensor) -> Result<Tensor> {
        conv_forward(&self.conv_in, sample)
    }

    /// Runs the down blocks from `h` (the output of `conv_in`, plus the control embedding in a
    /// ControlNet); returns their output and every skip tensor, `h` first.
    pub(crate) fn down(
        &self,
        h: Tensor,
        emb: &Tensor,
        ctx: &Tensor,
    ) -> Result<(Tensor, Vec<Tensor>)> {
        let mut skips = vec![h.clone()];
        let mut h = h;
        for blk in &self.down_blocks {
            h = blk.forward(&h, emb, ctx, &mut skips)?;
        }
        Ok((h, skips))
    }

    /// The mid block.
    pub(crate) fn mid(&self, h: &Tensor, emb: &Tensor, ctx: &Tensor) -> Result<Tensor> {
        let mut h = self.mid_block.resnets[0].forward(h, Some(emb))?;
        for (a, r) in self
            .mid_block
            .attentions
            .iter()
            .zip(self.mid_block.resnets[1..].iter())
        {
            h = a.forward(&h, ctx)?;
            h = r.forward(&h, Some(emb))?;
        }
        Ok(h)
    }

    /// Time embedding (`[B, temb]`) including SDXL's `add_embedding`.
    pub(crate) fn embed(
        &self,
        sample: &Tensor,
        timestep: f64,
        added: Option<&AddedCond>,
    ) -> Result<Tensor> {
        let b = sample.dim(0)?;
        let dev = sample.device();
        let dtype = sample.dtype();
        let c0 = self.cfg.block_out_channels[0];
        let t = timestep_embedding(
            &vec![timestep; b],
            c0,
            self.cfg.flip_sin_to_cos,
            self.cfg.freq_shift,
            dev,
        )?;
        let mut emb = self.time_embedding.forward(&t.to_dtype(dtype)?)?;
        if let Some(add) = &self.add_embedding {
            let added = match added {
                Some(a) => a,
                None => bail!("UNet config has addition_embed_type text_time: `added` (text_embeds, time_ids) is required"),
            };
            let ids: Vec<f64> = added
                .time_ids
                .to_dtype(candle_core::DType::F64)?
                .flatten_all()?
                .to_vec1::<f64>()?;
            let tdim = self.cfg.addition_time_embed_dim.unwrap_or(0);
            let te = timestep_embedding(
                &ids,
                tdim,
                self.cfg.flip_sin_to_cos,
                self.cfg.freq_shift,
                dev,
            )?;
            let tb = added.text_embeds.dim(0)?;
            let te = te.reshape((tb, ids.len() / tb.max(1) * tdim))?;
            let add_in = Tensor::cat(
                &[&added.text_embeds.to_dtype(dtype)?, &te.to_dtype(dtype)?],
                1,
            )?;
            emb = (emb + add.forward(&add_in)?)?;
        }
        Ok(emb)
    }
}

/// diffusers `UNet2DConditionModel`.
#[derive(Debug, Clone)]
pub struct UNet2DConditionModel {
    encoder: UNetEncoder,
    up_blocks: Vec<UpBlock>,
    conv_norm_out: GroupNorm,
    conv_out: Conv2d,
    cfg: UNetConfig,
}

impl UNet2DConditionModel {
    /// Builds the model from `cfg`, loading weights with diffusers' names from `vb`.
    pub fn new(vb: VarBuilder, cfg: &UNetConfig) -> Result<Self> {
        cfg.validate()?;
        let encoder = UNetEncoder::new(vb.clone(), cfg)?;
        let ch = &cfg.block_out_channels;
        let n = ch.len();
        let Dims {
            heads,
            layers,
            tlayers,
            ctx_dim,
            groups,
            eps,
            temb_dim,
            linear,
        } = Dims::of(cfg)?;

        let rch: Vec<usize> = ch.iter().rev().copied().collect();
        let rheads: Vec<usize> = heads.iter().rev().copied().collect();
        let rlayers: Vec<usize> = layers.iter().rev().copied().collect();
        let rtl: Vec<usize> = tlayers.iter().rev().copied().collect();
        let mut up_blocks = Vec::with_capacity(n);
        let mut prev_c = rch[0];
        for (i, ty) in cfg.up_block_types.iter().enumerate() {
            let out_c = rch[i];
            let in_c = rch[(i + 1).min(n - 1)];
            let bvb = vb.pp("up_blocks").pp(i);
            let cross = ty == "CrossAttnUpBlock2D";
            let nl = rlayers[i] + 1;
            let mut resnets = Vec::new();
            let mut attentions = Vec::new();
            for j in 0..nl {
                let skip_c = if j == nl - 1 { in_c } else { out_c };
                let rin = if j == 0 { prev_c } else { out_c };
                resnets.push(ResnetBlock2D::new(
                    bvb.pp("resnets").pp(j),
                    rin + skip_c,
                    out_c,
                    Some(temb_dim),
                    groups,
                    eps,
                    1.0,
                )?);
                if cross {
                    attentions.push(Transformer2D::new(
                        bvb.pp("attentions").pp(j),
                        out_c,
                        rheads[i],
                        rtl[i],
                        ctx_dim,
                        groups,
                        linear,
                    )?);
                }
            }
            let upsampler = if i + 1 < n {
                Some(Upsample2D::new(bvb.pp("upsamplers").pp(0), out_c, out_c)?)
            } else {
                None
            };
            up_blocks.push(UpBlock {
                resnets,
                attentions,
                upsampler,
            });
            prev_c = out_c;
        }

        let conv_norm_out = GroupNorm::new(groups, ch[0], eps, vb.pp("conv_norm_out"))?;
        let conv_out = conv2d(
            ch[0],
            cfg.out_channels,
            cfg.conv_out_kernel,
            1,
            (cfg.conv_out_kernel - 1) / 2,
            vb.pp("conv_out"),
        )?;
        Ok(Self {
            encoder,
            up_blocks,
            conv_norm_out,
            conv_out,
            cfg: cfg.clone(),
        })
    }

    /// The configuration the model was built from.
    pub fn config(&self) -> &UNetConfig {
        &self.cfg
    }

    /// Predicts noise for `sample` `[B, C, H, W]` at a (possibly fractional) `timestep`, with
    /// `encoder_hidden_states` `[B, L, cross_attention_dim]` and SDXL `added` conditioning.
    ///
    /// Latent sizes that are not multiples of `2^(levels-1)` are handled like diffusers (the
    /// up-samplers target the spatial size of the matching skip connection).
    pub fn forward(
        &self,
        sample: &Tensor,
        timestep: f64,
        encoder_hidden_states: &Tensor,
        added: Option<&AddedCond>,
    ) -> Result<Tensor> {
        self.forward_with_control(sample, timestep, encoder_hidden_states, added, None)
    }

    /// [`Self::forward`] with ControlNet residuals added to the skip connections and to the
    /// mid block's output (diffusers' `down_block_additional_residuals` and
    /// `mid_block_additional_residual`).
    pub fn forward_with_control(
        &self,
        sample: &Tensor,
        timestep: f64,
        encoder_hidden_states: &Tensor,
        added: Option<&AddedCond>,
        control: Option<&crate::sd::controlnet::ControlResiduals>,
    ) -> Result<Tensor> {
        let enc = &self.encoder;
        let emb = enc.embed(sample, timestep, added)?;
        let ctx = encoder_hidden_states;
        let (h, mut skips) = enc.down(enc.conv_in(sample)?, &emb, ctx)?;
        if let Some(c) = control {
            if c.down.len() != skips.len() {
                bail!(
                    "the ControlNet gives {} residuals but the UNet has {} skip connections",
                    c.down.len(),
                    skips.len()
                );
            }
            // Broadcast: pooled (`global_pool_conditions`) residuals are [B, C, 1, 1].
            for (s, r) in skips.iter_mut().zip(&c.down) {
                *s = add_residual(s, r)?;
            }
        }
        let mut h = enc.mid(&h, &emb, ctx)?;
        if let Some(c) = control {
            h = add_residual(&h, &c.mid)?;
        }
        for blk in &self.up_blocks {
            let keep = skips.len().saturating_sub(blk.resnets.len());
            let mut mine = skips.split_off(keep);
            // diffusers forwards the size of the next skip when the input is not a multiple
            // of the overall up factor; that size equals 2x otherwise, so always use it.
            let size = match skips.last() {
                Some(s) if blk.upsampler.is_some() => {
                    let (_, _, sh, sw) = s.dims4()?;
                    Some((sh, sw))
                }
                _ => None,
            };
            h = blk.forward(&h, &emb, ctx, &mut mine, size)?;
        }
        let h = self.conv_norm_out.forward_silu(&h)?;
        conv_forward(&self.conv_out, &h)
    }
}

/// `x + r` in `x`'s dtype; `r` may be spatially pooled (`[B, C, 1, 1]`, a shuffle ControlNet's
/// `global_pool_conditions`) and is then broadcast.
fn add_residual(x: &Tensor, r: &Tensor) -> Result<Tensor> {
    let r = r.to_dtype(x.dtype())?;
    if r.dims() == x.dims() {
        x + r
    } else {
        x.broadcast_add(&r)
    }
}
