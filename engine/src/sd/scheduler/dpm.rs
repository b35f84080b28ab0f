//! `DPMSolverMultistepScheduler` (dpmsolver++, order 2, optionally Karras sigmas) with its
//! model-output history, and the multistep schedule it shares with UniPC.

use candle_core::{bail, Result, Tensor};

use super::config::{Prediction, SchedConfig};
use super::{alpha_sigma, div, lambda, lin, mul, numerics, schedule, Core, SchedulerKind};

/// The timesteps and sigmas (final sigma appended) of a multistep scheduler (DPM-Solver++ 2M,
/// with or without Karras sigmas, and UniPC) with `n` steps.
pub(super) fn multistep_schedule(
    kind: SchedulerKind,
    cfg: &SchedConfig,
    n: usize,
    ac: &[f32],
    train_sig: &[f32],
    sigma_min_final: f32,
) -> Result<(Vec<f64>, Vec<f32>)> {
    let nt = cfg.num_train_timesteps;
    let last_timestep = if kind == SchedulerKind::UniPc {
        nt
    } else {
        // searchsorted(flip(lambda_t), lambda_min_clipped), side="left".
        let clip = cfg.lambda_min_clipped;
        let clipped = ac
            .iter()
            .map(|&a| {
                let alpha = a.sqrt();
                let sigma = (1.0 - a).sqrt();
                lambda(alpha, sigma)
            })
            .filter(|&l| (l as f64) < clip)
            .count();
        nt - clipped
    };
    let ts_int = schedule::multistep_timesteps(cfg, n, last_timestep)?;
    if cfg.use_karras_sigmas {
        let (lo, hi) = if kind == SchedulerKind::UniPc {
            (
                cfg.sigma_min.unwrap_or(train_sig[0] as f64),
                cfg.sigma_max.unwrap_or(train_sig[nt - 1] as f64),
            )
        } else {
            (train_sig[0] as f64, train_sig[nt - 1] as f64)
        };
        let (ks, kt) = schedule::karras_with_t(lo, hi, n, train_sig)?;
        let round = kind == SchedulerKind::UniPc || cfg.beta_schedule != "squaredcos_cap_v2";
        // `.to(torch.int64)` truncates toward zero.
        let ts: Vec<f64> = kt
            .into_iter()
            .map(|t| {
                if round {
                    numerics::np_round(t)
                } else {
                    t.trunc()
                }
            })
            .collect();
        let last = if cfg.final_sigma_min {
            if kind == SchedulerKind::UniPc {
                ks[ks.len() - 1] as f32
            } else {
                sigma_min_final
            }
        } else {
            0.0
        };
        let mut s32: Vec<f32> = ks.iter().map(|&s| s as f32).collect();
        s32.push(last);
        Ok((ts, s32))
    } else {
        let ts64: Vec<f64> = ts_int.iter().map(|&t| t as f64).collect();
        let sig = schedule::interp_sigmas(&ts64, train_sig);
        let mut s32: Vec<f32> = sig.iter().map(|&s| s as f32).collect();
        s32.push(if cfg.final_sigma_min {
            sigma_min_final
        } else {
            0.0
        });
        Ok((ts64, s32))
    }
}

/// DPM-Solver++'s state: the converted model outputs (`model_outputs`, oldest first) and how
/// many lower-order steps were taken.
pub(super) struct DpmState {
    model_outputs: Vec<Option<Tensor>>,
    lower_order_nums: usize,
}

impl DpmState {
    pub(super) fn new(solver_order: usize) -> Self {
        DpmState {
            model_outputs: vec![None; solver_order],
            lower_order_nums: 0,
        }
    }

    /// One step at step index `idx`.
    pub(super) fn step(
        &mut self,
        core: &Core,
        mo: &Tensor,
        idx: usize,
        x: &Tensor,
    ) -> Result<Tensor> {
        let len = core.timesteps.len();
        let c = &core.cfg;
        let lower_order_final = idx == len - 1
            && (c.euler_at_final || (c.lower_order_final && len < 15) || !c.final_sigma_min);
        let lower_order_second = idx + 2 == len && c.lower_order_final && len < 15;
        // convert_model_output (dpmsolver++): x0 prediction.
        let sigma = core.sigma_at(idx)?;
        let (alpha_t, sigma_t) = alpha_sigma(sigma);
        let x0 = match c.prediction {
            Prediction::Epsilon => div(&lin(&[(1.0, x), (-sigma_t, mo)])?, alpha_t)?,
            Prediction::Sample => mo.clone(),
            Prediction::VPrediction => lin(&[(alpha_t, x), (-sigma_t, mo)])?,
        };
        self.model_outputs.remove(0);
        self.model_outputs.push(Some(x0.clone()));
        let order = c.solver_order;
        let prev = if order == 1 || self.lower_order_nums < 1 || lower_order_final {
            let (a_t, s_t) = alpha_sigma(core.sigma_at(idx + 1)?);
            let (a_s, s_s) = alpha_sigma(sigma);
            let h = lambda(a_t, s_t) - lambda(a_s, s_s);
            lin(&[(s_t / s_s, x), (-(a_t * ((-h).exp() - 1.0)), &x0)])?
        } else if order == 2 || self.lower_order_nums < 2 || lower_order_second {
            let m1 = match self.model_outputs.get(order - 2).and_then(|m| m.as_ref()) {
                Some(m) => m.clone(),
                None => bail!("dpmpp_2m: missing previous model output at step {idx}"),
            };
            if idx == 0 {
                bail!("dpmpp_2m: second-order update at step 0");
            }
            let (a_t, s_t) = alpha_sigma(core.sigma_at(idx + 1)?);
            let (a_s0, s_s0) = alpha_sigma(sigma);
            let (a_s1, s_s1) = alpha_sigma(core.sigma_at(idx - 1)?);
            let l_t = lambda(a_t, s_t);
            let l_s0 = lambda(a_s0, s_s0);
            let l_s1 = lambda(a_s1, s_s1);
            let h = l_t - l_s0;
            let h0 = l_s0 - l_s1;
            let r0 = h0 / h;
            let d1 = mul(&(&x0 - &m1)?, 1.0 / r0)?;
            let em = (-h).exp() - 1.0;
            if c.dpm_heun {
                lin(&[
                    (s_t / s_s0, x),
                    (-(a_t * em), &x0),
                    (a_t * (em / h + 1.0), &d1),
                ])?
            } else {
                lin(&[
                    (s_t / s_s0, x),
                    (-(a_t * em), &x0),
                    (-(0.5 * (a_t * em)), &d1),
                ])?
            }
        } else {
            bail!("dpmpp_2m: solver_order {order} > 2 is not supported")
        };
        if self.lower_order_nums < order {
            self.lower_order_nums += 1;
        }
        Ok(prev)
    }
}
