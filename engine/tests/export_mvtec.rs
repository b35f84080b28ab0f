//! The anomaly layouts (MVTec-AD, anomalib folder): what anomalib's own dataset builders make of
//! our exports (stored tables, `tests/fixtures/datasets/`, written by
//! `make_anomalib_fixtures.py` with anomalib installed), the train/test split, and the clean
//! image of each work item from the recipe (SaveImage's `clean` input) to the dataset.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use engine::codec::{encode_gray8_png, encode_rgba8_png};
use engine::dataset::{export, ExportItem, ExportOptions, Format};

/// Side of the fixture images.
const S: u32 = 8;
/// Blue channel of pixel (0, 0): which image of an item this is.
const DEFECT: u8 = 0;
const CLEAN: u8 = 1;
const GOOD: u8 = 2;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/datasets")
}

/// An 8×8 image whose pixel (0, 0) names the item (`idx`) and the kind of image.
fn image(idx: usize, kind: u8) -> Vec<u8> {
    let mut rgba = Vec::with_capacity((S * S * 4) as usize);
    for p in 0..S * S {
        let v = (p * 3) as u8;
        rgba.extend_from_slice(&[v, v, 100 + kind, 255]);
    }
    rgba[0] = (idx & 0xff) as u8;
    rgba[1] = (idx >> 8) as u8;
    rgba[2] = kind;
    encode_rgba8_png(S, S, &rgba).expect("image PNG")
}

/// An 8×8 mask whose pixels spell `idx` in binary (pixel 0 always on, pixel 1 + b is bit b).
fn mask(idx: usize) -> Vec<u8> {
    let mut grey = vec![0u8; (S * S) as usize];
    grey[0] = 255;
    for b in 0..12 {
        if idx >> b & 1 == 1 {
            grey[1 + b] = 255;
        }
    }
    encode_gray8_png(S, S, &grey).expect("mask PNG")
}

/// The item index and kind an image file says.
fn read_image(path: &Path) -> (usize, u8) {
    let img = image::open(path).expect("an image").to_rgba8();
    let p = img.get_pixel(0, 0).0;
    (usize::from(p[0]) | usize::from(p[1]) << 8, p[2])
}

/// The item index a mask file spells.
fn read_mask(path: &Path) -> usize {
    let m = image::open(path).expect("a mask").to_luma8();
    let px = m.as_raw();
    assert_eq!(px[0], 255, "{}: not a fixture mask", path.display());
    (0..12).filter(|b| px[1 + b] == 255).map(|b| 1 << b).sum()
}

/// The fixtures' deterministic items: 1,010 cracks without a clean image (all in test, so
/// `test/crack` needs 4-digit names), 30 scratches with their clean images (split) and 15 good
/// images (split), interleaved.
fn fixture_items() -> Vec<ExportItem> {
    let mut items = Vec::new();
    let mut push = |label: &str, clean: bool| {
        let idx = items.len();
        let good = label == "good";
        items.push(ExportItem {
            name: format!("item-{idx:04}"),
            image_png: image(idx, if good { GOOD } else { DEFECT }),
            mask_png: (!good).then(|| mask(idx)),
            label: label.to_string(),
            provenance: serde_json::json!({ "idx": idx }),
            clean_png: clean.then(|| image(idx, CLEAN)),
            instance_png: None,
        });
    };
    for k in 0..1010 {
        push("crack", false);
        if k % 34 == 5 {
            push("scratch", true);
        }
        if k % 67 == 11 {
            push("good", false);
        }
    }
    items
}

fn opts(format: Format) -> ExportOptions {
    ExportOptions {
        seed: 7,
        ..ExportOptions::from(format)
    }
}

/// A table anomalib's builder made of our export: `(split, label, label_index, image, mask)`,
/// paths relative to the export folder, `mask` empty when none, in anomalib's row order.
type Row = (String, String, i64, String, String);

fn stored_table(name: &str) -> (serde_json::Value, Vec<Row>) {
    let path = fixtures().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run make_anomalib_fixtures.py)", path.display()));
    let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let rows = v["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            let s = |i: usize| r[i].as_str().expect("a string").to_string();
            (s(0), s(1), r[2].as_i64().expect("label_index"), s(3), s(4))
        })
        .collect();
    (v, rows)
}

