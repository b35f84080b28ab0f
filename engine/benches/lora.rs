//! LoRA switching versus a cold load, on an SD1.5-shaped checkpoint (the real SD1.5 UNet, VAE
//! and CLIP-L configurations, random f16 weights written as a diffusers folder in a temporary
//! directory) with a random kohya LoRA of rank 16 on every attention projection of the UNet and
//! the text encoder.
//!
//! Prints: the cold load (read + build the modules), the first merge of the LoRA, and the
//! re-merge after changing its weight (what the LoraLoader node does when a strength changes).
//! `cargo bench -p engine --bench lora`

#[path = "common/sd15.rs"]
mod sd15;

use std::collections::HashMap;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use engine::sd::lora::{apply, LoraSpec};
use engine::sd::model::{load, LoadOptions};

fn main() {
    let tmp = sd15::write_sd15_checkpoint("lora");
    let dev = Device::Cpu;

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
