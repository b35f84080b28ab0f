//! The records the store keeps (graph versions, runs, trainings, outputs) and the time helpers
//! they use. Moved out of `store.rs` (pure move); re-exported from [`crate::store`].

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Civil date and time (UTC) from Unix milliseconds.
pub fn utc(ms: u64) -> (i64, u32, u32, u32, u32, u32) {
    let secs = (ms / 1000) as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        ((rem % 3600) / 60) as u32,
        (rem % 60) as u32,
    )
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) from Unix milliseconds.
pub fn format_utc(ms: u64) -> String {
    let (y, mo, d, h, mi, s) = utc(ms);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
}

/// One saved version of a named graph.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GraphVersion {
    pub name: String,
    pub version: u64,
    pub saved_ms: u64,
    /// The graph document, canonical JSON.
    pub json: String,
}

/// The state of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
    Cancelled,
    /// Derived when reading: a run still marked running whose process is gone (killed).
    Interrupted,
}

impl RunStatus {
    pub fn name(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

/// Time spent in one node of one work item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeTiming {
    pub item: u64,
    pub node: String,
    pub kind: String,
    pub seconds: f64,
    pub cached: bool,
}

/// A run in the history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub graph_name: String,
    /// The graph as it ran (a snapshot, so later edits do not change history).
    pub graph_json: String,
    pub seed: u64,
    /// Work items in this run (after sharding).
    pub items: u64,
    #[serde(default)]
    pub shard: Option<(u32, u32)>,
    pub status: RunStatus,
    pub pid: u32,
    pub started_ms: u64,
    #[serde(default)]
    pub ended_ms: Option<u64>,
    #[serde(default)]
    pub node_timings: Vec<NodeTiming>,
    #[serde(default)]
    pub error: Option<String>,
    /// The graph file the run came from, if any.
    #[serde(default)]
    pub graph_path: Option<String>,
    /// Work items that an inspection node (FilterByScore, MaskFidelity) turned down at least
    /// once, with their attempts (docs/ARCHITECTURE.md §15, *Retries*); at most
    /// `engine::run::MAX_NODE_TIMINGS` entries.
    #[serde(default)]
    pub retries: Vec<ItemAttempts>,
    /// The device the run used for nodes whose `device` is `auto` (`cpu`, `cuda:N`); `None`
    /// in runs recorded before devices were kept.
    #[serde(default)]
    pub device: Option<String>,
    /// What the statistics need to know about the recipe (models, devices, the failed node's
    /// kind); empty in runs recorded before statistics were kept (docs/ARCHITECTURE.md §17).
    #[serde(default)]
    pub stats: RunStatsInfo,
}

impl Default for RunRecord {
    /// An empty running record (status `running`, this process, no times).
    fn default() -> Self {
        RunRecord {
            graph_name: String::new(),
            graph_json: String::new(),
            seed: 0,
            items: 0,
            shard: None,
            status: RunStatus::Running,
            pid: std::process::id(),
            started_ms: 0,
            ended_ms: None,
            node_timings: Vec::new(),
            error: None,
            graph_path: None,
            retries: Vec::new(),
            device: None,
            stats: RunStatsInfo::default(),
        }
    }
}

/// The static facts of a run that the statistics count by, worked out from the flattened
/// recipe when the run starts (`crate::stats::recipe`), plus the kind of the node whose error
/// ended it. With these, the records alone reproduce every statistics breakdown.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStatsInfo {
    /// Every model file the recipe names (checkpoints, VAEs, LoRAs, ISNet, detectors…).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<RunModel>,
    /// The device of each node that does not run on the CPU, by flat node id (the ids the
    /// executor reports); every other node runs on `cpu`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub node_devices: std::collections::BTreeMap<String, String>,
    /// The kind of the node whose error ended the run (`EngineError::Node`), if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_kind: Option<String>,
}

/// One model file a run's recipe uses.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RunModel {
    /// `checkpoint`, `vae`, `lora`, `isnet`, `detector`, `caption`.
    pub role: String,
    /// The name the recipe gave.
    pub name: String,
    /// Its sha256, empty when it could not be hashed (missing file, a folder).
    #[serde(default)]
    pub sha256: String,
    /// The flat ids of the nodes that run it: the node naming it and every node downstream of
    /// it through Model (or Detector) links.
    #[serde(default)]
    pub nodes: Vec<String>,
}

/// The attempts of one work item that was turned down at least once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ItemAttempts {
    /// The item's index `k` over the whole batch.
    pub item: u64,
    /// The run seed of each attempt, in order (the first is the item's own seed).
    pub seeds: Vec<u64>,
    /// Why each turned-down attempt was rejected (node and reason), in order.
    pub reasons: Vec<String>,
    /// Whether the last attempt was kept (false: the item was rejected and saved nothing).
    pub kept: bool,
}

