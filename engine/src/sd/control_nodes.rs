//! Executors of LoadControlNet and ControlNet (`nodes::control`). (contract stub: helper C.)

use crate::error::EngineError;
use crate::registry::Registry;

pub(crate) fn register(r: &mut Registry) {
    for kind in ["LoadControlNet", "ControlNet"] {
        r.register(kind, |_ctx| {
            Err(EngineError::failed("contract stub: ControlNet executor"))
        });
    }
}
