//! The Explore window on a real store with the real EfficientNet-Lite0 weights: View →
//! Explore… maps the store's items (features computed by the engine job), a box selects every
//! point, "Add tag" tags them in the store, a query narrows the view, and "Export" writes the
//! selection as a dataset. The weights come from the engine's own install (cached under
//! `~/.cache/defect-studio`); with `CI` set nothing skips.

#[path = "../../tests/tests/common/lite0.rs"]
mod lite0;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use egui::{Key, Modifiers, Pos2};
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use engine::explore::{import_dataset, Catalog, ImportOptions};
use engine::Store;
use lite0::lite0_models_dir;
use studio::app::{Settings, StudioApp};

type H = Harness<'static, Option<StudioApp>>;

fn app(h: &H) -> &StudioApp {
    h.state().as_ref().unwrap()
}

/// Steps the harness until the Explore job is done (and its result taken in).
fn wait_for_job(h: &mut H) {
    let start = Instant::now();
    h.run_steps(2);
    while app(h).explore_jobs.busy.is_some() {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "the Explore job did not finish"
        );
        std::thread::sleep(Duration::from_millis(50));
        h.step();
    }
    h.run_steps(3);
}

/// Drags a box over the whole plot.
fn select_all_by_box(h: &mut H) {
    let r = app(h).explore.camera().1.shrink(4.0);
    let (a, b) = (r.min, r.max);
    h.event(egui::Event::PointerMoved(a));
    h.step();
    h.event(egui::Event::PointerButton {
        pos: a,
        button: egui::PointerButton::Primary,
        pressed: true,
        modifiers: Modifiers::NONE,
    });
    h.step();
    for t in [0.3f32, 0.7, 1.0] {
        h.hover_at(Pos2::new(a.x + (b.x - a.x) * t, a.y + (b.y - a.y) * t));
        h.step();
    }
    h.event(egui::Event::PointerButton {
        pos: b,
        button: egui::PointerButton::Primary,
        pressed: false,
        modifiers: Modifiers::NONE,
    });
    h.step();
    h.event(egui::Event::PointerGone);
    h.run_steps(2);
}

fn type_into(h: &mut H, label: &str, text: &str) {
    h.get_by_label(label).focus();
    h.step();
    h.get_by_label(label).type_text(text);
    h.step();
}

#[test]
fn select_tag_query_and_export_through_the_window() {
    let Some(models) = lite0_models_dir() else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    std::env::set_var("DEFECT_STUDIO_HOME", home.path());
    std::env::set_var("DEFECT_STUDIO_MODEL_DIRS", &models);
    // Six photos: three real ones and three drawn, labelled by a metadata CSV.
    let photos = home.path().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    let fixtures =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/explore/lite0");
    for n in ["chelsea_224.png", "coffee_224.png", "astronaut_224.png"] {
        std::fs::copy(fixtures.join(n), photos.join(n)).unwrap();
    }
    for (i, rgb) in [[200u8, 40, 40], [40, 200, 40], [40, 40, 200]]
        .iter()
        .enumerate()
    {
        image::RgbImage::from_fn(64, 64, |x, y| {
            let s = ((x / 8 + y / 8) % 2) as u8 * 50;
            image::Rgb([rgb[0] - s / 2, rgb[1], rgb[2].saturating_add(s)])
        })
        .save(photos.join(format!("drawn{i}.png")))
        .unwrap();
    }
    let meta = home.path().join("meta.csv");
    std::fs::write(
        &meta,
        "file,label\nchelsea_224.png,good\ncoffee_224.png,good\nastronaut_224.png,good\n\
         drawn0.png,stain\ndrawn1.png,stain\ndrawn2.png,stain\n",
    )
    .unwrap();
    {
        let store = Store::open(&engine::paths::store_path()).unwrap();
        let mut opts = ImportOptions::new("photos");
        opts.meta = Some(meta);
        let r = import_dataset(&store, &[photos], &opts, &mut |_, _| {}).unwrap();
        assert_eq!(r.added.len(), 6);
    }

    let mut h: H = Harness::builder()
        .with_size([1600.0, 1000.0])
        .build_ui_state(
            |ui, app: &mut Option<StudioApp>| {
                let a =
                    app.get_or_insert_with(|| StudioApp::new(ui.ctx(), Settings::default(), None));
                a.ui(ui);
            },
            None,
        );
    h.run_steps(3);
    h.get_by_label("View").click();
    h.run_steps(2);
    h.get_by_label("Explore…").click();
    wait_for_job(&mut h);
    assert!(
        app(&h).dialog.is_none(),
        "an error dialog: {:?}",
        app(&h).dialog
    );
    let view = app(&h).explore.view().clone();
    assert!(!view.demo);
    assert_eq!(view.ids.len(), 6, "{}", view.note);
    assert!(
        view.columns.iter().any(|(n, _)| n == "imagenet"),
        "ImageNet column"
    );

    // Select every point, tag them in the store.
    select_all_by_box(&mut h);
    let mut selected = app(&h).explore.selected_ids();
    selected.sort();
    let mut all = view.ids.clone();
    all.sort();
    assert_eq!(selected, all);
    type_into(&mut h, "Tag", "reviewed");
    h.get_by_label("Add tag").click();
    h.run_steps(3);
    let store = Store::open(&engine::paths::store_path()).unwrap();
    assert_eq!(Catalog::new(&store).query("reviewed").unwrap(), all);

    // A query narrows the view to the labelled stains.
    type_into(&mut h, "Query", "reviewed AND label:stain");
    h.key_press(Key::Enter);
    wait_for_job(&mut h);
    let stains = Catalog::new(&store).query("label:stain").unwrap();
    assert_eq!(stains.len(), 3);
    let mut shown = app(&h).explore.view().ids.clone();
    shown.sort();
    assert_eq!(shown, stains);

    // Export the selection (the three stains) as a folder dataset.
    select_all_by_box(&mut h);
    let out = home.path().join("export");
    type_into(&mut h, "Folder", out.to_str().unwrap());
    h.get_by_label("Export").click();
    wait_for_job(&mut h);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let text = manifest.to_string();
    assert_eq!(
        std::fs::read_dir(out.join("images")).unwrap().count(),
        3,
        "{text}"
    );
    assert!(text.contains("stain"));
}
