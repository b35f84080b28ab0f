//! UMAP following umap-learn 0.5 (`umap/umap_.py`, `umap/layouts.py`) with its defaults:
//! `n_neighbors` 15 (self included, as its k-NN), `min_dist` 0.1, `spread` 1, the `a`/`b` curve
//! fit, smooth k-NN distances (ρ and σ by a 64-step search for `log2(k)`), membership
//! strengths, fuzzy union `A + Aᵀ − A∘Aᵀ`, edges under `max / n_epochs` dropped, spectral
//! initialisation (see [`super::umap_init`]) scaled to `[0, 10]` with 1e-4 noise, then SGD
//! with `epochs_per_sample = w_max / w`, negative sampling rate 5, repulsion 1, gradient
//! clipping ±4, learning rate `1 − epoch / n_epochs`, and 500 epochs up to 10,000 points
//! (200 above). The SGD runs serially, like umap-learn with a `random_state`, so a seed gives
//! the same layout every time; negative samples come from umap-learn's Tausworthe generator
//! (`tau_rand_int`), seeded from ChaCha8 rather than numpy. The neighbours are exact (umap-learn approximates them with
//! NN-descent), on rows reduced to 50 principal components when wider.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::knn::knn_euclidean;
use super::umap_init::{normals, spectral, Graph};
use super::{bad, pca, MapInput};
use crate::Result;

/// How UMAP places the points before optimising.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UmapInit {
    /// umap-learn's default: the graph Laplacian's eigenvectors.
    Spectral,
    /// The first principal components.
    Pca,
    /// Uniform in `[-10, 10]` from the seed.
    Random,
}

/// UMAP settings; [`Default`] is umap-learn's `UMAP()` in 2D.
#[derive(Debug, Clone, PartialEq)]
pub struct UmapParams {
    /// 2 or 3.
    pub out_dim: usize,
    pub n_neighbors: usize,
    pub min_dist: f64,
    pub spread: f64,
    /// `None`: 500 up to 10,000 points, 200 above.
    pub n_epochs: Option<usize>,
    pub learning_rate: f64,
    pub negative_sample_rate: usize,
    pub repulsion_strength: f64,
    pub local_connectivity: f64,
    pub init: UmapInit,
    pub seed: u64,
}

impl Default for UmapParams {
    fn default() -> Self {
        UmapParams {
            out_dim: 2,
            n_neighbors: 15,
            min_dist: 0.1,
            spread: 1.0,
            n_epochs: None,
            learning_rate: 1.0,
            negative_sample_rate: 5,
            repulsion_strength: 1.0,
            local_connectivity: 1.0,
            init: UmapInit::Spectral,
            seed: 0,
        }
    }
}

/// umap-learn's `find_ab_params`: least-squares fit of `1 / (1 + a·x^{2b})` to the target
/// curve (1 below `min_dist`, `exp(−(x − min_dist) / spread)` above) on 300 points of
/// `[0, 3·spread]`, by Levenberg–Marquardt from `a = b = 1` (as scipy's `curve_fit`).
pub fn find_ab_params(spread: f64, min_dist: f64) -> (f64, f64) {
    let xs: Vec<f64> = (0..300).map(|i| 3.0 * spread * i as f64 / 299.0).collect();
    let ys: Vec<f64> = xs
        .iter()
        .map(|&x| {
            if x < min_dist {
                1.0
            } else {
                (-(x - min_dist) / spread).exp()
            }
        })
        .collect();
    let cost = |a: f64, b: f64| -> f64 {
        xs.iter()
            .zip(&ys)
            .map(|(&x, &y)| {
                let f = 1.0 / (1.0 + a * x.powf(2.0 * b));
                (f - y) * (f - y)
            })
            .sum()
    };
    let (mut a, mut b, mut lambda) = (1.0f64, 1.0f64, 1e-3f64);
    let mut c = cost(a, b);
    for _ in 0..500 {
        // Normal equations J'J δ = −J'r.
        let (mut jaa, mut jab, mut jbb, mut ga, mut gb) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (&x, &y) in xs.iter().zip(&ys) {
            if x <= 0.0 {
                let r = 1.0 - y;
                let _ = r; // f(0) = 1 whatever a and b: no gradient
                continue;
            }
            let u = x.powf(2.0 * b);
            let den = 1.0 + a * u;
            let f = 1.0 / den;
            let r = f - y;
            let da = -u / (den * den);
            let db = -a * u * 2.0 * x.ln() / (den * den);
            jaa += da * da;
            jab += da * db;
            jbb += db * db;
            ga += da * r;
            gb += db * r;
        }
        let mut improved = false;
        for _ in 0..30 {
            let (m11, m22) = (jaa * (1.0 + lambda), jbb * (1.0 + lambda));
            let det = m11 * m22 - jab * jab;
            if det.abs() < 1e-300 {
                lambda *= 10.0;
                continue;
            }
            let da = (-ga * m22 + gb * jab) / det;
            let db = (-gb * m11 + ga * jab) / det;
            let (na, nb) = (a + da, b + db);
            if na > 0.0 && nb > 0.0 {
                let nc = cost(na, nb);
                if nc < c {
                    let small = (c - nc) <= 1e-15 * c.max(1e-300);
                    a = na;
                    b = nb;
                    c = nc;
                    lambda = (lambda / 10.0).max(1e-12);
                    improved = !small;
                    break;
                }
            }
            lambda *= 10.0;
        }
        if !improved {
            break;
        }
    }
    (a, b)
}

