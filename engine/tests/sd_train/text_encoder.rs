//! Text-encoder LoRA training on the tiny SD 1.5 and SDXL models: the text embeddings change
//! and equal the trainer's own merged encoders through `lora::apply`, runs are deterministic
//! and resumable, and diffusers applies every module of the files our trainer wrote
//! (`tests/fixtures/sd/train/`, made by `make_train_fixtures.py`).

use std::path::Path;

use candle_core::Tensor;
use engine::sd::lora::{apply, LoraSpec};
use engine::sd::train::{train_lora, Progress, RunOptions, TrainConfig};

use super::sd_common::*;
use super::{config, data_dir, make_images, max_diff, tensors, train_until_cancelled};

/// `config(steps)` with the text encoder(s) trained at their own learning rate.
fn te_config(steps: usize) -> TrainConfig {
    TrainConfig {
        train_text_encoder: true,
        text_encoder_lr: Some(5e-3),
        ..config(steps)
    }
}

/// The prompt embeddings (and SDXL's pooled embedding) of `prompt` with `m`'s encoders, as the
/// pipelines compute them.
fn prompt_embeds(m: &engine::sd::model::SdModel, prompt: &str) -> (Tensor, Option<Tensor>) {
    use engine::sd::clip::text_model::{encode_sd, encode_sdxl};
    let te = &m.text_encoder;
    match &m.text_encoder_2 {
        Some(te2) => {
            let (e, p) = encode_sdxl(
                &te.model,
                &te.tokenizer,
                &te2.model,
                &te2.tokenizer,
                prompt,
                false,
            )
            .unwrap();
            (e, Some(p))
        }
        None => (
            encode_sd(&te.model, &te.tokenizer, prompt, 1, false).unwrap(),
            None,
        ),
    }
}

/// max |a − b| / max |b|.
fn rel_diff(a: &Tensor, b: &Tensor) -> f32 {
    max_abs(&(a - b).unwrap()) / max_abs(b)
}

