//! YOLO-seg export checked against Ultralytics' own rasterisation, and COCO, YOLO and the
//! manifest agreeing on instances, for every example recipe that runs without model weights.
//!
//! Two checks:
//! * `labels_match_ultralytics_fixtures`: the masks under `tests/fixtures/datasets/yolo/masks`
//!   (hand-made hard shapes and masks of the example recipes) are exported; the label files
//!   must equal the committed ones byte for byte, and Ultralytics' `polygons2masks` /
//!   `segments2boxes` results on those labels (stored by `make_yolo_fixtures.py`) must match
//!   our masks (IoU ≥ 0.98 per instance) and boxes. It also checks that our Rust mirror of
//!   `cv2.fillPoly` ([`engine::dataset::rasterize_like_fillpoly`]) gives what Ultralytics gave.
//! * `every_example_recipe_exports_exact_polygons_and_agreeing_counts`: every procedural
//!   example is run (small sizes) and exported as YOLO, COCO and folder; every YOLO line,
//!   rasterised by the Rust mirror, reaches IoU ≥ 0.98 with its region, no region is
//!   unlabelled, and COCO, YOLO and the manifest agree on the instance count per image.
//!
//! `DS_WRITE_YOLO_FIXTURES=1` makes the first test (re)write the label files and the recipe
//! masks instead of comparing (the fixture script does this, then runs Ultralytics).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;
use engine::dataset::{
    components, export, rasterize_like_fillpoly, ExportItem, ExportOptions, Format, InstanceRule,
};

fn fixtures() -> PathBuf {
    repo().join("tests/fixtures/datasets/yolo")
}

fn writing() -> bool {
    std::env::var_os("DS_WRITE_YOLO_FIXTURES").is_some()
}

/// Binarised mask (luma ≥ 128) of PNG bytes.
fn bits(png: &[u8]) -> (u32, u32, Vec<bool>) {
    let m = image::load_from_memory(png).unwrap().to_luma8();
    (
        m.width(),
        m.height(),
        m.pixels().map(|p| p.0[0] >= 128).collect(),
    )
}

fn iou(a: &[bool], b: &[bool]) -> f64 {
    let inter = a.iter().zip(b).filter(|(p, q)| **p && **q).count();
    let union = a.iter().zip(b).filter(|(p, q)| **p || **q).count();
    if union == 0 {
        1.0
    } else {
        inter as f64 / union as f64
    }
}

/// One label line's points in pixels, as Ultralytics reads them at the image's own size:
/// normalised × size in float32, truncated to int32 by `polygon2mask`.
fn line_polygon(line: &str, w: u32, h: u32) -> (usize, Vec<(i64, i64)>) {
    let mut fields = line.split(' ');
    let class = fields.next().unwrap().parse().unwrap();
    let coords: Vec<f32> = fields.map(|f| f.parse().unwrap()).collect();
    assert!(
        coords.len() >= 6 && coords.len().is_multiple_of(2),
        "{line}"
    );
    assert!(coords.iter().all(|c| (0.0..=1.0).contains(c)), "{line}");
    let pts = coords
        .chunks(2)
        .map(|p| ((p[0] * w as f32) as i64, (p[1] * h as f32) as i64))
        .collect();
    (class, pts)
}

