//! Training data: a folder of images with optional same-name `.txt` captions (kohya's
//! convention) or one instance prompt, plus an optional class (regularisation) folder with its
//! class prompt (DreamBooth's prior preservation). Images are centre-cropped to the square
//! resolution, or, with aspect-ratio bucketing, resized to cover the bucket of the nearest
//! aspect ratio (kohya's buckets: sides multiples of 64, area at most resolution²) and
//! centre-cropped to it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use crate::error::{EngineError, Result};

/// Image extensions the trainer reads.
const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "bmp", "webp", "tif", "tiff"];

/// One training image and its caption.
#[derive(Clone, Debug, PartialEq)]
pub struct Example {
    pub image: PathBuf,
    pub caption: String,
}

/// The images of `dir` (sorted by file name, so the order — and the training — does not depend
/// on the file system). Each takes the caption of `<stem>.txt` beside it if there is one, else
/// `instance_prompt`; an image with neither is an error naming it.
pub fn scan_folder(dir: &Path, instance_prompt: Option<&str>) -> Result<Vec<Example>> {
    if !dir.is_dir() {
        return Err(EngineError::failed(format!(
            "{}: the training data folder does not exist",
            dir.display()
        )));
    }
    let entries = std::fs::read_dir(dir).map_err(|e| EngineError::io(dir, e))?;
    let mut images = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| EngineError::io(dir, e))?.path();
        let is_image = path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
            .unwrap_or(false);
        if is_image && path.is_file() {
            images.push(path);
        }
    }
    images.sort();
    if images.is_empty() {
        return Err(EngineError::failed(format!(
            "{}: no training images (expected {})",
            dir.display(),
            IMAGE_EXTENSIONS.join(", ")
        )));
    }
    images
        .into_iter()
        .map(|image| {
            let txt = image.with_extension("txt");
            let caption = if txt.is_file() {
                std::fs::read_to_string(&txt)
                    .map_err(|e| EngineError::io(&txt, e))?
                    .trim()
                    .to_string()
            } else if let Some(p) = instance_prompt {
                p.to_string()
            } else {
                return Err(EngineError::failed(format!(
                    "{}: no caption file {} and no instance prompt",
                    image.display(),
                    txt.display()
                )));
            };
            Ok(Example { image, caption })
        })
        .collect()
}

/// kohya's `ss_tag_frequency`: `{folder name: {tag: count}}`, tags being the comma-separated
/// parts of the captions.
pub fn tag_frequency(dir: &Path, examples: &[Example]) -> BTreeMap<String, BTreeMap<String, u64>> {
    let mut tags: BTreeMap<String, u64> = BTreeMap::new();
    for ex in examples {
        for tag in ex
            .caption
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            *tags.entry(tag.to_string()).or_default() += 1;
        }
    }
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "data".into());
    BTreeMap::from([(name, tags)])
}

/// kohya's bucket sizes for a training resolution: `(width, height)` pairs with sides
/// multiples of 64 between 256 (or less for small resolutions) and twice the resolution, whose
/// area is at most `resolution²`; for each width the tallest height that fits.
pub fn buckets(resolution: u32) -> Vec<(u32, u32)> {
    let step = if resolution >= 256 { 64 } else { 8 };
    let area = u64::from(resolution) * u64::from(resolution);
    let min_side = (resolution / 2).max(step);
    let max_side = resolution * 2;
    let mut out = Vec::new();
    let mut w = min_side;
    while w <= max_side {
        let h = ((area / u64::from(w)) as u32 / step * step).min(max_side);
        if h >= min_side {
            out.push((w, h));
        }
        w += step;
    }
    out
}

/// The bucket whose aspect ratio is nearest the image's (ties: the larger area).
pub fn bucket_for(width: u32, height: u32, buckets: &[(u32, u32)]) -> Option<(u32, u32)> {
    let ar = (f64::from(width) / f64::from(height.max(1))).ln();
    buckets.iter().copied().min_by(|a, b| {
        let da = ((f64::from(a.0) / f64::from(a.1)).ln() - ar).abs();
        let db = ((f64::from(b.0) / f64::from(b.1)).ln() - ar).abs();
        da.total_cmp(&db)
            .then((u64::from(b.0) * u64::from(b.1)).cmp(&(u64::from(a.0) * u64::from(a.1))))
    })
}

