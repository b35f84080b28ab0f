//! The backward pass of the CPU depthwise convolution ([`super::depthwise`]), so that
//! `inspect::net` can train through it: the input gradient (each output gradient scattered
//! back through the k×k window) and the weight + bias gradient (the window correlated with
//! the output gradient, summed over the batch), both direct loops over (image, channel) planes
//! run in parallel with rayon. ReLU6, when fused into the forward op, masks the output
//! gradient first (zero where the output was clamped, as PyTorch's `hardtanh_backward`).
//!
//! On other devices the forward falls back to candle's grouped convolution, whose autograd
//! candle provides, so these kernels are CPU-only.

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::depthwise::same_padding;

/// Geometry of one depthwise layer's backward: input h×w, kernel k, stride s, output ho×wo,
/// padding before (pt, pl).
#[derive(Clone, Copy, Debug)]
struct Geo {
    h: usize,
    w: usize,
    k: usize,
    s: usize,
    ho: usize,
    wo: usize,
    pt: usize,
    pl: usize,
}

impl Geo {
    fn new(h: usize, w: usize, k: usize, s: usize) -> Geo {
        Geo {
            h,
            w,
            k,
            s,
            ho: h.div_ceil(s),
            wo: w.div_ceil(s),
            pt: same_padding(h, k, s).0,
            pl: same_padding(w, k, s).0,
        }
    }

    /// The output columns `ox` whose input column `ox·s + j − pl` lies inside the input.
    fn cols(&self, j: usize) -> (usize, usize) {
        span(self.wo, self.w, self.s, j, self.pl)
    }

    /// The output rows whose input row `oy·s + i − pt` lies inside the input.
    fn rows(&self, i: usize) -> (usize, usize) {
        span(self.ho, self.h, self.s, i, self.pt)
    }
}

/// `o` in `lo..hi` (within `0..n_out`) such that `o·s + t − pad` is in `0..n_in`.
fn span(n_out: usize, n_in: usize, s: usize, t: usize, pad: usize) -> (usize, usize) {
    let lo = if pad > t { (pad - t).div_ceil(s) } else { 0 };
    // o·s + t − pad ≤ n_in − 1  ⇔  o ≤ (n_in − 1 + pad − t) / s
    let hi = if n_in + pad > t {
        ((n_in - 1 + pad - t) / s + 1).min(n_out)
    } else {
        0
    };
    (lo, hi.max(lo))
}

/// The gradients of `depthwise(x, packed)` given the output gradient `g` (already masked by
/// ReLU6 if it was fused): (d x, d packed), packed = [C, k·k + 1] (weights, then bias).
pub(super) fn backward(
    x: &Tensor,
    packed: &Tensor,
    g: &Tensor,
    k: usize,
    stride: usize,
) -> candle_core::Result<(Tensor, Tensor)> {
    let (_, _, h, w) = x.dims4()?;
    let g = g.contiguous()?;
    let dx = g.apply_op2_no_bwd(&packed.contiguous()?, &GradInput { k, stride, h, w })?;
    let dp = x
        .contiguous()?
        .apply_op2_no_bwd(&g, &GradWeight { k, stride })?;
    Ok((dx, dp))
}

/// `g` where `0 < y < 6`, else 0 (ReLU6's backward through its output `y`).
pub(crate) fn relu6_mask(g: &Tensor, y: &Tensor) -> candle_core::Result<Tensor> {
    g.contiguous()?
        .apply_op2_no_bwd(&y.contiguous()?, &Relu6Mask)
}

fn f32_slices<'a>(
    s1: &'a CpuStorage,
    l1: &Layout,
    s2: &'a CpuStorage,
    l2: &Layout,
    what: &str,
) -> candle_core::Result<(&'a [f32], &'a [f32])> {
    let (CpuStorage::F32(a), CpuStorage::F32(b)) = (s1, s2) else {
        candle_core::bail!("{what}: f32 tensors only");
    };
    let (Some((a0, a1)), Some((b0, b1))) = (l1.contiguous_offsets(), l2.contiguous_offsets())
    else {
        candle_core::bail!("{what}: contiguous tensors only");
    };
    Ok((&a[a0..a1], &b[b0..b1]))
}

