//! Diffusers-compatible noise schedulers on candle tensors.
//!
//! [`Scheduler`] reproduces diffusers 0.42.1's `DDIMScheduler`,
//! `EulerDiscreteScheduler`, `EulerAncestralDiscreteScheduler`,
//! `DPMSolverMultistepScheduler` (2M, optionally Karras), `LMSDiscreteScheduler`,
//! `PNDMScheduler` and `UniPCMultistepScheduler` (bh2), selected by
//! [`SchedulerKind`]. A scheduler is built like
//! `Class.from_config(scheduler_config, **extra)` followed by
//! `set_timesteps(n)`; its stateful counters (`step_index`, `begin_index`,
//! model-output histories) mirror diffusers so that a loop
//!
//! ```ignore
//! let mut s = Scheduler::new(kind, &cfg, steps)?;
//! let mut x = (noise * s.init_noise_sigma())?;
//! for i in 0..s.timesteps().len() {
//!     let inp = s.scale_model_input(&x, i)?;
//!     let eps = unet(&inp, s.timesteps()[i])?;
//!     x = s.step(&eps, i, &x, &mut gen)?;
//! }
//! ```
//! matches diffusers' pipeline loop step by step. Schedules are computed with
//! the float widths diffusers uses (torch `float32` betas / `alphas_cumprod`,
//! numpy `float64` timestep arithmetic); per-step scalar coefficients are `f32`
//! like diffusers' 0-d tensors, and tensor updates are evaluated in the same
//! operation order.

pub mod config;
mod ddim;
mod dpm;
mod euler;
mod lms;
pub mod numerics;
mod pndm;
pub mod schedule;
mod unipc;

pub use lms::lms_coefficient;

use crate::sd::torch_rng::TorchGenerator;
use candle_core::{bail, DType, Result, Tensor};

use config::{SchedConfig, Spacing};

/// The supported schedulers, by the names users pick them with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SchedulerKind {
    /// `ddim`: `DDIMScheduler` (eta = 0).
    Ddim,
    /// `euler`: `EulerDiscreteScheduler`.
    Euler,
    /// `euler_a`: `EulerAncestralDiscreteScheduler`.
    EulerAncestral,
    /// `dpmpp_2m`: `DPMSolverMultistepScheduler`, dpmsolver++, order 2.
    DpmPp2M,
    /// `dpmpp_2m_karras`: as `dpmpp_2m` with `use_karras_sigmas=True`.
    DpmPp2MKarras,
    /// `lms`: `LMSDiscreteScheduler` (order 4).
    Lms,
    /// `pndm`: `PNDMScheduler`.
    Pndm,
    /// `unipc`: `UniPCMultistepScheduler`, bh2, predict_x0, order 2.
    UniPc,
}

impl SchedulerKind {
    /// All kinds, in the order of their names in [`SchedulerKind::parse`]'s error.
    pub const ALL: [SchedulerKind; 8] = [
        SchedulerKind::Ddim,
        SchedulerKind::Euler,
        SchedulerKind::EulerAncestral,
        SchedulerKind::DpmPp2M,
        SchedulerKind::DpmPp2MKarras,
        SchedulerKind::Lms,
        SchedulerKind::Pndm,
        SchedulerKind::UniPc,
    ];

    /// Parses a scheduler name (`ddim`, `euler`, `euler_a`, `dpmpp_2m`,
    /// `dpmpp_2m_karras`, `lms`, `pndm`, `unipc`); the error lists the valid names.
    pub fn parse(name: &str) -> Result<Self> {
        let lower = name.trim().to_ascii_lowercase();
        for k in Self::ALL {
            if k.name() == lower {
                return Ok(k);
            }
        }
        let names: Vec<&str> = Self::ALL.iter().map(|k| k.name()).collect();
        bail!(
            "unknown scheduler `{name}`; valid names: {}",
            names.join(", ")
        )
    }

