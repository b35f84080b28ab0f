//! Tests of [`fill`](super::fill) and the baselines on procedural textures with known
//! ground truth.

use super::*;
use crate::procedural::{shape_mask, texture, Shape, ShapeParams, TextureKind, TextureParams};

/// A 192×192 texture of `kind` (seeded) used as ground truth.
fn truth(kind: TextureKind, seed: u64) -> Image {
    let (color, angle) = match kind {
        TextureKind::BrushedMetal => ([0.62, 0.64, 0.67], 20.0),
        TextureKind::Concrete => ([0.55, 0.54, 0.5], 0.0),
        TextureKind::Fabric => ([0.35, 0.42, 0.6], 0.0),
        TextureKind::WoodGrain => ([0.6, 0.42, 0.25], 10.0),
        TextureKind::PaintedSurface => ([0.2, 0.5, 0.3], 0.0),
    };
    texture(&TextureParams {
        kind,
        width: 192,
        height: 192,
        seed,
        scale: 1.0,
        color,
        contrast: 1.0,
        angle_deg: angle,
    })
}

/// A 32×24 ellipse away from the border, placed and turned by `seed`.
fn ellipse_hole(w: u32, h: u32, seed: u64) -> Mask {
    shape_mask(&ShapeParams {
        shape: Shape::Ellipse,
        width: w,
        height: h,
        cx: w as f32 * (0.3 + 0.08 * seed as f32),
        cy: h as f32 * 0.5,
        size_x: 32.0,
        size_y: 24.0,
        rotation_deg: 30.0 * seed as f32,
        feather_px: 1.0,
    })
}

/// `img` with a solid dark "painted object" over the hole.
fn paint_over(img: &Image, hole: &Mask) -> Image {
    let mut out = img.clone();
    for (px, &m) in out.data.chunks_exact_mut(4).zip(&hole.data) {
        if m >= 0.5 {
            px[..3].copy_from_slice(&[0.08, 0.07, 0.06]);
        }
    }
    out
}

/// PSNR in dB over the hole's RGB samples.
fn psnr(a: &Image, b: &Image, hole: &Mask) -> f64 {
    let (mut se, mut n) = (0.0f64, 0usize);
    for (i, &m) in hole.data.iter().enumerate() {
        if m >= 0.5 {
            for c in 0..3 {
                let d = f64::from(a.data[i * 4 + c] - b.data[i * 4 + c]);
                se += d * d;
            }
            n += 3;
        }
    }
    10.0 * (1.0 / (se / n as f64).max(1e-12)).log10()
}

/// Mean squared high-pass energy (pixel minus its 3×3 mean, RGB) over the hole pixels.
fn detail_energy(img: &Image, hole: &Mask) -> f64 {
    let (w, h) = (img.width as i64, img.height as i64);
    let (mut sum, mut n) = (0.0f64, 0usize);
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            if hole.get(x as u32, y as u32) < 0.5 {
                continue;
            }
            for c in 0..3 {
                let at = |xx: i64, yy: i64| f64::from(img.data[((yy * w + xx) * 4) as usize + c]);
                let mut mean = 0.0;
                for dy in -1..=1 {
                    for dx in -1..=1 {
                        mean += at(x + dx, y + dy) / 9.0;
                    }
                }
                let d = at(x, y) - mean;
                sum += d * d;
            }
            n += 3;
        }
    }
    sum / n.max(1) as f64
}

fn run(img: &Image, hole: &Mask, p: &FillParams) -> Image {
    match fill(img, hole, p, &mut |_| true) {
        Ok(Some(out)) => out,
        other => panic!("fill failed: {other:?}"),
    }
}

/// PSNRs over the hole of PatchMatch, mean, blur and Laplace fills of a painted-over texture.
fn psnrs(kind: TextureKind, seed: u64) -> [f64; 4] {
    let gt = truth(kind, seed);
    let hole = ellipse_hole(192, 192, seed);
    let before = paint_over(&gt, &hole);
    let p = FillParams {
        seed,
        ..FillParams::default()
    };
    [
        psnr(&run(&before, &hole, &p), &gt, &hole),
        psnr(&mean_fill(&before, &hole), &gt, &hole),
        psnr(&blur_fill(&before, &hole), &gt, &hole),
        psnr(&laplace_fill(&before, &hole), &gt, &hole),
    ]
}

fn assert_beats_baselines(kind: TextureKind) {
    let results: Vec<[f64; 4]> = (1..=3).map(|seed| psnrs(kind, seed)).collect();
    for (seed, [pm, mean, blur, lap]) in results.iter().enumerate() {
        println!(
            "{} seed {}: patchmatch {pm:.2} dB, mean {mean:.2}, blur {blur:.2}, laplace {lap:.2}",
            kind.name(),
            seed + 1
        );
    }
    for (seed, [pm, mean, blur, lap]) in results.iter().enumerate() {
        for (name, base) in [("mean", mean), ("blur", blur), ("laplace", lap)] {
            assert!(
                *pm >= base + 2.0,
                "{} seed {}: patchmatch {pm:.2} dB vs {name} {base:.2} dB",
                kind.name(),
                seed + 1
            );
        }
    }
}

