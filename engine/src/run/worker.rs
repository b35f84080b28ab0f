//! The engine's [`Worker`] thread: it owns the [`Executor`] (and so its cache) and runs the
//! jobs of its queue ([`crate::queue`]) one after another: batches, LoRA trainings and detector
//! trainings. Callers queue jobs, steer the queue (pause, reorder, remove, run next, cancel)
//! and read events.

use std::path::Path;
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::{run_batch, BatchEvent, BatchJob, BatchSummary};
use crate::error::{EngineError, Result};
use crate::exec::{CancelToken, Executor};
use crate::inspect::classifier::{run_classifier, ClassifierJob, DetectorEvent, DetectorOutcome};
use crate::queue::{self, Job, JobId, JobQueue, QueueEntry, Queued, Row};
use crate::sd::train::job::{run_job, TrainEvent, TrainJob, TrainOutcome};
use crate::store::{now_ms, Store};

/// A detector training the worker runs (the studio's Inspect panel submits these).
#[derive(Clone, Debug)]
pub enum DetectorJob {
    Classifier(ClassifierJob),
    /// `train-segmenter` (the same settings; `multiclass` is ignored).
    Segmenter(ClassifierJob),
}

impl DetectorJob {
    /// The training settings.
    pub fn job(&self) -> &ClassifierJob {
        match self {
            DetectorJob::Classifier(j) | DetectorJob::Segmenter(j) => j,
        }
    }

    fn run(
        &self,
        cancel: &CancelToken,
        emit: &mut dyn FnMut(DetectorEvent),
    ) -> Result<DetectorOutcome> {
        match self {
            DetectorJob::Classifier(j) => run_classifier(j, cancel, emit),
            DetectorJob::Segmenter(j) => crate::inspect::segmenter::run_segmenter(j, cancel, emit),
        }
    }
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
    Detector(DetectorEvent),
    /// A detector training ended (the error is `cancelled` when it was cancelled).
    DetectorFinished(std::result::Result<DetectorOutcome, String>),
    /// The queue changed (a job queued, started, finished, removed or moved, or the queue
    /// paused or resumed): every job, the running one first ([`Worker::queue`]).
    Queue(Vec<QueueEntry>),
}

/// The engine's worker thread. It owns the [`Executor`] (and so its cache) and runs queued
/// jobs one after another; callers only queue and steer jobs and read events.
pub struct Worker {
    queue: Arc<JobQueue>,
    events: Receiver<WorkerEvent>,
    cancel: CancelToken,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    pub fn spawn(exec: Executor) -> Worker {
        Worker::spawn_with_notify(exec, None)
    }

    /// Like [`Worker::spawn`]; `notify` is called after every event the worker thread sends
    /// (the studio passes `request_repaint`, so the UI wakes up only when something happened).
    /// The Queue events of changes made through this handle come without it.
    pub fn spawn_with_notify(exec: Executor, notify: Option<Box<dyn Fn() + Send>>) -> Worker {
        let (event_tx, events) = channel::<WorkerEvent>();
        let queue = Arc::new(JobQueue::new(event_tx, notify));
        let cancel = CancelToken::new();
        let (q, token) = (queue.clone(), cancel.clone());
        let thread = std::thread::Builder::new()
            .name("defect-studio-engine".into())
            .spawn(move || work(exec, &q, &token))
            .ok();
        Worker {
            queue,
            events,
            cancel,
            thread,
        }
    }

    fn stopped() -> EngineError {
        EngineError::Plan("the engine worker has stopped".into())
    }

    /// Queues a job (after the others); an error when the worker thread is gone.
    fn push(&self, job: Job, row: Option<Row>, restored: bool, submitted_ms: u64) -> Result<JobId> {
        if self.thread.as_ref().is_none_or(|t| t.is_finished()) {
            return Err(Worker::stopped());
        }
        Ok(self.queue.push(job, row, restored, submitted_ms))
    }

    /// Queues a batch, kept in its store's queue table until it starts ([`crate::queue`]). A
    /// target device that is not a device name is refused here
    /// ([`crate::devices::normalize_device`]).
    pub fn submit(&self, mut job: BatchJob) -> Result<JobId> {
        job.device = job
            .device
            .as_deref()
            .map(crate::devices::normalize_device)
            .transpose()?;
        let row = queue::keep(&job)?;
        let id = self.push(Job::Batch(Box::new(job)), row.clone(), false, now_ms());
        if let (Err(_), Some(row)) = (&id, row) {
            let _ = row.take();
        }
        id
    }

    /// Queues a LoRA training run (not kept across a restart).
    pub fn submit_training(&self, job: TrainJob) -> Result<()> {
        self.push(Job::Train(Box::new(job)), None, false, now_ms())
            .map(drop)
    }

    /// Queues a detector training run (not kept across a restart).
    pub fn submit_detector(&self, job: DetectorJob) -> Result<()> {
        self.push(Job::Detector(Box::new(job)), None, false, now_ms())
            .map(drop)
    }

    /// Every job: the running one first, then the waiting ones in the order they will run.
    pub fn queue(&self) -> Vec<QueueEntry> {
        self.queue.entries()
    }

    /// Pauses: the running batch stops before its next work item, no waiting job starts.
    pub fn pause(&self) {
        self.queue.set_paused(true);
    }

    /// Resumes after [`Worker::pause`].
    pub fn resume(&self) {
        self.queue.set_paused(false);
    }

    pub fn is_paused(&self) -> bool {
        self.queue.is_paused()
    }

