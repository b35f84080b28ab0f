//! The brute-force side of the `stats` end-to-end test (`tests/tests/stats.rs`): every
//! breakdown counted by hand from the records `history --json` prints (plus the store's run
//! records), the same breakdowns read from a `stats --json` answer, and their comparison.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// What a filter keeps, applied by hand.
#[derive(Default, Clone)]
pub struct Filter {
    pub since: Option<u32>,
    pub until: Option<u32>,
    pub graph: Option<String>,
    pub label: Option<String>,
}

/// Every breakdown, counted by brute force from the records: name → numbers (the rows' integer
/// fields in order, then seconds).
#[derive(Debug, Default, PartialEq)]
pub struct Counts {
    pub totals: Vec<f64>,
    pub per_day: BTreeMap<String, Vec<f64>>,
    pub per_week: BTreeMap<String, Vec<f64>>,
    pub graphs: BTreeMap<String, Vec<f64>>,
    pub labels: BTreeMap<String, Vec<f64>>,
    pub kinds: BTreeMap<String, Vec<f64>>,
    pub devices: BTreeMap<String, Vec<f64>>,
    /// Models and LoRAs by `role|name|sha256`: runs, images, seconds.
    pub models: BTreeMap<String, Vec<f64>>,
    /// Trainings by kind: runs, succeeded, failed, hours.
    pub trainings: BTreeMap<String, Vec<f64>>,
    /// How far a sum of seconds may be from the brute-force sum: the store may round each
    /// timing (to a microsecond) to keep its sums exact.
    pub slack: f64,
}

pub fn add(map: &mut BTreeMap<String, Vec<f64>>, key: &str, v: &[f64]) {
    let e = map
        .entry(key.to_string())
        .or_insert_with(|| vec![0.0; v.len()]);
    for (a, b) in e.iter_mut().zip(v) {
        *a += b;
    }
}

