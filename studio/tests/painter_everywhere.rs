//! The painter everywhere (issue 26 §2): the shape tools' pixel coverage, editing a LoadMask
//! file through the window (an ellipse, saved back), "Paint this mask…" on a Mask input, and
//! painting a rectangle on a gallery output that becomes an Inpaint recipe run on the tiny
//! model.

mod common;
use common::*;

use egui::{Key, Modifiers, PointerButton, Pos2, Rect, Vec2};
use egui_kittest::kittest::Queryable;
use engine::Mask;
use nodes::ParamValue;
use studio::app::painter::{MaskPainter, PaintTarget, Tool};
use studio::app::painter_shapes::{coverage, ellipse_polygon, fill_polygon, rect_polygon};

fn sum(m: &Mask) -> f32 {
    m.data.iter().sum()
}

fn at(m: &Mask, x: u32, y: u32) -> f32 {
    m.data[(y * m.width + x) as usize]
}

#[test]
fn a_rectangle_on_pixel_edges_covers_exactly_its_pixels() {
    let mut m = Mask::filled(10, 12, 0.0);
    // Corners in either order.
    assert!(fill_polygon(
        &mut m,
        &rect_polygon(Pos2::new(7.0, 9.0), Pos2::new(2.0, 3.0)),
        false
    ));
    for y in 0..12 {
        for x in 0..10 {
            let inside = (2..7).contains(&x) && (3..9).contains(&y);
            assert_eq!(at(&m, x, y), if inside { 1.0 } else { 0.0 }, "({x}, {y})");
        }
    }
}

#[test]
fn a_rectangle_edge_inside_a_pixel_covers_it_by_its_area() {
    let mut m = Mask::filled(10, 10, 0.0);
    fill_polygon(
        &mut m,
        &rect_polygon(Pos2::new(2.5, 1.0), Pos2::new(6.25, 3.0)),
        false,
    );
    assert!((at(&m, 2, 1) - 0.5).abs() < 1e-6);
    assert_eq!(at(&m, 3, 2), 1.0);
    assert!((at(&m, 6, 2) - 0.25).abs() < 1e-6);
    assert_eq!(at(&m, 7, 2), 0.0);
    assert_eq!(at(&m, 4, 3), 0.0);
    assert!((sum(&m) - 3.75 * 2.0).abs() < 1e-4, "{}", sum(&m));
}

#[test]
fn an_ellipse_covers_its_area_with_soft_edges() {
    let mut m = Mask::filled(40, 20, 0.0);
    fill_polygon(
        &mut m,
        &ellipse_polygon(Pos2::new(0.0, 0.0), Pos2::new(40.0, 20.0)),
        false,
    );
    let area = std::f32::consts::PI * 20.0 * 10.0;
    assert!(
        (sum(&m) - area).abs() / area < 0.005,
        "{} vs {area}",
        sum(&m)
    );
    assert_eq!(at(&m, 20, 10), 1.0);
    assert_eq!(at(&m, 0, 0), 0.0);
    assert_eq!(at(&m, 39, 19), 0.0);
    // Anti-aliased: the rim has partly covered pixels.
    let soft = m.data.iter().filter(|v| **v > 0.05 && **v < 0.95).count();
    assert!(soft > 20, "{soft} partly covered pixels");
    // Symmetric about both axes.
    for y in 0..20 {
        for x in 0..40 {
            assert!(
                (at(&m, x, y) - at(&m, 39 - x, y)).abs() < 0.02,
                "({x}, {y})"
            );
            assert!(
                (at(&m, x, y) - at(&m, x, 19 - y)).abs() < 0.02,
                "({x}, {y})"
            );
        }
    }
}

