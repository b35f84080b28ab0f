//! The worker's queue: pause and resume, reorder, remove, run next; pausing a running batch
//! between items; queued batches kept in the store and restored after a restart.

mod batch_common;

use std::path::Path;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use batch_common::{store, texture_job};
use engine::queue::{pending_jobs, QueueEntry};
use engine::run::{BatchEvent, BatchJob};
use engine::{Executor, JobId, Store, Worker, WorkerEvent};

/// A batch of `count` items of a `size`² texture named `name`, into `dir`'s store.
fn job(dir: &Path, name: &str, count: u64, size: u32) -> BatchJob {
    texture_job(dir, name, count, size, 7, None)
}

/// Graph names of the recorded runs, in run order.
fn runs(dir: &Path) -> Vec<String> {
    if !store(dir).exists() {
        return Vec::new();
    }
    Store::open(&store(dir))
        .unwrap()
        .runs()
        .unwrap()
        .into_iter()
        .map(|(_, r)| r.graph_name)
        .collect()
}

/// Every event until `n` batches have finished (panics after a minute).
fn until_finished(worker: &Worker, n: usize) -> Vec<WorkerEvent> {
    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut finished = 0;
    while finished < n {
        let left = deadline.saturating_duration_since(Instant::now());
        let ev = worker
            .events()
            .recv_timeout(left)
            .expect("the batches finish within a minute");
        finished += usize::from(matches!(ev, WorkerEvent::Finished(_)));
        events.push(ev);
    }
    events
}

/// The events that come within `quiet` of each other (stops at the first gap of `quiet`).
fn drain(worker: &Worker, quiet: Duration) -> Vec<WorkerEvent> {
    let mut events = Vec::new();
    loop {
        match worker.events().recv_timeout(quiet) {
            Ok(ev) => events.push(ev),
            Err(RecvTimeoutError::Timeout) => return events,
            Err(RecvTimeoutError::Disconnected) => panic!("the worker stopped"),
        }
    }
}

fn labels(entries: &[QueueEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.label.as_str()).collect()
}

fn last_queue(events: &[WorkerEvent]) -> Option<Vec<QueueEntry>> {
    events.iter().rev().find_map(|e| match e {
        WorkerEvent::Queue(q) => Some(q.clone()),
        _ => None,
    })
}

fn finished_ok(events: &[WorkerEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            WorkerEvent::Finished(Ok(s)) => Some(format!("{}:{}", s.run_id, s.saved.len())),
            WorkerEvent::Finished(Err(e)) => panic!("a batch failed: {e}"),
            _ => None,
        })
        .collect()
}

