//! The trainable EfficientNet-Lite0 and `train-classifier` (docs/ARCHITECTURE.md, §15):
//! gradient parity with PyTorch, determinism, resume, and bad input.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use engine::inspect::net::{reference_shapes, Head, Net};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/inspect/train")
        .join(name)
}

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

fn fnv1a(name: &str) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01B3);
    }
    h
}

/// The fixture script's synthetic tensors, bit for bit (see make_train_fixtures.py).
fn synthetic(name: &str, shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    let seed = fnv1a(name);
    let is_bn = name.contains("._bn") || name.starts_with("_bn");
    let fan_in = (n / shape[0]) as f64;
    let v: Vec<f32> = (0..n as u64)
        .map(|i| {
            let mut z = seed.wrapping_add(i.wrapping_mul(GOLDEN));
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            let u = (z >> 40) as f64 / f64::from(1u32 << 24);
            let v = if is_bn && (name.ends_with(".weight") || name.ends_with(".running_var")) {
                0.5 + u
            } else if is_bn {
                0.2 * (2.0 * u - 1.0)
            } else if name == "_fc.bias" {
                0.1 * (2.0 * u - 1.0)
            } else if name == "input" {
                2.0 * u - 1.0
            } else {
                (2.0 * u - 1.0) * (6.0 / fan_in).sqrt()
            };
            v as f32
        })
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

/// One batch's loss and gradients equal PyTorch's (the reference with BatchNorm fused, eval
/// mode) to 1e-4, relative to each tensor's largest value.
#[test]
fn one_batch_loss_and_gradients_equal_pytorch() {
    // BatchNorm tensors come from the fixture (calibrated there), the rest is synthetic.
    let bn =
        candle_core::safetensors::load(fixture("parity_bn.safetensors"), &Device::Cpu).unwrap();
    let mut map: HashMap<String, Tensor> = reference_shapes()
        .into_iter()
        .map(|(n, s)| {
            let t = bn.get(&n).cloned().unwrap_or_else(|| synthetic(&n, &s));
            (n, t)
        })
        .collect();
    map.insert("_fc.weight".into(), synthetic("_fc.weight", &[2, 1280]));
    map.insert("_fc.bias".into(), synthetic("_fc.bias", &[2]));
    let vb = VarBuilder::from_tensors(map, DType::F32, &Device::Cpu);
    let net = Net::from_unfused(&vb, 2, Head::Load).unwrap();
    let x = synthetic("input", &[2, 3, 64, 64]);
    let y = Tensor::new(&[0u32, 1], &Device::Cpu).unwrap();
    let logits = net.classify(&x, None).unwrap();
    let loss = candle_nn::loss::cross_entropy(&logits, &y).unwrap();
    let grads = loss.backward().unwrap();

    let want = candle_core::safetensors::load(fixture("parity.safetensors"), &Device::Cpu).unwrap();
    let close = |name: &str, got: &Tensor, want: &Tensor| {
        let got = got.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let want = want.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(want.len() <= got.len(), "{name}");
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        let diff = got
            .iter()
            .zip(&want)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            diff <= 1e-4 * scale,
            "{name}: max difference {diff} vs largest value {scale}"
        );
        assert!(scale > 0.0, "{name}: an all-zero gradient tests nothing");
    };
    close("logits", &logits, &want["logits"]);
    close("loss", &loss, &want["loss"]);
    let vars = net.vars().unwrap();
    assert_eq!(vars.len(), 100);
    for (name, var) in net.names().iter().zip(&vars) {
        let g = grads
            .get(var)
            .unwrap_or_else(|| panic!("{name}: no gradient"));
        close(name, g, &want[&format!("grad.{name}")]);
    }
}
