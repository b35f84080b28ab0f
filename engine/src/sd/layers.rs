//! Building blocks shared by the UNet and the VAE, mirroring diffusers' module and weight names:
//! [`GroupNorm`], [`ResnetBlock2D`], [`Downsample2D`], [`Upsample2D`] and the sinusoidal
//! [`timestep_embedding`], plus [`conv_forward`], the CPU convolution (tiled im2col + gemm)
//! every convolution of the crate goes through, and detached weight loaders.

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{Conv2d, Conv2dConfig, Linear, VarBuilder};

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

/// Whether the current thread is in training (differentiable) mode: the im2col convolution
/// records a backward (col2im), attention takes `kernels::attention::attention_trainable`
/// (chunked recompute backward), and linear weights computed from trainable `Var`s keep their
/// graph.
pub(crate) fn grad_mode() -> bool {
    GRAD_MODE.with(|g| g.get())
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

/// Bytes of one im2col tile built by [`conv_forward`] (the output rows of a tile are chosen
/// so that its column buffer stays under this bound).
pub const IM2COL_BUDGET_BYTES: usize = 32 << 20;

/// Builds the im2col matrix `[C·kh·kw, nb·ny·W_out]` of images `b0..b0+nb`, output rows
/// `y0..y0+ny`, from a contiguous NCHW input (rows ordered `(c, ky, kx)` like a PyTorch
/// weight reshaped to `[C_out, C·kh·kw]`, columns ordered `(b, y, x)`).
#[derive(Clone)]
struct Im2ColTile {
    kh: usize,
    kw: usize,
    stride: usize,
    padding: usize,
    w_out: usize,
    b0: usize,
    nb: usize,
    y0: usize,
    ny: usize,
}

impl Im2ColTile {
    /// Calls `f(row, col, input, len)` for every run of the column matrix: `len` columns of
    /// row `row` starting at column `col` read input elements `input, input + stride, …` of an
    /// NCHW input of `dims`. Columns outside every run are padding (zero). im2col and its
    /// adjoint col2im walk the same runs.
    fn for_each_run(
        &self,
        (_b, c, h, w): (usize, usize, usize, usize),
        mut f: impl FnMut(usize, usize, usize, usize),
    ) {
        let (s, p) = (self.stride as isize, self.padding as isize);
        let mut row = 0;
        for ci in 0..c {
            for ky in 0..self.kh {
                for kx in 0..self.kw {
                    let r = row;
                    row += 1;
                    // Output columns x whose input column x·s + kx − p lies inside [0, w).
                    let off = kx as isize - p;
                    let x_lo = if off >= 0 { 0 } else { ((-off) + s - 1) / s };
                    let x_hi =
                        ((w as isize - 1 - off).div_euclid(s) + 1).clamp(0, self.w_out as isize);
                    if x_hi <= x_lo {
                        continue;
                    }
                    let (x_lo, x_hi) = (x_lo as usize, x_hi as usize);
                    let ix0 = (x_lo as isize * s + off) as usize;
                    for bi in 0..self.nb {
                        let plane = ((self.b0 + bi) * c + ci) * h * w;
                        for yi in 0..self.ny {
                            let iy = ((self.y0 + yi) * self.stride) as isize + ky as isize - p;
                            if iy < 0 || iy >= h as isize {
                                continue;
                            }
                            let col = (bi * self.ny + yi) * self.w_out + x_lo;
                            f(r, col, plane + iy as usize * w + ix0, x_hi - x_lo);
                        }
                    }
                }
            }
        }
    }

    fn fill<T: candle_core::WithDType>(
        &self,
        src: &[T],
        dims: (usize, usize, usize, usize),
    ) -> Vec<T> {
        let cols = self.nb * self.ny * self.w_out;
        let mut col = vec![T::zero(); dims.1 * self.kh * self.kw * cols];
        self.for_each_run(dims, |row, c0, i0, len| {
            let d = &mut col[row * cols + c0..row * cols + c0 + len];
            if self.stride == 1 {
                d.copy_from_slice(&src[i0..i0 + len]);
            } else {
                for (j, v) in d.iter_mut().enumerate() {
                    *v = src[i0 + j * self.stride];
                }
            }
        });
        col
    }
}

impl candle_core::CustomOp1 for Im2ColTile {
    fn name(&self) -> &'static str {
        "sdunet-im2col"
    }

    fn cpu_fwd(
        &self,
        storage: &candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> Result<(candle_core::CpuStorage, candle_core::Shape)> {
        use candle_core::CpuStorage as S;
        let dims = layout.shape().dims4()?;
        let (start, end) = match layout.contiguous_offsets() {
            Some(o) => o,
            None => candle_core::bail!("im2col: input must be contiguous"),
        };
        let shape =
            candle_core::Shape::from((dims.1 * self.kh * self.kw, self.nb * self.ny * self.w_out));
        let out = match storage {
            S::F32(v) => S::F32(self.fill(&v[start..end], dims)),
            S::F64(v) => S::F64(self.fill(&v[start..end], dims)),
            S::F16(v) => S::F16(self.fill(&v[start..end], dims)),
            S::BF16(v) => S::BF16(self.fill(&v[start..end], dims)),
            _ => candle_core::bail!("im2col: unsupported dtype (f16, bf16, f32, f64 only)"),
        };
        Ok((out, shape))
    }

    /// The gradient w.r.t. the whole input: the column gradient scattered back (col2im).
    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let dims = arg.dims4()?;
        let op = Col2ImTile {
            tile: self.clone(),
            dims,
        };
        Ok(Some(grad_res.contiguous()?.apply_op1_no_bwd(&op)?))
    }
}

