//! A trained detector file → a [`super::Scorer`] (being written).

use std::path::Path;
use std::sync::Arc;

use candle_core::Device;

use super::Scorer;
use crate::error::{EngineError, Result};

pub(super) fn load(path: &Path, _device: &Device) -> Result<Arc<dyn Scorer>> {
    Err(EngineError::Inspect(format!(
        "{}: not a trained classifier or segmenter",
        path.display()
    )))
}
