//! GEGLU as diffusers computes it in SD's feed-forward blocks:
//! `hidden, gate = proj(x).chunk(2, dim=-1); out = hidden * gelu(gate)` (exact, erf GELU).
//!
//! * [`geglu`]: the entry point, x `[..., 2N]` → `[..., N]`.
//! * [`Geglu`]: the candle `CustomOp1`. CPU: [`cpu_ref`]; CUDA: `cuda/geglu.cu` (elementwise,
//!   f32 math).
//! * [`cpu_ref`]: f32 math on CPU tensors.
//! * [`gelu_mul`]: `hidden * gelu_erf(gate)` of two same-shape CPU tensors in one parallel,
//!   vectorised pass (the UNet's feed-forward computes the two halves with separate matmuls).
//!   Its erf is PyTorch's vectorised CPU erf (Abramowitz & Stegun 7.1.26, |error| ≤ 1.5e-7,
//!   ATen's `Vectorized<float>::erf`), its exp [`crate::simd`]'s.

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, DType, Device, Layout, Result, Shape, Tensor, D};

fn out_shape(x: &Shape) -> Result<Shape> {
    let dims = x.dims();
    match dims.last() {
        Some(&last) if last % 2 == 0 && last > 0 => {
            let mut out = dims.to_vec();
            out[dims.len() - 1] = last / 2;
            Ok(Shape::from(out))
        }
        _ => bail!("geglu: the last dim of x must be even and non-zero, got {x:?}"),
    }
}

/// Reference GEGLU in f32 on CPU tensors: first half * gelu_erf(second half); the result is f32.
pub fn cpu_ref(x: &Tensor) -> Result<Tensor> {
    let n = out_shape(x.shape())?.dims().last().copied().unwrap_or(0);
    let x = x.to_device(&Device::Cpu)?.to_dtype(DType::F32)?;
    let hidden = x.narrow(D::Minus1, 0, n)?;
    let gate = x.narrow(D::Minus1, n, n)?;
    hidden * gate.gelu_erf()?
}

/// Elements per task of [`gelu_mul`] (and per vector block inside it).
const GELU_CHUNK: usize = 1 << 14;
const GELU_BLOCK: usize = 256;