#[test]
fn a_paused_queue_is_reordered_and_runs_in_its_new_order() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let worker = Worker::spawn(Executor::builtin());
    worker.pause();
    assert!(worker.is_paused());
    let a = worker.submit(job(d, "a", 2, 16)).unwrap();
    let b = worker.submit(job(d, "b", 2, 16)).unwrap();
    let c = worker.submit(job(d, "c", 2, 16)).unwrap();
    assert_eq!(labels(&worker.queue()), ["a", "b", "c"]);
    assert!(worker.queue().iter().all(|e| !e.running && !e.restored));
    assert_eq!(worker.queue()[1].items, 2);
    assert_eq!(worker.queue()[1].kind, engine::queue::KIND_BATCH);

    // Reorder: c first; remove a; b next.
    assert!(worker.move_to(c, 0));
    assert_eq!(labels(&worker.queue()), ["c", "a", "b"]);
    assert!(worker.move_to(a, 99), "past the end: last");
    assert_eq!(labels(&worker.queue()), ["c", "b", "a"]);
    assert!(worker.remove(a));
    assert!(!worker.remove(a), "a is gone");
    assert!(!worker.move_to(a, 0));
    assert!(worker.run_next(b));
    assert_eq!(labels(&worker.queue()), ["b", "c"]);
    let ids: Vec<JobId> = worker.queue().iter().map(|e| e.id).collect();
    assert_eq!(ids, [b, c]);

    // Every change was reported, the last report is the queue as it is.
    let events = drain(&worker, Duration::from_millis(300));
    assert_eq!(labels(&last_queue(&events).unwrap()), ["b", "c"]);
    assert!(
        events
            .iter()
            .filter(|e| matches!(e, WorkerEvent::Queue(_)))
            .count()
            >= 7,
        "pause, 3 submits, 2 moves, remove, run next"
    );
    // Paused: nothing started.
    assert!(!events.iter().any(|e| matches!(e, WorkerEvent::Batch(_))));
    assert!(runs(d).is_empty());

    worker.resume();
    let events = until_finished(&worker, 2);
    assert_eq!(finished_ok(&events).len(), 2);
    assert_eq!(runs(d), ["b", "c"], "the new order; a never ran");
    assert!(!d.join("out-a").exists());
    // While b ran it was the queue's running entry, c waiting.
    let while_b = events
        .iter()
        .find_map(|e| match e {
            WorkerEvent::Queue(q) if q.first().is_some_and(|e| e.running) => Some(q.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(labels(&while_b), ["b", "c"]);
    let later = drain(&worker, Duration::from_millis(200));
    let end = last_queue(&later).unwrap_or_else(|| worker.queue());
    assert!(end.is_empty(), "{end:?}");
    // The queue reports frame each job's events: the job running before its first event,
    // the job gone after its last, so the stream alone says which job events belong to.
    let frames: Vec<String> = events
        .iter()
        .chain(&later)
        .filter_map(|e| match e {
            WorkerEvent::Queue(q) => Some(match q.first() {
                Some(e) if e.running => format!("running {}", e.label),
                _ => "idle".into(),
            }),
            WorkerEvent::Batch(BatchEvent::RunStarted { .. }) => Some("started".into()),
            WorkerEvent::Finished(_) => Some("finished".into()),
            _ => None,
        })
        .collect();
    assert_eq!(
        frames,
        [
            // Resumed, nothing running yet.
            "idle",
            "running b",
            "started",
            "finished",
            "idle",
            "running c",
            "started",
            "finished",
            "idle"
        ]
    );
    assert!(pending_jobs(&store(d)).unwrap().is_empty());
}

#[test]
fn pausing_stops_a_running_batch_between_items() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let worker = Worker::spawn(Executor::builtin());
    let n = 60;
    let waiting = job(d, "waits", 1, 8);
    worker.submit(job(d, "long", n, 16)).unwrap();
    worker.submit(waiting).unwrap();
    // Pause as soon as the first item is done.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ev = worker
            .events()
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap();
        if matches!(ev, WorkerEvent::Batch(BatchEvent::ItemFinished { .. })) {
            worker.pause();
            break;
        }
    }
    // The pause takes effect between items: every item that started (before the worker saw
    // the pause; how many depends on how far the events lag behind it) also finished. A bound
    // on that number would measure this thread's lag, not the worker.
    let after = drain(&worker, Duration::from_millis(500));
    let count =
        |evs: &[WorkerEvent], f: fn(&WorkerEvent) -> bool| evs.iter().filter(|e| f(e)).count();
    let started = |evs: &[WorkerEvent]| {
        count(evs, |e| {
            matches!(e, WorkerEvent::Batch(BatchEvent::ItemStarted { .. }))
        })
    };
    let finished = count(&after, |e| {
        matches!(e, WorkerEvent::Batch(BatchEvent::ItemFinished { .. }))
    });
    assert_eq!(
        started(&after),
        finished,
        "an item was left half done when the queue paused"
    );
    let store = Store::open(&store(d)).unwrap();
    let outputs = store.outputs(None).unwrap().len();
    assert!(
        outputs < n as usize,
        "the batch stopped ({outputs} outputs)"
    );
    std::thread::sleep(Duration::from_millis(500));
    let quiet = drain(&worker, Duration::from_millis(100));
    assert_eq!(started(&quiet), 0, "no item starts while paused");
    assert_eq!(store.outputs(None).unwrap().len(), outputs);
    let (_, rec) = store.runs().unwrap().pop().unwrap();
    assert_eq!(rec.status, engine::RunStatus::Running);
    assert_eq!(runs(d), ["long"], "the waiting batch did not start");
    let q = worker.queue();
    assert_eq!(labels(&q), ["long", "waits"]);
    assert!(q[0].running);

    worker.resume();
    let events = until_finished(&worker, 2);
    let done = finished_ok(&events);
    assert_eq!(done.len(), 2);
    assert!(done[0].ends_with(&format!(":{n}")), "{done:?}");
    assert_eq!(store.outputs(None).unwrap().len(), n as usize + 1);
    assert_eq!(runs(d), ["long", "waits"]);
}

