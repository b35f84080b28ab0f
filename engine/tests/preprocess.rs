//! The control-image preprocessors (`engine::preprocess`): Canny against OpenCV's own output
//! (fixtures made by `tests/fixtures/preprocess/make_canny_fixtures.py`), MaskToControl on known
//! shapes, SoftEdge's properties, and the nodes through the executor.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use engine::codec::decode_image;
use engine::exec::{CancelToken, Executor, RunRequest};
use engine::preprocess::{canny, mask_to_control, soft_edge, MaskControlMode};
use engine::{Image, Mask, Outputs, Result};
use nodes::GraphDoc;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/preprocess")
}

fn load_png(name: &str) -> Image {
    let bytes = std::fs::read(fixtures().join(name)).unwrap();
    decode_image(&bytes, name).unwrap()
}

/// Whether each pixel is white (R > 0.5); checks the image is exactly black or white, opaque.
fn on_pixels(img: &Image) -> Vec<bool> {
    img.data
        .chunks_exact(4)
        .map(|p| {
            assert_eq!(p[3], 1.0, "alpha");
            assert!(p[0] == p[1] && p[1] == p[2], "grey {p:?}");
            assert!(p[0] == 0.0 || p[0] == 1.0, "binary {p:?}");
            p[0] == 1.0
        })
        .collect()
}

fn count(on: &[bool]) -> usize {
    on.iter().filter(|&&v| v).count()
}

// ---------------------------------------------------------------------------------------------
// Canny

#[test]
fn canny_equals_opencv_on_every_fixture() {
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("cases.json")).unwrap())
            .unwrap();
    let cases = manifest["cases"].as_array().unwrap();
    assert!(cases.len() >= 15, "{} cases", cases.len());
    let (mut total, mut differing) = (0usize, 0usize);
    for case in cases {
        let img = load_png(case["image"].as_str().unwrap());
        let (low, high) = (
            case["low"].as_f64().unwrap(),
            case["high"].as_f64().unwrap(),
        );
        let reference = load_png(case["edges"].as_str().unwrap());
        let ref_on: Vec<bool> = reference.data.chunks_exact(4).map(|p| p[0] > 0.5).collect();
        assert_eq!(
            count(&ref_on) as u64,
            case["edge_pixels"].as_u64().unwrap(),
            "{case}"
        );
        let ours = canny(&img, low, high);
        assert_eq!((ours.width, ours.height), (img.width, img.height));
        let on = on_pixels(&ours);
        let diff = on.iter().zip(&ref_on).filter(|(a, b)| a != b).count();
        println!(
            "{}: {} of {} pixels differ ({} edge pixels)",
            case["edges"],
            diff,
            on.len(),
            count(&ref_on)
        );
        total += on.len();
        differing += diff;
    }
    println!(
        "Canny agreement with OpenCV {}: {:.4} % of {total} pixels",
        manifest["versions"]["opencv"],
        100.0 * (total - differing) as f64 / total as f64
    );
    assert_eq!(differing, 0, "pixels differing from cv2.Canny");
}

#[test]
fn canny_thresholds_matter_and_are_floored_and_ordered() {
    let img = load_png("astronaut.png");
    let strict = count(&on_pixels(&canny(&img, 100.0, 200.0)));
    let loose = count(&on_pixels(&canny(&img, 50.0, 150.0)));
    assert!(loose > strict && strict > 0, "{loose} vs {strict}");
    // cvFloor on the thresholds, and OpenCV's swap when low > high.
    assert_eq!(canny(&img, 100.7, 200.9), canny(&img, 100.0, 200.0));
    assert_eq!(canny(&img, 200.0, 100.0), canny(&img, 100.0, 200.0));
    // Above the largest possible gradient (4·255 in each of dx and dy) nothing is an edge.
    assert_eq!(count(&on_pixels(&canny(&img, 2040.0, 2040.0))), 0);
}

