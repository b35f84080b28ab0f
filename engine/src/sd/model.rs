//! Loading Stable Diffusion checkpoints: [`SdModel`] from a diffusers folder or a single-file
//! LDM/A1111 `.safetensors`, with an optional VAE override, kept in a process-wide
//! [`cache`](load_cached) so a second run does not reload.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use serde_json::Value as Json;

use super::clip::text_model::{ClipTextConfig, ClipTextModel};
use super::clip::tokenizer::ClipTokenizer;
use super::config::{UNetConfig, VaeConfig};
use super::ldm;
use super::load_cache::{stamp, LoadCache, LoadKey};
use super::unet::UNet2DConditionModel;
use super::vae::AutoencoderKL;
use crate::error::{EngineError, Result};

/// Which family a checkpoint belongs to; it decides text conditioning and defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// SD 1.x: one CLIP ViT-L text encoder, last layer.
    Sd1,
    /// SD 2.x: OpenCLIP ViT-H, penultimate layer (the checkpoint's own text config says so).
    Sd2,
    /// SDXL: two text encoders, pooled embedding and size conditioning.
    Sdxl,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::Sd1 => "sd1",
            Family::Sd2 => "sd2",
            Family::Sdxl => "sdxl",
        }
    }
}

/// How to load a checkpoint.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// A separate VAE file (`.safetensors`, diffusers or LDM names) replacing the checkpoint's.
    pub vae: Option<PathBuf>,
    /// A diffusers folder whose `config.json` files describe a single-file checkpoint (like
    /// diffusers' `from_single_file(config=...)`); needed only when the shapes do not tell.
    pub config_dir: Option<PathBuf>,
    /// `None` = read the scheduler config; else force `epsilon` / `v_prediction`.
    pub prediction: Option<String>,
    pub dtype: DType,
    pub device: Device,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            vae: None,
            config_dir: None,
            prediction: None,
            dtype: DType::F32,
            device: Device::Cpu,
        }
    }
}

/// One text encoder with its tokenizer.
pub struct TextEncoder {
    pub model: ClipTextModel,
    pub config: ClipTextConfig,
    pub tokenizer: ClipTokenizer,
}

/// A loaded checkpoint: UNet, VAE, text encoder(s) and the scheduler config.
pub struct SdModel {
    pub family: Family,
    pub unet: UNet2DConditionModel,
    pub unet_config: UNetConfig,
    pub vae: AutoencoderKL,
    pub vae_config: VaeConfig,
    /// The VAE's dtype (f32 where the config says `force_upcast` and the model runs in f16).
    pub vae_dtype: DType,
    pub text_encoder: TextEncoder,
    /// SDXL's second (OpenCLIP, projected) text encoder.
    pub text_encoder_2: Option<TextEncoder>,
    /// diffusers' `scheduler_config.json` (with `prediction_type` overridden if asked).
    pub scheduler_config: Json,
    pub dtype: DType,
    pub device: Device,
    /// What was loaded, for messages.
    pub source: String,
    /// The weights the modules were built from (shared, for LoRA merging).
    pub weights: Weights,
    pub options: LoadOptions,
}

impl SdModel {
    /// The same model built from other weights (e.g. with LoRA deltas merged); the configs,
    /// scheduler and source stay.
    pub fn with_weights(&self, weights: Weights, source: String) -> Result<SdModel> {
        let parts = Parts {
            family: self.family,
            unet_config: self.unet_config.clone(),
            vae_config: self.vae_config.clone(),
            te_config: self.text_encoder.config.clone(),
            te2_config: self.text_encoder_2.as_ref().map(|t| t.config.clone()),
            scheduler_config: self.scheduler_config.clone(),
        };
        assemble(parts, weights, &self.options, source)
    }

    /// A 9-channel inpainting UNet.
    pub fn is_inpaint(&self) -> bool {
        self.unet_config.in_channels == 9
    }

    /// The VAE's down-scaling factor: `2^(blocks-1)`.
    pub fn vae_scale(&self) -> usize {
        1 << self.vae_config.block_out_channels.len().saturating_sub(1)
    }

