//! `.dsbundle` sharing through the CLI: a recipe needing two models (the tiny SD checkpoint and
//! a LoRA) and an external asset is exported from one data folder and imported into empty ones:
//! without the models every missing one is listed at once and `run` refuses listing them; with
//! them (found by hash) it runs. Unsafe bundles are refused whole and write nothing.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use common::*;

fn sd() -> PathBuf {
    repo().join("tests/fixtures/sd")
}

/// The two models of the shared recipe: (fixture, file name in the model folder).
fn models() -> [(PathBuf, &'static str); 2] {
    [
        (sd().join("models/sd15.safetensors"), "sd15.safetensors"),
        (sd().join("lora/kohya_a.safetensors"), "kohya_a.safetensors"),
    ]
}

/// Copies the models into `home`'s model folder, under `sub`.
fn install_models(home: &Path, sub: &str) {
    let dir = home.join("models").join(sub);
    std::fs::create_dir_all(&dir).unwrap();
    for (src, name) in models() {
        std::fs::copy(src, dir.join(name)).unwrap();
    }
}

/// A small PNG, as an external asset's bytes.
fn asset_png() -> Vec<u8> {
    let img = image::RgbImage::from_pixel(8, 6, image::Rgb([200, 30, 40]));
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .unwrap();
    bytes
}

/// Checkpoint (by name, described by the fixture's diffusers config) → LoRA → Txt2Img → save,
/// and an external asset loaded and saved.
fn shared_recipe(asset_sha: &str, asset_len: usize) -> String {
    format!(
        r#"{{"format": "defect-studio/graph", "version": 2,
        "nodes": {{
          "ckpt": {{"kind": "LoadCheckpoint", "version": 1, "params": {{"checkpoint": "sd15.safetensors", "config": {config:?}}}}},
          "lora": {{"kind": "LoraLoader", "version": 1, "params": {{"lora": "kohya_a.safetensors", "strength": 0.8, "text_strength": 0.8}}}},
          "gen": {{"kind": "Txt2Img", "version": 1, "params": {{"prompt": "a scratch", "width": 64, "height": 64, "steps": 2, "seed": 3}}}},
          "save": {{"kind": "SaveImage", "version": 1, "params": {{"filename": "generated.png"}}}},
          "photo": {{"kind": "LoadImage", "version": 1, "params": {{"source": "asset:{asset_sha}"}}}},
          "keep": {{"kind": "SaveImage", "version": 1, "params": {{"filename": "photo.png"}}}}
        }},
        "links": [
          {{"from": ["ckpt", "model"], "to": ["lora", "model"]}},
          {{"from": ["lora", "model"], "to": ["gen", "model"]}},
          {{"from": ["gen", "image"], "to": ["save", "image"]}},
          {{"from": ["photo", "image"], "to": ["keep", "image"]}}
        ],
        "assets": {{"{asset_sha}": {{"mime": "image/png", "external": true, "size": {asset_len}}}}},
        "meta": {{"title": "Shared scratch", "tags": ["sd"]}}}}"#,
        config = sd().join("models/sd15").display().to_string(),
    )
}

fn run_recipe(env: &Env, name: &str) -> std::process::Output {
    let recipe = env.home().join("recipes").join(format!("{name}.json"));
    env.run(&[
        "run",
        recipe.to_str().unwrap(),
        "--out",
        env.out().to_str().unwrap(),
    ])
}

