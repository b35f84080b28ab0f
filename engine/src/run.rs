//! Batch runs: planning work items (variations × folder items × sweep cells, sharded), running
//! each through the [`Executor`], writing outputs to the output folder and the store, and the
//! [`Worker`] thread that the studio and the CLI both drive.
//!
//! **Work item order.** Item `k` is numbered `k = (v · F + f) · S + s`, where `v` is the
//! variation (`0..count`, seed = base seed + v), `f` indexes the folder combinations (folder
//! inputs in node-id order, the first varying slowest, files sorted by name) and `s` the sweep
//! cells (`--sweep` arguments in the order given, the first varying slowest). With `--shard I/N`
//! a process runs exactly the items with `k mod N == I`. Items are computed from `k` when the
//! batch reaches them ([`Plan`]), never listed.
//!
//! **Output files** are written as new files in the run's temporary folder inside the output
//! folder and linked to their final names without replacing anything ([`crate::paths`]): no
//! symbolic link planted in the output folder is followed, and concurrent runs writing the same
//! names take the next free ones (`name-1.png`, …), image, mask and clean image together. The
//! clean image (SaveImage's `clean` input, the image before the defect nodes) is written as
//! `<name>_clean.png` and stored with the output.
//!
//! **Retries.** When an inspection node rejects a work item ([`EngineError::Rejected`]:
//! FilterByScore, MaskFidelity with `action: reject`), the item runs again with its next retry
//! seed ([`retry::retry_seed`]), up to the node's `max_attempts` tries in all. Nothing of a
//! rejected attempt is saved (sinks run last, `crate::exec`). An item that never passes is
//! *rejected*: it saves nothing, the run goes on and still succeeds, and the item is listed in
//! [`BatchSummary::items`] and in the run record's `retries` with every attempt's seed and
//! reason. A kept item's outputs carry what the inspection nodes recorded and, after a retry,
//! their `attempt` ([`crate::store::OutputRecord::inspection`]).

use std::path::PathBuf;
use std::time::Instant;

use nodes::GraphDoc;

use crate::error::{EngineError, Result};
use crate::exec::{CancelToken, Event, Executor, RunRequest, Saved};
use crate::paths;
use crate::store::{now_ms, ItemAttempts, NodeTiming, RunRecord, RunStatus, Store};

mod chunks;
mod plan;
pub mod pod;
pub mod retry;
mod shard;
mod sink;
mod worker;

use chunks::{recipe_chunks, ModelMemo};
pub use plan::{apply_override, plan, Override, Plan, PlanSpec, Sweep, WorkItem, MAX_WORK_ITEMS};
pub use shard::shard_from_env;
use sink::{expand_path, StoreSink, TemplateVars};
pub use worker::{DetectorJob, Worker, WorkerEvent};

/// Per-node timings kept in a run's record: those of the first items, up to this many entries
/// (a long batch would otherwise grow its record, and memory, without bound).
pub const MAX_NODE_TIMINGS: usize = 10_000;

/// A batch to run: everything the worker needs, owned.
#[derive(Clone, Debug)]
pub struct BatchJob {
    pub doc: GraphDoc,
    /// Used for `{graph}` in file names and in the history.
    pub graph_name: String,
    /// Relative input paths resolve against this folder.
    pub base_dir: PathBuf,
    /// The work items, made one at a time as the batch reaches them.
    pub items: Plan,
    pub base_seed: u64,
    pub shard: Option<(u32, u32)>,
    pub out_dir: PathBuf,
    pub store_path: PathBuf,
    /// The nodes to run (with what they need); `None` runs every sink and check. The studio's "run to
    /// here" names one node.
    pub targets: Option<Vec<String>>,
    /// The graph file this batch came from, if any (kept in the history).
    pub graph_path: Option<PathBuf>,
    /// Embed input assets larger than 256 KB in the recipe each output PNG carries (by default
    /// they are referenced by hash, so outputs do not leak inputs by accident).
    pub embed_assets: bool,
    /// The device nodes whose `device` is `auto` run on (`cpu`, `cuda:N`); `None`: the
    /// store's default device ([`crate::devices::run_device`]).
    pub device: Option<String>,
}

