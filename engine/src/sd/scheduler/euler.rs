//! `EulerDiscreteScheduler` and `EulerAncestralDiscreteScheduler` (no state beyond the step
//! index), and what the sigma-space ("k-diffusion") family shares with LMS: the schedule and the
//! x0 prediction.

use candle_core::{Result, Tensor};

use super::config::{Prediction, SchedConfig};
use super::{div, lin, mul, schedule, Core, SchedulerKind};
use crate::sd::torch_rng::TorchGenerator;

/// The timesteps and sigmas (final sigma appended) of a sigma-space scheduler (Euler, Euler
/// ancestral, LMS) with `n` steps.
pub(super) fn k_schedule(
    kind: SchedulerKind,
    cfg: &SchedConfig,
    n: usize,
    train_sig: &[f32],
    sigma_min_final: f32,
) -> Result<(Vec<f64>, Vec<f32>)> {
    let ts32 = schedule::k_timesteps(cfg, n)?;
    let ts64: Vec<f64> = ts32.iter().map(|&t| t as f64).collect();
    let mut sig = schedule::interp_sigmas(&ts64, train_sig);
    let mut ts = ts32;
    if cfg.use_karras_sigmas && kind != SchedulerKind::EulerAncestral {
        let (lo, hi) = match kind {
            SchedulerKind::Euler => (
                cfg.sigma_min.unwrap_or(sig[sig.len() - 1]),
                cfg.sigma_max.unwrap_or(sig[0]),
            ),
            _ => (sig[sig.len() - 1], sig[0]),
        };
        let (ks, kt) = schedule::karras_with_t(lo, hi, n, train_sig)?;
        sig = ks;
        ts = kt.into_iter().map(|t| t as f32).collect();
    }
    let last = if kind == SchedulerKind::Euler && cfg.final_sigma_min {
        sigma_min_final
    } else {
        0.0
    };
    let mut s32: Vec<f32> = sig.iter().map(|&s| s as f32).collect();
    s32.push(last);
    Ok((ts.into_iter().map(|t| t as f64).collect(), s32))
}

/// The x0 prediction from the model output at `sigma`.
pub(super) fn pred_x0(core: &Core, mo: &Tensor, x: &Tensor, sigma: f32) -> Result<Tensor> {
    match core.cfg.prediction {
        Prediction::Epsilon => lin(&[(1.0, x), (-sigma, mo)]),
        Prediction::VPrediction => {
            let c = -sigma / (sigma * sigma + 1.0).sqrt();
            mul(mo, c)? + div(x, sigma * sigma + 1.0)?
        }
        Prediction::Sample => Ok(mo.clone()),
    }
}

/// One Euler step (`s_churn = 0`) at step index `idx`.
pub(super) fn step(core: &Core, mo: &Tensor, idx: usize, x: &Tensor) -> Result<Tensor> {
    let sigma = core.sigma_at(idx)?;
    let sigma_next = core.sigma_at(idx + 1)?;
    // s_churn = 0: gamma = 0 and sigma_hat = sigma.
    let sigma_hat = sigma;
    let pred = pred_x0(core, mo, x, sigma)?;
    let derivative = div(&(x - pred)?, sigma_hat)?;
    let dt = sigma_next - sigma_hat;
    x + mul(&derivative, dt)?
}

/// One Euler-ancestral step at step index `idx`; draws one `torch.randn` of the latent shape.
pub(super) fn step_ancestral(
    core: &Core,
    mo: &Tensor,
    idx: usize,
    x: &Tensor,
    gen: &mut TorchGenerator,
) -> Result<Tensor> {
    let sigma = core.sigma_at(idx)?;
    let sigma_to = core.sigma_at(idx + 1)?;
    let pred = pred_x0(core, mo, x, sigma)?;
    let (f2, t2) = (sigma * sigma, sigma_to * sigma_to);
    let sigma_up = (t2 * (f2 - t2) / f2).sqrt();
    let sigma_down = (t2 - sigma_up * sigma_up).sqrt();
    let derivative = div(&(x - pred)?, sigma)?;
    let dt = sigma_down - sigma;
    let prev = (x + mul(&derivative, dt)?)?;
    let noise = Tensor::from_vec(gen.randn(mo.elem_count()), mo.shape(), mo.device())?;
    prev + mul(&noise, sigma_up)?
}
