//! `PNDMScheduler`: the Runge–Kutta warm-up (PRK) and the linear multistep (PLMS) steps.

use candle_core::{bail, Result, Tensor};

use super::config::Prediction;
use super::{div, lin, mul, Scheduler};

impl Scheduler {
    pub(super) fn pndm_prev_sample(&self, x: &Tensor, t: f64, prev_t: f64, mo: &Tensor) -> Result<Tensor> {
        let a_t = self.alphas_cumprod_at(t)?;
        let a_prev = self.alphas_cumprod_at(prev_t)?;
        let b_t = 1.0 - a_t;
        let b_prev = 1.0 - a_prev;
        let mo = match self.cfg.prediction {
            Prediction::VPrediction => lin(&[(a_t.sqrt(), mo), (b_t.sqrt(), x)])?,
            _ => mo.clone(),
        };
        let sample_coeff = (a_prev / a_t).sqrt();
        let denom = a_t * b_prev.sqrt() + (a_t * b_t * a_prev).sqrt();
        let m = div(&mul(&mo, a_prev - a_t)?, denom)?;
        mul(x, sample_coeff)? - m
    }

    pub(super) fn step_pndm(&mut self, mo: &Tensor, t: f64, x: &Tensor) -> Result<Tensor> {
        let nt = self.cfg.num_train_timesteps;
        let n = self.num_inference_steps;
        if self.counter < self.prk_len && !self.cfg.skip_prk_steps {
            let diff = if self.counter % 2 == 1 { 0 } else { nt / n / 2 };
            let prev_t = t - diff as f64;
            let t = self.timestep_at(self.counter / 4 * 4)?;
            let mut model_output = mo.clone();
            let third = (1.0f64 / 3.0) as f32;
            let sixth = (1.0f64 / 6.0) as f32;
            let add = |cur: &Option<Tensor>, v: Tensor| -> Result<Tensor> {
                match cur {
                    None => Ok(v),
                    Some(c) => c + v,
                }
            };
            match self.counter % 4 {
                0 => {
                    self.cur_model_output = Some(add(&self.cur_model_output, mul(mo, sixth)?)?);
                    self.ets.push(mo.clone());
                    self.cur_sample = Some(x.clone());
                }
                1 | 2 => {
                    self.cur_model_output = Some(add(&self.cur_model_output, mul(mo, third)?)?);
                }
                _ => {
                    model_output = add(&self.cur_model_output, mul(mo, sixth)?)?;
                    self.cur_model_output = None;
                }
            }
            let cur = self.cur_sample.clone().unwrap_or_else(|| x.clone());
            let prev = self.pndm_prev_sample(&cur, t, prev_t, &model_output)?;
            self.counter += 1;
            return Ok(prev);
        }
        let ratio = (nt / n) as f64;
        let mut t = t;
        let mut prev_t = t - ratio;
        if self.counter != 1 {
            let keep = self.ets.len().saturating_sub(3);
            self.ets.drain(..keep);
            self.ets.push(mo.clone());
        } else {
            prev_t = t;
            t += ratio;
        }
        let mut x = x.clone();
        let e = &self.ets;
        let k = e.len();
        let model_output = if k == 1 && self.counter == 0 {
            self.cur_sample = Some(x.clone());
            mo.clone()
        } else if k == 1 && self.counter == 1 {
            let m = div(&(mo + &e[0])?, 2.0)?;
            match self.cur_sample.take() {
                Some(c) => x = c,
                None => bail!("pndm: missing cached sample at the second step"),
            }
            m
        } else if k == 2 {
            div(&lin(&[(3.0, &e[1]), (-1.0, &e[0])])?, 2.0)?
        } else if k == 3 {
            div(&lin(&[(23.0, &e[2]), (-16.0, &e[1]), (5.0, &e[0])])?, 12.0)?
        } else if k >= 4 {
            let s = lin(&[
                (55.0, &e[k - 1]),
                (-59.0, &e[k - 2]),
                (37.0, &e[k - 3]),
                (-9.0, &e[k - 4]),
            ])?;
            mul(&s, (1.0f64 / 24.0) as f32)?
        } else {
            bail!(
                "pndm: inconsistent history (counter {}, {} stored outputs)",
                self.counter,
                k
            )
        };
        let prev = self.pndm_prev_sample(&x, t, prev_t, &model_output)?;
        self.counter += 1;
        Ok(prev)
    }
}