    /// The native image size (`sample_size × vae_scale`), diffusers' default width/height.
    pub fn native_size(&self) -> usize {
        let sample = match &self.unet_config.sample_size {
            Some(Json::Number(n)) => n.as_u64(),
            Some(Json::Array(a)) => a.first().and_then(|v| v.as_u64()),
            _ => None,
        };
        sample.unwrap_or(64) as usize * self.vae_scale()
    }
}

/// A candle error as an engine error naming `path` once (messages from the single-file reader
/// already start with it).
pub(crate) fn candle(path: &Path) -> impl Fn(candle_core::Error) -> EngineError + '_ {
    move |e| {
        // Without the backtrace candle attaches when RUST_BACKTRACE is set.
        let e = match e {
            candle_core::Error::WithBacktrace { inner, .. } => *inner,
            e => e,
        };
        let (p, m) = (path.display().to_string(), e.to_string());
        if m.starts_with(&p) {
            EngineError::failed(m)
        } else {
            EngineError::failed(format!("{p}: {m}"))
        }
    }
}

fn read_json(path: &Path) -> Result<Json> {
    let bytes = std::fs::read(path).map_err(|e| EngineError::io(path, e))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| EngineError::failed(format!("{}: not valid JSON: {e}", path.display())))
}

fn parse_config<T: serde::de::DeserializeOwned>(json: &Json, what: &Path) -> Result<T> {
    serde_json::from_value(json.clone())
        .map_err(|e| EngineError::failed(format!("{}: {e}", what.display())))
}

fn unet_config(json: &Json, what: &Path) -> Result<UNetConfig> {
    UNetConfig::from_json_str(&json.to_string()).map_err(candle(what))
}

fn vae_config(json: &Json, what: &Path) -> Result<VaeConfig> {
    VaeConfig::from_json_str(&json.to_string()).map_err(candle(what))
}

