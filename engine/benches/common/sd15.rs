//! Shared by the benches: an SD1.5-shaped diffusers folder (the real SD1.5 UNet, VAE and
//! CLIP-L configurations) with random weights stored in f16, written to a temporary folder; the
//! UNet and VAE configurations are also what the `unet` and `vae` benches build.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use engine::sd::clip::text_model::{ClipTextConfig, ClipTextModel};
use engine::sd::config::{UNetConfig, VaeConfig};
use engine::sd::unet::UNet2DConditionModel;
use engine::sd::vae::AutoencoderKL;

/// The real `stable-diffusion-v1-5` unet/config.json.
pub const UNET: &str = r#"{"act_fn": "silu", "attention_head_dim": 8, "block_out_channels": [320, 640, 1280, 1280],
  "center_input_sample": false, "cross_attention_dim": 768,
  "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
  "downsample_padding": 1, "flip_sin_to_cos": true, "freq_shift": 0, "in_channels": 4,
  "layers_per_block": 2, "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32,
  "out_channels": 4, "sample_size": 64,
  "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]}"#;
/// The real `stable-diffusion-v1-5` vae/config.json.
pub const VAE: &str = r#"{"act_fn": "silu", "block_out_channels": [128, 256, 512, 512],
  "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
  "in_channels": 3, "latent_channels": 4, "layers_per_block": 2, "norm_num_groups": 32,
  "out_channels": 3, "sample_size": 512, "scaling_factor": 0.18215,
  "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"]}"#;
const CLIP: &str = r#"{"vocab_size": 49408, "hidden_size": 768, "intermediate_size": 3072,
  "num_hidden_layers": 12, "num_attention_heads": 12, "max_position_embeddings": 77,
  "hidden_act": "quick_gelu", "layer_norm_eps": 1e-05, "bos_token_id": 49406,
  "eos_token_id": 49407, "pad_token_id": 49407, "projection_dim": 768}"#;
const SCHED: &str = r#"{"_class_name": "PNDMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear",
  "beta_start": 0.00085, "num_train_timesteps": 1000, "set_alpha_to_one": false,
  "skip_prk_steps": true, "steps_offset": 1, "clip_sample": false}"#;

fn save_f16(vm: &VarMap, path: &Path) {
    let data = vm.data().lock().expect("varmap");
    let tensors: HashMap<String, Tensor> = data
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().to_dtype(DType::F16).expect("f16")))
        .collect();
    candle_core::safetensors::save(&tensors, path).expect("save");
}

fn component(dir: &Path, sub: &str, file: &str, config: &str, build: impl Fn(VarBuilder)) {
    let d = dir.join(sub);
    std::fs::create_dir_all(&d).expect("dir");
    std::fs::write(d.join("config.json"), config).expect("config");
    let vm = VarMap::new();
    build(VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu));
    save_f16(&vm, &d.join(file));
}

/// Writes the checkpoint into a new temporary folder and returns it.
pub fn write_sd15_checkpoint(tag: &str) -> PathBuf {
    let tmp = std::env::temp_dir().join(format!("ds-{tag}-bench-{}", std::process::id()));
    let t = Instant::now();
    let unet_cfg = UNetConfig::from_json_str(UNET).expect("unet cfg");
    component(
        &tmp,
        "unet",
        "diffusion_pytorch_model.safetensors",
        UNET,
        |vb| {
            UNet2DConditionModel::new(vb, &unet_cfg).expect("unet");
        },
    );
    let vae_cfg = VaeConfig::from_json_str(VAE).expect("vae cfg");
    component(
        &tmp,
        "vae",
        "diffusion_pytorch_model.safetensors",
        VAE,
        |vb| {
            AutoencoderKL::new(vb, &vae_cfg).expect("vae");
        },
    );
    let clip_cfg: ClipTextConfig = serde_json::from_str(CLIP).expect("clip cfg");
    component(&tmp, "text_encoder", "model.safetensors", CLIP, |vb| {
        ClipTextModel::new(vb, &clip_cfg, false).expect("clip");
    });
    std::fs::create_dir_all(tmp.join("scheduler")).expect("dir");
    std::fs::write(tmp.join("scheduler/scheduler_config.json"), SCHED).expect("sched");
    eprintln!(
        "wrote the SD1.5-shaped checkpoint in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    tmp
}
