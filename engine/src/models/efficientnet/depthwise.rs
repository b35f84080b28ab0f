//! Depthwise k×k convolution with TensorFlow "SAME" padding, fused with a per-channel bias and
//! an optional ReLU6: the one EfficientNet op candle has no fast path for.
//!
//! candle runs a grouped convolution as one convolution per group (for a 1152-channel
//! depthwise layer: 1152 im2col + matmul calls and a concatenation), which dominated Lite0's CPU
//! time. On the CPU this is a direct loop over each (image, channel) plane, split across
//! threads; on other devices it falls back to candle's grouped `conv2d` (plus explicit padding,
//! bias and clamp), which is also the reference the tests compare the CPU path against.

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

/// TF "SAME" padding of one axis: (before, after) for input length `n`, kernel `k`, stride `s`.
pub fn same_padding(n: usize, k: usize, s: usize) -> (usize, usize) {
    let out = n.div_ceil(s);
    let total = ((out.saturating_sub(1)) * s + k).saturating_sub(n);
    (total / 2, total - total / 2)
}

/// `x` [N,C,H,W] f32, `w` [C,1,k,k] f32, `bias` [C] f32 → [N,C,ceil(H/s),ceil(W/s)].
pub fn depthwise(
    x: &Tensor,
    w: &Tensor,
    bias: &Tensor,
    stride: usize,
    relu6: bool,
) -> candle_core::Result<Tensor> {
    if x.device().is_cpu() {
        // Bias and weights travel as one tensor: [C, k*k + 1].
        let (c, _, k, _) = w.dims4()?;
        let packed = Tensor::cat(&[w.reshape((c, k * k))?, bias.reshape((c, 1))?], 1)?;
        return x.apply_op2_no_bwd(&packed, &Depthwise { k, stride, relu6 });
    }
    reference(x, w, bias, stride, relu6)
}

/// candle's grouped convolution with explicit SAME padding, then bias and ReLU6.
pub fn reference(
    x: &Tensor,
    w: &Tensor,
    bias: &Tensor,
    stride: usize,
    relu6: bool,
) -> candle_core::Result<Tensor> {
    let (_, c, h, wd) = x.dims4()?;
    let k = w.dim(2)?;
    let (pt, pb) = same_padding(h, k, stride);
    let (pl, pr) = same_padding(wd, k, stride);
    let x = x.pad_with_zeros(2, pt, pb)?.pad_with_zeros(3, pl, pr)?;
    let y = x
        .conv2d(w, 0, stride, 1, c)?
        .broadcast_add(&bias.reshape((1, c, 1, 1))?)?;
    if relu6 {
        y.clamp(0f32, 6f32)
    } else {
        Ok(y)
    }
}

struct Depthwise {
    k: usize,
    stride: usize,
    relu6: bool,
}

impl CustomOp2 for Depthwise {
    fn name(&self) -> &'static str {
        "efficientnet-depthwise"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (CpuStorage::F32(x), CpuStorage::F32(wb)) = (s1, s2) else {
            candle_core::bail!("depthwise convolution: f32 tensors only");
        };
        let (Some((x0, x1)), Some((w0, w1))) = (l1.contiguous_offsets(), l2.contiguous_offsets())
        else {
            candle_core::bail!("depthwise convolution: contiguous tensors only");
        };
        let (x, wb) = (&x[x0..x1], &wb[w0..w1]);
        let (n, c, h, w) = l1.shape().dims4()?;
        let (k, s) = (self.k, self.stride);
        if l2.shape().dims() != [c, k * k + 1] {
            candle_core::bail!("depthwise convolution: weights {:?}", l2.shape());
        }
        let (ho, wo) = (h.div_ceil(s), w.div_ceil(s));
        let (pt, _) = same_padding(h, k, s);
        let (pl, _) = same_padding(w, k, s);
        let mut out = vec![0f32; n * c * ho * wo];
        let planes = n * c;
        let threads = candle_core::utils::get_num_threads().clamp(1, planes.max(1));
        let per = planes.div_ceil(threads).max(1);
        let plane = |p: usize, dst: &mut [f32]| {
            let ch = p % c;
            let src = &x[p * h * w..(p + 1) * h * w];
            let wk = &wb[ch * (k * k + 1)..(ch + 1) * (k * k + 1)];
            conv_plane(
                src,
                h,
                w,
                &wk[..k * k],
                wk[k * k],
                k,
                s,
                pt,
                pl,
                ho,
                wo,
                dst,
            );
            if self.relu6 {
                for v in dst.iter_mut() {
                    *v = v.clamp(0.0, 6.0);
                }
            }
        };
        std::thread::scope(|scope| {
            for (t, chunk) in out.chunks_mut(per * ho * wo).enumerate() {
                let plane = &plane;
                scope.spawn(move || {
                    for (i, dst) in chunk.chunks_mut(ho * wo).enumerate() {
                        plane(t * per + i, dst);
                    }
                });
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((n, c, ho, wo))))
    }
}

