//! Fused scaled-dot-product attention on the CPU (FlashAttention's algorithm, for f32 math on
//! candle CPU tensors): `softmax(q kᵀ · scale) v` for q `[B, H, Lq, D]`, k and v `[B, H, Lk, D]`.
//!
//! * Work is split into tasks of one (batch·head, block of [`Blocks::q`] query rows; 128 or
//!   256, fewer for short sequences with few heads), run on
//!   rayon's global pool (which candle and gemm share: no other pool is spawned).
//! * A task walks the keys in blocks of [`Blocks::k`]: the score tile `S = scale · Q Kᵀ` (at most
//!   `q × k` floats, sized to stay in L2) and the accumulator update `O += P V` are products by
//!   `gemm::gemm` (single-threaded inside the task, reading q, k and v through their strides, so
//!   transposed views are never copied). In between, each row of the tile goes through the online
//!   softmax: its new running max `m`, `P = exp(S − m)` and its sum through [`crate::simd`], and
//!   the rescaling of the running sum and of the accumulator row by `exp(m_old − m)`. The output
//!   block is the accumulator, divided by the running sums at the end.
//! * Everything is f32 with f32 accumulation; f16/bf16/f64 inputs are converted to f32 once, and
//!   the result is converted to the requested dtype.
//!
//! Entry points: [`attention`] (tensors; used by `engine::sd::attention` on the CPU) and
//! [`cpu_fwd`] (storages and layouts; the CPU forward of [`crate::attention::FlashAttention`] and
//! of the trainable op). Both run at [`simd::level`]; [`attention_at`] takes the level and the
//! blocks explicitly (tests, benchmarks).

use crate::simd::{self, Level};
use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, DType, Device, Layout, Result, Shape, Storage, Tensor};
use rayon::prelude::*;
use std::borrow::Cow;

/// Query rows and keys per tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocks {
    /// Query rows per task (and per score tile).
    pub q: usize,
    /// Keys per score tile.
    pub k: usize,
}

impl Blocks {
    /// The tiles for a head dim: keys so that one block of k (or v) stays near 256 KiB (between
    /// 64 and 512 keys, a multiple of 16): 512 keys for D ≤ 128, 400 for SD1.5's 160, 128 for
    /// the VAE's 512; 128 query rows, 256 for heads wider than 160 (fewer passes over k and v,
    /// which dominate there). The score tile is then at most 256 KiB, the accumulator 512 KiB.
    /// Measured at 512² (`cargo bench -p kernels --bench attention_cpu -- sweep`): 64 → 128 rows
    /// gave −5 % on SD1.5's self-attention, 64 → 256 rows −20 % on the VAE's.
    pub fn for_head_dim(d: usize) -> Blocks {
        let k = (65_536 / d.max(1)).clamp(64, 512) / 16 * 16;
        let q = if d > 160 { 256 } else { 128 };
        Blocks { q, k }
    }

    /// [`Blocks::for_head_dim`], with fewer query rows per task (down to 16) while there would
    /// be fewer than four tasks per thread of rayon's pool, so short sequences with few heads
    /// still keep every core busy.
    pub fn for_shape(heads: usize, lq: usize, d: usize) -> Blocks {
        let mut b = Blocks::for_head_dim(d);
        let want = 4 * rayon::current_num_threads();
        while b.q > 16 && heads * lq.div_ceil(b.q) < want {
            b.q /= 2;
        }
        b
    }
}

/// A 4-D f32 array `[B, H, L, D]` in a slice: element `(b, h, l, x)` is at
/// `offset + b·strides[0] + h·strides[1] + l·strides[2] + x·strides[3]`.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    data: &'a [f32],
    offset: usize,
    dims: [usize; 4],
    strides: [usize; 4],
}

impl<'a> View<'a> {
    /// A view, checked to lie inside `data`.
    pub fn new(
        data: &'a [f32],
        offset: usize,
        dims: [usize; 4],
        strides: [usize; 4],
    ) -> Result<View<'a>> {
        if dims.contains(&0) {
            return Ok(View {
                data,
                offset,
                dims,
                strides,
            });
        }
        let last = dims.iter().zip(&strides).try_fold(offset, |acc, (&n, &s)| {
            acc.checked_add((n - 1).checked_mul(s)?)
        });
        match last {
            Some(last) if last < data.len() => Ok(View {
                data,
                offset,
                dims,
                strides,
            }),
            _ => bail!(
                "attention: a view of dims {dims:?}, strides {strides:?} at offset {offset} \
                 does not fit in {} elements",
                data.len()
            ),
        }
    }

    /// A view of a CPU storage through a rank-4 layout.
    fn of_layout(data: &'a [f32], layout: &Layout) -> Result<View<'a>> {
        let (Ok(dims), [s0, s1, s2, s3]) = (layout.shape().dims4(), layout.stride()) else {
            bail!(
                "attention: q, k, v must be [B, H, L, D], got {:?}",
                layout.shape()
            )
        };
        View::new(
            data,
            layout.start_offset(),
            [dims.0, dims.1, dims.2, dims.3],
            [*s0, *s1, *s2, *s3],
        )
    }

    /// Offset of row `l` of head `bh` (batch-major).
    fn row(&self, bh: usize, l: usize) -> usize {
        let (b, h) = (bh / self.dims[1], bh % self.dims[1]);
        self.offset + b * self.strides[0] + h * self.strides[1] + l * self.strides[2]
    }
}

