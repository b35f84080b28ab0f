//! PatchMatch nearest-neighbour fields and patch voting on one pyramid level.
//!
//! A [`Level`] holds an RGBA buffer, the pixels still to synthesise (`fill`), the target patch
//! centres (every patch that overlaps `fill`) and the valid source patch centres (patches
//! lying entirely in the trusted known region, away from the hole and inside the image).
//! An [`Nnf`] maps every target to one source and caches its distance. [`pm_iteration`] runs
//! one PatchMatch pass (propagation + random search, Barnes et al. 2009) and
//! [`vote`] rebuilds the fill pixels from the overlapping source patches (Wexler et al. 2007).

use crate::ops::distance_to;
use crate::procedural::Rng;

/// Marks "no target" in [`Level::target_of`].
const NONE: u32 = u32::MAX;

/// One pyramid level: image estimate, hole, and patch bookkeeping.
pub(crate) struct Level {
    /// Width in pixels.
    pub w: usize,
    /// Height in pixels.
    pub h: usize,
    /// Patch radius: patches are `(2r+1)²`.
    pub r: usize,
    /// RGBA samples, 4 per pixel: known values outside `fill`, the current estimate inside.
    pub data: Vec<f32>,
    /// Pixels to synthesise.
    pub fill: Vec<bool>,
    /// Whether a patch centred on a pixel is a valid source.
    pub source_ok: Vec<bool>,
    /// Valid source centres (pixel indices), for random initialisation.
    pub sources: Vec<u32>,
    /// Target patch centres (pixel indices) in raster order.
    pub targets: Vec<u32>,
    /// Index into `targets` of each pixel, or `NONE`.
    pub target_of: Vec<u32>,
    /// Confidence of each pixel: 1 when known, `CONFIDENCE_DECAY^-d` for a hole pixel `d` px
    /// from the nearest known one (Wexler et al.).
    pub confidence: Vec<f32>,
    /// Weight of each pixel in patch distances: 1 when known, lower deeper in the hole.
    pub match_weight: Vec<f32>,
}

/// Base of the confidence fall-off with distance into the hole.
const CONFIDENCE_DECAY: f32 = 1.3;

/// Match weights are the confidence raised to this power.
const MATCH_WEIGHT_POWER: f32 = 0.5;

