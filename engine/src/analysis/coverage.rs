//! Do the synthetic points cover the real ones?
//!
//! - Improved precision and recall (Kynkäänniemi et al., NeurIPS 2019) exactly as clovaai's
//!   `prdc` package computes them (`prdc/prdc.py`, `compute_prdc`): each point's radius is the
//!   distance to its k-th nearest neighbour within its own set (k = 3 in the issue); precision
//!   is the share of synthetic points strictly inside some real point's ball, recall the share
//!   of real points strictly inside some synthetic point's ball. Euclidean distances in `f64`.
//! - The real points no synthetic point covers are those that recall misses, by the same rule:
//!   outside every synthetic point's k-NN ball. That makes `recall = 1 − uncovered / n_real`,
//!   and names the part of the real distribution that generation has not reached yet.
//! - KID as torch-fidelity computes it (`torch_fidelity/metric_kid.py`): the polynomial kernel
//!   `(x·y·γ + coef0)^degree` with γ = 1/d, degree 3, coef0 1, the unbiased MMD² on random
//!   subsets (100 of 1000 rows from each set, without replacement), reported as the mean and
//!   the population standard deviation (`np.std`) over subsets. torch-fidelity refuses sets
//!   smaller than the subset size; we shrink the subset to the smaller set instead. Our subsets
//!   come from ChaCha8 (not numpy's `RandomState(2020)`); [`kid_on_subsets`] takes explicit
//!   subsets so a reference's own draws can be replayed.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::{bad, check_matrix};
use crate::Result;

fn sqdist64(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| {
            let t = x as f64 - y as f64;
            t * t
        })
        .sum()
}

/// Distance of each row to its k-th nearest other row of the same set.
fn radii(data: &[f32], n: usize, d: usize, k: usize) -> Vec<f64> {
    (0..n)
        .into_par_iter()
        .map(|i| {
            let a = &data[i * d..(i + 1) * d];
            let mut dist: Vec<f64> = (0..n)
                .filter(|&j| j != i)
                .map(|j| sqdist64(a, &data[j * d..(j + 1) * d]))
                .collect();
            let (_, kth, _) = dist.select_nth_unstable_by(k - 1, f64::total_cmp);
            kth.sqrt()
        })
        .collect()
}

/// Precision, recall and the uncovered real rows.
#[derive(Debug, Clone, PartialEq)]
pub struct PrecisionRecall {
    pub precision: f64,
    pub recall: f64,
    /// Real rows outside every synthetic row's k-NN ball, ascending.
    pub uncovered: Vec<usize>,
}

fn check_sets(what: &str, real: &[f32], fake: &[f32], d: usize) -> Result<(usize, usize)> {
    if d == 0 {
        return Err(bad(what, "rows have no columns (d = 0)"));
    }
    if !real.len().is_multiple_of(d) || !fake.len().is_multiple_of(d) {
        return Err(bad(
            what,
            format!("the sets' lengths are not multiples of d = {d}"),
        ));
    }
    let (nr, nf) = (real.len() / d, fake.len() / d);
    check_matrix(what, real, nr, d)?;
    check_matrix(what, fake, nf, d)?;
    Ok((nr, nf))
}

/// Improved precision/recall with the uncovered real rows (see the module overview).
/// Each set needs more than `k` rows.
pub fn precision_recall_detail(
    real: &[f32],
    fake: &[f32],
    d: usize,
    k: usize,
) -> Result<PrecisionRecall> {
    const WHAT: &str = "precision_recall";
    let (nr, nf) = check_sets(WHAT, real, fake, d)?;
    if k == 0 || nr <= k || nf <= k {
        return Err(bad(
            WHAT,
            format!("k = {k} needs at least k + 1 rows in each set (real {nr}, synthetic {nf})"),
        ));
    }
    let real_r = radii(real, nr, d, k);
    let fake_r = radii(fake, nf, d, k);
    let covered: Vec<bool> = (0..nr)
        .into_par_iter()
        .map(|i| {
            let a = &real[i * d..(i + 1) * d];
            (0..nf).any(|j| sqdist64(a, &fake[j * d..(j + 1) * d]).sqrt() < fake_r[j])
        })
        .collect();
    let inside: Vec<bool> = (0..nf)
        .into_par_iter()
        .map(|j| {
            let b = &fake[j * d..(j + 1) * d];
            (0..nr).any(|i| sqdist64(&real[i * d..(i + 1) * d], b).sqrt() < real_r[i])
        })
        .collect();
    let precision = inside.iter().filter(|&&x| x).count() as f64 / nf as f64;
    let recall = covered.iter().filter(|&&x| x).count() as f64 / nr as f64;
    let uncovered = (0..nr).filter(|&i| !covered[i]).collect();
    Ok(PrecisionRecall {
        precision,
        recall,
        uncovered,
    })
}

/// Improved precision and recall `(precision, recall)` of `fake` against `real` (both row-major
/// with `d` columns) for `k` neighbours.
pub fn precision_recall(real: &[f32], fake: &[f32], d: usize, k: usize) -> Result<(f64, f64)> {
    let pr = precision_recall_detail(real, fake, d, k)?;
    Ok((pr.precision, pr.recall))
}

/// KID settings; [`Default`] is torch-fidelity's.
#[derive(Debug, Clone, PartialEq)]
pub struct KidParams {
    pub subsets: usize,
    pub subset_size: usize,
    pub degree: i32,
    /// `None`: 1 / d.
    pub gamma: Option<f64>,
    pub coef0: f64,
    pub seed: u64,
}

impl Default for KidParams {
    fn default() -> Self {
        KidParams {
            subsets: 100,
            subset_size: 1000,
            degree: 3,
            gamma: None,
            coef0: 1.0,
            seed: 2020,
        }
    }
}