#[test]
fn canny_quantises_like_the_png_writer_and_ignores_alpha() {
    let img = load_png("coffee.png");
    let reference = canny(&img, 100.0, 200.0);
    // Values within half a level of the stored byte quantise back to it.
    let mut nudged = img.clone();
    for (i, v) in nudged.data.iter_mut().enumerate() {
        if i % 4 == 3 {
            *v = 0.25; // alpha plays no part
        } else if i % 7 == 0 {
            *v += 0.45 / 255.0;
        } else if i % 5 == 0 {
            *v -= 0.45 / 255.0;
        }
    }
    assert_eq!(canny(&nudged, 100.0, 200.0), reference);
    // A flat image and tiny images have no edges (and do not panic).
    let flat = Image::filled(33, 17, [0.3, 0.6, 0.9, 1.0]);
    assert_eq!(count(&on_pixels(&canny(&flat, 0.0, 0.0))), 0);
    for (w, h) in [(1, 1), (1, 9), (9, 1), (2, 2), (0, 0)] {
        let img = Image::from_fn(w, h, |x, y| [(x * 7 % 2) as f32, (y % 2) as f32, 0.0, 1.0]);
        let e = canny(&img, 10.0, 20.0);
        assert_eq!((e.width, e.height), (w, h));
    }
}

// ---------------------------------------------------------------------------------------------
// MaskToControl

fn disk(size: u32, cx: f32, cy: f32, r: f32) -> Mask {
    let mut data = Vec::with_capacity((size * size) as usize);
    for y in 0..size {
        for x in 0..size {
            let d = (x as f32 - cx).hypot(y as f32 - cy);
            data.push(if d <= r { 1.0 } else { 0.0 });
        }
    }
    Mask {
        width: size,
        height: size,
        data,
    }
}

/// Distances of the white pixels from the circle of radius `r` about (`cx`, `cy`).
fn ring_extent(on: &[bool], size: u32, cx: f32, cy: f32, r: f32) -> (f32, f32) {
    let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
    for (i, &v) in on.iter().enumerate() {
        if v {
            let (x, y) = ((i as u32 % size) as f32, (i as u32 / size) as f32);
            let d = (x - cx).hypot(y - cy) - r;
            lo = lo.min(d);
            hi = hi.max(d);
        }
    }
    (lo, hi)
}

#[test]
fn edges_of_a_disk_are_a_ring_of_the_line_width() {
    let (size, c, r) = (200, 99.5, 60.0);
    let m = disk(size, c, c, r);
    for width in [1u32, 2, 3, 5, 8] {
        let on = on_pixels(&mask_to_control(&m, MaskControlMode::Edges, width));
        let n = count(&on) as f32;
        let expected = 2.0 * std::f32::consts::PI * r * width as f32;
        println!("edges width {width}: {n} pixels, 2πr·w = {expected:.0}");
        // Digital lines hold fewer pixels per unit length off the axes (a 1-px diagonal line
        // has 1/√2 per unit), so the counts sit a few % under 2πr·w.
        let ratio = n / expected;
        assert!(
            ratio > 0.87 && ratio < 1.03,
            "width {width}: {n} vs {expected}"
        );
        let (lo, hi) = ring_extent(&on, size, c, c, r);
        let half = width as f32 / 2.0;
        assert!(
            lo > -half - 1.0 && hi < half + 1.0,
            "width {width}: {lo}..{hi}"
        );
    }
    // Width 1: exactly the inside pixels with a 4-neighbour outside.
    let on = on_pixels(&mask_to_control(&m, MaskControlMode::Edges, 1));
    let inside = |x: i64, y: i64| m.data[(y * size as i64 + x) as usize] >= 0.5;
    for y in 1..size as i64 - 1 {
        for x in 1..size as i64 - 1 {
            let outline = inside(x, y)
                && [(-1, 0), (1, 0), (0, -1), (0, 1)]
                    .iter()
                    .any(|(dx, dy)| !inside(x + dx, y + dy));
            assert_eq!(on[(y * size as i64 + x) as usize], outline, "({x}, {y})");
        }
    }
}

