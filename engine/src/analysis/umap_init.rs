//! UMAP's starting layout and the seeded normal noise both maps use.
//!
//! umap-learn's default "spectral" initialisation takes the eigenvectors of the graph's
//! normalised Laplacian `L = I − D^{-1/2} W D^{-1/2}` with the smallest non-zero eigenvalues
//! (ARPACK `eigsh`). We get the same subspace without a sparse eigensolver crate: block power
//! iteration on `(I + D^{-1/2} W D^{-1/2}) / 2` with the trivial eigenvector `D^{1/2}·1`
//! projected out, re-orthonormalised each step, then a Rayleigh–Ritz rotation (a small
//! `nalgebra` symmetric eigen-problem) to order the vectors. A disconnected graph (several
//! eigenvalues 1) gives component indicators mixed into the layout instead of umap-learn's
//! per-component meta-layout; the SGD separates the components either way.

use nalgebra::{DMatrix, SymmetricEigen};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `count` standard normal values from `seed` (Box–Muller on ChaCha8), the same on every
/// platform.
pub(crate) fn normals(seed: u64, count: usize) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(count + 1);
    while out.len() < count {
        let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
        let u2: f64 = rng.random::<f64>();
        let r = (-2.0 * u1.ln()).sqrt();
        let t = std::f64::consts::TAU * u2;
        out.push(r * t.cos());
        out.push(r * t.sin());
    }
    out.truncate(count);
    out
}

/// Symmetric sparse weights as CSR rows.
pub(crate) struct Graph {
    pub n: usize,
    pub indptr: Vec<usize>,
    pub indices: Vec<usize>,
    pub weights: Vec<f64>,
}

const POWER_ITERATIONS: usize = 300;

/// `n × dim` spectral coordinates (row-major), unscaled.
pub(crate) fn spectral(graph: &Graph, dim: usize, seed: u64) -> Vec<f64> {
    let n = graph.n;
    let deg: Vec<f64> = (0..n)
        .map(|i| {
            graph.weights[graph.indptr[i]..graph.indptr[i + 1]]
                .iter()
                .sum()
        })
        .collect();
    let inv_sqrt: Vec<f64> = deg
        .iter()
        .map(|&d| if d > 0.0 { 1.0 / d.sqrt() } else { 0.0 })
        .collect();
    let mut trivial: Vec<f64> = deg.iter().map(|d| d.sqrt()).collect();
    normalise(&mut trivial);
    // Columns of the block, each of length n.
    let noise = normals(seed ^ 0x5bd1_e995, n * dim);
    let mut block: Vec<Vec<f64>> = (0..dim)
        .map(|c| noise[c * n..(c + 1) * n].to_vec())
        .collect();
    orthonormalise(&mut block, &trivial);
    let apply = |x: &[f64], out: &mut [f64]| {
        for i in 0..n {
            let mut s = 0.0;
            for e in graph.indptr[i]..graph.indptr[i + 1] {
                let j = graph.indices[e];
                s += graph.weights[e] * inv_sqrt[j] * x[j];
            }
            out[i] = s * inv_sqrt[i];
        }
    };
    let mut tmp = vec![0.0f64; n];
    for _ in 0..POWER_ITERATIONS {
        for col in block.iter_mut() {
            apply(col, &mut tmp);
            for (c, t) in col.iter_mut().zip(&tmp) {
                *c = 0.5 * (*c + t);
            }
        }
        orthonormalise(&mut block, &trivial);
    }
    // Rayleigh–Ritz on M = D^{-1/2} W D^{-1/2}.
    let mut mx: Vec<Vec<f64>> = Vec::with_capacity(dim);
    for col in &block {
        apply(col, &mut tmp);
        mx.push(tmp.clone());
    }
    let h = DMatrix::from_fn(dim, dim, |a, b| {
        block[a].iter().zip(&mx[b]).map(|(x, y)| x * y).sum::<f64>()
    });
    let h = (&h + h.transpose()) * 0.5;
    let eig = SymmetricEigen::new(h);
    let mut order: Vec<usize> = (0..dim).collect();
    order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
    let mut out = vec![0.0f64; n * dim];
    for (c, &e) in order.iter().enumerate() {
        for i in 0..n {
            let mut v = 0.0;
            for (r, col) in block.iter().enumerate() {
                v += col[i] * eig.eigenvectors[(r, e)];
            }
            out[i * dim + c] = v;
        }
    }
    out
}

fn normalise(v: &mut [f64]) {
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > 0.0 {
        for x in v.iter_mut() {
            *x /= norm;
        }
    }
}

/// Modified Gram–Schmidt of the block against `fixed` and each other.
fn orthonormalise(block: &mut [Vec<f64>], fixed: &[f64]) {
    for c in 0..block.len() {
        let (done, rest) = block.split_at_mut(c);
        let col = &mut rest[0];
        for basis in std::iter::once(fixed).chain(done.iter().map(|v| v.as_slice())) {
            let p: f64 = col.iter().zip(basis).map(|(x, y)| x * y).sum();
            for (x, y) in col.iter_mut().zip(basis) {
                *x -= p * y;
            }
        }
        normalise(col);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spectral_orders_a_path_graph() {
        // On a path graph the first non-trivial eigenvector of the normalised Laplacian is
        // D^{1/2} times a cosine along the path: divided by √degree it is monotone.
        let n: usize = 30;
        let mut indptr = vec![0];
        let (mut indices, mut weights) = (vec![], vec![]);
        for i in 0..n {
            for j in [i.wrapping_sub(1), i + 1] {
                if j < n {
                    indices.push(j);
                    weights.push(1.0);
                }
            }
            indptr.push(indices.len());
        }
        let g = Graph {
            n,
            indptr,
            indices,
            weights,
        };
        let y = spectral(&g, 2, 7);
        let deg = |i: usize| if i == 0 || i == n - 1 { 1.0f64 } else { 2.0 };
        let first: Vec<f64> = (0..n).map(|i| y[i * 2] / deg(i).sqrt()).collect();
        let up = first.windows(2).all(|w| w[1] > w[0]);
        let down = first.windows(2).all(|w| w[1] < w[0]);
        assert!(up || down, "{first:?}");
        let a = normals(3, 1000);
        let mean = a.iter().sum::<f64>() / 1000.0;
        let var = a.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 1000.0;
        assert!(mean.abs() < 0.1 && (var - 1.0).abs() < 0.15);
        assert_eq!(a, normals(3, 1000));
    }
}