/// The brute-force count of `history` (as `history --json` prints it) plus each run's device
/// from the store's records, under `f`.
pub fn brute_force(
    history: &[Value],
    records: &BTreeMap<u64, engine::RunRecord>,
    trainings: &[Value],
    f: &Filter,
) -> Counts {
    let mut c = Counts {
        totals: vec![0.0; 8],
        ..Counts::default()
    };
    // Trainings are not runs of a graph: only the dates filter them.
    for t in trainings {
        let started = t["started_ms"].as_u64().unwrap();
        let day = engine::stats::day_of_ms(started);
        if f.since.is_some_and(|s| day < s) || f.until.is_some_and(|u| day > u) {
            continue;
        }
        let status = t["status"].as_str().unwrap();
        let hours = t["ended_ms"]
            .as_u64()
            .map_or(0.0, |e| (e - started) as f64 / 3_600_000.0);
        add(
            &mut c.trainings,
            t["kind"].as_str().unwrap(),
            &[
                1.0,
                f64::from(u8::from(status == "succeeded")),
                f64::from(u8::from(status == "failed")),
                hours,
            ],
        );
    }
    for run in history {
        let day = engine::stats::day_of_ms(run["started_ms"].as_u64().unwrap());
        if f.since.is_some_and(|s| day < s) || f.until.is_some_and(|u| day > u) {
            continue;
        }
        let graph = run["graph"].as_str().unwrap();
        if f.graph.as_deref().is_some_and(|g| g != graph) {
            continue;
        }
        let outputs: Vec<&Value> = run["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| {
                f.label
                    .as_deref()
                    .is_none_or(|l| o["label"].as_str() == Some(l))
            })
            .collect();
        if f.label.is_some() && outputs.is_empty() {
            continue;
        }
        let status = run["status"].as_str().unwrap();
        let images = outputs.len() as f64;
        let timings = run["node_timings"].as_array().unwrap();
        c.slack += 0.5e-6 * timings.len() as f64;
        let seconds: f64 = timings
            .iter()
            .filter(|t| !t["cached"].as_bool().unwrap())
            .map(|t| t["seconds"].as_f64().unwrap())
            .sum();
        let items = if status == "succeeded" {
            run["items"].as_f64().unwrap()
        } else {
            outputs
                .iter()
                .map(|o| o["item"].as_u64().unwrap())
                .collect::<BTreeSet<_>>()
                .len() as f64
        };
        let is = |s: &str| f64::from(u8::from(status == s));
        let unfinished = f64::from(u8::from(status == "running" || status == "interrupted"));
        let row = [
            1.0,
            is("succeeded"),
            is("failed"),
            is("cancelled"),
            unfinished,
            items,
            images,
            seconds,
        ];
        for (a, b) in c.totals.iter_mut().zip(row) {
            *a += b;
        }
        add(
            &mut c.per_day,
            &engine::stats::format_day(day),
            &[1.0, images, seconds],
        );
        add(
            &mut c.per_week,
            &engine::stats::iso_week(day),
            &[1.0, images, seconds],
        );
        add(
            &mut c.graphs,
            graph,
            &[1.0, is("succeeded"), is("failed"), images, seconds],
        );
        // Images per label: outputs without a label are in no row.
        for o in &outputs {
            let label = o["label"].as_str().unwrap();
            if !label.is_empty() {
                add(&mut c.labels, label, &[1.0]);
            }
        }
        // Node kinds: [runs, executed, cached, failed, seconds].
        let mut kinds: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for t in timings {
            let cached = t["cached"].as_bool().unwrap();
            let secs = if cached {
                0.0
            } else {
                t["seconds"].as_f64().unwrap()
            };
            add(
                &mut kinds,
                t["kind"].as_str().unwrap(),
                &[
                    0.0,
                    f64::from(u8::from(!cached)),
                    f64::from(u8::from(cached)),
                    0.0,
                    secs,
                ],
            );
        }
        if let Some(kind) = run["error"].as_str().and_then(failed_kind) {
            add(&mut kinds, &kind, &[0.0, 0.0, 0.0, 1.0, 0.0]);
        }
        for (kind, mut v) in kinds {
            v[0] = 1.0;
            add(&mut c.kinds, &kind, &v);
        }
        // Devices: runs by the device the run recorded; seconds by where each node ran (these
        // procedural recipes run every node on the CPU).
        let record = &records[&run["id"].as_u64().unwrap()];
        if let Some(d) = &record.device {
            add(&mut c.devices, d, &[1.0, 0.0]);
        }
        if seconds > 0.0 {
            add(&mut c.devices, "cpu", &[0.0, seconds]);
        }
        // Models: the files the run's recipe named (recorded when it started), each with the
        // compute of the nodes that ran it.
        for m in &record.stats.models {
            let secs: f64 = timings
                .iter()
                .filter(|t| !t["cached"].as_bool().unwrap())
                .filter(|t| m.nodes.iter().any(|n| t["node"] == n.as_str()))
                .map(|t| t["seconds"].as_f64().unwrap())
                .sum();
            let key = format!("{}|{}|{}", m.role, m.name, m.sha256);
            add(&mut c.models, &key, &[1.0, images, secs]);
        }
    }
    c
}

/// The node kind an error names: `node "ID" (Kind): …`.
pub fn failed_kind(error: &str) -> Option<String> {
    let rest = error.split_once("node \"")?.1;
    let rest = rest.split_once("\" (")?.1;
    Some(rest.split_once(')')?.0.to_string())
}

