//! The model manager: scanning, hashes, architecture detection, corrupt files, and resolving a
//! graph's model references by hash (a renamed file is still found; a same-named file with
//! other content is not used).

use std::path::Path;

use engine::models::manager::{read_header, ModelManager};
use nodes::ModelRef;

/// Writes a small safetensors file with the given F32 tensors (all zeros) and metadata.
fn write_st(path: &Path, tensors: &[(&str, &[u64])], meta: &[(&str, &str)]) {
    let mut header = serde_json::Map::new();
    let mut off = 0u64;
    for (name, shape) in tensors {
        let n = shape.iter().product::<u64>() * 4;
        header.insert(
            (*name).into(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [off, off + n]}),
        );
        off += n;
    }
    if !meta.is_empty() {
        header.insert(
            "__metadata__".into(),
            serde_json::Value::Object(
                meta.iter()
                    .map(|(k, v)| ((*k).to_string(), serde_json::Value::from(*v)))
                    .collect(),
            ),
        );
    }
    let json = serde_json::to_vec(&header).unwrap();
    let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
    bytes.extend(json);
    bytes.extend(vec![0u8; off as usize]);
    std::fs::write(path, bytes).unwrap();
}

fn sha(path: &Path) -> String {
    engine::hashing::sha256_hex(&std::fs::read(path).unwrap())
}

#[test]
fn scan_hashes_detects_and_caches() {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    std::fs::create_dir_all(models.join("loras")).unwrap();
    write_st(
        &models.join("isnet-medium.safetensors"),
        &[
            ("conv_in.weight", &[64, 3, 3, 3]),
            ("stage1.rebnconvin.conv_s1.weight", &[64, 64, 3, 3]),
        ],
        &[],
    );
    write_st(
        &models.join("loras/scratch-style.safetensors"),
        &[(
            "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight",
            &[4, 320],
        )],
        &[
            ("ss_base_model_version", "sd_v1"),
            ("ss_resolution", "(512, 512)"),
        ],
    );
    write_st(
        &models.join("sdxl-lora.safetensors"),
        &[(
            "lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_up.weight",
            &[768, 4],
        )],
        &[],
    );
    write_st(
        &models.join("v15.safetensors"),
        &[(
            "model.diffusion_model.input_blocks.0.0.weight",
            &[320, 9, 3, 3],
        )],
        &[],
    );
    write_st(
        &models.join("scratch-style.ckpt.safetensors"),
        &[
            (
                "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight",
                &[320, 4],
            ),
            ("trainer.rng_mt", &[624]),
        ],
        &[],
    );
    std::fs::write(models.join("notes.txt"), "not a model").unwrap();
    let m = ModelManager::new(vec![models.clone()], dir.path().join("hashes.json"));
    let mut hashed = 0;
    let list = m.scan(&mut |_, _, _| hashed += 1).unwrap();
    let arch: Vec<(&str, &str)> = list
        .iter()
        .map(|i| (i.name.as_str(), i.arch.as_str()))
        .collect();
    assert_eq!(
        arch,
        [
            ("isnet-medium.safetensors", "isnet"),
            ("scratch-style.safetensors", "lora-sd1"),
            ("scratch-style.ckpt.safetensors", "lora-training-checkpoint"),
            ("sdxl-lora.safetensors", "lora-sdxl"),
            ("v15.safetensors", "sd1-inpaint")
        ]
    );
    for i in &list {
        assert_eq!(i.sha256, sha(&i.path));
        assert_eq!(i.autov2, &i.sha256[..10]);
    }
    assert_eq!(list[1].metadata["ss_base_model_version"], "sd_v1");
    assert!(hashed >= 5);
    // The second scan reuses the cached hashes: no hashing at all.
    let mut again = 0;
    let list2 = m.scan(&mut |_, _, _| again += 1).unwrap();
    assert_eq!((again, list2), (0, list));
}

#[test]
fn corrupt_and_truncated_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("broken.safetensors");
    write_st(&p, &[("conv_in.weight", &[64, 3, 3, 3])], &[]);
    let full = std::fs::read(&p).unwrap();
    std::fs::write(&p, &full[..full.len() - 100]).unwrap();
    let e = read_header(&p).unwrap_err().to_string();
    assert!(
        e.contains("broken.safetensors") && e.contains("conv_in.weight") && e.contains("outside"),
        "{e}"
    );
    std::fs::write(&p, b"\xff\xff\xff\xff\xff\xff\xff\x7fgarbage").unwrap();
    let e = read_header(&p).unwrap_err().to_string();
    assert!(
        e.contains("broken.safetensors") && e.contains("not a safetensors"),
        "{e}"
    );
    let junk = b"{\"a\": nonsense}";
    std::fs::write(
        &p,
        (junk.len() as u64)
            .to_le_bytes()
            .iter()
            .chain(junk.iter())
            .copied()
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    let e = read_header(&p).unwrap_err().to_string();
    assert!(e.contains("corrupt header"), "{e}");
    // A scan lists it as unreadable instead of failing.
    let m = ModelManager::new(vec![dir.path().to_path_buf()], dir.path().join("h.json"));
    let list = m.scan(&mut |_, _, _| {}).unwrap();
    assert!(list[0].arch.starts_with("unreadable"), "{:?}", list[0].arch);
}

