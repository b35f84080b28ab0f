//! ISNet's unit tests: resampling and the fused 3×3 convolution against direct computations
//! and candle, and the load and preprocessing errors.

use super::*;
use std::collections::HashMap;

fn naive_resize(src: &[f32], h: usize, w: usize, oh: usize, ow: usize) -> Vec<f32> {
    // Direct evaluation of the half-pixel bilinear formula in f64.
    let coord = |o: usize, n_in: usize, n_out: usize| {
        let s = ((o as f64 + 0.5) * n_in as f64 / n_out as f64 - 0.5).max(0.0);
        let i0 = (s.floor() as usize).min(n_in - 1);
        (i0, (i0 + 1).min(n_in - 1), s - i0 as f64)
    };
    let mut out = vec![0f32; oh * ow];
    for y in 0..oh {
        let (y0, y1, fy) = coord(y, h, oh);
        for x in 0..ow {
            let (x0, x1, fx) = coord(x, w, ow);
            let p = |yy: usize, xx: usize| f64::from(src[yy * w + xx]);
            let v = p(y0, x0) * (1.0 - fy) * (1.0 - fx)
                + p(y0, x1) * (1.0 - fy) * fx
                + p(y1, x0) * fy * (1.0 - fx)
                + p(y1, x1) * fy * fx;
            out[y * ow + x] = v as f32;
        }
    }
    out
}

fn pseudo_random(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

const RESIZE_CASES: [(usize, usize, usize, usize); 7] = [
    (4, 4, 8, 8),
    (5, 7, 10, 14),
    (7, 5, 3, 2),
    (16, 16, 5, 7),
    (3, 9, 11, 4),
    (1, 6, 4, 3),
    (9, 13, 9, 13),
];

#[test]
fn bilinear_matches_torch_convention() {
    // torch: interpolate([0, 1], size=4, bilinear, align_corners=False)
    // = [0, 0.25, 0.75, 1].
    let x = Tensor::new(&[[[[0f32, 1.0]]]], &Device::Cpu).unwrap();
    let y = resize_bilinear(&x, 1, 4).unwrap();
    let y = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(y, vec![0.0, 0.25, 0.75, 1.0]);
}

#[test]
fn tensor_bilinear_matches_naive() {
    for (i, &(h, w, oh, ow)) in RESIZE_CASES.iter().enumerate() {
        let src = pseudo_random(2 * h * w, i as u64);
        let x = Tensor::from_vec(src.clone(), (1, 2, h, w), &Device::Cpu).unwrap();
        let y = resize_bilinear(&x, oh, ow).unwrap();
        assert_eq!(y.dims4().unwrap(), (1, 2, oh, ow));
        let y = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for c in 0..2 {
            let want = naive_resize(&src[c * h * w..(c + 1) * h * w], h, w, oh, ow);
            let got = &y[c * oh * ow..(c + 1) * oh * ow];
            let d = max_abs(got, &want);
            assert!(d < 1e-5, "{h}x{w} -> {oh}x{ow}: max diff {d}");
        }
    }
}

#[test]
fn slice_bilinear_matches_naive() {
    for (i, &(h, w, oh, ow)) in RESIZE_CASES.iter().enumerate() {
        let src = pseudo_random(h * w * 3, 100 + i as u64);
        let mut out = vec![0f32; oh * ow * 3];
        resize_bilinear_slice(
            w,
            h,
            ow,
            oh,
            3,
            |y, x, c| src[(y * w + x) * 3 + c],
            |y, x, c, v| out[(y * ow + x) * 3 + c] = v,
        );
        for c in 0..3 {
            let plane: Vec<f32> = (0..h * w).map(|k| src[k * 3 + c]).collect();
            let got: Vec<f32> = (0..oh * ow).map(|k| out[k * 3 + c]).collect();
            let d = max_abs(&got, &naive_resize(&plane, h, w, oh, ow));
            assert!(d < 1e-5, "{h}x{w} -> {oh}x{ow}: max diff {d}");
        }
    }
}

/// The f32 CPU paths and the candle paths (taken for f64 here) agree.
#[test]
fn resample_fast_paths_match_candle_paths() {
    for (i, &(h, w, oh, ow)) in RESIZE_CASES.iter().enumerate() {
        let src = pseudo_random(3 * h * w, 600 + i as u64);
        let x = Tensor::from_vec(src, (1, 3, h, w), &Device::Cpu).unwrap();
        let x64 = x.to_dtype(DType::F64).unwrap();
        let pairs = [
            (
                resize_bilinear(&x, oh, ow).unwrap(),
                resize_bilinear(&x64, oh, ow).unwrap(),
            ),
            (
                max_pool2x2_ceil(&x).unwrap(),
                max_pool2x2_ceil(&x64).unwrap(),
            ),
        ];
        for (fast, slow) in pairs {
            assert_eq!(fast.dims(), slow.dims());
            let fast = fast.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let slow = slow
                .to_dtype(DType::F32)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let d = max_abs(&fast, &slow);
            assert!(d < 1e-5, "{h}x{w} -> {oh}x{ow}: max diff {d}");
        }
    }
}

#[test]
fn max_pool_ceil_matches_naive() {
    for (i, &(h, w)) in [(4, 4), (5, 7), (7, 5), (1, 3), (9, 9), (2, 1)]
        .iter()
        .enumerate()
    {
        let src = pseudo_random(2 * h * w, 200 + i as u64);
        let x = Tensor::from_vec(src.clone(), (1, 2, h, w), &Device::Cpu).unwrap();
        let y = max_pool2x2_ceil(&x).unwrap();
        let (oh, ow) = (h.div_ceil(2), w.div_ceil(2));
        assert_eq!(y.dims4().unwrap(), (1, 2, oh, ow));
        let y = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for c in 0..2 {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut m = f32::NEG_INFINITY;
                    for yy in 2 * oy..(2 * oy + 2).min(h) {
                        for xx in 2 * ox..(2 * ox + 2).min(w) {
                            m = m.max(src[(c * h + yy) * w + xx]);
                        }
                    }
                    assert_eq!(y[(c * oh + oy) * ow + ox], m, "{h}x{w} at {c},{oy},{ox}");
                }
            }
        }
    }
}

