//! Fused scaled-dot-product attention: `softmax(q kᵀ · scale) v`, never building the full score
//! matrix.
//!
//! * [`flash_attention`]: the entry point, for q `[B, H, Lq, D]` and k, v `[B, H, Lk, D]`
//!   (self-attention: Lk = Lq; SD's cross-attention: Lk = 77). The output has q's shape and dtype.
//! * [`FlashAttention`]: the candle `CustomOp3`. On CPU it runs the fused CPU attention of
//!   [`crate::attention_cpu`] (tiles, online softmax, vectorised exp); on CUDA, for f16
//!   and bf16 with a head dim in [`TC_HEAD_DIMS`] on sm_80 or newer, the tensor-core kernel of
//!   `cuda/flash_attn_tc.cu` (WMMA, 64-key tiles, f32 accumulation); otherwise the kernel of
//!   `cuda/flash_attn.cu` (CUDA cores, online softmax over 32-key tiles, f32 accumulation,
//!   f32/f16/bf16) for the head dims in [`CUDA_HEAD_DIMS`].
//! * Wide heads (the VAE's single 512-wide head) on CUDA: [`flash_attention`] takes the chunked
//!   cuBLAS path ([`chunked`]) instead, which measured ~8× faster there than a fused kernel with
//!   one head (it still never builds more than [`GPU_SCORE_BUDGET`] scores at once).
//! * [`attention_trainable`] / [`TrainableAttention`]: the same forward (kernel on CUDA,
//!   [`crate::attention_cpu`] on CPU) with a backward pass ([`attention_grads`]) that recomputes the
//!   probabilities chunk by chunk from q, k, v, the output and its gradient, as FlashAttention's
//!   backward does: training never stores a score matrix, so SD1.5 at 512² trains in bounded
//!   memory.
//! * [`cpu_ref`]: f32 math on CPU tensors through candle ops (matmul, softmax, matmul), chunked
//!   over queries so the score buffer stays under [`SCORE_BUDGET`] elements (the VAE's 16384²
//!   scores would be 1 GiB): the plain reference the fused paths are tested against.

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, DType, Device, Layout, Result, Shape, Tensor, D};

/// Head dims the CUDA kernel is instantiated for: SD1.5's 40/80/160, SDXL's 64, the VAE's 512,
/// and 128.
pub const CUDA_HEAD_DIMS: [usize; 6] = [40, 64, 80, 128, 160, 512];

/// `(head dim, query rows per warp)` of each CUDA instantiation; a block holds 4 warps. Must match
/// the `DEFINE_FLASH_ATTN` lines of `cuda/flash_attn.cu` (a test checks it).
pub const TILES: &[(usize, usize)] = &[(40, 8), (64, 8), (80, 8), (128, 8), (160, 8), (512, 4)];

/// Head dims of the tensor-core kernel (f16/bf16, sm_80+). Must match the
/// `DEFINE_FLASH_ATTN_TC` lines of `cuda/flash_attn_tc.cu` (a test checks it).
pub const TC_HEAD_DIMS: [usize; 5] = [40, 64, 80, 128, 160];

/// Head dims above this take the chunked cuBLAS path on CUDA.
pub const FUSED_MAX_HEAD_DIM: usize = 160;

/// Largest score buffer [`cpu_ref`] builds at once, in f32 elements (16 MiB).
pub const SCORE_BUDGET: usize = 1 << 22;

/// Largest score buffer [`chunked`] builds at once on a GPU, in elements (128 Mi: 256 MiB in
/// f16, so the VAE at 1024² takes two chunks).
pub const GPU_SCORE_BUDGET: usize = 1 << 27;

/// Whether the CUDA kernel covers this head dim and dtype (otherwise `cuda_fwd` errors and the
/// caller should take its unfused path).
pub fn cuda_supports(head_dim: usize, dtype: DType) -> bool {
    CUDA_HEAD_DIMS.contains(&head_dim) && matches!(dtype, DType::F32 | DType::F16 | DType::BF16)
}

