//! Loading ControlNets from diffusers folders and single files, the process-wide cache, and the
//! check that a ControlNet fits a checkpoint.
//!
//! - A diffusers folder: `config.json` + `diffusion_pytorch_model.safetensors` (or
//!   `.fp16.safetensors`); `.bin` pickles are refused.
//! - A single `.safetensors` with diffusers names or the original names (with or without
//!   `control_model.`, [`super::ldm`]); its config is read from the shapes ([`super::infer`]).
//! - Any stored dtype (f32/f16/bf16) is converted to the asked one; bf16 *compute* on the CPU is
//!   refused (candle has no bf16 convolution there), like LoadCheckpoint does.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use serde_json::{Map, Value};

use super::ldm::{self, Naming};
use super::{infer, ControlNet, ControlNetConfig, ControlNetModel};
use crate::error::{EngineError, Result};
use crate::models::safetensors_check::{open_mmap, refuse_pickle_extension};
use crate::sd::load_cache::{LoadCache, LoadKey};
use crate::sd::model::{candle, Family, SdModel};

/// How to load a ControlNet.
#[derive(Clone, Debug)]
pub struct ControlNetLoadOptions {
    pub dtype: DType,
    pub device: Device,
}

impl Default for ControlNetLoadOptions {
    fn default() -> Self {
        ControlNetLoadOptions {
            dtype: DType::F32,
            device: Device::Cpu,
        }
    }
}

/// Loads a ControlNet (a diffusers folder or a single `.safetensors`).
pub fn load(path: &Path, opts: &ControlNetLoadOptions) -> Result<ControlNet> {
    load_with_config(path, opts, None)
}

/// [`load`], with the fields of a diffusers ControlNet config (`config`: a `config.json` or a
/// folder holding one) replacing those read from the file — like diffusers'
/// `from_single_file(config=...)`, for single files whose shapes do not tell everything (SDXL
/// nets with a head width other than 64).
pub fn load_with_config(
    path: &Path,
    opts: &ControlNetLoadOptions,
    config: Option<&Path>,
) -> Result<ControlNet> {
    refuse_pickle_extension(path)?;
    if opts.dtype == DType::BF16 && opts.device.is_cpu() {
        return Err(EngineError::failed(format!(
            "{}: dtype bf16 is not available on the CPU (candle has no bf16 convolution there): \
             use f32 or f16 (bf16 files load as either)",
            path.display()
        )));
    }
    if !path.exists() {
        return Err(EngineError::failed(format!(
            "{}: no such ControlNet",
            path.display()
        )));
    }
    let overrides = match config {
        Some(c) => {
            let file = if c.is_dir() {
                c.join("config.json")
            } else {
                c.to_path_buf()
            };
            match read_json(&file)? {
                Value::Object(m) => m,
                _ => {
                    return Err(EngineError::failed(format!(
                        "{}: not a JSON object",
                        file.display()
                    )))
                }
            }
        }
        None => Map::new(),
    };
    let (json, weights) = if path.is_dir() {
        read_folder(path, &overrides, opts)?
    } else {
        read_single_file(path, &overrides, opts)?
    };
    let config = ControlNetConfig::from_value(json).map_err(candle(path))?;
    let vb = VarBuilder::from_tensors(weights, opts.dtype, &opts.device);
    let model = ControlNetModel::new(vb, &config).map_err(candle(path))?;
    Ok(ControlNet {
        model,
        family: family_of(&config),
        config,
        dtype: opts.dtype,
        device: opts.device.clone(),
        source: path.display().to_string(),
    })
}

fn read_json(path: &Path) -> Result<Value> {
    let bytes = std::fs::read(path).map_err(|e| EngineError::io(path, e))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| EngineError::failed(format!("{}: not valid JSON: {e}", path.display())))
}

/// A diffusers folder's config (with `overrides` merged) and weights.
fn read_folder(
    dir: &Path,
    overrides: &Map<String, Value>,
    opts: &ControlNetLoadOptions,
) -> Result<(Value, HashMap<String, Tensor>)> {
    let cfg_path = dir.join("config.json");
    if !cfg_path.is_file() {
        return Err(EngineError::failed(format!(
            "{}: no config.json in this ControlNet folder",
            dir.display()
        )));
    }
    let mut json = read_json(&cfg_path)?;
    if let Value::Object(m) = &mut json {
        for (k, v) in overrides {
            m.insert(k.clone(), v.clone());
        }
    }
    let stem = "diffusion_pytorch_model";
    let file = [
        format!("{stem}.safetensors"),
        format!("{stem}.fp16.safetensors"),
    ]
    .iter()
    .map(|n| dir.join(n))
    .find(|p| p.is_file());
    let Some(file) = file else {
        for n in [format!("{stem}.bin"), format!("{stem}.fp16.bin")] {
            if dir.join(&n).is_file() {
                refuse_pickle_extension(&dir.join(n))?;
            }
        }
        return Err(EngineError::failed(format!(
            "{}: no {stem}.safetensors in this ControlNet folder",
            dir.display()
        )));
    };
    let (st, header) = open_mmap(&file)?;
    let names: BTreeMap<String, String> = header
        .tensors
        .keys()
        .map(|k| (k.clone(), k.clone()))
        .collect();
    let weights = load_tensors(&st, &file, &names, opts)?;
    Ok((json, weights))
}

