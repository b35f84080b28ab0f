//! `inspect::evaluate` with fake detectors (a classifier whose score is the image's red level,
//! a segmenter whose map is its green channel) on hand-made MVTec folders: the report's
//! metrics, every image's score, pixel metrics, plots, the store round trip, and bad input.

use std::path::Path;

use engine::codec::{encode_gray8_png, encode_rgba8_png};
use engine::inspect::data::read_dataset;
use engine::inspect::evaluate::{evaluate, write_plots, EvalOptions};
use engine::inspect::metrics::{average_precision, roc_auc};
use engine::inspect::{AnomalyMap, DetectorKind, Score, Scorer, GOOD};
use engine::store::EvaluationRecord;
use engine::Store;

const S: u32 = 8;

/// A detector reading its answer from the image: score = red / 255; with `maps`, the anomaly
/// map is the green channel / 255.
struct Fake {
    maps: bool,
    labels: Vec<String>,
    /// A wrong map size, to check the error.
    map_side: u32,
}

impl Fake {
    fn new(maps: bool) -> Self {
        Fake {
            maps,
            labels: vec![GOOD.into(), "defect".into()],
            map_side: S,
        }
    }
}

impl Scorer for Fake {
    fn kind(&self) -> DetectorKind {
        if self.maps {
            DetectorKind::Segmenter
        } else {
            DetectorKind::Classifier
        }
    }
    fn labels(&self) -> &[String] {
        &self.labels
    }
    fn sha256(&self) -> &str {
        "fakefake"
    }
    fn score(&self, images: &[image::RgbImage]) -> engine::Result<Vec<Score>> {
        Ok(images
            .iter()
            .map(|img| {
                let s = f32::from(img.get_pixel(0, 0).0[0]) / 255.0;
                Score {
                    score: s,
                    label: if s >= 0.5 { "defect" } else { GOOD }.into(),
                    probs: vec![1.0 - s, s],
                    map: self.maps.then(|| AnomalyMap {
                        width: self.map_side,
                        height: self.map_side,
                        values: (0..self.map_side * self.map_side)
                            .map(|p| {
                                let (x, y) = (p % S, p / S);
                                let g = img.get_pixel(x.min(S - 1), y.min(S - 1)).0[1];
                                f32::from(g) / 255.0
                            })
                            .collect(),
                    }),
                }
            })
            .collect())
    }
}

/// An 8×8 image with red level `red` everywhere and green = `hot` where `mask` is on, 40
/// elsewhere.
fn image(red: u8, mask: &[bool], hot: u8) -> Vec<u8> {
    let mut rgba = Vec::new();
    for &m in mask {
        rgba.extend_from_slice(&[red, if m { hot } else { 40 }, 0, 255]);
    }
    encode_rgba8_png(S, S, &rgba).expect("png")
}

fn square(x0: u32, y0: u32, side: u32) -> Vec<bool> {
    (0..S * S)
        .map(|p| {
            let (x, y) = (p % S, p / S);
            x >= x0 && x < x0 + side && y >= y0 && y < y0 + side
        })
        .collect()
}

fn put(root: &Path, rel: &str, bytes: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, bytes).expect("write");
}

/// Good images with red 10, 30, 50; defects with red 40, 60 (so image AUROC = 5/6); the
/// defects' masks are hot (green 200) in the image, except the second defect's, which is only
/// warm (green 30, below the background's 40).
fn mvtec(root: &Path) {
    let none = vec![false; (S * S) as usize];
    for (i, red) in [10u8, 30, 50].into_iter().enumerate() {
        put(
            root,
            &format!("test/good/{i:03}.png"),
            &image(red, &none, 0),
        );
    }
    let (m0, m1) = (square(1, 1, 3), square(4, 4, 2));
    put(root, "test/crack/000.png", &image(40, &m0, 200));
    put(root, "test/crack/001.png", &image(60, &m1, 30));
    let grey = |m: &[bool]| -> Vec<u8> { m.iter().map(|&b| if b { 255 } else { 0 }).collect() };
    put(
        root,
        "ground_truth/crack/000_mask.png",
        &encode_gray8_png(S, S, &grey(&m0)).expect("png"),
    );
    put(
        root,
        "ground_truth/crack/001_mask.png",
        &encode_gray8_png(S, S, &grey(&m1)).expect("png"),
    );
}

