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
