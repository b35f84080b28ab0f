//! The Statistics window over a store with real runs on several days: opened from the View
//! menu, it shows the totals of the whole store; a date range typed into From/To changes them
//! to the runs of those days (the numbers the store was built with, and what
//! `engine::stats::stats` answers under the same filter); an invalid date is shown with its
//! error; the query does not run every frame; Export CSV writes the breakdown files.

mod common;
use common::*;

use std::path::{Path, PathBuf};

use egui_kittest::kittest::Queryable;
use engine::run::{plan, run_batch, BatchJob, PlanSpec};
use engine::stats::{parse_day, StatsFilter};
use engine::{CancelToken, Executor, RunStatus, Store};
use nodes::GraphDoc;
use studio::app::stats_window::{totals_text, StatsCommand};
use studio::app::AppCommand;

/// A tiny recipe: a solid colour saved with `label`.
fn doc(label: &str) -> GraphDoc {
    GraphDoc::from_json(
        &serde_json::json!({
            "format": "defect-studio/graph", "version": 2,
            "nodes": {
                "bg": {"kind": "SolidColor", "version": 1, "params": {"width": 16, "height": 12}},
                "save": {"kind": "SaveImage", "version": 1, "params": {"label": label}}
            },
            "links": [{"from": ["bg", "image"], "to": ["save", "image"]}]
        })
        .to_string(),
    )
    .unwrap()
}

fn job(name: &str, label: &str, count: u64) -> BatchJob {
    let doc = doc(label);
    let dir = home().clone();
    let (items, _) = plan(&PlanSpec {
        doc: &doc,
        base_dir: &dir,
        count,
        seed: 3,
        sweeps: &[],
        shard: None,
    })
    .unwrap();
    BatchJob {
        doc,
        graph_name: name.into(),
        base_dir: dir.clone(),
        items,
        base_seed: 3,
        shard: None,
        out_dir: dir.join("out"),
        store_path: engine::paths::store_path(),
        targets: None,
        graph_path: None,
        embed_assets: false,
        device: None,
    }
}

/// The runs the store is built with: (day, graph, label, images).
const RUNS: &[(&str, &str, &str, u64)] = &[
    ("2026-11-01", "stats-a", "scratch", 2),
    ("2026-11-02", "stats-b", "dent", 3),
    ("2026-11-04", "stats-a", "scratch", 1),
    ("2026-11-11", "stats-b", "dent", 4),
];

/// Runs each batch of [`RUNS`] for real, then moves it to its day (the run's start and end).
fn build_store() {
    let mut exec = Executor::builtin();
    for (day, name, label, count) in RUNS {
        let summary = run_batch(
            &mut exec,
            &job(name, label, *count),
            &|_| {},
            &CancelToken::new(),
        )
        .unwrap();
        assert_eq!(summary.status, RunStatus::Succeeded, "{:?}", summary.error);
        assert_eq!(summary.saved.len() as u64, *count);
        let store = Store::open(&engine::paths::store_path()).unwrap();
        let mut rec = store.run(summary.run_id).unwrap().unwrap();
        let took = rec.ended_ms.unwrap_or(rec.started_ms) - rec.started_ms;
        rec.started_ms = u64::from(parse_day(day).unwrap()) * 86_400_000 + 10 * 3_600_000;
        rec.ended_ms = Some(rec.started_ms + took);
        store.update_run(summary.run_id, &rec).unwrap();
    }
}

/// Images of [`RUNS`] from `since` to `until`, and the number of runs.
fn known(since: &str, until: &str) -> (u64, u64) {
    let (a, b) = (parse_day(since).unwrap(), parse_day(until).unwrap());
    RUNS.iter()
        .filter(|r| (a..=b).contains(&parse_day(r.0).unwrap()))
        .fold((0, 0), |(runs, images), r| (runs + 1, images + r.3))
}

fn type_into(h: &mut H, label: &str, text: &str) {
    h.get_by_label(label).focus();
    h.step();
    h.get_by_label(label).type_text(text);
    h.run_steps(2);
}

/// The totals the store answers under `filter`.
fn engine_totals(h: &mut H, filter: &StatsFilter) -> String {
    let store = app(h).store.as_ref().expect("the store is open");
    totals_text(&engine::stats::stats(store, filter).unwrap().totals)
}

