//! Writing `.safetensors` files with `__metadata__` (kohya's `ss_*` keys), atomically.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::{DType, Tensor};

use crate::error::{EngineError, Result};

/// Writes `tensors` (F32, F16 or U32; any shape, made contiguous) and `metadata` as a
/// safetensors file: first into a temporary file beside `path`, then renamed over it, so a
/// reader (or a killed run) never sees a half-written file.
pub fn write_safetensors(
    path: &Path,
    tensors: &BTreeMap<String, Tensor>,
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let fail = |m: String| EngineError::failed(format!("{}: {m}", path.display()));
    let mut header = serde_json::Map::new();
    if !metadata.is_empty() {
        let meta: serde_json::Map<String, serde_json::Value> = metadata
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        header.insert("__metadata__".into(), serde_json::Value::Object(meta));
    }
    let mut data: Vec<u8> = Vec::new();
    for (name, t) in tensors {
        let flat = t
            .flatten_all()
            .map_err(|e| fail(format!("tensor {name}: {e}")))?;
        let start = data.len();
        let dtype = match t.dtype() {
            DType::F32 => {
                let v = flat
                    .to_vec1::<f32>()
                    .map_err(|e| fail(format!("tensor {name}: {e}")))?;
                v.iter()
                    .for_each(|x| data.extend_from_slice(&x.to_le_bytes()));
                "F32"
            }
            DType::F16 => {
                let v = flat
                    .to_vec1::<half::f16>()
                    .map_err(|e| fail(format!("tensor {name}: {e}")))?;
                v.iter()
                    .for_each(|x| data.extend_from_slice(&x.to_le_bytes()));
                "F16"
            }
            DType::U32 => {
                let v = flat
                    .to_vec1::<u32>()
                    .map_err(|e| fail(format!("tensor {name}: {e}")))?;
                v.iter()
                    .for_each(|x| data.extend_from_slice(&x.to_le_bytes()));
                "U32"
            }
            other => return Err(fail(format!("tensor {name}: cannot write dtype {other:?}"))),
        };
        header.insert(
            name.clone(),
            serde_json::json!({
                "dtype": dtype,
                "shape": t.dims(),
                "data_offsets": [start, data.len()],
            }),
        );
    }
    let mut head = serde_json::to_vec(&serde_json::Value::Object(header))?;
    // Pad the header with spaces so that the data starts 8-byte aligned.
    while !head.len().is_multiple_of(8) {
        head.push(b' ');
    }
    let tmp = temp_path(path);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&(head.len() as u64).to_le_bytes())?;
        f.write_all(&head)?;
        f.write_all(&data)?;
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
