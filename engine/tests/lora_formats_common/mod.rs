//! Helpers of `lora_formats.rs`: hand-written LoRA/LyCORIS/DoRA files with seeded values, the
//! reference formulas written as plain loops (matrix product, Tucker, Kronecker, DoRA's
//! renormalisation), and the tiny SD1.5 model's weights before and after a merge.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use engine::sd::lora::{apply, LoraSpec};
use engine::sd::model::SdModel;

use crate::sd_common::model;

/// Seeded values in [-1, 1) · `amp`.
pub fn rnd(seed: u64, n: usize, amp: f32) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * amp
        })
        .collect()
}

/// A named tensor of the file, kept with its values for the reference computation.
pub struct T {
    pub key: String,
    pub data: Vec<f32>,
    pub dims: Vec<usize>,
}

pub fn t(key: &str, seed: u64, dims: &[usize], amp: f32) -> T {
    let n = dims.iter().product();
    T {
        key: key.into(),
        data: rnd(seed, n, amp),
        dims: dims.to_vec(),
    }
}

pub fn scalar(key: &str, v: f32) -> T {
    T {
        key: key.into(),
        data: vec![v],
        dims: vec![],
    }
}

pub fn save(dir: &Path, name: &str, ts: &[&T]) -> PathBuf {
    let map: std::collections::HashMap<String, Tensor> = ts
        .iter()
        .map(|t| {
            let tensor = Tensor::from_vec(t.data.clone(), t.dims.clone(), &Device::Cpu).unwrap();
            (t.key.clone(), tensor)
        })
        .collect();
    let path = dir.join(name);
    candle_core::safetensors::save(&map, &path).unwrap();
    path
}

pub fn sd15() -> std::sync::Arc<SdModel> {
    model("sd15")
}

/// `a` [m, k] · `b` [k, n].
pub fn mm(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    let mut out = vec![0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            out[i * n + j] = (0..k).map(|q| a[i * k + q] * b[q * n + j]).sum();
        }
    }
    out
}

/// `einsum('i j k l, j r, i p -> p r k l', t, wb, wa)`: t [R, R, kh, kw], wa [R, P], wb [R, Q].
pub fn tucker(
    t: &[f32],
    wa: &[f32],
    wb: &[f32],
    r: usize,
    p: usize,
    q: usize,
    kk: usize,
) -> Vec<f32> {
    let mut out = vec![0f32; p * q * kk];
    for pi in 0..p {
        for qi in 0..q {
            for s in 0..kk {
                let mut acc = 0f32;
                for i in 0..r {
                    for j in 0..r {
                        acc += t[(i * r + j) * kk + s] * wb[j * q + qi] * wa[i * p + pi];
                    }
                }
                out[(pi * q + qi) * kk + s] = acc;
            }
        }
    }
    out
}

/// `kron(w1 [a, c], w2 [b, d, kk])` → [a·b, c·d, kk] (kk = 1 for linears).
pub fn kron(
    w1: &[f32],
    w2: &[f32],
    (a, c): (usize, usize),
    (b, d, kk): (usize, usize, usize),
) -> Vec<f32> {
    let mut out = vec![0f32; a * b * c * d * kk];
    for i in 0..a {
        for j in 0..c {
            for p in 0..b {
                for q in 0..d {
                    for s in 0..kk {
                        out[((i * b + p) * (c * d) + j * d + q) * kk + s] =
                            w1[i * c + j] * w2[(p * d + q) * kk + s];
                    }
                }
            }
        }
    }
    out
}

