//! Statistics over a fixture store (real batches and runs recorded through the `Store` API)
//! equal a brute-force count over its records, for every breakdown and several filters; an
//! output's deletion takes its image back out; `store check`'s recount agrees.

mod stats_support;

use engine::stats::{stats, StatsFilter};
use engine::Store;
use redb::ReadableTable;
use stats_support::*;

fn compare(store: &Store, what: &str) {
    for f in filters() {
        let got = stats(store, &f).unwrap();
        let want = brute_force(store, &f);
        assert_eq!(got, want, "{what}: filter {f:?}");
    }
}

#[test]
fn statistics_equal_a_brute_force_count() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(dir.path());
    let store = Store::open(&path).unwrap();
    let all = stats(&store, &StatsFilter::default()).unwrap();
    // The fixture has what every breakdown needs.
    assert!(
        all.totals.failed >= 3 && all.totals.cancelled >= 2,
        "{:?}",
        all.totals
    );
    assert_eq!(all.totals.unfinished, 1);
    assert!(all.per_week.len() >= 2, "{:?}", all.per_week);
    assert!(all
        .kinds
        .iter()
        .any(|k| k.kind == "LoadDetector" && k.failed > 0));
    assert!(all
        .kinds
        .iter()
        .any(|k| k.kind == "LoadImage" && k.failure_rate == 1.0));
    let detector = all.models.iter().find(|m| m.role == "detector").unwrap();
    assert_eq!(detector.sha256.len(), 64, "{detector:?}");
    assert_eq!(all.loras.len(), 2);
    // Seven real batches on the CPU (this build resolves no GPU), five diffusion runs on cuda:0.
    let device = |name: &str| {
        all.devices
            .iter()
            .find(|d| d.device == name)
            .unwrap()
            .clone()
    };
    assert_eq!(device("cpu").runs, 7);
    assert_eq!(device("cuda:0").runs, 5);
    assert!(device("cuda:0").seconds > 0.0 && device("cpu").seconds > 0.0);
    assert!(all
        .trainings
        .iter()
        .any(|t| t.kind == "lora" && t.runs == 3));
    compare(&store, "as built");
    assert!(store.check_stats().unwrap().is_empty());

    // Two stores' statistics merged: every count doubled, rates and order unchanged; an empty
    // store's adds nothing.
    let merged = engine::stats::merge(vec![all.clone(), all.clone()]);
    assert_eq!(merged.totals.runs, 2 * all.totals.runs);
    assert_eq!(merged.totals.seconds, 2.0 * all.totals.seconds);
    assert_eq!(merged.kinds.len(), all.kinds.len());
    for (m, a) in merged.kinds.iter().zip(&all.kinds) {
        assert_eq!(
            (&m.kind, m.runs, m.failure_rate),
            (&a.kind, 2 * a.runs, a.failure_rate)
        );
    }
    for (m, a) in merged.loras.iter().zip(&all.loras) {
        assert_eq!((&m.name, m.images), (&a.name, 2 * a.images));
    }
    assert_eq!(
        engine::stats::merge(vec![all.clone(), engine::stats::Stats::default()]),
        all
    );

    // Deleting an output takes its image back out (and a run whose last `crack` output goes
    // leaves that label's statistics).
    let outputs = store.outputs(None).unwrap();
    let before = stats(&store, &StatsFilter::default()).unwrap();
    let (crack, _) = outputs.iter().find(|(_, o)| o.label == "crack").unwrap();
    let (scratch, _) = outputs.iter().find(|(_, o)| o.label == "scratch").unwrap();
    store.delete_output(*crack).unwrap();
    store.delete_output(*scratch).unwrap();
    let after = stats(&store, &StatsFilter::default()).unwrap();
    assert_eq!(after.totals.images, before.totals.images - 2);
    assert!(after
        .labels
        .iter()
        .all(|l| l.label != "crack" || l.images == 1));
    compare(&store, "after deleting outputs");
    assert!(store.check_stats().unwrap().is_empty());
}

#[test]
fn per_item_usage_equals_the_runs_node_timings() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let (id, status) = run(
        dir.path(),
        &path,
        Batch {
            doc: plates(),
            name: "plates",
            count: 3,
            seed: 11,
            device: None,
            cancel_after: None,
        },
    );
    assert_eq!(status, engine::RunStatus::Succeeded);
    let store = Store::open_read_only(&path).unwrap();
    let rec = store.run(id).unwrap().unwrap();
    assert_eq!(rec.stats.models, Vec::new());
    let s = stats(&store, &StatsFilter::default()).unwrap();
    assert_eq!(s.totals.items, 3);
    assert_eq!(s.totals.images, 3);
    let mut kinds: std::collections::BTreeMap<&str, (u64, u64, u64)> = Default::default();
    for t in &rec.node_timings {
        let k = kinds.entry(&t.kind).or_default();
        if t.cached {
            k.1 += 1;
        } else {
            k.0 += 1;
            k.2 += (t.seconds * 1e6).round() as u64;
        }
    }
    assert_eq!(kinds.len(), 3, "{kinds:?}");
    assert_eq!(s.kinds.len(), 3, "{:?}", s.kinds);
    for k in &s.kinds {
        let (executed, cached, us) = kinds[k.kind.as_str()];
        assert_eq!((k.executed, k.cached), (executed, cached), "{k:?}");
        assert_eq!(k.seconds, us as f64 / 1e6, "{k:?}");
        assert_eq!(k.runs, 1);
    }
    let total: u64 = kinds.values().map(|k| k.2).sum();
    assert_eq!(s.totals.seconds, total as f64 / 1e6);
    assert_eq!(s.devices.len(), 1);
    assert_eq!(s.devices[0].device, "cpu");
    assert_eq!(s.devices[0].seconds, total as f64 / 1e6);
}

