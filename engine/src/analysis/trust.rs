//! Trustworthiness of an embedding, as scikit-learn's `sklearn.manifold.trustworthiness`
//! (Euclidean metric): `1 − 2 / (n·k·(2n − 3k − 1)) · Σᵢ Σ_{j ∈ N_k^low(i)} max(0, r(i, j) − k)`,
//! where `r(i, j)` is the 1-based rank of `j` among `i`'s neighbours in the original space.
//! Distances in `f64`; equal distances rank by index (sklearn's `argsort` leaves their order
//! unspecified, so data with exact ties can differ from it).

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

/// Trustworthiness (in `[0, 1]`, 1 best) of `low` (`n × d_low`) as an embedding of `high`
/// (`n × d_high`) for `k` neighbours; sklearn requires `k < n / 2`.
pub fn trustworthiness(
    high: &[f32],
    low: &[f32],
    n: usize,
    d_high: usize,
    d_low: usize,
    k: usize,
) -> Result<f64> {
    const WHAT: &str = "trustworthiness";
    check_matrix(WHAT, high, n, d_high)?;
    check_matrix(WHAT, low, n, d_low)?;
    if k == 0 || 2 * k >= n {
        return Err(bad(
            WHAT,
            format!("k = {k} must be at least 1 and below n / 2 = {}", n / 2),
        ));
    }
    let penalties: Vec<u64> = (0..n)
        .into_par_iter()
        .map(|i| {
            let li = &low[i * d_low..(i + 1) * d_low];
            // The k nearest in the embedding, self excluded (sklearn's `kneighbors()`).
            let mut lown: Vec<(f64, usize)> = (0..n)
                .filter(|&j| j != i)
                .map(|j| (sqdist64(li, &low[j * d_low..(j + 1) * d_low]), j))
                .collect();
            lown.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let hi = &high[i * d_high..(i + 1) * d_high];
            let dist: Vec<f64> = (0..n)
                .map(|j| sqdist64(hi, &high[j * d_high..(j + 1) * d_high]))
                .collect();
            let mut sum = 0u64;
            for &(_, j) in &lown[..k] {
                let dj = dist[j];
                // 1-based rank of j among i's neighbours in the original space.
                let rank = 1
                    + (0..n)
                        .filter(|&l| l != i && l != j && (dist[l] < dj || (dist[l] == dj && l < j)))
                        .count();
                if rank > k {
                    sum += (rank - k) as u64;
                }
            }
            sum
        })
        .collect();
    let t: u64 = penalties.iter().sum();
    let (nf, kf) = (n as f64, k as f64);
    Ok(1.0 - t as f64 * (2.0 / (nf * kf * (2.0 * nf - 3.0 * kf - 1.0))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_embedding_is_perfectly_trustworthy_and_a_shuffle_is_not() {
        let n = 40;
        let high: Vec<f32> = (0..n * 3).map(|i| ((i * 31 % 97) as f32).sin()).collect();
        assert!((trustworthiness(&high, &high, n, 3, 3, 5).unwrap() - 1.0).abs() < 1e-12);
        let low: Vec<f32> = (0..n * 2).map(|i| ((i * 17 % 89) as f32).cos()).collect();
        assert!(trustworthiness(&high, &low, n, 3, 2, 5).unwrap() < 0.9);
        assert!(trustworthiness(&high, &low, n, 3, 2, 20).is_err());
    }
}
