//! Bad input, killed writers, concurrent processes and shards: nothing committed is ever lost.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;

/// A small valid recipe whose parts the bad-input cases replace.
fn recipe(load: &str, resize: &str, save_name: &str) -> String {
    format!(
        r#"{{"format": "defect-studio/graph", "version": 1,
            "nodes": {{
                "photo": {{"kind": "LoadImage", "version": 1, "params": {{"source": "{load}"}}}},
                "fit": {{"kind": "Resize", "version": 1, "params": {resize}}},
                "save": {{"kind": "SaveImage", "version": 1, "params": {{"filename": "{save_name}"}}}}
            }},
            "links": [
                {{"from": ["photo", "image"], "to": ["fit", "image"]}},
                {{"from": ["fit", "image"], "to": ["save", "image"]}}
            ]}}"#
    )
}

/// What the store holds: run id -> (status, [(output id, sha of the stored PNG)]).
fn snapshot(env: &Env) -> BTreeMap<u64, (String, Vec<(u64, String)>)> {
    let store = engine::Store::open(&env.store()).unwrap();
    let outputs = store.outputs(None).unwrap();
    store
        .runs()
        .unwrap()
        .into_iter()
        .map(|(id, r)| {
            let outs = outputs
                .iter()
                .filter(|(_, o)| o.run_id == id)
                .map(|(oid, _)| (*oid, sha256(&store.output_png(*oid).unwrap().unwrap())))
                .collect();
            (id, (r.effective_status().name().to_string(), outs))
        })
        .collect()
}