/// Every PNG under `dir`, relative, `/`-separated.
fn pngs(dir: &Path) -> BTreeSet<String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        for e in std::fs::read_dir(dir).expect("a folder").flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else if p.extension().is_some_and(|x| x == "png") {
                let rel = p.strip_prefix(root).expect("under the root");
                out.insert(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, dir, &mut out);
    out
}

/// Checks a re-export against anomalib's stored table: the same files, and every row's image
/// and mask belong together by content (the index each spells), with the label anomalib gave;
/// and anomalib's dataset class loaded as many samples per split as the table has.
fn check_against_table(dir: &Path, meta: &serde_json::Value, rows: &[Row], normal_label: &str) {
    for split in ["train", "test"] {
        let n = rows.iter().filter(|r| r.0 == split).count();
        assert_eq!(meta["dataset_lengths"][split], n, "{split}");
    }
    let mut listed: BTreeSet<String> = rows.iter().map(|r| r.3.clone()).collect();
    listed.extend(rows.iter().filter(|r| !r.4.is_empty()).map(|r| r.4.clone()));
    assert_eq!(
        pngs(dir),
        listed,
        "the export's files differ from those anomalib paired"
    );
    for (split, label, index, img, mask) in rows {
        let (idx, kind) = read_image(&dir.join(img));
        if *index == 1 {
            assert_eq!(kind, DEFECT, "{img}: anomalous but not a defect image");
            assert_eq!(split, "test", "{img}");
            assert!(!mask.is_empty(), "{img}: no mask");
            assert_eq!(read_mask(&dir.join(mask)), idx, "{img} paired with {mask}");
        } else {
            assert_eq!(*index, 0, "{img}");
            assert!(
                kind == CLEAN || kind == GOOD,
                "{img}: normal but kind {kind}"
            );
            assert!(mask.is_empty(), "{img}: a good image with a mask");
            if !normal_label.is_empty() {
                assert_eq!(label, normal_label, "{img}");
            }
        }
    }
}

#[test]
fn anomalib_mvtec_builder_pairs_every_mask_of_our_export() {
    let (meta, rows) = stored_table("anomalib_mvtec_samples.json");
    assert_eq!(meta["builder"], "make_mvtec_ad_dataset");
    let tmp = tempfile::tempdir().expect("temp");
    let dir = tmp.path().join("mvtec");
    let items = fixture_items();
    let report = export(&items, &opts(Format::Mvtec), &dir).expect("export");
    check_against_table(&dir, &meta, &rows, "good");
    // What the table says about the layout itself.
    let defects = rows.iter().filter(|r| r.2 == 1).count();
    assert!(defects >= 1001, "{defects} defect images");
    for split in ["train", "test"] {
        assert!(
            rows.iter().any(|r| r.0 == split && r.2 == 0),
            "no good image in {split}"
        );
    }
    assert!(rows.iter().all(|r| r.2 == 0 || r.0 == "test"));
    assert!(rows.iter().any(|r| r.3 == "test/crack/0999.png"));
    assert!(rows
        .iter()
        .any(|r| r.3 == "test/crack/1000.png" && r.4 == "ground_truth/crack/1000_mask.png"));
    // Train scratch items gave their clean image and left their defect image out.
    let train_scratch = report.left_out;
    assert!(train_scratch > 0);
    let written = rows.len();
    assert_eq!(report.images, written);
    assert_eq!(written + train_scratch, items.len() + 30);
}

#[test]
fn anomalib_folder_builder_pairs_every_mask_of_our_export() {
    let (meta, rows) = stored_table("anomalib_folder_samples.json");
    assert_eq!(meta["builder"], "make_folder_dataset");
    let tmp = tempfile::tempdir().expect("temp");
    let dir = tmp.path().join("folder");
    export(&fixture_items(), &opts(Format::AnomalibFolder), &dir).expect("export");
    check_against_table(&dir, &meta, &rows, "");
    assert!(rows.iter().filter(|r| r.2 == 1).count() >= 1001);
    assert!(rows
        .iter()
        .any(|r| r.3 == "abnormal/1000.png" && r.4 == "mask/1000_mask.png"));
    // normal/ is anomalib's train split, normal_test/ its test split.
    for (split, folder) in [("train", "normal/"), ("test", "normal_test/")] {
        assert!(rows.iter().any(|r| r.0 == split && r.3.starts_with(folder)));
        assert!(rows
            .iter()
            .filter(|r| r.3.starts_with(folder))
            .all(|r| r.0 == split && r.2 == 0));
    }
}

