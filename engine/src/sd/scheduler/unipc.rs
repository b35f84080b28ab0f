//! `UniPCMultistepScheduler` (bh2, predict_x0): the predictor, the corrector, their shared
//! coefficients, and the model-output history they keep.

use candle_core::{bail, Result, Tensor};

use super::config::Prediction;
use super::{alpha_sigma, div, lambda, lin, mul, numerics, Core};

/// The shared `rks`, `b`, `h_phi_1`, `B_h` computation of UniPC's
/// predictor and corrector.
fn coeffs(
    h: f32,
    lambda_s0: f32,
    lambdas_si: &[f32],
    order: usize,
) -> (Vec<f32>, Vec<f32>, f32, f32) {
    let mut rks: Vec<f32> = lambdas_si.iter().map(|&l| (l - lambda_s0) / h).collect();
    rks.push(1.0);
    let hh = -h;
    let h_phi_1 = hh.exp_m1();
    let mut h_phi_k = h_phi_1 / hh - 1.0;
    let mut factorial_i: u64 = 1;
    let b_h = hh.exp_m1();
    let mut b = Vec::with_capacity(order);
    for i in 1..=order as u64 {
        b.push(h_phi_k * factorial_i as f32 / b_h);
        factorial_i *= i + 1;
        h_phi_k = h_phi_k / hh - (1.0f64 / factorial_i as f64) as f32;
    }
    (rks, b, h_phi_1, b_h)
}

/// UniPC's state: the converted model outputs (oldest first), how many lower-order steps were
/// taken, and the previous sample and order the corrector needs.
pub(super) struct UniPcState {
    model_outputs: Vec<Option<Tensor>>,
    lower_order_nums: usize,
    last_sample: Option<Tensor>,
    this_order: usize,
}

impl UniPcState {
    pub(super) fn new(solver_order: usize) -> Self {
        UniPcState {
            model_outputs: vec![None; solver_order],
            lower_order_nums: 0,
            last_sample: None,
            this_order: 0,
        }
    }

    /// One step at step index `idx` (corrector first, from the second step on).
    pub(super) fn step(
        &mut self,
        core: &Core,
        mo: &Tensor,
        idx: usize,
        x: &Tensor,
    ) -> Result<Tensor> {
        let order_cfg = core.cfg.solver_order;
        let use_corrector = idx > 0
            && !core.cfg.disable_corrector.contains(&(idx - 1))
            && self.last_sample.is_some();
        let sigma = core.sigma_at(idx)?;
        let (alpha_t, sigma_t) = alpha_sigma(sigma);
        let mc = match core.cfg.prediction {
            Prediction::Epsilon => div(&lin(&[(1.0, x), (-sigma_t, mo)])?, alpha_t)?,
            Prediction::Sample => mo.clone(),
            Prediction::VPrediction => lin(&[(alpha_t, x), (-sigma_t, mo)])?,
        };
        let mut sample = x.clone();
        if use_corrector {
            sample = self.corrector(core, &mc, idx)?;
        }
        self.model_outputs.remove(0);
        self.model_outputs.push(Some(mc));
        let len = core.timesteps.len();
        let mut this_order = if core.cfg.lower_order_final {
            order_cfg.min(len - idx)
        } else {
            order_cfg
        };
        this_order = this_order.min(self.lower_order_nums + 1);
        if this_order == 0 {
            bail!("unipc: order 0 at step {idx}");
        }
        self.this_order = this_order;
        self.last_sample = Some(sample.clone());
        let prev = self.predictor(core, &sample, idx, this_order)?;
        if self.lower_order_nums < order_cfg {
            self.lower_order_nums += 1;
        }
        Ok(prev)
    }

    fn history(&self, back: usize) -> Result<Tensor> {
        let n = self.model_outputs.len();
        match n
            .checked_sub(back + 1)
            .and_then(|j| self.model_outputs[j].as_ref())
        {
            Some(t) => Ok(t.clone()),
            None => bail!("unipc: model output history too short"),
        }
    }

