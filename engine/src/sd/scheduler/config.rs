//! Scheduler configuration resolved the way diffusers' `Class.from_config`
//! does it: keys of `scheduler_config.json` that the class's `__init__`
//! accepts override that class's own defaults; other keys are ignored.

use candle_core::{bail, Result};
use serde_json::Value;

use crate::sd::scheduler::SchedulerKind;

/// What the UNet predicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prediction {
    /// Noise (`epsilon`).
    Epsilon,
    /// Velocity (`v_prediction`).
    VPrediction,
    /// The clean sample (`sample`).
    Sample,
}

/// How inference timesteps are spread over the training timesteps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spacing {
    /// `linspace`
    Linspace,
    /// `leading`
    Leading,
    /// `trailing`
    Trailing,
}

/// Resolved configuration (only the fields these schedulers use).
#[derive(Clone, Debug)]
pub struct SchedConfig {
    /// `num_train_timesteps`
    pub num_train_timesteps: usize,
    /// `beta_start`
    pub beta_start: f64,
    /// `beta_end`
    pub beta_end: f64,
    /// `beta_schedule`
    pub beta_schedule: String,
    /// `trained_betas`
    pub trained_betas: Option<Vec<f64>>,
    /// `prediction_type`
    pub prediction: Prediction,
    /// `timestep_spacing`
    pub spacing: Spacing,
    /// `steps_offset`
    pub steps_offset: i64,
    /// `set_alpha_to_one` (DDIM, PNDM)
    pub set_alpha_to_one: bool,
    /// `clip_sample` (DDIM)
    pub clip_sample: bool,
    /// `clip_sample_range` (DDIM)
    pub clip_sample_range: f64,
    /// `use_karras_sigmas`
    pub use_karras_sigmas: bool,
    /// `sigma_min` (Euler, UniPC)
    pub sigma_min: Option<f64>,
    /// `sigma_max` (Euler, UniPC)
    pub sigma_max: Option<f64>,
    /// `final_sigmas_type == "sigma_min"` (else "zero")
    pub final_sigma_min: bool,
    /// `skip_prk_steps` (PNDM)
    pub skip_prk_steps: bool,
    /// `solver_order` (DPM-Solver, UniPC)
    pub solver_order: usize,
    /// `solver_type == "heun"` (DPM-Solver; else midpoint)
    pub dpm_heun: bool,
    /// `lower_order_final`
    pub lower_order_final: bool,
    /// `euler_at_final` (DPM-Solver)
    pub euler_at_final: bool,
    /// `lambda_min_clipped` (DPM-Solver)
    pub lambda_min_clipped: f64,
    /// `disable_corrector` (UniPC)
    pub disable_corrector: Vec<usize>,
}

