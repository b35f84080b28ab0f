//! Finding the files a recipe names, one way for the node executors and for the check before
//! a run: models by path or by name in the model folders, inputs relative to the graph's
//! folder (docs/ARCHITECTURE.md, *One path*).
//!
//! [`missing_files`] lists every parameter whose file cannot be found, each with its kind
//! (checkpoint, LoRA, VAE, image, …, from the catalogue's [`nodes::FileRole`]), so `validate`
//! and `run` report all of them in one message instead of failing on the first one mid-run.

use std::path::{Path, PathBuf};

use nodes::{Catalogue, FileRole, GraphDoc, ParamValue};

use crate::error::{EngineError, Result};
use crate::exec::resolve_path;
use crate::models::manager::ModelManager;

/// Finds the file a parameter of `role` names. Models: an existing path (relative to the
/// working directory), else a file (or, for checkpoints and ControlNets, a diffusers folder) of
/// that name in the model folders; a folder given as a ControlNet must be a diffusers ControlNet
/// folder ([`controlnet_folder`]); background-removal models by name in the model folders only. Inputs
/// (images, masks, folders): relative to `base_dir`. The error says what was looked for.
pub fn locate(
    role: FileRole,
    value: &str,
    base_dir: &Path,
) -> std::result::Result<PathBuf, String> {
    let value = value.trim();
    let noun = role.noun();
    if value.is_empty() {
        return Err(format!("no {noun} chosen"));
    }
    if role == FileRole::CaptionModel {
        // A BLIP folder: by path or by name, and complete (its own check lists what is missing).
        return crate::inspect::blip::locate(value);
    }
    if !role.is_model() {
        let p = resolve_path(base_dir, value);
        return match role {
            FileRole::ImageFolder | FileRole::DiffusersConfig if !p.is_dir() => Err(format!(
                "{noun} \"{value}\" not found: {} is not a folder",
                p.display()
            )),
            _ if !p.exists() => Err(format!("{noun} \"{value}\" not found at {}", p.display())),
            _ => Ok(p),
        };
    }
    let manager = ModelManager::default_dirs();
    if role != FileRole::BackgroundModel {
        let p = Path::new(value);
        if role == FileRole::ControlNet && p.is_dir() {
            return controlnet_folder(p)
                .map(|()| p.to_path_buf())
                .map_err(|why| format!("{noun} \"{value}\": {why}"));
        }
        if p.exists() {
            return Ok(folder_of_weights(role, p));
        }
    }
    if let Some(found) = manager.find_by_name(value) {
        return Ok(folder_of_weights(role, &found));
    }
    for dir in &manager.dirs {
        let d = dir.join(value);
        let folder = match role {
            FileRole::Checkpoint => d.join("unet/config.json").is_file(),
            FileRole::ControlNet => d.is_dir() && controlnet_folder(&d).is_ok(),
            _ => false,
        };
        if folder {
            return Ok(d);
        }
    }
    let dirs: Vec<String> = manager
        .dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    if role == FileRole::BackgroundModel {
        return Err(format!(
            "{noun} \"{value}\" is not installed (searched {}); fetch it with: defect-studio \
             models fetch isnet",
            dirs.join(", ")
        ));
    }
    Err(format!(
        "{noun} \"{value}\" not found: not a path, and not in the model folders ({})",
        dirs.join(", ")
    ))
}

/// Whether `dir` is a diffusers ControlNet folder: `config.json` beside a
/// `diffusion_pytorch_model*.safetensors` (any variant: `.fp16`, sharded). The error says what
/// is missing.
pub fn controlnet_folder(dir: &Path) -> std::result::Result<(), String> {
    let has_weights = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read the folder {}: {e}", dir.display()))?
        .filter_map(|e| e.ok())
        .any(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with("diffusion_pytorch_model") && name.ends_with(".safetensors")
        });
    match (dir.join("config.json").is_file(), has_weights) {
        (true, true) => Ok(()),
        (config, _) => Err(format!(
            "the folder {} is not a diffusers ControlNet (it needs {})",
            dir.display(),
            if config {
                "diffusion_pytorch_model.safetensors"
            } else {
                "config.json and diffusion_pytorch_model.safetensors"
            }
        )),
    }
}

/// The weights file of a diffusers ControlNet folder stands for the folder (so its
/// `config.json` is read); any other path stays as it is.
fn folder_of_weights(role: FileRole, p: &Path) -> PathBuf {
    let weights = p.file_name().is_some_and(|n| {
        let n = n.to_string_lossy();
        n.starts_with("diffusion_pytorch_model") && n.ends_with(".safetensors")
    });
    match p.parent() {
        Some(dir) if role == FileRole::ControlNet && weights && controlnet_folder(dir).is_ok() => {
            dir.to_path_buf()
        }
        _ => p.to_path_buf(),
    }
}

/// [`locate`] for a node executor: the error is a node failure.
pub fn locate_for_node(role: FileRole, value: &str, base_dir: &Path) -> Result<PathBuf> {
    locate(role, value, base_dir).map_err(EngineError::failed)
}

/// A parameter whose file cannot be found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingFile {
    pub node: String,
    pub kind: String,
    pub param: String,
    pub role: FileRole,
    /// Why, in words (names the file and where it was looked for).
    pub problem: String,
}

impl std::fmt::Display for MissingFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (node \"{}\" {}.{})",
            self.problem, self.node, self.kind, self.param
        )
    }
}

