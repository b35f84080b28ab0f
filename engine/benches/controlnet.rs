//! CPU benchmark of what a ControlNet adds to one UNet evaluation: the SD1.5-shaped UNet (the
//! real SD1.5 config, random weights) alone, then ControlNet (the real
//! `control_v11p_sd15_canny` config, random weights) + the UNet with its residuals, batch 1,
//! float32. Prints one JSON line (common/report.rs): `seconds` is the median of ControlNet +
//! UNet, `unet_seconds` the median of the UNet alone, `added_seconds` their difference, `all`
//! and `unet_all` every timed run. `scripts/bench-cpu.sh` (measurement `controlnet:SIZE`) runs it
//! next to diffusers (`scripts/bench_controlnet_torch.py`).
//!
//! `cargo bench -p engine --bench controlnet -- [SIZE] [RUNS] [--device cpu|cuda] [--dtype
//! f32|f16|bf16]` (SIZE in pixels, default 256).

#[path = "common/report.rs"]
mod report;
#[path = "common/sd15.rs"]
#[allow(dead_code)] // only the UNet configuration is used here
mod sd15;

use candle_core::Tensor;
use candle_nn::{VarBuilder, VarMap};
use engine::sd::config::UNetConfig;
use engine::sd::controlnet::{ControlNetConfig, ControlNetModel};
use engine::sd::unet::UNet2DConditionModel;
use serde_json::json;

/// The real `lllyasviel/control_v11p_sd15_canny` config.json (diffusers' ControlNetModel).
const CONTROLNET: &str = r#"{"_class_name": "ControlNetModel", "act_fn": "silu",
  "attention_head_dim": 8, "block_out_channels": [320, 640, 1280, 1280],
  "class_embed_type": null, "conditioning_embedding_out_channels": [16, 32, 96, 256],
  "controlnet_conditioning_channel_order": "rgb", "cross_attention_dim": 768,
  "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
  "downsample_padding": 1, "flip_sin_to_cos": true, "freq_shift": 0, "in_channels": 4,
  "layers_per_block": 2, "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32,
  "num_class_embeds": null, "only_cross_attention": false,
  "projection_class_embeddings_input_dim": null, "resnet_time_scale_shift": "default",
  "upcast_attention": false, "use_linear_projection": false}"#;

fn main() {
    let args = report::Args::parse();
    let size = args.number(0, 256);
    let runs = args.number(1, 3);
    let dev = engine::sd::nodes::parse_device(&args.flag("--device", "cpu")).expect("device");
    let dtype = engine::sd::nodes::parse_dtype(&args.flag("--dtype", "auto"), &dev).expect("dtype");
    let unet_cfg = UNetConfig::from_json_str(sd15::UNET).expect("unet config");
    let cn_cfg: ControlNetConfig = serde_json::from_str(CONTROLNET).expect("controlnet config");
    let varmap = VarMap::new();
    let unet = UNet2DConditionModel::new(VarBuilder::from_varmap(&varmap, dtype, &dev), &unet_cfg)
        .expect("unet");
    let cn_map = VarMap::new();
    let controlnet = ControlNetModel::new(VarBuilder::from_varmap(&cn_map, dtype, &dev), &cn_cfg)
        .expect("controlnet");
    let lat = size / 8;
    let rand = |shape: &[usize]| {
        Tensor::randn(0f32, 1.0, shape, &dev)
            .and_then(|t| t.to_dtype(dtype))
            .expect("randn")
    };
    let x = rand(&[1, 4, lat, lat]);
    let ctx = rand(&[1, 77, 768]);
    // A control image in 0..1, as the pipelines prepare it.
    let cond = Tensor::rand(0f32, 1.0, &[1, 3, size, size], &dev)
        .and_then(|t| t.to_dtype(dtype))
        .expect("rand");

    let (unet_warmup, unet_times) = report::time_runs(runs, || {
        let out = unet.forward(&x, 500.0, &ctx, None).expect("unet");
        dev.synchronize().expect("sync");
        assert_eq!(out.dims(), &[1, 4, lat, lat]);
    });
    let (warmup, times) = report::time_runs(runs, || {
        let res = controlnet
            .forward(&x, 500.0, &ctx, None, &cond, 1.0, false)
            .expect("controlnet");
        let out = unet
            .forward_with_control(&x, 500.0, &ctx, None, Some(&res))
            .expect("unet with control");
        dev.synchronize().expect("sync");
        assert_eq!(out.dims(), &[1, 4, lat, lat]);
    });
    let (unet_s, both_s) = (report::median(&unet_times), report::median(&times));
    report::print_line(
        "defect-studio",
        "controlnet",
        size,
        warmup,
        &times,
        json!({
            "arch": "sd15",
            "device": format!("{dev:?}"),
            "dtype": format!("{dtype:?}"),
            "unet_seconds": unet_s,
            "unet_all": unet_times,
            "unet_warmup": unet_warmup,
            "added_seconds": both_s - unet_s,
        }),
    );
}