#[test]
fn cancel_ends_a_paused_batch_and_the_queue_stays_paused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let worker = Worker::spawn(Executor::builtin());
    worker.submit(job(d, "long", 60, 16)).unwrap();
    worker.submit(job(d, "next", 1, 8)).unwrap();
    loop {
        let ev = worker
            .events()
            .recv_timeout(Duration::from_secs(60))
            .unwrap();
        if matches!(ev, WorkerEvent::Batch(BatchEvent::ItemFinished { .. })) {
            worker.pause();
            break;
        }
    }
    worker.cancel();
    let events = until_finished(&worker, 1);
    let Some(WorkerEvent::Finished(Ok(s))) = events.last() else {
        panic!("{events:?}")
    };
    assert_eq!(s.status, engine::RunStatus::Cancelled);
    drain(&worker, Duration::from_millis(300));
    assert_eq!(runs(d), ["long"], "paused: the next batch waits");
    assert_eq!(labels(&worker.queue()), ["next"]);
}

#[test]
fn queued_batches_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    {
        let worker = Worker::spawn(Executor::builtin());
        worker.pause();
        worker.submit(job(d, "first", 2, 16)).unwrap();
        worker.submit(job(d, "second", 3, 16)).unwrap();
        let gone = worker.submit(job(d, "removed", 1, 16)).unwrap();
        assert!(worker.remove(gone));
        // The worker goes away with its queue (the studio closing).
    }
    assert!(runs(d).is_empty(), "nothing ran");
    let owners: Vec<u32> = Store::open(&store(d))
        .unwrap()
        .queued()
        .unwrap()
        .into_iter()
        .map(|(_, r)| r.pid)
        .collect();
    assert_eq!(
        owners,
        [0, 0],
        "a worker that went away leaves its batches to others"
    );
    let pending = pending_jobs(&store(d)).unwrap();
    let names: Vec<&str> = pending.iter().map(|(_, j)| j.graph_name.as_str()).collect();
    assert_eq!(names, ["first", "second"], "the removed one is not kept");
    let (_, second) = &pending[1];
    assert_eq!(second.items.len(), 3);
    assert_eq!(second.doc, batch_common::texture_doc(16));
    assert_eq!(second.out_dir, d.join("out-second"));
    assert_eq!(second.store_path, store(d));

    let worker = Worker::spawn(Executor::builtin());
    worker.pause();
    let ids = worker.restore(&store(d)).unwrap();
    assert_eq!(ids.len(), 2);
    assert!(
        worker.restore(&store(d)).unwrap().is_empty(),
        "restoring twice queues nothing twice"
    );
    let q = worker.queue();
    assert_eq!(labels(&q), ["first", "second"]);
    assert!(q.iter().all(|e| e.restored && !e.running));
    // Still pending (not started) while queued here.
    assert_eq!(pending_jobs(&store(d)).unwrap().len(), 2);
    worker.resume();
    let events = until_finished(&worker, 2);
    assert_eq!(finished_ok(&events).len(), 2);
    assert_eq!(runs(d), ["first", "second"]);
    // Their outputs exist, each in its batch's output folder.
    let s = Store::open(&store(d)).unwrap();
    let mut per_run = Vec::new();
    for (run_id, rec) in s.runs().unwrap() {
        let outputs = s.outputs(Some(run_id)).unwrap();
        for (_, out) in &outputs {
            let path = Path::new(&out.path);
            assert!(path.is_file(), "{}", out.path);
            assert!(path.starts_with(d.join(format!("out-{}", rec.graph_name))));
        }
        per_run.push((rec.graph_name, outputs.len()));
    }
    assert_eq!(per_run, [("first".into(), 2), ("second".to_string(), 3)]);
    assert!(pending_jobs(&store(d)).unwrap().is_empty());
}