#[test]
fn a_lasso_fills_its_polygon_and_the_eraser_clears_it() {
    let tri = [
        Pos2::new(0.0, 0.0),
        Pos2::new(20.0, 0.0),
        Pos2::new(0.0, 20.0),
    ];
    let mut m = Mask::filled(20, 20, 0.0);
    fill_polygon(&mut m, &tri, false);
    assert!((sum(&m) - 200.0).abs() < 0.5, "{}", sum(&m));
    assert_eq!(at(&m, 2, 2), 1.0);
    assert_eq!(at(&m, 15, 15), 0.0);
    // The diagonal runs through pixel (10, 9): about half covered.
    assert!((at(&m, 10, 9) - 0.5).abs() < 0.1, "{}", at(&m, 10, 9));
    // Erasing takes paint away where the shape covers.
    let mut full = Mask::filled(20, 20, 1.0);
    fill_polygon(&mut full, &tri, true);
    assert!((sum(&full) - 200.0).abs() < 0.5, "{}", sum(&full));
    assert_eq!(at(&full, 2, 2), 0.0);
    assert_eq!(at(&full, 15, 15), 1.0);
    // Nothing to fill: too few points, or outside the mask.
    assert!(!fill_polygon(&mut m, &tri[..2], false));
    let away: Vec<Pos2> = tri.iter().map(|p| *p + Vec2::new(100.0, 0.0)).collect();
    assert!(!fill_polygon(&mut m, &away, false));
    assert!(coverage(&away, 20, 20).is_none());
    let (y0, y1, c) = coverage(&tri, 20, 20).unwrap();
    assert_eq!((y0, y1, c.len()), (0, 20, 400));
}

#[test]
fn each_shape_is_one_undo_step() {
    let ctx = egui::Context::default();
    let mut p = MaskPainter::new(PaintTarget::PaintMask("p".into()), None, None, &ctx);
    p.fill_rect(Pos2::new(10.0, 10.0), Pos2::new(50.0, 30.0));
    p.fill_ellipse(Pos2::new(100.0, 100.0), Pos2::new(200.0, 160.0));
    let after_two = sum(&p.mask);
    assert!((sum(&p.mask) - (800.0 + std::f32::consts::PI * 50.0 * 30.0)).abs() < 10.0);
    p.undo();
    assert!((sum(&p.mask) - 800.0).abs() < 1e-3);
    p.redo();
    assert_eq!(sum(&p.mask), after_two);
    p.undo();
    p.undo();
    assert_eq!(sum(&p.mask), 0.0);
}

/// Where a mask pixel lands on the painter's canvas at zoom 1 (as `painter_canvas.rs` fits it).
fn image_rect(h: &mut H, w: u32, ht: u32) -> Rect {
    let canvas = h.get_by_label("mask canvas").rect();
    let scale = (canvas.width() / w as f32).min(canvas.height() / ht as f32);
    Rect::from_center_size(canvas.center(), Vec2::new(w as f32, ht as f32) * scale)
}

/// A LoadMask node reading `file`, in a new graph.
fn load_mask_graph(file: &std::path::Path) -> H {
    let mut h = settled();
    h.key_press_modifiers(Modifiers::COMMAND, Key::N);
    h.run_steps(2);
    let a = app(&mut h);
    let nid = a.doc.add_node("LoadMask", Pos2::new(100.0, 100.0));
    let n = a.doc.snarl.get_node_mut(nid).unwrap();
    n.params.insert(
        "source".into(),
        ParamValue::Text(file.display().to_string()),
    );
    assert_eq!(n.id, "loadmask");
    h.run_steps(2);
    h
}

