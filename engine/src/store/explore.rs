//! The explorer's tables (docs/ARCHITECTURE.md §13): items, imported image bytes by sha256,
//! which outputs are itemised, datasets, and the indexes (a posting list per tag, a column per
//! numeric field) that [`crate::explore::Index`] loads. Every write goes through one
//! [`CatalogTx`], which updates the records and the indexes in the same redb transaction and
//! bumps the catalogue's generation (so warm indexes in other processes know to reload).

use std::collections::{BTreeMap, BTreeSet};

use redb::{ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction};

use super::{json, read_table, Store, META};
use crate::error::Result;
use crate::explore::{norm_tag, DatasetRecord, ItemRecord, ItemSource};

/// Items by item id (JSON [`ItemRecord`]).
pub(super) const ITEMS: TableDefinition<u64, &[u8]> = TableDefinition::new("items");
/// Imported images' bytes, stored once per sha256 (hex).
pub(super) const ITEM_BLOBS: TableDefinition<&str, &[u8]> = TableDefinition::new("item_blobs");
/// Output id → item id, for every itemised output.
pub(super) const ITEM_OUTPUTS: TableDefinition<u64, u64> = TableDefinition::new("item_outputs");
/// Datasets by name (JSON [`DatasetRecord`]).
pub(super) const DATASETS: TableDefinition<&str, &[u8]> = TableDefinition::new("datasets");
/// Posting lists: normalised tag → sorted item ids (u64 little-endian).
pub(super) const ITEM_TAGS: TableDefinition<&str, &[u8]> = TableDefinition::new("item_tags");
/// Numeric columns: normalised field name → (item id u64, value f64) pairs, little-endian,
/// sorted by id.
pub(super) const ITEM_FIELDS: TableDefinition<&str, &[u8]> = TableDefinition::new("item_fields");

/// The `meta` key of the catalogue's generation, bumped by every catalogue write.
const GENERATION: &str = "explore.generation";

/// The explorer's tables, for [`Store::init_schema`].
pub(super) fn open_tables(tx: &WriteTransaction) -> std::result::Result<(), redb::TableError> {
    tx.open_table(ITEMS)?;
    tx.open_table(ITEM_BLOBS)?;
    tx.open_table(ITEM_OUTPUTS)?;
    tx.open_table(DATASETS)?;
    tx.open_table(ITEM_TAGS)?;
    tx.open_table(ITEM_FIELDS)?;
    Ok(())
}

fn ids_from(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
        .collect()
}

fn ids_to(ids: &BTreeSet<u64>) -> Vec<u8> {
    ids.iter().flat_map(|i| i.to_le_bytes()).collect()
}

fn pairs_from(bytes: &[u8]) -> Vec<(u64, f64)> {
    bytes
        .chunks_exact(16)
        .map(|c| {
            (
                u64::from_le_bytes(c[..8].try_into().unwrap_or_default()),
                f64::from_le_bytes(c[8..].try_into().unwrap_or_default()),
            )
        })
        .collect()
}

fn pairs_to(pairs: &BTreeMap<u64, f64>) -> Vec<u8> {
    pairs
        .iter()
        .flat_map(|(i, v)| i.to_le_bytes().into_iter().chain(v.to_le_bytes()))
        .collect()
}

/// The indexes as stored: every item id, posting lists and numeric columns, and the
/// generation they belong to.
pub struct RawIndex {
    pub generation: u64,
    pub ids: Vec<u64>,
    pub tags: Vec<(String, Vec<u64>)>,
    pub fields: Vec<(String, Vec<(u64, f64)>)>,
}

/// Changes to posting lists and columns, merged into the stored ones at commit.
#[derive(Default)]
struct Delta {
    tags_add: BTreeMap<String, BTreeSet<u64>>,
    tags_del: BTreeMap<String, BTreeSet<u64>>,
    fields_set: BTreeMap<String, BTreeMap<u64, f64>>,
    fields_del: BTreeMap<String, BTreeSet<u64>>,
}

/// One catalogue write: items, blobs, datasets and the indexes, committed together (or not
/// at all: dropping it without [`CatalogTx::commit`] writes nothing).
pub struct CatalogTx<'s> {
    store: &'s Store,
    tx: WriteTransaction,
    next_id: u64,
    delta: Delta,
}

