//! Exact k-nearest neighbours under the Euclidean distance: brute force, one row per `rayon`
//! task, distances summed in eight lanes so the compiler vectorises them.

use rayon::prelude::*;

use super::{bad, check_matrix};
use crate::Result;

/// The `k` nearest other rows of every row, nearest first (ties: lower index first).
#[derive(Debug, Clone, PartialEq)]
pub struct Neighbors {
    pub n: usize,
    pub k: usize,
    /// `n × k` row indices.
    pub indices: Vec<usize>,
    /// `n × k` Euclidean distances (not squared).
    pub distances: Vec<f32>,
}

impl Neighbors {
    pub fn row(&self, i: usize) -> (&[usize], &[f32]) {
        let r = i * self.k..(i + 1) * self.k;
        (&self.indices[r.clone()], &self.distances[r])
    }
}

/// Squared Euclidean distance, eight partial sums.
#[inline]
pub(crate) fn sqdist(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            let t = x[l] - y[l];
            acc[l] += t * t;
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        let t = x - y;
        s += t * t;
    }
    s
}

/// Dot product, eight partial sums.
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// A bounded list of the `k` smallest `(key, index)` pairs seen, kept sorted.
pub(crate) struct TopK {
    k: usize,
    items: Vec<(f32, usize)>,
}

impl TopK {
    pub fn new(k: usize) -> Self {
        TopK {
            k,
            items: Vec::with_capacity(k + 1),
        }
    }

    #[inline]
    pub fn worst(&self) -> f32 {
        if self.items.len() < self.k {
            f32::INFINITY
        } else {
            self.items[self.k - 1].0
        }
    }

    /// Offers a candidate; candidates arrive in increasing index order, so a tie keeps the
    /// lower index first.
    #[inline]
    pub fn push(&mut self, key: f32, index: usize) {
        if key >= self.worst() {
            return;
        }
        let pos = self.items.partition_point(|&(kk, _)| kk <= key);
        self.items.insert(pos, (key, index));
        self.items.truncate(self.k);
    }

    pub fn into_sorted(self) -> Vec<(f32, usize)> {
        self.items
    }
}

/// The `k` nearest neighbours (self excluded) of each of the `n` rows of `data` (`d` columns),
/// exact. Needs `1 <= k < n`.
pub fn knn_euclidean(data: &[f32], n: usize, d: usize, k: usize) -> Result<Neighbors> {
    const WHAT: &str = "knn_euclidean";
    check_matrix(WHAT, data, n, d)?;
    if k == 0 || k >= n {
        return Err(bad(
            WHAT,
            format!("k = {k} must be in 1..{n} (the row count)"),
        ));
    }
    let rows: Vec<Vec<(f32, usize)>> = (0..n)
        .into_par_iter()
        .map(|i| {
            let a = &data[i * d..(i + 1) * d];
            let mut top = TopK::new(k);
            for j in 0..n {
                if j == i {
                    continue;
                }
                let s = sqdist(a, &data[j * d..(j + 1) * d]);
                top.push(s, j);
            }
            top.into_sorted()
        })
        .collect();
    let mut indices = Vec::with_capacity(n * k);
    let mut distances = Vec::with_capacity(n * k);
    for row in rows {
        for (s, j) in row {
            indices.push(j);
            distances.push(s.max(0.0).sqrt());
        }
    }
    Ok(Neighbors {
        n,
        k,
        indices,
        distances,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knn_matches_a_sort_of_all_distances() {
        let (n, d) = (60, 7);
        let data: Vec<f32> = (0..n * d)
            .map(|i| ((i * 7919 % 1013) as f32 / 1013.0).sin())
            .collect();
        let nb = knn_euclidean(&data, n, d, 5).unwrap();
        for i in 0..n {
            let mut all: Vec<(f32, usize)> = (0..n)
                .filter(|&j| j != i)
                .map(|j| {
                    (
                        sqdist(&data[i * d..(i + 1) * d], &data[j * d..(j + 1) * d]),
                        j,
                    )
                })
                .collect();
            all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let want: Vec<usize> = all[..5].iter().map(|p| p.1).collect();
            assert_eq!(nb.row(i).0, &want[..]);
        }
        assert!(knn_euclidean(&data, n, d, n).is_err());
    }
}
