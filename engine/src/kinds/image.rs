//! Image kinds: Resize, Crop, Composite, SolidColor, Noise, Texture, Cleanup,
//! RemoveBackground.

use serde::Deserialize;

use super::{by_name, canvas_size, outputs, same_size};
use crate::cleanup;
use crate::codec::check_size;
use crate::error::{EngineError, Result};
use crate::exec::NodeCtx;
use crate::image::{Image, Mask};
use crate::ops::{self, Blend, Filter};
use crate::procedural::{noise_field, texture, NoiseKind, TextureKind, TextureParams};
use crate::registry::Registry;
use crate::value::Outputs;

pub(super) fn register(r: &mut Registry) {
    r.register_typed("Resize", resize);
    r.register_typed("Crop", crop);
    r.register_typed("Composite", composite);
    r.register_typed("SolidColor", solid_color);
    r.register_typed("Noise", noise);
    r.register_typed("Texture", texture_node);
    r.register_typed("Cleanup", cleanup_node);
    r.register_typed("RemoveBackground", remove_background);
}

fn filter<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Filter, D::Error> {
    by_name(d, "filter", Filter::from_name)
}

fn blend<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Blend, D::Error> {
    by_name(d, "blend mode", Blend::from_name)
}

/// How Resize handles the aspect ratio.
#[derive(Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ResizeMode {
    Stretch,
    /// Letterbox with transparent borders.
    Fit,
    /// Cover and centre-crop.
    Fill,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Resize {
    width: i64,
    height: i64,
    mode: ResizeMode,
    #[serde(deserialize_with = "filter")]
    filter: Filter,
}

/// The target size of a resize: 0 keeps the aspect ratio from the other side.
fn resize_target(iw: u32, ih: u32, w: i64, h: i64) -> Result<(u32, u32)> {
    let (w, h) = match (w, h) {
        (0, 0) => {
            return Err(EngineError::failed(
                "width and height are both 0; set at least one",
            ))
        }
        (0, h) => (
            ((h as f64) * f64::from(iw) / f64::from(ih))
                .round()
                .max(1.0) as i64,
            h,
        ),
        (w, 0) => (
            w,
            ((w as f64) * f64::from(ih) / f64::from(iw))
                .round()
                .max(1.0) as i64,
        ),
        (w, h) => (w, h),
    };
    let (w, h) = (
        u32::try_from(w).unwrap_or(u32::MAX),
        u32::try_from(h).unwrap_or(u32::MAX),
    );
    check_size(w, h).map_err(EngineError::failed)?;
    Ok((w, h))
}

/// The node's `mask` input (the image's size), or the image's alpha when none is connected.
fn mask_or_alpha(ctx: &NodeCtx, image: &Image) -> Result<Mask> {
    match ctx.opt_mask("mask")? {
        Some(m) => {
            same_size("input \"mask\"", image, &m)?;
            Ok((*m).clone())
        }
        None => Ok(image.alpha()),
    }
}

