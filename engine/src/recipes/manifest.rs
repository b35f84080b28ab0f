//! A bundle's model manifest (`models.json`): every model a recipe needs, with its hashes,
//! architecture, size and where it came from, worked out on the exporting machine
//! ([`collect`]); and, on the importing machine, where each one is ([`resolve`]: by sha256,
//! then by name, as a run finds it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nodes::{Catalogue, FileRole, GraphDoc, ParamValue};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::models::manager::{detect_arch, ModelInfo, ModelManager};

/// The `format` of `models.json`.
pub const MANIFEST_FORMAT: &str = "defect-studio/models";

/// Models `defect-studio models fetch NAME` installs: (installed file name, NAME).
pub const FETCHABLE: &[(&str, &str)] = &[
    (crate::models::isnet_weights::ISNET_FILE_NAME, "isnet"),
    (
        crate::models::efficientnet::weights::FILE_NAME,
        "efficientnet-lite0",
    ),
];

/// `models.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub models: Vec<ManifestModel>,
}

/// One model a recipe needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestModel {
    /// The file (or folder) name, as the importing machine's model folders should hold it.
    pub name: String,
    /// What it is for: the parameter's file kind (`checkpoint`, `LoRA`, `VAE`, …), or `model`
    /// for an entry of the recipe's `models` list.
    pub role: String,
    /// Empty when unknown: a model folder, or a model missing on the exporting machine.
    #[serde(default)]
    pub sha256: String,
    #[serde(default)]
    pub autov2: String,
    #[serde(default)]
    pub arch: String,
    #[serde(default)]
    pub size: u64,
    pub source: ModelSource,
    /// The parameters that name it (`node.param`; inside a subgraph definition
    /// `definition › node.param`).
    #[serde(default)]
    pub used_by: Vec<String>,
}

/// Where a model came from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSource {
    /// `defect-studio models fetch <this>` installs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fetch: Option<String>,
    /// Its file name on the exporting machine.
    pub file: String,
    /// A download address from the file's metadata, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The file's `modelspec.*` metadata (title, author, …), if any.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub modelspec: BTreeMap<String, String>,
}

impl std::fmt::Display for ModelSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(name) = &self.fetch {
            return write!(f, "install with: defect-studio models fetch {name}");
        }
        write!(f, "file {}", self.file)?;
        if let Some(url) = &self.url {
            write!(f, " from {url}")?;
        }
        if let Some(t) = self.modelspec.get("modelspec.title") {
            write!(f, " (\"{}\")", nodes::clip(t))?;
        }
        Ok(())
    }
}

impl std::fmt::Display for ManifestModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} [{}] sha256 {}; {}",
            self.role,
            self.name,
            if self.arch.is_empty() {
                "?"
            } else {
                &self.arch
            },
            if self.sha256.is_empty() {
                "unknown"
            } else {
                &self.sha256
            },
            self.source
        )
    }
}

/// Every file parameter of a model role in `doc` (see [`file_params`]).
pub fn model_params(doc: &GraphDoc, catalogue: &Catalogue) -> Vec<(String, FileRole, String)> {
    file_params(doc, catalogue, FileRole::is_model)
}

