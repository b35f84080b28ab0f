//! The CLI end to end: recipes produce images, masks, store records and history; bad input
//! fails cleanly without touching what was saved.

mod common;

use common::*;

#[test]
fn readme_run_command_makes_outputs_masks_and_history() {
    let env = Env::new();
    let graph = example("brushed-metal-scratch.json");
    let o = env.run(&[
        "run",
        graph.to_str().unwrap(),
        "--count",
        "3",
        "--out",
        env.out().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let saved = saved_paths(&o);
    assert_eq!(saved.len(), 3, "{}", stdout(&o));
    assert!(
        stdout(&o).contains(env.out().to_str().unwrap()),
        "prints where outputs went"
    );
    for p in &saved {
        assert!(p.starts_with(env.out()));
        let img = image::open(p).unwrap();
        assert_eq!((img.width(), img.height()), (512, 512));
        let mask_path = p.with_file_name(format!(
            "{}_mask.png",
            p.file_stem().unwrap().to_str().unwrap()
        ));
        let mask = image::open(&mask_path).unwrap().to_luma8();
        let on = mask.pixels().filter(|p| p.0[0] > 127).count();
        assert!(
            on > 300 && on < 5000,
            "the scratch mask covers a thin line: {on} px"
        );
    }
    let history = env.history();
    assert_eq!(history.len(), 1);
    let run = &history[0];
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["graph"], "brushed-metal-scratch");
    assert_eq!(run["seed"], 1);
    let outs = run["outputs"].as_array().unwrap();
    assert_eq!(outs.len(), 3);
    assert_eq!(
        outs.iter()
            .map(|o| o["seed"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert!(!run["node_timings"].as_array().unwrap().is_empty());
    // The store's bytes, the recorded hash and the file on disk agree.
    let store = engine::Store::open(&env.store()).unwrap();
    for out in outs {
        let id = out["id"].as_u64().unwrap();
        let bytes = store.output_png(id).unwrap().unwrap();
        assert_eq!(sha256(&bytes), out["sha256"].as_str().unwrap());
        assert_eq!(std::fs::read(out["path"].as_str().unwrap()).unwrap(), bytes);
        assert!(store.output_mask_png(id).unwrap().is_some());
    }
    // The plain history lists the run too.
    let text = stdout(&env.run(&["history"]));
    assert!(
        text.contains("succeeded") && text.contains("brushed-metal-scratch"),
        "{text}"
    );
}

#[test]
fn same_seed_gives_the_same_bytes() {
    let env = Env::new();
    let graph = example("concrete-stain.json");
    let g = graph.to_str().unwrap();
    let out = env.out();
    let run = |seed: &str, sub: &str| {
        let o = env.run(&[
            "run",
            g,
            "--seed",
            seed,
            "--out",
            out.join(sub).to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        std::fs::read(&saved_paths(&o)[0]).unwrap()
    };
    let a = run("7", "a");
    let b = run("7", "b");
    let c = run("8", "c");
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn set_and_sweep_override_parameters() {
    let env = Env::new();
    let g = example("brushed-metal-scratch.json");
    let o = env.run(&[
        "run",
        g.to_str().unwrap(),
        "--out",
        env.out().to_str().unwrap(),
        "--set",
        "plate.width=96",
        "--set",
        "plate.height=64",
        "--sweep",
        "plate.material=concrete,fabric",
        "--sweep",
        "stamp.opacity=0.2,0.9",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let saved = saved_paths(&o);
    assert_eq!(saved.len(), 4);
    let hashes: std::collections::BTreeSet<String> = saved
        .iter()
        .map(|p| sha256(&std::fs::read(p).unwrap()))
        .collect();
    assert_eq!(hashes.len(), 4, "every sweep cell differs");
    assert_eq!(image::open(&saved[0]).unwrap().width(), 96);
    // A sweep also writes a contact sheet: 2×2 cells (image + mask each), labelled.
    let sheet = stdout(&o)
        .lines()
        .find_map(|l| l.strip_prefix("contact sheet "))
        .map(std::path::PathBuf::from)
        .expect("a contact sheet");
    let img = image::open(&sheet).unwrap();
    assert!(
        img.width() > 2 * 2 * 192 && img.height() > 2 * 192,
        "{}×{}",
        img.width(),
        img.height()
    );
    for (args, needle) in [
        (vec!["--set", "ghost.width=3"], "ghost"),
        (vec!["--set", "plate.colour=#fff"], "colour"),
        (vec!["--set", "plate.width=wide"], "plate.width"),
        (vec!["--set", "plate.width=100000"], "100000"),
        (vec!["--sweep", "plate.material=marble"], "marble"),
        (vec!["--shard", "3/3"], "--shard"),
    ] {
        let out = env.out();
        let mut all = vec!["run", g.to_str().unwrap(), "--out", out.to_str().unwrap()];
        all.extend(args);
        assert_clean_failure(&env.run(&all), &[needle]);
    }
}

#[test]
fn folder_inputs_become_work_items() {
    let env = Env::new();
    let photos = env.dir.path().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    for (i, c) in [[200u8, 10, 10], [10, 200, 10], [10, 10, 200]]
        .iter()
        .enumerate()
    {
        image::RgbImage::from_pixel(40, 30, image::Rgb(*c))
            .save(photos.join(format!("p{i}.png")))
            .unwrap();
    }
    std::fs::write(photos.join("readme.txt"), "not a photo").unwrap();
    let graph = env.write(
        "batch.json",
        r#"{"format": "defect-studio/graph", "version": 1,
            "nodes": {"load": {"kind": "LoadImage", "version": 1, "params": {"source": "photos"}},
                      "save": {"kind": "SaveImage", "version": 1, "params": {"filename": "{item:02}-{seed}.png"}}},
            "links": [{"from": ["load", "image"], "to": ["save", "image"]}]}"#,
    );
    let o = env.run(&[
        "run",
        graph.to_str().unwrap(),
        "--count",
        "2",
        "--seed",
        "10",
        "--out",
        env.out().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let names: Vec<String> = saved_paths(&o)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "00-10.png",
            "01-10.png",
            "02-10.png",
            "03-11.png",
            "04-11.png",
            "05-11.png"
        ]
    );
    let px = image::open(env.out().join("04-11.png"))
        .unwrap()
        .to_rgb8()
        .get_pixel(0, 0)
        .0;
    assert_eq!(px, [10, 200, 10], "item 4 is variation 1, photo 1");
    // An empty folder is an error naming the node.
    std::fs::create_dir_all(env.dir.path().join("empty")).unwrap();
    let empty = env.write(
        "empty.json",
        &std::fs::read_to_string(&graph)
            .unwrap()
            .replace("\"photos\"", "\"empty\""),
    );
    assert_clean_failure(
        &env.run(&[
            "run",
            empty.to_str().unwrap(),
            "--out",
            env.out().to_str().unwrap(),
        ]),
        &["\"load\"", "no"],
    );
}

#[test]
fn nodes_listing_covers_the_catalogue() {
    let env = Env::new();
    let o = env.run(&["nodes", "--json"]);
    assert!(o.status.success());
    let list: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    let kinds: Vec<&str> = list.iter().map(|k| k["kind"].as_str().unwrap()).collect();
    for k in nodes::Catalogue::builtin().specs() {
        assert!(kinds.contains(&k.kind), "{} missing", k.kind);
    }
    let texture = list.iter().find(|k| k["kind"] == "Texture").unwrap();
    let width = texture["params"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "width")
        .unwrap();
    assert_eq!(
        (
            width["min"].as_i64(),
            width["max"].as_i64(),
            width["default"].as_i64()
        ),
        (Some(1), Some(16384), Some(512))
    );
    let text = stdout(&env.run(&["nodes"]));
    assert!(
        text.contains("SaveImage@1") && text.contains("Generate"),
        "{text}"
    );
}

#[test]
fn validate_reports_ok_and_problems() {
    let env = Env::new();
    let o = env.run(&["validate", example("concrete-stain.json").to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("ok:"));
    let bad = env.write(
        "bad.json",
        r#"{"format": "defect-studio/graph", "version": 1,
            "nodes": {"a": {"kind": "Texture", "version": 1, "params": {"width": -5}},
                      "b": {"kind": "Blur", "version": 1}}}"#,
    );
    assert_clean_failure(
        &env.run(&["validate", bad.to_str().unwrap()]),
        &["bad.json", "\"a\"", "width", "\"b\"", "Blur"],
    );
}

#[test]
fn every_example_runs_from_the_repository_root() {
    // Relative paths, as in the README: graphs and their folders resolve against the graph file.
    let env = Env::new();
    for name in [
        "scratches-on-brushed-metal",
        "cracks-on-concrete",
        "stains-on-fabric",
        "photo-folder-chips",
        "brushed-metal-scratch",
        "concrete-stain",
    ] {
        let o = env
            .cmd()
            .current_dir(repo())
            .args([
                "run",
                &format!("examples/{name}.json"),
                "--out",
                env.out().to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let saved = saved_paths(&o);
        let expect = if name == "photo-folder-chips" { 3 } else { 1 };
        assert_eq!(saved.len(), expect, "{name}: {}", stdout(&o));
        for p in saved {
            let mask = p.with_file_name(format!(
                "{}_mask.png",
                p.file_stem().unwrap().to_str().unwrap()
            ));
            let m = image::open(&mask).unwrap().to_luma8();
            assert!(m.pixels().any(|p| p.0[0] > 127), "{name}: empty mask");
        }
    }
    let labels: Vec<String> = env
        .history()
        .iter()
        .flat_map(|r| {
            r["outputs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["label"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    for l in ["scratch", "crack", "stain", "chip"] {
        assert!(
            labels.iter().any(|x| x == l),
            "label {l} missing: {labels:?}"
        );
    }
}

/// A recipe naming a missing checkpoint, VAE, LoRA and input image: `validate` lists all four,
/// each with its kind and node, in one message; `run` refuses it the same way before starting
/// (no run in the history). Once the files exist, both go on.
#[test]
fn validate_and_run_list_every_missing_file_with_its_kind() {
    let env = Env::new();
    let graph = env.write(
        "missing.json",
        r#"{"format": "defect-studio/graph", "version": 1,
            "nodes": {
              "ckpt": {"kind": "LoadCheckpoint", "version": 1,
                       "params": {"checkpoint": "no-such-model.safetensors", "vae": "no-such-vae.safetensors"}},
              "lora": {"kind": "LoraLoader", "version": 1, "params": {"lora": "no-such-lora"}},
              "gen": {"kind": "Txt2Img", "version": 1, "params": {"prompt": "a scratch"}},
              "save": {"kind": "SaveImage", "version": 1},
              "photo": {"kind": "LoadImage", "version": 1, "params": {"source": "photos/none.png"}},
              "save2": {"kind": "SaveImage", "version": 1},
              "unused": {"kind": "LoadImage", "version": 1, "params": {"source": "not-run.png"}}
            },
            "links": [
              {"from": ["ckpt", "model"], "to": ["lora", "model"]},
              {"from": ["lora", "model"], "to": ["gen", "model"]},
              {"from": ["gen", "image"], "to": ["save", "image"]},
              {"from": ["photo", "image"], "to": ["save2", "image"]}
            ]}"#,
    );
    let o = env.run(&["validate", graph.to_str().unwrap()]);
    assert_clean_failure(
        &o,
        &[
            "4 missing file(s)",
            "checkpoint \"no-such-model.safetensors\" not found",
            "node \"ckpt\" LoadCheckpoint.checkpoint",
            "VAE \"no-such-vae.safetensors\"",
            "LoRA \"no-such-lora\"",
            "node \"lora\" LoraLoader.lora",
            "image \"photos/none.png\"",
        ],
    );
    let err = stderr(&o);
    // A LoRA is not called a checkpoint, and a node the run never reaches is not checked.
    assert!(!err.contains("checkpoint \"no-such-lora\""), "{err}");
    assert!(!err.contains("not-run.png"), "{err}");

    let o = env.run(&[
        "run",
        graph.to_str().unwrap(),
        "--out",
        env.out().to_str().unwrap(),
    ]);
    assert_clean_failure(&o, &["4 missing file(s)", "LoRA \"no-such-lora\""]);
    assert!(env.history().is_empty(), "a refused run is not recorded");

    // With the files in place the check passes (the fake weights would fail later, on load).
    let models = env.home().join("models");
    std::fs::create_dir_all(models.join("sub")).unwrap();
    for f in [
        "no-such-model.safetensors",
        "no-such-vae.safetensors",
        "sub/no-such-lora.safetensors",
    ] {
        std::fs::write(models.join(f), b"x").unwrap();
    }
    std::fs::create_dir_all(env.dir.path().join("photos")).unwrap();
    std::fs::write(env.dir.path().join("photos/none.png"), b"x").unwrap();
    let o = env.run(&["validate", graph.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
}
