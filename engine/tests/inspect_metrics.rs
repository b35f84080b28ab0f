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

/// Whether a pixel within `r` of `(x, y)` has the curve's colour.
fn curve_near(img: &image::RgbImage, (x, y): (i32, i32), r: i32) -> bool {
    let c = engine::inspect::plot::CURVE_RGB;
    (-r..=r).any(|dy| {
        (-r..=r).any(|dx| {
            let (px, py) = (x + dx, y + dy);
            px >= 0
                && py >= 0
                && (px as u32) < img.width()
                && (py as u32) < img.height()
                && img.get_pixel(px as u32, py as u32).0 == c
        })
    })
}

/// The distance from `p` to the segment `a`–`b`.
fn seg_dist(p: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 == 0.0 {
        0.0
    } else {
        (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / len2).clamp(0.0, 1.0)
    };
    ((p.0 - a.0 - t * dx).powi(2) + (p.1 - a.1 - t * dy).powi(2)).sqrt()
}

/// Checks that the curve's pixels lie along `pts` (data coordinates) and nowhere far from it.
fn check_curve_pixels(plot: &engine::inspect::plot::Plot, pts: &[(f64, f64)], what: &str) {
    let img = image::load_from_memory(&plot.png).expect("a PNG").to_rgb8();
    assert_eq!(img.dimensions(), (plot.width, plot.height));
    for seg in pts.windows(2) {
        for k in 0..=10 {
            let t = f64::from(k) / 10.0;
            let p = (
                seg[0].0 + t * (seg[1].0 - seg[0].0),
                seg[0].1 + t * (seg[1].1 - seg[0].1),
            );
            assert!(
                curve_near(&img, plot.pixel(p.0, p.1), 2),
                "{what}: no curve at {p:?}"
            );
        }
    }
    // Away from the curve (and from the legend in the lower right), no curve colour.
    let mut far = 0;
    for i in 1..20 {
        for j in 1..20 {
            let p = (f64::from(i) / 20.0, f64::from(j) / 20.0);
            let min = pts
                .windows(2)
                .map(|s| seg_dist(p, s[0], s[1]))
                .fold(f64::MAX, f64::min);
            if min > 0.05 && !(p.0 > 0.45 && p.1 < 0.3) {
                far += 1;
                assert!(
                    !curve_near(&img, plot.pixel(p.0, p.1), 1),
                    "{what}: curve colour at {p:?}"
                );
            }
        }
    }
    assert!(
        far > 50,
        "{what}: only {far} points checked away from the curve"
    );
}

#[test]
fn roc_and_pr_plots_draw_the_curves_where_they_are() {
    use engine::inspect::plot::{pr_plot, roc_plot, PLOT_SIZE};
    let fx = fixtures();
    let c = fx["image"]
        .as_array()
        .expect("cases")
        .iter()
        .find(|c| c["name"] == "separable-ish")
        .expect("case");
    let (labels, scores) = case_inputs(c);
    let m = image_metrics(&labels, &scores).expect("metrics");
    let roc = roc_plot(&m.roc, m.auroc, "ROC", PLOT_SIZE).expect("roc plot");
    assert_eq!((roc.width, roc.height), PLOT_SIZE);
    let pts: Vec<(f64, f64)> = m
        .roc
        .fpr
        .iter()
        .copied()
        .zip(m.roc.tpr.iter().copied())
        .collect();
    check_curve_pixels(&roc, &pts, "ROC");
    let pr = pr_plot(&m.pr, m.ap, "PR", (400, 300)).expect("pr plot");
    assert_eq!((pr.width, pr.height), (400, 300));
    let mut steps = vec![(m.pr.recall[0], m.pr.precision[0])];
    for i in 1..m.pr.recall.len() {
        steps.push((m.pr.recall[i], m.pr.precision[i - 1]));
        steps.push((m.pr.recall[i], m.pr.precision[i]));
    }
    check_curve_pixels(&pr, &steps, "PR");
}