/// Every file parameter whose role `want`s in `doc` — top-level nodes, values set on subgraph
/// nodes' exposed parameters, the nodes of its definitions and their exposed defaults
/// ([`nodes::subgraph::file_params`]) — as (`used_by` label, role, value), in order; empty
/// values and embedded assets left out. Labels are `node.param`, inside a definition
/// `definition › node.param`, for an exposed default `definition › param`.
pub fn file_params(
    doc: &GraphDoc,
    catalogue: &Catalogue,
    want: impl Fn(FileRole) -> bool,
) -> Vec<(String, FileRole, String)> {
    use nodes::subgraph::{FileParamAt, PATH_SEP};
    let def_name = |key: &str| {
        doc.definitions
            .get(key)
            .map_or(key.to_string(), |d| d.name.clone())
    };
    nodes::subgraph::file_params(doc, catalogue)
        .into_iter()
        .filter(|f| want(f.role))
        .filter_map(|f| {
            let ParamValue::Text(v) = &f.value else {
                return None;
            };
            let value = v.trim().to_string();
            if value.is_empty() || value.starts_with("asset:") {
                return None;
            }
            let label = match &f.at {
                FileParamAt::Node {
                    definition: None,
                    node,
                    param,
                } => format!("{node}.{param}"),
                FileParamAt::Node {
                    definition: Some(d),
                    node,
                    param,
                } => format!("{}{PATH_SEP}{node}.{param}", def_name(d)),
                FileParamAt::ExposedDefault {
                    definition, param, ..
                } => format!("{}{PATH_SEP}{param}", def_name(definition)),
            };
            Some((label, f.role, value))
        })
        .collect()
}

/// The manifest of `doc`'s models, found as a run finds them ([`crate::files::locate`], inputs
/// relative to `base_dir`) and hashed through the model manager's cache; and a warning for each
/// model this machine does not have (listed by name only).
pub fn collect(doc: &GraphDoc, base_dir: &Path) -> Result<(Vec<ManifestModel>, Vec<String>)> {
    let catalogue = Catalogue::builtin();
    let manager = ModelManager::default_dirs();
    let mut models: Vec<ManifestModel> = Vec::new();
    let mut warnings = Vec::new();
    for (used_by, role, value) in model_params(doc, &catalogue) {
        let entry = match crate::files::locate(role, &value, base_dir) {
            Ok(path) if path.is_file() => describe_file(&manager, &path, role.noun())?,
            Ok(path) => ManifestModel {
                name: file_name(&path),
                role: role.noun().to_string(),
                sha256: String::new(),
                autov2: String::new(),
                arch: "folder".into(),
                size: 0,
                source: ModelSource {
                    file: file_name(&path),
                    ..ModelSource::default()
                },
                used_by: Vec::new(),
            },
            Err(problem) => {
                warnings.push(format!(
                    "{used_by}: {problem}; the bundle lists it by name only"
                ));
                let name = file_name(Path::new(&value.replace('\\', "/")));
                ManifestModel {
                    name: name.clone(),
                    role: role.noun().to_string(),
                    sha256: String::new(),
                    autov2: String::new(),
                    arch: String::new(),
                    size: 0,
                    source: ModelSource {
                        file: name,
                        ..ModelSource::default()
                    },
                    used_by: Vec::new(),
                }
            }
        };
        add(&mut models, entry, used_by);
    }
    // The recipe's own model references: by hash in the model folders when present.
    let listed: Vec<&nodes::ModelRef> = doc
        .models
        .iter()
        .filter(|r| {
            !models.iter().any(|m| {
                (!r.sha256.is_empty() && m.sha256.eq_ignore_ascii_case(&r.sha256))
                    || (r.sha256.is_empty() && m.name == r.name)
            })
        })
        .collect();
    if !listed.is_empty() {
        let scanned = manager.scan(&mut |_, _, _| {})?;
        for r in listed {
            let found = scanned
                .iter()
                .find(|m| !r.sha256.is_empty() && m.sha256.eq_ignore_ascii_case(&r.sha256));
            let entry = match found {
                Some(info) => from_info(info, "model"),
                None => ManifestModel {
                    name: r.name.clone(),
                    role: "model".into(),
                    sha256: r.sha256.to_lowercase(),
                    autov2: r.sha256.chars().take(10).collect::<String>().to_lowercase(),
                    arch: r.arch.clone(),
                    size: 0,
                    source: ModelSource {
                        file: r.name.clone(),
                        fetch: fetch_name(&r.name),
                        ..ModelSource::default()
                    },
                    used_by: Vec::new(),
                },
            };
            add(&mut models, entry, "models".into());
        }
    }
    Ok((models, warnings))
}

