//! Reading a LoRA `.safetensors` file into modules: every key is split into (module, part),
//! the parts of one module are gathered, and each module becomes one [`Adapter`] (plain
//! LoRA/LoCon, LoHa or LoKr) with its optional `alpha` and DoRA magnitude. A key that belongs
//! to no complete module (a `hada_w1_a` without its partners, a lone `dora_scale` or `alpha`,
//! LyCORIS' unused `lokr_t1`, a second algorithm on the same module) is kept in
//! [`LoraFile::unknown_keys`], so the report lists it instead of dropping it silently.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use candle_core::{DType, Device, Tensor};

use super::{Adapter, Factor, LoraFile, LoraModule};
use crate::error::{EngineError, Result};

/// Key suffixes we read, and the part each names. The LoRA layouts (kohya, PEFT, old
/// diffusers) are normalised to `down`/`up`; PEFT's DoRA magnitude to `dora_scale`.
const PARTS: &[(&str, &str)] = &[
    (".lora_down.weight", "down"),
    (".lora_up.weight", "up"),
    (".lora_A.weight", "down"),
    (".lora_B.weight", "up"),
    (".lora.down.weight", "down"),
    (".lora.up.weight", "up"),
    (".alpha", "alpha"),
    (".hada_w1_a", "hada_w1_a"),
    (".hada_w1_b", "hada_w1_b"),
    (".hada_w2_a", "hada_w2_a"),
    (".hada_w2_b", "hada_w2_b"),
    (".hada_t1", "hada_t1"),
    (".hada_t2", "hada_t2"),
    (".lokr_w1", "lokr_w1"),
    (".lokr_w1_a", "lokr_w1_a"),
    (".lokr_w1_b", "lokr_w1_b"),
    (".lokr_w2", "lokr_w2"),
    (".lokr_w2_a", "lokr_w2_a"),
    (".lokr_w2_b", "lokr_w2_b"),
    (".lokr_t1", "lokr_t1"),
    (".lokr_t2", "lokr_t2"),
    (".dora_scale", "dora_scale"),
    (".lora_magnitude_vector", "magnitude"),
    (".lora_magnitude_vector.weight", "magnitude"),
];

/// Splits a key into (module, part) for the layouts we read.
pub(crate) fn split_key(key: &str) -> Option<(&str, &'static str)> {
    PARTS
        .iter()
        .filter_map(|(suffix, part)| key.strip_suffix(suffix).map(|m| (m, *part)))
        // The longest suffix wins (`.lora_magnitude_vector.weight` over `.weight`-less ones).
        .min_by_key(|(m, _)| m.len())
}

/// The parts of one module as they are found: part → (the file's key, tensor).
type Pieces = BTreeMap<&'static str, (String, Tensor)>;

