//! Statistics over a fixture store (real batches and runs recorded through the `Store` API)
//! equal a brute-force count over its records, for every breakdown and several filters; an
//! output's deletion takes its image back out; `store check`'s recount agrees.

mod stats_support;

use engine::stats::{stats, StatsFilter};
use engine::Store;
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
    assert!(all
        .devices
        .iter()
        .any(|d| d.device == "cuda:1" && d.runs == 2));
    assert!(all
        .trainings
        .iter()
        .any(|t| t.kind == "lora" && t.runs == 3));
    compare(&store, "as built");
    assert!(store.check_stats().unwrap().is_empty());

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