/// Adds `entry` (used by `used_by`) to `models`, merged with an entry of the same file.
fn add(models: &mut Vec<ManifestModel>, mut entry: ManifestModel, used_by: String) {
    let same = |m: &ManifestModel| {
        if !m.sha256.is_empty() || !entry.sha256.is_empty() {
            m.sha256 == entry.sha256
        } else {
            m.name == entry.name && m.role == entry.role
        }
    };
    if let Some(m) = models.iter_mut().find(|m| same(m)) {
        if !m.used_by.contains(&used_by) {
            m.used_by.push(used_by);
        }
        return;
    }
    entry.used_by = vec![used_by];
    models.push(entry);
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// `models fetch` name of a file we know how to fetch.
fn fetch_name(file: &str) -> Option<String> {
    let file = file.rsplit(['/', '\\']).next().unwrap_or(file);
    FETCHABLE
        .iter()
        .find(|(f, _)| f.eq_ignore_ascii_case(file))
        .map(|(_, n)| n.to_string())
}

/// The manifest entry of a model file: hashed (through the cache), its header read for the
/// architecture and metadata.
fn describe_file(manager: &ModelManager, path: &Path, role: &str) -> Result<ManifestModel> {
    let sha256 = manager.sha256(path)?;
    let size = std::fs::metadata(path)
        .map_err(|e| crate::error::EngineError::io(path, e))?
        .len();
    let (arch, metadata, tensors) = match crate::models::safetensors_check::check_file(path) {
        Ok(h) => (detect_arch(&h), h.metadata.clone(), h.tensors.len()),
        Err(e) => (format!("unreadable: {e}"), BTreeMap::new(), 0),
    };
    let info = ModelInfo {
        name: file_name(path),
        path: path.to_path_buf(),
        size,
        autov2: sha256.chars().take(10).collect(),
        sha256,
        arch,
        metadata,
        tensors,
    };
    Ok(from_info(&info, role))
}

fn from_info(info: &ModelInfo, role: &str) -> ManifestModel {
    let meta = &info.metadata;
    let url = [
        "url",
        "source_url",
        "download_url",
        "modelspec.url",
        "modelspec.source",
    ]
    .iter()
    .find_map(|k| meta.get(*k))
    .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
    .map(|u| nodes::clip(u));
    let modelspec = meta
        .iter()
        .filter(|(k, _)| k.starts_with("modelspec."))
        .map(|(k, v)| (k.clone(), nodes::clip(v)))
        .collect();
    ManifestModel {
        name: info.name.clone(),
        role: role.to_string(),
        sha256: info.sha256.clone(),
        autov2: info.autov2.clone(),
        arch: info.arch.clone(),
        size: info.size,
        source: ModelSource {
            fetch: fetch_name(&info.name),
            file: info.name.clone(),
            url,
            modelspec,
        },
        used_by: Vec::new(),
    }
}

/// Where a manifest's model is on this machine.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelState {
    /// Found by its sha256 (or, when the manifest has none, by its name).
    Found(PathBuf),
    /// A file of that name exists, but its sha256 differs: a run would use it.
    Different { path: PathBuf, sha256: String },
    /// Not in the model folders.
    Missing,
}

