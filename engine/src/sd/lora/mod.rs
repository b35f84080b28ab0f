//! LoRA: reading kohya (`lora_unet_*`, `lora_te_*`, SDXL's `lora_te1_*`/`lora_te2_*` with LDM
//! UNet names), diffusers/PEFT (`lora_A`/`lora_B`, `unet.`/`text_encoder.` prefixes, and the
//! older `lora.down`/`lora.up`) and LyCORIS files (LoCon convolutions, 3×3 included; LoHa
//! `hada_*` with optional Tucker cores; LoKr `lokr_*` with full or factorised factors), each
//! module optionally with a DoRA magnitude (`dora_scale`, PEFT's `lora_magnitude_vector`), and
//! merging a stack of them into a model: `W' = W + Σ strength · ΔW`, in stack order, with a
//! DoRA module rescaling the running weight as PEFT does with several adapters.
//!
//! - [`read`] (`read.rs`): keys → [`LoraModule`]s of one [`Adapter`] kind each; incomplete
//!   modules' keys become [`LoraFile::unknown_keys`].
//! - `delta.rs`: ΔW per algorithm and the DoRA renormalisation, in f32, accumulated per layer
//!   in stack order (PEFT's semantics for several adapters on one layer).
//! - `names.rs`: every name a file may use for each model weight ([`ldm_unet_path`] for
//!   kohya's SDXL names) and the family a file was made for.
//! - [`LoraSpec`]: one LoRA of a stack with its UNet and text-encoder strengths.
//! - [`apply`]: merges a stack into a model's weights and returns a [`LoraReport`] per file:
//!   modules applied per algorithm, DoRA modules, and every key that matched nothing. A LoRA
//!   made for another architecture is refused.
//!
//! Merging reuses every base tensor a LoRA does not touch ([`super::model::Weights`] are shared
//! maps), so a new strength costs the deltas of the touched modules and a module rebuild, never
//! a read of the checkpoint.

mod delta;
mod names;
mod read;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use candle_core::{DType, Tensor};

use super::model::SdModel;
use crate::error::{EngineError, Result};
pub(crate) use names::ldm_unet_path;
use names::{lookup, lora_family, Part};
pub use read::{metadata_summary, read, read_cached};

fn model_err(path: &Path) -> impl Fn(candle_core::Error) -> EngineError + '_ {
    super::model::candle(path)
}

/// The algorithm of a module.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Algo {
    /// Plain LoRA, LyCORIS LoCon included (`down`/`up`).
    Lora,
    /// LyCORIS LoHa (Hadamard product of two low-rank products).
    Loha,
    /// LyCORIS LoKr (Kronecker product of two factors).
    Lokr,
}

impl Algo {
    pub fn name(self) -> &'static str {
        match self {
            Algo::Lora => "LoRA",
            Algo::Loha => "LoHa",
            Algo::Lokr => "LoKr",
        }
    }
}

/// One LoKr factor: a full matrix, or `a · b` (with a Tucker core `t`: `einsum(t, a, b)`).
#[derive(Clone, Debug)]
pub enum Factor {
    /// `lokr_w1` [a, c] or `lokr_w2` [b, d(, kh, kw)].
    Full(Tensor),
    /// `lokr_wN_a` [n, r] and `lokr_wN_b` [r, m]; with `lokr_t2` [r, r, kh, kw], `a` is [r, b]
    /// and `b` is [r, d].
    Low {
        a: Tensor,
        b: Tensor,
        tucker: Option<Tensor>,
    },
}

/// The weights of one module, by algorithm.
#[derive(Clone, Debug)]
pub enum Adapter {
    /// `down` [rank, in(, kh, kw)], `up` [out, rank(, 1, 1)].
    Lora { down: Tensor, up: Tensor },
    /// `hada_w1_a` [out, r], `hada_w1_b` [r, in·kh·kw] (and w2 alike); with Tucker cores
    /// (`hada_t1`, `hada_t2` [r, r, kh, kw]) the `_a` factors are [r, out] and `_b` [r, in].
    Loha {
        w1a: Tensor,
        w1b: Tensor,
        w2a: Tensor,
        w2b: Tensor,
        tucker: Option<(Tensor, Tensor)>,
    },
    /// `kron(w1, w2)` reshaped to the layer.
    Lokr { w1: Factor, w2: Factor },
}

impl Adapter {
    pub fn algo(&self) -> Algo {
        match self {
            Adapter::Lora { .. } => Algo::Lora,
            Adapter::Loha { .. } => Algo::Loha,
            Adapter::Lokr { .. } => Algo::Lokr,
        }
    }
}

