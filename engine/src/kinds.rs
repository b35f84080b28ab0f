//! The executors of the built-in node kinds (declared in `nodes::builtin`).

use std::collections::BTreeMap;

use crate::codec::{check_size, decode_image};
use crate::error::{EngineError, Result};
use crate::exec::{NodeCtx, Registry};
use crate::image::{Image, Mask};
use crate::ops::{self, Blend, Filter};
use crate::procedural::{
    noise_field, shape_mask, texture, NoiseKind, Shape, ShapeParams, TextureKind, TextureParams,
};
use crate::value::{Outputs, Value};
use crate::{cleanup, defects};

/// Every built-in kind's executor.
pub(crate) fn registry() -> Registry {
    let mut r = Registry::new();
    r.register("LoadImage", load_image);
    r.register("LoadMask", load_mask);
    r.register("SaveImage", save_image);
    r.register("ExportDataset", export_dataset);
    r.register("Resize", resize);
    r.register("Crop", crop);
    r.register("MaskOps", mask_ops);
    r.register("Composite", composite);
    r.register("SolidColor", solid_color);
    r.register("Noise", noise);
    r.register("Texture", texture_node);
    r.register("ShapeMask", shape_mask_node);
    r.register("PaintMask", paint_mask);
    r.register("LoadImageFolder", load_image_folder);
    r.register("Scratch", scratch_node);
    r.register("Crack", crack_node);
    r.register("Dent", dent_node);
    r.register("Stain", stain_node);
    r.register("Chip", chip_node);
    r.register("DraemAnomaly", draem_node);
    r.register("CutPaste", cutpaste_node);
    r.register("CutPasteScar", scar_node);
    r.register("NsaPatch", nsa_node);
    r.register("Cleanup", cleanup_node);
    r.register("RemoveBackground", remove_background);
    crate::sd::nodes::register(&mut r);
    r
}

