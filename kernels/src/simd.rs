//! The SIMD level of the CPU paths, chosen at run time, and the vectorised element-wise math
//! they share (exp, SiLU).
//!
//! [`level`] is detected once: AVX-512 (`avx512f`) when the CPU has it, else AVX2 + FMA, else
//! scalar. `DEFECT_STUDIO_SIMD=avx2` (or `scalar`) caps it, so the lower paths can be tested and
//! measured on an AVX-512 machine; a level above what the CPU has is never used. The `*_at`
//! functions take the level explicitly (tests run every level in one process).
//!
//! The math is written once, over fixed-size chunks of [`LANES`] floats, in `#[inline(always)]`
//! functions generic over how a multiply-add is done; per level, a `#[target_feature]` wrapper
//! (`avx512f` or `avx2,fma`) instantiates them and LLVM vectorises the chunk loops at that
//! width (no intrinsics, no fast-math: the results do not depend on the compiler's choices
//! beyond the FMA contraction the level allows). exp is Cephes' `expf`: round `x·log2 e` to n,
//! reduce `r = x − n·ln 2` in two parts, a degree-6 polynomial, then scale by 2ⁿ built from the
//! exponent bits in two halves, so that results that are subnormal or overflow come out right
//! (≤ 2 ulp in the normal range; −∞ and very negative inputs give 0, NaN stays NaN).
//!
//! gemm (the crate candle uses, built with its `x86-v4` feature) does its own run-time detection
//! and is not capped by the variable.

use std::sync::OnceLock;

/// Instruction-set level of the CPU paths, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Portable code (the compiler's baseline for the target).
    Scalar,
    /// AVX2 + FMA (x86-64-v3).
    Avx2,
    /// AVX-512F (x86-64-v4).
    Avx512,
}

impl Level {
    /// The highest level this CPU supports.
    pub fn detected() -> Level {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Level::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Level::Avx2;
            }
        }
        Level::Scalar
    }

    /// Parses `avx512`, `avx2` or `scalar` (case-insensitive).
    pub fn parse(s: &str) -> Option<Level> {
        match s.trim().to_ascii_lowercase().as_str() {
            "avx512" | "avx-512" | "x86-v4" => Some(Level::Avx512),
            "avx2" | "x86-v3" => Some(Level::Avx2),
            "scalar" | "none" => Some(Level::Scalar),
            _ => None,
        }
    }

    /// Every level this CPU supports, lowest first (what tests iterate over).
    pub fn supported() -> Vec<Level> {
        let top = Level::detected();
        [Level::Scalar, Level::Avx2, Level::Avx512]
            .into_iter()
            .filter(|l| *l <= top)
            .collect()
    }
}

/// Name of the environment variable that caps [`level`].
pub const SIMD_ENV: &str = "DEFECT_STUDIO_SIMD";

/// The level the CPU paths use: [`Level::detected`], capped by `DEFECT_STUDIO_SIMD`.
pub fn level() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let top = Level::detected();
        match std::env::var(SIMD_ENV)
            .ok()
            .as_deref()
            .and_then(Level::parse)
        {
            Some(cap) => cap.min(top),
            None => top,
        }
    })
}

/// Floats per chunk of the element-wise loops (one AVX-512 register; two AVX2 ones).
pub const LANES: usize = 16;

/// How a multiply-add is computed: a fused instruction where the level has one, else `a·b + c`
/// (a fused `mul_add` without FMA hardware is a slow library call).
trait MulAdd {
    fn mul_add(a: f32, b: f32, c: f32) -> f32;
}