/// `(B, H, Lq, D, Lk)` after checking that q, k and v agree.
fn check(q: &View, k: &View, v: &View) -> Result<(usize, usize, usize, usize, usize)> {
    let [b, h, lq, d] = q.dims;
    let kd = k.dims;
    if kd != v.dims || kd[0] != b || kd[1] != h || kd[3] != d || lq == 0 || kd[2] == 0 {
        bail!(
            "attention: q {:?} needs k and v of shape [{b}, {h}, Lk > 0, {d}], got {kd:?}, {:?}",
            q.dims,
            v.dims
        )
    }
    Ok((b, h, lq, d, kd[2]))
}

/// `dst[m×n] = beta · lhs[m×k] · rhs[k×n] (+ dst if accumulate)`, `dst` row-major with row
/// stride `n`; lhs and rhs given by element offsets and (row, column) strides into their slices.
///
/// # Safety
/// `lhs` and `rhs` with their strides must address only elements inside their slices for the
/// given m, n, k, and `dst` must hold `m·n` elements.
#[allow(clippy::too_many_arguments)]
unsafe fn tile_product(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    accumulate: bool,
    (lhs, lhs_rs, lhs_cs): (&[f32], usize, usize),
    (rhs, rhs_rs, rhs_cs): (&[f32], usize, usize),
    beta: f32,
) {
    debug_assert!(dst.len() >= m * n);
    // SAFETY: guaranteed by the caller (views checked by `View::new`, tiles sized here).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            1.0,
            beta,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// One task: `out` (rows × D, row-major) = attention of query rows `q0 .. q0 + rows` of head
/// `bh`.
#[allow(clippy::too_many_arguments)]
fn block(
    (q, k, v): (&View, &View, &View),
    bh: usize,
    q0: usize,
    out: &mut [f32],
    scale: f32,
    level: Level,
    bk: usize,
    scores: &mut Vec<f32>,
) {
    let d = q.dims[3];
    let lk = k.dims[2];
    let rows = out.len() / d;
    let mut max = vec![f32::NEG_INFINITY; rows];
    let mut sum = vec![0f32; rows];
    let qs = &q.data[q.row(bh, q0)..];
    let mut k0 = 0;
    while k0 < lk {
        let n = bk.min(lk - k0);
        scores.resize(rows * n, 0.0);
        let ks = &k.data[k.row(bh, k0)..];
        let vs = &v.data[v.row(bh, k0)..];
        // SAFETY: q rows q0.., k and v rows k0..k0+n lie inside their checked views; the
        // tiles are sized rows·n and rows·d here.
        unsafe {
            // S = scale · Q Kᵀ: Kᵀ's (x, j) is k's (j, x).
            tile_product(
                (rows, n, d),
                scores,
                false,
                (qs, q.strides[2], q.strides[3]),
                (ks, k.strides[3], k.strides[2]),
                scale,
            );
        }
        for r in 0..rows {
            let row = &mut scores[r * n..(r + 1) * n];
            let m_new = simd::max_at(level, row).max(max[r]);
            let s = simd::exp_sub_sum_at(level, row, m_new);
            if k0 == 0 {
                sum[r] = s;
            } else {
                let c = (max[r] - m_new).exp();
                if c != 1.0 {
                    simd::scale_at(level, &mut out[r * d..(r + 1) * d], c);
                }
                sum[r] = sum[r] * c + s;
            }
            max[r] = m_new;
        }
        // SAFETY: as above.
        unsafe {
            // O (+)= P V.
            tile_product(
                (rows, d, n),
                out,
                k0 > 0,
                (scores, n, 1),
                (vs, v.strides[2], v.strides[3]),
                1.0,
            );
        }
        k0 += n;
    }
    for (r, s) in sum.iter().enumerate() {
        simd::scale_at(level, &mut out[r * d..(r + 1) * d], 1.0 / s);
    }
}

/// Attention over views at an explicit level and tiling; the result is `[B, H, Lq, D]`,
/// contiguous.
pub fn attention_at(
    q: &View,
    k: &View,
    v: &View,
    scale: f32,
    level: Level,
    blocks: Blocks,
) -> Result<Vec<f32>> {
    let (b, h, lq, d, _) = check(q, k, v)?;
    if blocks.q == 0 || blocks.k == 0 {
        bail!("attention: empty tiles {blocks:?}")
    }
    let mut out = vec![0f32; b * h * lq * d];
    if out.is_empty() {
        return Ok(out);
    }
    out.par_chunks_mut(lq * d)
        .enumerate()
        .for_each(|(bh, head)| {
            head.par_chunks_mut(blocks.q * d).enumerate().for_each_init(
                Vec::new,
                |scores, (qb, o)| {
                    block(
                        (q, k, v),
                        bh,
                        qb * blocks.q,
                        o,
                        scale,
                        level,
                        blocks.k,
                        scores,
                    )
                },
            )
        });
    Ok(out)
}

/// A CPU storage's elements as f32 (borrowed when they already are).
fn f32_data(s: &CpuStorage) -> Result<Cow<'_, [f32]>> {
    Ok(match s {
        CpuStorage::F32(v) => Cow::Borrowed(v.as_slice()),
        CpuStorage::F64(v) => Cow::Owned(v.iter().map(|&x| x as f32).collect()),
        CpuStorage::F16(v) => Cow::Owned(v.iter().map(|x| x.to_f32()).collect()),
        CpuStorage::BF16(v) => Cow::Owned(v.iter().map(|x| x.to_f32()).collect()),
        other => bail!("attention: unsupported dtype {:?}", other.dtype()),
    })
}

