//! Loading graph documents from files, and importing recipes from every source we read: our
//! own JSON and PNGs, A1111/Forge PNGs and infotext files, ComfyUI workflows (API or UI JSON) and
//! ComfyUI PNGs. The kind of file is told from its content, not its extension.

use std::path::Path;

use anyhow::{bail, Context, Result};
use engine::interop::{ImportReport, ImportResult};
use nodes::GraphDoc;

/// Where an imported recipe came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Our own JSON recipe.
    Recipe,
    /// A PNG carrying our recipe chunk.
    RecipePng,
    /// A PNG carrying A1111/Forge `parameters`.
    A1111Png,
    /// An A1111/Forge infotext (`.txt`).
    A1111Text,
    /// A ComfyUI workflow file, API format.
    ComfyApi,
    /// A ComfyUI workflow file, UI (editor) format.
    ComfyUi,
    /// A PNG carrying a ComfyUI `prompt` chunk (API format).
    ComfyPngPrompt,
    /// A PNG carrying only a ComfyUI `workflow` chunk (UI format).
    ComfyPngWorkflow,
}

impl Source {
    /// The source as the import report names it.
    pub fn label(self) -> &'static str {
        match self {
            Source::Recipe => "defect-studio recipe",
            Source::RecipePng => "defect-studio PNG (recipe chunk)",
            Source::A1111Png => "A1111/Forge PNG (parameters chunk)",
            Source::A1111Text => "A1111/Forge infotext",
            Source::ComfyApi => "ComfyUI workflow (API format)",
            Source::ComfyUi => "ComfyUI workflow (UI format)",
            Source::ComfyPngPrompt => "ComfyUI PNG (prompt chunk)",
            Source::ComfyPngWorkflow => "ComfyUI PNG (workflow chunk)",
        }
    }
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Reads and parses a graph file (migrating older versions), importing a foreign one. Errors
/// name the file. What an import could not carry over is printed on stderr.
pub fn load(path: &Path) -> Result<GraphDoc> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read graph file {}", path.display()))?;
    if !bytes.starts_with(PNG_SIGNATURE) {
        if let Ok(text) = std::str::from_utf8(&bytes) {
            if !looks_like_comfy(text) {
                return GraphDoc::from_json(text).with_context(|| format!("{}", path.display()));
            }
        }
    }
    let (source, result) = import(path)?;
    if source != Source::Recipe && source != Source::RecipePng {
        eprintln!("{}: imported from a {}", path.display(), source.label());
        let text = result.report.text();
        if !text.is_empty() {
            eprintln!("{text}");
        }
    }
    ensure_usable(path, &result)?;
    Ok(result.graph)
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

/// Whether non-JSON text reads as an A1111 infotext: a `Steps:` line, or a `.txt` file.
fn looks_like_infotext(path: &Path, text: &str) -> bool {
    let txt = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("txt"));
    txt || text.lines().any(|l| l.trim_start().starts_with("Steps: "))
}

/// Imports a recipe from any file we read, told apart by its content: a PNG (our recipe chunk,
/// else A1111 `parameters`, else ComfyUI `prompt`, then `workflow`), our JSON recipe, a
/// ComfyUI workflow (API or UI JSON), or an A1111/Forge infotext. The report lists every node of
/// the source once (for our own recipes, every node as imported).
pub fn import(path: &Path) -> Result<(Source, ImportResult)> {
    use engine::interop::png_meta::{graph_from_png_with_report, GraphSource};
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.starts_with(PNG_SIGNATURE) {
        let found =
            graph_from_png_with_report(&bytes).with_context(|| format!("{}", path.display()))?;
        let Some((source, mut result)) = found else {
            bail!(
                "{}: this PNG carries no recipe (no defect-studio/graph, A1111 parameters or \
                 ComfyUI prompt/workflow text chunk)",
                path.display()
            );
        };
        let source = match source {
            GraphSource::DefectStudio => {
                result.report = native_report(&result.graph);
                Source::RecipePng
            }
            GraphSource::A1111 => Source::A1111Png,
            GraphSource::ComfyPrompt => Source::ComfyPngPrompt,
            GraphSource::ComfyWorkflow => Source::ComfyPngWorkflow,
        };
        return Ok((source, result));
    }
    let text = std::str::from_utf8(&bytes).with_context(|| {
        format!(
            "{}: not a PNG, and not text (a JSON recipe or workflow, or an A1111 infotext)",
            path.display()
        )
    })?;
    let text = text.trim_start_matches('\u{feff}');
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
        if looks_like_comfy(text) {
            let result = engine::interop::comfy::import_workflow(text)
                .with_context(|| format!("{}", path.display()))?;
            let ui = v.get("nodes").is_some_and(|n| n.is_array());
            let source = if ui {
                Source::ComfyUi
            } else {
                Source::ComfyApi
            };
            return Ok((source, result));
        }
        let graph = GraphDoc::from_json(text).with_context(|| {
            format!(
                "{}: JSON, but neither a defect-studio recipe nor a ComfyUI workflow",
                path.display()
            )
        })?;
        let report = native_report(&graph);
        return Ok((Source::Recipe, ImportResult { graph, report }));
    }
    if looks_like_infotext(path, text) {
        use engine::interop::a1111;
        let p = a1111::parse_parameters(text).with_context(|| format!("{}", path.display()))?;
        let result = a1111::to_graph_with_report(&p, &a1111::GraphOptions::default());
        return Ok((Source::A1111Text, result));
    }
    bail!(
        "{}: not a recipe this tool reads (a PNG with a recipe, our JSON recipe, a ComfyUI \
         workflow, or an A1111/Forge infotext with a Steps: line)",
        path.display()
    )
}

/// The report of one of our own recipes: every node imported as it is.
fn native_report(graph: &GraphDoc) -> ImportReport {
    let mut report = ImportReport::default();
    for (id, n) in &graph.nodes {
        report.imported(id, &n.kind, format!("{id} ({})", n.kind));
    }
    report
}

/// An import that brought over nothing usable is refused in one line.
pub fn ensure_usable(path: &Path, result: &ImportResult) -> Result<()> {
    if result.is_usable() {
        return Ok(());
    }
    let total = result.report.entries.len();
    let dropped = result.report.unsupported().len();
    bail!(
        "{}: nothing usable to import: no sampler or saved image among what was carried over \
         ({dropped} of its {total} nodes were not imported)",
        path.display()
    )
}

/// The graph's name for file names and history: its title, or the file stem.
pub fn graph_name(doc: &GraphDoc, path: &Path) -> String {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("graph");
    doc.title_or(stem).to_string()
}