/// Keys accepted by each class's `__init__` (diffusers 0.42.1).
fn accepted_keys(kind: SchedulerKind) -> &'static [&'static str] {
    match kind {
        SchedulerKind::Ddim => &[
            "num_train_timesteps",
            "beta_start",
            "beta_end",
            "beta_schedule",
            "trained_betas",
            "clip_sample",
            "set_alpha_to_one",
            "steps_offset",
            "prediction_type",
            "thresholding",
            "dynamic_thresholding_ratio",
            "clip_sample_range",
            "sample_max_value",
            "timestep_spacing",
            "rescale_betas_zero_snr",
        ],
        SchedulerKind::Euler => &[
            "num_train_timesteps",
            "beta_start",
            "beta_end",
            "beta_schedule",
            "trained_betas",
            "prediction_type",
            "interpolation_type",
            "use_karras_sigmas",
            "use_exponential_sigmas",
            "use_beta_sigmas",
            "sigma_min",
            "sigma_max",
            "timestep_spacing",
            "timestep_type",
            "steps_offset",
            "rescale_betas_zero_snr",
            "final_sigmas_type",
        ],
        SchedulerKind::EulerAncestral => &[
            "num_train_timesteps",
            "beta_start",
            "beta_end",
            "beta_schedule",
            "trained_betas",
            "prediction_type",
            "timestep_spacing",
            "steps_offset",
            "rescale_betas_zero_snr",
        ],
        SchedulerKind::DpmPp2M | SchedulerKind::DpmPp2MKarras => &[
            "num_train_timesteps",
            "beta_start",
            "beta_end",
            "beta_schedule",
            "trained_betas",
            "solver_order",
            "prediction_type",
            "thresholding",
            "dynamic_thresholding_ratio",
            "sample_max_value",
            "algorithm_type",
            "solver_type",
            "lower_order_final",
            "euler_at_final",
            "use_karras_sigmas",
            "use_exponential_sigmas",
            "use_beta_sigmas",
            "use_lu_lambdas",
            "use_flow_sigmas",
            "flow_shift",
            "final_sigmas_type",
            "lambda_min_clipped",
            "variance_type",
            "timestep_spacing",
            "steps_offset",
            "rescale_betas_zero_snr",
            "use_dynamic_shifting",
            "time_shift_type",
        ],
        SchedulerKind::Lms => &[
            "num_train_timesteps",
            "beta_start",
            "beta_end",
            "beta_schedule",
            "trained_betas",
            "use_karras_sigmas",
            "use_exponential_sigmas",
            "use_beta_sigmas",
            "prediction_type",
            "timestep_spacing",
            "steps_offset",
        ],
        SchedulerKind::Pndm => &[
            "num_train_timesteps",
            "beta_start",
            "beta_end",
            "beta_schedule",
            "trained_betas",
            "skip_prk_steps",
            "set_alpha_to_one",
            "prediction_type",
            "timestep_spacing",
            "steps_offset",
        ],
        SchedulerKind::UniPc => &[
            "num_train_timesteps",
            "beta_start",
            "beta_end",
            "beta_schedule",
            "trained_betas",
            "solver_order",
            "prediction_type",
            "thresholding",
            "dynamic_thresholding_ratio",
            "sample_max_value",
            "predict_x0",
            "solver_type",
            "lower_order_final",
            "disable_corrector",
            "solver_p",
            "use_karras_sigmas",
            "use_exponential_sigmas",
            "use_beta_sigmas",
            "use_flow_sigmas",
            "flow_shift",
            "timestep_spacing",
            "steps_offset",
            "final_sigmas_type",
            "rescale_betas_zero_snr",
            "use_dynamic_shifting",
            "time_shift_type",
            "sigma_min",
            "sigma_max",
            "shift_terminal",
        ],
    }
}

/// Class defaults for the keys that differ between classes.
fn class_defaults(kind: SchedulerKind) -> SchedConfig {
    let spacing = match kind {
        SchedulerKind::Ddim | SchedulerKind::Pndm => Spacing::Leading,
        _ => Spacing::Linspace,
    };
    SchedConfig {
        num_train_timesteps: 1000,
        beta_start: 0.0001,
        beta_end: 0.02,
        beta_schedule: "linear".to_string(),
        trained_betas: None,
        prediction: Prediction::Epsilon,
        spacing,
        steps_offset: 0,
        // DDIM defaults to true, PNDM to false.
        set_alpha_to_one: matches!(kind, SchedulerKind::Ddim),
        clip_sample: matches!(kind, SchedulerKind::Ddim),
        clip_sample_range: 1.0,
        use_karras_sigmas: false,
        sigma_min: None,
        sigma_max: None,
        final_sigma_min: false,
        skip_prk_steps: false,
        solver_order: 2,
        dpm_heun: false,
        lower_order_final: true,
        euler_at_final: false,
        lambda_min_clipped: f64::NEG_INFINITY,
        disable_corrector: Vec::new(),
    }
}

/// Values this crate forces on top of the model config for a scheduler name
/// (the `**extra` of `Class.from_config(config, **extra)`).
fn forced(kind: SchedulerKind) -> Vec<(&'static str, Value)> {
    match kind {
        SchedulerKind::DpmPp2M => vec![
            ("algorithm_type", Value::from("dpmsolver++")),
            ("solver_order", Value::from(2)),
        ],
        SchedulerKind::DpmPp2MKarras => vec![
            ("algorithm_type", Value::from("dpmsolver++")),
            ("solver_order", Value::from(2)),
            ("use_karras_sigmas", Value::from(true)),
        ],
        SchedulerKind::UniPc => vec![
            ("solver_type", Value::from("bh2")),
            ("predict_x0", Value::from(true)),
            ("solver_order", Value::from(2)),
        ],
        _ => Vec::new(),
    }
}