#[test]
fn classifier_report_holds_metrics_and_every_score() {
    let dir = tempfile::tempdir().expect("tempdir");
    mvtec(dir.path());
    let set = read_dataset(dir.path()).expect("read");
    let mut calls = Vec::new();
    let opts = EvalOptions {
        batch_size: 2,
        ..Default::default()
    };
    let r = evaluate(&Fake::new(false), &set, &opts, &mut |d, t| {
        calls.push((d, t))
    })
    .expect("eval");
    assert_eq!(calls, vec![(0, 5), (2, 5), (4, 5), (5, 5)]);
    assert_eq!((r.images, r.defects), (5, 2));
    assert!((r.auroc - 5.0 / 6.0).abs() < 1e-12, "AUROC {}", r.auroc);
    // Recomputed from the report's own items, as a user would.
    let labels: Vec<bool> = r.items.iter().map(|i| i.defect).collect();
    let scores: Vec<f32> = r.items.iter().map(|i| i.score).collect();
    assert_eq!(r.auroc, roc_auc(&labels, &scores).expect("auroc"));
    assert_eq!(r.ap, average_precision(&labels, &scores).expect("ap"));
    // Scores descending: 60 (defect), 50, 40 (defect), 30, 10 → best F1 at 40/255: P 2/3, R 1.
    assert!((r.f1.f1 - 0.8).abs() < 1e-6, "F1 {}", r.f1.f1);
    assert!((r.f1.threshold - f64::from(40f32 / 255.0)).abs() < 1e-9);
    assert!((r.accuracy_at_threshold - 0.8).abs() < 1e-12);
    let crack = r
        .items
        .iter()
        .find(|i| i.path.ends_with("crack/001.png"))
        .expect("item");
    assert_eq!((crack.label.as_str(), crack.defect), ("crack", true));
    assert!((crack.score - 60.0 / 255.0).abs() < 1e-6);
    assert!(r.pixel.is_none(), "a classifier gives no maps");
    assert_eq!(r.model_sha256, "fakefake");
    assert_eq!(r.data_hash.len(), 64);
    assert!(r.table().contains("image AUROC   0.8333"), "{}", r.table());

    // JSON round trip (the ROC curve's +inf threshold is null), then the store.
    let json = serde_json::to_string(&r).expect("json");
    assert!(
        json.contains("\"thresholds\":[null,"),
        "{}",
        &json[..200.min(json.len())]
    );
    let back: engine::inspect::evaluate::EvalReport = serde_json::from_str(&json).expect("back");
    assert_eq!(back, r);
    let store = Store::open(&dir.path().join("store.redb")).expect("store");
    let rec = EvaluationRecord::new("/models/m.safetensors", r.clone());
    let id = store.add_evaluation(&rec).expect("add");
    assert_eq!(id, 1);
    let all = store.evaluations().expect("list");
    assert_eq!(all, vec![(1, rec.clone())]);
    assert_eq!(store.evaluation(1).expect("get"), Some(rec));

    let plots = write_plots(&r, &dir.path().join("plots")).expect("plots");
    assert_eq!(plots.len(), 2);
    for p in plots {
        let img = image::open(&p).expect("png");
        assert_eq!(
            (img.width(), img.height()),
            engine::inspect::plot::PLOT_SIZE
        );
    }
}

#[test]
fn segmenter_report_has_pixel_metrics() {
    let dir = tempfile::tempdir().expect("tempdir");
    mvtec(dir.path());
    let set = read_dataset(dir.path()).expect("read");
    let r = evaluate(
        &Fake::new(true),
        &set,
        &EvalOptions::default(),
        &mut |_, _| {},
    )
    .expect("eval");
    let p = r.pixel.expect("pixel metrics");
    assert_eq!(p.pixels, 5 * 64);
    // Hot pixels (200) are the 9 of the first mask; the second mask's 4 pixels score 30, below
    // every background pixel (40): pixel AUROC = (9·307 + 0) / (13·307), 307 = 320 − 13.
    let want = 9.0 / 13.0;
    assert!(
        (p.auroc - want).abs() < 1e-9,
        "pixel AUROC {} vs {want}",
        p.auroc
    );
    // PRO: at FPR 0 the first region is fully found (overlap 1/2 of 2 regions); the second
    // only at FPR 1, so up to 0.3 the mean overlap stays 0.5.
    assert!((p.pro - 0.5).abs() < 1e-9, "PRO {}", p.pro);
    assert_eq!(p.pro_fpr_limit, 0.3);
}

