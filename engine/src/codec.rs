//! Decoding and encoding image files, with limits so that a hostile file cannot exhaust memory:
//! [`MAX_SIDE`] and [`MAX_PIXELS`] before anything is allocated, and an image may not declare
//! more pixels than its bytes can encode ([`max_pixels_per_byte`]), nor stop early.

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

/// The most pixels an image file of each format may declare per byte of the file. Beyond it the
/// file cannot hold the image it claims (it is truncated or corrupt, and a lenient decoder would
/// fill the rest with noise). Each figure is at least twice what the best compression of that
/// format reaches on a uniform image: deflate's 1032:1 on 1-bit rows (PNG, TIFF: about 8,300
/// px/byte), one bit per 8×8 block in a progressive JPEG's DC scan (about 512 px/byte), a
/// 255-pixel run per 2 bytes in BMP's RLE (128 px/byte). WebP has no such bound (a lossless
/// WebP of one colour takes the same bytes at any size): it is checked by its decoder only.
pub fn max_pixels_per_byte(format: image::ImageFormat) -> Option<u64> {
    use image::ImageFormat as F;
    match format {
        F::Png | F::Tiff => Some(16_384),
        F::Jpeg => Some(2_048),
        F::Bmp => Some(256),
        _ => None,
    }
}

/// Refuses a file that declares more pixels than its bytes can encode
/// ([`max_pixels_per_byte`]), and a JPEG whose data stops before its end marker.
fn check_data_fits(bytes: &[u8], format: image::ImageFormat, w: u32, h: u32) -> Result<(), String> {
    let pixels = u64::from(w) * u64::from(h);
    if let Some(ratio) = max_pixels_per_byte(format) {
        let most = (bytes.len() as u64).saturating_mul(ratio);
        if pixels > most {
            return Err(format!(
                "declares {w}×{h} pixels, more than its {} bytes can hold as {format:?} (at most \
                 {ratio} pixels a byte): the file is truncated or corrupt",
                bytes.len()
            ));
        }
    }
    if format == image::ImageFormat::Jpeg && !jpeg_has_end(bytes) {
        return Err(
            "the JPEG data is truncated (no end-of-image marker after the image data)".into(),
        );
    }
    Ok(())
}

/// Whether a JPEG has its end-of-image marker (FF D9) after its first scan. Inside scan data an
/// FF byte is always followed by 00 or a restart marker, so FF D9 there is the real end.
fn jpeg_has_end(bytes: &[u8]) -> bool {
    let Some(sos) = bytes.windows(2).position(|w| w == [0xFF, 0xDA]) else {
        return false;
    };
    bytes[sos..].windows(2).any(|w| w == [0xFF, 0xD9])
}

/// Decodes an image file after checking its size against the limits (before allocating) and
/// against what its bytes can encode, without converting it; `name` is used in messages.
pub fn decode_checked(bytes: &[u8], name: &str) -> Result<image::DynamicImage, String> {
    let r = reader(bytes, name)?;
    let format = r.format();
    let (w, h) = r
        .into_dimensions()
        .map_err(|e| format!("{name}: cannot decode: {e}"))?;
    check_size(w, h).map_err(|e| format!("{name}: {e}"))?;
    if let Some(format) = format {
        check_data_fits(bytes, format, w, h).map_err(|e| format!("{name}: {e}"))?;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(w: u32, h: u32, f: impl Fn(u32, u32) -> [u8; 3]) -> Vec<u8> {
        let mut out = Vec::new();
        image::RgbImage::from_fn(w, h, |x, y| image::Rgb(f(x, y)))
            .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Jpeg)
            .unwrap();
        out
    }

    #[test]
    fn a_jpeg_claiming_more_pixels_than_its_bytes_hold_is_refused() {
        let mut bytes = jpeg(64, 64, |x, y| [x as u8 * 3, y as u8 * 3, 90]);
        assert!(decode_image(&bytes, "ok.jpg").is_ok());
        let sof = bytes
            .windows(2)
            .position(|w| w == [0xFF, 0xC0])
            .expect("baseline frame header");
        // 8192×8192 (a lenient decoder fills the missing data with noise).
        bytes[sof + 5..sof + 9].copy_from_slice(&[0x20, 0x00, 0x20, 0x00]);
        let err = decode_image(&bytes, "huge.jpg").expect_err("refused");
        assert!(
            err.contains("huge.jpg") && err.contains("8192×8192") && err.contains("corrupt"),
            "{err}"
        );
    }

    #[test]
    fn a_truncated_jpeg_is_refused() {
        let bytes = jpeg(256, 256, |x, y| [(x ^ y) as u8, x as u8, y as u8]);
        let cut = &bytes[..bytes.len() * 3 / 4];
        let err = decode_image(cut, "cut.jpg").expect_err("refused");
        assert!(
            err.contains("cut.jpg") && err.contains("truncated"),
            "{err}"
        );
    }

    #[test]
    fn large_uniform_images_still_decode() {
        // The best compression each encoder reaches stays under the ratio.
        let flat = jpeg(2048, 2048, |_, _| [40, 40, 40]);
        let (w, h, _, _) = decode_rgb8(&flat, "flat.jpg").unwrap();
        assert_eq!((w, h), (2048, 2048));
        let mut png = Vec::new();
        image::GrayImage::new(4096, 4096)
            .write_with_encoder(image::codecs::png::PngEncoder::new_with_quality(
                &mut png,
                image::codecs::png::CompressionType::Best,
                image::codecs::png::FilterType::NoFilter,
            ))
            .unwrap();
        assert!(
            (4096 * 4096) as u64 > png.len() as u64 * 1000,
            "the test PNG should compress about 1000:1"
        );
        let (w, h, _, _) = decode_rgb8(&png, "flat.png").unwrap();
        assert_eq!((w, h), (4096, 4096));
    }
}
