//! `stats` through the CLI (docs/ARCHITECTURE.md §17): real procedural recipes run into a
//! temporary store (several graphs, relabelled outputs, a failed run, and a diffusion recipe
//! whose checkpoint and LoRA files are not models, so it fails after naming them), then every
//! breakdown of
//! `stats --json` equals a brute-force count over the records `history --json` prints (and the
//! store's run records, for what history does not show), with and without the date, graph and
//! label filters; `--csv` writes files that parse back to the JSON's numbers; bad dates and an
//! empty range are one clear error; a missing store says "no runs yet".

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::*;
use serde_json::Value;

/// The files of the diffusion recipe: (checkpoint, LoRA) names and their bytes.
const CKPT: (&str, &str) = ("fake-ckpt.safetensors", "not a checkpoint");
const LORA: (&str, &str) = ("my, \"odd\" lora.safetensors", "not a LoRA either");

/// The fixture store: four successful runs of three example recipes (one relabelled through
/// `--set`), one run that fails in its LoadImage node and one that fails loading its checkpoint
/// (the recipe names a checkpoint and a LoRA, both hashed).
fn fixture() -> Env {
    let env = Env::new();
    let out = env.out();
    let out = out.to_str().unwrap();
    std::fs::write(env.dir.path().join("notes.png"), "text, not an image").unwrap();
    let broken = env.write(
        "broken.json",
        r#"{"format": "defect-studio/graph", "version": 1,
            "nodes": {
                "photo": {"kind": "LoadImage", "version": 1, "params": {"source": "notes.png"}},
                "save": {"kind": "SaveImage", "version": 1, "params": {"label": "never"}}
            },
            "links": [{"from": ["photo", "image"], "to": ["save", "image"]}]}"#,
    );
    // In the data folder's model folder, where a recipe's bare file names are looked up.
    let models = env.home().join("models");
    std::fs::create_dir_all(&models).unwrap();
    for (name, bytes) in [CKPT, LORA] {
        std::fs::write(models.join(name), bytes).unwrap();
    }
    let diffusion = env.write(
        "diffusion.json",
        &format!(
            r#"{{"format": "defect-studio/graph", "version": 1,
            "nodes": {{
                "ckpt": {{"kind": "LoadCheckpoint", "version": 1, "params": {{"checkpoint": "{}"}}}},
                "lora": {{"kind": "LoraLoader", "version": 1, "params": {{"lora": {}}}}},
                "gen": {{"kind": "Txt2Img", "version": 1, "params": {{"width": 64, "height": 64}}}},
                "save": {{"kind": "SaveImage", "version": 1}}
            }},
            "links": [
                {{"from": ["ckpt", "model"], "to": ["lora", "model"]}},
                {{"from": ["lora", "model"], "to": ["gen", "model"]}},
                {{"from": ["gen", "image"], "to": ["save", "image"]}}
            ]}}"#,
            CKPT.0,
            serde_json::to_string(LORA.0).unwrap()
        ),
    );
    let cracks = example("cracks-on-concrete.json");
    let scratches = example("scratches-on-brushed-metal.json");
    let stain = example("concrete-stain.json");
    let small = |node: &str| {
        vec![
            "--set".to_string(),
            format!("{node}.width=48"),
            "--set".to_string(),
            format!("{node}.height=40"),
        ]
    };
    let runs: Vec<(Vec<String>, bool)> = vec![
        (args(&cracks, &["--count", "3"], small("slab")), true),
        (
            args(
                &cracks,
                &[
                    "--count",
                    "2",
                    "--seed",
                    "7",
                    "--set",
                    "save.label=hairline",
                ],
                small("slab"),
            ),
            true,
        ),
        (args(&scratches, &["--count", "2"], small("plate")), true),
        (args(&stain, &["--count", "1"], small("slab")), true),
        (args(&broken, &[], vec![]), false),
        (args(&diffusion, &[], vec![]), false),
    ];
    for (a, ok) in runs {
        let mut a = a;
        a.extend(["--out".to_string(), out.to_string()]);
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        let o = env.run(&refs);
        assert_eq!(o.status.success(), ok, "{a:?}: {}", stderr(&o));
    }
    add_trainings(&env);
    env
}