/// The adjoint of an [`Im2ColTile`]: accumulates a column matrix into a `[B, C, H, W]` input
/// gradient (zero outside the tile's receptive field).
struct Col2ImTile {
    tile: Im2ColTile,
    dims: (usize, usize, usize, usize),
}

impl Col2ImTile {
    fn fill<T: candle_core::WithDType + std::ops::AddAssign>(&self, src: &[T]) -> Vec<T> {
        let t = &self.tile;
        let (b, c, h, w) = self.dims;
        let cols = t.nb * t.ny * t.w_out;
        let mut dst = vec![T::zero(); b * c * h * w];
        t.for_each_run(self.dims, |row, c0, i0, len| {
            let g = &src[row * cols + c0..row * cols + c0 + len];
            for (j, v) in g.iter().enumerate() {
                dst[i0 + j * t.stride] += *v;
            }
        });
        dst
    }
}

impl candle_core::CustomOp1 for Col2ImTile {
    fn name(&self) -> &'static str {
        "sdunet-col2im"
    }

    fn cpu_fwd(
        &self,
        storage: &candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> Result<(candle_core::CpuStorage, candle_core::Shape)> {
        use candle_core::CpuStorage as S;
        let (start, end) = match layout.contiguous_offsets() {
            Some(o) => o,
            None => candle_core::bail!("col2im: input must be contiguous"),
        };
        let out = match storage {
            S::F32(v) => S::F32(self.fill(&v[start..end])),
            S::F64(v) => S::F64(self.fill(&v[start..end])),
            _ => candle_core::bail!("col2im: unsupported dtype (f32, f64 only)"),
        };
        Ok((out, candle_core::Shape::from(self.dims)))
    }
}

/// Forward of a (diffusers-built) [`Conv2d`]. On CPU this replaces candle's convolution, which
/// re-lays-out the whole weight and the whole input on every call, by a row-tiled im2col
/// (bounded by [`IM2COL_BUDGET_BYTES`]) and one gemm per tile against the weight viewed as
/// `[C_out, C_in·kh·kw]` (no copy); 1×1 convolutions are a single batched matmul. Other
/// devices, groups and dilation fall back to candle.
pub fn conv_forward(conv: &Conv2d, x: &Tensor) -> Result<Tensor> {
    conv_forward_budget(conv, x, IM2COL_BUDGET_BYTES)
}

