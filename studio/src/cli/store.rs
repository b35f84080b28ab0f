//! `store check`: verifies every stored output of a store and lists the bad ones, and recounts
//! the statistics aggregates from the records; `store rebuild-stats` rebuilds them
//! (docs/ARCHITECTURE.md §17).

use std::path::PathBuf;

use anyhow::Result;

/// Checks every output (its PNG and mask decode and match their recorded sha256) and the
/// statistics aggregates (each bucket against a recount from the records); exit code 1 when any
/// output is bad or any bucket differs. Opens the store read-only.
pub(crate) fn store_check_cmd(store: Option<PathBuf>) -> Result<i32> {
    let path = store.unwrap_or_else(engine::paths::store_path);
    let store = engine::Store::open_read_only(&path)?;
    let report = engine::export::check_store(&store)?;
    for b in &report.bad {
        println!("bad output {}: {}", b.id, b.problem);
    }
    println!(
        "{} output(s) checked, {} bad ({})",
        report.checked,
        report.bad.len(),
        path.display()
    );
    let stats = store.check_stats()?;
    for problem in &stats {
        println!("{problem}");
    }
    println!(
        "statistics: {}",
        if stats.is_empty() {
            "the aggregates agree with the records".to_string()
        } else {
            format!(
                "{} bucket(s) differ from a recount of the records",
                stats.len()
            )
        }
    );
    Ok(if report.bad.is_empty() && stats.is_empty() {
        0
    } else {
        1
    })
}

/// `store rebuild-stats`: the aggregates recounted from the records, then checked.
pub(crate) fn rebuild_stats_cmd(store: Option<PathBuf>) -> Result<i32> {
    let path = store.unwrap_or_else(engine::paths::store_path);
    if !path.exists() {
        anyhow::bail!("store {} does not exist", path.display());
    }
    let store = engine::Store::open(&path)?;
    store.rebuild_stats()?;
    let left = store.check_stats()?;
    println!(
        "statistics rebuilt from the records of {}{}",
        path.display(),
        if left.is_empty() {
            String::new()
        } else {
            format!("; {} bucket(s) still differ", left.len())
        }
    );
    Ok(if left.is_empty() { 0 } else { 1 })
}
