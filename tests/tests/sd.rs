//! `defect-studio generate` and the diffusion nodes end to end, on the tiny diffusers parity
//! models in `tests/fixtures/sd`: outputs equal diffusers' PNGs, the recipe path equals the
//! CLI, and bad input fails with one clear line naming the file.

mod common;

use std::path::{Path, PathBuf};

use common::*;

fn sd() -> PathBuf {
    repo().join("tests/fixtures/sd")
}

fn case(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(sd().join("cases.json")).unwrap();
    let all: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    all.into_iter().find(|c| c["name"] == name).unwrap()
}

/// The `generate` arguments of a fixture case.
fn case_args(c: &serde_json::Value) -> Vec<String> {
    let mut a = vec![
        "generate".to_string(),
        "--model".into(),
        sd().join("models")
            .join(c["model"].as_str().unwrap())
            .display()
            .to_string(),
        "--prompt".into(),
        c["prompt"].as_str().unwrap().into(),
        "--steps".into(),
        c["steps"].to_string(),
        "--cfg".into(),
        c["cfg"].to_string(),
        "--seed".into(),
        c["seed"].to_string(),
        "--scheduler".into(),
        c["scheduler"].as_str().unwrap().into(),
        "--batch".into(),
        c["batch"].as_u64().unwrap_or(1).to_string(),
    ];
    if let Some(n) = c["negative"].as_str() {
        a.extend(["--negative".into(), n.into()]);
    }
    if let Some(i) = c["init_image"].as_str() {
        a.extend(["--init-image".into(), sd().join(i).display().to_string()]);
        a.extend(["--strength".into(), c["strength"].to_string()]);
    }
    if let Some(m) = c["mask"].as_str() {
        a.extend(["--mask".into(), sd().join(m).display().to_string()]);
    }
    a
}

fn run_ok(env: &Env, args: &[String]) -> std::process::Output {
    let o = env.cmd().args(args).output().unwrap();
    assert!(o.status.success(), "{args:?} failed: {}", stderr(&o));
    o
}

#[test]
fn generate_writes_what_diffusers_writes() {
    let env = Env::new();
    std::fs::create_dir_all(env.out()).unwrap();
    for name in [
        "sd15_txt2img_dpmpp_2m",
        "sd15_img2img_ddim_s050",
        "sd15inpaint9ch_euler_s100",
        "sdxl_txt2img_euler",
    ] {
        let c = case(name);
        let out = env.out().join(format!("{name}.png"));
        let mut args = case_args(&c);
        args.extend(["--out".into(), out.display().to_string()]);
        let o = run_ok(&env, &args);
        assert!(stdout(&o).contains("wrote"), "{}", stdout(&o));
        let db = psnr8(&rgb8(&out), &rgb8(&sd().join(format!("cases/{name}.png"))));
        assert!(db >= 55.0, "{name}: {db:.1} dB against diffusers' PNG");
        // The PNG says how it was made (A1111's "parameters").
        let bytes = std::fs::read(&out).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("parameters") && text.contains(&format!("Seed: {}", c["seed"])));
    }
}

#[test]
fn batch_writes_numbered_files_equal_to_diffusers() {
    let env = Env::new();
    let c = case("sd15_txt2img_euler_a_batch2");
    let out = env.out().join("b.png");
    let mut args = case_args(&c);
    args.extend(["--out".into(), out.display().to_string()]);
    run_ok(&env, &args);
    for k in 0..2 {
        let ours = rgb8(&env.out().join(format!("b-{k}.png")));
        let theirs = rgb8(&sd().join(format!("cases/sd15_txt2img_euler_a_batch2-{k}.png")));
        let db = psnr8(&ours, &theirs);
        assert!(db >= 55.0, "image {k}: {db:.1} dB");
    }
    assert!(!out.exists(), "a batch writes only the numbered files");
}

