//! `store check`: verifies every stored output of a store and lists the bad ones.

use std::path::PathBuf;

use anyhow::Result;

/// Checks every output (its PNG and mask decode and match their recorded sha256); exit code 1
/// when any is bad. Opens the store read-only.
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
    Ok(if report.bad.is_empty() { 0 } else { 1 })
}
