//! Finding models by the names recipes and other tools write: subfolders with either separator
//! (ComfyUI's `SDXL\sd_xl_base_1.0.safetensors`), bare file names and stems, and pickle names
//! (`.ckpt`) standing for the `.safetensors` file of the same stem. Uses a temporary model
//! folder through `DEFECT_STUDIO_HOME`, as `models list` and the loaders see it.

use std::path::{Path, PathBuf};

use engine::models::manager::{name_candidates, name_rank, ModelManager};
use nodes::ModelRef;

/// A tiny valid safetensors file (one F32 tensor named `name`).
fn write_st(path: &Path, name: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let header = format!(r#"{{"{name}":{{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}}}"#);
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header.as_bytes());
    bytes.extend([0u8; 4]);
    std::fs::write(path, bytes).unwrap();
}

struct Home {
    _dir: tempfile::TempDir,
    models: PathBuf,
}

/// models/SDXL/sd_xl_base_1.0.safetensors, models/other/sd_xl_base_1.0.safetensors,
/// models/vae/vae-ft-mse-840000-ema-pruned.safetensors (+ the .ckpt next to it),
/// models/loras/LoRA/sd15/Guts_05.safetensors and models/plain.safetensors.
fn home() -> Home {
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    write_st(&models.join("SDXL/sd_xl_base_1.0.safetensors"), "a");
    write_st(&models.join("other/sd_xl_base_1.0.safetensors"), "b");
    write_st(
        &models.join("vae/vae-ft-mse-840000-ema-pruned.safetensors"),
        "c",
    );
    std::fs::write(
        models.join("vae/vae-ft-mse-840000-ema-pruned.ckpt"),
        b"pickle",
    )
    .unwrap();
    write_st(&models.join("loras/LoRA/sd15/Guts_05.safetensors"), "d");
    write_st(&models.join("plain.safetensors"), "e");
    Home { _dir: dir, models }
}

fn manager(h: &Home) -> ModelManager {
    ModelManager::new(vec![h.models.clone()], h.models.join("../hashes.json"))
}

#[test]
fn subfolder_names_with_either_separator() {
    let h = home();
    let m = manager(&h);
    let sdxl = h.models.join("SDXL/sd_xl_base_1.0.safetensors");
    assert_eq!(
        m.find_by_name("SDXL\\sd_xl_base_1.0.safetensors"),
        Some(sdxl.clone())
    );
    assert_eq!(
        m.find_by_name("SDXL/sd_xl_base_1.0.safetensors"),
        Some(sdxl.clone())
    );
    assert_eq!(
        m.find_by_name("sdxl\\SD_XL_BASE_1.0.safetensors"),
        Some(sdxl.clone())
    );
    assert_eq!(m.find_by_name("SDXL/sd_xl_base_1.0"), Some(sdxl.clone()));
    // The folder picks between two files of the same name.
    assert_eq!(
        m.find_by_name("other\\sd_xl_base_1.0.safetensors"),
        Some(h.models.join("other/sd_xl_base_1.0.safetensors"))
    );
    // A folder that does not exist still finds the file by its name.
    assert_eq!(
        m.find_by_name("LoRA\\sd15\\berserk\\Guts_05.safetensors"),
        Some(h.models.join("loras/LoRA/sd15/Guts_05.safetensors"))
    );
    // Bare names and stems as before.
    assert_eq!(
        m.find_by_name("plain.safetensors"),
        Some(h.models.join("plain.safetensors"))
    );
    assert_eq!(
        m.find_by_name("plain"),
        Some(h.models.join("plain.safetensors"))
    );
    assert_eq!(m.find_by_name("missing.safetensors"), None);
    assert_eq!(m.find_by_name(""), None);
}

#[test]
fn pickle_names_find_the_safetensors_of_the_same_stem() {
    let h = home();
    let m = manager(&h);
    let st = h
        .models
        .join("vae/vae-ft-mse-840000-ema-pruned.safetensors");
    assert_eq!(
        m.find_by_name("vae-ft-mse-840000-ema-pruned.ckpt"),
        Some(st.clone())
    );
    assert_eq!(
        m.find_by_name("vae\\vae-ft-mse-840000-ema-pruned.pt"),
        Some(st)
    );
    assert_eq!(m.find_by_name("sd_xl_refiner_1.0.ckpt"), None);
    assert_eq!(
        name_candidates("SDXL\\x.ckpt"),
        vec!["SDXL/x.ckpt".to_string(), "SDXL/x.safetensors".to_string()]
    );
    assert_eq!(
        name_rank("SDXL/x.safetensors", "SDXL/x.safetensors"),
        Some(0)
    );
    assert_eq!(name_rank("a/x.safetensors", "SDXL/x.safetensors"), Some(3));
    assert_eq!(name_rank("a/y.safetensors", "SDXL/x.safetensors"), None);
}

#[test]
fn graph_model_refs_resolve_by_subfolder_name() {
    let h = home();
    let m = manager(&h);
    let r = ModelRef {
        name: "SDXL\\sd_xl_base_1.0.safetensors".into(),
        sha256: String::new(),
        arch: String::new(),
    };
    let found = m.resolve(&[r]).unwrap();
    assert_eq!(
        found[0].1.path,
        h.models.join("SDXL/sd_xl_base_1.0.safetensors")
    );
    let ckpt = ModelRef {
        name: "vae-ft-mse-840000-ema-pruned.ckpt".into(),
        sha256: String::new(),
        arch: String::new(),
    };
    let found = m.resolve(&[ckpt]).unwrap();
    assert!(found[0]
        .1
        .path
        .ends_with("vae/vae-ft-mse-840000-ema-pruned.safetensors"));
    let missing = ModelRef {
        name: "SDXL\\nope.safetensors".into(),
        sha256: String::new(),
        arch: String::new(),
    };
    assert!(m.resolve(&[missing]).is_err());
}

#[test]
fn the_checkpoint_loader_finds_comfy_names_in_the_data_folder() {
    let h = home();
    // The only test here that sets the variable; the loaders read the default folders.
    std::env::set_var(
        engine::paths::HOME_VAR,
        h.models.parent().unwrap().as_os_str(),
    );
    let found = engine::sd::nodes::resolve_checkpoint("SDXL\\sd_xl_base_1.0.safetensors").unwrap();
    assert_eq!(found, h.models.join("SDXL/sd_xl_base_1.0.safetensors"));
    let vae = engine::sd::nodes::resolve_checkpoint("vae-ft-mse-840000-ema-pruned.ckpt").unwrap();
    assert_eq!(
        vae,
        h.models
            .join("vae/vae-ft-mse-840000-ema-pruned.safetensors")
    );
}
