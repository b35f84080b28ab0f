//! Defect node throughput: images per second for every defect node at 512×512 through the
//! executor (the base texture is cached; each iteration draws a new defect with a new seed),
//! and the PatchMatch Cleanup node. Also writes a contact sheet of every defect with its mask
//! to `target/defect-contact-sheet.png` (the README's picture).
//! Run with `cargo bench -p engine --bench defects`.

use std::path::Path;
use std::time::Instant;

use engine::contact::{contact_sheet, Cell};
use engine::exec::{CancelToken, Executor, RunRequest};
use nodes::GraphDoc;

fn graph(kind: &str, material: &str, seed: u64) -> GraphDoc {
    GraphDoc::from_json(&format!(
        r#"{{"format": "defect-studio/graph", "version": 1,
            "nodes": {{"tex": {{"kind": "Texture", "version": 1, "params": {{"material": "{material}", "seed": {{"mode": "fixed", "value": 7}}}}}},
                       "d": {{"kind": "{kind}", "version": 1, "params": {{"seed": {{"mode": "fixed", "value": {seed}}}}}}}}},
            "links": [{{"from": ["tex", "image"], "to": ["d", "image"]}}]}}"#
    ))
    .expect("graph")
}

fn main() {
    let kinds = [
        ("Scratch", "brushed_metal"),
        ("Crack", "concrete"),
        ("Dent", "brushed_metal"),
        ("Stain", "fabric"),
        ("Chip", "painted_surface"),
        ("DraemAnomaly", "wood_grain"),
        ("CutPaste", "fabric"),
        ("CutPasteScar", "wood_grain"),
        ("NsaPatch", "concrete"),
    ];
    let mut exec = Executor::builtin();
    let mut cells = Vec::new();
    println!(
        "defect nodes, 512×512, through the executor ({}):",
        if cfg!(debug_assertions) {
            "debug build"
        } else {
            "release build"
        }
    );
    for (kind, material) in kinds {
        let n = 20;
        // Warm the texture cache.
        let g = graph(kind, material, 0);
        let req = RunRequest {
            doc: &g,
            targets: Some(vec!["d".into()]),
            run_seed: 0,
            base_dir: Path::new("."),
        };
        exec.run(&req, None, &|_| {}, &CancelToken::new())
            .expect("warm-up");
        let t = Instant::now();
        for seed in 1..=n {
            let g = graph(kind, material, seed);
            let req = RunRequest {
                doc: &g,
                targets: Some(vec!["d".into()]),
                run_seed: 0,
                base_dir: Path::new("."),
            };
            let o = exec
                .run(&req, None, &|_| {}, &CancelToken::new())
                .expect("run");
            if seed == 1 {
                let out = &o.outputs["d"];
                let image = out["image"]
                    .as_image()
                    .map(|i| (**i).clone())
                    .expect("image");
                let mask = out["mask"].as_mask().map(|m| (**m).clone());
                cells.push(Cell {
                    image,
                    mask,
                    label: format!("{kind} on {material}"),
                });
            }
        }
        let s = t.elapsed().as_secs_f64();
        println!(
            "  {kind:<14} {:>7.1} images/s  ({:.1} ms each)",
            n as f64 / s,
            s / n as f64 * 1e3
        );
    }
    // Cleanup: remove a 64×64 blob from a 512×512 texture.
    let g = GraphDoc::from_json(
        r#"{"format": "defect-studio/graph", "version": 1,
            "nodes": {"tex": {"kind": "Texture", "version": 1, "params": {"material": "concrete"}},
                      "hole": {"kind": "ShapeMask", "version": 1, "params": {"size_x": 64.0, "size_y": 64.0}},
                      "clean": {"kind": "Cleanup", "version": 1}},
            "links": [{"from": ["tex", "image"], "to": ["clean", "image"]}, {"from": ["hole", "mask"], "to": ["clean", "mask"]}]}"#,
    )
    .expect("graph");
    let t = Instant::now();
    let req = RunRequest {
        doc: &g,
        targets: Some(vec!["clean".into()]),
        run_seed: 0,
        base_dir: Path::new("."),
    };
    exec.run(&req, None, &|_| {}, &CancelToken::new())
        .expect("cleanup");
    println!(
        "  Cleanup (PatchMatch, 64×64 hole, texture included) {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let sheet = contact_sheet(&cells, 3, 256);
    let png = engine::codec::encode_image_png(&sheet, &[]).expect("png");
    let out = manifest_dir().join("../target/defect-contact-sheet.png");
    if std::fs::write(&out, png).is_ok() {
        println!("contact sheet: {}", out.display());
    }
}

/// This package's folder, read when the test runs: a test binary reused from another checkout
/// that shared the target folder would otherwise read that checkout's files.
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}