#[test]
fn a_started_batch_is_not_pending_and_discarded_ones_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    {
        let worker = Worker::spawn(Executor::builtin());
        worker.submit(job(d, "started", 60, 16)).unwrap();
        worker.submit(job(d, "waiting", 1, 16)).unwrap();
        loop {
            let ev = worker
                .events()
                .recv_timeout(Duration::from_secs(60))
                .unwrap();
            if matches!(ev, WorkerEvent::Batch(BatchEvent::RunStarted { .. })) {
                worker.pause();
                break;
            }
        }
        let names: Vec<String> = pending_jobs(&store(d))
            .unwrap()
            .into_iter()
            .map(|(_, j)| j.graph_name)
            .collect();
        assert_eq!(names, ["waiting"]);
        // Dropped while running: the started batch is cancelled, the waiting one kept.
    }
    let s = Store::open(&store(d)).unwrap();
    let (_, rec) = s.runs().unwrap().pop().unwrap();
    assert_eq!(
        (rec.graph_name.as_str(), rec.status),
        ("started", engine::RunStatus::Cancelled)
    );
    drop(s);
    let worker = Worker::spawn(Executor::builtin());
    worker.pause();
    let ids = worker.restore(&store(d)).unwrap();
    assert_eq!(labels(&worker.queue()), ["waiting"]);
    let err = worker
        .discard_restored(&d.join("other.redb"), ids[0])
        .unwrap_err();
    assert!(err.to_string().contains("other.redb"), "{err}");
    assert_eq!(worker.queue().len(), 1, "a wrong store discards nothing");
    worker.discard_restored(&store(d), ids[0]).unwrap();
    assert!(worker.queue().is_empty());
    assert!(pending_jobs(&store(d)).unwrap().is_empty());
    assert!(worker.discard_restored(&store(d), ids[0]).is_err());
}

#[test]
fn two_workers_restoring_one_store_run_each_batch_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    {
        let worker = Worker::spawn(Executor::builtin());
        worker.pause();
        for name in ["p", "q", "r"] {
            worker.submit(job(d, name, 1, 16)).unwrap();
        }
    }
    let one = Worker::spawn(Executor::builtin());
    let two = Worker::spawn(Executor::builtin());
    one.pause();
    two.pause();
    assert_eq!(one.restore(&store(d)).unwrap().len(), 3);
    assert_eq!(two.restore(&store(d)).unwrap().len(), 3);
    one.resume();
    two.resume();
    let count = |events: Vec<WorkerEvent>| {
        events
            .iter()
            .filter(|e| matches!(e, WorkerEvent::Finished(Ok(_))))
            .count()
    };
    let ran = count(until_finished(&one, 3)) + count(until_finished(&two, 3));
    assert_eq!(ran, 3, "each batch ran once; the other worker skipped it");
    let mut names = runs(d);
    names.sort();
    assert_eq!(names, ["p", "q", "r"]);
}

#[test]
fn queue_rows_never_reuse_ids_and_other_live_processes_keep_theirs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = Store::open(&store(d)).unwrap();
    let j = job(d, "row", 2, 16);
    let rec = |pid: u32| engine::store::QueuedBatch {
        graph_json: j.doc.to_json(),
        graph_name: j.graph_name.clone(),
        base_dir: j.base_dir.clone(),
        items: j.items.clone(),
        base_seed: j.base_seed,
        shard: None,
        out_dir: j.out_dir.clone(),
        targets: None,
        graph_path: None,
        embed_assets: false,
        pid,
        submitted_ms: 1,
        device: None,
    };
    let me = std::process::id();
    let a = s.add_queued(&rec(me)).unwrap();
    let b = s.add_queued(&rec(me)).unwrap();
    assert!(b > a);
    assert!(s.take_queued(b).unwrap());
    assert!(!s.take_queued(b).unwrap(), "taken once only");
    let c = s.add_queued(&rec(me)).unwrap();
    assert!(c > b, "a removed row's id is not given again");
    assert!(!s.set_queued_owner(b, me).unwrap());
    // Process 1 is alive: its queued batch is its own, not pending here.
    assert!(s.set_queued_owner(c, 1).unwrap());
    let dead = s.add_queued(&rec(u32::MAX - 7)).unwrap();
    let pending: Vec<u64> = pending_jobs(&store(d))
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(pending, [a, dead]);
    let (_, listed) = pending_jobs(&store(d)).unwrap().remove(0);
    assert_eq!(listed.items.len(), 2);
    assert_eq!(listed.doc, j.doc);
    // clear_pending drops what is pending, never another live process's batch.
    assert_eq!(engine::queue::clear_pending(&store(d)).unwrap(), 2);
    let left: Vec<u64> = s.queued().unwrap().into_iter().map(|(id, _)| id).collect();
    assert_eq!(left, [c]);
}
