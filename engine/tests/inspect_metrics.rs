//! `inspect::metrics` against scikit-learn 1.9 and anomalib 2.7 on stored fixtures
//! (`tests/fixtures/inspect/metrics/make_metrics_fixtures.py`): image AUROC, AP, ROC and PR
//! curves, best F1 and its threshold; pixel AUROC, AP and AUPRO; ties and single-class cases.

use std::path::Path;

use engine::inspect::metrics::{
    average_precision, best_f1, image_metrics, precision_recall_curve, roc_auc, roc_curve,
    PixelMetrics, PRO_FPR_LIMIT,
};
use serde_json::Value;

const TOL: f64 = 1e-6;

fn fixtures() -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/inspect/metrics/metrics.json");
    serde_json::from_slice(&std::fs::read(&p).expect("fixture")).expect("json")
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().unwrap_or(f64::INFINITY))
        .collect()
}

fn close(name: &str, what: &str, got: f64, want: f64) {
    assert!(
        (got - want).abs() <= TOL || (got.is_infinite() && want.is_infinite()),
        "{name}: {what} = {got}, sklearn/anomalib say {want}"
    );
}

fn close_all(name: &str, what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(
        got.len(),
        want.len(),
        "{name}: {what} lengths {got:?} vs {want:?}"
    );
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        close(name, &format!("{what}[{i}]"), *g, *w);
    }
}

fn case_inputs(c: &Value) -> (Vec<bool>, Vec<f32>) {
    let labels = c["labels"]
        .as_array()
        .expect("labels")
        .iter()
        .map(|v| v.as_i64() == Some(1))
        .collect();
    let scores = f64s(&c["scores"]).into_iter().map(|v| v as f32).collect();
    (labels, scores)
}

#[test]
fn image_metrics_equal_sklearn_and_anomalib() {
    let fx = fixtures();
    let mut checked = 0;
    for c in fx["image"].as_array().expect("cases") {
        let name = c["name"].as_str().expect("name");
        let (labels, scores) = case_inputs(c);
        if c.get("single_class").is_some() {
            continue;
        }
        close(
            name,
            "AUROC",
            roc_auc(&labels, &scores).expect("auroc"),
            c["auroc"].as_f64().expect("f"),
        );
        close(
            name,
            "AP",
            average_precision(&labels, &scores).expect("ap"),
            c["ap"].as_f64().expect("f"),
        );
        let roc = roc_curve(&labels, &scores, true).expect("roc");
        close_all(name, "fpr", &roc.fpr, &f64s(&c["roc"]["fpr"]));
        close_all(name, "tpr", &roc.tpr, &f64s(&c["roc"]["tpr"]));
        close_all(
            name,
            "roc thresholds",
            &roc.thresholds,
            &f64s(&c["roc"]["thresholds"]),
        );
        let all = roc_curve(&labels, &scores, false).expect("roc");
        close_all(name, "fpr (all)", &all.fpr, &f64s(&c["roc_all"]["fpr"]));
        close_all(name, "tpr (all)", &all.tpr, &f64s(&c["roc_all"]["tpr"]));
        let pr = precision_recall_curve(&labels, &scores).expect("pr");
        close_all(
            name,
            "precision",
            &pr.precision,
            &f64s(&c["pr"]["precision"]),
        );
        close_all(name, "recall", &pr.recall, &f64s(&c["pr"]["recall"]));
        close_all(
            name,
            "pr thresholds",
            &pr.thresholds,
            &f64s(&c["pr"]["thresholds"]),
        );
        let f1 = best_f1(&labels, &scores).expect("f1");
        close(name, "F1", f1.f1, c["f1"].as_f64().expect("f"));
        close(
            name,
            "F1 threshold",
            f1.threshold,
            c["f1_threshold"].as_f64().expect("f"),
        );
        let all = image_metrics(&labels, &scores).expect("all");
        assert_eq!(
            (all.auroc, all.ap, all.f1),
            (
                roc_auc(&labels, &scores).expect("a"),
                average_precision(&labels, &scores).expect("p"),
                f1
            )
        );
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} cases");
}

