//! CPU convolution for the UNet, the VAE and ISNet (docs/ARCHITECTURE.md §8).
//!
//! [`conv2d`] computes `act(conv(cat(inputs, dim 1)) + bias) + residual` for f32 CPU tensors
//! without concatenating the inputs, materialising the padding or making separate passes for
//! the epilogue:
//!
//! - the output of each image, `[C_out, H_out·W_out]`, is cut into column panels (and, when
//!   there are too few of them to keep every rayon thread busy, into row blocks of `C_out`);
//!   one rayon task per panel;
//! - a 1×1, stride-1, unpadded convolution reads its right-hand side straight from the inputs:
//!   one `gemm` per input piece, each a K-range of the weight, accumulating into the panel;
//! - any other kernel builds the panel's im2col `[C_in·kh·kw, N_panel]` (rows ordered
//!   `(c, ky, kx)` like the weight viewed as `[C_out, C_in·kh·kw]`, zero where the receptive
//!   field leaves the input) in a per-thread buffer sized for the L2 cache, then one `gemm`;
//! - bias (and the residual when there is no activation) is written into the panel before the
//!   gemm accumulates into it; the activation (SiLU through [`crate::simd`]) and a residual
//!   after an activation are applied to the panel while it is still in cache.
//!
//! gemm runs with `Parallelism::None` inside the tasks (rayon's global pool, shared with candle,
//! is the only one).

mod panel;
#[cfg(test)]
mod tests;

use candle_core::{bail, CpuStorage, Device, Result, Storage, Tensor};
use rayon::prelude::*;

use crate::simd::{self, Level};
use panel::{Geometry, Piece, Plan};

/// Stride, zero padding and dilation (the same on both axes), as in `nn.Conv2d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvParams {
    pub stride: usize,
    pub padding: usize,
    pub dilation: usize,
}

impl Default for ConvParams {
    fn default() -> Self {
        Self {
            stride: 1,
            padding: 0,
            dilation: 1,
        }
    }
}

/// Activation applied in the output pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Activation {
    #[default]
    None,
    Relu,
    Silu,
}

/// What the output pass adds: `out = act(conv(x) + bias) + residual`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Epilogue<'a> {
    /// `[C_out]`.
    pub bias: Option<&'a Tensor>,
    pub activation: Activation,
    /// Same shape as the output.
    pub residual: Option<&'a Tensor>,
}

/// Bytes of one panel's im2col (or, for 1×1 kernels, of the input panel it reads): about half
/// the 1 MiB L2 of the target CPU, leaving room for gemm's packed blocks.
pub const PANEL_BYTES: usize = 384 << 10;

/// `conv2d` of the channel-wise concatenation of `inputs` (each `[B, C_i, H, W]`, f32, CPU;
/// never copied into one tensor) with `weight` `[C_out, ΣC_i, kh, kw]`, then the epilogue.
pub fn conv2d(
    inputs: &[&Tensor],
    weight: &Tensor,
    params: ConvParams,
    epilogue: Epilogue,
) -> Result<Tensor> {
    conv2d_with(simd::level(), PANEL_BYTES, inputs, weight, params, epilogue)
}

/// [`conv2d`] at an explicit SIMD level (clamped to what the CPU has) and panel size in bytes
/// (for tests and benchmarks).
pub fn conv2d_with(
    level: Level,
    panel_bytes: usize,
    inputs: &[&Tensor],
    weight: &Tensor,
    params: ConvParams,
    epilogue: Epilogue,
) -> Result<Tensor> {
    let level = level.min(Level::detected());
    let geo = check(inputs, weight, params, &epilogue)?;
    let inputs: Vec<Tensor> = inputs
        .iter()
        .map(|t| t.contiguous())
        .collect::<Result<_>>()?;
    let weight = weight.contiguous()?;
    let bias = epilogue.bias.map(|b| b.contiguous()).transpose()?;
    let residual = epilogue.residual.map(|r| r.contiguous()).transpose()?;

    let guards: Vec<_> = inputs.iter().map(|t| t.storage_and_layout()).collect();
    let mut pieces = Vec::with_capacity(inputs.len());
    let mut c0 = 0;
    for ((g, l), t) in guards.iter().zip(&inputs) {
        let data = f32_slice(g, l, "input")?;
        let c = t.dim(1)?;
        pieces.push(Piece { data, c, c0 });
        c0 += c;
    }
    let (wg, wl) = weight.storage_and_layout();
    let w = f32_slice(&wg, wl, "weight")?;
    let bias_guard = bias.as_ref().map(|b| b.storage_and_layout());
    let bias = match &bias_guard {
        Some((g, l)) => Some(f32_slice(g, l, "bias")?),
        None => None,
    };
    let res_guard = residual.as_ref().map(|r| r.storage_and_layout());
    let residual = match &res_guard {
        Some((g, l)) => Some(f32_slice(g, l, "residual")?),
        None => None,
    };

    let plan = Plan::new(&geo, panel_bytes, rayon::current_num_threads());
    let mut out = vec![0f32; geo.b * geo.c_out * geo.hwo()];
    let dst = SendPtr(out.as_mut_ptr());
    let job = Job {
        geo: &geo,
        pieces: &pieces,
        w,
        bias,
        residual,
        activation: epilogue.activation,
        level,
    };
    plan.tasks().into_par_iter().for_each(|task| {
        // SAFETY: tasks write disjoint (row block × column panel) parts of `out`, which lives
        // until the parallel loop returns.
        unsafe { job.run(task, dst) }
    });
    Tensor::from_vec(out, (geo.b, geo.c_out, geo.ho, geo.wo), &Device::Cpu)
}

