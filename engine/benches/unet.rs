//! CPU benchmark of one UNet evaluation for the SD1.5-shaped UNet (the real SD1.5 config,
//! random weights), batch 1, float32. Prints seconds per evaluation (median) and the process'
//! peak resident memory. `scripts/bench-unet.sh` runs it next to diffusers/PyTorch.
//!
//! `cargo bench -p engine --bench unet -- [SIZE] [RUNS] [--arch sd15|sdxl] [--device cpu|cuda]
//! [--dtype f32|f16|bf16]` (SIZE in pixels, default 256). On CUDA (built with `--features
//! cuda`) the timing synchronises the device; `scripts/gpu-check.sh` runs it at 512² (SD1.5)
//! and 1024² (SDXL) next to diffusers.

use std::time::Instant;

use candle_core::Tensor;
use candle_nn::{VarBuilder, VarMap};
use engine::sd::config::UNetConfig;
use engine::sd::unet::{AddedCond, UNet2DConditionModel};

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

/// The real `stable-diffusion-xl-base-1.0` unet/config.json (the keys that matter).
const SDXL_UNET_CONFIG: &str = r#"{
  "act_fn": "silu", "addition_embed_type": "text_time", "addition_time_embed_dim": 256,
  "attention_head_dim": [5, 10, 20], "block_out_channels": [320, 640, 1280],
  "cross_attention_dim": 2048,
  "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
  "in_channels": 4, "layers_per_block": 2, "norm_num_groups": 32, "out_channels": 4,
  "projection_class_embeddings_input_dim": 2816, "sample_size": 128,
  "transformer_layers_per_block": [1, 2, 10],
  "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
  "use_linear_projection": true
}"#;

fn flag(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

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
    let size: usize = positional
        .first()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256);
    let runs: usize = positional.get(1).and_then(|s| s.parse().ok()).unwrap_or(3);
    let arch = flag(&all, "--arch", "sd15");
    let dev = engine::sd::nodes::parse_device(&flag(&all, "--device", "cpu")).expect("device");
    let dtype =
        engine::sd::nodes::parse_dtype(&flag(&all, "--dtype", "auto"), &dev).expect("dtype");
    let (config, ctx_dim) = if arch == "sdxl" {
        (SDXL_UNET_CONFIG, 2048)
    } else {
        (SD15_UNET_CONFIG, 768)
    };
    let cfg = UNetConfig::from_json_str(config).expect("config");
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, dtype, &dev);
    let unet = UNet2DConditionModel::new(vb, &cfg).expect("unet");
    let lat = size / 8;
    let rand = |shape: &[usize]| {
        Tensor::randn(0f32, 1.0, shape, &dev)
            .and_then(|t| t.to_dtype(dtype))
            .expect("randn")
    };
    let x = rand(&[1, 4, lat, lat]);
    let ctx = rand(&[1, 77, ctx_dim]);
    let s = size as f32;
    let added = (arch == "sdxl").then(|| AddedCond {
        text_embeds: rand(&[1, 1280]),
        time_ids: Tensor::new(&[[s, s, 0.0, 0.0, s, s]], &dev)
            .and_then(|t| t.to_dtype(dtype))
            .expect("time ids"),
    });
    let mut times = Vec::new();
    for _ in 0..runs + 1 {
        let t0 = Instant::now();
        let out = unet
            .forward(&x, 500.0, &ctx, added.as_ref())
            .expect("forward");
        dev.synchronize().expect("sync");
        times.push(t0.elapsed().as_secs_f64());
        assert_eq!(out.dims(), &[1, 4, lat, lat]);
    }
    // The first evaluation warms up (allocations; kernel compilation on CUDA).
    let warmup = times.remove(0);
    times.sort_by(|a, b| a.total_cmp(b));
    let median = times[times.len() / 2];
    println!(
        "{{\"impl\": \"defect-studio\", \"arch\": \"{arch}\", \"device\": \"{dev:?}\", \"dtype\": \"{dtype:?}\", \"size\": {size}, \"seconds\": {median:.3}, \"it_per_s\": {:.3}, \"warmup\": {warmup:.3}, \"all\": {times:?}, \"peak_mib\": {:.0}}}",
        1.0 / median,
        peak_rss_mib()
    );
}
