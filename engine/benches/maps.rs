//! t-SNE and UMAP speed on 10,000 × 1,280 (issue 19: ≤ 60 s each, ≤ 1.5× scikit-learn's TSNE
//! and umap-learn). Reads the data file that `scripts/bench_maps_sklearn.py --write` makes (a
//! seeded Gaussian mixture) from `MAPS_BENCH_DATA`; `scripts/bench-maps.sh` runs both sides.
//! Prints one JSON line per measurement, with the trustworthiness (k = 10) of each map on a
//! 2,000-row sample so a fast but useless map would show.

use std::time::Instant;

use engine::analysis::{self, TsneParams, UmapParams};

const N: usize = 10_000;
const D: usize = 1_280;

fn main() {
    let Some(path) = std::env::var_os("MAPS_BENCH_DATA") else {
        println!("maps bench: set MAPS_BENCH_DATA (see scripts/bench-maps.sh)");
        return;
    };
    let bytes = std::fs::read(&path).expect("read MAPS_BENCH_DATA");
    let data: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(data.len(), N * D, "expected {N} x {D} f32 values");
    let sample = 2_000;
    let quality = |y: &[f32]| {
        analysis::trustworthiness(&data[..sample * D], &y[..sample * 2], sample, D, 2, 10)
            .expect("trustworthiness")
    };
    let t = Instant::now();
    let p = analysis::pca(&data, N, D, 50).expect("pca");
    let pca_s = t.elapsed().as_secs_f64();
    drop(p);
    println!("{{\"impl\": \"ours PCA-50\", \"seconds\": {pca_s:.2}}}");
    let t = Instant::now();
    let y = analysis::tsne(&data, N, D, &TsneParams::default()).expect("tsne");
    let s = t.elapsed().as_secs_f64();
    println!(
        "{{\"impl\": \"ours t-SNE (PCA-50 + Barnes-Hut)\", \"seconds\": {s:.2}, \"trust_sample\": {:.4}}}",
        quality(&y)
    );
    let t = Instant::now();
    let y = analysis::umap(&data, N, D, &UmapParams::default()).expect("umap");
    let s = t.elapsed().as_secs_f64();
    println!(
        "{{\"impl\": \"ours UMAP (PCA-50 + exact k-NN)\", \"seconds\": {s:.2}, \"trust_sample\": {:.4}}}",
        quality(&y)
    );
}