/// umap-learn's `smooth_knn_dist` for one row (self first, distance 0).
fn smooth_row(dists: &[f32], k: usize, local_connectivity: f64, mean_all: f64) -> (f64, f64) {
    const TOL: f64 = 1e-5;
    const MIN_SCALE: f64 = 1e-3;
    let target = (k as f64).log2();
    let nonzero: Vec<f64> = dists
        .iter()
        .filter(|&&x| x > 0.0)
        .map(|&x| x as f64)
        .collect();
    let mut rho = 0.0;
    if nonzero.len() as f64 >= local_connectivity {
        let index = local_connectivity.floor() as usize;
        let interp = local_connectivity - index as f64;
        if index > 0 {
            rho = nonzero[index - 1];
            if interp > TOL {
                rho += interp * (nonzero[index] - nonzero[index - 1]);
            }
        } else {
            rho = interp * nonzero[0];
        }
    } else if let Some(m) = nonzero.iter().cloned().reduce(f64::max) {
        rho = m;
    }
    let (mut lo, mut hi, mut mid) = (0.0f64, f64::INFINITY, 1.0f64);
    for _ in 0..64 {
        let mut psum = 0.0;
        for &x in &dists[1..] {
            let d = x as f64 - rho;
            psum += if d > 0.0 { (-(d / mid)).exp() } else { 1.0 };
        }
        if (psum - target).abs() < TOL {
            break;
        }
        if psum > target {
            hi = mid;
            mid = (lo + hi) / 2.0;
        } else {
            lo = mid;
            mid = if hi == f64::INFINITY {
                mid * 2.0
            } else {
                (lo + hi) / 2.0
            };
        }
    }
    let mut sigma = mid;
    if rho > 0.0 {
        let mean_i = dists.iter().map(|&x| x as f64).sum::<f64>() / dists.len() as f64;
        sigma = sigma.max(MIN_SCALE * mean_i);
    } else {
        sigma = sigma.max(MIN_SCALE * mean_all);
    }
    (sigma, rho)
}

/// The fuzzy simplicial set (symmetric, CSR) of `n` rows.
pub(crate) fn fuzzy_graph(data: &[f32], n: usize, d: usize, params: &UmapParams) -> Result<Graph> {
    // As umap-learn: more neighbours than other rows is truncated to n − 1.
    let k = params.n_neighbors.min(n - 1);
    let nb = knn_euclidean(data, n, d, k - 1)?;
    // Rows of k distances with self first, as umap-learn's k-NN returns them.
    let rows: Vec<Vec<f32>> = (0..n)
        .map(|i| {
            std::iter::once(0.0)
                .chain(nb.row(i).1.iter().cloned())
                .collect()
        })
        .collect();
    let mean_all = rows.iter().flatten().map(|&x| x as f64).sum::<f64>() / (n * k) as f64;
    let sr: Vec<(f64, f64)> = rows
        .par_iter()
        .map(|r| smooth_row(r, k, params.local_connectivity, mean_all))
        .collect();
    // Directed memberships A[i][j], then A + Aᵀ − A∘Aᵀ.
    let mut trip: Vec<(usize, usize, f64, bool)> = Vec::with_capacity(2 * n * k);
    for (i, &(sigma, rho)) in sr.iter().enumerate() {
        for (&j, &dist) in nb.row(i).0.iter().zip(nb.row(i).1) {
            let x = dist as f64 - rho;
            let v = if x <= 0.0 || sigma == 0.0 {
                1.0
            } else {
                (-(x / sigma)).exp()
            };
            trip.push((i, j, v, true));
            trip.push((j, i, v, false));
        }
    }
    trip.par_sort_unstable_by(|a, b| (a.0, a.1, a.3).cmp(&(b.0, b.1, b.3)));
    let mut indptr = vec![0usize; n + 1];
    let mut indices = Vec::new();
    let mut weights = Vec::new();
    let mut t = 0;
    while t < trip.len() {
        let (i, j) = (trip[t].0, trip[t].1);
        let (mut a, mut at) = (0.0, 0.0);
        while t < trip.len() && trip[t].0 == i && trip[t].1 == j {
            if trip[t].3 {
                a = trip[t].2;
            } else {
                at = trip[t].2;
            }
            t += 1;
        }
        let w = a + at - a * at;
        if w > 0.0 {
            indices.push(j);
            weights.push(w);
            indptr[i + 1] += 1;
        }
    }
    for i in 0..n {
        indptr[i + 1] += indptr[i];
    }
    Ok(Graph {
        n,
        indptr,
        indices,
        weights,
    })
}