fn as_f64(key: &str, v: &Value) -> Result<f64> {
    match v.as_f64() {
        Some(x) => Ok(x),
        None => bail!("scheduler config key `{key}`: expected a number, got {v}"),
    }
}

fn as_bool(key: &str, v: &Value) -> Result<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Null => Ok(false),
        _ => bail!("scheduler config key `{key}`: expected a bool, got {v}"),
    }
}

fn as_str<'a>(key: &str, v: &'a Value) -> Result<&'a str> {
    match v.as_str() {
        Some(s) => Ok(s),
        None => bail!("scheduler config key `{key}`: expected a string, got {v}"),
    }
}

fn as_usize(key: &str, v: &Value) -> Result<usize> {
    match v.as_u64() {
        Some(x) => Ok(x as usize),
        None => bail!("scheduler config key `{key}`: expected a non-negative integer, got {v}"),
    }
}

/// Resolves `config` (a parsed `scheduler_config.json`) for `kind`.
pub fn resolve(kind: SchedulerKind, config: &Value) -> Result<SchedConfig> {
    let obj = match config {
        Value::Object(m) => m.clone(),
        Value::Null => serde_json::Map::new(),
        _ => bail!("scheduler config must be a JSON object"),
    };
    let accepted = accepted_keys(kind);
    let mut entries: Vec<(String, Value)> = obj
        .into_iter()
        .filter(|(k, _)| accepted.contains(&k.as_str()))
        .collect();
    for (k, v) in forced(kind) {
        entries.retain(|(ek, _)| ek != k);
        entries.push((k.to_string(), v));
    }
    let mut c = class_defaults(kind);
    let name = kind.name();
    for (key, v) in &entries {
        let key = key.as_str();
        match key {
            "num_train_timesteps" => c.num_train_timesteps = as_usize(key, v)?,
            "beta_start" => c.beta_start = as_f64(key, v)?,
            "beta_end" => c.beta_end = as_f64(key, v)?,
            "beta_schedule" => c.beta_schedule = as_str(key, v)?.to_string(),
            "trained_betas" => {
                c.trained_betas = match v {
                    Value::Null => None,
                    Value::Array(a) => Some(
                        a.iter()
                            .map(|x| as_f64(key, x))
                            .collect::<Result<Vec<_>>>()?,
                    ),
                    _ => bail!("scheduler config key `trained_betas`: expected a list or null"),
                }
            }
            "prediction_type" => {
                c.prediction = match as_str(key, v)? {
                    "epsilon" => Prediction::Epsilon,
                    "v_prediction" => Prediction::VPrediction,
                    "sample" => Prediction::Sample,
                    other => bail!("{name}: unsupported prediction_type `{other}`"),
                }
            }
            "timestep_spacing" => {
                c.spacing = match as_str(key, v)? {
                    "linspace" => Spacing::Linspace,
                    "leading" => Spacing::Leading,
                    "trailing" => Spacing::Trailing,
                    other => bail!("{name}: unsupported timestep_spacing `{other}`"),
                }
            }
            "steps_offset" => {
                c.steps_offset = match v.as_i64() {
                    Some(x) => x,
                    None => bail!("scheduler config key `steps_offset`: expected an integer"),
                }
            }
            "set_alpha_to_one" => c.set_alpha_to_one = as_bool(key, v)?,
            "clip_sample" => c.clip_sample = as_bool(key, v)?,
            "clip_sample_range" => c.clip_sample_range = as_f64(key, v)?,
            "use_karras_sigmas" => c.use_karras_sigmas = as_bool(key, v)?,
            "sigma_min" => {
                c.sigma_min = if v.is_null() {
                    None
                } else {
                    Some(as_f64(key, v)?)
                }
            }
            "sigma_max" => {
                c.sigma_max = if v.is_null() {
                    None
                } else {
                    Some(as_f64(key, v)?)
                }
            }
            "final_sigmas_type" => {
                c.final_sigma_min = match as_str(key, v)? {
                    "zero" => false,
                    "sigma_min" => true,
                    other => bail!("{name}: unsupported final_sigmas_type `{other}`"),
                }
            }
            "skip_prk_steps" => c.skip_prk_steps = as_bool(key, v)?,
            "solver_order" => c.solver_order = as_usize(key, v)?,
            "solver_type" => match (kind, as_str(key, v)?) {
                (SchedulerKind::UniPc, "bh2") => {}
                (SchedulerKind::DpmPp2M | SchedulerKind::DpmPp2MKarras, "midpoint") => {
                    c.dpm_heun = false
                }
                (SchedulerKind::DpmPp2M | SchedulerKind::DpmPp2MKarras, "heun") => {
                    c.dpm_heun = true
                }
                // diffusers maps these UniPC names onto midpoint.
                (
                    SchedulerKind::DpmPp2M | SchedulerKind::DpmPp2MKarras,
                    "logrho" | "bh1" | "bh2",
                ) => c.dpm_heun = false,
                (_, other) => bail!("{name}: unsupported solver_type `{other}`"),
            },
            "lower_order_final" => c.lower_order_final = as_bool(key, v)?,
            "euler_at_final" => c.euler_at_final = as_bool(key, v)?,
            "lambda_min_clipped" => c.lambda_min_clipped = as_f64(key, v)?,
            "disable_corrector" => {
                c.disable_corrector = match v {
                    Value::Null => Vec::new(),
                    Value::Array(a) => a
                        .iter()
                        .map(|x| as_usize(key, x))
                        .collect::<Result<Vec<_>>>()?,
                    _ => bail!("scheduler config key `disable_corrector`: expected a list"),
                }
            }
            "algorithm_type" => {
                let a = as_str(key, v)?;
                if a != "dpmsolver++" && a != "deis" {
                    bail!("{name}: unsupported algorithm_type `{a}` (only dpmsolver++)")
                }
            }
            "predict_x0" => {
                if !as_bool(key, v)? {
                    bail!("{name}: predict_x0 = false is not supported")
                }
            }
            "interpolation_type" => {
                let s = as_str(key, v)?;
                if s != "linear" {
                    bail!("{name}: unsupported interpolation_type `{s}` (only linear)")
                }
            }
            "timestep_type" => {
                let s = as_str(key, v)?;
                if s != "discrete" {
                    bail!("{name}: unsupported timestep_type `{s}` (only discrete)")
                }
            }
            "time_shift_type" => {}
            "thresholding"
            | "rescale_betas_zero_snr"
            | "use_exponential_sigmas"
            | "use_beta_sigmas"
            | "use_lu_lambdas"
            | "use_flow_sigmas"
            | "use_dynamic_shifting" => {
                if as_bool(key, v)? {
                    bail!("{name}: `{key}: true` is not supported")
                }
            }
            "variance_type" | "solver_p" | "shift_terminal" => {
                if !v.is_null() {
                    bail!("{name}: `{key}` = {v} is not supported (only null)")
                }
            }
            // Only read when a feature we reject is on.
            "dynamic_thresholding_ratio" | "sample_max_value" | "flow_shift" => {}
            other => bail!("{name}: internal error, unhandled config key `{other}`"),
        }
    }
    if c.solver_order == 0 {
        bail!("{name}: solver_order must be at least 1");
    }
    if kind == SchedulerKind::Pndm && c.prediction == Prediction::Sample {
        bail!("pndm: prediction_type `sample` is not supported by PNDMScheduler");
    }
    if kind == SchedulerKind::EulerAncestral && c.prediction == Prediction::Sample {
        bail!("euler_a: prediction_type `sample` is not implemented in EulerAncestralDiscreteScheduler");
    }
    Ok(c)
}
