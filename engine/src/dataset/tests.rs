//! End-to-end tests: synthetic images and masks through every format.

use super::contours::iou;
use super::*;
use serde_json::json;
use std::io::Cursor;

const W: u32 = 96;
const H: u32 = 80;

fn encode(img: ::image::DynamicImage) -> Vec<u8> {
    let mut buf = Cursor::new(Vec::new());
    img.write_to(&mut buf, ::image::ImageFormat::Png).unwrap();
    buf.into_inner()
}

fn rgb_png(w: u32, h: u32, seed: u32) -> Vec<u8> {
    let img = ::image::RgbImage::from_fn(w, h, |x, y| {
        ::image::Rgb([(x * 3 + seed) as u8, (y * 5) as u8, ((x ^ y) + seed) as u8])
    });
    encode(::image::DynamicImage::ImageRgb8(img))
}

fn grey_mask_png(mask: &[bool], w: u32, h: u32) -> Vec<u8> {
    let img = ::image::GrayImage::from_fn(w, h, |x, y| {
        // Not pure black/white, to exercise the >= 128 threshold.
        ::image::Luma([if mask[(y * w + x) as usize] { 200 } else { 90 }])
    });
    encode(::image::DynamicImage::ImageLuma8(img))
}

fn rgb_mask_png(mask: &[bool], w: u32, h: u32) -> Vec<u8> {
    let img = ::image::RgbImage::from_fn(w, h, |x, y| {
        let v = if mask[(y * w + x) as usize] { 255 } else { 0 };
        ::image::Rgb([v, v, v])
    });
    encode(::image::DynamicImage::ImageRgb8(img))
}

fn blank() -> Vec<bool> {
    vec![false; (W * H) as usize]
}

fn disc(m: &mut [bool], cx: f64, cy: f64, r: f64) {
    for y in 0..H {
        for x in 0..W {
            let (dx, dy) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
            if dx * dx + dy * dy <= r * r {
                m[(y * W + x) as usize] = true;
            }
        }
    }
}

fn rect(m: &mut [bool], x0: u32, y0: u32, x1: u32, y1: u32, v: bool) {
    for y in y0..y1 {
        for x in x0..x1 {
            m[(y * W + x) as usize] = v;
        }
    }
}

/// Items with known masks, and the binarised mask each should export.
fn sample_items() -> (Vec<ExportItem>, Vec<Vec<bool>>) {
    let mut items = Vec::new();
    let mut masks = Vec::new();
    let mut push = |name: &str, label: &str, mask: Option<(Vec<bool>, bool)>| {
        let (png, m) = match mask {
            Some((m, rgb)) => {
                let png = if rgb {
                    rgb_mask_png(&m, W, H)
                } else {
                    grey_mask_png(&m, W, H)
                };
                (Some(png), m)
            }
            None => (None, blank()),
        };
        let n = items.len() as u32;
        items.push(ExportItem {
            name: name.to_string(),
            image_png: rgb_png(W, H, n),
            mask_png: png,
            label: label.to_string(),
            provenance: json!({"seed": n, "graph": "abc123", "params": {"k": [1, 2]}}),
            instance_png: None,
            clean_png: None,
        });
        masks.push(if label == "good" { blank() } else { m });
    };
    // Two blobs: a disc and a rectangle.
    let mut m = blank();
    disc(&mut m, 25.0, 30.0, 9.0);
    rect(&mut m, 60, 10, 80, 18, true);
    push("s0-r1-o1", "scratch", Some((m, false)));
    // A ring (disc with a small hole): RLE must keep the hole.
    let mut m = blank();
    disc(&mut m, 48.0, 40.0, 16.0);
    rect(&mut m, 46, 38, 50, 42, false);
    push("s0-r2-o1", "dent", Some((m, false)));
    // Good, no mask; good with an all-black mask.
    push("s0-r3-o1", "good", None);
    push("s0-r4-o1", "good", Some((blank(), false)));
    // Two discs touching only diagonally -> one instance; RGB mask; odd name.
    let mut m = blank();
    rect(&mut m, 10, 10, 20, 20, true);
    rect(&mut m, 20, 20, 30, 30, true);
    disc(&mut m, 70.0, 60.0, 6.0);
    push("weird/name?", "scratch", Some((m, true)));
    // Defect label but empty mask -> defect-free, no "crack" category.
    push("s0-r6-o1", "crack", Some((blank(), false)));
    (items, masks)
}