/// Rows as `f64`.
fn rows64(data: &[f32]) -> Vec<f64> {
    data.iter().map(|&v| v as f64).collect()
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
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// Dot products between rows of two sets, either all precomputed (small sets) or computed on
/// demand for each subset.
struct Dots<'a> {
    a: &'a [f64],
    b: &'a [f64],
    nb: usize,
    d: usize,
    full: Option<Vec<f64>>,
}

/// Above this many entries per matrix, dot products are computed per subset.
const FULL_GRAM_MAX: usize = 4 << 20;

impl<'a> Dots<'a> {
    fn new(a: &'a [f64], b: &'a [f64], d: usize, precompute: bool) -> Self {
        let (na, nb) = (a.len() / d, b.len() / d);
        let full = (precompute && na * nb <= FULL_GRAM_MAX).then(|| {
            let mut g = vec![0.0f64; na * nb];
            g.par_chunks_mut(nb).enumerate().for_each(|(i, row)| {
                let x = &a[i * d..(i + 1) * d];
                for (j, v) in row.iter_mut().enumerate() {
                    *v = dot64(x, &b[j * d..(j + 1) * d]);
                }
            });
            g
        });
        Dots { a, b, nb, d, full }
    }

    /// The `m × m` kernel matrix of the rows `ia` of A against `ib` of B.
    fn kernel(&self, ia: &[usize], ib: &[usize], kernel: &(dyn Fn(f64) -> f64 + Sync)) -> Vec<f64> {
        let m = ib.len();
        let mut out = vec![0.0f64; ia.len() * m];
        out.par_chunks_mut(m)
            .zip(ia.par_iter())
            .for_each(|(row, &i)| {
                for (v, &j) in row.iter_mut().zip(ib) {
                    let g = match &self.full {
                        Some(full) => full[i * self.nb + j],
                        None => dot64(
                            &self.a[i * self.d..(i + 1) * self.d],
                            &self.b[j * self.d..(j + 1) * self.d],
                        ),
                    };
                    *v = kernel(g);
                }
            });
        out
    }
}

/// torch-fidelity's unbiased MMD² from three kernel matrices of `m × m`.
fn mmd2(kxx: &[f64], kxy: &[f64], kyy: &[f64], m: usize) -> f64 {
    let off = |k: &[f64]| -> f64 {
        let total: f64 = k.iter().sum();
        let diag: f64 = (0..m).map(|i| k[i * m + i]).sum();
        total - diag
    };
    let mf = m as f64;
    (off(kxx) + off(kyy)) / (mf * (mf - 1.0)) - 2.0 * kxy.iter().sum::<f64>() / (mf * mf)
}

/// KID `(mean, standard deviation)` over the given subsets: each a pair of row lists of equal
/// length `m >= 2`, the first into `real`, the second into `fake`.
pub fn kid_on_subsets(
    real: &[f32],
    fake: &[f32],
    d: usize,
    subsets: &[(Vec<usize>, Vec<usize>)],
    params: &KidParams,
) -> Result<(f64, f64)> {
    const WHAT: &str = "kid";
    let (nr, nf) = check_sets(WHAT, real, fake, d)?;
    if subsets.is_empty() {
        return Err(bad(WHAT, "no subsets"));
    }
    let gamma = params.gamma.unwrap_or(1.0 / d as f64);
    let (coef0, degree) = (params.coef0, params.degree);
    let kernel = move |v: f64| (v * gamma + coef0).powi(degree);
    let (r64, f64s) = (rows64(real), rows64(fake));
    // Precompute all dot products when the subsets touch most rows anyway.
    let touched = subsets.len() * subsets[0].0.len();
    let rr = Dots::new(&r64, &r64, d, touched >= nr);
    let ff = Dots::new(&f64s, &f64s, d, touched >= nf);
    let rf = Dots::new(&r64, &f64s, d, touched >= nr.min(nf));
    let mut mmds = Vec::with_capacity(subsets.len());
    for (s, (ir, jf)) in subsets.iter().enumerate() {
        let m = ir.len();
        if m < 2 || jf.len() != m {
            return Err(bad(
                WHAT,
                format!("subset {s}: needs two lists of the same length >= 2"),
            ));
        }
        if ir.iter().any(|&i| i >= nr) || jf.iter().any(|&j| j >= nf) {
            return Err(bad(
                WHAT,
                format!("subset {s}: a row index is out of range"),
            ));
        }
        let kxx = rr.kernel(ir, ir, &kernel);
        let kyy = ff.kernel(jf, jf, &kernel);
        let kxy = rf.kernel(ir, jf, &kernel);
        mmds.push(mmd2(&kxx, &kxy, &kyy, m));
    }
    let n = mmds.len() as f64;
    let mean = mmds.iter().sum::<f64>() / n;
    let var = mmds.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    Ok((mean, var.sqrt()))
}

/// KID `(mean, standard deviation)` of `fake` against `real` with subsets drawn from the seed
/// (see the module overview).
pub fn kid(real: &[f32], fake: &[f32], d: usize, params: &KidParams) -> Result<(f64, f64)> {
    let (nr, nf) = check_sets("kid", real, fake, d)?;
    let m = params.subset_size.min(nr).min(nf);
    if m < 2 || params.subsets == 0 {
        return Err(bad(
            "kid",
            format!("needs at least 2 rows per set and one subset (real {nr}, synthetic {nf})"),
        ));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    let subsets: Vec<(Vec<usize>, Vec<usize>)> = (0..params.subsets)
        .map(|_| {
            let a = rand::seq::index::sample(&mut rng, nr, m).into_vec();
            let b = rand::seq::index::sample(&mut rng, nf, m).into_vec();
            (a, b)
        })
        .collect();
    kid_on_subsets(real, fake, d, &subsets, params)
}
