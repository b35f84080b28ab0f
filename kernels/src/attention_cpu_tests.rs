//! Tests of the fused CPU attention against a naive f64 reference.

use super::*;
use crate::test_util::{flat, max_abs_diff, naive_attention as naive};

/// Deterministic pseudo-random values in [-amp, amp) (a tiny LCG, no RNG crate needed).
fn values(n: usize, seed: u64, amp: f32) -> Vec<f32> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * amp
        })
        .collect()
}

fn tensor(dims: (usize, usize, usize, usize), seed: u64, amp: f32) -> Tensor {
    let n = dims.0 * dims.1 * dims.2 * dims.3;
    Tensor::from_vec(values(n, seed, amp), dims, &Device::Cpu).unwrap()
}
/// Runs the kernel on contiguous f32 tensors at a level and tiling.
fn run(q: &Tensor, k: &Tensor, v: &Tensor, scale: f32, level: Level, blocks: Blocks) -> Vec<f32> {
    let (dq, dk, dv) = (flat(q), flat(k), flat(v));
    let view = |d, t: &Tensor| View::of_layout(d, &Layout::contiguous(t.shape())).unwrap();
    let (qv, kv, vv) = (view(&dq, q), view(&dk, k), view(&dv, v));
    attention_at(&qv, &kv, &vv, scale, level, blocks).unwrap()
}

/// Outputs are averages of |v| ≤ 1: an absolute bar of 2e-6 is a few f32 ulps of the result
/// (f32 sums of up to 512-long products and 300-long averages).
const TOL: f32 = 2e-6;

#[test]
fn matches_naive_at_every_head_dim_length_and_level() {
    let mut case = 0u64;
    for d in [8, 40, 64, 80, 160, 512] {
        for (lq, lk) in [(1, 1), (7, 77), (77, 7), (300, 300), (1, 300)] {
            case += 1;
            let (b, h) = (2, 3);
            let q = tensor((b, h, lq, d), case, 1.0);
            let k = tensor((b, h, lk, d), case + 100, 1.0);
            let v = tensor((b, h, lk, d), case + 200, 1.0);
            let scale = 1.0 / (d as f64).sqrt();
            let want = naive(&q, &k, &v, scale);
            for level in Level::supported() {
                // The default tiles, and small ones that leave ragged query and key blocks.
                for blocks in [Blocks::for_head_dim(d), Blocks { q: 5, k: 32 }] {
                    let got = run(&q, &k, &v, scale as f32, level, blocks);
                    let diff = max_abs_diff(&got, &want);
                    assert!(
                        diff <= TOL,
                        "d={d} lq={lq} lk={lk} {level:?} {blocks:?}: max abs diff {diff}"
                    );
                }
            }
        }
    }
}

#[test]
fn large_logits_do_not_overflow() {
    // Scores up to ~±1600: exp would overflow without the running max, and the max moves
    // from one key block to the next (rescaling the accumulator).
    let (b, h, lq, lk, d) = (1, 2, 33, 300, 40);
    let q = tensor((b, h, lq, d), 1, 8.0);
    let k = tensor((b, h, lk, d), 2, 8.0);
    let v = tensor((b, h, lk, d), 3, 1.0);
    let want = naive(&q, &k, &v, 1.0);
    for level in Level::supported() {
        for blocks in [Blocks::for_head_dim(d), Blocks { q: 4, k: 16 }] {
            let got = run(&q, &k, &v, 1.0, level, blocks);
            assert!(
                got.iter().all(|x| x.is_finite()),
                "{level:?}: non-finite output"
            );
            // Scores near ±1600 are f32 values with an ulp of 1.2e-4 (and dot products of
            // 40 such terms): their rounding moves the weights by ~1e-4 relative, whatever the
            // order of the softmax; an overflow or a missed rescale would be O(1).
            let diff = max_abs_diff(&got, &want);
            assert!(diff <= 2e-4, "{level:?} {blocks:?}: max abs diff {diff}");
        }
    }
}

