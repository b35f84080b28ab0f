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

use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::Instant;

use nodes::{GraphDoc, ParamKind, ParamValue};

use crate::codec;
use crate::error::{EngineError, Result};
use crate::exec::{resolve_path, CancelToken, Event, Executor, OutputSink, RunRequest, Saved};
use crate::hashing::sha256_hex;
use crate::image::{Image, Mask};
use crate::paths::{self, Scratch};
use crate::sd::train::job::{run_job, TrainEvent, TrainJob, TrainOutcome};
use crate::store::{now_ms, NodeTiming, OutputRecord, RunRecord, RunStatus, Store};

mod plan;
pub use plan::{apply_override, plan, Override, Plan, PlanSpec, Sweep, WorkItem, MAX_WORK_ITEMS};

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
    /// The nodes to run (with what they need); `None` runs every sink. The studio's "run to
    /// here" names one node.
    pub targets: Option<Vec<String>>,
    /// The graph file this batch came from, if any (kept in the history).
    pub graph_path: Option<PathBuf>,
    /// Embed input assets larger than 256 KB in the recipe each output PNG carries (by default
    /// they are referenced by hash, so outputs do not leak inputs by accident).
    pub embed_assets: bool,
}

/// Progress of a batch.
#[derive(Clone, Debug)]
pub enum BatchEvent {
    RunStarted {
        run_id: u64,
        items: usize,
    },
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
}

/// Makes a string safe as one file name component.
fn safe_component(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let out = out.trim_start_matches('.').to_string();
    if out.is_empty() {
        "graph".into()
    } else {
        out
    }
}

/// Values of the output template variables.
struct TemplateVars<'a> {
    graph: &'a str,
    node: &'a str,
    run: u64,
    item: u64,
    seed: u64,
    ms: u64,
}

/// Expands a file name template into a path relative to the output folder.
/// Expands a template for a PNG file (".png" is added when missing).
fn expand_template(template: &str, v: &TemplateVars) -> Result<PathBuf> {
    expand_path(template, v, Some(".png"))
}

/// Expands a template into a path relative to the output folder, with `ext` appended when the
/// result does not end with it.
fn expand_path(template: &str, v: &TemplateVars, ext: Option<&str>) -> Result<PathBuf> {
    nodes::check_output_template(template).map_err(EngineError::failed)?;
    let (y, mo, d, h, mi, s) = crate::store::utc(v.ms);
    let mut out = String::new();
    let mut rest = template.trim();
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find('}').unwrap_or(after.len());
        let var = &after[..close];
        let (name, width) = match var.split_once(':') {
            Some((n, f)) => (n, f[1..].parse::<usize>().unwrap_or(0)),
            None => (var, 0),
        };
        let num = |n: u64| format!("{n:0width$}");
        out.push_str(&match name {
            "graph" => safe_component(v.graph),
            "node" => safe_component(v.node),
            "run" => num(v.run),
            "item" => num(v.item),
            "seed" => num(v.seed),
            "date" => format!("{y:04}{mo:02}{d:02}"),
            "time" => format!("{h:02}{mi:02}{s:02}"),
            other => return Err(EngineError::failed(format!("unknown variable {{{other}}}"))),
        });
        rest = after.get(close + 1..).unwrap_or("");
    }
    out.push_str(rest);
    if let Some(ext) = ext {
        if !out.to_ascii_lowercase().ends_with(ext) {
            out.push_str(ext);
        }
    }
    let path = PathBuf::from(out);
    if path
        .components()
        .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(EngineError::failed(format!(
            "output path {} leaves the output folder",
            path.display()
        )));
    }
    Ok(path)
}

/// The image and mask names tried for an output: `name.png` (and `name_mask.png`), then
/// `name-1.png`, `name-2.png`, …
fn candidate_names(path: &Path, n: u64) -> (PathBuf, PathBuf) {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("output");
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let base = if n == 0 {
        stem.to_string()
    } else {
        format!("{stem}-{n}")
    };
    (
        dir.join(format!("{base}.png")),
        dir.join(format!("{base}_mask.png")),
    )
}

/// `dir/name.png` → `dir/name_clean.png`: where an output's clean image is written.
fn clean_name(img: &Path) -> PathBuf {
    let stem = img.file_stem().and_then(|s| s.to_str()).unwrap_or("output");
    img.with_file_name(format!("{stem}_clean.png"))
}