#[test]
fn bad_input_fails_clearly_and_keeps_the_store() {
    let env = Env::new();
    image::RgbImage::from_pixel(32, 24, image::Rgb([90, 120, 150]))
        .save(env.dir.path().join("part.png"))
        .unwrap();
    std::fs::write(
        env.dir.path().join("notes.png"),
        "this is text, not an image",
    )
    .unwrap();
    let out = env.out();
    let out_s = out.to_str().unwrap();
    // A good run first: its run and outputs must survive everything below.
    let good = env.write(
        "good.json",
        &recipe(
            "part.png",
            r#"{"width": 64, "height": 0}"#,
            "good-{item}.png",
        ),
    );
    let o = env.run(&[
        "run",
        good.to_str().unwrap(),
        "--count",
        "2",
        "--out",
        out_s,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let before = snapshot(&env);
    assert_eq!(before.len(), 1);
    let good_files: Vec<(std::path::PathBuf, Vec<u8>)> = saved_paths(&o)
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();

    let mismatched = recipe("part.png", "{}", "x.png").replace(
        r#"{"from": ["photo", "image"], "to": ["fit", "image"]}"#,
        r#"{"from": ["photo", "mask"], "to": ["fit", "image"]}"#,
    );
    let cases: Vec<(&str, String, Vec<&str>, bool)> = vec![
        (
            "malformed.json",
            "{\"format\": \"defect-studio/graph\", \"version\": 1, \"nodes\": {".into(),
            vec!["malformed.json", "line"],
            false,
        ),
        (
            "unknown-kind.json",
            recipe("part.png", "{}", "x.png").replace("\"Resize\"", "\"SuperResize\""),
            vec!["\"fit\"", "SuperResize"],
            false,
        ),
        (
            "mismatch.json",
            mismatched,
            vec!["\"fit\"", "Mask", "Image"],
            false,
        ),
        (
            "missing-image.json",
            recipe("no-such-photo.png", "{}", "x.png"),
            // Refused before the run starts, like `validate` (every missing file at once).
            vec!["\"photo\"", "no-such-photo.png", "missing file"],
            false,
        ),
        (
            "not-an-image.json",
            recipe("notes.png", "{}", "x.png"),
            vec!["\"photo\"", "notes.png", "not an image"],
            true,
        ),
        (
            "huge.json",
            recipe(
                "part.png",
                r#"{"width": 100000, "height": 100000}"#,
                "x.png",
            ),
            vec!["\"fit\"", "width", "100000"],
            false,
        ),
        (
            "escape.json",
            recipe("part.png", "{}", "../escaped.png"),
            vec!["\"save\"", "filename", ".."],
            false,
        ),
        (
            "absolute.json",
            recipe("part.png", "{}", "/tmp/defect-studio-absolute.png"),
            vec!["\"save\"", "filename", "absolute"],
            false,
        ),
    ];
    for (name, text, needles, records_a_failed_run) in cases {
        let path = env.write(name, &text);
        let runs_before = snapshot(&env).len();
        let o = env.run(&["run", path.to_str().unwrap(), "--out", out_s]);
        assert_clean_failure(&o, &needles);
        let after = snapshot(&env);
        // Nothing committed before is lost or changed.
        for (id, entry) in &before {
            assert_eq!(after.get(id), Some(entry), "{name}: run {id} changed");
        }
        let new_runs: Vec<_> = after
            .iter()
            .filter(|(id, _)| !before.contains_key(id))
            .collect();
        if records_a_failed_run {
            // A run that started is recorded, as failed, with no outputs.
            assert_eq!(after.len(), runs_before + 1, "{name}");
            let last = new_runs.last().unwrap().1;
            assert_eq!((last.0.as_str(), last.1.len()), ("failed", 0), "{name}");
        } else {
            assert_eq!(
                after.len(),
                runs_before,
                "{name}: an invalid graph must not start a run"
            );
        }
        // `validate` reports the same problem (for the graph-level errors).
        if !records_a_failed_run {
            assert!(
                !env.run(&["validate", path.to_str().unwrap()])
                    .status
                    .success(),
                "{name}"
            );
        }
    }
    assert!(!env.dir.path().join("escaped.png").exists());
    assert!(!std::path::Path::new("/tmp/defect-studio-absolute.png").exists());
    for (p, bytes) in good_files {
        assert_eq!(std::fs::read(&p).unwrap(), bytes, "{} changed", p.display());
    }
    let history = stdout(&env.run(&["history"]));
    assert!(
        history.contains("failed") && history.contains("notes.png"),
        "{history}"
    );
}

#[test]
fn a_killed_writer_loses_no_committed_output() {
    let env = Env::new();
    // Big enough that each item takes a noticeable time, so the kill lands mid-batch.
    let graph = env.write(
        "slow.json",
        r#"{"format": "defect-studio/graph", "version": 1,
            "nodes": {"tex": {"kind": "Texture", "version": 1, "params": {"material": "concrete", "width": 1536, "height": 1536}},
                      "m": {"kind": "ShapeMask", "version": 1},
                      "save": {"kind": "SaveImage", "version": 1}},
            "links": [{"from": ["tex", "image"], "to": ["save", "image"]},
                      {"from": ["tex", "image"], "to": ["m", "like"]},
                      {"from": ["m", "mask"], "to": ["save", "mask"]}]}"#,
    );
    let total = 400u64;
    let mut child = env
        .cmd()
        .args([
            "run",
            graph.to_str().unwrap(),
            "--count",
            &total.to_string(),
            "--out",
            env.out().to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let committed = loop {
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "the run did not commit 3 outputs in time"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        if env.store().exists() {
            let n = engine::Store::open(&env.store())
                .unwrap()
                .outputs(None)
                .unwrap()
                .len();
            if n >= 3 {
                break n;
            }
        }
    };
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let store = engine::Store::open(&env.store()).unwrap();
    let outputs = store.outputs(None).unwrap();
    assert!(
        outputs.len() >= committed,
        "committed outputs were lost: {} < {committed}",
        outputs.len()
    );
    assert!(
        (outputs.len() as u64) < total,
        "the kill came after the last output"
    );
    for (id, rec) in &outputs {
        let png = store.output_png(*id).unwrap().expect("png bytes");
        assert_eq!(
            sha256(&png),
            rec.sha256,
            "output {id}: stored bytes do not match their hash"
        );
        let img = image::load_from_memory(&png).unwrap();
        assert_eq!((img.width(), img.height()), (1536, 1536));
        assert_eq!(
            std::fs::read(&rec.path).unwrap(),
            png,
            "output {id}: file differs from the store"
        );
        let mask = store.output_mask_png(*id).unwrap().expect("mask bytes");
        assert_eq!(Some(sha256(&mask)), rec.mask_sha256);
        image::load_from_memory(&mask).unwrap();
    }
    let runs = store.runs().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].1.effective_status(), engine::RunStatus::Interrupted);
    drop(store);
    // The store still takes new runs, and history says what happened.
    let o = env.run(&[
        "run",
        example("concrete-stain.json").to_str().unwrap(),
        "--out",
        env.out().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let history = env.history();
    assert_eq!(history[0]["status"], "interrupted");
    assert_eq!(history[1]["status"], "succeeded");
}

#[test]
fn the_cli_runs_while_another_process_holds_the_store_open() {
    let env = Env::new();
    std::fs::create_dir_all(env.home()).unwrap();
    // This test process plays the studio: it keeps the user store open throughout.
    let studio = engine::Store::open(&env.store()).unwrap();
    studio.save_graph("mine", "{}").unwrap();
    let o = env.run(&[
        "run",
        example("brushed-metal-scratch.json").to_str().unwrap(),
        "--count",
        "2",
        "--out",
        env.out().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The open handle sees the CLI's commits, and the CLI saw ours.
    let runs = studio.runs().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(studio.outputs(Some(runs[0].0)).unwrap().len(), 2);
    studio.save_graph("mine", "{\"v\":2}").unwrap();
    assert_eq!(studio.latest_graph("mine").unwrap().unwrap().version, 2);
    assert_eq!(env.history().len(), 1);
}

#[test]
fn shards_split_the_batch_exactly() {
    let env = Env::new();
    let g = example("concrete-stain.json");
    let base = [
        "run",
        g.to_str().unwrap(),
        "--count",
        "3",
        "--seed",
        "5",
        "--set",
        "slab.width=64",
        "--set",
        "slab.height=48",
        "--sweep",
        "stain.opacity=0.3,0.6",
    ];
    let whole_out = env.out().join("whole");
    let mut args: Vec<&str> = base.to_vec();
    args.extend(["--out", whole_out.to_str().unwrap()]);
    let o = env.run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    // item index -> sha of the image, for the unsharded run.
    let by_item = |store: &std::path::Path| -> BTreeMap<u64, String> {
        let s = engine::Store::open(store).unwrap();
        s.outputs(None)
            .unwrap()
            .into_iter()
            .map(|(_, r)| (r.item, r.sha256))
            .collect()
    };
    let whole = by_item(&env.store());
    assert_eq!(
        whole.keys().copied().collect::<Vec<_>>(),
        (0..6).collect::<Vec<_>>()
    );
    let shard_out = env.out().join("cluster");
    let mut union = BTreeMap::new();
    for i in 0..4 {
        let shard = format!("{i}/4");
        let mut args: Vec<&str> = base.to_vec();
        args.extend(["--out", shard_out.to_str().unwrap(), "--shard", &shard]);
        let o = env.run(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let dir = shard_out.join(format!("shard-{i}-of-4"));
        let items = by_item(&dir.join("store.redb"));
        for (k, sha) in items {
            assert_eq!(k % 4, i, "shard {i} ran item {k}");
            assert!(union.insert(k, sha).is_none(), "item {k} ran twice");
        }
        for p in saved_paths(&o) {
            assert!(
                p.starts_with(&dir),
                "{} is outside the shard's folder",
                p.display()
            );
        }
    }
    assert_eq!(
        union, whole,
        "the shards together make exactly the whole batch, image for image"
    );
}

// ---------------------------------------------------------------------------------------
// Crafted single-file checkpoints (issue 24, section 2): `generate` gives one clear error
// naming the file and the tensor, never a panic (exit 101).
// ---------------------------------------------------------------------------------------

/// The sd15 fixture checkpoint with one extra zero-sized tensor called `key`.
fn sd15_with_key(key: &str) -> Vec<u8> {
    let bytes = std::fs::read(repo().join("tests/fixtures/sd/models/sd15.safetensors")).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let end = bytes.len() - 8 - n;
    header.insert(
        key.into(),
        serde_json::json!({"dtype": "F32", "shape": [0], "data_offsets": [end, end]}),
    );
    let json = serde_json::to_vec(&header).unwrap();
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend(json);
    out.extend_from_slice(&bytes[8 + n..]);
    out
}

#[test]
fn crafted_checkpoints_fail_generate_cleanly() {
    let env = Env::new();
    for (name, key, reason) in [
        (
            "op-in-block-0",
            "model.diffusion_model.input_blocks.0.0.op.weight",
            "input block 0 is conv_in",
        ),
        (
            "block-index-u64-max",
            "model.diffusion_model.input_blocks.18446744073709551615.0.in_layers.0.weight",
            "out of range",
        ),
    ] {
        let model = env.dir.path().join(format!("{name}.safetensors"));
        std::fs::write(&model, sd15_with_key(key)).unwrap();
        let out = env.dir.path().join("o.png");
        let o = env.run(&[
            "generate",
            "--model",
            model.to_str().unwrap(),
            "--prompt",
            "x",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_ne!(
            o.status.code(),
            Some(101),
            "{name} panicked: {}",
            stderr(&o)
        );
        assert_clean_failure(&o, &[&format!("{name}.safetensors"), key, reason]);
        assert!(!out.exists());
    }
}

#[test]
fn bad_sweep_values_are_refused_before_the_run_starts() {
    let env = Env::new();
    let g = example("concrete-stain.json");
    let g = g.to_str().unwrap();
    let out = env.out();
    let out_s = out.to_str().unwrap();
    let small = ["--set", "slab.width=32", "--set", "slab.height=24"];
    let runs = |env: &Env| {
        if env.store().exists() {
            snapshot(env).len()
        } else {
            0
        }
    };
    // Out of range (opacity is 0..1): one error line naming node, parameter and value, and
    // no run in the store.
    let mut args = vec!["run", g, "--out", out_s, "--sweep", "blotch.octaves=2,99,3"];
    args.extend(small);
    let o = env.run(&args);
    assert_clean_failure(&o, &["--sweep", "blotch", "octaves", "99"]);
    assert_eq!(runs(&env), 0, "a refused sweep must not start a run");
    assert!(saved_paths(&o).is_empty());
    // An unsafe output name as a sweep value is refused the same way.
    let mut args = vec![
        "run",
        g,
        "--out",
        out_s,
        "--sweep",
        "save.filename=a.png,..png",
    ];
    args.extend(small);
    assert_clean_failure(&env.run(&args), &["--sweep", "save", "filename", "..png"]);
    assert_eq!(runs(&env), 0);
    // A 100 kB value (a single argument may not exceed 128 kB) is quoted, not echoed.
    let huge = format!("blotch.octaves=2,{}", "9".repeat(100_000));
    let mut args = vec!["run", g, "--out", out_s, "--sweep", &huge];
    args.extend(small);
    let o = env.run(&args);
    assert_clean_failure(&o, &["--sweep", "blotch.octaves"]);
    assert!(
        stderr(&o).len() < 1000,
        "{} bytes on stderr",
        stderr(&o).len()
    );
    // Good values still run: one item per value.
    let mut args = vec!["run", g, "--out", out_s, "--sweep", "blotch.octaves=2,3"];
    args.extend(small);
    let o = env.run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(saved_paths(&o).len(), 2);
}

#[test]
fn graph_files_with_duplicate_keys_or_nameless_outputs_are_refused() {
    let env = Env::new();
    let dup = env.write(
        "dup.json",
        r#"{"format": "defect-studio/graph", "version": 1, "nodes": {
            "s": {"kind": "SolidColor", "version": 1, "params": {"width": 8, "width": 9}},
            "save": {"kind": "SaveImage", "version": 1}},
            "links": [{"from": ["s", "image"], "to": ["save", "image"]}]}"#,
    );
    let out = env.out();
    for args in [
        vec!["validate"],
        vec!["run", "--out", out.to_str().unwrap()],
    ] {
        let mut args = args;
        args.insert(1, dup.to_str().unwrap());
        let o = env.run(&args);
        assert_clean_failure(&o, &["dup.json", "duplicate key", "\"width\""]);
    }
    for (i, name) in ["..png", "sub/.", "a\\u202Egnp.png", "a\\nb.png"]
        .iter()
        .enumerate()
    {
        let text = format!(
            r#"{{"format": "defect-studio/graph", "version": 1, "nodes": {{
                "s": {{"kind": "SolidColor", "version": 1, "params": {{"width": 8, "height": 8}}}},
                "save": {{"kind": "SaveImage", "version": 1, "params": {{"filename": "{name}"}}}}}},
                "links": [{{"from": ["s", "image"], "to": ["save", "image"]}}]}}"#
        );
        let path = env.write(&format!("name{i}.json"), &text);
        let o = env.run(&["validate", path.to_str().unwrap()]);
        assert_clean_failure(&o, &["\"save\"", "filename"]);
    }
}