#[test]
fn quality_brushed_metal_beats_smooth_fills_by_2db() {
    assert_beats_baselines(TextureKind::BrushedMetal);
}

#[test]
fn quality_fabric_beats_smooth_fills_by_2db() {
    assert_beats_baselines(TextureKind::Fabric);
}

#[test]
fn quality_wood_grain_stripes_beat_smooth_fills_by_2db() {
    assert_beats_baselines(TextureKind::WoodGrain);
}

/// Fails: on concrete, whose speckles inside the hole are independent of everything outside
/// it, any plausible synthesis scores about 1–2 dB *below* the smooth fills (a smooth fill
/// approximates the MSE-optimal conditional mean; a sharp texture pays for its variance).
/// Kept to document the gap; see `detail_is_kept_where_smooth_fills_lose_it` for what is
/// asserted on concrete instead.
#[test]
#[ignore = "PSNR cannot reward texture synthesis on unpredictable concrete speckle"]
fn quality_concrete_beats_smooth_fills_by_2db() {
    assert_beats_baselines(TextureKind::Concrete);
}

#[test]
fn detail_is_kept_where_smooth_fills_lose_it() {
    for seed in 1..=3 {
        for kind in [
            TextureKind::Concrete,
            TextureKind::BrushedMetal,
            TextureKind::Fabric,
        ] {
            let gt = truth(kind, seed);
            let hole = ellipse_hole(192, 192, seed);
            let before = paint_over(&gt, &hole);
            let reference = detail_energy(&gt, &hole);
            let pm = detail_energy(&run(&before, &hole, &FillParams::default()), &hole) / reference;
            let lap = detail_energy(&laplace_fill(&before, &hole), &hole) / reference;
            let blur = detail_energy(&blur_fill(&before, &hole), &hole) / reference;
            println!(
                "{}: detail ratio patchmatch {pm:.2}, laplace {lap:.3}, blur {blur:.3}",
                kind.name()
            );
            assert!((0.5..=1.5).contains(&pm), "{}: {pm}", kind.name());
            assert!(lap < 0.05 && blur < 0.05, "{}: {lap} {blur}", kind.name());
        }
    }
}

