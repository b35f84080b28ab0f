//! One exploration (docs/ARCHITECTURE.md §13): the items a query selects with their features
//! (computed where missing), a 2D or 3D map of their embeddings, uniqueness, similar items,
//! near-duplicates; and the coverage of a real set by a synthetic one. The CLI (`explore`,
//! `coverage`) and the studio's Explore window both build them here, so both give the same
//! numbers.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::analysis_file::{Analysis, AnalysisRow};
use super::features::{ensure_features, load_features, Embedder, FeatureSummary, Features};
use super::{Catalog, Computed, ItemRecord};
use crate::analysis::{self, CosineQuery, KidParams, TsneParams, UmapParams};
use crate::error::{EngineError, Result};

/// Images per feature batch (each batch is committed on its own).
const FEATURE_BATCH: usize = 16;

/// How the embeddings are laid out in the plane or in space (the studio starts with PCA:
/// fast, and the same for every seed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MapMethod {
    #[default]
    Pca,
    Tsne,
    Umap,
}

impl MapMethod {
    pub const ALL: [MapMethod; 3] = [MapMethod::Pca, MapMethod::Tsne, MapMethod::Umap];

    pub fn name(self) -> &'static str {
        match self {
            MapMethod::Pca => "pca",
            MapMethod::Tsne => "tsne",
            MapMethod::Umap => "umap",
        }
    }

    /// The name shown to the user.
    pub fn label(self) -> &'static str {
        match self {
            MapMethod::Pca => "PCA",
            MapMethod::Tsne => "t-SNE",
            MapMethod::Umap => "UMAP",
        }
    }

    pub fn from_name(s: &str) -> Option<MapMethod> {
        MapMethod::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(s.trim()))
    }
}

/// A map to compute: method, 2 or 3 dimensions, seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapSpec {
    pub method: MapMethod,
    pub dims: usize,
    pub seed: u64,
}

impl Default for MapSpec {
    fn default() -> Self {
        MapSpec {
            method: MapMethod::Umap,
            dims: 2,
            seed: 0,
        }
    }
}

impl std::fmt::Display for MapSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}d seed {}",
            self.method.name(),
            self.dims,
            self.seed
        )
    }
}

/// The items of a query with their features, and what has been computed on them.
pub struct Exploration {
    pub ids: Vec<u64>,
    pub items: Vec<ItemRecord>,
    /// Aligned with `ids`.
    pub features: Vec<Features>,
    /// Items without features (their image could not be read), with why.
    pub left_out: Vec<(u64, String)>,
    pub summary: FeatureSummary,
    /// The last map computed: its spec and `ids.len() × dims` coordinates.
    pub map: Option<(MapSpec, Vec<f32>)>,
    /// Uniqueness in [0, 1] per item (empty until computed).
    pub uniqueness: Vec<f32>,
}