#[test]
fn edit_a_load_mask_file_with_an_ellipse() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mask.png");
    let (w, ht) = (64u32, 48u32);
    // Black with a white 8×8 square in the top-left corner (outside the ellipse).
    let before = image::GrayImage::from_fn(w, ht, |x, y| {
        image::Luma([if x < 8 && y < 8 { 255 } else { 0 }])
    });
    before.save(&file).unwrap();
    let mut h = load_mask_graph(&file);
    app(&mut h).push(studio::app::AppCommand::OpenPainter("loadmask".into()));
    h.run_steps(3);
    {
        let p = app(&mut h).painter.as_ref().expect("the painter opens");
        assert!(
            matches!(&p.target, PaintTarget::LoadMask { file: Some(f), .. } if f == &file),
            "{:?}",
            p.target
        );
        assert_eq!(
            (p.mask.width, p.mask.height),
            (w, ht),
            "the file's own size"
        );
        assert_eq!(sum(&p.mask), 64.0, "starts from the file's pixels");
    }
    // E picks the ellipse tool (the shortcut table's painter keys).
    h.key_press(Key::E);
    h.run_steps(2);
    assert_eq!(app(&mut h).painter.as_ref().unwrap().tool, Tool::Ellipse);
    let r = image_rect(&mut h, w, ht);
    let (a, b) = (
        r.lerp_inside(Vec2::new(0.3, 0.3)),
        r.lerp_inside(Vec2::new(0.8, 0.9)),
    );
    drag(&mut h, a, b, 10);
    h.get_by_label("💾 Save to file").click();
    h.run_steps(3);
    assert!(app(&mut h).painter.is_none(), "saving closes the painter");
    let after = image::open(&file).unwrap().to_luma8();
    assert_eq!(after.dimensions(), (w, ht));
    // The ellipse in mask pixels.
    let scale = r.width() / w as f32;
    let (ma, mb) = ((a - r.min) / scale, (b - r.min) / scale);
    let (c, rad) = ((ma + mb) / 2.0, (mb - ma) / 2.0);
    let (mut inside, mut changed) = (0, 0);
    for y in 0..ht {
        for x in 0..w {
            let d =
                ((x as f32 + 0.5 - c.x) / rad.x).powi(2) + ((y as f32 + 0.5 - c.y) / rad.y).powi(2);
            let (old, new) = (before.get_pixel(x, y)[0], after.get_pixel(x, y)[0]);
            if old != new {
                changed += 1;
                assert!(d < 1.25, "({x}, {y}) changed outside the ellipse (d = {d})");
            }
            if d < 0.7 {
                inside += 1;
                assert_eq!(new, 255, "({x}, {y}) inside the ellipse is painted");
            }
        }
    }
    assert!(
        inside > 100 && changed >= inside,
        "{inside} inside, {changed} changed"
    );
    // No temporary file is left beside it.
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1);
}

#[test]
fn paint_this_mask_on_a_mask_input_adds_a_paint_mask_node() {
    let mut h = settled();
    h.key_press_modifiers(Modifiers::COMMAND, Key::N);
    h.run_steps(2);
    let a = app(&mut h);
    let nid = a.doc.add_node("SaveImage", Pos2::new(400.0, 100.0));
    let id = a.doc.snarl.get_node(nid).unwrap().id.clone();
    a.inspected = Some(id.clone());
    h.run_steps(3);
    h.get_by_label("🖌 Paint…").click();
    h.run_steps(3);
    let d = doc(&mut h);
    let link = d.link_into(&id, "mask").expect("the mask input is fed");
    assert_eq!(d.nodes[&link.from.0].kind, "PaintMask");
    let p = app(&mut h).painter.as_ref().expect("the painter opens");
    assert!(matches!(&p.target, PaintTarget::PaintMask(n) if *n == link.from.0));
}