/// UMAP of `n` rows of `d` values: `n × out_dim` coordinates, row-major.
pub fn umap(data: &[f32], n: usize, d: usize, params: &UmapParams) -> Result<Vec<f32>> {
    const WHAT: &str = "umap";
    let input = MapInput::new(WHAT, data, n, d, params.out_dim)?;
    if params.n_neighbors < 2 {
        return Err(bad(
            WHAT,
            format!("n_neighbors = {} must be at least 2", params.n_neighbors),
        ));
    }
    if !(params.min_dist >= 0.0 && params.spread > 0.0 && params.min_dist <= params.spread) {
        return Err(bad(WHAT, "needs 0 <= min_dist <= spread and spread > 0"));
    }
    if params.negative_sample_rate == 0 || params.learning_rate <= 0.0 {
        return Err(bad(
            WHAT,
            "negative_sample_rate and learning_rate must be positive",
        ));
    }
    let dim = params.out_dim;
    let graph = fuzzy_graph(&input.data, n, input.d, params)?;
    let n_epochs = params
        .n_epochs
        .unwrap_or(if n <= 10_000 { 500 } else { 200 })
        .max(1);
    // Edges too weak to be sampled once are dropped.
    let w_max = graph.weights.iter().cloned().fold(0.0f64, f64::max);
    let mut head = Vec::new();
    let mut tail = Vec::new();
    let mut eps = Vec::new();
    for i in 0..n {
        for e in graph.indptr[i]..graph.indptr[i + 1] {
            let w = graph.weights[e];
            if w >= w_max / n_epochs as f64 {
                head.push(i);
                tail.push(graph.indices[e]);
                eps.push(w_max / w);
            }
        }
    }
    let init: Vec<f64> = match params.init {
        UmapInit::Spectral => spectral(&graph, dim, params.seed),
        UmapInit::Pca => pca(&input.data, n, input.d, dim.min(input.d))?
            .into_iter()
            .map(f64::from)
            .collect(),
        UmapInit::Random => {
            let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
            (0..n * dim)
                .map(|_| rng.random_range(-10.0..10.0))
                .collect()
        }
    };
    let mut y = scaled_start(init, n, dim, params);
    let (a, b) = find_ab_params(params.spread, params.min_dist);
    sgd(&mut y, n, dim, &head, &tail, &eps, n_epochs, a, b, params);
    Ok(y)
}

/// umap-learn's treatment of a spectral/PCA start: scaled so the largest |value| is 10, 1e-4
/// noise added, then each column mapped to `[0, 10]`.
fn scaled_start(init: Vec<f64>, n: usize, dim: usize, params: &UmapParams) -> Vec<f32> {
    let width = init.len() / n.max(1);
    let mut y = vec![0.0f32; n * dim];
    let max_abs = init.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let expansion = if params.init == UmapInit::Random || max_abs == 0.0 {
        1.0
    } else {
        10.0 / max_abs
    };
    let noise = normals(params.seed.wrapping_add(1), n * dim);
    for i in 0..n {
        for c in 0..dim {
            let v = if c < width { init[i * width + c] } else { 0.0 };
            y[i * dim + c] = (v * expansion) as f32 + (noise[i * dim + c] * 1e-4) as f32;
        }
    }
    for c in 0..dim {
        let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
        for i in 0..n {
            lo = lo.min(y[i * dim + c]);
            hi = hi.max(y[i * dim + c]);
        }
        let span = if hi > lo { hi - lo } else { 1.0 };
        for i in 0..n {
            y[i * dim + c] = 10.0 * (y[i * dim + c] - lo) / span;
        }
    }
    y
}

