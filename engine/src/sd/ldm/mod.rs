//! Load original-LDM single-file Stable Diffusion checkpoints (A1111 / ComfyUI style
//! `.safetensors`) as if they were diffusers folders.
//!
//! * [`open_single_file`] opens a checkpoint and returns a [`SingleFile`]: pickle files
//!   (`.ckpt`, `.pt`, `.bin`, ..., or pickle/zip bytes under any name) are refused, and
//!   truncated, corrupt or inconsistent files give an error naming the file, through the one
//!   validator ([`crate::models::safetensors_check`]). Layout inference uses checked
//!   arithmetic: a crafted header gives an error naming the tensor, never a panic.
//! * [`detect_arch`] tells the [`Arch`] (sd1, sd1-inpaint, sd2, sd2-inpaint, sdxl, sdxl-inpaint;
//!   SDXL refiners are refused) from the tensor names and shapes alone ([`Header`]).
//! * [`component_map`] builds, per [`Component`], a [`TensorMap`] from each diffusers parameter
//!   name to a [`Source`]: the LDM tensor plus a [`Transform`] (q/k/v slices of OpenCLIP's fused
//!   `in_proj`, `[C, C, 1, 1]` → `[C, C]` for the VAE attention, transposed `text_projection`).
//!   It is the inverse of diffusers' `convert_ldm_unet_checkpoint`, `convert_ldm_vae_checkpoint`,
//!   `convert_ldm_clip_checkpoint` and `convert_open_clip_checkpoint`.
//! * [`infer_config`] returns each component's diffusers `config.json` as a
//!   `serde_json::Value`, read from the shapes (with overrides for what weights cannot tell).
//! * [`LdmBackend`] is a `candle_nn::var_builder::SimpleBackend` serving diffusers names out of
//!   the memory-mapped file, so models are built exactly as from a diffusers folder through
//!   [`SingleFile::var_builder`].
//!
//! ```no_run
//! # fn main() -> candle_core::Result<()> {
//! use engine::sd::ldm::{open_single_file, Component};
//! let ckpt = open_single_file("model.safetensors")?;
//! println!("{}", ckpt.arch());
//! let unet_cfg = ckpt.config(Component::Unet)?;
//! let vb = ckpt.var_builder(Component::Unet, candle_core::DType::F32, &candle_core::Device::Cpu)?;
//! # let _ = (unet_cfg, vb); Ok(()) }
//! ```

mod arch;
mod backend;
mod config;
mod header;
mod mapping;

/// candle's `bail!` without the backtrace candle attaches when `RUST_BACKTRACE` is set: these
/// messages are for users, one line each, whatever the environment.
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err(candle_core::Error::Msg(format!($($arg)*)))
    };
}
pub(crate) use bail;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Result};
use candle_nn::VarBuilder;
use serde_json::{Map, Value};

pub use arch::{detect_arch, Arch, Component};
pub use backend::LdmBackend;
pub use config::infer_config;
pub use header::Header;
pub(crate) use mapping::unet_encoder_name;
pub use mapping::{component_map, Source, TensorMap, Transform, UnetLayout};

/// An opened single-file checkpoint: its architecture, per-component name maps and configs.
pub struct SingleFile {
    path: PathBuf,
    st: Arc<MmapedSafetensors>,
    header: Header,
    arch: Arch,
    maps: BTreeMap<Component, Arc<TensorMap>>,
    unmapped: Vec<String>,
}

/// Validates the file (the one safetensors validator: pickles and zips refused, sizes and
/// offsets checked), maps it and reads its tensor names and shapes.
fn map_file(path: &Path) -> Result<(MmapedSafetensors, Header)> {
    let (st, _) = match crate::models::safetensors_check::open_mmap(path) {
        Ok(v) => v,
        Err(e) => bail!("{e}"),
    };
    let mut entries = Vec::new();
    for (name, view) in st.tensors() {
        // The validator only accepts dtypes candle loads.
        let dtype = match DType::try_from(view.dtype()) {
            Ok(d) => d,
            Err(e) => bail!("{}: tensor `{name}`: {e}", path.display()),
        };
        entries.push((name, view.shape().to_vec(), dtype));
    }
    Ok((st, Header::from_entries(entries)))
}

