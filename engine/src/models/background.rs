//! Background removal with ISNet: finding and caching the model, and turning a photo into an
//! alpha mask with optional hard threshold, grow/shrink and feathering. The RemoveBackground node
//! and `defect-studio remove-bg` both go through [`alpha_mask`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use super::isnet::IsNet;
use crate::error::{EngineError, Result};
use crate::image::Mask;
use crate::ops;

/// How the network's soft alpha is refined.
#[derive(Clone, Debug, PartialEq)]
pub struct Refine {
    /// Binarise at this level (hard mask) instead of keeping the soft alpha.
    pub threshold: Option<f32>,
    /// Grow (> 0) or shrink (< 0) the mask by this many pixels (binarises at 0.5).
    pub grow: f32,
    /// Soften the edge with a Gaussian of this radius in pixels.
    pub feather: f32,
}

impl Default for Refine {
    fn default() -> Self {
        Refine {
            threshold: None,
            grow: 0.0,
            feather: 0.0,
        }
    }
}

/// Loaded networks by file, shared by every run in this process (a model loads once).
fn cache() -> &'static Mutex<HashMap<PathBuf, Arc<IsNet>>> {
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, Arc<IsNet>>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Finds the named ISNet model in the model folders and loads it (once per process).
pub fn load_isnet(name: &str) -> Result<Arc<IsNet>> {
    let path =
        crate::files::locate_for_node(nodes::FileRole::BackgroundModel, name, Path::new(""))?;
    load_isnet_file(&path)
}

/// Loads an ISNet safetensors file (once per process).
pub fn load_isnet_file(path: &Path) -> Result<Arc<IsNet>> {
    let mut c = cache()
        .lock()
        .map_err(|_| EngineError::failed("the model cache is poisoned"))?;
    if let Some(net) = c.get(path) {
        return Ok(net.clone());
    }
    let net = Arc::new(
        IsNet::load(path, &candle_core::Device::Cpu)
            .map_err(|e| EngineError::failed(e.to_string()))?,
    );
    // Keep memory bounded: one ISNet at a time is plenty.
    c.clear();
    c.insert(path.to_path_buf(), net.clone());
    Ok(net)
}

/// The alpha mask of an RGB8 photo (any size; the network runs at 1024² and the result is
/// resized back), refined as asked.
pub fn alpha_mask(
    net: &IsNet,
    rgb: &[u8],
    width: u32,
    height: u32,
    refine: &Refine,
) -> Result<Mask> {
    crate::codec::check_size(width, height).map_err(EngineError::failed)?;
    let data = net
        .alpha(rgb, width, height)
        .map_err(|e| EngineError::failed(e.to_string()))?;
    let mut mask = Mask {
        width,
        height,
        data,
    };
    if let Some(t) = refine.threshold {
        mask = ops::threshold(&mask, t);
    }
    if refine.grow > 0.0 {
        mask = ops::grow(&mask, refine.grow);
    } else if refine.grow < 0.0 {
        mask = ops::shrink(&mask, -refine.grow);
    }
    if refine.feather > 0.0 {
        mask = ops::blur_mask(&mask, refine.feather / 2.0);
    }
    Ok(mask)
}