impl Store {
    /// Starts a catalogue write (waits for other writers, as every write does).
    pub fn catalog_tx(&self) -> Result<CatalogTx<'_>> {
        let tx = self.begin_write()?;
        let next_id = {
            let t = tx.open_table(ITEMS).map_err(|e| self.err(e))?;
            let last = t.last().map_err(|e| self.err(e))?;
            last.map(|(k, _)| k.value() + 1).unwrap_or(1)
        };
        Ok(CatalogTx {
            store: self,
            tx,
            next_id,
            delta: Delta::default(),
        })
    }

    /// The catalogue's generation: changes whenever items, tags or datasets change.
    pub fn catalog_generation(&self) -> Result<u64> {
        let tx = self.begin_read()?;
        let Some(meta) = read_table(&tx, META).map_err(|e| self.err(e))? else {
            return Ok(0);
        };
        let v = meta.get(GENERATION).map_err(|e| self.err(e))?;
        Ok(v.map(|v| v.value()).unwrap_or(0))
    }

    /// Every item, by id.
    pub fn items(&self) -> Result<Vec<(u64, ItemRecord)>> {
        let tx = self.begin_read()?;
        let Some(t) = read_table(&tx, ITEMS).map_err(|e| self.err(e))? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for row in t.iter().map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            out.push((k.value(), self.decode(v.value(), "item")?));
        }
        Ok(out)
    }

    /// One item's record.
    pub fn item(&self, id: u64) -> Result<Option<ItemRecord>> {
        let tx = self.begin_read()?;
        let Some(t) = read_table(&tx, ITEMS).map_err(|e| self.err(e))? else {
            return Ok(None);
        };
        let v = t.get(id).map_err(|e| self.err(e))?;
        v.map(|v| self.decode(v.value(), "item")).transpose()
    }

    /// The image bytes of an imported photo, by sha256.
    pub fn item_blob(&self, sha256: &str) -> Result<Option<Vec<u8>>> {
        let tx = self.begin_read()?;
        let Some(t) = read_table(&tx, ITEM_BLOBS).map_err(|e| self.err(e))? else {
            return Ok(None);
        };
        let v = t.get(sha256).map_err(|e| self.err(e))?;
        Ok(v.map(|v| v.value().to_vec()))
    }

    /// Every dataset, by name.
    pub fn datasets(&self) -> Result<Vec<DatasetRecord>> {
        let tx = self.begin_read()?;
        let Some(t) = read_table(&tx, DATASETS).map_err(|e| self.err(e))? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for row in t.iter().map_err(|e| self.err(e))? {
            let (_, v) = row.map_err(|e| self.err(e))?;
            out.push(self.decode(v.value(), "dataset")?);
        }
        Ok(out)
    }

    /// Output ids not yet itemised, and itemised outputs that are gone (their item ids), so
    /// [`crate::explore::Catalog::sync`] knows what to do. One read when nothing changed.
    pub fn unsynced_outputs(&self) -> Result<(Vec<u64>, Vec<u64>)> {
        let tx = self.begin_read()?;
        let (Some(outs), Some(done)) = (
            read_table(&tx, super::OUTPUTS).map_err(|e| self.err(e))?,
            read_table(&tx, ITEM_OUTPUTS).map_err(|e| self.err(e))?,
        ) else {
            return Ok(Default::default());
        };
        let last = |k: Option<u64>| k.unwrap_or(0);
        let last_out = last(
            outs.last()
                .map_err(|e| self.err(e))?
                .map(|(k, _)| k.value()),
        );
        let last_done = last(
            done.last()
                .map_err(|e| self.err(e))?
                .map(|(k, _)| k.value()),
        );
        let (n_out, n_done) = (
            outs.len().map_err(|e| self.err(e))?,
            done.len().map_err(|e| self.err(e))?,
        );
        if last_out == last_done && n_out == n_done {
            return Ok(Default::default());
        }
        // Something changed: compare the two key sets.
        let mut new = Vec::new();
        let mut gone = Vec::new();
        let done_ids: BTreeMap<u64, u64> = done
            .iter()
            .map_err(|e| self.err(e))?
            .filter_map(|r| r.ok().map(|(k, v)| (k.value(), v.value())))
            .collect();
        let mut out_ids = BTreeSet::new();
        for row in outs.iter().map_err(|e| self.err(e))? {
            let id = row.map_err(|e| self.err(e))?.0.value();
            out_ids.insert(id);
            if !done_ids.contains_key(&id) {
                new.push(id);
            }
        }
        for (out, item) in &done_ids {
            if !out_ids.contains(out) {
                gone.push(*item);
            }
        }
        Ok((new, gone))
    }

    /// The stored indexes, for [`crate::explore::Index`].
    pub fn raw_index(&self) -> Result<RawIndex> {
        let tx = self.begin_read()?;
        let generation = match read_table(&tx, META).map_err(|e| self.err(e))? {
            Some(meta) => meta
                .get(GENERATION)
                .map_err(|e| self.err(e))?
                .map(|v| v.value())
                .unwrap_or(0),
            None => 0,
        };
        let mut raw = RawIndex {
            generation,
            ids: Vec::new(),
            tags: Vec::new(),
            fields: Vec::new(),
        };
        if let Some(t) = read_table(&tx, ITEMS).map_err(|e| self.err(e))? {
            for row in t.iter().map_err(|e| self.err(e))? {
                raw.ids.push(row.map_err(|e| self.err(e))?.0.value());
            }
        }
        if let Some(t) = read_table(&tx, ITEM_TAGS).map_err(|e| self.err(e))? {
            for row in t.iter().map_err(|e| self.err(e))? {
                let (k, v) = row.map_err(|e| self.err(e))?;
                raw.tags.push((k.value().to_string(), ids_from(v.value())));
            }
        }
        if let Some(t) = read_table(&tx, ITEM_FIELDS).map_err(|e| self.err(e))? {
            for row in t.iter().map_err(|e| self.err(e))? {
                let (k, v) = row.map_err(|e| self.err(e))?;
                raw.fields
                    .push((k.value().to_string(), pairs_from(v.value())));
            }
        }
        Ok(raw)
    }
}