#[test]
fn a_bundle_runs_where_its_models_are_and_lists_every_missing_one_elsewhere() {
    let png = asset_png();
    let sha = sha256(&png);
    let hashes: Vec<String> = models()
        .iter()
        .map(|(p, _)| sha256(&std::fs::read(p).unwrap()))
        .collect();

    // The exporting data folder: the models and the asset are here.
    let a = Env::new();
    install_models(&a.home(), "");
    std::fs::create_dir_all(a.home().join("assets")).unwrap();
    std::fs::write(a.home().join("assets").join(&sha), &png).unwrap();
    let file = a.write("shared.json", &shared_recipe(&sha, png.len()));
    let o = a.run(&[
        "recipes",
        "add",
        file.to_str().unwrap(),
        "--name",
        "team/shared",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bundle = a.dir.path().join("shared.dsbundle");
    let o = a.run(&[
        "recipes",
        "export",
        "team/shared",
        "--out",
        bundle.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("2 model(s) listed, 1 asset(s) packed"),
        "{text}"
    );
    for ((_, name), hash) in models().iter().zip(&hashes) {
        assert!(
            text.contains(&format!("{name} [")) && text.contains(hash.as_str()),
            "{text}"
        );
    }
    // The config folder is a path on this machine: said, not packed.
    assert!(stderr(&o).contains("ckpt.config"), "{}", stderr(&o));
    // An existing bundle is never replaced.
    let o = a.run(&[
        "recipes",
        "export",
        "team/shared",
        "--out",
        bundle.to_str().unwrap(),
    ]);
    assert_clean_failure(&o, &["already exists"]);

    // An empty data folder: imported, every missing model listed at once.
    let b = Env::new();
    let o = b.run(&["recipes", "import", bundle.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("imported recipe \"team/shared\""), "{text}");
    assert!(text.contains("2 of 2 model(s) missing"), "{text}");
    for ((_, name), hash) in models().iter().zip(&hashes) {
        let line = text
            .lines()
            .find(|l| l.contains("missing") && l.contains(name))
            .unwrap_or_else(|| panic!("{name} not listed: {text}"));
        assert!(
            line.contains(hash.as_str()) && line.contains("file "),
            "{line}"
        );
    }
    assert_eq!(
        std::fs::read(b.home().join("assets").join(&sha)).unwrap(),
        png
    );
    let o = run_recipe(&b, "team/shared");
    assert_clean_failure(
        &o,
        &[
            "2 missing file(s)",
            "sd15.safetensors",
            "kohya_a.safetensors",
        ],
    );
    // The name is taken now: a second import is refused; --name imports a copy.
    let o = b.run(&["recipes", "import", bundle.to_str().unwrap()]);
    assert_clean_failure(&o, &["team/shared", "already exists"]);
    let o = b.run(&[
        "recipes",
        "import",
        bundle.to_str().unwrap(),
        "--name",
        "copy",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("1 already present"), "{}", stdout(&o));

    // A data folder with the models (in a subfolder: found by hash): it runs.
    let c = Env::new();
    install_models(&c.home(), "sd/v1");
    let o = c.run(&["recipes", "import", bundle.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("all 2 model(s) it needs are present"),
        "{}",
        stdout(&o)
    );
    let o = run_recipe(&c, "team/shared");
    assert!(o.status.success(), "{}", stderr(&o));
    let saved = saved_paths(&o);
    assert_eq!(saved.len(), 2, "{}", stdout(&o));
    let photo = saved.iter().find(|p| p.ends_with("photo.png")).unwrap();
    let img = image::open(photo).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (8, 6));
    assert_eq!(img.get_pixel(3, 3).0, [200, 30, 40]);
}

/// A zip with the three bundle entries of a small valid recipe and `extra` entries.
fn zip_with(extra: &[(&str, &[u8])], symlink: Option<&str>) -> Vec<u8> {
    let recipe = r#"{"format": "defect-studio/graph", "version": 2,
        "nodes": {"bg": {"kind": "SolidColor", "version": 1},
                  "save": {"kind": "SaveImage", "version": 1}},
        "links": [{"from": ["bg", "image"], "to": ["save", "image"]}]}"#;
    let info = r#"{"format": "defect-studio/bundle", "version": 1, "created": "2026-12-06 20:00:00", "recipe": "plate"}"#;
    let models = r#"{"format": "defect-studio/models", "models": []}"#;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    let entries: Vec<(&str, &[u8])> = [
        ("bundle.json", info.as_bytes()),
        ("recipe.json", recipe.as_bytes()),
        ("models.json", models.as_bytes()),
    ]
    .into_iter()
    .chain(extra.iter().copied())
    .collect();
    for (name, bytes) in entries {
        zip.start_file(name, opts).unwrap();
        zip.write_all(bytes).unwrap();
    }
    if let Some(name) = symlink {
        zip.add_symlink(name, "/etc/passwd", opts).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

#[test]
fn unsafe_bundles_are_refused_whole_and_write_nothing() {
    let env = Env::new();
    // The control: the same zip without a bad entry imports.
    let good = env.dir.path().join("good.dsbundle");
    std::fs::write(&good, zip_with(&[], None)).unwrap();
    let other = Env::new();
    let o = other.run(&["recipes", "import", good.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(other.home().join("recipes/plate.json").is_file());

    let sha = sha256(b"x");
    let asset = format!("assets/{sha}");
    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        (
            "dotdot",
            zip_with(&[(asset.as_str(), b"x"), ("../x", b"evil")], None),
            vec!["\"../x\"", "'../'"],
        ),
        (
            "absolute",
            zip_with(&[("/tmp/evil-x", b"evil")], None),
            vec!["\"/tmp/evil-x\"", "absolute"],
        ),
        (
            "symlink",
            zip_with(&[], Some("assets/link")),
            vec!["\"assets/link\"", "symlink"],
        ),
        (
            "unexpected",
            zip_with(&[("notes/readme.txt", b"hi")], None),
            vec!["\"notes/readme.txt\"", "not part of a bundle"],
        ),
        (
            "wrong-hash",
            zip_with(&[(asset.as_str(), b"y")], None),
            vec![asset.as_str(), "sha256"],
        ),
        (
            "not-a-zip",
            b"this is not a zip file at all".to_vec(),
            vec!["not a readable zip file"],
        ),
    ];
    for (label, bytes, needles) in cases {
        let path = env.dir.path().join(format!("{label}.dsbundle"));
        std::fs::write(&path, bytes).unwrap();
        let o = env.run(&["recipes", "import", path.to_str().unwrap()]);
        let mut all = needles.clone();
        all.push(path.to_str().unwrap());
        all.push("nothing was imported");
        assert_clean_failure(&o, &all);
        let written: Vec<String> = std::fs::read_dir(env.home())
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            !written.iter().any(|n| n == "recipes" || n == "assets"),
            "{label}: wrote {written:?}"
        );
    }
    assert!(!Path::new("/tmp/evil-x").exists());
}

/// A graph using a recipe of the library by reference carries that recipe's definition in its
/// bundle, so it imports (and validates) where the library is absent.
#[test]
fn library_references_travel_as_definitions() {
    let a = Env::new();
    let team = a.dir.path().join("team");
    std::fs::create_dir_all(team.join("blocks")).unwrap();
    std::fs::write(
        team.join("blocks/grey.json"),
        r#"{"format": "defect-studio/graph", "version": 2,
        "nodes": {"bg": {"kind": "SolidColor", "version": 1, "params": {"width": 8, "height": 8}},
                  "save": {"kind": "SaveImage", "version": 1}},
        "links": [{"from": ["bg", "image"], "to": ["save", "image"]}]}"#,
    )
    .unwrap();
    let with_team = |args: &[&str]| {
        a.cmd()
            .env("DEFECT_STUDIO_RECIPE_DIRS", &team)
            .args(args)
            .output()
            .unwrap()
    };
    let o = with_team(&["recipes", "show", "blocks/grey", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let shown: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let hash = shown["subgraph"]["definition_hash"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(shown["subgraph"]["outputs"][0]["name"], "image");
    let graph = a.write(
        "uses-grey.json",
        &format!(
            r#"{{"format": "defect-studio/graph", "version": 2,
            "nodes": {{"plate": {{"kind": "Subgraph", "version": 1,
                                  "subgraph": {{"hash": "{hash}", "name": "blocks/grey", "library": true}}}},
                      "save": {{"kind": "SaveImage", "version": 1}}}},
            "links": [{{"from": ["plate", "image"], "to": ["save", "image"]}}]}}"#
        ),
    );
    let bundle = a.dir.path().join("uses-grey.dsbundle");
    let args = [
        "recipes",
        "export",
        graph.to_str().unwrap(),
        "--out",
        bundle.to_str().unwrap(),
    ];
    // Without the library the reference cannot be filled in: refused, naming the recipe.
    let o = a.run(&args);
    assert_clean_failure(&o, &["no recipe \"blocks/grey\""]);
    assert!(!bundle.exists());
    let o = with_team(&args);
    assert!(o.status.success(), "{}", stderr(&o));

    // `validate` and `run` fill the reference in from the library (and only with it).
    let o = with_team(&["validate", graph.to_str().unwrap()]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let out = a.out();
    let run = [
        "run",
        graph.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    assert_clean_failure(&a.run(&run), &["blocks/grey"]);
    let o = with_team(&run);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(saved_paths(&o).len(), 1);

    let b = Env::new();
    let o = b.run(&["recipes", "import", bundle.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(b.home().join("recipes/uses-grey.json")).unwrap();
    let doc = nodes::GraphDoc::from_json(&text).unwrap();
    assert_eq!(doc.definitions.keys().collect::<Vec<_>>(), [&hash]);
    let o = b.run(&[
        "validate",
        b.home().join("recipes/uses-grey.json").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
}

/// Image and mask files a recipe names by path — at the top level (twice) and inside a
/// subgraph — travel in the bundle as assets: the imported recipe names them by hash and runs
/// on a machine that never had the files, with the same pixels. A folder stays a path, said.
#[test]
fn input_files_travel_in_the_bundle() {
    let a = Env::new();
    let photo =
        image::RgbImage::from_fn(10, 7, |x, y| image::Rgb([x as u8 * 20, y as u8 * 30, 90]));
    photo.save(a.dir.path().join("photo.png")).unwrap();
    std::fs::create_dir_all(a.dir.path().join("masks")).unwrap();
    let mask = image::GrayImage::from_fn(10, 7, |x, y| {
        image::Luma([if x > 4 && y < 3 { 255 } else { 0 }])
    });
    mask.save(a.dir.path().join("masks/m.png")).unwrap();
    std::fs::create_dir_all(a.dir.path().join("frames")).unwrap();
    let def: nodes::subgraph::Definition = serde_json::from_str(
        r#"{"name": "mask block",
            "nodes": {"m": {"kind": "LoadMask", "version": 1, "params": {"source": "masks/m.png"}}},
            "outputs": [{"name": "mask", "from": ["m", "mask"]}]}"#,
    )
    .unwrap();
    let hash = def.hash();
    let graph = a.write(
        "inputs.json",
        &format!(
            r#"{{"format": "defect-studio/graph", "version": 2,
            "nodes": {{
              "photo": {{"kind": "LoadImage", "version": 1, "params": {{"source": "photo.png"}}}},
              "again": {{"kind": "LoadImage", "version": 1, "params": {{"source": "photo.png"}}}},
              "batch": {{"kind": "LoadImage", "version": 1, "params": {{"source": "frames"}}}},
              "mb": {{"kind": "Subgraph", "version": 1, "subgraph": {{"hash": "{hash}", "name": "mask block"}}}},
              "keep": {{"kind": "SaveImage", "version": 1, "params": {{"filename": "kept.png"}}}}
            }},
            "links": [
              {{"from": ["photo", "image"], "to": ["keep", "image"]}},
              {{"from": ["mb", "mask"], "to": ["keep", "mask"]}}
            ],
            "definitions": {{"{hash}": {def}}}}}"#,
            def = serde_json::to_string(&def).unwrap()
        ),
    );
    let bundle = a.dir.path().join("inputs.dsbundle");
    let o = a.run(&[
        "recipes",
        "export",
        graph.to_str().unwrap(),
        "--out",
        bundle.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("2 asset(s) packed"), "{}", stdout(&o));
    let warned = stderr(&o);
    assert!(
        warned.contains("batch.source") && warned.contains("folder"),
        "{warned}"
    );
    assert!(
        !warned.contains("photo.png") && !warned.contains("m.png"),
        "{warned}"
    );

    // A machine without the files: the recipe names them by hash and runs.
    let b = Env::new();
    let o = b.run(&["recipes", "import", bundle.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("2 asset(s) written"), "{}", stdout(&o));
    let recipe = b.home().join("recipes/inputs.json");
    let doc = nodes::GraphDoc::from_json(&std::fs::read_to_string(&recipe).unwrap()).unwrap();
    let source = |n: &nodes::NodeDoc| n.params["source"].as_str().unwrap().to_string();
    let photo_ref = source(&doc.nodes["photo"]);
    assert!(photo_ref.starts_with("asset:"), "{photo_ref}");
    assert_eq!(
        source(&doc.nodes["again"]),
        photo_ref,
        "one asset for both uses"
    );
    assert_eq!(source(&doc.nodes["batch"]), "frames");
    let inner = doc.definitions.values().next().unwrap();
    assert!(source(&inner.nodes["m"]).starts_with("asset:"));
    // The instance names the re-keyed definition.
    let mb = doc.nodes["mb"].subgraph.as_ref().unwrap();
    assert!(doc.definitions.contains_key(&mb.hash));

    // `batch` (a folder here) is not needed by the save: drop it to run on this machine.
    let o = run_recipe(&b, "inputs");
    assert!(o.status.success(), "{}", stderr(&o));
    let saved = saved_paths(&o);
    let kept = saved.iter().find(|p| p.ends_with("kept.png")).unwrap();
    assert_eq!(image::open(kept).unwrap().to_rgb8(), photo);
    let kept_mask = kept.with_file_name("kept_mask.png");
    assert_eq!(image::open(&kept_mask).unwrap().to_luma8(), mask);
}