/// umap-learn's `tau_rand_int` (a combined Tausworthe generator, three 32-bit states), seeded
/// from ChaCha8 instead of numpy.
struct Tausworthe([u32; 3]);

impl Tausworthe {
    fn new(seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // Each state needs enough set high bits to leave the degenerate all-zero cycle.
        Tausworthe([
            rng.random::<u32>() | 0x100,
            rng.random::<u32>() | 0x100,
            rng.random::<u32>() | 0x100,
        ])
    }

    #[inline]
    fn next(&mut self) -> u32 {
        let s = &mut self.0;
        s[0] = ((s[0] & 0xFFFF_FFFE) << 12) ^ (((s[0] << 13) ^ s[0]) >> 19);
        s[1] = ((s[1] & 0xFFFF_FFF8) << 4) ^ (((s[1] << 2) ^ s[1]) >> 25);
        s[2] = ((s[2] & 0xFFFF_FFF0) << 17) ^ (((s[2] << 3) ^ s[2]) >> 11);
        s[0] ^ s[1] ^ s[2]
    }
}

#[allow(clippy::too_many_arguments)]
fn sgd(
    y: &mut [f32],
    n: usize,
    dim: usize,
    head: &[usize],
    tail: &[usize],
    eps: &[f64],
    n_epochs: usize,
    a: f64,
    b: f64,
    params: &UmapParams,
) {
    let clip = |v: f32| v.clamp(-4.0, 4.0);
    let (a32, b32) = (a as f32, b as f32);
    let gamma = params.repulsion_strength as f32;
    let neg_rate = params.negative_sample_rate as f64;
    let eps_neg: Vec<f64> = eps.iter().map(|e| e / neg_rate).collect();
    let mut next = eps.to_vec();
    let mut next_neg = eps_neg.clone();
    let mut rng = Tausworthe::new(params.seed);
    let mut cur = [0.0f32; 3];
    for epoch in 0..n_epochs {
        let alpha = (params.learning_rate * (1.0 - epoch as f64 / n_epochs as f64)) as f32;
        let ep = epoch as f64;
        for e in 0..head.len() {
            if next[e] > ep {
                continue;
            }
            let (j, k) = (head[e], tail[e]);
            let mut d2 = 0.0f32;
            for c in 0..dim {
                let t = y[j * dim + c] - y[k * dim + c];
                d2 += t * t;
            }
            let coeff = if d2 > 0.0 {
                let p = d2.powf(b32 - 1.0);
                -2.0 * a32 * b32 * p / (a32 * p * d2 + 1.0)
            } else {
                0.0
            };
            for c in 0..dim {
                let g = clip(coeff * (y[j * dim + c] - y[k * dim + c])) * alpha;
                y[j * dim + c] += g;
                y[k * dim + c] -= g;
            }
            next[e] += eps[e];
            let n_neg = ((ep - next_neg[e]) / eps_neg[e]).floor().max(0.0) as usize;
            cur[..dim].copy_from_slice(&y[j * dim..(j + 1) * dim]);
            for _ in 0..n_neg {
                let k = rng.next() as usize % n;
                let mut d2 = 0.0f32;
                for c in 0..dim {
                    let t = cur[c] - y[k * dim + c];
                    d2 += t * t;
                }
                let coeff = if d2 > 0.0 {
                    2.0 * gamma * b32 / ((0.001 + d2) * (a32 * d2.powf(b32) + 1.0))
                } else if j == k {
                    continue;
                } else {
                    0.0
                };
                if coeff > 0.0 {
                    for c in 0..dim {
                        cur[c] += clip(coeff * (cur[c] - y[k * dim + c])) * alpha;
                    }
                }
            }
            y[j * dim..(j + 1) * dim].copy_from_slice(&cur[..dim]);
            next_neg[e] += n_neg as f64 * eps_neg[e];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ab_params_match_umap_learn() {
        // umap-learn's find_ab_params(1.0, 0.1) = (1.5769434603113077, 0.8950608779109733).
        let (a, b) = find_ab_params(1.0, 0.1);
        assert!((a - 1.576_943_460_311_307_7).abs() < 1e-4, "a = {a}");
        assert!((b - 0.895_060_877_910_973_3).abs() < 1e-4, "b = {b}");
    }
}
