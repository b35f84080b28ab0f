//! Tests of every generator: the two-way mask contract, determinism, placement, bad input;
//! Poisson solver accuracy. Timings and the contact sheet are `benches/defects.rs`.

use super::*;
use crate::image::{Image, Mask};
use crate::ops;
use crate::procedural::{noise_field, texture, NoiseKind, TextureKind, TextureParams};
use std::sync::OnceLock;

type Gen = fn(&Image, u64, Option<&Mask>) -> Result<Defect, String>;

fn gens() -> Vec<(&'static str, Gen)> {
    vec![
        ("scratch", |i, s, p| {
            scratch(
                i,
                &ScratchParams {
                    seed: s,
                    ..Default::default()
                },
                p,
            )
        }),
        ("scratch_wide", |i, s, p| {
            let sp = ScratchParams {
                seed: s,
                width: 9.0,
                ..Default::default()
            };
            scratch(i, &sp, p)
        }),
        ("crack", |i, s, p| {
            crack(
                i,
                &CrackParams {
                    seed: s,
                    ..Default::default()
                },
                p,
            )
        }),
        ("dent", |i, s, p| {
            dent(
                i,
                &DentParams {
                    seed: s,
                    ..Default::default()
                },
                p,
            )
        }),
        ("stain", |i, s, p| {
            stain(
                i,
                &StainParams {
                    seed: s,
                    ..Default::default()
                },
                p,
            )
        }),
        ("chip", |i, s, p| {
            chip(
                i,
                &ChipParams {
                    seed: s,
                    ..Default::default()
                },
                p,
            )
        }),
        ("draem", |i, s, p| {
            draem(
                i,
                &DraemParams {
                    seed: s,
                    ..Default::default()
                },
                None,
                p,
            )
        }),
        ("cutpaste", |i, s, p| {
            cutpaste(
                i,
                &CutPasteParams {
                    seed: s,
                    ..Default::default()
                },
                p,
            )
        }),
        ("scar", |i, s, p| {
            cutpaste_scar(
                i,
                &ScarParams {
                    seed: s,
                    ..Default::default()
                },
                p,
            )
        }),
        ("nsa", |i, s, p| {
            nsa(
                i,
                &NsaParams {
                    seed: s,
                    ..Default::default()
                },
                None,
                p,
            )
        }),
    ]
}

fn tex(kind: TextureKind, size: u32, color: [f32; 3]) -> Image {
    texture(&TextureParams {
        kind,
        width: size,
        height: size,
        seed: 7,
        scale: 1.0,
        color,
        contrast: 1.0,
        angle_deg: 0.0,
    })
}

const METAL: [f32; 3] = [0.62, 0.64, 0.67];
const CONCRETE: [f32; 3] = [0.56, 0.55, 0.51];

