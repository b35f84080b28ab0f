//! The Inspection window driven through egui_kittest: start a classifier training from the
//! panel through the engine worker (a few 32² images, one step, the real Lite0 ImageNet
//! weights), evaluate the model it wrote on a held-out folder, and check the ROC plot's data
//! against the stored evaluation.

use std::path::Path;
use std::time::{Duration, Instant};

use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use engine::inspect::GOOD;
use engine::{Executor, Worker, WorkerEvent};
use studio::app::inspect::{InspectPanel, JobState};

#[path = "../../tests/tests/common/lite0.rs"]
#[allow(dead_code)]
mod lite0;

struct State {
    panel: InspectPanel,
    /// The engine worker the training goes through, as in the studio.
    worker: Worker,
}

/// Class folders of 32² images: `good/` (texture) and `scratch/` (the same with a dark stroke).
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

/// Steps the harness until the panel's job ends (at most `limit`).
fn wait(h: &mut Harness<'static, State>, limit: Duration) {
    let start = Instant::now();
    h.step();
    while h.state().panel.busy() {
        assert!(start.elapsed() < limit, "the job did not end in {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
        h.step();
    }
    h.run_steps(2);
}

#[test]
fn train_from_the_panel_then_evaluate_and_see_the_roc_plot() {
    let Some(models) = lite0::lite0_models_dir() else {
        return;
    };
    std::env::set_var("DEFECT_STUDIO_MODEL_DIRS", &models);
    let dir = tempfile::tempdir().expect("tempdir");
    let (train, held_out) = (dir.path().join("train"), dir.path().join("real"));
    class_folders(&train, 6, 0);
    class_folders(&held_out, 4, 40);
    let out = dir.path().join("clf.safetensors");
    let store = dir.path().join("store.redb");

    let mut panel = InspectPanel::default();
    panel.open = true;
    panel.store = Some(store.clone());
    panel.form.data = train.display().to_string();
    panel.form.out = out.display().to_string();
    panel.form.cfg.epochs = 1;
    panel.form.cfg.batch = 12; // 12 images, no validation split: one step
    panel.form.cfg.size = 32;
    panel.form.cfg.val_fraction = 0.0;
    panel.form.cfg.patience = 0;
    let mut h = Harness::builder()
        .with_size([1000.0, 1600.0])
        .build_ui_state(
            |ui, s: &mut State| {
                // What the app does with the worker's events (runs.rs).
                while let Ok(ev) = s.worker.events().try_recv() {
                    match ev {
                        WorkerEvent::Detector(e) => s.panel.on_train_event(e),
                        WorkerEvent::DetectorFinished(r) => s.panel.on_trained(r),
                        _ => {}
                    }
                }
                s.panel.poll();
                let ctx = ui.ctx().clone();
                for c in s.panel.contents_ui(ui) {
                    s.panel.apply(&ctx, c, &s.worker);
                }
            },
            State {
                panel,
                worker: Worker::spawn(Executor::new(
                    nodes::Catalogue::builtin(),
                    engine::Registry::builtin(),
                    64 << 20,
                )),
            },
        );
    h.run_steps(2);

    h.get_by_label("Train classifier").click();
    wait(&mut h, Duration::from_secs(300));
    let p = &h.state().panel;
    assert!(matches!(p.state, JobState::Done(_)), "{:?}", p.state);
    assert!(out.is_file(), "the model file was written");
    assert_eq!(p.losses.len(), 1, "one step: {:?}", p.losses);
    assert_eq!(p.accuracy.len(), 1, "one epoch");
    assert_eq!(
        (p.labels.len(), p.labels[0].as_str()),
        (2, GOOD),
        "{:?}",
        p.labels
    );
    assert_eq!(
        p.form.eval_model,
        out.display().to_string(),
        "the trained model is proposed"
    );

    h.state_mut().panel.form.eval_data = held_out.display().to_string();
    h.run_steps(1);
    h.get_by_label("Evaluate model").click();
    wait(&mut h, Duration::from_secs(120));
    let p = &h.state().panel;
    assert!(matches!(p.state, JobState::Done(_)), "{:?}", p.state);
    let o = p.evaluation.as_ref().expect("an evaluation");
    let r = &o.record.report;
    assert_eq!((r.images, r.defects), (8, 4));
    // The ROC plot shows the evaluation's curve, from (0, 0) to (1, 1).
    let want: Vec<[f64; 2]> = r
        .roc
        .fpr
        .iter()
        .zip(&r.roc.tpr)
        .map(|(&x, &y)| [x, y])
        .collect();
    assert_eq!(p.drawn_roc, want);
    assert_eq!(p.drawn_roc.first(), Some(&[0.0, 0.0]));
    assert_eq!(p.drawn_roc.last(), Some(&[1.0, 1.0]));
    assert!(h.query_by_label("Image AUROC").is_some());
    assert!(
        h.query_all_by_label(&format!("{:.4}", r.auroc))
            .next()
            .is_some(),
        "the AUROC is shown"
    );
    // Both jobs are in the store: the training and the evaluation with its hashes.
    let s = engine::Store::open(&store).expect("store");
    let evals = s.evaluations().expect("evaluations");
    assert_eq!(evals.len(), 1);
    // serde_json reads f64 to within an ulp (no `float_roundtrip`): the f32 scores and the
    // metrics come back exactly, the f64 thresholds as the same f32 values.
    let back = &evals[0].1.report;
    assert_eq!(back.items, r.items);
    assert_eq!(
        (back.auroc, back.ap, back.images),
        (r.auroc, r.ap, r.images)
    );
    assert_eq!((&back.roc.fpr, &back.roc.tpr), (&r.roc.fpr, &r.roc.tpr));
    let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<_>>();
    assert_eq!(f32s(&back.pr.thresholds), f32s(&r.pr.thresholds));
    assert_eq!(evals[0].1.model_sha256, r.model_sha256);
    assert!(!s.trainings().expect("trainings").is_empty());
    for plot in &o.plots {
        assert!(plot.is_file(), "{}", plot.display());
    }
}