#[test]
fn statistics_window_with_a_date_filter() {
    home();
    build_store();
    let mut h = harness();
    h.run_steps(3);
    h.get_by_label("View").click();
    h.run_steps(2);
    h.get_by_label("Statistics…").click();
    h.run_steps(3);
    assert!(app(&mut h).stats.open);

    // The whole store.
    let all = engine_totals(&mut h, &StatsFilter::default());
    assert!(
        all.starts_with("Runs 4 (4 succeeded") && all.contains("Images 10 "),
        "{all}"
    );
    h.get_by_label(&all);

    // Not every frame.
    let queries = app(&mut h).stats.queries;
    h.run_steps(10);
    assert_eq!(
        app(&mut h).stats.queries,
        queries,
        "the window queried per frame"
    );

    // A range: the first two days.
    type_into(&mut h, "From", "2026-11-01");
    type_into(&mut h, "To", "2026-11-02");
    let filter = app(&mut h).stats.filter().unwrap();
    assert_eq!(filter.since, parse_day("2026-11-01").ok());
    assert_eq!(filter.until, parse_day("2026-11-02").ok());
    let shown = engine_totals(&mut h, &filter);
    let (runs, images) = known("2026-11-01", "2026-11-02");
    assert_eq!((runs, images), (2, 5));
    assert!(
        shown.starts_with(&format!("Runs {runs} ")) && shown.contains(&format!("Images {images} ")),
        "{shown}"
    );
    h.get_by_label(&shown);
    assert!(
        h.query_by_label(&all).is_none(),
        "the totals did not change"
    );

    // An invalid date: shown with its error, the last numbers stay.
    type_into(&mut h, "To", "x");
    h.get_by_label_contains("\"2026-11-02x\": expected YYYY-MM-DD");
    h.get_by_label(&shown);

    // The quick buttons: "All" clears the range.
    h.get_by_label("All").click();
    h.run_steps(2);
    h.get_by_label(&all);
    assert!(app(&mut h).stats.since.is_empty());

    // Days 2 to 4 (set on the fields), then only one graph.
    {
        let w = &mut app(&mut h).stats;
        w.since = "2026-11-02".into();
        w.until = "2026-11-04".into();
    }
    let ctx = h.ctx.clone();
    app(&mut h).apply(&ctx, AppCommand::Stats(StatsCommand::Filter));
    h.run_steps(2);
    let (runs, images) = known("2026-11-02", "2026-11-04");
    let filter = app(&mut h).stats.filter().unwrap();
    let shown = engine_totals(&mut h, &filter);
    assert!(
        shown.starts_with(&format!("Runs {runs} ")) && shown.contains(&format!("Images {images} ")),
        "{shown}"
    );
    h.get_by_label(&shown);
    let per_graph: Vec<(String, u64)> = app(&mut h)
        .stats
        .stats
        .as_ref()
        .unwrap()
        .graphs
        .iter()
        .map(|g| (g.graph.clone(), g.images))
        .collect();
    assert_eq!(
        per_graph,
        [("stats-b".to_string(), 3), ("stats-a".to_string(), 1)]
    );
    app(&mut h).stats.graph = Some("stats-a".into());
    app(&mut h).apply(&ctx, AppCommand::Stats(StatsCommand::Filter));
    h.run_steps(2);
    let filter = app(&mut h).stats.filter().unwrap();
    let shown = engine_totals(&mut h, &filter);
    assert!(
        shown.starts_with("Runs 1 ") && shown.contains("Images 1 "),
        "{shown}"
    );
    h.get_by_label(&shown);
    app(&mut h).stats.graph = None;

    // Export CSV into a folder (the command the dialog sends).
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("csv");
    app(&mut h).apply(
        &ctx,
        AppCommand::Stats(StatsCommand::ExportCsv(Some(out.clone()))),
    );
    h.run_steps(2);
    let w = &app(&mut h).stats;
    assert_eq!(w.error, None);
    for f in engine::stats::csv::FILES {
        let p: &Path = &out.join(f);
        assert!(p.is_file(), "{} was not written", p.display());
    }
    h.get_by_label_contains(&format!(
        "wrote {} CSV files to",
        engine::stats::csv::FILES.len()
    ));

    // `DEFECT_STUDIO_SCREENSHOTS=DIR` saves the window over more real runs: the example
    // recipes, run for real on the days of the last two weeks.
    if let Some(dir) = std::env::var_os("DEFECT_STUDIO_SCREENSHOTS") {
        example_runs();
        let w = &mut app(&mut h).stats;
        w.since.clear();
        w.until.clear();
        w.graph = None;
        app(&mut h).apply(&ctx, AppCommand::Stats(StatsCommand::Refresh));
        h.set_size(egui::Vec2::new(1280.0, 800.0));
        h.event(egui::Event::PointerGone);
        h.run_steps(4);
        let img = h.render().expect("render");
        img.save(PathBuf::from(dir).join("statistics.png")).unwrap();
    }
}

/// The example recipes run on the days of the two weeks before today (for the screenshot).
fn example_runs() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let recipes = [
        "scratches-on-brushed-metal",
        "stains-on-fabric",
        "cracks-on-concrete",
        "concrete-stain",
        "brushed-metal-scratch",
    ];
    let today = engine::stats::day_of_ms(engine::store::now_ms());
    let mut exec = Executor::builtin();
    for k in 0..14u32 {
        if k % 4 == 3 {
            continue;
        }
        let name = recipes[(k as usize * 3) % recipes.len()];
        let doc = GraphDoc::from_json(
            &std::fs::read_to_string(examples.join(format!("{name}.json"))).unwrap(),
        )
        .unwrap();
        let count = u64::from(1 + k % 3);
        let (items, _) = plan(&PlanSpec {
            doc: &doc,
            base_dir: &examples,
            count,
            seed: u64::from(k),
            sweeps: &[],
            shard: None,
        })
        .unwrap();
        let mut j = job(name, "", count);
        j.doc = doc;
        j.items = items;
        j.base_dir = examples.clone();
        let summary = run_batch(&mut exec, &j, &|_| {}, &CancelToken::new()).unwrap();
        let store = Store::open(&engine::paths::store_path()).unwrap();
        let mut rec = store.run(summary.run_id).unwrap().unwrap();
        let took = rec.ended_ms.unwrap_or(rec.started_ms) - rec.started_ms;
        rec.started_ms = u64::from(today - 13 + k) * 86_400_000 + 9 * 3_600_000;
        rec.ended_ms = Some(rec.started_ms + took);
        store.update_run(summary.run_id, &rec).unwrap();
    }
}
