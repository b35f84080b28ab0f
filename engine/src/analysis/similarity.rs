//! Similarity actions of the Explore panel: cosine k-NN ("find similar"), near-duplicate
//! pairs and groups under a cosine-distance threshold, and uniqueness ranking.
//!
//! Uniqueness follows FiftyOne Brain's `compute_uniqueness`
//! (`fiftyone/brain/internal/core/uniqueness.py`, `_compute_uniqueness`): the distances to the
//! K = 3 nearest neighbours, weighted 0.6 / 0.3 / 0.1, averaged, and divided by the largest
//! such value so the scores lie in `[0, 1]` (1 = the most unique); fewer than 4 points all
//! score 1, as there. We use the cosine distance, as FiftyOne's default similarity index does.
//!
//! All searches are exact (brute force over normalised rows, parallel with `rayon`).

use rayon::prelude::*;

use super::knn::{dot, TopK};
use super::{bad, check_matrix};
use crate::Result;

/// What to find neighbours of.
#[derive(Debug, Clone, Copy)]
pub enum CosineQuery<'a> {
    /// A row of the data (excluded from its own result).
    Index(usize),
    /// Any vector of `d` values.
    Vector(&'a [f32]),
}

/// Unit-length copies of the rows (a zero row stays zero: cosine distance 1 to everything).
fn normalised(data: &[f32], d: usize) -> Vec<f32> {
    let mut out = data.to_vec();
    out.par_chunks_mut(d).for_each(|row| {
        let norm = dot(row, row).sqrt();
        if norm > 0.0 {
            for v in row.iter_mut() {
                *v /= norm;
            }
        }
    });
    out
}

fn unit(v: &[f32]) -> Vec<f32> {
    let norm = dot(v, v).sqrt();
    v.iter()
        .map(|x| if norm > 0.0 { x / norm } else { 0.0 })
        .collect()
}

/// The `k` rows nearest to the query by cosine distance `1 − cos`, nearest first, as
/// `(row, distance)`.
pub fn knn_cosine(
    data: &[f32],
    n: usize,
    d: usize,
    query: CosineQuery<'_>,
    k: usize,
) -> Result<Vec<(usize, f32)>> {
    const WHAT: &str = "knn_cosine";
    check_matrix(WHAT, data, n, d)?;
    let (q, skip) = match query {
        CosineQuery::Index(i) if i < n => (unit(&data[i * d..(i + 1) * d]), Some(i)),
        CosineQuery::Index(i) => {
            return Err(bad(WHAT, format!("row {i} is out of range (n = {n})")))
        }
        CosineQuery::Vector(v) if v.len() == d => (unit(v), None),
        CosineQuery::Vector(v) => {
            return Err(bad(
                WHAT,
                format!("query has {} values, rows have {d}", v.len()),
            ))
        }
    };
    let rows = normalised(data, d);
    let mut top = TopK::new(k);
    for j in 0..n {
        if Some(j) == skip {
            continue;
        }
        top.push(1.0 - dot(&q, &rows[j * d..(j + 1) * d]), j);
    }
    Ok(top.into_sorted().into_iter().map(|(s, j)| (j, s)).collect())
}

/// Near-duplicates: every pair closer than the threshold, and the groups they join.
#[derive(Debug, Clone, PartialEq)]
pub struct NearDuplicates {
    /// `(i, j, cosine distance)` with `i < j`, by `i` then `j`.
    pub pairs: Vec<(usize, usize, f32)>,
    /// Connected components of the pairs (each ≥ 2 rows, sorted; groups by first row).
    pub groups: Vec<Vec<usize>>,
}

/// All pairs of rows with cosine distance `<= threshold` (in `[0, 2]`), and their groups.
pub fn near_duplicates(data: &[f32], n: usize, d: usize, threshold: f32) -> Result<NearDuplicates> {
    const WHAT: &str = "near_duplicates";
    check_matrix(WHAT, data, n, d)?;
    if !(0.0..=2.0).contains(&threshold) {
        return Err(bad(WHAT, format!("threshold {threshold} must be in 0..=2")));
    }
    let rows = normalised(data, d);
    let pairs: Vec<(usize, usize, f32)> = (0..n)
        .into_par_iter()
        .flat_map_iter(|i| {
            let a = &rows[i * d..(i + 1) * d];
            let rows = &rows;
            (i + 1..n).filter_map(move |j| {
                let dist = 1.0 - dot(a, &rows[j * d..(j + 1) * d]);
                (dist <= threshold).then_some((i, j, dist.max(0.0)))
            })
        })
        .collect();
    // Union–find over the pairs.
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    for &(i, j, _) in &pairs {
        let (ri, rj) = (find(&mut parent, i), find(&mut parent, j));
        if ri != rj {
            parent[ri.max(rj)] = ri.min(rj);
        }
    }
    let mut by_root: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for &(i, j, _) in &pairs {
        for x in [i, j] {
            let r = find(&mut parent, x);
            by_root.entry(r).or_default().push(x);
        }
    }
    let groups = by_root
        .into_values()
        .map(|mut g| {
            g.sort_unstable();
            g.dedup();
            g
        })
        .collect();
    Ok(NearDuplicates { pairs, groups })
}

/// FiftyOne-style uniqueness of each row, in `[0, 1]` (see the module overview).
pub fn uniqueness(data: &[f32], n: usize, d: usize) -> Result<Vec<f32>> {
    const WHAT: &str = "uniqueness";
    const WEIGHTS: [f32; 3] = [0.6, 0.3, 0.1];
    check_matrix(WHAT, data, n, d)?;
    if n <= WEIGHTS.len() {
        return Ok(vec![1.0; n]);
    }
    let rows = normalised(data, d);
    let scores: Vec<f32> = (0..n)
        .into_par_iter()
        .map(|i| {
            let a = &rows[i * d..(i + 1) * d];
            let mut top = TopK::new(WEIGHTS.len());
            for j in 0..n {
                if j != i {
                    top.push((1.0 - dot(a, &rows[j * d..(j + 1) * d])).max(0.0), j);
                }
            }
            top.into_sorted()
                .iter()
                .zip(WEIGHTS)
                .map(|(&(s, _), w)| s * w)
                .sum::<f32>()
                / WEIGHTS.len() as f32
        })
        .collect();
    let max = scores.iter().cloned().fold(0.0f32, f32::max);
    Ok(if max > 0.0 {
        scores.into_iter().map(|s| s / max).collect()
    } else {
        vec![0.0; n]
    })
}
