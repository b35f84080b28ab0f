//! `inspect::data::read_dataset`: every layout it recognises (our exports written by our own
//! exporter, an MVTec AD category as downloaded, image + mask folders, class folders), the
//! labels, masks and splits it reads, the data hash, and every bad input's error.

use std::path::Path;

use engine::codec::{encode_gray8_png, encode_rgba8_png};
use engine::dataset::{export, ExportItem, ExportOptions, Format};
use engine::inspect::data::{data_hash, read_dataset, Layout};
use engine::inspect::GOOD;

const S: u32 = 16;

/// A 16×16 RGB image whose colour encodes `idx`.
fn image(idx: usize) -> Vec<u8> {
    let mut rgba = Vec::new();
    for p in 0..S * S {
        rgba.extend_from_slice(&[(idx * 10) as u8, (p % 251) as u8, 7, 255]);
    }
    encode_rgba8_png(S, S, &rgba).expect("png")
}

/// The defect mask of item `idx`: a rectangle that depends on it (luma 255), row-major bools.
fn mask_bits(idx: usize) -> Vec<bool> {
    let (x0, y0) = (1 + idx % 5, 2 + idx % 3);
    (0..S * S)
        .map(|p| {
            let (x, y) = ((p % S) as usize, (p / S) as usize);
            x >= x0 && x < x0 + 6 && y >= y0 && y < y0 + 4
        })
        .collect()
}

fn mask_png(bits: &[bool]) -> Vec<u8> {
    let grey: Vec<u8> = bits.iter().map(|&b| if b { 255 } else { 0 }).collect();
    encode_gray8_png(S, S, &grey).expect("png")
}

/// 4 good items and 4 `scratch` items (with clean images, so the anomaly layouts have good
/// images in both splits).
fn items() -> Vec<ExportItem> {
    (0..8)
        .map(|i| {
            let defect = i >= 4;
            ExportItem {
                name: format!("item{i}"),
                image_png: image(i),
                mask_png: Some(mask_png(&if defect {
                    mask_bits(i)
                } else {
                    vec![false; (S * S) as usize]
                })),
                label: if defect { "scratch" } else { GOOD }.to_string(),
                provenance: serde_json::json!({ "i": i }),
                instance_png: None,
                clean_png: defect.then(|| image(10 + i)),
            }
        })
        .collect()
}

/// The item index an image encodes (its red channel / 10), `10 +` for clean images.
fn idx_of(path: &Path) -> usize {
    let img = image::open(path).expect("image").to_rgb8();
    usize::from(img.get_pixel(0, 0).0[0]) / 10
}

fn exported(format: Format) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("set");
    let mut opts = ExportOptions::from(format);
    opts.val_fraction = 0.5;
    export(&items(), &opts, &out).expect("export");
    dir
}

/// Reads an export and checks labels and that every mask equals its item's.
fn check_export(format: Format, layout: Layout) -> engine::inspect::data::LabeledSet {
    let dir = exported(format);
    let set = read_dataset(&dir.path().join("set")).expect("read");
    assert_eq!(set.layout, layout);
    assert_eq!(set.labels, vec![GOOD.to_string(), "scratch".to_string()]);
    assert!(set.has_masks(), "{format:?}: masks expected");
    for s in &set.samples {
        let img = s.load_image().expect("decodes");
        let i = idx_of(&s.path);
        let mask = s
            .load_mask(img.width(), img.height())
            .expect("mask loads")
            .unwrap_or_else(|| image::GrayImage::new(S, S));
        let bits: Vec<bool> = mask.pixels().map(|p| p.0[0] == 255).collect();
        if s.label == "scratch" {
            assert!(
                (4..8).contains(&i),
                "{}: a defect image of item {i}",
                s.path.display()
            );
            assert_eq!(
                bits,
                mask_bits(i),
                "{format:?}: mask of {}",
                s.path.display()
            );
        } else {
            assert!(
                i < 4 || (14..18).contains(&i),
                "{}: good image of item {i}",
                s.path.display()
            );
            assert!(
                !bits.iter().any(|&b| b),
                "{}: a good image's mask",
                s.path.display()
            );
        }
    }
    set
}