#[test]
fn paint_a_rectangle_on_a_gallery_output_and_run_the_inpaint_recipe() {
    let mut h = settled();
    // A small output: the example recipe with a 64×64 plate.
    {
        let a = app(&mut h);
        let nid = a.doc.find("plate").unwrap();
        let n = a.doc.snarl.get_node_mut(nid).unwrap();
        n.params.insert("width".into(), ParamValue::Int(64));
        n.params.insert("height".into(), ParamValue::Int(64));
    }
    h.run_steps(2);
    run_and_wait(&mut h);
    let id = {
        let a = app(&mut h);
        let run = a.runs.last().and_then(|r| r.run_id).unwrap();
        a.gallery
            .outputs
            .iter()
            .rev()
            .find(|(_, o)| o.run_id == run)
            .expect("the example's output")
            .0
    };
    // Through the output's details, as a user does: select it, then Send to → Paint a mask here.
    common::select_output(&mut h, id);
    common::send_to(&mut h, "Paint a mask here");
    assert!(matches!(
        app(&mut h).painter.as_ref().map(|p| &p.target),
        Some(PaintTarget::Output { id: o, .. }) if *o == id
    ));
    h.key_press(Key::R);
    h.run_steps(2);
    let r = image_rect(&mut h, 64, 64);
    drag(
        &mut h,
        r.lerp_inside(Vec2::new(0.25, 0.25)),
        r.lerp_inside(Vec2::new(0.75, 0.5)),
        10,
    );
    let painted = app(&mut h).painter.as_ref().unwrap().mask.clone();
    let covered = painted.data.iter().filter(|v| **v > 0.5).count();
    assert!((500..=540).contains(&covered), "{covered} px painted");
    h.get_by_label("✔ Inpaint with this mask").click();
    h.run_steps(3);
    assert!(app(&mut h).painter.is_none(), "{:?}", app(&mut h).dialog);
    // The open graph was edited (the plate's size): the recipe opens once that is discarded.
    assert!(matches!(
        app(&mut h).dialog,
        Some(studio::app::Dialog::Unsaved(_))
    ));
    h.get_by_label("Discard").click();
    h.run_steps(3);
    let d = doc(&mut h);
    assert!(
        d.nodes.values().any(|n| n.kind.contains("Inpaint")),
        "an Inpaint recipe: {:?}",
        d.nodes.keys()
    );
    // The recipe's mask is the painted one.
    let paint = d
        .nodes
        .values()
        .find(|n| n.kind == "PaintMask")
        .expect("a PaintMask node");
    let sha = paint.params["painting"]
        .as_str()
        .unwrap()
        .strip_prefix("asset:")
        .unwrap();
    let png = engine::hashing::decode_base64(&d.assets[sha].data_base64).unwrap();
    let recipe_mask = image::load_from_memory(&png).unwrap().to_luma8();
    assert_eq!(recipe_mask.dimensions(), (64, 64));
    assert_eq!(recipe_mask.pixels().filter(|p| p[0] > 127).count(), covered);
    assert!(d.nodes.values().any(|n| n.kind == "LoadCheckpoint"));
    // The recipe on the tiny test model, in two steps.
    let model = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/sd/models/sd15-inpaint");
    {
        let a = app(&mut h);
        let ids: Vec<_> = a.doc.snarl.node_ids().map(|(nid, _)| nid).collect();
        for nid in ids {
            let n = a.doc.snarl.get_node_mut(nid).unwrap();
            if n.kind == "LoadCheckpoint" {
                n.params.insert(
                    "checkpoint".into(),
                    ParamValue::Text(model.display().to_string()),
                );
            }
            if n.params.contains_key("steps") || n.kind.contains("Inpaint") {
                n.params.insert("steps".into(), ParamValue::Int(2));
            }
        }
    }
    h.run_steps(2);
    run_and_wait(&mut h);
    // This run's output (other tests of this binary share the store).
    let a = app(&mut h);
    let run = a
        .runs
        .last()
        .and_then(|r| r.run_id)
        .expect("the run is stored");
    let outs: Vec<_> = a
        .gallery
        .outputs
        .iter()
        .filter(|(_, o)| o.run_id == run)
        .collect();
    assert_eq!(outs.len(), 1, "{outs:?}");
    let png = a
        .store
        .as_ref()
        .unwrap()
        .output_png(outs[0].0)
        .unwrap()
        .unwrap();
    let img = image::load_from_memory(&png).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (64, 64));
}

fn click(h: &mut H, p: Pos2) {
    h.event(egui::Event::PointerMoved(p));
    h.run_steps(1);
    for pressed in [true, false] {
        h.event(egui::Event::PointerButton {
            pos: p,
            button: PointerButton::Primary,
            pressed,
            modifiers: Modifiers::NONE,
        });
        h.run_steps(1);
    }
    // Far enough apart in time that the next click is not a double-click.
    h.run_steps(4);
}

/// The painter with the lasso tool over a blank 40×40 LoadMask file in `dir`, and where the
/// image lies on screen.
fn lasso_on_a_blank_mask(dir: &std::path::Path) -> (H, Rect) {
    let file = dir.join("mask.png");
    image::GrayImage::new(40, 40).save(&file).unwrap();
    let mut h = load_mask_graph(&file);
    app(&mut h).push(studio::app::AppCommand::OpenPainter("loadmask".into()));
    h.run_steps(3);
    h.key_press(Key::L);
    h.run_steps(2);
    let r = image_rect(&mut h, 40, 40);
    (h, r)
}

