//! `export`: stored outputs as a dataset, merged from one or several stores.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};

pub(crate) fn export_cmd(
    stores: Vec<PathBuf>,
    format: &str,
    out: &Path,
    strict: bool,
) -> Result<i32> {
    let fmt = engine::dataset::Format::from_name(format).ok_or_else(|| {
        let names: Vec<&str> = engine::dataset::Format::ALL
            .iter()
            .map(|f| f.name())
            .collect();
        anyhow!("--format {format}: expected one of {}", names.join(", "))
    })?;
    let stores = if stores.is_empty() {
        vec![engine::paths::store_path()]
    } else {
        stores
    };
    let (report, skipped) = engine::export::export_stores(&stores, &fmt.into(), out, strict)?;
    if !skipped.is_empty() {
        eprintln!(
            "warning: left out {} bad stored output(s) (see `defect-studio store check`): {}",
            skipped.len(),
            engine::export::describe_bad(&skipped)
        );
    }
    println!(
        "exported {} image(s), {} instance(s), categories [{}] as {} to {}",
        report.images,
        report.instances,
        report.categories.join(", "),
        fmt.name(),
        out.display()
    );
    if report.left_out > 0 {
        println!(
            "left out {} train defect image(s): the {} train split holds only good images \
             (their clean images are in it)",
            report.left_out,
            fmt.name()
        );
    }
    Ok(0)
}
