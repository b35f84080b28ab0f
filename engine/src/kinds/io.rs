//! Inputs and outputs: LoadImage, LoadImageFolder, LoadMask, SaveImage, ExportDataset.

use std::sync::Arc;

use serde::Deserialize;

use super::{label_or_defect, outputs, same_size};
use crate::codec::decode_image;
use crate::error::{EngineError, Result};
use crate::exec::NodeCtx;
use crate::image::{Image, Mask};
use crate::registry::Registry;
use crate::value::{Outputs, Value};

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
    drop(bytes);
    image_and_alpha(ctx, img)
}

/// The `image` output, and its alpha as the `mask` output when something reads it (a large
/// photo's alpha is a full-size buffer of its own).
fn image_and_alpha(ctx: &NodeCtx, img: Image) -> Result<Outputs> {
    let mut out = Outputs::new();
    if ctx.wants("mask") {
        out.insert("mask".into(), img.alpha().into());
    }
    out.insert("image".into(), img.into());
    Ok(out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoadImageFolder {
    folder: String,
}

fn load_image_folder(ctx: &mut NodeCtx, p: LoadImageFolder) -> Result<Outputs> {
    let bytes = ctx.file("folder")?;
    let img = decode_image(&bytes, &p.folder).map_err(EngineError::failed)?;
    drop(bytes);
    image_and_alpha(ctx, img)
}

/// Which channel of a file holds a mask.
#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Channel {
    /// Luma as PIL's `convert('L')` computes it (ITU-R 601-2), as diffusers reads masks.
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

/// Luma as PIL's `convert('L')` computes it on 8-bit values (ITU-R 601-2, fixed point):
/// `(R·19595 + G·38470 + B·7471 + 2¹⁵) >> 16`.
pub(crate) fn luma_pil(p: &[f32]) -> f32 {
    let u8v = |v: f32| u32::from((v.clamp(0.0, 1.0) * 255.0).round() as u8);
    let l = (u8v(p[0]) * 19595 + u8v(p[1]) * 38470 + u8v(p[2]) * 7471 + 0x8000) >> 16;
    l as f32 / 255.0
}

fn load_mask(ctx: &mut NodeCtx, p: LoadMask) -> Result<Outputs> {
    let bytes = ctx.file("source")?;
    let img = decode_image(&bytes, &p.source).map_err(EngineError::failed)?;
    let pick: fn(&[f32]) -> f32 = match p.channel {
        Channel::Alpha => |p| p[3],
        Channel::Red => |p| p[0],
        Channel::Green => |p| p[1],
        Channel::Blue => |p| p[2],
        Channel::Luma => luma_pil,
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
    // A batch (diffusers' num_images_per_prompt) is written image by image, `-0`, `-1`, …
    // after the file stem.
    let images = ctx.input("image").map(Value::images).unwrap_or_default();
    if images.is_empty() {
        ctx.image("image")?;
    }
    let mask = ctx.opt_mask("mask")?;
    if let (Some(m), Some(first)) = (&mask, images.first()) {
        same_size("input \"mask\"", first, m)?;
    }
    let cleans = clean_images(ctx, &images)?;
    let label = label_or_defect(&p.label);
    let n = images.len();
    for (k, image) in images.iter().enumerate() {
        let name = if n > 1 {
            batch_name(&p.filename, k)
        } else {
            p.filename.clone()
        };
        let clean = cleans.get(k).or(cleans.first()).map(|c| c.as_ref());
        let saved = ctx.save(image, mask.as_deref(), clean, &name, &label)?;
        ctx.save_instances(&saved, "mask")?;
    }
    Ok(Outputs::new())
}

/// The `clean` input (the image before the defect nodes), checked against the saved images: one
/// image for all of them, or a batch with one per image, each of its image's size.
fn clean_images(ctx: &NodeCtx, images: &[Arc<Image>]) -> Result<Vec<Arc<Image>>> {
    let cleans = ctx.input("clean").map(Value::images).unwrap_or_default();
    if ctx.input("clean").is_some() && cleans.is_empty() {
        ctx.image("clean")?;
    }
    if cleans.len() > 1 && cleans.len() != images.len() {
        return Err(EngineError::failed(format!(
            "input \"clean\": {} clean images for {} images; connect one clean image, or one \
             per image",
            cleans.len(),
            images.len()
        )));
    }
    for (k, image) in images.iter().enumerate() {
        if let Some(c) = cleans.get(k).or(cleans.first()) {
            if (c.width, c.height) != (image.width, image.height) {
                return Err(EngineError::failed(format!(
                    "input \"clean\": the clean image is {}×{} but the image is {}×{}",
                    c.width, c.height, image.width, image.height
                )));
            }
        }
    }
    Ok(cleans)
}

/// `dir/name.png` → `dir/name-K.png` (the name of image K of a batch).
fn batch_name(template: &str, k: usize) -> String {
    match template.strip_suffix(".png") {
        Some(stem) => format!("{stem}-{k}.png"),
        None => format!("{template}-{k}"),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportDataset {
    format: String,
    folder: String,
    label: String,
    #[serde(default = "default_instances")]
    instances: String,
    #[serde(default = "default_val_fraction")]
    val_fraction: f64,
    #[serde(default = "default_mask_threshold")]
    mask_threshold: u8,
    #[serde(default)]
    keep_soft_masks: bool,
}

fn default_instances() -> String {
    "components".into()
}
fn default_val_fraction() -> f64 {
    0.2
}
fn default_mask_threshold() -> u8 {
    128
}

impl ExportDataset {
    /// The typed export options (the run's seed seeds the split).
    fn options(&self, seed: u64) -> Result<crate::dataset::ExportOptions> {
        use crate::dataset::{ExportOptions, Format, InstanceRule};
        let format = Format::from_name(&self.format).ok_or_else(|| {
            EngineError::failed(format!("unknown dataset format \"{}\"", self.format))
        })?;
        let instances = InstanceRule::from_name(&self.instances).ok_or_else(|| {
            EngineError::failed(format!("unknown instance rule \"{}\"", self.instances))
        })?;
        Ok(ExportOptions {
            format,
            instances,
            val_fraction: self.val_fraction,
            seed,
            mask_threshold: self.mask_threshold,
            keep_soft_masks: self.keep_soft_masks,
        })
    }
}

fn export_dataset(ctx: &mut NodeCtx, p: ExportDataset) -> Result<Outputs> {
    let image = ctx.image("image")?;
    let mask = ctx.opt_mask("mask")?;
    if let Some(m) = &mask {
        same_size("input \"mask\"", &image, m)?;
    }
    let cleans = clean_images(ctx, std::slice::from_ref(&image))?;
    let saved = ctx.save(
        &image,
        mask.as_deref(),
        cleans.first().map(|c| c.as_ref()),
        "{graph}/{run:05}-{item:04}-{node}.png",
        &label_or_defect(&p.label),
    )?;
    ctx.save_instances(&saved, "mask")?;
    let opts = p.options(0)?;
    ctx.collect(&saved, &opts, &p.folder)?;
    Ok(Outputs::new())
}
