//! The built-in node kinds, run through the executor, including bad input.

use std::path::Path;
use std::sync::Arc;

use engine::codec::{decode_image, encode_image_png, encode_mask_png};
use engine::exec::{CancelToken, Executor, OutputSink, RunRequest, Saved};
use engine::hashing::{encode_base64, sha256_hex};
use engine::{EngineError, Image, Mask, Outputs, Result};
use nodes::GraphDoc;

fn doc(v: serde_json::Value) -> GraphDoc {
    let mut v = v;
    v["format"] = "defect-studio/graph".into();
    v["version"] = 1.into();
    GraphDoc::from_json(&v.to_string()).unwrap()
}

fn run_node(g: &GraphDoc, node: &str, base: &Path) -> Result<Arc<Outputs>> {
    let mut exec = Executor::builtin();
    let req = RunRequest {
        doc: g,
        targets: Some(vec![node.into()]),
        run_seed: 0,
        base_dir: base,
    };
    let mut o = exec.run(&req, None, &|_| {}, &CancelToken::new())?;
    Ok(o.outputs.remove(node).unwrap())
}

fn image_of(o: &Outputs, port: &str) -> Image {
    (**o[port].as_image().unwrap()).clone()
}

fn mask_of(o: &Outputs, port: &str) -> Mask {
    (**o[port].as_mask().unwrap()).clone()
}

fn node_error(e: EngineError, node: &str) -> String {
    match &e {
        EngineError::Node { node: n, .. } => assert_eq!(n, node, "{e}"),
        other => panic!("expected an error of node {node}, got {other}"),
    }
    e.to_string()
}

fn gradient(w: u32, h: u32) -> Image {
    Image::from_fn(w, h, |x, y| {
        [
            x as f32 / w as f32,
            y as f32 / h as f32,
            0.5,
            if x < w / 2 { 1.0 } else { 0.4 },
        ]
    })
}

#[test]
fn load_image_from_an_embedded_asset_and_a_file() {
    let img = gradient(8, 6);
    let png = encode_image_png(&img, &[]).unwrap();
    let sha = sha256_hex(&png);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("g.png"), &png).unwrap();
    let mut assets = serde_json::Map::new();
    assets.insert(
        sha.clone(),
        serde_json::json!({"mime": "image/png", "data_base64": encode_base64(&png)}),
    );
    let g = doc(serde_json::json!({
        "nodes": {
            "a": {"kind": "LoadImage", "version": 1, "params": {"source": format!("asset:{sha}")}},
            "f": {"kind": "LoadImage", "version": 1, "params": {"source": "g.png"}}
        },
        "assets": assets
    }));
    let from_asset = run_node(&g, "a", dir.path()).unwrap();
    let from_file = run_node(&g, "f", dir.path()).unwrap();
    let a = image_of(&from_asset, "image");
    assert_eq!(a, image_of(&from_file, "image"));
    assert_eq!((a.width, a.height), (8, 6));
    for (got, want) in a.data.iter().zip(&img.data) {
        assert!((got - want).abs() <= 0.5 / 255.0 + 1e-6);
    }
    let alpha = mask_of(&from_asset, "mask");
    assert_eq!(alpha.get(0, 0), 1.0);
    assert!((alpha.get(7, 0) - 0.4).abs() < 0.01);
}

#[test]
fn bad_image_inputs_name_the_node_and_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not an image at all").unwrap();
    std::fs::write(dir.path().join("fake.png"), "not a png").unwrap();
    let png = encode_image_png(&gradient(64, 64), &[]).unwrap();
    std::fs::write(dir.path().join("cut.png"), &png[..png.len() / 2]).unwrap();
    for (file, expect) in [
        ("missing.png", "cannot read"),
        ("notes.txt", "not an image"),
        ("fake.png", "not an image"),
        ("cut.png", "cannot decode"),
    ] {
        let g = doc(
            serde_json::json!({"nodes": {"photo": {"kind": "LoadImage", "version": 1, "params": {"source": file}}}}),
        );
        let msg = node_error(run_node(&g, "photo", dir.path()).unwrap_err(), "photo");
        assert!(msg.contains(file) && msg.contains(expect), "{file}: {msg}");
    }
    let g = doc(serde_json::json!({"nodes": {"photo": {"kind": "LoadImage", "version": 1}}}));
    let msg = node_error(run_node(&g, "photo", dir.path()).unwrap_err(), "photo");
    assert!(msg.contains("no file"), "{msg}");
}