/// One module of a LoRA file: its weights, alpha and optional DoRA magnitude.
#[derive(Clone, Debug)]
pub struct LoraModule {
    pub adapter: Adapter,
    /// kohya's `alpha`; the scale is `alpha / rank` (1 when absent, as diffusers does).
    pub alpha: Option<f32>,
    /// DoRA magnitude: `dora_scale` ([out, 1(, 1, 1)] on the output axis, [1, in(, 1, 1)] on
    /// the input axis) or PEFT's `lora_magnitude_vector` ([out]).
    pub dora: Option<Tensor>,
    /// The magnitude came from PEFT's `lora_magnitude_vector` (always the output axis).
    pub peft_magnitude: bool,
}

/// A parsed LoRA file.
#[derive(Debug)]
pub struct LoraFile {
    pub path: PathBuf,
    /// Modules by their name in the file (`lora_unet_…`, `unet.…`, `text_encoder.…`).
    pub modules: BTreeMap<String, LoraModule>,
    /// Keys that are not part of a complete module this loader understands (incomplete
    /// pairs, a lone `dora_scale`, unknown algorithms…).
    pub unknown_keys: Vec<String>,
    /// The file's `__metadata__` (kohya's `ss_*` keys: base model, resolution, tags…).
    pub metadata: BTreeMap<String, String>,
}

/// One entry of a LoRA stack.
#[derive(Clone, Debug, PartialEq)]
pub struct LoraSpec {
    pub path: PathBuf,
    /// Strength on the UNet.
    pub unet: f64,
    /// Strength on the text encoder(s).
    pub text: f64,
}

/// What one LoRA did to the model.
#[derive(Clone, Debug, PartialEq)]
pub struct LoraReport {
    pub file: PathBuf,
    pub unet_modules: usize,
    pub text_modules: usize,
    /// Modules applied per algorithm (UNet and text encoders together).
    pub algorithms: BTreeMap<Algo, usize>,
    /// Applied modules that carry a DoRA magnitude.
    pub dora_modules: usize,
    /// Keys of the file that changed nothing (unknown modules, incomplete modules).
    pub unmatched: Vec<String>,
    /// A one-line summary of kohya's metadata (base model, resolution, top tags), if any.
    pub info: Option<String>,
}

impl LoraReport {
    /// A line for the CLI and the node status, e.g. `LoRA x: 24 UNet + 6 text-encoder modules
    /// applied (24 LoHa + 6 LoKr, 6 with DoRA), every key used`.
    pub fn summary(&self) -> String {
        let name = self
            .file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut s = format!(
            "LoRA {name}: {} UNet + {} text-encoder modules applied",
            self.unet_modules, self.text_modules
        );
        let only_lora = self.algorithms.keys().all(|a| *a == Algo::Lora);
        if !only_lora || self.dora_modules > 0 {
            let kinds: Vec<String> = self
                .algorithms
                .iter()
                .map(|(a, n)| format!("{n} {}", a.name()))
                .collect();
            s.push_str(&format!(" ({}", kinds.join(" + ")));
            if self.dora_modules > 0 {
                s.push_str(&format!(", {} with DoRA", self.dora_modules));
            }
            s.push(')');
        }
        if self.unmatched.is_empty() {
            s.push_str(", every key used");
        } else {
            s.push_str(&format!(
                "; {} keys matched nothing: {}",
                self.unmatched.len(),
                self.unmatched.join(", ")
            ));
        }
        if let Some(i) = &self.info {
            s.push_str(&format!(" ({i})"));
        }
        s
    }
}

