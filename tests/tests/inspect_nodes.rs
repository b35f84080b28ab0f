//! The inspection loop through the CLI (issue 20): `caption` gives a known recipe's exact
//! caption and `caption --kohya` writes one `.txt` per image with that text, never over an
//! existing file; a missing detector model is reported like any missing model.

mod common;

use common::{assert_clean_failure, saved_paths, stderr, stdout, Env};

const RECIPE: &str = r#"{
  "format": "defect-studio/graph", "version": 1,
  "nodes": {
    "tex": {"kind": "Texture", "version": 1,
            "params": {"material": "wood_grain", "width": 32, "height": 32}},
    "scratch": {"kind": "Scratch", "version": 1,
                "params": {"count": 2, "length": 12.0, "width": 1.0}},
    "chip": {"kind": "Chip", "version": 1, "params": {"size": 4.0}},
    "save": {"kind": "SaveImage", "version": 1, "params": {"filename": "img-{item:02}.png"}}
  },
  "links": [
    {"from": ["tex", "image"], "to": ["scratch", "image"]},
    {"from": ["scratch", "image"], "to": ["chip", "image"]},
    {"from": ["chip", "image"], "to": ["save", "image"]},
    {"from": ["chip", "mask"], "to": ["save", "mask"]}
  ]
}"#;

