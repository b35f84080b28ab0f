//! Pure math behind the Explorer (issue 19): maps, similarity and coverage on row-major `&[f32]`
//! matrices (`n` rows of `d` values). No store, no UI; every function checks its shapes and
//! returns [`EngineError::Analysis`] naming itself instead of panicking.
//!
//! - [`pca`]: principal components through `nalgebra`'s symmetric eigen-decomposition of the
//!   covariance, with scikit-learn's `svd_flip` sign rule (the largest-magnitude loading of
//!   each component is positive).
//! - [`tsne`]: Barnes–Hut t-SNE with scikit-learn `TSNE`'s defaults and schedule.
//! - [`umap`]: umap-learn's UMAP (fuzzy simplicial set, spectral init, negative-sampling SGD).
//! - [`trustworthiness`]: scikit-learn's `sklearn.manifold.trustworthiness`.
//! - [`similarity`]: cosine k-NN, near-duplicate pairs and groups, FiftyOne-style uniqueness.
//! - [`coverage`]: improved precision/recall (Kynkäänniemi et al. 2019, as `prdc`), the real
//!   points no synthetic point covers, and KID (as torch-fidelity).
//!
//! Both maps reduce rows wider than [`MapInput::PCA_DIMS`] (50) to 50 principal components
//! first, as openTSNE, FiftyOne and most t-SNE/UMAP pipelines do for CNN embeddings; the
//! neighbour search is exact (brute force, blocked and parallel with `rayon`), which stays
//! fast up to tens of thousands of points in 50 dimensions. See `docs/ARCHITECTURE.md`.

pub mod coverage;
mod knn;
mod pca;
pub mod similarity;
mod trust;
mod tsne;
mod tsne_tree;
mod umap;
mod umap_init;

pub use coverage::{
    kid, kid_on_subsets, precision_recall, precision_recall_detail, KidParams, PrecisionRecall,
};
pub use knn::{knn_euclidean, Neighbors};
pub use pca::{pca, pca_fit, Pca};
pub use similarity::{knn_cosine, near_duplicates, uniqueness, CosineQuery, NearDuplicates};
pub use trust::trustworthiness;
pub use tsne::{tsne, TsneInit, TsneParams};
pub use umap::{find_ab_params, umap, UmapInit, UmapParams};

use crate::{EngineError, Result};

/// The error every analysis function returns for bad input: `what` names the function.
pub(crate) fn bad(what: &str, message: impl std::fmt::Display) -> EngineError {
    EngineError::Analysis(format!("{what}: {message}"))
}

/// Checks that `data` holds `n` rows of `d` finite values.
pub(crate) fn check_matrix(what: &str, data: &[f32], n: usize, d: usize) -> Result<()> {
    if d == 0 {
        return Err(bad(what, "rows have no columns (d = 0)"));
    }
    let want = n
        .checked_mul(d)
        .ok_or_else(|| bad(what, format!("{n} × {d} overflows")))?;
    if data.len() != want {
        return Err(bad(
            what,
            format!("expected {n} × {d} = {want} values, got {}", data.len()),
        ));
    }
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        return Err(bad(
            what,
            format!(
                "value {} (row {}, column {}) is not finite",
                data[i],
                i / d,
                i % d
            ),
        ));
    }
    Ok(())
}

/// Shared front of the two maps: the rows a map works on (reduced to [`Self::PCA_DIMS`] by PCA
/// when wider) and its output dimension.
pub(crate) struct MapInput {
    pub data: Vec<f32>,
    pub d: usize,
}

impl MapInput {
    /// Rows wider than this are reduced to this many principal components first.
    pub const PCA_DIMS: usize = 50;

    pub fn new(what: &str, data: &[f32], n: usize, d: usize, out_dim: usize) -> Result<Self> {
        check_matrix(what, data, n, d)?;
        if !(out_dim == 2 || out_dim == 3) {
            return Err(bad(what, format!("out_dim must be 2 or 3, got {out_dim}")));
        }
        if n < 4 {
            return Err(bad(what, format!("needs at least 4 rows, got {n}")));
        }
        if d > Self::PCA_DIMS && n > Self::PCA_DIMS {
            let reduced = pca(data, n, d, Self::PCA_DIMS)?;
            Ok(MapInput {
                data: reduced,
                d: Self::PCA_DIMS,
            })
        } else {
            Ok(MapInput {
                data: data.to_vec(),
                d,
            })
        }
    }
}