/// Training records, as `train-*` writes them (through the store's own API: a real training
/// needs model weights): a LoRA of 2 hours, two classifiers (one failed), a segmenter still
/// running. They start on the day of the last run.
fn add_trainings(env: &Env) {
    let store = engine::Store::open(&env.store()).unwrap();
    let start = store
        .runs()
        .unwrap()
        .iter()
        .map(|(_, r)| r.started_ms)
        .max()
        .unwrap();
    for (kind, status, minutes) in [
        ("lora", "succeeded", Some(120)),
        ("classifier", "failed", Some(30)),
        ("classifier", "succeeded", Some(95)),
        ("segmenter", "running", None),
    ] {
        let rec: engine::TrainingRecord = serde_json::from_value(serde_json::json!({
            "kind": kind, "name": format!("{kind} {status}"), "model": "m.safetensors",
            "data": "photos/", "lora_path": "out.safetensors", "checkpoint_path": "ckpt/",
            "params": {}, "status": status, "pid": std::process::id(), "started_ms": start,
            "ended_ms": minutes.map(|m: u64| start + m * 60_000), "steps_done": 10,
            "steps_total": 10,
        }))
        .unwrap();
        store.begin_training(&rec).unwrap();
    }
}

fn args(graph: &Path, extra: &[&str], more: Vec<String>) -> Vec<String> {
    let mut a = vec!["run".to_string(), graph.to_str().unwrap().to_string()];
    a.extend(extra.iter().map(|s| s.to_string()));
    a.extend(more);
    a
}