/// `Conv3x3` (fused bias + ReLU, inputs in two pieces) against candle's `conv2d` of the
/// concatenation, at ISNet's dilations and strides.
#[test]
fn conv3x3_matches_candle_conv2d() {
    let dev = Device::Cpu;
    // (c_in first piece, c_in second piece, c_out, h, w, dilation, stride): odd sizes.
    for (i, &(c1, c2, o, h, w, d, s)) in [
        (3, 0, 5, 7, 9, 1, 1),
        (4, 3, 6, 40, 30, 1, 1),
        (5, 2, 2, 11, 6, 2, 1),
        (2, 2, 3, 17, 13, 4, 1),
        (3, 1, 3, 9, 20, 8, 1),
        (3, 0, 4, 15, 10, 1, 2),
    ]
    .iter()
    .enumerate()
    {
        let rnd = |n: usize, seed: u64, shape: (usize, usize, usize, usize)| {
            Tensor::from_vec(pseudo_random(n, seed), shape, &dev).unwrap()
        };
        let x1 = rnd(c1 * h * w, 300 + i as u64, (1, c1, h, w));
        let x2 = rnd(c2.max(1) * h * w, 350 + i as u64, (1, c2.max(1), h, w));
        let c = if c2 == 0 { c1 } else { c1 + c2 };
        let wt = rnd(o * c * 9, 400 + i as u64, (o, c, 3, 3));
        let b = Tensor::from_vec(pseudo_random(o, 500 + i as u64), o, &dev).unwrap();
        let x = if c2 == 0 {
            x1.clone()
        } else {
            Tensor::cat(&[&x1, &x2], 1).unwrap()
        };
        let want = x
            .conv2d(&wt, d, s, d, 1)
            .unwrap()
            .broadcast_add(&b.reshape((1, o, 1, 1)).unwrap())
            .unwrap()
            .relu()
            .unwrap();
        let conv = Conv3x3 {
            weight: wt,
            bias: b,
            stride: s,
            dilation: d,
        };
        let pieces: Vec<&Tensor> = if c2 == 0 { vec![&x1] } else { vec![&x1, &x2] };
        let got = conv.forward_cat(&pieces, Activation::Relu).unwrap();
        assert_eq!(got.dims(), want.dims());
        let diff = (got - want)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-4, "case {i}: max diff {diff}");
    }
}

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("isnet-test-{}-{name}", std::process::id()))
}