/// Removes the aggregate tables and their schema versions: the store as an older build left it.
fn make_old(path: &std::path::Path) {
    let db = redb::Database::open(path).unwrap();
    let tx = db.begin_write().unwrap();
    for name in ["stats_buckets", "stats_months", "stats_days"] {
        let t: redb::TableDefinition<(u32, &str, &str), &[u8]> = redb::TableDefinition::new(name);
        assert!(tx.delete_table(t).unwrap(), "{name}");
    }
    let runs: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("stats_runs");
    assert!(tx.delete_table(runs).unwrap());
    {
        let meta: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("meta");
        let mut t = tx.open_table(meta).unwrap();
        for name in ["stats_buckets", "stats_months", "stats_days", "stats_runs"] {
            t.remove(format!("schema.{name}").as_str()).unwrap();
        }
    }
    tx.commit().unwrap();
}

#[test]
fn an_old_store_answers_the_same_read_only_and_after_migration() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(dir.path());
    let want: Vec<_> = {
        let store = Store::open(&path).unwrap();
        filters()
            .iter()
            .map(|f| stats(&store, f).unwrap())
            .collect()
    };
    make_old(&path);
    let bytes = std::fs::read(&path).unwrap();
    {
        let store = Store::open_read_only(&path).unwrap();
        assert!(store.check_stats().unwrap().is_empty());
        for (f, want) in filters().iter().zip(&want) {
            assert_eq!(&stats(&store, f).unwrap(), want, "read-only, filter {f:?}");
            assert_eq!(&brute_force(&store, f), want, "brute force, filter {f:?}");
        }
    }
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "a read-only handle wrote"
    );
    // A read-write open builds the aggregates from the records, once.
    let store = Store::open(&path).unwrap();
    for (f, want) in filters().iter().zip(&want) {
        assert_eq!(&stats(&store, f).unwrap(), want, "migrated, filter {f:?}");
    }
    assert!(store.check_stats().unwrap().is_empty());
    drop(store);
    let db = redb::Database::open(&path).unwrap();
    let tx = redb::ReadableDatabase::begin_read(&db).unwrap();
    let t: redb::TableDefinition<(u32, &str, &str), &[u8]> =
        redb::TableDefinition::new("stats_buckets");
    assert!(redb::ReadableTableMetadata::len(&tx.open_table(t).unwrap()).unwrap() > 10);
}

#[test]
fn check_stats_reports_a_bucket_that_differs_from_the_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    {
        let store = Store::open(&path).unwrap();
        manual_run(
            &store,
            "diffusion",
            at(BASE_DAY, 3),
            2,
            &["dent"],
            Some(engine::RunStatus::Succeeded),
            "rust.safetensors",
        );
        assert!(store.check_stats().unwrap().is_empty());
    }
    // Another build (or a bug) left the graph's bucket one image short.
    {
        let db = redb::Database::open(&path).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let def: redb::TableDefinition<(u32, &str, &str), &[u8]> =
                redb::TableDefinition::new("stats_buckets");
            let mut t = tx.open_table(def).unwrap();
            let key = (BASE_DAY as u32, "diffusion", "");
            let mut tally: engine::stats::tally::Tally =
                serde_json::from_slice(t.get(key).unwrap().unwrap().value()).unwrap();
            tally.images -= 1;
            t.insert(key, serde_json::to_vec(&tally).unwrap().as_slice())
                .unwrap();
        }
        tx.commit().unwrap();
    }
    let store = Store::open_read_only(&path).unwrap();
    let problems = store.check_stats().unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("2026-11-30")
            && problems[0].contains("graph \"diffusion\"")
            && problems[0].contains("stored 1 run(s), 1 image(s)")
            && problems[0].contains("the records say 1 run(s), 2 image(s)"),
        "{}",
        problems[0]
    );
    // `store rebuild-stats` repairs it from the records, and the numbers come back.
    drop(store);
    let store = Store::open(&path).unwrap();
    let filter = engine::stats::StatsFilter::default();
    store.rebuild_stats().unwrap();
    assert!(store.check_stats().unwrap().is_empty());
    assert_eq!(
        engine::stats::stats(&store, &filter).unwrap().totals.images,
        2
    );
}
