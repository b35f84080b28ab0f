//! ISNet's bilinear resize and ceil-mode 2×2 max pool on NCHW tensors: rayon over planes for
//! contiguous f32 CPU tensors, candle ops otherwise (both give the same values).

use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;

use super::axis_weights;

/// The contiguous f32 data of a CPU tensor, or `None` (take the candle path).
fn cpu_f32(x: &Tensor) -> candle_core::Result<Option<(Tensor, Vec<f32>)>> {
    if !x.device().is_cpu() || x.dtype() != DType::F32 || x.rank() != 4 {
        return Ok(None);
    }
    let x = x.contiguous()?;
    let v = x.flatten_all()?.to_vec1::<f32>()?;
    Ok(Some((x, v)))
}

/// Half-pixel bilinear resize of an NCHW tensor to `out_h`×`out_w`
/// (= torch `interpolate(mode="bilinear", align_corners=False)`): along x, then along y,
/// `a·(1 − f) + b·f` in f32.
pub(super) fn resize_bilinear(
    x: &Tensor,
    out_h: usize,
    out_w: usize,
) -> candle_core::Result<Tensor> {
    let Some((t, src)) = cpu_f32(x)? else {
        return resize_bilinear_candle(x, out_h, out_w);
    };
    let (b, c, h, w) = t.dims4()?;
    if (h, w) == (out_h, out_w) {
        return Ok(t);
    }
    let (y0, y1, fy) = axis_weights(h, out_h);
    let (x0, x1, fx) = axis_weights(w, out_w);
    let mut out = vec![0f32; b * c * out_h * out_w];
    out.par_chunks_mut(out_h * out_w)
        .zip(src.par_chunks(h * w))
        .for_each(|(dst, plane)| {
            // The x pass of the rows the y pass reads, then the y pass.
            let mut rows = vec![0f32; h * out_w];
            for (y, row) in rows.chunks_mut(out_w).enumerate() {
                let line = &plane[y * w..(y + 1) * w];
                for (ox, v) in row.iter_mut().enumerate() {
                    let f = fx[ox];
                    *v = line[x0[ox]] * (1.0 - f) + line[x1[ox]] * f;
                }
            }
            for (oy, row) in dst.chunks_mut(out_w).enumerate() {
                let f = fy[oy];
                let a = &rows[y0[oy] * out_w..][..out_w];
                let bb = &rows[y1[oy] * out_w..][..out_w];
                for ((v, p), q) in row.iter_mut().zip(a).zip(bb) {
                    *v = p * (1.0 - f) + q * f;
                }
            }
        });
    Tensor::from_vec(out, (b, c, out_h, out_w), &Device::Cpu)
}

/// [`resize_bilinear`] with candle ops (any device and dtype).
pub(super) fn resize_bilinear_candle(
    x: &Tensor,
    out_h: usize,
    out_w: usize,
) -> candle_core::Result<Tensor> {
    let x = resize_axis(x, 3, out_w)?;
    resize_axis(&x, 2, out_h)
}

fn resize_axis(x: &Tensor, dim: usize, n_out: usize) -> candle_core::Result<Tensor> {
    let n_in = x.dim(dim)?;
    if n_in == n_out {
        return Ok(x.clone());
    }
    let (i0, i1, f) = axis_weights(n_in, n_out);
    let device = x.device();
    let to_ids = |v: Vec<usize>| {
        let v: Vec<u32> = v.into_iter().map(|i| i as u32).collect();
        Tensor::from_vec(v, n_out, device)
    };
    let mut shape = vec![1usize; x.rank()];
    shape[dim] = n_out;
    let w1 = Tensor::from_vec(f, shape, device)?.to_dtype(x.dtype())?;
    let w0 = w1.affine(-1.0, 1.0)?;
    let a = x.index_select(&to_ids(i0)?, dim)?;
    let b = x.index_select(&to_ids(i1)?, dim)?;
    a.broadcast_mul(&w0)? + b.broadcast_mul(&w1)?
}

/// 2×2 max pool, stride 2, with `ceil_mode=True` (odd trailing rows/columns form their own
/// partial window), for NCHW tensors.
pub(super) fn max_pool2x2_ceil(x: &Tensor) -> candle_core::Result<Tensor> {
    let Some((t, src)) = cpu_f32(x)? else {
        return max_pool2x2_ceil_candle(x);
    };
    let (b, c, h, w) = t.dims4()?;
    let (oh, ow) = (h.div_ceil(2), w.div_ceil(2));
    let mut out = vec![0f32; b * c * oh * ow];
    out.par_chunks_mut(oh * ow)
        .zip(src.par_chunks(h * w))
        .for_each(|(dst, plane)| {
            for (oy, row) in dst.chunks_mut(ow).enumerate() {
                let r0 = &plane[2 * oy * w..][..w];
                let r1 = &plane[(2 * oy + 1).min(h - 1) * w..][..w];
                for (ox, v) in row.iter_mut().enumerate() {
                    let (a, bx) = (2 * ox, (2 * ox + 1).min(w - 1));
                    *v = r0[a].max(r0[bx]).max(r1[a].max(r1[bx]));
                }
            }
        });
    Tensor::from_vec(out, (b, c, oh, ow), &Device::Cpu)
}

/// [`max_pool2x2_ceil`] with candle ops (any device and dtype).
pub(super) fn max_pool2x2_ceil_candle(x: &Tensor) -> candle_core::Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    // Replicating the last row/column leaves the max of a partial window
    // unchanged, which is exactly ceil-mode semantics.
    let x = if h % 2 == 1 {
        x.pad_with_same(2, 0, 1)?
    } else {
        x.clone()
    };
    let x = if w % 2 == 1 {
        x.pad_with_same(3, 0, 1)?
    } else {
        x
    };
    x.max_pool2d(2)
}
