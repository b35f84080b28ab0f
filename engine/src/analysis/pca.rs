//! Principal component analysis: the covariance (or, with fewer rows than columns, the Gram
//! matrix) in `f64`, `nalgebra`'s symmetric eigen-decomposition, and scikit-learn's `svd_flip`
//! sign rule (`u_based_decision=False`, scikit-learn ≥ 1.5): each component's
//! largest-magnitude loading is positive, so results are deterministic and equal sklearn's
//! `PCA(n_components).fit_transform`.
//!
//! Like sklearn's `svd_solver="auto"`, a wide problem (both sides above 500 and fewer than
//! 80 % of the components kept, e.g. 10,000 CNN embeddings of 1,280 values reduced to 50)
//! uses a randomized SVD instead (Halko et al. 2011, sklearn's `randomized_svd`: 10 extra
//! columns, 7 power iterations re-orthonormalised by QR, a seeded Gaussian start), which
//! matches the exact components closely whenever the spectrum decays, in a fraction of the
//! time of a full eigen-decomposition.

use nalgebra::{DMatrix, SymmetricEigen};
use rayon::prelude::*;

use super::{bad, check_matrix};
use crate::Result;

/// A fitted PCA.
#[derive(Debug, Clone, PartialEq)]
pub struct Pca {
    pub d: usize,
    pub out_dim: usize,
    /// Column means (`d`).
    pub mean: Vec<f64>,
    /// `out_dim × d` unit components, largest variance first.
    pub components: Vec<f64>,
    /// Variance along each component (divided by `n - 1`, as sklearn's `explained_variance_`).
    pub explained_variance: Vec<f64>,
}

impl Pca {
    /// Projects `n` rows of `d` values onto the components: `n × out_dim`.
    pub fn transform(&self, data: &[f32], n: usize) -> Result<Vec<f32>> {
        check_matrix("pca transform", data, n, self.d)?;
        let (d, k) = (self.d, self.out_dim);
        let mut out = vec![0.0f32; n * k];
        out.par_chunks_mut(k).enumerate().for_each(|(i, o)| {
            let row = &data[i * d..(i + 1) * d];
            for (c, oc) in o.iter_mut().enumerate() {
                let comp = &self.components[c * d..(c + 1) * d];
                let mut s = 0.0f64;
                for j in 0..d {
                    s += (row[j] as f64 - self.mean[j]) * comp[j];
                }
                *oc = s as f32;
            }
        });
        Ok(out)
    }
}

/// `column-major` centred copy of the data: `d` columns of `n` values.
fn centred_columns(data: &[f32], n: usize, d: usize) -> (Vec<f64>, Vec<Vec<f64>>) {
    let mut mean = vec![0.0f64; d];
    for row in data.chunks_exact(d) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += v as f64;
        }
    }
    for m in &mut mean {
        *m /= n as f64;
    }
    let cols: Vec<Vec<f64>> = (0..d)
        .into_par_iter()
        .map(|j| (0..n).map(|i| data[i * d + j] as f64 - mean[j]).collect())
        .collect();
    (mean, cols)
}