impl Level {
    /// Builds the bookkeeping for a level. `exclude` marks pixels no source patch may contain
    /// (the hole grown by a seam margin); it must include every `fill` pixel.
    pub fn new(
        w: usize,
        h: usize,
        r: usize,
        data: Vec<f32>,
        fill: Vec<bool>,
        exclude: &[bool],
    ) -> Level {
        // Summed-area table of `exclude` to test whole windows in O(1).
        let mut sat = vec![0u32; (w + 1) * (h + 1)];
        for y in 0..h {
            let mut row = 0u32;
            for x in 0..w {
                row += u32::from(exclude[y * w + x]);
                sat[(y + 1) * (w + 1) + x + 1] = sat[y * (w + 1) + x + 1] + row;
            }
        }
        let window_count = |x0: usize, y0: usize, x1: usize, y1: usize| -> u32 {
            // Inclusive-exclusive bounds.
            sat[y1 * (w + 1) + x1] + sat[y0 * (w + 1) + x0]
                - sat[y0 * (w + 1) + x1]
                - sat[y1 * (w + 1) + x0]
        };
        let fill_u: Vec<bool> = fill.clone();
        let mut fill_sat = vec![0u32; (w + 1) * (h + 1)];
        for y in 0..h {
            let mut row = 0u32;
            for x in 0..w {
                row += u32::from(fill_u[y * w + x]);
                fill_sat[(y + 1) * (w + 1) + x + 1] = fill_sat[y * (w + 1) + x + 1] + row;
            }
        }
        let fill_count = |x0: usize, y0: usize, x1: usize, y1: usize| -> u32 {
            fill_sat[y1 * (w + 1) + x1] + fill_sat[y0 * (w + 1) + x0]
                - fill_sat[y0 * (w + 1) + x1]
                - fill_sat[y1 * (w + 1) + x0]
        };
        let mut source_ok = vec![false; w * h];
        let mut sources = Vec::new();
        let mut targets = Vec::new();
        let mut target_of = vec![NONE; w * h];
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                let (x0, y0) = (x.saturating_sub(r), y.saturating_sub(r));
                let (x1, y1) = ((x + r + 1).min(w), (y + r + 1).min(h));
                if fill_count(x0, y0, x1, y1) > 0 {
                    target_of[i] = targets.len() as u32;
                    targets.push(i as u32);
                }
                let inside = x >= r && y >= r && x + r < w && y + r < h;
                if inside && window_count(x0, y0, x1, y1) == 0 {
                    source_ok[i] = true;
                    sources.push(i as u32);
                }
            }
        }
        let known: Vec<bool> = fill.iter().map(|&f| !f).collect();
        let confidence = distance_to(&known, w, h)
            .iter()
            .map(|&d| CONFIDENCE_DECAY.powf(-d.min(1e3)))
            .collect::<Vec<f32>>();
        let match_weight = confidence
            .iter()
            .map(|&c: &f32| c.powf(MATCH_WEIGHT_POWER))
            .collect();
        Level {
            w,
            h,
            r,
            data,
            fill,
            source_ok,
            sources,
            targets,
            target_of,
            confidence,
            match_weight,
        }
    }

    /// SSD over RGB between the target patch centred on pixel `t` (clipped to the image) and
    /// the source patch centred on pixel `s`. Stops early, returning a partial sum, once the
    /// sum reaches `limit`.
    pub fn distance(&self, t: usize, s: usize, limit: f32) -> f32 {
        let (w, h, r) = (self.w, self.h, self.r as isize);
        let (tx, ty) = ((t % w) as isize, (t / w) as isize);
        let (sx, sy) = ((s % w) as isize, (s / w) as isize);
        let dx0 = (-r).max(-tx);
        let dx1 = r.min(w as isize - 1 - tx);
        let dy0 = (-r).max(-ty);
        let dy1 = r.min(h as isize - 1 - ty);
        let len = ((dx1 - dx0 + 1) * 4) as usize;
        let d = &self.data;
        let n = (dx1 - dx0 + 1) as usize;
        let mut sum = 0.0f32;
        for dy in dy0..=dy1 {
            let tp = ((ty + dy) * w as isize + tx + dx0) as usize;
            let sa = (((sy + dy) * w as isize + sx + dx0) * 4) as usize;
            let (trow, srow) = (&d[tp * 4..tp * 4 + len], &d[sa..sa + len]);
            let wrow = &self.match_weight[tp..tp + n];
            for ((a, b), &wt) in trow.chunks_exact(4).zip(srow.chunks_exact(4)).zip(wrow) {
                let e0 = a[0] - b[0];
                let e1 = a[1] - b[1];
                let e2 = a[2] - b[2];
                sum += wt * (e0 * e0 + e1 * e1 + e2 * e2);
            }
            if sum >= limit {
                return sum;
            }
        }
        sum
    }

    /// Number of pixels of the (clipped) target patch centred on pixel `t`.
    pub fn patch_area(&self, t: usize) -> usize {
        let (w, h, r) = (self.w, self.h, self.r);
        let (x, y) = (t % w, t / w);
        let nx = (x + r + 1).min(w) - x.saturating_sub(r);
        let ny = (y + r + 1).min(h) - y.saturating_sub(r);
        nx * ny
    }

    /// A uniformly random valid source centre.
    pub fn random_source(&self, rng: &mut Rng) -> u32 {
        let n = self.sources.len() as u64;
        self.sources[(rng.next_u64() % n.max(1)) as usize]
    }
}

/// Nearest-neighbour field: for each target (indexed like [`Level::targets`]) the source
/// centre it maps to and the distance of that match.
pub(crate) struct Nnf {
    /// Source pixel index per target.
    pub map: Vec<u32>,
    /// Patch distance per target, for the current image estimate.
    pub dist: Vec<f32>,
}