/// Writes an output's PNG (and mask, and clean image) under the first free names beside
/// `wanted`: all are written as new files in the run's temporary folder, then linked to their
/// final names without replacing anything (another process writing into the same folder takes
/// other names), so a crash never leaves half a file under a final name and no planted link is
/// followed. Returns the image, mask and clean image paths.
fn publish_output(
    scratch: &mut Scratch,
    wanted: &Path,
    png: &[u8],
    mask_png: Option<&[u8]>,
    clean_png: Option<&[u8]>,
) -> Result<(PathBuf, PathBuf, PathBuf)> {
    let dir = wanted.parent().unwrap_or(Path::new(""));
    let tmp = scratch.write(png).map_err(|e| EngineError::io(dir, e))?;
    let tmp_mask = mask_png
        .map(|m| scratch.write(m))
        .transpose()
        .map_err(|e| EngineError::io(dir, e))?;
    let tmp_clean = clean_png
        .map(|c| scratch.write(c))
        .transpose()
        .map_err(|e| EngineError::io(dir, e))?;
    for n in 0u64.. {
        let (img, mask) = candidate_names(wanted, n);
        let clean = clean_name(&img);
        let mut files = vec![(tmp.as_path(), img.as_path())];
        if let Some(t) = &tmp_mask {
            files.push((t.as_path(), mask.as_path()));
        }
        if let Some(t) = &tmp_clean {
            files.push((t.as_path(), clean.as_path()));
        }
        if paths::publish_new(&files).map_err(|e| EngineError::io(&img, e))? {
            return Ok((img, mask, clean));
        }
    }
    Err(EngineError::failed(format!(
        "no free file name beside {}",
        wanted.display()
    )))
}

/// The runner's sink: PNG files under the output folder plus one store commit per output.
struct StoreSink<'a> {
    store: &'a Store,
    out_dir: &'a Path,
    /// The run's temporary folder inside `out_dir`, made at the first output.
    scratch: &'a mut Option<Scratch>,
    graph_name: &'a str,
    run_id: u64,
    item: u64,
    seed: u64,
    overrides: serde_json::Value,
    /// Text chunks every PNG carries: the recipe as run (`defect-studio/graph`) and A1111's
    /// `parameters`.
    chunks: RecipeChunks,
    saved: Vec<Saved>,
    /// Datasets to write when the run ends: (folder template, format) → options, output ids.
    datasets: &'a mut std::collections::BTreeMap<
        (String, String),
        (crate::dataset::ExportOptions, Vec<u64>),
    >,
}

