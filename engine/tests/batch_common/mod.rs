//! Helpers shared by the worker and queue tests: a small Texture → SaveImage batch.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use engine::run::{plan, BatchJob, PlanSpec};
use nodes::GraphDoc;

/// A `size`² concrete Texture saved by a SaveImage.
pub fn texture_doc(size: u32) -> GraphDoc {
    GraphDoc::from_json(
        &serde_json::json!({
            "format": "defect-studio/graph", "version": 1,
            "nodes": {
                "tex": {"kind": "Texture", "version": 1,
                        "params": {"width": size, "height": size, "material": "concrete"}},
                "save": {"kind": "SaveImage", "version": 1}
            },
            "links": [{"from": ["tex", "image"], "to": ["save", "image"]}]
        })
        .to_string(),
    )
    .unwrap()
}

/// The store every batch of `dir` writes to.
pub fn store(dir: &Path) -> PathBuf {
    dir.join("store.redb")
}

/// A batch of `count` items of [`texture_doc`] named `name` with base seed `seed`, into `dir`'s
/// store and `dir/out-NAME`, on `device` (None = the default device).
pub fn texture_job(
    dir: &Path,
    name: &str,
    count: u64,
    size: u32,
    seed: u64,
    device: Option<&str>,
) -> BatchJob {
    let doc = texture_doc(size);
    let (items, _) = plan(&PlanSpec {
        doc: &doc,
        base_dir: dir,
        count,
        seed,
        sweeps: &[],
        shard: None,
    })
    .unwrap();
    BatchJob {
        doc,
        graph_name: name.into(),
        base_dir: dir.to_path_buf(),
        items,
        base_seed: seed,
        shard: None,
        out_dir: dir.join(format!("out-{name}")),
        store_path: store(dir),
        targets: None,
        graph_path: None,
        embed_assets: false,
        device: device.map(str::to_string),
    }
}
