//! What the Explore window shows ([`ExploreView`]: items, map coordinates, columns, tags,
//! coverage) and what it asks for ([`ExploreCommand`]). The app builds the view from the
//! catalogue and the maps and carries out the commands; the window runs no engine code.

use std::path::PathBuf;

use engine::dataset::Format;

/// A map projection: the engine's list (`engine::explore::MapMethod`), so the window offers
/// exactly what the engine computes.
pub use engine::explore::MapMethod;

/// One value per item, for colouring and the item inspector.
#[derive(Clone, Debug, PartialEq)]
pub enum Column {
    /// Numbers (a field or a score); NaN = missing. Coloured with a ramp.
    Number(Vec<f32>),
    /// Categories (a tag key's values): `codes[i]` indexes `names`; `None` = missing.
    /// Coloured with a categorical palette.
    Category {
        names: Vec<String>,
        codes: Vec<Option<u32>>,
    },
}

impl Column {
    /// A category column from per-item values; categories are ordered by count (most
    /// frequent first, ties by name) so the palette's first colours go to the largest groups.
    pub fn category<S: AsRef<str>>(values: &[Option<S>]) -> Column {
        let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
        for v in values.iter().flatten() {
            *counts.entry(v.as_ref()).or_default() += 1;
        }
        let mut names: Vec<(&str, usize)> = counts.into_iter().collect();
        names.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let code: std::collections::HashMap<&str, u32> = names
            .iter()
            .enumerate()
            .map(|(i, (n, _))| (*n, i as u32))
            .collect();
        let codes = values
            .iter()
            .map(|v| v.as_ref().and_then(|s| code.get(s.as_ref()).copied()))
            .collect();
        Column::Category {
            names: names.into_iter().map(|(n, _)| n.to_string()).collect(),
            codes,
        }
    }

    /// The number of items the column covers.
    pub fn len(&self) -> usize {
        match self {
            Column::Number(v) => v.len(),
            Column::Category { codes, .. } => codes.len(),
        }
    }

    /// True when the column covers no item.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Item `i`'s value as text (`None` when missing).
    pub fn text(&self, i: usize) -> Option<String> {
        match self {
            Column::Number(v) => v.get(i).filter(|x| !x.is_nan()).map(|x| format_number(*x)),
            Column::Category { names, codes } => codes
                .get(i)
                .copied()
                .flatten()
                .and_then(|c| names.get(c as usize).cloned()),
        }
    }
}

/// A number as the window shows it: integers without decimals, others with 4 significant
/// digits.
pub fn format_number(x: f32) -> String {
    if x.fract() == 0.0 && x.abs() < 1e9 {
        format!("{x:.0}")
    } else if x.abs() >= 1000.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.4}")
    }
}

/// Coverage of a real set by a synthetic one, as the window shows it (computed by the app).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CoverageReadout {
    /// The two queries that chose the sets.
    pub real_query: String,
    pub synthetic_query: String,
    pub real_count: usize,
    pub synthetic_count: usize,
    /// k of the k-NN precision and recall (Kynkäänniemi et al.).
    pub k: usize,
    pub precision: f64,
    pub recall: f64,
    /// Kernel inception distance: mean and standard error over the subsets.
    pub kid: f64,
    pub kid_se: f64,
    /// Real items that no synthetic item covers.
    pub uncovered: Vec<u64>,
}

/// Everything the Explore window shows. Every per-item vector has `ids.len()` entries
/// (`names` and `tags` may be empty: then the id is shown and no tags).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExploreView {
    /// Catalogue item ids.
    pub ids: Vec<u64>,
    /// A short name per item (file name or output name).
    pub names: Vec<String>,
    /// 2D map coordinates.
    pub xy: Vec<[f32; 2]>,
    /// 3D map coordinates, when computed.
    pub xyz: Option<Vec<[f32; 3]>>,
    /// The method that made the coordinates.
    pub method: MapMethod,
    /// Fields, scores and tag keys, one value per item, by name (colour-by and the inspector).
    pub columns: Vec<(String, Column)>,
    /// Every tag of every item (`key:value` and free words).
    pub tags: Vec<Vec<String>>,
    /// The last coverage result, if any.
    pub coverage: Option<CoverageReadout>,
    /// A status line (what the view holds, or what the last action found).
    pub note: String,
    /// Synthetic data from [`ExploreView::demo`] (no store behind the ids).
    pub demo: bool,
}

impl ExploreView {
    /// The number of items.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when there is no item.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Item `i`'s name (its id when no name is given).
    pub fn name(&self, i: usize) -> String {
        match self.names.get(i) {
            Some(n) if !n.is_empty() => n.clone(),
            _ => format!("#{}", self.ids.get(i).copied().unwrap_or_default()),
        }
    }

    /// Item `i`'s tags.
    pub fn tags_of(&self, i: usize) -> &[String] {
        self.tags.get(i).map(Vec::as_slice).unwrap_or(&[])
    }

    /// True when item `i` is a generated output (it has a recipe to open).
    pub fn is_generated(&self, i: usize) -> bool {
        self.tags_of(i).iter().any(|t| t == "source:generated")
    }

