//! Procedural generators: deterministic noise, industrial surface textures and shape masks.
//!
//! Pure `std`, no global state; every output is a pure function of its parameters, and
//! every per-pixel value depends only on the pixel position (never on the canvas size), so a
//! small result equals the top-left crop of a larger one.
//!
//! - [`rng`]: [`Rng`] (xoshiro256** seeded by SplitMix64: `next_u64`, `next_f32`,
//!   `range_f32`, `normal`) and the stateless lattice hash [`hash2`]. Bit-identical on every
//!   platform.
//! - [`noise`]: [`perlin2`] gradient noise, [`value2`], [`cellular2`], [`fbm`], and
//!   [`noise_field`] — a [`Mask`](crate::image::Mask) of a [`NoiseKind`] (perlin, value,
//!   cellular, white) with a fixed normalisation to `0..1`.
//! - [`textures`]: [`texture`] renders a [`TextureKind`] (brushed metal, painted surface,
//!   concrete, fabric, wood grain) from [`TextureParams`] into an opaque
//!   [`Image`](crate::image::Image) whose mean colour stays close to the requested colour.
//! - [`shapes`]: [`shape_mask`] draws a [`Shape`] (ellipse, rectangle, line) from
//!   [`ShapeParams`] as an antialiased/feathered mask built from an exact signed distance.
//!
//! All `ALL`/`name()`/`from_name()` triples use stable lower-case names suitable for
//! serialised graphs.

pub mod noise;
pub mod rng;
pub mod shapes;
pub mod textures;

pub use noise::{cellular2, fbm, noise_field, perlin2, value2, NoiseKind};
pub use rng::{hash2, Rng};
pub use shapes::{shape_mask, Shape, ShapeParams};
pub use textures::{texture, TextureKind, TextureParams};

/// `(sin, cos)` of an angle in degrees; exact for multiples of 90°, `(0, 1)` for non-finite
/// input.
pub(crate) fn sin_cos_deg(deg: f32) -> (f64, f64) {
    if !deg.is_finite() {
        return (0.0, 1.0);
    }
    let d = (deg as f64).rem_euclid(360.0);
    if d == 0.0 {
        (0.0, 1.0)
    } else if d == 90.0 {
        (1.0, 0.0)
    } else if d == 180.0 {
        (0.0, -1.0)
    } else if d == 270.0 {
        (-1.0, 0.0)
    } else {
        d.to_radians().sin_cos()
    }
}

#[cfg(test)]
mod tests {
    use super::sin_cos_deg;

    #[test]
    fn sin_cos_deg_exact_quarters_and_safe() {
        assert_eq!(sin_cos_deg(90.0), (1.0, 0.0));
        assert_eq!(sin_cos_deg(-90.0), (-1.0, 0.0));
        assert_eq!(sin_cos_deg(540.0), (0.0, -1.0));
        assert_eq!(sin_cos_deg(f32::NAN), (0.0, 1.0));
        let (s, c) = sin_cos_deg(30.0);
        assert!((s - 0.5).abs() < 1e-12 && (c - 0.75f64.sqrt()).abs() < 1e-12);
    }
}
