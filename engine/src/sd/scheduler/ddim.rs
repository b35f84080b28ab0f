//! `DDIMScheduler` (eta = 0).

use candle_core::{Result, Tensor};

use super::config::Prediction;
use super::{div, lin, Scheduler};

impl Scheduler {
    pub(super) fn step_ddim(&self, mo: &Tensor, t: f64, x: &Tensor) -> Result<Tensor> {
        let ratio = (self.cfg.num_train_timesteps / self.num_inference_steps) as f64;
        let prev_t = t - ratio;
        let a_t = self.alphas_cumprod_at(t)?;
        let a_prev = self.alphas_cumprod_at(prev_t)?;
        let b_t = 1.0 - a_t;
        let (mut pred_x0, pred_eps) = match self.cfg.prediction {
            Prediction::Epsilon => (
                div(&lin(&[(1.0, x), (-b_t.sqrt(), mo)])?, a_t.sqrt())?,
                mo.clone(),
            ),
            Prediction::Sample => {
                let eps = div(&lin(&[(1.0, x), (-a_t.sqrt(), mo)])?, b_t.sqrt())?;
                (mo.clone(), eps)
            }
            Prediction::VPrediction => (
                lin(&[(a_t.sqrt(), x), (-b_t.sqrt(), mo)])?,
                lin(&[(a_t.sqrt(), mo), (b_t.sqrt(), x)])?,
            ),
        };
        if self.cfg.clip_sample {
            let r = self.cfg.clip_sample_range as f32;
            pred_x0 = pred_x0.clamp(-r, r)?;
        }
        // eta = 0: std_dev_t = 0.
        let dir = (1.0 - a_prev - 0.0f32).sqrt();
        lin(&[(a_prev.sqrt(), &pred_x0), (dir, &pred_eps)])
    }
}