/// A short text-encoder training run on `model_name`: the file holds the UNet and text-encoder
/// modules under kohya's names (every trained factor moved), with kohya's metadata; the same
/// seed gives the same bytes; a run stopped at step 2 and resumed equals the uninterrupted
/// one; and `lora::apply` of the file gives the training prompt's embeddings of the trainer's
/// own merged encoders, clearly different from the base model's.
fn text_encoder_training(model_name: &str, te_prefixes: &[(&str, usize)]) {
    let data = data_dir();
    let dir = tempfile::tempdir().unwrap();
    let m = model(model_name);
    let prompt = "a defect stripe, colour 2";
    let steps = 4;
    let opts = |out: &Path, save_every| RunOptions {
        out: out.to_path_buf(),
        checkpoint: None,
        save_every,
        resume: true,
    };
    let full = dir.path().join("full.safetensors");
    let mut trainer_embeds = None;
    let mut text_lrs = Vec::new();
    let t0 = std::time::Instant::now();
    let s = train_lora(
        &m,
        te_config(steps),
        data.path(),
        &opts(&full, 0),
        &mut |p| {
            if let Progress::Step { trainer, info, .. } = p {
                text_lrs.push(info.text_lr);
                if info.step == info.total {
                    trainer_embeds = Some(prompt_embeds(&trainer.merged_model()?, prompt));
                }
            }
            Ok(())
        },
    )
    .unwrap();
    eprintln!(
        "{model_name}: {} modules ({} steps, text encoder trained) in {:.2} s",
        s.modules,
        steps,
        t0.elapsed().as_secs_f64()
    );
    // Warm-up 2 over the text encoder's own rate.
    assert_eq!(text_lrs[0], Some(5e-3 / 3.0));
    assert_eq!(text_lrs[3], Some(5e-3));

    let t = tensors(&full);
    for (prefix, modules) in te_prefixes {
        let downs: Vec<&String> = t
            .keys()
            .filter(|k| k.starts_with(&format!("{prefix}_text_model_encoder_layers_")))
            .filter(|k| k.ends_with(".lora_down.weight"))
            .collect();
        assert_eq!(downs.len(), *modules, "{prefix} modules");
        for k in downs {
            let base = k.trim_end_matches(".lora_down.weight");
            assert!(t.contains_key(&format!("{base}.alpha")), "{base}.alpha");
        }
    }
    let unet_modules = t
        .keys()
        .filter(|k| k.starts_with("lora_unet_") && k.ends_with(".lora_down.weight"))
        .count();
    let te_modules: usize = te_prefixes.iter().map(|(_, n)| n).sum();
    assert_eq!(s.modules, unet_modules + te_modules);
    assert_eq!(s.text_modules, te_modules);
    let file = engine::sd::lora::read(&full).unwrap();
    assert_eq!(file.metadata["ss_network_train_unet_only"], "False");
    assert_eq!(file.metadata["ss_text_encoder_lr"], "0.005");
    assert_eq!(file.metadata["ss_unet_lr"], "0.01");

    // Same seed, same bytes.
    let again = dir.path().join("again.safetensors");
    train_lora(
        &m,
        te_config(steps),
        data.path(),
        &opts(&again, 0),
        &mut |_| Ok(()),
    )
    .unwrap();
    assert_eq!(
        max_diff(&t, &tensors(&again)),
        0.0,
        "same seed, other weights"
    );

    // Stopped at step 2, resumed: the uninterrupted run's weights.
    let part = dir.path().join("part.safetensors");
    train_until_cancelled(&m, te_config(steps), data.path(), &opts(&part, 2), 2);
    let ckpt = tensors(&opts(&part, 2).checkpoint_path());
    assert!(
        ckpt.keys()
            .any(|k| k.starts_with("optimizer.m.lora_te") && k.ends_with("lora_up.weight")),
        "the checkpoint holds the text-encoder moments"
    );
    let r = train_lora(
        &m,
        te_config(steps),
        data.path(),
        &opts(&part, 2),
        &mut |_| Ok(()),
    )
    .unwrap();
    assert_eq!((r.resumed_from, r.steps), (2, steps));
    let d = max_diff(&t, &tensors(&part));
    assert!(d <= 1e-6, "resumed run differs by {d}");
    // A UNet-only checkpoint does not resume a text-encoder run.
    let unet_only = train_lora(
        &m,
        TrainConfig {
            train_text_encoder: false,
            ..te_config(steps)
        },
        data.path(),
        &opts(&part, 2),
        &mut |_| Ok(()),
    );
    assert!(unet_only.is_err());

    // The file, applied by the LoRA loader, gives the trainer's own text embeddings.
    let spec = LoraSpec {
        path: full.clone(),
        unet: 1.0,
        text: 1.0,
    };
    let (merged, reports) = apply(&m, &[spec]).unwrap();
    assert!(reports[0].unmatched.is_empty(), "{}", reports[0].summary());
    assert_eq!(
        reports[0].text_modules,
        te_modules,
        "{}",
        reports[0].summary()
    );
    assert_eq!(reports[0].unet_modules, unet_modules);
    let (base_e, base_p) = prompt_embeds(&m, prompt);
    let (lora_e, lora_p) = prompt_embeds(&merged, prompt);
    let (own_e, own_p) = trainer_embeds.unwrap();
    let changed = rel_diff(&lora_e, &base_e);
    let vs_trainer = rel_diff(&lora_e, &own_e);
    eprintln!(
        "{model_name}: prompt embeddings vs base {changed:.3e} (relative), vs the trainer's {vs_trainer:.1e}"
    );
    assert!(
        changed > 1e-2,
        "the text encoder barely changed: {changed:e}"
    );
    assert!(vs_trainer < 1e-5, "loader vs trainer: {vs_trainer:e}");
    if let (Some(bp), Some(lp), Some(op)) = (base_p, lora_p, own_p) {
        let changed = rel_diff(&lp, &bp);
        eprintln!("{model_name}: pooled embedding vs base {changed:.3e}");
        assert!(
            changed > 1e-2,
            "the pooled embedding barely changed: {changed:e}"
        );
        assert!(rel_diff(&lp, &op) < 1e-5);
    }
}

#[test]
fn sd15_text_encoder_training_changes_the_embeddings_and_resumes() {
    // 3 CLIP layers × (q, k, v, out, fc1, fc2).
    text_encoder_training("sd15", &[("lora_te", 18)]);
}

#[test]
fn sdxl_text_encoder_training_changes_both_encoders_and_resumes() {
    text_encoder_training("sdxl", &[("lora_te1", 18), ("lora_te2", 18)]);
}

/// The settings of the committed text-encoder LoRAs (`train/trained_te_{sd15,sdxl}.safetensors`).
/// The tiny SDXL's image reacts less to its adapters: it trains its feed-forward layers too, at a
/// higher rate, so that its LoRA clearly changes the image (PSNR < 30 dB vs base).
fn committed_te_config(model_name: &str) -> TrainConfig {
    let xl = model_name == "sdxl";
    TrainConfig {
        steps: 8,
        rank: 2,
        alpha: 8.0,
        lr: if xl { 0.1 } else { 3e-2 },
        text_encoder_lr: Some(2e-2),
        train_text_encoder: true,
        targets: engine::sd::train::Targets {
            attention: true,
            feed_forward: xl,
            conv: false,
        },
        warmup: 2,
        batch: 2,
        resolution: 64,
        seed: 13,
        ..TrainConfig::default()
    }
}