/// The output pointer shared by the tasks.
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
// SAFETY: every task writes its own disjoint region (see `conv2d_with`).
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

/// Everything a task reads.
struct Job<'a> {
    geo: &'a Geometry,
    pieces: &'a [Piece<'a>],
    w: &'a [f32],
    bias: Option<&'a [f32]>,
    residual: Option<&'a [f32]>,
    activation: Activation,
    level: Level,
}

thread_local! {
    /// Per-thread im2col buffer (taken out while in use, so a task stolen by a waiting thread
    /// never finds it borrowed).
    static COLS: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

impl Job<'_> {
    /// Computes one task: output rows `m0..m0+mb`, columns `n0..n0+nb` of image `bi`.
    ///
    /// # Safety
    /// `dst` points to the `[B, C_out, H_out·W_out]` output; no other task writes this region.
    unsafe fn run(&self, t: panel::Task, dst: SendPtr) {
        let g = self.geo;
        let hwo = g.hwo();
        let base = (t.bi * g.c_out + t.m0) * hwo + t.n0;
        let pre = self.prefill();
        // Bias (and the residual when no activation comes between) go in first; gemm adds.
        if pre.0 || pre.1 {
            for r in 0..t.mb {
                let off = base + r * hwo;
                // SAFETY: row r of this task's region.
                let row = unsafe { std::slice::from_raw_parts_mut(dst.0.add(off), t.nb) };
                let b = self.bias.map_or(0.0, |b| b[t.m0 + r]);
                match (pre.1, self.residual) {
                    (true, Some(res)) => {
                        for (o, x) in row.iter_mut().zip(&res[off..off + t.nb]) {
                            *o = b + x;
                        }
                    }
                    _ => row.fill(b),
                }
            }
        }
        let mut read_dst = pre.0 || pre.1;
        let k_rows = g.kh * g.kw;
        let ks = g.c_in * k_rows; // weight row stride
        let out = unsafe { dst.0.add(base) };
        if g.is_pointwise() {
            for p in self.pieces {
                let rhs = p.data[(t.bi * p.c) * hwo + t.n0..].as_ptr();
                let lhs = self.w[t.m0 * ks + p.c0..].as_ptr();
                // SAFETY: lhs [mb, c] (row stride ks), rhs [c, nb] (row stride hwo), dst
                // [mb, nb] (row stride hwo) all lie inside their buffers.
                unsafe { gemm_into(t.mb, t.nb, p.c, out, hwo, read_dst, lhs, ks, rhs, hwo) };
                read_dst = true;
            }
        } else {
            let mut cols = COLS.with(|c| c.take());
            cols.resize(ks * t.nb, 0.0);
            panel::fill(&mut cols, g, self.pieces, t.bi, t.n0, t.nb);
            let lhs = self.w[t.m0 * ks..].as_ptr();
            // SAFETY: lhs [mb, ks], rhs = cols [ks, nb], dst as above.
            unsafe {
                gemm_into(
                    t.mb,
                    t.nb,
                    ks,
                    out,
                    hwo,
                    read_dst,
                    lhs,
                    ks,
                    cols.as_ptr(),
                    t.nb,
                )
            };
            COLS.with(|c| c.set(cols));
        }
        if self.activation == Activation::None && (pre.1 || self.residual.is_none()) {
            return;
        }
        for r in 0..t.mb {
            let off = base + r * hwo;
            // SAFETY: row r of this task's region.
            let row = unsafe { std::slice::from_raw_parts_mut(dst.0.add(off), t.nb) };
            match self.activation {
                Activation::None => {}
                Activation::Relu => row.iter_mut().for_each(|v| *v = v.max(0.0)),
                Activation::Silu => simd::silu_in_place_at(self.level, row),
            }
            if let (false, Some(res)) = (pre.1, self.residual) {
                for (o, x) in row.iter_mut().zip(&res[off..off + t.nb]) {
                    *o += x;
                }
            }
        }
    }

    /// (bias pre-filled, residual pre-filled).
    fn prefill(&self) -> (bool, bool) {
        (
            self.bias.is_some(),
            self.residual.is_some() && self.activation == Activation::None,
        )
    }
}