/// `(dims of q, lk)` after checking the shapes of q, k and v.
fn check_shapes(q: &Shape, k: &Shape, v: &Shape) -> Result<([usize; 4], usize)> {
    let (Ok(qd), Ok(kd), Ok(vd)) = (q.dims4(), k.dims4(), v.dims4()) else {
        bail!("flash_attention: q, k, v must be [B, H, L, D], got {q:?}, {k:?}, {v:?}")
    };
    let (b, h, lq, d) = qd;
    if kd != vd || kd.0 != b || kd.1 != h || kd.3 != d || lq == 0 || kd.2 == 0 {
        bail!("flash_attention: q {q:?} needs k and v of shape [{b}, {h}, Lk > 0, {d}], got {k:?}, {v:?}")
    }
    Ok(([b, h, lq, d], kd.2))
}

/// Reference attention in f32 on CPU tensors (any input dtype; the result is f32).
pub fn cpu_ref(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Result<Tensor> {
    cpu_ref_with_budget(q, k, v, scale, SCORE_BUDGET)
}

/// [`cpu_ref`] with an explicit score budget (in f32 elements; at least one query row per chunk).
pub fn cpu_ref_with_budget(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    scale: f64,
    budget: usize,
) -> Result<Tensor> {
    let ([b, h, lq, _], lk) = check_shapes(q.shape(), k.shape(), v.shape())?;
    let cpu = Device::Cpu;
    let q = q.to_device(&cpu)?.to_dtype(DType::F32)?;
    let kt = k.to_device(&cpu)?.to_dtype(DType::F32)?.t()?.contiguous()?; // [B, H, D, Lk]
    let v = v.to_device(&cpu)?.to_dtype(DType::F32)?.contiguous()?;
    let rows = (budget / (b * h * lk)).clamp(1, lq);
    let mut outs = Vec::with_capacity(lq.div_ceil(rows));
    let mut start = 0;
    while start < lq {
        let n = rows.min(lq - start);
        let qc = q.narrow(2, start, n)?.contiguous()?;
        let s = (qc.matmul(&kt)? * scale)?; // [B, H, n, Lk]
        let m = s.max_keepdim(D::Minus1)?;
        let e = s.broadcast_sub(&m)?.exp()?;
        let p = e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?;
        outs.push(p.matmul(&v)?);
        start += n;
    }
    Tensor::cat(&outs, 2)
}

/// Fused attention with q `[B, H, Lq, D]`, k and v `[B, H, Lk, D]` (same dtype and device):
/// `softmax(q kᵀ · scale) v`, shape and dtype of q. Non-contiguous inputs are copied first.
pub fn flash_attention(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Result<Tensor> {
    check_shapes(q.shape(), k.shape(), v.shape())?;
    if q.dtype() != k.dtype() || q.dtype() != v.dtype() {
        bail!(
            "flash_attention: q, k, v dtypes differ: {:?}, {:?}, {:?}",
            q.dtype(),
            k.dtype(),
            v.dtype()
        )
    }
    if q.device().is_cpu() {
        // Reads any strides: no copies.
        return crate::attention_cpu::attention(q, k, v, scale);
    }
    let (q, k, v) = (q.contiguous()?, k.contiguous()?, v.contiguous()?);
    if q.device().is_cuda() && q.dim(3)? > FUSED_MAX_HEAD_DIM {
        return chunked(&q, &k, &v, scale, GPU_SCORE_BUDGET);
    }
    q.apply_op3_no_bwd(
        &k,
        &v,
        &FlashAttention {
            scale: scale as f32,
        },
    )
}

/// Attention as matmul, softmax (in f32), matmul, over chunks of queries so that at most
/// `budget` scores exist at once: the cuBLAS path for wide heads. Any device; the result has q's
/// dtype.
pub fn chunked(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64, budget: usize) -> Result<Tensor> {
    let ([b, h, lq, _], lk) = check_shapes(q.shape(), k.shape(), v.shape())?;
    let kt = k.t()?.contiguous()?; // [B, H, D, Lk]
    let rows = (budget / (b * h * lk)).clamp(1, lq);
    let mut outs = Vec::with_capacity(lq.div_ceil(rows));
    let mut start = 0;
    while start < lq {
        let n = rows.min(lq - start);
        let s = (q.narrow(2, start, n)?.matmul(&kt)? * scale)?;
        let p = candle_nn_softmax_f32(&s)?.to_dtype(q.dtype())?;
        outs.push(p.matmul(v)?);
        start += n;
    }
    Tensor::cat(&outs, 2)
}

/// Softmax over the last dim, computed in f32.
fn candle_nn_softmax_f32(s: &Tensor) -> Result<Tensor> {
    let s = s.to_dtype(DType::F32)?;
    let m = s.max_keepdim(D::Minus1)?;
    let e = s.broadcast_sub(&m)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

/// Attention that candle can differentiate: `softmax(q kᵀ · scale) v` with [`TrainableAttention`]
/// (forward as [`flash_attention`], backward by [`attention_grads`] in chunks of queries under
/// [`GPU_SCORE_BUDGET`] / 4 scores on a GPU and [`SCORE_BUDGET`] on the CPU).
pub fn attention_trainable(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Result<Tensor> {
    check_shapes(q.shape(), k.shape(), v.shape())?;
    let (q, k, v) = (q.contiguous()?, k.contiguous()?, v.contiguous()?);
    let budget = if q.device().is_cuda() {
        GPU_SCORE_BUDGET / 4
    } else {
        SCORE_BUDGET
    };
    q.apply_op3(
        &k,
        &v,
        TrainableAttention {
            scale: scale as f32,
            budget,
        },
    )
}

/// The gradients of `out = softmax(q kᵀ · scale) v` w.r.t. q, k and v given `d_out`, in f32 on
/// the inputs' device, returned in q's dtype. For each chunk of queries (at most `budget`
/// scores): `P = softmax(S)`, `dV += Pᵀ dO`, `dP = dO Vᵀ`, `dS = P ⊙ (dP − rowsum(dO ⊙ O))`,
/// `dQ = scale · dS K`, `dK += scale · dSᵀ Q`.
pub fn attention_grads(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    out: &Tensor,
    d_out: &Tensor,
    scale: f64,
    budget: usize,
) -> Result<(Tensor, Tensor, Tensor)> {
    let ([b, h, lq, _], lk) = check_shapes(q.shape(), k.shape(), v.shape())?;
    let dtype = q.dtype();
    let f32c = |t: &Tensor| t.detach().to_dtype(DType::F32)?.contiguous();
    let (q, k, v, o, d_o) = (f32c(q)?, f32c(k)?, f32c(v)?, f32c(out)?, f32c(d_out)?);
    let kt = k.t()?.contiguous()?; // [B, H, D, Lk]
    let vt = v.t()?.contiguous()?; // [B, H, D, Lk]
    let delta = (&d_o * &o)?.sum_keepdim(D::Minus1)?; // [B, H, Lq, 1]
    let rows = (budget / (b * h * lk).max(1)).clamp(1, lq);
    let mut dq = Vec::with_capacity(lq.div_ceil(rows));
    let mut dk = k.zeros_like()?;
    let mut dv = v.zeros_like()?;
    let mut start = 0;
    while start < lq {
        let n = rows.min(lq - start);
        let qc = q.narrow(2, start, n)?;
        let doc = d_o.narrow(2, start, n)?;
        let s = (qc.matmul(&kt)? * scale)?;
        let e = s.broadcast_sub(&s.max_keepdim(D::Minus1)?)?.exp()?;
        let p = e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?;
        dv = (dv + p.t()?.matmul(&doc)?)?;
        let dp = doc.matmul(&vt)?;
        let ds = (p * dp.broadcast_sub(&delta.narrow(2, start, n)?)?)?;
        dq.push((ds.matmul(&k)? * scale)?);
        dk = (dk + (ds.t()?.matmul(&qc)? * scale)?)?;
        start += n;
    }
    let dq = Tensor::cat(&dq, 2)?;
    Ok((
        dq.to_dtype(dtype)?,
        dk.to_dtype(dtype)?,
        dv.to_dtype(dtype)?,
    ))
}

/// [`FlashAttention`] with a backward pass; see [`attention_trainable`].
#[derive(Debug, Clone, Copy)]
pub struct TrainableAttention {
    pub scale: f32,
    /// Scores per chunk in the backward pass.
    pub budget: usize,
}

impl candle_core::CustomOp3 for TrainableAttention {
    fn name(&self) -> &'static str {
        "flash-attention-trainable"
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
        let fwd = FlashAttention { scale: self.scale };
        candle_core::CustomOp3::cpu_fwd(&fwd, s1, l1, s2, l2, s3, l3)
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
        cuda::fwd(self.scale, s1, l1, s2, l2, s3, l3)
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        out: &Tensor,
        d_out: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dq, dk, dv) = attention_grads(q, k, v, out, d_out, self.scale as f64, self.budget)?;
        Ok((Some(dq), Some(dk), Some(dv)))
    }
}

/// The attention custom op (`q.apply_op3_no_bwd(&k, &v, &FlashAttention { scale })`). The CUDA
/// kernels need contiguous inputs ([`flash_attention`] sees to it); the CPU path reads any
/// strides.
#[derive(Debug, Clone, Copy)]
pub struct FlashAttention {
    pub scale: f32,
}

impl candle_core::CustomOp3 for FlashAttention {
    fn name(&self) -> &'static str {
        "flash-attention"
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
        crate::attention_cpu::cpu_fwd((s1, l1), (s2, l2), (s3, l3), self.scale, s1.dtype())
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
        cuda::fwd(self.scale, s1, l1, s2, l2, s3, l3)
    }
}

#[cfg(feature = "cuda")]
mod cuda {
    use super::{check_shapes, TC_HEAD_DIMS, TILES};
    use candle_core::backend::BackendStorage;
    use candle_core::cuda_backend::cudarc::driver::{DeviceRepr, LaunchConfig, PushKernelArg};
    use candle_core::cuda_backend::{CudaDType, WrapErr};
    use candle_core::{bail, CudaStorage, DType, Layout, Result, Shape};
    use std::sync::OnceLock;

    /// Dynamic shared memory of one block, in bytes (the formula at the top of flash_attn.cu).
    pub(super) fn smem_bytes(d: usize, rq: usize) -> usize {
        let bq = 4 * rq;
        4 * (bq * d + 32 * (d + 4) + 32 * d)
    }

    /// Dynamic shared memory of one block of the tensor-core kernel (the formula at the top of
    /// flash_attn_tc.cu; 2-byte elements).
    pub(super) fn tc_smem_bytes(d: usize) -> usize {
        let ldt = d.div_ceil(16) * 16 + 8;
        (64 + 2 * 64) * ldt * 2 + 4 * 16 * (64 + 4) * 4 + 4 * 16 * (64 + 8) * 2
    }

    pub(super) fn fwd(
        scale: f32,
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
        s3: &CudaStorage,
        l3: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        match s1.dtype() {
            DType::F32 => launch::<f32>("f32", scale, s1, l1, s2, l2, s3, l3),
            DType::F16 => launch::<half::f16>("f16", scale, s1, l1, s2, l2, s3, l3),
            DType::BF16 => launch::<half::bf16>("bf16", scale, s1, l1, s2, l2, s3, l3),
            other => bail!("flash_attention: no CUDA kernel for dtype {other:?}"),
        }
    }

    /// `DEFECT_STUDIO_NO_TC_ATTENTION` set: take the CUDA-core kernel even where the tensor-core
    /// one applies (read once per process).
    fn tensor_cores_disabled() -> bool {
        static OFF: OnceLock<bool> = OnceLock::new();
        *OFF.get_or_init(|| std::env::var_os("DEFECT_STUDIO_NO_TC_ATTENTION").is_some())
    }

    #[allow(clippy::too_many_arguments)]
    fn launch<T: CudaDType + DeviceRepr>(
        tname: &'static str,
        scale: f32,
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
        s3: &CudaStorage,
        l3: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        let ([b, h, lq, d], lk) = check_shapes(l1.shape(), l2.shape(), l3.shape())?;
        let Some(&(_, rq)) = TILES.iter().find(|(td, _)| *td == d) else {
            bail!(
                "flash_attention: no CUDA kernel for head dim {d} (have {:?})",
                super::CUDA_HEAD_DIMS
            )
        };
        if lq > i32::MAX as usize || lk > i32::MAX as usize || b * h > 65535 {
            bail!(
                "flash_attention: shape too large for the CUDA kernel: {:?}",
                l1.shape()
            )
        }
        let op = "flash_attention";
        let q = crate::cuda::view::<T>(s1, l1, op)?;
        let k = crate::cuda::view::<T>(s2, l2, op)?;
        let v = crate::cuda::view::<T>(s3, l3, op)?;
        let dev = s1.device();
        let info = crate::cuda::device_info(dev)?;
        // 16-byte vector loads: every view must start on an 8-element boundary.
        let aligned = [l1, l2, l3].iter().all(|l| l.start_offset() % 8 == 0);
        let tensor_cores = tname != "f32"
            && aligned
            && TC_HEAD_DIMS.contains(&d)
            && info.cc >= 80
            && !tensor_cores_disabled();
        let key = |module| crate::cuda::KernelKey {
            ordinal: info.ordinal,
            module,
            dtype: s1.dtype(),
            head_dim: d,
        };
        let (kernel, block_rows) = if tensor_cores {
            let kn = crate::cuda::kernel(
                dev,
                &info,
                key("flash_attn_tc"),
                crate::sources::FLASH_ATTN_TC,
                || format!("flash_attn_tc_{tname}_d{d}"),
                tc_smem_bytes(d),
                op,
            )?;
            (kn, 64)
        } else {
            let kn = crate::cuda::kernel(
                dev,
                &info,
                key("flash_attn"),
                crate::sources::FLASH_ATTN,
                || format!("flash_attn_fwd_{tname}_d{d}"),
                smem_bytes(d, rq),
                op,
            )?;
            (kn, 4 * rq)
        };
        // SAFETY: every element is written by the kernel (each query row < Lq, each head dim).
        let out = unsafe { dev.alloc::<T>(b * h * lq * d)? };
        let cfg = LaunchConfig {
            grid_dim: (lq.div_ceil(block_rows) as u32, (b * h) as u32, 1),
            block_dim: (128, 1, 1),
            shared_mem_bytes: kernel.smem as u32,
        };
        let (lq_i, lk_i) = (lq as i32, lk as i32);
        let scale_log2 = scale * std::f32::consts::LOG2_E;
        let stream = dev.cuda_stream();
        let mut builder = stream.launch_builder(&kernel.func);
        builder
            .arg(&q)
            .arg(&k)
            .arg(&v)
            .arg(&out)
            .arg(&lq_i)
            .arg(&lk_i)
            .arg(&scale_log2);
        // SAFETY: argument types and order match the kernel signature in flash_attn.cu; the
        // buffers hold B*H*L*D elements as the kernel indexes them.
        unsafe { builder.launch(cfg) }.w()?;
        Ok((
            CudaStorage::wrap_cuda_slice(out, dev.clone()),
            l1.shape().clone(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{flat, max_abs_diff, naive_attention as naive};
    fn qkv(
        b: usize,
        h: usize,
        lq: usize,
        lk: usize,
        d: usize,
        seed: u64,
    ) -> (Tensor, Tensor, Tensor) {
        // Deterministic pseudo-random values in [-2, 2) (a tiny LCG, no RNG crate needed).
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut gen = |n: usize| -> Vec<f32> {
            (0..n)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((state >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
                })
                .collect()
        };
        let t = |v: Vec<f32>, l: usize| Tensor::from_vec(v, (b, h, l, d), &Device::Cpu).unwrap();
        (
            t(gen(b * h * lq * d), lq),
            t(gen(b * h * lk * d), lk),
            t(gen(b * h * lk * d), lk),
        )
    }
    /// f32 reference vs naive f64 attention: max abs diff ≤ 1e-5 (|v| ≤ 2, so outputs ≤ 2).
    const TOL_F32: f32 = 1e-5;

    #[test]
    fn cpu_ref_matches_naive_at_sd_head_dims() {
        // (head dim, Lq, Lk): SD1.5 40/80/160, SDXL 64, VAE 512; self and cross (Lk = 77).
        for (i, &(d, lq, lk)) in [
            (40, 64, 64),
            (40, 33, 77),
            (64, 48, 48),
            (64, 16, 77),
            (80, 40, 77),
            (160, 24, 24),
            (160, 9, 77),
            (512, 20, 20),
        ]
        .iter()
        .enumerate()
        {
            let (q, k, v) = qkv(2, 2, lq, lk, d, i as u64);
            let scale = 1.0 / (d as f64).sqrt();
            let want = naive(&q, &k, &v, scale);
            let got = flat(&cpu_ref(&q, &k, &v, scale).unwrap());
            let diff = max_abs_diff(&got, &want);
            assert!(
                diff <= TOL_F32,
                "d={d} lq={lq} lk={lk}: max abs diff {diff}"
            );
        }
    }

    #[test]
    fn chunking_over_queries_gives_the_same_result() {
        let (q, k, v) = qkv(1, 2, 37, 77, 64, 7);
        let whole = flat(&cpu_ref_with_budget(&q, &k, &v, 0.125, usize::MAX).unwrap());
        // 2*77*1 = 154 elements per query row: budget 500 → 3 rows per chunk, a ragged last one.
        let chunked = flat(&cpu_ref_with_budget(&q, &k, &v, 0.125, 500).unwrap());
        let one_row = flat(&cpu_ref_with_budget(&q, &k, &v, 0.125, 0).unwrap());
        assert_eq!(max_abs_diff(&whole, &chunked), 0.0);
        assert_eq!(max_abs_diff(&whole, &one_row), 0.0);
    }

    /// The trainable op's gradients equal candle's autograd through plain ops (matmul,
    /// softmax as exp / sum), with the backward chunked over queries.
    #[test]
    fn trainable_attention_gradients_match_autograd() {
        use candle_core::Var;
        let (q, k, v) = qkv(2, 3, 29, 41, 40, 13);
        let scale = 1.0 / 40f64.sqrt();
        let w = qkv(2, 3, 29, 29, 40, 17).0; // weights of the loss sum(out ⊙ w)
        let (qv, kv, vv) = (
            Var::from_tensor(&q).unwrap(),
            Var::from_tensor(&k).unwrap(),
            Var::from_tensor(&v).unwrap(),
        );
        let grads = |out: Tensor| {
            let g = (out * &w).unwrap().sum_all().unwrap().backward().unwrap();
            [&qv, &kv, &vv].map(|t| flat(g.get(t.as_tensor()).expect("a gradient")))
        };
        let s = (qv.as_tensor().matmul(&kv.as_tensor().t().unwrap()).unwrap() * scale).unwrap();
        let e = s
            .broadcast_sub(&s.max_keepdim(D::Minus1).unwrap().detach())
            .unwrap()
            .exp()
            .unwrap();
        let p = e.broadcast_div(&e.sum_keepdim(D::Minus1).unwrap()).unwrap();
        let want = grads(p.matmul(vv.as_tensor()).unwrap());
        let out = qv
            .as_tensor()
            .apply_op3(
                kv.as_tensor(),
                vv.as_tensor(),
                TrainableAttention {
                    scale: scale as f32,
                    // 2·3·41 scores per query row: 5 rows per chunk, a ragged last one.
                    budget: 5 * 2 * 3 * 41,
                },
            )
            .unwrap();
        let got = grads(out);
        for (name, (g, w)) in ["q", "k", "v"].iter().zip(got.iter().zip(want.iter())) {
            let diff = max_abs_diff(g, w);
            let scale_of = w.iter().fold(0f32, |m, x| m.max(x.abs()));
            assert!(
                diff <= 1e-5 * scale_of.max(1.0),
                "d{name}: max abs diff {diff}"
            );
        }
    }

    /// The cuBLAS path for wide heads (here run on the CPU): chunked over queries, equal to
    /// naive attention, in f32 and in f16 (softmax in f32).
    #[test]
    fn chunked_matmul_path_matches_naive() {
        let (q, k, v) = qkv(1, 1, 37, 300, 512, 5);
        let scale = 1.0 / 512f64.sqrt();
        let want = naive(&q, &k, &v, scale);
        // 300 scores per query row: budget 3000 → 10 rows per chunk, a ragged last one.
        let got = flat(&chunked(&q, &k, &v, scale, 3000).unwrap());
        let diff = max_abs_diff(&got, &want);
        assert!(diff <= TOL_F32, "max abs diff {diff}");
        let h = |t: &Tensor| t.to_dtype(DType::F16).unwrap();
        let (qh, kh, vh) = (h(&q), h(&k), h(&v));
        let got = chunked(&qh, &kh, &vh, scale, 3000).unwrap();
        assert_eq!(got.dtype(), DType::F16);
        let diff = max_abs_diff(&flat(&got), &naive(&qh, &kh, &vh, scale));
        assert!(diff <= 2e-3, "f16 max abs diff {diff}");
    }

    #[test]
    fn vae_shape_chunks_under_budget() {
        // The VAE's single 512-wide head at a long sequence: the score buffer never exceeds the
        // budget (here 4096 keys, budget 64 rows' worth), and the result still matches naive.
        let (q, k, v) = qkv(1, 1, 70, 4096, 512, 11);
        let scale = 1.0 / 512f64.sqrt();
        let got = flat(&cpu_ref_with_budget(&q, &k, &v, scale, 64 * 4096).unwrap());
        let diff = max_abs_diff(&got, &naive(&q, &k, &v, scale));
        assert!(diff <= TOL_F32, "max abs diff {diff}");
    }

    #[test]
    fn custom_op_matches_naive_in_f32_f16_bf16() {
        let (q, k, v) = qkv(2, 3, 45, 77, 40, 3);
        let scale = 1.0 / 40f64.sqrt();
        // f16/bf16: the inputs are rounded first, so the naive reference sees the same inputs;
        // what remains is the output's rounding: half an ulp at |o| < 2 (f16 2^-10, bf16 2^-7).
        for (dt, tol) in [
            (DType::F32, TOL_F32),
            (DType::F16, 1e-3),
            (DType::BF16, 8e-3),
        ] {
            let (q, k, v) = (
                q.to_dtype(dt).unwrap(),
                k.to_dtype(dt).unwrap(),
                v.to_dtype(dt).unwrap(),
            );
            let out = flash_attention(&q, &k, &v, scale).unwrap();
            assert_eq!(out.dtype(), dt);
            assert_eq!(out.dims(), q.dims());
            let diff = max_abs_diff(&flat(&out), &naive(&q, &k, &v, scale));
            assert!(diff <= tol, "{dt:?}: max abs diff {diff} > {tol}");
        }
    }

    #[test]
    fn non_contiguous_inputs_are_handled() {
        // [B, L, H, D] viewed as [B, H, L, D], as a model's projections produce it.
        let (b, h, lq, lk, d) = (2, 3, 10, 77, 80);
        let (q, _, _) = qkv(b, lq, h, h, d, 5); // q [B, Lq, H, D]
        let (k, v, _) = qkv(b, lk, h, h, d, 6); // k, v [B, Lk, H, D]
        let (q, k, v) = (
            q.transpose(1, 2).unwrap(),
            k.transpose(1, 2).unwrap(),
            v.transpose(1, 2).unwrap(),
        );
        assert!(!q.is_contiguous());
        assert_eq!(k.dims(), &[b, h, lk, d]);
        let out = flash_attention(&q, &k, &v, 0.1).unwrap();
        let diff = max_abs_diff(&flat(&out), &naive(&q, &k, &v, 0.1));
        assert!(diff <= TOL_F32, "max abs diff {diff}");
    }

    #[test]
    fn the_comparison_can_fail() {
        // A wrong scale is caught: the tolerance is far tighter than a real error.
        let (q, k, v) = qkv(1, 1, 16, 16, 64, 9);
        let got = flat(&cpu_ref(&q, &k, &v, 0.125).unwrap());
        let wrong = naive(&q, &k, &v, 0.126);
        assert!(max_abs_diff(&got, &wrong) > 100.0 * TOL_F32);
    }

    #[test]
    fn bad_shapes_are_errors() {
        let (q, k, _) = qkv(1, 2, 8, 8, 40, 1);
        let v_bad = Tensor::zeros((1, 2, 9, 40), DType::F32, &Device::Cpu).unwrap();
        assert!(flash_attention(&q, &k, &v_bad, 1.0).is_err());
        assert!(flash_attention(&q, &k.to_dtype(DType::F16).unwrap(), &k, 1.0).is_err());
        assert!(cpu_ref(&q.flatten_all().unwrap(), &k, &k, 1.0).is_err());
    }

    #[test]
    fn cuda_support_table() {
        assert!(cuda_supports(40, DType::F16) && cuda_supports(512, DType::BF16));
        assert!(!cuda_supports(48, DType::F16) && !cuda_supports(64, DType::F64));
        assert_eq!(
            TILES.iter().map(|t| t.0).collect::<Vec<_>>(),
            CUDA_HEAD_DIMS.to_vec()
        );
    }
}
