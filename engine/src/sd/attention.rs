//! The single scaled-dot-product attention entry point used by every attention layer of the
//! UNet and the VAE.
//!
//! [`attention`] sends CPU tensors to the fused CPU attention of the `kernels` crate
//! (`kernels::attention_cpu`: query × key tiles with an online softmax, so no score buffer larger
//! than a cache-sized tile, vectorised exp, parallel over heads and query blocks, reading q, k
//! and v through their strides) and CUDA tensors to the fused flash-attention kernel for the head
//! dims it covers. In grad mode (LoRA training) it uses `kernels::attention::attention_trainable`:
//! the same forward (the fused kernels) with a backward that recomputes the probabilities in
//! chunks, so training keeps no score matrix either. Other devices and CUDA head dims without a
//! kernel take [`attention_chunked`]: the queries in chunks, so that the score buffer of one
//! chunk stays under [`SCORE_BUDGET_BYTES`] (SDXL's VAE mid-block attention at 1024², one
//! 512-wide head, L = 16384, would be a 1 GiB score matrix).

use candle_core::{DType, Result, Tensor, D};

/// Upper bound in bytes of the f32 score buffer of one query chunk of [`attention_chunked`].
pub const SCORE_BUDGET_BYTES: usize = 64 << 20;

/// `softmax(q kᵀ · scale) v` for q `[B, H, Lq, D]`, k/v `[B, H, Lk, D]`, returning `[B, H, Lq, D]`
/// in v's dtype. Scores and softmax are computed in f32 whatever the input dtype.
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Result<Tensor> {
    if crate::sd::layers::grad_mode() {
        // Training: the fused forward with a chunked backward that recomputes the
        // probabilities, so no score matrix is kept for the backward pass.
        return kernels::attention::attention_trainable(q, k, v, scale);
    }
    if q.device().is_cpu() {
        return kernels::attention_cpu::attention(q, k, v, scale);
    }
    if q.device().is_cuda() && kernels::attention::cuda_supports(q.dim(D::Minus1)?, q.dtype()) {
        return kernels::attention::flash_attention(q, k, v, scale);
    }
    attention_chunked(q, k, v, scale, SCORE_BUDGET_BYTES)
}

/// Attention as matmul, softmax, matmul over chunks of queries, with an explicit score-buffer
/// budget in bytes (the query chunk holds at least one row): [`attention`]'s path on devices
/// without a fused kernel, and the baseline the fused CPU path is measured against. Model code
/// calls [`attention`].
pub fn attention_chunked(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    scale: f64,
    budget_bytes: usize,
) -> Result<Tensor> {
    let (b, h, lq, d) = q.dims4()?;
    let (bk, hk, lk, dk) = k.dims4()?;
    let (bv, hv, lv, _dv) = v.dims4()?;
    if (b, h, d) != (bk, hk, dk) || (bk, hk, lk) != (bv, hv, lv) {
        candle_core::bail!(
            "attention: incompatible shapes q {:?}, k {:?}, v {:?}",
            q.shape(),
            k.shape(),
            v.shape()
        );
    }
    let out_dtype = v.dtype();
    let q = q.to_dtype(DType::F32)?.contiguous()?;
    // The gemm reads the transposed view directly (no copy of k).
    let kt = k.to_dtype(DType::F32)?.contiguous()?.transpose(2, 3)?;
    let scale_t = Tensor::new(scale as f32, q.device())?;
    let row_bytes = b * h * lk * 4;
    let chunk = (budget_bytes / row_bytes.max(1)).clamp(1, lq.max(1));
    let mut outs = Vec::with_capacity(lq.div_ceil(chunk));
    let mut start = 0;
    while start < lq {
        let len = chunk.min(lq - start);
        // A row range of a contiguous q is a valid strided gemm operand: no copy.
        let qc = q.narrow(2, start, len)?;
        // Scalar-tensor multiply runs on candle's parallel binary path (`affine` is serial).
        let scores = qc.matmul(&kt)?.broadcast_mul(&scale_t)?;
        // Differentiable in grad mode (training).
        let probs = crate::sd::layers::softmax_last_dim(&scores)?;
        drop(scores);
        let probs = probs.to_dtype(out_dtype)?;
        outs.push(probs.matmul(v)?);
        start += len;
    }
    if outs.len() == 1 {
        if let Some(o) = outs.pop() {
            return Ok(o);
        }
    }
    Tensor::cat(&outs, 2)
}