/// One output plane: `dst[oy, ox] = bias + Σ w[i, j] · src[oy·s + i − pt, ox·s + j − pl]`
/// (zero outside the input). The input's columns are first split into `s` phases (column
/// `q·s + p` → phase `p`, index `q`), so every inner loop runs over contiguous memory.
#[allow(clippy::too_many_arguments)]
fn conv_plane(
    src: &[f32],
    h: usize,
    w: usize,
    wk: &[f32],
    bias: f32,
    k: usize,
    s: usize,
    pt: usize,
    pl: usize,
    ho: usize,
    wo: usize,
    dst: &mut [f32],
) {
    dst.fill(bias);
    // phases[p][iy * pw + q] = src[iy, q·s + p]; pw = ceil(w / s) (phase p may be one shorter).
    let pw = w.div_ceil(s);
    let split;
    let phases: &[f32] = if s == 1 {
        src
    } else {
        let mut v = vec![0f32; s * h * pw];
        for iy in 0..h {
            for (x, &val) in src[iy * w..(iy + 1) * w].iter().enumerate() {
                v[(x % s) * h * pw + iy * pw + x / s] = val;
            }
        }
        split = v;
        &split
    };
    for j in 0..k {
        let off = j as isize - pl as isize;
        let p = off.rem_euclid(s as isize) as usize;
        let base = off.div_euclid(s as isize);
        // Columns of phase p that exist: q < len_p.
        let len_p = (w + s - 1 - p) / s;
        let lo = (-base).max(0) as usize;
        let hi = ((len_p as isize - base).max(0) as usize).min(wo);
        if lo >= hi {
            continue;
        }
        let q0 = (lo as isize + base) as usize;
        let phase = &phases[p * h * pw..(p + 1) * h * pw];
        for i in 0..k {
            let wv = wk[i * k + j];
            for oy in 0..ho {
                let iy = (oy * s + i) as isize - pt as isize;
                if iy < 0 || iy >= h as isize {
                    continue;
                }
                let row = &phase[iy as usize * pw + q0..iy as usize * pw + q0 + (hi - lo)];
                for (d, v) in dst[oy * wo + lo..oy * wo + hi].iter_mut().zip(row) {
                    *d += wv * v;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn same_padding_matches_tensorflow() {
        // Lite0 at 224²: stem 3×3/2 pads (0, 1); 5×5/2 at 56 pads (1, 2); stride 1 symmetric.
        assert_eq!(same_padding(224, 3, 2), (0, 1));
        assert_eq!(same_padding(56, 5, 2), (1, 2));
        assert_eq!(same_padding(14, 5, 1), (2, 2));
        assert_eq!(same_padding(7, 3, 1), (1, 1));
        assert_eq!(same_padding(7, 3, 2), (1, 1));
    }

    #[test]
    fn cpu_kernel_equals_grouped_conv() {
        let dev = Device::Cpu;
        for (k, s, h, w, relu6) in [
            (3, 1, 9, 7, true),
            (3, 2, 10, 10, false),
            (5, 2, 11, 8, true),
            (5, 1, 6, 13, false),
            (3, 2, 1, 1, false),
        ] {
            let c = 5;
            let x = Tensor::randn(0f32, 2.0, (2, c, h, w), &dev).unwrap();
            let wt = Tensor::randn(0f32, 1.0, (c, 1, k, k), &dev).unwrap();
            let b = Tensor::randn(0f32, 1.0, c, &dev).unwrap();
            let ours = depthwise(&x, &wt, &b, s, relu6).unwrap();
            let reference = reference(&x, &wt, &b, s, relu6).unwrap();
            assert_eq!(ours.dims(), reference.dims(), "k{k} s{s} {h}×{w}");
            let diff = (ours - reference)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(diff < 1e-5, "k{k} s{s} {h}×{w}: {diff}");
        }
    }
}
