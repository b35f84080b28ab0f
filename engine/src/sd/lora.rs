//! LoRA: reading kohya (`lora_unet_*`, `lora_te_*`, SDXL's `lora_te1_*`/`lora_te2_*` with LDM
//! UNet names), diffusers/PEFT (`lora_A`/`lora_B`, `unet.`/`text_encoder.` prefixes, and the
//! older `lora.down`/`lora.up`) and LyCORIS LoCon files (convolutions, 3×3 included), and merging
//! a stack of them into a model: `W' = W + Σ weight · (alpha / rank) · up · down`.
//!
//! - [`LoraFile`]: a parsed file (modules, alphas, kohya's `ss_*` metadata); read once and cached.
//! - [`LoraSpec`]: one LoRA of a stack with its UNet and text-encoder strengths.
//! - [`apply`]: merges a stack into a model's weights and returns a [`LoraReport`] per file:
//!   modules applied, and every key that matched nothing. A LoRA made for another architecture
//!   is refused.
//!
//! Merging reuses every base tensor a LoRA does not touch ([`super::model::Weights`] are shared
//! maps), so a new strength costs the deltas of the touched modules and a module rebuild, never
//! a read of the checkpoint.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use candle_core::{DType, Device, Tensor};

use super::config::UNetConfig;
use super::model::{SdModel, WeightMap};
use crate::error::{EngineError, Result};

/// One LoRA module: the low-rank factors and its alpha.
#[derive(Clone, Debug)]
pub struct LoraModule {
    /// `[rank, in]` or `[rank, in, kh, kw]`.
    pub down: Tensor,
    /// `[out, rank]` or `[out, rank, 1, 1]`.
    pub up: Tensor,
    /// kohya's `alpha`; the scale is `alpha / rank` (1 when absent, as diffusers does).
    pub alpha: Option<f32>,
}

/// A parsed LoRA file.
#[derive(Debug)]
pub struct LoraFile {
    pub path: PathBuf,
    /// Modules by their name in the file (`lora_unet_…`, `unet.…`, `text_encoder.…`).
    pub modules: BTreeMap<String, LoraModule>,
    /// Keys that are not part of a LoRA module this loader understands (LoHa, LoKr, DoRA
    /// scales, incomplete pairs…).
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
    /// Keys of the file that changed nothing (unknown modules, unsupported LoRA types).
    pub unmatched: Vec<String>,
    /// A one-line summary of kohya's metadata (base model, resolution, top tags), if any.
    pub info: Option<String>,
}

impl LoraReport {
    /// A line for the CLI and the node status.
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

fn c(path: &Path) -> impl Fn(candle_core::Error) -> EngineError + '_ {
    super::model::candle(path)
}

/// Splits a key into (module, part) for the layouts we read.
fn split_key(key: &str) -> Option<(&str, &'static str)> {
    const PARTS: &[(&str, &str)] = &[
        (".lora_down.weight", "down"),
        (".lora_up.weight", "up"),
        (".lora_A.weight", "down"),
        (".lora_B.weight", "up"),
        (".lora.down.weight", "down"),
        (".lora.up.weight", "up"),
        (".alpha", "alpha"),
    ];
    PARTS
        .iter()
        .find_map(|(suffix, part)| key.strip_suffix(suffix).map(|m| (m, *part)))
}

