//! Micro-benchmark of the CPU convolution (`cargo bench -p kernels --bench conv`): SD's and
//! ISNet's typical shapes, candle's `Tensor::conv2d` (+ bias) vs `kernels::conv::conv2d` with
//! the bias fused, side by side. Prints milliseconds (median of the runs), GFLOP/s and the
//! ratio.

use std::time::Instant;

use candle_core::{Device, Tensor};
use kernels::conv::{conv2d, conv2d_with, Activation, ConvParams, Epilogue, PANEL_BYTES};
use kernels::simd;

/// Median of `runs` timings of `f`, in seconds, after one warm-up call.
fn median_secs(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn main() -> candle_core::Result<()> {
    let dev = Device::Cpu;
    // (name, c_in, c_out, k, size, dilation, activation)
    let cases = [
        ("sd 3x3 320->320 64^2", 320, 320, 3, 64, 1, Activation::None),
        ("sd 3x3 640->640 32^2", 640, 640, 3, 32, 1, Activation::None),
        ("sd 1x1 320->320 64^2", 320, 320, 1, 64, 1, Activation::None),
        (
            "isnet 3x3 64->16 512^2 d1",
            64,
            16,
            3,
            512,
            1,
            Activation::Relu,
        ),
        (
            "isnet 3x3 16->16 64^2 d8",
            16,
            16,
            3,
            64,
            8,
            Activation::Relu,
        ),
    ];
    let runs: usize = std::env::var("CONV_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    println!(
        "{:<28} {:>10} {:>9} {:>10} {:>9} {:>7}",
        "case", "candle ms", "GFLOP/s", "ours ms", "GFLOP/s", "ratio"
    );
    for (name, c_in, c_out, k, size, d, act) in cases {
        let x = Tensor::randn(0f32, 1.0, (1, c_in, size, size), &dev)?;
        let w = Tensor::randn(0f32, 0.05, (c_out, c_in, k, k), &dev)?;
        let b = Tensor::randn(0f32, 1.0, c_out, &dev)?;
        let b4 = b.reshape((1, c_out, 1, 1))?;
        let pad = d * (k / 2);
        let flop = 2.0 * (c_out * c_in * k * k * size * size) as f64;
        let candle = median_secs(runs, || {
            let y = x
                .conv2d(&w, pad, 1, d, 1)
                .and_then(|y| y.broadcast_add(&b4));
            let y = match act {
                Activation::Relu => y.and_then(|y| y.relu()),
                _ => y,
            };
            std::hint::black_box(y.ok());
        });
        let params = ConvParams {
            stride: 1,
            padding: pad,
            dilation: d,
        };
        let epi = Epilogue {
            bias: Some(&b),
            activation: act,
            residual: None,
        };
        let ours = median_secs(runs, || {
            std::hint::black_box(conv2d(&[&x], &w, params, epi).ok());
        });
        println!(
            "{:<28} {:>10.2} {:>9.1} {:>10.2} {:>9.1} {:>6.2}x",
            name,
            candle * 1e3,
            flop / candle / 1e9,
            ours * 1e3,
            flop / ours / 1e9,
            candle / ours
        );
        // Panel sizes around the default (CONV_BENCH_PANELS=1 to print them).
        if std::env::var_os("CONV_BENCH_PANELS").is_some() {
            for bytes in [PANEL_BYTES / 2, PANEL_BYTES * 2, PANEL_BYTES * 4] {
                let t = median_secs(runs, || {
                    let y = conv2d_with(simd::level(), bytes, &[&x], &w, params, epi);
                    std::hint::black_box(y.ok());
                });
                println!(
                    "  panel {:>5} KiB: {:>8.2} ms {:>7.1} GFLOP/s",
                    bytes >> 10,
                    t * 1e3,
                    flop / t / 1e9
                );
            }
        }
    }
    Ok(())
}