/// The items `query` selects (every item for an empty query) with their features, computing
/// the missing ones with `embedder` (`progress(done, total)`). The top-5 ImageNet classes
/// become automatic `imagenet:` tags, the statistics numeric fields, so queries can use them.
pub fn explore(
    catalog: &Catalog,
    query: &str,
    embedder: &dyn Embedder,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Exploration> {
    catalog.sync()?;
    let all = catalog.items()?;
    let wanted: Option<HashSet<u64>> = if query.trim().is_empty() {
        None
    } else {
        Some(catalog.query(query)?.into_iter().collect())
    };
    let items: Vec<(u64, ItemRecord)> = all
        .into_iter()
        .filter(|(id, _)| wanted.as_ref().is_none_or(|w| w.contains(id)))
        .collect();
    let shas: Vec<String> = items.iter().map(|(_, it)| it.sha256.clone()).collect();
    let mut by_sha: HashMap<&str, u64> = HashMap::new();
    for (id, it) in &items {
        by_sha.entry(it.sha256.as_str()).or_insert(*id);
    }
    let mut load = |sha: &str| -> Result<Vec<u8>> {
        let id = by_sha.get(sha).copied().unwrap_or_default();
        catalog
            .image_bytes(id)?
            .ok_or_else(|| EngineError::failed(format!("item {id}: its image is not in the store")))
    };
    let summary = ensure_features(
        catalog.store(),
        embedder,
        &shas,
        &mut load,
        FEATURE_BATCH,
        progress,
    )?;
    let failed: HashMap<&str, &str> = summary
        .failed
        .iter()
        .map(|(s, why)| (s.as_str(), why.as_str()))
        .collect();
    let loaded = load_features(catalog.store(), &embedder.id(), &shas)?;
    let mut ex = Exploration {
        ids: Vec::new(),
        items: Vec::new(),
        features: Vec::new(),
        left_out: Vec::new(),
        summary: summary.clone(),
        map: None,
        uniqueness: Vec::new(),
    };
    let mut computed = Vec::new();
    for ((id, item), f) in items.into_iter().zip(loaded) {
        match f {
            Some(f) => {
                if item.field("imagenet_top1").is_none() {
                    computed.push(computed_for(id, &f, embedder));
                }
                ex.ids.push(id);
                ex.items.push(item);
                ex.features.push(f);
            }
            None => {
                let why = failed
                    .get(item.sha256.as_str())
                    .copied()
                    .unwrap_or("no features");
                ex.left_out.push((id, why.to_string()));
            }
        }
    }
    if !computed.is_empty() && !catalog.store().is_read_only() {
        catalog.set_computed(&computed)?;
        // The exploration shows the items as they are now, with their new tags and fields.
        let at: HashMap<u64, usize> = ex.ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        for c in &computed {
            if let (Some(&i), Some(item)) = (at.get(&c.id), catalog.item(c.id)?) {
                ex.items[i] = item;
            }
        }
    }
    Ok(ex)
}

/// The automatic tags and fields an item gets from its features.
fn computed_for(id: u64, f: &Features, embedder: &dyn Embedder) -> Computed {
    let mut fields: BTreeMap<String, f64> = f
        .stats
        .columns()
        .into_iter()
        .filter(|(k, _)| !matches!(*k, "width" | "height"))
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    if let Some((_, p)) = f.top5.first() {
        fields.insert("imagenet_top1".into(), f64::from(*p));
    }
    Computed {
        id,
        tags: f
            .top5
            .iter()
            .map(|(c, _)| format!("imagenet:{}", embedder.class_name(*c)))
            .collect(),
        fields,
    }
}

impl Exploration {
    /// The embeddings as one row-major matrix: (values, rows, dimension).
    pub fn matrix(&self) -> (Vec<f32>, usize, usize) {
        let d = self.features.first().map_or(0, |f| f.embedding.len());
        let data = self
            .features
            .iter()
            .flat_map(|f| f.embedding.iter().copied())
            .collect();
        (data, self.features.len(), d)
    }

    fn need(&self, what: &str, min: usize) -> Result<()> {
        if self.features.len() < min {
            return Err(EngineError::failed(format!(
                "{what} needs at least {min} items with features; the selection has {}",
                self.features.len()
            )));
        }
        Ok(())
    }

    /// Computes a map of the embeddings (t-SNE's perplexity and UMAP's neighbour count are
    /// lowered for selections too small for their defaults, as the reference tools require).
    pub fn compute_map(&mut self, spec: MapSpec) -> Result<&[f32]> {
        if !(2..=3).contains(&spec.dims) {
            return Err(EngineError::failed(format!(
                "a map has 2 or 3 dimensions, not {}",
                spec.dims
            )));
        }
        // t-SNE and UMAP need 4 rows (PCA 2); one rule for all three.
        self.need("a map", 4)?;
        let (data, n, d) = self.matrix();
        let coords = match spec.method {
            MapMethod::Pca => analysis::pca(&data, n, d, spec.dims)?,
            MapMethod::Tsne => {
                let mut p = TsneParams {
                    out_dim: spec.dims,
                    seed: spec.seed,
                    ..Default::default()
                };
                p.perplexity = p.perplexity.min(((n - 1) as f64 / 3.0).max(1.0));
                analysis::tsne(&data, n, d, &p)?
            }
            MapMethod::Umap => {
                let mut p = UmapParams {
                    out_dim: spec.dims,
                    seed: spec.seed,
                    ..Default::default()
                };
                p.n_neighbors = p.n_neighbors.min(n - 1).max(2);
                analysis::umap(&data, n, d, &p)?
            }
        };
        self.map = Some((spec, coords));
        Ok(self
            .map
            .as_ref()
            .map(|(_, c)| c.as_slice())
            .unwrap_or_default())
    }

    /// Uniqueness of each item in [0, 1] (FiftyOne Brain's rule, `analysis::uniqueness`).
    pub fn compute_uniqueness(&mut self) -> Result<&[f32]> {
        self.need("uniqueness", 2)?;
        let (data, n, d) = self.matrix();
        self.uniqueness = analysis::uniqueness(&data, n, d)?;
        Ok(&self.uniqueness)
    }

    /// The `k` items most similar to item `id` (cosine distance, nearest first).
    pub fn similar(&self, id: u64, k: usize) -> Result<Vec<(u64, f32)>> {
        let i = self
            .ids
            .iter()
            .position(|&x| x == id)
            .ok_or_else(|| EngineError::failed(format!("item {id} is not in the selection")))?;
        let (data, n, d) = self.matrix();
        Ok(analysis::knn_cosine(&data, n, d, CosineQuery::Index(i), k)?
            .into_iter()
            .map(|(j, dist)| (self.ids[j], dist))
            .collect())
    }

    /// Groups of near-duplicate items: cosine distance ≤ `threshold` chains them.
    pub fn near_duplicates(&self, threshold: f32) -> Result<Vec<Vec<u64>>> {
        self.need("near-duplicates", 2)?;
        let (data, n, d) = self.matrix();
        let nd = analysis::near_duplicates(&data, n, d, threshold)?;
        Ok(nd
            .groups
            .into_iter()
            .map(|g| g.into_iter().map(|i| self.ids[i]).collect())
            .collect())
    }

    /// The analysis download: one row per item with its map coordinates, tags, fields,
    /// statistics, top-1 class and uniqueness, and the embeddings.
    pub fn to_analysis(&self) -> Analysis {
        let (embeddings, _, dim) = self.matrix();
        let dims = self.map.as_ref().map_or(0, |(s, _)| s.dims);
        let rows = self
            .ids
            .iter()
            .enumerate()
            .map(|(i, &id)| {
                let item = &self.items[i];
                let f = &self.features[i];
                let mut fields = item.fields.clone();
                for (k, v) in f.stats.columns() {
                    fields.insert(k.to_string(), v);
                }
                if let Some(u) = self.uniqueness.get(i) {
                    fields.insert("uniqueness".into(), f64::from(*u));
                }
                AnalysisRow {
                    id,
                    sha256: item.sha256.clone(),
                    source: item.source.name().to_string(),
                    path: item.name.clone(),
                    coords: self
                        .map
                        .as_ref()
                        .map(|(_, c)| c[i * dims..(i + 1) * dims].to_vec())
                        .unwrap_or_default(),
                    tags: item.all_tags().map(String::from).collect(),
                    fields,
                }
            })
            .collect();
        Analysis {
            map: self
                .map
                .as_ref()
                .map(|(s, _)| s.to_string())
                .unwrap_or_default(),
            rows,
            dim,
            embeddings,
        }
    }
}

/// How well a synthetic set covers a real one, on the feature network's embeddings.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CoverageReport {
    pub real: usize,
    pub synthetic: usize,
    /// Neighbourhood size of precision and recall (Kynkäänniemi et al.: 3).
    pub k: usize,
    pub precision: f64,
    pub recall: f64,
    pub kid: f64,
    /// KID's standard deviation over its subsets (torch-fidelity's `kernel_inception_distance_std`).
    pub kid_std: f64,
    /// KID's standard error: the standard deviation over √subsets.
    pub kid_se: f64,
    pub kid_subsets: usize,
    pub kid_subset_size: usize,
    /// Real items that no synthetic item's neighbourhood reaches: what to generate next.
    pub uncovered: Vec<u64>,
    /// Items of either set left out (no features), with why.
    pub left_out: Vec<(u64, String)>,
}