/// `dst[m, n] (+)= lhs[m, k] · rhs[k, n]`, all row-major with the given row strides.
///
/// # Safety
/// The three matrices must lie inside live buffers; `dst` must not alias the others.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_into(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_rs: usize,
    read_dst: bool,
    lhs: *const f32,
    lhs_rs: usize,
    rhs: *const f32,
    rhs_rs: usize,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs as isize,
            read_dst,
            lhs,
            1,
            lhs_rs as isize,
            rhs,
            1,
            rhs_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// The f32 data of a contiguous CPU tensor.
fn f32_slice<'a>(s: &'a Storage, l: &candle_core::Layout, what: &'static str) -> Result<&'a [f32]> {
    let Some((a, b)) = l.contiguous_offsets() else {
        bail!("conv2d: {what} is not contiguous")
    };
    match s {
        Storage::Cpu(CpuStorage::F32(v)) => Ok(&v[a..b]),
        _ => bail!("conv2d: {what} must be an f32 CPU tensor"),
    }
}

/// Validates the shapes and returns the geometry.
fn check(inputs: &[&Tensor], weight: &Tensor, p: ConvParams, e: &Epilogue) -> Result<Geometry> {
    let Some(first) = inputs.first() else {
        bail!("conv2d: no input")
    };
    let (c_out, c_in, kh, kw) = match weight.dims4() {
        Ok(d) => d,
        Err(_) => bail!(
            "conv2d: weight {:?} is not [C_out, C_in, kh, kw]",
            weight.shape()
        ),
    };
    let (b, _, h, w) = match first.dims4() {
        Ok(d) => d,
        Err(_) => bail!("conv2d: input {:?} is not [B, C, H, W]", first.shape()),
    };
    let mut sum = 0;
    for t in inputs {
        match t.dims4() {
            Ok((tb, c, th, tw)) if (tb, th, tw) == (b, h, w) => sum += c,
            _ => bail!(
                "conv2d: input {:?} does not match [{b}, _, {h}, {w}] of the first input",
                t.shape()
            ),
        }
    }
    if sum != c_in {
        bail!(
            "conv2d: the inputs have {sum} channels in all, weight {:?} expects {c_in}",
            weight.shape()
        );
    }
    if p.stride == 0 || p.dilation == 0 {
        bail!(
            "conv2d: stride {} and dilation {} must be ≥ 1",
            p.stride,
            p.dilation
        );
    }
    if kh == 0 || kw == 0 || c_out == 0 {
        bail!("conv2d: empty weight {:?}", weight.shape());
    }
    let (ekh, ekw) = ((kh - 1) * p.dilation + 1, (kw - 1) * p.dilation + 1);
    if h + 2 * p.padding < ekh || w + 2 * p.padding < ekw {
        bail!(
            "conv2d: kernel {kh}×{kw} (dilation {}) larger than the padded input {}×{} (padding {})",
            p.dilation,
            h + 2 * p.padding,
            w + 2 * p.padding,
            p.padding
        );
    }
    let ho = (h + 2 * p.padding - ekh) / p.stride + 1;
    let wo = (w + 2 * p.padding - ekw) / p.stride + 1;
    if let Some(bias) = e.bias {
        if bias.dims() != [c_out] {
            bail!("conv2d: bias {:?} is not [{c_out}]", bias.shape());
        }
    }
    if let Some(r) = e.residual {
        if r.dims() != [b, c_out, ho, wo] {
            bail!(
                "conv2d: residual {:?} is not the output's shape [{b}, {c_out}, {ho}, {wo}]",
                r.shape()
            );
        }
    }
    for t in inputs
        .iter()
        .copied()
        .chain([weight])
        .chain(e.bias)
        .chain(e.residual)
    {
        if !t.device().is_cpu() || t.dtype() != candle_core::DType::F32 {
            bail!(
                "conv2d: f32 CPU tensors only, got {:?} on {:?}",
                t.dtype(),
                t.device().location()
            );
        }
    }
    Ok(Geometry {
        b,
        c_in,
        h,
        w,
        c_out,
        kh,
        kw,
        stride: p.stride,
        pad: p.padding,
        dil: p.dilation,
        ho,
        wo,
    })
}
