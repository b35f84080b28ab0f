//! LoRA training speed on an SD1.5-shaped checkpoint (real configs, random weights): optimizer
//! steps per second, batch 1, rank 8, attention targets.
//! `cargo bench -p engine --bench train -- [STEPS] [--size 256] [--device cpu|cuda] [--dtype auto|f32|f16]`
//! (CUDA needs `--features cuda`; `scripts/gpu-check.sh` samples the GPU memory beside it).

#[path = "common/sd15.rs"]
mod sd15;

use std::time::Instant;

use engine::sd::model::{load, LoadOptions};
use engine::sd::train::{LoraTrainer, TrainConfig};

/// Peak resident memory of this process (`VmHWM`), in MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn main() {
    let all: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str, default: &str| {
        all.iter()
            .position(|a| a == name)
            .and_then(|i| all.get(i + 1))
            .cloned()
            .unwrap_or_else(|| default.to_string())
    };
    let steps: usize = all
        .iter()
        .enumerate()
        .filter(|(i, _)| *i == 0 || all[i - 1] == "--bench" || !all[i - 1].starts_with("--"))
        .find_map(|(_, a)| a.parse().ok())
        .unwrap_or(3);
    let size: u32 = flag("--size", "256").parse().expect("--size");
    let device = engine::sd::nodes::parse_device(&flag("--device", "cpu")).expect("device");
    let dtype = engine::sd::nodes::parse_dtype(&flag("--dtype", "auto"), &device).expect("dtype");
    let tmp = sd15::write_sd15_checkpoint("train");
    let data = tmp.join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    for i in 0..2u8 {
        let img = image::RgbImage::from_fn(size, size, |x, y| {
            image::Rgb([(x as u8).wrapping_mul(i + 1), y as u8, 128])
        });
        img.save(data.join(format!("img{i}.png"))).expect("image");
        std::fs::write(data.join(format!("img{i}.txt")), "a scratch on metal").expect("caption");
    }
    let opts = LoadOptions {
        device: device.clone(),
        dtype,
        ..LoadOptions::default()
    };
    // Reset the peak-RSS mark (Linux `clear_refs` 5): the peak reported below is loading plus
    // training, not writing the random checkpoint.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let model = load(&tmp, &opts).expect("load");
    let cfg = TrainConfig {
        steps,
        resolution: size,
        ..TrainConfig::default()
    };
    let t = Instant::now();
    let mut trainer = LoraTrainer::new(&model, cfg, &data).expect("trainer");
    let prep = t.elapsed().as_secs_f64();
    let mut times = Vec::new();
    for _ in 0..steps {
        let t = Instant::now();
        trainer.train_step().expect("step");
        times.push(t.elapsed().as_secs_f64());
    }
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    println!(
        "{{\"arch\": \"sd15\", \"size\": {size}, \"device\": \"{device:?}\", \"dtype\": \"{dtype:?}\", \"prepare_s\": {prep:.1}, \"step_s\": {times:?}, \"steps_per_s\": {:.4}, \"peak_rss_mib\": {:.0}}}",
        1.0 / mean,
        peak_rss_mib()
    );
    let _ = std::fs::remove_dir_all(&tmp);
}
