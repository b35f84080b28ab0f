//! Features of explorer items: cheap image statistics, and a network's embedding with its
//! ImageNet top-5, cached in the store by the image's sha256 under the feature model's id (so
//! other weights never reuse them). Computed lazily, in batches, only for images without any.
//!
//! The statistics follow the usual tools: luma is PIL's `convert("L")` (ITU-R 601-2:
//! `(299 R + 587 G + 114 B) / 1000`), sharpness is OpenCV's `Laplacian(gray).var()` over the
//! interior pixels (3×3 kernel `[0 1 0; 1 −4 1; 0 1 0]`), entropy is scikit-image's
//! `shannon_entropy` of the 8-bit luma (bits).

use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};
use crate::store::Store;

/// Cheap statistics of an image.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageStats {
    pub width: u32,
    pub height: u32,
    /// Mean of each channel, 0–255.
    pub mean_r: f32,
    pub mean_g: f32,
    pub mean_b: f32,
    /// Mean luma, 0–255.
    pub brightness: f32,
    /// Standard deviation of luma.
    pub contrast: f32,
    /// Mean HSV saturation, 0–1.
    pub saturation: f32,
    /// Variance of the luma Laplacian.
    pub sharpness: f32,
    /// Shannon entropy of the luma histogram, bits.
    pub entropy: f32,
}

impl ImageStats {
    /// The statistics as named numeric columns (the explorer's fields).
    pub fn columns(&self) -> [(&'static str, f64); 10] {
        [
            ("width", f64::from(self.width)),
            ("height", f64::from(self.height)),
            ("mean_r", f64::from(self.mean_r)),
            ("mean_g", f64::from(self.mean_g)),
            ("mean_b", f64::from(self.mean_b)),
            ("brightness", f64::from(self.brightness)),
            ("contrast", f64::from(self.contrast)),
            ("saturation", f64::from(self.saturation)),
            ("sharpness", f64::from(self.sharpness)),
            ("entropy", f64::from(self.entropy)),
        ]
    }
}

/// The statistics of an 8-bit RGB image (`rgb.len() == 3 · width · height`).
pub fn image_stats(width: u32, height: u32, rgb: &[u8]) -> ImageStats {
    let (w, h) = (width as usize, height as usize);
    let n = (w * h).max(1) as f64;
    let mut sum = [0f64; 3];
    let mut sat = 0f64;
    let mut hist = [0u64; 256];
    let mut luma = Vec::with_capacity(w * h);
    for p in rgb.chunks_exact(3) {
        let (r, g, b) = (u32::from(p[0]), u32::from(p[1]), u32::from(p[2]));
        sum[0] += f64::from(r);
        sum[1] += f64::from(g);
        sum[2] += f64::from(b);
        let (mx, mn) = (r.max(g).max(b), r.min(g).min(b));
        if mx > 0 {
            sat += f64::from(mx - mn) / f64::from(mx);
        }
        let l = ((r * 299 + g * 587 + b * 114) / 1000) as u8;
        hist[l as usize] += 1;
        luma.push(l);
    }
    let mean_l = luma.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var_l = luma
        .iter()
        .map(|&v| (f64::from(v) - mean_l).powi(2))
        .sum::<f64>()
        / n;
    let entropy = hist
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum::<f64>();
    ImageStats {
        width,
        height,
        mean_r: (sum[0] / n) as f32,
        mean_g: (sum[1] / n) as f32,
        mean_b: (sum[2] / n) as f32,
        brightness: mean_l as f32,
        contrast: var_l.sqrt() as f32,
        saturation: (sat / n) as f32,
        sharpness: laplacian_variance(&luma, w, h) as f32,
        entropy: entropy as f32,
    }
}

/// Variance of the 4-neighbour Laplacian over the interior pixels (0 for images under 3×3).
fn laplacian_variance(luma: &[u8], w: usize, h: usize) -> f64 {
    if w < 3 || h < 3 {
        return 0.0;
    }
    let (mut s, mut s2, mut n) = (0f64, 0f64, 0f64);
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let at = |x: usize, y: usize| f64::from(luma[y * w + x]);
            let v = at(x - 1, y) + at(x + 1, y) + at(x, y - 1) + at(x, y + 1) - 4.0 * at(x, y);
            s += v;
            s2 += v * v;
            n += 1.0;
        }
    }
    let mean = s / n;
    (s2 / n - mean * mean).max(0.0)
}

/// What a feature network gives for one image.
#[derive(Clone, Debug, PartialEq)]
pub struct Embedded {
    /// The pooled embedding (1,280 values for EfficientNet-Lite0).
    pub embedding: Vec<f32>,
    /// The five most likely ImageNet classes, with their softmax probabilities.
    pub top5: Vec<(u16, f32)>,
}

/// A feature network.
pub trait Embedder {
    /// Names the network and its weights (part of the cache key), e.g.
    /// `efficientnet-lite0@3f1e…`.
    fn id(&self) -> String;
    /// The name of a class of [`Embedded::top5`] (an ImageNet class name).
    fn class_name(&self, class: u16) -> String;
    /// Embeds a batch of images.
    fn embed(&self, images: &[image::RgbImage]) -> Result<Vec<Embedded>>;
}

