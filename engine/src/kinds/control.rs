//! Executors of the control-image preprocessors (`nodes::control::{CANNY, SOFT_EDGE,
//! MASK_TO_CONTROL}`), on [`crate::preprocess`]. (contract stub: helper D.)

use crate::error::EngineError;
use crate::registry::Registry;

pub(super) fn register(r: &mut Registry) {
    for kind in ["Canny", "SoftEdge", "MaskToControl"] {
        r.register(kind, |_ctx| {
            Err(EngineError::failed("contract stub: preprocessor executor"))
        });
    }
}