/// The weight files of a diffusers component folder (`unet/`, `vae/`, `text_encoder/`…):
/// `*.safetensors` (sharded ones through their index), preferring full precision.
fn component_weights(dir: &Path, stem: &str) -> Result<Vec<PathBuf>> {
    let index = dir.join(format!("{stem}.safetensors.index.json"));
    if index.is_file() {
        let json = read_json(&index)?;
        let mut files: Vec<String> = json
            .get("weight_map")
            .and_then(|m| m.as_object())
            .map(|m| {
                m.values()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files.dedup();
        return Ok(files.into_iter().map(|f| dir.join(f)).collect());
    }
    for name in [
        format!("{stem}.safetensors"),
        format!("{stem}.fp16.safetensors"),
    ] {
        let p = dir.join(&name);
        if p.is_file() {
            return Ok(vec![p]);
        }
    }
    for name in [format!("{stem}.bin"), format!("{stem}.fp16.bin")] {
        let p = dir.join(&name);
        if p.is_file() {
            crate::models::safetensors_check::refuse_pickle_extension(&p)?;
        }
    }
    Err(EngineError::failed(format!(
        "{}: no {stem}.safetensors in this diffusers folder",
        dir.display()
    )))
}

/// One component's weights in memory, by diffusers name. Shared: a model with LoRAs applied
/// reuses every tensor it does not change.
pub type WeightMap = Arc<HashMap<String, Tensor>>;

/// The weights of every component, kept so that LoRAs can be merged without touching the disk.
#[derive(Clone)]
pub struct Weights {
    pub unet: WeightMap,
    pub vae: WeightMap,
    pub text_encoder: WeightMap,
    pub text_encoder_2: Option<WeightMap>,
}

/// Reads every tensor of safetensors `files` in `dtype`.
fn read_files(files: &[PathBuf], dtype: DType, device: &Device) -> Result<WeightMap> {
    let mut map = HashMap::new();
    for f in files {
        let (st, _) = crate::models::safetensors_check::open_mmap(f)?;
        for (name, _) in st.tensors() {
            let t = st
                .load(&name, device)
                .and_then(|t| t.to_dtype(dtype))
                .map_err(|e| EngineError::failed(format!("{}: tensor {name}: {e}", f.display())))?;
            map.insert(name, t);
        }
    }
    Ok(Arc::new(map))
}

/// Reads every tensor a single-file component serves, by diffusers name.
fn read_component(
    file: &ldm::SingleFile,
    c: ldm::Component,
    dtype: DType,
    device: &Device,
) -> Result<WeightMap> {
    let path = file.path();
    let backend = file.backend(c).map_err(candle(path))?;
    let mut map = HashMap::new();
    for name in file.tensor_map(c).map_err(candle(path))?.keys() {
        map.insert(
            name.clone(),
            backend.load(name, dtype, device).map_err(candle(path))?,
        );
    }
    Ok(Arc::new(map))
}

fn vb_of(map: &WeightMap, dtype: DType, device: &Device) -> VarBuilder<'static> {
    VarBuilder::from_tensors((**map).clone(), dtype, device)
}

fn family_of(unet: &UNetConfig, has_te2: bool, te1: &ClipTextConfig) -> Family {
    if has_te2 || unet.addition_embed_type.as_deref() == Some("text_time") {
        Family::Sdxl
    } else if te1.hidden_act == "gelu" || unet.use_linear_projection {
        Family::Sd2
    } else {
        Family::Sd1
    }
}

/// The scheduler config diffusers ships with each family, for single-file checkpoints.
fn default_scheduler_config(family: Family) -> Json {
    let common = serde_json::json!({
        "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
        "num_train_timesteps": 1000, "set_alpha_to_one": false, "skip_prk_steps": true,
        "steps_offset": 1, "trained_betas": null, "clip_sample": false
    });
    let mut cfg = common;
    let extra = match family {
        Family::Sd1 => serde_json::json!({"_class_name": "PNDMScheduler"}),
        Family::Sd2 => serde_json::json!({"_class_name": "DDIMScheduler",
            "prediction_type": "epsilon"}),
        Family::Sdxl => serde_json::json!({"_class_name": "EulerDiscreteScheduler",
            "interpolation_type": "linear", "prediction_type": "epsilon",
            "sample_max_value": 1.0, "timestep_spacing": "leading",
            "use_karras_sigmas": false}),
    };
    if let (Some(c), Some(e)) = (cfg.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            c.insert(k.clone(), v.clone());
        }
    }
    cfg
}

fn pad_id(cfg: &ClipTextConfig, second: bool) -> u32 {
    // SD1's tokenizer pads with <|endoftext|>; OpenCLIP's (SD2, SDXL's second) with "!" (0).
    if second || cfg.hidden_act == "gelu" {
        0
    } else {
        49407
    }
}

fn build_text_encoder(
    vb: VarBuilder,
    config: ClipTextConfig,
    projection: bool,
    second: bool,
    what: &Path,
) -> Result<TextEncoder> {
    let model = ClipTextModel::new(vb, &config, projection).map_err(candle(what))?;
    let tokenizer = ClipTokenizer::new(pad_id(&config, second));
    Ok(TextEncoder {
        model,
        config,
        tokenizer,
    })
}

fn vae_dtype(cfg: &VaeConfig, dtype: DType) -> DType {
    // SDXL's VAE overflows in f16: diffusers upcasts it (force_upcast); bf16 has the range.
    if dtype == DType::F16 && cfg.force_upcast {
        DType::F32
    } else {
        dtype
    }
}

/// The weights of a separate VAE file (diffusers names, or LDM names with or without the
/// `first_stage_model.` prefix), checked by building the VAE from them.
fn load_vae_override(path: &Path, base: &VaeConfig, opts: &LoadOptions) -> Result<WeightMap> {
    crate::models::safetensors_check::refuse_pickle_extension(path)?;
    let dtype = vae_dtype(base, opts.dtype);
    let header = crate::models::manager::read_header(path)?;
    let ldm_names = header
        .tensors
        .keys()
        .any(|k| k.starts_with("encoder.down.") || k.starts_with("first_stage_model."));
    if !ldm_names {
        return read_files(&[path.to_path_buf()], dtype, &opts.device);
    }
    let map = ldm::vae_file_tensors(path, dtype, &opts.device).map_err(candle(path))?;
    Ok(Arc::new(map))
}

