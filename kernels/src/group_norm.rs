//! GroupNorm with an optional fused SiLU, as SD's ResNet blocks use it
//! (`silu(group_norm(x))`, 32 groups, eps 1e-5 in the UNet and 1e-6 in the VAE).
//!
//! * [`group_norm`]: the entry point, for x `[N, C, ...]` and gamma, beta `[C]`.
//! * [`GroupNorm`]: the candle `CustomOp3` (x, gamma, beta). CPU: [`cpu_ref`]; CUDA:
//!   `cuda/group_norm.cu`, one block per (sample, group), statistics in f32 (mean, then the
//!   variance as the mean of squared deviations).
//! * [`cpu_ref`]: f32 math on CPU tensors (the reference).
//! * [`cpu_fused`]: the CPU path of the op: per (sample, group) in parallel, one read for the
//!   statistics (f64 sums of x and x²) and one read-and-write that applies the folded
//!   `x·scale + shift` and the SiLU (through [`crate::simd`]) while the group is in cache.

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, DType, Device, Layout, Result, Shape, Tensor, D};

/// `(n, c, spatial)` after checking x `[N, C, ...]`, gamma and beta `[C]` and the group count.
fn check(x: &Shape, gamma: &Shape, beta: &Shape, groups: usize) -> Result<(usize, usize, usize)> {
    let dims = x.dims();
    if dims.len() < 2 {
        bail!("group_norm: x must be [N, C, ...], got {x:?}")
    }
    let (n, c) = (dims[0], dims[1]);
    if groups == 0 || c % groups != 0 {
        bail!("group_norm: {c} channels do not split into {groups} groups")
    }
    if gamma.dims() != [c] || beta.dims() != [c] {
        bail!("group_norm: gamma and beta must be [{c}], got {gamma:?} and {beta:?}")
    }
    Ok((n, c, dims[2..].iter().product()))
}

/// Reference GroupNorm (+ SiLU when `silu`) in f32 on CPU tensors; the result is f32.
pub fn cpu_ref(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    groups: usize,
    eps: f64,
    silu: bool,
) -> Result<Tensor> {
    let (n, c, s) = check(x.shape(), gamma.shape(), beta.shape(), groups)?;
    let f = |t: &Tensor| t.to_device(&Device::Cpu)?.to_dtype(DType::F32);
    let xg = f(x)?.reshape((n, groups, (c / groups) * s))?;
    let mean = xg.mean_keepdim(D::Minus1)?;
    let xc = xg.broadcast_sub(&mean)?;
    let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
    let xn = xc
        .broadcast_div(&(var + eps)?.sqrt()?)?
        .reshape((n, c, s))?;
    let y = xn
        .broadcast_mul(&f(gamma)?.reshape((1, c, 1))?)?
        .broadcast_add(&f(beta)?.reshape((1, c, 1))?)?;
    let y = if silu { y.silu()? } else { y };
    y.reshape(x.shape())
}

/// The statistics of one group: `(mean, 1/sqrt(var + eps))` from f64 sums of x and x² (8
/// lanes, so the loop vectorises; f64 keeps `E[x²] − E[x]²` exact enough for activations whose
/// mean is large next to their spread).
fn moments(xs: &[f32], eps: f64) -> (f64, f64) {
    let mut s1 = [0f64; 8];
    let mut s2 = [0f64; 8];
    let chunks = xs.chunks_exact(8);
    let rest = chunks.remainder();
    for ch in chunks {
        for i in 0..8 {
            let v = ch[i] as f64;
            s1[i] += v;
            s2[i] += v * v;
        }
    }
    for (i, &v) in rest.iter().enumerate() {
        s1[i] += v as f64;
        s2[i] += v as f64 * v as f64;
    }
    let n = xs.len().max(1) as f64;
    let mean = s1.iter().sum::<f64>() / n;
    let var = (s2.iter().sum::<f64>() / n - mean * mean).max(0.0);
    (mean, 1.0 / (var + eps).sqrt())
}

