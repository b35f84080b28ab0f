//! Loading ControlNets from diffusers folders and single files. (contract stub: helper A.)

use std::path::Path;
use std::sync::Arc;

use candle_core::{DType, Device};

use super::ControlNet;
use crate::error::{EngineError, Result};
use crate::sd::model::SdModel;

/// How to load a ControlNet.
#[derive(Clone, Debug)]
pub struct ControlNetLoadOptions {
    pub dtype: DType,
    pub device: Device,
}

impl Default for ControlNetLoadOptions {
    fn default() -> Self {
        ControlNetLoadOptions {
            dtype: DType::F32,
            device: Device::Cpu,
        }
    }
}

/// Loads a ControlNet (a diffusers folder or a single `.safetensors`). (contract stub)
pub fn load(path: &Path, _opts: &ControlNetLoadOptions) -> Result<ControlNet> {
    Err(EngineError::failed(format!(
        "{}: contract stub: ControlNet loading",
        path.display()
    )))
}

/// [`load`] through a small process-wide cache. (contract stub)
pub fn load_cached(path: &Path, opts: &ControlNetLoadOptions) -> Result<Arc<ControlNet>> {
    load(path, opts).map(Arc::new)
}

/// See [`ControlNet::check_compatible`]. (contract stub)
pub(super) fn check_compatible(_net: &ControlNet, _model: &SdModel) -> Result<()> {
    Ok(())
}