#[test]
fn a_clicked_lasso_goes_into_the_graph() {
    let dir = tempfile::tempdir().unwrap();
    let (mut h, r) = lasso_on_a_blank_mask(dir.path());
    // A triangle over the left half: (0, 0), (20, 0), (0, 40) in mask pixels.
    for f in [
        Vec2::new(0.0, 0.0),
        Vec2::new(0.5, 0.0),
        Vec2::new(0.0, 1.0),
    ] {
        click(&mut h, r.lerp_inside(f));
    }
    assert_eq!(
        app(&mut h)
            .painter
            .as_ref()
            .unwrap()
            .mask
            .data
            .iter()
            .sum::<f32>(),
        0.0
    );
    h.key_press(Key::Enter);
    h.run_steps(2);
    let painted = app(&mut h).painter.as_ref().unwrap().mask.clone();
    assert!((sum(&painted) - 400.0).abs() < 8.0, "{}", sum(&painted));
    assert_eq!(at(&painted, 2, 2), 1.0);
    assert_eq!(at(&painted, 30, 30), 0.0);
    h.get_by_label("✔ Into the graph").click();
    h.run_steps(3);
    assert!(app(&mut h).painter.is_none());
    let d = doc(&mut h);
    let source = d.nodes["loadmask"].params["source"]
        .as_str()
        .unwrap()
        .to_string();
    let sha = source
        .strip_prefix("asset:")
        .expect("the node reads the embedded mask");
    let png = engine::hashing::decode_base64(&d.assets[sha].data_base64).unwrap();
    let img = image::load_from_memory(&png).unwrap().to_luma8();
    assert_eq!(img.get_pixel(2, 2)[0], 255);
    assert_eq!(img.get_pixel(30, 30)[0], 0);
    // The file is untouched.
    let file_px = image::open(dir.path().join("mask.png")).unwrap().to_luma8();
    assert!(file_px.pixels().all(|p| p[0] == 0));
}

#[test]
fn start_from_a_mask_the_last_run_produced() {
    let mut h = settled();
    run_and_wait(&mut h);
    let scratch = {
        let a = app(&mut h);
        let m = a.outputs["scratch"]
            .get("mask")
            .and_then(|v| v.as_mask())
            .cloned();
        m.expect("the example's ShapeMask output")
    };
    let a = app(&mut h);
    let nid = a.doc.add_node("PaintMask", Pos2::new(600.0, 400.0));
    let id = a.doc.snarl.get_node(nid).unwrap().id.clone();
    a.push(studio::app::AppCommand::Connect {
        from: ("plate".into(), "image".into()),
        to: (id.clone(), "image".into()),
    });
    a.push(studio::app::AppCommand::OpenPainter(id));
    h.run_steps(3);
    assert!(app(&mut h).painter.as_ref().unwrap().has_background());
    h.get_by_label("Start from…").click();
    h.run_steps(2);
    h.get_by_label_contains("scratch.mask").click();
    h.run_steps(2);
    let p = app(&mut h).painter.as_ref().unwrap();
    assert_eq!(p.mask.data, scratch.data);
    assert!(sum(&p.mask) > 100.0);
}

#[test]
fn a_dragged_lasso_closes_on_release() {
    let dir = tempfile::tempdir().unwrap();
    let (mut h, r) = lasso_on_a_blank_mask(dir.path());
    // A free path around the square (10, 10)–(30, 30), released where it started.
    let corners = [(0.25, 0.25), (0.75, 0.25), (0.75, 0.75), (0.25, 0.75)];
    let pts: Vec<Pos2> = corners
        .iter()
        .map(|(x, y)| r.lerp_inside(Vec2::new(*x, *y)))
        .collect();
    h.event(egui::Event::PointerMoved(pts[0]));
    h.run_steps(1);
    h.event(egui::Event::PointerButton {
        pos: pts[0],
        button: PointerButton::Primary,
        pressed: true,
        modifiers: Modifiers::NONE,
    });
    h.run_steps(1);
    for i in 0..4 {
        let (a, b) = (pts[i], pts[(i + 1) % 4]);
        for k in 1..=8 {
            h.event(egui::Event::PointerMoved(a + (b - a) * (k as f32 / 8.0)));
            h.run_steps(1);
        }
    }
    assert_eq!(sum(&app(&mut h).painter.as_ref().unwrap().mask), 0.0);
    h.event(egui::Event::PointerButton {
        pos: pts[0],
        button: PointerButton::Primary,
        pressed: false,
        modifiers: Modifiers::NONE,
    });
    h.run_steps(2);
    let m = app(&mut h).painter.as_ref().unwrap().mask.clone();
    assert!((sum(&m) - 400.0).abs() < 4.0, "{}", sum(&m));
    assert_eq!(at(&m, 20, 20), 1.0);
    assert_eq!(at(&m, 5, 5), 0.0);
    // One undo step takes the whole lasso away.
    h.key_press_modifiers(Modifiers::COMMAND, Key::Z);
    h.run_steps(2);
    assert_eq!(sum(&app(&mut h).painter.as_ref().unwrap().mask), 0.0);
}