/// Merges a stack of LoRAs into `model`'s weights; returns the new model and one report per
/// LoRA. Refuses a LoRA made for another architecture, or one of which nothing matched.
pub fn apply(model: &SdModel, stack: &[LoraSpec]) -> Result<(SdModel, Vec<LoraReport>)> {
    let table = lookup(model);
    let mut deltas: BTreeMap<(Part, String), Tensor> = BTreeMap::new();
    let mut reports = Vec::new();
    let sdxl = model.text_encoder_2.is_some();
    for spec in stack {
        let file = read_cached(&spec.path)?;
        let name = spec.path.display();
        match (lora_family(&file), sdxl) {
            (Some("SDXL"), false) => {
                return Err(EngineError::failed(format!(
                    "{name}: this is an SDXL LoRA, but the model is {} — pick a LoRA made for it",
                    model.family.name()
                )))
            }
            (Some(f @ "SD 1.x/2.x"), true) => {
                return Err(EngineError::failed(format!(
                    "{name}: this is an {f} LoRA, but the model is SDXL — pick a LoRA made for it"
                )))
            }
            _ => {}
        }
        let mut report = LoraReport {
            file: spec.path.clone(),
            unet_modules: 0,
            text_modules: 0,
            algorithms: BTreeMap::new(),
            dora_modules: 0,
            unmatched: file.unknown_keys.clone(),
            info: metadata_summary(&file.metadata),
        };
        for (module, m) in &file.modules {
            let Some((part, key)) = table.get(module) else {
                report.unmatched.push(module.clone());
                continue;
            };
            let base = match part {
                Part::Unet => model.weights.unet.get(key),
                Part::Text1 => model.weights.text_encoder.get(key),
                Part::Text2 => model
                    .weights
                    .text_encoder_2
                    .as_ref()
                    .and_then(|w| w.get(key)),
            }
            .ok_or_else(|| EngineError::failed(format!("{name}: {module}: no weight {key}")))?;
            let strength = if *part == Part::Unet {
                spec.unet
            } else {
                spec.text
            };
            let site = delta::Site {
                file: &spec.path,
                module,
                weight: key,
            };
            let slot = (*part, key.clone());
            let sum = delta::accumulate(m, strength, base, deltas.remove(&slot), &site)?;
            deltas.insert(slot, sum);
            *report.algorithms.entry(m.adapter.algo()).or_default() += 1;
            if m.dora.is_some() {
                report.dora_modules += 1;
            }
            if *part == Part::Unet {
                report.unet_modules += 1;
            } else {
                report.text_modules += 1;
            }
        }
        if report.unet_modules + report.text_modules == 0 {
            return Err(EngineError::failed(format!(
                "{name}: none of its {} modules matches this {} model (e.g. {}) — a LoRA for \
                 another architecture?",
                file.modules.len(),
                model.family.name(),
                file.modules
                    .keys()
                    .next()
                    .map(String::as_str)
                    .unwrap_or("?")
            )));
        }
        reports.push(report);
    }
    let mut weights = model.weights.clone();
    let mut maps: HashMap<Part, HashMap<String, Tensor>> = HashMap::new();
    for ((part, key), d) in deltas {
        let source = match part {
            Part::Unet => &weights.unet,
            Part::Text1 => &weights.text_encoder,
            Part::Text2 => weights
                .text_encoder_2
                .as_ref()
                .ok_or_else(|| EngineError::failed("no second text encoder"))?,
        };
        let map = maps.entry(part).or_insert_with(|| (**source).clone());
        let base = map
            .get(&key)
            .ok_or_else(|| EngineError::failed(format!("no weight {key}")))?;
        let d = d
            .to_device(base.device())
            .map_err(|e| EngineError::failed(e.to_string()))?;
        let merged = if base.dtype() == DType::F32 {
            base + d
        } else {
            base.to_dtype(DType::F32)
                .and_then(|b| b + d)
                .and_then(|m| m.to_dtype(base.dtype()))
        }
        .map_err(|e| EngineError::failed(format!("{key}: {e}")))?;
        map.insert(key, merged);
    }
    for (part, map) in maps {
        let map = Arc::new(map);
        match part {
            Part::Unet => weights.unet = map,
            Part::Text1 => weights.text_encoder = map,
            Part::Text2 => weights.text_encoder_2 = Some(map),
        }
    }
    let names: Vec<String> = stack
        .iter()
        .map(|s| {
            format!(
                "{}:{}",
                s.path
                    .file_stem()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default(),
                s.unet
            )
        })
        .collect();
    let source = format!("{} + LoRA {}", model.source, names.join(", "));
    Ok((model.with_weights(weights, source)?, reports))
}

/// [`apply`] through a small cache keyed by the base model and the stack (paths, file stamps,
/// strengths), so re-running with the same stack does nothing and a new strength re-merges
/// from the cached base weights.
pub fn apply_cached(
    model: &Arc<SdModel>,
    stack: &[LoraSpec],
) -> Result<(Arc<SdModel>, Vec<LoraReport>)> {
    if stack.is_empty() {
        return Ok((model.clone(), Vec::new()));
    }
    type Entry = (usize, String, Arc<SdModel>, Vec<LoraReport>);
    static CACHE: OnceLock<Mutex<Vec<Entry>>> = OnceLock::new();
    let stamp = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| (m.len(), crate::models::manager::mtime_ns(&m)))
            .ok()
    };
    let key = format!(
        "{:?}",
        stack
            .iter()
            .map(|s| (&s.path, stamp(&s.path), s.unet.to_bits(), s.text.to_bits()))
            .collect::<Vec<_>>()
    );
    let base = Arc::as_ptr(model) as usize;
    let cache = CACHE.get_or_init(|| Mutex::new(Vec::new()));
    if let Ok(c) = cache.lock() {
        if let Some((_, _, m, r)) = c.iter().find(|(b, k, _, _)| *b == base && *k == key) {
            return Ok((m.clone(), r.clone()));
        }
    }
    let (merged, reports) = apply(model, stack)?;
    let merged = Arc::new(merged);
    if let Ok(mut c) = cache.lock() {
        c.push((base, key, merged.clone(), reports.clone()));
        while c.len() > 2 {
            c.remove(0);
        }
    }
    Ok((merged, reports))
}