fn dot64(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let ca = a.chunks_exact(4);
    let cb = b.chunks_exact(4);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..4 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s = acc[0] + acc[1] + acc[2] + acc[3];
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// Fits a PCA with `out_dim` components to `n` rows of `d` values (`1 <= out_dim <= min(n, d)`).
pub fn pca_fit(data: &[f32], n: usize, d: usize, out_dim: usize) -> Result<Pca> {
    const WHAT: &str = "pca";
    check_matrix(WHAT, data, n, d)?;
    if n < 2 {
        return Err(bad(WHAT, format!("needs at least 2 rows, got {n}")));
    }
    if out_dim == 0 || out_dim > n.min(d) {
        return Err(bad(
            WHAT,
            format!(
                "out_dim = {out_dim} must be in 1..={} (min of rows and columns)",
                n.min(d)
            ),
        ));
    }
    if n.min(d) > 500 && 5 * out_dim < 4 * n.min(d) {
        return Ok(randomized(data, n, d, out_dim));
    }
    let (mean, cols) = centred_columns(data, n, d);
    let denom = (n - 1) as f64;
    let mut components = vec![0.0f64; out_dim * d];
    let mut explained_variance = vec![0.0f64; out_dim];
    if d <= n {
        // Covariance d × d, upper triangle in parallel.
        let upper: Vec<Vec<f64>> = (0..d)
            .into_par_iter()
            .map(|a| (a..d).map(|b| dot64(&cols[a], &cols[b]) / denom).collect())
            .collect();
        let cov = DMatrix::from_fn(d, d, |a, b| {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            upper[lo][hi - lo]
        });
        let eig = SymmetricEigen::new(cov);
        let order = descending(eig.eigenvalues.as_slice());
        for (c, &e) in order.iter().take(out_dim).enumerate() {
            explained_variance[c] = eig.eigenvalues[e].max(0.0);
            for j in 0..d {
                components[c * d + j] = eig.eigenvectors[(j, e)];
            }
        }
    } else {
        // Gram matrix n × n: X Xᵀ = U S² Uᵀ, components Vᵀ = Uᵀ X / s.
        let rows: Vec<Vec<f64>> = (0..n)
            .map(|i| (0..d).map(|j| cols[j][i]).collect())
            .collect();
        let upper: Vec<Vec<f64>> = (0..n)
            .into_par_iter()
            .map(|a| (a..n).map(|b| dot64(&rows[a], &rows[b])).collect())
            .collect();
        let gram = DMatrix::from_fn(n, n, |a, b| {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            upper[lo][hi - lo]
        });
        let eig = SymmetricEigen::new(gram);
        let order = descending(eig.eigenvalues.as_slice());
        for (c, &e) in order.iter().take(out_dim).enumerate() {
            let s2 = eig.eigenvalues[e].max(0.0);
            explained_variance[c] = s2 / denom;
            let s = s2.sqrt();
            if s <= f64::EPSILON {
                continue;
            }
            for j in 0..d {
                let v: f64 = rows
                    .iter()
                    .enumerate()
                    .map(|(i, r)| eig.eigenvectors[(i, e)] * r[j])
                    .sum();
                components[c * d + j] = v / s;
            }
        }
    }
    flip_signs(&mut components, d);
    Ok(Pca {
        d,
        out_dim,
        mean,
        components,
        explained_variance,
    })
}

/// sklearn's `svd_flip(u_based_decision=False)`: the largest |loading| of each component is
/// positive.
fn flip_signs(components: &mut [f64], d: usize) {
    for comp in components.chunks_exact_mut(d) {
        let mut best = 0;
        for j in 1..d {
            if comp[j].abs() > comp[best].abs() {
                best = j;
            }
        }
        if comp[best] < 0.0 {
            for v in comp.iter_mut() {
                *v = -*v;
            }
        }
    }
}

/// Randomized PCA (see the module overview); deterministic (fixed seed).
fn randomized(data: &[f32], n: usize, d: usize, out_dim: usize) -> Pca {
    const POWER_ITERATIONS: usize = 7;
    const OVERSAMPLES: usize = 10;
    let mut mean = vec![0.0f64; d];
    for row in data.chunks_exact(d) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += v as f64;
        }
    }
    for m in &mut mean {
        *m /= n as f64;
    }
    let xc = DMatrix::from_fn(n, d, |i, j| data[i * d + j] as f64 - mean[j]);
    let xt = xc.transpose();
    let l = (out_dim + OVERSAMPLES).min(n.min(d));
    let omega = super::umap_init::normals(0x7ca, d * l);
    let omega = DMatrix::from_column_slice(d, l, &omega);
    let mut q = (&xc * omega).qr().q();
    for _ in 0..POWER_ITERATIONS {
        let z = (&xt * &q).qr().q();
        q = (&xc * z).qr().q();
    }
    // B = Qᵀ X (l × d); its right singular vectors from the eigen-decomposition of B Bᵀ.
    let b = q.transpose() * &xc;
    let bbt = &b * b.transpose();
    let eig = SymmetricEigen::new(bbt);
    let order = descending(eig.eigenvalues.as_slice());
    let mut components = vec![0.0f64; out_dim * d];
    let mut explained_variance = vec![0.0f64; out_dim];
    for (c, &e) in order.iter().take(out_dim).enumerate() {
        let s2 = eig.eigenvalues[e].max(0.0);
        explained_variance[c] = s2 / (n - 1) as f64;
        let s = s2.sqrt();
        if s <= f64::EPSILON {
            continue;
        }
        let u = eig.eigenvectors.column(e);
        let v = b.transpose() * u;
        for j in 0..d {
            components[c * d + j] = v[j] / s;
        }
    }
    flip_signs(&mut components, d);
    Pca {
        d,
        out_dim,
        mean,
        components,
        explained_variance,
    }
}

