//! EfficientNet-Lite0 speed at 224² on this CPU: milliseconds per forward pass (median) at
//! batch 1 and 8, one JSON line each. Needs the weights (`defect-studio models fetch
//! efficientnet-lite0`, or `DEFECT_STUDIO_LITE0` naming the file). `scripts/bench-lite0.sh`
//! runs this next to the PyTorch reference (`scripts/bench_lite0_torch.py`) and prints the ratio.
//! Arguments: `[runs] [batch...]` (default 10 runs, batches 1 and 8).

use std::time::Instant;

use candle_core::{Device, Tensor};

/// CPU time of this process (all threads), in seconds: on a loaded machine a better measure
/// than wall time (with one thread they agree when the machine is idle).
fn cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

fn main() {
    let path = std::env::var_os("DEFECT_STUDIO_LITE0")
        .map(std::path::PathBuf::from)
        .or_else(engine::models::efficientnet::installed_path);
    let Some(path) = path else {
        println!(
            "lite0 bench: no weights; run `defect-studio models fetch efficientnet-lite0` first"
        );
        return;
    };
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let runs: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(10);
    let batches: Vec<usize> = if args.len() > 1 {
        args[1..].iter().filter_map(|a| a.parse().ok()).collect()
    } else {
        vec![1, 8]
    };
    let net = engine::models::efficientnet::Lite0::load(&path, &Device::Cpu).expect("load");
    for batch in batches {
        let x: Vec<f32> = (0..batch * 3 * 224 * 224)
            .map(|i| ((i * 7 % 251) as f32 - 127.0) / 128.0)
            .collect();
        let x = Tensor::from_vec(x, (batch, 3, 224, 224), &Device::Cpu).expect("input");
        net.forward(&x).expect("warm-up");
        let mut times = Vec::with_capacity(runs);
        let mut cpu = Vec::with_capacity(runs);
        for _ in 0..runs {
            let (t, c) = (Instant::now(), cpu_seconds());
            net.forward(&x).expect("forward");
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            cpu.push((cpu_seconds() - c) * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        cpu.sort_by(f64::total_cmp);
        println!(
            "{{\"impl\": \"candle\", \"batch\": {batch}, \"ms\": {:.2}, \"cpu_ms\": {:.2}, \"runs\": {runs}, \"threads\": {}}}",
            times[runs / 2],
            cpu[runs / 2],
            candle_core::utils::get_num_threads()
        );
    }
}
