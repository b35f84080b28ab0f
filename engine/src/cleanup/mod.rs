//! Object removal ("Cleanup"): fills a masked region of an [`Image`] with texture that
//! continues its surroundings.
//!
//! [`fill`] is multi-scale PatchMatch image completion (Barnes et al. 2009, "PatchMatch";
//! completion scheme of Wexler, Shechtman & Irani 2007, "Space-time completion"):
//!
//! 1. A Gaussian-like pyramid of the image and the hole (`hole >= 0.5`) is built, halving
//!    until the hole is at most [`COARSE_HOLE_RADIUS`] px from known pixels everywhere (or the
//!    image would drop below [`FillParams::min_size`]). Downsampling averages known pixels only.
//! 2. At the coarsest level the hole starts as a harmonic (Laplace) fill.
//! 3. At every level, EM iterations alternate a PatchMatch search for the nearest-neighbour
//!    field (every patch overlapping the hole → a source patch entirely in the known region,
//!    at least [`SEAM_MARGIN`] px away from the hole; SSD over RGB, each target pixel weighted
//!    1 when known and less the deeper it lies in the hole) and patch voting (each hole pixel
//!    = mean of the overlapping patches' source pixels, weighted by `exp(-d / 2σ²)` with σ² the
//!    75th percentile of the per-pixel match distances, times the confidence `1.3^-depth` of
//!    the patch centre), until the fill changes little or [`FillParams::em_iterations`] is
//!    reached.
//! 4. The field and the fill are upsampled to the next finer level, which starts with one
//!    vote from the upsampled field. The full-resolution level ends with one more search
//!    and a "sharp" vote in which each pixel takes its single strongest vote, so fine grain
//!    is copied rather than averaged away.
//!
//! Pixels outside the hole are returned bitwise unchanged; all four channels are filled.
//! [`Progress`] reports each EM iteration to a callback that can cancel the run.
//! [`nnf_energy_trace`] exposes the PatchMatch energy at a fixed image estimate (for tests
//! and diagnostics). Smooth baselines live in [`baselines`]: [`mean_fill`], [`blur_fill`],
//! [`laplace_fill`].

pub mod baselines;
mod patchmatch;
mod pyramid;
#[cfg(test)]
mod tests;

pub use baselines::{blur_fill, laplace_fill, mean_fill};

use crate::image::{Image, Mask};
use crate::procedural::Rng;
use patchmatch::{pm_iteration, vote, Level, Nnf};

/// The coarsest level is reached once every hole pixel is within this many px of a known one.
pub const COARSE_HOLE_RADIUS: f32 = 3.0;

/// Source patches keep at least this many px away from the hole, so a contaminated edge
/// around the removed object is never copied into the fill.
pub const SEAM_MARGIN: usize = 1;

/// An EM loop at one level stops early once the mean absolute change of the hole pixels in
/// one iteration falls below this.
const CONVERGED: f64 = 2e-4;

/// Parameters of [`fill`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FillParams {
    /// Patch side in pixels (odd; an even value is rounded up, values below 3 become 3).
    pub patch_size: u32,
    /// Maximum EM (search + vote) iterations per pyramid level (at least 1).
    pub em_iterations: u32,
    /// PatchMatch passes (propagation + random search) per EM iteration (at least 1).
    pub pm_iterations: u32,
    /// Seed of all randomness: the same inputs and seed give the same output.
    pub seed: u64,
    /// The smaller side of the coarsest pyramid level is kept at least this large (px).
    pub min_size: u32,
}

impl Default for FillParams {
    /// 7 px patches, up to 8 EM iterations of 4 PatchMatch passes per level, seed 0, levels down
    /// to 32 px.
    fn default() -> Self {
        FillParams {
            patch_size: 7,
            em_iterations: 8,
            pm_iterations: 4,
            seed: 0,
            min_size: 32,
        }
    }
}

/// Progress of [`fill`], reported after every EM iteration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Progress {
    /// Current pyramid level, 0 = coarsest, `levels - 1` = full resolution.
    pub level: u32,
    /// Number of pyramid levels.
    pub levels: u32,
    /// EM iteration within the level, from 0 (the full-resolution level reports one extra,
    /// final "sharp" iteration).
    pub iteration: u32,
    /// NNF energy after this iteration's search: the sum over target patches of the SSD to
    /// their best source patch (before the vote that follows it).
    pub energy: f64,
}

/// Checks the inputs and returns the hole as booleans (`hole >= 0.5`).
fn validate(img: &Image, hole: &Mask) -> Result<Vec<bool>, String> {
    if img.width != hole.width || img.height != hole.height {
        return Err(format!(
            "cleanup: image is {}x{} but the mask is {}x{}",
            img.width, img.height, hole.width, hole.height
        ));
    }
    let n = img.width as usize * img.height as usize;
    if img.data.len() != n * 4 || hole.data.len() != n {
        return Err("cleanup: pixel buffer length does not match the size".to_string());
    }
    Ok(hole.data.iter().map(|&v| v >= 0.5).collect())
}

/// Patch radius from the requested patch size.
fn radius(p: &FillParams) -> usize {
    (p.patch_size.max(3) / 2) as usize
}

