//! `import-comfy`: a ComfyUI workflow (JSON or PNG) as a recipe.

use std::path::Path;

use anyhow::{bail, Context, Result};
use nodes::Catalogue;

use crate::graph_file;

pub(crate) fn import_comfy_cmd(file: &Path, out: &Path) -> Result<i32> {
    let is_png = file
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    let doc = if is_png {
        graph_file::load(file)?
    } else {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        graph_file::import_comfy(file, &text)?
    };
    if let Err(e) = nodes::validate(&doc, &Catalogue::builtin()) {
        bail!("{}: the imported recipe is not valid:\n{e}", file.display());
    }
    std::fs::write(out, doc.to_json())
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!("wrote {} ({} nodes)", out.display(), doc.nodes.len());
    Ok(0)
}