#[test]
fn references_resolve_by_hash_even_when_renamed() {
    let dir = tempfile::tempdir().unwrap();
    write_st(
        &dir.path().join("colleague-name.safetensors"),
        &[
            ("conv_in.weight", &[8, 3, 3, 3]),
            ("stage1.rebnconvin.conv_s1.weight", &[8, 8, 3, 3]),
        ],
        &[],
    );
    let the_sha = sha(&dir.path().join("colleague-name.safetensors"));
    // A file carrying the referenced name but other content.
    write_st(
        &dir.path().join("isnet-medium.safetensors"),
        &[("conv_in.weight", &[4, 3, 3, 3])],
        &[],
    );
    let m = ModelManager::new(vec![dir.path().to_path_buf()], dir.path().join("h.json"));
    let r = ModelRef {
        name: "isnet-medium.safetensors".into(),
        sha256: the_sha.clone(),
        arch: "isnet".into(),
    };
    let found = m.resolve(std::slice::from_ref(&r)).unwrap();
    assert_eq!(
        found[0].1.name, "colleague-name.safetensors",
        "found by hash, not by the same-named impostor"
    );
    // A reference with no matching content is reported, naming the model, its hash and the
    // same-named file that was not used.
    let missing = ModelRef {
        name: "isnet-medium.safetensors".into(),
        sha256: "ab".repeat(32),
        arch: "isnet".into(),
    };
    let other = ModelRef {
        name: "sdxl-base.safetensors".into(),
        sha256: "cd".repeat(32),
        arch: "sdxl".into(),
    };
    let e = m.resolve(&[missing, other]).unwrap_err().to_string();
    assert!(
        e.contains("missing models")
            && e.contains("isnet-medium.safetensors")
            && e.contains("sdxl-base.safetensors")
            && e.contains("exists but its sha256"),
        "{e}"
    );
    // Without a hash, the name is enough.
    let by_name = ModelRef {
        name: "isnet-medium".into(),
        sha256: String::new(),
        arch: String::new(),
    };
    assert_eq!(
        m.resolve(&[by_name]).unwrap()[0].1.name,
        "isnet-medium.safetensors"
    );
}

// ------------------------------------------------ one validator: `models list` = loaders ---

/// A safetensors file from a raw header text and `data_len` data bytes.
fn raw_st(header: &str, data_len: usize) -> Vec<u8> {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header.as_bytes());
    bytes.extend(vec![0u8; data_len]);
    bytes
}

