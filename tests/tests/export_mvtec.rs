//! The clean image of each work item, from a recipe's SaveImage/ExportDataset `clean` input to
//! the MVTec and anomalib-folder datasets, through the CLI.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;

fn rgba(path: &Path) -> (u32, u32, Vec<u8>) {
    let img = image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgba8();
    (img.width(), img.height(), img.into_raw())
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn manifest(dir: &Path) -> Vec<serde_json::Value> {
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    m["items"].as_array().unwrap().clone()
}

/// `dir/name.png` → `dir/name_clean.png`.
fn clean_of(p: &Path) -> PathBuf {
    p.with_file_name(format!(
        "{}_clean.png",
        p.file_stem().unwrap().to_str().unwrap()
    ))
}

#[test]
fn clean_images_go_from_the_recipe_to_both_anomaly_layouts() {
    let env = Env::new();
    let o = env
        .cmd()
        .current_dir(repo())
        .args([
            "run",
            "examples/cracks-on-concrete.json",
            "--count",
            "5",
            "--out",
            env.out().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    // Each output has its clean image beside it: same size, without the crack.
    let mut clean_by_output: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for run in env.history() {
        for out in run["outputs"].as_array().unwrap() {
            let path = PathBuf::from(out["path"].as_str().unwrap());
            let clean = clean_of(&path);
            assert!(clean.is_file(), "{} has no clean image", path.display());
            let (w, h, defect) = rgba(&path);
            let (cw, ch, clean_px) = rgba(&clean);
            assert_eq!((cw, ch), (w, h));
            assert_ne!(clean_px, defect, "the clean image has the crack");
            clean_by_output.insert(path.to_string_lossy().into_owned(), clean_px);
        }
    }
    assert_eq!(clean_by_output.len(), 5);
    let o = env.run(&["store", "check"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));

    // MVTec: ceil(5 · 0.2) = 1 item in test (its crack, mask and clean image), 4 in train
    // (their clean images only).
    let mvtec = env.dir.path().join("mvtec");
    let o = env.run(&[
        "export",
        "--format",
        "mvtec",
        "--out",
        mvtec.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("left out 4 train defect image(s)"),
        "{}",
        stdout(&o)
    );
    assert_eq!(files(&mvtec.join("train/good")).len(), 4);
    assert_eq!(files(&mvtec.join("test/good")), ["000.png"]);
    assert_eq!(files(&mvtec.join("test/crack")), ["000.png"]);
    assert_eq!(files(&mvtec.join("ground_truth/crack")), ["000_mask.png"]);
    // Every good image is the clean image of its own output (by the manifest's provenance).
    let entries = manifest(&mvtec);
    assert_eq!(entries.len(), 6);
    for e in &entries {
        let source = e["provenance"]["source_file"].as_str().unwrap();
        let image = mvtec.join(e["image"].as_str().unwrap());
        if e["clean_image"].as_bool() == Some(true) {
            assert_eq!(rgba(&image).2, clean_by_output[source], "{image:?}");
        } else {
            assert_eq!(rgba(&image).2, rgba(Path::new(source)).2, "{image:?}");
            let clean = e["clean"].as_str().unwrap();
            assert_eq!(rgba(&mvtec.join(clean)).2, clean_by_output[source]);
        }
    }

    // The anomalib folder layout: the same split.
    let folder = env.dir.path().join("folder");
    let o = env.run(&[
        "export",
        "--format",
        "anomalib-folder",
        "--out",
        folder.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(files(&folder.join("normal")).len(), 4);
    assert_eq!(files(&folder.join("normal_test")), ["000.png"]);
    assert_eq!(files(&folder.join("abnormal")), ["000.png"]);
    assert_eq!(files(&folder.join("mask")), ["000_mask.png"]);
    assert_eq!(
        rgba(&folder.join("abnormal/000.png")).2,
        rgba(&mvtec.join("test/crack/000.png")).2
    );
}

#[test]
fn export_dataset_node_takes_the_clean_image() {
    let env = Env::new();
    let graph = env.write(
        "ds.json",
        r#"{"format": "defect-studio/graph", "version": 1,
            "nodes": {"tex": {"kind": "Texture", "version": 1, "params": {"width": 48, "height": 48, "material": "concrete"}},
                      "dent": {"kind": "Dent", "version": 1, "params": {"radius": 10.0}},
                      "ds": {"kind": "ExportDataset", "version": 1, "params": {"format": "mvtec", "label": "dent", "folder": "sets/{graph}"}}},
            "links": [{"from": ["tex", "image"], "to": ["dent", "image"]},
                      {"from": ["dent", "image"], "to": ["ds", "image"]},
                      {"from": ["dent", "mask"], "to": ["ds", "mask"]},
                      {"from": ["tex", "image"], "to": ["ds", "clean"]}]}"#,
    );
    let o = env.run(&[
        "run",
        graph.to_str().unwrap(),
        "--count",
        "6",
        "--out",
        env.out().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ds = env.out().join("sets/ds");
    // ceil(6 · 0.2) = 2 in test.
    assert_eq!(files(&ds.join("train/good")).len(), 4);
    assert_eq!(files(&ds.join("test/good")).len(), 2);
    assert_eq!(files(&ds.join("test/dent")), ["000.png", "001.png"]);
    assert_eq!(
        files(&ds.join("ground_truth/dent")),
        ["000_mask.png", "001_mask.png"]
    );
}

#[test]
fn a_clean_image_of_another_size_is_named_and_anomaly_exports_without_good_images_refused() {
    let env = Env::new();
    let graph = env.write(
        "bad.json",
        r#"{"format": "defect-studio/graph", "version": 1,
            "nodes": {"tex": {"kind": "Texture", "version": 1, "params": {"width": 48, "height": 48, "material": "concrete"}},
                      "small": {"kind": "Texture", "version": 1, "params": {"width": 32, "height": 32, "material": "concrete"}},
                      "dent": {"kind": "Dent", "version": 1, "params": {"radius": 10.0}},
                      "save": {"kind": "SaveImage", "version": 1, "params": {"label": "dent"}}},
            "links": [{"from": ["tex", "image"], "to": ["dent", "image"]},
                      {"from": ["dent", "image"], "to": ["save", "image"]},
                      {"from": ["dent", "mask"], "to": ["save", "mask"]},
                      {"from": ["small", "image"], "to": ["save", "clean"]}]}"#,
    );
    let o = env.run(&[
        "run",
        graph.to_str().unwrap(),
        "--out",
        env.out().to_str().unwrap(),
    ]);
    assert_clean_failure(&o, &["save", "clean", "32×32", "48×48"]);

    // Without `clean`, defect outputs give MVTec no good image for train: refused, saying how.
    let graph = env.write(
        "noclean.json",
        r#"{"format": "defect-studio/graph", "version": 1,
            "nodes": {"tex": {"kind": "Texture", "version": 1, "params": {"width": 48, "height": 48, "material": "concrete"}},
                      "dent": {"kind": "Dent", "version": 1, "params": {"radius": 10.0}},
                      "save": {"kind": "SaveImage", "version": 1, "params": {"label": "dent"}}},
            "links": [{"from": ["tex", "image"], "to": ["dent", "image"]},
                      {"from": ["dent", "image"], "to": ["save", "image"]},
                      {"from": ["dent", "mask"], "to": ["save", "mask"]}]}"#,
    );
    let o = env.run(&[
        "run",
        graph.to_str().unwrap(),
        "--count",
        "3",
        "--out",
        env.out().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let dir = env.dir.path().join("mvtec");
    let o = env.run(&[
        "export",
        "--format",
        "mvtec",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_clean_failure(&o, &["good images", "train", "clean"]);
    assert!(!dir.exists());
}
