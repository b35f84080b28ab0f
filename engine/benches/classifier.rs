//! The trained-classifier network (`engine::inspect::net`, EfficientNet-Lite0 with folded
//! BatchNorm and a 2-way head) on this CPU, one JSON line per measurement:
//! - `infer`: milliseconds per forward pass at 224², batch 1 (median; wall and process CPU);
//! - `train`: training throughput in images/s (forward, backward and an AdamW step; median over
//!   steps after one warm-up) at a batch and size, and the process's peak memory (VmHWM).
//!
//! Needs the ImageNet weights (`defect-studio models fetch efficientnet-lite0`, or
//! `DEFECT_STUDIO_LITE0` naming the file). `scripts/bench-classifier.sh` runs this next to
//! PyTorch (`scripts/bench_classifier_torch.py`) and prints the ratios.
//! Arguments: `infer [runs]` or `train [steps] [batch] [size]`.

use std::time::Instant;

use candle_core::{Device, Tensor};
use engine::inspect::net::Net;

fn cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Peak resident memory of this process in MiB (VmHWM).
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn input(batch: usize, size: usize) -> Tensor {
    let x: Vec<f32> = (0..batch * 3 * size * size)
        .map(|i| ((i * 7 % 251) as f32 - 127.0) / 128.0)
        .collect();
    Tensor::from_vec(x, (batch, 3, size, size), &Device::Cpu).expect("input")
}

fn main() {
    let path = std::env::var_os("DEFECT_STUDIO_LITE0")
        .map(std::path::PathBuf::from)
        .or_else(engine::models::efficientnet::installed_path);
    let Some(path) = path else {
        println!(
            "classifier bench: no weights; run `defect-studio models fetch efficientnet-lite0`"
        );
        return;
    };
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mode = args.first().map_or("infer", String::as_str);
    let num = |i: usize, d: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let net = Net::from_imagenet(&path, 2, 0, &Device::Cpu).expect("load");
    let threads = candle_core::utils::get_num_threads();
    if mode == "train" {
        let (steps, batch, size) = (num(1, 3), num(2, 8), num(3, 224));
        let vars = net.vars().expect("vars");
        let x = input(batch, size);
        let y = Tensor::from_vec(
            (0..batch as u32).map(|i| i % 2).collect::<Vec<u32>>(),
            batch,
            &Device::Cpu,
        )
        .expect("labels");
        let mut rates = Vec::new();
        let mut cpu_rates = Vec::new();
        // AdamW moments as the trainer keeps them.
        let mut m: Vec<Tensor> = vars
            .iter()
            .map(|v| v.as_tensor().zeros_like().unwrap())
            .collect();
        let mut v2 = m.clone();
        for step in 0..=steps {
            let (t, c) = (Instant::now(), cpu_seconds());
            let logits = net.classify(&x, None).expect("forward");
            let loss = candle_nn::loss::cross_entropy(&logits, &y).expect("loss");
            let grads = loss.backward().expect("backward");
            for (i, var) in vars.iter().enumerate() {
                let g = grads.get(var).expect("grad");
                m[i] = ((&m[i] * 0.9).unwrap() + (g * 0.1).unwrap()).unwrap();
                v2[i] = ((&v2[i] * 0.999).unwrap() + (g.sqr().unwrap() * 0.001).unwrap()).unwrap();
                let upd = (&m[i] / (v2[i].sqrt().unwrap() + 1e-8).unwrap()).unwrap();
                var.set(&(var.as_tensor() - (upd * 1e-4).unwrap()).unwrap())
                    .unwrap();
            }
            if step > 0 {
                rates.push(batch as f64 / t.elapsed().as_secs_f64());
                cpu_rates.push(batch as f64 / (cpu_seconds() - c));
            }
        }
        rates.sort_by(f64::total_cmp);
        cpu_rates.sort_by(f64::total_cmp);
        println!(
            "{{\"impl\": \"candle\", \"mode\": \"train\", \"batch\": {batch}, \"size\": {size}, \"images_per_s\": {:.3}, \"cpu_images_per_s\": {:.3}, \"peak_rss_mib\": {:.0}, \"steps\": {steps}, \"threads\": {threads}}}",
            rates[rates.len() / 2],
            cpu_rates[cpu_rates.len() / 2],
            peak_rss_mib()
        );
        return;
    }
    let runs = num(1, 20);
    let x = input(1, 224);
    net.classify(&x, None).expect("warm-up");
    let mut times = Vec::with_capacity(runs);
    let mut cpu = Vec::with_capacity(runs);
    for _ in 0..runs {
        let (t, c) = (Instant::now(), cpu_seconds());
        net.classify(&x, None).expect("forward");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        cpu.push((cpu_seconds() - c) * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    cpu.sort_by(f64::total_cmp);
    println!(
        "{{\"impl\": \"candle\", \"mode\": \"infer\", \"batch\": 1, \"ms\": {:.2}, \"cpu_ms\": {:.2}, \"runs\": {runs}, \"threads\": {threads}}}",
        times[runs / 2],
        cpu[runs / 2]
    );
}
