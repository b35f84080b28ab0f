//! [`Catalog`]: the one entry point to items, tags and queries for the CLI, the studio and the
//! tests.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::index::Index;
use super::items::{generated_item, run_doc, RunDocs};
use super::query::{Expr, Query};
use super::{check_tag, norm_tag, DatasetRecord, ItemRecord, ItemSource};
use crate::error::{EngineError, Result};
use crate::store::Store;

/// What [`Catalog::sync`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Outputs itemised.
    pub added: usize,
    /// Items removed because their output was deleted.
    pub removed: usize,
}

/// Computed values for one item ([`Catalog::set_computed`]): automatic tags that replace the
/// item's automatic tags of the same keys (e.g. `imagenet:…` top-5 classes), and numeric
/// fields set on it (e.g. `score`, `uniqueness`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Computed {
    pub id: u64,
    pub tags: Vec<String>,
    pub fields: std::collections::BTreeMap<String, f64>,
}

/// Warm indexes, one per store file, shared by every [`Catalog`] of the process.
static WARM: Mutex<Option<HashMap<PathBuf, Arc<Index>>>> = Mutex::new(None);

/// The catalogue of one store: items, tags, datasets and queries
/// (docs/ARCHITECTURE.md §13). Cheap to make: the indexes it queries are loaded once per
/// process and store, and reloaded only when the store's catalogue changed.
pub struct Catalog<'s> {
    store: &'s Store,
}

impl<'s> Catalog<'s> {
    pub fn new(store: &'s Store) -> Catalog<'s> {
        Catalog { store }
    }

    pub fn store(&self) -> &'s Store {
        self.store
    }

    /// Itemises the outputs not yet itemised and drops the items of deleted outputs, in one
    /// transaction. Idempotent; one read transaction when nothing is new. A read-only store
    /// is left as it is.
    pub fn sync(&self) -> Result<SyncReport> {
        if self.store.is_read_only() {
            return Ok(SyncReport::default());
        }
        let (new, gone) = self.store.unsynced_outputs()?;
        if new.is_empty() && gone.is_empty() {
            return Ok(SyncReport::default());
        }
        let outputs: HashMap<u64, _> = self.store.outputs(None)?.into_iter().collect();
        let mut runs: RunDocs = HashMap::new();
        let mut tx = self.store.catalog_tx()?;
        let mut report = SyncReport::default();
        for id in gone {
            tx.remove_item(id)?;
            report.removed += 1;
        }
        for out_id in new {
            // Another process may have itemised it since the read above.
            let Some(rec) = outputs.get(&out_id) else {
                continue;
            };
            if tx.output_item(out_id)?.is_some() {
                continue;
            }
            let run = match runs.get(&rec.run_id) {
                Some(r) => r,
                None => {
                    let r = self.store.run(rec.run_id)?.map(run_doc);
                    runs.entry(rec.run_id).or_insert(r)
                }
            };
            let png = self.store.output_png(out_id)?;
            let mask = self.store.output_mask_png(out_id)?;
            let item = generated_item(out_id, rec, png.as_deref(), mask.as_deref(), run.as_ref());
            tx.add_item(&item, None)?;
            report.added += 1;
        }
        tx.commit()?;
        Ok(report)
    }

    /// The warm index of this store, reloaded when the catalogue changed since it was built.
    pub fn index(&self) -> Result<Arc<Index>> {
        let key = self.store.path().to_path_buf();
        let generation = self.store.catalog_generation()?;
        {
            let warm = WARM
                .lock()
                .map_err(|_| EngineError::failed("index cache poisoned"))?;
            if let Some(ix) = warm.as_ref().and_then(|m| m.get(&key)) {
                if ix.generation() == generation {
                    return Ok(ix.clone());
                }
            }
        }
        let ix = Arc::new(Index::build(self.store.raw_index()?));
        let mut warm = WARM
            .lock()
            .map_err(|_| EngineError::failed("index cache poisoned"))?;
        warm.get_or_insert_with(HashMap::new)
            .insert(key, ix.clone());
        Ok(ix)
    }