/// Reads a LoRA `.safetensors` file (pickle files are refused).
pub fn read(path: &Path) -> Result<LoraFile> {
    crate::models::safetensors_check::refuse_pickle_extension(path)?;
    // Read once; the bytes the validator checked are the bytes loaded.
    let bytes = std::fs::read(path).map_err(|e| EngineError::io(path, e))?;
    let header = crate::models::safetensors_check::check_bytes(&bytes)
        .map_err(|e| EngineError::failed(format!("{}: {e}", path.display())))?;
    let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).map_err(c(path))?;
    drop(bytes);
    /// down, up, alpha of one module as they are found.
    type Pieces = (Option<Tensor>, Option<Tensor>, Option<f32>);
    let mut parts: BTreeMap<String, Pieces> = BTreeMap::new();
    let mut unknown = Vec::new();
    for (key, t) in tensors {
        match split_key(&key) {
            Some((module, part)) => {
                let e = parts.entry(module.to_string()).or_default();
                match part {
                    "down" => e.0 = Some(t),
                    "up" => e.1 = Some(t),
                    _ => {
                        let a = t
                            .to_dtype(DType::F32)
                            .and_then(|t| t.flatten_all())
                            .and_then(|t| t.to_vec1::<f32>())
                            .map_err(c(path))?;
                        e.2 = a.first().copied();
                    }
                }
            }
            None => unknown.push(key),
        }
    }
    let mut modules = BTreeMap::new();
    for (name, (down, up, alpha)) in parts {
        match (down, up) {
            (Some(down), Some(up)) => {
                modules.insert(name, LoraModule { down, up, alpha });
            }
            (d, u) => {
                // An incomplete pair: report its keys.
                if d.is_some() {
                    unknown.push(format!("{name} (no up weight)"));
                }
                if u.is_some() {
                    unknown.push(format!("{name} (no down weight)"));
                }
                if d.is_none() && u.is_none() {
                    unknown.push(format!("{name}.alpha"));
                }
            }
        }
    }
    unknown.sort();
    if modules.is_empty() {
        return Err(EngineError::failed(format!(
            "{}: no LoRA modules found (expected kohya lora_down/lora_up or PEFT lora_A/lora_B \
             keys){}",
            path.display(),
            if unknown.is_empty() {
                String::new()
            } else {
                format!("; keys such as {}", unknown[0])
            }
        )));
    }
    Ok(LoraFile {
        path: path.to_path_buf(),
        modules,
        unknown_keys: unknown,
        metadata: header.metadata,
    })
}

/// [`read`] through a cache keyed by path, size and modification time.
pub fn read_cached(path: &Path) -> Result<Arc<LoraFile>> {
    type Cache = Mutex<Vec<((PathBuf, u64, u128), Arc<LoraFile>)>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let meta = std::fs::metadata(path).map_err(|e| EngineError::io(path, e))?;
    let mtime = crate::models::manager::mtime_ns(&meta);
    let key = (path.to_path_buf(), meta.len(), mtime);
    let cache = CACHE.get_or_init(|| Mutex::new(Vec::new()));
    if let Ok(c) = cache.lock() {
        if let Some((_, f)) = c.iter().find(|(k, _)| *k == key) {
            return Ok(f.clone());
        }
    }
    let file = Arc::new(read(path)?);
    if let Ok(mut c) = cache.lock() {
        c.push((key, file.clone()));
        if c.len() > 16 {
            c.remove(0);
        }
    }
    Ok(file)
}

