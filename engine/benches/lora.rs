//! LoRA switching versus a cold load, on an SD1.5-shaped checkpoint (the real SD1.5 UNet, VAE
//! and CLIP-L configurations, random f16 weights written as a diffusers folder in a temporary
//! directory) with a random kohya LoRA of rank 16 on every attention projection of the UNet and
//! the text encoder.
//!
//! Prints: the cold load (read + build the modules), the first merge of the LoRA, and the
//! re-merge after changing its weight (what the LoraLoader node does when a strength changes).
//! `cargo bench -p engine --bench lora`

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use engine::sd::clip::text_model::{ClipTextConfig, ClipTextModel};
use engine::sd::config::{UNetConfig, VaeConfig};
use engine::sd::lora::{apply, LoraSpec};
use engine::sd::model::{load, LoadOptions};
use engine::sd::unet::UNet2DConditionModel;
use engine::sd::vae::AutoencoderKL;

const UNET: &str = r#"{"act_fn": "silu", "attention_head_dim": 8, "block_out_channels": [320, 640, 1280, 1280],
  "center_input_sample": false, "cross_attention_dim": 768,
  "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
  "downsample_padding": 1, "flip_sin_to_cos": true, "freq_shift": 0, "in_channels": 4,
  "layers_per_block": 2, "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32,
  "out_channels": 4, "sample_size": 64,
  "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]}"#;
const VAE: &str = r#"{"act_fn": "silu", "block_out_channels": [128, 256, 512, 512],
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

fn main() {
    let tmp = std::env::temp_dir().join(format!("ds-lora-bench-{}", std::process::id()));
    let dev = Device::Cpu;
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

    // As a user on the CPU: an f16 checkpoint file, run in f32 (the CPU default).
    let opts = LoadOptions::default();
    let t = Instant::now();
    let model = load(&tmp, &opts).expect("load");
    let cold = t.elapsed().as_secs_f64();

    // A random kohya LoRA, rank 16, alpha 8, on every attention projection.
    let rank = 16;
    let mut lora = HashMap::new();
    let mut targets = Vec::new();
    for (prefix, map) in [
        ("lora_unet", &model.weights.unet),
        ("lora_te", &model.weights.text_encoder),
    ] {
        for (k, w) in map.iter() {
            let attn = [".to_q.", ".to_k.", ".to_v.", ".to_out.0.", "_proj."]
                .iter()
                .any(|p| k.contains(p));
            if attn && k.ends_with(".weight") && w.rank() == 2 {
                let m = k.trim_end_matches(".weight");
                let m = if prefix == "lora_te" && !m.starts_with("text_model.") {
                    format!("text_model.{m}")
                } else {
                    m.to_string()
                };
                let name = format!("{prefix}_{}", m.replace('.', "_"));
                let (o, i) = w.dims2().expect("2-d");
                let down = (Tensor::randn(0f32, 1.0, (rank, i), &dev).expect("randn") * 0.01)
                    .expect("mul");
                let up = (Tensor::randn(0f32, 1.0, (o, rank), &dev).expect("randn") * 0.01)
                    .expect("mul");
                lora.insert(
                    format!("{name}.lora_down.weight"),
                    down.to_dtype(DType::F16).expect("f16"),
                );
                lora.insert(
                    format!("{name}.lora_up.weight"),
                    up.to_dtype(DType::F16).expect("f16"),
                );
                lora.insert(
                    format!("{name}.alpha"),
                    Tensor::new(8f32, &dev).expect("alpha"),
                );
                targets.push(name);
            }
        }
    }
    let lora_path = tmp.join("lora.safetensors");
    candle_core::safetensors::save(&lora, &lora_path).expect("save lora");

    let spec = |w: f64| LoraSpec {
        path: lora_path.clone(),
        unet: w,
        text: w,
    };
    let t = Instant::now();
    let (_, reports) = apply(&model, &[spec(0.8)]).expect("apply");
    let first = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let (_, _) = apply(&model, &[spec(0.5)]).expect("apply");
    let switch = t.elapsed().as_secs_f64();
    println!(
        "{{\"modules\": {}, \"unet_modules\": {}, \"text_modules\": {}, \"cold_load_s\": {cold:.2}, \"first_merge_s\": {first:.2}, \"switch_weight_s\": {switch:.2}, \"ratio_cold_over_switch\": {:.1}}}",
        targets.len(),
        reports[0].unet_modules,
        reports[0].text_modules,
        cold / switch
    );
    let _ = std::fs::remove_dir_all(&tmp);
}
