//! Inputs and outputs: LoadImage, LoadImageFolder, LoadMask, SaveImage, ExportDataset.

use serde::Deserialize;

use super::{label_or_defect, outputs, same_size};
use crate::codec::decode_image;
use crate::error::{EngineError, Result};
use crate::exec::NodeCtx;
use crate::image::Mask;
use crate::registry::Registry;
use crate::value::Outputs;

pub(super) fn register(r: &mut Registry) {
    r.register_typed("LoadImage", load_image);
    r.register_typed("LoadImageFolder", load_image_folder);
    r.register_typed("LoadMask", load_mask);
    r.register_typed("SaveImage", save_image);
    r.register_typed("ExportDataset", export_dataset);
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoadImage {
    source: String,
}

fn load_image(ctx: &mut NodeCtx, p: LoadImage) -> Result<Outputs> {
    let bytes = ctx.file("source")?;
    let img = decode_image(&bytes, &p.source).map_err(EngineError::failed)?;
    let mask = img.alpha();
    Ok(outputs([("image", img.into()), ("mask", mask.into())]))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoadImageFolder {
    folder: String,
}

fn load_image_folder(ctx: &mut NodeCtx, p: LoadImageFolder) -> Result<Outputs> {
    let bytes = ctx.file("folder")?;
    let img = decode_image(&bytes, &p.folder).map_err(EngineError::failed)?;
    let mask = img.alpha();
    Ok(outputs([("image", img.into()), ("mask", mask.into())]))
}

/// Which channel of a file holds a mask.
#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Channel {
    /// Rec.709 luma of the RGB channels.
    Luma,
    Alpha,
    Red,
    Green,
    Blue,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoadMask {
    source: String,
    channel: Channel,
    invert: bool,
}

fn load_mask(ctx: &mut NodeCtx, p: LoadMask) -> Result<Outputs> {
    let bytes = ctx.file("source")?;
    let img = decode_image(&bytes, &p.source).map_err(EngineError::failed)?;
    let pick: fn(&[f32]) -> f32 = match p.channel {
        Channel::Alpha => |p| p[3],
        Channel::Red => |p| p[0],
        Channel::Green => |p| p[1],
        Channel::Blue => |p| p[2],
        Channel::Luma => |p| 0.2126 * p[0] + 0.7152 * p[1] + 0.0722 * p[2],
    };
    let data = img
        .data
        .chunks_exact(4)
        .map(|px| {
            let v = pick(px).clamp(0.0, 1.0);
            if p.invert {
                1.0 - v
            } else {
                v
            }
        })
        .collect();
    Ok(outputs([(
        "mask",
        Mask {
            width: img.width,
            height: img.height,
            data,
        }
        .into(),
    )]))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SaveImage {
    filename: String,
    label: String,
}

fn save_image(ctx: &mut NodeCtx, p: SaveImage) -> Result<Outputs> {
    let image = ctx.image("image")?;
    let mask = ctx.opt_mask("mask")?;
    if let Some(m) = &mask {
        same_size("input \"mask\"", &image, m)?;
    }
    ctx.save(
        &image,
        mask.as_deref(),
        &p.filename,
        &label_or_defect(&p.label),
    )?;
    Ok(Outputs::new())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportDataset {
    format: String,
    folder: String,
    label: String,
}

fn export_dataset(ctx: &mut NodeCtx, p: ExportDataset) -> Result<Outputs> {
    let image = ctx.image("image")?;
    let mask = ctx.opt_mask("mask")?;
    if let Some(m) = &mask {
        same_size("input \"mask\"", &image, m)?;
    }
    let saved = ctx.save(
        &image,
        mask.as_deref(),
        "{graph}/{run:05}-{item:04}-{node}.png",
        &label_or_defect(&p.label),
    )?;
    ctx.collect(&saved, &p.format, &p.folder)?;
    Ok(Outputs::new())
}