/// Finds every model of a manifest in this machine's model folders: by sha256 first, then by
/// name as the recipe's nodes find files ([`crate::files::locate`]).
pub fn resolve(models: &[ManifestModel]) -> Result<Vec<ModelState>> {
    if models.is_empty() {
        return Ok(Vec::new());
    }
    let catalogue = Catalogue::builtin();
    let manager = ModelManager::default_dirs();
    let scanned = manager.scan(&mut |_, _, _| {})?;
    let role_of = |noun: &str| {
        catalogue
            .specs()
            .iter()
            .flat_map(|s| s.params.iter())
            .filter_map(|p| p.file)
            .find(|r| r.noun() == noun)
    };
    let mut out = Vec::new();
    for m in models {
        if let Some(info) = scanned
            .iter()
            .find(|i| !m.sha256.is_empty() && i.sha256.eq_ignore_ascii_case(&m.sha256))
        {
            out.push(ModelState::Found(info.path.clone()));
            continue;
        }
        let by_name = match role_of(&m.role) {
            Some(role) => crate::files::locate(role, &m.name, Path::new("")).ok(),
            None => manager.find_by_name(&m.name),
        };
        let state = match by_name {
            None => ModelState::Missing,
            Some(path) if m.sha256.is_empty() || !path.is_file() => ModelState::Found(path),
            Some(path) => {
                let sha256 = manager.sha256(&path)?;
                if sha256.eq_ignore_ascii_case(&m.sha256) {
                    ModelState::Found(path)
                } else {
                    ModelState::Different { path, sha256 }
                }
            }
        };
        out.push(state);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_params_cover_definitions_and_skip_empty() {
        let doc = GraphDoc::from_json(
            r#"{"format": "defect-studio/graph", "version": 2,
            "nodes": {
              "ckpt": {"kind": "LoadCheckpoint", "version": 1, "params": {"checkpoint": "a.safetensors"}},
              "lora": {"kind": "LoraLoader", "version": 1, "params": {"lora": "b.safetensors"}},
              "bg": {"kind": "SolidColor", "version": 1}
            }}"#,
        )
        .unwrap();
        let found = model_params(&doc, &Catalogue::builtin());
        let labels: Vec<(&str, FileRole, &str)> = found
            .iter()
            .map(|(l, r, v)| (l.as_str(), *r, v.as_str()))
            .collect();
        // The VAE and config are empty by default; SolidColor names no file.
        assert_eq!(
            labels,
            [
                ("ckpt.checkpoint", FileRole::Checkpoint, "a.safetensors"),
                ("lora.lora", FileRole::Lora, "b.safetensors")
            ]
        );
    }

    /// A LoRA chosen on a subgraph node (an exposed parameter), inside its definition and as
    /// the exposed default: each is listed, so a bundle's manifest names every model it needs.
    #[test]
    fn model_params_cover_subgraph_values_and_exposed_defaults() {
        let inner = r#"{"name": "lora block",
            "nodes": {"lora": {"kind": "LoraLoader", "version": 1,
                               "params": {"lora": "inner.safetensors"}}},
            "params": [{"name": "style", "targets": [["lora", "lora"]],
                        "default": "default.safetensors"}]}"#;
        let def: nodes::subgraph::Definition = serde_json::from_str(inner).unwrap();
        let hash = def.hash();
        let mut doc = GraphDoc::from_json(&format!(
            r#"{{"format": "defect-studio/graph", "version": 2,
            "nodes": {{"block": {{"kind": "Subgraph", "version": 1,
                                 "subgraph": {{"hash": "{hash}", "name": "lora block"}},
                                 "params": {{"style": "chosen.safetensors"}}}}}}}}"#
        ))
        .unwrap();
        doc.definitions.insert(hash, def);
        let found = model_params(&doc, &Catalogue::builtin());
        let labels: Vec<(&str, &str)> = found
            .iter()
            .map(|(l, _, v)| (l.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            labels,
            [
                ("block.style", "chosen.safetensors"),
                ("lora block › lora.lora", "inner.safetensors"),
                ("lora block › style", "default.safetensors"),
            ]
        );
    }

    #[test]
    fn sources_say_how_to_get_the_model() {
        let mut s = ModelSource {
            fetch: fetch_name("models/isnet-medium.safetensors"),
            file: "isnet-medium.safetensors".into(),
            ..ModelSource::default()
        };
        assert_eq!(
            s.to_string(),
            "install with: defect-studio models fetch isnet"
        );
        s.fetch = None;
        s.url = Some("https://example.org/m".into());
        assert_eq!(
            s.to_string(),
            "file isnet-medium.safetensors from https://example.org/m"
        );
        assert_eq!(fetch_name("kohya_a.safetensors"), None);
    }
}
