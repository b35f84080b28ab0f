//! Shared by the side-by-side benches (`unet`, `vae`, `isnet`; `scripts/bench-cpu.sh` runs them
//! next to PyTorch and onnxruntime): argument parsing, timing, peak resident memory, and the one
//! JSON line each implementation prints. The Python sides (`scripts/bench_*_torch.py`,
//! `scripts/bench_isnet_ort.py`) print the same keys: impl, what, size, seconds (median of the
//! timed runs), all (every timed run), warmup, peak_mib.

#![allow(dead_code)] // each bench uses a part

use std::time::Instant;

use serde_json::{json, Map, Value};

/// The bench's arguments: positional values and `--name value` flags (cargo's own `--bench`
/// is skipped).
pub struct Args {
    positional: Vec<String>,
    all: Vec<String>,
}

impl Args {
    /// Parses `std::env::args()`, and sets the allocator as the `defect-studio` binary does
    /// (`kernels::alloc::keep_freed_buffers`; `DEFECT_STUDIO_MALLOC=default` measures without)
    /// and uses one thread pool (`kernels::threads::one_pool`; set `CANDLE_NUM_THREADS` to
    /// measure candle's own element-wise pool).
    pub fn parse() -> Args {
        kernels::alloc::keep_freed_buffers();
        kernels::threads::one_pool();
        let all: Vec<String> = std::env::args().skip(1).collect();
        let mut positional = Vec::new();
        let mut i = 0;
        while i < all.len() {
            if all[i] == "--bench" {
                i += 1;
            } else if all[i].starts_with("--") {
                i += 2;
            } else {
                positional.push(all[i].clone());
                i += 1;
            }
        }
        Args { positional, all }
    }

    /// The `i`-th positional argument parsed as a number, or `default`.
    pub fn number(&self, i: usize, default: usize) -> usize {
        match self.positional.get(i) {
            None => default,
            Some(s) => s
                .parse()
                .unwrap_or_else(|_| panic!("argument {}: {s:?} is not a number", i + 1)),
        }
    }

    /// The value after `--name`, or `default`.
    pub fn flag(&self, name: &str, default: &str) -> String {
        self.all
            .iter()
            .position(|a| a == name)
            .and_then(|i| self.all.get(i + 1))
            .cloned()
            .unwrap_or_else(|| default.to_string())
    }
}

/// The process' peak resident memory (`VmHWM`) in MiB.
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// Runs `step` once to warm up (allocations; kernel compilation on CUDA), then `runs` timed
/// times; returns (warm-up seconds, timed seconds in run order).
///
/// When `PERF_CTL_FIFO` names perf's control FIFO (`perf record -D -1 --control fifo:…`, as
/// `scripts/profile-cpu.sh` runs it), perf records the timed runs only: not the model's
/// construction nor the warm-up.
pub fn time_runs(runs: usize, mut step: impl FnMut()) -> (f64, Vec<f64>) {
    let t0 = Instant::now();
    step();
    let warmup = t0.elapsed().as_secs_f64();
    let mut perf = PerfControl::open();
    perf.send("enable");
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t0 = Instant::now();
        step();
        times.push(t0.elapsed().as_secs_f64());
    }
    perf.send("disable");
    (warmup, times)
}

/// perf's control FIFO, when `PERF_CTL_FIFO` is set.
struct PerfControl(Option<std::fs::File>);

impl PerfControl {
    fn open() -> PerfControl {
        let Some(path) = std::env::var_os("PERF_CTL_FIFO") else {
            return PerfControl(None);
        };
        match std::fs::OpenOptions::new().write(true).open(&path) {
            Ok(f) => PerfControl(Some(f)),
            Err(e) => panic!(
                "PERF_CTL_FIFO {}: {e}",
                std::path::Path::new(&path).display()
            ),
        }
    }

    fn send(&mut self, command: &str) {
        if let Some(f) = &mut self.0 {
            use std::io::Write;
            f.write_all(format!("{command}\n").as_bytes())
                .and_then(|()| f.flush())
                .unwrap_or_else(|e| panic!("perf control FIFO: {e}"));
        }
    }
}

/// The median (the upper one for an even count; NaN when empty).
pub fn median(times: &[f64]) -> f64 {
    let mut s = times.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s.get(s.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Prints the JSON line of our implementation: impl, what, size, seconds (median), it_per_s,
/// warmup, all, peak_mib, threads (rayon's pool), simd (`kernels::simd::level()`), and the keys
/// of `extra` (an object) beside them.
pub fn print_line(
    implementation: &str,
    what: &str,
    size: usize,
    warmup: f64,
    times: &[f64],
    extra: Value,
) {
    let med = median(times);
    let mut line = Map::new();
    line.insert("impl".into(), json!(implementation));
    line.insert("what".into(), json!(what));
    line.insert("size".into(), json!(size));
    line.insert("seconds".into(), json!(med));
    line.insert("it_per_s".into(), json!(1.0 / med));
    line.insert("warmup".into(), json!(warmup));
    line.insert("all".into(), json!(times));
    line.insert("peak_mib".into(), json!(peak_rss_mib().round()));
    line.insert("threads".into(), json!(rayon::current_num_threads()));
    line.insert(
        "simd".into(),
        json!(format!("{:?}", kernels::simd::level())),
    );
    let malloc = std::env::var(kernels::alloc::MALLOC_ENV).unwrap_or_else(|_| "reuse".into());
    line.insert("malloc".into(), json!(malloc));
    let candle = std::env::var(kernels::threads::CANDLE_THREADS_ENV).unwrap_or_default();
    line.insert("candle_threads".into(), json!(candle));
    if let Value::Object(extra) = extra {
        line.extend(extra);
    }
    println!("{}", Value::Object(line));
}