/// Builds a module from its parts; the keys it leaves unused go to `unused`.
fn assemble(mut p: Pieces, path: &Path, unused: &mut Vec<String>) -> Result<Option<LoraModule>> {
    let c = super::model_err(path);
    let keys: BTreeMap<&'static str, String> = p
        .iter()
        .map(|(part, (key, _))| (*part, key.clone()))
        .collect();
    let mut take = |part: &str| p.remove(part).map(|(_, t)| t);
    let alpha = match take("alpha") {
        Some(t) => {
            let a = t
                .to_dtype(DType::F32)
                .and_then(|t| t.flatten_all())
                .and_then(|t| t.to_vec1::<f32>())
                .map_err(&c)?;
            a.first().copied()
        }
        None => None,
    };
    let mut both_magnitudes = false;
    let (dora, peft_magnitude) = match (take("dora_scale"), take("magnitude")) {
        (Some(d), m) => {
            // Two magnitudes for one module: the kohya one is used, the other listed.
            both_magnitudes = m.is_some();
            (Some(d), false)
        }
        (None, Some(m)) => (Some(m), true),
        (None, None) => (None, false),
    };
    let lora = (take("down"), take("up"));
    let hada = [
        take("hada_w1_a"),
        take("hada_w1_b"),
        take("hada_w2_a"),
        take("hada_w2_b"),
    ];
    let hada_t = (take("hada_t1"), take("hada_t2"));
    let lokr_w1 = (take("lokr_w1"), take("lokr_w1_a"), take("lokr_w1_b"));
    let lokr_w2 = (take("lokr_w2"), take("lokr_w2_a"), take("lokr_w2_b"));
    let lokr_t2 = take("lokr_t2");
    drop(take);
    // What is left of `p` (e.g. `lokr_t1`, which LyCORIS writes but never uses) is unused.
    let mut left: Vec<String> = p.into_values().map(|(k, _)| k).collect();

    let adapter = if let (Some(down), Some(up)) = lora.clone() {
        Some(Adapter::Lora { down, up })
    } else if let [Some(w1a), Some(w1b), Some(w2a), Some(w2b)] = hada.clone() {
        match hada_t.clone() {
            (Some(t1), Some(t2)) => Some(Adapter::Loha {
                w1a,
                w1b,
                w2a,
                w2b,
                tucker: Some((t1, t2)),
            }),
            (None, None) => Some(Adapter::Loha {
                w1a,
                w1b,
                w2a,
                w2b,
                tucker: None,
            }),
            // One Tucker core without the other: the module cannot be rebuilt.
            _ => None,
        }
    } else {
        let factor = |full: Option<Tensor>,
                      a: Option<Tensor>,
                      b: Option<Tensor>,
                      t: Option<Tensor>| match (full, a, b) {
            (Some(w), _, _) => Some(Factor::Full(w)),
            (None, Some(a), Some(b)) => Some(Factor::Low { a, b, tucker: t }),
            _ => None,
        };
        // A full `lokr_w2` wins over `lokr_w2_a`/`_b`/`lokr_t2`, which are then listed unused.
        match (
            factor(
                lokr_w1.0.clone(),
                lokr_w1.1.clone(),
                lokr_w1.2.clone(),
                None,
            ),
            factor(
                lokr_w2.0.clone(),
                lokr_w2.1.clone(),
                lokr_w2.2.clone(),
                lokr_t2.clone(),
            ),
        ) {
            (Some(w1), Some(w2)) => Some(Adapter::Lokr { w1, w2 }),
            _ => None,
        }
    };
    // Keys of the file, by part, that the built adapter did not use.
    let mut unused_parts: Vec<&str> = Vec::new();
    let present = |t: &Option<Tensor>| t.is_some();
    let used_lora = matches!(adapter, Some(Adapter::Lora { .. }));
    let used_loha = matches!(adapter, Some(Adapter::Loha { .. }));
    let used_lokr = matches!(adapter, Some(Adapter::Lokr { .. }));
    if !used_lora {
        if present(&lora.0) {
            unused_parts.push("down");
        }
        if present(&lora.1) {
            unused_parts.push("up");
        }
    }
    if !used_loha {
        for (t, part) in hada
            .iter()
            .zip(["hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b"])
        {
            if t.is_some() {
                unused_parts.push(part);
            }
        }
        if present(&hada_t.0) {
            unused_parts.push("hada_t1");
        }
        if present(&hada_t.1) {
            unused_parts.push("hada_t2");
        }
    }
    // LoKr: a full factor takes precedence over its low-rank pair.
    let lokr_parts = [
        (&lokr_w1.0, "lokr_w1", false),
        (&lokr_w1.1, "lokr_w1_a", lokr_w1.0.is_some()),
        (&lokr_w1.2, "lokr_w1_b", lokr_w1.0.is_some()),
        (&lokr_w2.0, "lokr_w2", false),
        (&lokr_w2.1, "lokr_w2_a", lokr_w2.0.is_some()),
        (&lokr_w2.2, "lokr_w2_b", lokr_w2.0.is_some()),
        (&lokr_t2, "lokr_t2", lokr_w2.0.is_some()),
    ];
    for (t, part, shadowed) in lokr_parts {
        if t.is_some() && (!used_lokr || shadowed) {
            unused_parts.push(part);
        }
    }
    if both_magnitudes {
        unused_parts.push("magnitude");
    }
    if adapter.is_none() {
        if alpha.is_some() {
            unused_parts.push("alpha");
        }
        if dora.is_some() {
            unused_parts.push(if peft_magnitude {
                "magnitude"
            } else {
                "dora_scale"
            });
        }
    }
    left.extend(
        unused_parts
            .into_iter()
            .filter_map(|part| keys.get(part).cloned()),
    );
    left.sort();
    unused.extend(left);
    Ok(adapter.map(|adapter| LoraModule {
        adapter,
        alpha,
        dora,
        peft_magnitude,
    }))
}

