//! `import FILE --out recipe.json` for every source kind (our PNG and recipe, A1111 PNG and
//! infotext, ComfyUI API/UI JSON and PNG), told apart by content: one report format for all
//! (each node once), the recipe written when anything usable came over, one clear error line
//! when nothing did. `import-comfy` is an alias.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use engine::interop::png_meta::{
    embed_graph, embed_text_chunks, A1111_KEYWORD, COMFY_PROMPT_KEYWORD, COMFY_WORKFLOW_KEYWORD,
};
use nodes::{GraphDoc, ParamValue, SeedValue};

const INFOTEXT: &str = "a scratch on brushed steel, macro photo\n\
                        Negative prompt: blurry, lowres\n\
                        Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 42, \
                        Size: 512x512, Model: sd15";

fn comfy_real(name: &str) -> PathBuf {
    repo().join("tests/fixtures/interop/comfy-real").join(name)
}

/// A small PNG image's bytes.
fn png() -> Vec<u8> {
    let img = image::RgbImage::from_pixel(8, 8, image::Rgb([120, 130, 140]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// Runs `import` (or `alias`) on `file`, returning the output and the recipe if written.
fn import(env: &Env, cmd: &str, file: &Path) -> (std::process::Output, Option<GraphDoc>) {
    let out = env.dir.path().join("imported.json");
    let _ = std::fs::remove_file(&out);
    let o = env.run(&[cmd, file.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    let doc = std::fs::read_to_string(&out)
        .ok()
        .map(|t| GraphDoc::from_json(&t).unwrap());
    (o, doc)
}

/// The report lines naming a node: `  ID KIND…` under a section heading.
fn report_lines(o: &std::process::Output) -> Vec<String> {
    stdout(o)
        .lines()
        .filter(|l| l.starts_with("  "))
        .map(|l| l.trim_start().to_string())
        .collect()
}

/// Every id appears on exactly one report line.
fn each_once(o: &std::process::Output, ids: &[&str]) {
    let lines = report_lines(o);
    for id in ids {
        let n = lines
            .iter()
            .filter(|l| l.split(' ').next() == Some(*id))
            .count();
        assert_eq!(n, 1, "node {id} in:\n{}", stdout(o));
    }
}

fn kinds(doc: &GraphDoc) -> Vec<&str> {
    let mut k: Vec<&str> = doc.nodes.values().map(|n| n.kind.as_str()).collect();
    k.sort();
    k
}

#[test]
fn our_recipe_png_and_json_import_as_they_are() {
    let env = Env::new();
    let recipe = example("cracks-on-concrete.json");
    let doc = GraphDoc::from_json(&std::fs::read_to_string(&recipe).unwrap()).unwrap();
    let ids: Vec<&str> = doc.nodes.keys().map(String::as_str).collect();

    let png_path = env.dir.path().join("output.png");
    std::fs::write(&png_path, embed_graph(&png(), &doc, true).unwrap()).unwrap();
    let (o, got) = import(&env, "import", &png_path);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("defect-studio PNG"), "{}", stdout(&o));
    assert_eq!(got.unwrap().nodes, doc.nodes);
    each_once(&o, &ids);
    assert!(stdout(&o).contains(&format!("imported ({})", ids.len())));

    let (o, got) = import(&env, "import", &recipe);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("defect-studio recipe"),
        "{}",
        stdout(&o)
    );
    assert_eq!(got.unwrap().nodes, doc.nodes);
}

#[test]
fn a1111_png_and_infotext_import_the_same_recipe() {
    let env = Env::new();
    let png_path = env.dir.path().join("a1111.png");
    let bytes = embed_text_chunks(&png(), &[(A1111_KEYWORD, INFOTEXT)], false).unwrap();
    std::fs::write(&png_path, bytes).unwrap();
    let (o, from_png) = import(&env, "import", &png_path);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("A1111/Forge PNG"), "{}", stdout(&o));
    let from_png = from_png.unwrap();

    let txt = env.write("params.txt", INFOTEXT);
    let (o, from_txt) = import(&env, "import", &txt);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("A1111/Forge infotext"),
        "{}",
        stdout(&o)
    );
    let from_txt = from_txt.unwrap();
    assert_eq!(from_png.nodes, from_txt.nodes);

    let sampler = from_txt
        .nodes
        .values()
        .find(|n| n.kind == "Txt2Img")
        .expect("a Txt2Img");
    assert_eq!(
        sampler.params["seed"],
        ParamValue::Seed(SeedValue::Fixed { value: 42 })
    );
    assert_eq!(sampler.params["steps"], ParamValue::Int(20));
    assert_eq!(
        sampler.params["prompt"],
        ParamValue::Text("a scratch on brushed steel, macro photo".into())
    );
    assert!(stdout(&o).contains("wrote "), "{}", stdout(&o));
    // Each setting once, in the same report form as the other sources.
    each_once(
        &o,
        &[
            "prompt", "Negative", "Steps", "Sampler", "CFG", "Seed", "Size", "Model",
        ],
    );
    assert!(
        stdout(&o).contains("  Seed 42 → txt2img (Txt2Img)"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn comfy_api_and_ui_json_import_with_one_report() {
    let env = Env::new();
    // UI format, PrimitiveNode prompts, SDXL base + refiner.
    let (o, doc) = import(
        &env,
        "import",
        &comfy_real("ui_sdxl_refiner_primitives.json"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("ComfyUI workflow (UI format)"),
        "{}",
        stdout(&o)
    );
    let doc = doc.unwrap();
    assert_eq!(
        kinds(&doc),
        [
            "Img2Img",
            "LoadCheckpoint",
            "LoadCheckpoint",
            "SaveImage",
            "Txt2Img"
        ]
    );
    each_once(
        &o,
        &[
            "1", "3", "6", "7", "17", "18", "19", "20", "21", "22", "23", "24", "25", "26", "29",
            "30", "31", "32", "33", "34", "35", "36", "37", "38",
        ],
    );
    assert!(stdout(&o).contains("not imported (7):"), "{}", stdout(&o));
    // The recipe is valid; validate names both missing checkpoints in one line.
    let o = env.run(&[
        "validate",
        env.dir.path().join("imported.json").to_str().unwrap(),
    ]);
    assert_clean_failure(
        &o,
        &[
            "sd_xl_base_1.0.safetensors",
            "sd_xl_refiner_1.0.safetensors",
        ],
    );

    // API format through the old name.
    let (o, doc) = import(
        &env,
        "import-comfy",
        &comfy_real("api_string_primitives_denoise.json"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("ComfyUI workflow (API format)"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        kinds(&doc.unwrap()),
        ["LoadCheckpoint", "SaveImage", "Txt2Img"]
    );
    each_once(
        &o,
        &["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "12"],
    );
}

#[test]
fn comfy_png_imports_its_prompt_chunk() {
    let env = Env::new();
    let api = std::fs::read_to_string(comfy_real("api_string_primitives_denoise.json")).unwrap();
    let ui = std::fs::read_to_string(comfy_real("ui_img2img_examples.json")).unwrap();
    let with_prompt = embed_text_chunks(
        &png(),
        &[(COMFY_PROMPT_KEYWORD, &api), (COMFY_WORKFLOW_KEYWORD, &ui)],
        false,
    )
    .unwrap();
    // Named .dat: the content decides.
    let p = env.dir.path().join("comfy.dat");
    std::fs::write(&p, with_prompt).unwrap();
    let (o, doc) = import(&env, "import", &p);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("ComfyUI PNG (prompt chunk)"),
        "{}",
        stdout(&o)
    );
    assert!(doc.unwrap().nodes.contains_key("5"));

    let only_workflow = embed_text_chunks(&png(), &[(COMFY_WORKFLOW_KEYWORD, &ui)], false).unwrap();
    let p = env.dir.path().join("workflow.png");
    std::fs::write(&p, only_workflow).unwrap();
    let (o, doc) = import(&env, "import", &p);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("ComfyUI PNG (workflow chunk)"),
        "{}",
        stdout(&o)
    );
    assert_eq!(doc.unwrap().nodes["16"].kind, "Img2Img");
}

#[test]
fn a_partial_import_writes_the_recipe_and_lists_each_node_once() {
    let env = Env::new();
    let (o, doc) = import(
        &env,
        "import",
        &comfy_real("api_lora_vae_dual_sampler.json"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let doc = doc.expect("the recipe is written");
    assert_eq!(
        kinds(&doc),
        ["LoadCheckpoint", "LoraLoader", "LoraLoader", "Txt2Img"]
    );
    let all = [
        "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "17",
    ];
    each_once(&o, &all);
    assert_eq!(report_lines(&o).len(), all.len(), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(
        out.contains("  1 SaveImage: its image comes from VAEDecode 3, which is not imported"),
        "{out}"
    );
    assert!(out.contains("not imported (6):"), "{out}");
    assert!(!out.contains("not valid"), "{out}");
    // A ComfyUI JSON named .txt is still read as a workflow.
    let renamed = env.write(
        "workflow.txt",
        &std::fs::read_to_string(comfy_real("api_lora_vae_dual_sampler.json")).unwrap(),
    );
    let (o, doc) = import(&env, "import", &renamed);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(doc.unwrap().nodes.len(), 4);
}

#[test]
fn importing_nothing_usable_is_one_clear_error_and_writes_nothing() {
    let env = Env::new();
    for f in [
        "api_clip_skip_custom_latent.json",
        "api_flux_sampler_custom_advanced.json",
    ] {
        let (o, doc) = import(&env, "import", &comfy_real(f));
        assert_clean_failure(&o, &[f, "nothing usable to import"]);
        assert!(doc.is_none(), "{f}: a recipe was written");
        // The report still says what each node was.
        assert!(stdout(&o).contains("not imported ("), "{}", stdout(&o));
    }
    // An API file with no importable node at all.
    let empty = env.write(
        "custom.json",
        r#"{"1": {"class_type": "SomeCustomNode", "inputs": {}}}"#,
    );
    let (o, doc) = import(&env, "import", &empty);
    assert_clean_failure(&o, &["custom.json", "nothing usable"]);
    assert!(doc.is_none());
    // Not a recipe of any kind.
    let junk = env.write("notes.md", "# some notes\nnothing here");
    let (o, _) = import(&env, "import", &junk);
    assert_clean_failure(&o, &["notes.md", "not a recipe"]);
    let no_recipe = env.dir.path().join("plain.png");
    std::fs::write(&no_recipe, png()).unwrap();
    let (o, _) = import(&env, "import", &no_recipe);
    assert_clean_failure(&o, &["plain.png", "carries no recipe"]);
}

/// ComfyUI's subfolder names (`StableDiffusion\…` with backslashes) and a `.ckpt` VAE are found
/// by `validate` in the model folders as `models list` shows them: missing first, then found.
#[test]
fn imported_subfolder_and_ckpt_names_resolve_in_the_model_folders() {
    let env = Env::new();
    let (o, _) = import(
        &env,
        "import",
        &comfy_real("api_string_primitives_denoise.json"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let recipe = env.dir.path().join("imported.json");
    let o = env.run(&["validate", recipe.to_str().unwrap()]);
    assert_clean_failure(&o, &["cyberrealistic_v33", "vae-ft-mse-840000-ema-pruned"]);

    let models = env.home().join("models");
    let tiny = |path: PathBuf| {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let header = r#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend(header.as_bytes());
        bytes.extend([0u8; 4]);
        std::fs::write(path, bytes).unwrap();
    };
    tiny(models.join("StableDiffusion/Originals/sd1.5/cyberrealistic_v33.safetensors"));
    tiny(models.join("vae/vae-ft-mse-840000-ema-pruned.safetensors"));
    let o = env.run(&["validate", recipe.to_str().unwrap()]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
}