/// Reads `path` as RGB, with an error naming the file.
pub fn open_rgb(path: &Path) -> Result<image::RgbImage> {
    let img = image::open(path)
        .map_err(|e| {
            EngineError::failed(format!("{}: cannot read the image: {e}", path.display()))
        })?
        .to_rgb8();
    if img.width() == 0 || img.height() == 0 {
        return Err(EngineError::failed(format!(
            "{}: empty image",
            path.display()
        )));
    }
    Ok(img)
}

/// The largest centred region of a `w × h` image with the aspect ratio of `width × height`:
/// `(x, y, crop width, crop height)`.
pub fn crop_box(w: u32, h: u32, (width, height): (u32, u32)) -> (u32, u32, u32, u32) {
    let (cw, ch) = if u64::from(w) * u64::from(height) > u64::from(h) * u64::from(width) {
        (
            ((u64::from(h) * u64::from(width) / u64::from(height)) as u32).max(1),
            h,
        )
    } else {
        (
            w,
            ((u64::from(w) * u64::from(height) / u64::from(width)) as u32).max(1),
        )
    };
    ((w - cw) / 2, (h - ch) / 2, cw, ch)
}

/// SDXL's micro-conditioning for a `w × h` image trained at `target` (width, height): original
/// size, the crop's top-left in the resized image, target size, as diffusers' SDXL training
/// computes them: `[orig_h, orig_w, crop_top, crop_left, target_h, target_w]`.
pub fn sdxl_time_ids(w: u32, h: u32, target: (u32, u32)) -> [f32; 6] {
    let (x, y, cw, _) = crop_box(w, h, target);
    let scale = target.0 as f32 / cw as f32;
    [
        h as f32,
        w as f32,
        (y as f32 * scale).round(),
        (x as f32 * scale).round(),
        target.1 as f32,
        target.0 as f32,
    ]
}

/// Centre-crops `img` to the aspect ratio of `width × height` and resizes the crop to that
/// size (Lanczos 3); returns `[1, 3, height, width]` in `[-1, 1]`, mirrored when `flipped`.
pub fn prepare_image(
    img: &image::RgbImage,
    (width, height): (u32, u32),
    flipped: bool,
    device: &Device,
) -> candle_core::Result<Tensor> {
    let (w, h) = img.dimensions();
    let (x, y, cw, ch) = crop_box(w, h, (width, height));
    let crop = image::imageops::crop_imm(img, x, y, cw, ch).to_image();
    let mut out = if (cw, ch) == (width, height) {
        crop
    } else {
        image::imageops::resize(&crop, width, height, image::imageops::FilterType::Lanczos3)
    };
    if flipped {
        image::imageops::flip_horizontal_in_place(&mut out);
    }
    let (wu, hu) = (width as usize, height as usize);
    let plane = wu * hu;
    let mut chw = vec![0f32; 3 * plane];
    for (i, px) in out.pixels().enumerate() {
        for c in 0..3 {
            chw[c * plane + i] = f32::from(px[c]) / 127.5 - 1.0;
        }
    }
    Tensor::from_vec(chw, (1, 3, hu, wu), device)?.to_dtype(DType::F32)
}

/// Reads `path`, centre-crops it to a square and resizes it to `size`² (Lanczos 3); returns
/// `[1, 3, size, size]` in `[-1, 1]`, and the mirrored image when `flipped`.
pub fn load_image(path: &Path, size: u32, flipped: bool, device: &Device) -> Result<Tensor> {
    let img = open_rgb(path)?;
    prepare_image(&img, (size, size), flipped, device)
        .map_err(|e| EngineError::failed(format!("{}: {e}", path.display())))
}