#[test]
fn bad_input_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    mvtec(dir.path());
    // The wrong map size names the image.
    let set = read_dataset(dir.path()).expect("read");
    let mut fake = Fake::new(true);
    fake.map_side = 4;
    let e = evaluate(&fake, &set, &EvalOptions::default(), &mut |_, _| {}).expect_err("size");
    assert!(e.to_string().contains("anomaly map is 4x4"), "{e}");
    // A mask of the wrong size names the mask.
    put(
        dir.path(),
        "ground_truth/crack/000_mask.png",
        &encode_gray8_png(4, 4, &[255; 16]).expect("png"),
    );
    let set = read_dataset(dir.path()).expect("read");
    let e = evaluate(
        &Fake::new(true),
        &set,
        &EvalOptions::default(),
        &mut |_, _| {},
    )
    .expect_err("mask");
    assert!(e.to_string().contains("000_mask.png"), "{e}");
    // An image that does not decode names the file.
    put(dir.path(), "test/good/bad.png", b"not a png");
    let set = read_dataset(dir.path()).expect("read");
    let e = evaluate(
        &Fake::new(false),
        &set,
        &EvalOptions::default(),
        &mut |_, _| {},
    )
    .expect_err("decode");
    assert!(e.to_string().contains("bad.png"), "{e}");
    // One class only.
    let one = tempfile::tempdir().expect("tempdir");
    put(one.path(), "good/a.png", &image(1, &[false; 64], 0));
    put(one.path(), "good/b.png", &image(2, &[false; 64], 0));
    let set = read_dataset(one.path()).expect("read");
    let e = evaluate(
        &Fake::new(false),
        &set,
        &EvalOptions::default(),
        &mut |_, _| {},
    )
    .expect_err("one class");
    assert!(
        e.to_string().contains("needs both good and defect images"),
        "{e}"
    );
}

// ---- end to end: a classifier trained by `run_classifier`, loaded from its file ----

#[path = "../../tests/tests/common/lite0.rs"]
#[allow(dead_code)]
mod lite0;

/// Class folders of 32² images: `good/` (noise) and `scratch/` (the same with a dark stroke).
fn class_folders(root: &Path, per_class: usize, offset: usize) {
    for (label, defect) in [(GOOD, false), ("scratch", true)] {
        for i in 0..per_class {
            let k = i + offset;
            let img = image::RgbImage::from_fn(32, 32, |x, y| {
                let h = ((x * 31 + y * 17 + k as u32 * 7) % 40) as u8;
                let on = defect && (x as i64 - y as i64 - (k as i64 % 5)).abs() <= 1;
                let v = if on { 20 } else { 150 + h };
                image::Rgb([v, v, v])
            });
            let p = root.join(label).join(format!("{k:02}.png"));
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            img.save(p).expect("save");
        }
    }
}

#[test]
fn a_trained_classifier_file_evaluates_end_to_end() {
    use engine::exec::CancelToken;
    use engine::inspect::classifier::{run_classifier, ClassifierConfig, ClassifierJob};
    let Some(weights) = lite0::lite0_weights() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let (train, held_out) = (dir.path().join("train"), dir.path().join("held-out"));
    class_folders(&train, 12, 0);
    class_folders(&held_out, 6, 50);
    let out = dir.path().join("clf.safetensors");
    let job = ClassifierJob {
        data: train,
        out: out.clone(),
        device: "cpu".into(),
        cfg: ClassifierConfig {
            epochs: 2,
            batch: 8,
            size: 32,
            val_fraction: 0.0,
            patience: 0,
            ..ClassifierConfig::default()
        },
        resume: false,
        store: None,
        weights: Some(weights.clone()),
    };
    let trained = run_classifier(&job, &CancelToken::default(), &mut |_| {}).expect("train");
    let scorer = engine::inspect::load_scorer(&out, &candle_core::Device::Cpu).expect("load");
    assert_eq!(scorer.kind(), DetectorKind::Classifier);
    let set = read_dataset(&held_out).expect("read");
    let r = evaluate(
        scorer.as_ref(),
        &set,
        &EvalOptions::default(),
        &mut |_, _| {},
    )
    .expect("eval");
    assert_eq!(r.model_sha256, trained.sha256);
    assert_eq!((r.images, r.defects), (12, 6));
    let labels: Vec<bool> = r.items.iter().map(|i| i.defect).collect();
    let scores: Vec<f32> = r.items.iter().map(|i| i.score).collect();
    assert_eq!(r.auroc, roc_auc(&labels, &scores).expect("auroc"));
    assert!(r.items.iter().all(|i| (0.0..=1.0).contains(&i.score)));
    let store = Store::open(&dir.path().join("s.redb")).expect("store");
    store
        .add_evaluation(&EvaluationRecord::new(&out.display().to_string(), r))
        .expect("stored");
    assert_eq!(store.evaluations().expect("list").len(), 1);
}
