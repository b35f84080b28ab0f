//! Lattice noise: gradient ([`perlin2`]), value ([`value2`]) and cellular ([`cellular2`])
//! noise, fractal sums ([`fbm`]) and whole fields normalised to `0..1` ([`noise_field`]).
//!
//! Every function is a pure function of its seed and coordinates, so a field sampled on a
//! bigger canvas contains exactly the same values as one sampled on a smaller canvas.

use super::rng::{hash2, hash_x, hash_y, sub_seed, unit_f32};
use crate::image::Mask;

const DIAG: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// The 8 unit gradient directions of [`perlin2`] (axes and diagonals).
const GRAD_X: [f32; 8] = [1.0, -1.0, 0.0, 0.0, DIAG, DIAG, -DIAG, -DIAG];
const GRAD_Y: [f32; 8] = [0.0, 0.0, 1.0, -1.0, DIAG, -DIAG, DIAG, -DIAG];

/// Quintic fade curve `6t^5 - 15t^4 + 10t^3` (C2-continuous interpolation weight).
#[inline]
fn fade(t: f32) -> f32 {
    t * t * t * (t * (t * 6.0 - 15.0) + 10.0)
}

#[inline]
fn lerp(a: f32, b: f32, t: f32) -> f32 {
    a + (b - a) * t
}

#[inline]
fn grad(h: u64, x: f32, y: f32) -> f32 {
    let i = (h >> 61) as usize; // top 3 bits: 0..8
    GRAD_X[i] * x + GRAD_Y[i] * y
}

/// Splits a coordinate into lattice cell and fraction.
#[inline]
fn cell(v: f32) -> (i64, f32) {
    let f = v.floor();
    (f as i64, v - f)
}

/// 2-D gradient (Perlin) noise with the quintic fade and 8 gradient directions.
///
/// Returns a value in `-1..=1` (scaled by √2 so the theoretical extremes are ±1; typical
/// standard deviation ≈ 0.3), exactly 0 at integer lattice points, smooth everywhere.
/// One lattice cell is 1 unit: scale the coordinates to choose the feature size.
pub fn perlin2(seed: u64, x: f32, y: f32) -> f32 {
    let (ix, fx) = cell(x);
    let (iy, fy) = cell(y);
    let hx0 = hash_x(seed, ix);
    let hx1 = hash_x(seed, ix.wrapping_add(1));
    let iy1 = iy.wrapping_add(1);
    let g00 = grad(hash_y(hx0, iy), fx, fy);
    let g10 = grad(hash_y(hx1, iy), fx - 1.0, fy);
    let g01 = grad(hash_y(hx0, iy1), fx, fy - 1.0);
    let g11 = grad(hash_y(hx1, iy1), fx - 1.0, fy - 1.0);
    let u = fade(fx);
    let v = fade(fy);
    let n = lerp(lerp(g00, g10, u), lerp(g01, g11, u), v) * std::f32::consts::SQRT_2;
    n.clamp(-1.0, 1.0)
}

/// 2-D value noise: random values in `-1..=1` at lattice points, smoothly interpolated.
///
/// Blobbier than [`perlin2`] (features sit on the lattice); one cell is 1 unit.
pub fn value2(seed: u64, x: f32, y: f32) -> f32 {
    let (ix, fx) = cell(x);
    let (iy, fy) = cell(y);
    let hx0 = hash_x(seed, ix);
    let hx1 = hash_x(seed, ix.wrapping_add(1));
    let iy1 = iy.wrapping_add(1);
    let val = |h: u64| unit_f32(h) * 2.0 - 1.0;
    let u = fade(fx);
    let v = fade(fy);
    let a = lerp(val(hash_y(hx0, iy)), val(hash_y(hx1, iy)), u);
    let b = lerp(val(hash_y(hx0, iy1)), val(hash_y(hx1, iy1)), u);
    lerp(a, b, v)
}

