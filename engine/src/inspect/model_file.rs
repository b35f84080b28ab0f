//! A trained detector file: safetensors holding the network's tensors (the folded names of
//! [`super::net`], plus the decoder's for a segmenter) and our metadata, every key prefixed
//! `defect_studio.` ([`ModelMeta`]):
//!
//! | key | value |
//! | --- | --- |
//! | `kind` | `classifier` or `segmenter` (what [`load`] dispatches on) |
//! | `arch` | `efficientnet-lite0` |
//! | `labels` | JSON list, `good` first when present |
//! | `input_size` | the side the images are resized to |
//! | `normalisation` | `(x - 127) / 128` (RGB, CHW) |
//! | `data_hash` | [`super::data::data_hash`] of the training set |
//! | `seed`, `epochs`, `best_epoch` | the run |
//! | `val` | JSON of the written epoch's [`EpochMetrics`] (or `null`) |
//! | `config` | JSON of the training settings |

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use super::augment::to_input;
use super::net::{ce, Net};
use super::{DetectorKind, Score, Scorer, GOOD};
use crate::error::{EngineError, Result};
use crate::hashing::sha256_hex;
use crate::store::EpochMetrics;

const PREFIX: &str = "defect_studio.";
/// The architecture every detector file uses.
pub const ARCH: &str = "efficientnet-lite0";
/// The input normalisation, as written in the file.
pub const NORMALISATION: &str = "(x - 127) / 128";

/// What a detector file says about itself.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelMeta {
    pub kind: DetectorKind,
    pub labels: Vec<String>,
    pub input_size: u32,
    pub data_hash: String,
    pub seed: u64,
    pub epochs: usize,
    pub best_epoch: usize,
    pub val: Option<EpochMetrics>,
    pub config: serde_json::Value,
}

impl ModelMeta {
    fn to_map(&self) -> Result<BTreeMap<String, String>> {
        let kind = match self.kind {
            DetectorKind::Classifier => "classifier",
            DetectorKind::Segmenter => "segmenter",
        };
        let mut m = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            m.insert(format!("{PREFIX}{k}"), v);
        };
        put("kind", kind.into());
        put("arch", ARCH.into());
        put("labels", serde_json::to_string(&self.labels)?);
        put("input_size", self.input_size.to_string());
        put("normalisation", NORMALISATION.into());
        put("data_hash", self.data_hash.clone());
        put("seed", self.seed.to_string());
        put("epochs", self.epochs.to_string());
        put("best_epoch", self.best_epoch.to_string());
        put("val", serde_json::to_string(&self.val)?);
        put("config", self.config.to_string());
        Ok(m)
    }

    fn from_map(path: &Path, m: &std::collections::HashMap<String, String>) -> Result<ModelMeta> {
        let bad = |what: &str| {
            EngineError::Inspect(format!(
                "{}: not a trained classifier or segmenter ({what})",
                path.display()
            ))
        };
        let get = |k: &str| {
            m.get(&format!("{PREFIX}{k}"))
                .ok_or_else(|| bad(&format!("no {PREFIX}{k} metadata")))
        };
        let kind = match get("kind")?.as_str() {
            "classifier" => DetectorKind::Classifier,
            "segmenter" => DetectorKind::Segmenter,
            other => return Err(bad(&format!("{PREFIX}kind is {other:?}"))),
        };
        if get("arch")? != ARCH {
            return Err(bad("another architecture"));
        }
        let labels: Vec<String> =
            serde_json::from_str(get("labels")?).map_err(|_| bad("unreadable labels"))?;
        let num = |k: &str| -> Result<u64> {
            get(k)?
                .parse()
                .map_err(|_| bad(&format!("unreadable {PREFIX}{k}")))
        };
        let input_size = num("input_size")? as u32;
        if input_size < 32 || input_size % 32 != 0 || labels.len() < 2 {
            return Err(bad("input size or labels out of range"));
        }
        Ok(ModelMeta {
            kind,
            labels,
            input_size,
            data_hash: get("data_hash")?.clone(),
            seed: num("seed")?,
            epochs: num("epochs")? as usize,
            best_epoch: num("best_epoch")? as usize,
            val: serde_json::from_str(get("val")?).unwrap_or(None),
            config: serde_json::from_str(get("config")?).unwrap_or_default(),
        })
    }
}

