//! Writing `.safetensors` files with `__metadata__` (kohya's `ss_*` keys), atomically, through
//! the `safetensors` crate.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::{DType, Tensor};
use safetensors::{Dtype, View};

use crate::error::{EngineError, Result};

/// One tensor's little-endian bytes, as the `safetensors` crate writes them.
struct Raw {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &Raw {
    fn dtype(&self) -> Dtype {
        self.dtype
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }

    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// The bytes of `t` (F32, F16 or U32; any shape), copied to the CPU.
fn raw(t: &Tensor) -> std::result::Result<Raw, String> {
    let flat = t.flatten_all().map_err(|e| e.to_string())?;
    let (dtype, bytes): (Dtype, Vec<u8>) = match t.dtype() {
        DType::F32 => (
            Dtype::F32,
            flat.to_vec1::<f32>()
                .map_err(|e| e.to_string())?
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
        ),
        DType::F16 => (
            Dtype::F16,
            flat.to_vec1::<half::f16>()
                .map_err(|e| e.to_string())?
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
        ),
        DType::U32 => (
            Dtype::U32,
            flat.to_vec1::<u32>()
                .map_err(|e| e.to_string())?
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
        ),
        other => return Err(format!("cannot write dtype {other:?}")),
    };
    Ok(Raw {
        dtype,
        shape: t.dims().to_vec(),
        bytes,
    })
}

/// Writes `tensors` (F32, F16 or U32; any shape) and `metadata` as a safetensors file: first into
/// a temporary file beside `path`, then renamed over it, so a reader (or a killed run) never
/// sees a half-written file.
pub fn write_safetensors(
    path: &Path,
    tensors: &BTreeMap<String, Tensor>,
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let fail = |m: String| EngineError::failed(format!("{}: {m}", path.display()));
    let raws = tensors
        .iter()
        .map(|(name, t)| raw(t).map(|r| (name, r)))
        .collect::<std::result::Result<Vec<_>, String>>()
        .map_err(&fail)?;
    let meta: Option<HashMap<String, String>> = (!metadata.is_empty()).then(|| {
        metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    });
    let bytes = safetensors::serialize(raws.iter().map(|(n, r)| (n.as_str(), r)), meta)
        .map_err(|e| fail(e.to_string()))?;
    let tmp = temp_path(path);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        EngineError::io(path, e)
    })
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn what_is_written_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.safetensors");
        let mut tensors = BTreeMap::new();
        let a = Tensor::new(&[[1.5f32, -2.0], [3.25, 0.0]], &Device::Cpu).unwrap();
        tensors.insert("a".to_string(), a.clone());
        tensors.insert("h".to_string(), a.to_dtype(DType::F16).unwrap());
        tensors.insert(
            "u".to_string(),
            Tensor::new(&[7u32, 1 << 31], &Device::Cpu).unwrap(),
        );
        let meta = BTreeMap::from([("ss_steps".to_string(), "3".to_string())]);
        write_safetensors(&path, &tensors, &meta).unwrap();
        let back = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
        assert_eq!(back.len(), 3);
        for (k, t) in &tensors {
            let b = &back[k];
            assert_eq!((b.dtype(), b.dims()), (t.dtype(), t.dims()), "{k}");
            let diff = (b.to_dtype(DType::F64).unwrap() - t.to_dtype(DType::F64).unwrap())
                .unwrap()
                .abs()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f64>()
                .unwrap();
            assert_eq!(diff, 0.0, "{k}");
        }
        let bytes = std::fs::read(&path).unwrap();
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        assert_eq!(
            header.metadata().as_ref().and_then(|m| m.get("ss_steps")),
            Some(&"3".to_string())
        );
        let bad = BTreeMap::from([("x".to_string(), Tensor::new(&[1u8], &Device::Cpu).unwrap())]);
        let e = write_safetensors(&path, &bad, &BTreeMap::new()).unwrap_err();
        assert!(e.to_string().contains("t.safetensors"), "{e}");
        // The failed write left the earlier file whole.
        assert_eq!(
            candle_core::safetensors::load(&path, &Device::Cpu)
                .unwrap()
                .len(),
            3
        );
    }
}
