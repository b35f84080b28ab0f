//! Planning a batch: the work items of variations × folder items × sweep cells, sharded,
//! computed one at a time from their index (never as a list of all items, so the largest batch
//! costs no more memory than the smallest).

use std::path::{Path, PathBuf};

use nodes::{GraphDoc, ParamKind, ParamValue};
use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};
use crate::exec::resolve_path;

/// The most work items one batch may have (over all shards).
pub const MAX_WORK_ITEMS: u64 = 100_000_000;

/// One parameter set to a value for a work item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Override {
    pub node: String,
    pub param: String,
    pub value: ParamValue,
}

/// A parameter swept over several values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sweep {
    pub node: String,
    pub param: String,
    pub values: Vec<ParamValue>,
}

/// One execution of the graph within a batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkItem {
    /// `k` in the module docs: the item's index over the whole (unsharded) batch.
    pub index: u64,
    pub seed: u64,
    pub overrides: Vec<Override>,
}

/// What to plan: the graph, its folder, and the CLI's `--count/--seed/--sweep/--shard`.
pub struct PlanSpec<'a> {
    pub doc: &'a GraphDoc,
    pub base_dir: &'a Path,
    pub count: u64,
    pub seed: u64,
    pub sweeps: &'a [Sweep],
    /// `(I, N)`: run items with `k mod N == I`.
    pub shard: Option<(u32, u32)>,
}

/// A folder input: the node, its parameter, and the files it expands to.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct FolderInput {
    node: String,
    param: String,
    files: Vec<PathBuf>,
}

/// The work items of a batch (this shard's), each computed from its index when asked for.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    items: Items,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
enum Items {
    /// Items given one by one (tests, benchmarks).
    Listed(Vec<WorkItem>),
    /// The product variations × folder items × sweep cells, filtered to a shard.
    Grid(Box<Grid>),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Grid {
    base_dir: PathBuf,
    seed: u64,
    folders: Vec<FolderInput>,
    sweeps: Vec<Sweep>,
    /// Folder combinations (F) and sweep cells (S).
    f_count: u64,
    s_count: u64,
    total: u64,
    shard: (u64, u64),
}

impl Grid {
    /// Item `k` of the whole batch (module docs of [`crate::run`]: `k = (v · F + f) · S + s`).
    fn item(&self, k: u64) -> WorkItem {
        let (v, rest) = (
            k / (self.f_count * self.s_count),
            k % (self.f_count * self.s_count),
        );
        let (mut f, mut s) = (rest / self.s_count, rest % self.s_count);
        // Mixed-radix decode, last axis varying fastest.
        let mut folder_idx = vec![0usize; self.folders.len()];
        for (j, input) in self.folders.iter().enumerate().rev() {
            let n = input.files.len() as u64;
            folder_idx[j] = (f % n) as usize;
            f /= n;
        }
        let mut sweep_idx = vec![0usize; self.sweeps.len()];
        for (j, sw) in self.sweeps.iter().enumerate().rev() {
            let n = sw.values.len() as u64;
            sweep_idx[j] = (s % n) as usize;
            s /= n;
        }
        let folders = self.folders.iter().zip(&folder_idx).map(|(input, &i)| {
            let file = &input.files[i];
            Override {
                node: input.node.clone(),
                param: input.param.clone(),
                value: ParamValue::Text(
                    // Relative to the graph's folder again, as the executor resolves it.
                    file.strip_prefix(&self.base_dir)
                        .unwrap_or(file)
                        .to_string_lossy()
                        .into_owned(),
                ),
            }
        });
        let sweeps = self.sweeps.iter().zip(&sweep_idx).map(|(sw, &i)| Override {
            node: sw.node.clone(),
            param: sw.param.clone(),
            value: sw.values[i].clone(),
        });
        WorkItem {
            index: k,
            seed: self.seed.wrapping_add(v),
            overrides: folders.chain(sweeps).collect(),
        }
    }