impl Nnf {
    /// A field mapping every target to a random valid source.
    pub fn random(lv: &Level, rng: &mut Rng) -> Nnf {
        let map = lv.targets.iter().map(|_| lv.random_source(rng)).collect();
        let mut nnf = Nnf {
            map,
            dist: Vec::new(),
        };
        nnf.recompute(lv);
        nnf
    }

    /// Upsamples the field of the coarser level `coarse` (half resolution) to `lv`: each target
    /// takes its parent's source, doubled, plus its offset from the parent; targets whose
    /// parent had none, or whose mapped source is invalid, get a random source.
    pub fn upsample(lv: &Level, coarse: &Level, cnnf: &Nnf, rng: &mut Rng) -> Nnf {
        let map = lv
            .targets
            .iter()
            .map(|&t| {
                let (x, y) = (t as usize % lv.w, t as usize / lv.w);
                let (cx, cy) = ((x / 2).min(coarse.w - 1), (y / 2).min(coarse.h - 1));
                let ct = coarse.target_of[cy * coarse.w + cx];
                if ct != NONE {
                    let s = cnnf.map[ct as usize] as usize;
                    let sx = 2 * (s % coarse.w) + (x - 2 * cx);
                    let sy = 2 * (s / coarse.w) + (y - 2 * cy);
                    let sx = sx.clamp(lv.r, lv.w.saturating_sub(lv.r + 1));
                    let sy = sy.clamp(lv.r, lv.h.saturating_sub(lv.r + 1));
                    let si = sy * lv.w + sx;
                    if lv.source_ok[si] {
                        return si as u32;
                    }
                }
                lv.random_source(rng)
            })
            .collect();
        let mut nnf = Nnf {
            map,
            dist: Vec::new(),
        };
        nnf.recompute(lv);
        nnf
    }

    /// Recomputes every match distance for the level's current image estimate.
    pub fn recompute(&mut self, lv: &Level) {
        self.dist = lv
            .targets
            .iter()
            .zip(&self.map)
            .map(|(&t, &s)| lv.distance(t as usize, s as usize, f32::INFINITY))
            .collect();
    }

    /// The NNF energy: the sum of all match distances.
    pub fn energy(&self) -> f64 {
        self.dist.iter().map(|&d| f64::from(d)).sum()
    }
}

/// One PatchMatch pass over all targets: on even `pass`es in raster order propagating from
/// the left and upper neighbours, on odd ones in reverse order from the right and lower
/// neighbours; then a random search around the current match with a radius halving from the
/// image size down to 1 px. A candidate replaces the match only if strictly closer, so the
/// NNF energy never rises.
pub(crate) fn pm_iteration(lv: &Level, nnf: &mut Nnf, pass: u32, rng: &mut Rng) {
    let (w, h, r) = (lv.w, lv.h, lv.r);
    let n = lv.targets.len();
    let forward = pass & 1 == 0;
    let step: isize = if forward { 1 } else { -1 };
    let max_radius = w.max(h) as i64;
    for k in 0..n {
        let ti = if forward { k } else { n - 1 - k };
        let t = lv.targets[ti] as usize;
        let (tx, ty) = ((t % w) as isize, (t / w) as isize);
        let mut best = nnf.map[ti] as usize;
        let mut best_d = nnf.dist[ti];
        // Propagation: the neighbour's match, shifted back by the same step.
        for (ox, oy) in [(step, 0isize), (0, step)] {
            let (nx, ny) = (tx - ox, ty - oy);
            if nx < 0 || ny < 0 || nx >= w as isize || ny >= h as isize {
                continue;
            }
            let nt = lv.target_of[ny as usize * w + nx as usize];
            if nt == NONE {
                continue;
            }
            let s = nnf.map[nt as usize] as usize;
            let sx = (s % w) as isize + ox;
            let sy = (s / w) as isize + oy;
            if sx < 0 || sy < 0 || sx >= w as isize || sy >= h as isize {
                continue;
            }
            let c = sy as usize * w + sx as usize;
            if c != best && lv.source_ok[c] {
                let d = lv.distance(t, c, best_d);
                if d < best_d {
                    best = c;
                    best_d = d;
                }
            }
        }
        // Random search with exponentially shrinking radius.
        let mut radius = max_radius;
        while radius >= 1 {
            let span = (2 * radius + 1) as u64;
            let (bx, by) = ((best % w) as i64, (best / w) as i64);
            let cx = bx + (rng.next_u64() % span) as i64 - radius;
            let cy = by + (rng.next_u64() % span) as i64 - radius;
            let cx = cx.clamp(r as i64, (w - r - 1) as i64) as usize;
            let cy = cy.clamp(r as i64, (h - r - 1) as i64) as usize;
            let c = cy * w + cx;
            if c != best && lv.source_ok[c] {
                let d = lv.distance(t, c, best_d);
                if d < best_d {
                    best = c;
                    best_d = d;
                }
            }
            radius /= 2;
        }
        nnf.map[ti] = best as u32;
        nnf.dist[ti] = best_d;
    }
}