/// Crafted files and the reason each must be refused with (`None`: readable).
fn crafted_cases() -> Vec<(&'static str, Vec<u8>, Option<&'static str>)> {
    let t = |dtype: &str, shape: &str, offs: &str| {
        format!(r#"{{"w":{{"dtype":"{dtype}","shape":{shape},"data_offsets":{offs}}}}}"#)
    };
    vec![
        (
            "valid",
            raw_st(
                r#"{"__metadata__":{"ss_steps":"100"},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"F16","shape":[0,7],"data_offsets":[24,24]},"c":{"dtype":"I64","shape":[1],"data_offsets":[24,32]}}"#,
                32,
            ),
            None,
        ),
        (
            "overflow-2p32-squared",
            raw_st(&t("F32", "[4294967296,4294967296]", "[0,0]"), 0),
            Some("tensor `w`: shape [4294967296, 4294967296] of F32 has a size that overflows"),
        ),
        (
            "overflow-2p62",
            raw_st(&t("F32", "[4611686018427387904]", "[0,0]"), 0),
            Some("tensor `w`: shape [4611686018427387904] of F32 has a size that overflows"),
        ),
        (
            "negative-dim",
            raw_st(&t("F32", "[-1,4]", "[0,0]"), 0),
            Some("tensor `w`: shape has a negative dimension -1"),
        ),
        (
            "fractional-dim",
            raw_st(&t("F32", "[1.5]", "[0,0]"), 0),
            Some("tensor `w`: shape dimension 1.5 is not a non-negative integer"),
        ),
        (
            "overlap",
            raw_st(
                r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                12,
            ),
            Some("tensor `b`: data_offsets [4, 12] overlap tensor `a`'s"),
        ),
        (
            "gap",
            raw_st(&t("F32", "[1]", "[4,8]"), 8),
            Some("tensor `w`: data_offsets [4, 8] leave a gap of 4 bytes"),
        ),
        (
            "trailing",
            raw_st(&t("F32", "[1]", "[0,4]"), 12),
            Some("the data section has 12 bytes but the tensors cover 4"),
        ),
        (
            "reversed",
            raw_st(&t("F32", "[1]", "[4,0]"), 4),
            Some("tensor `w`: data_offsets [4, 0] end before they begin"),
        ),
        (
            "wrong-size",
            raw_st(&t("F32", "[3]", "[0,8]"), 8),
            Some("tensor `w`: data_offsets [0, 8] hold 8 bytes, but shape [3] of F32 needs 12"),
        ),
        (
            "truncated",
            raw_st(&t("F32", "[4]", "[0,16]"), 10),
            Some("tensor `w`: data [0, 16] lies outside the file's 10 data bytes"),
        ),
        (
            "metadata-number",
            raw_st(
                r#"{"__metadata__":{"ss_steps":100},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
                4,
            ),
            Some("`__metadata__` value of `ss_steps` is a number, not a string"),
        ),
        (
            "metadata-array",
            raw_st(r#"{"__metadata__":["x"]}"#, 0),
            Some("`__metadata__` is an array, not an object of strings"),
        ),
        (
            "unknown-dtype",
            raw_st(&t("Q4", "[1]", "[0,1]"), 1),
            Some("tensor `w`: unknown dtype \"Q4\""),
        ),
        (
            "unloadable-dtype",
            raw_st(&t("BOOL", "[4]", "[0,4]"), 4),
            Some("tensor `w`: dtype BOOL cannot be loaded"),
        ),
        (
            "control-name",
            raw_st(
                r#"{"a\nb":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
                4,
            ),
            Some(r"tensor `a\nb`: the name has control characters"),
        ),
        (
            "duplicate-key",
            raw_st(
                r#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
                4,
            ),
            Some("the key `w` appears twice"),
        ),
        ("not-json", raw_st("{nonsense", 0), Some("corrupt header")),
        (
            "header-too-long",
            b"\xff\xff\xff\xff\xff\xff\xff\x7fgarbage".to_vec(),
            Some("not a safetensors file: header length"),
        ),
        (
            "too-short",
            b"abc".to_vec(),
            Some("too short for the 8-byte header length"),
        ),
        (
            "pickle",
            b"\x80\x02\x8a\x0alp\xfc\x9cF\xf9 j\xa8P\x19.\x80\x02M\xe9\x03.".to_vec(),
            Some("this is a PyTorch pickle checkpoint, not safetensors; pickles are refused"),
        ),
        (
            "zip",
            b"PK\x03\x04\x14\x00\x00\x00\x08\x00archive/data.pkl\x80\x02}q\x00.".to_vec(),
            Some("this is a PyTorch zip checkpoint"),
        ),
    ]
}

#[test]
fn models_list_and_every_loader_agree_on_crafted_files() {
    let dir = tempfile::tempdir().unwrap();
    let cases = crafted_cases();
    for (name, bytes, _) in &cases {
        std::fs::write(dir.path().join(format!("{name}.safetensors")), bytes).unwrap();
    }
    let m = ModelManager::new(vec![dir.path().to_path_buf()], dir.path().join("h.json"));
    let list = m.scan(&mut |_, _, _| {}).unwrap();
    assert_eq!(list.len(), cases.len());
    for (name, _, expect) in &cases {
        let path = dir.path().join(format!("{name}.safetensors"));
        let info = list.iter().find(|i| i.path == path).unwrap();
        let loaders: Vec<(&str, Result<(), String>)> = vec![
            (
                "read_header",
                read_header(&path).map(|_| ()).map_err(|e| e.to_string()),
            ),
            (
                "lora",
                engine::sd::lora::read(&path)
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
            ),
            (
                "ldm",
                engine::sd::ldm::open_single_file(&path)
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
            ),
            (
                "checkpoint",
                engine::sd::model::load(&path, &Default::default())
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
            ),
            (
                "isnet",
                engine::models::isnet::IsNet::load(&path, &candle_core::Device::Cpu)
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
            ),
        ];
        match expect {
            None => {
                assert!(
                    !info.arch.starts_with("unreadable"),
                    "{name}: {}",
                    info.arch
                );
                // Readable means loadable, by candle and by the safetensors crate.
                candle_core::safetensors::load(&path, &candle_core::Device::Cpu).unwrap();
                let bytes = std::fs::read(&path).unwrap();
                safetensors::SafeTensors::deserialize(&bytes).unwrap();
                assert_eq!(info.metadata["ss_steps"], "100");
                assert_eq!(info.tensors, 3);
            }
            Some(reason) => {
                let listed = info
                    .arch
                    .strip_prefix("unreadable: ")
                    .unwrap_or_else(|| panic!("{name}: listed as {}", info.arch));
                assert!(listed.contains(reason), "{name}: listed as {listed:?}");
                assert!(!listed.contains('\n'), "{name}: {listed:?}");
                for (loader, r) in &loaders {
                    let e = r.as_ref().expect_err(name);
                    assert!(
                        e.contains(listed),
                        "{name}: {loader} says {e:?}, models list says {listed:?}"
                    );
                    let file = format!("{name}.safetensors");
                    assert_eq!(e.matches(&file).count(), 1, "{name}: {loader}: {e}");
                }
                // The safetensors crate refuses them too (except for what only we refuse:
                // duplicate keys, whose last copy it would keep, dtypes candle cannot load, and
                // control characters in names).
                if !matches!(*name, "duplicate-key" | "unloadable-dtype" | "control-name") {
                    let bytes = std::fs::read(&path).unwrap();
                    assert!(
                        safetensors::SafeTensors::deserialize(&bytes).is_err(),
                        "{name}"
                    );
                }
            }
        }
    }
}

#[test]
fn pickles_are_refused_by_extension_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    for ext in ["ckpt", "pt", "pth", "bin", "pkl"] {
        // The bytes are a valid safetensors file: only the name refuses it.
        let p = dir.path().join(format!("model.{ext}"));
        std::fs::write(&p, &crafted_cases()[0].1).unwrap();
        let e = read_header(&p).unwrap_err().to_string();
        assert!(e.contains("pickle checkpoints") && e.contains(ext), "{e}");
    }
}

// ----------------------------------------------- crafted single-file checkpoints: no panic ---

fn sd15_fixture() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
        .join("../tests/fixtures/sd/models/sd15.safetensors")
}

