//! Training noise schedules and inference timestep/sigma tables, computed with
//! the same float widths diffusers uses (torch `float32` for betas and
//! `alphas_cumprod`, numpy `float64` for timestep arithmetic and interpolation).

use candle_core::{bail, Result};

use crate::sd::scheduler::config::{SchedConfig, Spacing};
use crate::sd::scheduler::numerics::{
    karras_sigmas, np_arange_f64, np_interp_arange, np_linspace, np_round, sigma_to_t,
    torch_linspace_f32,
};

/// `betas` as diffusers builds them (torch `float32`).
pub fn betas(c: &SchedConfig) -> Result<Vec<f32>> {
    let n = c.num_train_timesteps;
    if let Some(tb) = &c.trained_betas {
        return Ok(tb.iter().map(|&b| b as f32).collect());
    }
    Ok(match c.beta_schedule.as_str() {
        "linear" => torch_linspace_f32(c.beta_start, c.beta_end, n),
        "scaled_linear" => torch_linspace_f32(c.beta_start.sqrt(), c.beta_end.sqrt(), n)
            .into_iter()
            .map(|b| b * b)
            .collect(),
        "squaredcos_cap_v2" => {
            let alpha_bar = |t: f64| {
                let v = ((t + 0.008) / 1.008 * std::f64::consts::PI / 2.0).cos();
                v * v
            };
            (0..n)
                .map(|i| {
                    let t1 = i as f64 / n as f64;
                    let t2 = (i + 1) as f64 / n as f64;
                    (1.0 - alpha_bar(t2) / alpha_bar(t1)).min(0.999) as f32
                })
                .collect()
        }
        other => bail!("beta_schedule `{other}` is not implemented"),
    })
}

/// `torch.cumprod(1 - betas)`: torch accumulates in `f64` and stores `f32`.
pub fn alphas_cumprod(betas: &[f32]) -> Vec<f32> {
    let mut acc = 1.0f64;
    betas
        .iter()
        .map(|&b| {
            acc *= (1.0f32 - b) as f64;
            acc as f32
        })
        .collect()
}

/// `((1 - alphas_cumprod) / alphas_cumprod) ** 0.5` in `f32`, indexed by train timestep.
pub fn train_sigmas(ac: &[f32]) -> Vec<f32> {
    ac.iter().map(|&a| ((1.0 - a) / a).sqrt()).collect()
}

/// Integer timesteps of DDIM (descending).
pub fn ddim_timesteps(c: &SchedConfig, n: usize) -> Result<Vec<i64>> {
    let nt = c.num_train_timesteps;
    Ok(match c.spacing {
        Spacing::Linspace => np_linspace(0.0, (nt - 1) as f64, n)
            .into_iter()
            .rev()
            .map(|t| np_round(t) as i64)
            .collect(),
        Spacing::Leading => {
            let ratio = (nt / n) as i64;
            (0..n as i64)
                .rev()
                .map(|i| i * ratio + c.steps_offset)
                .collect()
        }
        Spacing::Trailing => trailing(nt, nt as f64, n)?,
    })
}

/// `np.round(np.arange(start, 0, -N / n)) - 1` as integers.
fn trailing(nt: usize, start: f64, n: usize) -> Result<Vec<i64>> {
    let ratio = nt as f64 / n as f64;
    Ok(np_arange_f64(start, 0.0, -ratio)?
        .into_iter()
        .map(|t| np_round(t) as i64 - 1)
        .collect())
}

/// PNDM's ascending `_timesteps`.
pub fn pndm_base_timesteps(c: &SchedConfig, n: usize) -> Result<Vec<i64>> {
    let nt = c.num_train_timesteps;
    Ok(match c.spacing {
        Spacing::Linspace => np_linspace(0.0, (nt - 1) as f64, n)
            .into_iter()
            .map(|t| np_round(t) as i64)
            .collect(),
        Spacing::Leading => {
            let ratio = (nt / n) as i64;
            (0..n as i64).map(|i| i * ratio + c.steps_offset).collect()
        }
        Spacing::Trailing => {
            let mut t = trailing(nt, nt as f64, n)?;
            t.reverse();
            t
        }
    })
}

/// Euler / Euler-ancestral / LMS timesteps (numpy `float32`, descending).
pub fn k_timesteps(c: &SchedConfig, n: usize) -> Result<Vec<f32>> {
    let nt = c.num_train_timesteps;
    Ok(match c.spacing {
        Spacing::Linspace => np_linspace(0.0, (nt - 1) as f64, n)
            .into_iter()
            .rev()
            .map(|t| t as f32)
            .collect(),
        Spacing::Leading => {
            let ratio = nt / n;
            (0..n)
                .rev()
                .map(|i| (i * ratio) as f32 + c.steps_offset as f32)
                .collect()
        }
        Spacing::Trailing => trailing(nt, nt as f64, n)?
            .into_iter()
            .map(|t| t as f32)
            .collect(),
    })
}

/// DPM-Solver / UniPC integer timesteps (descending). `last_timestep` is the
/// DPM-Solver `lambda_min_clipped` bound (`num_train_timesteps` for UniPC).
pub fn multistep_timesteps(c: &SchedConfig, n: usize, last_timestep: usize) -> Result<Vec<i64>> {
    let nt = c.num_train_timesteps;
    Ok(match c.spacing {
        Spacing::Linspace => {
            let mut v: Vec<i64> = np_linspace(0.0, last_timestep as f64 - 1.0, n + 1)
                .into_iter()
                .rev()
                .map(|t| np_round(t) as i64)
                .collect();
            v.pop();
            v
        }
        Spacing::Leading => {
            let ratio = (last_timestep / (n + 1)) as i64;
            let mut v: Vec<i64> = (0..=n as i64).rev().map(|i| i * ratio).collect();
            v.pop();
            v.into_iter().map(|t| t + c.steps_offset).collect()
        }
        Spacing::Trailing => trailing(nt, last_timestep as f64, n)?,
    })
}

/// `np.interp(timesteps, arange(N), train_sigmas)` (`f64` results).
pub fn interp_sigmas(ts: &[f64], train_sig: &[f32]) -> Vec<f64> {
    ts.iter().map(|&t| np_interp_arange(t, train_sig)).collect()
}

/// Karras sigmas (descending) and their fractional timesteps.
pub fn karras_with_t(
    sigma_min: f64,
    sigma_max: f64,
    n: usize,
    train_sig: &[f32],
) -> Result<(Vec<f64>, Vec<f64>)> {
    let log_sigmas: Vec<f32> = train_sig.iter().map(|s| s.ln()).collect();
    let sig = karras_sigmas(sigma_min, sigma_max, n);
    let ts = sig
        .iter()
        .map(|&s| sigma_to_t(s, &log_sigmas))
        .collect::<Result<Vec<_>>>()?;
    Ok((sig, ts))
}