/// Everything the explorer knows about one image's content.
#[derive(Clone, Debug, PartialEq)]
pub struct Features {
    pub stats: ImageStats,
    pub top5: Vec<(u16, f32)>,
    pub embedding: Vec<f32>,
}

#[derive(Serialize, Deserialize)]
struct Header {
    stats: ImageStats,
    top5: Vec<(u16, f32)>,
    dim: usize,
}

const MAGIC: &[u8; 4] = b"DSF1";

impl Features {
    /// The stored form: magic, a JSON header (statistics, top-5, dimension), then the embedding
    /// as little-endian f32.
    pub fn encode(&self) -> Vec<u8> {
        let header = serde_json::to_vec(&Header {
            stats: self.stats.clone(),
            top5: self.top5.clone(),
            dim: self.embedding.len(),
        })
        .unwrap_or_default();
        let mut out = Vec::with_capacity(8 + header.len() + 4 * self.embedding.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&header);
        for v in &self.embedding {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// Reads [`Features::encode`]'s bytes back; an error says what is wrong with them.
    pub fn decode(bytes: &[u8]) -> Result<Features> {
        let bad = |m: &str| EngineError::failed(format!("stored features: {m}"));
        if bytes.len() < 8 || &bytes[..4] != MAGIC {
            return Err(bad("not a features record"));
        }
        let len = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
        let body = bytes.get(8..).ok_or_else(|| bad("truncated"))?;
        let header: Header =
            serde_json::from_slice(body.get(..len).ok_or_else(|| bad("truncated header"))?)
                .map_err(|e| bad(&e.to_string()))?;
        let data = &body[len..];
        if Some(data.len()) != header.dim.checked_mul(4) {
            return Err(bad("embedding length does not match its header"));
        }
        Ok(Features {
            stats: header.stats,
            top5: header.top5,
            embedding: data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        })
    }
}

/// What [`ensure_features`] did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FeatureSummary {
    /// Images whose features were already stored.
    pub cached: usize,
    /// Images computed now.
    pub computed: usize,
    /// Images that could not be read, with why (nothing is stored for them).
    pub failed: Vec<(String, String)>,
}

/// Makes sure every image in `shas` has features under `embedder` in the store: the missing
/// ones are loaded through `load` (the image file's bytes), decoded with the engine's hardened
/// decoder, and computed `batch` at a time, each batch committed on its own (an interrupted run
/// keeps what it finished). `progress(done, total)` follows the images to compute.
pub fn ensure_features(
    store: &Store,
    embedder: &dyn Embedder,
    shas: &[String],
    load: &mut dyn FnMut(&str) -> Result<Vec<u8>>,
    batch: usize,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<FeatureSummary> {
    let model = embedder.id();
    let mut unique: Vec<String> = shas.to_vec();
    unique.sort();
    unique.dedup();
    let have = store.features(&model, &unique)?;
    let missing: Vec<&String> = unique
        .iter()
        .zip(&have)
        .filter(|(_, h)| h.is_none())
        .map(|(s, _)| s)
        .collect();
    let mut summary = FeatureSummary {
        cached: unique.len() - missing.len(),
        ..Default::default()
    };
    let total = missing.len();
    progress(0, total);
    for chunk in missing.chunks(batch.max(1)) {
        let mut images = Vec::with_capacity(chunk.len());
        let mut names = Vec::with_capacity(chunk.len());
        for sha in chunk {
            let decoded = load(sha).and_then(|bytes| {
                crate::codec::decode_rgb8(&bytes, sha).map_err(EngineError::failed)
            });
            match decoded {
                Ok((w, h, rgb, _)) => match image::RgbImage::from_raw(w, h, rgb) {
                    Some(img) => {
                        images.push(img);
                        names.push((*sha).clone());
                    }
                    None => summary
                        .failed
                        .push(((*sha).clone(), "pixel buffer has the wrong size".into())),
                },
                Err(e) => summary.failed.push(((*sha).clone(), e.to_string())),
            }
        }
        if !images.is_empty() {
            let embedded = embedder.embed(&images)?;
            if embedded.len() != images.len() {
                return Err(EngineError::failed(format!(
                    "feature model {model} returned {} results for {} images",
                    embedded.len(),
                    images.len()
                )));
            }
            let rows: Vec<(String, Vec<u8>)> = names
                .into_iter()
                .zip(images.iter().zip(embedded))
                .map(|(sha, (img, e))| {
                    let f = Features {
                        stats: image_stats(img.width(), img.height(), img.as_raw()),
                        top5: e.top5,
                        embedding: e.embedding,
                    };
                    (sha, f.encode())
                })
                .collect();
            store.put_features(&model, &rows)?;
            summary.computed += rows.len();
        }
        progress(summary.computed + summary.failed.len(), total);
    }
    Ok(summary)
}

/// The stored features of each image under `model` (`None` where there are none).
pub fn load_features(store: &Store, model: &str, shas: &[String]) -> Result<Vec<Option<Features>>> {
    store
        .features(model, shas)?
        .into_iter()
        .map(|b| b.map(|b| Features::decode(&b)).transpose())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// A fake network: the embedding is the image's mean colour and size; counts its calls.
    struct Fake {
        calls: Cell<usize>,
    }

    impl Embedder for Fake {
        fn id(&self) -> String {
            "fake@1".into()
        }
        fn class_name(&self, class: u16) -> String {
            format!("class{class}")
        }
        fn embed(&self, images: &[image::RgbImage]) -> Result<Vec<Embedded>> {
            self.calls.set(self.calls.get() + images.len());
            Ok(images
                .iter()
                .map(|im| {
                    let s = image_stats(im.width(), im.height(), im.as_raw());
                    Embedded {
                        embedding: vec![s.mean_r, s.mean_g, s.mean_b, im.width() as f32],
                        top5: vec![(7, 0.5), (3, 0.25)],
                    }
                })
                .collect())
        }
    }

    fn png(w: u32, h: u32, f: impl Fn(u32, u32) -> [u8; 3]) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb(f(x, y)));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn statistics_match_hand_computed_values() {
        // Left half black, right half white: luma 0 and 255 in equal parts.
        let rgb: Vec<u8> = (0..4 * 4)
            .flat_map(|i| if i % 4 < 2 { [0u8; 3] } else { [255u8; 3] })
            .collect();
        let s = image_stats(4, 4, &rgb);
        assert_eq!(s.brightness, 127.5);
        assert_eq!(s.contrast, 127.5);
        assert_eq!(s.entropy, 1.0);
        assert_eq!(s.saturation, 0.0);
        // Interior Laplacians: at x=1 → 255, at x=2 → −255 (2 rows each): variance 255².
        assert_eq!(s.sharpness, 255.0 * 255.0);
        let red: Vec<u8> = (0..9).flat_map(|_| [200u8, 0, 0]).collect();
        let s = image_stats(3, 3, &red);
        assert_eq!((s.mean_r, s.mean_g, s.saturation), (200.0, 0.0, 1.0));
        // PIL's convert("L") of (200, 0, 0): 200·299/1000 = 59.8 → 59.
        assert_eq!(s.brightness, 59.0);
        assert_eq!((s.contrast, s.sharpness, s.entropy), (0.0, 0.0, 0.0));
    }

    #[test]
    fn features_round_trip_and_corrupt_bytes_are_refused() {
        let f = Features {
            stats: image_stats(2, 1, &[1, 2, 3, 4, 5, 6]),
            top5: vec![(281, 0.79), (285, 0.1)],
            embedding: vec![0.5, -1.25, 3.0],
        };
        let bytes = f.encode();
        assert_eq!(Features::decode(&bytes).unwrap(), f);
        assert!(Features::decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(Features::decode(b"nope").is_err());
        let mut wrong = bytes.clone();
        wrong[4] = 0xff;
        assert!(Features::decode(&wrong).is_err());
    }

    #[test]
    fn computed_once_then_cached_and_bad_images_listed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let images: Vec<(String, Vec<u8>)> = vec![
            ("a".into(), png(8, 6, |x, _| [x as u8 * 10, 0, 0])),
            ("b".into(), png(5, 5, |_, y| [0, y as u8 * 20, 9])),
            ("c".into(), b"not an image".to_vec()),
        ];
        let shas: Vec<String> = images.iter().map(|(s, _)| s.clone()).collect();
        let fake = Fake {
            calls: Cell::new(0),
        };
        let mut load = |sha: &str| Ok(images.iter().find(|(s, _)| s == sha).unwrap().1.clone());
        let mut seen = Vec::new();
        let s = ensure_features(&store, &fake, &shas, &mut load, 2, &mut |d, t| {
            seen.push((d, t))
        })
        .unwrap();
        assert_eq!((s.cached, s.computed, s.failed.len()), (0, 2, 1));
        assert_eq!(s.failed[0].0, "c");
        assert_eq!(seen.last(), Some(&(3, 3)));
        assert_eq!(fake.calls.get(), 2);
        let again = ensure_features(&store, &fake, &shas, &mut load, 2, &mut |_, _| {}).unwrap();
        assert_eq!((again.cached, again.computed), (2, 0));
        assert_eq!(fake.calls.get(), 2, "cached features are not recomputed");
        let got = load_features(&store, "fake@1", &shas).unwrap();
        let a = got[0].as_ref().unwrap();
        assert_eq!((a.stats.width, a.stats.height), (8, 6));
        assert_eq!(a.embedding[3], 8.0);
        assert_eq!(a.top5[0], (7, 0.5));
        assert!(got[2].is_none());
        // Another model's id does not see these features.
        assert!(load_features(&store, "other@1", &shas).unwrap()[0].is_none());
    }
}
