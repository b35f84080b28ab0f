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

// ---- train-classifier on tiny synthetic data (random weights stand in for ImageNet's) ----

use engine::exec::CancelToken;
use engine::inspect::classifier::{run_classifier, ClassifierConfig, ClassifierJob, DetectorEvent};
use engine::inspect::{load_scorer, DetectorKind, GOOD};

/// A Lite0 state dict in the reference's layout (what `models fetch` installs) with
/// synthetic weights and neutral BatchNorm, written once per test process.
fn fake_imagenet(dir: &Path) -> PathBuf {
    let mut map: HashMap<String, Tensor> = HashMap::new();
    for (n, s) in reference_shapes() {
        let t = if n.contains("_bn") {
            let c = s[0];
            let v = if n.ends_with(".weight") || n.ends_with(".running_var") {
                1.0
            } else {
                0.0
            };
            Tensor::full(v as f32, c, &Device::Cpu).unwrap()
        } else {
            synthetic(&n, &s)
        };
        map.insert(n, t);
    }
    let path = dir.join("lite0.safetensors");
    candle_core::safetensors::save(&map, &path).unwrap();
    path
}

/// Class folders: `good/` (smooth noise) and `scratch/` (the same with a dark stroke), 32².
fn class_folders(dir: &Path, per_class: usize) -> PathBuf {
    let root = dir.join("data");
    for (label, defect) in [(GOOD, false), ("scratch", true)] {
        std::fs::create_dir_all(root.join(label)).unwrap();
        for i in 0..per_class {
            let seed = i as u64 * 2 + u64::from(defect);
            let img = image::RgbImage::from_fn(32, 32, |x, y| {
                let h = fnv1a(&format!("{seed}-{x}-{y}")) % 40;
                let on = defect && (x as i64 - y as i64 - (i as i64 % 5)).abs() <= 1;
                let v = if on { 20 } else { 150 + h as u8 };
                image::Rgb([v, v, v])
            });
            img.save(root.join(label).join(format!("{i:02}.png")))
                .unwrap();
        }
    }
    root
}

fn job(data: &Path, out: &Path, weights: &Path) -> ClassifierJob {
    ClassifierJob {
        data: data.to_path_buf(),
        out: out.to_path_buf(),
        device: "cpu".into(),
        cfg: ClassifierConfig {
            epochs: 3,
            batch: 4,
            size: 32,
            val_fraction: 0.25,
            patience: 0,
            seed: 5,
            ..ClassifierConfig::default()
        },
        resume: false,
        store: None,
        weights: Some(weights.to_path_buf()),
    }
}

