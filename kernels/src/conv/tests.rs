//! `conv2d` against candle's `Tensor::conv2d` on the concatenated inputs, plus the epilogue
//! done with candle ops.

use super::*;
use candle_core::DType;

/// Deterministic pseudo-random `N(0, 1)`-ish values (sum of uniforms).
fn rand(shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let v: Vec<f32> = (0..n)
        .map(|_| {
            let mut acc = 0f32;
            for _ in 0..4 {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                acc += (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            }
            acc * 1.7
        })
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn reference(inputs: &[&Tensor], weight: &Tensor, p: ConvParams, e: Epilogue) -> Tensor {
    let x = Tensor::cat(inputs, 1).unwrap();
    let mut y = x
        .conv2d(weight, p.padding, p.stride, p.dilation, 1)
        .unwrap();
    if let Some(b) = e.bias {
        y = y.broadcast_add(&b.reshape((1, (), 1, 1)).unwrap()).unwrap();
    }
    y = match e.activation {
        Activation::None => y,
        Activation::Relu => y.relu().unwrap(),
        Activation::Silu => y.silu().unwrap(),
    };
    match e.residual {
        Some(r) => (y + r).unwrap(),
        None => y,
    }
}

fn max_abs(a: &Tensor) -> f32 {
    a.abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// One case: input channel pieces, kernel, params, batch and size.
struct Case {
    pieces: &'static [usize],
    c_out: usize,
    k: (usize, usize),
    stride: usize,
    padding: usize,
    dilation: usize,
    b: usize,
    hw: (usize, usize),
}

#[allow(clippy::too_many_arguments)]
const fn case(
    pieces: &'static [usize],
    c_out: usize,
    k: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
    b: usize,
    hw: (usize, usize),
) -> Case {
    Case {
        pieces,
        c_out,
        k: (k, k),
        stride,
        padding,
        dilation,
        b,
        hw,
    }
}

const CASES: &[Case] = &[
    case(&[5], 7, 3, 1, 1, 1, 2, (7, 5)),
    case(&[5], 7, 3, 2, 1, 1, 2, (9, 11)),
    case(&[5], 7, 3, 2, 0, 1, 1, (10, 8)),
    case(&[3, 4], 6, 3, 1, 1, 1, 3, (7, 5)),
    case(&[3, 4, 2], 9, 3, 1, 2, 2, 1, (9, 7)),
    case(&[4], 5, 3, 1, 4, 4, 1, (11, 9)),
    case(&[4, 4], 5, 3, 1, 8, 8, 2, (17, 13)),
    case(&[4], 6, 1, 1, 0, 1, 2, (5, 3)),
    case(&[2, 6, 3], 8, 1, 1, 0, 1, 2, (7, 5)),
    case(&[3], 4, 1, 2, 0, 1, 1, (7, 7)),
    case(&[3], 4, 1, 1, 1, 1, 1, (4, 3)),
    case(&[3, 2], 4, 4, 2, 1, 1, 2, (9, 8)),
    case(&[3], 4, 4, 1, 2, 1, 1, (6, 5)),
    case(&[6], 5, 3, 1, 1, 1, 1, (1, 1)),
    case(&[6], 5, 1, 1, 0, 1, 3, (1, 1)),
    case(&[3], 70, 3, 1, 1, 1, 1, (3, 2)),
    case(&[16, 16], 40, 3, 1, 1, 1, 2, (23, 19)),
    case(&[2], 3, 5, 2, 2, 2, 1, (13, 12)),
];

#[test]
fn matches_candle_every_epilogue_level_and_panel_size() {
    let mut seed = 1;
    for c in CASES {
        let inputs: Vec<Tensor> = c
            .pieces
            .iter()
            .map(|&ch| {
                seed += 1;
                rand(&[c.b, ch, c.hw.0, c.hw.1], seed)
            })
            .collect();
        let refs: Vec<&Tensor> = inputs.iter().collect();
        let c_in: usize = c.pieces.iter().sum();
        let weight = rand(&[c.c_out, c_in, c.k.0, c.k.1], seed + 100);
        let bias = rand(&[c.c_out], seed + 200);
        let p = ConvParams {
            stride: c.stride,
            padding: c.padding,
            dilation: c.dilation,
        };
        let plain = reference(&refs, &weight, p, Epilogue::default());
        let residual = rand(plain.dims(), seed + 300);
        let tol = 2e-6 * max_abs(&plain).max(1.0) * 4.0;
        for activation in [Activation::None, Activation::Relu, Activation::Silu] {
            for (with_bias, with_res) in
                [(false, false), (true, false), (false, true), (true, true)]
            {
                let e = Epilogue {
                    bias: with_bias.then_some(&bias),
                    activation,
                    residual: with_res.then_some(&residual),
                };
                let want = reference(&refs, &weight, p, e);
                for level in Level::supported() {
                    // Default panels, and 1-byte panels (the narrowest split there is).
                    for bytes in [PANEL_BYTES, 1] {
                        let got = conv2d_with(level, bytes, &refs, &weight, p, e).unwrap();
                        assert_eq!(got.dims(), want.dims());
                        let d = max_abs(&(&got - &want).unwrap());
                        assert!(
                            d <= tol,
                            "pieces {:?} k {:?} s {} p {} d {} b {} hw {:?} {activation:?} \
                             bias {with_bias} res {with_res} {level:?} {bytes}: diff {d} > {tol}",
                            c.pieces,
                            c.k,
                            c.stride,
                            c.padding,
                            c.dilation,
                            c.b,
                            c.hw
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn non_contiguous_inputs() {
    let x = rand(&[2, 4, 6, 9], 7).transpose(2, 3).unwrap();
    let y = rand(&[2, 3, 9, 6], 8);
    let w = rand(&[5, 7, 3, 3], 9);
    let p = ConvParams {
        stride: 1,
        padding: 1,
        dilation: 1,
    };
    let got = conv2d(&[&x, &y], &w, p, Epilogue::default()).unwrap();
    let want = reference(&[&x.contiguous().unwrap(), &y], &w, p, Epilogue::default());
    assert!(max_abs(&(&got - &want).unwrap()) < 1e-4);
}

#[test]
fn bad_shapes_are_clear_errors() {
    let x = rand(&[1, 4, 5, 5], 1);
    let w = rand(&[3, 4, 3, 3], 2);
    let p = ConvParams {
        stride: 1,
        padding: 0,
        dilation: 1,
    };
    let err = |inputs: &[&Tensor], w: &Tensor, p: ConvParams, e: Epilogue| {
        conv2d(inputs, w, p, e).unwrap_err().to_string()
    };
    let e = Epilogue::default();
    assert!(err(&[&x, &x], &w, p, e).contains("8 channels"));
    assert!(err(&[], &w, p, e).contains("no input"));
    let big = rand(&[3, 4, 7, 7], 3);
    assert!(err(&[&x], &big, p, e).contains("larger than the padded input"));
    let dil = ConvParams { dilation: 4, ..p };
    assert!(err(&[&x], &w, dil, e).contains("larger than the padded input"));
    assert!(err(&[&x], &w, ConvParams { stride: 0, ..p }, e).contains("stride 0"));
    let res = rand(&[1, 3, 5, 5], 4);
    let e2 = Epilogue {
        residual: Some(&res),
        ..e
    };
    assert!(err(&[&x], &w, p, e2).contains("residual"));
    let bias = rand(&[4], 5);
    let e3 = Epilogue {
        bias: Some(&bias),
        ..e
    };
    assert!(err(&[&x], &w, p, e3).contains("bias"));
    let other = rand(&[1, 2, 4, 5], 6);
    assert!(err(&[&x, &other], &w, p, e).contains("does not match"));
    let f64x = x.to_dtype(DType::F64).unwrap();
    assert!(err(&[&f64x], &w, p, e).contains("f32 CPU"));
}
