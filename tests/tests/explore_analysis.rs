//! The explorer's analysis through the CLI with the real EfficientNet-Lite0 weights: features
//! of imported photos and generated outputs, ImageNet tags, the analysis download, planted
//! near-duplicates found, coverage (a set against itself scores 1 and 1), and export of a
//! query's items as a dataset. The weights come from `models fetch efficientnet-lite0`'s own
//! install (cached under `~/.cache/defect-studio`, as `tests/tests/lite0.rs` does); with `CI` set
//! nothing skips.

mod common;

use std::path::{Path, PathBuf};

use common::*;

fn photo(name: &str) -> PathBuf {
    repo().join("tests/fixtures/explore/lite0").join(name)
}

/// Imports three real photos plus two near-copies of one (re-encoded as JPEG, brightened by 2).
fn import_photos(env: &Env, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for n in ["chelsea_224.png", "coffee_224.png", "astronaut_224.png"] {
        std::fs::copy(photo(n), dir.join(n)).unwrap();
    }
    let cat = image::open(photo("chelsea_224.png")).unwrap().to_rgb8();
    cat.save_with_format(dir.join("chelsea_copy.jpg"), image::ImageFormat::Jpeg)
        .unwrap();
    let mut bright = cat.clone();
    for p in bright.pixels_mut() {
        for c in p.0.iter_mut() {
            *c = c.saturating_add(2);
        }
    }
    bright.save(dir.join("chelsea_bright.png")).unwrap();
    let o = env.run(&[
        "dataset",
        "import",
        dir.to_str().unwrap(),
        "--name",
        "photos",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn explore_duplicates_coverage_and_export_with_the_real_network() {
    let Some(models) = lite0_models_dir() else {
        return;
    };
    let env = Env::new();
    let run = |args: &[&str]| {
        let o = env
            .cmd()
            .env("DEFECT_STUDIO_MODEL_DIRS", &models)
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        o
    };
    import_photos(&env, &env.dir.path().join("photos"));
    let out = env.out();
    let o = run(&[
        "run",
        example("scratches-on-brushed-metal.json").to_str().unwrap(),
        "--count",
        "4",
        "--out",
        out.to_str().unwrap(),
    ]);
    drop(o);

    // Features, a map and the download over every item.
    let dl = env.dir.path().join("analysis");
    let o = run(&[
        "explore",
        "--out",
        dl.to_str().unwrap(),
        "--map",
        "pca",
        "--json",
    ]);
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let n = summary["items"].as_u64().unwrap() as usize;
    assert!(n >= 9, "5 photos and at least 4 outputs: {summary}");
    let mut csv = csv::Reader::from_path(dl.join("analysis.csv")).unwrap();
    assert_eq!(csv.records().count(), n);
    let npy = npyz::NpyFile::new(std::fs::File::open(dl.join("embeddings.npy")).unwrap()).unwrap();
    assert_eq!(npy.shape(), &[n as u64, 1280]);

    // The top-5 ImageNet classes are tags: the cat photo (and its copies) are Egyptian cats.
    let o = run(&[
        "query",
        "imagenet:\"Egyptian cat\" AND dataset:photos",
        "--json",
    ]);
    let cats: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<String> = cats.iter().map(|c| c.to_string()).collect();
    assert!(names.iter().any(|c| c.contains("chelsea_224")), "{names:?}");

    // The planted near-copies are grouped with the original, and nothing else joins them.
    let o = run(&[
        "duplicates",
        "--query",
        "dataset:photos",
        "--threshold",
        "0.05",
        "--json",
    ]);
    let groups: Vec<Vec<u64>> = serde_json::from_slice(&o.stdout).unwrap();
    let o = run(&["query", "dataset:photos", "--json"]);
    let items: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    let id_of = |file: &str| {
        items
            .iter()
            .find(|i| i.to_string().contains(file))
            .and_then(|i| i["id"].as_u64())
            .unwrap()
    };
    let mut want = vec![
        id_of("chelsea_224"),
        id_of("chelsea_copy"),
        id_of("chelsea_bright"),
    ];
    want.sort();
    assert_eq!(groups, vec![want], "near-duplicate groups");

    // Coverage: a set against itself, and the photos by the generated outputs.
    let o = run(&[
        "coverage",
        "--real",
        "dataset:photos",
        "--synthetic",
        "dataset:photos",
        "--json",
    ]);
    let same: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (same["precision"].as_f64(), same["recall"].as_f64()),
        (Some(1.0), Some(1.0))
    );
    let o = run(&[
        "coverage",
        "--real",
        "dataset:photos",
        "--synthetic",
        "source:generated",
        "--json",
    ]);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["real"], 5);
    // Brushed metal covers none of the cat, coffee and astronaut photos.
    assert_eq!(r["recall"].as_f64(), Some(0.0), "{r}");
    assert_eq!(r["uncovered"].as_array().unwrap().len(), 5);
    assert!(r["kid"].as_f64().unwrap() > same["kid"].as_f64().unwrap());

    // Export the generated items of a query as COCO.
    let coco = env.dir.path().join("coco");
    run(&[
        "query",
        "source:generated",
        "--export",
        coco.to_str().unwrap(),
        "--format",
        "coco",
    ]);
    let ann: serde_json::Value =
        serde_json::from_slice(&std::fs::read(coco.join("annotations.json")).unwrap()).unwrap();
    assert!(ann["images"].as_array().unwrap().len() >= 4);
}

#[test]
fn without_the_weights_explore_says_how_to_get_them() {
    let env = Env::new();
    let empty = env.dir.path().join("no-models");
    std::fs::create_dir_all(&empty).unwrap();
    let o = env
        .cmd()
        .env("DEFECT_STUDIO_MODEL_DIRS", &empty)
        .args([
            "explore",
            "--out",
            env.dir.path().join("a").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_clean_failure(&o, &["not installed", "models fetch efficientnet-lite0"]);
}