/// A recipe LoadCheckpoint → Txt2Img (seed from the run, offset 0) → SaveImage run with
/// `run --seed S` gives exactly `generate --seed S`.
#[test]
fn recipe_equals_generate() {
    let env = Env::new();
    let model = sd().join("models/sd15");
    let graph = format!(
        r#"{{"format": "defect-studio/graph", "version": 1,
            "nodes": {{
                "ckpt": {{"kind": "LoadCheckpoint", "version": 1, "params": {{"checkpoint": {model:?}}}}},
                "gen": {{"kind": "Txt2Img", "version": 1, "params": {{
                    "prompt": "a dent in a steel panel", "negative": "blurry",
                    "width": 64, "height": 64, "steps": 6, "cfg": 6.0, "scheduler": "euler_a"}}}},
                "save": {{"kind": "SaveImage", "version": 1, "params": {{"filename": "gen.png"}}}}
            }},
            "links": [
                {{"from": ["ckpt", "model"], "to": ["gen", "model"]}},
                {{"from": ["gen", "image"], "to": ["save", "image"]}}
            ]}}"#,
        model = model.display().to_string()
    );
    let g = env.write("sd.json", &graph);
    let out = env.out();
    let o = env.run(&[
        "run",
        g.to_str().unwrap(),
        "--seed",
        "77",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let cli = env.dir.path().join("cli.png");
    let o = env.run(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--prompt",
        "a dent in a steel panel",
        "--negative",
        "blurry",
        "--width",
        "64",
        "--height",
        "64",
        "--steps",
        "6",
        "--cfg",
        "6",
        "--scheduler",
        "euler_a",
        "--seed",
        "77",
        "--out",
        cli.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        rgb8(&out.join("gen.png")),
        rgb8(&cli),
        "recipe and CLI differ"
    );
    // Another seed gives another image (the seed is really used).
    let other = env.dir.path().join("other.png");
    let o = env.run(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--prompt",
        "a dent in a steel panel",
        "--negative",
        "blurry",
        "--steps",
        "6",
        "--cfg",
        "6",
        "--scheduler",
        "euler_a",
        "--seed",
        "78",
        "--out",
        other.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(psnr8(&rgb8(&other), &rgb8(&cli)) < 30.0);
}

/// Inpainting through the node keeps every pixel outside the mask (paste back), and its mask
/// output is the binarised input mask.
#[test]
fn inpaint_node_keeps_unmasked_pixels() {
    let env = Env::new();
    let model = sd().join("models/sd15-inpaint");
    let graph = format!(
        r#"{{"format": "defect-studio/graph", "version": 1,
            "nodes": {{
                "ckpt": {{"kind": "LoadCheckpoint", "version": 1, "params": {{"checkpoint": {model:?}}}}},
                "photo": {{"kind": "LoadImage", "version": 1, "params": {{"source": {init:?}}}}},
                "zone": {{"kind": "LoadMask", "version": 1, "params": {{"source": {mask:?}}}}},
                "fix": {{"kind": "Inpaint", "version": 1, "params": {{
                    "prompt": "a crack", "steps": 4, "mask_blur": 0.0, "scheduler": "ddim"}}}},
                "save": {{"kind": "SaveImage", "version": 1, "params": {{"filename": "fixed.png"}}}}
            }},
            "links": [
                {{"from": ["ckpt", "model"], "to": ["fix", "model"]}},
                {{"from": ["photo", "image"], "to": ["fix", "image"]}},
                {{"from": ["zone", "mask"], "to": ["fix", "mask"]}},
                {{"from": ["fix", "image"], "to": ["save", "image"]}},
                {{"from": ["fix", "mask"], "to": ["save", "mask"]}}
            ]}}"#,
        model = model.display().to_string(),
        init = sd().join("inputs/init.png").display().to_string(),
        mask = sd().join("inputs/mask.png").display().to_string(),
    );
    let g = env.write("inpaint.json", &graph);
    let o = env.run(&[
        "run",
        g.to_str().unwrap(),
        "--out",
        env.out().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ours = rgb8(&env.out().join("fixed.png"));
    let init = rgb8(&sd().join("inputs/init.png"));
    let mask = image::open(sd().join("inputs/mask.png"))
        .unwrap()
        .to_luma8()
        .into_raw();
    let (mut inside_changed, mut inside) = (0, 0);
    for (i, m) in mask.iter().enumerate() {
        let px = &ours[i * 3..i * 3 + 3];
        let orig = &init[i * 3..i * 3 + 3];
        if *m < 128 {
            assert_eq!(px, orig, "pixel {i} outside the mask changed");
        } else {
            inside += 1;
            if px != orig {
                inside_changed += 1;
            }
        }
    }
    assert!(
        inside > 100 && inside_changed * 10 > inside * 9,
        "{inside_changed}/{inside}"
    );
}

#[test]
fn bad_input_fails_with_one_clear_line() {
    let env = Env::new();
    let dir = env.dir.path();
    let sd15 = sd().join("models/sd15.safetensors");
    let out = dir.join("o.png");
    let out_s = out.to_str().unwrap();
    let cfg = sd().join("models/sd15");
    let gen = |model: &Path, extra: &[&str]| {
        let mut a = vec![
            "generate",
            "--model",
            model.to_str().unwrap(),
            "--prompt",
            "x",
            "--steps",
            "2",
            "--out",
            out_s,
            "--config-dir",
            cfg.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        // Rust users often export RUST_BACKTRACE=1: errors must stay one line all the same.
        env.cmd()
            .env("RUST_BACKTRACE", "1")
            .args(&a)
            .output()
            .unwrap()
    };
    let expect_err = |o: std::process::Output, needles: &[&str]| {
        assert_clean_failure(&o, needles);
        // The file is named once, not by every layer of the error chain.
        let line = stderr(&o);
        for n in needles.iter().filter(|n| n.ends_with(".safetensors")) {
            assert_eq!(
                line.matches(*n).count(),
                1,
                "{n} named more than once: {line}"
            );
        }
    };
    // Truncated checkpoint.
    let bytes = std::fs::read(&sd15).unwrap();
    let cut = dir.join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    expect_err(gen(&cut, &[]), &["cut.safetensors", "truncated"]);
    // Corrupt header.
    let junk = dir.join("junk.safetensors");
    let mut j = bytes[..4096].to_vec();
    j[10..40].copy_from_slice(&[b'#'; 30]);
    std::fs::write(&junk, &j).unwrap();
    expect_err(gen(&junk, &[]), &["junk.safetensors"]);
    // A pickle checkpoint is refused before it is read.
    let ckpt = dir.join("model.ckpt");
    std::fs::write(&ckpt, b"PK\x03\x04 pickle").unwrap();
    expect_err(gen(&ckpt, &[]), &["model.ckpt", "safetensors"]);
    // Width not a multiple of 8.
    expect_err(gen(&sd15, &["--width", "65"]), &["65", "multiples of 8"]);
    // A mask of another size than the image.
    let small = dir.join("small.png");
    image::GrayImage::from_pixel(32, 32, image::Luma([255]))
        .save(&small)
        .unwrap();
    let init = sd().join("inputs/init.png");
    expect_err(
        gen(
            &sd15,
            &[
                "--init-image",
                init.to_str().unwrap(),
                "--mask",
                small.to_str().unwrap(),
            ],
        ),
        &["mask", "32×32", "64×64"],
    );
    // Unknown scheduler: the message lists the valid names.
    expect_err(gen(&sd15, &["--scheduler", "heun"]), &["heun", "euler_a"]);
    // Missing model.
    expect_err(
        gen(&dir.join("nope.safetensors"), &[]),
        &["nope.safetensors", "not found"],
    );
    assert!(!out.exists(), "nothing may be written on failure");
}

/// The text chunks of a PNG file, by keyword.
fn chunks(path: &Path) -> std::collections::BTreeMap<String, String> {
    let bytes = std::fs::read(path).unwrap();
    engine::interop::png_meta::read_text_chunks(&bytes)
        .unwrap()
        .into_iter()
        .collect()
}

/// `generate` runs a recipe: its PNG carries the recipe, `run` of that recipe gives the same
/// pixels and the same recipe and A1111 chunks, and the run is in the history.
#[test]
fn generate_is_a_recipe_that_run_repeats() {
    let env = Env::new();
    let c = case("sd15_img2img_euler_a_s080");
    let out = env.out().join("gen.png");
    let mut args = case_args(&c);
    args.extend(["--out".into(), out.display().to_string()]);
    let o = run_ok(&env, &args);
    assert!(
        stdout(&o).contains(&format!("wrote {}", out.display())),
        "{}",
        stdout(&o)
    );
    let again = env.dir.path().join("again");
    let o = env.run(&[
        "run",
        out.to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rerun = again.join("gen.png");
    assert_eq!(rgb8(&out), rgb8(&rerun), "generate and its recipe differ");
    let (a, b) = (chunks(&out), chunks(&rerun));
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        ["defect-studio/graph", "parameters"]
    );
    assert_eq!(a, b, "recipe or parameters chunk differs");
    let params = &a["parameters"];
    assert!(
        params.contains(&format!("Seed: {}", c["seed"]))
            && params.contains("Sampler: Euler a")
            && params.contains("Denoising strength: 0.8"),
        "{params}"
    );
    let runs = env.history();
    assert_eq!(runs.len(), 2, "both runs are in the history");
    assert!(runs
        .iter()
        .all(|r| r["graph"] == "generate" && r["status"] == "succeeded"));
    let recorded = runs[0]["outputs"][0]["path"].as_str().unwrap().to_string();
    assert!(
        recorded.ends_with("gen.png") || recorded.ends_with("gen-1.png"),
        "{recorded}"
    );
}

/// `generate --init-image --mask` with no `--strength` is diffusers' default inpaint call
/// (strength 1, no mask blur, the whole image through the VAE); 0.8 gave 13 dB.
#[test]
fn inpaint_defaults_equal_diffusers_defaults() {
    let env = Env::new();
    let c = case("sd15_inpaint4ch_euler_s100");
    assert_eq!(
        c["strength"].as_f64(),
        Some(1.0),
        "the case is the default call"
    );
    let mut args = case_args(&c);
    let i = args.iter().position(|a| a == "--strength").unwrap();
    args.drain(i..i + 2);
    let out = env.dir.path().join("inpaint.png");
    args.extend(["--out".into(), out.display().to_string()]);
    run_ok(&env, &args);
    let db = psnr8(
        &rgb8(&out),
        &rgb8(&sd().join("cases/sd15_inpaint4ch_euler_s100.png")),
    );
    assert!(
        db >= 55.0,
        "{db:.1} dB against diffusers' default inpaint call"
    );
}

/// A single file whose configuration cannot be inferred (the tiny model's text encoder has no
/// 64-wide heads) says to use `--config`, and runs with it exactly as its diffusers folder does.
#[test]
fn config_flag_describes_a_single_file() {
    let env = Env::new();
    let file = sd().join("models/sd15.safetensors");
    let folder = sd().join("models/sd15");
    let base = |model: &Path, out: &Path| -> Vec<String> {
        [
            "generate",
            "--model",
            model.to_str().unwrap(),
            "--prompt",
            "a chipped edge",
            "--steps",
            "3",
            "--seed",
            "9",
            "--out",
            out.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
    };
    let o = env
        .cmd()
        .args(base(&file, &env.dir.path().join("x.png")))
        .output()
        .unwrap();
    assert_clean_failure(&o, &["sd15.safetensors", "--config"]);
    let a = env.dir.path().join("file.png");
    let mut args = base(&file, &a);
    args.extend(["--config".into(), folder.display().to_string()]);
    run_ok(&env, &args);
    let b = env.dir.path().join("folder.png");
    run_ok(&env, &base(&folder, &b));
    assert_eq!(
        rgb8(&a),
        rgb8(&b),
        "single file + --config differs from the folder"
    );
}

fn lora_case(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(sd().join("lora/cases.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    doc["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()
        .clone()
}

/// `generate --lora PATH:WEIGHT` equals diffusers with the LoRA, and reports what it applied.
#[test]
fn generate_with_lora_reports_and_matches_diffusers() {
    let env = Env::new();
    let c = lora_case("lora_kohya_a_08");
    let out = env.dir.path().join("lora.png");
    let lora = sd().join("lora/kohya_a.safetensors");
    let mut args = case_args(&c);
    args.extend([
        "--lora".into(),
        format!("{}:0.8", lora.display()),
        "--out".into(),
        out.display().to_string(),
    ]);
    let o = run_ok(&env, &args);
    let text = stdout(&o);
    assert!(
        text.contains("72 UNet + 18 text-encoder modules applied, every key used"),
        "{text}"
    );
    let db = psnr8(&rgb8(&out), &rgb8(&sd().join("lora/lora_kohya_a_08.png")));
    assert!(db >= 55.0, "{db:.1} dB");
    // A LoRA with keys that match nothing says which.
    let extra = sd().join("lora/extra_keys.safetensors");
    let mut args = case_args(&c);
    args.extend([
        "--lora".into(),
        format!("{}:0.8", extra.display()),
        "--out".into(),
        out.display().to_string(),
    ]);
    let o = run_ok(&env, &args);
    assert!(
        stdout(&o).contains("matched nothing: lora_unet_nonexistent_block"),
        "{}",
        stdout(&o)
    );
    // An SDXL LoRA on an SD1.5 model is refused with one clear line.
    let mut args = case_args(&c);
    args.extend([
        "--lora".into(),
        format!("{}:1", sd().join("lora/sdxl_kohya.safetensors").display()),
        "--out".into(),
        out.display().to_string(),
    ]);
    let o = env.cmd().args(&args).output().unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("SDXL LoRA"), "{}", stderr(&o));
}

/// Two chained LoraLoader nodes equal diffusers' stacked adapters; the run prints each LoRA's
/// report.
#[test]
fn chained_lora_nodes_equal_diffusers_stack() {
    let env = Env::new();
    let c = lora_case("lora_stack_07_05");
    let graph = format!(
        r#"{{"format": "defect-studio/graph", "version": 1,
            "nodes": {{
                "ckpt": {{"kind": "LoadCheckpoint", "version": 1, "params": {{"checkpoint": {model:?}}}}},
                "a": {{"kind": "LoraLoader", "version": 1, "params": {{"lora": {a:?}, "strength": 0.7, "text_strength": 0.7}}}},
                "b": {{"kind": "LoraLoader", "version": 1, "params": {{"lora": {b:?}, "strength": 0.5, "text_strength": 0.5}}}},
                "gen": {{"kind": "Txt2Img", "version": 1, "params": {{
                    "prompt": {prompt:?}, "negative": {negative:?}, "width": 64, "height": 64,
                    "steps": {steps}, "cfg": {cfg}, "scheduler": "euler", "seed": {seed}}}}},
                "save": {{"kind": "SaveImage", "version": 1, "params": {{"filename": "stack.png"}}}}
            }},
            "links": [
                {{"from": ["ckpt", "model"], "to": ["a", "model"]}},
                {{"from": ["a", "model"], "to": ["b", "model"]}},
                {{"from": ["b", "model"], "to": ["gen", "model"]}},
                {{"from": ["gen", "image"], "to": ["save", "image"]}}
            ]}}"#,
        model = sd().join("models/sd15").display().to_string(),
        a = sd().join("lora/kohya_a.safetensors").display().to_string(),
        b = sd().join("lora/kohya_b.safetensors").display().to_string(),
        prompt = c["prompt"].as_str().unwrap(),
        negative = c["negative"].as_str().unwrap(),
        steps = c["steps"],
        cfg = c["cfg"],
        seed = c["seed"],
    );
    let g = env.write("stack.json", &graph);
    let o = env.run(&[
        "run",
        g.to_str().unwrap(),
        "--out",
        env.out().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("a: LoRA kohya_a.safetensors: 72 UNet"),
        "{text}"
    );
    assert!(
        text.contains("b: LoRA kohya_b.safetensors: 24 UNet"),
        "{text}"
    );
    let db = psnr8(
        &rgb8(&env.out().join("stack.png")),
        &rgb8(&sd().join("lora/lora_stack_07_05.png")),
    );
    assert!(db >= 55.0, "{db:.1} dB");
}

/// `train-lora` end to end: it writes a kohya LoRA and sample images, records the run in the
/// store (`history --trainings`), the LoRA works in `generate --lora`, a second call resumes
/// from the checkpoint, and bad input fails with one clear line.
#[test]
fn train_lora_cli_trains_records_and_resumes() {
    let env = Env::new();
    let data = env.dir.path().join("stripes");
    std::fs::create_dir_all(&data).unwrap();
    for i in 0..2u32 {
        let img = image::RgbImage::from_fn(80, 64, |_, y| {
            if (12 + i * 24..24 + i * 24).contains(&y) {
                image::Rgb([40, 200, 60])
            } else {
                image::Rgb([128, 128, 128])
            }
        });
        img.save(data.join(format!("s{i}.png"))).unwrap();
        std::fs::write(data.join(format!("s{i}.txt")), "a green stripe").unwrap();
    }
    let model = sd().join("models/sd15").display().to_string();
    let out = env.dir.path().join("loras/stripe.safetensors");
    let train = |steps: &str, extra: &[&str]| {
        let mut a: Vec<String> = [
            "train-lora",
            "--model",
            model.as_str(),
            "--data",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--steps",
            steps,
            "--rank",
            "2",
            "--resolution",
            "64",
            "--lr",
            "0.01",
            "--save-every",
            "2",
            "--seed",
            "3",
            "--buckets",
            "--sample-every",
            "4",
            "--sample-prompt",
            "a green stripe",
            "--sample-steps",
            "2",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let o = run_ok(&env, &train("4", &[]));
    let text = stdout(&o);
    assert!(
        text.contains("4 steps on 2 images, 48 UNet modules"),
        "{text}"
    );
    assert!(out.is_file());
    let sample = env.dir.path().join("loras/stripe-samples/step-000004.png");
    assert!(sample.is_file(), "sample image at step 4");
    let file = safetensors_metadata(&out);
    assert_eq!(file["ss_enable_bucket"], "True");
    // 80×64 (1.25) goes to the nearest bucket of area ≤ 64²: 72×56.
    assert_eq!(file["ss_bucket_info"], r#"{"(72, 56)":2}"#);

    let o = env.run(&["history", "--trainings", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let list: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(list.len(), 1);
    let rec = &list[0];
    assert_eq!(rec["status"], "succeeded");
    assert_eq!(rec["steps_done"], 4);
    assert_eq!(rec["losses"].as_array().unwrap().len(), 4);
    assert_eq!(
        rec["lora_sha256"].as_str().unwrap(),
        sha256(&std::fs::read(&out).unwrap())
    );
    assert!(stdout(&env.run(&["history", "--trainings"])).contains("stripe"));

    // The LoRA drives `generate`.
    let png = env.dir.path().join("with-lora.png");
    let o = run_ok(
        &env,
        &[
            "generate".to_string(),
            "--model".into(),
            model.clone(),
            "--prompt".into(),
            "a green stripe".into(),
            "--steps".into(),
            "2".into(),
            "--lora".into(),
            format!("{}:1.0", out.display()),
            "--out".into(),
            png.display().to_string(),
        ],
    );
    assert!(
        stdout(&o).contains("48 UNet + 0 text-encoder modules applied, every key used"),
        "{}",
        stdout(&o)
    );

    // Resume: two more steps from the step-4 checkpoint.
    let o = run_ok(&env, &train("6", &["--resume"]));
    assert!(
        stdout(&o).contains("6 steps (resumed at 4)"),
        "{}",
        stdout(&o)
    );

    // Bad input: one clear line each.
    let missing = env.dir.path().join("no-such-folder");
    let mut args = train("2", &[]);
    let i = args.iter().position(|a| a == "--data").unwrap();
    args[i + 1] = missing.display().to_string();
    let o = env.cmd().args(&args).output().unwrap();
    assert_clean_failure(&o, &["no-such-folder"]);
    let o = env.run(&[
        "train-lora",
        "--model",
        &model,
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--sample-every",
        "5",
    ]);
    assert_clean_failure(&o, &["--sample-prompt"]);
}

/// The `__metadata__` of a safetensors file.
fn safetensors_metadata(path: &Path) -> std::collections::BTreeMap<String, String> {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    serde_json::from_value(header["__metadata__"].clone()).unwrap()
}
