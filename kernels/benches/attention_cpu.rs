//! The fused CPU attention (`kernels::attention_cpu`) next to the path it replaces (the query
//! chunks of matmul, scale, candle-nn's softmax, matmul that `engine::sd::attention::
//! attention_chunked` runs, with its 64 MiB score budget), in one run, interleaved.
//!
//! `cargo bench -p kernels --bench attention_cpu [-- REPS]` (default 5 runs each; the median is
//! printed). Shapes: SD1.5 at 512² (self-attention at the four UNet levels, cross-attention
//! with 77 keys) and the VAE mid-block at 512² (one 512-wide head). The fused path is also run
//! at AVX2 and scalar (its own element-wise code; gemm keeps its own detection).

use candle_core::{Device, Result, Tensor};
use kernels::attention_cpu::{attention_at, Blocks, View};
use kernels::simd::{self, Level};
use std::time::Instant;

/// The old path: engine::sd::attention::attention_chunked at its default budget.
fn old_path(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Result<Tensor> {
    let (b, h, lq, _) = q.dims4()?;
    let lk = k.dim(2)?;
    let kt = k.contiguous()?.transpose(2, 3)?;
    let scale_t = Tensor::new(scale as f32, q.device())?;
    let chunk = ((64 << 20) / (b * h * lk * 4)).clamp(1, lq);
    let mut outs = Vec::new();
    let mut start = 0;
    while start < lq {
        let len = chunk.min(lq - start);
        let s = q
            .narrow(2, start, len)?
            .matmul(&kt)?
            .broadcast_mul(&scale_t)?;
        let p = candle_nn::ops::softmax_last_dim(&s)?;
        outs.push(p.matmul(v)?);
        start += len;
    }
    Tensor::cat(&outs, 2)
}

/// Contiguous f32 data of a tensor and its dims (prepared outside the timed region).
fn data(t: &Tensor) -> Result<(Vec<f32>, [usize; 4])> {
    let (a, b, c, d) = t.dims4()?;
    Ok((t.flatten_all()?.to_vec1::<f32>()?, [a, b, c, d]))
}

/// A contiguous view of prepared data.
fn view(t: &(Vec<f32>, [usize; 4])) -> Result<View<'_>> {
    let dims = t.1;
    let strides = [dims[1] * dims[2] * dims[3], dims[2] * dims[3], dims[3], 1];
    View::new(&t.0, 0, dims, strides)
}

type Prepared = (Vec<f32>, [usize; 4]);

/// (name, (B, H, Lq, D), Lk).
type Case = (&'static str, (usize, usize, usize, usize), usize);

fn fused_at(qkv: (&Prepared, &Prepared, &Prepared), scale: f64, level: Level) -> Result<Vec<f32>> {
    fused_tiled(qkv, scale, level, Blocks::for_head_dim(qkv.0 .1[3]))
}

fn fused_tiled(
    (q, k, v): (&Prepared, &Prepared, &Prepared),
    scale: f64,
    level: Level,
    blocks: Blocks,
) -> Result<Vec<f32>> {
    let (qv, kv, vv) = (view(q)?, view(k)?, view(v)?);
    attention_at(&qv, &kv, &vv, scale as f32, level, blocks)
}

fn seconds(f: &mut dyn FnMut() -> Result<()>) -> Result<f64> {
    let t = Instant::now();
    f()?;
    Ok(t.elapsed().as_secs_f64())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// `-- sweep`: the fused path at several tilings, for the two large shapes.
fn sweep(reps: usize) -> Result<()> {
    let dev = Device::Cpu;
    for (b, h, l, d) in [(1, 8, 4096, 40), (1, 1, 4096, 512)] {
        let t =
            |s| Tensor::randn(0f32, 1.0, (b, h, l, d), &dev).and_then(|t| data(&t).map(|x| (x, s)));
        let ((q, _), (k, _), (v, _)) = (t(0)?, t(1)?, t(2)?);
        for bq in [32, 64, 128, 256] {
            for bk in [64, 128, 256, 512, 1024] {
                let blocks = Blocks { q: bq, k: bk };
                let ts: Vec<f64> = (0..reps)
                    .map(|_| {
                        seconds(&mut || {
                            fused_tiled((&q, &k, &v), 0.1, simd::level(), blocks).map(|_| ())
                        })
                    })
                    .collect::<Result<_>>()?;
                println!(
                    "({b}, {h}, {l}, {d}) q {bq:4} k {bk:4}: {:.4} s",
                    median(ts)
                );
            }
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    if std::env::args().any(|a| a == "sweep") {
        return sweep(3);
    }
    let reps: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5);
    let dev = Device::Cpu;
    println!(
        "CPU attention, {} threads, SIMD level {:?}, median of {reps}",
        rayon::current_num_threads(),
        simd::level()
    );
    println!(
        "| shape (B, H, Lq, D) · Lk | old (matmul + softmax) | fused | fused AVX2 | fused scalar | old / fused | max |Δ| |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let shapes: [Case; 7] = [
        ("SD1.5 self 64²", (1, 8, 4096, 40), 4096),
        ("SD1.5 cross 64²", (1, 8, 4096, 40), 77),
        ("SD1.5 self 32²", (1, 8, 1024, 80), 1024),
        ("SD1.5 self 16²", (1, 8, 256, 160), 256),
        ("SD1.5 self 8²", (1, 8, 64, 160), 64),
        ("SDXL-shaped self", (1, 10, 1024, 64), 1024),
        ("VAE mid 512²", (1, 1, 4096, 512), 4096),
    ];
    for (name, (b, h, lq, d), lk) in shapes {
        let q = Tensor::randn(0f32, 1.0, (b, h, lq, d), &dev)?;
        let k = Tensor::randn(0f32, 1.0, (b, h, lk, d), &dev)?;
        let v = Tensor::randn(0f32, 1.0, (b, h, lk, d), &dev)?;
        let scale = 1.0 / (d as f64).sqrt();
        let want = old_path(&q, &k, &v, scale)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let (qd, kd, vd) = (data(&q)?, data(&k)?, data(&v)?);
        let qkv = (&qd, &kd, &vd);
        let got = fused_at(qkv, scale, simd::level())?;
        let diff = want
            .iter()
            .zip(&got)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        let levels: Vec<Level> = [Level::Avx2, Level::Scalar]
            .into_iter()
            .filter(|l| Level::supported().contains(l) && *l < simd::level())
            .collect();
        let (mut t_old, mut t_new) = (Vec::new(), Vec::new());
        let mut t_lvl = vec![Vec::new(); levels.len()];
        for _ in 0..reps {
            t_old.push(seconds(&mut || old_path(&q, &k, &v, scale).map(|_| ()))?);
            t_new.push(seconds(&mut || {
                fused_at(qkv, scale, simd::level()).map(|_| ())
            })?);
            for (l, t) in levels.iter().zip(t_lvl.iter_mut()) {
                t.push(seconds(&mut || fused_at(qkv, scale, *l).map(|_| ()))?);
            }
        }
        let (o, n) = (median(t_old), median(t_new));
        let mut lv = t_lvl.into_iter().map(|t| format!("{:.4} s", median(t)));
        let (a2, sc) = (
            lv.next().unwrap_or("—".into()),
            lv.next().unwrap_or("—".into()),
        );
        println!(
            "| {name} ({b}, {h}, {lq}, {d}) · {lk} | {o:.4} s | {n:.4} s | {a2} | {sc} | {:.2}× | {diff:.1e} |",
            o / n
        );
    }
    Ok(())
}
