//! The query engine (indexes in the store) against a brute-force evaluator (each record,
//! no index) on random queries over a random store; manual tags on items and on a query's
//! result; warm indexes following changes made through another handle.

use std::collections::BTreeMap;

use engine::explore::{Catalog, CmpOp, Computed, Expr, ItemRecord, ItemSource, Query, Scalar};
use engine::Store;

/// splitmix64: a seeded generator, so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

const KEYS: &[(&str, &[&str])] = &[
    ("label", &["scratch", "dent", "Stain", "crack"]),
    ("model", &["sdxl", "sd15", "My Model"]),
    ("Camera", &["left", "right"]),
    ("lora", &["rust-v2", "oil"]),
    ("run", &["1", "2", "3"]),
];
const WORDS: &[&str] = &["good", "Review", "bad", "and", "two words", "x:y"];
const FIELDS: &[&str] = &["area", "width", "score", "s.count", "created"];
/// 2026-10-25 .. 2026-11-10 in ms.
const DAY0: u64 = 1_792_886_400_000;
const DAY: u64 = 86_400_000;

fn random_item(r: &mut Rng) -> ItemRecord {
    let generated = r.chance(0.6);
    let mut auto = vec![format!(
        "source:{}",
        if generated { "generated" } else { "imported" }
    )];
    let mut tags = Vec::new();
    for (k, vs) in KEYS {
        if r.chance(0.5) {
            let t = format!("{k}:{}", r.pick(vs));
            // Some tags are written in another case: matching is case-insensitive.
            let t = if r.chance(0.2) { t.to_uppercase() } else { t };
            if r.chance(0.8) {
                auto.push(t);
            } else {
                tags.push(t);
            }
        }
    }
    for w in WORDS {
        if r.chance(0.15) {
            tags.push(w.to_string());
        }
    }
    let mut fields = BTreeMap::new();
    for f in FIELDS {
        if r.chance(0.75) {
            let v = match *f {
                "created" => {
                    (DAY0 + r.below(16) as u64 * DAY + r.below(DAY as usize) as u64) as f64
                }
                "score" => r.below(21) as f64 / 4.0 - 1.0,
                _ => r.below(400) as f64,
            };
            fields.insert(f.to_string(), v);
        }
    }
    ItemRecord {
        sha256: format!("{:064x}", r.next()),
        source: if generated {
            ItemSource::Generated
        } else {
            ItemSource::Imported
        },
        output_id: None,
        dataset: None,
        name: "x".into(),
        created_ms: DAY0,
        width: 1,
        height: 1,
        auto_tags: auto,
        tags,
        fields,
    }
}

fn random_expr(r: &mut Rng, depth: u32) -> Expr {
    if depth == 0 || r.chance(0.3) {
        return match r.below(5) {
            0 | 1 => {
                let (k, vs) = r.pick(KEYS);
                Expr::Tag {
                    key: k.to_lowercase(),
                    value: r.pick(vs).to_lowercase(),
                }
            }
            2 => Expr::AnyValue {
                key: r.pick(KEYS).0.to_lowercase(),
            },
            3 => Expr::Word(r.pick(WORDS).to_lowercase()),
            _ => {
                let field = r.pick(FIELDS).to_string();
                let op = *r.pick(&CmpOp::ALL);
                let value = if field == "created" && r.chance(0.8) {
                    Scalar::Date {
                        year: 2026,
                        month: if r.chance(0.5) { 10 } else { 11 },
                        day: 1 + r.below(30) as u32,
                    }
                } else if field == "score" {
                    Scalar::Number(r.below(25) as f64 / 4.0 - 2.0)
                } else {
                    Scalar::Number(r.below(420) as f64 - 10.0)
                };
                Expr::Cmp { field, op, value }
            }
        };
    }
    match r.below(3) {
        0 => Expr::Not(Box::new(random_expr(r, depth - 1))),
        1 => Expr::And(
            Box::new(random_expr(r, depth - 1)),
            Box::new(random_expr(r, depth - 1)),
        ),
        _ => Expr::Or(
            Box::new(random_expr(r, depth - 1)),
            Box::new(random_expr(r, depth - 1)),
        ),
    }
}

/// Prints an expression with the other spellings (`&&`, `||`, `!`, `-`, side by side, lower
/// case keywords), fully parenthesised.
fn alt_text(e: &Expr, r: &mut Rng) -> String {
    match e {
        Expr::Not(a) => {
            let op = *r.pick(&["!", "-", "not ", "NOT "]);
            format!("{op}({})", alt_text(a, r))
        }
        Expr::And(a, b) => {
            let op = *r.pick(&[" && ", " ", " and ", " AND "]);
            format!("({}){op}({})", alt_text(a, r), alt_text(b, r))
        }
        Expr::Or(a, b) => {
            let op = *r.pick(&[" || ", " or ", " OR "]);
            format!("({}){op}({})", alt_text(a, r), alt_text(b, r))
        }
        leaf => leaf.to_string(),
    }
}