fn resize(ctx: &mut NodeCtx, p: Resize) -> Result<Outputs> {
    let image = ctx.image("image")?;
    let mask = mask_or_alpha(ctx, &image)?;
    let (w, h) = resize_target(image.width, image.height, p.width, p.height)?;
    let (iw, ih) = (f64::from(image.width), f64::from(image.height));
    let (img, m) = match p.mode {
        ResizeMode::Fit | ResizeMode::Fill => {
            let (sx, sy) = (f64::from(w) / iw, f64::from(h) / ih);
            let s = if p.mode == ResizeMode::Fit {
                sx.min(sy)
            } else {
                sx.max(sy)
            };
            let rw = ((iw * s).round() as u32).max(1);
            let rh = ((ih * s).round() as u32).max(1);
            check_size(rw, rh).map_err(EngineError::failed)?;
            let ri = ops::resize_image(&image, rw, rh, p.filter);
            let rm = ops::resize_mask(&mask, rw, rh, p.filter);
            let x = (i64::from(w) - i64::from(rw)) / 2;
            let y = (i64::from(h) - i64::from(rh)) / 2;
            (
                ops::place_image(&ri, w, h, x, y),
                ops::place_mask(&rm, w, h, x, y),
            )
        }
        ResizeMode::Stretch => (
            ops::resize_image(&image, w, h, p.filter),
            ops::resize_mask(&mask, w, h, p.filter),
        ),
    };
    Ok(outputs([("image", img.into()), ("mask", m.into())]))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Crop {
    x: i64,
    y: i64,
    width: i64,
    height: i64,
}

fn crop(ctx: &mut NodeCtx, p: Crop) -> Result<Outputs> {
    let image = ctx.image("image")?;
    let mask = mask_or_alpha(ctx, &image)?;
    let (x, y) = (p.x, p.y);
    let (iw, ih) = (i64::from(image.width), i64::from(image.height));
    let w = match p.width {
        0 => iw - x,
        w => w,
    };
    let h = match p.height {
        0 => ih - y,
        h => h,
    };
    if x < 0 || y < 0 || x >= iw || y >= ih || w <= 0 || h <= 0 || x + w > iw || y + h > ih {
        return Err(EngineError::failed(format!(
            "the crop rectangle at ({x}, {y}) of {w}×{h} does not fit in the {iw}×{ih} image"
        )));
    }
    let (x, y, w, h) = (x as u32, y as u32, w as u32, h as u32);
    Ok(outputs([
        ("image", ops::crop_image(&image, x, y, w, h).into()),
        ("mask", ops::crop_mask(&mask, x, y, w, h).into()),
    ]))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Composite {
    x: i64,
    y: i64,
    opacity: f32,
    #[serde(deserialize_with = "blend")]
    blend: Blend,
}

fn composite(ctx: &mut NodeCtx, p: Composite) -> Result<Outputs> {
    let top = ctx.image("top")?;
    let bottom = ctx.image("bottom")?;
    let mask = ctx.opt_mask("mask")?;
    if let Some(m) = &mask {
        same_size("input \"mask\" (must match \"top\")", &top, m)?;
    }
    let (img, placed) =
        ops::composite(&bottom, &top, mask.as_deref(), p.x, p.y, p.opacity, p.blend);
    Ok(outputs([("image", img.into()), ("mask", placed.into())]))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SolidColor {
    width: u32,
    height: u32,
    color: [f32; 3],
    alpha: f32,
}

fn solid_color(ctx: &mut NodeCtx, p: SolidColor) -> Result<Outputs> {
    let (w, h) = canvas_size(ctx, p.width, p.height)?;
    let [r, g, b] = p.color;
    Ok(outputs([(
        "image",
        Image::filled(w, h, [r, g, b, p.alpha]).into(),
    )]))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Noise {
    width: u32,
    height: u32,
    seed: u64,
    noise: NoiseKind,
    scale: f32,
    octaves: u32,
}

fn noise(ctx: &mut NodeCtx, p: Noise) -> Result<Outputs> {
    let (w, h) = canvas_size(ctx, p.width, p.height)?;
    let field = noise_field(p.noise, w, h, p.seed, p.scale, p.octaves);
    Ok(outputs([
        ("image", field.to_image().into()),
        ("mask", field.into()),
    ]))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Texture {
    material: TextureKind,
    width: u32,
    height: u32,
    seed: u64,
    scale: f32,
    color: [f32; 3],
    contrast: f32,
    angle: f32,
}

fn texture_node(ctx: &mut NodeCtx, p: Texture) -> Result<Outputs> {
    let (width, height) = canvas_size(ctx, p.width, p.height)?;
    let t = TextureParams {
        kind: p.material,
        width,
        height,
        seed: p.seed,
        scale: p.scale,
        color: p.color,
        contrast: p.contrast,
        angle_deg: p.angle,
    };
    Ok(outputs([("image", texture(&t).into())]))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Cleanup {
    patch_size: u32,
    iterations: u32,
    search_passes: u32,
    grow: f32,
    seed: u64,
}

fn cleanup_node(ctx: &mut NodeCtx, p: Cleanup) -> Result<Outputs> {
    let image = ctx.image("image")?;
    let mask = ctx.mask("mask")?;
    same_size("input \"mask\"", &image, &mask)?;
    let hole = if p.grow > 0.0 {
        ops::grow(&mask, p.grow)
    } else {
        (*mask).clone()
    };
    let fill = cleanup::FillParams {
        patch_size: p.patch_size,
        em_iterations: p.iterations,
        pm_iterations: p.search_passes,
        seed: p.seed,
        ..cleanup::FillParams::default()
    };
    // Progress per EM iteration; a cancel stops the fill within one iteration.
    let mut step = 0u32;
    let mut cancelled = false;
    let result = cleanup::fill(&image, &hole, &fill, &mut |pr: &cleanup::Progress| {
        step += 1;
        let total = pr.levels.max(1) * fill.em_iterations.max(1);
        if ctx.progress(step.min(total), total, None).is_err() {
            cancelled = true;
            return false;
        }
        true
    })
    .map_err(EngineError::failed)?;
    match result {
        Some(filled) => Ok(outputs([("image", filled.into())])),
        None if cancelled => Err(EngineError::Cancelled),
        None => Err(EngineError::failed("the fill stopped without a result")),
    }
}

/// Whether RemoveBackground keeps the network's soft alpha or binarises it.
#[derive(Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum AlphaMode {
    Soft,
    Hard,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoveBackground {
    model: String,
    alpha: AlphaMode,
    threshold: f32,
    grow: f32,
    feather: f32,
    background_color: [f32; 3],
}

fn remove_background(ctx: &mut NodeCtx, p: RemoveBackground) -> Result<Outputs> {
    let image = ctx.image("image")?;
    let net = crate::models::background::load_isnet(&p.model)?;
    let to_u8 = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    let rgb: Vec<u8> = image
        .data
        .chunks_exact(4)
        .flat_map(|px| [to_u8(px[0]), to_u8(px[1]), to_u8(px[2])])
        .collect();
    let refine = crate::models::background::Refine {
        threshold: (p.alpha == AlphaMode::Hard).then_some(p.threshold),
        grow: p.grow,
        feather: p.feather,
    };
    ctx.progress(0, 1, None)?;
    let mask =
        crate::models::background::alpha_mask(&net, &rgb, image.width, image.height, &refine)?;
    drop(rgb);
    ctx.progress(1, 1, None)?;
    let mut cutout = (*image).clone();
    for (px, a) in cutout.data.chunks_exact_mut(4).zip(&mask.data) {
        px[3] *= a;
    }
    let mut out = Outputs::new();
    // The composite is a full-size image of its own: made only when something reads it.
    if ctx.wants("composite") {
        let bottom = match ctx.opt_image("background")? {
            Some(bg) => ops::resize_image(&bg, image.width, image.height, Filter::Bilinear),
            None => {
                let [r, g, b] = p.background_color;
                Image::filled(image.width, image.height, [r, g, b, 1.0])
            }
        };
        let (composite, _) =
            ops::composite(&bottom, &cutout, Some(&mask), 0, 0, 1.0, Blend::Normal);
        out.insert("composite".into(), composite.into());
    }
    out.insert("image".into(), cutout.into());
    out.insert("mask".into(), mask.into());
    Ok(out)
}