/// The sd15 fixture checkpoint with `extra` tensors (F32 zeros) appended.
fn sd15_with(extra: &[(&str, &[u64])]) -> Vec<u8> {
    let bytes = std::fs::read(sd15_fixture()).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let mut data = bytes[8 + n..].to_vec();
    for (name, shape) in extra {
        let len = shape.iter().product::<u64>() as usize * 4;
        header.insert(
            (*name).into(),
            serde_json::json!({"dtype": "F32", "shape": shape,
                "data_offsets": [data.len(), data.len() + len]}),
        );
        data.extend(vec![0u8; len]);
    }
    let json = serde_json::to_vec(&header).unwrap();
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend(json);
    out.extend(data);
    out
}

#[test]
fn crafted_checkpoints_give_one_clear_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str, &str)] = &[
        (
            "op-in-block-0",
            "model.diffusion_model.input_blocks.0.0.op.weight",
            "input block 0 is conv_in",
        ),
        (
            "block-u64-max",
            "model.diffusion_model.input_blocks.18446744073709551615.0.weight",
            "index 18446744073709551615 is out of range",
        ),
        (
            "output-block-u64-max",
            "model.diffusion_model.output_blocks.18446744073709551615.0.weight",
            "index 18446744073709551615 is out of range",
        ),
        (
            "vae-up-u64-max",
            "first_stage_model.decoder.up.18446744073709551615.block.0.conv1.weight",
            "index 18446744073709551615 is out of range",
        ),
        (
            "clip-layer-u64-max",
            "cond_stage_model.transformer.text_model.encoder.layers.18446744073709551615.mlp.fc1.weight",
            "index 18446744073709551615 is out of range",
        ),
    ];
    // The fixture itself loads (so each failure below is the crafted key's doing).
    engine::sd::ldm::open_single_file(sd15_fixture()).unwrap();
    for (name, key, reason) in cases {
        let path = dir.path().join(format!("{name}.safetensors"));
        std::fs::write(&path, sd15_with(&[(key, &[4, 4, 3, 3])])).unwrap();
        let result = std::panic::catch_unwind(|| {
            let file = engine::sd::ldm::open_single_file(&path)?;
            for c in file.components() {
                file.config(c)?;
            }
            Ok::<_, candle_core::Error>(())
        });
        let e = result
            .unwrap_or_else(|_| panic!("{name}: the loader panicked"))
            .expect_err(name)
            .to_string();
        assert!(e.contains(reason) && e.contains(key), "{name}: {e}");
        assert!(e.contains(&format!("{name}.safetensors")), "{name}: {e}");
        assert!(!e.contains('\n'), "{name}: {e}");
        let e = engine::sd::model::load(&path, &Default::default())
            .err()
            .unwrap_or_else(|| panic!("{name}: loaded"))
            .to_string();
        assert!(e.contains(reason), "{name}: {e}");
        assert_eq!(e.matches(&format!("{name}.safetensors")).count(), 1, "{e}");
    }
}