    #[allow(clippy::needless_range_loop)]
    fn predictor(&self, core: &Core, x: &Tensor, idx: usize, order: usize) -> Result<Tensor> {
        let m0 = self.history(0)?;
        let (a_t, s_t) = alpha_sigma(core.sigma_at(idx + 1)?);
        let (a_s0, s_s0) = alpha_sigma(core.sigma_at(idx)?);
        let l_t = lambda(a_t, s_t);
        let l_s0 = lambda(a_s0, s_s0);
        let h = l_t - l_s0;
        let mut lambdas_si = Vec::new();
        for i in 1..order {
            let si = match idx.checked_sub(i) {
                Some(v) => v,
                None => bail!("unipc: predictor order {order} at step {idx}"),
            };
            let (a, s) = alpha_sigma(core.sigma_at(si)?);
            lambdas_si.push(lambda(a, s));
        }
        let (rks, b, h_phi_1, b_h) = coeffs(h, l_s0, &lambdas_si, order);
        let x_t_ = lin(&[(s_t / s_s0, x), (-(a_t * h_phi_1), &m0)])?;
        if order == 1 {
            return Ok(x_t_);
        }
        let rhos_p: Vec<f32> = if order == 2 {
            vec![0.5]
        } else {
            let k = order - 1;
            let mut r = Vec::with_capacity(k * k);
            for row in 0..k {
                for col in 0..k {
                    r.push(rks[col].powi(row as i32));
                }
            }
            numerics::solve_f32(&r, &b[..k])?
        };
        let mut terms: Vec<(f32, Tensor)> = Vec::new();
        for (i, &rk) in rks[..order - 1].iter().enumerate() {
            let mi = self.history(i + 1)?;
            terms.push((rhos_p[i], div(&(mi - &m0)?, rk)?));
        }
        let refs: Vec<(f32, &Tensor)> = terms.iter().map(|(c, t)| (*c, t)).collect();
        let pred_res = lin(&refs)?;
        x_t_ - mul(&pred_res, a_t * b_h)?
    }

    #[allow(clippy::needless_range_loop)]
    fn corrector(&self, core: &Core, model_t: &Tensor, idx: usize) -> Result<Tensor> {
        let order = self.this_order;
        let x = match &self.last_sample {
            Some(s) => s.clone(),
            None => bail!("unipc: corrector without a previous sample"),
        };
        let m0 = self.history(0)?;
        let (a_t, s_t) = alpha_sigma(core.sigma_at(idx)?);
        let (a_s0, s_s0) = alpha_sigma(core.sigma_at(idx - 1)?);
        let l_t = lambda(a_t, s_t);
        let l_s0 = lambda(a_s0, s_s0);
        let h = l_t - l_s0;
        let mut lambdas_si = Vec::new();
        for i in 1..order {
            let si = match idx.checked_sub(i + 1) {
                Some(v) => v,
                None => bail!("unipc: corrector order {order} at step {idx}"),
            };
            let (a, s) = alpha_sigma(core.sigma_at(si)?);
            lambdas_si.push(lambda(a, s));
        }
        let (rks, b, h_phi_1, b_h) = coeffs(h, l_s0, &lambdas_si, order);
        let rhos_c: Vec<f32> = if order == 1 {
            vec![0.5]
        } else {
            let mut r = Vec::with_capacity(order * order);
            for row in 0..order {
                for col in 0..order {
                    r.push(rks[col].powi(row as i32));
                }
            }
            numerics::solve_f32(&r, &b)?
        };
        let x_t_ = lin(&[(s_t / s_s0, &x), (-(a_t * h_phi_1), &m0)])?;
        let d1_t = (model_t - &m0)?;
        let mut terms: Vec<(f32, Tensor)> = Vec::new();
        for (i, &rk) in rks[..order - 1].iter().enumerate() {
            let mi = self.history(i + 1)?;
            terms.push((rhos_c[i], div(&(mi - &m0)?, rk)?));
        }
        terms.push((rhos_c[order - 1], d1_t));
        let refs: Vec<(f32, &Tensor)> = terms.iter().map(|(c, t)| (*c, t)).collect();
        let corr = lin(&refs)?;
        x_t_ - mul(&corr, a_t * b_h)?
    }
}
