//! Decoding and encoding image files, with limits so that a hostile file cannot exhaust memory.

use std::io::Cursor;

use crate::image::{Image, Mask};

/// The largest image side we decode or create.
pub const MAX_SIDE: u32 = 16384;
/// The largest pixel count we decode or create (64 Mpx: 1 GiB as f32 RGBA).
pub const MAX_PIXELS: u64 = 64 * 1024 * 1024;

/// Checks a requested size against [`MAX_SIDE`] and [`MAX_PIXELS`].
pub fn check_size(width: u32, height: u32) -> Result<(), String> {
    if width == 0 || height == 0 {
        return Err(format!("image size {width}×{height} is empty"));
    }
    let pixels = u64::from(width) * u64::from(height);
    if width > MAX_SIDE || height > MAX_SIDE || pixels > MAX_PIXELS {
        return Err(format!(
            "image size {width}×{height} ({:.0} Mpx) exceeds the limit of {MAX_SIDE} px a side and {} Mpx",
            pixels as f64 / 1048576.0,
            MAX_PIXELS / 1048576
        ));
    }
    Ok(())
}

/// A reader for `bytes` with its format guessed and allocation limits set.
fn reader<'a>(bytes: &'a [u8], name: &str) -> Result<image::ImageReader<Cursor<&'a [u8]>>, String> {
    let mut reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| format!("{name}: cannot read: {e}"))?;
    if reader.format().is_none() {
        return Err(format!(
            "{name}: not an image file (PNG, JPEG, BMP, TIFF or WebP expected)"
        ));
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(2 * 1024 * 1024 * 1024);
    reader.limits(limits);
    Ok(reader)
}

/// Decodes an image file after checking its size against the limits (before allocating).
fn decode_checked(bytes: &[u8], name: &str) -> Result<image::DynamicImage, String> {
    let (w, h) = reader(bytes, name)?
        .into_dimensions()
        .map_err(|e| format!("{name}: cannot decode: {e}"))?;
    check_size(w, h).map_err(|e| format!("{name}: {e}"))?;
    reader(bytes, name)?
        .decode()
        .map_err(|e| format!("{name}: cannot decode: {e}"))
}

/// Decodes PNG, JPEG, BMP, TIFF or WebP bytes into an RGBA image. `name` is used in messages.
pub fn decode_image(bytes: &[u8], name: &str) -> Result<Image, String> {
    let rgba = decode_checked(bytes, name)?.to_rgba32f();
    Ok(Image {
        width: rgba.width(),
        height: rgba.height(),
        data: rgba.into_raw(),
    })
}

fn to_u8(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0).round() as u8
}

/// Text chunks written into a PNG (keyword, text).
pub type PngText<'a> = &'a [(&'a str, &'a str)];

fn encode_png(
    width: u32,
    height: u32,
    color: png::ColorType,
    data: &[u8],
    text: PngText,
) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(color);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Fast);
        for (k, v) in text {
            enc.add_itxt_chunk((*k).to_string(), (*v).to_string())
                .map_err(|e| e.to_string())?;
        }
        let mut w = enc.write_header().map_err(|e| e.to_string())?;
        w.write_image_data(data).map_err(|e| e.to_string())?;
        w.finish().map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// Encodes an image as an 8-bit RGBA PNG (opaque images as RGB), with optional text chunks.
pub fn encode_image_png(img: &Image, text: PngText) -> Result<Vec<u8>, String> {
    let opaque = img.data.chunks_exact(4).all(|p| to_u8(p[3]) == 255);
    if opaque {
        let data: Vec<u8> = img
            .data
            .chunks_exact(4)
            .flat_map(|p| [to_u8(p[0]), to_u8(p[1]), to_u8(p[2])])
            .collect();
        encode_png(img.width, img.height, png::ColorType::Rgb, &data, text)
    } else {
        let data: Vec<u8> = img.data.iter().map(|&v| to_u8(v)).collect();
        encode_png(img.width, img.height, png::ColorType::Rgba, &data, text)
    }
}

/// Encodes a mask as an 8-bit greyscale PNG (white = 1).
pub fn encode_mask_png(mask: &Mask, text: PngText) -> Result<Vec<u8>, String> {
    let data: Vec<u8> = mask.data.iter().map(|&v| to_u8(v)).collect();
    encode_png(
        mask.width,
        mask.height,
        png::ColorType::Grayscale,
        &data,
        text,
    )
}

/// An 8-bit photo: width, height, RGB bytes and, when the file has one, its alpha channel.
pub type Rgb8 = (u32, u32, Vec<u8>, Option<Vec<u8>>);

/// Decodes an image file to 8-bit RGB (and its alpha, if it has one) without going through
/// floats, for memory-lean whole-image paths (`remove-bg` on 48-megapixel photos).
pub fn decode_rgb8(bytes: &[u8], name: &str) -> Result<Rgb8, String> {
    let img = decode_checked(bytes, name)?;
    let alpha = img
        .color()
        .has_alpha()
        .then(|| img.to_rgba8().pixels().map(|p| p.0[3]).collect());
    let rgb = img.to_rgb8();
    Ok((rgb.width(), rgb.height(), rgb.into_raw(), alpha))
}

/// Encodes 8-bit RGBA pixels as a PNG.
pub fn encode_rgba8_png(width: u32, height: u32, rgba: &[u8]) -> Result<Vec<u8>, String> {
    encode_png(width, height, png::ColorType::Rgba, rgba, &[])
}

/// Encodes 8-bit grey pixels as a PNG.
pub fn encode_gray8_png(width: u32, height: u32, grey: &[u8]) -> Result<Vec<u8>, String> {
    encode_png(width, height, png::ColorType::Grayscale, grey, &[])
}