/// Opens an LDM single-file `.safetensors` checkpoint.
///
/// Pickle checkpoints are refused by extension before the file is opened, and by their first
/// bytes otherwise; a truncated, corrupt or inconsistent file gives an error naming the file. The
/// architecture is detected and the name maps of every component present are built.
pub fn open_single_file(path: impl AsRef<Path>) -> Result<SingleFile> {
    let path = path.as_ref();
    let (st, header) = map_file(path)?;
    let arch = match detect_arch(&header) {
        Ok(a) => a,
        Err(e) => bail!("{}: {e}", path.display()),
    };
    let mut maps = BTreeMap::new();
    let mut used = BTreeSet::new();
    for &c in arch.components() {
        let present = match c {
            Component::Unet => true,
            Component::Vae => arch::vae_prefix(&header).is_some(),
            _ => arch::text_encoder_location(arch, c).is_some_and(|(p, _)| header.has_prefix(p)),
        };
        if !present {
            continue;
        }
        let (map, _) = match component_map(&header, arch, c) {
            Ok(m) => m,
            Err(e) => bail!("{}: {c}: {e}", path.display()),
        };
        used.extend(map.values().map(|s| s.ldm_name.clone()));
        maps.insert(c, Arc::new(map));
    }
    let unmapped = header
        .names()
        .filter(|n| !used.contains(*n))
        .map(str::to_string)
        .collect();
    Ok(SingleFile {
        path: path.to_path_buf(),
        st: Arc::new(st),
        header,
        arch,
        maps,
        unmapped,
    })
}

impl SingleFile {
    /// The checkpoint's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The detected architecture.
    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// Tensor names and shapes of the file.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Components present in the file (a UNet-only file has just `Unet`).
    pub fn components(&self) -> Vec<Component> {
        self.maps.keys().copied().collect()
    }

    /// Whether `component` is in the file.
    pub fn has(&self, component: Component) -> bool {
        self.maps.contains_key(&component)
    }

    /// LDM tensors not served to any component (EMA copies, `position_ids`, SD2's unused last
    /// text layer, `alphas_cumprod`, ...).
    pub fn unmapped(&self) -> &[String] {
        &self.unmapped
    }

    /// The diffusers-name map of `component`.
    pub fn tensor_map(&self, component: Component) -> Result<&TensorMap> {
        match self.maps.get(&component) {
            Some(m) => Ok(m),
            None => bail!(
                "{}: checkpoint ({}) has no {component}",
                self.path.display(),
                self.arch
            ),
        }
    }

    /// The diffusers `config.json` of `component`, inferred from the shapes.
    pub fn config(&self, component: Component) -> Result<Value> {
        self.tensor_map(component)?;
        // A diffusers folder's configs replace this where the weights cannot tell
        // (`LoadOptions::config_dir`, `generate --config`).
        match infer_config(&self.header, self.arch, component, &Map::new()) {
            Ok(v) => Ok(v),
            Err(e) => bail!("{}: {component} config: {e}", self.path.display()),
        }
    }

    /// A backend serving `component`'s diffusers names.
    pub fn backend(&self, component: Component) -> Result<LdmBackend> {
        let map = Arc::clone(self.maps.get(&component).ok_or_else(|| {
            candle_core::Error::Msg(format!(
                "{}: checkpoint ({}) has no {component}",
                self.path.display(),
                self.arch
            ))
        })?);
        Ok(LdmBackend::new(
            Arc::clone(&self.st),
            self.path.clone(),
            component,
            map,
        ))
    }

    /// A `VarBuilder` over `component`'s diffusers names, producing `dtype` tensors on `device`.
    pub fn var_builder(
        &self,
        component: Component,
        dtype: DType,
        device: &Device,
    ) -> Result<VarBuilder<'static>> {
        let backend = self.backend(component)?;
        Ok(VarBuilder::from_backend(
            Box::new(backend),
            dtype,
            device.clone(),
        ))
    }
}

/// Every tensor of a stand-alone LDM-named VAE file (`encoder.down.0.block.0…`, with or
/// without a `first_stage_model.` prefix), by diffusers name, in `dtype` on `device`.
pub fn vae_file_tensors(
    path: &Path,
    dtype: DType,
    device: &Device,
) -> Result<std::collections::HashMap<String, candle_core::Tensor>> {
    let (st, header) = map_file(path)?;
    let prefix = arch::vae_prefix(&header).unwrap_or("");
    let (map, _) = match mapping::vae_map(&header, prefix) {
        Ok(m) => m,
        Err(e) => bail!("{}: VAE: {e}", path.display()),
    };
    if map.is_empty() {
        bail!("{}: no VAE tensors found", path.display());
    }
    let names: Vec<String> = map.keys().cloned().collect();
    let backend = LdmBackend::new(
        Arc::new(st),
        path.to_path_buf(),
        Component::Vae,
        Arc::new(map),
    );
    names
        .into_iter()
        .map(|n| backend.load(&n, dtype, device).map(|t| (n, t)))
        .collect()
}