/// Reads a LoRA `.safetensors` file (pickle files are refused).
pub fn read(path: &Path) -> Result<LoraFile> {
    crate::models::safetensors_check::refuse_pickle_extension(path)?;
    // Read once; the bytes the validator checked are the bytes loaded.
    let bytes = std::fs::read(path).map_err(|e| EngineError::io(path, e))?;
    let header = crate::models::safetensors_check::check_bytes(&bytes)
        .map_err(|e| EngineError::failed(format!("{}: {e}", path.display())))?;
    let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
        .map_err(super::model_err(path))?;
    drop(bytes);
    let mut parts: BTreeMap<String, Pieces> = BTreeMap::new();
    let mut unknown = Vec::new();
    for (key, t) in tensors {
        match split_key(&key) {
            Some((module, part)) => {
                let e = parts.entry(module.to_string()).or_default();
                if let Some((dup, _)) = e.insert(part, (key.clone(), t)) {
                    // Two layouts of the same part (e.g. `lora_A` and `lora_down`).
                    unknown.push(dup);
                }
            }
            None => unknown.push(key),
        }
    }
    let mut modules = BTreeMap::new();
    for (name, pieces) in parts {
        if let Some(m) = assemble(pieces, path, &mut unknown)? {
            modules.insert(name, m);
        }
    }
    peft_alphas(&mut modules, &header.metadata);
    unknown.sort();
    if modules.is_empty() {
        return Err(EngineError::failed(format!(
            "{}: no LoRA modules found (expected kohya lora_down/lora_up, PEFT lora_A/lora_B, \
             LyCORIS LoCon, LoHa hada_w1_a/hada_w1_b/hada_w2_a/hada_w2_b or LoKr \
             lokr_w1/lokr_w2 keys, optionally with DoRA dora_scale){}",
            path.display(),
            if unknown.is_empty() {
                String::new()
            } else {
                format!("; keys such as {}", unknown[0])
            }
        )));
    }
    Ok(LoraFile {
        path: path.to_path_buf(),
        modules,
        unknown_keys: unknown,
        metadata: header.metadata,
    })
}

/// PEFT files (as diffusers' `save_lora_weights` writes them) carry no `alpha` keys: the alpha
/// is in the `lora_adapter_metadata` header JSON (`unet.lora_alpha`, `text_encoder.lora_alpha`,
/// per-module `….alpha_pattern`), which diffusers' loader uses. Modules without an `alpha` key
/// take it from there (none there: alpha = rank, scale 1).
fn peft_alphas(modules: &mut BTreeMap<String, LoraModule>, meta: &BTreeMap<String, String>) {
    let Some(doc) = meta
        .get("lora_adapter_metadata")
        .and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok())
    else {
        return;
    };
    for (name, m) in modules.iter_mut() {
        if m.alpha.is_some() {
            continue;
        }
        let Some((component, path)) = ["unet", "text_encoder_2", "text_encoder"]
            .iter()
            .find_map(|c| name.strip_prefix(&format!("{c}.")).map(|p| (*c, p)))
        else {
            continue;
        };
        // PEFT matches a pattern key against the end of the module path, at a `.` boundary.
        let pattern = doc
            .get(format!("{component}.alpha_pattern"))
            .and_then(|p| p.as_object())
            .and_then(|p| {
                p.iter()
                    .filter(|(k, _)| path == k.as_str() || path.ends_with(&format!(".{k}")))
                    .max_by_key(|(k, _)| k.len())
                    .and_then(|(_, v)| v.as_f64())
            });
        let alpha = pattern.or_else(|| {
            doc.get(format!("{component}.lora_alpha"))
                .and_then(|a| a.as_f64())
        });
        m.alpha = alpha.map(|a| a as f32);
    }
}