fn out_dir(tmp: &tempfile::TempDir, sub: &str) -> std::path::PathBuf {
    tmp.path().join(sub)
}

fn decode_mask(path: &Path) -> (Vec<u8>, u32, u32) {
    let img = ::image::open(path).unwrap();
    assert!(
        matches!(img, ::image::DynamicImage::ImageLuma8(_)),
        "{path:?}"
    );
    let g = img.to_luma8();
    let (w, h) = g.dimensions();
    (g.into_raw(), w, h)
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

/// Checks the manifest's common fields and returns name -> entry.
fn check_manifest(
    dir: &Path,
    format: Format,
    items: &[ExportItem],
) -> std::collections::HashMap<String, serde_json::Value> {
    let m = manifest(dir);
    assert_eq!(m["format"], format.name());
    assert!(m["note"].as_str().unwrap().len() > 10);
    let entries = m["items"].as_array().unwrap();
    assert_eq!(entries.len(), items.len());
    let mut by_name = std::collections::HashMap::new();
    for (e, it) in entries.iter().zip(items) {
        assert_eq!(e["name"], it.name.as_str());
        assert_eq!(e["label"], it.label.as_str());
        assert_eq!(e["provenance"], it.provenance);
        assert!(dir.join(e["image"].as_str().unwrap()).is_file());
        if let Some(mask) = e["mask"].as_str() {
            assert!(dir.join(mask).is_file());
        }
        by_name.insert(it.name.clone(), e.clone());
    }
    by_name
}

#[test]
fn format_names_round_trip() {
    for f in Format::ALL {
        assert_eq!(Format::from_name(f.name()), Some(f));
        assert_eq!(Format::from_name(&f.name().to_uppercase()), Some(f));
    }
    assert_eq!(Format::from_name("mvtec-ad"), Some(Format::Mvtec));
    assert_eq!(Format::from_name("voc"), None);
}

#[test]
fn sanitize_names() {
    assert_eq!(sanitize("s0-r12-o345"), "s0-r12-o345");
    assert_eq!(sanitize("../a b/c"), "_a_b_c");
    assert_eq!(sanitize("..."), "item");
    assert_eq!(sanitize("CON"), "_CON");
    assert_eq!(sanitize("com1.x"), "_com1.x");
}

#[test]
fn coco_round_trip_is_pixel_exact() {
    let (items, masks) = sample_items();
    let tmp = tempfile::tempdir().unwrap();
    let dir = out_dir(&tmp, "coco");
    let report = export(&items, &Format::Coco.into(), &dir).unwrap();
    assert_eq!(report.images, items.len());
    assert_eq!(
        report.categories,
        vec!["dent".to_string(), "scratch".to_string()]
    );
    // scratch: 2 + dent: 1 + diagonal pair and disc: 2.
    assert_eq!(report.instances, 5);
    assert!(report.files.iter().all(|f| f.is_file()));

    let ds = read_coco(&dir).unwrap();
    assert!(ds.licenses.is_empty());
    let cat_names: Vec<&str> = ds.categories.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(cat_names, ["dent", "scratch"]);
    assert_eq!(ds.categories[0].id, 1);
    assert!(ds.categories.iter().all(|c| c.supercategory == "defect"));
    assert_eq!(ds.images.len(), items.len());
    assert_eq!(ds.annotations.len(), report.instances);

    let entries = check_manifest(&dir, Format::Coco, &items);
    for (it, expected) in items.iter().zip(&masks) {
        let id = entries[&it.name]["coco_image_id"].as_u64().unwrap();
        let img = ds.images.iter().find(|i| i.id == id).unwrap();
        assert_eq!((img.width, img.height), (W, H));
        // The image is copied verbatim.
        assert_eq!(
            std::fs::read(dir.join("images").join(&img.file_name)).unwrap(),
            it.image_png
        );
        let anns: Vec<&CocoAnnotation> =
            ds.annotations.iter().filter(|a| a.image_id == id).collect();
        let mut union = blank();
        for a in &anns {
            assert_eq!(a.iscrowd, 0);
            let m = a.mask().unwrap();
            let (area, bbox) = coco::mask_stats(&m, W);
            assert_eq!(a.area, area as f64);
            assert_eq!(a.bbox, bbox.map(f64::from));
            for (u, v) in union.iter_mut().zip(&m) {
                assert!(!(*u && *v), "instances overlap");
                *u |= *v;
            }
            let cat = ds
                .categories
                .iter()
                .find(|c| c.id == a.category_id)
                .unwrap();
            assert_eq!(cat.name, it.label);
        }
        assert_eq!(&union, expected, "{}", it.name);
        assert_eq!(anns.len(), components(expected, W, H).len(), "{}", it.name);
        if !expected.iter().any(|&v| v) {
            assert!(anns.is_empty());
        }
    }
    // The ring keeps its hole.
    let ring = ds.annotations.iter().find(|a| a.category_id == 1).unwrap();
    assert!(!ring.mask().unwrap()[(40 * W + 48) as usize]);
}

/// An edit that breaks a COCO file.
type Edit = Box<dyn Fn(&mut serde_json::Value)>;

#[test]
fn read_coco_rejects_invalid_files() {
    let (items, _) = sample_items();
    let tmp = tempfile::tempdir().unwrap();
    let dir = out_dir(&tmp, "coco");
    export(&items, &Format::Coco.into(), &dir).unwrap();
    let path = dir.join("annotations.json");
    let good: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let cases: Vec<(&str, Edit)> = vec![
        (
            "missing key",
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("categories");
            }),
        ),
        (
            "duplicate image id",
            Box::new(|v| v["images"][1]["id"] = v["images"][0]["id"].clone()),
        ),
        (
            "duplicate annotation id",
            Box::new(|v| v["annotations"][1]["id"] = json!(1)),
        ),
        (
            "unknown image",
            Box::new(|v| v["annotations"][0]["image_id"] = json!(999)),
        ),
        (
            "unknown category",
            Box::new(|v| v["annotations"][0]["category_id"] = json!(9)),
        ),
        (
            "bbox",
            Box::new(|v| v["annotations"][0]["bbox"][0] = json!(0.0)),
        ),
        (
            "area",
            Box::new(|v| v["annotations"][0]["area"] = json!(1.0)),
        ),
        (
            "rle size",
            Box::new(|v| v["annotations"][0]["segmentation"]["size"] = json!([H, H])),
        ),
        (
            "counts sum",
            Box::new(|v| {
                v["annotations"][0]["segmentation"]["counts"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!(3))
            }),
        ),
        (
            "missing file",
            Box::new(|v| v["images"][0]["file_name"] = json!("nope.png")),
        ),
    ];
    for (what, edit) in cases {
        let mut v = good.clone();
        edit(&mut v);
        std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
        assert!(
            read_coco(&dir).is_err(),
            "accepted a file with a bad {what}"
        );
    }
    std::fs::write(&path, serde_json::to_vec(&good).unwrap()).unwrap();
    assert!(read_coco(&dir).is_ok());
}

