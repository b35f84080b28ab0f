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
        return load_png(path);
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read graph file {}", path.display()))?;
    if looks_like_comfy(&text) {
        return import_comfy(path, &text);
    }
    GraphDoc::from_json(&text).with_context(|| format!("{}", path.display()))
}

/// True when a file can be saved back as it was opened (our own JSON graph, not a PNG's recipe
/// or an imported ComfyUI workflow).
pub fn is_native(path: &Path) -> bool {
    let json = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    json && std::fs::read_to_string(path).is_ok_and(|t| !looks_like_comfy(&t))
}

/// A ComfyUI workflow (UI format: a `nodes` array; API format: nodes with `class_type`).
fn looks_like_comfy(text: &str) -> bool {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
        return false;
    };
    if v.get("format").is_some() {
        return false;
    }
    v.get("nodes").is_some_and(|n| n.is_array())
        || v.as_object().is_some_and(|o| {
            o.values().any(|n| n.get("class_type").is_some())
                || o.get("prompt").is_some_and(|p| p.is_object())
        })
}

/// Imports a ComfyUI workflow file; what could not be carried over is printed on stderr.
pub fn import_comfy(path: &Path, text: &str) -> Result<GraphDoc> {
    let result = engine::interop::comfy::import_workflow(text)
        .with_context(|| format!("{}", path.display()))?;
    print_report(&result.report);
    Ok(result.graph)
}

fn print_report(report: &engine::interop::ImportReport) {
    for (id, kind) in &report.unsupported {
        eprintln!("note: not imported: node {id} ({kind})");
    }
    for n in &report.notes {
        eprintln!("note: {n}");
    }
}

/// The recipe inside a PNG: ours (`defect-studio/graph`), else A1111's `parameters`, else a
/// ComfyUI workflow. What an import could not carry over is printed as notes on stderr.
fn load_png(path: &Path) -> Result<GraphDoc> {
    use engine::interop::png_meta::{graph_from_png_with_report, GraphSource};
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let found =
        graph_from_png_with_report(&bytes).with_context(|| format!("{}", path.display()))?;
    let Some((source, result)) = found else {
        anyhow::bail!(
            "{}: this PNG carries no recipe (no defect-studio/graph, A1111 parameters or ComfyUI \
             workflow text chunk)",
            path.display()
        );
    };
    if source != GraphSource::DefectStudio {
        eprintln!(
            "{}: recipe imported from {source:?} metadata",
            path.display()
        );
    }
    print_report(&result.report);
    Ok(result.graph)
}

/// The graph's name for file names and history: its title, or the file stem.
pub fn graph_name(doc: &GraphDoc, path: &Path) -> String {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("graph");
    doc.title_or(stem).to_string()
}
