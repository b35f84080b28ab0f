//! `PNDMScheduler`: the Runge–Kutta warm-up (PRK) and the linear multistep (PLMS) steps, with
//! the model-output history they keep.

use candle_core::{bail, Result, Tensor};

use super::config::{Prediction, SchedConfig};
use super::{div, lin, mul, schedule, Core};

/// The inference timesteps of `n` steps (PRK's repeated ones first unless `skip_prk_steps`) and
/// the number of PRK steps among them.
pub(super) fn timesteps(cfg: &SchedConfig, n: usize) -> Result<(Vec<f64>, usize)> {
    let nt = cfg.num_train_timesteps;
    let base = schedule::pndm_base_timesteps(cfg, n)?;
    let mut all: Vec<i64> = Vec::new();
    let mut prk_len = 0;
    if cfg.skip_prk_steps {
        let len = base.len();
        let mut v: Vec<i64> = base[..len.saturating_sub(1)].to_vec();
        if len >= 2 {
            v.push(base[len - 2]);
        }
        v.extend_from_slice(&base[len.saturating_sub(1)..]);
        v.reverse();
        all = v;
    } else {
        if base.len() < 4 {
            bail!("pndm: PRK warm-up (skip_prk_steps = false) needs at least 4 steps, got {n}");
        }
        let half = (nt / n / 2) as i64;
        let last4 = &base[base.len() - 4..];
        let mut prk: Vec<i64> = Vec::new();
        for &t in last4 {
            prk.push(t);
            prk.push(t + half);
        }
        prk.pop();
        let mut rep: Vec<i64> = prk.iter().flat_map(|&t| [t, t]).collect();
        rep.remove(0);
        rep.pop();
        rep.reverse();
        prk_len = rep.len();
        all.extend(rep);
        let plms: Vec<i64> = base[..base.len() - 3].iter().rev().copied().collect();
        all.extend(plms);
    }
    Ok((all.into_iter().map(|t| t as f64).collect(), prk_len))
}

/// diffusers' `_get_prev_sample`.
fn prev_sample(core: &Core, x: &Tensor, t: f64, prev_t: f64, mo: &Tensor) -> Result<Tensor> {
    let a_t = core.alphas_cumprod_at(t)?;
    let a_prev = core.alphas_cumprod_at(prev_t)?;
    let b_t = 1.0 - a_t;
    let b_prev = 1.0 - a_prev;
    let mo = match core.cfg.prediction {
        Prediction::VPrediction => lin(&[(a_t.sqrt(), mo), (b_t.sqrt(), x)])?,
        _ => mo.clone(),
    };
    let sample_coeff = (a_prev / a_t).sqrt();
    let denom = a_t * b_prev.sqrt() + (a_t * b_t * a_prev).sqrt();
    let m = div(&mul(&mo, a_prev - a_t)?, denom)?;
    mul(x, sample_coeff)? - m
}

/// PNDM's state: the model-output history (`ets`), the step counter and the PRK accumulators.
pub(super) struct PndmState {
    ets: Vec<Tensor>,
    counter: usize,
    cur_sample: Option<Tensor>,
    cur_model_output: Option<Tensor>,
    prk_len: usize,
}

impl PndmState {
    pub(super) fn new(prk_len: usize) -> Self {
        PndmState {
            ets: Vec::new(),
            counter: 0,
            cur_sample: None,
            cur_model_output: None,
            prk_len,
        }
    }

    /// One step from timestep `t`: PRK while warming up (unless `skip_prk_steps`), then PLMS.
    pub(super) fn step(&mut self, core: &Core, mo: &Tensor, t: f64, x: &Tensor) -> Result<Tensor> {
        let nt = core.cfg.num_train_timesteps;
        let n = core.num_inference_steps;
        if self.counter < self.prk_len && !core.cfg.skip_prk_steps {
            let diff = if self.counter % 2 == 1 { 0 } else { nt / n / 2 };
            let prev_t = t - diff as f64;
            let t = core.timestep_at(self.counter / 4 * 4)?;
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
            let prev = prev_sample(core, &cur, t, prev_t, &model_output)?;
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
        let prev = prev_sample(core, &x, t, prev_t, &model_output)?;
        self.counter += 1;
        Ok(prev)
    }
}