#[test]
fn nnf_energy_never_rises_at_a_fixed_estimate() {
    for (kind, seed) in [(TextureKind::BrushedMetal, 1), (TextureKind::Concrete, 2)] {
        let gt = truth(kind, seed);
        let hole = ellipse_hole(192, 192, seed);
        let p = FillParams {
            pm_iterations: 6,
            seed,
            ..FillParams::default()
        };
        let trace = match nnf_energy_trace(&paint_over(&gt, &hole), &hole, &p) {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(trace.len(), 7);
        for pair in trace.windows(2) {
            assert!(pair[1] <= pair[0], "energy rose: {trace:?}");
        }
        assert!(trace[6] < 0.5 * trace[0], "energy barely fell: {trace:?}");
    }
}

#[test]
fn progress_reports_every_level_and_finite_energy() {
    let gt = truth(TextureKind::Concrete, 1);
    let hole = ellipse_hole(192, 192, 1);
    let mut seen = Vec::new();
    let out = fill(&gt, &hole, &FillParams::default(), &mut |pr| {
        seen.push(*pr);
        true
    });
    assert!(matches!(out, Ok(Some(_))));
    let levels = seen[0].levels;
    assert!(levels >= 2, "expected a pyramid, got {levels} level(s)");
    for l in 0..levels {
        assert!(seen.iter().any(|pr| pr.level == l && pr.iteration == 0));
    }
    assert!(seen
        .iter()
        .all(|pr| pr.energy.is_finite() && pr.energy >= 0.0));
    assert_eq!(seen.last().map(|pr| pr.level), Some(levels - 1));
}

#[test]
fn pixels_outside_the_hole_are_bitwise_unchanged() {
    let gt = truth(TextureKind::Fabric, 2);
    // A soft-edged mask: values below 0.5 are outside the hole.
    let hole = shape_mask(&ShapeParams {
        shape: Shape::Ellipse,
        width: 192,
        height: 192,
        cx: 90.0,
        cy: 100.0,
        size_x: 40.0,
        size_y: 30.0,
        rotation_deg: 10.0,
        feather_px: 6.0,
    });
    let before = paint_over(&gt, &hole);
    let out = run(&before, &hole, &FillParams::default());
    let mut changed_inside = 0;
    for (i, &m) in hole.data.iter().enumerate() {
        for c in 0..4 {
            let (a, b) = (out.data[i * 4 + c], before.data[i * 4 + c]);
            if m < 0.5 {
                assert_eq!(a.to_bits(), b.to_bits(), "pixel {i} channel {c} changed");
            } else if a != b {
                changed_inside += 1;
            }
        }
    }
    assert!(changed_inside > 0);
}

#[test]
fn same_seed_same_output_other_seed_differs() {
    let gt = truth(TextureKind::Concrete, 3);
    let hole = ellipse_hole(192, 192, 3);
    let before = paint_over(&gt, &hole);
    let p = FillParams {
        seed: 11,
        ..FillParams::default()
    };
    let a = run(&before, &hole, &p);
    let b = run(&before, &hole, &p);
    assert!(a
        .data
        .iter()
        .zip(&b.data)
        .all(|(x, y)| x.to_bits() == y.to_bits()));
    let c = run(&before, &hole, &FillParams { seed: 12, ..p });
    assert_ne!(a, c);
}

#[test]
fn returning_false_cancels() {
    let gt = truth(TextureKind::BrushedMetal, 1);
    let hole = ellipse_hole(192, 192, 1);
    let mut calls = 0;
    let out = fill(&gt, &hole, &FillParams::default(), &mut |_| {
        calls += 1;
        calls < 3
    });
    assert_eq!(out, Ok(None));
    assert_eq!(calls, 3);
}

#[test]
fn bad_input_is_an_error() {
    let img = Image::filled(32, 32, [0.5; 4]);
    let p = FillParams::default();
    let wrong_size = Mask::filled(31, 32, 1.0);
    assert!(fill(&img, &wrong_size, &p, &mut |_| true).is_err());
    let mut short = Mask::filled(32, 32, 1.0);
    short.data.pop();
    assert!(fill(&img, &short, &p, &mut |_| true).is_err());
    let everything = Mask::filled(32, 32, 1.0);
    assert!(fill(&img, &everything, &p, &mut |_| true).is_err());
    assert!(nnf_energy_trace(&img, &Mask::filled(32, 32, 0.0), &p).is_err());
}

#[test]
fn empty_hole_returns_the_input() {
    let gt = truth(TextureKind::WoodGrain, 1);
    let hole = Mask::filled(192, 192, 0.49);
    let out = fill(&gt, &hole, &FillParams::default(), &mut |_| {
        panic!("no work expected")
    });
    assert_eq!(out, Ok(Some(gt)));
}

#[test]
fn alpha_is_filled_like_colour() {
    let mut gt = truth(TextureKind::Concrete, 5);
    for px in gt.data.chunks_exact_mut(4) {
        px[3] = 0.25;
    }
    let hole = ellipse_hole(192, 192, 2);
    let mut before = paint_over(&gt, &hole);
    for (px, &m) in before.data.chunks_exact_mut(4).zip(&hole.data) {
        if m >= 0.5 {
            px[3] = 1.0;
        }
    }
    let out = run(&before, &hole, &FillParams::default());
    assert!(out
        .data
        .chunks_exact(4)
        .all(|px| (px[3] - 0.25).abs() < 1e-5));
}

#[test]
fn tiny_image_falls_back_to_laplace() {
    let img = Image::from_fn(6, 5, |x, y| [x as f32 / 5.0, y as f32 / 4.0, 0.5, 1.0]);
    let hole = Mask::from_fn(6, 5, |x, y| f32::from(u8::from(x == 2 && y == 2)));
    let out = run(&img, &hole, &FillParams::default());
    assert_eq!(out, laplace_fill(&img, &hole));
    assert!((out.pixel(2, 2)[0] - 0.4).abs() < 1e-4);
}

#[test]
fn laplace_fill_solves_the_laplace_equation() {
    // A gradient-and-texture image gives a non-trivial boundary.
    let gt = truth(TextureKind::WoodGrain, 2);
    let hole = ellipse_hole(192, 192, 2);
    let out = laplace_fill(&paint_over(&gt, &hole), &hole);
    let w = 192usize;
    let mut worst = 0.0f32;
    for y in 1..191usize {
        for x in 1..191usize {
            if hole.data[y * w + x] < 0.5 {
                continue;
            }
            for c in 0..4 {
                let at = |i: usize| out.data[i * 4 + c];
                let i = y * w + x;
                let lap = at(i - 1) + at(i + 1) + at(i - w) + at(i + w) - 4.0 * at(i);
                worst = worst.max(lap.abs());
            }
        }
    }
    assert!(worst < 1e-4, "residual {worst}");
    for (i, &m) in hole.data.iter().enumerate() {
        if m < 0.5 {
            assert_eq!(out.data[i * 4], gt.data[i * 4]);
        }
    }
}

#[test]
fn baselines_fill_the_hole_with_smooth_in_range_values() {
    let gt = truth(TextureKind::Concrete, 1);
    let hole = ellipse_hole(192, 192, 1);
    let before = paint_over(&gt, &hole);
    let mean = mean_fill(&before, &hole);
    let blur = blur_fill(&before, &hole);
    let inside: Vec<usize> = (0..hole.data.len())
        .filter(|&i| hole.data[i] >= 0.5)
        .collect();
    let first = &mean.data[inside[0] * 4..inside[0] * 4 + 4];
    for &i in &inside {
        assert_eq!(&mean.data[i * 4..i * 4 + 4], first);
        // The dark paint is gone: values near the concrete's mean.
        assert!((blur.data[i * 4] - 0.55).abs() < 0.15);
        assert!((mean.data[i * 4] - 0.55).abs() < 0.1);
    }
}
