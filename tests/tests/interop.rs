//! Interop end to end: every output PNG carries its recipe and A1111 parameters; `run
//! OUTPUT.png` restores the recipe and repeats the image; `import-comfy` converts ComfyUI files.

mod common;

use common::*;

fn text_chunks(png: &std::path::Path) -> Vec<(String, String)> {
    engine::interop::png_meta::read_text_chunks(&std::fs::read(png).unwrap()).unwrap()
}

fn pngs(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = walk(dir)
        .into_iter()
        .filter(|p| {
            p.extension().is_some_and(|e| e == "png") && !p.to_string_lossy().ends_with("_mask.png")
        })
        .collect();
    v.sort();
    v
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn output_png_restores_its_recipe_and_image() {
    let env = Env::new();
    let graph = example("scratches-on-brushed-metal.json");
    let out = env.out();
    let o = env.run(&[
        "run",
        graph.to_str().unwrap(),
        "--seed",
        "5",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let first = pngs(&out);
    assert!(!first.is_empty());
    let png = &first[0];
    // The embedded recipe is the graph as run, with the run's seed.
    let chunks = text_chunks(png);
    let graph_text = &chunks
        .iter()
        .find(|(k, _)| k == "defect-studio/graph")
        .expect("graph chunk")
        .1;
    let restored = nodes::GraphDoc::from_json(graph_text).unwrap();
    let mut expected =
        nodes::GraphDoc::from_json(&std::fs::read_to_string(&graph).unwrap()).unwrap();
    expected.meta.seed = Some(5);
    assert_eq!(restored.to_json(), expected.to_json());
    // Running the PNG gives the same pixels.
    let out2 = env.dir.path().join("again");
    let o = env.run(&[
        "run",
        png.to_str().unwrap(),
        "--out",
        out2.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let again = pngs(&out2);
    let a = image::open(png).unwrap().to_rgba8();
    let b = image::open(&again[0]).unwrap().to_rgba8();
    assert_eq!(
        a.as_raw(),
        b.as_raw(),
        "the PNG's recipe must repeat its image"
    );
    // A PNG without a recipe is refused clearly.
    let plain = env.dir.path().join("plain.png");
    image::RgbImage::new(4, 4).save(&plain).unwrap();
    let o = env.run(&["run", plain.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("carries no recipe"), "{}", stderr(&o));
}

/// A diffusion recipe's PNG carries A1111 "parameters" that A1111-style readers parse back.
#[test]
fn sd_output_carries_a1111_parameters() {
    let env = Env::new();
    let sd = repo().join("tests/fixtures/sd");
    let graph = format!(
        r#"{{"format": "defect-studio/graph", "version": 1,
            "nodes": {{
                "ckpt": {{"kind": "LoadCheckpoint", "version": 1, "params": {{"checkpoint": {model:?}}}}},
                "a": {{"kind": "LoraLoader", "version": 1, "params": {{"lora": {lora:?}, "strength": 0.7, "text_strength": 0.7}}}},
                "gen": {{"kind": "Txt2Img", "version": 1, "params": {{
                    "prompt": "a dent", "negative": "blurry", "width": 64, "height": 64,
                    "steps": 3, "cfg": 6.0, "scheduler": "euler_a"}}}},
                "save": {{"kind": "SaveImage", "version": 1, "params": {{"filename": "x.png"}}}}
            }},
            "links": [
                {{"from": ["ckpt", "model"], "to": ["a", "model"]}},
                {{"from": ["a", "model"], "to": ["gen", "model"]}},
                {{"from": ["gen", "image"], "to": ["save", "image"]}}
            ]}}"#,
        model = sd.join("models/sd15").display().to_string(),
        lora = sd.join("lora/kohya_a.safetensors").display().to_string(),
    );
    let g = env.write("sd.json", &graph);
    let o = env.run(&[
        "run",
        g.to_str().unwrap(),
        "--seed",
        "77",
        "--out",
        env.out().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let chunks = text_chunks(&env.out().join("x.png"));
    let params = &chunks
        .iter()
        .find(|(k, _)| k == "parameters")
        .expect("parameters")
        .1;
    let p = engine::interop::a1111::parse_parameters(params).unwrap();
    assert_eq!(p.prompt, "a dent");
    assert_eq!(p.negative.as_deref(), Some("blurry"));
    assert_eq!(
        (p.steps, p.cfg_scale, p.seed),
        (Some(3), Some(6.0), Some(77))
    );
    assert_eq!(p.sampler.as_deref(), Some("Euler a"));
    assert_eq!(p.size, Some((64, 64)));
    assert_eq!(p.model.as_deref(), Some("sd15"));
    assert_eq!(p.loras.len(), 1);
    assert_eq!(
        (p.loras[0].name.as_str(), p.loras[0].unet),
        ("kohya_a", 0.7)
    );
}

#[test]
fn import_comfy_writes_a_valid_recipe_and_lists_what_it_dropped() {
    let env = Env::new();
    let data = repo().join("tests/fixtures/interop");
    let out = env.dir.path().join("g.json");
    let o = env.run(&[
        "import-comfy",
        data.join("txt2img_api.json").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc = nodes::GraphDoc::from_json(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let kinds: Vec<&str> = doc.nodes.values().map(|n| n.kind.as_str()).collect();
    for k in ["LoadCheckpoint", "Txt2Img", "SaveImage"] {
        assert!(kinds.contains(&k), "{kinds:?}");
    }
    nodes::validate(&doc, &nodes::Catalogue::builtin()).unwrap();
    // Through the CLI, `validate` also checks that the files it names exist: the workflow's
    // checkpoint is not installed here, and is named as one.
    let o = env.run(&["validate", out.to_str().unwrap()]);
    assert_clean_failure(
        &o,
        &[
            "1 missing file(s)",
            "checkpoint \"",
            "LoadCheckpoint.checkpoint",
        ],
    );
    let o = env.run(&[
        "import-comfy",
        data.join("controlnet_api.json").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("ControlNetApply"), "{}", stdout(&o));
    // Not JSON at all: one clear error naming the file.
    let junk = env.write("junk.json", "{ not json");
    let o = env.run(&[
        "import-comfy",
        junk.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("junk.json"), "{}", stderr(&o));
}

/// Inputs over 256 KB are referenced by hash in output PNGs (kept in the data folder's
/// `assets/`), unless `--embed-assets`; another machine gets a clear error naming the asset.
#[test]
fn large_assets_are_referenced_not_leaked() {
    let env = Env::new();
    // A noisy 400×400 photo: its PNG is well over 256 KB.
    let mut state = 7u32;
    let photo = image::RgbImage::from_fn(400, 400, |_, _| {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
        let b = state.to_le_bytes();
        image::Rgb([b[1], b[2], b[3]])
    });
    let mut png = Vec::new();
    photo
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    assert!(png.len() > 256 * 1024);
    let sha = sha256(&png);
    let b64 = engine::hashing::encode_base64(&png);
    let graph = format!(
        r#"{{"format": "defect-studio/graph", "version": 1,
            "nodes": {{
                "photo": {{"kind": "LoadImage", "version": 1, "params": {{"source": "asset:{sha}"}}}},
                "save": {{"kind": "SaveImage", "version": 1, "params": {{"filename": "p.png"}}}}
            }},
            "links": [{{"from": ["photo", "image"], "to": ["save", "image"]}}],
            "assets": {{"{sha}": {{"mime": "image/png", "data_base64": "{b64}"}}}}}}"#
    );
    let g = env.write("big.json", &graph);
    let o = env.run(&[
        "run",
        g.to_str().unwrap(),
        "--out",
        env.out().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out_png = env.out().join("p.png");
    let chunk = text_chunks(&out_png)
        .into_iter()
        .find(|(k, _)| k == "defect-studio/graph")
        .unwrap()
        .1;
    let doc = nodes::GraphDoc::from_json(&chunk).unwrap();
    let asset = &doc.assets[&sha];
    assert!(
        asset.external && asset.data_base64.is_empty(),
        "the photo leaked into the PNG"
    );
    assert_eq!(asset.size, Some(png.len() as u64));
    assert!(std::fs::metadata(&out_png).unwrap().len() < png.len() as u64 + 200_000);
    // On this machine the recipe still runs (the asset is kept by hash).
    let again = env.dir.path().join("again");
    let o = env.run(&[
        "run",
        out_png.to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Elsewhere (another data folder) it fails clearly, naming the asset.
    let other = Env::new();
    let o = other.run(&[
        "run",
        out_png.to_str().unwrap(),
        "--out",
        other.out().to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(&sha) && stderr(&o).contains("left out"),
        "{}",
        stderr(&o)
    );
    // Opting in embeds it.
    let emb = env.dir.path().join("emb");
    let o = env.run(&[
        "run",
        g.to_str().unwrap(),
        "--embed-assets",
        "--out",
        emb.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let chunk = text_chunks(&emb.join("p.png"))
        .into_iter()
        .find(|(k, _)| k == "defect-studio/graph")
        .unwrap()
        .1;
    let doc = nodes::GraphDoc::from_json(&chunk).unwrap();
    assert!(!doc.assets[&sha].external && doc.assets[&sha].data_base64 == b64);
}