/// `stats --json` with `flags`.
fn stats_json(env: &Env, flags: &[&str]) -> Value {
    let mut a = vec!["stats", "--json"];
    a.extend(flags);
    let o = env.run(&a);
    assert!(o.status.success(), "stats {flags:?}: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// What a filter keeps, applied by hand.
#[derive(Default, Clone)]
struct Filter {
    since: Option<u32>,
    until: Option<u32>,
    graph: Option<String>,
    label: Option<String>,
}

/// Every breakdown, counted by brute force from the records: name → numbers (the rows' integer
/// fields in order, then seconds).
#[derive(Debug, Default, PartialEq)]
struct Counts {
    totals: Vec<f64>,
    per_day: BTreeMap<String, Vec<f64>>,
    per_week: BTreeMap<String, Vec<f64>>,
    graphs: BTreeMap<String, Vec<f64>>,
    labels: BTreeMap<String, Vec<f64>>,
    kinds: BTreeMap<String, Vec<f64>>,
    devices: BTreeMap<String, Vec<f64>>,
    /// Models and LoRAs by `role|name|sha256`: runs, images, seconds.
    models: BTreeMap<String, Vec<f64>>,
    /// Trainings by kind: runs, succeeded, failed, hours.
    trainings: BTreeMap<String, Vec<f64>>,
    /// How far a sum of seconds may be from the brute-force sum: the store may round each
    /// timing (to a microsecond) to keep its sums exact.
    slack: f64,
}

fn add(map: &mut BTreeMap<String, Vec<f64>>, key: &str, v: &[f64]) {
    let e = map
        .entry(key.to_string())
        .or_insert_with(|| vec![0.0; v.len()]);
    for (a, b) in e.iter_mut().zip(v) {
        *a += b;
    }
}

/// The brute-force count of `history` (as `history --json` prints it) plus each run's device
/// from the store's records, under `f`.
fn brute_force(
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
fn failed_kind(error: &str) -> Option<String> {
    let rest = error.split_once("node \"")?.1;
    let rest = rest.split_once("\" (")?.1;
    Some(rest.split_once(')')?.0.to_string())
}

/// The same breakdowns read from a `stats --json` answer; also checks each row's own
/// consistency (failure rate) and the documented order of the rows.
fn from_json(s: &Value) -> Counts {
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

fn close(a: f64, b: f64, what: &str) {
    close_by(a, b, 0.0, what);
}

/// `a == b` up to `slack` and float rounding (counts are whole, so any miscount shows).
fn close_by(a: f64, b: f64, slack: f64, what: &str) {
    assert!(
        (a - b).abs() <= slack + 1e-9 * a.abs().max(b.abs()).max(1.0),
        "{what}: {a} vs {b}"
    );
}

/// Equal up to the rounding of summed seconds.
fn assert_counts(got: &Counts, want: &Counts, what: &str) {
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

/// The store's run records, for what `history --json` does not show (the device, the models
/// the recipe named).
fn run_records(env: &Env) -> BTreeMap<u64, engine::RunRecord> {
    let store = engine::Store::open_read_only(&env.store()).unwrap();
    store.runs().unwrap().into_iter().collect()
}

#[test]
fn stats_equal_a_brute_force_count_of_the_history() {
    let env = fixture();
    let history = env.history();
    assert_eq!(history.len(), 6, "{history:?}");
    let records = run_records(&env);
    let trainings = {
        let o = env.run(&["history", "--trainings", "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_slice::<Vec<Value>>(&o.stdout).unwrap()
    };
    assert_eq!(trainings.len(), 4);
    let check = |flags: &[&str], f: &Filter| -> Value {
        let s = stats_json(&env, flags);
        let want = brute_force(&history, &records, &trainings, f);
        assert_counts(&from_json(&s), &want, &format!("stats {flags:?}"));
        s
    };

    // Everything: the fixture's own numbers, so a stub (all zeros) or a miscount fails.
    let all = check(&[], &Filter::default());
    assert_eq!(all["totals"]["runs"], 6);
    assert_eq!(all["totals"]["failed"], 2);
    assert_eq!(all["totals"]["images"], 8);
    let labels: BTreeMap<&str, u64> = all["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["label"].as_str().unwrap(), r["images"].as_u64().unwrap()))
        .collect();
    assert_eq!(labels["crack"], 3);
    assert_eq!(labels["hairline"], 2);
    assert_eq!(labels["scratch"], 2);
    assert_eq!(all["graphs"][0]["runs"], 2, "the most-run recipe first");
    let load = all["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == "LoadImage")
        .expect("the failed run's LoadImage is counted");
    assert_eq!(load["failed"], 1);
    assert!(load["failure_rate"].as_f64().unwrap() > 0.0);
    // The diffusion recipe's files, by name and the sha256 of their bytes (the run failed
    // loading the checkpoint: one run, no image).
    for (list, role, (name, bytes)) in [("models", "checkpoint", CKPT), ("loras", "lora", LORA)] {
        let rows = all[list].as_array().unwrap();
        assert_eq!(rows.len(), 1, "{list}: {rows:?}");
        assert_eq!(rows[0]["role"], role);
        assert_eq!(rows[0]["name"], name);
        assert_eq!(rows[0]["sha256"], sha256(bytes.as_bytes()));
        assert_eq!(
            (rows[0]["runs"].as_u64(), rows[0]["images"].as_u64()),
            (Some(1), Some(0))
        );
    }
    let lora = &all["trainings"].as_array().unwrap()[1];
    assert_eq!(
        (lora["kind"].as_str(), lora["runs"].as_u64()),
        (Some("lora"), Some(1))
    );
    close(lora["hours"].as_f64().unwrap(), 2.0, "LoRA training hours");

    // Dates: the days the runs started, and empty ranges around them.
    let days: Vec<u32> = history
        .iter()
        .map(|r| engine::stats::day_of_ms(r["started_ms"].as_u64().unwrap()))
        .collect();
    let (first, last) = (*days.iter().min().unwrap(), *days.iter().max().unwrap());
    let day = engine::stats::format_day;
    let after = day(last + 1);
    let before = day(first - 1);
    for (flags, f) in [
        (
            vec!["--since", after.as_str()],
            Filter {
                since: Some(last + 1),
                ..Filter::default()
            },
        ),
        (
            vec!["--until", before.as_str()],
            Filter {
                until: Some(first - 1),
                ..Filter::default()
            },
        ),
    ] {
        let s = check(&flags, &f);
        assert_eq!(s["totals"]["runs"], 0, "{flags:?}");
        assert!(s["per_day"].as_array().unwrap().is_empty());
    }
    let (since, until) = (day(first), day(last));
    let s = check(
        &["--since", &since, "--until", &until],
        &Filter {
            since: Some(first),
            until: Some(last),
            ..Filter::default()
        },
    );
    assert_eq!(s["totals"]["runs"], 6);
    assert_eq!(s["filter"]["since"], first);

    // Graph and label.
    let cracks = history[0]["graph"].as_str().unwrap().to_string();
    let s = check(
        &["--graph", &cracks],
        &Filter {
            graph: Some(cracks.clone()),
            ..Filter::default()
        },
    );
    assert_eq!(s["totals"]["runs"], 2);
    assert_eq!(s["graphs"].as_array().unwrap().len(), 1);
    let s = check(
        &["--label", "hairline"],
        &Filter {
            label: Some("hairline".into()),
            ..Filter::default()
        },
    );
    assert_eq!(
        (s["totals"]["runs"].as_u64(), s["totals"]["images"].as_u64()),
        (Some(1), Some(2))
    );
    let s = check(
        &["--graph", &cracks, "--label", "scratch"],
        &Filter {
            graph: Some(cracks.clone()),
            label: Some("scratch".into()),
            ..Filter::default()
        },
    );
    assert_eq!(s["totals"]["runs"], 0);

    // The tables name every section, and the recipes.
    let o = env.run(&["stats"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    // Models by name and AutoV2 short hash (the sha256's first 10 hex digits).
    let ckpt = format!(
        "  checkpoint  {}  {}",
        CKPT.0,
        &sha256(CKPT.1.as_bytes())[..10]
    );
    let lora = format!("  lora  {}  {}", LORA.0, &sha256(LORA.1.as_bytes())[..10]);
    for needle in [
        "images per day",
        "images per week",
        "most-run recipes",
        "images per label",
        "node kinds",
        "\nmodels\n",
        ckpt.as_str(),
        "\nLoRAs\n",
        lora.as_str(),
        "devices",
        "\ntrainings\n",
        "  classifier     2          1       1   2.08",
        cracks.as_str(),
        "hairline",
        "LoadImage",
        "LoadCheckpoint",
    ] {
        assert!(text.contains(needle), "{needle:?} in\n{text}");
    }

    csv_parses_back_to_the_json(&env, &all);
    several_stores_are_summed(&env, &all);
}

/// `--store A --store B`: every breakdown is the sum of each store's; a missing store adds
/// nothing and is named.
fn several_stores_are_summed(env: &Env, all: &Value) {
    let other = Env::new();
    let o = other.run(&[
        "run",
        example("cracks-on-concrete.json").to_str().unwrap(),
        "--count",
        "2",
        "--set",
        "slab.width=40",
        "--set",
        "slab.height=32",
        "--out",
        other.out().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let one = stats_json(&other, &[]);
    assert_eq!(one["totals"]["runs"], 1);
    let (a, b) = (env.store(), other.store());
    let nowhere = env.dir.path().join("no-such-store.redb");
    let both = stats_json(
        env,
        &[
            "--store",
            a.to_str().unwrap(),
            "--store",
            b.to_str().unwrap(),
            "--store",
            nowhere.to_str().unwrap(),
        ],
    );
    let (x, y, sum) = (from_json(all), from_json(&one), from_json(&both));
    let mut want = Counts {
        totals: x.totals.iter().zip(&y.totals).map(|(p, q)| p + q).collect(),
        ..Counts::default()
    };
    for (w, p, q) in [
        (&mut want.per_day, &x.per_day, &y.per_day),
        (&mut want.per_week, &x.per_week, &y.per_week),
        (&mut want.graphs, &x.graphs, &y.graphs),
        (&mut want.labels, &x.labels, &y.labels),
        (&mut want.kinds, &x.kinds, &y.kinds),
        (&mut want.devices, &x.devices, &y.devices),
        (&mut want.models, &x.models, &y.models),
        (&mut want.trainings, &x.trainings, &y.trainings),
    ] {
        for (k, v) in p.iter().chain(q) {
            add(w, k, v);
        }
    }
    assert_counts(&sum, &want, "stats --store A --store B");
    assert_eq!(both["totals"]["runs"], 7);
    let o = env.run(&[
        "stats",
        "--store",
        a.to_str().unwrap(),
        "--store",
        nowhere.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!(
            "no runs yet (store {} does not exist)",
            nowhere.display()
        )),
        "{}",
        stdout(&o)
    );
}

/// `--csv DIR` lists the files it wrote, and each parses back to the JSON's rows.
fn csv_parses_back_to_the_json(env: &Env, all: &Value) {
    let dir = env.dir.path().join("csv/out");
    let o = env.run(&["stats", "--csv", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let listed = stdout(&o);
    for f in engine::stats::csv::FILES {
        assert!(listed.contains(&*dir.join(f).to_string_lossy()), "{listed}");
    }
    let read = |name: &str| -> Vec<BTreeMap<String, String>> {
        let mut r = csv::Reader::from_path(dir.join(name)).unwrap();
        r.deserialize().collect::<Result<_, _>>().unwrap()
    };
    for (file, key) in [
        ("totals.csv", "totals"),
        ("per_day.csv", "per_day"),
        ("per_week.csv", "per_week"),
        ("graphs.csv", "graphs"),
        ("labels.csv", "labels"),
        ("kinds.csv", "kinds"),
        ("models.csv", "models"),
        ("loras.csv", "loras"),
        ("devices.csv", "devices"),
        ("trainings.csv", "trainings"),
    ] {
        let rows = read(file);
        let want: Vec<&Value> = match &all[key] {
            Value::Array(a) => a.iter().collect(),
            v => vec![v],
        };
        assert_eq!(rows.len(), want.len(), "{file}");
        for (row, w) in rows.iter().zip(want) {
            let w = w.as_object().unwrap();
            assert_eq!(
                row.keys().collect::<BTreeSet<_>>(),
                w.keys().collect::<BTreeSet<_>>(),
                "{file}: columns"
            );
            for (k, v) in w {
                let cell = &row[k];
                match v {
                    Value::String(s) => assert_eq!(cell, s, "{file} {k}"),
                    // Numbers round-trip exactly (integers, and seconds in shortest form).
                    n => assert_eq!(
                        cell.parse::<f64>().unwrap(),
                        n.as_f64().unwrap(),
                        "{file} {k}"
                    ),
                }
            }
        }
    }
    // With --json the file list goes to stderr and stdout stays JSON.
    let o = env.run(&["stats", "--json", "--csv", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let again: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(&again, all);
    assert!(stderr(&o).contains("totals.csv"));
}

#[test]
fn bad_flags_are_one_clear_error_and_a_missing_store_has_no_runs() {
    let env = Env::new();
    for (flags, needles) in [
        (
            vec!["--since", "2026-13-01"],
            vec!["--since", "2026-13-01", "YYYY-MM-DD"],
        ),
        (vec!["--until", "yesterday"], vec!["--until", "yesterday"]),
        (
            vec!["--since", "2026-12-06", "--until", "2026-12-01"],
            vec!["--since 2026-12-06", "after", "--until 2026-12-01"],
        ),
    ] {
        let mut a = vec!["stats"];
        a.extend(&flags);
        let o = env.run(&a);
        assert_eq!(o.status.code(), Some(1), "{flags:?}");
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("error: "), "{err}");
        for n in needles {
            assert!(err.contains(n), "{n:?} in {err}");
        }
    }
    // No store yet: like `history`, "no runs yet", and zeroes in JSON (the filter kept).
    let o = env.run(&["stats"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("no runs yet"), "{}", stdout(&o));
    let s = stats_json(&env, &["--graph", "g"]);
    assert_eq!(s["totals"]["runs"], 0);
    assert_eq!(s["filter"]["graph"], "g");
    assert!(!env.store().exists(), "stats never creates a store");
}
