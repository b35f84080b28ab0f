//! `defect-studio diff A B`: what changed between two recipes, one line per change
//! (`nodes::diff`), for reviewing recipe files in git (`git difftool -x 'defect-studio diff'`).

use std::path::Path;

use anyhow::Result;

use crate::graph_file;

/// Prints the changes that turn recipe `a` into recipe `b` (files of any kind `run` reads: our
/// JSON, a PNG carrying a recipe, imported formats). With `exit_code`, the exit status is 1 when
/// they differ, as with `git diff --exit-code`.
pub fn diff_cmd(a: &Path, b: &Path, json: bool, exit_code: bool) -> Result<i32> {
    let (old, new) = (graph_file::load(a)?, graph_file::load(b)?);
    let d = nodes::diff::diff(&old, &new);
    if json {
        let (added, removed, changed) = d.counts();
        let lines: Vec<serde_json::Value> = d
            .lines()
            .iter()
            .map(|l| {
                let change = match l.change {
                    nodes::diff::Change::Added => "added",
                    nodes::diff::Change::Removed => "removed",
                    nodes::diff::Change::Changed => "changed",
                };
                serde_json::json!({ "change": change, "text": l.text })
            })
            .collect();
        let report = serde_json::json!({
            "same": d.is_empty(),
            "added": added,
            "removed": removed,
            "changed": changed,
            "lines": lines,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{d}");
    }
    Ok(if exit_code && !d.is_empty() { 1 } else { 0 })
}