    /// The short name of this scheduler.
    pub fn name(&self) -> &'static str {
        match self {
            SchedulerKind::Ddim => "ddim",
            SchedulerKind::Euler => "euler",
            SchedulerKind::EulerAncestral => "euler_a",
            SchedulerKind::DpmPp2M => "dpmpp_2m",
            SchedulerKind::DpmPp2MKarras => "dpmpp_2m_karras",
            SchedulerKind::Lms => "lms",
            SchedulerKind::Pndm => "pndm",
            SchedulerKind::UniPc => "unipc",
        }
    }

    /// The diffusers class this kind mirrors.
    pub fn diffusers_class(&self) -> &'static str {
        match self {
            SchedulerKind::Ddim => "DDIMScheduler",
            SchedulerKind::Euler => "EulerDiscreteScheduler",
            SchedulerKind::EulerAncestral => "EulerAncestralDiscreteScheduler",
            SchedulerKind::DpmPp2M | SchedulerKind::DpmPp2MKarras => "DPMSolverMultistepScheduler",
            SchedulerKind::Lms => "LMSDiscreteScheduler",
            SchedulerKind::Pndm => "PNDMScheduler",
            SchedulerKind::UniPc => "UniPCMultistepScheduler",
        }
    }

    /// Sigma-space ("k-diffusion") schedulers that scale the model input.
    fn is_k(&self) -> bool {
        matches!(
            self,
            SchedulerKind::Euler | SchedulerKind::EulerAncestral | SchedulerKind::Lms
        )
    }

    /// Schedulers that keep diffusers' `step_index` / `begin_index`.
    fn has_step_index(&self) -> bool {
        !matches!(self, SchedulerKind::Ddim | SchedulerKind::Pndm)
    }
}

// ---------------------------------------------------------------------------
// Small exact f32 tensor helpers.

/// `x * c` in f32 (candle's affine multiplies by `c as f32` and adds +0).
fn mul(x: &Tensor, c: f32) -> Result<Tensor> {
    x.affine(c as f64, 0.0)
}

/// `x / c` as a true f32 division (not a multiply by the reciprocal).
fn div(x: &Tensor, c: f32) -> Result<Tensor> {
    x.broadcast_div(&Tensor::new(c, x.device())?)
}

/// `c0 * x0 + c1 * x1 + ...`, evaluated left to right like the Python expression.
fn lin(terms: &[(f32, &Tensor)]) -> Result<Tensor> {
    let mut acc: Option<Tensor> = None;
    for (c, x) in terms {
        let t = if *c == 1.0 { (*x).clone() } else { mul(x, *c)? };
        acc = Some(match acc {
            None => t,
            Some(a) => (a + t)?,
        });
    }
    match acc {
        Some(a) => Ok(a),
        None => bail!("lin: no terms"),
    }
}

/// diffusers' `_sigma_to_alpha_sigma_t` in f32.
fn alpha_sigma(sigma: f32) -> (f32, f32) {
    let alpha = 1.0 / (sigma * sigma + 1.0).sqrt();
    (alpha, sigma * alpha)
}

/// `log(alpha_t) - log(sigma_t)` in f32.
fn lambda(alpha: f32, sigma: f32) -> f32 {
    alpha.ln() - sigma.ln()
}

/// A configured diffusers-compatible scheduler with its step state.
pub struct Scheduler {
    kind: SchedulerKind,
    cfg: SchedConfig,
    alphas_cumprod: Vec<f32>,
    final_alpha_cumprod: f32,
    timesteps: Vec<f64>,
    /// Inference sigmas with the final entry appended (k-diffusion / multistep kinds).
    sigmas: Vec<f32>,
    /// The requested number of inference steps.
    num_inference_steps: usize,
    init_noise_sigma: f64,
    step_index: Option<usize>,
    begin_index: Option<usize>,
    // DPM-Solver / UniPC history (`model_outputs`, oldest first).
    model_outputs: Vec<Option<Tensor>>,
    lower_order_nums: usize,
    last_sample: Option<Tensor>,
    this_order: usize,
    // LMS derivative history.
    derivatives: Vec<Tensor>,
    // PNDM state.
    ets: Vec<Tensor>,
    counter: usize,
    cur_sample: Option<Tensor>,
    cur_model_output: Option<Tensor>,
    prk_len: usize,
}