#[test]
fn scribble_strokes_are_thicker_and_rounded() {
    let (size, c, r) = (200, 99.5, 60.0);
    let m = disk(size, c, c, r);
    for width in [1u32, 3, 6] {
        let on = on_pixels(&mask_to_control(&m, MaskControlMode::Scribble, width));
        let n = count(&on) as f32;
        let expected = 2.0 * std::f32::consts::PI * r * (2 * width + 1) as f32;
        println!("scribble width {width}: {n} pixels, 2πr·(2w+1) = {expected:.0}");
        let ratio = n / expected;
        assert!(
            ratio > 0.87 && ratio < 1.03,
            "width {width}: {n} vs {expected}"
        );
        let edges = count(&on_pixels(&mask_to_control(
            &m,
            MaskControlMode::Edges,
            width,
        )));
        assert!(n as usize > edges, "scribble {n} vs edges {edges}");
        let (lo, hi) = ring_extent(&on, size, c, c, r);
        let reach = width as f32 + 2.0;
        assert!(lo > -reach - 1.0 && hi < reach, "width {width}: {lo}..{hi}");
    }
    // A square's outline (pixels 20..60) drawn with a round brush: the sides reach out the full
    // radius, the corners are rounded (a square brush would reach (15, 15)).
    let mut rect = Mask {
        width: 80,
        height: 80,
        data: vec![0.0; 6400],
    };
    for y in 20..60 {
        for x in 20..60 {
            rect.data[y * 80 + x] = 1.0;
        }
    }
    let on = on_pixels(&mask_to_control(&rect, MaskControlMode::Scribble, 5));
    assert!(
        on[40 * 80 + 15] && on[15 * 80 + 40],
        "the sides reach out 5 px"
    );
    assert!(!on[40 * 80 + 14], "and no further");
    assert!(!on[15 * 80 + 15], "the corner is rounded");
}

#[test]
fn fill_is_the_binarised_mask() {
    let m = disk(64, 30.0, 33.0, 20.0);
    let on = on_pixels(&mask_to_control(&m, MaskControlMode::Fill, 3));
    let expected: Vec<bool> = m.data.iter().map(|&v| v >= 0.5).collect();
    assert_eq!(on, expected);
    // A soft mask is binarised at 0.5.
    let soft = Mask {
        width: 4,
        height: 1,
        data: vec![0.2, 0.49, 0.5, 0.9],
    };
    let on = on_pixels(&mask_to_control(&soft, MaskControlMode::Fill, 1));
    assert_eq!(on, vec![false, false, true, true]);
}

#[test]
fn the_image_border_is_not_an_outline() {
    // The left half selected: the only outline is the vertical edge in the middle.
    let m = Mask {
        width: 40,
        height: 30,
        data: (0..1200)
            .map(|i| if i % 40 < 20 { 1.0 } else { 0.0 })
            .collect(),
    };
    // Edges of width 2: one column each side of the edge; scribble of radius 2: the outline
    // column 19 and 2 px either side.
    for (mode, columns) in [
        (MaskControlMode::Edges, 19..=20),
        (MaskControlMode::Scribble, 17..=21),
    ] {
        let on = on_pixels(&mask_to_control(&m, mode, 2));
        for (i, &v) in on.iter().enumerate() {
            let x = i % 40;
            assert_eq!(v, columns.contains(&x), "{mode:?} x {x}");
        }
    }
    // An empty and a full mask have no outline.
    for v in [0.0, 1.0] {
        let m = Mask {
            width: 16,
            height: 16,
            data: vec![v; 256],
        };
        for mode in [MaskControlMode::Edges, MaskControlMode::Scribble] {
            assert_eq!(count(&on_pixels(&mask_to_control(&m, mode, 3))), 0);
        }
    }
}

