//! The worker's job queue: its own ordered list of waiting jobs (not the order of a channel),
//! so the studio can pause and resume it, reorder it, remove a job or run one next, and the
//! batches it holds, kept in their stores, survive a restart.
//!
//! **Order and pause.** [`crate::Worker`] runs one job at a time: the first waiting job starts
//! when nothing runs and the queue is not paused. Pausing stops the running batch before its
//! next work item (it waits, its run record still `running`) and keeps every waiting job from
//! starting; resuming goes on where it stopped. Cancelling still cancels the running job, paused
//! or not. Every change of the queue (a job queued, started, finished, removed or moved; pause
//! and resume) is reported as [`crate::WorkerEvent::Queue`] with the whole list.
//!
//! **Persistence.** A queued batch is written to its store's `queue` table
//! ([`crate::store::QueuedBatch`]) and its row is removed when the batch starts (the run
//! record takes over: a run killed midway shows as `interrupted`) or is removed from the queue.
//! A worker starts a stored batch only after taking its row, so two processes never both run
//! it. A worker that goes away (the studio closing) leaves its waiting batches' rows to
//! whoever comes next. Rows left by an earlier session (or a process that died) are listed by
//! [`pending_jobs`] and re-queued by [`crate::Worker::restore`]; rows in the queue of another
//! running process's worker are that process's. Training jobs (LoRA, detectors) are queued the same way but not
//! kept: a restart forgets them. A batch whose record cannot be encoded (a path that is not
//! UTF-8) is queued without a row.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::sync::{Condvar, Mutex, MutexGuard};

use serde::Serialize;

use crate::error::Result;
use crate::exec::CancelToken;
use crate::run::{BatchJob, DetectorJob, WorkerEvent};
use crate::sd::train::job::TrainJob;
use crate::store::{now_ms, process_alive, QueuedBatch, Store};

/// A job's number in one worker's queue (1, 2, …, never reused by that worker). The ids
/// [`pending_jobs`] returns are instead the store's row ids of the batches.
pub type JobId = u64;

/// A job kind's name in [`QueueEntry::kind`].
pub const KIND_BATCH: &str = "batch";
pub const KIND_LORA: &str = "lora training";
pub const KIND_DETECTOR: &str = "detector training";

/// One job in the queue, as the studio shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QueueEntry {
    pub id: JobId,
    /// The graph's name (batches), the LoRA's or the detector's file stem (trainings).
    pub label: String,
    /// [`KIND_BATCH`], [`KIND_LORA`] or [`KIND_DETECTOR`].
    pub kind: &'static str,
    /// Work items (batches), steps (LoRA) or epochs (detectors).
    pub items: u64,
    /// When it was queued (ms since the Unix epoch; a restored batch keeps its first time).
    pub submitted_ms: u64,
    pub running: bool,
    /// Queued in an earlier session and not started yet ([`crate::Worker::restore`]).
    pub restored: bool,
    /// The device a batch targets (`None`: the default device when it starts; always `None`
    /// for trainings, which carry their own device). [`crate::Worker::set_device`] changes it
    /// while the batch waits.
    pub device: Option<String>,
}

/// A job the worker runs.
pub(crate) enum Job {
    Batch(Box<BatchJob>),
    Train(Box<TrainJob>),
    Detector(Box<DetectorJob>),
}

impl Job {
    /// Kind, label and item count for its [`QueueEntry`].
    fn describe(&self) -> (&'static str, String, u64) {
        match self {
            Job::Batch(j) => (KIND_BATCH, j.graph_name.clone(), j.items.len() as u64),
            Job::Train(j) => (KIND_LORA, j.name(), j.cfg.steps as u64),
            Job::Detector(j) => {
                let c = j.job();
                let stem = c.out.file_stem().unwrap_or_default().to_string_lossy();
                (KIND_DETECTOR, stem.into_owned(), c.cfg.epochs as u64)
            }
        }
    }