/// f32 values as a CPU storage of `dtype`.
fn storage_of(out: Vec<f32>, dtype: DType) -> Result<CpuStorage> {
    Ok(match dtype {
        DType::F32 => CpuStorage::F32(out),
        DType::F64 => CpuStorage::F64(out.into_iter().map(f64::from).collect()),
        DType::F16 => CpuStorage::F16(out.into_iter().map(half::f16::from_f32).collect()),
        DType::BF16 => CpuStorage::BF16(out.into_iter().map(half::bf16::from_f32).collect()),
        other => bail!("attention: unsupported output dtype {other:?}"),
    })
}

/// Attention over CPU storages (any strides; f32, f64, f16, bf16), at [`simd::level`], with the
/// result in `out_dtype`, shape q's.
pub fn cpu_fwd(
    (s1, l1): (&CpuStorage, &Layout),
    (s2, l2): (&CpuStorage, &Layout),
    (s3, l3): (&CpuStorage, &Layout),
    scale: f32,
    out_dtype: DType,
) -> Result<(CpuStorage, Shape)> {
    let (d1, d2, d3) = (f32_data(s1)?, f32_data(s2)?, f32_data(s3)?);
    let q = View::of_layout(&d1, l1)?;
    let k = View::of_layout(&d2, l2)?;
    let v = View::of_layout(&d3, l3)?;
    let blocks = Blocks::for_shape(q.dims[0] * q.dims[1], q.dims[2], q.dims[3]);
    let out = attention_at(&q, &k, &v, scale, simd::level(), blocks)?;
    Ok((storage_of(out, out_dtype)?, l1.shape().clone()))
}

/// `softmax(q kᵀ · scale) v` for CPU tensors q `[B, H, Lq, D]`, k and v `[B, H, Lk, D]` (any
/// strides and float dtypes), in f32, returned `[B, H, Lq, D]` in v's dtype.
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Result<Tensor> {
    for t in [q, k, v] {
        if !t.device().is_cpu() {
            bail!("attention_cpu: the inputs must be on the CPU")
        }
    }
    let (sq, lq) = q.storage_and_layout();
    let (sk, lk) = k.storage_and_layout();
    let (sv, lv) = v.storage_and_layout();
    let (Storage::Cpu(sq), Storage::Cpu(sk), Storage::Cpu(sv)) = (&*sq, &*sk, &*sv) else {
        bail!("attention_cpu: the inputs must be on the CPU")
    };
    let (out, shape) = cpu_fwd((sq, lq), (sk, lk), (sv, lv), scale as f32, v.dtype())?;
    let out = match out {
        CpuStorage::F32(o) => Tensor::from_vec(o, shape, &Device::Cpu)?,
        CpuStorage::F64(o) => Tensor::from_vec(o, shape, &Device::Cpu)?,
        CpuStorage::F16(o) => Tensor::from_vec(o, shape, &Device::Cpu)?,
        CpuStorage::BF16(o) => Tensor::from_vec(o, shape, &Device::Cpu)?,
        other => bail!("attention_cpu: unexpected output dtype {:?}", other.dtype()),
    };
    Ok(out)
}

#[cfg(test)]
#[path = "attention_cpu_tests.rs"]
mod tests;
