//! Barnes–Hut t-SNE following scikit-learn's `TSNE` (`sklearn/manifold/_t_sne.py`,
//! `_barnes_hut_tsne.pyx`, `_utils._binary_search_perplexity`) with its defaults:
//! perplexity 30 over `min(n − 1, ⌊3·perplexity + 1⌋)` exact neighbours (squared distances),
//! a 100-step binary search for each row's precision, `P = (P + Pᵀ) / ΣP`, early exaggeration
//! 12 for 250 iterations at momentum 0.5 then momentum 0.8 to 1000 iterations, learning rate
//! "auto" = `max(n / early_exaggeration / 4, 50)`, delta-bar-delta gains (+0.2 / ×0.8, at least
//! 0.01), angle θ = 0.5, PCA initialisation scaled to a first-column standard deviation of
//! 1e-4, `dof = max(out_dim − 1, 1)` degrees of freedom, and a gradient-norm stop (1e-7)
//! checked every 50 iterations. Not carried over: the "no progress in 300 iterations" stop,
//! which needs the KL divergence each check (rarely triggers). Rows wider than 50 columns are
//! reduced to 50 principal components first (see the module overview).
//!
//! Deterministic: the forces are computed per point in parallel and summed in index order.

use rayon::prelude::*;

use super::knn::knn_euclidean;
use super::tsne_tree::Tree;
use super::{bad, pca, MapInput};
use crate::Result;

/// How t-SNE places the points before optimising.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsneInit {
    /// The first principal components, scaled to a standard deviation of 1e-4 (sklearn's default).
    Pca,
    /// Normal noise of standard deviation 1e-4 from the seed.
    Random,
}

/// t-SNE settings; [`Default`] is scikit-learn's `TSNE()` in 2D.
#[derive(Debug, Clone, PartialEq)]
pub struct TsneParams {
    /// 2 or 3.
    pub out_dim: usize,
    pub perplexity: f64,
    pub early_exaggeration: f64,
    /// `None`: "auto", `max(n / early_exaggeration / 4, 50)`.
    pub learning_rate: Option<f64>,
    pub max_iter: usize,
    /// Barnes–Hut angle θ.
    pub angle: f64,
    pub min_grad_norm: f64,
    pub init: TsneInit,
    /// Used by [`TsneInit::Random`] only (PCA initialisation needs no randomness).
    pub seed: u64,
}

impl Default for TsneParams {
    fn default() -> Self {
        TsneParams {
            out_dim: 2,
            perplexity: 30.0,
            early_exaggeration: 12.0,
            learning_rate: None,
            max_iter: 1000,
            angle: 0.5,
            min_grad_norm: 1e-7,
            init: TsneInit::Pca,
            seed: 0,
        }
    }
}

/// Iterations with early exaggeration (sklearn's `_EXPLORATION_MAX_ITER`).
const EXPLORATION_ITER: usize = 250;
const CHECK_EVERY: usize = 50;

/// The symmetric joint probabilities as CSR rows.
pub(crate) struct Joint {
    pub indptr: Vec<usize>,
    pub indices: Vec<usize>,
    pub values: Vec<f64>,
}

/// sklearn's `_binary_search_perplexity` on one row of squared neighbour distances.
fn conditional_row(sq: &[f32], desired_entropy: f64) -> Vec<f64> {
    const STEPS: usize = 100;
    const TOL: f64 = 1e-5;
    let mut p = vec![0.0f64; sq.len()];
    let (mut beta, mut beta_min, mut beta_max) = (1.0f64, f64::NEG_INFINITY, f64::INFINITY);
    for _ in 0..STEPS {
        let mut sum = 0.0;
        for (pj, &s) in p.iter_mut().zip(sq) {
            *pj = (-(s as f64) * beta).exp();
            sum += *pj;
        }
        if sum == 0.0 {
            sum = 1e-8;
        }
        let mut sum_dp = 0.0;
        for (pj, &s) in p.iter_mut().zip(sq) {
            *pj /= sum;
            sum_dp += s as f64 * *pj;
        }
        let entropy = sum.ln() + beta * sum_dp;
        let diff = entropy - desired_entropy;
        if diff.abs() <= TOL {
            break;
        }
        if diff > 0.0 {
            beta_min = beta;
            beta = if beta_max == f64::INFINITY {
                beta * 2.0
            } else {
                (beta + beta_max) / 2.0
            };
        } else {
            beta_max = beta;
            beta = if beta_min == f64::NEG_INFINITY {
                beta / 2.0
            } else {
                (beta + beta_min) / 2.0
            };
        }
    }
    p
}