/// kohya's metadata in one line: base model, resolution, network dim/alpha and the most
/// frequent training tags.
pub fn metadata_summary(meta: &BTreeMap<String, String>) -> Option<String> {
    let mut parts = Vec::new();
    for (key, label) in [
        ("ss_base_model_version", "base"),
        ("ss_sd_model_name", "trained on"),
        ("ss_resolution", "resolution"),
        ("ss_network_dim", "dim"),
        ("ss_network_alpha", "alpha"),
        ("ss_output_name", "name"),
    ] {
        if let Some(v) = meta.get(key).filter(|v| !v.is_empty()) {
            parts.push(format!("{label} {v}"));
        }
    }
    if let Some(tags) = meta
        .get("ss_tag_frequency")
        .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
    {
        let mut counts: BTreeMap<String, i64> = BTreeMap::new();
        if let Some(dirs) = tags.as_object() {
            for d in dirs.values() {
                if let Some(m) = d.as_object() {
                    for (tag, n) in m {
                        *counts.entry(tag.trim().to_string()).or_default() +=
                            n.as_i64().unwrap_or(0);
                    }
                }
            }
        }
        let mut v: Vec<_> = counts.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        if !v.is_empty() {
            let top: Vec<String> = v.iter().take(5).map(|(t, _)| t.clone()).collect();
            parts.push(format!("tags {}", top.join(", ")));
        }
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// Which model component a LoRA module targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Part {
    Unet,
    Text1,
    Text2,
}

/// The LDM (original Stable Diffusion) path of a diffusers UNet module, for kohya's SDXL names:
/// `down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q` →
/// `input_blocks.4.1.transformer_blocks.0.attn1.to_q`.
pub(crate) fn ldm_unet_path(m: &str, cfg: &UNetConfig) -> Option<String> {
    let layers = cfg.layers_per_block_list().ok()?;
    let n = layers.len();
    let seg: Vec<&str> = m.split('.').collect();
    let resnet_inner = |rest: &[&str]| -> Option<String> {
        let first = *rest.first()?;
        let tail = rest[1..].join(".");
        let mapped = match first {
            "norm1" => "in_layers.0",
            "conv1" => "in_layers.2",
            "time_emb_proj" => "emb_layers.1",
            "norm2" => "out_layers.0",
            "conv2" => "out_layers.3",
            "conv_shortcut" => "skip_connection",
            _ => return None,
        };
        Some(if tail.is_empty() {
            mapped.to_string()
        } else {
            format!("{mapped}.{tail}")
        })
    };
    let join = |head: String, tail: &[&str]| {
        if tail.is_empty() {
            head
        } else {
            format!("{head}.{}", tail.join("."))
        }
    };
    match seg.as_slice() {
        ["conv_in", ..] => Some(join("input_blocks.0.0".into(), &seg[1..])),
        ["time_embedding", "linear_1", ..] => Some(join("time_embed.0".into(), &seg[2..])),
        ["time_embedding", "linear_2", ..] => Some(join("time_embed.2".into(), &seg[2..])),
        ["add_embedding", "linear_1", ..] => Some(join("label_emb.0.0".into(), &seg[2..])),
        ["add_embedding", "linear_2", ..] => Some(join("label_emb.0.2".into(), &seg[2..])),
        ["conv_norm_out", ..] => Some(join("out.0".into(), &seg[1..])),
        ["conv_out", ..] => Some(join("out.2".into(), &seg[1..])),
        ["down_blocks", b, kind, j, rest @ ..] => {
            let (b, j): (usize, usize) = (b.parse().ok()?, j.parse().ok()?);
            let base: usize = 1 + layers[..b].iter().map(|l| l + 1).sum::<usize>();
            match *kind {
                "resnets" => Some(format!(
                    "input_blocks.{}.0.{}",
                    base + j,
                    resnet_inner(rest)?
                )),
                "attentions" => Some(join(format!("input_blocks.{}.1", base + j), rest)),
                "downsamplers" => {
                    // downsamplers.0.conv → input_blocks.K.0.op
                    let tail = rest.get(1..)?;
                    Some(join(
                        format!("input_blocks.{}.0.op", base + layers[b]),
                        tail,
                    ))
                }
                _ => None,
            }
        }
        ["mid_block", kind, j, rest @ ..] => {
            let j: usize = j.parse().ok()?;
            match *kind {
                "resnets" => Some(format!("middle_block.{}.{}", j * 2, resnet_inner(rest)?)),
                "attentions" => Some(join("middle_block.1".into(), rest)),
                _ => None,
            }
        }
        ["up_blocks", b, kind, j, rest @ ..] => {
            let (b, j): (usize, usize) = (b.parse().ok()?, j.parse().ok()?);
            // Up block b mirrors down block n-1-b and has one more layer.
            let up_layers: Vec<usize> = (0..n).map(|i| layers[n - 1 - i] + 1).collect();
            let base: usize = up_layers[..b].iter().sum();
            match *kind {
                "resnets" => Some(format!(
                    "output_blocks.{}.0.{}",
                    base + j,
                    resnet_inner(rest)?
                )),
                "attentions" => Some(join(format!("output_blocks.{}.1", base + j), rest)),
                "upsamplers" => {
                    let has_attn = cfg
                        .up_block_types
                        .get(b)
                        .is_some_and(|t| t.contains("CrossAttn"));
                    // upsamplers.0.conv → output_blocks.K.{1|2}.conv
                    Some(join(
                        format!(
                            "output_blocks.{}.{}",
                            base + up_layers[b] - 1,
                            if has_attn { 2 } else { 1 }
                        ),
                        rest,
                    ))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// Every name a LoRA file may use for each weight of the model: module name → (part, weight
/// key in the model's map).
fn lookup(model: &SdModel) -> HashMap<String, (Part, String)> {
    let mut out = HashMap::new();
    let weight_modules = |map: &WeightMap| -> Vec<(String, String)> {
        map.iter()
            .filter(|(k, t)| k.ends_with(".weight") && t.rank() >= 2)
            .map(|(k, _)| (k.trim_end_matches(".weight").to_string(), k.clone()))
            .collect()
    };
    for (m, key) in weight_modules(&model.weights.unet) {
        let kohya = |p: &str| format!("lora_unet_{}", p.replace('.', "_"));
        out.insert(kohya(&m), (Part::Unet, key.clone()));
        if let Some(ldm) = ldm_unet_path(&m, &model.unet_config) {
            out.insert(kohya(&ldm), (Part::Unet, key.clone()));
        }
        out.insert(format!("unet.{m}"), (Part::Unet, key.clone()));
    }
    let text =
        |map: &WeightMap, part: Part, kohya: &[&str], peft: &str, out: &mut HashMap<_, _>| {
            for (m, key) in weight_modules(map) {
                let full = if m.starts_with("text_model.") || m == "text_projection" {
                    m.clone()
                } else {
                    format!("text_model.{m}")
                };
                for k in kohya {
                    out.insert(
                        format!("{k}_{}", full.replace('.', "_")),
                        (part, key.clone()),
                    );
                }
                out.insert(format!("{peft}.{full}"), (part, key.clone()));
            }
        };
    match &model.weights.text_encoder_2 {
        Some(te2) => {
            text(
                &model.weights.text_encoder,
                Part::Text1,
                &["lora_te1"],
                "text_encoder",
                &mut out,
            );
            text(te2, Part::Text2, &["lora_te2"], "text_encoder_2", &mut out);
        }
        None => text(
            &model.weights.text_encoder,
            Part::Text1,
            &["lora_te", "lora_te1"],
            "text_encoder",
            &mut out,
        ),
    }
    out
}

/// `strength · alpha/rank · up · down` reshaped to the target weight's shape, in f32 (the scale
/// is applied to the small `up` factor, not to the full-size product).
fn delta(
    m: &LoraModule,
    strength: f64,
    target: &Tensor,
    name: &str,
    file: &Path,
) -> Result<Tensor> {
    let f = |e: candle_core::Error| EngineError::failed(format!("{}: {name}: {e}", file.display()));
    let rank = m.down.dim(0).map_err(f)?;
    let down = m
        .down
        .to_dtype(DType::F32)
        .and_then(|d| d.reshape((rank, ())))
        .map_err(f)?;
    let out_dim = m.up.dim(0).map_err(f)?;
    let up =
        m.up.to_dtype(DType::F32)
            .and_then(|u| u.reshape((out_dim, ())))
            .map_err(f)?;
    if up.dim(1).map_err(f)? != rank {
        return Err(EngineError::failed(format!(
            "{}: {name}: up {:?} and down {:?} do not share a rank",
            file.display(),
            m.up.dims(),
            m.down.dims()
        )));
    }
    let scale = m.alpha.map(|a| f64::from(a) / rank as f64).unwrap_or(1.0) * strength;
    let d = (up * scale).and_then(|u| u.matmul(&down)).map_err(f)?;
    if d.elem_count() != target.elem_count() {
        return Err(EngineError::failed(format!(
            "{}: {name}: the LoRA changes a {:?} weight but the model's is {:?} — a LoRA made \
             for another architecture?",
            file.display(),
            [out_dim, d.dim(1).map_err(f)?],
            target.dims()
        )));
    }
    d.reshape(target.shape()).map_err(f)
}

/// The family a LoRA was made for, from its key names; `None` when they do not say.
fn lora_family(file: &LoraFile) -> Option<&'static str> {
    let has = |p: &str| file.modules.keys().any(|k| k.starts_with(p));
    if has("lora_te1_") || has("lora_te2_") || has("text_encoder_2.") {
        Some("SDXL")
    } else if has("lora_te_") {
        Some("SD 1.x/2.x")
    } else {
        None
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
            let d = delta(m, strength, base, module, &spec.path)?;
            let slot = (*part, key.clone());
            let sum = match deltas.remove(&slot) {
                Some(prev) => (prev + d).map_err(|e| EngineError::failed(e.to_string()))?,
                None => d,
            };
            deltas.insert(slot, sum);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sdxl_like() -> UNetConfig {
        UNetConfig::from_json_str(
            r#"{"block_out_channels": [320, 640, 1280], "layers_per_block": 2,
                "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
                "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
                "cross_attention_dim": 2048, "attention_head_dim": [5, 10, 20],
                "transformer_layers_per_block": [1, 2, 10], "use_linear_projection": true,
                "addition_embed_type": "text_time", "addition_time_embed_dim": 256,
                "projection_class_embeddings_input_dim": 2816}"#,
        )
        .unwrap()
    }

    #[test]
    fn ldm_names_of_sdxl_modules() {
        let cfg = sdxl_like();
        let cases = [
            (
                "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q",
                "input_blocks.4.1.transformer_blocks.0.attn1.to_q",
            ),
            (
                "down_blocks.2.attentions.1.proj_in",
                "input_blocks.8.1.proj_in",
            ),
            (
                "down_blocks.0.resnets.1.conv2",
                "input_blocks.2.0.out_layers.3",
            ),
            ("down_blocks.1.downsamplers.0.conv", "input_blocks.6.0.op"),
            ("mid_block.attentions.0.proj_out", "middle_block.1.proj_out"),
            ("mid_block.resnets.1.conv1", "middle_block.2.in_layers.2"),
            (
                "up_blocks.0.attentions.2.transformer_blocks.9.ff.net.2",
                "output_blocks.2.1.transformer_blocks.9.ff.net.2",
            ),
            ("up_blocks.0.upsamplers.0.conv", "output_blocks.2.2.conv"),
            (
                "up_blocks.2.resnets.0.conv_shortcut",
                "output_blocks.6.0.skip_connection",
            ),
            ("time_embedding.linear_2", "time_embed.2"),
            ("add_embedding.linear_1", "label_emb.0.0"),
        ];
        for (d, l) in cases {
            assert_eq!(ldm_unet_path(d, &cfg).as_deref(), Some(l), "{d}");
        }
    }

    #[test]
    fn key_layouts_split() {
        assert_eq!(
            split_key("lora_unet_mid_block_attentions_0_proj_in.lora_down.weight"),
            Some(("lora_unet_mid_block_attentions_0_proj_in", "down"))
        );
        assert_eq!(
            split_key("unet.mid_block.attentions.0.proj_in.lora_B.weight"),
            Some(("unet.mid_block.attentions.0.proj_in", "up"))
        );
        assert_eq!(split_key("lora_te_x.alpha"), Some(("lora_te_x", "alpha")));
        assert_eq!(split_key("lora_unet_x.hada_w1_a"), None);
    }

    #[test]
    fn metadata_is_summarised() {
        let mut m = BTreeMap::new();
        m.insert("ss_base_model_version".into(), "sd_v1".into());
        m.insert("ss_resolution".into(), "(512, 512)".into());
        m.insert(
            "ss_tag_frequency".into(),
            r#"{"10_scratch": {"scratch": 12, "metal": 30, "dent": 2}}"#.into(),
        );
        let s = metadata_summary(&m).unwrap();
        assert!(
            s.contains("base sd_v1") && s.contains("resolution (512, 512)"),
            "{s}"
        );
        assert!(s.contains("tags metal, scratch, dent"), "{s}");
        assert_eq!(metadata_summary(&BTreeMap::new()), None);
    }
}