/// The MVTec and anomalib folder layouts hold the same items in the same splits.
#[test]
fn both_layouts_split_items_alike() {
    let items = fixture_items();
    let tmp = tempfile::tempdir().expect("temp");
    let split_of = |format: Format| -> BTreeMap<(usize, u8), &'static str> {
        let dir = tmp.path().join(format.name());
        export(&items, &opts(format), &dir).expect("export");
        pngs(&dir)
            .into_iter()
            .filter(|p| !p.ends_with("_mask.png"))
            .map(|p| {
                let split = if p.starts_with("train/") || p.starts_with("normal/") {
                    "train"
                } else {
                    "test"
                };
                (read_image(&dir.join(&p)), split)
            })
            .collect()
    };
    let mvtec = split_of(Format::Mvtec);
    assert_eq!(mvtec, split_of(Format::AnomalibFolder));
    // An item's clean and defect images are in one split: a written defect image's clean
    // image is in test too.
    for (&(idx, kind), &split) in &mvtec {
        if kind == DEFECT {
            assert_eq!(split, "test");
            if let Some(s) = mvtec.get(&(idx, CLEAN)) {
                assert_eq!(*s, "test", "item {idx}");
            }
        }
    }
    // Stratified: ceil(30 · 0.2) = 6 scratch items and ceil(15 · 0.2) = 3 good items in test.
    let count = |kind: u8, split: &str| {
        mvtec
            .iter()
            .filter(|(k, s)| k.1 == kind && **s == split)
            .count()
    };
    assert_eq!((count(CLEAN, "test"), count(CLEAN, "train")), (6, 24));
    assert_eq!((count(GOOD, "test"), count(GOOD, "train")), (3, 12));
}

/// The split depends on the seed, and only on it (and the items).
#[test]
fn the_split_is_seeded() {
    let items = fixture_items();
    let tmp = tempfile::tempdir().expect("temp");
    let test_goods = |seed: u64, sub: &str| -> BTreeSet<usize> {
        let dir = tmp.path().join(sub);
        let o = ExportOptions {
            seed,
            ..ExportOptions::from(Format::Mvtec)
        };
        export(&items, &o, &dir).expect("export");
        pngs(&dir)
            .into_iter()
            .filter(|p| p.starts_with("test/good/"))
            .map(|p| read_image(&dir.join(p)).0)
            .collect()
    };
    let a = test_goods(1, "a");
    assert_eq!(a, test_goods(1, "b"));
    assert_ne!(a, test_goods(2, "c"));
}

#[test]
fn an_export_without_good_images_in_train_or_test_is_refused() {
    let tmp = tempfile::tempdir().expect("temp");
    // Defect items only, no clean images: nothing for train.
    let items: Vec<ExportItem> = fixture_items()
        .into_iter()
        .filter(|i| i.label == "crack")
        .take(20)
        .collect();
    for format in [Format::Mvtec, Format::AnomalibFolder] {
        let dir = tmp.path().join(format.name());
        let err = export(&items, &opts(format), &dir).unwrap_err();
        assert!(
            err.contains("good images") && err.contains("train"),
            "{err}"
        );
        assert!(err.contains("clean"), "{err}");
        assert!(!dir.exists(), "nothing is written");
    }
    // One good item: train or test goes without.
    let mut one = items.clone();
    one.push(ExportItem {
        name: "g".into(),
        image_png: image(999, GOOD),
        mask_png: None,
        label: "good".into(),
        provenance: serde_json::Value::Null,
        clean_png: None,
        instance_png: None,
    });
    let err = export(&one, &opts(Format::Mvtec), &tmp.path().join("one")).unwrap_err();
    assert!(err.contains("would have none"), "{err}");
    // A test fraction outside 0..1 is named.
    let o = ExportOptions {
        val_fraction: 1.5,
        ..opts(Format::Mvtec)
    };
    let err = export(&fixture_items(), &o, &tmp.path().join("f")).unwrap_err();
    assert!(err.contains("1.5"), "{err}");
}

#[test]
fn a_bad_clean_image_names_its_item() {
    let tmp = tempfile::tempdir().expect("temp");
    let mut items = fixture_items();
    let k = items
        .iter()
        .position(|i| i.clean_png.is_some())
        .expect("one");
    items[k].clean_png = Some(encode_rgba8_png(4, 4, &[0; 64]).expect("png"));
    let err = export(&items, &opts(Format::Mvtec), &tmp.path().join("a")).unwrap_err();
    assert!(err.contains(&items[k].name) && err.contains("4x4"), "{err}");
    items[k].clean_png = Some(b"not a png".to_vec());
    let err = export(&items, &opts(Format::Mvtec), &tmp.path().join("b")).unwrap_err();
    assert!(
        err.contains(&items[k].name) && err.contains("clean"),
        "{err}"
    );
}

