//! GPU check and benchmark of the `kernels` crate (needs `--features cuda` and a CUDA GPU).
//!
//! ```text
//! gpu_check [check|bench|all]      (default: all)
//! ```
//! * `check`: every kernel against its `cpu_ref` on the same (dtype-rounded) inputs: attention
//!   for head dims 40/64/80/128/160/512 × f32/f16/bf16 × self- and cross-attention (Lk = 77),
//!   GroupNorm(+SiLU) and GEGLU × f32/f16/bf16. Prints one JSON line per case and a closing
//!   `N passed, N failed` line; exits non-zero on a failure.
//! * `bench`: attention TFLOP/s (4·B·H·Lq·Lk·D flops per call) at SD shapes, for our kernel
//!   and for candle's unfused matmul-softmax-matmul on the same GPU, f16 and bf16.
//!
//! `scripts/gpu-check.sh` builds and runs it.

use candle_core::{DType, Device, Result, Tensor, D};
use kernels::{attention, geglu, group_norm};
use std::time::Instant;

fn max_rel_diff(got: &Tensor, want: &Tensor) -> Result<f32> {
    let g: Vec<f32> = got
        .to_device(&Device::Cpu)?
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1()?;
    let w: Vec<f32> = want.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
    let mut worst = 0f32;
    for (a, b) in g.iter().zip(&w) {
        let d = (a - b).abs() / b.abs().max(1.0);
        if !d.is_finite() {
            return Ok(f32::INFINITY);
        }
        worst = worst.max(d);
    }
    Ok(worst)
}

/// Relative tolerance (|got - want| / max(1, |want|)): output rounding plus f32 reordering.
fn tol(dt: DType) -> f32 {
    match dt {
        DType::F16 => 2e-3,
        DType::BF16 => 1.6e-2,
        _ => 1e-4,
    }
}

fn name(dt: DType) -> &'static str {
    match dt {
        DType::F16 => "f16",
        DType::BF16 => "bf16",
        _ => "f32",
    }
}

/// Random CPU tensor rounded to `dt` (returned in `dt`, on CPU).
fn randn(shape: &[usize], dt: DType) -> Result<Tensor> {
    Tensor::randn(0f32, 1f32, shape, &Device::Cpu)?.to_dtype(dt)
}

struct Tally {
    passed: usize,
    failed: usize,
}