/// 2-D cellular (Worley) noise: distance from `(x, y)` to the nearest of a set of random
/// points, one per unit lattice cell. `0` at a point, typically up to about `1`.
pub fn cellular2(seed: u64, x: f32, y: f32) -> f32 {
    let (ix, fx) = cell(x);
    let (iy, fy) = cell(y);
    // Squared distance from (fx, fy) to the feature point of the neighbour cell (dx, dy).
    let point_d2 = |hx: u64, dx: i64, dy: i64| {
        let h = hash_y(hx, iy.wrapping_add(dy));
        let px = dx as f32 + unit_f32(h) - fx;
        let py = dy as f32 + unit_f32(h << 24) - fy;
        px * px + py * py
    };
    // Own cell first, then only the neighbours that could still hold a nearer point.
    let mut best = point_d2(hash_x(seed, ix), 0, 0);
    let gap = |d: i64, f: f32| match d {
        -1 => f,
        1 => 1.0 - f,
        _ => 0.0,
    };
    for dx in -1i64..=1 {
        let gx = gap(dx, fx);
        let gx2 = gx * gx;
        if gx2 >= best {
            continue;
        }
        let hx = hash_x(seed, ix.wrapping_add(dx));
        for dy in -1i64..=1 {
            let gy = gap(dy, fy);
            if (dx == 0 && dy == 0) || gx2 + gy * gy >= best {
                continue;
            }
            best = best.min(point_d2(hx, dx, dy));
        }
    }
    best.sqrt()
}

/// Per-octave coordinate offset, so that octaves' lattice points do not coincide.
#[inline]
fn octave_offset(i: u32) -> (f32, f32) {
    (i as f32 * 0.371_8, i as f32 * 0.617_3)
}

/// Fractal Brownian motion: `octaves` layers of [`perlin2`], each `lacunarity` times finer and
/// `gain` times weaker than the one before, each with its own derived seed.
///
/// The sum is divided by the total amplitude, so the result stays within `-1..=1`.
/// `octaves` is clamped to `1..=16`.
pub fn fbm(seed: u64, x: f32, y: f32, octaves: u32, lacunarity: f32, gain: f32) -> f32 {
    let octaves = octaves.clamp(1, 16);
    let mut sum = 0.0;
    let mut total = 0.0;
    let mut amp = 1.0;
    let mut freq = 1.0;
    for i in 0..octaves {
        let (ox, oy) = octave_offset(i);
        sum += amp * perlin2(sub_seed(seed, i as u64), x * freq + ox, y * freq + oy);
        total += amp;
        amp *= gain;
        freq *= lacunarity;
    }
    if total > 0.0 {
        sum / total
    } else {
        0.0
    }
}

/// The kinds of noise [`noise_field`] can make.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoiseKind {
    /// Smooth gradient noise ([`perlin2`]): soft, isotropic blobs.
    Perlin,
    /// Value noise ([`value2`]): blobbier, slightly grid-aligned.
    Value,
    /// Cellular / Worley noise ([`cellular2`]): dark cell centres, bright cell borders.
    Cellular,
    /// Uncorrelated noise: one random value per `scale_px`-sized block.
    White,
}

impl NoiseKind {
    /// Every kind, in a fixed order.
    pub const ALL: [NoiseKind; 4] = [
        NoiseKind::Perlin,
        NoiseKind::Value,
        NoiseKind::Cellular,
        NoiseKind::White,
    ];