/// The text-encoder LoRAs our trainer made and diffusers loaded (`make_train_fixtures.py`):
/// (a) the trainer still writes the committed files (same keys, values within f32 tolerance;
/// `DEFECT_STUDIO_UPDATE_FIXTURES=1` rewrites them, then rerun the script), (b) our LoRA loader
/// gives diffusers' prompt embeddings with them, and (c) diffusers applied every module of each
/// file, text encoders included (no unused key). `sd_lora.rs` checks their cases' images at the
/// three bars.
#[test]
fn committed_text_encoder_loras_are_reproduced_and_match_diffusers() {
    let dir = fixtures().join("train");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json")).unwrap()).unwrap();
    let data_root = tempfile::tempdir().unwrap();
    let data = data_root.path().join("stripes");
    std::fs::create_dir_all(&data).unwrap();
    make_images(&data);
    for (name, model_name, file) in [
        ("te_trained_sd15", "sd15", "trained_te_sd15.safetensors"),
        ("te_trained_sdxl", "sdxl", "trained_te_sdxl.safetensors"),
    ] {
        // (a) The trainer makes the committed file.
        let m = model(model_name);
        let out = data_root.path().join(file);
        let opts = RunOptions {
            out: out.clone(),
            checkpoint: None,
            save_every: 0,
            resume: false,
        };
        train_lora(
            &m,
            committed_te_config(model_name),
            &data,
            &opts,
            &mut |_| Ok(()),
        )
        .unwrap();
        let committed = dir.join(file);
        if std::env::var_os("DEFECT_STUDIO_UPDATE_FIXTURES").is_some() {
            std::fs::copy(&out, &committed).unwrap();
            eprintln!("{file} rewritten: now run make_train_fixtures.py");
            continue;
        }
        let ours = tensors(&committed);
        let d = max_diff(&tensors(&out), &ours);
        eprintln!("{file}: retrained vs committed max diff {d:e}");
        assert!(d <= 1e-5, "the trainer no longer makes {file}: {d:e}");

        // (c) diffusers applied every module of the file.
        let case = doc["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("case {name} in train/cases.json"));
        let count = |prefixes: &[&str]| {
            ours.keys()
                .filter(|k| k.ends_with(".lora_down.weight"))
                .filter(|k| prefixes.iter().any(|p| k.starts_with(p)))
                .count() as u64
        };
        let (unet, te1, te2) = (
            count(&["lora_unet_"]),
            count(&["lora_te_", "lora_te1_"]),
            count(&["lora_te2_"]),
        );
        assert!(te1 > 0);
        assert_eq!(
            case["applied"]["unet"], unet,
            "{name}: diffusers' UNet modules"
        );
        assert_eq!(case["applied"]["text_encoder"], te1, "{name}: text encoder");
        if model_name == "sdxl" {
            assert!(te2 > 0);
            assert_eq!(
                case["applied"]["text_encoder_2"], te2,
                "{name}: text encoder 2"
            );
        }
        assert_eq!(case["unused_modules"], 0, "{name}");
        assert!(case["fused_max_rel_err"].as_f64().unwrap() < 1e-5);

        // (b) Our loader gives diffusers' prompt embeddings with the file.
        let spec = LoraSpec {
            path: committed.clone(),
            unet: 1.0,
            text: 1.0,
        };
        let (merged, reports) = apply(&m, &[spec]).unwrap();
        assert!(reports[0].unmatched.is_empty(), "{}", reports[0].summary());
        assert_eq!(reports[0].text_modules as u64, te1 + te2);
        let refs = tensors(&dir.join(format!("{name}.safetensors")));
        let prompt = case["prompt"].as_str().unwrap();
        let (e, p) = prompt_embeds(&merged, prompt);
        let (base_e, _) = prompt_embeds(&m, prompt);
        let want = &refs["prompt_embeds"];
        let err = rel_diff(&e, want);
        let changed = rel_diff(&base_e, want);
        eprintln!(
            "{name}: prompt embeddings vs diffusers {err:.1e}; base vs diffusers {changed:.2e}"
        );
        assert!(
            err < 1e-5,
            "{name}: prompt embeddings differ from diffusers' by {err:e}"
        );
        assert!(
            changed > 1e-2,
            "{name}: the LoRA barely changes the embeddings"
        );
        if let Some(p) = p {
            let err = rel_diff(&p, &refs["pooled_prompt_embeds"]);
            assert!(err < 1e-5, "{name}: pooled embedding differs by {err:e}");
        }
    }
}
