//! `queue`: the batches queued in a store and never started (a studio closed with a queue,
//! [`engine::queue`]): list them, `run` them in order through the worker, or `clear` them.

use std::path::PathBuf;

use anyhow::{bail, Result};
use engine::{Executor, Worker};

use super::QueueCommand;
use crate::cli::run::{follow, succeeded};

pub(crate) fn queue_cmd(
    command: Option<QueueCommand>,
    json: bool,
    store: Option<PathBuf>,
) -> Result<i32> {
    let store = store.unwrap_or_else(engine::paths::store_path);
    match command {
        None => list(&store, json),
        Some(QueueCommand::Run) => run(&store),
        Some(QueueCommand::Clear) => {
            let n = engine::queue::clear_pending(&store)?;
            println!("dropped {n} queued batch(es) from {}", store.display());
            Ok(0)
        }
    }
}

fn list(store: &std::path::Path, json: bool) -> Result<i32> {
    let pending = engine::queue::pending_jobs(store)?;
    if json {
        let rows: Vec<serde_json::Value> = pending
            .iter()
            .map(|(id, job)| {
                serde_json::json!({
                    "id": id,
                    "graph": job.graph_name,
                    "graph_file": job.graph_path,
                    "items": job.items.len(),
                    "seed": job.base_seed,
                    "shard": job.shard,
                    "out": job.out_dir,
                    "device": job.device,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(0);
    }
    if pending.is_empty() {
        println!("no queued batches in {}", store.display());
        return Ok(0);
    }
    println!(
        "{} queued batch(es) in {}, not started:",
        pending.len(),
        store.display()
    );
    for (id, job) in &pending {
        println!(
            "  #{id}  {}  {} item(s), seed {}, on {}  → {}",
            job.graph_name,
            job.items.len(),
            job.base_seed,
            job.device.as_deref().unwrap_or("the default device"),
            job.out_dir.display()
        );
    }
    Ok(0)
}

/// Runs the pending batches on one worker, in queue order; fails naming the first failure.
fn run(store: &std::path::Path) -> Result<i32> {
    let worker = Worker::spawn(Executor::builtin());
    let ids = worker.restore(store)?;
    if ids.is_empty() {
        println!("no queued batches in {}", store.display());
        return Ok(0);
    }
    let ended = follow(&worker, store, 0, ids.len(), |say| {
        say(format!("running {} queued batch(es)", ids.len()))
    })?;
    let mut failed = Vec::new();
    for result in ended {
        match result.map_err(|e| anyhow::anyhow!(e)).and_then(succeeded) {
            Ok(s) => println!(
                "run #{}: {} output(s) ({:.2} s)",
                s.run_id,
                s.saved.len(),
                s.seconds
            ),
            Err(e) => failed.push(e.to_string()),
        }
    }
    if let Some(first) = failed.first() {
        bail!(
            "{} of {} queued batch(es) failed; the first: {first}",
            failed.len(),
            ids.len()
        );
    }
    Ok(0)
}