    /// The stable lower-case name: `"perlin"`, `"value"`, `"cellular"` or `"white"`.
    pub fn name(self) -> &'static str {
        match self {
            NoiseKind::Perlin => "perlin",
            NoiseKind::Value => "value",
            NoiseKind::Cellular => "cellular",
            NoiseKind::White => "white",
        }
    }

    /// The kind called `name` (as returned by [`NoiseKind::name`]), if any.
    pub fn from_name(name: &str) -> Option<NoiseKind> {
        NoiseKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// Fixed contrast stretch for fractal perlin/value sums: maps about ±2.6 standard deviations
/// onto the `0..1` range (rare excursions beyond are clipped).
const PERLIN_STRETCH: f32 = 1.25;
const VALUE_STRETCH: f32 = 0.85;
/// Mean nearest-point distance of [`cellular2`] (measured), the pivot of its contrast stretch.
const CELLULAR_MEAN: f32 = 0.43;

/// A noise field of `kind`, normalised to `0..=1`.
///
/// `scale_px` is the feature size (lattice cell) of the first octave in pixels; each further
/// octave is twice as fine and half as strong (`octaves` clamped to `1..=16`; ignored by
/// [`NoiseKind::White`], whose blocks are `scale_px` wide, so `scale_px <= 1` gives per-pixel
/// noise). Pixel `(x, y)` is sampled at its centre `(x + 0.5, y + 0.5)`.
///
/// The normalisation is fixed, not per image: the value at `(x, y)` depends only on `(kind,
/// seed, x, y, scale_px, octaves)`, never on `width`/`height`, so a small field equals the
/// top-left crop of a larger one. Perlin and value sums are stretched by a fixed factor
/// around 0.5 (mean 0.5) and clipped; cellular is the nearest-point distance in cell units
/// (mean ≈ 0.43, clipped at 1); white is uniform. The fractal sums are rescaled by a fixed
/// per-octave-count factor so that their contrast hardly changes with `octaves`.
pub fn noise_field(
    kind: NoiseKind,
    width: u32,
    height: u32,
    seed: u64,
    scale_px: f32,
    octaves: u32,
) -> Mask {
    let inv = 1.0 / scale_px.max(0.01);
    let octaves = octaves.clamp(1, 16);
    // Amplitude normalisation of the fractal sum, fixed for the given octave count.
    let total: f32 = (0..octaves).map(|i| 0.5f32.powi(i as i32)).sum();
    let seeds: Vec<u64> = (0..octaves).map(|i| sub_seed(seed, i as u64)).collect();
    let fractal = |f: fn(u64, f32, f32) -> f32, x: f32, y: f32| {
        let mut sum = 0.0;
        let mut amp = 1.0;
        let mut freq = 1.0;
        for (i, &s) in seeds.iter().enumerate() {
            let (ox, oy) = octave_offset(i as u32);
            sum += amp * f(s, x * freq + ox, y * freq + oy);
            amp *= 0.5;
            freq *= 2.0;
        }
        sum / total
    };
    // Fractal sums shrink in spread as octaves are added (sum of squares vs sum): undo that
    // with a fixed factor so every octave count has similar contrast.
    let sq: f32 = (0..octaves).map(|i| 0.25f32.powi(i as i32)).sum();
    let spread = total / sq.sqrt();
    Mask::from_fn(width, height, |px, py| {
        let x = (px as f32 + 0.5) * inv;
        let y = (py as f32 + 0.5) * inv;
        let v = match kind {
            NoiseKind::Perlin => 0.5 + 0.5 * PERLIN_STRETCH * spread * fractal(perlin2, x, y),
            NoiseKind::Value => 0.5 + 0.5 * VALUE_STRETCH * spread * fractal(value2, x, y),
            NoiseKind::Cellular => {
                CELLULAR_MEAN + spread * (fractal(cellular2, x, y) - CELLULAR_MEAN)
            }
            NoiseKind::White => unit_f32(hash2(seed, x.floor() as i64, y.floor() as i64)),
        };
        v.clamp(0.0, 1.0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(d: &[f32]) -> (f64, f64) {
        let n = d.len() as f64;
        let mean = d.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = d.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        (mean, var.sqrt())
    }

    #[test]
    fn perlin_zero_at_lattice_and_bounded() {
        for y in -5..5 {
            for x in -5..5 {
                assert_eq!(perlin2(3, x as f32, y as f32), 0.0);
            }
        }
        let mut max = 0.0f32;
        for i in 0..20_000 {
            let x = i as f32 * 0.173;
            let y = i as f32 * 0.0917;
            let v = perlin2(11, x, y);
            assert!(v.is_finite() && (-1.0..=1.0).contains(&v));
            max = max.max(v.abs());
        }
        assert!(max > 0.5, "perlin range too small: {max}");
    }

    #[test]
    fn perlin_is_continuous() {
        // Small steps give small changes (no seams at cell borders).
        let mut prev = perlin2(5, -3.0, 1.3);
        for i in 1..4000 {
            let x = -3.0 + i as f32 * 0.002;
            let v = perlin2(5, x, 1.3);
            assert!((v - prev).abs() < 0.02, "jump at x={x}");
            prev = v;
        }
    }

    #[test]
    fn seeds_matter_and_are_deterministic() {
        assert_eq!(perlin2(1, 0.3, 0.7), perlin2(1, 0.3, 0.7));
        assert_ne!(perlin2(1, 0.3, 0.7), perlin2(2, 0.3, 0.7));
        assert_ne!(value2(1, 0.3, 0.7), value2(2, 0.3, 0.7));
        assert_ne!(cellular2(1, 0.3, 0.7), cellular2(2, 0.3, 0.7));
        assert_ne!(fbm(1, 0.3, 0.7, 4, 2.0, 0.5), fbm(2, 0.3, 0.7, 4, 2.0, 0.5));
    }

    #[test]
    fn cellular_matches_full_neighbourhood_search() {
        // The pruned search must find exactly the nearest of the 3x3 feature points.
        for i in 0..3000 {
            let (x, y) = (i as f32 * 0.0731 - 40.0, (i % 97) as f32 * 0.113 - 5.0);
            let (ix, iy) = (x.floor() as i64, y.floor() as i64);
            let mut best = f32::MAX;
            for dx in -1..=1 {
                for dy in -1..=1 {
                    let h = hash2(8, ix + dx, iy + dy);
                    let px = (ix + dx) as f32 + unit_f32(h) - x;
                    let py = (iy + dy) as f32 + unit_f32(h << 24) - y;
                    best = best.min(px.hypot(py));
                }
            }
            assert!((cellular2(8, x, y) - best).abs() < 1e-4, "at {x},{y}");
        }
    }

    #[test]
    fn fbm_bounded_and_octaves_add_detail() {
        let mut diff = 0.0;
        for i in 0..5000 {
            let (x, y) = (i as f32 * 0.37, i as f32 * 0.21);
            let a = fbm(4, x, y, 6, 2.0, 0.5);
            assert!((-1.0..=1.0).contains(&a));
            diff += (a - fbm(4, x, y, 1, 2.0, 0.5)).abs();
        }
        assert!(diff / 5000.0 > 0.01);
    }

    #[test]
    fn noise_field_deterministic_in_range_and_seeded() {
        for kind in NoiseKind::ALL {
            let a = noise_field(kind, 48, 40, 17, 9.0, 4);
            let b = noise_field(kind, 48, 40, 17, 9.0, 4);
            let c = noise_field(kind, 48, 40, 18, 9.0, 4);
            assert_eq!(a, b, "{kind:?}");
            assert_ne!(a.data, c.data, "{kind:?}");
            assert_eq!(a.data.len(), 48 * 40);
            assert!(a.data.iter().all(|v| (0.0..=1.0).contains(v)), "{kind:?}");
        }
    }

    #[test]
    fn noise_field_crop_invariant() {
        for kind in NoiseKind::ALL {
            for octaves in [1, 5] {
                let small = noise_field(kind, 64, 64, 99, 13.5, octaves);
                let big = noise_field(kind, 128, 128, 99, 13.5, octaves);
                for y in 0..64 {
                    for x in 0..64 {
                        assert_eq!(small.get(x, y), big.get(x, y), "{kind:?} at {x},{y}");
                    }
                }
            }
        }
    }

    #[test]
    fn noise_field_statistics_are_usable() {
        // Mean near the middle and a healthy spread, for 1 and many octaves alike.
        for kind in NoiseKind::ALL {
            for octaves in [1, 6] {
                let f = noise_field(kind, 256, 256, 5, 16.0, octaves);
                let (mean, std) = stats(&f.data);
                assert!(
                    (0.3..0.7).contains(&mean),
                    "{kind:?}/{octaves}: mean {mean}"
                );
                assert!((0.1..0.35).contains(&std), "{kind:?}/{octaves}: std {std}");
                let clipped = f.data.iter().filter(|&&v| v == 0.0 || v == 1.0).count();
                assert!(
                    clipped < f.data.len() / 50,
                    "{kind:?}/{octaves}: {clipped} clipped"
                );
            }
        }
    }

    #[test]
    fn noise_field_scale_sets_feature_size() {
        // Neighbouring pixels are strongly correlated at a large scale, barely at a tiny one.
        let corr = |m: &Mask| {
            let (mean, std) = stats(&m.data);
            let mut s = 0.0;
            let mut n = 0.0;
            for y in 0..m.height {
                for x in 0..m.width - 1 {
                    s += (m.get(x, y) as f64 - mean) * (m.get(x + 1, y) as f64 - mean);
                    n += 1.0;
                }
            }
            s / n / (std * std)
        };
        for kind in [NoiseKind::Perlin, NoiseKind::Value, NoiseKind::Cellular] {
            let coarse = corr(&noise_field(kind, 128, 128, 1, 32.0, 1));
            let fine = corr(&noise_field(kind, 128, 128, 1, 1.5, 1));
            assert!(coarse > 0.9 && fine < 0.6, "{kind:?}: {coarse} {fine}");
        }
        let white = corr(&noise_field(NoiseKind::White, 128, 128, 1, 1.0, 1));
        assert!(white.abs() < 0.05, "white {white}");
    }

    #[test]
    fn names_round_trip() {
        let names: Vec<&str> = NoiseKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names, ["perlin", "value", "cellular", "white"]);
        for k in NoiseKind::ALL {
            assert_eq!(NoiseKind::from_name(k.name()), Some(k));
        }
        assert_eq!(NoiseKind::from_name("Perlin"), None);
        assert_eq!(NoiseKind::from_name(""), None);
    }
}