/// Parses `names:` of data.yaml as written by the exporter.
fn yaml_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_names = false;
    for line in text.lines() {
        if line.starts_with("names:") {
            in_names = true;
        } else if in_names && line.starts_with("  ") {
            let (idx, name) = line.trim().split_once(": ").unwrap();
            assert_eq!(idx.parse::<usize>().unwrap(), names.len());
            names.push(serde_json::from_str::<String>(name).unwrap());
        }
    }
    names
}

#[test]
fn yolo_polygons_match_components() {
    let (items, masks) = sample_items();
    let tmp = tempfile::tempdir().unwrap();
    let dir = out_dir(&tmp, "yolo");
    let report = export(&items, &Format::Yolo.into(), &dir).unwrap();
    let yaml = std::fs::read_to_string(dir.join("data.yaml")).unwrap();
    assert!(!yaml.lines().any(|l| l.starts_with("path:")), "{yaml}");
    // Stratified: two scratches and one dent (20 % rounds to 0: all train), three
    // defect-free images (one held out).
    assert_eq!(report.val_images, 1);
    assert!(
        yaml.contains("train: images/train\nval: images/val\n"),
        "{yaml}"
    );
    let names = yaml_names(&yaml);
    assert_eq!(names, report.categories);
    assert_eq!(names, ["dent", "scratch"]);

    let entries = check_manifest(&dir, Format::Yolo, &items);
    let mut lines_total = 0;
    for (it, expected) in items.iter().zip(&masks) {
        let label_file = entries[&it.name]["label_file"]
            .as_str()
            .unwrap()
            .to_string();
        let image = entries[&it.name]["image"].as_str().unwrap();
        // labels/<stem>.txt pairs with images/<stem>.png.
        assert_eq!(
            label_file
                .replace("labels/", "images/")
                .replace(".txt", ".png"),
            image
        );
        let text = std::fs::read_to_string(dir.join(&label_file)).unwrap();
        let comps = components(expected, W, H);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), comps.len(), "{}", it.name);
        lines_total += lines.len();
        for line in lines {
            let mut fields = line.split(' ');
            let class: usize = fields.next().unwrap().parse().unwrap();
            assert_eq!(names[class], it.label);
            let coords: Vec<f32> = fields.map(|f| f.parse().unwrap()).collect();
            assert!(coords.len() >= 6 && coords.len().is_multiple_of(2));
            assert!(coords.iter().all(|&c| (0.0..=1.0).contains(&c)));
            // Ultralytics' rule: scale, truncate to int, fillPoly.
            let poly: Vec<(i64, i64)> = coords
                .chunks(2)
                .map(|p| ((p[0] * W as f32) as i64, (p[1] * H as f32) as i64))
                .collect();
            let filled = super::rasterize_like_fillpoly(&poly, W, H);
            let best = comps.iter().map(|c| iou(&filled, c)).fold(0.0, f64::max);
            assert!(best >= 0.999, "{}: IoU {best}", it.name);
        }
    }
    assert_eq!(lines_total, report.instances);
    // The odd name was sanitised.
    assert!(
        dir.join("labels/train/weird_name_.txt").is_file()
            || dir.join("labels/val/weird_name_.txt").is_file()
    );
}