impl Tally {
    fn record(&mut self, what: String, diff: f32, tol: f32) {
        let ok = diff <= tol;
        if ok {
            self.passed += 1
        } else {
            self.failed += 1
        }
        println!(r#"{{"check":{what},"max_rel_diff":{diff:e},"tol":{tol:e},"ok":{ok}}}"#);
    }
}

fn check(gpu: &Device) -> Result<Tally> {
    let mut t = Tally {
        passed: 0,
        failed: 0,
    };
    for dt in [DType::F16, DType::BF16, DType::F32] {
        for d in attention::CUDA_HEAD_DIMS {
            // Lq deliberately not a multiple of the 16/32-query block, Lk not of the 32-key tile.
            let (b, h, l) = if d == 512 { (1, 1, 1030) } else { (2, 3, 333) };
            for lk in [l, 77] {
                let q = randn(&[b, h, l, d], dt)?;
                let k = randn(&[b, h, lk, d], dt)?;
                let v = randn(&[b, h, lk, d], dt)?;
                let scale = 1.0 / (d as f64).sqrt();
                let want = attention::cpu_ref(&q, &k, &v, scale)?;
                let got = attention::flash_attention(
                    &q.to_device(gpu)?,
                    &k.to_device(gpu)?,
                    &v.to_device(gpu)?,
                    scale,
                )?;
                let what = format!(
                    r#""attention","dtype":"{}","b":{b},"h":{h},"lq":{l},"lk":{lk},"d":{d}"#,
                    name(dt)
                );
                t.record(what, max_rel_diff(&got, &want)?, tol(dt));
            }
        }
        for (shape, eps, silu) in [
            ([2, 320, 32, 32], 1e-5, true),
            ([1, 128, 64, 64], 1e-6, false),
        ] {
            let x = (randn(&shape, dt)? + 0.5)?;
            let gamma = randn(&[shape[1]], dt)?;
            let beta = randn(&[shape[1]], dt)?;
            let want = group_norm::cpu_ref(&x, &gamma, &beta, 32, eps, silu)?;
            let got = group_norm::group_norm(
                &x.to_device(gpu)?,
                &gamma.to_device(gpu)?,
                &beta.to_device(gpu)?,
                32,
                eps,
                silu,
            )?;
            let what = format!(
                r#""group_norm","dtype":"{}","shape":{shape:?},"silu":{silu}"#,
                name(dt)
            );
            // Normalised outputs reach |y| ~ 4·|gamma|: allow two output ulps more than attention.
            t.record(what, max_rel_diff(&got, &want)?, 2.0 * tol(dt));
        }
        let x = randn(&[2, 1024, 2 * 1280], dt)?;
        let want = geglu::cpu_ref(&x)?;
        let got = geglu::geglu(&x.to_device(gpu)?)?;
        let what = format!(r#""geglu","dtype":"{}","shape":[2,1024,2560]"#, name(dt));
        t.record(what, max_rel_diff(&got, &want)?, tol(dt));
    }
    Ok(t)
}

fn unfused(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Result<Tensor> {
    let s = (q.matmul(&k.t()?)? * scale)?;
    let e = s.broadcast_sub(&s.max_keepdim(D::Minus1)?)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?.matmul(v)
}

fn time_ms(gpu: &Device, iters: usize, mut f: impl FnMut() -> Result<Tensor>) -> Result<f64> {
    for _ in 0..3 {
        f()?;
    }
    gpu.synchronize()?;
    let t0 = Instant::now();
    for _ in 0..iters {
        f()?;
    }
    gpu.synchronize()?;
    Ok(t0.elapsed().as_secs_f64() * 1e3 / iters as f64)
}

fn bench(gpu: &Device) -> Result<()> {
    // (label, B, H, Lq, Lk, D)
    let shapes: [(&str, usize, usize, usize, usize, usize); 9] = [
        ("sd15_512_self_d40", 2, 8, 4096, 4096, 40),
        ("sd15_512_cross_d40", 2, 8, 4096, 77, 40),
        ("sd15_512_self_d80", 2, 8, 1024, 1024, 80),
        ("sd15_512_self_d160", 2, 8, 256, 256, 160),
        ("sdxl_1024_self_d64", 2, 10, 4096, 4096, 64),
        ("sdxl_1024_cross_d64", 2, 10, 4096, 77, 64),
        ("sdxl_1024_self_d64_h20", 2, 20, 1024, 1024, 64),
        ("vae_512_d512", 1, 1, 4096, 4096, 512),
        ("vae_1024_d512", 1, 1, 16384, 16384, 512),
    ];
    for dt in [DType::F16, DType::BF16] {
        for (label, b, h, lq, lk, d) in shapes {
            let q = Tensor::randn(0f32, 1f32, (b, h, lq, d), gpu)?.to_dtype(dt)?;
            let k = Tensor::randn(0f32, 1f32, (b, h, lk, d), gpu)?.to_dtype(dt)?;
            let v = Tensor::randn(0f32, 1f32, (b, h, lk, d), gpu)?.to_dtype(dt)?;
            let scale = 1.0 / (d as f64).sqrt();
            let flops = 4.0 * (b * h * lq * lk * d) as f64;
            let iters = ((2e12 / flops) as usize).clamp(3, 200);
            let ours = time_ms(gpu, iters, || attention::flash_attention(&q, &k, &v, scale))?;
            let base = time_ms(gpu, iters, || unfused(&q, &k, &v, scale))?;
            println!(
                r#"{{"bench":"{label}","dtype":"{}","b":{b},"h":{h},"lq":{lq},"lk":{lk},"d":{d},"flash_ms":{ours:.4},"flash_tflops":{:.2},"candle_unfused_ms":{base:.4},"candle_unfused_tflops":{:.2}}}"#,
                name(dt),
                flops / ours / 1e9,
                flops / base / 1e9
            );
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "all".to_string());
    let gpu = Device::new_cuda(0)?;
    let mut failed = 0;
    if mode == "check" || mode == "all" {
        let t = check(&gpu)?;
        println!("gpu_check: {} passed, {} failed", t.passed, t.failed);
        failed = t.failed;
    }
    if mode == "bench" || mode == "all" {
        bench(&gpu)?;
    }
    if failed > 0 {
        std::process::exit(1);
    }
    Ok(())
}
