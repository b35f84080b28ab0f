//! Building blocks shared by the UNet and the VAE, mirroring diffusers' module and weight names:
//! [`GroupNorm`], [`ResnetBlock2D`], [`Downsample2D`], [`Upsample2D`] and the sinusoidal
//! [`timestep_embedding`], plus [`conv_forward`] / [`conv_forward_fused`], which every
//! convolution of the crate goes through (on CPU: `kernels::conv`), and detached weight loaders.

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{Conv2d, Conv2dConfig, Linear, VarBuilder};
pub use kernels::conv::Activation;
use kernels::conv::{ConvParams, Epilogue};

/// `torch.nn.GroupNorm` with affine weights. Statistics: f32 per-channel sums (candle's
/// 32-accumulator reduction), combined per group in f64, two-pass variance; no f64 copy of the
/// activation is made.
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
            weight: vb
                .get_with_hints(channels, "weight", candle_nn::Init::Const(1.0))?
                .detach(),
            bias: vb
                .get_with_hints(channels, "bias", candle_nn::Init::Const(0.0))?
                .detach(),
            groups,
            eps,
        })
    }
}

impl GroupNorm {
    /// `silu(group_norm(x))`, as ResNet blocks and the output heads use it: one fused pass on
    /// the CPU (`kernels::group_norm`), else the two ops.
    pub fn forward_silu(&self, x: &Tensor) -> Result<Tensor> {
        match self.fused(x, true)? {
            Some(y) => Ok(y),
            None => self.forward(x)?.silu(),
        }
    }

    /// The fused CPU kernel (statistics in one read, then scale, shift and the optional SiLU in
    /// one read and write), when it applies: CPU, not recording a backward (the op has none).
    fn fused(&self, x: &Tensor, silu: bool) -> Result<Option<Tensor>> {
        if grad_mode() || !x.device().is_cpu() || x.dtype() == DType::F64 || x.rank() < 3 {
            return Ok(None);
        }
        let y = kernels::group_norm::group_norm(
            x,
            &self.weight,
            &self.bias,
            self.groups,
            self.eps,
            silu,
        )?;
        Ok(Some(y))
    }
}

impl Module for GroupNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self.fused(x, false)? {
            Some(y) => Ok(y),
            None => self.forward_unfused(x),
        }
    }
}

impl GroupNorm {
    /// The tensor-op GroupNorm (any device; differentiable). Same arithmetic as torch's CPU kernel: per-group mean and (two-pass) variance, folded
    /// into a per-(batch, channel) `scale = rstd·γ` and `shift = β − mean·scale`, then
    /// `y = x·scale + shift`. Only `[B, G]` statistics are computed in f64; the activation is
    /// never copied to f64 (sums use candle's f32 reductions with 32 partial accumulators).
    fn forward_unfused(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        if dims.len() < 3 {
            candle_core::bail!("GroupNorm expects rank >= 3, got {:?}", dims);
        }
        let (b, c) = (dims[0], dims[1]);
        let cg = c / self.groups;
        let spatial = x.elem_count() / (b * c);
        let n = cg * spatial;
        let dtype = x.dtype();
        let compute = if dtype == DType::F64 {
            DType::F64
        } else {
            DType::F32
        };
        let xc = x.to_dtype(compute)?.contiguous()?;
        // Two-level sums (per channel, then per group) keep the f32 rounding error small.
        let x4 = xc.reshape((b, self.groups, cg, spatial))?;
        let mean = (x4.sum_keepdim(3)?.to_dtype(DType::F64)?.sum_keepdim(2)? / n as f64)?;
        let centered = x4.broadcast_sub(&mean.to_dtype(compute)?)?;
        let var = (centered
            .sqr()?
            .sum_keepdim(3)?
            .to_dtype(DType::F64)?
            .sum_keepdim(2)?
            / n as f64)?;
        drop(centered);
        let rstd = (var + self.eps)?.sqrt()?.recip()?; // [b, g, 1, 1]
        let w = self
            .weight
            .to_dtype(DType::F64)?
            .reshape((1, self.groups, cg, 1))?;
        let bias = self
            .bias
            .to_dtype(DType::F64)?
            .reshape((1, self.groups, cg, 1))?;
        let scale = w.broadcast_mul(&rstd)?; // [b, g, cg, 1]
        let shift = bias.broadcast_sub(&scale.broadcast_mul(&mean)?)?;
        let scale = scale.to_dtype(compute)?;
        let shift = shift.to_dtype(compute)?;
        x4.broadcast_mul(&scale)?
            .broadcast_add(&shift)?
            .reshape(dims)?
            .to_dtype(dtype)
    }
}

