//! What a run's recipe means for the statistics, worked out once when the run starts, from the
//! flattened graph (docs/ARCHITECTURE.md §17): the model files it uses (and which nodes run
//! each), and the device of every node. Kept in the run's record ([`RunStatsInfo`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use nodes::{Catalogue, FileRole, GraphDoc, PortType};

use crate::store::{RunModel, RunStatsInfo};

/// Model hashes already worked out in this batch, by (file kind, name as written): `""` when
/// the file could not be found or hashed.
pub type HashMemo = HashMap<(FileRole, String), String>;

/// The name of a model file's role in the statistics; `None` for files that are not models
/// (images, masks, folders of images, diffusers configs).
pub fn role_name(role: FileRole) -> Option<&'static str> {
    if !role.is_model() {
        return None;
    }
    Some(match role {
        FileRole::Checkpoint => "checkpoint",
        FileRole::Lora => "lora",
        FileRole::Vae => "vae",
        FileRole::BackgroundModel => "isnet",
        FileRole::Detector => "detector",
        FileRole::CaptionModel => "caption",
        FileRole::ControlNet => "controlnet",
        // `is_model` is false for the others.
        FileRole::DiffusersConfig | FileRole::Image | FileRole::Mask | FileRole::ImageFolder => {
            return None
        }
    })
}

/// `cuda` is the first GPU: `cuda:0`; other names stay as they are (trimmed).
pub fn normalise_device(device: &str) -> String {
    match device.trim() {
        "cuda" => "cuda:0".into(),
        "" => "cpu".into(),
        d => d.to_string(),
    }
}

/// Links whose values are loaded models: they carry a model's use downstream.
fn carries_model(ty: PortType) -> bool {
    matches!(
        ty,
        PortType::Model | PortType::Detector | PortType::ControlNet | PortType::Control
    )
}

/// The statistics facts of a recipe run on `run_device` (what `device: auto` means): every
/// model file a parameter names (with its sha256 when the model manager can hash it; a missing
/// file is not an error here) and the nodes that run it, and the device of each node that does
/// not run on the CPU. A graph that cannot be flattened is read as it is.
pub fn analyse(
    doc: &GraphDoc,
    run_device: &str,
    base_dir: &Path,
    memo: &mut HashMemo,
) -> RunStatsInfo {
    let catalogue = Catalogue::builtin();
    let flat;
    let doc = if nodes::subgraph::needs_flatten(doc) {
        flat = nodes::subgraph::flatten(doc, &catalogue)
            .map(|f| f.doc)
            .unwrap_or_else(|_| doc.clone());
        &flat
    } else {
        doc
    };
    // Model-carrying links: from → every to, and to → its from (one model input per node).
    let mut downstream: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut upstream: BTreeMap<&str, &str> = BTreeMap::new();
    for link in &doc.links {
        let from = link.from.node();
        let ty = doc
            .nodes
            .get(from)
            .and_then(|n| catalogue.get(&n.kind))
            .and_then(|s| s.output(link.from.port()))
            .map(|p| p.ty);
        if ty.is_some_and(carries_model) {
            downstream.entry(from).or_default().push(link.to.node());
            upstream.entry(link.to.node()).or_insert(from);
        }
    }
    let mut models: BTreeMap<(String, String), (String, BTreeSet<String>)> = BTreeMap::new();
    for (id, node) in &doc.nodes {
        let Some(spec) = catalogue.get(&node.kind) else {
            continue;
        };
        for p in spec.params {
            let Some(role) = p.file else { continue };
            let Some(role_name) = role_name(role) else {
                continue;
            };
            let value = match node.params.get(p.name) {
                Some(v) => v.as_str().map(str::to_string),
                None => p.default_value().as_str().map(str::to_string),
            };
            let Some(name) = value.filter(|v| !v.trim().is_empty()) else {
                continue;
            };
            let sha256 = memo
                .entry((role, name.clone()))
                .or_insert_with(|| hash_model(role, &name, base_dir))
                .clone();
            let entry = models
                .entry((role_name.to_string(), name))
                .or_insert_with(|| (sha256, BTreeSet::new()));
            // The node and everything downstream through model links.
            let mut stack = vec![id.as_str()];
            while let Some(n) = stack.pop() {
                if entry.1.insert(n.to_string()) {
                    stack.extend(downstream.get(n).into_iter().flatten().copied());
                }
            }
        }
    }
    let mut node_devices = BTreeMap::new();
    for id in doc.nodes.keys() {
        let device = node_device(doc, &catalogue, &upstream, id, run_device);
        if device != "cpu" {
            node_devices.insert(id.clone(), device);
        }
    }
    RunStatsInfo {
        models: models
            .into_iter()
            .map(|((role, name), (sha256, nodes))| RunModel {
                role,
                name,
                sha256,
                nodes: nodes.into_iter().collect(),
            })
            .collect(),
        node_devices,
        failed_kind: None,
    }
}