/// The same breakdowns read from a `stats --json` answer; also checks each row's own
/// consistency (failure rate) and the documented order of the rows.
pub fn from_json(s: &Value) -> Counts {
    let nums = |row: &Value, fields: &[&str]| -> Vec<f64> {
        fields
            .iter()
            .map(|f| {
                row[*f]
                    .as_f64()
                    .unwrap_or_else(|| panic!("field {f} in {row}"))
            })
            .collect()
    };
    let table = |name: &str, key: &str, fields: &[&str]| -> BTreeMap<String, Vec<f64>> {
        let rows = s[name].as_array().unwrap();
        let map: BTreeMap<String, Vec<f64>> = rows
            .iter()
            .map(|r| (r[key].as_str().unwrap().to_string(), nums(r, fields)))
            .collect();
        assert_eq!(map.len(), rows.len(), "{name}: one row per {key}");
        map
    };
    let period = ["runs", "images", "seconds"];
    for name in ["per_day", "per_week"] {
        let keys: Vec<&str> = s[name]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["period"].as_str().unwrap())
            .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{name}: by date");
    }
    for name in ["graphs", "kinds", "devices"] {
        let rows = s[name].as_array().unwrap();
        let runs: Vec<u64> = rows.iter().map(|r| r["runs"].as_u64().unwrap()).collect();
        assert!(
            runs.windows(2).all(|w| w[0] >= w[1]),
            "{name}: most runs first: {runs:?}"
        );
    }
    for k in s["kinds"].as_array().unwrap() {
        let (executed, failed) = (
            k["executed"].as_f64().unwrap(),
            k["failed"].as_f64().unwrap(),
        );
        let want = if executed + failed == 0.0 {
            0.0
        } else {
            failed / (executed + failed)
        };
        close(k["failure_rate"].as_f64().unwrap(), want, "failure_rate");
    }
    Counts {
        totals: nums(
            &s["totals"],
            &[
                "runs",
                "succeeded",
                "failed",
                "cancelled",
                "unfinished",
                "items",
                "images",
                "seconds",
            ],
        ),
        per_day: table("per_day", "period", &period),
        per_week: table("per_week", "period", &period),
        graphs: table(
            "graphs",
            "graph",
            &["runs", "succeeded", "failed", "images", "seconds"],
        ),
        labels: table("labels", "label", &["images"]),
        kinds: table(
            "kinds",
            "kind",
            &["runs", "executed", "cached", "failed", "seconds"],
        ),
        devices: table("devices", "device", &["runs", "seconds"]),
        models: {
            let model_fields = ["runs", "images", "seconds"];
            let mut map = BTreeMap::new();
            for (list, lora) in [("models", false), ("loras", true)] {
                for m in s[list].as_array().unwrap() {
                    assert_eq!(m["role"] == "lora", lora, "{list}: {m}");
                    let key = format!(
                        "{}|{}|{}",
                        m["role"].as_str().unwrap(),
                        m["name"].as_str().unwrap(),
                        m["sha256"].as_str().unwrap()
                    );
                    assert!(map.insert(key, nums(m, &model_fields)).is_none(), "{m}");
                }
            }
            map
        },
        trainings: table(
            "trainings",
            "kind",
            &["runs", "succeeded", "failed", "hours"],
        ),
        slack: 0.0,
    }
}

pub fn close(a: f64, b: f64, what: &str) {
    close_by(a, b, 0.0, what);
}

/// `a == b` up to `slack` and float rounding (counts are whole, so any miscount shows).
pub fn close_by(a: f64, b: f64, slack: f64, what: &str) {
    assert!(
        (a - b).abs() <= slack + 1e-9 * a.abs().max(b.abs()).max(1.0),
        "{what}: {a} vs {b}"
    );
}

/// Equal up to the rounding of summed seconds.
pub fn assert_counts(got: &Counts, want: &Counts, what: &str) {
    let same = |a: &[f64], b: &[f64], name: &str| {
        assert_eq!(a.len(), b.len(), "{what} {name}");
        for (x, y) in a.iter().zip(b) {
            close_by(
                *x,
                *y,
                want.slack,
                &format!("{what} {name}: {a:?} vs {b:?}"),
            );
        }
    };
    same(&got.totals, &want.totals, "totals");
    for (name, g, w) in [
        ("per_day", &got.per_day, &want.per_day),
        ("per_week", &got.per_week, &want.per_week),
        ("graphs", &got.graphs, &want.graphs),
        ("labels", &got.labels, &want.labels),
        ("kinds", &got.kinds, &want.kinds),
        ("devices", &got.devices, &want.devices),
        ("models", &got.models, &want.models),
        ("trainings", &got.trainings, &want.trainings),
    ] {
        assert_eq!(
            g.keys().collect::<Vec<_>>(),
            w.keys().collect::<Vec<_>>(),
            "{what} {name}"
        );
        for (k, v) in g {
            same(v, &w[k], &format!("{name} {k}"));
        }
    }
}