/// Precision, recall (k = 3) and KID of the items `synthetic` selects against those `real`
/// selects. KID uses torch-fidelity's defaults with the subset size capped at the smaller set.
pub fn coverage(
    catalog: &Catalog,
    real: &str,
    synthetic: &str,
    embedder: &dyn Embedder,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<CoverageReport> {
    const K: usize = 3;
    let r = explore(catalog, real, embedder, progress)?;
    let s = explore(catalog, synthetic, embedder, progress)?;
    for (set, q) in [(&r, real), (&s, synthetic)] {
        if set.features.len() <= K {
            return Err(EngineError::failed(format!(
                "coverage: the query \"{q}\" selects {} item(s) with features; at least {} are needed",
                set.features.len(),
                K + 1
            )));
        }
    }
    let (rd, _, d) = r.matrix();
    let (sd, _, sd_dim) = s.matrix();
    if d != sd_dim {
        return Err(EngineError::failed(
            "coverage: the two sets' embeddings differ in size",
        ));
    }
    let pr = analysis::precision_recall_detail(&rd, &sd, d, K)?;
    let defaults = KidParams::default();
    let params = KidParams {
        subset_size: defaults
            .subset_size
            .min(r.features.len())
            .min(s.features.len()),
        ..defaults
    };
    let (kid, kid_std) = analysis::kid(&rd, &sd, d, &params)?;
    let mut left_out = r.left_out.clone();
    left_out.extend(s.left_out.iter().cloned());
    Ok(CoverageReport {
        real: r.features.len(),
        synthetic: s.features.len(),
        k: K,
        precision: pr.precision,
        recall: pr.recall,
        kid,
        kid_std,
        kid_se: kid_std / (params.subsets as f64).sqrt(),
        kid_subsets: params.subsets,
        kid_subset_size: params.subset_size,
        uncovered: pr.uncovered.into_iter().map(|i| r.ids[i]).collect(),
        left_out,
    })
}