    /// Removes a waiting job (and its store row); false when it is not waiting (running,
    /// finished or unknown). A store that cannot be written keeps the row: the batch is then
    /// listed by [`queue::pending_jobs`] in a later session.
    pub fn remove(&self, id: JobId) -> bool {
        let Some(q) = self.queue.remove(id) else {
            return false;
        };
        if let Some(row) = q.row {
            let _ = row.take();
        }
        true
    }

    /// Moves a waiting job to `index` among the waiting jobs (0: next; past the end: last);
    /// false when the job is not waiting.
    pub fn move_to(&self, id: JobId, index: usize) -> bool {
        self.queue.move_to(id, index)
    }

    /// Sets the device a waiting batch targets (`None`: the default device when it starts;
    /// see [`crate::devices`]), in the queue and in its store row, so a restart keeps it; the
    /// queue is reported ([`WorkerEvent::Queue`]). False, changing nothing, when `id` is not a
    /// waiting batch (running, finished, a training or unknown) or `device` is not a device name
    /// ([`crate::devices::normalize_device`]: the studio offers [`crate::devices::report`]'s
    /// choices). Like [`Worker::remove`], a store that cannot be written keeps the old device
    /// in the row (a later session would restore that).
    pub fn set_device(&self, id: JobId, device: Option<String>) -> bool {
        let Ok(device) = device
            .as_deref()
            .map(crate::devices::normalize_device)
            .transpose()
        else {
            return false;
        };
        let Some(row) = self.queue.set_device(id, device.clone()) else {
            return false;
        };
        if let Some(row) = row {
            if let Ok(store) = Store::open(&row.store) {
                let _ = store.set_queued_device(row.id, device);
            }
        }
        true
    }

    /// Makes a waiting job the next to start.
    pub fn run_next(&self, id: JobId) -> bool {
        self.move_to(id, 0)
    }

    /// Re-queues the batches an earlier session left in the store `store_path`
    /// ([`queue::pending_jobs`]), after the jobs already queued, marked `restored`; they start
    /// as the queue allows (paused or not). Batches this worker holds already are skipped.
    /// Returns their ids in this worker's queue.
    pub fn restore(&self, store_path: &Path) -> Result<Vec<JobId>> {
        let pending = queue::pending_records(store_path)?;
        if pending.is_empty() {
            return Ok(Vec::new());
        }
        let store = Store::open(store_path)?;
        let mut ids = Vec::new();
        for (row_id, rec, job) in pending {
            let row = Row {
                store: store_path.to_path_buf(),
                id: row_id,
            };
            if self.queue.holds_row(&row) || !store.set_queued_owner(row_id, std::process::id())? {
                continue;
            }
            ids.push(self.push(Job::Batch(Box::new(job)), Some(row), true, rec.submitted_ms)?);
        }
        Ok(ids)
    }

    /// Drops restored batch `id` (an id [`Worker::restore`] returned for the store
    /// `store_path`, still waiting) from the queue and from the store.
    pub fn discard_restored(&self, store_path: &Path, id: JobId) -> Result<()> {
        let q = self.queue.remove_where(id, |q| {
            q.entry.restored && q.row.as_ref().is_some_and(|r| r.store == store_path)
        });
        match q.and_then(|q| q.row) {
            Some(row) => row.take().map(drop),
            None => Err(EngineError::Plan(format!(
                "job {id} is not a batch restored from store {} and waiting in the queue",
                store_path.display()
            ))),
        }
    }

    /// Cancels the running batch or training (within one step), paused or not.
    pub fn cancel(&self) {
        self.cancel.cancel();
        self.queue.wake();
    }

    pub fn events(&self) -> &Receiver<WorkerEvent> {
        &self.events
    }
}

impl Drop for Worker {
    /// Cancels the running job and stops; waiting batches stay in their stores, released for
    /// a later session or another process ([`Worker::restore`]).
    fn drop(&mut self) {
        self.cancel.cancel();
        self.queue.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        queue::release(&self.queue.waiting_rows());
    }
}

/// The worker thread: runs each job as the queue lets it start.
fn work(mut exec: Executor, queue: &JobQueue, token: &CancelToken) {
    let send = |e| queue.send(e);
    while let Some(Queued { entry, job, row }) = queue.next() {
        token.reset();
        match job {
            Job::Batch(job) => {
                // The run record takes over from the queue row; a row already gone was
                // started or dropped by another process.
                let taken = row.as_ref().map_or(Ok(true), Row::take);
                let result = match taken {
                    Ok(true) => {
                        // Pausing stops the batch before its next work item: `run_batch` emits
                        // `ItemStarted` before any work of the item.
                        let emit = |e: BatchEvent| {
                            if matches!(e, BatchEvent::ItemStarted { .. }) {
                                queue.wait_while_paused(token);
                            }
                            send(WorkerEvent::Batch(e));
                        };
                        run_batch(&mut exec, &job, &emit, token).map_err(|e| e.to_string())
                    }
                    Ok(false) => Err(format!(
                        "queued batch {} (\"{}\") is no longer in store {}: another process \
                         ran or dropped it",
                        entry.id,
                        entry.label,
                        job.store_path.display()
                    )),
                    Err(e) => Err(e.to_string()),
                };
                send(WorkerEvent::Finished(result));
            }
            Job::Train(job) => {
                // Training needs the memory the cached node outputs hold.
                exec.clear_cache();
                let result = run_job(&job, token, &mut |e| send(WorkerEvent::Train(e)))
                    .map_err(|e| e.to_string());
                send(WorkerEvent::TrainFinished(result));
            }
            Job::Detector(job) => {
                exec.clear_cache();
                let result = job
                    .run(token, &mut |e| send(WorkerEvent::Detector(e)))
                    .map_err(|e| e.to_string());
                send(WorkerEvent::DetectorFinished(result));
            }
        }
        queue.finished();
    }
}