    /// The device a batch targets, for its [`QueueEntry`].
    fn device(&self) -> Option<String> {
        match self {
            Job::Batch(j) => j.device.clone(),
            Job::Train(_) | Job::Detector(_) => None,
        }
    }
}

/// Where a queued batch's row is: its store and row id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Row {
    pub store: PathBuf,
    pub id: u64,
}

impl Row {
    /// Removes the row; true when this call removed it (see [`Store::take_queued`]).
    pub fn take(&self) -> Result<bool> {
        Store::open(&self.store)?.take_queued(self.id)
    }
}

/// A job waiting (or running) with its entry and its row, if it has one.
pub(crate) struct Queued {
    pub entry: QueueEntry,
    pub job: Job,
    pub row: Option<Row>,
}

#[derive(Default)]
struct State {
    running: Option<QueueEntry>,
    waiting: VecDeque<Queued>,
    paused: bool,
    shutdown: bool,
    last_id: JobId,
}

impl State {
    fn entries(&self) -> Vec<QueueEntry> {
        self.running
            .iter()
            .cloned()
            .chain(self.waiting.iter().map(|q| q.entry.clone()))
            .collect()
    }

    fn position(&self, id: JobId) -> Option<usize> {
        self.waiting.iter().position(|q| q.entry.id == id)
    }
}

/// The queue shared by the worker thread and its handle: state under one lock, a condition
/// variable that wakes the worker (a job queued, resumed, cancelled, shut down), and the event
/// channel. Queue reports are sent while the state lock is held, so they arrive in order.
/// The studio's wake-up call (`notify`) follows the worker thread's events only: a change made
/// through the handle is known to its caller, and the UI thread never waits on the worker's
/// call to it.
pub(crate) struct JobQueue {
    state: Mutex<State>,
    wake: Condvar,
    tx: Sender<WorkerEvent>,
    notify: Mutex<Option<Box<dyn Fn() + Send>>>,
}