/// [`read`] through a cache keyed by path, size and modification time.
pub fn read_cached(path: &Path) -> Result<Arc<LoraFile>> {
    type Cache = Mutex<Vec<((PathBuf, u64, u128), Arc<LoraFile>)>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let meta = std::fs::metadata(path).map_err(|e| EngineError::io(path, e))?;
    let mtime = crate::models::manager::mtime_ns(&meta);
    let key = (path.to_path_buf(), meta.len(), mtime);
    let cache = CACHE.get_or_init(|| Mutex::new(Vec::new()));
    if let Ok(c) = cache.lock() {
        if let Some((_, f)) = c.iter().find(|(k, _)| *k == key) {
            return Ok(f.clone());
        }
    }
    let file = Arc::new(read(path)?);
    if let Ok(mut c) = cache.lock() {
        c.push((key, file.clone()));
        if c.len() > 16 {
            c.remove(0);
        }
    }
    Ok(file)
}

/// kohya's metadata in one line: base model, resolution, network dim/alpha and the most
/// frequent training tags.
pub fn metadata_summary(meta: &BTreeMap<String, String>) -> Option<String> {
    let mut parts = Vec::new();
    for (key, label) in [
        ("ss_base_model_version", "base"),
        ("ss_sd_model_name", "trained on"),
        ("ss_resolution", "resolution"),
        ("ss_network_dim", "dim"),
        ("ss_network_alpha", "alpha"),
        ("ss_output_name", "name"),
    ] {
        if let Some(v) = meta.get(key).filter(|v| !v.is_empty()) {
            parts.push(format!("{label} {v}"));
        }
    }
    if let Some(tags) = meta
        .get("ss_tag_frequency")
        .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
    {
        let mut counts: BTreeMap<String, i64> = BTreeMap::new();
        if let Some(dirs) = tags.as_object() {
            for d in dirs.values() {
                if let Some(m) = d.as_object() {
                    for (tag, n) in m {
                        *counts.entry(tag.trim().to_string()).or_default() +=
                            n.as_i64().unwrap_or(0);
                    }
                }
            }
        }
        let mut v: Vec<_> = counts.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        if !v.is_empty() {
            let top: Vec<String> = v.iter().take(5).map(|(t, _)| t.clone()).collect();
            parts.push(format!("tags {}", top.join(", ")));
        }
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_layouts_split() {
        assert_eq!(
            split_key("lora_unet_mid_block_attentions_0_proj_in.lora_down.weight"),
            Some(("lora_unet_mid_block_attentions_0_proj_in", "down"))
        );
        assert_eq!(
            split_key("unet.mid_block.attentions.0.proj_in.lora_B.weight"),
            Some(("unet.mid_block.attentions.0.proj_in", "up"))
        );
        assert_eq!(split_key("lora_te_x.alpha"), Some(("lora_te_x", "alpha")));
        assert_eq!(
            split_key("lora_unet_x.hada_w1_a"),
            Some(("lora_unet_x", "hada_w1_a"))
        );
        assert_eq!(
            split_key("lora_unet_x.lokr_w2_b"),
            Some(("lora_unet_x", "lokr_w2_b"))
        );
        assert_eq!(
            split_key("lora_unet_x.dora_scale"),
            Some(("lora_unet_x", "dora_scale"))
        );
        assert_eq!(
            split_key("unet.x.lora_magnitude_vector.weight"),
            Some(("unet.x", "magnitude"))
        );
        assert_eq!(
            split_key("unet.x.lora_magnitude_vector"),
            Some(("unet.x", "magnitude"))
        );
        assert_eq!(split_key("lora_unet_x.weight"), None);
    }

    #[test]
    fn metadata_is_summarised() {
        let mut m = BTreeMap::new();
        m.insert("ss_base_model_version".into(), "sd_v1".into());
        m.insert("ss_resolution".into(), "(512, 512)".into());
        m.insert(
            "ss_tag_frequency".into(),
            r#"{"10_scratch": {"scratch": 12, "metal": 30, "dent": 2}}"#.into(),
        );
        let s = metadata_summary(&m).unwrap();
        assert!(
            s.contains("base sd_v1") && s.contains("resolution (512, 512)"),
            "{s}"
        );
        assert!(s.contains("tags metal, scratch, dent"), "{s}");
        assert_eq!(metadata_summary(&BTreeMap::new()), None);
    }
}