#[test]
fn folder_export() {
    let set = check_export(Format::Folder, Layout::Folder);
    assert_eq!(set.samples.len(), 8);
    assert_eq!(set.counts(), vec![(GOOD.into(), 4), ("scratch".into(), 4)]);
}

#[test]
fn coco_export_masks_from_rle() {
    let set = check_export(Format::Coco, Layout::Coco);
    assert_eq!(set.samples.len(), 8);
    assert!(set.samples.iter().any(|s| !s.shapes.is_empty()));
}

#[test]
fn coco_without_manifest_labels_from_categories() {
    let dir = exported(Format::Coco);
    let root = dir.path().join("set");
    std::fs::remove_file(root.join("manifest.json")).expect("rm");
    let set = read_dataset(&root).expect("read");
    assert_eq!(set.layout, Layout::Coco);
    assert_eq!(set.counts(), vec![(GOOD.into(), 4), ("scratch".into(), 4)]);
}

#[test]
fn yolo_export_masks_from_polygons_and_splits() {
    let set = check_export(Format::Yolo, Layout::Yolo);
    assert_eq!(set.samples.len(), 8);
    let val = set
        .samples
        .iter()
        .filter(|s| s.split.as_deref() == Some("val"))
        .count();
    assert_eq!(val, 4, "half of each label in val");
}

#[test]
fn yolo_without_manifest_labels_from_data_yaml() {
    let dir = exported(Format::Yolo);
    let root = dir.path().join("set");
    std::fs::remove_file(root.join("manifest.json")).expect("rm");
    let set = read_dataset(&root).expect("read");
    assert_eq!(set.layout, Layout::Yolo);
    assert_eq!(set.counts(), vec![(GOOD.into(), 4), ("scratch".into(), 4)]);
    for s in set.samples.iter().filter(|s| s.label == "scratch") {
        let m = s.load_mask(S, S).expect("mask").expect("some");
        let bits: Vec<bool> = m.pixels().map(|p| p.0[0] == 255).collect();
        assert_eq!(bits, mask_bits(idx_of(&s.path)));
    }
}

#[test]
fn mvtec_export() {
    let set = check_export(Format::Mvtec, Layout::Mvtec);
    let train: Vec<_> = set
        .samples
        .iter()
        .filter(|s| s.split.as_deref() == Some("train"))
        .collect();
    assert!(!train.is_empty());
    assert!(
        train.iter().all(|s| s.label == GOOD),
        "MVTec train holds only good images"
    );
    assert!(set
        .samples
        .iter()
        .any(|s| s.split.as_deref() == Some("test") && s.label == "scratch"));
}

#[test]
fn anomalib_folder_export() {
    let set = check_export(Format::AnomalibFolder, Layout::AnomalibFolder);
    assert!(set.samples.iter().any(|s| s.label == "scratch"));
}

/// Writes `bytes` to `root/rel`, creating folders.
fn put(root: &Path, rel: &str, bytes: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, bytes).expect("write");
}

/// An MVTec AD category as downloaded (no manifest): `ground_truth/<defect>/<stem>_mask.png`.
fn mvtec_download(root: &Path) {
    put(root, "train/good/000.png", &image(0));
    put(root, "train/good/001.png", &image(1));
    put(root, "test/good/000.png", &image(2));
    put(root, "test/crack/000.png", &image(5));
    put(root, "test/crack/001.png", &image(6));
    put(
        root,
        "ground_truth/crack/000_mask.png",
        &mask_png(&mask_bits(5)),
    );
    put(
        root,
        "ground_truth/crack/001_mask.png",
        &mask_png(&mask_bits(6)),
    );
    put(root, "readme.txt", b"MVTec AD");
}

