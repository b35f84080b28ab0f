//! Depthwise k×k convolution with TensorFlow "SAME" padding, fused with a per-channel bias and
//! an optional ReLU6: the one EfficientNet op candle has no fast path for.
//!
//! candle runs a grouped convolution as one convolution per group (for a 1152-channel
//! depthwise layer: 1152 im2col + matmul calls and a concatenation), which dominated Lite0's CPU
//! time. On the CPU this is a direct loop over each (image, channel) plane, split across
//! threads; on other devices it falls back to candle's grouped `conv2d` (plus explicit padding,
//! bias and clamp), which is also the reference the tests compare the CPU path against.
//! The CPU op has a backward ([`super::depthwise_grad`]); candle's fallback has its own.

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
        // With a backward (`depthwise_grad`), so `inspect::net` trains through it; tensors
        // that track no gradient (inference) record nothing.
        return x.apply_op2(&packed, Depthwise { k, stride, relu6 });
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

/// Output planes narrower than this are computed across channels ([`conv_channels`]).
const PLANAR_MIN_WIDTH: usize = 32;

/// Sizes of one depthwise convolution: input h×w, kernel k, stride s, padding before (pt, pl),
/// output ho×wo.
#[derive(Clone, Copy)]
struct Geometry {
    h: usize,
    w: usize,
    k: usize,
    s: usize,
    pt: usize,
    pl: usize,
    ho: usize,
    wo: usize,
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

    fn bwd(
        &self,
        x: &Tensor,
        packed: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let g = if self.relu6 {
            super::depthwise_grad::relu6_mask(grad, res)?
        } else {
            grad.clone()
        };
        let (dx, dp) = super::depthwise_grad::backward(x, packed, &g, self.k, self.stride)?;
        Ok((Some(dx), Some(dp)))
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
        let kk1 = k * k + 1;
        // Planes of at least PLANAR_MIN_WIDTH output columns run plane by plane (long
        // contiguous rows); smaller ones vectorised across channels, where per-row loop
        // overhead would dominate (1152 channels of 7×7 in Lite0's last stage).
        let planar = wo >= PLANAR_MIN_WIDTH;
        // Output planes p0..p1 (consecutive (image, channel) pairs) into `dst`.
        let run = |p0: usize, p1: usize, dst: &mut [f32]| {
            let mut p = p0;
            while p < p1 {
                // Stay within one image: channels p % c .. of image p / c.
                let end = p1.min((p / c + 1) * c);
                let ch = p % c;
                let src = &x[p * h * w..end * h * w];
                let wk = &wb[ch * kk1..(ch + end - p) * kk1];
                let out = &mut dst[(p - p0) * ho * wo..(end - p0) * ho * wo];
                let g = Geometry {
                    h,
                    w,
                    k,
                    s,
                    pt,
                    pl,
                    ho,
                    wo,
                };
                if planar {
                    for (i, o) in out.chunks_mut(ho * wo).enumerate() {
                        let wk = &wk[i * kk1..(i + 1) * kk1];
                        conv_plane(
                            &src[i * h * w..(i + 1) * h * w],
                            &wk[..k * k],
                            wk[k * k],
                            &g,
                            o,
                        );
                    }
                } else {
                    conv_channels(src, wk, end - p, &g, out);
                }
                if self.relu6 {
                    for v in out.iter_mut() {
                        *v = v.clamp(0.0, 6.0);
                    }
                }
                p = end;
            }
        };
        // The first chunk runs on this thread (with one thread, nothing is spawned: on a busy
        // machine each spawned thread waits to be scheduled).
        std::thread::scope(|scope| {
            let mut chunks = out.chunks_mut(per * ho * wo).enumerate();
            let first = chunks.next();
            for (t, chunk) in chunks {
                let run = &run;
                scope.spawn(move || {
                    let p0 = t * per;
                    run(p0, p0 + chunk.len() / (ho * wo), chunk);
                });
            }
            if let Some((_, chunk)) = first {
                run(0, chunk.len() / (ho * wo), chunk);
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((n, c, ho, wo))))
    }
}

/// One output plane: `dst[oy, ox] = bias + Σ w[i, j] · src[oy·s + i − pt, ox·s + j − pl]`
/// (zero outside the input). The input's columns are first split into `s` phases (column
/// `q·s + p` → phase `p`, index `q`), so every inner loop runs over contiguous memory.
fn conv_plane(src: &[f32], wk: &[f32], bias: f32, g: &Geometry, dst: &mut [f32]) {
    let Geometry {
        h,
        w,
        k,
        s,
        pt,
        pl,
        ho,
        wo,
    } = *g;
    dst.fill(bias);
    // phases[p][iy * pw + q] = src[iy, q·s + p]; pw = ceil(w / s) (phase p may be one shorter).
    let pw = w.div_ceil(s);
    let split;
    let phases: &[f32] = if s == 1 {
        src
    } else {
        let mut v = vec![0f32; s * h * pw];
        for iy in 0..h {
            let row = &src[iy * w..(iy + 1) * w];
            for p in 0..s {
                let dst = &mut v[p * h * pw + iy * pw..p * h * pw + (iy + 1) * pw];
                for (d, &val) in dst.iter_mut().zip(row[p..].iter().step_by(s)) {
                    *d = val;
                }
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

/// `cw` consecutive channels of one image (`src` channel-major, `wk` [cw, k·k + 1] weights and
/// bias, `dst` channel-major), vectorised across channels: the input is transposed to
/// pixel-major, and each output pixel accumulates k·k channel vectors.
fn conv_channels(src: &[f32], wk: &[f32], cw: usize, g: &Geometry, dst: &mut [f32]) {
    let Geometry {
        h,
        w,
        k,
        s,
        pt,
        pl,
        ho,
        wo,
    } = *g;
    let kk = k * k;
    let mut xt = vec![0f32; h * w * cw];
    for (cc, plane) in src.chunks(h * w).enumerate() {
        for (pix, &v) in plane.iter().enumerate() {
            xt[pix * cw + cc] = v;
        }
    }
    let mut wt = vec![0f32; kk * cw];
    let mut bias = vec![0f32; cw];
    for (cc, wc) in wk.chunks(kk + 1).enumerate() {
        for t in 0..kk {
            wt[t * cw + cc] = wc[t];
        }
        bias[cc] = wc[kk];
    }
    let mut acc = vec![0f32; cw];
    for oy in 0..ho {
        for ox in 0..wo {
            acc.copy_from_slice(&bias);
            for i in 0..k {
                let iy = (oy * s + i) as isize - pt as isize;
                if iy < 0 || iy >= h as isize {
                    continue;
                }
                for j in 0..k {
                    let ix = (ox * s + j) as isize - pl as isize;
                    if ix < 0 || ix >= w as isize {
                        continue;
                    }
                    let at = (iy as usize * w + ix as usize) * cw;
                    let xs = &xt[at..at + cw];
                    let ws = &wt[(i * k + j) * cw..(i * k + j + 1) * cw];
                    for ((a, x), wv) in acc.iter_mut().zip(xs).zip(ws) {
                        *a += wv * x;
                    }
                }
            }
            let o = oy * wo + ox;
            for (cc, &v) in acc.iter().enumerate() {
                dst[cc * ho * wo + o] = v;
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
            // Planar path (output width >= PLANAR_MIN_WIDTH).
            (3, 1, 5, 40, true),
            (3, 2, 6, 67, false),
            (5, 2, 7, 70, true),
        ] {
            let c = 5;
            // Two images: the channel path must not run across the image boundary.
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