/// Every file parameter that names a file [`locate`] cannot find, in node order, over the
/// nodes a run executes: `targets` (every sink and check when `None`) and what they need. Parameters in
/// `skip` (`(node, param)`: set per work item, by folder items or sweeps) and embedded assets
/// (`asset:…`, checked by `nodes::validate`) are left out; optional files (VAE, config) may
/// be empty.
pub fn missing_files(
    doc: &GraphDoc,
    catalogue: &Catalogue,
    base_dir: &Path,
    targets: Option<&[String]>,
    skip: &[(String, String)],
) -> Vec<MissingFile> {
    // Inner nodes of subgraphs are checked under their paths.
    let flat = nodes::subgraph::needs_flatten(doc)
        .then(|| nodes::subgraph::flatten(doc, catalogue).ok())
        .flatten();
    let flat_targets = flat.as_ref().zip(targets).map(|(f, t)| f.targets(t));
    let doc = flat.as_ref().map_or(doc, |f| &f.doc);
    let targets: Vec<&str> = match flat_targets.as_deref().or(targets) {
        Some(t) => t.iter().map(String::as_str).collect(),
        None => catalogue.default_targets(doc),
    };
    // A cycle is refused by validation; here it just means nothing to check.
    let run = doc.upstream_order(&targets).unwrap_or_default();
    let mut missing = Vec::new();
    // The flattened document has no subgraph nodes: every parameter is a node's own.
    for f in nodes::subgraph::file_params(doc, catalogue) {
        let nodes::subgraph::FileParamAt::Node {
            definition: None,
            node: id,
            param,
        } = &f.at
        else {
            continue;
        };
        if !run.iter().any(|n| n == id) || skip.iter().any(|(n, q)| n == id && q == param) {
            continue;
        }
        let (ParamValue::Text(value), Some(node)) = (&f.value, doc.nodes.get(id)) else {
            continue;
        };
        if value.starts_with("asset:") || (f.role.optional() && value.trim().is_empty()) {
            continue;
        }
        if let Err(problem) = locate(f.role, value, base_dir) {
            missing.push(MissingFile {
                node: id.clone(),
                kind: node.kind.clone(),
                param: param.clone(),
                role: f.role,
                problem,
            });
        }
    }
    missing
}

/// One message listing every missing file (see [`missing_files`]).
pub fn describe_missing(missing: &[MissingFile]) -> String {
    let items: Vec<String> = missing.iter().map(|m| m.to_string()).collect();
    format!("{} missing file(s): {}", missing.len(), items.join("; "))
}

/// Refuses a recipe that names files that cannot be found, listing all of them.
pub fn check_files(
    doc: &GraphDoc,
    catalogue: &Catalogue,
    base_dir: &Path,
    targets: Option<&[String]>,
    skip: &[(String, String)],
) -> Result<()> {
    let missing = missing_files(doc, catalogue, base_dir, targets, skip);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(EngineError::Plan(describe_missing(&missing)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(json: &str) -> GraphDoc {
        GraphDoc::from_json(json).unwrap()
    }

    #[test]
    fn lists_only_what_the_run_reads_and_skips_what_items_set() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("here.png"), b"x").unwrap();
        let d = doc(r#"{"format": "defect-studio/graph", "version": 1,
            "nodes": {
              "a": {"kind": "LoadImage", "version": 1, "params": {"source": "here.png"}},
              "b": {"kind": "LoadImage", "version": 1, "params": {"source": "gone.png"}},
              "c": {"kind": "LoadImage", "version": 1, "params": {"source": "asset:00"}},
              "d": {"kind": "LoadImage", "version": 1, "params": {"source": "swept.png"}},
              "e": {"kind": "LoadImage", "version": 1, "params": {"source": "unread.png"}},
              "sa": {"kind": "SaveImage", "version": 1}, "sb": {"kind": "SaveImage", "version": 1},
              "sc": {"kind": "SaveImage", "version": 1}, "sd": {"kind": "SaveImage", "version": 1}
            },
            "links": [
              {"from": ["a", "image"], "to": ["sa", "image"]},
              {"from": ["b", "image"], "to": ["sb", "image"]},
              {"from": ["c", "image"], "to": ["sc", "image"]},
              {"from": ["d", "image"], "to": ["sd", "image"]}
            ]}"#);
        let cat = Catalogue::builtin();
        let skip = [("d".to_string(), "source".to_string())];
        let m = missing_files(&d, &cat, dir.path(), None, &skip);
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!((m[0].node.as_str(), m[0].role), ("b", FileRole::Image));
        assert!(
            m[0].problem.contains("image \"gone.png\" not found"),
            "{}",
            m[0].problem
        );
        // Without the skip the swept one counts; targeting one sink checks only its branch.
        assert_eq!(missing_files(&d, &cat, dir.path(), None, &[]).len(), 2);
        let only = ["sa".to_string()];
        assert!(missing_files(&d, &cat, dir.path(), Some(&only), &[]).is_empty());
        let err = check_files(&d, &cat, dir.path(), None, &skip)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("1 missing file(s): image \"gone.png\""),
            "{err}"
        );
    }

    #[test]
    fn optional_models_may_be_empty_and_required_ones_may_not() {
        let cat = Catalogue::builtin();
        let d = doc(r#"{"format": "defect-studio/graph", "version": 1,
            "nodes": {
              "ckpt": {"kind": "LoadCheckpoint", "version": 1},
              "gen": {"kind": "Txt2Img", "version": 1},
              "save": {"kind": "SaveImage", "version": 1}
            },
            "links": [
              {"from": ["ckpt", "model"], "to": ["gen", "model"]},
              {"from": ["gen", "image"], "to": ["save", "image"]}
            ]}"#);
        let m = missing_files(&d, &cat, Path::new("."), None, &[]);
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!(
            (m[0].param.as_str(), m[0].role),
            ("checkpoint", FileRole::Checkpoint)
        );
        assert_eq!(m[0].problem, "no checkpoint chosen");
    }
}