struct Relu6Mask;

impl CustomOp2 for Relu6Mask {
    fn name(&self) -> &'static str {
        "relu6-mask"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (g, y) = f32_slices(s1, l1, s2, l2, "ReLU6 backward")?;
        if g.len() != y.len() {
            candle_core::bail!(
                "ReLU6 backward: {} gradients for {} values",
                g.len(),
                y.len()
            );
        }
        let out: Vec<f32> = g
            .par_iter()
            .zip(y.par_iter())
            .map(|(&g, &y)| if y > 0.0 && y < 6.0 { g } else { 0.0 })
            .collect();
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// d x from the output gradient `g` [N, C, ho, wo] and packed weights [C, k·k + 1].
struct GradInput {
    k: usize,
    stride: usize,
    h: usize,
    w: usize,
}

impl CustomOp2 for GradInput {
    fn name(&self) -> &'static str {
        "depthwise-grad-input"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (g, wb) = f32_slices(s1, l1, s2, l2, "depthwise backward")?;
        let (n, c, ho, wo) = l1.shape().dims4()?;
        let geo = Geo::new(self.h, self.w, self.k, self.stride);
        let kk1 = self.k * self.k + 1;
        if (ho, wo) != (geo.ho, geo.wo) || l2.shape().dims() != [c, kk1] {
            candle_core::bail!(
                "depthwise backward: gradient {:?} and weights {:?} for input {}×{}",
                l1.shape(),
                l2.shape(),
                self.h,
                self.w
            );
        }
        let plane = geo.h * geo.w;
        let mut out = vec![0f32; n * c * plane];
        out.par_chunks_mut(plane).enumerate().for_each(|(p, dx)| {
            let ch = p % c;
            let wk = &wb[ch * kk1..ch * kk1 + geo.k * geo.k];
            let gp = &g[p * ho * wo..(p + 1) * ho * wo];
            grad_input_plane(gp, wk, &geo, dx);
        });
        Ok((CpuStorage::F32(out), Shape::from((n, c, geo.h, geo.w))))
    }
}

fn grad_input_plane(g: &[f32], wk: &[f32], geo: &Geo, dx: &mut [f32]) {
    let Geo {
        w,
        k,
        s,
        wo,
        pt,
        pl,
        ..
    } = *geo;
    for i in 0..k {
        let (r0, r1) = geo.rows(i);
        for j in 0..k {
            let (c0, c1) = geo.cols(j);
            if c0 >= c1 {
                continue;
            }
            let wv = wk[i * k + j];
            for oy in r0..r1 {
                let iy = oy * s + i - pt;
                let grow = &g[oy * wo + c0..oy * wo + c1];
                let base = iy * w + c0 * s + j - pl;
                if s == 1 {
                    for (d, &gv) in dx[base..base + (c1 - c0)].iter_mut().zip(grow) {
                        *d += wv * gv;
                    }
                } else {
                    for (t, &gv) in grow.iter().enumerate() {
                        dx[base + t * s] += wv * gv;
                    }
                }
            }
        }
    }
}

/// d packed [C, k·k + 1] (weights, then bias) from the input `x` [N, C, H, W] and the output
/// gradient `g` [N, C, ho, wo], summed over the batch.
struct GradWeight {
    k: usize,
    stride: usize,
}