/// The joint probabilities of sklearn's `_joint_probabilities_nn`.
pub(crate) fn joint_probabilities(
    data: &[f32],
    n: usize,
    d: usize,
    perplexity: f64,
) -> Result<Joint> {
    let k = (n - 1).min((3.0 * perplexity + 1.0) as usize);
    let nb = knn_euclidean(data, n, d, k)?;
    let desired = perplexity.ln();
    let rows: Vec<Vec<f64>> = (0..n)
        .into_par_iter()
        .map(|i| {
            // sklearn squares the Euclidean distances (float32) before the search.
            let sq: Vec<f32> = nb.row(i).1.iter().map(|&x| x * x).collect();
            conditional_row(&sq, desired)
        })
        .collect();
    // P + Pᵀ as sorted triplets, duplicates summed.
    let mut trip: Vec<(usize, usize, f64)> = Vec::with_capacity(2 * n * k);
    for (i, row) in rows.iter().enumerate() {
        for (&j, &v) in nb.row(i).0.iter().zip(row) {
            trip.push((i, j, v));
            trip.push((j, i, v));
        }
    }
    trip.par_sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let mut indptr = vec![0usize; n + 1];
    let mut indices = Vec::with_capacity(trip.len());
    let mut values: Vec<f64> = Vec::with_capacity(trip.len());
    let mut last: Option<(usize, usize)> = None;
    for (i, j, v) in trip {
        if last == Some((i, j)) {
            if let Some(x) = values.last_mut() {
                *x += v;
            }
            continue;
        }
        last = Some((i, j));
        indices.push(j);
        values.push(v);
        indptr[i + 1] += 1;
    }
    for i in 0..n {
        indptr[i + 1] += indptr[i];
    }
    let total: f64 = values.iter().sum::<f64>().max(f64::EPSILON);
    for v in &mut values {
        *v /= total;
    }
    Ok(Joint {
        indptr,
        indices,
        values,
    })
}

/// Barnes–Hut t-SNE of `n` rows of `d` values: `n × out_dim` coordinates, row-major.
pub fn tsne(data: &[f32], n: usize, d: usize, params: &TsneParams) -> Result<Vec<f32>> {
    const WHAT: &str = "tsne";
    let input = MapInput::new(WHAT, data, n, d, params.out_dim)?;
    if !(params.perplexity > 0.0 && params.perplexity < n as f64) {
        return Err(bad(
            WHAT,
            format!(
                "perplexity {} must be positive and less than the row count {n}",
                params.perplexity
            ),
        ));
    }
    if !(params.angle >= 0.0 && params.angle <= 1.0) {
        return Err(bad(
            WHAT,
            format!("angle {} must be in 0..=1", params.angle),
        ));
    }
    if params.early_exaggeration < 1.0 {
        return Err(bad(WHAT, "early_exaggeration must be at least 1"));
    }
    let joint = joint_probabilities(&input.data, n, input.d, params.perplexity)?;
    let init = initial(&input, n, params)?;
    let out = match params.out_dim {
        2 => optimise::<2>(&joint, init, n, params),
        _ => optimise::<3>(&joint, init, n, params),
    };
    Ok(out)
}