/// Writes a detector file atomically; returns its sha256.
pub(crate) fn write(
    path: &Path,
    tensors: &BTreeMap<String, Tensor>,
    meta: &ModelMeta,
) -> Result<String> {
    crate::sd::train::io::write_safetensors(path, tensors, &meta.to_map()?)
        .map_err(|e| EngineError::Inspect(e.to_string()))?;
    let bytes = std::fs::read(path).map_err(|e| EngineError::io(path, e))?;
    Ok(sha256_hex(&bytes))
}

/// Reads a detector file's metadata (errors name the file).
pub fn read_meta(path: &Path) -> Result<ModelMeta> {
    let (_, meta) = read(path)?;
    Ok(meta)
}

fn read(path: &Path) -> Result<(Vec<u8>, ModelMeta)> {
    let bytes = std::fs::read(path).map_err(|e| EngineError::io(path, e))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| {
        EngineError::Inspect(format!("{}: not a safetensors file ({e})", path.display()))
    })?;
    let empty = std::collections::HashMap::new();
    let meta = ModelMeta::from_map(path, header.metadata().as_ref().unwrap_or(&empty))?;
    Ok((bytes, meta))
}

pub(super) fn load(path: &Path, device: &Device) -> Result<Arc<dyn Scorer>> {
    let (bytes, meta) = read(path)?;
    let sha256 = sha256_hex(&bytes);
    let err = |e: EngineError| EngineError::Inspect(format!("{}: {e}", path.display()));
    let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, device)
        .map_err(|e| EngineError::Inspect(format!("{}: {e}", path.display())))?;
    match meta.kind {
        DetectorKind::Classifier => {
            let net = Net::from_folded(&vb, meta.labels.len()).map_err(err)?;
            Ok(Arc::new(ClassifierScorer { net, meta, sha256 }))
        }
        DetectorKind::Segmenter => Ok(Arc::new(super::segmenter::SegmenterScorer::load(
            &vb, meta, sha256, path,
        )?)),
    }
}

/// A trained classifier as a [`Scorer`]: the score is 1 − P(good) when the model has a
/// `good` class, else the top class's probability.
pub struct ClassifierScorer {
    net: Net,
    meta: ModelMeta,
    sha256: String,
}

/// Images per forward pass when scoring.
const SCORE_BATCH: usize = 16;

impl Scorer for ClassifierScorer {
    fn kind(&self) -> DetectorKind {
        DetectorKind::Classifier
    }

    fn labels(&self) -> &[String] {
        &self.meta.labels
    }

    fn sha256(&self) -> &str {
        &self.sha256
    }

    fn score(&self, images: &[image::RgbImage]) -> Result<Vec<Score>> {
        let size = self.meta.input_size;
        let s = size as usize;
        let good = self.meta.labels.iter().position(|l| l == GOOD);
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(SCORE_BATCH) {
            let x: Vec<f32> = chunk.iter().flat_map(|i| to_input(i, size)).collect();
            let x = Tensor::from_vec(x, (chunk.len(), 3, s, s), self.net.device()).map_err(ce)?;
            let logits = self.net.classify(&x, None)?;
            let probs = candle_nn::ops::softmax(&logits, 1)
                .and_then(|p| p.to_vec2::<f32>())
                .map_err(ce)?;
            for p in probs {
                let (best, &top) = p
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .unwrap_or((0, &0.0));
                let score = match good {
                    Some(g) => 1.0 - p[g],
                    None => top,
                };
                out.push(Score {
                    score,
                    label: self.meta.labels[best].clone(),
                    probs: p,
                    map: None,
                });
            }
        }
        Ok(out)
    }
}