impl Scheduler {
    /// Builds `kind` from a model's `scheduler_config.json` (keys the class
    /// accepts override its own defaults) and sets `num_inference_steps`.
    pub fn new(
        kind: SchedulerKind,
        config: &serde_json::Value,
        num_inference_steps: usize,
    ) -> Result<Self> {
        let cfg = config::resolve(kind, config)?;
        let n = num_inference_steps;
        let nt = cfg.num_train_timesteps;
        if n == 0 {
            bail!("{}: num_inference_steps must be at least 1", kind.name());
        }
        if n > nt {
            bail!(
                "{}: num_inference_steps {n} exceeds num_train_timesteps {nt}",
                kind.name()
            );
        }
        let betas = schedule::betas(&cfg)?;
        if betas.len() != nt {
            bail!(
                "{}: trained_betas has {} entries but num_train_timesteps is {nt}",
                kind.name(),
                betas.len()
            );
        }
        let ac = schedule::alphas_cumprod(&betas);
        let train_sig = schedule::train_sigmas(&ac);
        let final_alpha_cumprod = if cfg.set_alpha_to_one { 1.0 } else { ac[0] };
        let sigma_min_final = ((1.0 - ac[0]) / ac[0]).sqrt();
        let mut prk_len = 0;

        let (timesteps, sigmas): (Vec<f64>, Vec<f32>) = match kind {
            SchedulerKind::Ddim => {
                if cfg.clip_sample && cfg.clip_sample_range <= 0.0 {
                    bail!("ddim: clip_sample_range must be positive");
                }
                let ts = schedule::ddim_timesteps(&cfg, n)?;
                (ts.into_iter().map(|t| t as f64).collect(), Vec::new())
            }
            SchedulerKind::Pndm => {
                let base = schedule::pndm_base_timesteps(&cfg, n)?;
                let mut all: Vec<i64> = Vec::new();
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
                (all.into_iter().map(|t| t as f64).collect(), Vec::new())
            }
            SchedulerKind::Euler | SchedulerKind::EulerAncestral | SchedulerKind::Lms => {
                let ts32 = schedule::k_timesteps(&cfg, n)?;
                let ts64: Vec<f64> = ts32.iter().map(|&t| t as f64).collect();
                let mut sig = schedule::interp_sigmas(&ts64, &train_sig);
                let mut ts = ts32;
                if cfg.use_karras_sigmas && kind != SchedulerKind::EulerAncestral {
                    let (lo, hi) = match kind {
                        SchedulerKind::Euler => (
                            cfg.sigma_min.unwrap_or(sig[sig.len() - 1]),
                            cfg.sigma_max.unwrap_or(sig[0]),
                        ),
                        _ => (sig[sig.len() - 1], sig[0]),
                    };
                    let (ks, kt) = schedule::karras_with_t(lo, hi, n, &train_sig)?;
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
                (ts.into_iter().map(|t| t as f64).collect(), s32)
            }
            SchedulerKind::DpmPp2M | SchedulerKind::DpmPp2MKarras | SchedulerKind::UniPc => {
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
                let ts_int = schedule::multistep_timesteps(&cfg, n, last_timestep)?;
                if cfg.use_karras_sigmas {
                    let (lo, hi) = if kind == SchedulerKind::UniPc {
                        (
                            cfg.sigma_min.unwrap_or(train_sig[0] as f64),
                            cfg.sigma_max.unwrap_or(train_sig[nt - 1] as f64),
                        )
                    } else {
                        (train_sig[0] as f64, train_sig[nt - 1] as f64)
                    };
                    let (ks, kt) = schedule::karras_with_t(lo, hi, n, &train_sig)?;
                    let round =
                        kind == SchedulerKind::UniPc || cfg.beta_schedule != "squaredcos_cap_v2";
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
                    (ts, s32)
                } else {
                    let ts64: Vec<f64> = ts_int.iter().map(|&t| t as f64).collect();
                    let sig = schedule::interp_sigmas(&ts64, &train_sig);
                    let mut s32: Vec<f32> = sig.iter().map(|&s| s as f32).collect();
                    s32.push(if cfg.final_sigma_min {
                        sigma_min_final
                    } else {
                        0.0
                    });
                    (ts64, s32)
                }
            }
        };

        let init_noise_sigma = if kind.is_k() {
            let max = sigmas.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            match cfg.spacing {
                Spacing::Linspace | Spacing::Trailing => max as f64,
                Spacing::Leading => (max * max + 1.0).sqrt() as f64,
            }
        } else {
            1.0
        };
        let num_inference_steps = n;
        let solver_order = cfg.solver_order;
        Ok(Self {
            kind,
            cfg,
            alphas_cumprod: ac,
            final_alpha_cumprod,
            timesteps,
            sigmas,
            num_inference_steps,
            init_noise_sigma,
            step_index: None,
            begin_index: None,
            model_outputs: vec![None; solver_order],
            lower_order_nums: 0,
            last_sample: None,
            this_order: 0,
            derivatives: Vec::new(),
            ets: Vec::new(),
            counter: 0,
            cur_sample: None,
            cur_model_output: None,
            prk_len,
        })
    }

    /// The scheduler kind.
    pub fn kind(&self) -> SchedulerKind {
        self.kind
    }

    /// Timesteps passed to the UNet, in loop order (fractional for Euler-family
    /// Karras schedules; PNDM repeats one timestep and has `steps + 1` entries).
    pub fn timesteps(&self) -> &[f64] {
        &self.timesteps
    }

    /// Inference sigmas including the appended final one (empty for DDIM / PNDM).
    pub fn sigmas(&self) -> &[f32] {
        &self.sigmas
    }

    /// Training `alphas_cumprod` (float32, as diffusers holds it).
    pub fn alphas_cumprod(&self) -> &[f32] {
        &self.alphas_cumprod
    }

    /// diffusers' class attribute `order` (1 for every supported class).
    pub fn order(&self) -> usize {
        1
    }

    /// Factor for the initial latents (`latents = noise * init_noise_sigma`).
    /// Euler-family: `sigma_max` for linspace/trailing spacing and
    /// `sqrt(sigma_max^2 + 1)` for leading (diffusers' rule); 1 otherwise.
    pub fn init_noise_sigma(&self) -> f64 {
        self.init_noise_sigma
    }

    /// diffusers' `set_begin_index` (img2img / inpaint start). DDIM and PNDM have
    /// no begin index in diffusers; for them this is a no-op.
    pub fn set_begin_index(&mut self, i: usize) {
        if self.kind.has_step_index() {
            self.begin_index = Some(i);
        }
    }

    fn timestep_at(&self, i: usize) -> Result<f64> {
        match self.timesteps.get(i) {
            Some(&t) => Ok(t),
            None => bail!(
                "{}: timestep index {i} out of range ({} timesteps)",
                self.kind.name(),
                self.timesteps.len()
            ),
        }
    }

    fn sigma_at(&self, i: usize) -> Result<f32> {
        match self.sigmas.get(i) {
            Some(&s) => Ok(s),
            None => bail!(
                "{}: sigma index {i} out of range ({} sigmas); diffusers raises IndexError here too",
                self.kind.name(),
                self.sigmas.len()
            ),
        }
    }

    /// diffusers' `index_for_timestep`.
    fn index_for_timestep(&self, t: f64) -> Result<usize> {
        let hits: Vec<usize> = self
            .timesteps
            .iter()
            .enumerate()
            .filter(|(_, &v)| v == t)
            .map(|(i, _)| i)
            .collect();
        match self.kind {
            SchedulerKind::DpmPp2M | SchedulerKind::DpmPp2MKarras | SchedulerKind::UniPc => {
                Ok(match hits.len() {
                    0 => self.timesteps.len() - 1,
                    1 => hits[0],
                    _ => hits[1],
                })
            }
            _ => match hits.len() {
                0 => bail!("{}: timestep {t} is not in the schedule", self.kind.name()),
                1 => Ok(hits[0]),
                _ => Ok(hits[1]),
            },
        }
    }

    /// The step index diffusers would use when called with `timesteps[i]`.
    fn effective_index(&self, i: usize) -> Result<usize> {
        if let Some(s) = self.step_index {
            return Ok(s);
        }
        if let Some(b) = self.begin_index {
            return Ok(b);
        }
        self.index_for_timestep(self.timestep_at(i)?)
    }

    /// `scheduler.scale_model_input(sample, timesteps[i])`: divides by
    /// `sqrt(sigma^2 + 1)` for Euler / Euler-a / LMS, identity otherwise.
    pub fn scale_model_input(&self, sample: &Tensor, i: usize) -> Result<Tensor> {
        if !self.kind.is_k() {
            return Ok(sample.clone());
        }
        let idx = self.effective_index(i)?;
        let sigma = self.sigma_at(idx)?;
        let dtype = sample.dtype();
        let x = sample.to_dtype(DType::F32)?;
        div(&x, (sigma * sigma + 1.0).sqrt())?.to_dtype(dtype)
    }

    /// `scheduler.step(model_output, timesteps[i], sample, generator=gen).prev_sample`.
    /// Only Euler-ancestral draws from `gen` (one `torch.randn` of the latent
    /// shape, float32, per step).
    pub fn step(
        &mut self,
        model_output: &Tensor,
        i: usize,
        sample: &Tensor,
        gen: &mut TorchGenerator,
    ) -> Result<Tensor> {
        if model_output.shape() != sample.shape() {
            bail!(
                "{}: model_output shape {:?} differs from sample shape {:?}",
                self.kind.name(),
                model_output.shape(),
                sample.shape()
            );
        }
        let out_dtype = model_output.dtype();
        let mo = model_output.to_dtype(DType::F32)?;
        let x = sample.to_dtype(DType::F32)?;
        let t = self.timestep_at(i)?;
        let prev = match self.kind {
            SchedulerKind::Ddim => self.step_ddim(&mo, t, &x)?,
            SchedulerKind::Pndm => self.step_pndm(&mo, t, &x)?,
            SchedulerKind::Euler | SchedulerKind::EulerAncestral | SchedulerKind::Lms => {
                if self.step_index.is_none() {
                    self.step_index = Some(self.effective_index(i)?);
                }
                let idx = self.effective_index(i)?;
                let out = match self.kind {
                    SchedulerKind::Euler => self.step_euler(&mo, idx, &x)?,
                    SchedulerKind::EulerAncestral => self.step_euler_a(&mo, idx, &x, gen)?,
                    _ => self.step_lms(&mo, idx, &x)?,
                };
                self.step_index = Some(idx + 1);
                out
            }
            SchedulerKind::DpmPp2M | SchedulerKind::DpmPp2MKarras => {
                if self.step_index.is_none() {
                    self.step_index = Some(self.effective_index(i)?);
                }
                let idx = self.effective_index(i)?;
                let out = self.step_dpm(&mo, idx, &x)?;
                self.step_index = Some(idx + 1);
                out
            }
            SchedulerKind::UniPc => {
                if self.step_index.is_none() {
                    self.step_index = Some(self.effective_index(i)?);
                }
                let idx = self.effective_index(i)?;
                let out = self.step_unipc(&mo, idx, &x)?;
                self.step_index = Some(idx + 1);
                out
            }
        };
        prev.to_dtype(out_dtype)
    }

    /// `scheduler.add_noise(original, noise, timesteps[i:i+1])` as diffusers'
    /// pipelines call it.
    ///
    /// DDIM / PNDM use `alphas_cumprod[timesteps[i]]` directly. The sigma-based
    /// kinds follow diffusers' index rule: with no begin index the index of
    /// `timesteps[i]` in the schedule; otherwise the current `step_index`, or the
    /// begin index before the first step. In img2img (`set_begin_index(k)`, then
    /// `add_noise(.., timesteps[k:k+1])` before any step) that is `k = i`; in the
    /// 4-channel inpaint loop (after `step(.., i, ..)`, `add_noise(..,
    /// timesteps[i+1])`) the step index is `i + 1`: both equal `i` as passed here.
    pub fn add_noise(&self, original: &Tensor, noise: &Tensor, i: usize) -> Result<Tensor> {
        let dtype = original.dtype();
        let x0 = original.to_dtype(DType::F32)?;
        let n = noise.to_dtype(DType::F32)?;
        let out = match self.kind {
            SchedulerKind::Ddim | SchedulerKind::Pndm => {
                let t = self.timestep_at(i)?;
                let a = self.alphas_cumprod_at(t)?;
                lin(&[(a.sqrt(), &x0), ((1.0 - a).sqrt(), &n)])?
            }
            _ => {
                let idx = if self.begin_index.is_none() {
                    self.index_for_timestep(self.timestep_at(i)?)?
                } else if let Some(s) = self.step_index {
                    s
                } else {
                    self.begin_index.unwrap_or(i)
                };
                let sigma = self.sigma_at(idx)?;
                if self.kind.is_k() {
                    (&x0 + mul(&n, sigma)?)?
                } else {
                    let (alpha_t, sigma_t) = alpha_sigma(sigma);
                    lin(&[(alpha_t, &x0), (sigma_t, &n)])?
                }
            }
        };
        out.to_dtype(dtype)
    }

    fn alphas_cumprod_at(&self, t: f64) -> Result<f32> {
        if t < 0.0 {
            return Ok(self.final_alpha_cumprod);
        }
        match self.alphas_cumprod.get(t as usize) {
            Some(&a) => Ok(a),
            None => bail!("{}: timestep {t} outside alphas_cumprod", self.kind.name()),
        }
    }
}
