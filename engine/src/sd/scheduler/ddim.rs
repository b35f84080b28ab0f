//! `DDIMScheduler` (eta = 0): stateless between steps.

use candle_core::{bail, Result, Tensor};

use super::config::{Prediction, SchedConfig};
use super::{div, lin, schedule, Core};

/// The inference timesteps of `n` steps.
pub(super) fn timesteps(cfg: &SchedConfig, n: usize) -> Result<Vec<f64>> {
    if cfg.clip_sample && cfg.clip_sample_range <= 0.0 {
        bail!("ddim: clip_sample_range must be positive");
    }
    let ts = schedule::ddim_timesteps(cfg, n)?;
    Ok(ts.into_iter().map(|t| t as f64).collect())
}

/// One step from timestep `t`.
pub(super) fn step(core: &Core, mo: &Tensor, t: f64, x: &Tensor) -> Result<Tensor> {
    let ratio = (core.cfg.num_train_timesteps / core.num_inference_steps) as f64;
    let prev_t = t - ratio;
    let a_t = core.alphas_cumprod_at(t)?;
    let a_prev = core.alphas_cumprod_at(prev_t)?;
    let b_t = 1.0 - a_t;
    let (mut pred_x0, pred_eps) = match core.cfg.prediction {
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
    if core.cfg.clip_sample {
        let r = core.cfg.clip_sample_range as f32;
        pred_x0 = pred_x0.clamp(-r, r)?;
    }
    // eta = 0: std_dev_t = 0.
    let dir = (1.0 - a_prev - 0.0f32).sqrt();
    lin(&[(a_prev.sqrt(), &pred_x0), (dir, &pred_eps)])
}
