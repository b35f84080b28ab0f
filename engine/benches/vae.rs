//! CPU benchmark of one VAE decode with the real SD1.5 VAE configuration (`AutoencoderKL`,
//! block_out_channels [128, 256, 512, 512], 2 layers per block; random weights), batch 1,
//! float32: latents 4×(SIZE/8)² to a SIZE² image, decode only (no tiling). Prints one JSON line
//! (common/report.rs). `scripts/bench-cpu.sh` runs it next to diffusers/PyTorch
//! (`scripts/bench_vae_torch.py`).
//!
//! `cargo bench -p engine --bench vae -- [SIZE] [RUNS]` (SIZE in pixels, default 512).

#[path = "common/report.rs"]
mod report;
#[path = "common/sd15.rs"]
#[allow(dead_code)] // only the configurations are used here
mod sd15;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use engine::sd::config::VaeConfig;
use engine::sd::vae::AutoencoderKL;
use serde_json::json;

fn main() {
    let args = report::Args::parse();
    let size = args.number(0, 512);
    let runs = args.number(1, 3);
    assert!(
        size >= 8 && size % 8 == 0,
        "SIZE must be a positive multiple of 8, got {size}"
    );
    let dev = Device::Cpu;
    let cfg = VaeConfig::from_json_str(sd15::VAE).expect("config");
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
    let vae = AutoencoderKL::new(vb, &cfg).expect("vae");
    let lat = size / 8;
    let z = Tensor::randn(0f32, 1.0, (1, cfg.latent_channels, lat, lat), &dev).expect("randn");
    let (warmup, times) = report::time_runs(runs, || {
        let img = vae.decode(&z).expect("decode");
        assert_eq!(img.dims(), &[1, cfg.out_channels, size, size]);
    });
    report::print_line(
        "defect-studio",
        "vae-decode",
        size,
        warmup,
        &times,
        json!({"device": "Cpu", "dtype": "F32"}),
    );
}
