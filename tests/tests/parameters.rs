//! Every PNG we write carries A1111 `parameters`: procedural `run` outputs (seed, size and a
//! recipe summary), `generate` outputs (sampler settings, `RNG: CPU`, `Lora hashes`).

mod common;

use common::*;
use engine::interop::a1111::{parse_parameters, A1111Params};

/// The text chunks of a PNG by keyword.
fn chunk(png: &std::path::Path, keyword: &str) -> Option<String> {
    let chunks = engine::interop::png_meta::read_text_chunks(&std::fs::read(png).unwrap()).unwrap();
    chunks
        .into_iter()
        .find(|(k, _)| k == keyword)
        .map(|(_, v)| v)
}

/// The parameters of a PNG, read by our parser.
fn parameters(png: &std::path::Path) -> (String, A1111Params) {
    let text = chunk(png, "parameters")
        .unwrap_or_else(|| panic!("{} has no parameters chunk", png.display()));
    let p = parse_parameters(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
    (text, p)
}

fn image_size(png: &std::path::Path) -> (u32, u32) {
    let img = image::open(png).unwrap();
    (img.width(), img.height())
}

#[test]
fn procedural_outputs_carry_seed_size_and_recipe() {
    let env = Env::new();
    let o = env.run(&[
        "run",
        example("scratches-on-brushed-metal.json").to_str().unwrap(),
        "--seed",
        "5",
        "--count",
        "2",
        "--out",
        env.out().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let saved = saved_paths(&o);
    assert!(saved.len() >= 2, "{}", stdout(&o));
    let mut seeds = Vec::new();
    for png in saved
        .iter()
        .filter(|p| !p.to_string_lossy().ends_with("_mask.png"))
    {
        let (text, p) = parameters(png);
        // The seed of the work item, as the embedded recipe records it.
        let graph =
            nodes::GraphDoc::from_json(&chunk(png, "defect-studio/graph").unwrap()).unwrap();
        assert_eq!(p.seed, graph.meta.seed, "{text}");
        assert_eq!(p.size, Some(image_size(png)), "{text}");
        assert_eq!(
            p.extra("Recipe"),
            Some("Texture > Scratch > SaveImage"),
            "{text}"
        );
        assert!(p.extra("Defect studio version").is_some(), "{text}");
        // No sampler, so no sampler keys and no prompt.
        assert!(p.steps.is_none() && p.extra("RNG").is_none(), "{text}");
        assert_eq!(p.prompt, "");
        // One line, at least three pairs: A1111's own parser reads it as parameters.
        assert!(!text.contains('\n') && text.starts_with("Seed: "), "{text}");
        seeds.push(p.seed);
    }
    seeds.dedup();
    assert_eq!(seeds.len(), 2, "each item has its own seed: {seeds:?}");
}

#[test]
fn generate_outputs_carry_rng_cpu_and_lora_hashes() {
    let env = Env::new();
    let sd = repo().join("tests/fixtures/sd");
    let lora = sd.join("lora/kohya_a.safetensors");
    let out = env.dir.path().join("gen.png");
    let o = env.run(&[
        "generate",
        "--model",
        sd.join("models/sd15.safetensors").to_str().unwrap(),
        // The tiny fixture's configs cannot be inferred from its tensors.
        "--config-dir",
        sd.join("models/sd15").to_str().unwrap(),
        "--lora",
        &format!("{}:0.8", lora.display()),
        "--prompt",
        "a dent , steel,",
        "--width",
        "64",
        "--height",
        "64",
        "--steps",
        "2",
        "--seed",
        "77",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (text, p) = parameters(&out);
    assert_eq!(p.prompt, "a dent , steel,", "{text}");
    assert_eq!(
        (p.steps, p.seed, p.size),
        (Some(2), Some(77), Some((64, 64)))
    );
    assert_eq!(p.extra("RNG"), Some("CPU"), "{text}");
    // AutoV2: the first 10 hex digits of the file's sha256, for the checkpoint and the LoRA.
    let autov2 = |f: &std::path::Path| sha256(&std::fs::read(f).unwrap())[..10].to_string();
    assert_eq!(p.model.as_deref(), Some("sd15"));
    assert_eq!(
        p.model_hash,
        Some(autov2(&sd.join("models/sd15.safetensors"))),
        "{text}"
    );
    let autov2 = autov2(&lora);
    assert_eq!(
        p.lora_hashes,
        vec![("kohya_a".to_string(), autov2)],
        "{text}"
    );
    assert_eq!(p.loras.len(), 1);
    assert_eq!(
        (p.loras[0].name.as_str(), p.loras[0].unet),
        ("kohya_a", 0.8)
    );
}