thread_local! {
    /// Set while a trainer builds and runs a differentiable forward pass on this thread.
    static GRAD_MODE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the current thread is in training (differentiable) mode: convolutions take
/// candle's path (which records a backward), attention takes `kernels::attention::attention_trainable`
/// (chunked recompute backward), and linear weights computed from trainable `Var`s keep their
/// graph.
pub(crate) fn grad_mode() -> bool {
    GRAD_MODE.with(|g| g.get())
}

/// Softmax over the last dimension: candle's fused kernel, or in [`grad_mode`] one made of
/// differentiable ops, since the fused kernel has no backward (the row maximum is only a shift,
/// so it is detached; `-inf` entries, e.g. a causal mask, give 0 as in the fused kernel). The
/// UNet's attention and the CLIP text encoder share it.
pub(crate) fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    if grad_mode() {
        let m = x.max_keepdim(candle_core::D::Minus1)?.detach();
        let e = x.broadcast_sub(&m)?.exp()?;
        e.broadcast_div(&e.sum_keepdim(candle_core::D::Minus1)?)
    } else {
        candle_nn::ops::softmax_last_dim(x)
    }
}

/// Turns [`grad_mode`] on for this thread until the guard is dropped.
pub(crate) struct GradModeGuard(bool);

pub(crate) fn enable_grad_mode() -> GradModeGuard {
    GradModeGuard(GRAD_MODE.with(|g| g.replace(true)))
}

impl Drop for GradModeGuard {
    fn drop(&mut self) {
        let prev = self.0;
        GRAD_MODE.with(|g| g.set(prev));
    }
}

/// Forward of a (diffusers-built) [`Conv2d`]: [`conv_forward_fused`] with no activation and
/// no residual.
pub fn conv_forward(conv: &Conv2d, x: &Tensor) -> Result<Tensor> {
    conv_forward_fused(conv, &[x], Activation::None, None)
}

/// `activation(conv(cat(inputs, dim 1)) + bias) + residual` for a (diffusers-built)
/// [`Conv2d`]. f32 CPU tensors outside grad mode go through [`kernels::conv::conv2d`]
/// (panelled im2col + gemm, the inputs never concatenated, the bias, activation and residual
/// applied per panel: docs/ARCHITECTURE.md §8); grad mode, other devices and dtypes, and
/// grouped convolutions concatenate and use candle's convolution (whose backward candle has).
pub fn conv_forward_fused(
    conv: &Conv2d,
    inputs: &[&Tensor],
    activation: Activation,
    residual: Option<&Tensor>,
) -> Result<Tensor> {
    let cfg = conv.config();
    let f32_cpu = |t: &Tensor| t.device().is_cpu() && t.dtype() == DType::F32;
    let fast = !grad_mode()
        && cfg.groups == 1
        && inputs.iter().all(|t| f32_cpu(t))
        && f32_cpu(conv.weight())
        && conv.bias().is_none_or(f32_cpu)
        && residual.is_none_or(f32_cpu);
    if fast {
        let params = ConvParams {
            stride: cfg.stride,
            padding: cfg.padding,
            dilation: cfg.dilation,
        };
        let epilogue = Epilogue {
            bias: conv.bias(),
            activation,
            residual,
        };
        return kernels::conv::conv2d(inputs, conv.weight(), params, epilogue);
    }
    let x = match inputs {
        [x] => (*x).clone(),
        _ => Tensor::cat(inputs, 1)?,
    };
    let y = conv.forward(&x)?;
    let y = match activation {
        Activation::None => y,
        Activation::Relu => y.relu()?,
        Activation::Silu => y.silu()?,
    };
    match residual {
        Some(r) => y + r,
        None => Ok(y),
    }
}

/// `nn.Conv2d` with `padding`, `stride` 1 unless given.
///
/// All weights of this crate are loaded *detached*: the models are inference-only, and a weight
/// that is a candle `Var` (e.g. from a `VarMap`) would otherwise make every activation record
/// its inputs for backprop, keeping the whole forward graph alive until the output is dropped.
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
    let c = candle_nn::conv2d(cin, cout, k, cfg, vb)?;
    Ok(Conv2d::new(
        c.weight().detach(),
        c.bias().map(|b| b.detach()),
        cfg,
    ))
}

/// A linear weight as the layer keeps it: a `Var` is detached like in [`conv2d`]; in
/// [`grad_mode`] a weight *computed* from trainable `Var`s (a LoRA-merged `W + s·up·down`)
/// keeps its graph so that gradients reach the adapters.
fn linear_weight(t: &Tensor) -> Tensor {
    if grad_mode() && !t.is_variable() {
        t.clone()
    } else {
        t.detach()
    }
}