#[test]
fn load_mask_channels_and_invert() {
    let img = Image::from_fn(4, 1, |x, _| [1.0, 0.0, 0.0, x as f32 / 3.0]);
    let png = encode_image_png(&img, &[]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.png"), &png).unwrap();
    let g = doc(serde_json::json!({"nodes": {
        "red": {"kind": "LoadMask", "version": 1, "params": {"source": "m.png", "channel": "red"}},
        "alpha": {"kind": "LoadMask", "version": 1, "params": {"source": "m.png", "channel": "alpha", "invert": true}}
    }}));
    assert_eq!(
        mask_of(&run_node(&g, "red", dir.path()).unwrap(), "mask").data,
        vec![1.0; 4]
    );
    let inv = mask_of(&run_node(&g, "alpha", dir.path()).unwrap(), "mask");
    assert!((inv.get(0, 0) - 1.0).abs() < 1e-6 && inv.get(3, 0).abs() < 1e-6);
}

fn solid_into(node: serde_json::Value) -> GraphDoc {
    doc(serde_json::json!({
        "nodes": {"src": {"kind": "SolidColor", "version": 1, "params": {"width": 40, "height": 20}}, "n": node},
        "links": [{"from": ["src", "image"], "to": ["n", "image"]}]
    }))
}

#[test]
fn resize_modes() {
    let dir = Path::new(".");
    let g = solid_into(
        serde_json::json!({"kind": "Resize", "version": 1, "params": {"width": 100, "height": 0}}),
    );
    let o = run_node(&g, "n", dir).unwrap();
    assert_eq!(
        (image_of(&o, "image").width, image_of(&o, "image").height),
        (100, 50)
    );
    let g = solid_into(
        serde_json::json!({"kind": "Resize", "version": 1, "params": {"width": 60, "height": 60, "mode": "fit"}}),
    );
    let o = run_node(&g, "n", dir).unwrap();
    let img = image_of(&o, "image");
    assert_eq!((img.width, img.height), (60, 60));
    assert_eq!(img.pixel(30, 0)[3], 0.0, "letterbox is transparent");
    assert!(img.pixel(30, 30)[3] > 0.9999);
    let m = mask_of(&o, "mask");
    assert!(m.get(30, 0) == 0.0 && m.get(30, 30) > 0.9999);
    let g = solid_into(
        serde_json::json!({"kind": "Resize", "version": 1, "params": {"width": 60, "height": 60, "mode": "fill"}}),
    );
    let img = image_of(&run_node(&g, "n", dir).unwrap(), "image");
    assert_eq!((img.width, img.height), (60, 60));
    assert!(img.data.chunks_exact(4).all(|p| p[3] > 0.9999));
}

#[test]
fn absurd_sizes_are_refused_before_allocating() {
    // Within each side's range but 256 Mpx in all: the engine refuses it by name.
    let g = solid_into(
        serde_json::json!({"kind": "Resize", "version": 1, "params": {"width": 16384, "height": 16384}}),
    );
    let msg = node_error(run_node(&g, "n", Path::new(".")).unwrap_err(), "n");
    assert!(
        msg.contains("16384×16384") && msg.contains("limit"),
        "{msg}"
    );
    // Aspect ratio from a 40×20 image: width 16384 needs no more than the limit, height 0 → 8192.
    let g = solid_into(
        serde_json::json!({"kind": "Resize", "version": 1, "params": {"width": 0, "height": 16384}}),
    );
    let msg = node_error(run_node(&g, "n", Path::new(".")).unwrap_err(), "n");
    assert!(msg.contains("32768"), "{msg}");
}

#[test]
fn crop_outside_the_image_is_an_error() {
    let g = solid_into(
        serde_json::json!({"kind": "Crop", "version": 1, "params": {"x": 30, "y": 0, "width": 20}}),
    );
    let msg = node_error(run_node(&g, "n", Path::new(".")).unwrap_err(), "n");
    assert!(msg.contains("40×20"), "{msg}");
    let g =
        solid_into(serde_json::json!({"kind": "Crop", "version": 1, "params": {"x": 30, "y": 5}}));
    let img = image_of(&run_node(&g, "n", Path::new(".")).unwrap(), "image");
    assert_eq!((img.width, img.height), (10, 15));
}

#[test]
fn composite_outputs_the_paste_mask() {
    let g = doc(serde_json::json!({
        "nodes": {
            "bg": {"kind": "SolidColor", "version": 1, "params": {"width": 64, "height": 64, "color": "#ffffff"}},
            "ink": {"kind": "SolidColor", "version": 1, "params": {"width": 64, "height": 64, "color": "#000000"}},
            "dot": {"kind": "ShapeMask", "version": 1, "params": {"width": 64, "height": 64, "shape": "rectangle", "size_x": 10.0, "size_y": 10.0, "feather": 0.0}},
            "c": {"kind": "Composite", "version": 1, "params": {"opacity": 0.5}}
        },
        "links": [
            {"from": ["ink", "image"], "to": ["c", "top"]},
            {"from": ["bg", "image"], "to": ["c", "bottom"]},
            {"from": ["dot", "mask"], "to": ["c", "mask"]}
        ]
    }));
    let o = run_node(&g, "c", Path::new(".")).unwrap();
    let m = mask_of(&o, "mask");
    assert_eq!(
        m.data.iter().filter(|&&v| v > 0.5).count(),
        100,
        "a 10×10 square, whatever the opacity"
    );
    let img = image_of(&o, "image");
    assert!((img.pixel(32, 32)[0] - 0.5).abs() < 1e-6);
    assert_eq!(img.pixel(0, 0)[0], 1.0);
}

#[test]
fn mask_size_mismatch_is_an_error() {
    let g = doc(serde_json::json!({
        "nodes": {
            "bg": {"kind": "SolidColor", "version": 1, "params": {"width": 64, "height": 64}},
            "m": {"kind": "ShapeMask", "version": 1, "params": {"width": 32, "height": 32}},
            "c": {"kind": "Composite", "version": 1}
        },
        "links": [
            {"from": ["bg", "image"], "to": ["c", "top"]},
            {"from": ["bg", "image"], "to": ["c", "bottom"]},
            {"from": ["m", "mask"], "to": ["c", "mask"]}
        ]
    }));
    let msg = node_error(run_node(&g, "c", Path::new(".")).unwrap_err(), "c");
    assert!(msg.contains("32×32") && msg.contains("64×64"), "{msg}");
}

struct Collect(Vec<(String, Image, Option<Mask>, String)>);

impl OutputSink for Collect {
    fn save(
        &mut self,
        node: &str,
        image: &Image,
        mask: Option<&Mask>,
        _clean: Option<&Image>,
        template: &str,
        _label: &str,
    ) -> Result<Saved> {
        self.0
            .push((node.into(), image.clone(), mask.cloned(), template.into()));
        Ok(Saved {
            path: "x.png".into(),
            mask_path: None,
            output_id: None,
        })
    }
}

#[test]
fn save_image_hands_image_and_mask_to_the_sink_every_run() {
    let g = doc(serde_json::json!({
        "nodes": {
            "tex": {"kind": "Texture", "version": 1, "params": {"width": 32, "height": 32, "material": "concrete"}},
            "m": {"kind": "ShapeMask", "version": 1, "params": {"width": 32, "height": 32}},
            "save": {"kind": "SaveImage", "version": 1}
        },
        "links": [
            {"from": ["tex", "image"], "to": ["save", "image"]},
            {"from": ["m", "mask"], "to": ["save", "mask"]}
        ]
    }));
    let mut exec = Executor::builtin();
    let mut sink = Collect(Vec::new());
    let req = RunRequest {
        doc: &g,
        targets: None,
        run_seed: 3,
        base_dir: Path::new("."),
    };
    exec.run(&req, Some(&mut sink), &|_| {}, &CancelToken::new())
        .unwrap();
    let again = exec
        .run(&req, Some(&mut sink), &|_| {}, &CancelToken::new())
        .unwrap();
    assert_eq!(
        sink.0.len(),
        2,
        "a sink runs every time, upstream comes from the cache"
    );
    assert!(again
        .stats
        .iter()
        .filter(|s| s.node != "save")
        .all(|s| s.cached));
    assert!(sink.0[0].2.is_some());
    assert_eq!(sink.0[0].1, sink.0[1].1);
    // With no sink, saving is an error that names the node.
    let err = exec
        .run(&req, None, &|_| {}, &CancelToken::new())
        .unwrap_err();
    node_error(err, "save");
}

#[test]
fn png_codecs_round_trip_exactly_at_8_bits() {
    let img = Image::from_fn(13, 7, |x, y| [x as f32 / 12.0, y as f32 / 6.0, 0.25, 1.0]);
    let back = decode_image(&encode_image_png(&img, &[]).unwrap(), "t").unwrap();
    let quant = |v: f32| (v * 255.0).round() / 255.0;
    for (a, b) in img.data.iter().zip(&back.data) {
        assert!((quant(*a) - b).abs() < 1e-6);
    }
    let m = Mask::from_fn(5, 5, |x, _| if x > 2 { 1.0 } else { 0.0 });
    let back = decode_image(&encode_mask_png(&m, &[]).unwrap(), "m").unwrap();
    assert_eq!(back.alpha().data, vec![1.0; 25]);
    assert_eq!(back.pixel(4, 0)[0], 1.0);
    assert_eq!(back.pixel(0, 0)[0], 0.0);
}

/// Every defect kind through the executor: image and mask of the input's size, a non-empty
/// mask, same seed same bytes, another seed another result, and pixels changed only near the mask.
#[test]
fn defect_nodes_run_through_the_executor() {
    let kinds = [
        "Scratch",
        "Crack",
        "Dent",
        "Stain",
        "Chip",
        "DraemAnomaly",
        "CutPaste",
        "CutPasteScar",
        "NsaPatch",
    ];
    for kind in kinds {
        let run = |seed: u64| {
            let g = doc(serde_json::json!({
                "nodes": {
                    "tex": {"kind": "Texture", "version": 1, "params": {"width": 160, "height": 128, "material": "painted_surface", "seed": {"mode": "fixed", "value": 3}}},
                    "d": {"kind": kind, "version": 1, "params": {"seed": {"mode": "fixed", "value": seed}}}
                },
                "links": [{"from": ["tex", "image"], "to": ["d", "image"]}]
            }));
            let mut exec = Executor::builtin();
            let req = RunRequest {
                doc: &g,
                targets: Some(vec!["d".into(), "tex".into()]),
                run_seed: 0,
                base_dir: Path::new("."),
            };
            let o = exec
                .run(&req, None, &|_| {}, &CancelToken::new())
                .unwrap_or_else(|e| panic!("{kind}: {e}"));
            (
                image_of(&o.outputs["tex"], "image"),
                image_of(&o.outputs["d"], "image"),
                mask_of(&o.outputs["d"], "mask"),
            )
        };
        let (input, a, mask) = run(1);
        let (_, a2, mask2) = run(1);
        let (_, b, _) = run(2);
        assert_eq!(
            (a.width, a.height, mask.width, mask.height),
            (160, 128, 160, 128),
            "{kind}"
        );
        assert_eq!((&a, &mask), (&a2, &mask2), "{kind}: not deterministic");
        assert_ne!(a, b, "{kind}: the seed changes nothing");
        assert!(mask.data.iter().any(|v| *v >= 0.5), "{kind}: empty mask");
        // Changed pixels lie within the mask grown by a few pixels (the documented bands are <= 3).
        let near = engine::ops::grow(&engine::ops::threshold(&mask, 0.0), 3.5);
        for (i, (p, q)) in input
            .data
            .chunks_exact(4)
            .zip(a.data.chunks_exact(4))
            .enumerate()
        {
            let diff = (0..3).map(|c| (p[c] - q[c]).abs()).fold(0.0f32, f32::max);
            if diff > 2.0 / 255.0 {
                assert!(
                    near.data[i] > 0.5,
                    "{kind}: pixel {i} changed by {diff} outside the mask"
                );
            }
        }
    }
}

#[test]
fn cleanup_node_fills_only_the_hole() {
    let g = doc(serde_json::json!({
        "nodes": {
            "tex": {"kind": "Texture", "version": 1, "params": {"width": 96, "height": 96, "material": "brushed_metal"}},
            "hole": {"kind": "ShapeMask", "version": 1, "params": {"width": 96, "height": 96, "size_x": 20.0, "size_y": 14.0, "feather": 0.0}},
            "ink": {"kind": "SolidColor", "version": 1, "params": {"width": 96, "height": 96, "color": "#000000"}},
            "blot": {"kind": "Composite", "version": 1},
            "clean": {"kind": "Cleanup", "version": 1, "params": {"grow": 0.0}}
        },
        "links": [
            {"from": ["ink", "image"], "to": ["blot", "top"]},
            {"from": ["tex", "image"], "to": ["blot", "bottom"]},
            {"from": ["hole", "mask"], "to": ["blot", "mask"]},
            {"from": ["blot", "image"], "to": ["clean", "image"]},
            {"from": ["hole", "mask"], "to": ["clean", "mask"]}
        ]
    }));
    let mut exec = Executor::builtin();
    let req = RunRequest {
        doc: &g,
        targets: Some(vec!["clean".into(), "blot".into(), "hole".into()]),
        run_seed: 0,
        base_dir: Path::new("."),
    };
    let o = exec.run(&req, None, &|_| {}, &CancelToken::new()).unwrap();
    let (blot, clean, hole) = (
        image_of(&o.outputs["blot"], "image"),
        image_of(&o.outputs["clean"], "image"),
        mask_of(&o.outputs["hole"], "mask"),
    );
    let mut dark = 0;
    for i in 0..hole.data.len() {
        if hole.data[i] < 0.5 {
            assert_eq!(
                &clean.data[i * 4..i * 4 + 4],
                &blot.data[i * 4..i * 4 + 4],
                "pixel {i} outside the hole changed"
            );
        } else if clean.data[i * 4] < 0.2 {
            dark += 1;
        }
    }
    assert_eq!(dark, 0, "the black blot is still there");
}

/// Parameters whose run-time bound depends on the input image, not on the spec: a crop
/// rectangle must lie inside the image, and Cleanup's grown hole must leave some of the image
/// to copy from; only their minimum is run here.
const BOUNDED_BY_THE_INPUT: &[(&str, &str)] = &[
    ("Crop", "x"),
    ("Crop", "y"),
    ("Crop", "width"),
    ("Crop", "height"),
    ("Cleanup", "grow"),
];

/// Kinds the range test does not run: they need model weights or input files.
const NEEDS_MODELS_OR_FILES: &[&str] = &[
    "RemoveBackground",
    "LoadImage",
    "LoadMask",
    "LoadImageFolder",
    // A trained detector file (tested with fake detectors in inspect_nodes.rs).
    "LoadDetector",
    "Classify",
    // Rejects the item by design when the score misses the threshold (inspect_nodes.rs).
    "FilterByScore",
    // A ControlNet file, and a loaded one on the input (controlnet_nodes.rs, sd_controlnet.rs).
    "LoadControlNet",
    "ControlNet",
];

/// The catalogue's ranges equal the run-time checks: every kind that runs without models,
/// files or a sink runs on a small image with each numeric parameter at its spec minimum and
/// at its spec maximum (the others at their defaults; the other end of a declared range moves
/// along where the default would invert it).
#[test]
fn every_numeric_parameter_runs_at_both_ends_of_its_spec_range() {
    use nodes::{Catalogue, ParamKind, PortType};
    let catalogue = Catalogue::builtin();
    let diffusion: Vec<&str> = [
        &nodes::diffusion::LOAD_CHECKPOINT,
        &nodes::diffusion::LORA_LOADER,
        &nodes::diffusion::TXT2IMG,
        &nodes::diffusion::IMG2IMG,
        &nodes::diffusion::INPAINT,
    ]
    .iter()
    .map(|s| s.kind)
    .collect();
    let mut cases = Vec::new();
    for spec in catalogue.specs() {
        if spec.sink || diffusion.contains(&spec.kind) || NEEDS_MODELS_OR_FILES.contains(&spec.kind)
        {
            continue;
        }
        for p in spec.params {
            let ends = match p.kind {
                ParamKind::Int { min, max, .. } => [serde_json::json!(min), serde_json::json!(max)],
                ParamKind::Float { min, max, .. } => {
                    [serde_json::json!(min), serde_json::json!(max)]
                }
                _ => continue,
            };
            for (i, v) in ends.into_iter().enumerate() {
                if i == 1 && BOUNDED_BY_THE_INPUT.contains(&(spec.kind, p.name)) {
                    continue;
                }
                let mut params = serde_json::Map::new();
                let x = v.as_f64().unwrap();
                // Keep declared ranges ordered: move the other end along when needed.
                if let Some(lo) = p.at_least {
                    let d = spec.param(lo).unwrap().default_value().as_f64().unwrap();
                    if d > x {
                        params.insert(lo.into(), v.clone());
                    }
                }
                for q in spec.params.iter().filter(|q| q.at_least == Some(p.name)) {
                    if q.default_value().as_f64().unwrap() < x {
                        params.insert(q.name.into(), v.clone());
                    }
                }
                params.insert(p.name.into(), v);
                cases.push((spec, p.name, params));
            }
        }
    }
    assert!(cases.len() > 100, "only {} cases", cases.len());
    let failures = std::sync::Mutex::new(Vec::new());
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                let mut exec = Executor::builtin();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some((spec, name, params)) = cases.get(i) else {
                        break;
                    };
                    let mut nodes = serde_json::json!({
                        "src": {"kind": "Texture", "version": 1, "params": {"width": 96, "height": 80, "material": "concrete"}},
                        "m": {"kind": "ShapeMask", "version": 1, "params": {"size_x": 24.0, "size_y": 18.0}},
                        "n": {"kind": spec.kind, "version": 1, "params": params},
                    });
                    let mut links = vec![serde_json::json!({"from": ["src", "image"], "to": ["m", "like"]})];
                    for port in spec.inputs.iter().filter(|p| !p.optional) {
                        let from = match port.ty {
                            PortType::Image => ["src", "image"],
                            PortType::Mask => ["m", "mask"],
                            other => panic!("{}: no test source for a {other} input", spec.kind),
                        };
                        links.push(serde_json::json!({"from": from, "to": ["n", port.name]}));
                    }
                    nodes["n"]["params"] = serde_json::Value::Object(params.clone());
                    let g = doc(serde_json::json!({"nodes": nodes, "links": links}));
                    let req = RunRequest {
                        doc: &g,
                        targets: Some(vec!["n".into()]),
                        run_seed: 0,
                        base_dir: Path::new("."),
                    };
                    if let Err(e) = exec.run(&req, None, &|_| {}, &CancelToken::new()) {
                        failures.lock().unwrap().push(format!(
                            "{}.{name} with {}: {e}",
                            spec.kind,
                            serde_json::Value::Object(params.clone())
                        ));
                    }
                    exec.clear_cache();
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{failures:#?}");
}

/// An output nobody reads is left out (a large photo's alpha is a full-size buffer), and a later
/// run that reads it computes the node again instead of taking the cache entry without it.
#[test]
fn unread_outputs_are_skipped_and_recomputed_when_read() {
    let dir = tempfile::tempdir().unwrap();
    let png = encode_image_png(&gradient(8, 6), &[]).unwrap();
    std::fs::write(dir.path().join("g.png"), &png).unwrap();
    let load =
        serde_json::json!({"kind": "LoadImage", "version": 1, "params": {"source": "g.png"}});
    let only_image = doc(serde_json::json!({
        "nodes": {"l": load, "r": {"kind": "Resize", "version": 1, "params": {"width": 4, "height": 3}}},
        "links": [{"from": ["l", "image"], "to": ["r", "image"]}]
    }));
    let with_mask = doc(serde_json::json!({
        "nodes": {"l": load, "m": {"kind": "MaskOps", "version": 1, "params": {}}},
        "links": [{"from": ["l", "mask"], "to": ["m", "mask"]}]
    }));
    let mut exec = Executor::builtin();
    let run = |exec: &mut Executor, g: &GraphDoc, target: &str| {
        let req = RunRequest {
            doc: g,
            targets: Some(vec![target.into()]),
            run_seed: 0,
            base_dir: dir.path(),
        };
        exec.run(&req, None, &|_| {}, &CancelToken::new()).unwrap()
    };
    let first = run(&mut exec, &only_image, "r");
    assert!(
        first.outputs["l"].get("mask").is_none(),
        "the unread mask was made"
    );
    assert!(first.outputs["l"].get("image").is_some());
    let second = run(&mut exec, &with_mask, "m");
    let l = second.stats.iter().find(|s| s.node == "l").unwrap();
    assert!(!l.cached, "a cache entry without the mask was used");
    assert_eq!(mask_of(&second.outputs["l"], "mask").data.len(), 48);
    // And a target's outputs are all made.
    let third = run(&mut exec, &only_image, "l");
    assert!(third.outputs["l"].get("mask").is_some());
}
