//! Training data: a folder of images with optional same-name `.txt` captions (kohya's
//! convention) or one instance prompt, centre-cropped and resized to a square resolution.

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

/// Reads `path`, centre-crops it to a square and resizes it to `size`² (Lanczos 3); returns
/// `[1, 3, size, size]` in `[-1, 1]`, and the mirrored image when `flipped`.
pub fn load_image(path: &Path, size: u32, flipped: bool, device: &Device) -> Result<Tensor> {
    let img = image::open(path)
        .map_err(|e| {
            EngineError::failed(format!("{}: cannot read the image: {e}", path.display()))
        })?
        .to_rgb8();
    let (w, h) = img.dimensions();
    let side = w.min(h);
    if side == 0 {
        return Err(EngineError::failed(format!(
            "{}: empty image",
            path.display()
        )));
    }
    let crop =
        image::imageops::crop_imm(&img, (w - side) / 2, (h - side) / 2, side, side).to_image();
    let mut img = if side == size {
        crop
    } else {
        image::imageops::resize(&crop, size, size, image::imageops::FilterType::Lanczos3)
    };
    if flipped {
        image::imageops::flip_horizontal_in_place(&mut img);
    }
    let s = size as usize;
    let mut chw = vec![0f32; 3 * s * s];
    for (i, px) in img.pixels().enumerate() {
        for c in 0..3 {
            chw[c * s * s + i] = f32::from(px[c]) / 127.5 - 1.0;
        }
    }
    Tensor::from_vec(chw, (1, 3, s, s), device)
        .and_then(|t| t.to_dtype(DType::F32))
        .map_err(|e| EngineError::failed(format!("{}: {e}", path.display())))
}