/// `nn.Linear` (weight `[out, in]`, bias `[out]`), detached like [`conv2d`] (see
/// [`linear_weight`] for training).
pub fn linear(cin: usize, cout: usize, vb: VarBuilder) -> Result<Linear> {
    let l = candle_nn::linear(cin, cout, vb)?;
    Ok(Linear::new(
        linear_weight(l.weight()),
        l.bias().map(|b| b.detach()),
    ))
}

/// `nn.Linear(bias=False)`, detached like [`conv2d`] (see [`linear_weight`] for training).
pub fn linear_no_bias(cin: usize, cout: usize, vb: VarBuilder) -> Result<Linear> {
    let l = candle_nn::linear_no_bias(cin, cout, vb)?;
    Ok(Linear::new(linear_weight(l.weight()), None))
}

/// `nn.LayerNorm(dim, eps)` with affine weight and bias, detached like [`conv2d`].
pub fn layer_norm(dim: usize, eps: f64, vb: VarBuilder) -> Result<candle_nn::LayerNorm> {
    let w = vb.get_with_hints(dim, "weight", candle_nn::Init::Const(1.0))?;
    let b = vb.get_with_hints(dim, "bias", candle_nn::Init::Const(0.0))?;
    Ok(candle_nn::LayerNorm::new(w.detach(), b.detach(), eps))
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
            Some(t) => Some(linear(t, cout, vb.pp("time_emb_proj"))?),
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
        let mut h = conv_forward(&self.conv1, &self.norm1.forward_silu(x)?)?;
        if let (Some(proj), Some(t)) = (&self.time_emb_proj, temb) {
            let t = proj.forward(&t.silu()?)?.unsqueeze(2)?.unsqueeze(3)?;
            h = h.broadcast_add(&t)?;
        }
        let skip = match &self.conv_shortcut {
            Some(c) => conv_forward(c, x)?,
            None => x.clone(),
        };
        // conv2 + bias + skip in one output pass.
        let h = self.norm2.forward_silu(&h)?;
        let out = conv_forward_fused(&self.conv2, &[&h], Activation::None, Some(&skip))?;
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
            conv_forward(&self.conv, &x)
        } else {
            conv_forward(&self.conv, x)
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
        conv_forward(&self.conv, &up)
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
            linear_1: linear(cin, cout, vb.pp("linear_1"))?,
            linear_2: linear(cout, cout, vb.pp("linear_2"))?,
        })
    }
}

