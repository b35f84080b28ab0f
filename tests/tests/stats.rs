//! `stats` through the CLI (docs/ARCHITECTURE.md §17): real procedural recipes run into a
//! temporary store (several graphs, relabelled outputs, a failed run, and a diffusion recipe
//! whose checkpoint and LoRA files are not models, so it fails after naming them), plus training
//! records; then every breakdown of `stats --json` equals a brute-force count over the records
//! `history --json` and `history --trainings --json` print (and the store's run records, for
//! what history does not show), with and without the date, graph and label filters
//! (`stats_count`); several `--store` are summed; `--csv` writes files that parse back to the
//! JSON's numbers; bad dates and an empty range are one clear error; a missing store says "no
//! runs yet".

mod common;
mod stats_count;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::*;
use serde_json::Value;
use stats_count::*;

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
