//! Loading graph documents from files.

use std::path::Path;

use anyhow::{Context, Result};
use nodes::GraphDoc;

/// Reads and parses a graph file (migrating older versions). Errors name the file.
pub fn load(path: &Path) -> Result<GraphDoc> {
    let is_png = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    if is_png {
        anyhow::bail!(
            "{}: reading a recipe from a PNG is not supported yet; pass the graph .json file",
            path.display()
        );
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read graph file {}", path.display()))?;
    GraphDoc::from_json(&text).with_context(|| format!("{}", path.display()))
}

/// The graph's name for file names and history: its title, or the file stem.
pub fn graph_name(doc: &GraphDoc, path: &Path) -> String {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("graph");
    doc.title_or(stem).to_string()
}