/// `a·b + c` rounded twice (the scalar level).
struct Separate;
impl MulAdd for Separate {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

/// `a·b + c` rounded once (levels with FMA).
struct Fused;
impl MulAdd for Fused {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

/// Inputs are clamped to this range before the reduction: below it exp is 0 in f32 (the
/// smallest subnormal is e^−103.3), above it ∞; the clamp keeps n in [−159, 129], whose halves
/// are normal exponents.
const EXP_LO: f32 = -110.0;
const EXP_HI: f32 = 89.0;

/// exp of one value, branch-free (vectorises when inlined into a chunk loop).
#[inline(always)]
fn exp1<M: MulAdd>(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // 1.5 · 2^23: adding it rounds to an integer held in the low mantissa bits.
    const MAGIC: f32 = 12_582_912.0;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Comparisons (not f32::max/min), so NaN passes through.
    let x = if x < EXP_LO { EXP_LO } else { x };
    let x = if x > EXP_HI { EXP_HI } else { x };
    let t = M::mul_add(x, LOG2E, MAGIC);
    let n = t - MAGIC;
    let ni = (t.to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
    let r = M::mul_add(n, -LN2_HI, x);
    let r = M::mul_add(n, -LN2_LO, r);
    let mut p = 1.987_569_1e-4;
    p = M::mul_add(p, r, 1.398_199_9e-3);
    p = M::mul_add(p, r, 8.333_452e-3);
    p = M::mul_add(p, r, 4.166_579_6e-2);
    p = M::mul_add(p, r, 1.666_666_5e-1);
    p = M::mul_add(p, r, 0.5);
    let p = M::mul_add(p, r * r, r) + 1.0;
    // 2^n as 2^n1 · 2^n2 with both halves normal.
    // (Wrapping: a NaN input gives arbitrary bits here, and NaN out.)
    let n1 = ni >> 1;
    let n2 = ni.wrapping_sub(n1);
    let pow = |e: i32| f32::from_bits((e.wrapping_add(127) as u32) << 23);
    p * pow(n1) * pow(n2)
}

/// `x · sigmoid(x)` of one value, through `e = exp(−|x|)` (never overflows): `x / (1 + e)` for
/// x ≥ 0, `x · e / (1 + e)` below, which keeps the tiny results of very negative x.
#[inline(always)]
fn silu1<M: MulAdd>(x: f32) -> f32 {
    let e = exp1::<M>(-x.abs());
    let num = if x >= 0.0 { x } else { x * e };
    num / (1.0 + e)
}

/// Applies `f` to every element, [`LANES`] at a time (the tail goes through a padded chunk, so
/// it takes the same vector code).
#[inline(always)]
fn map_chunks(x: &mut [f32], f: impl Fn(f32) -> f32) {
    let (chunks, tail) = x.as_chunks_mut::<LANES>();
    for c in chunks {
        for v in c.iter_mut() {
            *v = f(*v);
        }
    }
    if !tail.is_empty() {
        let mut buf = [0f32; LANES];
        buf[..tail.len()].copy_from_slice(tail);
        for v in buf.iter_mut() {
            *v = f(*v);
        }
        tail.copy_from_slice(&buf[..tail.len()]);
    }
}

/// `x[i] = exp(x[i] − shift)`, returning the sum of the results (the softmax row step).
#[inline(always)]
fn exp_sub_sum<M: MulAdd>(x: &mut [f32], shift: f32) -> f32 {
    let mut acc = [0f32; LANES];
    let (chunks, tail) = x.as_chunks_mut::<LANES>();
    for c in chunks {
        for (v, a) in c.iter_mut().zip(acc.iter_mut()) {
            *v = exp1::<M>(*v - shift);
            *a += *v;
        }
    }
    let mut sum = acc.iter().sum::<f32>();
    for v in tail {
        *v = exp1::<M>(*v - shift);
        sum += *v;
    }
    sum
}

/// The largest element (−∞ for an empty slice; NaNs are skipped).
#[inline(always)]
fn max_of(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let (chunks, tail) = x.as_chunks::<LANES>();
    for c in chunks {
        for (v, a) in c.iter().zip(acc.iter_mut()) {
            *a = if *v > *a { *v } else { *a };
        }
    }
    let mut m = f32::NEG_INFINITY;
    for v in acc.iter().chain(tail) {
        m = if *v > m { *v } else { m };
    }
    m
}

/// `x[i] *= s`.
#[inline(always)]
fn scale(x: &mut [f32], s: f32) {
    for v in x.iter_mut() {
        *v *= s;
    }
}

/// One function per level: a scalar body, and `#[target_feature]` copies of it for AVX2 + FMA
/// and AVX-512 that the dispatcher calls only when the CPU has the feature.
macro_rules! per_level {
    ($(#[$doc:meta])* $name:ident ($($arg:ident : $ty:ty),*) -> $ret:ty = |$m:ident| $body:expr) => {
        $(#[$doc])*
        pub fn $name(level: Level, $($arg: $ty),*) -> $ret {
            #[allow(dead_code)]
            fn generic<$m: MulAdd>($($arg: $ty),*) -> $ret { $body }
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                unsafe fn avx512($($arg: $ty),*) -> $ret {
                    #[inline(always)]
                    fn body<$m: MulAdd>($($arg: $ty),*) -> $ret { $body }
                    body::<Fused>($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) -> $ret {
                    #[inline(always)]
                    fn body<$m: MulAdd>($($arg: $ty),*) -> $ret { $body }
                    body::<Fused>($($arg),*)
                }
                match level.min(Level::detected()) {
                    // SAFETY: the CPU has the features the functions are compiled for
                    // (`Level::detected` checked them at run time).
                    Level::Avx512 => return unsafe { avx512($($arg),*) },
                    Level::Avx2 => return unsafe { avx2($($arg),*) },
                    Level::Scalar => {}
                }
            }
            let _ = level;
            generic::<Separate>($($arg),*)
        }
    };
}

per_level!(
    /// `x[i] = exp(x[i])` at an explicit level (clamped to what the CPU has).
    exp_in_place_at(x: &mut [f32]) -> () = |M| map_chunks(x, exp1::<M>)
);

per_level!(
    /// SiLU (`x · sigmoid(x)`) at an explicit level (clamped to what the CPU has).
    silu_in_place_at(x: &mut [f32]) -> () = |M| map_chunks(x, silu1::<M>)
);

per_level!(
    /// `x[i] = exp(x[i] − shift)` at an explicit level, returning `Σ x[i]` (the numerator and
    /// denominator of a softmax row shifted by its max).
    exp_sub_sum_at(x: &mut [f32], shift: f32) -> f32 = |M| exp_sub_sum::<M>(x, shift)
);

per_level!(
    /// The largest element at an explicit level (−∞ when empty; NaNs are skipped).
    max_at(x: &[f32]) -> f32 = |M| { let _ = std::marker::PhantomData::<M>; max_of(x) }
);

per_level!(
    /// `x[i] *= s` at an explicit level.
    scale_at(x: &mut [f32], s: f32) -> () = |M| { let _ = std::marker::PhantomData::<M>; scale(x, s) }
);

/// `x[i] = exp(x[i])` at [`level`].
pub fn exp_in_place(x: &mut [f32]) {
    exp_in_place_at(level(), x)
}

/// `x[i] = x[i] · sigmoid(x[i])` (SiLU) at [`level`].
pub fn silu_in_place(x: &mut [f32]) {
    silu_in_place_at(level(), x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Relative error of `got` against the f64 reference `want`.
    fn rel(got: f32, want: f64) -> f64 {
        ((got as f64 - want) / want).abs()
    }

    /// A dense grid over [lo, hi] plus a length that is not a multiple of [`LANES`], so the
    /// padded tail is exercised.
    fn grid(lo: f32, hi: f32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| lo + (hi - lo) * i as f32 / (n - 1) as f32)
            .collect()
    }

    #[test]
    fn exp_is_accurate_over_the_normal_range_at_every_level() {
        let xs = grid(-87.0, 88.0, 200_003);
        for level in Level::supported() {
            let mut y = xs.clone();
            exp_in_place_at(level, &mut y);
            let worst = xs
                .iter()
                .zip(&y)
                .map(|(&x, &g)| rel(g, (x as f64).exp()))
                .fold(0f64, f64::max);
            assert!(worst <= 1e-6, "{level:?}: worst relative error {worst}");
            // Near zero, where the polynomial alone decides, it is within 2 ulp of libm.
            let mut small = grid(-0.5, 0.5, 1001);
            let want: Vec<f32> = small.iter().map(|x| x.exp()).collect();
            exp_in_place_at(level, &mut small);
            for (g, w) in small.iter().zip(&want) {
                assert!(
                    (g.to_bits() as i64 - w.to_bits() as i64).abs() <= 2,
                    "{level:?}: {g} vs {w}"
                );
            }
        }
    }

    #[test]
    fn exp_edge_values_at_every_level() {
        let xs = [
            f32::NEG_INFINITY,
            -1e30,
            -200.0,
            -104.0,
            -100.0,
            -0.0,
            0.0,
            1e-30,
            88.7,
            89.0,
            100.0,
            f32::INFINITY,
            f32::NAN,
        ];
        for level in Level::supported() {
            let mut y = xs.to_vec();
            exp_in_place_at(level, &mut y);
            assert_eq!(&y[..4], &[0.0; 4], "{level:?}: very negative → 0");
            // exp(−100) ≈ 3.7e−44 is subnormal: within one subnormal step (1.4e−45) of exact.
            assert!(
                ((y[4] as f64) - (-100f64).exp()).abs() <= 1.5e-45,
                "{level:?}: {}",
                y[4]
            );
            assert_eq!(&y[5..8], &[1.0; 3], "{level:?}");
            assert!(
                rel(y[8], (88.7f32 as f64).exp()) <= 1e-6,
                "{level:?}: {}",
                y[8]
            );
            assert!(
                y[9..12].iter().all(|v| *v == f32::INFINITY),
                "{level:?}: overflow → ∞"
            );
            assert!(y[12].is_nan(), "{level:?}: NaN stays NaN");
        }
    }

    #[test]
    fn silu_matches_f64_at_every_level() {
        let xs = grid(-90.0, 90.0, 50_001);
        for level in Level::supported() {
            let mut y = xs.clone();
            silu_in_place_at(level, &mut y);
            for (&x, &g) in xs.iter().zip(&y) {
                let x64 = x as f64;
                let want = x64 / (1.0 + (-x64).exp());
                // Relative where the value is representable, absolute near the underflow.
                let err = (g as f64 - want).abs();
                assert!(
                    err <= 1e-6 * want.abs() + 1e-37,
                    "{level:?}: silu({x}) = {g}, want {want}"
                );
            }
        }
    }

    #[test]
    fn softmax_row_helpers_at_every_level() {
        // 1000 values (not a multiple of LANES) with the max in the tail.
        let mut xs: Vec<f32> = (0..1000)
            .map(|i| ((i * 37) % 101) as f32 * 0.5 - 20.0)
            .collect();
        xs[997] = 31.5;
        for level in Level::supported() {
            assert_eq!(max_at(level, &xs), 31.5, "{level:?}");
            assert_eq!(
                max_at(level, &xs[..3]),
                xs[..3].iter().cloned().fold(f32::MIN, f32::max)
            );
            assert_eq!(max_at(level, &[]), f32::NEG_INFINITY);
            let mut y = xs.clone();
            let sum = exp_sub_sum_at(level, &mut y, 31.5);
            let mut want_sum = 0f64;
            for (&x, &g) in xs.iter().zip(&y) {
                let w = (x as f64 - 31.5).exp();
                want_sum += w;
                assert!(
                    rel(g, w) <= 1e-6,
                    "{level:?}: exp({x} − 31.5) = {g}, want {w}"
                );
            }
            assert!(
                rel(sum, want_sum) <= 1e-6,
                "{level:?}: sum {sum} vs {want_sum}"
            );
            let mut z = xs.clone();
            scale_at(level, &mut z, 0.25);
            assert!(z.iter().zip(&xs).all(|(a, b)| *a == b * 0.25), "{level:?}");
        }
    }

    /// The tolerance above is tight enough to catch a wrong coefficient.
    #[test]
    fn the_comparison_can_fail() {
        let x = 3.0f32;
        let off = std::f32::consts::E.powf(3.0) * (1.0 + 4e-6);
        assert!(rel(off, (x as f64).exp()) > 1e-6);
    }

    #[test]
    fn levels_parse_and_order() {
        assert_eq!(Level::parse(" AVX2 "), Some(Level::Avx2));
        assert_eq!(Level::parse("x86-v4"), Some(Level::Avx512));
        assert_eq!(Level::parse("sse"), None);
        assert!(Level::supported().contains(&Level::Scalar));
        assert!(level() <= Level::detected());
    }
}