    /// Items of this shard.
    fn len(&self) -> u64 {
        let (i, n) = self.shard;
        self.total / n + u64::from(self.total % n > i)
    }
}

impl Plan {
    /// Work items in this plan (this shard's).
    pub fn len(&self) -> usize {
        match &self.items {
            Items::Listed(v) => v.len(),
            Items::Grid(g) => g.len() as usize,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `j`-th work item of this plan.
    pub fn get(&self, j: usize) -> Option<WorkItem> {
        match &self.items {
            Items::Listed(v) => v.get(j).cloned(),
            Items::Grid(g) => {
                let (i, n) = g.shard;
                let k = (j as u64).checked_mul(n)?.checked_add(i)?;
                (k < g.total).then(|| g.item(k))
            }
        }
    }

    /// Whether `seed` is the seed of some work item of the whole batch (any shard): a
    /// variation's seed (base seed + v), or a listed item's. Retry seeds avoid these
    /// ([`super::retry::retry_seed`]).
    pub fn is_item_seed(&self, seed: u64) -> bool {
        match &self.items {
            Items::Listed(v) => v.iter().any(|i| i.seed == seed),
            Items::Grid(g) => seed.wrapping_sub(g.seed) < g.total / (g.f_count * g.s_count),
        }
    }

    /// The work items in order, each made when reached.
    pub fn iter(&self) -> impl Iterator<Item = WorkItem> + '_ {
        (0..self.len()).filter_map(|j| self.get(j))
    }
}

impl FromIterator<WorkItem> for Plan {
    fn from_iter<T: IntoIterator<Item = WorkItem>>(iter: T) -> Self {
        Plan {
            items: Items::Listed(iter.into_iter().collect()),
        }
    }
}

/// Image files in a folder input, sorted by name.
fn folder_files(dir: &Path, extensions: &[&str]) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| extensions.iter().any(|x| x.eq_ignore_ascii_case(e)))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Plans a batch (see the module docs of [`crate::run`] for the order). Returns this shard's
/// items, computed lazily, and the total count over all shards.
pub fn plan(spec: &PlanSpec) -> Result<(Plan, u64)> {
    let catalogue = nodes::Catalogue::builtin();
    if spec.count == 0 {
        return Err(EngineError::Plan("--count must be at least 1".into()));
    }
    let shard = match spec.shard {
        Some((i, n)) if n == 0 || i >= n => {
            return Err(EngineError::Plan(format!(
                "--shard {i}/{n}: need 0 <= I < N"
            )))
        }
        Some((i, n)) => (u64::from(i), u64::from(n)),
        None => (0, 1),
    };
    // Folder inputs, in node-id order (inner nodes of subgraphs by their path).
    let flat = if nodes::subgraph::needs_flatten(spec.doc) {
        Some(nodes::subgraph::flatten(spec.doc, &catalogue).map_err(EngineError::Invalid)?)
    } else {
        None
    };
    let doc = flat.as_ref().map_or(spec.doc, |f| &f.doc);
    let mut folders = Vec::new();
    for (id, node) in &doc.nodes {
        let Some(kind) = catalogue.get(&node.kind) else {
            continue;
        };
        for p in kind.params {
            let ParamKind::InputFile { extensions } = p.kind else {
                continue;
            };
            let Some(value) = node.params.get(p.name).and_then(|v| v.as_str()) else {
                continue;
            };
            if value.is_empty() || value.starts_with("asset:") {
                continue;
            }
            let path = resolve_path(spec.base_dir, value);
            if path.is_dir() {
                let files =
                    folder_files(&path, extensions).map_err(|e| EngineError::io(&path, e))?;
                if files.is_empty() {
                    return Err(EngineError::Plan(format!(
                        "node \"{id}\" param \"{}\": folder {} holds no {} files",
                        p.name,
                        path.display(),
                        extensions.join("/")
                    )));
                }
                folders.push(FolderInput {
                    node: id.clone(),
                    param: p.name.to_string(),
                    files,
                });
            }
        }
    }
    for s in spec.sweeps {
        if s.values.is_empty() {
            return Err(EngineError::Plan(format!(
                "--sweep {}.{}: no values",
                s.node, s.param
            )));
        }
    }
    let too_many = || {
        EngineError::Plan(format!(
            "the batch has more than {MAX_WORK_ITEMS} work items"
        ))
    };
    let product = |mut lens: Box<dyn Iterator<Item = usize> + '_>| {
        lens.try_fold(1u64, |acc, n| acc.checked_mul(n as u64))
            .filter(|t| *t <= MAX_WORK_ITEMS)
            .ok_or_else(too_many)
    };
    let f_count = product(Box::new(folders.iter().map(|f| f.files.len())))?;
    let s_count = product(Box::new(spec.sweeps.iter().map(|s| s.values.len())))?;
    let total = spec
        .count
        .checked_mul(f_count)
        .and_then(|t| t.checked_mul(s_count))
        .filter(|t| *t <= MAX_WORK_ITEMS)
        .ok_or_else(too_many)?;
    let grid = Grid {
        base_dir: spec.base_dir.to_path_buf(),
        seed: spec.seed,
        folders,
        sweeps: spec.sweeps.to_vec(),
        f_count,
        s_count,
        total,
        shard,
    };
    Ok((
        Plan {
            items: Items::Grid(Box::new(grid)),
        },
        total,
    ))
}