#[test]
fn mvtec_tree() {
    let (items, masks) = sample_items();
    let tmp = tempfile::tempdir().unwrap();
    let dir = out_dir(&tmp, "mvtec");
    export(&items, &Format::Mvtec.into(), &dir).unwrap();
    let list = |rel: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir.join(rel))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    let mut top = list(".");
    top.retain(|n| n != "manifest.json");
    assert_eq!(top, ["ground_truth", "test", "train"]);
    assert_eq!(list("train"), ["good"]);
    // Three good items, test fraction 0.2: ceil(0.6) = 1 in test. Defect items without a clean
    // image always go to test.
    assert_eq!(list("train/good"), ["000.png", "001.png"]);
    assert_eq!(list("test"), ["dent", "good", "scratch"]);
    assert_eq!(list("test/good"), ["000.png"]);
    assert_eq!(list("test/scratch"), ["000.png", "001.png"]);
    assert_eq!(list("test/dent"), ["000.png"]);
    assert_eq!(list("ground_truth"), ["dent", "scratch"]);
    for label in ["dent", "scratch"] {
        let gt: Vec<String> = list(&format!("ground_truth/{label}"))
            .iter()
            .map(|n| n.replace("_mask.png", ".png"))
            .collect();
        assert_eq!(gt, list(&format!("test/{label}")));
    }
    let entries = check_manifest(&dir, Format::Mvtec, &items);
    for (it, expected) in items.iter().zip(&masks) {
        let e = &entries[&it.name];
        match e["mask"].as_str() {
            Some(mask) => {
                assert!(e["image"].as_str().unwrap().starts_with("test/"));
                let (px, w, h) = decode_mask(&dir.join(mask));
                assert_eq!((w, h), (W, H));
                assert!(px.iter().all(|&v| v == 0 || v == 255));
                let bin: Vec<bool> = px.iter().map(|&v| v == 255).collect();
                assert_eq!(&bin, expected);
            }
            None => {
                let image = e["image"].as_str().unwrap();
                assert!(
                    image.starts_with("train/good/") || image.starts_with("test/good/"),
                    "{image}"
                );
                assert!(!expected.iter().any(|&v| v));
            }
        }
    }
}

