//! CPU benchmark of one UNet evaluation for the SD1.5-shaped UNet (the real SD1.5 config,
//! random weights), batch 1, float32. Prints one JSON line (common/report.rs): seconds per
//! evaluation (median), every timed run, and the process' peak resident memory.
//! `scripts/bench-cpu.sh` runs it next to diffusers/PyTorch (`scripts/bench_unet_torch.py`).
//!
//! `cargo bench -p engine --bench unet -- [SIZE] [RUNS] [--arch sd15|sdxl] [--device cpu|cuda]
//! [--dtype f32|f16|bf16]` (SIZE in pixels, default 256). On CUDA (built with `--features
//! cuda`) the timing synchronises the device; `scripts/gpu-check.sh` runs it at 512² (SD1.5)
//! and 1024² (SDXL) next to diffusers.

#[path = "common/report.rs"]
mod report;
#[path = "common/sd15.rs"]
#[allow(dead_code)] // only the configurations are used here
mod sd15;

use candle_core::Tensor;
use candle_nn::{VarBuilder, VarMap};
use engine::sd::config::UNetConfig;
use engine::sd::unet::{AddedCond, UNet2DConditionModel};
use serde_json::json;

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

fn main() {
    let args = report::Args::parse();
    let size = args.number(0, 256);
    let runs = args.number(1, 3);
    let arch = args.flag("--arch", "sd15");
    let dev = engine::sd::nodes::parse_device(&args.flag("--device", "cpu")).expect("device");
    let dtype = engine::sd::nodes::parse_dtype(&args.flag("--dtype", "auto"), &dev).expect("dtype");
    let (config, ctx_dim) = if arch == "sdxl" {
        (SDXL_UNET_CONFIG, 2048)
    } else {
        (sd15::UNET, 768)
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
    let (warmup, times) = report::time_runs(runs, || {
        let out = unet
            .forward(&x, 500.0, &ctx, added.as_ref())
            .expect("forward");
        dev.synchronize().expect("sync");
        assert_eq!(out.dims(), &[1, 4, lat, lat]);
    });
    report::print_line(
        "defect-studio",
        "unet",
        size,
        warmup,
        &times,
        json!({"arch": arch, "device": format!("{dev:?}"), "dtype": format!("{dtype:?}")}),
    );
}