/// Fills the hole (`hole >= 0.5`) of `img` by multi-scale PatchMatch completion (see the
/// module docs).
///
/// `on_step` is called after every EM iteration; returning `false` cancels and gives
/// `Ok(None)`. An empty hole returns a copy of the input. Pixels outside the hole are
/// returned bitwise unchanged. If no source patch fits anywhere (tiny image or a hole
/// covering nearly everything) the hole gets a [`laplace_fill`] instead.
///
/// # Errors
/// Mismatched image and mask sizes or buffer lengths, or no known pixel at all.
pub fn fill(
    img: &Image,
    hole: &Mask,
    p: &FillParams,
    on_step: &mut dyn FnMut(&Progress) -> bool,
) -> Result<Option<Image>, String> {
    let bits = validate(img, hole)?;
    if !bits.iter().any(|&b| b) {
        return Ok(Some(img.clone()));
    }
    if bits.iter().all(|&b| b) {
        return Err("cleanup: the mask covers the whole image; nothing to copy from".into());
    }
    let r = radius(p);
    let (w, h) = (img.width as usize, img.height as usize);
    let pyr = pyramid::build(&img.data, w, h, &bits, r, p.min_size as usize);
    if pyr.is_empty() {
        return Ok(Some(laplace_fill(img, hole)));
    }
    let levels = pyr.len() as u32;
    let mut rng = Rng::new(p.seed);
    let mut previous: Option<(Level, Nnf)> = None;
    // Coarsest first.
    for (li, spec) in pyr.into_iter().rev().enumerate() {
        let mut data = spec.data;
        match &previous {
            None => baselines::laplace_solve(&mut data, spec.w, spec.h, &spec.fill),
            Some((coarse, _)) => {
                pyramid::upsample_into(&mut data, spec.w, spec.h, &spec.fill, coarse)
            }
        }
        let mut lv = Level::new(spec.w, spec.h, r, data, spec.fill, &spec.exclude);
        let mut nnf = match &previous {
            None => Nnf::random(&lv, &mut rng),
            Some((coarse, cnnf)) => {
                let nnf = Nnf::upsample(&lv, coarse, cnnf, &mut rng);
                vote(&mut lv, &nnf, false);
                nnf
            }
        };
        let mut pass = 0u32;
        let finest = li as u32 + 1 == levels;
        let mut it = 0u32;
        loop {
            // The finest level ends with one extra search and a sharp (best-vote) pass.
            let last = it >= p.em_iterations.max(1);
            let sharp = finest && last;
            if last && !finest {
                break;
            }
            nnf.recompute(&lv);
            for _ in 0..p.pm_iterations.max(1) {
                pm_iteration(&lv, &mut nnf, pass, &mut rng);
                pass += 1;
            }
            let energy = nnf.energy();
            let change = vote(&mut lv, &nnf, sharp);
            let progress = Progress {
                level: li as u32,
                levels,
                iteration: it,
                energy,
            };
            if !on_step(&progress) {
                return Ok(None);
            }
            if sharp {
                break;
            }
            it = if change < CONVERGED {
                p.em_iterations.max(1)
            } else {
                it + 1
            };
        }
        previous = Some((lv, nnf));
    }
    let mut out = img.clone();
    if let Some((lv, _)) = previous {
        for (i, _) in bits.iter().enumerate().filter(|(_, &b)| b) {
            for c in 0..4 {
                out.data[i * 4 + c] = lv.data[i * 4 + c].clamp(0.0, 1.0);
            }
        }
    }
    Ok(Some(out))
}

/// The PatchMatch energy trace at full resolution and a fixed image estimate: the hole is
/// given a [`laplace_fill`], every target patch a random source (seeded by `p.seed`), then
/// `p.pm_iterations` PatchMatch passes run without voting. Returns the NNF energy (sum of
/// best-match SSDs) before the first pass and after each pass; it never rises.
///
/// # Errors
/// As [`fill`], plus an empty hole or no room for a single source patch.
pub fn nnf_energy_trace(img: &Image, hole: &Mask, p: &FillParams) -> Result<Vec<f64>, String> {
    let bits = validate(img, hole)?;
    if !bits.iter().any(|&b| b) || bits.iter().all(|&b| b) {
        return Err("cleanup: the hole must be neither empty nor the whole image".into());
    }
    let r = radius(p);
    let (w, h) = (img.width as usize, img.height as usize);
    let mut data = img.data.clone();
    baselines::laplace_solve(&mut data, w, h, &bits);
    let exclude = pyramid::grow(&bits, w, h, SEAM_MARGIN);
    let lv = Level::new(w, h, r, data, bits, &exclude);
    if lv.sources.is_empty() {
        return Err("cleanup: no room for a source patch".into());
    }
    let mut rng = Rng::new(p.seed);
    let mut nnf = Nnf::random(&lv, &mut rng);
    let mut trace = vec![nnf.energy()];
    for pass in 0..p.pm_iterations.max(1) {
        pm_iteration(&lv, &mut nnf, pass, &mut rng);
        trace.push(nnf.energy());
    }
    Ok(trace)
}