impl OutputSink for StoreSink<'_> {
    fn save_instances(
        &mut self,
        saved: &Saved,
        width: u32,
        height: u32,
        ids: &[u32],
    ) -> Result<()> {
        let Some(id) = saved.output_id else {
            return Ok(());
        };
        if ids.len() != width as usize * height as usize {
            return Err(EngineError::failed(format!(
                "instance map has {} values for a {width}x{height} mask",
                ids.len()
            )));
        }
        let grey: Vec<u16> = ids
            .iter()
            .map(|&v| v.min(u32::from(u16::MAX)) as u16)
            .collect();
        let img =
            ::image::ImageBuffer::<::image::Luma<u16>, Vec<u16>>::from_raw(width, height, grey)
                .ok_or_else(|| EngineError::failed("instance map size mismatch"))?;
        let mut png = Vec::new();
        img.write_to(
            &mut std::io::Cursor::new(&mut png),
            ::image::ImageFormat::Png,
        )
        .map_err(|e| EngineError::failed(format!("cannot encode the instance map: {e}")))?;
        self.store.set_output_instances(id, &png)
    }

    fn collect(
        &mut self,
        _node: &str,
        saved: &Saved,
        opts: &crate::dataset::ExportOptions,
        folder: &str,
    ) -> Result<()> {
        nodes::check_output_template(folder).map_err(EngineError::failed)?;
        let id = saved
            .output_id
            .ok_or_else(|| EngineError::failed("the output was not stored"))?;
        let key = (folder.to_string(), opts.format.name().to_string());
        let entry = self
            .datasets
            .entry(key)
            .or_insert_with(|| (opts.clone(), Vec::new()));
        if entry.0 != *opts {
            return Err(EngineError::failed(format!(
                "two ExportDataset nodes write the {} dataset \"{folder}\" with different options",
                opts.format.name()
            )));
        }
        entry.1.push(id);
        Ok(())
    }

    fn save(
        &mut self,
        node: &str,
        image: &Image,
        mask: Option<&Mask>,
        template: &str,
        label: &str,
    ) -> Result<Saved> {
        self.save_with_clean(node, image, mask, None, template, label)
    }

    fn save_with_clean(
        &mut self,
        node: &str,
        image: &Image,
        mask: Option<&Mask>,
        clean: Option<&Image>,
        template: &str,
        label: &str,
    ) -> Result<Saved> {
        let created_ms = now_ms();
        let vars = TemplateVars {
            graph: self.graph_name,
            node,
            run: self.run_id,
            item: self.item,
            seed: self.seed,
            ms: created_ms,
        };
        let rel = expand_template(template, &vars)?;
        let rel_dir = rel.parent().unwrap_or(Path::new(""));
        let dir = paths::real_dirs(self.out_dir, rel_dir)
            .map_err(|e| EngineError::io(self.out_dir.join(rel_dir), e))?;
        let wanted = dir.join(rel.file_name().unwrap_or_default());
        let chunks = self.chunks.for_image(image.width, image.height);
        let chunks: Vec<(&str, &str)> = chunks
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let png = codec::encode_image_png(image, &chunks).map_err(EngineError::failed)?;
        let mask_png = mask
            .map(|m| codec::encode_mask_png(m, &[]))
            .transpose()
            .map_err(EngineError::failed)?;
        let clean_png = clean
            .map(|c| codec::encode_image_png(c, &chunks))
            .transpose()
            .map_err(EngineError::failed)?;
        let scratch = match self.scratch {
            Some(s) => s,
            None => self.scratch.insert(
                Scratch::new(self.out_dir, &self.run_id.to_string())
                    .map_err(|e| EngineError::io(self.out_dir, e))?,
            ),
        };
        let (path, mask_path, clean_path) = publish_output(
            scratch,
            &wanted,
            &png,
            mask_png.as_deref(),
            clean_png.as_deref(),
        )?;
        let rec = OutputRecord {
            run_id: self.run_id,
            item: self.item,
            node: node.to_string(),
            seed: self.seed,
            // Absolute, so that exports name the file whatever the working directory.
            path: std::path::absolute(&path)
                .unwrap_or_else(|_| path.clone())
                .to_string_lossy()
                .into_owned(),
            sha256: sha256_hex(&png),
            width: image.width,
            height: image.height,
            mask_path: mask_png
                .as_ref()
                .map(|_| mask_path.to_string_lossy().into_owned()),
            mask_sha256: mask_png.as_deref().map(sha256_hex),
            created_ms,
            label: label.to_string(),
            overrides: self.overrides.clone(),
            clean_path: clean_png
                .as_ref()
                .map(|_| clean_path.to_string_lossy().into_owned()),
            clean_sha256: clean_png.as_deref().map(sha256_hex),
        };
        let id = self.store.add_output_with_clean(
            &rec,
            &png,
            mask_png.as_deref(),
            clean_png.as_deref(),
        )?;
        let saved = Saved {
            path,
            mask_path: mask_png.map(|_| mask_path),
            output_id: Some(id),
        };
        self.saved.push(saved.clone());
        Ok(saved)
    }
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
    };
    let run_id = store.begin_run(&record)?;
    emit(BatchEvent::RunStarted {
        run_id,
        items: job.items.len(),
    });
    let mut saved = Vec::new();
    let mut datasets = std::collections::BTreeMap::new();
    let mut scratch = None;
    let mut outcome: Result<()> = Ok(());
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
        let chunks = recipe_chunks(&doc, item.seed, &job.base_dir, job.embed_assets);
        let mut sink = StoreSink {
            chunks,
            store: &store,
            out_dir: &job.out_dir,
            scratch: &mut scratch,
            graph_name: &job.graph_name,
            run_id,
            item: item.index,
            seed: item.seed,
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
        };
        let req = RunRequest {
            doc: &doc,
            targets: job.targets.clone(),
            run_seed: item.seed,
            base_dir: &job.base_dir,
        };
        let forward = |event: Event| emit(BatchEvent::Node { item: i, event });
        let result = exec.run(&req, Some(&mut sink), &forward, cancel);
        saved.append(&mut sink.saved);
        match result {
            Ok(o) => {
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
    let (status, error) = match &outcome {
        Ok(()) => (RunStatus::Succeeded, None),
        Err(EngineError::Cancelled) => (RunStatus::Cancelled, None),
        Err(e) => (RunStatus::Failed, Some(e.to_string())),
    };
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
    })
}