#[test]
fn non_contiguous_inputs_are_read_through_their_strides() {
    // [B, L, H, D] viewed as [B, H, L, D], as a model's projections produce it, and a k that is
    // a narrowed slice of a longer sequence (non-zero start offset).
    let (b, h, lq, lk, d) = (2, 3, 10, 77, 80);
    let q = tensor((b, lq, h, d), 5, 1.0).transpose(1, 2).unwrap();
    let k = tensor((b, lk + 9, h, d), 6, 1.0)
        .narrow(1, 9, lk)
        .unwrap()
        .transpose(1, 2)
        .unwrap();
    let v = tensor((b, lk, h, d), 7, 1.0).transpose(1, 2).unwrap();
    assert!(!q.is_contiguous() && !k.is_contiguous());
    let want = naive(&q, &k, &v, 0.1);
    let got = flat(&attention(&q, &k, &v, 0.1).unwrap());
    let diff = max_abs_diff(&got, &want);
    assert!(diff <= TOL, "max abs diff {diff}");
}

#[test]
fn half_precision_inputs_give_v_dtype() {
    let (q, k, v) = (
        tensor((2, 2, 45, 40), 3, 2.0),
        tensor((2, 2, 77, 40), 4, 2.0),
        tensor((2, 2, 77, 40), 5, 2.0),
    );
    let scale = 1.0 / 40f64.sqrt();
    // The inputs are rounded first, so the reference sees the same inputs; what remains is
    // the output's rounding: half an ulp at |o| < 2 (f16 2^-10, bf16 2^-7).
    for (dt, tol) in [
        (DType::F32, 1e-5),
        (DType::F64, 1e-5),
        (DType::F16, 1e-3),
        (DType::BF16, 8e-3),
    ] {
        let c = |t: &Tensor| t.to_dtype(dt).unwrap();
        let (q, k, v) = (c(&q), c(&k), c(&v));
        let out = attention(&q, &k, &v, scale).unwrap();
        assert_eq!(out.dtype(), dt);
        assert_eq!(out.dims(), q.dims());
        let diff = max_abs_diff(&flat(&out), &naive(&q, &k, &v, scale));
        assert!(diff <= tol, "{dt:?}: max abs diff {diff} > {tol}");
    }
}

#[test]
fn the_comparison_can_fail() {
    // A wrong scale is caught: the tolerance is far tighter than a real error.
    let (q, k, v) = (
        tensor((1, 1, 16, 64), 9, 1.0),
        tensor((1, 1, 16, 64), 10, 1.0),
        tensor((1, 1, 16, 64), 11, 1.0),
    );
    let got = run(&q, &k, &v, 0.125, simd::level(), Blocks::for_head_dim(64));
    assert!(max_abs_diff(&got, &naive(&q, &k, &v, 0.13)) > 100.0 * TOL);
}

#[test]
fn bad_inputs_are_errors() {
    let q = tensor((1, 2, 8, 40), 1, 1.0);
    let k = tensor((1, 2, 8, 40), 2, 1.0);
    let v_bad = tensor((1, 2, 9, 40), 3, 1.0);
    assert!(attention(&q, &k, &v_bad, 1.0).is_err());
    assert!(attention(&q.flatten_all().unwrap(), &k, &k, 1.0).is_err());
    let ints = Tensor::zeros((1, 2, 8, 40), DType::U32, &Device::Cpu).unwrap();
    assert!(attention(&ints, &k, &k, 1.0).is_err());
    // A view reaching past its data is refused before any read.
    let data = [0f32; 10];
    assert!(View::new(&data, 0, [1, 1, 3, 4], [12, 12, 4, 1]).is_err());
    assert!(View::new(&data, 0, [1, 1, 2, 4], [8, 8, 4, 1]).is_ok());
}

#[test]
fn tiles_fit_the_cache_sizes() {
    for d in [40, 64, 80, 160, 512] {
        let b = Blocks::for_head_dim(d);
        assert!(
            b.k.is_multiple_of(16) && (64..=512).contains(&b.k),
            "{d}: {b:?}"
        );
        assert!(b.q * b.k * 4 <= 256 << 10, "{d}: score tile {b:?}");
        assert!(b.k * d * 4 <= 256 << 10, "{d}: key block {b:?}");
        assert!(b.q * d * 4 <= 512 << 10, "{d}: accumulator {b:?}");
    }
    // Short sequences with one head are split finer, so both cores get tasks.
    let threads = rayon::current_num_threads();
    let small = Blocks::for_shape(1, 256, 512);
    assert!(small.q >= 16 && (256usize.div_ceil(small.q) >= 4 * threads || small.q == 16));
    assert_eq!(Blocks::for_shape(8, 4096, 40), Blocks::for_head_dim(40));
}