/// A node's device: its own `device` parameter (`auto`: the run's device); else, for a node fed
/// a model, the device of the node that loaded it; else `cpu`.
fn node_device(
    doc: &GraphDoc,
    catalogue: &Catalogue,
    upstream: &BTreeMap<&str, &str>,
    id: &str,
    run_device: &str,
) -> String {
    let mut at = id;
    // A model chain is a path through distinct nodes: no longer than the graph.
    for _ in 0..=doc.nodes.len() {
        let Some(node) = doc.nodes.get(at) else {
            break;
        };
        if let Some(p) = catalogue.get(&node.kind).and_then(|s| s.param("device")) {
            let value = match node.params.get("device") {
                Some(v) => v.as_str().map(str::to_string),
                None => p.default_value().as_str().map(str::to_string),
            }
            .unwrap_or_else(|| "auto".into());
            return if value.trim() == "auto" {
                normalise_device(run_device)
            } else {
                normalise_device(&value)
            };
        }
        match upstream.get(at) {
            Some(from) => at = from,
            None => break,
        }
    }
    "cpu".into()
}

/// The sha256 of a model file as its node would find it, through the model manager's hash
/// cache; empty when it cannot be found, is a folder, or cannot be read.
fn hash_model(role: FileRole, name: &str, base_dir: &Path) -> String {
    let Ok(path) = crate::files::locate(role, name, base_dir) else {
        return String::new();
    };
    if !path.is_file() {
        return String::new();
    }
    crate::models::manager::ModelManager::default_dirs()
        .sha256(&path)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(json: serde_json::Value) -> GraphDoc {
        let mut j = json;
        j["format"] = "defect-studio/graph".into();
        j["version"] = 1.into();
        GraphDoc::from_json(&j.to_string()).unwrap()
    }

    #[test]
    fn models_reach_downstream_through_model_links_and_devices_follow_the_loader() {
        let g = doc(serde_json::json!({
            "nodes": {
                "ckpt": {"kind": "LoadCheckpoint", "version": 1,
                         "params": {"checkpoint": "no-such-sd15.safetensors", "device": "cuda"}},
                "l1": {"kind": "LoraLoader", "version": 1, "params": {"lora": "rust.safetensors"}},
                "l2": {"kind": "LoraLoader", "version": 1, "params": {"lora": "oil.safetensors"}},
                "gen": {"kind": "Txt2Img", "version": 1},
                "bg": {"kind": "RemoveBackground", "version": 1},
                "save": {"kind": "SaveImage", "version": 1}
            },
            "links": [
                {"from": ["ckpt", "model"], "to": ["l1", "model"]},
                {"from": ["l1", "model"], "to": ["l2", "model"]},
                {"from": ["l2", "model"], "to": ["gen", "model"]},
                {"from": ["gen", "image"], "to": ["bg", "image"]},
                {"from": ["bg", "image"], "to": ["save", "image"]}
            ]
        }));
        let info = analyse(&g, "cuda:3", Path::new("."), &mut HashMemo::new());
        let find = |role: &str| {
            info.models
                .iter()
                .filter(|m| m.role == role)
                .map(|m| (m.name.as_str(), m.sha256.as_str(), m.nodes.clone()))
                .collect::<Vec<_>>()
        };
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        // A missing file is recorded without a hash.
        assert_eq!(
            find("checkpoint"),
            vec![(
                "no-such-sd15.safetensors",
                "",
                s(&["ckpt", "gen", "l1", "l2"])
            )]
        );
        assert_eq!(
            find("lora"),
            vec![
                ("oil.safetensors", "", s(&["gen", "l2"])),
                ("rust.safetensors", "", s(&["gen", "l1", "l2"]))
            ]
        );
        // RemoveBackground's default model is ISNet; the image link carries no model.
        assert_eq!(find("isnet").len(), 1);
        assert_eq!(find("isnet")[0].2, s(&["bg"]));
        assert!(find("vae").is_empty(), "an empty optional VAE is no model");
        // `cuda` is cuda:0; the LoRAs and the sampler run where the checkpoint was loaded;
        // RemoveBackground and SaveImage (no device, no model input) on the CPU.
        let devices: Vec<(&str, &str)> = info
            .node_devices
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        assert_eq!(
            devices,
            vec![
                ("ckpt", "cuda:0"),
                ("gen", "cuda:0"),
                ("l1", "cuda:0"),
                ("l2", "cuda:0")
            ]
        );
    }

    #[test]
    fn a_controlnet_is_credited_to_the_nodes_it_reaches_through_control_links() {
        let g = doc(serde_json::json!({
            "nodes": {
                "ckpt": {"kind": "LoadCheckpoint", "version": 1,
                         "params": {"checkpoint": "no-such-sd15.safetensors", "device": "cuda:1"}},
                "cn": {"kind": "LoadControlNet", "version": 1,
                       "params": {"controlnet": "canny.safetensors", "device": "cuda:1"}},
                "edges": {"kind": "SolidColor", "version": 1},
                "apply": {"kind": "ControlNet", "version": 1},
                "gen": {"kind": "Txt2Img", "version": 1}
            },
            "links": [
                {"from": ["ckpt", "model"], "to": ["gen", "model"]},
                {"from": ["cn", "controlnet"], "to": ["apply", "controlnet"]},
                {"from": ["edges", "image"], "to": ["apply", "image"]},
                {"from": ["apply", "control"], "to": ["gen", "control"]}
            ]
        }));
        let info = analyse(&g, "cpu", Path::new("."), &mut HashMemo::new());
        let cn: Vec<_> = info
            .models
            .iter()
            .filter(|m| m.role == "controlnet")
            .collect();
        assert_eq!(cn.len(), 1, "{:?}", info.models);
        assert_eq!(cn[0].name, "canny.safetensors");
        assert_eq!(
            cn[0].nodes,
            vec!["apply".to_string(), "cn".to_string(), "gen".to_string()]
        );
        // The ControlNet node runs where its network was loaded; the image link carries none.
        assert_eq!(
            info.node_devices.get("apply").map(String::as_str),
            Some("cuda:1")
        );
        assert_eq!(info.node_devices.get("edges"), None);
    }

    #[test]
    fn auto_is_the_runs_device_and_a_detector_link_carries_it() {
        let dir = std::env::temp_dir().join(format!("stats-recipe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("det.safetensors");
        std::fs::write(&file, b"detector bytes").unwrap();
        let g = doc(serde_json::json!({
            "nodes": {
                "solid": {"kind": "SolidColor", "version": 1},
                "det": {"kind": "LoadDetector", "version": 1,
                        "params": {"model": file.to_string_lossy()}},
                "classify": {"kind": "Classify", "version": 1}
            },
            "links": [
                {"from": ["det", "detector"], "to": ["classify", "detector"]},
                {"from": ["solid", "image"], "to": ["classify", "image"]}
            ]
        }));
        let info = analyse(&g, "cuda:2", &dir, &mut HashMemo::new());
        assert_eq!(info.models.len(), 1);
        let m = &info.models[0];
        assert_eq!(m.role, "detector");
        // sha256("detector bytes")
        assert_eq!(m.sha256, crate::hashing::sha256_hex(b"detector bytes"));
        assert_eq!(m.nodes, vec!["classify".to_string(), "det".to_string()]);
        assert_eq!(
            info.node_devices.get("det").map(String::as_str),
            Some("cuda:2")
        );
        assert_eq!(
            info.node_devices.get("classify").map(String::as_str),
            Some("cuda:2")
        );
        assert!(!info.node_devices.contains_key("solid"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