/// Sets a parameter in a document, checking that the node exists. The node may be a subgraph
/// node (its exposed parameter) or an inner node named by its path (a folder input inside a
/// subgraph): see [`nodes::subgraph::set_param`].
pub fn apply_override(doc: &mut GraphDoc, o: &Override) -> Result<()> {
    if !o.node.contains(nodes::subgraph::PATH_SEP) && !doc.nodes.contains_key(&o.node) {
        return Err(EngineError::Plan(format!(
            "no node \"{}\" in the graph",
            o.node
        )));
    }
    nodes::subgraph::set_param(doc, &o.node, &o.param, o.value.clone())
        .map_err(|e| EngineError::Plan(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> GraphDoc {
        GraphDoc::from_json(
            r#"{"format": "defect-studio/graph", "version": 1,
                "nodes": {"t": {"kind": "Texture", "version": 1}}, "links": []}"#,
        )
        .unwrap()
    }

    fn sweep(n: usize) -> Sweep {
        Sweep {
            node: "t".into(),
            param: "scale".into(),
            values: (0..n).map(|i| ParamValue::Float(i as f64)).collect(),
        }
    }

    #[test]
    fn the_largest_batch_is_planned_without_listing_it() {
        let d = doc();
        let spec = PlanSpec {
            doc: &d,
            base_dir: Path::new("."),
            count: MAX_WORK_ITEMS,
            seed: 5,
            sweeps: &[],
            shard: None,
        };
        let (p, total) = plan(&spec).unwrap();
        assert_eq!(total, MAX_WORK_ITEMS);
        assert_eq!(p.len() as u64, MAX_WORK_ITEMS);
        let last = p.get(p.len() - 1).unwrap();
        assert_eq!(
            (last.index, last.seed),
            (MAX_WORK_ITEMS - 1, 5 + MAX_WORK_ITEMS - 1)
        );
        assert!(p.get(p.len()).is_none());
        let over = PlanSpec {
            count: MAX_WORK_ITEMS + 1,
            ..spec
        };
        assert!(plan(&over).is_err());
    }

    #[test]
    fn shards_partition_the_items_in_order() {
        let d = doc();
        let sweeps = [sweep(3), sweep(2)];
        let all: Vec<WorkItem> = plan(&PlanSpec {
            doc: &d,
            base_dir: Path::new("."),
            count: 7,
            seed: 0,
            sweeps: &sweeps,
            shard: None,
        })
        .unwrap()
        .0
        .iter()
        .collect();
        assert_eq!(all.len(), 42);
        assert!(all.iter().enumerate().all(|(k, w)| w.index == k as u64));
        // k = v·6 + s: the last sweep varies fastest.
        assert_eq!(all[7].seed, 1);
        assert_eq!(all[7].overrides[0].value, ParamValue::Float(0.0));
        assert_eq!(all[7].overrides[1].value, ParamValue::Float(1.0));
        for n in [1u32, 4, 5, 42, 50] {
            let mut merged = Vec::new();
            for i in 0..n {
                let (p, total) = plan(&PlanSpec {
                    doc: &d,
                    base_dir: Path::new("."),
                    count: 7,
                    seed: 0,
                    sweeps: &sweeps,
                    shard: Some((i, n)),
                })
                .unwrap();
                assert_eq!(total, 42);
                let items: Vec<WorkItem> = p.iter().collect();
                assert_eq!(items.len(), p.len());
                assert!(items.iter().all(|w| w.index % u64::from(n) == u64::from(i)));
                merged.extend(items);
            }
            merged.sort_by_key(|w| w.index);
            assert_eq!(merged, all, "{n} shards");
        }
    }
}
