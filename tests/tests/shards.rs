//! `run --shard auto[/N]` (docs/cluster.md): four shard processes with a 1-based Slurm array's
//! variables, and four with a Kubernetes Indexed Job's, each with its own output folder and data
//! folder; each set's stores, merged by `export`, equal a single-process run image for image.
//! Missing or inconsistent variables fail with one `error:` line naming them.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

/// Every scheduler variable, removed from each child so the test's own environment (a CI job
/// running under Slurm) cannot leak in.
const VARS: [&str; 4] = [
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_COUNT",
    "JOB_COMPLETION_INDEX",
];

const COUNT: &str = "8";

fn recipe_args(g: &Path) -> Vec<String> {
    [
        "run",
        g.to_str().unwrap(),
        "--count",
        COUNT,
        "--seed",
        "5",
        "--set",
        "slab.width=64",
        "--set",
        "slab.height=48",
    ]
    .map(String::from)
    .to_vec()
}

/// The CLI in `env`'s data folder with exactly the scheduler variables `vars`.
fn cmd(env: &Env, vars: &[(&str, String)]) -> Command {
    let mut c = env.cmd();
    for v in VARS {
        c.env_remove(v);
    }
    for (k, v) in vars {
        c.env(k, v);
    }
    c
}

/// Starts 4 shard processes at once, each with its own data folder and output folder and the
/// variables `vars(i)`; waits for all; returns each one's shard store.
fn run_shards(
    g: &Path,
    shard_flag: &str,
    vars: impl Fn(u32) -> Vec<(&'static str, String)>,
) -> (Vec<Env>, Vec<PathBuf>) {
    let envs: Vec<Env> = (0..4).map(|_| Env::new()).collect();
    let children: Vec<_> = envs
        .iter()
        .enumerate()
        .map(|(i, env)| {
            cmd(env, &vars(i as u32))
                .args(recipe_args(g))
                .args(["--shard", shard_flag, "--out"])
                .arg(env.out())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let mut stores = Vec::new();
    for (i, (o, env)) in outputs.iter().zip(&envs).enumerate() {
        assert!(o.status.success(), "shard process {i}: {}", stderr(o));
        // Shard i ran items k with k mod 4 == i, into its own folder and store.
        assert!(
            stdout(o).contains(&format!("shard {i}/4: 2 of 8 work items")),
            "{}",
            stdout(o)
        );
        let store = env.out().join(format!("shard-{i}-of-4/store.redb"));
        let s = engine::Store::open_read_only(&store).unwrap();
        let items: Vec<u64> = s
            .outputs(None)
            .unwrap()
            .into_iter()
            .map(|(_, r)| r.item)
            .collect();
        assert_eq!(items.len(), 2, "shard {i}");
        assert!(
            items.iter().all(|k| k % 4 == i as u64),
            "shard {i}: {items:?}"
        );
        assert!(
            !env.store().exists(),
            "a shard writes its own store, not the data folder's"
        );
        stores.push(store);
    }
    (envs, stores)
}

/// One exported image: its seed, size, RGBA pixels, and its instances' categories and masks.
type Item = (u64, u32, u32, Vec<u8>, Vec<(String, Vec<bool>)>);

/// A COCO export of `stores` (through the CLI), by item index.
fn export(env: &Env, stores: &[PathBuf], name: &str) -> BTreeMap<u64, Item> {
    let out = env.dir.path().join(name);
    let mut c = env.cmd();
    c.args(["export", "--format", "coco", "--out"]).arg(&out);
    for s in stores {
        c.arg("--store").arg(s);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let coco = engine::dataset::read_coco(&out).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let category = |id: u64| {
        coco.categories
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.name.clone())
            .unwrap()
    };
    let mut items = BTreeMap::new();
    for e in manifest["items"].as_array().unwrap() {
        let prov = &e["provenance"];
        let (k, seed) = (
            prov["item"].as_u64().unwrap(),
            prov["seed"].as_u64().unwrap(),
        );
        let img = image::open(out.join(e["image"].as_str().unwrap()))
            .unwrap()
            .to_rgba8();
        let (w, h) = img.dimensions();
        let image_id = e["coco_image_id"].as_u64().unwrap();
        let mut masks: Vec<(String, Vec<bool>)> = coco
            .annotations
            .iter()
            .filter(|a| a.image_id == image_id)
            .map(|a| {
                let engine::dataset::CocoSegmentation::Rle { size, counts } = &a.segmentation
                else {
                    panic!("the exporter writes RLE")
                };
                assert_eq!(*size, [h, w]);
                let bits = engine::dataset::rle_decode(counts, w, h).unwrap();
                (category(a.category_id), bits)
            })
            .collect();
        masks.sort();
        let before = items.insert(k, (seed, w, h, img.into_raw(), masks));
        assert!(before.is_none(), "item {k} exported twice");
    }
    items
}

#[test]
fn slurm_and_kubernetes_shards_merge_into_the_single_process_run() {
    let g = example("concrete-stain.json");
    let single = Env::new();
    let o = cmd(&single, &[])
        .args(recipe_args(&g))
        .arg("--out")
        .arg(single.out())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let whole = export(&single, &[single.store()], "whole");
    assert_eq!(
        whole.keys().copied().collect::<Vec<_>>(),
        (0..8).collect::<Vec<_>>()
    );
    assert!(
        whole.values().any(|(_, _, _, _, m)| !m.is_empty()),
        "the recipe makes masks to compare"
    );
    let seeds: std::collections::BTreeSet<u64> = whole.values().map(|i| i.0).collect();
    assert_eq!(seeds.len(), 8, "every item its own seed");

    // A 1-based Slurm array (--array=1-4).
    let (envs, stores) = run_shards(&g, "auto", |i| {
        vec![
            ("SLURM_ARRAY_TASK_ID", (i + 1).to_string()),
            ("SLURM_ARRAY_TASK_MIN", "1".into()),
            ("SLURM_ARRAY_TASK_COUNT", "4".into()),
        ]
    });
    let slurm = export(&envs[0], &stores, "merged-slurm");
    assert!(
        slurm == whole,
        "the Slurm shards merged equal the single run, image for image"
    );

    // A Kubernetes Indexed Job (completions: 4).
    let (envs, stores) = run_shards(&g, "auto/4", |i| {
        vec![("JOB_COMPLETION_INDEX", i.to_string())]
    });
    let k8s = export(&envs[0], &stores, "merged-k8s");
    assert!(
        k8s == whole,
        "the Kubernetes shards merged equal the single run, image for image"
    );
}

#[test]
fn bad_scheduler_variables_are_one_clear_error() {
    let g = example("concrete-stain.json");
    let env = Env::new();
    let slurm = |id: &str, min: &str, count: &str| {
        vec![
            ("SLURM_ARRAY_TASK_ID", id.to_string()),
            ("SLURM_ARRAY_TASK_MIN", min.to_string()),
            ("SLURM_ARRAY_TASK_COUNT", count.to_string()),
        ]
    };
    let cases: Vec<(&str, Vec<(&str, String)>, Vec<&str>)> = vec![
        (
            "auto",
            vec![],
            vec!["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"],
        ),
        (
            "auto",
            vec![("JOB_COMPLETION_INDEX", "2".into())],
            vec!["JOB_COMPLETION_INDEX", "auto/N"],
        ),
        (
            "auto/4",
            vec![("JOB_COMPLETION_INDEX", "4".into())],
            vec!["JOB_COMPLETION_INDEX", "N=4"],
        ),
        (
            "auto/4",
            vec![("JOB_COMPLETION_INDEX", "one".into())],
            vec!["JOB_COMPLETION_INDEX", "one"],
        ),
        (
            "auto",
            vec![("SLURM_ARRAY_TASK_ID", "2".into())],
            vec!["SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_COUNT"],
        ),
        (
            "auto",
            slurm("5", "1", "4"),
            vec!["SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT"],
        ),
        (
            "auto/3",
            slurm("2", "1", "4"),
            vec!["N=3", "SLURM_ARRAY_TASK_COUNT"],
        ),
        ("auto", slurm("x", "1", "4"), vec!["SLURM_ARRAY_TASK_ID"]),
        (
            "auto/4",
            {
                let mut v = slurm("2", "1", "4");
                v.push(("JOB_COMPLETION_INDEX", "3".into()));
                v
            },
            vec!["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"],
        ),
        ("auto/0", vec![], vec!["--shard auto/0"]),
    ];
    for (flag, vars, needles) in cases {
        let o = cmd(&env, &vars)
            .args(recipe_args(&g))
            .args(["--shard", flag, "--out"])
            .arg(env.out())
            .output()
            .unwrap();
        assert_clean_failure(&o, &needles);
    }
    assert!(!env.out().exists(), "nothing ran");
}

#[test]
fn queued_batches_are_listed_run_and_cleared_by_the_cli() {
    use engine::run::{plan, BatchJob, PlanSpec};
    let env = Env::new();
    let g = example("concrete-stain.json");
    let mut doc = nodes::GraphDoc::from_json(&std::fs::read_to_string(&g).unwrap()).unwrap();
    for p in ["width", "height"] {
        doc.nodes
            .get_mut("slab")
            .unwrap()
            .params
            .insert(p.into(), nodes::ParamValue::Int(32));
    }
    let base_dir = g.parent().unwrap().to_path_buf();
    let job = |name: &str, count: u64| {
        let (items, _) = plan(&PlanSpec {
            doc: &doc,
            base_dir: &base_dir,
            count,
            seed: 3,
            sweeps: &[],
            shard: None,
        })
        .unwrap();
        BatchJob {
            doc: doc.clone(),
            graph_name: name.into(),
            base_dir: base_dir.clone(),
            items,
            base_seed: 3,
            shard: None,
            out_dir: env.out().join(name),
            store_path: env.store(),
            targets: None,
            graph_path: Some(g.clone()),
            embed_assets: false,
            device: None,
        }
    };
    // A studio session that closed with three batches queued, paused.
    {
        let worker = engine::Worker::spawn(engine::Executor::builtin());
        worker.pause();
        for (name, n) in [("one", 2), ("two", 1), ("three", 1)] {
            let mut j = job(name, n);
            // A batch that targets a device keeps it in the queue.
            j.device = (name == "two").then(|| "cpu".to_string());
            worker.submit(j).unwrap();
        }
    }
    let o = env.run(&["queue", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let list: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = list.iter().map(|j| j["graph"].as_str().unwrap()).collect();
    assert_eq!(names, ["one", "two", "three"]);
    assert_eq!(list[0]["items"], 2);
    assert_eq!(list[0]["device"], serde_json::Value::Null);
    assert_eq!(list[1]["device"], "cpu");
    let o = env.run(&["queue"]);
    assert!(stdout(&o).contains("3 queued batch(es)"), "{}", stdout(&o));
    assert!(stdout(&o).contains("seed 3, on cpu"), "{}", stdout(&o));

    // Drop the last one by hand (as the studio's "discard"), run the others.
    let third = list[2]["id"].as_u64().unwrap();
    assert!(engine::queue::discard_pending(&env.store(), third).unwrap());
    let o = env.run(&["queue", "run"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(saved_paths(&o).len(), 3, "{}", stdout(&o));
    let runs: Vec<String> = env
        .history()
        .iter()
        .map(|r| r["graph"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(runs, ["one", "two"]);
    let devices: Vec<String> = env
        .history()
        .iter()
        .map(|r| r["device"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        devices,
        ["cpu", "cpu"],
        "the default resolves to the CPU here"
    );
    assert!(env.out().join("one").is_dir() && !env.out().join("three").exists());
    let o = env.run(&["queue", "--json"]);
    assert_eq!(stdout(&o).trim(), "[]");

    // `clear` drops what is left.
    {
        let worker = engine::Worker::spawn(engine::Executor::builtin());
        worker.pause();
        worker.submit(job("later", 1)).unwrap();
    }
    let o = env.run(&["queue", "clear"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("dropped 1"), "{}", stdout(&o));
    let o = env.run(&["queue", "run"]);
    assert!(stdout(&o).contains("no queued batches"), "{}", stdout(&o));
    assert!(!env.out().join("later").exists());
}
