//! `EulerDiscreteScheduler` and `EulerAncestralDiscreteScheduler`, and the x0 prediction the
//! sigma-space ("k-diffusion") family shares.

use candle_core::{Result, Tensor};

use super::config::Prediction;
use super::{div, lin, mul, Scheduler};
use crate::sd::torch_rng::TorchGenerator;

impl Scheduler {
    pub(super) fn k_pred_x0(&self, mo: &Tensor, x: &Tensor, sigma: f32) -> Result<Tensor> {
        match self.cfg.prediction {
            Prediction::Epsilon => lin(&[(1.0, x), (-sigma, mo)]),
            Prediction::VPrediction => {
                let c = -sigma / (sigma * sigma + 1.0).sqrt();
                mul(mo, c)? + div(x, sigma * sigma + 1.0)?
            }
            Prediction::Sample => Ok(mo.clone()),
        }
    }

    pub(super) fn step_euler(&self, mo: &Tensor, idx: usize, x: &Tensor) -> Result<Tensor> {
        let sigma = self.sigma_at(idx)?;
        let sigma_next = self.sigma_at(idx + 1)?;
        // s_churn = 0: gamma = 0 and sigma_hat = sigma.
        let sigma_hat = sigma;
        let pred = self.k_pred_x0(mo, x, sigma)?;
        let derivative = div(&(x - pred)?, sigma_hat)?;
        let dt = sigma_next - sigma_hat;
        x + mul(&derivative, dt)?
    }

    pub(super) fn step_euler_a(
        &self,
        mo: &Tensor,
        idx: usize,
        x: &Tensor,
        gen: &mut TorchGenerator,
    ) -> Result<Tensor> {
        let sigma = self.sigma_at(idx)?;
        let sigma_to = self.sigma_at(idx + 1)?;
        let pred = self.k_pred_x0(mo, x, sigma)?;
        let (f2, t2) = (sigma * sigma, sigma_to * sigma_to);
        let sigma_up = (t2 * (f2 - t2) / f2).sqrt();
        let sigma_down = (t2 - sigma_up * sigma_up).sqrt();
        let derivative = div(&(x - pred)?, sigma)?;
        let dt = sigma_down - sigma;
        let prev = (x + mul(&derivative, dt)?)?;
        let noise = Tensor::from_vec(gen.randn(mo.elem_count()), mo.shape(), mo.device())?;
        prev + mul(&noise, sigma_up)?
    }
}
