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
use nodes::schedulers::{SchedulerInfo, SCHEDULERS};

use config::{SchedConfig, Spacing};

/// The supported schedulers, by the names users pick them with. The names, the diffusers
/// classes and the other programs' names come from the one table, [`nodes::schedulers`]; the
/// variants are its rows, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SchedulerKind {
    /// `ddim`: `DDIMScheduler` (eta = 0).
    Ddim = 0,
    /// `euler`: `EulerDiscreteScheduler`.
    Euler = 1,
    /// `euler_a`: `EulerAncestralDiscreteScheduler`.
    EulerAncestral = 2,
    /// `dpmpp_2m`: `DPMSolverMultistepScheduler`, dpmsolver++, order 2.
    DpmPp2M = 3,
    /// `dpmpp_2m_karras`: as `dpmpp_2m` with `use_karras_sigmas=True`.
    DpmPp2MKarras = 4,
    /// `lms`: `LMSDiscreteScheduler` (order 4).
    Lms = 5,
    /// `pndm`: `PNDMScheduler`.
    Pndm = 6,
    /// `unipc`: `UniPCMultistepScheduler`, bh2, predict_x0, order 2.
    UniPc = 7,
}

// One variant per row of the table (a test checks that each variant is its row).
const _: () = assert!(SchedulerKind::ALL.len() == SCHEDULERS.len());

impl SchedulerKind {
    /// All kinds, in the table's order.
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

    /// This kind's row of [`nodes::schedulers::SCHEDULERS`].
    pub fn info(&self) -> &'static SchedulerInfo {
        &SCHEDULERS[*self as usize]
    }

    /// Parses a scheduler name (`ddim`, `euler`, `euler_a`, `dpmpp_2m`, `dpmpp_2m_karras`,
    /// `lms`, `pndm`, `unipc`; case and surrounding spaces ignored); the error lists the valid
    /// names.
    pub fn parse(name: &str) -> Result<Self> {
        let lower = name.trim().to_ascii_lowercase();
        match Self::ALL.into_iter().find(|k| k.name() == lower) {
            Some(k) => Ok(k),
            None => bail!(
                "unknown scheduler `{name}`; valid names: {}",
                nodes::schedulers::names_list()
            ),
        }
    }

    /// The kind of a diffusers class with its `use_karras_sigmas` (what a model's
    /// `scheduler_config.json` names), if we have it.
    pub fn from_diffusers(class: &str, karras: bool) -> Option<Self> {
        let info = nodes::schedulers::from_diffusers(class, karras)?;
        Self::ALL.into_iter().find(|k| k.name() == info.name)
    }

    /// The short name of this scheduler.
    pub fn name(&self) -> &'static str {
        self.info().name
    }

    /// The diffusers class this kind mirrors.
    pub fn diffusers_class(&self) -> &'static str {
        self.info().diffusers_class
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

/// The configured schedule every family reads: the config, the training `alphas_cumprod`, the
/// inference timesteps and sigmas. Fixed once [`Scheduler::new`] has built it.
struct Core {
    kind: SchedulerKind,
    cfg: SchedConfig,
    alphas_cumprod: Vec<f32>,
    final_alpha_cumprod: f32,
    timesteps: Vec<f64>,
    /// Inference sigmas with the final entry appended (k-diffusion / multistep kinds).
    sigmas: Vec<f32>,
    /// The requested number of inference steps.
    num_inference_steps: usize,
}

impl Core {
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

/// The step state of each family, held by its own module.
enum FamilyState {
    /// DDIM keeps no state between steps.
    Ddim,
    Pndm(pndm::PndmState),
    /// Euler and Euler ancestral keep only the step index.
    Euler,
    Lms(lms::LmsState),
    Dpm(dpm::DpmState),
    UniPc(unipc::UniPcState),
}

/// A configured diffusers-compatible scheduler with its step state.
pub struct Scheduler {
    core: Core,
    init_noise_sigma: f64,
    step_index: Option<usize>,
    begin_index: Option<usize>,
    state: FamilyState,
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