/// Loads a checkpoint (a diffusers folder or a single `.safetensors` file).
pub fn load(path: &Path, opts: &LoadOptions) -> Result<SdModel> {
    crate::models::safetensors_check::refuse_pickle_extension(path)?;
    if !path.exists() {
        return Err(EngineError::failed(format!(
            "{}: no such checkpoint",
            path.display()
        )));
    }
    let mut model = if path.is_dir() {
        load_folder(path, opts)?
    } else {
        load_single_file(path, opts)?
    };
    if let Some(p) = &opts.prediction {
        if let Some(c) = model.scheduler_config.as_object_mut() {
            c.insert("prediction_type".into(), Json::String(p.clone()));
        }
    }
    if let Some(vae) = &opts.vae {
        let mut weights = model.weights.clone();
        weights.vae = load_vae_override(vae, &model.vae_config, opts)?;
        let source = format!("{} + VAE {}", model.source, vae.display());
        model = model.with_weights(weights, source)?;
    }
    Ok(model)
}

fn load_folder(dir: &Path, opts: &LoadOptions) -> Result<SdModel> {
    let sub = |name: &str| dir.join(name);
    let unet_json_path = sub("unet/config.json");
    let unet_config = unet_config(&read_json(&unet_json_path)?, &unet_json_path)?;
    let vae_json_path = sub("vae/config.json");
    let vae_config = vae_config(&read_json(&vae_json_path)?, &vae_json_path)?;
    let te_json_path = sub("text_encoder/config.json");
    let te_config: ClipTextConfig = parse_config(&read_json(&te_json_path)?, &te_json_path)?;
    let te2_json_path = sub("text_encoder_2/config.json");
    let te2_config: Option<ClipTextConfig> = if te2_json_path.is_file() {
        Some(parse_config(&read_json(&te2_json_path)?, &te2_json_path)?)
    } else {
        None
    };
    let sched_path = sub("scheduler/scheduler_config.json");
    let family = family_of(&unet_config, te2_config.is_some(), &te_config);
    let scheduler_config = if sched_path.is_file() {
        read_json(&sched_path)?
    } else {
        default_scheduler_config(family)
    };
    let (dtype, device) = (opts.dtype, &opts.device);
    let unet_files = component_weights(&sub("unet"), "diffusion_pytorch_model")?;
    let vae_files = component_weights(&sub("vae"), "diffusion_pytorch_model")?;
    let te_files = component_weights(&sub("text_encoder"), "model")?;
    let te2_files = match &te2_config {
        Some(_) => Some(component_weights(&sub("text_encoder_2"), "model")?),
        None => None,
    };
    let weights = Weights {
        unet: read_files(&unet_files, dtype, device)?,
        vae: read_files(&vae_files, vae_dtype(&vae_config, dtype), device)?,
        text_encoder: read_files(&te_files, dtype, device)?,
        text_encoder_2: match &te2_files {
            Some(f) => Some(read_files(f, dtype, device)?),
            None => None,
        },
    };
    let parts = Parts {
        family,
        unet_config,
        vae_config,
        te_config,
        te2_config,
        scheduler_config,
    };
    assemble(parts, weights, opts, dir.display().to_string())
}

/// Everything but the weights.
struct Parts {
    family: Family,
    unet_config: UNetConfig,
    vae_config: VaeConfig,
    te_config: ClipTextConfig,
    te2_config: Option<ClipTextConfig>,
    scheduler_config: Json,
}

