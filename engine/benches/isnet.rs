//! ISNet speed: one 1024² forward pass on this CPU (release build), batch 1, float32. Prints one
//! JSON line (common/report.rs); `scripts/bench-cpu.sh` runs it next to onnxruntime on the same
//! ONNX graph (`scripts/bench_isnet_ort.py`).
//!
//! Needs the weights: `defect-studio models fetch isnet`, or set `DEFECT_STUDIO_ISNET` to the
//! file. Looked up in that order: `DEFECT_STUDIO_ISNET`, the model folders
//! (`ModelManager::default_dirs`), then `~/.cache/defect-studio/models` (where the ISNet tests
//! install them).
//!
//! `cargo bench -p engine --bench isnet -- [RUNS]` (default 3).

#[path = "common/report.rs"]
mod report;

use std::path::PathBuf;

use engine::models::isnet::INPUT_SIZE as SIZE;
use serde_json::json;

fn weights() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("DEFECT_STUDIO_ISNET") {
        return Some(PathBuf::from(p));
    }
    engine::models::manager::ModelManager::default_dirs()
        .find_by_name("isnet-medium")
        .or_else(|| {
            let p = PathBuf::from(std::env::var_os("HOME")?)
                .join(".cache/defect-studio/models/isnet-medium.safetensors");
            p.is_file().then_some(p)
        })
}

fn main() {
    let args = report::Args::parse();
    let runs = args.number(0, 3);
    let Some(path) = weights() else {
        eprintln!(
            "isnet bench: no weights; run `defect-studio models fetch isnet` first (or set DEFECT_STUDIO_ISNET)"
        );
        return;
    };
    let net = engine::models::background::load_isnet_file(&path)
        .unwrap_or_else(|e| panic!("cannot load {}: {e}", path.display()));
    // The same synthetic photo as scripts/bench_isnet_ort.py.
    let rgb: Vec<u8> = (0..SIZE * SIZE * 3).map(|i| (i * 7 % 251) as u8).collect();
    let x = engine::models::isnet::IsNet::preprocess(&rgb, SIZE as u32, SIZE as u32, net.device())
        .expect("preprocess");
    let (warmup, times) = report::time_runs(runs, || {
        net.forward(&x).expect("forward");
    });
    report::print_line(
        "defect-studio",
        "isnet",
        SIZE,
        warmup,
        &times,
        json!({"device": "Cpu", "dtype": "F32", "weights": path.display().to_string()}),
    );
}