fn outputs(values: impl IntoIterator<Item = (&'static str, Value)>) -> Outputs {
    values.into_iter().collect::<BTreeMap<_, _>>()
}

/// The canvas size: from the image on the optional `like` input, else the `w`/`h` parameters.
fn size_param(ctx: &NodeCtx, w: &str, h: &str) -> Result<(u32, u32)> {
    if let Some(img) = ctx.opt_image("like")? {
        return Ok((img.width, img.height));
    }
    let (width, height) = (ctx.int(w)?, ctx.int(h)?);
    let (width, height) = (
        u32::try_from(width).unwrap_or(0),
        u32::try_from(height).unwrap_or(0),
    );
    check_size(width, height).map_err(EngineError::failed)?;
    Ok((width, height))
}

fn same_size(what: &str, image: &Image, mask: &Mask) -> Result<()> {
    if (image.width, image.height) != (mask.width, mask.height) {
        return Err(EngineError::failed(format!(
            "{what}: the mask is {}×{} but the image is {}×{}",
            mask.width, mask.height, image.width, image.height
        )));
    }
    Ok(())
}

fn choice<T>(ctx: &NodeCtx, name: &str, parse: impl Fn(&str) -> Option<T>) -> Result<T> {
    let v = ctx.text(name)?;
    parse(v)
        .ok_or_else(|| EngineError::failed(format!("parameter \"{name}\": unknown option \"{v}\"")))
}

fn load_image(ctx: &mut NodeCtx) -> Result<Outputs> {
    let bytes = ctx.file("source")?;
    let img = decode_image(&bytes, ctx.text("source")?).map_err(EngineError::failed)?;
    let mask = img.alpha();
    Ok(outputs([("image", img.into()), ("mask", mask.into())]))
}

/// Luma as PIL's `convert('L')` computes it on 8-bit values (ITU-R 601-2, fixed point), which
/// is how diffusers reads a mask image: `(R·19595 + G·38470 + B·7471 + 2¹⁵) >> 16`.
pub(crate) fn luma_pil(p: &[f32]) -> f32 {
    let u8v = |v: f32| u32::from((v.clamp(0.0, 1.0) * 255.0).round() as u8);
    let l = (u8v(p[0]) * 19595 + u8v(p[1]) * 38470 + u8v(p[2]) * 7471 + 0x8000) >> 16;
    l as f32 / 255.0
}

fn load_mask(ctx: &mut NodeCtx) -> Result<Outputs> {
    let bytes = ctx.file("source")?;
    let img = decode_image(&bytes, ctx.text("source")?).map_err(EngineError::failed)?;
    let channel = ctx.text("channel")?.to_string();
    let pick: fn(&[f32]) -> f32 = match channel.as_str() {
        "alpha" => |p| p[3],
        "red" => |p| p[0],
        "green" => |p| p[1],
        "blue" => |p| p[2],
        _ => luma_pil,
    };
    let invert = ctx.bool("invert")?;
    let data = img
        .data
        .chunks_exact(4)
        .map(|p| {
            let v = pick(p).clamp(0.0, 1.0);
            if invert {
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

fn save_image(ctx: &mut NodeCtx) -> Result<Outputs> {
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
    let template = ctx.text("filename")?.to_string();
    let label = ctx.text("label")?.trim().to_string();
    let label = if label.is_empty() { "defect" } else { &label };
    let n = images.len();
    for (k, image) in images.iter().enumerate() {
        let name = if n > 1 {
            batch_name(&template, k)
        } else {
            template.clone()
        };
        ctx.save(image, mask.as_deref(), &name, label)?;
    }
    Ok(Outputs::new())
}

/// `dir/name.png` → `dir/name-K.png` (the name of image K of a batch).
fn batch_name(template: &str, k: usize) -> String {
    match template.strip_suffix(".png") {
        Some(stem) => format!("{stem}-{k}.png"),
        None => format!("{template}-{k}"),
    }
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

fn resize(ctx: &mut NodeCtx) -> Result<Outputs> {
    let image = ctx.image("image")?;
    let mask = match ctx.opt_mask("mask")? {
        Some(m) => {
            same_size("input \"mask\"", &image, &m)?;
            (*m).clone()
        }
        None => image.alpha(),
    };
    let (w, h) = resize_target(
        image.width,
        image.height,
        ctx.int("width")?,
        ctx.int("height")?,
    )?;
    let filter = choice(ctx, "filter", Filter::from_name)?;
    let (iw, ih) = (f64::from(image.width), f64::from(image.height));
    let (img, m) = match ctx.text("mode")? {
        "fit" | "fill" => {
            let fit = ctx.text("mode")? == "fit";
            let s = if fit {
                (f64::from(w) / iw).min(f64::from(h) / ih)
            } else {
                (f64::from(w) / iw).max(f64::from(h) / ih)
            };
            let rw = ((iw * s).round() as u32).max(1);
            let rh = ((ih * s).round() as u32).max(1);
            check_size(rw, rh).map_err(EngineError::failed)?;
            let ri = ops::resize_image(&image, rw, rh, filter);
            let rm = ops::resize_mask(&mask, rw, rh, filter);
            let x = (i64::from(w) - i64::from(rw)) / 2;
            let y = (i64::from(h) - i64::from(rh)) / 2;
            (
                ops::place_image(&ri, w, h, x, y),
                ops::place_mask(&rm, w, h, x, y),
            )
        }
        _ => (
            ops::resize_image(&image, w, h, filter),
            ops::resize_mask(&mask, w, h, filter),
        ),
    };
    Ok(outputs([("image", img.into()), ("mask", m.into())]))
}

fn crop(ctx: &mut NodeCtx) -> Result<Outputs> {
    let image = ctx.image("image")?;
    let mask = match ctx.opt_mask("mask")? {
        Some(m) => {
            same_size("input \"mask\"", &image, &m)?;
            (*m).clone()
        }
        None => image.alpha(),
    };
    let (x, y) = (ctx.int("x")?, ctx.int("y")?);
    let (iw, ih) = (i64::from(image.width), i64::from(image.height));
    let w = match ctx.int("width")? {
        0 => iw - x,
        w => w,
    };
    let h = match ctx.int("height")? {
        0 => ih - y,
        h => h,
    };
    if x >= iw || y >= ih || w <= 0 || h <= 0 || x + w > iw || y + h > ih {
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

fn mask_ops(ctx: &mut NodeCtx) -> Result<Outputs> {
    let mask = ctx.mask("mask")?;
    let radius = ctx.float("radius")? as f32;
    let out = match ctx.text("op")? {
        "threshold" => ops::threshold(&mask, ctx.float("threshold")? as f32),
        "invert" => ops::invert(&mask),
        "grow" => ops::grow(&mask, radius),
        "shrink" => ops::shrink(&mask, radius),
        "feather" => ops::feather(&mask, radius),
        "blur" => ops::blur_mask(&mask, radius),
        other => {
            return Err(EngineError::failed(format!(
                "parameter \"op\": unknown operation \"{other}\""
            )))
        }
    };
    Ok(outputs([("mask", out.into())]))
}

fn composite(ctx: &mut NodeCtx) -> Result<Outputs> {
    let top = ctx.image("top")?;
    let bottom = ctx.image("bottom")?;
    let mask = ctx.opt_mask("mask")?;
    if let Some(m) = &mask {
        same_size("input \"mask\" (must match \"top\")", &top, m)?;
    }
    let blend = choice(ctx, "blend", Blend::from_name)?;
    let (img, placed) = ops::composite(
        &bottom,
        &top,
        mask.as_deref(),
        ctx.int("x")?,
        ctx.int("y")?,
        ctx.float("opacity")? as f32,
        blend,
    );
    Ok(outputs([("image", img.into()), ("mask", placed.into())]))
}

fn solid_color(ctx: &mut NodeCtx) -> Result<Outputs> {
    let (w, h) = size_param(ctx, "width", "height")?;
    let [r, g, b] = ctx.color("color")?;
    let a = ctx.float("alpha")? as f32;
    Ok(outputs([(
        "image",
        Image::filled(w, h, [r, g, b, a]).into(),
    )]))
}

fn noise(ctx: &mut NodeCtx) -> Result<Outputs> {
    let (w, h) = size_param(ctx, "width", "height")?;
    let kind = choice(ctx, "noise", NoiseKind::from_name)?;
    let octaves = u32::try_from(ctx.int("octaves")?).unwrap_or(1);
    let field = noise_field(
        kind,
        w,
        h,
        ctx.seed("seed")?,
        ctx.float("scale")? as f32,
        octaves,
    );
    Ok(outputs([
        ("image", field.to_image().into()),
        ("mask", field.into()),
    ]))
}

fn texture_node(ctx: &mut NodeCtx) -> Result<Outputs> {
    let (width, height) = size_param(ctx, "width", "height")?;
    let p = TextureParams {
        kind: choice(ctx, "material", TextureKind::from_name)?,
        width,
        height,
        seed: ctx.seed("seed")?,
        scale: ctx.float("scale")? as f32,
        color: ctx.color("color")?,
        contrast: ctx.float("contrast")? as f32,
        angle_deg: ctx.float("angle")? as f32,
    };
    Ok(outputs([("image", texture(&p).into())]))
}

fn shape_mask_node(ctx: &mut NodeCtx) -> Result<Outputs> {
    let (width, height) = size_param(ctx, "width", "height")?;
    let p = ShapeParams {
        shape: choice(ctx, "shape", Shape::from_name)?,
        width,
        height,
        cx: ctx.float("x")? as f32 * width as f32,
        cy: ctx.float("y")? as f32 * height as f32,
        size_x: ctx.float("size_x")? as f32,
        size_y: ctx.float("size_y")? as f32,
        rotation_deg: ctx.float("rotation")? as f32,
        feather_px: ctx.float("feather")? as f32,
    };
    Ok(outputs([("mask", shape_mask(&p).into())]))
}

fn paint_mask(ctx: &mut NodeCtx) -> Result<Outputs> {
    let image = ctx.image("image")?;
    let mask = if ctx.text("painting")?.trim().is_empty() {
        Mask::filled(image.width, image.height, 0.0)
    } else {
        let bytes = ctx.file("painting")?;
        let painted = decode_image(&bytes, "painting").map_err(EngineError::failed)?;
        // The painter stores masks as greyscale PNGs: white = 1.
        let m = Mask {
            width: painted.width,
            height: painted.height,
            data: painted.data.chunks_exact(4).map(|p| p[0]).collect(),
        };
        ops::resize_mask(&m, image.width, image.height, Filter::Nearest)
    };
    Ok(outputs([
        ("mask", mask.into()),
        ("image", Value::Image(image)),
    ]))
}

/// The inputs every defect node takes: the image and an optional placement mask.
fn defect_inputs(ctx: &NodeCtx) -> Result<(std::sync::Arc<Image>, Option<std::sync::Arc<Mask>>)> {
    let image = ctx.image("image")?;
    let placement = ctx.opt_mask("placement")?;
    if let Some(p) = &placement {
        same_size("input \"placement\"", &image, p)?;
    }
    Ok((image, placement))
}

fn defect_outputs(d: std::result::Result<defects::Defect, String>) -> Result<Outputs> {
    let d = d.map_err(EngineError::failed)?;
    Ok(outputs([
        ("image", d.image.into()),
        ("mask", d.mask.into()),
    ]))
}

fn f32p(ctx: &NodeCtx, name: &str) -> Result<f32> {
    Ok(ctx.float(name)? as f32)
}

fn u32p(ctx: &NodeCtx, name: &str) -> Result<u32> {
    Ok(u32::try_from(ctx.int(name)?).unwrap_or(0))
}

fn scratch_node(ctx: &mut NodeCtx) -> Result<Outputs> {
    let (img, placement) = defect_inputs(ctx)?;
    let p = defects::ScratchParams {
        seed: ctx.seed("seed")?,
        count: u32p(ctx, "count")?,
        length: f32p(ctx, "length")?,
        width: f32p(ctx, "width")?,
        angle: f32p(ctx, "angle")?,
        angle_jitter: f32p(ctx, "angle_jitter")?,
        curvature: f32p(ctx, "curvature")?,
        depth: f32p(ctx, "depth")?,
        light_deg: f32p(ctx, "light")?,
    };
    defect_outputs(defects::scratch(&img, &p, placement.as_deref()))
}

fn crack_node(ctx: &mut NodeCtx) -> Result<Outputs> {
    let (img, placement) = defect_inputs(ctx)?;
    let p = defects::CrackParams {
        seed: ctx.seed("seed")?,
        length: f32p(ctx, "length")?,
        width: f32p(ctx, "width")?,
        branches: u32p(ctx, "branches")?,
        roughness: f32p(ctx, "roughness")?,
        depth: f32p(ctx, "depth")?,
        angle: f32p(ctx, "angle")?,
        angle_jitter: f32p(ctx, "angle_jitter")?,
    };
    defect_outputs(defects::crack(&img, &p, placement.as_deref()))
}

fn dent_node(ctx: &mut NodeCtx) -> Result<Outputs> {
    let (img, placement) = defect_inputs(ctx)?;
    let p = defects::DentParams {
        seed: ctx.seed("seed")?,
        count: u32p(ctx, "count")?,
        radius: f32p(ctx, "radius")?,
        radius_jitter: f32p(ctx, "radius_jitter")?,
        depth: f32p(ctx, "depth")?,
        ellipticity: f32p(ctx, "ellipticity")?,
        angle: f32p(ctx, "angle")?,
        angle_jitter: f32p(ctx, "angle_jitter")?,
        light_deg: f32p(ctx, "light")?,
    };
    defect_outputs(defects::dent(&img, &p, placement.as_deref()))
}

fn stain_node(ctx: &mut NodeCtx) -> Result<Outputs> {
    let (img, placement) = defect_inputs(ctx)?;
    let p = defects::StainParams {
        seed: ctx.seed("seed")?,
        count: u32p(ctx, "count")?,
        size: f32p(ctx, "size")?,
        color: ctx.color("color")?,
        opacity: f32p(ctx, "opacity")?,
        softness: f32p(ctx, "softness")?,
        distortion: f32p(ctx, "distortion")?,
        ring: f32p(ctx, "ring")?,
    };
    defect_outputs(defects::stain(&img, &p, placement.as_deref()))
}

fn chip_node(ctx: &mut NodeCtx) -> Result<Outputs> {
    let (img, placement) = defect_inputs(ctx)?;
    let p = defects::ChipParams {
        seed: ctx.seed("seed")?,
        count: u32p(ctx, "count")?,
        size: f32p(ctx, "size")?,
        roughness: f32p(ctx, "roughness")?,
        under_color: ctx.color("under_color")?,
        under_texture: choice(ctx, "under_texture", TextureKind::from_name)?,
        bevel: f32p(ctx, "bevel")?,
        light_deg: f32p(ctx, "light")?,
        edge_affinity: f32p(ctx, "edge_affinity")?,
    };
    defect_outputs(defects::chip(&img, &p, placement.as_deref()))
}

fn draem_node(ctx: &mut NodeCtx) -> Result<Outputs> {
    let (img, placement) = defect_inputs(ctx)?;
    let source = ctx.opt_image("source")?;
    let beta = f32p(ctx, "beta")?;
    let p = defects::DraemParams {
        seed: ctx.seed("seed")?,
        beta: (beta > 0.0).then_some(beta),
        threshold: f32p(ctx, "threshold")?,
        min_scale: f32p(ctx, "min_scale")?,
        max_scale: f32p(ctx, "max_scale")?,
        min_coverage: f32p(ctx, "min_coverage")?,
    };
    defect_outputs(defects::draem(
        &img,
        &p,
        source.as_deref(),
        placement.as_deref(),
    ))
}

/// A `(min, max)` pair from two parameters, refusing min > max by name.
fn range(ctx: &NodeCtx, lo: &str, hi: &str) -> Result<(f32, f32)> {
    let (a, b) = (f32p(ctx, lo)?, f32p(ctx, hi)?);
    if a > b {
        return Err(EngineError::failed(format!(
            "parameter \"{lo}\" ({a}) is larger than \"{hi}\" ({b})"
        )));
    }
    Ok((a, b))
}

fn cutpaste_node(ctx: &mut NodeCtx) -> Result<Outputs> {
    let (img, placement) = defect_inputs(ctx)?;
    let p = defects::CutPasteParams {
        seed: ctx.seed("seed")?,
        area_ratio: range(ctx, "area_min", "area_max")?,
        aspect_ratio: range(ctx, "aspect_min", "aspect_max")?,
        color_jitter: f32p(ctx, "color_jitter")?,
    };
    defect_outputs(defects::cutpaste(&img, &p, placement.as_deref()))
}

fn scar_node(ctx: &mut NodeCtx) -> Result<Outputs> {
    let (img, placement) = defect_inputs(ctx)?;
    let p = defects::ScarParams {
        seed: ctx.seed("seed")?,
        width: range(ctx, "width_min", "width_max")?,
        length: range(ctx, "length_min", "length_max")?,
        angle: range(ctx, "angle_min", "angle_max")?,
        color_jitter: f32p(ctx, "color_jitter")?,
    };
    defect_outputs(defects::cutpaste_scar(&img, &p, placement.as_deref()))
}

fn nsa_node(ctx: &mut NodeCtx) -> Result<Outputs> {
    let (img, placement) = defect_inputs(ctx)?;
    let source = ctx.opt_image("source")?;
    let p = defects::NsaParams {
        seed: ctx.seed("seed")?,
        size: range(ctx, "size_min", "size_max")?,
        intensity: f32p(ctx, "intensity")?,
        min_changed: f32p(ctx, "min_changed")?,
        max_tries: u32p(ctx, "max_tries")?,
    };
    defect_outputs(defects::nsa(
        &img,
        &p,
        source.as_deref(),
        placement.as_deref(),
    ))
}

fn cleanup_node(ctx: &mut NodeCtx) -> Result<Outputs> {
    let image = ctx.image("image")?;
    let mask = ctx.mask("mask")?;
    same_size("input \"mask\"", &image, &mask)?;
    let grow = f32p(ctx, "grow")?;
    let hole = if grow > 0.0 {
        ops::grow(&mask, grow)
    } else {
        (*mask).clone()
    };
    let p = cleanup::FillParams {
        patch_size: u32p(ctx, "patch_size")?,
        em_iterations: u32p(ctx, "iterations")?,
        pm_iterations: u32p(ctx, "search_passes")?,
        seed: ctx.seed("seed")?,
        ..cleanup::FillParams::default()
    };
    // Progress per EM iteration; a cancel stops the fill within one iteration.
    let mut step = 0u32;
    let mut cancelled = false;
    let result = cleanup::fill(&image, &hole, &p, &mut |pr: &cleanup::Progress| {
        step += 1;
        let total = pr.levels.max(1) * p.em_iterations.max(1);
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

fn load_image_folder(ctx: &mut NodeCtx) -> Result<Outputs> {
    let bytes = ctx.file("folder")?;
    let img = decode_image(&bytes, ctx.text("folder")?).map_err(EngineError::failed)?;
    let mask = img.alpha();
    Ok(outputs([("image", img.into()), ("mask", mask.into())]))
}

fn export_dataset(ctx: &mut NodeCtx) -> Result<Outputs> {
    let image = ctx.image("image")?;
    let mask = ctx.opt_mask("mask")?;
    if let Some(m) = &mask {
        same_size("input \"mask\"", &image, m)?;
    }
    let label = ctx.text("label")?.trim().to_string();
    let label = if label.is_empty() {
        "defect".to_string()
    } else {
        label
    };
    let format = ctx.text("format")?.to_string();
    let folder = ctx.text("folder")?.to_string();
    let saved = ctx.save(
        &image,
        mask.as_deref(),
        "{graph}/{run:05}-{item:04}-{node}.png",
        &label,
    )?;
    ctx.collect(&saved, &format, &folder)?;
    Ok(Outputs::new())
}

fn remove_background(ctx: &mut NodeCtx) -> Result<Outputs> {
    let image = ctx.image("image")?;
    let net = crate::models::background::load_isnet(ctx.text("model")?)?;
    let to_u8 = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    let rgb: Vec<u8> = image
        .data
        .chunks_exact(4)
        .flat_map(|p| [to_u8(p[0]), to_u8(p[1]), to_u8(p[2])])
        .collect();
    let refine = crate::models::background::Refine {
        threshold: (ctx.text("alpha")? == "hard").then_some(f32p(ctx, "threshold")?),
        grow: f32p(ctx, "grow")?,
        feather: f32p(ctx, "feather")?,
    };
    ctx.progress(0, 1, None)?;
    let mask =
        crate::models::background::alpha_mask(&net, &rgb, image.width, image.height, &refine)?;
    ctx.progress(1, 1, None)?;
    let mut cutout = (*image).clone();
    for (p, a) in cutout.data.chunks_exact_mut(4).zip(&mask.data) {
        p[3] *= a;
    }
    let bottom = match ctx.opt_image("background")? {
        Some(bg) => ops::resize_image(&bg, image.width, image.height, Filter::Bilinear),
        None => {
            let [r, g, b] = ctx.color("background_color")?;
            Image::filled(image.width, image.height, [r, g, b, 1.0])
        }
    };
    let (composite, _) = ops::composite(&bottom, &cutout, Some(&mask), 0, 0, 1.0, Blend::Normal);
    Ok(outputs([
        ("image", cutout.into()),
        ("mask", mask.into()),
        ("composite", composite.into()),
    ]))
}
