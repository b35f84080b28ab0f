//! `import` (alias `import-comfy`): a recipe from any source we read — our PNGs and recipes,
//! A1111/Forge PNGs and infotext files, ComfyUI workflows (API or UI JSON) and ComfyUI PNGs —
//! with one report for all of them: every foreign node once, as imported, approximated or not
//! imported.

use std::path::Path;

use anyhow::{bail, Context, Result};
use engine::interop::Outcome;

use crate::graph_file;

pub(crate) fn import_cmd(file: &Path, out: &Path) -> Result<i32> {
    let (source, result) = graph_file::import(file)?;
    println!("{}: {}", file.display(), source.label());
    let text = result.report.text();
    if !text.is_empty() {
        println!("{text}");
    }
    graph_file::ensure_usable(file, &result)?;
    let doc = &result.graph;
    if let Err(e) = nodes::validate(doc, &engine::interop::catalogue()) {
        let problems: Vec<String> = e.0.iter().map(ToString::to_string).collect();
        bail!(
            "{}: the imported recipe is not valid: {}",
            file.display(),
            problems.join("; ")
        );
    }
    std::fs::write(out, doc.to_json())
        .with_context(|| format!("cannot write {}", out.display()))?;
    let count = |o: Outcome| result.report.with(o).count();
    println!(
        "wrote {} ({} nodes; {} imported, {} approximated, {} not imported)",
        out.display(),
        doc.nodes.len(),
        count(Outcome::Imported),
        count(Outcome::Approximated),
        count(Outcome::NotImported),
    );
    Ok(0)
}