        let (timesteps, sigmas, state) = match kind {
            SchedulerKind::Ddim => (ddim::timesteps(&cfg, n)?, Vec::new(), FamilyState::Ddim),
            SchedulerKind::Pndm => {
                let (ts, prk_len) = pndm::timesteps(&cfg, n)?;
                (
                    ts,
                    Vec::new(),
                    FamilyState::Pndm(pndm::PndmState::new(prk_len)),
                )
            }
            SchedulerKind::Euler | SchedulerKind::EulerAncestral | SchedulerKind::Lms => {
                let (ts, sig) = euler::k_schedule(kind, &cfg, n, &train_sig, sigma_min_final)?;
                let state = if kind == SchedulerKind::Lms {
                    FamilyState::Lms(lms::LmsState::default())
                } else {
                    FamilyState::Euler
                };
                (ts, sig, state)
            }
            SchedulerKind::DpmPp2M | SchedulerKind::DpmPp2MKarras | SchedulerKind::UniPc => {
                let (ts, sig) =
                    dpm::multistep_schedule(kind, &cfg, n, &ac, &train_sig, sigma_min_final)?;
                let state = if kind == SchedulerKind::UniPc {
                    FamilyState::UniPc(unipc::UniPcState::new(cfg.solver_order))
                } else {
                    FamilyState::Dpm(dpm::DpmState::new(cfg.solver_order))
                };
                (ts, sig, state)
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
        Ok(Self {
            core: Core {
                kind,
                cfg,
                alphas_cumprod: ac,
                final_alpha_cumprod,
                timesteps,
                sigmas,
                num_inference_steps: n,
            },
            init_noise_sigma,
            step_index: None,
            begin_index: None,
            state,
        })
    }

    /// The scheduler kind.
    pub fn kind(&self) -> SchedulerKind {
        self.core.kind
    }

    /// Timesteps passed to the UNet, in loop order (fractional for Euler-family
    /// Karras schedules; PNDM repeats one timestep and has `steps + 1` entries).
    pub fn timesteps(&self) -> &[f64] {
        &self.core.timesteps
    }

    /// Inference sigmas including the appended final one (empty for DDIM / PNDM).
    pub fn sigmas(&self) -> &[f32] {
        &self.core.sigmas
    }

    /// Training `alphas_cumprod` (float32, as diffusers holds it).
    pub fn alphas_cumprod(&self) -> &[f32] {
        &self.core.alphas_cumprod
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
        if self.core.kind.has_step_index() {
            self.begin_index = Some(i);
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
        self.core.index_for_timestep(self.core.timestep_at(i)?)
    }

    /// `scheduler.scale_model_input(sample, timesteps[i])`: divides by
    /// `sqrt(sigma^2 + 1)` for Euler / Euler-a / LMS, identity otherwise.
    pub fn scale_model_input(&self, sample: &Tensor, i: usize) -> Result<Tensor> {
        if !self.core.kind.is_k() {
            return Ok(sample.clone());
        }
        let idx = self.effective_index(i)?;
        let sigma = self.core.sigma_at(idx)?;
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
        let kind = self.core.kind;
        if model_output.shape() != sample.shape() {
            bail!(
                "{}: model_output shape {:?} differs from sample shape {:?}",
                kind.name(),
                model_output.shape(),
                sample.shape()
            );
        }
        let out_dtype = model_output.dtype();
        let mo = model_output.to_dtype(DType::F32)?;
        let x = sample.to_dtype(DType::F32)?;
        let t = self.core.timestep_at(i)?;
        let prev = if kind.has_step_index() {
            // The sigma-based families step by index, as diffusers' `_step_index`.
            let idx = self.effective_index(i)?;
            self.step_index = Some(idx);
            let core = &self.core;
            let out = match &mut self.state {
                FamilyState::Euler if kind == SchedulerKind::EulerAncestral => {
                    euler::step_ancestral(core, &mo, idx, &x, gen)?
                }
                FamilyState::Euler => euler::step(core, &mo, idx, &x)?,
                FamilyState::Lms(s) => s.step(core, &mo, idx, &x)?,
                FamilyState::Dpm(s) => s.step(core, &mo, idx, &x)?,
                FamilyState::UniPc(s) => s.step(core, &mo, idx, &x)?,
                FamilyState::Ddim | FamilyState::Pndm(_) => {
                    bail!("{}: inconsistent scheduler state", kind.name())
                }
            };
            self.step_index = Some(idx + 1);
            out
        } else {
            match &mut self.state {
                FamilyState::Ddim => ddim::step(&self.core, &mo, t, &x)?,
                FamilyState::Pndm(s) => s.step(&self.core, &mo, t, &x)?,
                _ => bail!("{}: inconsistent scheduler state", kind.name()),
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
        let core = &self.core;
        let out = match core.kind {
            SchedulerKind::Ddim | SchedulerKind::Pndm => {
                let t = core.timestep_at(i)?;
                let a = core.alphas_cumprod_at(t)?;
                lin(&[(a.sqrt(), &x0), ((1.0 - a).sqrt(), &n)])?
            }
            _ => {
                let idx = if self.begin_index.is_none() {
                    core.index_for_timestep(core.timestep_at(i)?)?
                } else if let Some(s) = self.step_index {
                    s
                } else {
                    self.begin_index.unwrap_or(i)
                };
                let sigma = core.sigma_at(idx)?;
                if core.kind.is_k() {
                    (&x0 + mul(&n, sigma)?)?
                } else {
                    let (alpha_t, sigma_t) = alpha_sigma(sigma);
                    lin(&[(alpha_t, &x0), (sigma_t, &n)])?
                }
            }
        };
        out.to_dtype(dtype)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_is_its_row_of_the_table() {
        let named = [
            (SchedulerKind::Ddim, "ddim"),
            (SchedulerKind::Euler, "euler"),
            (SchedulerKind::EulerAncestral, "euler_a"),
            (SchedulerKind::DpmPp2M, "dpmpp_2m"),
            (SchedulerKind::DpmPp2MKarras, "dpmpp_2m_karras"),
            (SchedulerKind::Lms, "lms"),
            (SchedulerKind::Pndm, "pndm"),
            (SchedulerKind::UniPc, "unipc"),
        ];
        assert_eq!(named.len(), SCHEDULERS.len());
        for (i, (k, name)) in named.into_iter().enumerate() {
            assert_eq!(SchedulerKind::ALL[i], k);
            assert_eq!(k.name(), name);
            assert_eq!(SchedulerKind::parse(&name.to_uppercase()).ok(), Some(k));
            assert_eq!(
                SchedulerKind::from_diffusers(k.diffusers_class(), k.info().karras),
                Some(k)
            );
        }
        let e = SchedulerKind::parse("heun").unwrap_err().to_string();
        assert!(e.contains("heun") && e.contains("dpmpp_2m_karras"), "{e}");
    }
}