#[test]
fn mask_control_modes_match_the_catalogue() {
    for name in nodes::control::MASK_CONTROL_MODES {
        let mode = MaskControlMode::from_name(name).unwrap();
        let json: MaskControlMode = serde_json::from_value(serde_json::json!(name)).unwrap();
        assert_eq!(mode, json);
    }
    assert_eq!(MaskControlMode::from_name("outline"), None);
}

// ---------------------------------------------------------------------------------------------
// SoftEdge

fn grey_of(img: &Image, x: u32, y: u32) -> f32 {
    let p = img.pixel(x, y);
    assert!(p[0] == p[1] && p[1] == p[2] && p[3] == 1.0, "{p:?}");
    p[0]
}

#[test]
fn soft_edge_of_a_flat_image_is_black() {
    for colour in [
        [0.0, 0.0, 0.0, 1.0],
        [0.3, 0.7, 0.2, 1.0],
        [1.0, 1.0, 1.0, 0.5],
    ] {
        let img = Image::filled(48, 40, colour);
        for (blur, gain) in [(0.0, 1.0), (1.0, 1.0), (4.0, 8.0)] {
            let e = soft_edge(&img, blur, gain);
            assert_eq!((e.width, e.height), (48, 40));
            for y in 0..40 {
                for x in 0..48 {
                    assert_eq!(grey_of(&e, x, y), 0.0);
                }
            }
        }
    }
}

#[test]
fn soft_edge_of_a_step_is_a_bright_soft_line_at_the_step() {
    // Dark left of x = 32, light from x = 32 on.
    let img = Image::from_fn(64, 24, |x, _| {
        let v = if x < 32 { 0.2 } else { 0.8 };
        [v, v, v, 1.0]
    });
    for blur in [0.0f32, 1.0, 2.5] {
        let e = soft_edge(&img, blur, 1.0);
        let row: Vec<f32> = (0..64).map(|x| grey_of(&e, x, 12)).collect();
        // Every row the same (the step is vertical).
        for y in 0..24 {
            for x in 0..64 {
                assert_eq!(grey_of(&e, x, y), row[x as usize]);
            }
        }
        let peak = row[31].max(row[32]);
        assert!(peak > 0.95, "blur {blur}: peak {peak} {row:?}");
        let reach = (3.0 * blur).ceil() as usize + 2;
        for (x, &v) in row.iter().enumerate() {
            let dist = if x < 32 { 31 - x } else { x - 32 };
            if dist >= reach {
                assert_eq!(v, 0.0, "blur {blur}: x {x} {row:?}");
            }
        }
        // Soft: with a blur the line has intermediate greys, brighter nearer the step.
        if blur >= 1.0 {
            assert!(
                row[29] > 0.05 && row[29] < row[30] && row[30] <= row[31],
                "{row:?}"
            );
        }
    }
    // Gain brightens the mid greys, never the black or the white.
    let soft = soft_edge(&img, 2.0, 1.0);
    let strong = soft_edge(&img, 2.0, 3.0);
    for x in 0..64 {
        let (a, b) = (grey_of(&soft, x, 5), grey_of(&strong, x, 5));
        assert!(b >= a, "x {x}: {b} < {a}");
        if a == 0.0 || a == 1.0 {
            assert_eq!(a, b);
        }
    }
    assert!(grey_of(&strong, 29, 5) > grey_of(&soft, 29, 5));
}

#[test]
fn soft_edge_of_a_photo_has_dark_flat_areas() {
    let img = load_png("astronaut.png");
    let e = soft_edge(&img, 1.0, 1.0);
    let greys: Vec<f32> = (0..e.height)
        .flat_map(|y| (0..e.width).map(move |x| (x, y)))
        .map(|(x, y)| grey_of(&e, x, y))
        .collect();
    let mean = greys.iter().sum::<f32>() / greys.len() as f32;
    let white = greys.iter().filter(|&&v| v >= 0.999).count() as f32 / greys.len() as f32;
    println!(
        "astronaut soft edge: mean {mean:.3}, white {:.2} %",
        100.0 * white
    );
    assert!(mean > 0.02 && mean < 0.35, "mean {mean}");
    assert!(white > 0.001 && white < 0.05, "white {white}");
}