#[test]
fn mvtec_as_downloaded() {
    let dir = tempfile::tempdir().expect("tempdir");
    mvtec_download(dir.path());
    let set = read_dataset(dir.path()).expect("read");
    assert_eq!(set.layout, Layout::Mvtec);
    assert_eq!(set.labels, vec![GOOD.to_string(), "crack".to_string()]);
    assert_eq!(set.counts(), vec![(GOOD.into(), 3), ("crack".into(), 2)]);
    for s in &set.samples {
        let m = s.load_mask(S, S).expect("mask");
        match s.label.as_str() {
            GOOD => assert!(m.is_none()),
            _ => {
                let bits: Vec<bool> = m.expect("a mask").pixels().map(|p| p.0[0] == 255).collect();
                assert_eq!(bits, mask_bits(idx_of(&s.path)));
                assert_eq!(s.split.as_deref(), Some("test"));
            }
        }
    }
}

#[test]
fn mvtec_without_ground_truth_has_image_labels_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    mvtec_download(dir.path());
    std::fs::remove_dir_all(dir.path().join("ground_truth")).expect("rm");
    let set = read_dataset(dir.path()).expect("read");
    assert_eq!(set.layout, Layout::Mvtec);
    assert_eq!(set.counts(), vec![(GOOD.into(), 3), ("crack".into(), 2)]);
    assert!(!set.has_masks());
}

#[test]
fn mvtec_missing_ground_truth_names_the_image() {
    let dir = tempfile::tempdir().expect("tempdir");
    mvtec_download(dir.path());
    std::fs::remove_file(dir.path().join("ground_truth/crack/001_mask.png")).expect("rm");
    let e = read_dataset(dir.path())
        .expect_err("missing mask")
        .to_string();
    assert!(
        e.contains("001.png") && e.contains("no ground-truth mask"),
        "{e}"
    );
}

#[test]
fn image_mask_pairs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    put(root, "images/a.png", &image(0));
    put(root, "images/b.png", &image(4));
    put(root, "images/c.png", &image(1));
    put(
        root,
        "masks/a.png",
        &mask_png(&vec![false; (S * S) as usize]),
    );
    put(root, "masks/b_mask.png", &mask_png(&mask_bits(4)));
    let set = read_dataset(root).expect("read");
    assert_eq!(set.layout, Layout::ImageMask);
    let labels: Vec<&str> = set.samples.iter().map(|s| s.label.as_str()).collect();
    assert_eq!(labels, vec![GOOD, "defect", GOOD]);
    assert!(set.has_masks());
    let m = set.samples[1].load_mask(S, S).expect("mask").expect("some");
    assert_eq!(m.pixels().filter(|p| p.0[0] == 255).count(), 24);
}

#[cfg(unix)]
#[test]
fn class_folders_skip_symlinks_and_fifos() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    put(root, "good/a.png", &image(0));
    put(root, "good/b.jpg", &image(1)); // PNG bytes under .jpg: decoded by content
    put(root, "dent/c.png", &image(2));
    put(root, "notes.txt", b"x");
    std::os::unix::fs::symlink(root.join("good/a.png"), root.join("dent/link.png")).expect("ln");
    let fifo = root.join("dent/pipe.png");
    let c = std::ffi::CString::new(fifo.to_string_lossy().as_bytes()).expect("cstr");
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
    let set = read_dataset(root).expect("read");
    assert_eq!(set.layout, Layout::ClassFolders);
    assert!(!set.has_masks());
    assert_eq!(set.counts(), vec![(GOOD.into(), 2), ("dent".into(), 1)]);
    assert_eq!(set.skipped.len(), 2, "{:?}", set.skipped);
    assert!(set
        .skipped
        .iter()
        .any(|s| s.contains("link.png") && s.contains("symlink")));
    assert!(set
        .skipped
        .iter()
        .any(|s| s.contains("pipe.png") && s.contains("FIFO")));
    for s in &set.samples {
        assert_eq!(s.load_image().expect("decodes").dimensions(), (S, S));
    }
}

#[test]
fn class_folders_under_splits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    put(root, "train/good/a.png", &image(0));
    put(root, "train/bad/b.png", &image(1));
    put(root, "val/good/c.png", &image(2));
    put(root, "test/bad/d.png", &image(3));
    let set = read_dataset(root).expect("read");
    assert_eq!(
        set.layout,
        Layout::ClassFolders,
        "train/ has more than good/: not MVTec"
    );
    assert_eq!(set.labels, vec![GOOD.to_string(), "bad".to_string()]);
    let splits: Vec<_> = set.samples.iter().map(|s| s.split.as_deref()).collect();
    assert_eq!(
        splits,
        vec![Some("test"), Some("train"), Some("train"), Some("val")]
    );
}