#[test]
fn single_class_is_a_clear_error() {
    let fx = fixtures();
    let mut seen = 0;
    for c in fx["image"].as_array().expect("cases") {
        if c.get("single_class").is_none() {
            continue;
        }
        let (labels, scores) = case_inputs(c);
        for e in [
            roc_auc(&labels, &scores).map(|_| ()),
            average_precision(&labels, &scores).map(|_| ()),
            best_f1(&labels, &scores).map(|_| ()),
            image_metrics(&labels, &scores).map(|_| ()),
        ] {
            let msg = e.expect_err("single class").to_string();
            assert!(msg.contains("needs both good and defect images"), "{msg}");
        }
        seen += 1;
    }
    assert_eq!(seen, 2);
    let e = roc_auc(&[true, false], &[0.5, f32::NAN])
        .expect_err("nan")
        .to_string();
    assert!(e.contains("finite"), "{e}");
    let e = roc_auc(&[true, false], &[0.5])
        .expect_err("lengths")
        .to_string();
    assert!(e.contains("2 labels but 1 scores"), "{e}");
}

fn pixel_metrics(c: &Value) -> PixelMetrics {
    let (w, h) = (
        c["width"].as_u64().expect("w") as u32,
        c["height"].as_u64().expect("h") as u32,
    );
    let mut pm = PixelMetrics::new();
    let masks = c["masks"].as_array().expect("masks");
    let maps = c["maps"].as_array().expect("maps");
    for (i, (m, s)) in masks.iter().zip(maps).enumerate() {
        let mask: Vec<bool> = m
            .as_array()
            .expect("mask")
            .iter()
            .map(|v| v.as_i64() == Some(1))
            .collect();
        let map: Vec<f32> = f64s(s).into_iter().map(|v| v as f32).collect();
        pm.add(&map, &mask, w, h, &format!("image {i}"))
            .expect("add");
    }
    pm
}

#[test]
fn pixel_metrics_equal_sklearn_and_anomalib_aupro() {
    let fx = fixtures();
    for c in fx["pixel"].as_array().expect("cases") {
        let name = c["name"].as_str().expect("name");
        let pm = pixel_metrics(c);
        close(
            name,
            "pixel AUROC",
            pm.auroc().expect("auroc"),
            c["auroc"].as_f64().expect("f"),
        );
        close(
            name,
            "pixel AP",
            pm.ap().expect("ap"),
            c["ap"].as_f64().expect("f"),
        );
        close(
            name,
            "AUPRO(0.3)",
            pm.pro(PRO_FPR_LIMIT).expect("pro"),
            c["pro"].as_f64().expect("f"),
        );
        close(
            name,
            "AUPRO(0.05)",
            pm.pro(0.05).expect("pro"),
            c["pro_005"].as_f64().expect("f"),
        );
        close(
            name,
            "AUPRO(1.0)",
            pm.pro(1.0).expect("pro"),
            c["pro_1"].as_f64().expect("f"),
        );
        let (fpr, pro) = pm.pro_curve(PRO_FPR_LIMIT).expect("curve");
        close_all(name, "PRO fpr", &fpr, &f64s(&c["pro_curve"]["fpr"]));
        close_all(name, "PRO overlap", &pro, &f64s(&c["pro_curve"]["pro"]));
    }
}

#[test]
fn pixel_metrics_need_both_kinds_of_pixels() {
    let mut pm = PixelMetrics::new();
    pm.add(&[0.1, 0.2, 0.3, 0.4], &[false; 4], 2, 2, "a.png")
        .expect("add");
    for e in [pm.auroc(), pm.ap(), pm.pro(0.3)] {
        let msg = e.expect_err("no defect pixels").to_string();
        assert!(
            msg.contains("needs both defect and defect-free pixels"),
            "{msg}"
        );
    }
    let e = pm
        .add(&[0.1; 3], &[false; 4], 2, 2, "b.png")
        .expect_err("size")
        .to_string();
    assert!(e.contains("b.png") && e.contains("3 values"), "{e}");
}