/// Commands to the worker thread.
pub enum Command {
    Batch(Box<BatchJob>),
    /// A LoRA training run (queued like a batch: one job at a time uses the device).
    Train(Box<TrainJob>),
    Shutdown,
}

/// What the worker reports.
#[derive(Clone, Debug)]
pub enum WorkerEvent {
    Batch(BatchEvent),
    /// A batch ended (or could not start: the error says why).
    Finished(std::result::Result<BatchSummary, String>),
    Train(TrainEvent),
    /// A training run ended (the error is `cancelled` when it was cancelled).
    TrainFinished(std::result::Result<TrainOutcome, String>),
}

/// The engine's worker thread. It owns the [`Executor`] (and so its cache) and runs queued
/// batches one after another; callers only send commands and read events.
pub struct Worker {
    commands: Sender<Command>,
    events: Receiver<WorkerEvent>,
    cancel: CancelToken,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    pub fn spawn(exec: Executor) -> Worker {
        Worker::spawn_with_notify(exec, None)
    }

    /// Like [`Worker::spawn`]; `notify` is called after every event is sent (the studio passes
    /// `request_repaint`, so the UI wakes up only when something happened).
    pub fn spawn_with_notify(mut exec: Executor, notify: Option<Box<dyn Fn() + Send>>) -> Worker {
        let (commands, command_rx) = channel::<Command>();
        let (event_tx, events) = channel::<WorkerEvent>();
        let cancel = CancelToken::new();
        let token = cancel.clone();
        let thread = std::thread::Builder::new()
            .name("defect-studio-engine".into())
            .spawn(move || {
                let send = |e: WorkerEvent| {
                    let _ = event_tx.send(e);
                    if let Some(n) = &notify {
                        n();
                    }
                };
                loop {
                    match command_rx.recv() {
                        Ok(Command::Batch(job)) => {
                            token.reset();
                            let emit = |e: BatchEvent| send(WorkerEvent::Batch(e));
                            let result = run_batch(&mut exec, &job, &emit, &token)
                                .map_err(|e| e.to_string());
                            send(WorkerEvent::Finished(result));
                        }
                        Ok(Command::Train(job)) => {
                            token.reset();
                            // Training needs the memory the cached node outputs hold.
                            exec.clear_cache();
                            let result =
                                run_job(&job, &token, &mut |e| send(WorkerEvent::Train(e)))
                                    .map_err(|e| e.to_string());
                            send(WorkerEvent::TrainFinished(result));
                        }
                        Ok(Command::Shutdown) | Err(_) => break,
                    }
                }
            })
            .ok();
        Worker {
            commands,
            events,
            cancel,
            thread,
        }
    }

    /// Queues a batch.
    pub fn submit(&self, job: BatchJob) -> Result<()> {
        self.commands
            .send(Command::Batch(Box::new(job)))
            .map_err(|_| EngineError::Plan("the engine worker has stopped".into()))
    }

    /// Queues a LoRA training run.
    pub fn submit_training(&self, job: TrainJob) -> Result<()> {
        self.commands
            .send(Command::Train(Box::new(job)))
            .map_err(|_| EngineError::Plan("the engine worker has stopped".into()))
    }

