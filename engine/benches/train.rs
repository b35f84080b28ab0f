//! LoRA training speed on an SD1.5-shaped checkpoint (real configs, random weights) at 256²:
//! optimizer steps per second on this machine, batch 1, rank 8, attention targets, f32.
//! `cargo bench -p engine --bench train -- [STEPS]`

#[path = "common/sd15.rs"]
mod sd15;

use std::time::Instant;

use engine::sd::model::{load, LoadOptions};
use engine::sd::train::{LoraTrainer, TrainConfig};

fn main() {
    let steps: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3);
    let tmp = sd15::write_sd15_checkpoint("train");
    let data = tmp.join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    for i in 0..2u8 {
        let img = image::RgbImage::from_fn(256, 256, |x, y| {
            image::Rgb([(x as u8).wrapping_mul(i + 1), y as u8, 128])
        });
        img.save(data.join(format!("img{i}.png"))).expect("image");
        std::fs::write(data.join(format!("img{i}.txt")), "a scratch on metal").expect("caption");
    }
    let model = load(&tmp, &LoadOptions::default()).expect("load");
    let cfg = TrainConfig {
        steps,
        resolution: 256,
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
        "{{\"arch\": \"sd15\", \"size\": 256, \"prepare_s\": {prep:.1}, \"step_s\": {times:?}, \"steps_per_s\": {:.4}}}",
        1.0 / mean
    );
    let _ = std::fs::remove_dir_all(&tmp);
}