/// Progress of a batch.
#[derive(Clone, Debug)]
pub enum BatchEvent {
    RunStarted {
        run_id: u64,
        items: usize,
    },
    /// Sent before any work of the item: a paused worker waits here ([`crate::queue`]).
    ItemStarted {
        item: usize,
        index: u64,
        seed: u64,
    },
    Node {
        item: usize,
        event: Event,
    },
    /// Every executed node's outputs for one item (shared, not copied), for previews.
    ItemFinished {
        item: usize,
        outputs: std::collections::BTreeMap<String, std::sync::Arc<crate::value::Outputs>>,
    },
}

/// What happened to one work item, for the items that have something to report: inspection
/// notes (Classify's score, …) or a rejection.
#[derive(Clone, Debug, PartialEq)]
pub struct ItemReport {
    /// `k`: the item's index over the whole batch.
    pub index: u64,
    /// The parameters the item set (folder items, sweep cells).
    pub overrides: Vec<Override>,
    /// The run seed of each attempt, in order; the last one is the kept item's seed.
    pub seeds: Vec<u64>,
    /// Why each rejected attempt was rejected.
    pub reasons: Vec<String>,
    /// False when every attempt was rejected (nothing was saved).
    pub kept: bool,
    /// What the inspection nodes recorded on the last attempt, by node id.
    pub notes: std::collections::BTreeMap<String, crate::exec::Notes>,
}

/// How a batch ended.
#[derive(Clone, Debug)]
pub struct BatchSummary {
    pub run_id: u64,
    pub status: RunStatus,
    pub saved: Vec<Saved>,
    /// Datasets written by ExportDataset nodes: folder, images, instances.
    pub datasets: Vec<(PathBuf, usize, usize)>,
    pub error: Option<String>,
    pub seconds: f64,
    /// The items with inspection notes or rejections (see [`ItemReport`]), in item order.
    pub items: Vec<ItemReport>,
}

