//! `export`: stored outputs as a dataset, merged from one or several stores.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use engine::dataset::{ExportOptions, Format, InstanceRule};

/// The `export` command's dataset options, as given on the command line.
pub(crate) struct ExportArgs {
    pub format: String,
    pub instances: String,
    pub val_fraction: f64,
    pub seed: u64,
    pub mask_threshold: u8,
    pub keep_soft_masks: bool,
}

impl ExportArgs {
    /// The typed options, or an error naming the bad flag and the accepted values.
    fn options(&self) -> Result<ExportOptions> {
        let format = Format::from_name(&self.format).ok_or_else(|| {
            let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
            anyhow!(
                "--format {}: expected one of {}",
                self.format,
                names.join(", ")
            )
        })?;
        let instances = InstanceRule::from_name(&self.instances).ok_or_else(|| {
            let names: Vec<&str> = InstanceRule::ALL.iter().map(|r| r.name()).collect();
            anyhow!(
                "--instances {}: expected one of {}",
                self.instances,
                names.join(", ")
            )
        })?;
        Ok(ExportOptions {
            format,
            instances,
            val_fraction: self.val_fraction,
            seed: self.seed,
            mask_threshold: self.mask_threshold,
            keep_soft_masks: self.keep_soft_masks,
        })
    }
}

pub(crate) fn export_cmd(
    stores: Vec<PathBuf>,
    out: &Path,
    strict: bool,
    args: ExportArgs,
) -> Result<i32> {
    let opts = args.options()?;
    let stores = if stores.is_empty() {
        vec![engine::paths::store_path()]
    } else {
        stores
    };
    let (report, skipped) = engine::export::export_stores(&stores, &opts, out, strict)?;
    if !skipped.is_empty() {
        eprintln!(
            "warning: left out {} bad stored output(s) (see `defect-studio store check`): {}",
            skipped.len(),
            engine::export::describe_bad(&skipped)
        );
    }
    if report.per_defect_fallbacks > 0 {
        eprintln!(
            "note: {} image(s) have masks without instance ids (painted or edited): their \
             instances are connected regions",
            report.per_defect_fallbacks
        );
    }
    let split = if opts.format == Format::Yolo {
        format!(" ({} for validation)", report.val_images)
    } else {
        String::new()
    };
    println!(
        "exported {} image(s){split}, {} instance(s) ({}), categories [{}] as {} to {}; \
         {} duplicate(s) left out",
        report.images,
        report.instances,
        opts.instances.name(),
        report.categories.join(", "),
        opts.format.name(),
        out.display(),
        report.duplicates
    );
    if report.left_out > 0 {
        println!(
            "left out {} train defect image(s): the {} train split holds only good images \
             (their clean images are in it)",
            report.left_out,
            opts.format.name()
        );
    }
    Ok(0)
}
