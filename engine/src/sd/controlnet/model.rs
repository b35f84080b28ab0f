//! diffusers' `ControlNetModel` network. (contract stub: helper A writes it.)

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use super::{ControlNetConfig, ControlResiduals};
use crate::sd::unet::AddedCond;

/// diffusers `ControlNetModel`. (contract stub)
#[derive(Debug, Clone)]
pub struct ControlNetModel {
    _cfg: ControlNetConfig,
}

impl ControlNetModel {
    /// Builds the network from `cfg`, weights by diffusers names. (contract stub)
    pub fn new(_vb: VarBuilder, cfg: &ControlNetConfig) -> Result<Self> {
        Ok(Self { _cfg: cfg.clone() })
    }

    /// See [`super::ControlNet::forward`]. (contract stub)
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        _sample: &Tensor,
        _timestep: f64,
        _encoder_hidden_states: &Tensor,
        _added: Option<&AddedCond>,
        _cond: &Tensor,
        _scale: f64,
        _guess_mode: bool,
    ) -> Result<ControlResiduals> {
        candle_core::bail!("contract stub: ControlNetModel::forward")
    }
}