impl JobQueue {
    pub fn new(tx: Sender<WorkerEvent>, notify: Option<Box<dyn Fn() + Send>>) -> JobQueue {
        JobQueue {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            tx,
            notify: Mutex::new(notify),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends an event of the worker thread and wakes the studio.
    pub fn send(&self, event: WorkerEvent) {
        let _ = self.tx.send(event);
        self.notify();
    }

    fn notify(&self) {
        let notify = self.notify.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = notify.as_ref() {
            n();
        }
    }

    /// Reports the queue (call with the state lock held) and wakes the worker.
    fn changed(&self, state: &State) {
        let _ = self.tx.send(WorkerEvent::Queue(state.entries()));
        self.wake.notify_all();
    }

    /// Appends a job; returns its id.
    pub fn push(&self, job: Job, row: Option<Row>, restored: bool, submitted_ms: u64) -> JobId {
        let (kind, label, items) = job.describe();
        let device = job.device();
        let mut state = self.lock();
        state.last_id += 1;
        let id = state.last_id;
        state.waiting.push_back(Queued {
            entry: QueueEntry {
                id,
                label,
                kind,
                items,
                submitted_ms,
                running: false,
                restored,
                device,
            },
            job,
            row,
        });
        self.changed(&state);
        id
    }

    pub fn entries(&self) -> Vec<QueueEntry> {
        self.lock().entries()
    }

    pub fn set_paused(&self, paused: bool) {
        let mut state = self.lock();
        if state.paused != paused {
            state.paused = paused;
            self.changed(&state);
        }
    }

    pub fn is_paused(&self) -> bool {
        self.lock().paused
    }

    /// Takes a waiting job out of the queue.
    pub fn remove(&self, id: JobId) -> Option<Queued> {
        self.remove_where(id, |_| true)
    }

    /// Takes a waiting job out of the queue if `which` says so.
    pub fn remove_where(&self, id: JobId, which: impl FnOnce(&Queued) -> bool) -> Option<Queued> {
        let mut state = self.lock();
        let i = state.position(id)?;
        if !which(&state.waiting[i]) {
            return None;
        }
        let q = state.waiting.remove(i);
        self.changed(&state);
        q
    }

    /// Moves a waiting job to `index` among the waiting jobs (past the end: last).
    pub fn move_to(&self, id: JobId, index: usize) -> bool {
        let mut state = self.lock();
        let Some(i) = state.position(id) else {
            return false;
        };
        if let Some(q) = state.waiting.remove(i) {
            let at = index.min(state.waiting.len());
            state.waiting.insert(at, q);
        }
        self.changed(&state);
        true
    }

    /// Sets the target device of a waiting batch; `None` when no batch `id` is waiting, else
    /// its row (if it has one) to update in the store.
    pub fn set_device(&self, id: JobId, device: Option<String>) -> Option<Option<Row>> {
        let mut state = self.lock();
        let i = state.position(id)?;
        let q = &mut state.waiting[i];
        let Job::Batch(job) = &mut q.job else {
            return None;
        };
        job.device.clone_from(&device);
        q.entry.device = device;
        let row = q.row.clone();
        self.changed(&state);
        Some(row)
    }

    /// Whether the queue holds (waiting) the batch of this row already.
    pub fn holds_row(&self, row: &Row) -> bool {
        self.lock()
            .waiting
            .iter()
            .any(|q| q.row.as_ref() == Some(row))
    }

    /// The rows of the waiting batches.
    pub fn waiting_rows(&self) -> Vec<Row> {
        self.lock()
            .waiting
            .iter()
            .filter_map(|q| q.row.clone())
            .collect()
    }

    /// Waits for the next job to start (the queue not paused, a job waiting) and marks it
    /// running; `None` once the worker shuts down.
    pub fn next(&self) -> Option<Queued> {
        let mut state = self.lock();
        loop {
            if state.shutdown {
                return None;
            }
            if !state.paused {
                if let Some(mut q) = state.waiting.pop_front() {
                    q.entry.running = true;
                    state.running = Some(q.entry.clone());
                    self.changed(&state);
                    drop(state);
                    self.notify();
                    return Some(q);
                }
            }
            state = self.wake.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// The running job ended.
    pub fn finished(&self) {
        let mut state = self.lock();
        state.running = None;
        self.changed(&state);
        drop(state);
        self.notify();
    }

    /// Blocks the running batch while the queue is paused (until resumed, cancelled or shut
    /// down).
    pub fn wait_while_paused(&self, cancel: &CancelToken) {
        let mut state = self.lock();
        while state.paused && !state.shutdown && !cancel.is_cancelled() {
            state = self.wake.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Wakes the worker (after a cancel, so a paused batch sees it).
    pub fn wake(&self) {
        let _state = self.lock();
        self.wake.notify_all();
    }

    /// Stops the worker: no further job starts.
    pub fn shutdown(&self) {
        let mut state = self.lock();
        state.shutdown = true;
        self.wake.notify_all();
    }
}

/// A batch's store record, queued by this process now.
pub(crate) fn record_of(job: &BatchJob) -> QueuedBatch {
    QueuedBatch {
        graph_json: job.doc.to_json(),
        graph_name: job.graph_name.clone(),
        base_dir: job.base_dir.clone(),
        items: job.items.clone(),
        base_seed: job.base_seed,
        shard: job.shard,
        out_dir: job.out_dir.clone(),
        targets: job.targets.clone(),
        graph_path: job.graph_path.clone(),
        embed_assets: job.embed_assets,
        pid: std::process::id(),
        submitted_ms: now_ms(),
        device: job.device.clone(),
    }
}

/// Keeps a batch in its store's queue table; `Ok(None)` when its record cannot be encoded
/// (a path that is not UTF-8: the batch is then queued without a row).
pub(crate) fn keep(job: &BatchJob) -> Result<Option<Row>> {
    let rec = record_of(job);
    if serde_json::to_vec(&rec).is_err() {
        return Ok(None);
    }
    let id = Store::open(&job.store_path)?.add_queued(&rec)?;
    Ok(Some(Row {
        store: job.store_path.clone(),
        id,
    }))
}

/// The batch a stored record describes, run against `store_path`.
fn job_of(store_path: &Path, id: u64, rec: QueuedBatch) -> Result<BatchJob> {
    let doc = nodes::GraphDoc::from_json(&rec.graph_json).map_err(|e| {
        crate::EngineError::Plan(format!(
            "store {}: queued batch {id} (\"{}\"): {e}",
            store_path.display(),
            rec.graph_name
        ))
    })?;
    Ok(BatchJob {
        doc,
        graph_name: rec.graph_name,
        base_dir: rec.base_dir,
        items: rec.items,
        base_seed: rec.base_seed,
        shard: rec.shard,
        out_dir: rec.out_dir,
        store_path: store_path.to_path_buf(),
        targets: rec.targets,
        graph_path: rec.graph_path,
        embed_assets: rec.embed_assets,
        device: rec.device,
    })
}

/// The owner of a row whose worker went away ([`release`]): nobody.
const NO_OWNER: u32 = 0;

/// Whether a row was left by an earlier session: queued by this process, released by a worker
/// that went away, or queued by a process that is gone (a batch in the queue of another
/// running process's worker is that process's).
fn left_over(rec: &QueuedBatch) -> bool {
    rec.pid == std::process::id() || rec.pid == NO_OWNER || !process_alive(rec.pid)
}

/// Leaves the rows of a worker's waiting batches to whoever comes next (a worker dropped while
/// its process goes on: another process may then list and restore them). Best effort: a store
/// that cannot be written keeps the row owned by this process until it exits.
pub(crate) fn release(rows: &[Row]) {
    let mut by_store: std::collections::BTreeMap<&Path, Vec<u64>> = Default::default();
    for r in rows {
        by_store.entry(&r.store).or_default().push(r.id);
    }
    for (path, ids) in by_store {
        if let Ok(store) = Store::open(path) {
            for id in ids {
                let _ = store.set_queued_owner(id, NO_OWNER);
            }
        }
    }
}

/// The stored rows of [`pending_jobs`] with their records (submission time included).
pub(crate) fn pending_records(store_path: &Path) -> Result<Vec<(u64, QueuedBatch, BatchJob)>> {
    if !store_path.exists() {
        return Ok(Vec::new());
    }
    let store = Store::open_read_only(store_path)?;
    let mut out = Vec::new();
    for (id, rec) in store.queued()? {
        if left_over(&rec) {
            let job = job_of(store_path, id, rec.clone())?;
            out.push((id, rec, job));
        }
    }
    Ok(out)
}

/// Batches queued in the store `store_path` by an earlier session that never started, by row
/// id (queue order). Batches in the queue of another process still running are not listed.
pub fn pending_jobs(store_path: &Path) -> Result<Vec<(JobId, BatchJob)>> {
    Ok(pending_records(store_path)?
        .into_iter()
        .map(|(id, _, job)| (id, job))
        .collect())
}

/// Drops one pending batch of [`pending_jobs`] by its row id; false when it was not there.
pub fn discard_pending(store_path: &Path, id: JobId) -> Result<bool> {
    Store::open(store_path)?.take_queued(id)
}

/// Drops every pending batch of `store_path` ([`pending_jobs`]); returns how many.
pub fn clear_pending(store_path: &Path) -> Result<usize> {
    let ids: Vec<u64> = pending_jobs(store_path)?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    if ids.is_empty() {
        return Ok(0);
    }
    let store = Store::open(store_path)?;
    let mut n = 0;
    for id in ids {
        n += usize::from(store.take_queued(id)?);
    }
    Ok(n)
}