#[test]
fn folder_masks_are_binary_and_always_written() {
    let (items, masks) = sample_items();
    let tmp = tempfile::tempdir().unwrap();
    let dir = out_dir(&tmp, "folder");
    let report = export(&items, &Format::Folder.into(), &dir).unwrap();
    assert_eq!(report.files.len(), 2 * items.len() + 1);
    let entries = check_manifest(&dir, Format::Folder, &items);
    for (it, expected) in items.iter().zip(&masks) {
        let e = &entries[&it.name];
        let stem = e["image"]
            .as_str()
            .unwrap()
            .trim_start_matches("images/")
            .trim_end_matches(".png");
        assert_eq!(
            e["mask"].as_str().unwrap(),
            format!("masks/{stem}_mask.png")
        );
        let (px, _, _) = decode_mask(&dir.join(e["mask"].as_str().unwrap()));
        assert!(px.iter().all(|&v| v == 0 || v == 255));
        let bin: Vec<bool> = px.iter().map(|&v| v == 255).collect();
        assert_eq!(&bin, expected);
        assert_eq!(
            e["instances"].as_u64().unwrap() as usize,
            components(expected, W, H).len()
        );
    }
}

#[test]
fn errors_name_the_item_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (items, _) = sample_items();
    let dir = out_dir(&tmp, "out");

    let mut bad = items.clone();
    bad[1].mask_png = Some(grey_mask_png(&[false; 12], 4, 3));
    let err = export(&bad, &Format::Coco.into(), &dir).unwrap_err();
    assert!(err.contains("s0-r2-o1") && err.contains("4x3"), "{err}");

    let mut bad = items.clone();
    bad[2].image_png = b"not a png".to_vec();
    let err = export(&bad, &Format::Yolo.into(), &dir).unwrap_err();
    assert!(err.contains("s0-r3-o1") && err.contains("PNG"), "{err}");

    let mut bad = items.clone();
    bad[0].mask_png.as_mut().unwrap().truncate(40);
    let err = export(&bad, &Format::Folder.into(), &dir).unwrap_err();
    assert!(err.contains("s0-r1-o1") && err.contains("mask"), "{err}");

    let mut bad = items.clone();
    bad[0].label = "GOOD".to_string();
    let err = export(&bad, &Format::Mvtec.into(), &dir).unwrap_err();
    assert!(err.contains("s0-r1-o1") && err.contains("good"), "{err}");

    let err = export(&[], &Format::Coco.into(), &dir).unwrap_err();
    assert!(err.contains("empty"), "{err}");
    assert!(
        !dir.exists(),
        "a failed export must not create the output directory"
    );

    // Non-empty target directory: refused, existing content untouched.
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("annotations.json"), b"{}").unwrap();
    let err = export(&items, &Format::Coco.into(), &dir).unwrap_err();
    assert!(
        err.contains(&dir.display().to_string()) && err.contains("not empty"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);

    // Output path is a file.
    let file = dir.join("annotations.json");
    assert!(export(&items, &Format::Folder.into(), &file).is_err());

    // An existing empty directory is fine.
    let empty = out_dir(&tmp, "empty");
    std::fs::create_dir_all(&empty).unwrap();
    assert!(export(&items, &Format::Folder.into(), &empty).is_ok());
}

#[test]
fn colliding_names_get_unique_stems() {
    let (mut items, _) = sample_items();
    items[1].name = "weird/name?".to_string(); // same as item 4 once sanitised
    items[3].name = "WEIRD_name_".to_string(); // differs only by case
    let tmp = tempfile::tempdir().unwrap();
    let dir = out_dir(&tmp, "folder");
    let report = export(&items, &Format::Folder.into(), &dir).unwrap();
    let images = report
        .files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "png"))
        .count();
    assert_eq!(images, 2 * items.len());
    let m = manifest(&dir);
    let mut paths: Vec<String> = m["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["image"].as_str().unwrap().to_lowercase())
        .collect();
    paths.sort();
    paths.dedup();
    assert_eq!(paths.len(), items.len());
}

