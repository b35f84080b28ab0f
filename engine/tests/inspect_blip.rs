//! engine::inspect::blip against transformers 5 on the tiny random-weight BLIP that
//! `tests/fixtures/inspect/blip/make_blip_fixtures.py` builds: greedy captions token for token
//! (unconditional and prompted, `tokenizer.json` or `vocab.txt`, tied or explicit LM-head
//! names), the processor's pixel values, Pillow's bicubic resize at BLIP's 384², and the
//! errors for a missing or incomplete model folder.

use std::path::{Path, PathBuf};

use candle_core::Device;
use engine::inspect::blip::{self, folder, CaptionParams, Captioner};
use engine::models::efficientnet::resize::{pillow_resize, PillowFilter};
use engine::models::manager::ModelManager;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn dir() -> PathBuf {
    repo().join("tests/fixtures/inspect/blip")
}

fn model_dir() -> PathBuf {
    dir().join("tiny-blip")
}

fn expected() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir().join("expected.json")).unwrap()).unwrap()
}

/// (name, image, expected entry), in the fixture's order.
fn cases() -> Vec<(String, image::RgbImage, serde_json::Value)> {
    let exp = expected();
    let mut out = Vec::new();
    for name in ["coffee", "chelsea", "init"] {
        let e = exp["images"][name].clone();
        let img = image::open(repo().join(e["file"].as_str().unwrap()))
            .unwrap()
            .to_rgb8();
        out.push((name.to_string(), img, e));
    }
    out
}

/// transformers' row without the padding after `[SEP]` (pad id 0, which never follows a
/// generated token otherwise: the fixture pushes special tokens down).
fn ids(v: &serde_json::Value) -> Vec<u32> {
    let mut ids: Vec<u32> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect();
    while ids.len() > 1 && ids.last() == Some(&0) {
        ids.pop();
    }
    ids
}

fn prompted() -> CaptionParams {
    CaptionParams {
        prompt: Some(expected()["prompt"].as_str().unwrap().to_string()),
        ..Default::default()
    }
}

/// Checks every image's ids and captions, unconditional and prompted, and the batch call.
fn assert_matches_transformers(c: &Captioner) {
    let cases = cases();
    let images: Vec<image::RgbImage> = cases.iter().map(|(_, i, _)| i.clone()).collect();
    let got = c.generate_ids(&images, &CaptionParams::default()).unwrap();
    let got_p = c.generate_ids(&images, &prompted()).unwrap();
    let caps = c.caption(&images).unwrap();
    let caps_p = c.caption_with(&images, &prompted()).unwrap();
    for (i, (name, _, e)) in cases.iter().enumerate() {
        assert_eq!(got[i], ids(&e["ids"]), "{name}: token ids");
        assert_eq!(
            got_p[i],
            ids(&e["prompt_ids"]),
            "{name}: prompted token ids"
        );
        assert_eq!(caps[i], e["caption"].as_str().unwrap(), "{name}: caption");
        assert_eq!(
            caps_p[i],
            e["prompt_caption"].as_str().unwrap(),
            "{name}: prompted caption"
        );
    }
}

#[test]
fn greedy_captions_equal_transformers_token_for_token() {
    let exp = expected();
    assert_eq!(exp["max_length"], blip::DEFAULT_MAX_LENGTH);
    // The fixture is only useful if the captions vary and some end early at [SEP].
    let cases = cases();
    let sep = 3;
    let rows: Vec<Vec<u32>> = cases.iter().map(|(_, _, e)| ids(&e["ids"])).collect();
    assert!(rows.iter().any(|r| r.last() == Some(&sep)));
    assert!(rows.iter().any(|r| r.len() == blip::DEFAULT_MAX_LENGTH));
    assert_ne!(rows[0], rows[1]);
    let c = Captioner::load(&model_dir(), &Device::Cpu).unwrap();
    assert_matches_transformers(&c);
}

#[test]
fn pixel_values_equal_the_image_processor() {
    let c = Captioner::load(&model_dir(), &Device::Cpu).unwrap();
    for (name, img, _) in cases() {
        let bytes = std::fs::read(dir().join(format!("pixels_{name}.npy"))).unwrap();
        let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
        assert_eq!(npy.shape(), &[3, 96, 96], "{name}");
        let want: Vec<f32> = npy.into_vec().unwrap();
        let got = c.processor().pixels(&img);
        assert_eq!(got.len(), want.len());
        let err = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(err <= 1e-5, "{name}: max error {err}");
    }
}

#[test]
fn bicubic_resize_to_384_equals_pillow_bit_for_bit() {
    for (name, img, _) in cases() {
        let want = image::open(dir().join(format!("resize384_{name}.png")))
            .unwrap()
            .to_rgb8();
        let got = pillow_resize(&img, 384, 384, PillowFilter::Bicubic);
        let differ = got
            .as_raw()
            .iter()
            .zip(want.as_raw())
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(differ, 0, "{name}: {differ} values differ from Pillow");
    }
}

/// A copy of the tiny model folder in a temporary folder, to alter.
fn copy_model() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(model_dir()).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, tmp.path().join(p.file_name().unwrap())).unwrap();
    }
    tmp
}