#[test]
fn the_indexes_equal_a_brute_force_evaluator_on_random_queries() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.redb")).unwrap();
    let mut r = Rng(0x5eed_0019);
    let mut tx = store.catalog_tx().unwrap();
    for _ in 0..3000 {
        tx.add_item(&random_item(&mut r), None).unwrap();
    }
    tx.commit().unwrap();
    let items = store.items().unwrap();
    assert_eq!(items.len(), 3000);
    let cat = Catalog::new(&store);
    let mut nonempty = 0;
    let mut partial = 0;
    for i in 0..1500 {
        let e = random_expr(&mut r, 1 + (i % 5) as u32);
        let text = e.to_string();
        assert_eq!(Query::parse(&text).unwrap(), e, "printed as {text}");
        let alt = alt_text(&e, &mut r);
        assert_eq!(Query::parse(&alt).unwrap(), e, "printed as {alt}");
        let got = cat.query(&text).unwrap();
        let want: Vec<u64> = items
            .iter()
            .filter(|(_, it)| e.matches(it))
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(got, want, "query {text}");
        nonempty += usize::from(!want.is_empty());
        partial += usize::from(!want.is_empty() && want.len() < items.len());
    }
    // The queries are not trivial: most select some but not all items.
    assert!(
        partial > 900,
        "only {partial} of 1500 queries select a strict subset"
    );
    assert!(nonempty > 1000);
}

#[test]
fn the_example_query_and_manual_tags() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let store = Store::open(&path).unwrap();
    let mut r = Rng(7);
    let mut tx = store.catalog_tx().unwrap();
    for _ in 0..200 {
        tx.add_item(&random_item(&mut r), None).unwrap();
    }
    tx.commit().unwrap();
    let cat = Catalog::new(&store);
    let q = "label:scratch AND (model:sdxl OR NOT source:generated) AND area>200 AND created>=2026-11-01";
    let e = Query::parse(q).unwrap();
    let items = store.items().unwrap();
    let want: Vec<u64> = items
        .iter()
        .filter(|(_, it)| e.matches(it))
        .map(|(id, _)| *id)
        .collect();
    assert!(!want.is_empty());
    assert_eq!(cat.query(q).unwrap(), want);

    // One item, then a query's result.
    assert_eq!(cat.query("keep").unwrap(), Vec::<u64>::new());
    assert_eq!(cat.add_tag(&[want[0]], "Keep").unwrap(), 1);
    assert_eq!(
        cat.add_tag(&[want[0]], "keep").unwrap(),
        0,
        "already tagged"
    );
    assert_eq!(cat.query("KEEP").unwrap(), vec![want[0]]);
    assert_eq!(cat.add_tag(&want, "keep").unwrap(), want.len() - 1);
    assert_eq!(cat.query("keep").unwrap(), want);
    assert_eq!(
        cat.query(&format!("keep AND NOT ({q})")).unwrap(),
        Vec::<u64>::new()
    );
    // Another handle on the same file (another process, as far as the store goes) sees it,
    // and its change reaches this process's warm index.
    let other = Store::open(&path).unwrap();
    let removed = Catalog::new(&other).remove_tag(&want[1..], "keep").unwrap();
    assert_eq!(removed, want.len() - 1);
    assert_eq!(cat.query("keep").unwrap(), vec![want[0]]);
    // key:value manual tags are tags like any other.
    cat.add_tag(&want[..1], "reviewer:ann").unwrap();
    assert_eq!(cat.query("reviewer:*").unwrap(), vec![want[0]]);
    assert_eq!(
        cat.item(want[0]).unwrap().unwrap().tags,
        vec!["Keep", "reviewer:ann"]
    );
    // An automatic tag cannot be removed as a manual one; the item keeps it.
    cat.remove_tag(&want[..1], "label:scratch").unwrap();
    assert!(cat.query("label:scratch").unwrap().contains(&want[0]));
    // Bad input: an unknown id (nothing written), an empty tag, a bad query.
    let e = cat
        .add_tag(&[want[0], 999_999], "x")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("999999") && e.contains("nothing was tagged"),
        "{e}"
    );
    assert_eq!(cat.query("x").unwrap(), Vec::<u64>::new());
    assert!(cat.add_tag(&[want[0]], "  ").is_err());
    let e = cat
        .query("label:scratch AND (area>")
        .unwrap_err()
        .to_string();
    assert!(e.contains("character 24") && e.contains("number"), "{e}");
}

#[test]
fn computed_tags_and_fields_replace_their_keys() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.redb")).unwrap();
    let mut r = Rng(11);
    let mut tx = store.catalog_tx().unwrap();
    let a = tx.add_item(&random_item(&mut r), None).unwrap();
    let b = tx.add_item(&random_item(&mut r), None).unwrap();
    tx.commit().unwrap();
    let cat = Catalog::new(&store);
    let set = |id, tags: &[&str], score: f64| Computed {
        id,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        fields: [("score".to_string(), score)].into_iter().collect(),
    };
    cat.set_computed(&[
        set(a, &["imagenet:sandpaper", "imagenet:chain mail"], 0.9),
        set(b, &["imagenet:oil filter"], 0.1),
    ])
    .unwrap();
    assert_eq!(cat.query("imagenet:sandpaper").unwrap(), vec![a]);
    assert_eq!(cat.query("score>0.5").unwrap(), vec![a]);
    // Again: the key's earlier tags are replaced, not added to.
    cat.set_computed(&[set(a, &["imagenet:oil filter"], 0.2)])
        .unwrap();
    assert!(cat.query("imagenet:sandpaper").unwrap().is_empty());
    assert_eq!(cat.query("imagenet:\"oil filter\"").unwrap(), vec![a, b]);
    assert!(cat.query("score>0.5").unwrap().is_empty());
    let e = cat
        .set_computed(&[set(99, &["x:y"], 1.0)])
        .unwrap_err()
        .to_string();
    assert!(e.contains("no such item: 99"), "{e}");
}