#[test]
fn empty_folder_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = read_dataset(dir.path()).expect_err("empty").to_string();
    assert!(
        e.contains("empty") && e.contains(&dir.path().display().to_string()),
        "{e}"
    );
}

#[test]
fn unrecognised_layout_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    put(dir.path(), "notes.txt", b"x");
    put(dir.path(), "sub/more.txt", b"y");
    let e = read_dataset(dir.path()).expect_err("no images").to_string();
    assert!(e.contains("no labelled images"), "{e}");
    let missing = dir.path().join("nope");
    assert!(read_dataset(&missing)
        .expect_err("missing")
        .to_string()
        .contains("nope"));
}

#[test]
fn one_class_is_refused_by_require_classes() {
    let dir = tempfile::tempdir().expect("tempdir");
    put(dir.path(), "good/a.png", &image(0));
    put(dir.path(), "good/b.png", &image(1));
    let set = read_dataset(dir.path()).expect("read");
    set.require_classes(1).expect("one class is enough for 1");
    let e = set.require_classes(2).expect_err("one class").to_string();
    assert!(
        e.contains("at least 2 classes") && e.contains("good"),
        "{e}"
    );
}

#[test]
fn mask_of_the_wrong_size_names_both_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    put(root, "images/a.png", &image(4));
    put(
        root,
        "masks/a_mask.png",
        &encode_gray8_png(8, 8, &[255; 64]).expect("png"),
    );
    let set = read_dataset(root).expect("read");
    let s = &set.samples[0];
    let e = s.load_mask(S, S).expect_err("wrong size").to_string();
    assert!(
        e.contains("a_mask.png") && e.contains("8x8") && e.contains("16x16"),
        "{e}"
    );
}

#[test]
fn undecodable_image_names_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    put(dir.path(), "good/a.png", &image(0));
    put(
        dir.path(),
        "dent/broken.png",
        b"\x89PNG\r\n\x1a\nnot really",
    );
    let set = read_dataset(dir.path()).expect("read");
    let bad = set
        .samples
        .iter()
        .find(|s| s.path.ends_with("broken.png"))
        .expect("listed");
    let e = bad.load_image().expect_err("broken").to_string();
    assert!(e.contains("broken.png"), "{e}");
}

#[test]
fn manifest_paths_may_not_leave_the_folder() {
    let dir = exported(Format::Folder);
    let root = dir.path().join("set");
    let m = std::fs::read_to_string(root.join("manifest.json")).expect("read");
    let m = m.replacen("\"images/", "\"../images/", 1);
    std::fs::write(root.join("manifest.json"), m).expect("write");
    let e = read_dataset(&root).expect_err("escape").to_string();
    assert!(e.contains("manifest.json") && e.contains("leaves"), "{e}");
}

#[test]
fn data_hash_follows_content_not_location() {
    let (a, b) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    mvtec_download(a.path());
    mvtec_download(b.path());
    let ha = data_hash(&read_dataset(a.path()).expect("a")).expect("hash");
    let hb = data_hash(&read_dataset(b.path()).expect("b")).expect("hash");
    assert_eq!(ha, hb);
    assert_eq!(ha.len(), 64);
    put(
        b.path(),
        "ground_truth/crack/001_mask.png",
        &mask_png(&mask_bits(7)),
    );
    let hb2 = data_hash(&read_dataset(b.path()).expect("b")).expect("hash");
    assert_ne!(ha, hb2, "a changed mask changes the hash");
    std::fs::rename(b.path().join("test/crack"), b.path().join("test/hole")).expect("mv");
    std::fs::rename(
        b.path().join("ground_truth/crack"),
        b.path().join("ground_truth/hole"),
    )
    .expect("mv");
    let hb3 = data_hash(&read_dataset(b.path()).expect("b")).expect("hash");
    assert_ne!(hb2, hb3, "a changed label changes the hash");
}