impl Module for TimestepEmbedding {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.linear_2.forward(&self.linear_1.forward(x)?.silu()?)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The largest absolute difference of two tensors (shared by the crate's unit tests).
    pub(crate) fn max_abs(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    #[test]
    fn conv_matches_candle() {
        let dev = Device::Cpu;
        // (cin, cout, k, stride, padding, b, h, w)
        let cases = [
            (5, 7, 3, 1, 1, 2, 9, 11),
            (5, 7, 3, 2, 1, 2, 9, 11),
            (5, 7, 3, 2, 0, 1, 10, 8),
            (4, 6, 1, 1, 0, 2, 5, 3),
            (3, 4, 1, 2, 0, 1, 7, 7),
            (3, 4, 5, 1, 2, 3, 6, 4),
        ];
        for (cin, cout, k, stride, padding, b, h, w) in cases {
            let wt = Tensor::randn(0f32, 1.0, (cout, cin, k, k), &dev).unwrap();
            let bias = Tensor::randn(0f32, 1.0, cout, &dev).unwrap();
            let cfg = Conv2dConfig {
                padding,
                stride,
                ..Default::default()
            };
            let conv = Conv2d::new(wt, Some(bias), cfg);
            let x = Tensor::randn(0f32, 1.0, (b, cin, h, w), &dev).unwrap();
            let want = conv.forward(&x).unwrap();
            // Float tolerance relative to the outputs' size: the inputs are unseeded N(0, 1), so
            // a k = 5 case sums 75 products into values near 30, where summing in another order
            // (our im2col GEMM vs candle's conv) moves the last bits by ~1e-5. A wrong
            // convolution is off by O(1).
            let tol = 2e-6
                * want
                    .abs()
                    .unwrap()
                    .max_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap()
                    .max(1.0);
            let got = conv_forward(&conv, &x).unwrap();
            assert_eq!(got.dims(), want.dims());
            let d = max_abs(&got, &want);
            assert!(
                d <= tol,
                "case {cin} {cout} {k} {stride} {padding}: diff {d} > {tol}"
            );
            // Two input pieces, SiLU and a residual.
            let (x1, x2) = (x.narrow(1, 0, 1).unwrap(), x.narrow(1, 1, cin - 1).unwrap());
            let res = want.randn_like(0.0, 1.0).unwrap();
            let got = conv_forward_fused(&conv, &[&x1, &x2], Activation::Silu, Some(&res)).unwrap();
            let fused_want = (want.silu().unwrap() + &res).unwrap();
            let d = max_abs(&got, &fused_want);
            assert!(d <= tol, "fused case {cin} {cout} {k}: diff {d} > {tol}");
            // Non-contiguous input.
            let xt = x.transpose(2, 3).unwrap();
            let got = conv_forward(&conv, &xt).unwrap();
            let want = conv.forward(&xt.contiguous().unwrap()).unwrap();
            assert!(max_abs(&got, &want) <= tol);
        }
    }

    /// In grad mode [`conv_forward`] records a backward (candle's convolution): its input
    /// gradient equals candle's conv2d backward, for strides and paddings (candle's own backward
    /// fails for a stride-2 5×5 kernel on odd sizes, so that case is not compared).
    #[test]
    fn conv_input_gradient_matches_candle() {
        let dev = Device::Cpu;
        let _grad = enable_grad_mode();
        for (cin, cout, k, stride, padding, b, h, w) in [
            (5, 7, 3, 1, 1, 2, 9, 11),
            (5, 7, 3, 2, 1, 2, 9, 11),
            (3, 4, 5, 1, 2, 1, 7, 6),
        ] {
            let wt = Tensor::randn(0f32, 1.0, (cout, cin, k, k), &dev).unwrap();
            let conv = Conv2d::new(
                wt,
                None,
                Conv2dConfig {
                    padding,
                    stride,
                    ..Default::default()
                },
            );
            let x = candle_core::Var::randn(0f32, 1.0, (b, cin, h, w), &dev).unwrap();
            let out_w = conv
                .forward(x.as_tensor())
                .unwrap()
                .randn_like(0.0, 1.0)
                .unwrap();
            let grad_of = |y: Tensor| {
                let g = (y * &out_w).unwrap().sum_all().unwrap().backward().unwrap();
                g.get(x.as_tensor()).expect("input gradient").clone()
            };
            let want = grad_of(conv.forward(x.as_tensor()).unwrap());
            let got = grad_of(conv_forward(&conv, x.as_tensor()).unwrap());
            let d = max_abs(&got, &want);
            assert!(
                d < 1e-4,
                "case {cin} {cout} {k} {stride} {padding}: diff {d}"
            );
        }
    }

    #[test]
    fn group_norm_matches_f64_reference() {
        let dev = Device::Cpu;
        let vm = candle_nn::VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, DType::F32, &dev);
        let gn = GroupNorm::new(4, 8, 1e-5, vb.pp("gn")).unwrap();
        // Large offset relative to the spread: stresses the mean/variance computation.
        let x = (Tensor::randn(0f32, 0.5, (2, 8, 33, 17), &dev).unwrap() + 100.0).unwrap();
        let got = gn.forward(&x).unwrap();
        let x64 = x
            .to_dtype(DType::F64)
            .unwrap()
            .reshape((2, 4, 2 * 33 * 17))
            .unwrap();
        let m = x64.mean_keepdim(2).unwrap();
        let c = x64.broadcast_sub(&m).unwrap();
        let v = c.sqr().unwrap().mean_keepdim(2).unwrap();
        let want = c
            .broadcast_div(&(v + 1e-5).unwrap().sqrt().unwrap())
            .unwrap()
            .reshape((2, 8, 33, 17))
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap();
        let d = max_abs(&got, &want);
        assert!(d < 2e-4, "diff {d}");
    }

    /// The fused CPU GroupNorm(+SiLU) and the tensor-op path (what training and other devices
    /// use) agree.
    #[test]
    fn fused_group_norm_equals_the_tensor_ops() {
        let dev = Device::Cpu;
        let vm = candle_nn::VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, DType::F32, &dev);
        let gn = GroupNorm::new(4, 8, 1e-6, vb.pp("gn")).unwrap();
        let w = Tensor::randn(0f32, 1.0, 8, &dev).unwrap();
        let b = Tensor::randn(0f32, 1.0, 8, &dev).unwrap();
        let gn = GroupNorm {
            weight: w,
            bias: b,
            ..gn
        };
        let x = (Tensor::randn(0f32, 2.0, (2, 8, 9, 7), &dev).unwrap() + 1.5).unwrap();
        let want = gn.forward_unfused(&x).unwrap();
        assert!(max_abs(&gn.forward(&x).unwrap(), &want) < 1e-5);
        let got = gn.forward_silu(&x).unwrap();
        let d = max_abs(&got, &want.silu().unwrap());
        assert!(d < 1e-5, "diff {d}");
        // The check can fail: without the SiLU the outputs differ.
        assert!(max_abs(&gn.forward(&x).unwrap(), &got) > 0.1);
    }
}