/// Patch voting: every fill pixel becomes the weighted mean of the pixels that the
/// overlapping target patches' sources put there. A patch's weight is
/// `exp(-d / (2 σ²))` with `d` its mean per-pixel distance and `σ²` the 75th percentile of
/// those distances (Wexler et al.), times the confidence of the patch centre, so poor
/// matches and patches deep in the hole count less. With `sharp`, each pixel instead takes
/// the single strongest vote (no averaging, so fine grain is not blurred). Returns the mean
/// absolute change of the fill pixels.
pub(crate) fn vote(lv: &mut Level, nnf: &Nnf, sharp: bool) -> f64 {
    let (w, h, r) = (lv.w, lv.h, lv.r as isize);
    let per_pixel: Vec<f32> = lv
        .targets
        .iter()
        .zip(&nnf.dist)
        .map(|(&t, &d)| d / lv.patch_area(t as usize) as f32)
        .collect();
    let mut sorted = per_pixel.clone();
    let sigma2 = if sorted.is_empty() {
        1.0
    } else {
        let k = ((sorted.len() * 3) / 4).min(sorted.len() - 1);
        let (_, v, _) = sorted.select_nth_unstable_by(k, f32::total_cmp);
        v.max(1e-6)
    };
    let mut acc = vec![0.0f32; w * h * 4];
    let mut wsum = vec![0.0f32; w * h];
    let mut best = vec![0.0f32; if sharp { w * h } else { 0 }];
    for ((&t, &s), &d) in lv.targets.iter().zip(&nnf.map).zip(&per_pixel) {
        let weight = (-d / (2.0 * sigma2)).exp().max(1e-12) * lv.confidence[t as usize];
        let (tx, ty) = ((t as usize % w) as isize, (t as usize / w) as isize);
        let (sx, sy) = ((s as usize % w) as isize, (s as usize / w) as isize);
        for dy in (-r).max(-ty)..=r.min(h as isize - 1 - ty) {
            for dx in (-r).max(-tx)..=r.min(w as isize - 1 - tx) {
                let q = ((ty + dy) * w as isize + tx + dx) as usize;
                if !lv.fill[q] {
                    continue;
                }
                let src = ((sy + dy) * w as isize + sx + dx) as usize;
                if sharp {
                    // Keep only the strongest vote.
                    if weight > best[q] {
                        best[q] = weight;
                        for c in 0..4 {
                            acc[q * 4 + c] = lv.data[src * 4 + c];
                        }
                        wsum[q] = 1.0;
                    }
                    continue;
                }
                for c in 0..4 {
                    acc[q * 4 + c] += weight * lv.data[src * 4 + c];
                }
                wsum[q] += weight;
            }
        }
    }
    let mut change = 0.0f64;
    let mut count = 0usize;
    for q in 0..w * h {
        if !lv.fill[q] || wsum[q] <= 0.0 {
            continue;
        }
        for c in 0..4 {
            let v = acc[q * 4 + c] / wsum[q];
            change += f64::from((v - lv.data[q * 4 + c]).abs());
            lv.data[q * 4 + c] = v;
        }
        count += 4;
    }
    change / count.max(1) as f64
}
