//! Synthetic surface defects with pixel-exact masks, for training visual-inspection models.
//!
//! Generators (all deterministic in `params.seed`, all pure `std`):
//!
//! - [`scratch`]: thin curved grooves (tapered cubic Béziers) lit from `light_deg`: dark
//!   groove, highlight on the wall facing the light, shadow on the other.
//! - [`crack`]: a jagged fractal crack with recursive tapering branches; dark interior, lighter
//!   lip.
//! - [`dent`]: smooth raised-cosine depressions (optionally elliptical) shaded from the height
//!   field's normals.
//! - [`stain`]: soft fBm-distorted contamination blobs tinted towards a colour, with an optional
//!   coffee-ring rim.
//! - [`chip`]: irregular holes revealing a textured under-layer with a lit bevel; prefers the
//!   placement mask's boundary.
//! - [`draem`]: DRAEM (Zavrtanik et al. 2021): thresholded Perlin mask filled with
//!   `beta * source + (1 - beta) * image`.
//! - [`cutpaste`] / [`cutpaste_scar`]: CutPaste (Li et al. 2021) rectangle and rotated scar.
//! - [`nsa`]: NSA (Schlüter et al. 2022): a foreign patch seamlessly cloned with
//!   [`poisson_blend`] (conjugate-gradient Poisson solver).
//!
//! # The mask contract
//!
//! Masks come from each defect's own geometry (stroke distance fields, height-field support,
//! blob outlines, patch footprints), never from differencing output and input. With
//! `ε =` [`EPS`] (2/255 in any RGB channel) and the generator's band `b` ([`Defect::band`],
//! also a `pub const` per generator):
//!
//! (a) every pixel whose output differs from the input by more than `ε` lies within `b` px of a
//! `mask > 0` pixel;
//! (b) every pixel of `shrink(mask >= 0.5, b)` differs from the input by more than `ε`
//! (all generators but [`nsa`] even guarantee it on all of `mask >= 0.5`, see [`MIN_VISIBLE`];
//! for [`nsa`] a stated fraction, see [`NSA_BAND`]).
//!
//! # Placement
//!
//! With a placement mask `P` (same size as the image), anchors (defect centres) are drawn only
//! where `P >= 0.5`, and the defect is clipped to `P` (its change and its mask are multiplied
//! by `P`), so every `mask >= 0.5` pixel has `P >= 0.5`. An empty placement is an error.
//! Alpha is never changed.

// Per-channel loops `for c in 0..3` index several parallel pixel arrays at once; iterator
// chains would be less readable there.
#![allow(clippy::needless_range_loop)]

mod chip;
mod common;
mod crack;
mod cutpaste;
mod dent;
mod draem;
mod nsa;
mod poisson;
mod scratch;
mod stain;
#[cfg(test)]
mod tests;

use crate::image::{Image, Mask};

pub use chip::{chip, ChipParams, CHIP_BAND};
pub use common::{EPS, MIN_VISIBLE};
pub use crack::{crack, CrackParams, CRACK_BAND};
pub use cutpaste::{cutpaste, cutpaste_scar, CutPasteParams, ScarParams, CUTPASTE_BAND, SCAR_BAND};
pub use dent::{dent, DentParams, DENT_BAND};
pub use draem::{draem, DraemParams, DRAEM_BAND};
pub use nsa::{nsa, nsa_changed_fraction, NsaParams, NSA_BAND};
pub use poisson::{poisson_blend, poisson_residual, POISSON_MAX_ITER, POISSON_TOL};
pub use scratch::{scratch, ScratchParams, SCRATCH_BAND};
pub use stain::{stain, StainParams, STAIN_BAND};

/// Reads a number where 0 means "not set" (DRAEM's `beta`: 0 = random by seed).
fn zero_is_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f32>, D::Error> {
    let v = <f32 as serde::Deserialize>::deserialize(d)?;
    Ok((v != 0.0).then_some(v))
}

/// A generated defect: the modified image and its mask (same size, 1 = defect).
#[derive(Clone, Debug, PartialEq)]
pub struct Defect {
    /// The input with the defect applied (same size and alpha).
    pub image: Image,
    /// The defect's mask, `0..1`, from the defect's geometry.
    pub mask: Mask,
    /// The soft-edge band `b` of the mask contract, in px.
    pub band: f32,
    /// Which defect instance each pixel belongs to (`1..=count`, 0 where the mask is 0):
    /// a Stain with count 3 has ids 1–3 however many regions each has. Generators that
    /// make one defect give every mask pixel id 1.
    pub instances: Vec<u32>,
}
