//! CPU benchmark of one UNet evaluation for the SD1.5-shaped UNet (the real SD1.5 config,
//! random weights), batch 1, float32. Prints seconds per evaluation (median) and the process'
//! peak resident memory. `scripts/bench-unet.sh` runs it next to diffusers/PyTorch.
//!
//! `cargo bench -p engine --bench unet -- [SIZE] [RUNS]` (SIZE in pixels, default 256).

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use engine::sd::config::UNetConfig;
use engine::sd::unet::UNet2DConditionModel;

/// The real `stable-diffusion-v1-5` unet/config.json.
const SD15_UNET_CONFIG: &str = r#"{
  "_class_name": "UNet2DConditionModel", "act_fn": "silu",
  "attention_head_dim": 8, "block_out_channels": [320, 640, 1280, 1280],
  "center_input_sample": false, "cross_attention_dim": 768,
  "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
  "downsample_padding": 1, "flip_sin_to_cos": true, "freq_shift": 0, "in_channels": 4,
  "layers_per_block": 2, "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32,
  "out_channels": 4, "sample_size": 64,
  "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]
}"#;

fn peak_rss_mib() -> f64 {
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

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let size: usize = args.first().and_then(|s| s.parse().ok()).unwrap_or(256);
    let runs: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(3);
    let dev = Device::Cpu;
    let cfg = UNetConfig::from_json_str(SD15_UNET_CONFIG).expect("config");
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
    let unet = UNet2DConditionModel::new(vb, &cfg).expect("unet");
    let lat = size / 8;
    let x = Tensor::randn(0f32, 1.0, (1, 4, lat, lat), &dev).expect("x");
    let ctx = Tensor::randn(0f32, 1.0, (1, 77, 768), &dev).expect("ctx");
    let mut times = Vec::new();
    for _ in 0..runs {
        let t0 = Instant::now();
        let out = unet.forward(&x, 500.0, &ctx, None).expect("forward");
        times.push(t0.elapsed().as_secs_f64());
        assert_eq!(out.dims(), &[1, 4, lat, lat]);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{{\"impl\": \"defect-studio\", \"size\": {size}, \"seconds\": {:.3}, \"all\": {times:?}, \"peak_mib\": {:.0}}}",
        times[times.len() / 2],
        peak_rss_mib()
    );
}
