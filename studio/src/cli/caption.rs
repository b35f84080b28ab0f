//! `caption IMAGES... [--kohya DIR] [--blip MODEL] [--json] [--overwrite]`: one caption per
//! image (docs/ARCHITECTURE.md §15, *Captions*). Our own outputs get the exact caption of the
//! recipe they carry (`engine::inspect::caption`); other images need `--blip MODEL` (BLIP
//! captioning of the pixels, `engine::inspect::blip`).
//!
//! `--kohya DIR` writes `DIR/<stem>.txt` for each image (kohya's sd-scripts read a caption
//! beside each training image with the image's stem and `.txt`; DIR is usually the folder the
//! images are in). An existing caption file is never replaced unless `--overwrite` is given;
//! every refusal is checked before anything is written.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

/// The arguments of `caption`.
#[derive(clap::Args, Debug)]
pub struct CaptionArgs {
    /// The images to caption (our output PNGs, or any image with --blip).
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// Write DIR/<stem>.txt for each image (kohya-style captions for LoRA training).
    #[arg(long, value_name = "DIR")]
    pub kohya: Option<PathBuf>,
    /// Caption the pixels with BLIP (a blip-image-captioning-base model folder) instead of the
    /// recipe.
    #[arg(long, value_name = "MODEL")]
    pub blip: Option<PathBuf>,
    /// Where BLIP runs: auto (CUDA when built with it and present), cpu, cuda, cuda:N.
    #[arg(long, default_value = "auto", requires = "blip")]
    pub device: String,
    /// Print JSON: [{"image": PATH, "caption": TEXT}, …].
    #[arg(long)]
    pub json: bool,
    /// Replace existing .txt files under --kohya.
    #[arg(long)]
    pub overwrite: bool,
}

/// Runs `caption`.
pub(crate) fn caption_cmd(args: &CaptionArgs) -> Result<i32> {
    let captions: Vec<(PathBuf, String)> = match &args.blip {
        None => args
            .images
            .iter()
            .map(|p| {
                engine::inspect::caption::caption_png(p)
                    .map(|c| (p.clone(), c))
                    .map_err(|e| anyhow!(e))
            })
            .collect::<Result<_>>()?,
        Some(model) => blip_captions(model, &args.device, &args.images)?,
    };
    if let Some(dir) = &args.kohya {
        write_kohya(dir, &captions, args.overwrite)?;
    }
    if args.json {
        let list: Vec<serde_json::Value> = captions
            .iter()
            .map(|(p, c)| serde_json::json!({"image": p.to_string_lossy(), "caption": c}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else {
        for (p, c) in &captions {
            println!("{}\t{c}", p.display());
        }
    }
    Ok(0)
}

/// BLIP captions of image files, with the model folder `model` (by path or by name in the
/// model folders; a missing or incomplete one is the usual missing-model report).
fn blip_captions(model: &Path, device: &str, images: &[PathBuf]) -> Result<Vec<(PathBuf, String)>> {
    let dir = engine::files::locate(
        nodes::FileRole::CaptionModel,
        &model.to_string_lossy(),
        Path::new(""),
    )
    .map_err(|m| anyhow!("--blip: {m}"))?;
    let dev = engine::sd::nodes::parse_device(device).map_err(|e| anyhow!(e))?;
    let captioner =
        engine::inspect::caption::blip_captioner(&dir, device, &dev).map_err(|e| anyhow!(e))?;
    images
        .iter()
        .map(|p| {
            let img = image::open(p)
                .map_err(|e| anyhow!("{}: cannot read the image: {e}", p.display()))?
                .to_rgb8();
            let text = captioner
                .caption(&[img])
                .map_err(|e| anyhow!("{}: {e}", p.display()))?
                .into_iter()
                .next()
                .unwrap_or_default();
            Ok((p.clone(), text))
        })
        .collect()
}

/// The caption file of `image` in `dir`: `dir/<stem>.txt`.
fn caption_file(dir: &Path, image: &Path) -> Result<PathBuf> {
    let stem = image
        .file_stem()
        .ok_or_else(|| anyhow!("{}: has no file name", image.display()))?;
    let mut name = stem.to_os_string();
    name.push(".txt");
    Ok(dir.join(name))
}

/// Writes one `<stem>.txt` per image into `dir`; refuses (before writing anything) two images
/// with one stem, and existing files unless `overwrite`.
fn write_kohya(dir: &Path, captions: &[(PathBuf, String)], overwrite: bool) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut targets = Vec::new();
    for (image, caption) in captions {
        let file = caption_file(dir, image)?;
        if targets.iter().any(|(f, _)| f == &file) {
            bail!(
                "--kohya: two images would write {} (same file stem)",
                file.display()
            );
        }
        if !overwrite && std::fs::symlink_metadata(&file).is_ok() {
            bail!(
                "--kohya: {} exists (add --overwrite to replace it)",
                file.display()
            );
        }
        targets.push((file, caption));
    }
    for (file, caption) in targets {
        if overwrite {
            std::fs::write(&file, caption.as_bytes())
        } else {
            engine::paths::write_new_file(&file, caption.as_bytes())
        }
        .with_context(|| format!("cannot write {}", file.display()))?;
    }
    Ok(())
}