    /// Cancels the running batch or training (within one step).
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    pub fn events(&self) -> &Receiver<WorkerEvent> {
        &self.events
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.cancel.cancel();
        let _ = self.commands.send(Command::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
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

/// The text chunks of a work item's output PNGs: the recipe as the item ran it and A1111's
/// `parameters` (see [`recipe_chunks`]).
struct RecipeChunks {
    /// `defect-studio/graph`: the recipe JSON.
    graph: (String, String),
    /// A1111's parameters: from the sampler node ([`crate::interop::a1111::from_graph`]), or
    /// seed and recipe summary for a procedural recipe
    /// ([`crate::interop::a1111::procedural_parameters`]).
    parameters: crate::interop::a1111::A1111Params,
}

impl RecipeChunks {
    /// The chunks of one output PNG. `parameters` gets the image's `Size` where the recipe sets
    /// none (a procedural recipe, or a sampler node without width and height).
    fn for_image(&self, width: u32, height: u32) -> Vec<(String, String)> {
        use crate::interop::{a1111, png_meta};
        let mut p = self.parameters.clone();
        p.size.get_or_insert((width, height));
        vec![
            self.graph.clone(),
            (
                png_meta::A1111_KEYWORD.to_string(),
                a1111::format_parameters(&p),
            ),
        ]
    }
}

/// The text chunks of an output PNG: the recipe as this work item ran it (its seed as the
/// graph's seed, so `defect-studio run OUTPUT.png` repeats it; inputs over 256 KB referenced by
/// hash and kept in the data folder's `assets/`), and A1111's `parameters`, which every output
/// carries: a recipe with a sampler node gets its settings (`RNG: CPU` and `Lora hashes`
/// included), a procedural one its seed, size and a short summary.
fn recipe_chunks(doc: &GraphDoc, seed: u64, base_dir: &Path, embed_assets: bool) -> RecipeChunks {
    use crate::interop::{a1111, png_meta};
    let mut run_doc = doc.clone();
    run_doc.meta.seed = Some(seed);
    // Input files by absolute path: the PNG does not live beside the graph file.
    let catalogue = nodes::Catalogue::builtin();
    for node in run_doc.nodes.values_mut() {
        let Some(spec) = catalogue.get(&node.kind) else {
            continue;
        };
        for p in spec.params {
            if !matches!(p.kind, ParamKind::InputFile { .. }) {
                continue;
            }
            if let Some(ParamValue::Text(v)) = node.params.get_mut(p.name) {
                if !v.is_empty() && !v.starts_with("asset:") && Path::new(v.as_str()).is_relative()
                {
                    *v = resolve_path(base_dir, v).to_string_lossy().into_owned();
                }
            }
        }
    }
    crate::exec::keep_assets(&run_doc, png_meta::LARGE_ASSET_BYTES);
    // The checkpoint's and LoRAs' hashes for `Model hash` and `Lora hashes`: known at run time
    // (the recipe's own `models` list rarely names them). Only the parameters see them; the
    // embedded recipe stays as written.
    let mut hashed = run_doc.clone();
    hashed.models.extend(model_refs(&run_doc));
    RecipeChunks {
        graph: (
            png_meta::GRAPH_KEYWORD.to_string(),
            png_meta::prepare_assets(&run_doc, embed_assets).to_json(),
        ),
        parameters: a1111::from_graph(&hashed, seed)
            .unwrap_or_else(|| a1111::procedural_parameters(&run_doc, seed)),
    }
}

/// Model references for the recipe's checkpoint and LoRA files that its `models` list lacks:
/// each resolved as its node resolves it, hashed through the model manager's cache (by path,
/// size and modification time, so a file is read once, not once per work item). A model that
/// cannot be found or read, or a diffusers folder, is left out (its node reports any error when
/// it runs).
fn model_refs(doc: &GraphDoc) -> Vec<nodes::ModelRef> {
    let listed = |name: &str| {
        let stem = Path::new(name).file_stem().unwrap_or_default();
        doc.models
            .iter()
            .any(|m| Path::new(&m.name).file_stem() == Some(stem) && !m.sha256.is_empty())
    };
    fn param(n: &nodes::NodeDoc) -> Option<&ParamValue> {
        match n.kind.as_str() {
            "LoraLoader" => n.params.get("lora"),
            "LoadCheckpoint" => n.params.get("checkpoint"),
            _ => None,
        }
    }
    let manager = crate::models::manager::ModelManager::default_dirs();
    doc.nodes
        .values()
        .filter_map(|n| param(n).and_then(|v| v.as_str()))
        .filter(|name| !name.is_empty() && !listed(name))
        .filter_map(|name| {
            let path = crate::sd::nodes::resolve_checkpoint(name).ok()?;
            if !path.is_file() {
                return None;
            }
            let sha256 = manager.sha256(&path).ok()?;
            Some(nodes::ModelRef {
                name: path.to_string_lossy().into_owned(),
                sha256,
                arch: String::new(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(crate::store::utc(0), (1970, 1, 1, 0, 0, 0));
        // 2026-11-25 19:41:17 UTC
        assert_eq!(
            crate::store::utc(1_795_635_677_000),
            (2026, 11, 25, 19, 41, 17)
        );
    }

    #[test]
    fn templates_expand_and_stay_inside() {
        let v = TemplateVars {
            graph: "My plate/../x",
            node: "save",
            run: 7,
            item: 3,
            seed: 42,
            ms: 0,
        };
        let p = expand_template("{graph}/{run:05}-{item:04}-{node}-{seed}", &v).unwrap();
        assert_eq!(p, PathBuf::from("My_plate_.._x/00007-0003-save-42.png"));
        assert!(expand_template("../escape.png", &v).is_err());
        assert!(expand_template("/abs.png", &v).is_err());
        assert!(expand_template("{nope}.png", &v).is_err());
    }
}
