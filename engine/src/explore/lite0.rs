//! EfficientNet-Lite0 as the explorer's feature network ([`Embedder`]): the pooled 1,280-d
//! embedding and the ImageNet top-5 of each image, with the reference's preprocessing
//! ([`crate::models::efficientnet::preprocess`]).

use std::path::Path;

use candle_core::Device;

use super::features::{Embedded, Embedder};
use crate::error::{EngineError, Result};
use crate::models::efficientnet::{self, Lite0, INPUT_SIZE, NUM_CLASSES};

/// Images per forward pass (bounds the activations' memory: ~40 MB per image at 224²).
const CHUNK: usize = 16;

/// EfficientNet-Lite0 with its weights' identity.
pub struct Lite0Embedder {
    model: Lite0,
    id: String,
}

impl Lite0Embedder {
    /// Loads the weights at `path`; the cache id carries the file's AutoV2 hash, so features
    /// of other weights are never mixed up.
    pub fn load(path: &Path, device: &Device) -> Result<Lite0Embedder> {
        let model = Lite0::load(path, device)?;
        let sha = crate::models::manager::hash_file(path, &mut |_, _| {})?;
        Ok(Lite0Embedder {
            model,
            id: format!("efficientnet-lite0@{}", &sha[..10]),
        })
    }

    /// The installed weights (`models fetch efficientnet-lite0`), or an error that says how to
    /// get them.
    pub fn installed(device: &Device) -> Result<Lite0Embedder> {
        let path = efficientnet::installed_path().ok_or_else(|| {
            EngineError::failed(format!(
                "the feature network {} is not installed: run `defect-studio models fetch efficientnet-lite0`",
                efficientnet::FILE_NAME
            ))
        })?;
        Lite0Embedder::load(&path, device)
    }
}

impl Embedder for Lite0Embedder {
    fn id(&self) -> String {
        self.id.clone()
    }

    fn class_name(&self, class: u16) -> String {
        efficientnet::imagenet_label(usize::from(class)).to_string()
    }

    fn embed(&self, images: &[image::RgbImage]) -> Result<Vec<Embedded>> {
        let side = INPUT_SIZE as usize;
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(CHUNK) {
            let input: Vec<f32> = chunk.iter().flat_map(efficientnet::preprocess).collect();
            let (logits, emb) = self.model.forward_vec(&input, chunk.len(), side, side)?;
            let dim = emb.len() / chunk.len().max(1);
            for (l, e) in logits.chunks(NUM_CLASSES).zip(emb.chunks(dim)) {
                out.push(Embedded {
                    embedding: e.to_vec(),
                    top5: efficientnet::top_k(l, 5)
                        .into_iter()
                        .map(|(c, p)| (c as u16, p))
                        .collect(),
                });
            }
        }
        Ok(out)
    }
}