/// Reference attention building the full score matrix (used in tests).
pub fn naive_attention(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Result<Tensor> {
    let q = q.to_dtype(DType::F32)?.contiguous()?;
    let k = k.to_dtype(DType::F32)?;
    let s = (q.matmul(&k.t()?)? * scale)?;
    let m = s.max_keepdim(D::Minus1)?;
    let e = s.broadcast_sub(&m)?.exp()?;
    let p = e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?;
    p.matmul(&v.to_dtype(DType::F32)?)?.to_dtype(v.dtype())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn max_rel(a: &Tensor, b: &Tensor) -> f32 {
        let a = a.to_dtype(DType::F32).unwrap();
        let b = b.to_dtype(DType::F32).unwrap();
        let d = (a - &b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let m = b
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        d / m
    }

    #[test]
    fn chunked_matches_naive() {
        let dev = Device::Cpu;
        let q = Tensor::randn(0f32, 1.0, (2, 3, 37, 8), &dev).unwrap();
        let k = Tensor::randn(0f32, 1.0, (2, 3, 29, 8), &dev).unwrap();
        let v = Tensor::randn(0f32, 1.0, (2, 3, 29, 8), &dev).unwrap();
        let want = naive_attention(&q, &k, &v, 0.35).unwrap();
        // Budget of 5 rows -> 8 chunks with a ragged last one; and the default (one chunk).
        for budget in [2 * 3 * 29 * 4 * 5, 1, SCORE_BUDGET_BYTES] {
            let got = attention_chunked(&q, &k, &v, 0.35, budget).unwrap();
            assert_eq!(got.dims(), &[2, 3, 37, 8]);
            let r = max_rel(&got, &want);
            assert!(r < 1e-6, "budget {budget}: rel diff {r}");
        }
    }

    #[test]
    fn cpu_path_matches_naive_at_odd_sizes() {
        // The fused CPU kernel (several heads, batch 2, odd lengths, a strided view of q).
        let dev = Device::Cpu;
        let q = Tensor::randn(0f32, 1.0, (2, 77, 5, 40), &dev).unwrap();
        let q = q.transpose(1, 2).unwrap();
        let k = Tensor::randn(0f32, 1.0, (2, 5, 300, 40), &dev).unwrap();
        let v = Tensor::randn(0f32, 1.0, (2, 5, 300, 40), &dev).unwrap();
        let scale = 1.0 / 40f64.sqrt();
        let got = attention(&q, &k, &v, scale).unwrap();
        assert_eq!(got.dims(), &[2, 5, 77, 40]);
        let r = max_rel(&got, &naive_attention(&q, &k, &v, scale).unwrap());
        assert!(r < 1e-5, "rel diff {r}");
    }

    #[test]
    fn f16_inputs_use_f32_softmax() {
        let dev = Device::Cpu;
        // Large logits overflow f16 exp if the softmax were done in f16.
        let q = (Tensor::randn(0f32, 1.0, (1, 2, 16, 8), &dev).unwrap() * 30.0).unwrap();
        let k = (Tensor::randn(0f32, 1.0, (1, 2, 16, 8), &dev).unwrap() * 30.0).unwrap();
        let v = Tensor::randn(0f32, 1.0, (1, 2, 16, 8), &dev).unwrap();
        let (q, k, v) = (
            q.to_dtype(DType::F16).unwrap(),
            k.to_dtype(DType::F16).unwrap(),
            v.to_dtype(DType::F16).unwrap(),
        );
        // Same f16-rounded inputs, computed fully in f32.
        let want = naive_attention(
            &q.to_dtype(DType::F32).unwrap(),
            &k.to_dtype(DType::F32).unwrap(),
            &v.to_dtype(DType::F32).unwrap(),
            1.0,
        )
        .unwrap();
        let got = attention(&q, &k, &v, 1.0).unwrap();
        assert_eq!(got.dtype(), DType::F16);
        let r = max_rel(&got, &want);
        assert!(r.is_finite() && r < 2e-3, "rel diff {r}");
    }

    #[test]
    fn large_single_head_is_chunked() {
        // L = 4096 single head: full scores would be 64 MiB; with a 1 MiB budget it is chunked.
        let dev = Device::Cpu;
        let q = Tensor::randn(0f32, 1.0, (1, 1, 4096, 16), &dev).unwrap();
        let k = Tensor::randn(0f32, 1.0, (1, 1, 4096, 16), &dev).unwrap();
        let v = Tensor::randn(0f32, 1.0, (1, 1, 4096, 16), &dev).unwrap();
        let got = attention_chunked(&q, &k, &v, 0.25, 1 << 20).unwrap();
        let want = naive_attention(&q, &k, &v, 0.25).unwrap();
        let r = max_rel(&got, &want);
        assert!(r < 1e-5, "rel diff {r}");
    }
}