fn conv_in_tensors(weight_shape: (usize, usize, usize, usize)) -> HashMap<String, Tensor> {
    let dev = Device::Cpu;
    let mut m = HashMap::new();
    m.insert(
        "conv_in.weight".to_string(),
        Tensor::zeros(weight_shape, DType::F16, &dev).unwrap(),
    );
    m.insert(
        "conv_in.bias".to_string(),
        Tensor::zeros(64, DType::F16, &dev).unwrap(),
    );
    m
}

#[test]
fn load_missing_file_names_file() {
    let p = temp_path("does-not-exist.safetensors");
    let err = IsNet::load(&p, &Device::Cpu).unwrap_err();
    assert!(matches!(err, IsNetError::MissingFile { .. }));
    assert!(
        err.to_string().contains("does-not-exist.safetensors"),
        "{err}"
    );
}

#[test]
fn load_corrupt_or_truncated_file_names_file() {
    let garbage = temp_path("garbage.safetensors");
    std::fs::write(&garbage, b"this is not a safetensors file at all").unwrap();
    let err = IsNet::load(&garbage, &Device::Cpu).unwrap_err();
    std::fs::remove_file(&garbage).unwrap();
    assert!(matches!(err, IsNetError::Read { .. }), "{err}");
    assert!(err.to_string().contains("garbage.safetensors"), "{err}");

    let trunc = temp_path("truncated.safetensors");
    candle_core::safetensors::save(&conv_in_tensors((64, 3, 3, 3)), &trunc).unwrap();
    let bytes = std::fs::read(&trunc).unwrap();
    std::fs::write(&trunc, &bytes[..bytes.len() - 100]).unwrap();
    let err = IsNet::load(&trunc, &Device::Cpu).unwrap_err();
    std::fs::remove_file(&trunc).unwrap();
    assert!(matches!(err, IsNetError::Read { .. }), "{err}");
    assert!(err.to_string().contains("truncated.safetensors"), "{err}");
}

#[test]
fn load_missing_or_misshaped_tensor_names_tensor() {
    let partial = temp_path("partial.safetensors");
    candle_core::safetensors::save(&conv_in_tensors((64, 3, 3, 3)), &partial).unwrap();
    let err = IsNet::load(&partial, &Device::Cpu).unwrap_err();
    std::fs::remove_file(&partial).unwrap();
    let msg = err.to_string();
    assert!(matches!(err, IsNetError::Tensor { .. }), "{msg}");
    assert!(msg.contains("partial.safetensors"), "{msg}");
    assert!(msg.contains("stage1.rebnconvin.conv_s1.weight"), "{msg}");

    let shaped = temp_path("misshaped.safetensors");
    candle_core::safetensors::save(&conv_in_tensors((64, 3, 5, 5)), &shaped).unwrap();
    let err = IsNet::load(&shaped, &Device::Cpu).unwrap_err();
    std::fs::remove_file(&shaped).unwrap();
    let msg = err.to_string();
    assert!(msg.contains("misshaped.safetensors"), "{msg}");
    assert!(msg.contains("conv_in.weight"), "{msg}");
}

#[test]
fn preprocess_rejects_bad_buffer() {
    let err = IsNet::preprocess(&[0u8; 10], 2, 2, &Device::Cpu).unwrap_err();
    assert!(matches!(err, IsNetError::InvalidImage(_)));
}

// Parity with onnxruntime on real photos is tested end to end in tests/tests/isnet.rs,
// which fetches the real weights first.
