//! Building blocks shared by the UNet and the VAE, mirroring diffusers' module and weight names:
//! [`GroupNorm`], [`ResnetBlock2D`], [`Downsample2D`], [`Upsample2D`] and the sinusoidal
//! [`timestep_embedding`].

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{Conv2d, Conv2dConfig, Linear, VarBuilder};

/// `torch.nn.GroupNorm` with affine weights; statistics are accumulated in f64 so the result
/// does not depend on summation order (torch uses a blocked f32 reduction).
#[derive(Debug, Clone)]
pub struct GroupNorm {
    weight: Tensor,
    bias: Tensor,
    groups: usize,
    eps: f64,
}

impl GroupNorm {
    /// Loads `weight`/`bias` of size `channels` from `vb`.
    pub fn new(groups: usize, channels: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        if groups == 0 || !channels.is_multiple_of(groups) {
            candle_core::bail!(
                "GroupNorm {}: {channels} channels not divisible by {groups} groups",
                vb.prefix()
            );
        }
        Ok(Self {
            weight: vb.get_with_hints(channels, "weight", candle_nn::Init::Const(1.0))?,
            bias: vb.get_with_hints(channels, "bias", candle_nn::Init::Const(0.0))?,
            groups,
            eps,
        })
    }
}

impl Module for GroupNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        if dims.len() < 3 {
            candle_core::bail!("GroupNorm expects rank >= 3, got {:?}", dims);
        }
        let (b, c) = (dims[0], dims[1]);
        let n = x.elem_count() / (b * self.groups);
        let dtype = x.dtype();
        let xg = x.reshape((b, self.groups, n))?;
        let x64 = xg.to_dtype(DType::F64)?;
        let mean = x64.mean_keepdim(2)?;
        let var = x64.broadcast_sub(&mean)?.sqr()?.mean_keepdim(2)?;
        drop(x64);
        let rstd = (var + self.eps)?.sqrt()?.recip()?;
        let compute = if dtype == DType::F64 {
            DType::F64
        } else {
            DType::F32
        };
        let mean = mean.to_dtype(compute)?;
        let rstd = rstd.to_dtype(compute)?;
        let normed = xg
            .to_dtype(compute)?
            .broadcast_sub(&mean)?
            .broadcast_mul(&rstd)?;
        let mut wdims = vec![1usize; dims.len()];
        wdims[1] = c;
        let w = self.weight.to_dtype(compute)?.reshape(wdims.clone())?;
        let bias = self.bias.to_dtype(compute)?.reshape(wdims)?;
        normed
            .reshape(dims)?
            .broadcast_mul(&w)?
            .broadcast_add(&bias)?
            .to_dtype(dtype)
    }
}

/// `nn.Conv2d` with `padding`, `stride` 1 unless given.
pub fn conv2d(
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    padding: usize,
    vb: VarBuilder,
) -> Result<Conv2d> {
    let cfg = Conv2dConfig {
        padding,
        stride,
        ..Default::default()
    };
    candle_nn::conv2d(cin, cout, k, cfg, vb)
}

/// diffusers `ResnetBlock2D` (`resnet_time_scale_shift = "default"`, SiLU).
#[derive(Debug, Clone)]
pub struct ResnetBlock2D {
    norm1: GroupNorm,
    conv1: Conv2d,
    time_emb_proj: Option<Linear>,
    norm2: GroupNorm,
    conv2: Conv2d,
    conv_shortcut: Option<Conv2d>,
    output_scale_factor: f64,
}

impl ResnetBlock2D {
    /// `temb_channels = None` for the VAE (no `time_emb_proj`).
    pub fn new(
        vb: VarBuilder,
        cin: usize,
        cout: usize,
        temb_channels: Option<usize>,
        groups: usize,
        eps: f64,
        output_scale_factor: f64,
    ) -> Result<Self> {
        let time_emb_proj = match temb_channels {
            Some(t) => Some(candle_nn::linear(t, cout, vb.pp("time_emb_proj"))?),
            None => None,
        };
        let conv_shortcut = if cin != cout {
            Some(conv2d(cin, cout, 1, 1, 0, vb.pp("conv_shortcut"))?)
        } else {
            None
        };
        Ok(Self {
            norm1: GroupNorm::new(groups, cin, eps, vb.pp("norm1"))?,
            conv1: conv2d(cin, cout, 3, 1, 1, vb.pp("conv1"))?,
            time_emb_proj,
            norm2: GroupNorm::new(groups, cout, eps, vb.pp("norm2"))?,
            conv2: conv2d(cout, cout, 3, 1, 1, vb.pp("conv2"))?,
            conv_shortcut,
            output_scale_factor,
        })
    }