/// A single file's inferred config (with `overrides` merged) and weights by diffusers name.
fn read_single_file(
    path: &Path,
    overrides: &Map<String, Value>,
    opts: &ControlNetLoadOptions,
) -> Result<(Value, HashMap<String, Tensor>)> {
    let (st, header) = open_mmap(path)?;
    let names: Vec<&str> = header.tensors.keys().map(String::as_str).collect();
    let fail = |m: String| EngineError::failed(format!("{}: {m}", path.display()));
    let map: BTreeMap<String, String> = match ldm::detect(&names).map_err(fail)? {
        Naming::Diffusers => names
            .iter()
            .map(|n| (n.to_string(), n.to_string()))
            .collect(),
        Naming::Original { prefixed } => {
            ldm::original_to_diffusers(&names, prefixed).map_err(fail)?
        }
    };
    let shapes: infer::Shapes = map
        .iter()
        .filter_map(|(d, s)| {
            let (_, shape) = header.tensors.get(s)?;
            Some((d.clone(), shape.iter().map(|&x| x as usize).collect()))
        })
        .collect();
    let json = infer::infer_config(&shapes, overrides).map_err(fail)?;
    let weights = load_tensors(&st, path, &map, opts)?;
    Ok((json, weights))
}

/// Reads the stored tensor of each `(diffusers, stored)` name in the asked dtype and device.
fn load_tensors(
    st: &candle_core::safetensors::MmapedSafetensors,
    path: &Path,
    names: &BTreeMap<String, String>,
    opts: &ControlNetLoadOptions,
) -> Result<HashMap<String, Tensor>> {
    let mut out = HashMap::with_capacity(names.len());
    for (name, stored) in names {
        // Convert on the CPU first: a bf16 file read as f16/f32 on any device.
        let t = st
            .load(stored, &Device::Cpu)
            .and_then(|t| t.to_dtype(opts.dtype))
            .and_then(|t| t.to_device(&opts.device))
            .map_err(|e| {
                EngineError::failed(format!("{}: tensor {stored}: {e}", path.display()))
            })?;
        out.insert(name.clone(), t);
    }
    Ok(out)
}

/// The family a ControlNet was made for, from its config.
fn family_of(cfg: &ControlNetConfig) -> Family {
    let u = &cfg.unet;
    if u.addition_embed_type.as_deref() == Some("text_time") {
        Family::Sdxl
    } else if u.use_linear_projection || u.cross_attention_dim.as_u64() == Some(1024) {
        Family::Sd2
    } else {
        Family::Sd1
    }
}

fn family_label(f: Family) -> &'static str {
    match f {
        Family::Sd1 => "SD 1.x",
        Family::Sd2 => "SD 2.x",
        Family::Sdxl => "SDXL",
    }
}

/// The name messages use: the file or folder name.
fn short_name(source: &str) -> String {
    Path::new(source)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| source.to_string())
}

/// See [`ControlNet::check_compatible`].
pub(super) fn check_compatible(net: &ControlNet, model: &SdModel) -> Result<()> {
    let name = short_name(&net.source);
    if !net.device.same_device(&model.device) {
        return Err(EngineError::failed(format!(
            "ControlNet {name}: loaded on {:?} but the checkpoint is on {:?}; load both on the same device",
            net.device.location(),
            model.device.location()
        )));
    }
    let (n, m) = (&net.config.unet, &model.unet_config);
    let (nx, mx) = (
        n.cross_attention_dim.as_u64(),
        m.cross_attention_dim.as_u64(),
    );
    let add = |c: &crate::sd::config::UNetConfig| {
        (
            c.addition_embed_type.clone(),
            c.projection_class_embeddings_input_dim,
        )
    };
    if nx != mx || add(n) != add(m) {
        let dim = |d: Option<u64>| d.map_or("?".to_string(), |d| d.to_string());
        return Err(EngineError::failed(format!(
            "ControlNet {name}: made for {} (cross-attention {}) but the checkpoint is {} ({})",
            family_label(net.family),
            dim(nx),
            family_label(model.family),
            dim(mx)
        )));
    }
    let shape = |c: &crate::sd::config::UNetConfig| {
        (
            c.block_out_channels.clone(),
            c.layers_per_block_list().unwrap_or_default(),
        )
    };
    if shape(n) != shape(m) {
        let (nc, nl) = shape(n);
        let (mc, ml) = shape(m);
        return Err(EngineError::failed(format!(
            "ControlNet {name}: its blocks have channels {nc:?} with {nl:?} layers but the \
             checkpoint's UNet has {mc:?} with {ml:?}; it was made for another model"
        )));
    }
    Ok(())
}

/// How many loaded ControlNets stay in memory.
static CACHE: LoadCache<ControlNet> = LoadCache::new(4);

/// [`load`] through a small process-wide cache keyed by path, file sizes and times, dtype and
/// device: a second run with the same ControlNet does not touch the disk.
pub fn load_cached(path: &Path, opts: &ControlNetLoadOptions) -> Result<Arc<ControlNet>> {
    let key = LoadKey::new(
        path,
        &[],
        format!("{:?}", (opts.dtype, opts.device.location())),
    );
    CACHE.get_or_load(key, || load(path, opts))
}