impl CustomOp2 for GradWeight {
    fn name(&self) -> &'static str {
        "depthwise-grad-weight"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, g) = f32_slices(s1, l1, s2, l2, "depthwise backward")?;
        let (n, c, h, w) = l1.shape().dims4()?;
        let geo = Geo::new(h, w, self.k, self.stride);
        if l2.shape().dims() != [n, c, geo.ho, geo.wo] {
            candle_core::bail!(
                "depthwise backward: gradient {:?} for input {:?}",
                l2.shape(),
                l1.shape()
            );
        }
        let kk = self.k * self.k;
        let mut out = vec![0f32; c * (kk + 1)];
        out.par_chunks_mut(kk + 1).enumerate().for_each(|(ch, dw)| {
            // Per-image partial sums in f64, so the batch order does not matter to rounding.
            let mut acc = vec![0f64; kk + 1];
            for img in 0..n {
                let p = img * c + ch;
                let xp = &x[p * h * w..(p + 1) * h * w];
                let gp = &g[p * geo.ho * geo.wo..(p + 1) * geo.ho * geo.wo];
                grad_weight_plane(xp, gp, &geo, &mut acc);
            }
            for (d, a) in dw.iter_mut().zip(acc) {
                *d = a as f32;
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((c, kk + 1))))
    }
}

fn grad_weight_plane(x: &[f32], g: &[f32], geo: &Geo, acc: &mut [f64]) {
    let Geo {
        w,
        k,
        s,
        wo,
        pt,
        pl,
        ..
    } = *geo;
    for i in 0..k {
        let (r0, r1) = geo.rows(i);
        for j in 0..k {
            let (c0, c1) = geo.cols(j);
            if c0 >= c1 {
                continue;
            }
            let mut sum = 0f32;
            for oy in r0..r1 {
                let iy = oy * s + i - pt;
                let grow = &g[oy * wo + c0..oy * wo + c1];
                let base = iy * w + c0 * s + j - pl;
                if s == 1 {
                    sum += grow
                        .iter()
                        .zip(&x[base..base + (c1 - c0)])
                        .map(|(a, b)| a * b)
                        .sum::<f32>();
                } else {
                    sum += grow
                        .iter()
                        .enumerate()
                        .map(|(t, a)| a * x[base + t * s])
                        .sum::<f32>();
                }
            }
            acc[i * k + j] += f64::from(sum);
        }
    }
    acc[k * k] += g.iter().map(|&v| f64::from(v)).sum::<f64>();
}

#[cfg(test)]
mod tests {
    use super::super::depthwise::{depthwise, reference};
    use candle_core::{Device, Tensor, Var};

    /// Our backward equals candle's autograd through its grouped convolution.
    #[test]
    fn gradients_equal_candles_grouped_conv() {
        let dev = Device::Cpu;
        for (k, s, h, w, relu6) in [
            (3, 1, 9, 7, true),
            (3, 2, 10, 10, false),
            (5, 2, 11, 8, true),
            (5, 1, 6, 13, false),
            (3, 2, 8, 40, true),
            (5, 2, 7, 9, false),
            (5, 1, 2, 2, true),
            (5, 2, 4, 4, true),
            (3, 1, 1, 1, false),
            (3, 2, 2, 2, true),
        ] {
            let c = 4;
            let x =
                Var::from_tensor(&Tensor::randn(0f32, 2.0, (2, c, h, w), &dev).unwrap()).unwrap();
            let wt =
                Var::from_tensor(&Tensor::randn(0f32, 1.0, (c, 1, k, k), &dev).unwrap()).unwrap();
            let b = Var::from_tensor(&Tensor::randn(0f32, 1.0, c, &dev).unwrap()).unwrap();
            let proj =
                Tensor::randn(0f32, 1.0, (2, c, h.div_ceil(s), w.div_ceil(s)), &dev).unwrap();
            let loss = |y: Tensor| (y * &proj).unwrap().sum_all().unwrap();
            let ours = loss(depthwise(&x, &wt, &b, s, relu6).unwrap())
                .backward()
                .unwrap();
            let want = loss(reference(&x, &wt, &b, s, relu6).unwrap())
                .backward()
                .unwrap();
            for (name, v) in [("x", &x), ("w", &wt), ("b", &b)] {
                let a = ours.get(v).unwrap();
                let e = want.get(v).unwrap();
                let d = (a - e)
                    .unwrap()
                    .abs()
                    .unwrap()
                    .max_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap();
                assert!(
                    d < 1e-4,
                    "k{k} s{s} {h}×{w} relu6 {relu6}: d{name} off by {d}"
                );
            }
        }
    }
}