/// Brushed metal and concrete, 256², built once.
fn textures() -> &'static [(&'static str, Image)] {
    static T: OnceLock<Vec<(&'static str, Image)>> = OnceLock::new();
    T.get_or_init(|| {
        vec![
            ("metal", tex(TextureKind::BrushedMetal, 256, METAL)),
            ("concrete", tex(TextureKind::Concrete, 256, CONCRETE)),
        ]
    })
}

fn max_diff(a: &Image, b: &Image, i: usize) -> f32 {
    (0..3)
        .map(|c| (a.data[i * 4 + c] - b.data[i * 4 + c]).abs())
        .fold(0.0, f32::max)
}

/// Checks (a) and (b) of the mask contract; returns `(core pixels, changed fraction of the
/// core, changed fraction of mask >= 0.5)`.
fn contract(name: &str, img: &Image, d: &Defect) -> (usize, f32, f32) {
    let (w, h) = (img.width as usize, img.height as usize);
    assert_eq!(
        (d.image.width, d.image.height),
        (img.width, img.height),
        "{name}"
    );
    assert_eq!(
        (d.mask.width, d.mask.height),
        (img.width, img.height),
        "{name}"
    );
    assert!(
        d.mask.data.iter().all(|v| (0.0..=1.0).contains(v)),
        "{name}: mask outside 0..1"
    );
    assert!(d.mask.data.iter().any(|&v| v >= 0.5), "{name}: empty mask");
    assert!(
        d.image.data.iter().all(|v| (0.0..=1.0).contains(v)),
        "{name}: image outside 0..1"
    );
    for i in 0..w * h {
        assert_eq!(
            d.image.data[i * 4 + 3],
            img.data[i * 4 + 3],
            "{name}: alpha changed"
        );
    }
    // (a) changed pixels lie within `band` of a mask > 0 pixel.
    let seed: Vec<bool> = d.mask.data.iter().map(|&v| v > 0.0).collect();
    let dist = ops::distance_to(&seed, w, h);
    for i in 0..w * h {
        if max_diff(img, &d.image, i) > EPS {
            assert!(
                dist[i] <= d.band + 1e-4,
                "{name}: pixel ({}, {}) changed by {} but is {} px from the mask (band {})",
                i % w,
                i / w,
                max_diff(img, &d.image, i),
                dist[i],
                d.band
            );
        }
    }
    // (b) the core (mask >= 0.5 shrunk by band) changed.
    let core = ops::shrink(&d.mask, d.band);
    let frac = |m: &dyn Fn(usize) -> bool| {
        let (mut n, mut c) = (0usize, 0usize);
        for i in 0..w * h {
            if m(i) {
                n += 1;
                c += usize::from(max_diff(img, &d.image, i) > EPS);
            }
        }
        (n, if n == 0 { 1.0 } else { c as f32 / n as f32 })
    };
    let (n_core, f_core) = frac(&|i| core.data[i] > 0.5);
    let (_, f_half) = frac(&|i| d.mask.data[i] >= 0.5);
    (n_core, f_core, f_half)
}

#[test]
fn mask_contract_holds_for_every_generator() {
    for (name, g) in gens() {
        let mut any_core = false;
        for (tname, img) in textures() {
            for seed in [1u64, 2, 3] {
                let label = format!("{name}/{tname}/seed {seed}");
                let d = g(img, seed, None).unwrap_or_else(|e| panic!("{label}: {e}"));
                let (n_core, f_core, f_half) = contract(&label, img, &d);
                any_core |= n_core > 0;
                if name == "nsa" {
                    // The strongest true statement for seamless cloning (see NSA_BAND).
                    assert!(f_core >= 0.9, "{label}: only {f_core} of the core changed");
                } else {
                    assert_eq!(f_core, 1.0, "{label}: core not fully changed");
                    assert_eq!(f_half, 1.0, "{label}: mask >= 0.5 not fully changed");
                }
            }
        }
        if name != "scratch" {
            // Thin default scratches (3 px) have no core at band 2.5; scratch_wide covers it.
            assert!(
                any_core,
                "{name}: the eroded core is always empty, (b) untested"
            );
        }
    }
}

#[test]
fn deterministic_in_seed() {
    let img = &textures()[1].1;
    for (name, g) in gens() {
        let a = g(img, 11, None).unwrap();
        let b = g(img, 11, None).unwrap();
        let c = g(img, 12, None).unwrap();
        assert_eq!(a, b, "{name}: same seed differs");
        assert_ne!(a.mask, c.mask, "{name}: different seeds give the same mask");
        assert_ne!(
            a.image, c.image,
            "{name}: different seeds give the same image"
        );
    }
}

fn disc(size: u32, cx: f32, cy: f32, r: f32) -> Mask {
    Mask::from_fn(size, size, |x, y| {
        let d = (x as f32 + 0.5 - cx).hypot(y as f32 + 0.5 - cy);
        f32::from(u8::from(d <= r))
    })
}

#[test]
fn placement_is_respected() {
    let img = &textures()[0].1;
    // A disc in the lower right, and a thin horizontal band.
    let band_mask = Mask::from_fn(256, 256, |_, y| {
        f32::from(u8::from((150..190).contains(&y)))
    });
    for placement in [disc(256, 180.0, 170.0, 60.0), band_mask] {
        let grown = ops::grow(&placement, 0.0);
        for (name, g) in gens() {
            for seed in [1u64, 2, 3] {
                let label = format!("{name}/seed {seed}");
                let d = g(img, seed, Some(&placement)).unwrap_or_else(|e| panic!("{label}: {e}"));
                contract(&label, img, &d);
                let dist = ops::distance_to(
                    &grown.data.iter().map(|&v| v > 0.5).collect::<Vec<_>>(),
                    256,
                    256,
                );
                for (i, &m) in d.mask.data.iter().enumerate() {
                    if m >= 0.5 {
                        assert!(
                            dist[i] <= d.band,
                            "{label}: mask pixel ({}, {}) outside the placement",
                            i % 256,
                            i / 256
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn bad_input_is_an_error() {
    let img = &textures()[0].1;
    let wrong = Mask::filled(100, 256, 1.0);
    let empty = Mask::filled(256, 256, 0.0);
    let zero = Image::filled(0, 0, [0.0; 4]);
    for (name, g) in gens() {
        let e = g(img, 1, Some(&wrong)).unwrap_err();
        assert!(e.contains("placement"), "{name}: {e}");
        let e = g(img, 1, Some(&empty)).unwrap_err();
        assert!(e.contains("empty"), "{name}: {e}");
        assert!(
            g(&zero, 1, None).is_err(),
            "{name}: zero-size image accepted"
        );
    }
    let bad = ScratchParams {
        width: -1.0,
        ..Default::default()
    };
    assert!(scratch(img, &bad, None).is_err());
    let bad = DentParams {
        radius: f32::NAN,
        ..Default::default()
    };
    assert!(dent(img, &bad, None).is_err());
    let bad = CutPasteParams {
        area_min: 0.5,
        area_max: 0.1,
        ..Default::default()
    };
    assert!(cutpaste(img, &bad, None).is_err());
    let bad = DraemParams {
        threshold: 2.0,
        ..Default::default()
    };
    assert!(draem(img, &bad, None, None).is_err());
    let tiny = Image::filled(3, 3, [0.5; 4]);
    assert!(nsa(&tiny, &NsaParams::default(), None, None).is_err());
}

#[test]
fn chips_prefer_the_placement_boundary() {
    let img = &textures()[1].1;
    let placement = disc(256, 128.0, 128.0, 110.0);
    let mean_centroid_depth = |affinity: f32| {
        let mut total = 0.0;
        for seed in 0..8u64 {
            let p = ChipParams {
                seed,
                size: 12.0,
                edge_affinity: affinity,
                ..Default::default()
            };
            let d = chip(img, &p, Some(&placement)).unwrap();
            let (mut sx, mut sy, mut n) = (0.0, 0.0, 0.0);
            for (i, &m) in d.mask.data.iter().enumerate() {
                sx += m * (i % 256) as f32;
                sy += m * (i / 256) as f32;
                n += m;
            }
            let r = (sx / n + 0.5 - 128.0).hypot(sy / n + 0.5 - 128.0);
            total += 110.0 - r;
        }
        total / 8.0
    };
    let (edge, anywhere) = (mean_centroid_depth(4.0), mean_centroid_depth(0.0));
    assert!(
        edge < 12.0,
        "edge-aware chips sit {edge} px inside the boundary"
    );
    assert!(
        anywhere > 2.0 * edge,
        "uniform {anywhere} vs edge-aware {edge}"
    );
}

#[test]
fn draem_reaches_its_coverage_when_the_threshold_is_out_of_reach() {
    // No Perlin value exceeds 1, so no field passes threshold 1: the last field is cut at the
    // level covering min_coverage instead of failing. Within a placement, only it is covered.
    let img = Image::filled(64, 48, [0.5, 0.5, 0.5, 1.0]);
    let place = disc(64, 32.0, 24.0, 14.0);
    let place = Mask {
        width: 64,
        height: 48,
        data: place.data[..64 * 48].to_vec(),
    };
    let area = place.data.iter().filter(|&&v| v >= 0.5).count();
    for (coverage, placement) in [(0.1, None), (0.3, Some(&place)), (1.0, Some(&place))] {
        let p = DraemParams {
            threshold: 1.0,
            min_coverage: coverage,
            ..Default::default()
        };
        let d = draem(&img, &p, None, placement).unwrap();
        let covered = d.mask.data.iter().filter(|&&v| v >= 0.5).count();
        let of = placement.map_or(64 * 48, |_| area);
        assert!(covered as f32 >= coverage * of as f32, "{covered} of {of}");
        if let Some(pl) = placement {
            assert!(d
                .mask
                .data
                .iter()
                .zip(&pl.data)
                .all(|(m, p)| *m < 0.5 || *p >= 0.5));
        }
    }
}

#[test]
fn draem_uses_the_given_source_and_beta() {
    let img = &textures()[0].1;
    let src = Image::filled(64, 64, [1.0, 0.0, 0.0, 1.0]);
    let p = DraemParams {
        seed: 5,
        beta: Some(1.0),
        ..Default::default()
    };
    let d = draem(img, &p, Some(&src), None).unwrap();
    for (i, &m) in d.mask.data.iter().enumerate() {
        if m > 0.0 {
            assert_eq!(&d.image.data[i * 4..i * 4 + 3], &[1.0, 0.0, 0.0]);
        } else {
            assert_eq!(&d.image.data[i * 4..i * 4 + 3], &img.data[i * 4..i * 4 + 3]);
        }
    }
}

// ------------------------------------------------------------------------------- Poisson ---

#[test]
fn poisson_residual_is_small_for_a_random_region() {
    let t = tex(TextureKind::PaintedSurface, 128, [0.45, 0.5, 0.55]);
    let s = tex(TextureKind::Concrete, 96, [0.5, 0.48, 0.46]);
    let noise = noise_field(NoiseKind::Perlin, 128, 128, 3, 24.0, 2);
    let region = Mask::from_fn(128, 128, |x, y| {
        let inside = (20..110).contains(&x) && (20..110).contains(&y);
        f32::from(u8::from(inside && noise.get(x, y) > 0.5))
    });
    assert!(region.data.iter().sum::<f32>() > 500.0);
    let out = poisson_blend(&t, &s, &region, (16, 16)).unwrap();
    let res = poisson_residual(&out, &t, &s, &region, (16, 16));
    assert!(res < 1e-3, "max residual {res}");
    // The residual of the unblended target is large, so the check is meaningful.
    assert!(poisson_residual(&t, &t, &s, &region, (16, 16)) > 1e-2);
    // Outside the region nothing changes.
    for (i, &m) in region.data.iter().enumerate() {
        if m < 0.5 {
            assert_eq!(out.data[i * 4..i * 4 + 4], t.data[i * 4..i * 4 + 4]);
        }
    }
}

#[test]
fn poisson_constant_source_gives_the_harmonic_fill() {
    // A linear ramp is harmonic: with zero guidance the fill must reproduce it.
    let t = Image::from_fn(64, 48, |x, y| {
        let v = 0.1 + 0.01 * x as f32 + 0.005 * y as f32;
        [v, 1.0 - v, 0.5, 1.0]
    });
    let s = Image::filled(8, 8, [0.9, 0.9, 0.9, 1.0]);
    let region = disc(64, 30.0, 24.0, 15.0);
    let region = Mask::from_fn(64, 48, |x, y| region.get(x, y));
    let out = poisson_blend(&t, &s, &region, (0, 0)).unwrap();
    for i in 0..64 * 48 {
        for c in 0..3 {
            assert!((out.data[i * 4 + c] - t.data[i * 4 + c]).abs() < 1e-4);
        }
    }
}

#[test]
fn poisson_seam_is_smoother_than_a_plain_paste() {
    let t = tex(TextureKind::PaintedSurface, 128, [0.3, 0.4, 0.5]);
    let s = tex(TextureKind::Concrete, 128, [0.75, 0.7, 0.6]);
    let region = disc(128, 64.0, 64.0, 30.0);
    let blended = poisson_blend(&t, &s, &region, (0, 0)).unwrap();
    let (pasted, _) = ops::composite(&t, &s, Some(&region), 0, 0, 1.0, ops::Blend::Normal);
    // Mean |difference| across the seam: pairs of 4-neighbours with one pixel in the region.
    let seam = |img: &Image| {
        let (mut sum, mut n) = (0.0, 0.0);
        for y in 1..127u32 {
            for x in 1..127u32 {
                let a = region.get(x, y) >= 0.5;
                for (qx, qy) in [(x + 1, y), (x, y + 1)] {
                    if a != (region.get(qx, qy) >= 0.5) {
                        let (p, q) = (img.pixel(x, y), img.pixel(qx, qy));
                        sum += (0..3).map(|c| (p[c] - q[c]).abs()).sum::<f32>();
                        n += 1.0;
                    }
                }
            }
        }
        sum / n
    };
    let (sp, sa) = (seam(&blended), seam(&pasted));
    assert!(sp < 0.5 * sa, "poisson seam {sp} vs paste seam {sa}");
}

#[test]
fn poisson_rejects_bad_regions() {
    let t = Image::filled(16, 16, [0.5; 4]);
    assert!(poisson_blend(&t, &t, &Mask::filled(16, 16, 0.0), (0, 0)).is_err());
    assert!(poisson_blend(&t, &t, &Mask::filled(16, 16, 1.0), (0, 0)).is_err());
    assert!(poisson_blend(&t, &t, &Mask::filled(8, 16, 1.0), (0, 0)).is_err());
}

#[test]
fn instance_ids_cover_the_mask_and_count_the_defects() {
    let img = &textures()[0].1;
    for (name, g) in gens() {
        let d = g(img, 11, None).unwrap();
        assert_eq!(d.instances.len(), d.mask.data.len(), "{name}");
        for (i, (&id, &m)) in d.instances.iter().zip(&d.mask.data).enumerate() {
            assert_eq!(id > 0, m > 0.0, "{name}: pixel {i} id {id} mask {m}");
        }
    }
    // Three stains: ids 1..=3, each present (however many regions each has).
    let d = stain(
        img,
        &StainParams {
            count: 3,
            size: 12.0,
            seed: 4,
            ..Default::default()
        },
        None,
    )
    .unwrap();
    let mut ids: Vec<u32> = d.instances.iter().copied().filter(|&i| i > 0).collect();
    ids.sort_unstable();
    ids.dedup();
    assert!(
        !ids.is_empty() && ids.len() <= 3 && ids.iter().all(|&i| i <= 3),
        "{ids:?}"
    );
    let d = scratch(
        img,
        &ScratchParams {
            count: 4,
            seed: 2,
            ..Default::default()
        },
        None,
    )
    .unwrap();
    let max = d.instances.iter().copied().max().unwrap_or(0);
    assert!((2..=4).contains(&max), "scratch ids up to {max}");
}