#[test]
fn names_are_padded_to_the_largest_folder() {
    // Few items: three digits.
    let items: Vec<ExportItem> = fixture_items()
        .into_iter()
        .filter(|i| i.label != "crack")
        .collect();
    let tmp = tempfile::tempdir().expect("temp");
    let dir = tmp.path().join("small");
    export(&items, &opts(Format::Mvtec), &dir).expect("export");
    let files = pngs(&dir);
    assert!(files.contains("train/good/000.png"), "{files:?}");
    assert!(
        files.contains("ground_truth/scratch/000_mask.png"),
        "{files:?}"
    );
    assert!(files.iter().all(|f| {
        let stem = f.rsplit('/').next().unwrap_or("").trim_end_matches(".png");
        stem.trim_end_matches("_mask").len() == 3
    }));
    // The manifest maps each file back to its item, with the clean image beside its defect
    // image.
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("manifest"))
            .expect("JSON");
    let entries = m["items"].as_array().expect("items");
    assert_eq!(
        entries.len(),
        files.iter().filter(|f| !f.ends_with("_mask.png")).count()
    );
    for e in entries {
        let image = e["image"].as_str().expect("image");
        let (idx, kind) = read_image(&dir.join(image));
        assert_eq!(e["name"], format!("item-{idx:04}"));
        assert_eq!(e["clean_image"].as_bool().unwrap_or(false), kind == CLEAN);
        assert_eq!(e["split"], image.split('/').next().expect("split"));
        if let Some(clean) = e["clean"].as_str() {
            assert_eq!(read_image(&dir.join(clean)), (idx, CLEAN));
            assert!(clean.starts_with("test/good/"));
        }
    }
}

/// With every test-fraction and seed, MVTec's pairing rule holds on the names: per folder the
/// sorted images and sorted masks pair by stem.
#[test]
fn sorted_images_and_masks_pair_by_stem() {
    let items = fixture_items();
    let tmp = tempfile::tempdir().expect("temp");
    for (k, f) in [0.1, 0.5, 0.9].into_iter().enumerate() {
        let dir = tmp.path().join(format!("f{k}"));
        let o = ExportOptions {
            val_fraction: f,
            seed: k as u64,
            ..ExportOptions::from(Format::Mvtec)
        };
        export(&items, &o, &dir).expect("export");
        let files = pngs(&dir);
        let images: Vec<&String> = files
            .iter()
            .filter(|p| p.starts_with("test/") && !p.starts_with("test/good/"))
            .collect();
        let masks: Vec<&String> = files
            .iter()
            .filter(|p| p.starts_with("ground_truth/"))
            .collect();
        assert_eq!(images.len(), masks.len());
        for (i, m) in images.iter().zip(&masks) {
            let stem = i.trim_start_matches("test/").trim_end_matches(".png");
            assert_eq!(**m, format!("ground_truth/{stem}_mask.png"));
            assert_eq!(read_mask(&dir.join(m)), read_image(&dir.join(i)).0);
        }
    }
}

/// Writes the fixture exports for `tests/fixtures/datasets/make_anomalib_fixtures.py` into
/// `$ANOMALIB_EXPORTS/{mvtec,anomalib-folder}` (run by the script, not by `cargo test`).
#[test]
#[ignore = "run by make_anomalib_fixtures.py"]
fn write_fixture_exports() {
    let root = PathBuf::from(std::env::var("ANOMALIB_EXPORTS").expect("set ANOMALIB_EXPORTS"));
    let items = fixture_items();
    for format in [Format::Mvtec, Format::AnomalibFolder] {
        export(&items, &opts(format), &root.join(format.name())).expect("export");
    }
}

/// The ExportDataset node offers exactly the formats the exporter writes (one list: a test,
/// since the node catalogue cannot depend on the engine).
#[test]
fn export_dataset_offers_every_format() {
    let format = nodes::builtin::EXPORT_DATASET
        .params
        .iter()
        .find(|p| p.name == "format")
        .expect("a format parameter");
    let nodes::ParamKind::Choice { options, .. } = &format.kind else {
        panic!("format is not a choice");
    };
    let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
    assert_eq!(options.to_vec(), names);
}