/// `y[i] = x[i]·scale + shift` (the compiler vectorises it at the level of the caller).
#[inline(always)]
fn affine(x: &[f32], y: &mut [f32], scale: f32, shift: f32) {
    for (o, &v) in y.iter_mut().zip(x) {
        *o = v.mul_add(scale, shift);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn affine_avx512(x: &[f32], y: &mut [f32], scale: f32, shift: f32) {
    affine(x, y, scale, shift)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn affine_avx2(x: &[f32], y: &mut [f32], scale: f32, shift: f32) {
    affine(x, y, scale, shift)
}

fn affine_at(level: crate::simd::Level, x: &[f32], y: &mut [f32], scale: f32, shift: f32) {
    use crate::simd::Level;
    let level = level.min(Level::detected());
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: `level` is capped at what the CPU supports, so the features are present.
        match level {
            Level::Avx512 => return unsafe { affine_avx512(x, y, scale, shift) },
            Level::Avx2 => return unsafe { affine_avx2(x, y, scale, shift) },
            Level::Scalar => {}
        }
    }
    let _ = level;
    affine(x, y, scale, shift)
}

/// GroupNorm (+ SiLU) of contiguous f32 data `[n, c, s]` at a SIMD level: the CPU path of
/// [`GroupNorm`]. Groups are processed in parallel on rayon's pool (the one candle and gemm
/// use).
#[allow(clippy::too_many_arguments)]
pub fn cpu_fused(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    (n, c, s): (usize, usize, usize),
    groups: usize,
    eps: f64,
    silu: bool,
    level: crate::simd::Level,
) -> Result<Vec<f32>> {
    use rayon::prelude::*;
    if groups == 0 || c % groups != 0 || x.len() != n * c * s || gamma.len() != c || beta.len() != c
    {
        bail!("group_norm: x of {} values is not [{n}, {c}, {s}] with [{c}] gamma and beta in {groups} groups", x.len())
    }
    let cpg = c / groups;
    let len = cpg * s;
    let mut y = vec![0f32; x.len()];
    if len == 0 {
        return Ok(y);
    }
    y.par_chunks_mut(len)
        .zip(x.par_chunks(len))
        .enumerate()
        .for_each(|(i, (yg, xg))| {
            let (mean, rstd) = moments(xg, eps);
            let c0 = (i % groups) * cpg;
            for (j, (yc, xc)) in yg.chunks_mut(s.max(1)).zip(xg.chunks(s.max(1))).enumerate() {
                let scale = gamma[c0 + j] as f64 * rstd;
                let shift = beta[c0 + j] as f64 - mean * scale;
                affine_at(level, xc, yc, scale as f32, shift as f32);
                if silu {
                    crate::simd::silu_in_place_at(level, yc);
                }
            }
        });
    Ok(y)
}

/// GroupNorm of x `[N, C, ...]` over `groups` groups with affine gamma, beta `[C]` (cast to x's
/// dtype), then SiLU when `silu`. Same shape and dtype as x.
pub fn group_norm(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    groups: usize,
    eps: f64,
    silu: bool,
) -> Result<Tensor> {
    check(x.shape(), gamma.shape(), beta.shape(), groups)?;
    let gamma = gamma.to_dtype(x.dtype())?.contiguous()?;
    let beta = beta.to_dtype(x.dtype())?.contiguous()?;
    x.contiguous()?.apply_op3_no_bwd(
        &gamma,
        &beta,
        &GroupNorm {
            groups,
            eps: eps as f32,
            silu,
        },
    )
}

/// The GroupNorm custom op (`x.apply_op3_no_bwd(&gamma, &beta, &op)`); contiguous inputs of
/// one dtype (use [`group_norm`], which sees to it).
#[derive(Debug, Clone, Copy)]
pub struct GroupNorm {
    pub groups: usize,
    pub eps: f32,
    pub silu: bool,
}

impl candle_core::CustomOp3 for GroupNorm {
    fn name(&self) -> &'static str {
        "group-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let op = self.name();
        let (n, c, s) = check(l1.shape(), l2.shape(), l3.shape(), self.groups)?;
        let f32s = |st: &CpuStorage, l: &Layout| -> Result<Vec<f32>> {
            crate::cpu::to_f32_tensor(st, l, op)?
                .flatten_all()?
                .to_vec1::<f32>()
        };
        let (gamma, beta) = (f32s(s2, l2)?, f32s(s3, l3)?);
        let (cfg, level) = ((n, c, s), crate::simd::level());
        let (g, eps) = (self.groups, self.eps as f64);
        let y = match (s1, l1.contiguous_offsets()) {
            // f32: read the storage in place (no copy of the activation).
            (CpuStorage::F32(v), Some((a, b))) => {
                cpu_fused(&v[a..b], &gamma, &beta, cfg, g, eps, self.silu, level)?
            }
            _ => cpu_fused(&f32s(s1, l1)?, &gamma, &beta, cfg, g, eps, self.silu, level)?,
        };
        let y = Tensor::from_vec(y, l1.shape(), &Device::Cpu)?;
        Ok((crate::cpu::to_storage(&y, s1.dtype())?, l1.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
        s3: &candle_core::CudaStorage,
        l3: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        match s1.dtype() {
            DType::F32 => cuda::launch::<f32>("f32", self, s1, l1, s2, l2, s3, l3),
            DType::F16 => cuda::launch::<half::f16>("f16", self, s1, l1, s2, l2, s3, l3),
            DType::BF16 => cuda::launch::<half::bf16>("bf16", self, s1, l1, s2, l2, s3, l3),
            other => bail!("group_norm: no CUDA kernel for dtype {other:?}"),
        }
    }
}

#[cfg(feature = "cuda")]
mod cuda {
    use super::{check, GroupNorm};
    use candle_core::backend::BackendStorage;
    use candle_core::cuda_backend::cudarc::driver::{DeviceRepr, LaunchConfig, PushKernelArg};
    use candle_core::cuda_backend::{CudaDType, WrapErr};
    use candle_core::{bail, CudaStorage, Layout, Result, Shape};

    #[allow(clippy::too_many_arguments)]
    pub(super) fn launch<T: CudaDType + DeviceRepr>(
        tname: &str,
        op: &GroupNorm,
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
        s3: &CudaStorage,
        l3: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        let (n, c, s) = check(l1.shape(), l2.shape(), l3.shape(), op.groups)?;
        if c > i32::MAX as usize || s > i32::MAX as usize || n * op.groups > i32::MAX as usize {
            bail!(
                "group_norm: shape too large for the CUDA kernel: {:?}",
                l1.shape()
            )
        }
        let op_name = "group_norm";
        let x = crate::cuda::view::<T>(s1, l1, op_name)?;
        let gamma = crate::cuda::view::<T>(s2, l2, op_name)?;
        let beta = crate::cuda::view::<T>(s3, l3, op_name)?;
        let dev = s1.device();
        let info = crate::cuda::device_info(dev)?;
        let key = crate::cuda::KernelKey {
            ordinal: info.ordinal,
            module: "group_norm",
            dtype: s1.dtype(),
            head_dim: 0,
        };
        let kernel = crate::cuda::kernel(
            dev,
            &info,
            key,
            crate::sources::GROUP_NORM,
            || format!("group_norm_{tname}"),
            0,
            op_name,
        )?;
        // SAFETY: the kernel writes every element of every (sample, group).
        let out = unsafe { dev.alloc::<T>(n * c * s)? };
        let cfg = LaunchConfig {
            grid_dim: ((n * op.groups) as u32, 1, 1),
            block_dim: (512, 1, 1),
            shared_mem_bytes: 0,
        };
        let (c_i, g_i, s_i, silu) = (c as i32, op.groups as i32, s as i32, op.silu as i32);
        let stream = dev.cuda_stream();
        let mut b = stream.launch_builder(&kernel.func);
        b.arg(&x)
            .arg(&gamma)
            .arg(&beta)
            .arg(&out)
            .arg(&c_i)
            .arg(&g_i)
            .arg(&s_i)
            .arg(&op.eps)
            .arg(&silu);
        // SAFETY: argument types and order match group_norm.cu; sizes as checked above.
        unsafe { b.launch(cfg) }.w()?;
        Ok((
            CudaStorage::wrap_cuda_slice(out, dev.clone()),
            l1.shape().clone(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::max_abs_diff;

    fn values(n: usize, seed: u64, offset: f32) -> Vec<f32> {
        let mut state = seed.wrapping_add(0x9e3779b97f4a7c15);
        (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0 + offset
            })
            .collect()
    }

    /// The textbook formula in f64, element by element.
    #[allow(clippy::too_many_arguments)]
    fn naive(
        x: &[f32],
        gamma: &[f32],
        beta: &[f32],
        n: usize,
        c: usize,
        s: usize,
        g: usize,
        eps: f64,
        silu: bool,
    ) -> Vec<f32> {
        let cpg = c / g;
        let mut y = vec![0f32; x.len()];
        for ni in 0..n {
            for gi in 0..g {
                let base = (ni * c + gi * cpg) * s;
                let xs = &x[base..base + cpg * s];
                let mean = xs.iter().map(|&v| v as f64).sum::<f64>() / xs.len() as f64;
                let var =
                    xs.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / xs.len() as f64;
                for (i, &v) in xs.iter().enumerate() {
                    let ch = gi * cpg + i / s;
                    let mut r =
                        (v as f64 - mean) / (var + eps).sqrt() * gamma[ch] as f64 + beta[ch] as f64;
                    if silu {
                        r /= 1.0 + (-r).exp();
                    }
                    y[base + i] = r as f32;
                }
            }
        }
        y
    }
    /// f32 vs f64 formula: ≤ 2e-5 on outputs of magnitude ≤ ~10.
    const TOL: f32 = 2e-5;

    #[test]
    fn cpu_ref_matches_the_formula() {
        // SD's 32 groups at scaled-down widths; a mean offset of 3 to catch E[x²]-E[x]² cancellation.
        for (i, &(n, c, h, w, eps, silu)) in [
            (2, 64, 8, 8, 1e-5, true),
            (1, 96, 5, 7, 1e-6, false),
            (2, 32, 16, 16, 1e-6, true),
        ]
        .iter()
        .enumerate()
        {
            let g = 32;
            let x = values(n * c * h * w, i as u64, 3.0);
            let gamma = values(c, 100 + i as u64, 0.0);
            let beta = values(c, 200 + i as u64, 0.0);
            let want = naive(&x, &gamma, &beta, n, c, h * w, g, eps, silu);
            let xt = Tensor::from_vec(x, (n, c, h, w), &Device::Cpu).unwrap();
            let gt = Tensor::from_vec(gamma, c, &Device::Cpu).unwrap();
            let bt = Tensor::from_vec(beta, c, &Device::Cpu).unwrap();
            let got = cpu_ref(&xt, &gt, &bt, g, eps, silu).unwrap();
            assert_eq!(got.dims(), &[n, c, h, w]);
            let diff = max_abs_diff(&got.flatten_all().unwrap().to_vec1().unwrap(), &want);
            assert!(diff <= TOL, "case {i}: max abs diff {diff}");
            // The custom op (CPU path), f32 and f16 (f16: output rounding, |y| < 8 → ≤ 4e-3).
            for (dt, tol) in [(DType::F32, TOL), (DType::F16, 4e-3)] {
                let out = group_norm(&xt.to_dtype(dt).unwrap(), &gt, &bt, g, eps, silu).unwrap();
                assert_eq!(out.dtype(), dt);
                let xr: Vec<f32> = xt
                    .to_dtype(dt)
                    .unwrap()
                    .to_dtype(DType::F32)
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1()
                    .unwrap();
                let gr: Vec<f32> = gt
                    .to_dtype(dt)
                    .unwrap()
                    .to_dtype(DType::F32)
                    .unwrap()
                    .to_vec1()
                    .unwrap();
                let br: Vec<f32> = bt
                    .to_dtype(dt)
                    .unwrap()
                    .to_dtype(DType::F32)
                    .unwrap()
                    .to_vec1()
                    .unwrap();
                let want = naive(&xr, &gr, &br, n, c, h * w, g, eps, silu);
                let got: Vec<f32> = out
                    .to_dtype(DType::F32)
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1()
                    .unwrap();
                let diff = max_abs_diff(&got, &want);
                assert!(diff <= tol, "case {i} {dt:?}: max abs diff {diff}");
            }
        }
    }

    /// The CPU path at every SIMD level this machine has equals the f64 formula, including a
    /// large mean offset (cancellation in `E[x²] − E[x]²`) and a spatial size that is not a
    /// multiple of the vector width.
    #[test]
    fn cpu_fused_matches_the_formula_at_every_level() {
        for level in crate::simd::Level::supported() {
            for (i, &(n, c, h, w, offset, silu)) in [
                (2, 64, 8, 8, 3.0, true),
                (1, 96, 5, 7, 0.0, false),
                (1, 32, 3, 1, 30.0, true),
                (3, 64, 1, 1, 0.0, false),
            ]
            .iter()
            .enumerate()
            {
                let x = values(n * c * h * w, 10 + i as u64, offset);
                let gamma = values(c, 110 + i as u64, 0.0);
                let beta = values(c, 210 + i as u64, 0.0);
                let want = naive(&x, &gamma, &beta, n, c, h * w, 32, 1e-5, silu);
                let got =
                    cpu_fused(&x, &gamma, &beta, (n, c, h * w), 32, 1e-5, silu, level).unwrap();
                let diff = max_abs_diff(&got, &want);
                assert!(diff <= TOL, "{level:?} case {i}: max abs diff {diff}");
            }
        }
        assert!(cpu_fused(
            &[0.0; 8],
            &[1.0; 4],
            &[0.0; 4],
            (1, 4, 3),
            2,
            1e-5,
            false,
            crate::simd::level()
        )
        .is_err());
    }

    #[test]
    fn silu_flag_matters_and_bad_args_fail() {
        let x = Tensor::from_vec(values(2 * 8 * 9, 1, 0.0), (2, 8, 3, 3), &Device::Cpu).unwrap();
        let ones = Tensor::ones(8, DType::F32, &Device::Cpu).unwrap();
        let zeros = Tensor::zeros(8, DType::F32, &Device::Cpu).unwrap();
        let a: Vec<f32> = cpu_ref(&x, &ones, &zeros, 4, 1e-5, false)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let b: Vec<f32> = cpu_ref(&x, &ones, &zeros, 4, 1e-5, true)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!(max_abs_diff(&a, &b) > 0.1);
        assert!(group_norm(&x, &ones, &zeros, 3, 1e-5, false).is_err()); // 8 % 3 != 0
        assert!(group_norm(&x, &ones.narrow(0, 0, 4).unwrap(), &zeros, 4, 1e-5, false).is_err());
    }
}