// ---------------------------------------------------------------------------------------------
// Through the executor

fn doc(v: serde_json::Value) -> GraphDoc {
    let mut v = v;
    v["format"] = "defect-studio/graph".into();
    v["version"] = 1.into();
    GraphDoc::from_json(&v.to_string()).unwrap()
}

fn run(g: &GraphDoc, targets: &[&str]) -> Result<std::collections::BTreeMap<String, Arc<Outputs>>> {
    let mut exec = Executor::builtin();
    let dir = tempfile::tempdir().unwrap();
    let req = RunRequest {
        doc: g,
        targets: Some(targets.iter().map(|t| t.to_string()).collect()),
        run_seed: 7,
        base_dir: dir.path(),
    };
    Ok(exec
        .run(&req, None, &|_| {}, &CancelToken::new())?
        .outputs
        .into_iter()
        .collect())
}

#[test]
fn a_scratch_mask_through_mask_to_control() {
    let g = doc(serde_json::json!({
        "nodes": {
            "tex": {"kind": "Texture", "version": 1, "params": {"width": 96, "height": 64}},
            "scratch": {"kind": "Scratch", "version": 1,
                        "params": {"count": 2, "length": 60.0, "width": 4.0}},
            "edges": {"kind": "MaskToControl", "version": 1},
            "scribble": {"kind": "MaskToControl", "version": 1,
                         "params": {"mode": "scribble", "width": 4}},
            "fill": {"kind": "MaskToControl", "version": 1, "params": {"mode": "fill"}},
            "canny": {"kind": "Canny", "version": 1},
            "soft": {"kind": "SoftEdge", "version": 1}
        },
        "links": [
            {"from": ["tex", "image"], "to": ["scratch", "image"]},
            {"from": ["scratch", "mask"], "to": ["edges", "mask"]},
            {"from": ["scratch", "mask"], "to": ["scribble", "mask"]},
            {"from": ["scratch", "mask"], "to": ["fill", "mask"]},
            {"from": ["scratch", "image"], "to": ["canny", "image"]},
            {"from": ["scratch", "image"], "to": ["soft", "image"]}
        ]
    }));
    let out = run(
        &g,
        &["scratch", "edges", "scribble", "fill", "canny", "soft"],
    )
    .unwrap();
    let mask = out["scratch"]["mask"].as_mask().unwrap().clone();
    let image = out["scratch"]["image"].as_image().unwrap().clone();
    let get = |node: &str| (**out[node]["image"].as_image().unwrap()).clone();
    let selected = mask.data.iter().filter(|&&v| v >= 0.5).count();
    assert!(selected > 50, "the scratch selects {selected} pixels");
    // The node defaults: edges, width 3; Canny 100/200; SoftEdge blur 1, gain 1.
    assert_eq!(
        get("edges"),
        mask_to_control(&mask, MaskControlMode::Edges, 3)
    );
    assert_eq!(
        get("scribble"),
        mask_to_control(&mask, MaskControlMode::Scribble, 4)
    );
    assert_eq!(
        get("fill"),
        mask_to_control(&mask, MaskControlMode::Fill, 3)
    );
    assert_eq!(get("canny"), canny(&image, 100.0, 200.0));
    assert_eq!(get("soft"), soft_edge(&image, 1.0, 1.0));
    let fill = count(&on_pixels(&get("fill")));
    let edges = count(&on_pixels(&get("edges")));
    let scribble = count(&on_pixels(&get("scribble")));
    assert_eq!(fill, selected);
    assert!(edges > 0 && scribble > edges, "{edges} {scribble}");
}