fn descending(values: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    order
}

/// The first `out_dim` principal-component scores of `n` rows of `d` values (`n × out_dim`),
/// as scikit-learn's `PCA(out_dim).fit_transform(data)`.
pub fn pca(data: &[f32], n: usize, d: usize, out_dim: usize) -> Result<Vec<f32>> {
    pca_fit(data, n, d, out_dim)?.transform(data, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covariance_and_gram_routes_agree() {
        // 8 rows in 5 columns (covariance route) against the same data transposed in spirit:
        // 5 rows of 8 columns uses the Gram route; both must give orthonormal components and
        // scores whose variances are the eigenvalues.
        let data: Vec<f32> = (0..40)
            .map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.3)
            .collect();
        for (n, d) in [(8, 5), (5, 8)] {
            let p = pca_fit(&data, n, d, 2).unwrap();
            for c in 0..2 {
                let v = &p.components[c * d..(c + 1) * d];
                let norm: f64 = v.iter().map(|x| x * x).sum();
                assert!((norm - 1.0).abs() < 1e-9, "{n}x{d}: |v| = {norm}");
            }
            let scores = p.transform(&data, n).unwrap();
            for c in 0..2 {
                let var: f64 = (0..n)
                    .map(|i| (scores[i * 2 + c] as f64).powi(2))
                    .sum::<f64>()
                    / (n - 1) as f64;
                assert!((var - p.explained_variance[c]).abs() < 1e-4 * (1.0 + var));
            }
            assert!(p.explained_variance[0] >= p.explained_variance[1]);
        }
        assert!(pca(&data, 8, 5, 6).is_err());
    }

    #[test]
    fn randomized_route_matches_the_exact_one_on_a_decaying_spectrum() {
        // 600 × 520 with a few strong directions: the randomized route's first components
        // equal the exact covariance route's.
        let (n, d) = (600, 520);
        let noise = super::super::umap_init::normals(1, n * d);
        let dirs = super::super::umap_init::normals(2, 3 * d);
        let t = super::super::umap_init::normals(3, 3 * n);
        let data: Vec<f32> = (0..n * d)
            .map(|x| {
                let (i, j) = (x / d, x % d);
                let s: f64 = (0..3)
                    .map(|c| t[i * 3 + c] * dirs[c * d + j] * (10.0 / (c + 1) as f64))
                    .sum();
                (s + 0.1 * noise[x]) as f32
            })
            .collect();
        let fast = pca_fit(&data, n, d, 3).unwrap();
        let (mean, cols) = centred_columns(&data, n, d);
        let _ = mean;
        // Exact: power-check that each fast component is an eigenvector of the covariance.
        for c in 0..3 {
            let v = &fast.components[c * d..(c + 1) * d];
            let proj: Vec<f64> = (0..n)
                .map(|i| (0..d).map(|j| cols[j][i] * v[j]).sum())
                .collect();
            let cv: Vec<f64> = (0..d)
                .map(|j| dot64(&cols[j], &proj) / (n - 1) as f64)
                .collect();
            let lambda: f64 = cv.iter().zip(v).map(|(a, b)| a * b).sum();
            let resid: f64 = cv
                .iter()
                .zip(v)
                .map(|(a, b)| (a - lambda * b).powi(2))
                .sum::<f64>()
                .sqrt();
            assert!(
                resid < 1e-6 * lambda,
                "component {c}: residual {resid}, eigenvalue {lambda}"
            );
            assert!((lambda - fast.explained_variance[c]).abs() < 1e-6 * lambda);
        }
    }
}
