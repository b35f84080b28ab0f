//! `DPMSolverMultistepScheduler` (dpmsolver++, order 2, optionally Karras sigmas).

use candle_core::{bail, Result, Tensor};

use super::config::Prediction;
use super::{alpha_sigma, div, lambda, lin, mul, Scheduler};

impl Scheduler {
    pub(super) fn step_dpm(&mut self, mo: &Tensor, idx: usize, x: &Tensor) -> Result<Tensor> {
        let len = self.timesteps.len();
        let c = &self.cfg;
        let lower_order_final = idx == len - 1
            && (c.euler_at_final || (c.lower_order_final && len < 15) || !c.final_sigma_min);
        let lower_order_second = idx + 2 == len && c.lower_order_final && len < 15;
        // convert_model_output (dpmsolver++): x0 prediction.
        let sigma = self.sigma_at(idx)?;
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
            let (a_t, s_t) = alpha_sigma(self.sigma_at(idx + 1)?);
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
            let (a_t, s_t) = alpha_sigma(self.sigma_at(idx + 1)?);
            let (a_s0, s_s0) = alpha_sigma(sigma);
            let (a_s1, s_s1) = alpha_sigma(self.sigma_at(idx - 1)?);
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