fn weights_of(path: &Path) -> Vec<(String, Vec<f32>)> {
    let mut all: Vec<(String, Vec<f32>)> = candle_core::safetensors::load(path, &Device::Cpu)
        .unwrap()
        .into_iter()
        .map(|(n, t)| (n, t.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

#[test]
fn same_seed_same_weights_and_a_resumed_run_equals_an_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let weights = fake_imagenet(dir.path());
    let data = class_folders(dir.path(), 8);
    let cancel = CancelToken::new();
    let a = dir.path().join("a.safetensors");
    let out = run_classifier(&job(&data, &a, &weights), &cancel, &mut |_| {}).unwrap();
    assert_eq!(out.epochs.len(), 3);
    assert_eq!(out.labels, [GOOD, "defect"]);
    let b = dir.path().join("b.safetensors");
    run_classifier(&job(&data, &b, &weights), &cancel, &mut |_| {}).unwrap();
    let wa = weights_of(&a);
    assert_eq!(wa.len(), 100);
    assert!(wa == weights_of(&b), "same seed, different weights");
    // Another seed trains other weights (the comparison can fail).
    let c = dir.path().join("c.safetensors");
    let mut other = job(&data, &c, &weights);
    other.cfg.seed = 6;
    run_classifier(&other, &cancel, &mut |_| {}).unwrap();
    assert!(wa != weights_of(&c));

    // Stopped after epoch 1 (as a kill would), then resumed: the same weights as `a`.
    let r = dir.path().join("r.safetensors");
    let stop = CancelToken::new();
    let mut j = job(&data, &r, &weights);
    let err = run_classifier(&j, &stop, &mut |e| {
        if let DetectorEvent::Epoch { metrics, .. } = e {
            if metrics.epoch == 1 {
                stop.cancel();
            }
        }
    })
    .unwrap_err();
    assert!(matches!(err, engine::EngineError::Cancelled), "{err}");
    assert!(!r.exists() && j.checkpoint_path().is_file());
    j.resume = true;
    let mut resumed_from = None;
    let out = run_classifier(&j, &cancel, &mut |e| {
        if let DetectorEvent::Started {
            resumed_from: k, ..
        } = e
        {
            resumed_from = Some(k);
        }
    })
    .unwrap();
    assert_eq!(resumed_from, Some(1));
    assert_eq!(out.epochs.len(), 3);
    assert!(wa == weights_of(&r), "the resumed run's weights differ");

    // The model file scores images as the classifier it is.
    let scorer = load_scorer(&a, &Device::Cpu).unwrap();
    assert_eq!(scorer.kind(), DetectorKind::Classifier);
    assert_eq!(scorer.labels(), [GOOD, "defect"]);
    let bytes = std::fs::read(&a).unwrap();
    assert_eq!(scorer.sha256(), engine::hashing::sha256_hex(&bytes));
    let img = image::open(data.join("good/00.png")).unwrap().to_rgb8();
    let s = scorer.score(&[img.clone(), img]).unwrap();
    assert_eq!(s.len(), 2);
    assert_eq!(s[0], s[1]);
    assert!((s[0].probs.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    assert!((s[0].score - s[0].probs[1]).abs() < 1e-6);
}

#[test]
fn bad_input_gets_a_clear_error_and_the_store_keeps_its_records() {
    let dir = tempfile::tempdir().unwrap();
    let weights = fake_imagenet(dir.path());
    let store_path = dir.path().join("store.redb");
    let cancel = CancelToken::new();
    let data = class_folders(dir.path(), 4);
    let out = dir.path().join("m.safetensors");
    let mut good = job(&data, &out, &weights);
    good.cfg.epochs = 1;
    good.store = Some(store_path.clone());
    run_classifier(&good, &cancel, &mut |_| {}).unwrap();
    let before = engine::store::Store::open(&store_path)
        .unwrap()
        .trainings()
        .unwrap();
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].1.kind, engine::store::TrainingKind::Classifier);
    assert_eq!(before[0].1.epochs.len(), 1);

    let run = |data: &Path| {
        let mut j = job(data, &dir.path().join("bad.safetensors"), &weights);
        j.store = Some(store_path.clone());
        run_classifier(&j, &cancel, &mut |_| {})
            .unwrap_err()
            .to_string()
    };
    // One class.
    let one = dir.path().join("one");
    std::fs::create_dir_all(one.join(GOOD)).unwrap();
    std::fs::copy(data.join("good/00.png"), one.join("good/00.png")).unwrap();
    std::fs::copy(data.join("good/01.png"), one.join("good/01.png")).unwrap();
    let e = run(&one);
    assert!(
        e.contains(&one.display().to_string()) && e.contains("2 classes"),
        "{e}"
    );
    // An empty folder.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let e = run(&empty);
    assert!(e.contains(&empty.display().to_string()), "{e}");
    // An image that does not decode.
    let broken = data.join("scratch/99.png");
    std::fs::write(&broken, b"not a png").unwrap();
    let e = run(&data);
    assert!(e.contains(&broken.display().to_string()), "{e}");
    assert!(!dir.path().join("bad.safetensors").exists());

    let after = engine::store::Store::open(&store_path)
        .unwrap()
        .trainings()
        .unwrap();
    assert_eq!(after.first(), before.first(), "an earlier record changed");
}

/// The studio's path: the worker thread runs a classifier training and reports it.
#[test]
fn the_worker_runs_a_classifier_training() {
    use engine::run::{DetectorJob, Worker, WorkerEvent};
    let dir = tempfile::tempdir().unwrap();
    let weights = fake_imagenet(dir.path());
    let data = class_folders(dir.path(), 4);
    let out = dir.path().join("w.safetensors");
    let mut j = job(&data, &out, &weights);
    j.cfg.epochs = 1;
    let exec = engine::exec::Executor::new(
        nodes::Catalogue::new(vec![]),
        engine::Registry::new(),
        1 << 20,
    );
    let worker = Worker::spawn(exec);
    worker.submit_detector(DetectorJob::Classifier(j)).unwrap();
    let (mut epochs, mut steps) = (0, 0);
    loop {
        let e = worker
            .events()
            .recv_timeout(std::time::Duration::from_secs(120))
            .unwrap();
        match e {
            WorkerEvent::Detector(DetectorEvent::Step { .. }) => steps += 1,
            WorkerEvent::Detector(DetectorEvent::Epoch { .. }) => epochs += 1,
            WorkerEvent::DetectorFinished(r) => {
                let o = r.unwrap();
                assert_eq!(o.model, out);
                break;
            }
            _ => {}
        }
    }
    assert_eq!((epochs, steps), (1, 2));
    assert!(out.is_file());
}
