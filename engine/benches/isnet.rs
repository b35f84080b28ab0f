//! ISNet speed: seconds per 1024² forward pass on this CPU (release build). Needs the weights:
//! `defect-studio models fetch isnet` (or set `DEFECT_STUDIO_ISNET` to the file). The
//! onnxruntime figure for comparison comes from `tests/fixtures/isnet/make_isnet_fixtures.py --time 3`.
//! Run with `cargo bench -p engine --bench isnet`.

use std::time::Instant;

fn main() {
    let path = std::env::var_os("DEFECT_STUDIO_ISNET")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            engine::models::manager::ModelManager::default_dirs().find_by_name("isnet-medium")
        });
    let Some(path) = path else {
        println!("isnet bench: no weights; run `defect-studio models fetch isnet` first");
        return;
    };
    let net = engine::models::background::load_isnet_file(&path).expect("load");
    let rgb: Vec<u8> = (0..1024 * 1024 * 3).map(|i| (i * 7 % 251) as u8).collect();
    let x = engine::models::isnet::IsNet::preprocess(&rgb, 1024, 1024, net.device())
        .expect("preprocess");
    net.forward(&x).expect("warm-up");
    let runs = 3;
    let t = Instant::now();
    for _ in 0..runs {
        net.forward(&x).expect("forward");
    }
    println!(
        "ISNet 1024² forward on CPU: {:.2} s per image ({runs} runs)",
        t.elapsed().as_secs_f64() / runs as f64
    );
}