/// [`conv_forward`] with an explicit im2col tile budget in bytes (for tests).
fn conv_forward_budget(conv: &Conv2d, x: &Tensor, budget: usize) -> Result<Tensor> {
    let cfg = conv.config();
    if grad_mode() || !x.device().is_cpu() || cfg.groups != 1 || cfg.dilation != 1 || x.rank() != 4
    {
        return conv.forward(x);
    }
    let wt = conv.weight();
    let (c_out, c_in, kh, kw) = wt.dims4()?;
    let (b, c, h, w) = x.dims4()?;
    if c != c_in {
        candle_core::bail!(
            "conv2d: input {:?} has {c} channels, weight {:?} expects {c_in}",
            x.shape(),
            wt.shape()
        );
    }
    let (s, p) = (cfg.stride, cfg.padding);
    if h + 2 * p < kh || w + 2 * p < kw || s == 0 {
        candle_core::bail!(
            "conv2d: input {:?} too small for kernel {:?}",
            x.shape(),
            wt.shape()
        );
    }
    let (h_out, w_out) = ((h + 2 * p - kh) / s + 1, (w + 2 * p - kw) / s + 1);
    let k = c_in * kh * kw;
    let w2 = wt.reshape((c_out, k))?;
    let x = x.contiguous()?;
    let out = if kh == 1 && kw == 1 && s == 1 && p == 0 {
        let x3 = x.reshape((b, c, h * w))?;
        if b == 1 {
            w2.matmul(&x3.squeeze(0)?)?.unsqueeze(0)?
        } else {
            w2.broadcast_left(b)?.matmul(&x3)?
        }
    } else {
        let elem = x.dtype().size_in_bytes();
        let per_row = k * w_out * elem;
        let plane = h_out * w_out;
        let tile = |b0: usize, nb: usize, y0: usize, ny: usize| -> Result<Tensor> {
            let op = Im2ColTile {
                kh,
                kw,
                stride: s,
                padding: p,
                w_out,
                b0,
                nb,
                y0,
                ny,
            };
            // In grad mode the tile has a backward (col2im) so that gradients flow to the input.
            let col = if grad_mode() {
                x.apply_op1(op)?
            } else {
                x.apply_op1_no_bwd(&op)?
            };
            w2.matmul(&col)
        };
        if b > 1 && b * h_out * per_row <= budget {
            // Small images: one gemm for the whole batch (the weight is streamed once).
            tile(0, b, 0, h_out)?
                .reshape((c_out, b, plane))?
                .transpose(0, 1)?
                .contiguous()?
        } else {
            let rows = (budget / per_row.max(1)).clamp(1, h_out);
            let mut imgs = Vec::with_capacity(b);
            for bi in 0..b {
                let mut parts = Vec::with_capacity(h_out.div_ceil(rows));
                let mut y0 = 0;
                while y0 < h_out {
                    let ny = rows.min(h_out - y0);
                    parts.push(tile(bi, 1, y0, ny)?);
                    y0 += ny;
                }
                let img = if parts.len() == 1 {
                    parts.remove(0)
                } else {
                    Tensor::cat(&parts, 1)?
                };
                imgs.push(img.unsqueeze(0)?);
            }
            if imgs.len() == 1 {
                imgs.remove(0)
            } else {
                Tensor::cat(&imgs, 0)?
            }
        }
    };
    let out = out.reshape((b, c_out, h_out, w_out))?;
    match conv.bias() {
        Some(bias) => out.broadcast_add(&bias.reshape((1, c_out, 1, 1))?),
        None => Ok(out),
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
        let h = conv_forward(&self.conv2, &self.norm2.forward_silu(&h)?)?;
        let skip = match &self.conv_shortcut {
            Some(c) => conv_forward(c, x)?,
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
mod tests {
    use super::*;

    fn max_abs(a: &Tensor, b: &Tensor) -> f32 {
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
            // Whole batch in one tile, one image per tile, and one output row per tile.
            for budget in [IM2COL_BUDGET_BYTES, cin * k * k * w * 4 * h, 1] {
                let got = conv_forward_budget(&conv, &x, budget).unwrap();
                assert_eq!(got.dims(), want.dims());
                let d = max_abs(&got, &want);
                assert!(
                    d <= tol,
                    "case {cin} {cout} {k} {stride} {padding}: diff {d} > {tol}"
                );
            }
            // Non-contiguous input.
            let xt = x.transpose(2, 3).unwrap();
            let got = conv_forward(&conv, &xt).unwrap();
            let want = conv.forward(&xt.contiguous().unwrap()).unwrap();
            assert!(max_abs(&got, &want) <= tol);
        }
    }

    /// In grad mode the tiled convolution's input gradient (col2im) equals candle's conv2d
    /// backward, for strides, paddings and tilings (candle's own backward fails for a stride-2
    /// 5×5 kernel on odd sizes, so that case is not compared).
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
            for budget in [IM2COL_BUDGET_BYTES, 1] {
                let got = grad_of(conv_forward_budget(&conv, x.as_tensor(), budget).unwrap());
                let d = max_abs(&got, &want);
                assert!(
                    d < 1e-4,
                    "case {cin} {cout} {k} {stride} {padding}: diff {d}"
                );
            }
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