pub fn flat(t: &Tensor) -> Vec<f32> {
    t.to_dtype(candle_core::DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// The UNet (or text-encoder, for keys with `layers.`) weight `key` of the model, flattened.
pub fn weight(m: &SdModel, key: &str) -> Vec<f32> {
    let map = if key.contains("encoder.layers") {
        &m.weights.text_encoder
    } else {
        &m.weights.unet
    };
    let (_, t) = map
        .iter()
        .find(|(k, _)| k.ends_with(key))
        .unwrap_or_else(|| panic!("no weight {key}"));
    flat(t)
}

/// How much `key` changed when the stack was applied.
pub fn change(merged: &SdModel, key: &str) -> Vec<f32> {
    let base = weight(&sd15(), key);
    weight(merged, key)
        .iter()
        .zip(&base)
        .map(|(m, b)| m - b)
        .collect()
}

/// The file at `path` merged into the tiny SD1.5 model at strengths `unet`/`text`.
fn merge_one(
    path: &Path,
    unet: f64,
    text: f64,
) -> engine::Result<(SdModel, Vec<engine::sd::lora::LoraReport>)> {
    apply(
        &sd15(),
        &[LoraSpec {
            path: path.to_path_buf(),
            unet,
            text,
        }],
    )
}

pub fn apply_one(path: &Path, unet: f64, text: f64) -> (SdModel, engine::sd::lora::LoraReport) {
    let (m, mut r) = merge_one(path, unet, text).unwrap_or_else(|e| panic!("{e}"));
    (m, r.remove(0))
}

/// The error merging the file at `path` (strengths 1) gives.
pub fn apply_err(path: &Path) -> String {
    merge_one(path, 1.0, 1.0)
        .map(|_| ())
        .unwrap_err()
        .to_string()
}

pub fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: sizes");
    let max = want.iter().fold(0f32, |a, v| a.max(v.abs()));
    assert!(
        max > 1e-3,
        "{what}: the expected change is too small to test ({max})"
    );
    let err = got
        .iter()
        .zip(want)
        .fold(0f32, |a, (g, w)| a.max((g - w).abs()));
    assert!(got.iter().all(|v| v.is_finite()), "{what}: not finite");
    assert!(
        err <= 1e-5 * max.max(1.0),
        "{what}: max error {err} (max |Δ| {max})"
    );
}

pub fn scaled(v: &[f32], s: f32) -> Vec<f32> {
    v.iter().map(|x| x * s).collect()
}

pub const FF: &str = "down_blocks.0.attentions.0.transformer_blocks.0.ff.net.0.proj.weight"; // [256, 32]

pub const FF_K: &str = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_ff_net_0_proj";

pub const TOQ: &str = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight"; // [32, 32]

pub const TOQ_K: &str = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q";

pub const CONV: &str = "down_blocks.1.resnets.0.conv1.weight"; // [64, 32, 3, 3]

pub const CONV_K: &str = "lora_unet_down_blocks_1_resnets_0_conv1";

pub const UPCONV: &str = "up_blocks.1.resnets.1.conv1.weight"; // [32, 64, 3, 3]

pub const UPCONV_K: &str = "lora_unet_up_blocks_1_resnets_1_conv1";

pub const FC1: &str = "encoder.layers.0.mlp.fc1.weight"; // [37, 32]

pub const FC1_K: &str = "lora_te_text_model_encoder_layers_0_mlp_fc1";

/// `m / ‖W + Δ‖ · (W + Δ) − W`, the norm per output row (`on_out`) or per input column.
pub fn dora_ref(
    w: &[f32],
    d: &[f32],
    m: &[f32],
    out: usize,
    inn: usize,
    kk: usize,
    on_out: bool,
) -> Vec<f32> {
    let v: Vec<f32> = w.iter().zip(d).map(|(a, b)| a + b).collect();
    let idx = |o: usize, i: usize, s: usize| (o * inn + i) * kk + s;
    let mut res = vec![0f32; v.len()];
    if on_out {
        for o in 0..out {
            let n = (0..inn * kk)
                .map(|j| v[o * inn * kk + j].powi(2))
                .sum::<f32>()
                .sqrt();
            for j in 0..inn * kk {
                res[o * inn * kk + j] = m[o] / n * v[o * inn * kk + j];
            }
        }
    } else {
        for i in 0..inn {
            let mut n = 0f32;
            for o in 0..out {
                for s in 0..kk {
                    n += v[idx(o, i, s)].powi(2);
                }
            }
            let n = n.sqrt();
            for o in 0..out {
                for s in 0..kk {
                    res[idx(o, i, s)] = m[i] / n * v[idx(o, i, s)];
                }
            }
        }
    }
    res.iter().zip(w).map(|(a, b)| a - b).collect()
}

/// Magnitudes near the rows' (or columns') true norms, perturbed so DoRA visibly matters.
pub fn magnitude(
    key: &str,
    w: &[f32],
    out: usize,
    inn: usize,
    kk: usize,
    on_out: bool,
    dims: &[usize],
) -> T {
    let n = if on_out { out } else { inn };
    let noise = rnd(99, n, 0.3);
    let data = (0..n)
        .map(|a| {
            let mut s = 0f32;
            for o in 0..out {
                for i in 0..inn {
                    for k in 0..kk {
                        if (on_out && o == a) || (!on_out && i == a) {
                            s += w[(o * inn + i) * kk + k].powi(2);
                        }
                    }
                }
            }
            s.sqrt() * (1.0 + noise[a])
        })
        .collect();
    T {
        key: key.into(),
        data,
        dims: dims.to_vec(),
    }
}

/// A safetensors file written by hand, with `__metadata__`.
pub fn save_with_meta(dir: &Path, name: &str, ts: &[&T], meta: &[(&str, String)]) -> PathBuf {
    let mut header = serde_json::Map::new();
    let meta: serde_json::Map<String, serde_json::Value> = meta
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.clone())))
        .collect();
    header.insert("__metadata__".into(), meta.into());
    let mut data = Vec::new();
    for t in ts {
        let start = data.len();
        for v in &t.data {
            data.extend_from_slice(&v.to_le_bytes());
        }
        header.insert(
            t.key.clone(),
            serde_json::json!({"dtype": "F32", "shape": t.dims, "data_offsets": [start, data.len()]}),
        );
    }
    let mut h = serde_json::to_vec(&serde_json::Value::Object(header)).unwrap();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut bytes = (h.len() as u64).to_le_bytes().to_vec();
    bytes.extend(h);
    bytes.extend(data);
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}
