//! COCO compressed RLE (the string `counts` pycocotools' `mask.encode` writes, as CVAT,
//! Detectron2 and COCO's own crowd and stuff annotations store masks): decoded and encoded as
//! pycocotools does, read in a COCO dataset folder with the masks pycocotools gives, and
//! refused with one clear error when damaged.
//!
//! `tests/fixtures/datasets/coco_rle.json` is pycocotools 2.0.11's output
//! (`make_coco_rle_fixtures.py`): hand-made and random masks, and one real annotation of the
//! COCO-Stuff 2017 val set (id 20000007, image 139).

use std::path::{Path, PathBuf};

use engine::codec::encode_rgba8_png;
use engine::dataset::{read_coco, rle_decode, rle_from_string, rle_to_string};
use engine::inspect::data::{read_dataset, Layout};
use serde_json::{json, Value};

struct Case {
    name: String,
    size: [u32; 2],
    counts: String,
    runs: Vec<u32>,
    area: f64,
    bbox: [f64; 4],
}

fn cases() -> Vec<Case> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/datasets/coco_rle.json");
    let doc: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    doc["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap().into(),
            size: serde_json::from_value(c["size"].clone()).unwrap(),
            counts: c["counts"].as_str().unwrap().into(),
            runs: serde_json::from_value(c["runs"].clone()).unwrap(),
            area: c["area"].as_f64().unwrap(),
            bbox: serde_json::from_value(c["bbox"].clone()).unwrap(),
        })
        .collect()
}

/// Pixel count and `[x, y, w, h]` of a row-major mask.
fn stats(mask: &[bool], w: u32) -> (f64, [f64; 4]) {
    let on: Vec<(u32, u32)> = mask
        .iter()
        .enumerate()
        .filter(|(_, &b)| b)
        .map(|(i, _)| (i as u32 % w, i as u32 / w))
        .collect();
    if on.is_empty() {
        return (0.0, [0.0; 4]);
    }
    let x0 = on.iter().map(|p| p.0).min().unwrap();
    let x1 = on.iter().map(|p| p.0).max().unwrap();
    let y0 = on.iter().map(|p| p.1).min().unwrap();
    let y1 = on.iter().map(|p| p.1).max().unwrap();
    let b = [x0, y0, x1 - x0 + 1, y1 - y0 + 1];
    (on.len() as f64, b.map(f64::from))
}

#[test]
fn pycocotools_strings_decode_and_encode_exactly() {
    let cases = cases();
    assert_eq!(cases.len(), 13);
    for c in &cases {
        let runs = rle_from_string(&c.counts).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        assert_eq!(runs, c.runs, "{}: decoded counts", c.name);
        assert_eq!(
            rle_to_string(&c.runs),
            c.counts,
            "{}: encoded string",
            c.name
        );
        let [h, w] = c.size;
        let mask = rle_decode(&runs, w, h).unwrap();
        assert_eq!(
            stats(&mask, w),
            (c.area, c.bbox),
            "{}: area and bbox",
            c.name
        );
    }
    let real = cases
        .iter()
        .find(|c| c.name.starts_with("COCO-Stuff"))
        .unwrap();
    assert_eq!((real.area, real.bbox), (4868.0, [216.0, 233.0, 81.0, 70.0]));
}

fn png(w: u32, h: u32) -> Vec<u8> {
    encode_rgba8_png(w, h, &vec![128; (w * h * 4) as usize]).unwrap()
}

