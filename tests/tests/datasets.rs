//! Datasets end to end: recipes run, then `export` (or an ExportDataset node) writes COCO,
//! YOLO, MVTec or folder datasets whose masks equal the saved masks pixel for pixel.

mod common;

use std::collections::BTreeMap;

use common::*;

/// Binarised mask pixels of a PNG file.
fn mask_bits(path: &std::path::Path) -> (u32, u32, Vec<bool>) {
    let m = image::open(path).unwrap().to_luma8();
    (
        m.width(),
        m.height(),
        m.pixels().map(|p| p.0[0] >= 128).collect(),
    )
}

#[test]
fn run_then_export_every_format() {
    let env = Env::new();
    let out = env.out();
    for (name, count) in [
        ("scratches-on-brushed-metal", "4"),
        ("cracks-on-concrete", "3"),
    ] {
        let o = env
            .cmd()
            .current_dir(repo())
            .args([
                "run",
                &format!("examples/{name}.json"),
                "--count",
                count,
                "--out",
                out.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    }
    // The masks as saved next to the images, by output id (from the history).
    let mut saved_masks: BTreeMap<String, std::path::PathBuf> = BTreeMap::new();
    for run in env.history() {
        for o in run["outputs"].as_array().unwrap() {
            saved_masks.insert(
                format!("s0-r{}-o{}", run["id"], o["id"]),
                o["mask_path"].as_str().unwrap().into(),
            );
        }
    }
    assert_eq!(saved_masks.len(), 7);

    let coco = env.dir.path().join("coco");
    let o = env.run(&[
        "export",
        "--format",
        "coco",
        "--out",
        coco.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("7 image(s)"), "{}", stdout(&o));
    let ds = engine::dataset::read_coco(&coco).unwrap();
    assert_eq!(ds.images.len(), 7);
    let cats: Vec<&str> = ds.categories.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(cats, ["crack", "scratch"]);
    for img in &ds.images {
        let stem = img.file_name.trim_end_matches(".png");
        let (w, h, expected) = mask_bits(&saved_masks[stem]);
        assert_eq!((w, h), (img.width, img.height));
        let mut union = vec![false; (w * h) as usize];
        let anns: Vec<_> = ds
            .annotations
            .iter()
            .filter(|a| a.image_id == img.id)
            .collect();
        assert!(!anns.is_empty(), "{stem} has no annotation");
        for a in anns {
            for (u, m) in union.iter_mut().zip(a.mask().unwrap()) {
                *u |= m;
            }
        }
        assert!(
            union == expected,
            "{stem}: decoded COCO masks differ from the saved mask"
        );
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(coco.join("manifest.json")).unwrap()).unwrap();
    let text = manifest.to_string();
    for key in ["graph_sha256", "seed", "node", "parameters", "models"] {
        assert!(text.contains(key), "manifest lacks {key}");
    }

    for (format, marker) in [
        ("yolo", "data.yaml"),
        ("mvtec", "ground_truth/scratch/000_mask.png"),
        ("folder", "masks"),
    ] {
        let dir = env.dir.path().join(format);
        let o = env.run(&["export", "--format", format, "--out", dir.to_str().unwrap()]);
        assert!(o.status.success(), "{format}: {}", stderr(&o));
        assert!(dir.join(marker).exists(), "{format}: {marker} missing");
    }
    let labels = |part: &str| {
        std::fs::read_dir(env.dir.path().join("yolo/labels").join(part))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    assert_eq!(labels("train") + labels("val"), 7);
    // MVTec: every crack item has its clean image (the examples wire `clean`), so the three
    // are split: ceil(3 · 0.2) = 1 in test; the other two give train/good their clean images.
    assert_eq!(
        std::fs::read_dir(env.dir.path().join("mvtec/test/crack"))
            .unwrap()
            .count(),
        1
    );
    // A second export into a used folder is refused; a bad format is named.
    assert_clean_failure(
        &env.run(&[
            "export",
            "--format",
            "coco",
            "--out",
            coco.to_str().unwrap(),
        ]),
        &["not empty"],
    );
    assert_clean_failure(
        &env.run(&["export", "--format", "pascal", "--out", "x"]),
        &["pascal", "coco"],
    );
}

#[test]
fn shard_stores_merge_into_one_dataset() {
    let env = Env::new();
    let g = repo().join("examples/stains-on-fabric.json");
    let out = env.out();
    for i in 0..3 {
        let shard = format!("{i}/3");
        let o = env.run(&[
            "run",
            g.to_str().unwrap(),
            "--count",
            "5",
            "--set",
            "cloth.width=128",
            "--set",
            "cloth.height=128",
            "--out",
            out.to_str().unwrap(),
            "--shard",
            &shard,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let stores: Vec<String> = (0..3)
        .map(|i| {
            out.join(format!("shard-{i}-of-3/store.redb"))
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let ds = env.dir.path().join("merged");
    let mut args = vec!["export", "--format", "coco", "--out", ds.to_str().unwrap()];
    for s in &stores {
        args.extend(["--store", s.as_str()]);
    }
    let o = env.run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let coco = engine::dataset::read_coco(&ds).unwrap();
    assert_eq!(coco.images.len(), 5, "every shard's outputs, once");
    let seeds: std::collections::BTreeSet<u64> = serde_json::from_slice::<serde_json::Value>(
        &std::fs::read(ds.join("manifest.json")).unwrap(),
    )
    .unwrap()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["provenance"]["seed"].as_u64().unwrap())
        .collect();
    assert_eq!(seeds.len(), 5);
}

#[test]
fn export_dataset_node_writes_a_dataset_at_the_end_of_the_run() {
    let env = Env::new();
    let graph = env.write(
        "ds.json",
        r#"{"format": "defect-studio/graph", "version": 1,
            "nodes": {"tex": {"kind": "Texture", "version": 1, "params": {"width": 96, "height": 96, "material": "concrete"}},
                      "dent": {"kind": "Dent", "version": 1, "params": {"radius": 20.0}},
                      "ds": {"kind": "ExportDataset", "version": 1, "params": {"format": "coco", "label": "dent", "folder": "sets/{graph}"}}},
            "links": [{"from": ["tex", "image"], "to": ["dent", "image"]},
                      {"from": ["dent", "image"], "to": ["ds", "image"]},
                      {"from": ["dent", "mask"], "to": ["ds", "mask"]}]}"#,
    );
    for expect in ["sets/ds", "sets/ds-1"] {
        let o = env.run(&[
            "run",
            graph.to_str().unwrap(),
            "--count",
            "3",
            "--out",
            env.out().to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stdout(&o).contains("dataset "), "{}", stdout(&o));
        let coco = engine::dataset::read_coco(&env.out().join(expect)).unwrap();
        assert_eq!(coco.images.len(), 3);
        assert_eq!(coco.categories.len(), 1);
        assert_eq!(coco.categories[0].name, "dent");
    }
}