impl CatalogTx<'_> {
    fn err(&self, e: impl std::fmt::Display) -> crate::EngineError {
        self.store.err(e)
    }

    /// Records an item's tags and fields as added to (or removed from) the indexes; the last
    /// change of a (tag, id) or (field, id) in this transaction wins.
    fn index_item(&mut self, id: u64, rec: &ItemRecord, add: bool) {
        let d = &mut self.delta;
        for t in rec.all_tags().map(norm_tag) {
            if add {
                d.tags_del.entry(t.clone()).or_default().remove(&id);
                d.tags_add.entry(t).or_default().insert(id);
            } else {
                d.tags_add.entry(t.clone()).or_default().remove(&id);
                d.tags_del.entry(t).or_default().insert(id);
            }
        }
        for (k, v) in &rec.fields {
            let k = norm_tag(k);
            if add {
                d.fields_del.entry(k.clone()).or_default().remove(&id);
                d.fields_set.entry(k).or_default().insert(id, *v);
            } else {
                d.fields_set.entry(k.clone()).or_default().remove(&id);
                d.fields_del.entry(k).or_default().insert(id);
            }
        }
    }

    /// Adds an item (and, for an imported photo, its bytes unless that sha256 is stored
    /// already); returns its id.
    pub fn add_item(&mut self, rec: &ItemRecord, blob: Option<&[u8]>) -> Result<u64> {
        let id = self.next_id;
        self.next_id += 1;
        {
            let mut t = self.tx.open_table(ITEMS).map_err(|e| self.err(e))?;
            t.insert(id, json(rec).as_slice())
                .map_err(|e| self.err(e))?;
        }
        if let Some(bytes) = blob {
            let mut b = self.tx.open_table(ITEM_BLOBS).map_err(|e| self.err(e))?;
            if b.get(rec.sha256.as_str())
                .map_err(|e| self.err(e))?
                .is_none()
            {
                b.insert(rec.sha256.as_str(), bytes)
                    .map_err(|e| self.err(e))?;
            }
        }
        if let (ItemSource::Generated, Some(out)) = (rec.source, rec.output_id) {
            let mut o = self.tx.open_table(ITEM_OUTPUTS).map_err(|e| self.err(e))?;
            o.insert(out, id).map_err(|e| self.err(e))?;
        }
        self.index_item(id, rec, true);
        Ok(id)
    }

    /// Replaces an item's record (its indexes follow).
    pub fn update_item(&mut self, id: u64, old: &ItemRecord, new: &ItemRecord) -> Result<()> {
        {
            let mut t = self.tx.open_table(ITEMS).map_err(|e| self.err(e))?;
            t.insert(id, json(new).as_slice())
                .map_err(|e| self.err(e))?;
        }
        self.index_item(id, old, false);
        self.index_item(id, new, true);
        Ok(())
    }

    /// Removes an item (an output that was deleted). Imported bytes stay (other items may
    /// share them).
    pub fn remove_item(&mut self, id: u64) -> Result<()> {
        let old: Option<ItemRecord> = {
            let mut t = self.tx.open_table(ITEMS).map_err(|e| self.err(e))?;
            let v = t.remove(id).map_err(|e| self.err(e))?;
            v.map(|v| self.store.decode(v.value(), "item"))
                .transpose()?
        };
        if let Some(old) = old {
            if let Some(out) = old.output_id {
                let mut o = self.tx.open_table(ITEM_OUTPUTS).map_err(|e| self.err(e))?;
                o.remove(out).map_err(|e| self.err(e))?;
            }
            self.index_item(id, &old, false);
        }
        Ok(())
    }

    /// An item's record as this transaction sees it.
    pub fn item(&self, id: u64) -> Result<Option<ItemRecord>> {
        let t = self.tx.open_table(ITEMS).map_err(|e| self.err(e))?;
        let v = t.get(id).map_err(|e| self.err(e))?;
        v.map(|v| self.store.decode(v.value(), "item")).transpose()
    }

    /// The item of an output, if it is itemised already.
    pub fn output_item(&self, output_id: u64) -> Result<Option<u64>> {
        let t = self.tx.open_table(ITEM_OUTPUTS).map_err(|e| self.err(e))?;
        let v = t
            .get(output_id)
            .map_err(|e| self.err(e))?
            .map(|v| v.value());
        Ok(v)
    }

    /// Whether an image with this sha256 is stored (imported bytes).
    pub fn has_blob(&self, sha256: &str) -> Result<bool> {
        let t = self.tx.open_table(ITEM_BLOBS).map_err(|e| self.err(e))?;
        let found = t.get(sha256).map_err(|e| self.err(e))?.is_some();
        Ok(found)
    }

    /// A dataset's record as this transaction sees it.
    pub fn dataset(&self, name: &str) -> Result<Option<DatasetRecord>> {
        let t = self.tx.open_table(DATASETS).map_err(|e| self.err(e))?;
        let v = t.get(name).map_err(|e| self.err(e))?;
        v.map(|v| self.store.decode(v.value(), "dataset"))
            .transpose()
    }

    pub fn put_dataset(&mut self, rec: &DatasetRecord) -> Result<()> {
        let mut t = self.tx.open_table(DATASETS).map_err(|e| self.err(e))?;
        t.insert(rec.name.as_str(), json(rec).as_slice())
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Merges the index changes and commits everything in one durable transaction.
    pub fn commit(self) -> Result<()> {
        let CatalogTx {
            store, tx, delta, ..
        } = self;
        let err = |e: &dyn std::fmt::Display| store.err(e);
        {
            let mut tags = tx.open_table(ITEM_TAGS).map_err(|e| err(&e))?;
            let keys: BTreeSet<&String> =
                delta.tags_add.keys().chain(delta.tags_del.keys()).collect();
            for k in keys {
                let mut ids: BTreeSet<u64> = match tags.get(k.as_str()).map_err(|e| err(&e))? {
                    Some(v) => ids_from(v.value()).into_iter().collect(),
                    None => BTreeSet::new(),
                };
                if let Some(del) = delta.tags_del.get(k) {
                    ids.retain(|i| !del.contains(i));
                }
                if let Some(add) = delta.tags_add.get(k) {
                    ids.extend(add);
                }
                if ids.is_empty() {
                    tags.remove(k.as_str()).map_err(|e| err(&e))?;
                } else {
                    tags.insert(k.as_str(), ids_to(&ids).as_slice())
                        .map_err(|e| err(&e))?;
                }
            }
            let mut fields = tx.open_table(ITEM_FIELDS).map_err(|e| err(&e))?;
            let keys: BTreeSet<&String> = delta
                .fields_set
                .keys()
                .chain(delta.fields_del.keys())
                .collect();
            for k in keys {
                let mut col: BTreeMap<u64, f64> =
                    match fields.get(k.as_str()).map_err(|e| err(&e))? {
                        Some(v) => pairs_from(v.value()).into_iter().collect(),
                        None => BTreeMap::new(),
                    };
                if let Some(del) = delta.fields_del.get(k) {
                    col.retain(|i, _| !del.contains(i));
                }
                if let Some(set) = delta.fields_set.get(k) {
                    col.extend(set);
                }
                if col.is_empty() {
                    fields.remove(k.as_str()).map_err(|e| err(&e))?;
                } else {
                    fields
                        .insert(k.as_str(), pairs_to(&col).as_slice())
                        .map_err(|e| err(&e))?;
                }
            }
            let mut meta = tx.open_table(META).map_err(|e| err(&e))?;
            let g = meta
                .get(GENERATION)
                .map_err(|e| err(&e))?
                .map(|v| v.value())
                .unwrap_or(0);
            meta.insert(GENERATION, g + 1).map_err(|e| err(&e))?;
        }
        tx.commit().map_err(|e| err(&e))
    }
}