/// A COCO folder (no manifest, as another tool writes it): one image per non-empty case, each
/// with its compressed RLE annotation, and one image without annotations.
fn coco_folder(dir: &Path, cases: &[&Case], corrupt: Option<&str>) -> PathBuf {
    let root = dir.join("set");
    std::fs::create_dir_all(root.join("images")).unwrap();
    let mut images = Vec::new();
    let mut anns = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let [h, w] = c.size;
        let file = format!("{i:03}.png");
        std::fs::write(root.join("images").join(&file), png(w, h)).unwrap();
        images.push(json!({"id": i + 1, "file_name": file, "width": w, "height": h}));
        let counts = match (i, corrupt) {
            (0, Some(bad)) => bad.to_string(),
            _ => c.counts.clone(),
        };
        anns.push(json!({
            "id": 100 + i, "image_id": i + 1, "category_id": 3, "iscrowd": 1,
            "segmentation": {"size": c.size, "counts": counts},
            "area": c.area, "bbox": c.bbox,
        }));
    }
    std::fs::write(root.join("images/good.png"), png(8, 8)).unwrap();
    images.push(json!({"id": 99, "file_name": "good.png", "width": 8, "height": 8}));
    let doc = json!({
        "images": images, "annotations": anns,
        "categories": [{"id": 3, "name": "stain", "supercategory": "defect"}],
    });
    std::fs::write(root.join("annotations.json"), doc.to_string()).unwrap();
    root
}

#[test]
fn a_coco_folder_with_compressed_rle_loads_with_pycocotools_masks() {
    let all = cases();
    let picked: Vec<&Case> = all.iter().filter(|c| c.area > 0.0).collect();
    assert!(picked.len() >= 10);
    let dir = tempfile::tempdir().unwrap();
    let root = coco_folder(dir.path(), &picked, None);
    let ds = read_coco(&root).unwrap();
    assert_eq!(ds.annotations.len(), picked.len());

    let set = read_dataset(&root).unwrap();
    assert_eq!(set.layout, Layout::Coco);
    assert_eq!(set.samples.len(), picked.len() + 1);
    for (i, c) in picked.iter().enumerate() {
        let s = set
            .samples
            .iter()
            .find(|s| s.path.ends_with(format!("{i:03}.png")))
            .unwrap();
        assert_eq!(s.label, "stain", "{}", c.name);
        let [h, w] = c.size;
        let got = s.load_mask(w, h).unwrap().expect("a mask");
        let got: Vec<bool> = got.pixels().map(|p| p.0[0] == 255).collect();
        // The mask pycocotools decodes, from its uncompressed runs.
        let want = rle_decode(&c.runs, w, h).unwrap();
        assert!(
            got == want,
            "{}: the mask differs from pycocotools'",
            c.name
        );
    }
    let good = set
        .samples
        .iter()
        .find(|s| s.path.ends_with("good.png"))
        .unwrap();
    assert!(good.is_good());
}

#[test]
fn damaged_strings_give_one_clear_error() {
    for (bad, want) in [
        ("0~1", "character 1 ('~') is not one of '0'..='o'"),
        ("0P", "count 1 (from character 1) is cut off"),
        ("ooooooooooooooo0", "is too long"),
        ("@", "count 0 (from character 0) is -16, not a run length"),
        ("é", "is not one of"),
    ] {
        let e = rle_from_string(bad).unwrap_err();
        assert!(e.contains(want), "{bad:?}: {e}");
    }
    assert_eq!(rle_from_string("").unwrap(), Vec::<u32>::new());

    // In a dataset: the error names the annotation; a string whose counts do not cover the
    // image is refused too.
    let all = cases();
    let real = all
        .iter()
        .find(|c| c.name.starts_with("COCO-Stuff"))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (bad, want) in [
        ("0~1", "annotation 100: compressed RLE: character 1"),
        (
            "S1",
            "annotation 100: RLE counts sum to 35 but the mask has 640x426",
        ),
    ] {
        let root = coco_folder(&dir.path().join(bad.replace('~', "t")), &[real], Some(bad));
        let e = read_coco(&root).unwrap_err();
        assert!(e.contains(want), "{bad:?}: {e}");
        let e = read_dataset(&root).unwrap_err().to_string();
        assert!(
            e.contains("annotations.json") && e.contains(want),
            "{bad:?}: {e}"
        );
    }
}