#[test]
fn caption_kohya_writes_one_caption_per_image() {
    let env = Env::new();
    let graph = env.write("wood.json", RECIPE);
    let out = env.out();
    let o = env.run(&[
        "run",
        graph.to_str().unwrap(),
        "--count",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let images = saved_paths(&o);
    assert_eq!(images.len(), 3, "{}", stdout(&o));
    let want = "wood grain, 2 scratches, 1 chip";

    let args: Vec<&str> = images.iter().map(|p| p.to_str().unwrap()).collect();
    let o = env.run(&[&["caption"][..], &args].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<String> = stdout(&o).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 3);
    for (line, img) in lines.iter().zip(&images) {
        assert_eq!(line, &format!("{}\t{want}", img.display()));
    }

    let kohya = env.dir.path().join("train");
    let o = env.run(
        &[
            &["caption", "--kohya", kohya.to_str().unwrap(), "--json"][..],
            &args,
        ]
        .concat(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 3);
    let mut txts: Vec<_> = std::fs::read_dir(&kohya)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    txts.sort();
    assert_eq!(txts.len(), 3);
    for (txt, img) in txts.iter().zip(&images) {
        assert_eq!(txt.file_stem(), img.file_stem());
        assert_eq!(std::fs::read_to_string(txt).unwrap(), want);
    }

    // An existing caption is not replaced without --overwrite, and nothing else is written.
    std::fs::write(&txts[1], "mine").unwrap();
    std::fs::remove_file(&txts[0]).unwrap();
    let o = env.run(&[&["caption", "--kohya", kohya.to_str().unwrap()][..], &args].concat());
    assert_clean_failure(&o, &["exists", "--overwrite"]);
    assert_eq!(std::fs::read_to_string(&txts[1]).unwrap(), "mine");
    assert!(!txts[0].exists());
    let o = env.run(
        &[
            &["caption", "--kohya", kohya.to_str().unwrap(), "--overwrite"][..],
            &args,
        ]
        .concat(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&txts[1]).unwrap(), want);
}

#[test]
fn caption_of_a_foreign_image_names_the_file() {
    let env = Env::new();
    let png = env.dir.path().join("photo.png");
    image::RgbImage::new(4, 4).save(&png).unwrap();
    let o = env.run(&["caption", png.to_str().unwrap()]);
    assert_clean_failure(&o, &["photo.png", "no recipe"]);
}

#[test]
fn a_missing_detector_is_reported_like_a_missing_model() {
    let env = Env::new();
    let graph = env.write(
        "classify.json",
        r#"{
  "format": "defect-studio/graph", "version": 1,
  "nodes": {
    "img": {"kind": "SolidColor", "version": 1, "params": {"width": 8, "height": 8}},
    "det": {"kind": "LoadDetector", "version": 1, "params": {"model": "no-such-detector.safetensors"}},
    "classify": {"kind": "Classify", "version": 1},
    "filter": {"kind": "FilterByScore", "version": 1},
    "save": {"kind": "SaveImage", "version": 1}
  },
  "links": [
    {"from": ["det", "detector"], "to": ["classify", "detector"]},
    {"from": ["img", "image"], "to": ["classify", "image"]},
    {"from": ["classify", "score"], "to": ["filter", "score"]},
    {"from": ["img", "image"], "to": ["filter", "image"]},
    {"from": ["filter", "image"], "to": ["save", "image"]}
  ]
}"#,
    );
    let o = env.run(&["validate", graph.to_str().unwrap()]);
    assert_clean_failure(&o, &["detector model", "no-such-detector", "det"]);
}

/// A white 8×8 square pasted on grey, checked against a 4×4 mask inside it: the change spills
/// out, so MaskFidelity (`reject`) turns every attempt down.
const SPILL: &str = r##"{
  "format": "defect-studio/graph", "version": 1,
  "nodes": {
    "clean": {"kind": "SolidColor", "version": 1, "params": {"width": 32, "height": 32}},
    "top": {"kind": "SolidColor", "version": 1,
            "params": {"width": 8, "height": 8, "color": "#ffffff"}},
    "paste": {"kind": "Composite", "version": 1, "params": {"x": 8, "y": 8}},
    "small": {"kind": "ShapeMask", "version": 1,
              "params": {"shape": "rectangle", "x": 0.375, "y": 0.375,
                         "size_x": 4.0, "size_y": 4.0, "feather": 0.0}},
    "fid": {"kind": "MaskFidelity", "version": 1,
            "params": {"action": "reject", "max_attempts": 3}},
    "save": {"kind": "SaveImage", "version": 1}
  },
  "links": [
    {"from": ["top", "image"], "to": ["paste", "top"]},
    {"from": ["clean", "image"], "to": ["paste", "bottom"]},
    {"from": ["clean", "image"], "to": ["small", "like"]},
    {"from": ["clean", "image"], "to": ["fid", "clean"]},
    {"from": ["paste", "image"], "to": ["fid", "changed"]},
    {"from": ["small", "mask"], "to": ["fid", "mask"]},
    {"from": ["paste", "image"], "to": ["save", "image"]}
  ]
}"##;

#[test]
fn rejected_items_are_reported_and_recorded() {
    let env = Env::new();
    let graph = env.write("spill.json", SPILL);
    let out = env.out();
    let o = env.run(&[
        "run",
        graph.to_str().unwrap(),
        "--count",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    // MaskFidelity is a check: it runs though nothing reads it, and before SaveImage.
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(saved_paths(&o).is_empty(), "{text}");
    assert!(
        text.contains("filters: 2 item(s) retried (6 attempts in all), 0 kept, 2 rejected"),
        "{text}"
    );
    assert!(text.contains("outside the mask"), "{text}");
    let history = env.history();
    let retries = history[0]["retries"].as_array().unwrap();
    assert_eq!(retries.len(), 2);
    for r in retries {
        assert_eq!(r["kept"], false);
        assert_eq!(r["seeds"].as_array().unwrap().len(), 3);
        assert_eq!(r["reasons"].as_array().unwrap().len(), 3);
    }
}

/// transformers' greedy captions of two repository images with the tiny random-weight BLIP
/// (tests/fixtures/inspect/blip/expected.json, made by make_blip_fixtures.py).
fn blip_expected() -> Vec<(std::path::PathBuf, String)> {
    let root = common::repo();
    let text =
        std::fs::read_to_string(root.join("tests/fixtures/inspect/blip/expected.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    ["coffee", "chelsea"]
        .iter()
        .map(|k| {
            let e = &v["images"][k];
            (
                root.join(e["file"].as_str().unwrap()),
                e["caption"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn caption_blip_gives_transformers_captions_and_reports_a_missing_model() {
    let env = Env::new();
    let model = common::repo().join("tests/fixtures/inspect/blip/tiny-blip");
    let expected = blip_expected();
    let mut args = vec![
        "caption".to_string(),
        "--blip".into(),
        model.to_string_lossy().into_owned(),
        "--device".into(),
        "cpu".into(),
    ];
    args.extend(
        expected
            .iter()
            .map(|(p, _)| p.to_string_lossy().into_owned()),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = env.run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<String> = stdout(&o).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 2);
    for (line, (p, caption)) in lines.iter().zip(&expected) {
        assert_eq!(line, &format!("{}\t{caption}", p.display()));
    }
    // A missing model is the missing-model report, naming it.
    let img = expected[0].0.to_string_lossy().into_owned();
    let o = env.run(&["caption", "--blip", "no-such-blip", &img]);
    assert_clean_failure(&o, &["no-such-blip"]);
}