impl RunRecord {
    /// The status, with a run whose process died while running reported as interrupted.
    pub fn effective_status(&self) -> RunStatus {
        effective_status(self.status, self.pid)
    }
}

/// `status`, or `Interrupted` when it says running but process `pid` is gone.
fn effective_status(status: RunStatus, pid: u32) -> RunStatus {
    if status == RunStatus::Running && pid != std::process::id() && !process_alive(pid) {
        RunStatus::Interrupted
    } else {
        status
    }
}

pub(crate) fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

/// What a training run trains.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrainingKind {
    /// A LoRA for a diffusion model (`train-lora`; every record before kinds existed).
    #[default]
    Lora,
    /// A defect classifier (`train-classifier`).
    Classifier,
    /// A defect segmenter (`train-segmenter`).
    Segmenter,
}

impl TrainingKind {
    pub fn name(self) -> &'static str {
        match self {
            TrainingKind::Lora => "lora",
            TrainingKind::Classifier => "classifier",
            TrainingKind::Segmenter => "segmenter",
        }
    }
}

/// One epoch of a detector training: its training and validation figures.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based.
    pub epoch: u64,
    pub train_loss: f32,
    pub train_accuracy: f32,
    /// Validation figures (`None` without a validation split).
    #[serde(default)]
    pub val_loss: Option<f32>,
    #[serde(default)]
    pub val_accuracy: Option<f32>,
    #[serde(default)]
    pub val_balanced_accuracy: Option<f32>,
    /// A segmenter's validation pixel AUROC.
    #[serde(default)]
    pub val_pixel_auroc: Option<f32>,
    pub seconds: f64,
}

/// A training run (a LoRA, a classifier, a segmenter): what it trained on, how far it got, and
/// the file it wrote. The `lora_*` fields name that file whatever the kind (kept for old
/// records).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingRecord {
    /// What is trained (`lora` for records written before kinds existed).
    #[serde(default)]
    pub kind: TrainingKind,
    /// The LoRA's (or model's) name (its file stem).
    pub name: String,
    /// The base model as given, and its sha256 when known.
    pub model: String,
    #[serde(default)]
    pub model_sha256: Option<String>,
    pub data: String,
    /// The LoRA file (written at every checkpoint and at the end).
    pub lora_path: String,
    #[serde(default)]
    pub lora_sha256: Option<String>,
    pub checkpoint_path: String,
    /// The training parameters (as the CLI/panel named them).
    pub params: serde_json::Value,
    pub status: RunStatus,
    pub pid: u32,
    pub started_ms: u64,
    #[serde(default)]
    pub ended_ms: Option<u64>,
    pub steps_done: u64,
    pub steps_total: u64,
    #[serde(default)]
    pub resumed_from: u64,
    /// `(step, loss)` of every step, so the loss curve can be drawn again later.
    #[serde(default)]
    pub losses: Vec<(u64, f32)>,
    /// Sample images written during the run, `(step, path)`.
    #[serde(default)]
    pub samples: Vec<(u64, String)>,
    /// Per-epoch loss and accuracy curves (detector trainings).
    #[serde(default)]
    pub epochs: Vec<EpochMetrics>,
    #[serde(default)]
    pub error: Option<String>,
}

impl TrainingRecord {
    /// The status, with a run whose process died while training reported as interrupted.
    pub fn effective_status(&self) -> RunStatus {
        effective_status(self.status, self.pid)
    }
}

/// Metadata of one saved output image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutputRecord {
    pub run_id: u64,
    pub item: u64,
    pub node: String,
    pub seed: u64,
    /// Where the PNG was written.
    pub path: String,
    /// sha256 of the PNG bytes (as stored and as written).
    pub sha256: String,
    pub width: u32,
    pub height: u32,
    #[serde(default)]
    pub mask_path: Option<String>,
    #[serde(default)]
    pub mask_sha256: Option<String>,
    pub created_ms: u64,
    /// The defect class (SaveImage's `label`), used as the category when exporting datasets.
    #[serde(default)]
    pub label: String,
    /// The parameters this work item set on top of the graph (folder items, sweeps), as
    /// `{"node.param": value}`.
    #[serde(default)]
    pub overrides: serde_json::Value,
    /// Where the defect-free image (SaveImage's `clean` input) was written, `<name>_clean.png`.
    #[serde(default)]
    pub clean_path: Option<String>,
    /// sha256 of the defect-free image's PNG bytes (as stored and as written).
    #[serde(default)]
    pub clean_sha256: Option<String>,
    /// What the recipe's inspection nodes recorded about this output's work item, as
    /// `{"node.field": value}` (Classify's score and label, FilterByScore's score,
    /// MaskFidelity's IoU and flag), plus `attempt` (1-based) when the item was retried.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub inspection: std::collections::BTreeMap<String, serde_json::Value>,
}