    /// `x` `[B, C, H, W]`, `temb` `[B, T]` (required when the block has `time_emb_proj`).
    pub fn forward(&self, x: &Tensor, temb: Option<&Tensor>) -> Result<Tensor> {
        let mut h = self.conv1.forward(&self.norm1.forward(x)?.silu()?)?;
        if let (Some(proj), Some(t)) = (&self.time_emb_proj, temb) {
            let t = proj.forward(&t.silu()?)?.unsqueeze(2)?.unsqueeze(3)?;
            h = h.broadcast_add(&t)?;
        }
        let h = self.conv2.forward(&self.norm2.forward(&h)?.silu()?)?;
        let skip = match &self.conv_shortcut {
            Some(c) => c.forward(x)?,
            None => x.clone(),
        };
        let out = (skip + h)?;
        if self.output_scale_factor == 1.0 {
            Ok(out)
        } else {
            out / self.output_scale_factor
        }
    }
}

/// diffusers `Downsample2D` with a convolution (`downsamplers.0.conv`); `padding = 0` pads
/// right/bottom by one like diffusers.
#[derive(Debug, Clone)]
pub struct Downsample2D {
    conv: Conv2d,
    padding: usize,
}

impl Downsample2D {
    /// Loads `conv` (3x3, stride 2).
    pub fn new(vb: VarBuilder, cin: usize, cout: usize, padding: usize) -> Result<Self> {
        Ok(Self {
            conv: conv2d(cin, cout, 3, 2, padding, vb.pp("conv"))?,
            padding,
        })
    }
}

impl Module for Downsample2D {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if self.padding == 0 {
            let x = x.pad_with_zeros(3, 0, 1)?.pad_with_zeros(2, 0, 1)?;
            self.conv.forward(&x)
        } else {
            self.conv.forward(x)
        }
    }
}

/// diffusers `Upsample2D`: nearest 2x (or to an explicit size) then a 3x3 conv.
#[derive(Debug, Clone)]
pub struct Upsample2D {
    conv: Conv2d,
}

impl Upsample2D {
    /// Loads `conv`.
    pub fn new(vb: VarBuilder, cin: usize, cout: usize) -> Result<Self> {
        Ok(Self {
            conv: conv2d(cin, cout, 3, 1, 1, vb.pp("conv"))?,
        })
    }

    /// `size = Some((h, w))` reproduces `F.interpolate(size=..., mode="nearest")`.
    pub fn forward(&self, x: &Tensor, size: Option<(usize, usize)>) -> Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        let (th, tw) = size.unwrap_or((2 * h, 2 * w));
        let up = x.upsample_nearest2d(th, tw)?;
        self.conv.forward(&up)
    }
}

/// diffusers `get_timestep_embedding` (max_period 10000, scale 1) in f32: returns
/// `[N, dim]` for `N` (possibly fractional) timesteps.
pub fn timestep_embedding(
    timesteps: &[f64],
    dim: usize,
    flip_sin_to_cos: bool,
    freq_shift: f64,
    device: &Device,
) -> Result<Tensor> {
    let half = dim / 2;
    // torch: (-ln(10000) * arange(half, f32)) / (half - shift), all f32 ops, then exp.
    let neg_log = -(10000f64.ln()) as f32;
    let denom = (half as f64 - freq_shift) as f32;
    let freqs: Vec<f32> = (0..half)
        .map(|i| {
            let e = (neg_log * i as f32) / denom;
            (e as f64).exp() as f32
        })
        .collect();
    let mut out = Vec::with_capacity(timesteps.len() * dim);
    for &t in timesteps {
        let t = t as f32;
        let args: Vec<f32> = freqs.iter().map(|f| t * f).collect();
        let sin = args.iter().map(|a| (*a as f64).sin() as f32);
        let cos = args.iter().map(|a| (*a as f64).cos() as f32);
        if flip_sin_to_cos {
            out.extend(cos);
            out.extend(sin);
        } else {
            out.extend(sin);
            out.extend(cos);
        }
        if dim % 2 == 1 {
            out.push(0.0);
        }
    }
    Tensor::from_vec(out, (timesteps.len(), dim), device)
}

/// diffusers `TimestepEmbedding`: `linear_1`, SiLU, `linear_2`.
#[derive(Debug, Clone)]
pub struct TimestepEmbedding {
    linear_1: Linear,
    linear_2: Linear,
}

impl TimestepEmbedding {
    /// Loads `linear_1` (in → out) and `linear_2` (out → out).
    pub fn new(vb: VarBuilder, cin: usize, cout: usize) -> Result<Self> {
        Ok(Self {
            linear_1: candle_nn::linear(cin, cout, vb.pp("linear_1"))?,
            linear_2: candle_nn::linear(cout, cout, vb.pp("linear_2"))?,
        })
    }
}

impl Module for TimestepEmbedding {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.linear_2.forward(&self.linear_1.forward(x)?.silu()?)
    }
}