    /// The ids of the items a query matches, ascending. Itemises new outputs first (a
    /// writable store); a parse error names the position.
    pub fn query(&self, q: &str) -> Result<Vec<u64>> {
        let e = Query::parse(q)?;
        self.sync()?;
        self.query_expr(&e)
    }

    /// [`Catalog::query`] for a parsed expression, without syncing.
    pub fn query_expr(&self, e: &Expr) -> Result<Vec<u64>> {
        Ok(self.index()?.eval(e))
    }

    /// Every item with its tags and fields, by id (for listing, colouring and feature
    /// columns).
    pub fn items(&self) -> Result<Vec<(u64, ItemRecord)>> {
        self.store.items()
    }

    pub fn item(&self, id: u64) -> Result<Option<ItemRecord>> {
        self.store.item(id)
    }

    /// The image file bytes of an item (the output's PNG, or the imported file as it was).
    pub fn image_bytes(&self, id: u64) -> Result<Option<Vec<u8>>> {
        let Some(item) = self.store.item(id)? else {
            return Ok(None);
        };
        match (item.source, item.output_id) {
            (ItemSource::Generated, Some(out)) => self.store.output_png(out),
            _ => self.store.item_blob(&item.sha256),
        }
    }

    pub fn datasets(&self) -> Result<Vec<DatasetRecord>> {
        self.store.datasets()
    }

    /// Sets computed automatic tags and fields on items, in one transaction (the indexes
    /// follow): each item's automatic tags with a key that `tags` uses are replaced, its
    /// `fields` overwritten. Non-finite values are left out. Unknown ids are an error naming
    /// them (nothing is written).
    pub fn set_computed(&self, updates: &[Computed]) -> Result<()> {
        let mut tx = self.store.catalog_tx()?;
        for u in updates {
            let Some(old) = tx.item(u.id)? else {
                return Err(EngineError::failed(format!(
                    "no such item: {} (nothing was written)",
                    u.id
                )));
            };
            for t in &u.tags {
                check_tag(t).map_err(EngineError::Failed)?;
            }
            let key = |t: &str| norm_tag(t.split_once(':').map_or(t, |(k, _)| k));
            let keys: Vec<String> = u.tags.iter().map(|t| key(t)).collect();
            let mut new = old.clone();
            new.auto_tags.retain(|t| !keys.contains(&key(t)));
            new.auto_tags
                .extend(u.tags.iter().map(|t| t.trim().to_string()));
            for (k, v) in &u.fields {
                if v.is_finite() {
                    new.fields.insert(k.clone(), *v);
                }
            }
            tx.update_item(u.id, &old, &new)?;
        }
        tx.commit()
    }

    /// Adds a manual tag to items; returns how many changed. Unknown ids are an error naming
    /// them (nothing is written).
    pub fn add_tag(&self, ids: &[u64], tag: &str) -> Result<usize> {
        self.retag(ids, tag, true)
    }

    /// Removes a manual tag from items; returns how many changed (automatic tags stay).
    pub fn remove_tag(&self, ids: &[u64], tag: &str) -> Result<usize> {
        self.retag(ids, tag, false)
    }

    fn retag(&self, ids: &[u64], tag: &str, add: bool) -> Result<usize> {
        check_tag(tag).map_err(EngineError::Failed)?;
        let tag = tag.trim();
        let want = norm_tag(tag);
        let mut tx = self.store.catalog_tx()?;
        let mut changed = 0;
        let mut missing = Vec::new();
        for &id in ids {
            let Some(old) = tx.item(id)? else {
                missing.push(id.to_string());
                continue;
            };
            let has = old.tags.iter().any(|t| norm_tag(t) == want);
            if has == add {
                continue;
            }
            let mut new = old.clone();
            if add {
                new.tags.push(tag.to_string());
            } else {
                new.tags.retain(|t| norm_tag(t) != want);
            }
            tx.update_item(id, &old, &new)?;
            changed += 1;
        }
        if !missing.is_empty() {
            return Err(EngineError::failed(format!(
                "no such item: {} (nothing was tagged)",
                missing.join(", ")
            )));
        }
        if changed > 0 {
            tx.commit()?;
        }
        Ok(changed)
    }
}