fn initial(input: &MapInput, n: usize, params: &TsneParams) -> Result<Vec<f64>> {
    let k = params.out_dim;
    match params.init {
        TsneInit::Pca => {
            let y = pca(&input.data, n, input.d, k.min(input.d))?;
            let kk = k.min(input.d);
            let mean0 = (0..n).map(|i| y[i * kk] as f64).sum::<f64>() / n as f64;
            let var0 = (0..n)
                .map(|i| (y[i * kk] as f64 - mean0).powi(2))
                .sum::<f64>()
                / n as f64;
            let scale = if var0 > 0.0 { 1e-4 / var0.sqrt() } else { 1.0 };
            let mut out = vec![0.0f64; n * k];
            for i in 0..n {
                for c in 0..kk {
                    // sklearn casts the PCA scores to float32 before scaling.
                    out[i * k + c] = y[i * kk + c] as f64 * scale;
                }
            }
            Ok(out)
        }
        TsneInit::Random => Ok(super::umap_init::normals(params.seed, n * k)
            .into_iter()
            .map(|v| v * 1e-4)
            .collect()),
    }
}

fn optimise<const D: usize>(
    joint: &Joint,
    init: Vec<f64>,
    n: usize,
    params: &TsneParams,
) -> Vec<f32> {
    let dof = (D as f64 - 1.0).max(1.0);
    let c = 2.0 * (dof + 1.0) / dof;
    let exponent = (dof + 1.0) / 2.0;
    let theta2 = params.angle * params.angle;
    let lr = params
        .learning_rate
        .unwrap_or_else(|| (n as f64 / params.early_exaggeration / 4.0).max(50.0));
    let mut y: Vec<[f64; D]> = (0..n)
        .map(|i| std::array::from_fn(|a| init[i * D + a]))
        .collect();
    let mut update = vec![[0.0f64; D]; n];
    let mut gains = vec![[1.0f64; D]; n];
    let explore = EXPLORATION_ITER.min(params.max_iter);
    for (stage_start, stage_end, exaggeration, momentum) in [
        (0, explore, params.early_exaggeration, 0.5),
        (explore, params.max_iter, 1.0, 0.8),
    ] {
        for it in stage_start..stage_end {
            let tree = Tree::<D>::build(&y);
            let forces: Vec<([f64; D], [f64; D], f64)> = (0..n)
                .into_par_iter()
                .map(|i| {
                    let yi = &y[i];
                    let mut pos = [0.0; D];
                    for e in joint.indptr[i]..joint.indptr[i + 1] {
                        let j = joint.indices[e];
                        let mut delta = [0.0; D];
                        let mut d2 = 0.0;
                        for a in 0..D {
                            delta[a] = yi[a] - y[j][a];
                            d2 += delta[a] * delta[a];
                        }
                        let mut q = dof / (dof + d2);
                        if dof != 1.0 {
                            q = q.powf(exponent);
                        }
                        let w = joint.values[e] * exaggeration * q;
                        for a in 0..D {
                            pos[a] += w * delta[a];
                        }
                    }
                    let (neg, z) = tree.repulsion(i, yi, theta2, dof);
                    (pos, neg, z)
                })
                .collect();
            let z: f64 = forces
                .iter()
                .map(|f| f.2)
                .sum::<f64>()
                .max(f64::MIN_POSITIVE);
            let mut norm2 = 0.0;
            for i in 0..n {
                let (pos, neg, _) = &forces[i];
                for a in 0..D {
                    let mut g = c * (pos[a] - neg[a] / z);
                    let gain = &mut gains[i][a];
                    if update[i][a] * g < 0.0 {
                        *gain += 0.2;
                    } else {
                        *gain *= 0.8;
                    }
                    if *gain < 0.01 {
                        *gain = 0.01;
                    }
                    g *= *gain;
                    norm2 += g * g;
                    update[i][a] = momentum * update[i][a] - lr * g;
                    y[i][a] += update[i][a];
                }
            }
            if (it + 1) % CHECK_EVERY == 0 && norm2.sqrt() <= params.min_grad_norm {
                break;
            }
        }
    }
    y.iter().flat_map(|p| p.iter().map(|&v| v as f32)).collect()
}
