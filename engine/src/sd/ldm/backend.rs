//! A candle `SimpleBackend` serving diffusers names out of an LDM single file.

use std::path::PathBuf;
use std::sync::Arc;

use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Result, Shape, Tensor};

use super::bail;
use candle_nn::var_builder::SimpleBackend;

use crate::sd::ldm::arch::Component;
use crate::sd::ldm::mapping::{Source, TensorMap, Transform};

/// Serves one component's diffusers-named tensors from a memory-mapped LDM checkpoint.
///
/// Names are resolved through the component's [`TensorMap`]; text encoders also accept the
/// names without the `text_model.` prefix (the layout transformers >= 5.6 saves for
/// `CLIPTextModel`). Tensors are converted from the stored dtype (f16/bf16/f32) to the requested
/// one and the map's [`Transform`] is applied. Errors name the file, the diffusers name and
/// the LDM tensor.
#[derive(Clone)]
pub struct LdmBackend {
    st: Arc<MmapedSafetensors>,
    path: PathBuf,
    component: Component,
    map: Arc<TensorMap>,
}

impl LdmBackend {
    pub(crate) fn new(
        st: Arc<MmapedSafetensors>,
        path: PathBuf,
        component: Component,
        map: Arc<TensorMap>,
    ) -> Self {
        Self {
            st,
            path,
            component,
            map,
        }
    }

    /// The name map this backend serves.
    pub fn map(&self) -> &TensorMap {
        &self.map
    }

    /// Looks up the source of a diffusers name (with the text-encoder alias).
    pub fn resolve(&self, name: &str) -> Option<&Source> {
        if let Some(s) = self.map.get(name) {
            return Some(s);
        }
        if self.component.is_text_encoder()
            && !name.starts_with("text_model.")
            && name != "text_projection.weight"
        {
            return self.map.get(&format!("text_model.{name}"));
        }
        None
    }

    /// Loads the diffusers tensor `name` in `dtype` on `dev`.
    pub fn load(&self, name: &str, dtype: DType, dev: &Device) -> Result<Tensor> {
        let Some(src) = self.resolve(name) else {
            bail!(
                "{}: {} tensor `{name}` is not in the checkpoint (no LDM tensor maps to it)",
                self.path.display(),
                self.component
            )
        };
        let raw = match self.st.load(&src.ldm_name, dev) {
            Ok(t) => t,
            Err(e) => bail!(
                "{}: cannot read tensor `{}` (for {} `{name}`): {e}",
                self.path.display(),
                src.ldm_name,
                self.component
            ),
        };
        if raw.dims() != src.ldm_shape.as_slice() {
            bail!(
                "{}: tensor `{}` has shape {:?}, expected {:?}",
                self.path.display(),
                src.ldm_name,
                raw.dims(),
                src.ldm_shape
            )
        }
        let t = match src.transform {
            Transform::Identity => raw,
            Transform::Narrow { start, len } => raw.narrow(0, start, len)?.contiguous()?,
            Transform::Reshape => raw.reshape(src.shape.as_slice())?,
            Transform::Transpose => raw.t()?.contiguous()?,
        };
        t.to_dtype(dtype)
    }
}

impl SimpleBackend for LdmBackend {
    fn get(
        &self,
        s: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> Result<Tensor> {
        let t = self.load(name, dtype, dev)?;
        if t.shape() != &s {
            let ldm = self.resolve(name).map_or("?", |src| src.ldm_name.as_str());
            bail!(
                "{}: shape mismatch for {} `{name}` (from `{ldm}`): the model expects {:?}, the checkpoint has {:?}",
                self.path.display(),
                self.component,
                s.dims(),
                t.dims()
            )
        }
        Ok(t)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> Result<Tensor> {
        self.load(name, dtype, dev)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.resolve(name).is_some()
    }
}