/// Builds the modules from in-memory weights.
fn assemble(parts: Parts, weights: Weights, opts: &LoadOptions, source: String) -> Result<SdModel> {
    let (dtype, device) = (opts.dtype, &opts.device);
    let what = PathBuf::from(&source);
    let unet = UNet2DConditionModel::new(vb_of(&weights.unet, dtype, device), &parts.unet_config)
        .map_err(candle(&what))?;
    let vdt = vae_dtype(&parts.vae_config, dtype);
    let vae = AutoencoderKL::new(vb_of(&weights.vae, vdt, device), &parts.vae_config)
        .map_err(candle(&what))?;
    let text_encoder = build_text_encoder(
        vb_of(&weights.text_encoder, dtype, device),
        parts.te_config,
        false,
        false,
        &what,
    )?;
    let text_encoder_2 = match (parts.te2_config, &weights.text_encoder_2) {
        (Some(cfg), Some(w)) => Some(build_text_encoder(
            vb_of(w, dtype, device),
            cfg,
            true,
            true,
            &what,
        )?),
        (None, _) => None,
        (Some(_), None) => {
            return Err(EngineError::failed(format!(
                "{source}: the second text encoder's weights are missing"
            )))
        }
    };
    Ok(SdModel {
        family: parts.family,
        unet,
        unet_config: parts.unet_config,
        vae,
        vae_config: parts.vae_config,
        vae_dtype: vdt,
        text_encoder,
        text_encoder_2,
        scheduler_config: parts.scheduler_config,
        dtype,
        device: device.clone(),
        source,
        weights,
        options: opts.clone(),
    })
}

fn load_single_file(path: &Path, opts: &LoadOptions) -> Result<SdModel> {
    let file = ldm::open_single_file(path).map_err(candle(path))?;
    let config = |component: ldm::Component, file_name: &str| -> Result<Json> {
        if let Some(dir) = &opts.config_dir {
            let p = dir.join(component.as_str()).join(file_name);
            if p.is_file() {
                return read_json(&p);
            }
        }
        file.config(component).map_err(candle(path))
    };
    use ldm::Component as C;
    let unet_config = unet_config(&config(C::Unet, "config.json")?, path)?;
    let vae_config = vae_config(&config(C::Vae, "config.json")?, path)?;
    let te_config: ClipTextConfig = parse_config(&config(C::TextEncoder, "config.json")?, path)?;
    let te2_config: Option<ClipTextConfig> = if file.has(C::TextEncoder2) {
        Some(parse_config(
            &config(C::TextEncoder2, "config.json")?,
            path,
        )?)
    } else {
        None
    };
    let family = family_of(&unet_config, te2_config.is_some(), &te_config);
    let scheduler_config = match &opts.config_dir {
        Some(dir) if dir.join("scheduler/scheduler_config.json").is_file() => {
            read_json(&dir.join("scheduler/scheduler_config.json"))?
        }
        _ => default_scheduler_config(family),
    };
    let (dtype, device) = (opts.dtype, &opts.device);
    let weights = Weights {
        unet: read_component(&file, C::Unet, dtype, device)?,
        vae: read_component(&file, C::Vae, vae_dtype(&vae_config, dtype), device)?,
        text_encoder: read_component(&file, C::TextEncoder, dtype, device)?,
        text_encoder_2: if te2_config.is_some() {
            Some(read_component(&file, C::TextEncoder2, dtype, device)?)
        } else {
            None
        },
    };
    let parts = Parts {
        family,
        unet_config,
        vae_config,
        te_config,
        te2_config,
        scheduler_config,
    };
    assemble(parts, weights, opts, path.display().to_string())
}

/// How many loaded checkpoints stay in memory.
static CACHE: LoadCache<SdModel> = LoadCache::new(2);

/// The components of a diffusers folder whose files are stamped in the cache key.
const COMPONENTS: &[&str] = &["unet", "vae", "text_encoder", "text_encoder_2"];

/// [`load`] through a small process-wide cache keyed by path, file sizes and times, and the
/// options: a second run with the same checkpoint does not touch the disk.
pub fn load_cached(path: &Path, opts: &LoadOptions) -> Result<Arc<SdModel>> {
    let key = LoadKey::new(
        path,
        COMPONENTS,
        format!(
            "{:?}|{:?}|{:?}|{:?}|{:?}",
            opts.vae.as_ref().map(|v| stamp(v, &[])),
            opts.vae,
            opts.config_dir,
            opts.prediction,
            (opts.dtype, opts.device.location())
        ),
    );
    CACHE.get_or_load(key, || load(path, opts))
}
