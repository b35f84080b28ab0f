//! The example query of issue 19 over 100,000 items in a warm store (target ≤ 50 ms), with
//! the time to write the items and their indexes, to load the indexes (cold), and the store's
//! size. Run with `cargo bench -p engine --bench query`.

use std::collections::BTreeMap;
use std::time::Instant;

use engine::explore::{Catalog, ItemRecord, ItemSource, Query};
use engine::Store;

const N: usize = 100_000;
const QUERY: &str =
    "label:scratch AND (model:sdxl OR NOT source:generated) AND area>200 AND created>=2026-11-01";
/// 2026-10-01 in ms.
const OCT1: u64 = 1_790_812_800_000;

fn item(i: usize) -> ItemRecord {
    let h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let r = |k: u32| (h.rotate_left(k * 7) >> 16) as usize;
    let generated = r(1) % 10 < 7;
    let label = ["scratch", "dent", "stain", "crack", "chip"][r(2) % 5];
    let mut tags = vec![
        format!(
            "source:{}",
            if generated { "generated" } else { "imported" }
        ),
        format!("label:{label}"),
    ];
    if generated {
        tags.push(format!(
            "model:{}",
            ["sdxl", "sd15", "procedural"][r(3) % 3]
        ));
        tags.push(format!("graph:recipe-{}", r(4) % 20));
        tags.push(format!("run:{}", i / 50));
    } else {
        tags.push(format!("dataset:photos-{}", r(4) % 5));
    }
    let mut fields = BTreeMap::new();
    let created = OCT1 + (r(5) as u64 % (61 * 86_400_000));
    fields.insert("created".to_string(), created as f64);
    fields.insert("area".to_string(), (r(6) % 2000) as f64);
    fields.insert("defects".to_string(), (r(7) % 6) as f64);
    fields.insert("width".to_string(), 512.0);
    fields.insert("height".to_string(), 512.0);
    fields.insert("scratch.width".to_string(), (r(8) % 100) as f64 / 10.0);
    ItemRecord {
        sha256: format!("{h:064x}"),
        source: if generated {
            ItemSource::Generated
        } else {
            ItemSource::Imported
        },
        output_id: None,
        dataset: None,
        name: format!("item-{i}.png"),
        created_ms: created,
        width: 512,
        height: 512,
        auto_tags: tags,
        tags: Vec::new(),
        fields,
    }
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bench.redb");
    let store = Store::open(&path).expect("store");
    let t = Instant::now();
    for chunk in 0..10 {
        let mut tx = store.catalog_tx().expect("tx");
        for i in chunk * N / 10..(chunk + 1) * N / 10 {
            tx.add_item(&item(i), None).expect("add");
        }
        tx.commit().expect("commit");
    }
    let write_s = t.elapsed().as_secs_f64();
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);

    let cat = Catalog::new(&store);
    let t = Instant::now();
    let first = cat.query(QUERY).expect("query");
    let cold_ms = t.elapsed().as_secs_f64() * 1e3;
    let mut times = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        let ids = cat.query(QUERY).expect("query");
        times.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(ids, first);
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];

    // The result is right: a brute-force pass over the records agrees.
    let e = Query::parse(QUERY).expect("parse");
    let t = Instant::now();
    let items = store.items().expect("items");
    let want: Vec<u64> = items
        .iter()
        .filter(|(_, it)| e.matches(it))
        .map(|(id, _)| *id)
        .collect();
    let brute_ms = t.elapsed().as_secs_f64() * 1e3;
    assert_eq!(first, want);
    assert!(
        !first.is_empty(),
        "the example query should match some items"
    );

    println!("items: {N}, matches: {}", first.len());
    println!(
        "write items + indexes: {write_s:.2} s ({:.1} µs/item)",
        write_s * 1e6 / N as f64
    );
    println!("store size: {:.1} MB", size as f64 / 1e6);
    println!("first query (loads the indexes): {cold_ms:.1} ms");
    println!(
        "warm query: median {median:.2} ms, min {:.2} ms, max {:.2} ms (target ≤ 50 ms): {}",
        times[0],
        times[times.len() - 1],
        if median <= 50.0 { "met" } else { "NOT met" }
    );
    println!("brute force over the records (reading them included): {brute_ms:.0} ms");
}