#[test]
fn canny_refuses_low_above_high_naming_the_node_and_parameters() {
    let g = doc(serde_json::json!({
        "nodes": {
            "tex": {"kind": "Texture", "version": 1, "params": {"width": 16, "height": 16}},
            "edges": {"kind": "Canny", "version": 1, "params": {"low": 150, "high": 100}}
        },
        "links": [{"from": ["tex", "image"], "to": ["edges", "image"]}]
    }));
    // `high` is at least `low` in the catalogue: validation refuses the inverted range before
    // anything runs, naming the node and both parameters (the executor checks it again for
    // values that arrive by links).
    let text = run(&g, &["edges"]).unwrap_err().to_string();
    assert!(
        text.contains("node \"edges\"")
            && text.contains("\"low\" (150)")
            && text.contains("\"high\" (100)"),
        "{text}"
    );
    // low == high is fine.
    let g = doc(serde_json::json!({
        "nodes": {
            "tex": {"kind": "Texture", "version": 1, "params": {"width": 16, "height": 16}},
            "edges": {"kind": "Canny", "version": 1, "params": {"low": 120, "high": 120}}
        },
        "links": [{"from": ["tex", "image"], "to": ["edges", "image"]}]
    }));
    run(&g, &["edges"]).unwrap();
}

#[test]
fn an_unknown_mask_mode_is_refused_by_validation() {
    let g = doc(serde_json::json!({
        "nodes": {
            "shape": {"kind": "ShapeMask", "version": 1, "params": {"width": 16, "height": 16}},
            "ctl": {"kind": "MaskToControl", "version": 1, "params": {"mode": "outline"}}
        },
        "links": [{"from": ["shape", "mask"], "to": ["ctl", "mask"]}]
    }));
    let text = run(&g, &["ctl"]).unwrap_err().to_string();
    assert!(text.contains("ctl") && text.contains("mode"), "{text}");
}

/// Timings at 1024² (run with `--ignored --nocapture`; the numbers go in the report).
#[test]
#[ignore]
fn timings_at_1024() {
    let img = Image::from_fn(1024, 1024, |x, y| {
        let v = ((x as f32 * 0.05).sin() * (y as f32 * 0.031).cos() + 1.0) / 2.0;
        [v, (x ^ y) as f32 % 7.0 / 7.0, 1.0 - v, 1.0]
    });
    let m = disk(1024, 500.0, 520.0, 300.0);
    // CPU time of this thread (Linux: /proc/thread-self/schedstat, ns on the CPU), so a busy
    // shared machine does not inflate the numbers; wall time printed beside it.
    let cpu_ns = || {
        std::fs::read_to_string("/proc/thread-self/schedstat")
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
    };
    let time = |what: &str, f: &dyn Fn() -> Image| {
        f();
        let (t, c) = (Instant::now(), cpu_ns());
        let n = 5;
        for _ in 0..n {
            std::hint::black_box(f());
        }
        let wall = t.elapsed().as_secs_f64() * 1e3 / n as f64;
        let cpu = match (c, cpu_ns()) {
            (Some(a), Some(b)) => format!("{:.1} ms CPU", (b - a) as f64 / 1e6 / n as f64),
            _ => "CPU time unknown".into(),
        };
        println!("{what}: {cpu}, {wall:.1} ms wall");
    };
    time("canny 100/200", &|| canny(&img, 100.0, 200.0));
    time("soft_edge blur 1", &|| soft_edge(&img, 1.0, 1.0));
    time("soft_edge blur 4", &|| soft_edge(&img, 4.0, 1.0));
    time("mask edges w3", &|| {
        mask_to_control(&m, MaskControlMode::Edges, 3)
    });
    time("mask scribble w3", &|| {
        mask_to_control(&m, MaskControlMode::Scribble, 3)
    });
    time("mask fill", &|| {
        mask_to_control(&m, MaskControlMode::Fill, 3)
    });
}