/// Checks one image's YOLO lines against its mask: each line's rasterisation has IoU ≥ 0.98
/// with the region it covers, every region is covered by a line, one line per region.
/// Returns the per-line IoUs.
fn check_lines(what: &str, text: &str, mask: &[bool], w: u32, h: u32) -> Vec<f64> {
    let regions = components(mask, w, h);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), regions.len(), "{what}: one line per region");
    let mut covered = vec![false; regions.len()];
    let mut ious = Vec::new();
    for line in lines {
        let (_, poly) = line_polygon(line, w, h);
        let filled = rasterize_like_fillpoly(&poly, w, h);
        let (k, best) = regions
            .iter()
            .enumerate()
            .map(|(k, r)| (k, iou(&filled, r)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap();
        assert!(
            best >= 0.98,
            "{what}: a polygon has IoU {best} with its region"
        );
        covered[k] = true;
        ious.push(best);
    }
    assert!(covered.iter().all(|c| *c), "{what}: a region has no line");
    ious
}

/// Exports one mask (also used as the image) as a YOLO dataset and returns its label text.
fn label_text(name: &str, png: &[u8], tmp: &Path) -> String {
    let item = ExportItem {
        name: name.to_string(),
        image_png: png.to_vec(),
        mask_png: Some(png.to_vec()),
        label: "defect".to_string(),
        provenance: serde_json::Value::Null,
        instance_png: None,
        clean_png: None,
    };
    let dir = tmp.join(name);
    let opts = ExportOptions {
        val_fraction: 0.0,
        ..Format::Yolo.into()
    };
    export(&[item], &opts, &dir).unwrap();
    std::fs::read_to_string(dir.join(format!("labels/train/{name}.txt"))).unwrap()
}

/// The stacked per-instance masks Ultralytics produced for `name` (one `h`-row band each).
fn ultralytics_masks(name: &str, w: u32, h: u32) -> Vec<Vec<bool>> {
    let img = image::open(fixtures().join(format!("ultralytics/{name}.png")))
        .unwrap()
        .to_luma8();
    assert_eq!(img.width(), w, "{name}");
    assert_eq!(img.height() % h, 0, "{name}");
    let px: Vec<bool> = img.pixels().map(|p| p.0[0] > 0).collect();
    px.chunks((w * h) as usize).map(|c| c.to_vec()).collect()
}

#[test]
fn labels_match_ultralytics_fixtures() {
    let tmp = tempfile::tempdir().unwrap();
    if writing() {
        // Masks of the example recipes join the hand-made ones.
        let env = Env::new();
        for (name, path) in run_examples(&env, 2) {
            let png = std::fs::read(&path).unwrap();
            std::fs::write(fixtures().join(format!("masks/{name}.png")), png).unwrap();
        }
    }
    let boxes: serde_json::Value = if writing() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&std::fs::read(fixtures().join("ultralytics/boxes.json")).unwrap())
            .unwrap()
    };
    let mut names: Vec<PathBuf> = std::fs::read_dir(fixtures().join("masks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    assert!(names.len() >= 10, "too few fixture masks");
    let mut checked = 0;
    for path in names {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let png = std::fs::read(&path).unwrap();
        let text = label_text(&name, &png, tmp.path());
        let committed = fixtures().join(format!("labels/{name}.txt"));
        if writing() {
            std::fs::create_dir_all(committed.parent().unwrap()).unwrap();
            std::fs::write(&committed, &text).unwrap();
            continue;
        }
        assert_eq!(
            std::fs::read_to_string(&committed).unwrap(),
            text,
            "{name}: label file differs from the committed one (rerun make_yolo_fixtures.py if \
             the polygon rule changed on purpose)"
        );
        let (w, h, mask) = bits(&png);
        check_lines(&name, &text, &mask, w, h);
        // Ultralytics' own rasterisation of each line: IoU ≥ 0.98 with its region, and the
        // same pixels as our fillPoly mirror.
        let theirs = ultralytics_masks(&name, w, h);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(theirs.len(), lines.len(), "{name}");
        let regions = components(&mask, w, h);
        for (line, m) in lines.iter().zip(&theirs) {
            let best = regions.iter().map(|r| iou(m, r)).fold(0.0, f64::max);
            assert!(best >= 0.98, "{name}: Ultralytics' mask has IoU {best}");
            let (_, poly) = line_polygon(line, w, h);
            assert!(
                &rasterize_like_fillpoly(&poly, w, h) == m,
                "{name}: the fillPoly mirror differs from Ultralytics"
            );
        }
        // segments2boxes: the box of the boundary-pixel centres.
        let theirs = boxes[&name].as_array().unwrap();
        assert_eq!(theirs.len(), lines.len(), "{name}");
        for (line, b) in lines.iter().zip(theirs) {
            let (_, poly) = line_polygon(line, w, h);
            let x0 = poly.iter().map(|p| p.0).min().unwrap() as f64 + 0.5;
            let x1 = poly.iter().map(|p| p.0).max().unwrap() as f64 + 0.5;
            let y0 = poly.iter().map(|p| p.1).min().unwrap() as f64 + 0.5;
            let y1 = poly.iter().map(|p| p.1).max().unwrap() as f64 + 0.5;
            let want = [
                (x0 + x1) / 2.0 / f64::from(w),
                (y0 + y1) / 2.0 / f64::from(h),
                (x1 - x0) / f64::from(w),
                (y1 - y0) / f64::from(h),
            ];
            for (got, want) in b.as_array().unwrap().iter().zip(want) {
                let got = got.as_f64().unwrap();
                assert!((got - want).abs() < 1e-5, "{name}: box {b} vs {want:?}");
            }
        }
        checked += 1;
    }
    assert!(writing() || checked >= 10);
    if !writing() {
        // data.yaml as Ultralytics' check_det_dataset resolved it from another folder.
        let yaml: serde_json::Value = serde_json::from_slice(
            &std::fs::read(fixtures().join("ultralytics/data_yaml.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(yaml["train"], "images/train");
        assert_eq!(yaml["val"], "images/val");
        assert_eq!(yaml["train_exists"], true);
        assert_eq!(yaml["val_exists"], true);
    }
}

/// The procedural example recipes (all that run without model weights) with the `--set`s
/// that make them small.
const EXAMPLES: &[(&str, &[&str])] = &[
    (
        "brushed-metal-scratch",
        &[
            "plate.width=160",
            "plate.height=128",
            "mark.width=160",
            "mark.height=128",
        ],
    ),
    (
        "concrete-stain",
        &[
            "slab.width=160",
            "slab.height=128",
            "blotch.width=160",
            "blotch.height=128",
            "oil.width=160",
            "oil.height=128",
        ],
    ),
    ("cracks-on-concrete", &["slab.width=160", "slab.height=128"]),
    ("photo-folder-chips", &[]),
    (
        "scratches-on-brushed-metal",
        &["plate.width=160", "plate.height=128"],
    ),
    ("stains-on-fabric", &["cloth.width=160", "cloth.height=128"]),
];

/// Runs every example `count` times into `env`'s store; returns `(name, mask path)` of each
/// output with a mask.
fn run_examples(env: &Env, count: usize) -> Vec<(String, PathBuf)> {
    let out = env.out();
    let mut masks = Vec::new();
    for (name, sets) in EXAMPLES {
        let mut args = vec![
            "run".to_string(),
            example(&format!("{name}.json"))
                .to_string_lossy()
                .into_owned(),
            "--count".into(),
            count.to_string(),
            "--out".into(),
            out.to_string_lossy().into_owned(),
        ];
        for s in *sets {
            args.extend(["--set".to_string(), s.to_string()]);
        }
        let o = env.cmd().current_dir(repo()).args(&args).output().unwrap();
        assert!(o.status.success(), "{name}: {}", stderr(&o));
    }
    for run in env.history() {
        let graph = run["graph"].as_str().unwrap_or("recipe").to_string();
        for o in run["outputs"].as_array().unwrap() {
            if let Some(m) = o["mask_path"].as_str() {
                masks.push((format!("{graph}-{}", o["id"]), PathBuf::from(m)));
            }
        }
    }
    masks
}

fn manifest_items(dir: &Path) -> BTreeMap<String, serde_json::Value> {
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    m["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_string(), e.clone()))
        .collect()
}

#[test]
fn every_example_recipe_exports_exact_polygons_and_agreeing_counts() {
    let env = Env::new();
    let outputs = run_examples(&env, 3);
    assert!(outputs.len() >= 15, "{} outputs with masks", outputs.len());
    for rule in InstanceRule::ALL {
        let dirs: BTreeMap<&str, PathBuf> = ["yolo", "coco", "folder"]
            .into_iter()
            .map(|f| (f, env.dir.path().join(format!("{f}-{}", rule.name()))))
            .collect();
        for (format, dir) in &dirs {
            let o = env.run(&[
                "export",
                "--format",
                format,
                "--instances",
                rule.name(),
                "--val-fraction",
                "0.3",
                "--out",
                dir.to_str().unwrap(),
            ]);
            assert!(o.status.success(), "{format}: {}", stderr(&o));
        }
        let yolo = manifest_items(&dirs["yolo"]);
        let coco_items = manifest_items(&dirs["coco"]);
        let folder = manifest_items(&dirs["folder"]);
        let coco = engine::dataset::read_coco(&dirs["coco"]).unwrap();
        assert_eq!(yolo.len(), folder.len());
        let mut lines_total = 0;
        let mut worst = 1.0f64;
        let mut per_defect_checked = 0;
        for (name, entry) in &yolo {
            let mask_rel = folder[name]["mask"].as_str().unwrap();
            let (w, h, mask) = bits(&std::fs::read(dirs["folder"].join(mask_rel)).unwrap());
            let text =
                std::fs::read_to_string(dirs["yolo"].join(entry["label_file"].as_str().unwrap()))
                    .unwrap();
            let lines = text.lines().count();
            lines_total += lines;
            // COCO, YOLO and the manifest agree on the instance count.
            let img = coco
                .images
                .iter()
                .find(|i| i.file_name == format!("{name}.png"))
                .unwrap_or_else(|| panic!("{name} not in COCO"));
            let anns = coco
                .annotations
                .iter()
                .filter(|a| a.image_id == img.id)
                .count();
            let counts = [
                lines,
                anns,
                entry["instances"].as_u64().unwrap() as usize,
                coco_items[name]["instances"].as_u64().unwrap() as usize,
                folder[name]["instances"].as_u64().unwrap() as usize,
            ];
            assert!(
                counts.iter().all(|c| *c == counts[0]),
                "{name} ({}): YOLO lines, COCO annotations, manifests: {counts:?}",
                rule.name()
            );
            if rule == InstanceRule::Components {
                for iou in check_lines(name, &text, &mask, w, h) {
                    worst = worst.min(iou);
                }
            } else {
                // Per-defect: every mask pixel lies in some line's rasterisation.
                let mut union = vec![false; mask.len()];
                for line in text.lines() {
                    let (_, poly) = line_polygon(line, w, h);
                    for (u, f) in union.iter_mut().zip(rasterize_like_fillpoly(&poly, w, h)) {
                        *u |= f;
                    }
                }
                let lost = mask.iter().zip(&union).filter(|(m, u)| **m && !**u).count();
                assert_eq!(lost, 0, "{name}: {lost} mask pixels in no polygon");
                // At most the generator's own count of instances (Stain 3, Scratch 2, Chip 2);
                // the painted/composited masks of the other recipes fall back to regions.
                let graph = entry["provenance"]["graph"].as_str().unwrap_or("");
                let most = match graph {
                    "stains-on-fabric" => Some(3),
                    "scratches-on-brushed-metal" | "photo-folder-chips" => Some(2),
                    "cracks-on-concrete" => Some(1),
                    _ => None,
                };
                if let Some(most) = most {
                    per_defect_checked += 1;
                    assert!(counts[0] <= most, "{name} ({graph}): {counts:?} > {most}");
                }
            }
        }
        assert!(lines_total > 0);
        if rule == InstanceRule::PerDefect {
            assert!(per_defect_checked >= 10, "{per_defect_checked}");
        }
        if rule == InstanceRule::Components {
            println!("components: worst polygon IoU {worst} over {lines_total} lines");
        } else {
            println!("per-defect: {lines_total} lines");
        }
    }
}

/// A small YOLO dataset with a validation split (written to `DS_YOLO_DATASET_OUT` for the
/// fixture script's `check_det_dataset` run; otherwise to a temporary folder).
#[test]
fn write_small_dataset() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::env::var_os("DS_YOLO_DATASET_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| tmp.path().join("ds"));
    let mut items = Vec::new();
    for (i, label) in ["scratch", "dent"].iter().cycle().take(10).enumerate() {
        let mut m = image::GrayImage::new(16, 12);
        m.put_pixel(i as u32, 3, image::Luma([255]));
        m.put_pixel(i as u32 + 1, 4, image::Luma([255]));
        let mut png = Vec::new();
        m.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        items.push(ExportItem {
            name: format!("item-{i}"),
            image_png: png.clone(),
            mask_png: Some(png),
            label: label.to_string(),
            provenance: serde_json::Value::Null,
            instance_png: None,
            clean_png: None,
        });
    }
    let report = export(&items, &Format::Yolo.into(), &dir).unwrap();
    assert_eq!(
        report.val_images, 2,
        "20 % of five scratches and five dents"
    );
    let yaml = std::fs::read_to_string(dir.join("data.yaml")).unwrap();
    assert!(!yaml.lines().any(|l| l.starts_with("path:")), "{yaml}");
    assert!(dir.join("images/val").is_dir() && dir.join("labels/val").is_dir());
}

/// Re-running the same seeds stores the same images again: the export keeps one copy and
/// says how many it left out. Names sort in output order (zero-padded).
#[test]
fn identical_reruns_are_exported_once() {
    let env = Env::new();
    let recipe = example("cracks-on-concrete.json");
    for _ in 0..2 {
        let o = env.run(&[
            "run",
            recipe.to_str().unwrap(),
            "--count",
            "6",
            "--seed",
            "5",
            "--set",
            "slab.width=96",
            "--set",
            "slab.height=64",
            "--out",
            env.out().to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let dir = env.dir.path().join("coco");
    let o = env.run(&["export", "--format", "coco", "--out", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("exported 6 image(s)") && stdout(&o).contains("6 duplicate(s)"),
        "{}",
        stdout(&o)
    );
    let items = manifest_items(&dir);
    let names: Vec<&String> = items.keys().collect();
    assert!(names.iter().all(|n| n.len() == names[0].len()), "{names:?}");
    for e in items.values() {
        let src = e["provenance"]["source_file"].as_str().unwrap();
        assert!(
            Path::new(src).is_absolute() && Path::new(src).is_file(),
            "{src}"
        );
    }
}

/// The ExportDataset node takes the same options as `export`.
#[test]
fn export_dataset_node_splits_yolo() {
    let env = Env::new();
    let graph = env.write(
        "ds.json",
        r#"{"format": "defect-studio/graph", "version": 1,
            "nodes": {"tex": {"kind": "Texture", "version": 1, "params": {"width": 64, "height": 48, "material": "concrete"}},
                      "dent": {"kind": "Dent", "version": 1, "params": {"radius": 10.0}},
                      "ds": {"kind": "ExportDataset", "version": 1, "params": {"format": "yolo", "label": "dent", "folder": "sets/{graph}", "val_fraction": 0.5, "mask_threshold": 100}}},
            "links": [{"from": ["tex", "image"], "to": ["dent", "image"]},
                      {"from": ["dent", "image"], "to": ["ds", "image"]},
                      {"from": ["dent", "mask"], "to": ["ds", "mask"]}]}"#,
    );
    let o = env.run(&[
        "run",
        graph.to_str().unwrap(),
        "--count",
        "4",
        "--out",
        env.out().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ds = env.out().join("sets/ds");
    let count = |p: &str| {
        std::fs::read_dir(ds.join(p))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    assert_eq!((count("images/train"), count("images/val")), (2, 2));
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ds.join("manifest.json")).unwrap()).unwrap();
    assert!(
        m["note"].as_str().unwrap().contains(">= 100"),
        "{}",
        m["note"]
    );
}