#[test]
fn sixteen_bit_rgba_image_is_copied_verbatim() {
    let img = ::image::ImageBuffer::<::image::Rgba<u16>, Vec<u16>>::from_fn(W, H, |x, y| {
        ::image::Rgba([(x * 600) as u16, (y * 700) as u16, 1234, 65535])
    });
    let png = encode(::image::DynamicImage::ImageRgba16(img));
    let mut m = blank();
    disc(&mut m, 40.0, 40.0, 10.0);
    let item = ExportItem {
        name: "deep".to_string(),
        image_png: png.clone(),
        mask_png: Some(grey_mask_png(&m, W, H)),
        label: "scratch".to_string(),
        provenance: json!(null),
        instance_png: None,
        clean_png: None,
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = out_dir(&tmp, "coco");
    let report = export(&[item], &Format::Coco.into(), &dir).unwrap();
    assert_eq!(report.instances, 1);
    assert_eq!(std::fs::read(dir.join("images/deep.png")).unwrap(), png);
}

#[test]
fn every_region_is_an_instance_unless_per_defect_ids_join_them() {
    // A 10×10 blob, a 1-px sliver 2 px to its right (a broken rim), and a blob 20 px away.
    let (w, h) = (60u32, 20u32);
    let mut m = vec![false; (w * h) as usize];
    let mut set = |x: u32, y: u32| m[(y * w + x) as usize] = true;
    for y in 5..15 {
        for x in 5..15 {
            set(x, y);
        }
        set(17, y);
        for x in 40..48 {
            set(x, y);
        }
    }
    let inst = super::instances(&m, w, h, super::InstanceRule::Components, None);
    let areas: Vec<u64> = inst.iter().map(|i| i.area).collect();
    assert_eq!(areas, [100, 10, 80], "components, in raster order");
    // Per-defect without ids: components.
    let same = super::instances(&m, w, h, super::InstanceRule::PerDefect, None);
    assert_eq!(same.len(), 3);
    // Per-defect with ids: the blob and the sliver are defect 7, the far blob defect 2.
    let ids: Vec<u32> = (0..w * h).map(|i| if i % w < 30 { 7 } else { 2 }).collect();
    let inst = super::instances(&m, w, h, super::InstanceRule::PerDefect, Some(&ids));
    let areas: Vec<u64> = inst.iter().map(|i| i.area).collect();
    assert_eq!(areas, [110, 80]);
    assert_eq!(inst[0].regions, 2);
    // The joined instance's RLE holds exactly its pixels (no bridge pixels added), and its
    // one polygon covers both regions.
    let total: u64 = areas.iter().sum();
    assert_eq!(total, m.iter().filter(|b| **b).count() as u64);
    let filled = super::rasterize_like_fillpoly(&inst[0].polygon, w, h);
    for (i, &v) in m.iter().enumerate() {
        if v && (i as u32 % w) < 30 {
            assert!(filled[i], "pixel {i} of the joined instance is not covered");
        }
    }
}

/// `n` items per label with distinct images and a one-pixel mask (none for `good`).
fn labelled_items(labels: &[(&str, usize)]) -> Vec<ExportItem> {
    let mut items = Vec::new();
    for (label, n) in labels {
        for i in 0..*n {
            let k = items.len() as u32;
            let mut m = blank();
            m[i % (W * H) as usize] = true;
            items.push(ExportItem {
                name: format!("{label}-{i}"),
                image_png: rgb_png(W, H, k),
                mask_png: (*label != "good").then(|| grey_mask_png(&m, W, H)),
                label: label.to_string(),
                provenance: json!(null),
                instance_png: None,
                clean_png: None,
            });
        }
    }
    items
}

fn splits(dir: &Path) -> std::collections::BTreeMap<String, String> {
    manifest(dir)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["split"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn yolo_split_is_seeded_and_stratified() {
    let items = labelled_items(&[("scratch", 10), ("dent", 5), ("good", 20)]);
    let tmp = tempfile::tempdir().unwrap();
    let opts = |seed: u64, val_fraction: f64| ExportOptions {
        seed,
        val_fraction,
        ..Format::Yolo.into()
    };
    let a = out_dir(&tmp, "a");
    let report = export(&items, &opts(7, 0.2), &a).unwrap();
    assert_eq!(report.val_images, 2 + 1 + 4);
    let sa = splits(&a);
    for (label, want) in [("scratch", 2), ("dent", 1), ("good", 4)] {
        let got = sa
            .iter()
            .filter(|(n, s)| n.starts_with(label) && *s == "val")
            .count();
        assert_eq!(got, want, "{label}");
    }
    for (name, split) in &sa {
        assert!(a.join(format!("images/{split}/{name}.png")).is_file());
        assert!(a.join(format!("labels/{split}/{name}.txt")).is_file());
    }
    // The same seed on reversed input gives the same split; another seed another one.
    let rev: Vec<ExportItem> = items.iter().rev().cloned().collect();
    let b = out_dir(&tmp, "b");
    export(&rev, &opts(7, 0.2), &b).unwrap();
    assert_eq!(splits(&b), sa);
    let c = out_dir(&tmp, "c");
    export(&items, &opts(8, 0.2), &c).unwrap();
    assert_ne!(splits(&c), sa);
    // Fraction 0: no val folder, val points at train.
    let d = out_dir(&tmp, "d");
    assert_eq!(export(&items, &opts(7, 0.0), &d).unwrap().val_images, 0);
    assert!(!d.join("images/val").exists());
    let yaml = std::fs::read_to_string(d.join("data.yaml")).unwrap();
    assert!(yaml.contains("val: images/train\n"), "{yaml}");
    // A fraction out of range is refused before anything is written.
    let e = out_dir(&tmp, "e");
    let err = export(&items, &opts(7, 1.0), &e).unwrap_err();
    assert!(err.contains("val fraction"), "{err}");
    assert!(!e.exists());
}

#[test]
fn identical_items_are_exported_once() {
    let mut items = labelled_items(&[("scratch", 3)]);
    let mut again = items.clone();
    for (i, it) in again.iter_mut().enumerate() {
        it.name = format!("rerun-{i}");
    }
    items.extend(again);
    let tmp = tempfile::tempdir().unwrap();
    let dir = out_dir(&tmp, "coco");
    let report = export(&items, &Format::Coco.into(), &dir).unwrap();
    assert_eq!((report.images, report.duplicates), (3, 3));
    assert_eq!(read_coco(&dir).unwrap().images.len(), 3);
}

#[test]
fn soft_masks_kept_on_request_and_threshold_chosen() {
    // A horizontal ramp 0..=255 across the image.
    let ramp: Vec<u8> = (0..W * H)
        .map(|i| ((i % W) * 255 / (W - 1)) as u8)
        .collect();
    let mut png = Vec::new();
    ::image::ImageEncoder::write_image(
        ::image::codecs::png::PngEncoder::new(&mut png),
        &ramp,
        W,
        H,
        ::image::ExtendedColorType::L8,
    )
    .unwrap();
    let item = ExportItem {
        name: "ramp".into(),
        image_png: rgb_png(W, H, 1),
        mask_png: Some(png.clone()),
        label: "stain".into(),
        provenance: json!(null),
        instance_png: None,
        clean_png: None,
    };
    let tmp = tempfile::tempdir().unwrap();
    let soft = out_dir(&tmp, "soft");
    let opts = ExportOptions {
        keep_soft_masks: true,
        ..Format::Folder.into()
    };
    export(std::slice::from_ref(&item), &opts, &soft).unwrap();
    let (kept, _, _) = decode_mask(&soft.join("masks/ramp_mask.png"));
    assert_eq!(kept, ramp);
    let hard = out_dir(&tmp, "hard");
    export(std::slice::from_ref(&item), &Format::Folder.into(), &hard).unwrap();
    let (bin, _, _) = decode_mask(&hard.join("masks/ramp_mask.png"));
    assert!(bin.iter().all(|&v| v == 0 || v == 255));
    let on = |t: u8| ramp.iter().filter(|&&v| v >= t).count();
    assert_eq!(bin.iter().filter(|&&v| v == 255).count(), on(128));
    // A higher threshold: fewer defect pixels.
    let high = out_dir(&tmp, "high");
    let opts = ExportOptions {
        mask_threshold: 200,
        ..Format::Folder.into()
    };
    export(std::slice::from_ref(&item), &opts, &high).unwrap();
    let (bin, _, _) = decode_mask(&high.join("masks/ramp_mask.png"));
    assert_eq!(bin.iter().filter(|&&v| v == 255).count(), on(200));
}
