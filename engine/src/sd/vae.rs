//! diffusers-equivalent [`AutoencoderKL`] (encoder, decoder, quant convs, tiling) and the
//! posterior [`DiagonalGaussian`].

use super::attention::attention;
use super::config::VaeConfig;
use super::layers::{conv2d, conv_forward, Downsample2D, GroupNorm, ResnetBlock2D, Upsample2D};
use candle_core::{bail, Module, Result, Tensor};
use candle_nn::{Conv2d, Linear, VarBuilder};

const VAE_EPS: f64 = 1e-6;

/// diffusers `Attention` of the VAE mid block: group norm, one head of width = channels,
/// biased `to_q/to_k/to_v/to_out.0`, residual connection.
#[derive(Debug, Clone)]
struct SpatialAttention {
    group_norm: GroupNorm,
    to_q: Linear,
    to_k: Linear,
    to_v: Linear,
    to_out: Linear,
}

impl SpatialAttention {
    fn new(vb: VarBuilder, channels: usize, groups: usize) -> Result<Self> {
        Ok(Self {
            group_norm: GroupNorm::new(groups, channels, VAE_EPS, vb.pp("group_norm"))?,
            to_q: super::layers::linear(channels, channels, vb.pp("to_q"))?,
            to_k: super::layers::linear(channels, channels, vb.pp("to_k"))?,
            to_v: super::layers::linear(channels, channels, vb.pp("to_v"))?,
            to_out: super::layers::linear(channels, channels, vb.pp("to_out").pp("0"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let n = self.group_norm.forward(x)?;
        let seq = n.reshape((b, c, h * w))?.transpose(1, 2)?.contiguous()?;
        let heads = |t: Tensor| t.unsqueeze(1);
        let q = heads(self.to_q.forward(&seq)?)?;
        let k = heads(self.to_k.forward(&seq)?)?;
        let v = heads(self.to_v.forward(&seq)?)?;
        let o = attention(&q, &k, &v, 1.0 / (c as f64).sqrt())?.squeeze(1)?;
        let o = self.to_out.forward(&o)?;
        let o = o.transpose(1, 2)?.reshape((b, c, h, w))?;
        o + x
    }
}

/// `UNetMidBlock2D` of the VAE: resnet, (attention), resnet.
#[derive(Debug, Clone)]
struct VaeMidBlock {
    resnet0: ResnetBlock2D,
    attention: Option<SpatialAttention>,
    resnet1: ResnetBlock2D,
}

impl VaeMidBlock {
    fn new(vb: VarBuilder, c: usize, groups: usize, with_attn: bool) -> Result<Self> {
        let attention = if with_attn {
            Some(SpatialAttention::new(vb.pp("attentions").pp(0), c, groups)?)
        } else {
            None
        };
        Ok(Self {
            resnet0: ResnetBlock2D::new(vb.pp("resnets").pp(0), c, c, None, groups, VAE_EPS, 1.0)?,
            attention,
            resnet1: ResnetBlock2D::new(vb.pp("resnets").pp(1), c, c, None, groups, VAE_EPS, 1.0)?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = self.resnet0.forward(x, None)?;
        if let Some(a) = &self.attention {
            h = a.forward(&h)?;
        }
        self.resnet1.forward(&h, None)
    }
}

/// diffusers `Encoder` (double_z).
#[derive(Debug, Clone)]
struct Encoder {
    conv_in: Conv2d,
    blocks: Vec<(Vec<ResnetBlock2D>, Option<Downsample2D>)>,
    mid: VaeMidBlock,
    norm_out: GroupNorm,
    conv_out: Conv2d,
}

impl Encoder {
    fn new(vb: VarBuilder, cfg: &VaeConfig) -> Result<Self> {
        let ch = &cfg.block_out_channels;
        let g = cfg.norm_num_groups;
        let conv_in = conv2d(cfg.in_channels, ch[0], 3, 1, 1, vb.pp("conv_in"))?;
        let mut blocks = Vec::new();
        let mut out_c = ch[0];
        for i in 0..ch.len() {
            let in_c = out_c;
            out_c = ch[i];
            let bvb = vb.pp("down_blocks").pp(i);
            let resnets = (0..cfg.layers_per_block)
                .map(|j| {
                    let rin = if j == 0 { in_c } else { out_c };
                    ResnetBlock2D::new(bvb.pp("resnets").pp(j), rin, out_c, None, g, VAE_EPS, 1.0)
                })
                .collect::<Result<Vec<_>>>()?;
            let down = if i + 1 < ch.len() {
                Some(Downsample2D::new(
                    bvb.pp("downsamplers").pp(0),
                    out_c,
                    out_c,
                    0,
                )?)
            } else {
                None
            };
            blocks.push((resnets, down));
        }
        let last = ch[ch.len() - 1];
        Ok(Self {
            conv_in,
            blocks,
            mid: VaeMidBlock::new(vb.pp("mid_block"), last, g, cfg.mid_block_add_attention)?,
            norm_out: GroupNorm::new(g, last, VAE_EPS, vb.pp("conv_norm_out"))?,
            conv_out: conv2d(last, 2 * cfg.latent_channels, 3, 1, 1, vb.pp("conv_out"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = conv_forward(&self.conv_in, x)?;
        for (resnets, down) in &self.blocks {
            for r in resnets {
                h = r.forward(&h, None)?;
            }
            if let Some(d) = down {
                h = d.forward(&h)?;
            }
        }
        h = self.mid.forward(&h)?;
        conv_forward(&self.conv_out, &self.norm_out.forward_silu(&h)?)
    }
}

/// diffusers `Decoder`.
#[derive(Debug, Clone)]
struct Decoder {
    conv_in: Conv2d,
    mid: VaeMidBlock,
    blocks: Vec<(Vec<ResnetBlock2D>, Option<Upsample2D>)>,
    norm_out: GroupNorm,
    conv_out: Conv2d,
}

impl Decoder {
    fn new(vb: VarBuilder, cfg: &VaeConfig) -> Result<Self> {
        let rch: Vec<usize> = cfg.block_out_channels.iter().rev().copied().collect();
        let g = cfg.norm_num_groups;
        let conv_in = conv2d(cfg.latent_channels, rch[0], 3, 1, 1, vb.pp("conv_in"))?;
        let mid = VaeMidBlock::new(vb.pp("mid_block"), rch[0], g, cfg.mid_block_add_attention)?;
        let mut blocks = Vec::new();
        let mut out_c = rch[0];
        for i in 0..rch.len() {
            let prev = out_c;
            out_c = rch[i];
            let bvb = vb.pp("up_blocks").pp(i);
            let resnets = (0..cfg.layers_per_block + 1)
                .map(|j| {
                    let rin = if j == 0 { prev } else { out_c };
                    ResnetBlock2D::new(bvb.pp("resnets").pp(j), rin, out_c, None, g, VAE_EPS, 1.0)
                })
                .collect::<Result<Vec<_>>>()?;
            let up = if i + 1 < rch.len() {
                Some(Upsample2D::new(bvb.pp("upsamplers").pp(0), out_c, out_c)?)
            } else {
                None
            };
            blocks.push((resnets, up));
        }
        let c0 = cfg.block_out_channels[0];
        Ok(Self {
            conv_in,
            mid,
            blocks,
            norm_out: GroupNorm::new(g, c0, VAE_EPS, vb.pp("conv_norm_out"))?,
            conv_out: conv2d(c0, cfg.out_channels, 3, 1, 1, vb.pp("conv_out"))?,
        })
    }

    fn forward(&self, z: &Tensor) -> Result<Tensor> {
        let mut h = self.mid.forward(&conv_forward(&self.conv_in, z)?)?;
        for (resnets, up) in &self.blocks {
            for r in resnets {
                h = r.forward(&h, None)?;
            }
            if let Some(u) = up {
                h = u.forward(&h, None)?;
            }
        }
        conv_forward(&self.conv_out, &self.norm_out.forward_silu(&h)?)
    }
}

/// diffusers `DiagonalGaussianDistribution` (the VAE posterior).
#[derive(Debug, Clone)]
pub struct DiagonalGaussian {
    /// Mean `[B, latent, h, w]`.
    pub mean: Tensor,
    /// Log-variance clamped to [-30, 20].
    pub logvar: Tensor,
    /// `exp(0.5 * logvar)`.
    pub std: Tensor,
}

impl DiagonalGaussian {
    /// Splits encoder moments `[B, 2·latent, h, w]` into mean / logvar along channels.
    pub fn from_moments(moments: &Tensor) -> Result<Self> {
        let c = moments.dim(1)?;
        if c % 2 != 0 {
            bail!("VAE moments have an odd channel count {c}");
        }
        let mean = moments.narrow(1, 0, c / 2)?.contiguous()?;
        let logvar = moments.narrow(1, c / 2, c / 2)?.clamp(-30f32, 20f32)?;
        let std = (&logvar * 0.5)?.exp()?;
        Ok(Self { mean, logvar, std })
    }

    /// `mean + std * noise` (diffusers' `sample` with externally drawn noise).
    pub fn sample_with(&self, noise: &Tensor) -> Result<Tensor> {
        self.mean.add(&self.std.mul(noise)?)
    }
}

/// diffusers `AutoencoderKL`.
#[derive(Debug, Clone)]
pub struct AutoencoderKL {
    encoder: Encoder,
    decoder: Decoder,
    quant_conv: Option<Conv2d>,
    post_quant_conv: Option<Conv2d>,
    cfg: VaeConfig,
    /// Image tile size used by tiled encode/decode (diffusers `tile_sample_min_size`).
    pub tile_sample_min_size: usize,
    /// Latent tile size (diffusers `tile_latent_min_size`).
    pub tile_latent_min_size: usize,
    /// Tile overlap fraction (0.25).
    pub tile_overlap_factor: f64,
}

impl AutoencoderKL {
    /// Builds the VAE from `cfg`, loading weights with diffusers' names from `vb`.
    pub fn new(vb: VarBuilder, cfg: &VaeConfig) -> Result<Self> {
        cfg.validate()?;
        let lc = cfg.latent_channels;
        let quant_conv = if cfg.use_quant_conv {
            Some(conv2d(2 * lc, 2 * lc, 1, 1, 0, vb.pp("quant_conv"))?)
        } else {
            None
        };
        let post_quant_conv = if cfg.use_post_quant_conv {
            Some(conv2d(lc, lc, 1, 1, 0, vb.pp("post_quant_conv"))?)
        } else {
            None
        };
        let tile = cfg.tile_sample_size()?;
        Ok(Self {
            encoder: Encoder::new(vb.pp("encoder"), cfg)?,
            decoder: Decoder::new(vb.pp("decoder"), cfg)?,
            quant_conv,
            post_quant_conv,
            tile_sample_min_size: tile,
            tile_latent_min_size: tile / cfg.scale_factor(),
            tile_overlap_factor: 0.25,
            cfg: cfg.clone(),
        })
    }

    /// The configuration the model was built from.
    pub fn config(&self) -> &VaeConfig {
        &self.cfg
    }

    fn encode_moments(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.encoder.forward(x)?;
        match &self.quant_conv {
            Some(q) => conv_forward(q, &h),
            None => Ok(h),
        }
    }

    fn decode_tile(&self, z: &Tensor) -> Result<Tensor> {
        let z = match &self.post_quant_conv {
            Some(p) => conv_forward(p, z)?,
            None => z.clone(),
        };
        self.decoder.forward(&z)
    }

    /// Encodes images `x` `[B, 3, H, W]` in [-1, 1] into the latent posterior.
    pub fn encode(&self, x: &Tensor) -> Result<DiagonalGaussian> {
        DiagonalGaussian::from_moments(&self.encode_moments(x)?)
    }

    /// Decodes latents `z` (already divided by `scaling_factor`) into images in about [-1, 1].
    pub fn decode(&self, z: &Tensor) -> Result<Tensor> {
        self.decode_tile(z)
    }

    /// diffusers' tiled encoder (`_tiled_encode`), tiles of `tile_sample_min_size`.
    pub fn encode_tiled(&self, x: &Tensor) -> Result<DiagonalGaussian> {
        let tile = self.tile_sample_min_size;
        let overlap = (tile as f64 * (1.0 - self.tile_overlap_factor)) as usize;
        let blend = (self.tile_latent_min_size as f64 * self.tile_overlap_factor) as usize;
        let limit = self.tile_latent_min_size - blend;
        let m = tiled(x, tile, overlap, blend, limit, |t| self.encode_moments(t))?;
        DiagonalGaussian::from_moments(&m)
    }

    /// diffusers' `tiled_decode`, latent tiles of `tile_latent_min_size`.
    pub fn decode_tiled(&self, z: &Tensor) -> Result<Tensor> {
        let tile = self.tile_latent_min_size;
        let overlap = (tile as f64 * (1.0 - self.tile_overlap_factor)) as usize;
        let blend = (self.tile_sample_min_size as f64 * self.tile_overlap_factor) as usize;
        let limit = self.tile_sample_min_size - blend;
        tiled(z, tile, overlap, blend, limit, |t| self.decode_tile(t))
    }

    /// Encode, tiling only when H or W exceeds `tile_sample_min_size` (diffusers with
    /// `enable_tiling()`).
    pub fn encode_auto(&self, x: &Tensor) -> Result<DiagonalGaussian> {
        let (_, _, h, w) = x.dims4()?;
        if h > self.tile_sample_min_size || w > self.tile_sample_min_size {
            self.encode_tiled(x)
        } else {
            self.encode(x)
        }
    }

    /// Decode, tiling only when h or w exceeds `tile_latent_min_size` (diffusers with
    /// `enable_tiling()`).
    pub fn decode_auto(&self, z: &Tensor) -> Result<Tensor> {
        let (_, _, h, w) = z.dims4()?;
        if h > self.tile_latent_min_size || w > self.tile_latent_min_size {
            self.decode_tiled(z)
        } else {
            self.decode(z)
        }
    }
}

/// Linear ramp weights `y / extent` (f32 of the f64 ratio, as torch does) for `extent` rows.
fn ramps(extent: usize, dev: &candle_core::Device) -> Result<(Tensor, Tensor)> {
    let up: Vec<f32> = (0..extent)
        .map(|y| (y as f64 / extent as f64) as f32)
        .collect();
    let down: Vec<f32> = (0..extent)
        .map(|y| (1.0 - y as f64 / extent as f64) as f32)
        .collect();
    Ok((Tensor::new(down, dev)?, Tensor::new(up, dev)?))
}

/// diffusers `blend_v` (dim 2) / `blend_h` (dim 3): returns `b` with its first `extent`
/// rows/cols replaced by the linear cross-fade from the end of `a`.
fn blend(a: &Tensor, b: &Tensor, extent: usize, dim: usize) -> Result<Tensor> {
    let extent = extent.min(a.dim(dim)?).min(b.dim(dim)?);
    if extent == 0 {
        return Ok(b.clone());
    }
    let (down, up) = ramps(extent, b.device())?;
    let shape: Vec<usize> = (0..4).map(|d| if d == dim { extent } else { 1 }).collect();
    let (down, up) = (down.reshape(shape.clone())?, up.reshape(shape)?);
    let a_end = a.narrow(dim, a.dim(dim)? - extent, extent)?;
    let b_start = b.narrow(dim, 0, extent)?;
    let mixed = (a_end.broadcast_mul(&down)? + b_start.broadcast_mul(&up)?)?;
    let rest = b.dim(dim)? - extent;
    if rest == 0 {
        Ok(mixed)
    } else {
        Tensor::cat(&[&mixed, &b.narrow(dim, extent, rest)?], dim)
    }
}

/// The shared tiling loop of diffusers' `_tiled_encode` / `tiled_decode`: tiles of `tile`
/// starting every `overlap` pixels, each mapped by `f`, blended with the (already blended)
/// tile above and to the left, cropped to `limit` and concatenated.
fn tiled(
    x: &Tensor,
    tile: usize,
    overlap: usize,
    blend_extent: usize,
    limit: usize,
    f: impl Fn(&Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    if overlap == 0 || tile == 0 {
        bail!("VAE tiling: tile size {tile} too small for overlap");
    }
    let mut rows: Vec<Vec<Tensor>> = Vec::new();
    for i in (0..h).step_by(overlap) {
        let mut row = Vec::new();
        for j in (0..w).step_by(overlap) {
            let t = x
                .narrow(2, i, tile.min(h - i))?
                .narrow(3, j, tile.min(w - j))?;
            row.push(f(&t.contiguous()?)?);
        }
        rows.push(row);
    }
    let mut out_rows = Vec::with_capacity(rows.len());
    for i in 0..rows.len() {
        let mut out_row = Vec::with_capacity(rows[i].len());
        for j in 0..rows[i].len() {
            let mut t = rows[i][j].clone();
            if i > 0 {
                t = blend(&rows[i - 1][j], &t, blend_extent, 2)?;
            }
            if j > 0 {
                t = blend(&rows[i][j - 1], &t, blend_extent, 3)?;
            }
            // diffusers blends in place, so later tiles see the blended neighbours.
            rows[i][j] = t.clone();
            let (_, _, th, tw) = t.dims4()?;
            out_row.push(t.narrow(2, 0, limit.min(th))?.narrow(3, 0, limit.min(tw))?);
        }
        out_rows.push(Tensor::cat(&out_row, 3)?);
    }
    Tensor::cat(&out_rows, 2)
}