/// `y = h · gelu_erf(g)` for one block (≤ [`GELU_BLOCK`] values) at `level`.
#[inline(always)]
fn gelu_mul_block(level: crate::simd::Level, h: &[f32], g: &[f32], y: &mut [f32]) {
    // erf(z) = sign(z)·(1 − t·poly(t)·exp(−z²)), t = 1 / (1 + p|z|), z = g / √2.
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [
        0.254_829_6,
        -0.284_496_74,
        1.421_413_8,
        -1.453_152,
        1.061_405_4,
    ];
    let n = h.len();
    let mut e = [0f32; GELU_BLOCK];
    let e = &mut e[..n];
    for (ei, &gi) in e.iter_mut().zip(g) {
        let z = gi * std::f32::consts::FRAC_1_SQRT_2;
        *ei = -z * z;
    }
    crate::simd::exp_in_place_at(level, e);
    for i in 0..n {
        let z = g[i] * std::f32::consts::FRAC_1_SQRT_2;
        let t = 1.0 / P.mul_add(z.abs(), 1.0);
        let poly = A[4]
            .mul_add(t, A[3])
            .mul_add(t, A[2])
            .mul_add(t, A[1])
            .mul_add(t, A[0])
            * t;
        let erf = (1.0 - poly * e[i]).copysign(z);
        y[i] = h[i] * (0.5 * g[i] * (1.0 + erf));
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn gelu_mul_avx512(h: &[f32], g: &[f32], y: &mut [f32]) {
    for ((h, g), y) in h
        .chunks(GELU_BLOCK)
        .zip(g.chunks(GELU_BLOCK))
        .zip(y.chunks_mut(GELU_BLOCK))
    {
        gelu_mul_block(crate::simd::Level::Avx512, h, g, y)
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn gelu_mul_avx2(h: &[f32], g: &[f32], y: &mut [f32]) {
    for ((h, g), y) in h
        .chunks(GELU_BLOCK)
        .zip(g.chunks(GELU_BLOCK))
        .zip(y.chunks_mut(GELU_BLOCK))
    {
        gelu_mul_block(crate::simd::Level::Avx2, h, g, y)
    }
}

/// `hidden[i] · gelu_erf(gate[i])` over f32 slices of one length, in parallel, at `level`
/// (capped at what the CPU has).
pub fn gelu_mul_at(level: crate::simd::Level, hidden: &[f32], gate: &[f32]) -> Result<Vec<f32>> {
    use crate::simd::Level;
    use rayon::prelude::*;
    if hidden.len() != gate.len() {
        bail!(
            "gelu_mul: hidden has {} values, gate {}",
            hidden.len(),
            gate.len()
        )
    }
    let level = level.min(Level::detected());
    let mut y = vec![0f32; hidden.len()];
    y.par_chunks_mut(GELU_CHUNK)
        .zip(hidden.par_chunks(GELU_CHUNK))
        .zip(gate.par_chunks(GELU_CHUNK))
        .for_each(|((y, h), g)| {
            #[cfg(target_arch = "x86_64")]
            {
                // SAFETY: `level` is capped at what the CPU supports.
                match level {
                    Level::Avx512 => return unsafe { gelu_mul_avx512(h, g, y) },
                    Level::Avx2 => return unsafe { gelu_mul_avx2(h, g, y) },
                    Level::Scalar => {}
                }
            }
            for ((h, g), y) in h
                .chunks(GELU_BLOCK)
                .zip(g.chunks(GELU_BLOCK))
                .zip(y.chunks_mut(GELU_BLOCK))
            {
                gelu_mul_block(Level::Scalar, h, g, y)
            }
        });
    Ok(y)
}

/// `hidden · gelu_erf(gate)` for two CPU tensors of one shape (any float dtype; computed in
/// f32, returned in hidden's dtype), at [`crate::simd::level`].
pub fn gelu_mul(hidden: &Tensor, gate: &Tensor) -> Result<Tensor> {
    if hidden.shape() != gate.shape() || !hidden.device().is_cpu() || !gate.device().is_cpu() {
        bail!(
            "gelu_mul: hidden {:?} and gate {:?} must be CPU tensors of one shape",
            hidden.shape(),
            gate.shape()
        )
    }
    let f = |t: &Tensor| -> Result<Vec<f32>> { t.to_dtype(DType::F32)?.flatten_all()?.to_vec1() };
    let y = gelu_mul_at(crate::simd::level(), &f(hidden)?, &f(gate)?)?;
    Tensor::from_vec(y, hidden.shape(), &Device::Cpu)?.to_dtype(hidden.dtype())
}

/// GEGLU of x `[..., 2N]`: `x[..., :N] * gelu_erf(x[..., N:])`, shape `[..., N]`, x's dtype.
pub fn geglu(x: &Tensor) -> Result<Tensor> {
    out_shape(x.shape())?;
    x.contiguous()?.apply_op1_no_bwd(&Geglu)
}

/// The GEGLU custom op (`x.apply_op1_no_bwd(&Geglu)`); x must be contiguous.
#[derive(Debug, Clone, Copy)]
pub struct Geglu;

impl candle_core::CustomOp1 for Geglu {
    fn name(&self) -> &'static str {
        "geglu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = crate::cpu::to_f32_tensor(s, l, self.name())?;
        let y = cpu_ref(&x)?;
        Ok((crate::cpu::to_storage(&y, s.dtype())?, y.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s: &candle_core::CudaStorage,
        l: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        match s.dtype() {
            DType::F32 => cuda::launch::<f32>("f32", s, l),
            DType::F16 => cuda::launch::<half::f16>("f16", s, l),
            DType::BF16 => cuda::launch::<half::bf16>("bf16", s, l),
            other => bail!("geglu: no CUDA kernel for dtype {other:?}"),
        }
    }
}

#[cfg(feature = "cuda")]
mod cuda {
    use candle_core::backend::BackendStorage;
    use candle_core::cuda_backend::cudarc::driver::{DeviceRepr, LaunchConfig, PushKernelArg};
    use candle_core::cuda_backend::{CudaDType, WrapErr};
    use candle_core::{bail, CudaStorage, Layout, Result, Shape};

    pub(super) fn launch<T: CudaDType + DeviceRepr>(
        tname: &str,
        s: &CudaStorage,
        l: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        let shape = super::out_shape(l.shape())?;
        let n = shape.dims().last().copied().unwrap_or(0);
        let total = shape.elem_count();
        if n > i32::MAX as usize {
            bail!(
                "geglu: last dim too large for the CUDA kernel: {:?}",
                l.shape()
            )
        }
        let Some((a, e)) = l.contiguous_offsets() else {
            bail!("geglu: x must be contiguous")
        };
        let x = s.as_cuda_slice::<T>()?.slice(a..e);
        let dev = s.device();
        let info = crate::cuda::device_info(dev)?;
        let key = crate::cuda::KernelKey {
            ordinal: info.ordinal,
            module: "geglu",
            dtype: s.dtype(),
            head_dim: 0,
        };
        let kernel = crate::cuda::kernel(
            dev,
            &info,
            key,
            crate::sources::GEGLU,
            || format!("geglu_{tname}"),
            0,
            "geglu",
        )?;
        // SAFETY: the grid-stride loop writes all `total` elements.
        let out = unsafe { dev.alloc::<T>(total)? };
        let blocks = total.div_ceil(256).clamp(1, 1 << 20) as u32;
        let cfg = LaunchConfig {
            grid_dim: (blocks, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        let rows = (total / n.max(1)) as u64;
        let n_i = n as i32;
        let stream = dev.cuda_stream();
        let mut b = stream.launch_builder(&kernel.func);
        b.arg(&x).arg(&out).arg(&rows).arg(&n_i);
        // SAFETY: argument types and order match geglu.cu.
        unsafe { b.launch(cfg) }.w()?;
        Ok((CudaStorage::wrap_cuda_slice(out, dev.clone()), shape))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erf by Abramowitz–Stegun 7.1.26 is too coarse for a reference; use a series/continued
    /// fraction in f64 instead (|error| < 1e-12 on the range used here).
    fn erf(x: f64) -> f64 {
        if x.abs() < 3.0 {
            // Maclaurin series: erf x = 2/√π Σ (-1)^n x^(2n+1) / (n! (2n+1)).
            let mut sum = 0.0;
            let mut term = x; // (-1)^n x^(2n+1) / n!
            for n in 0..80 {
                sum += term / (2 * n + 1) as f64;
                term *= -x * x / (n + 1) as f64;
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            x.signum() * (1.0 - (-x * x).exp() / (x.abs() * std::f64::consts::PI.sqrt()))
        }
    }

    fn naive(x: &[f32], rows: usize, n: usize) -> Vec<f32> {
        let mut y = Vec::with_capacity(rows * n);
        for r in 0..rows {
            for c in 0..n {
                let h = x[r * 2 * n + c] as f64;
                let g = x[r * 2 * n + n + c] as f64;
                y.push((h * 0.5 * g * (1.0 + erf(g / std::f64::consts::SQRT_2))) as f32);
            }
        }
        y
    }

    #[test]
    fn cpu_ref_matches_the_formula() {
        // SD1.5's FF at 320 channels: proj to 2*1280, scaled down to 2*160; values in [-4, 4).
        let (b, l, n) = (2, 7, 160);
        let x: Vec<f32> = (0..b * l * 2 * n)
            .map(|i| ((i * 7919) % 1000) as f32 / 125.0 - 4.0)
            .collect();
        let want = naive(&x, b * l, n);
        let xt = Tensor::from_vec(x, (b, l, 2 * n), &Device::Cpu).unwrap();
        let got = cpu_ref(&xt).unwrap();
        assert_eq!(got.dims(), &[b, l, n]);
        let got: Vec<f32> = got.flatten_all().unwrap().to_vec1().unwrap();
        let diff = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        // f32 vs f64, outputs up to 16 in magnitude: ≤ 1e-5.
        assert!(diff <= 1e-5, "max abs diff {diff}");
        // The order matters (diffusers: hidden first, gate second): swapping halves is caught.
        let swapped = Tensor::cat(
            &[xt.narrow(2, n, n).unwrap(), xt.narrow(2, 0, n).unwrap()],
            2,
        )
        .unwrap();
        let s: Vec<f32> = cpu_ref(&swapped)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!(
            s.iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max)
                > 0.1
        );
        // The custom op's CPU path, f32 and bf16 (bf16: input and output rounding, ≤ 0.15 at |y|≤16).
        let op: Vec<f32> = geglu(&xt)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(op, got);
        let xb = xt.to_dtype(DType::BF16).unwrap();
        let xr: Vec<f32> = xb
            .to_dtype(DType::F32)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let ob = geglu(&xb).unwrap();
        assert_eq!(ob.dtype(), DType::BF16);
        let ob: Vec<f32> = ob
            .to_dtype(DType::F32)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let wb = naive(&xr, b * l, n);
        let diff = ob
            .iter()
            .zip(&wb)
            .map(|(a, b)| (a - b).abs() / b.abs().max(1.0))
            .fold(0f32, f32::max);
        assert!(diff <= 4e-3, "bf16 max rel diff {diff}");
    }

    /// The fused CPU `hidden · gelu(gate)` equals the erf formula (f64) at every SIMD level, and
    /// candle's `gelu_erf` product, on values across GELU's range, with a ragged tail.
    #[test]
    fn gelu_mul_matches_the_formula_at_every_level() {
        let n = 3 * GELU_BLOCK + 17;
        let gate: Vec<f32> = (0..n).map(|i| (i as f32 / n as f32 - 0.5) * 24.0).collect();
        let hidden: Vec<f32> = (0..n)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0)
            .collect();
        let want: Vec<f32> = hidden
            .iter()
            .zip(&gate)
            .map(|(&h, &g)| {
                let g = g as f64;
                (h as f64 * 0.5 * g * (1.0 + erf(g / std::f64::consts::SQRT_2))) as f32
            })
            .collect();
        for level in crate::simd::Level::supported() {
            let got = gelu_mul_at(level, &hidden, &gate).unwrap();
            let err = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs() / b.abs().max(1.0))
                .fold(0f32, f32::max);
            assert!(err < 1e-5, "{level:?}: relative error {err}");
        }
        let (ht, gt) = (
            Tensor::from_vec(hidden.clone(), (1, n), &Device::Cpu).unwrap(),
            Tensor::from_vec(gate.clone(), (1, n), &Device::Cpu).unwrap(),
        );
        let candle: Vec<f32> = (&ht * gt.gelu_erf().unwrap())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let got: Vec<f32> = gelu_mul(&ht, &gt)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let d = got
            .iter()
            .zip(&candle)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(d < 1e-5, "vs candle: {d}");
        assert!(gelu_mul_at(crate::simd::level(), &hidden[1..], &gate).is_err());
    }

    #[test]
    fn odd_last_dim_is_an_error() {
        let x = Tensor::zeros((2, 3), DType::F32, &Device::Cpu).unwrap();
        assert!(geglu(&x).is_err());
        assert!(cpu_ref(&x).is_err());
    }
}