#[test]
fn vocab_txt_alone_gives_the_same_captions() {
    let tmp = copy_model();
    std::fs::remove_file(tmp.path().join("tokenizer.json")).unwrap();
    let c = Captioner::load(tmp.path(), &Device::Cpu).unwrap();
    assert_matches_transformers(&c);
}

/// Rewrites the copy's weights with `edit` and its config.json with `config`.
fn rewrite(
    tmp: &Path,
    edit: impl FnOnce(&mut std::collections::HashMap<String, candle_core::Tensor>),
    config: impl FnOnce(&mut serde_json::Value),
) {
    let w = tmp.join("model.safetensors");
    let mut t = candle_core::safetensors::load(&w, &Device::Cpu).unwrap();
    edit(&mut t);
    candle_core::safetensors::save(&t, &w).unwrap();
    let c = tmp.join("config.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&c).unwrap()).unwrap();
    config(&mut v);
    std::fs::write(&c, serde_json::to_vec(&v).unwrap()).unwrap();
}

#[test]
fn older_lm_head_names_and_untied_heads_load() {
    // A checkpoint that saved the bias as `decoder.bias` and the decoder weight explicitly,
    // untied: the same network, the same captions.
    let tmp = copy_model();
    rewrite(
        tmp.path(),
        |t| {
            let b = t.remove("text_decoder.cls.predictions.bias").unwrap();
            t.insert("text_decoder.cls.predictions.decoder.bias".into(), b);
            let e = t["text_decoder.bert.embeddings.word_embeddings.weight"].clone();
            t.insert("text_decoder.cls.predictions.decoder.weight".into(), e);
        },
        |c| {
            c["tie_word_embeddings"] = false.into();
            c["text_config"]["tie_word_embeddings"] = false.into();
        },
    );
    let c = Captioner::load(tmp.path(), &Device::Cpu).unwrap();
    assert_matches_transformers(&c);

    // Untied without the decoder weight: an error naming the tensor, not a silent tie.
    let tmp = copy_model();
    rewrite(
        tmp.path(),
        |_| {},
        |c| c["text_config"]["tie_word_embeddings"] = false.into(),
    );
    let err = Captioner::load(tmp.path(), &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("cls.predictions.decoder.weight"), "{err}");
}

#[test]
fn a_missing_model_is_reported_with_where_it_was_looked_for() {
    let models = tempfile::tempdir().unwrap();
    let manager = ModelManager::new(
        vec![models.path().to_path_buf()],
        models.path().join("hashes.json"),
    );
    let err = folder::locate_in(&manager, "blip-image-captioning-base").unwrap_err();
    assert!(
        err.contains("\"blip-image-captioning-base\" not found"),
        "{err}"
    );
    assert!(err.contains(&models.path().display().to_string()), "{err}");
    assert!(err.contains("model.safetensors"), "{err}");
    assert_eq!(
        folder::locate_in(&manager, "  ").unwrap_err(),
        "no BLIP model chosen"
    );

    // By name, one level down in a model folder (any case); by the folder's path; by its
    // model.safetensors.
    let nested = models.path().join("captioning/Tiny-BLIP");
    std::fs::create_dir_all(&nested).unwrap();
    for e in std::fs::read_dir(model_dir()).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, nested.join(p.file_name().unwrap())).unwrap();
    }
    assert_eq!(folder::locate_in(&manager, "tiny-blip").unwrap(), nested);
    assert_eq!(
        folder::locate_in(&manager, "captioning/Tiny-BLIP").unwrap(),
        nested
    );
    let file = nested.join("model.safetensors");
    assert_eq!(
        folder::locate_in(&manager, file.to_str().unwrap()).unwrap(),
        nested
    );
}

#[test]
fn an_incomplete_folder_lists_everything_missing() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(
        model_dir().join("config.json"),
        tmp.path().join("config.json"),
    )
    .unwrap();
    let err = Captioner::load(tmp.path(), &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains(&tmp.path().display().to_string()), "{err}");
    assert!(err.contains("is incomplete"), "{err}");
    for missing in [
        "model.safetensors",
        "tokenizer.json or vocab.txt",
        "preprocessor_config.json",
    ] {
        assert!(err.contains(missing), "{missing} not in: {err}");
    }
    assert!(!err.contains("config.json,"), "{err}");
    // The same message before a run (locate), and for a folder that does not exist.
    let by_path = folder::locate(tmp.path().to_str().unwrap()).unwrap_err();
    assert!(by_path.contains("is incomplete"), "{by_path}");
    let gone = Captioner::load(&tmp.path().join("nope"), &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(gone.contains("does not exist"), "{gone}");
}

#[test]
fn a_folder_that_is_not_blip_is_named() {
    // Weights without BLIP's vision tower: the file and the tensor are named.
    let tmp = copy_model();
    rewrite(
        tmp.path(),
        |t| {
            t.remove("vision_model.embeddings.patch_embedding.weight");
        },
        |_| {},
    );
    let err = Captioner::load(tmp.path(), &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("model.safetensors"), "{err}");
    assert!(err.contains("patch_embedding"), "{err}");
}
