//! References and comparisons shared by the kernels' unit tests.

use candle_core::{DType, Tensor};

/// A tensor's values as a flat f32 vector (any dtype, any layout).
pub(crate) fn flat(t: &Tensor) -> Vec<f32> {
    t.to_dtype(DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// Largest absolute difference of two equally long slices.
pub(crate) fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Naive attention in f64 over plain vectors (q `[B, H, Lq, D]`, k and v `[B, H, Lk, D]`, any
/// layout): the full score matrix, softmax shifted by the row max, no candle ops.
pub(crate) fn naive_attention(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Vec<f32> {
    let (b, h, lq, d) = q.dims4().unwrap();
    let lk = k.dim(2).unwrap();
    let (q, k, v) = (flat(q), flat(k), flat(v));
    let mut out = vec![0f32; b * h * lq * d];
    let mut s = vec![0f64; lk];
    for bh in 0..b * h {
        let (qo, ko) = (bh * lq * d, bh * lk * d);
        for i in 0..lq {
            for (j, sj) in s.iter_mut().enumerate() {
                let dot: f64 = (0..d)
                    .map(|x| q[qo + i * d + x] as f64 * k[ko + j * d + x] as f64)
                    .sum();
                *sj = dot * scale;
            }
            let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
            let z: f64 = e.iter().sum();
            for x in 0..d {
                let o: f64 = (0..lk).map(|j| e[j] * v[ko + j * d + x] as f64).sum();
                out[qo + i * d + x] = (o / z) as f32;
            }
        }
    }
    out
}
