//! Explore scatter frame time: CPU time of one kittest frame of the Explore window with
//! 100,000 points, every point drawn (no decimation), and the same points through egui_plot
//! for comparison. Also the tessellation of each frame's shapes (what the renderer does next).
//! Run with `cargo bench -p studio --bench explore`.

use std::time::Instant;

use egui::{Event, PointerButton, Pos2, Shape};
use egui_kittest::Harness;
use studio::app::explore::{ExplorePanel, ExploreView};

const N: usize = 100_000;
const FRAMES: usize = 60;

struct Stats {
    mean: f64,
    median: f64,
    p95: f64,
}

fn stats(mut t: Vec<f64>) -> Stats {
    t.sort_by(|a, b| a.total_cmp(b));
    Stats {
        mean: t.iter().sum::<f64>() / t.len() as f64,
        median: t[t.len() / 2],
        p95: t[t.len() * 95 / 100],
    }
}

fn print(what: &str, s: &Stats) {
    println!(
        "  {what:<58} mean {:7.2} ms   median {:7.2} ms   p95 {:7.2} ms",
        s.mean, s.median, s.p95
    );
}

/// Times `FRAMES` frames (after a warm-up), calling `before` ahead of each; returns the frame
/// times and the tessellation times of the last frame's shapes.
fn measure<S>(
    h: &mut Harness<'_, S>,
    mut before: impl FnMut(&mut Harness<'_, S>, usize),
) -> (Stats, Stats) {
    for k in 0..5 {
        before(h, k);
        h.step();
    }
    let mut frame = Vec::with_capacity(FRAMES);
    let mut tess = Vec::with_capacity(FRAMES);
    for k in 0..FRAMES {
        before(h, k + 5);
        let t = Instant::now();
        h.step();
        frame.push(t.elapsed().as_secs_f64() * 1e3);
        let shapes = h.output().shapes.clone();
        let ctx = h.ctx.clone();
        let t = Instant::now();
        let prims = ctx.tessellate(shapes, 1.0);
        tess.push(t.elapsed().as_secs_f64() * 1e3);
        std::hint::black_box(prims);
    }
    (stats(frame), stats(tess))
}

/// Points drawn by the Explore window in the last frame: the quads of its point mesh.
fn drawn_points<S>(h: &Harness<'_, S>) -> usize {
    fn count(s: &Shape) -> usize {
        match s {
            Shape::Mesh(m) if m.texture_id != egui::TextureId::default() => m.vertices.len() / 4,
            Shape::Vec(v) => v.iter().map(count).sum(),
            _ => 0,
        }
    }
    h.output()
        .shapes
        .iter()
        .map(|c| count(&c.shape))
        .max()
        .unwrap_or(0)
}

fn explore_harness(view: ExploreView) -> Harness<'static, ExplorePanel> {
    let mut panel = ExplorePanel::default();
    panel.set_view(view).expect("demo view");
    panel.set_color_by(Some("label"));
    let mut h = Harness::builder()
        .with_size([1600.0, 1000.0])
        .build_ui_state(
            |ui, p: &mut ExplorePanel| {
                std::hint::black_box(p.explore_ui(ui));
            },
            panel,
        );
    h.run_steps(3);
    h
}

/// A right-button drag (2D: pan) or left-button drag (3D: rotate) that moves every frame.
fn dragging(button: PointerButton) -> impl FnMut(&mut Harness<'_, ExplorePanel>, usize) {
    move |h, k| {
        let c = h.state().camera().1.center();
        if k == 0 {
            h.event(Event::PointerMoved(c));
            h.event(Event::PointerButton {
                pos: c,
                button,
                pressed: true,
                modifiers: Default::default(),
            });
        }
        let dx = if k % 40 < 20 { 3.0 } else { -3.0 };
        let p = c + egui::vec2(dx * (k % 20) as f32, 0.0);
        h.event(Event::PointerMoved(Pos2::new(p.x, p.y)));
    }
}

fn main() {
    println!(
        "Explore scatter, {N} points, 1600×1000, {FRAMES} frames each ({}):",
        if cfg!(debug_assertions) {
            "studio built with debug assertions"
        } else {
            "studio optimised"
        }
    );
    let view = ExploreView::demo(N, 1);

    let mut h = explore_harness(view.clone());
    let (f, t) = measure(&mut h, |_, _| {});
    println!(
        "Explore window (our point mesh), {} points drawn:",
        drawn_points(&h)
    );
    print("2D, still (mesh reused): frame", &f);
    print("2D, still: tessellation", &t);
    let mut h = explore_harness(view.clone());
    let (f, t) = measure(&mut h, dragging(PointerButton::Secondary));
    assert!(
        drawn_points(&h) >= N * 99 / 100,
        "every point is drawn: {}",
        drawn_points(&h)
    );
    print(
        "2D, panning every frame (projection + mesh rebuilt): frame",
        &f,
    );
    print("2D, panning: tessellation", &t);
    let mut h = explore_harness(view.clone());
    let (f, _) = measure(&mut h, |h, k| {
        let r = h.state().camera().1;
        let t = (k % 50) as f32 / 50.0;
        h.event(Event::PointerMoved(
            r.lerp_inside(egui::vec2(t, 0.3 + 0.4 * t)),
        ));
    });
    print(
        "2D, pointer moving (hovered point through the grid index): frame",
        &f,
    );
    let mut h = explore_harness(view.clone());
    let half: Vec<u64> = view.ids.iter().step_by(2).copied().collect();
    h.state_mut().select_ids(&half);
    let (f, _) = measure(&mut h, dragging(PointerButton::Secondary));
    print("2D, panning, 50,000 selected: frame", &f);
    let mut h = explore_harness(view.clone());
    h.state_mut().three_d = true;
    let (f, t) = measure(&mut h, dragging(PointerButton::Primary));
    print(
        "3D, rotating every frame (projection + depth sort + mesh): frame",
        &f,
    );
    print("3D, rotating: tessellation", &t);

    // egui_plot: one Points item per colour (it has one colour per item), circles.
    let label = match &view.columns[0].1 {
        studio::app::explore::Column::Category { codes, .. } => codes.clone(),
        _ => unreachable!("the demo's first column is the label"),
    };
    let mut groups: Vec<Vec<egui_plot::PlotPoint>> = vec![Vec::new(); 5];
    for (p, c) in view.xy.iter().zip(&label) {
        groups[c.unwrap_or(0) as usize].push(egui_plot::PlotPoint::new(p[0], p[1]));
    }
    let mut h = Harness::builder()
        .with_size([1600.0, 1000.0])
        .build_ui_state(
            move |ui, groups: &mut Vec<Vec<egui_plot::PlotPoint>>| {
                egui_plot::Plot::new("bench-plot").show(ui, |pu| {
                    for (k, g) in groups.iter().enumerate() {
                        pu.points(
                            egui_plot::Points::new(format!("g{k}"), &g[..])
                                .radius(3.0)
                                .color(studio::app::explore::colors::category_color(k as u32)),
                        );
                    }
                });
            },
            groups,
        );
    h.run_steps(3);
    let (f, t) = measure(&mut h, |_, _| {});
    println!("egui_plot 0.37 Points (circles), same points:");
    print("2D, still: frame", &f);
    print("2D, still: tessellation", &t);
}