    /// The first inconsistency (a per-item vector of the wrong length), if any.
    pub fn check(&self) -> Result<(), String> {
        let n = self.ids.len();
        let mut bad = Vec::new();
        if self.xy.len() != n {
            bad.push(format!("xy has {}", self.xy.len()));
        }
        if !self.names.is_empty() && self.names.len() != n {
            bad.push(format!("names has {}", self.names.len()));
        }
        if !self.tags.is_empty() && self.tags.len() != n {
            bad.push(format!("tags has {}", self.tags.len()));
        }
        if let Some(z) = &self.xyz {
            if z.len() != n {
                bad.push(format!("xyz has {}", z.len()));
            }
        }
        for (name, c) in &self.columns {
            if c.len() != n {
                bad.push(format!("column {name} has {}", c.len()));
            }
        }
        if bad.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "the explore view has {n} items but {}",
                bad.join(", ")
            ))
        }
    }

    /// A synthetic view of `n` items in a few clusters (deterministic for `seed`): generated and
    /// imported items, a defect label, an area field and a score. Shown until the catalogue is
    /// wired in, and used by tests and the frame benchmark.
    pub fn demo(n: usize, seed: u64) -> ExploreView {
        const LABELS: [&str; 5] = ["scratch", "dent", "stain", "crack", "good"];
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move || {
            // splitmix64: demo data only.
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f32 / (1u64 << 53) as f32
        };
        fn gauss(rng: &mut impl FnMut() -> f32) -> f32 {
            let (u, v) = (rng().max(1e-7), rng());
            (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
        }
        let mut v = ExploreView {
            method: MapMethod::Pca,
            note: format!("demo data: {n} synthetic items (the catalogue is not connected)"),
            demo: true,
            ..Default::default()
        };
        let mut labels = Vec::with_capacity(n);
        let mut sources = Vec::with_capacity(n);
        let mut area = Vec::with_capacity(n);
        let mut score = Vec::with_capacity(n);
        let mut xyz = Vec::with_capacity(n);
        for i in 0..n {
            let c = (next() * LABELS.len() as f32) as usize % LABELS.len();
            let generated = next() < 0.6;
            let angle = c as f32 * std::f32::consts::TAU / LABELS.len() as f32;
            let spread = if generated { 0.9 } else { 0.6 };
            let x = 4.0 * angle.cos() + spread * gauss(&mut next);
            let y = 4.0 * angle.sin() + spread * gauss(&mut next);
            let z = (c as f32 - 2.0) + 0.7 * gauss(&mut next) + if generated { 0.8 } else { 0.0 };
            v.ids.push(i as u64 + 1);
            v.names.push(format!(
                "{}-{}-{i:05}.png",
                if generated { "gen" } else { "photo" },
                LABELS[c]
            ));
            v.xy.push([x, y]);
            xyz.push([x, y, z]);
            labels.push(Some(LABELS[c]));
            sources.push(Some(if generated { "generated" } else { "imported" }));
            area.push(if c == 4 {
                0.0
            } else {
                (200.0 + 1500.0 * next()).round()
            });
            score.push((x * x + y * y).sqrt() / 6.0);
            v.tags.push(vec![
                format!(
                    "source:{}",
                    if generated { "generated" } else { "imported" }
                ),
                format!("label:{}", LABELS[c]),
            ]);
        }
        v.xyz = Some(xyz);
        v.columns = vec![
            ("label".into(), Column::category(&labels)),
            ("source".into(), Column::category(&sources)),
            ("area".into(), Column::Number(area)),
            ("score".into(), Column::Number(score)),
        ];
        v
    }
}

/// What the Explore window asks the app to do. `ids` are catalogue item ids.
#[derive(Clone, Debug, PartialEq)]
pub enum ExploreCommand {
    /// Run a query (the catalogue's query language); the app shows its result as the view
    /// or the selection.
    Query(String),
    /// Add a tag to these items.
    Tag { ids: Vec<u64>, tag: String },
    /// Remove a tag from these items.
    Untag { ids: Vec<u64>, tag: String },
    /// Bookmark these items.
    Bookmark(Vec<u64>),
    /// Open the recipe of a generated item in the graph editor.
    OpenRecipe(u64),
    /// Show a folder picker for the export folder (the app writes the answer into the panel
    /// with [`super::ExplorePanel::set_export_dir`]; no answer leaves the field as it is).
    PickExportDir,
    /// Write these items as a dataset in `format` under `dir`.
    ExportSelection {
        ids: Vec<u64>,
        format: Format,
        dir: PathBuf,
    },
    /// The `k` nearest items to `id` by cosine similarity of the embeddings.
    FindSimilar { id: u64, k: usize },
    /// Near-duplicate pairs at cosine similarity ≥ `threshold`.
    NearDuplicates { threshold: f32 },
    /// Rank items by uniqueness (outliers first).
    RankUniqueness,
    /// Compute the map again with this method, in 2 or 3 dimensions.
    Recompute { method: MapMethod, dims: u8 },
    /// Coverage of the real set by the synthetic one (both chosen by a query).
    Coverage { real: String, synthetic: String },
    /// Thumbnails the window wants (hovered or in the visible part of the grid); the app puts
    /// them in with [`super::ExplorePanel::insert_thumbnail`].
    WantThumbnails(Vec<u64>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn category_columns_order_by_count_and_keep_missing() {
        let c = Column::category(&[Some("b"), Some("a"), None, Some("a")]);
        assert_eq!(
            c,
            Column::Category {
                names: vec!["a".into(), "b".into()],
                codes: vec![Some(1), Some(0), None, Some(0)],
            }
        );
        assert_eq!(c.text(0).as_deref(), Some("b"));
        assert_eq!(c.text(2), None);
    }

    #[test]
    fn the_demo_view_is_consistent_and_deterministic() {
        let v = ExploreView::demo(300, 7);
        v.check().unwrap();
        assert_eq!(v, ExploreView::demo(300, 7));
        assert_ne!(v.xy, ExploreView::demo(300, 8).xy);
        let mut bad = v.clone();
        bad.xy.pop();
        assert!(bad.check().unwrap_err().contains("xy has 299"));
    }
}