/// Runs a batch: records the run, executes every item, saves outputs as they come, and records
/// how it ended. An invalid graph is refused before anything is recorded. A failing item ends
/// the batch with status `failed`; outputs already saved stay.
pub fn run_batch(
    exec: &mut Executor,
    job: &BatchJob,
    emit: &dyn Fn(BatchEvent),
    cancel: &CancelToken,
) -> Result<BatchSummary> {
    nodes::validate(&job.doc, exec.catalogue()).map_err(EngineError::Invalid)?;
    check_job_files(job, exec.catalogue())?;
    let started = Instant::now();
    let store = Store::open(&job.store_path)?;
    let mut record = RunRecord {
        graph_name: job.graph_name.clone(),
        graph_json: job.doc.to_json(),
        seed: job.base_seed,
        items: job.items.len() as u64,
        shard: job.shard,
        status: RunStatus::Running,
        pid: std::process::id(),
        started_ms: now_ms(),
        ended_ms: None,
        node_timings: Vec::new(),
        error: None,
        graph_path: job
            .graph_path
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned()),
        retries: Vec::new(),
        device: None,
        stats: Default::default(),
    };
    let device = crate::devices::run_device(job.device.as_deref(), &store)?;
    exec.set_device(&device);
    record.stats =
        crate::stats::recipe::analyse(&job.doc, &device, &job.base_dir, &mut Default::default());
    record.device = Some(device);
    let run_id = store.begin_run(&record)?;
    let mut usage = UsageFlush::new(run_id);
    emit(BatchEvent::RunStarted {
        run_id,
        items: job.items.len(),
    });
    let mut saved = Vec::new();
    let mut datasets = std::collections::BTreeMap::new();
    let mut scratch = None;
    let mut model_memo = ModelMemo::new();
    let mut outcome: Result<()> = Ok(());
    let mut reports = Vec::new();
    for (i, item) in job.items.iter().enumerate() {
        if cancel.is_cancelled() {
            outcome = Err(EngineError::Cancelled);
            break;
        }
        emit(BatchEvent::ItemStarted {
            item: i,
            index: item.index,
            seed: item.seed,
        });
        let mut doc = job.doc.clone();
        if let Err(e) = item
            .overrides
            .iter()
            .try_for_each(|o| apply_override(&mut doc, o))
        {
            outcome = Err(e);
            break;
        }
        let mut report = ItemReport {
            index: item.index,
            overrides: item.overrides.clone(),
            seeds: Vec::new(),
            reasons: Vec::new(),
            kept: false,
            notes: Default::default(),
        };
        let mut attempt = 0u32;
        let result = loop {
            let seed = retry::retry_seed(item.seed, item.index, attempt, |s| {
                job.items.is_item_seed(s)
            });
            report.seeds.push(seed);
            let chunks =
                recipe_chunks(&doc, seed, &job.base_dir, job.embed_assets, &mut model_memo);
            let mut sink = StoreSink {
                chunks,
                store: &store,
                out_dir: &job.out_dir,
                scratch: &mut scratch,
                graph_name: &job.graph_name,
                run_id,
                item: item.index,
                seed,
                overrides: serde_json::Value::Object(
                    item.overrides
                        .iter()
                        .map(|o| {
                            (
                                format!("{}.{}", o.node, o.param),
                                serde_json::to_value(&o.value).unwrap_or_default(),
                            )
                        })
                        .collect(),
                ),
                saved: Vec::new(),
                datasets: &mut datasets,
                inspection: Default::default(),
            };
            if attempt > 0 {
                sink.inspection
                    .insert("attempt".into(), serde_json::Value::from(attempt + 1));
            }
            let req = RunRequest {
                doc: &doc,
                targets: job.targets.clone(),
                run_seed: seed,
                base_dir: &job.base_dir,
            };
            let forward = |event: Event| emit(BatchEvent::Node { item: i, event });
            let result = exec.run(&req, Some(&mut sink), &forward, cancel);
            saved.append(&mut sink.saved);
            match result {
                Err(EngineError::Rejected {
                    node,
                    message,
                    max_attempts,
                }) => {
                    report.reasons.push(format!("{node}: {message}"));
                    attempt += 1;
                    if attempt >= max_attempts.max(1) {
                        forward(Event::NodeStatus {
                            node,
                            message: format!(
                                "item {} rejected after {attempt} attempt(s): nothing saved",
                                item.index
                            ),
                        });
                        break Ok(None);
                    }
                    forward(Event::NodeStatus {
                        node,
                        message: format!(
                            "item {}: attempt {}/{max_attempts} with the next retry seed",
                            item.index,
                            attempt + 1
                        ),
                    });
                }
                other => break other.map(Some),
            }
        };
        match result {
            Ok(o) => {
                if let Some(o) = o {
                    report.kept = true;
                    report.notes = o.notes;
                    if let Err(e) = usage.add(&store, item.index, &o.stats) {
                        outcome = Err(e);
                        break;
                    }
                    let room = MAX_NODE_TIMINGS.saturating_sub(record.node_timings.len());
                    record
                        .node_timings
                        .extend(o.stats.into_iter().take(room).map(|s| NodeTiming {
                            item: item.index,
                            node: s.node,
                            kind: s.kind,
                            seconds: s.seconds,
                            cached: s.cached,
                        }));
                    emit(BatchEvent::ItemFinished {
                        item: i,
                        outputs: o.outputs,
                    });
                }
                if !report.reasons.is_empty() && record.retries.len() < MAX_NODE_TIMINGS {
                    record.retries.push(ItemAttempts {
                        item: item.index,
                        seeds: report.seeds.clone(),
                        reasons: report.reasons.clone(),
                        kept: report.kept,
                    });
                }
                if !report.reasons.is_empty() || !report.notes.is_empty() {
                    reports.push(report);
                }
            }
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    // Datasets are written once every item has run.
    let mut written = Vec::new();
    if outcome.is_ok() {
        for ((folder, _), (opts, ids)) in &datasets {
            let vars = TemplateVars {
                graph: &job.graph_name,
                node: "",
                run: run_id,
                item: 0,
                seed: job.base_seed,
                ms: now_ms(),
            };
            let result = expand_path(folder, &vars, None).and_then(|rel| {
                let dir = paths::claim_new_dir(&job.out_dir, &rel)
                    .map_err(|e| EngineError::io(job.out_dir.join(&rel), e))?;
                let opts = crate::dataset::ExportOptions {
                    seed: job.base_seed,
                    ..opts.clone()
                };
                let items = crate::export::items_from_store(&store, 0, ids)?;
                let report =
                    crate::dataset::export(&items, &opts, &dir).map_err(EngineError::Plan)?;
                Ok((dir, report.images, report.instances))
            });
            match result {
                Ok(w) => written.push(w),
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            }
        }
    }
    drop(scratch);
    // The last of the compute usage; a store that cannot take it fails the run.
    if let Err(e) = usage.flush(&store) {
        if outcome.is_ok() {
            outcome = Err(e);
        }
    }
    let (status, error) = match &outcome {
        Ok(()) => (RunStatus::Succeeded, None),
        Err(EngineError::Cancelled) => (RunStatus::Cancelled, None),
        Err(e) => (RunStatus::Failed, Some(e.to_string())),
    };
    if let Err(EngineError::Node { kind, .. }) = &outcome {
        record.stats.failed_kind = Some(kind.clone());
    }
    record.status = status;
    record.error = error.clone();
    record.ended_ms = Some(now_ms());
    store.update_run(run_id, &record)?;
    Ok(BatchSummary {
        run_id,
        status,
        saved,
        datasets: written,
        error,
        seconds: started.elapsed().as_secs_f64(),
        items: reports,
    })
}

/// A run's compute usage (items finished, node timings) waiting to be added to the store's
/// statistics ([`Store::add_run_usage`]): flushed at most about once a second and at the end,
/// so a killed run loses at most about a second of compute time from its statistics.
struct UsageFlush {
    run_id: u64,
    items: u64,
    timings: Vec<NodeTiming>,
    last: Instant,
}

impl UsageFlush {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(1);

    fn new(run_id: u64) -> Self {
        UsageFlush {
            run_id,
            items: 0,
            timings: Vec::new(),
            last: Instant::now(),
        }
    }

    /// One kept work item's node statistics.
    fn add(&mut self, store: &Store, item: u64, stats: &[crate::exec::NodeStat]) -> Result<()> {
        self.items += 1;
        self.timings.extend(stats.iter().map(|s| NodeTiming {
            item,
            node: s.node.clone(),
            kind: s.kind.clone(),
            seconds: s.seconds,
            cached: s.cached,
        }));
        if self.last.elapsed() >= Self::EVERY {
            self.flush(store)?;
        }
        Ok(())
    }

    fn flush(&mut self, store: &Store) -> Result<()> {
        store.add_run_usage(self.run_id, self.items, &self.timings)?;
        self.items = 0;
        self.timings.clear();
        self.last = Instant::now();
        Ok(())
    }
}

/// Refuses a batch whose nodes name files that cannot be found, listing every one
/// ([`crate::files::missing_files`]), leaving out parameters that the work items set
/// themselves (folder items, sweeps).
fn check_job_files(job: &BatchJob, catalogue: &nodes::Catalogue) -> Result<()> {
    let skip: Vec<(String, String)> = job
        .items
        .get(0)
        .map(|item| {
            item.overrides
                .iter()
                .map(|o| (o.node.clone(), o.param.clone()))
                .collect()
        })
        .unwrap_or_default();
    crate::files::check_files(
        &job.doc,
        catalogue,
        &job.base_dir,
        job.targets.as_deref(),
        &skip,
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        assert_eq!(crate::store::utc(0), (1970, 1, 1, 0, 0, 0));
        // 2026-11-25 19:41:17 UTC
        assert_eq!(
            crate::store::utc(1_795_635_677_000),
            (2026, 11, 25, 19, 41, 17)
        );
    }
}
