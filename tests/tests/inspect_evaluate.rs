//! `defect-studio evaluate` end to end: a classifier trained by the engine's job (real Lite0
//! ImageNet weights, 32² images), evaluated through the CLI on an MVTec-style held-out folder:
//! the JSON report (recomputable from its own items), the plots, the stored evaluation
//! (`history --evaluations`), and bad input that stores nothing.

mod common;

use std::path::Path;

use common::*;
use engine::inspect::GOOD;

/// An MVTec category of 32² images: `test/good`, `test/scratch` (a dark stroke) and its masks.
fn mvtec(root: &Path, per_class: usize) {
    for (label, defect) in [(GOOD, false), ("scratch", true)] {
        for k in 0..per_class {
            let on = |x: u32, y: u32| defect && (x as i64 - y as i64 - (k as i64 % 5)).abs() <= 1;
            let img = image::RgbImage::from_fn(32, 32, |x, y| {
                let h = ((x * 31 + y * 17 + k as u32 * 7) % 40) as u8;
                let v = if on(x, y) { 20 } else { 150 + h };
                image::Rgb([v, v, v])
            });
            let p = root.join(format!("test/{label}/{k:03}.png"));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            img.save(&p).unwrap();
            if defect {
                let m = image::GrayImage::from_fn(32, 32, |x, y| {
                    image::Luma([if on(x, y) { 255 } else { 0 }])
                });
                let mp = root.join(format!("ground_truth/{label}/{k:03}_mask.png"));
                std::fs::create_dir_all(mp.parent().unwrap()).unwrap();
                m.save(mp).unwrap();
            }
        }
    }
    let train = root.join("train/good/000.png");
    std::fs::create_dir_all(train.parent().unwrap()).unwrap();
    std::fs::copy(root.join("test/good/000.png"), train).unwrap();
}

/// Class folders for training (other images than the held-out set).
fn class_folders(root: &Path, per_class: usize) {
    for (label, defect) in [(GOOD, false), ("scratch", true)] {
        for i in 0..per_class {
            let k = i + 50;
            let img = image::RgbImage::from_fn(32, 32, |x, y| {
                let h = ((x * 31 + y * 17 + k as u32 * 7) % 40) as u8;
                let on = defect && (x as i64 - y as i64 - (k as i64 % 5)).abs() <= 1;
                image::Rgb([if on { 20 } else { 150 + h }; 3])
            });
            let p = root.join(label).join(format!("{k:02}.png"));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            img.save(p).unwrap();
        }
    }
}

#[test]
fn evaluate_through_the_cli() {
    use engine::exec::CancelToken;
    use engine::inspect::classifier::{run_classifier, ClassifierConfig, ClassifierJob};
    let Some(weights) = lite0_weights() else {
        return;
    };
    let env = Env::new();
    let (train, real) = (env.dir.path().join("train"), env.dir.path().join("real"));
    class_folders(&train, 8);
    mvtec(&real, 4);
    let model = env.dir.path().join("clf.safetensors");
    let job = ClassifierJob {
        data: train,
        out: model.clone(),
        device: "cpu".into(),
        cfg: ClassifierConfig {
            epochs: 1,
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
    run_classifier(&job, &CancelToken::default(), &mut |_| {}).unwrap();

    let store = env.store();
    let plots = env.dir.path().join("plots");
    let (m, d, s, p) = (
        model.to_str().unwrap(),
        real.to_str().unwrap(),
        store.to_str().unwrap(),
        plots.to_str().unwrap(),
    );
    let out = env.run(&[
        "evaluate", "--model", m, "--data", d, "--json", "--store", s, "--plots", p,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        r["images"], 9,
        "4 + 1 good (test/good, train/good) and 4 defect"
    );
    assert_eq!(r["defects"], 4);
    let items = r["items"].as_array().unwrap();
    assert_eq!(items.len(), 9);
    let labels: Vec<bool> = items.iter().map(|i| i["label"] != GOOD).collect();
    let scores: Vec<f32> = items
        .iter()
        .map(|i| i["score"].as_f64().unwrap() as f32)
        .collect();
    let auroc = engine::inspect::metrics::roc_auc(&labels, &scores).unwrap();
    assert_eq!(
        r["auroc"].as_f64().unwrap(),
        auroc,
        "the AUROC recomputes from the items"
    );
    assert!(items
        .iter()
        .all(|i| Path::new(i["path"].as_str().unwrap()).is_file()));
    for f in ["roc.png", "pr.png"] {
        let img = image::open(plots.join(f)).unwrap();
        assert_eq!((img.width(), img.height()), (640, 480));
    }
    // The table form, and the default plot folder beside the model.
    let out = env.run(&["evaluate", "--model", m, "--data", d, "--store", s]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("image AUROC") && text.contains("evaluation #2"),
        "{text}"
    );
    assert!(env.dir.path().join("clf-eval/roc.png").is_file());

    // One class only: a clear error, and the store keeps its two evaluations.
    let one = env.dir.path().join("one");
    std::fs::create_dir_all(one.join("good")).unwrap();
    std::fs::copy(real.join("test/good/000.png"), one.join("good/a.png")).unwrap();
    let out = env.run(&[
        "evaluate",
        "--model",
        m,
        "--data",
        one.to_str().unwrap(),
        "--store",
        s,
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("needs both good and defect images") && err.lines().count() == 1,
        "{err}"
    );
    let out = env.run(&["history", "--evaluations", "--json", "--store", s]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[0]["report"]["auroc"], r["auroc"]);
    assert_eq!(list[0]["model_sha256"].as_str().unwrap().len(), 64);
}
