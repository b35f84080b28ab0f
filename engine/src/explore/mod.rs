//! The explorer's catalogue: every stored output and every imported photo as an *item* with
//! tags and numeric fields, a query language over them, and dataset import
//! (docs/ARCHITECTURE.md §13, *Explorer: items, tags, queries*).
//!
//! - An item ([`ItemRecord`]) has a `u64` id, the sha256 of its image, its source
//!   ([`ItemSource::Generated`]: an output of a run, its bytes in `output_png`;
//!   [`ItemSource::Imported`]: a photo imported into a dataset, its bytes stored once per sha256),
//!   **automatic tags** (`source:`, `dataset:`, `graph:`, `run:`, `label:`, `model:`,
//!   `model_hash:`, `lora:`, `lora_hash:`, and an import's text metadata), **manual tags** (free
//!   words or `key:value`) and **numeric fields** (`width`, `height`, `area`, `defects`, `seed`,
//!   `created`, the recipe's numeric parameters as `node.param`, an import's numeric metadata).
//! - [`Catalog`] is the one way in for the CLI, the studio and the tests: [`Catalog::sync`]
//!   itemises outputs not yet itemised (idempotent; one read when nothing is new),
//!   [`Catalog::query`] evaluates a [`Query`] from the indexes kept in the store (posting lists
//!   per tag, numeric columns per field), loaded once per process and reloaded only when the
//!   catalogue changed, [`Catalog::add_tag`] / [`Catalog::remove_tag`] edit manual tags.
//! - [`import`]: folders and `.zip` files (read in memory under limits, never extracted) with
//!   optional CSV/JSON metadata, deduplicated by sha256, committed in one transaction.
//!
//! Tags and field names are matched case-insensitively: they are indexed lowercased
//! ([`norm_tag`]); records keep them as written.

pub mod analysis_file;
mod catalog;
pub mod exploration;
pub mod features;
pub mod import;
mod index;
mod items;
pub mod lite0;
mod meta;
pub mod query;
pub mod selection;
pub(crate) mod zipread;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use catalog::{Catalog, Computed, SyncReport};
pub use exploration::{coverage, explore, CoverageReport, Exploration, MapMethod, MapSpec};
pub use import::{import_dataset, ImportOptions, ImportReport, Skipped};
pub use index::Index;
pub use query::{CmpOp, Expr, Query, Scalar};
pub use selection::{export_selection, SelectionExport};

/// Where an item comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemSource {
    /// A stored output of a run (its bytes in the `output_png` table).
    Generated,
    /// A photo imported into a dataset (its bytes in the `item_blobs` table, by sha256).
    Imported,
}

impl ItemSource {
    pub fn name(self) -> &'static str {
        match self {
            ItemSource::Generated => "generated",
            ItemSource::Imported => "imported",
        }
    }
}

/// One item of the catalogue (kept in the store's `items` table, by item id).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ItemRecord {
    /// sha256 of the image file's bytes (hex).
    pub sha256: String,
    pub source: ItemSource,
    /// The output this item is (generated items).
    #[serde(default)]
    pub output_id: Option<u64>,
    /// The dataset it was imported into (imported items).
    #[serde(default)]
    pub dataset: Option<String>,
    /// The output's path, or the imported file's path (`archive.zip!entry` for a zip entry).
    pub name: String,
    pub created_ms: u64,
    pub width: u32,
    pub height: u32,
    /// Tags worked out from the item (source, dataset, recipe, models, label, metadata).
    pub auto_tags: Vec<String>,
    /// Tags a user added.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Numeric fields, by name (`created` in Unix milliseconds).
    pub fields: BTreeMap<String, f64>,
}

impl ItemRecord {
    /// Every tag, automatic then manual.
    pub fn all_tags(&self) -> impl Iterator<Item = &str> {
        self.auto_tags
            .iter()
            .chain(self.tags.iter())
            .map(String::as_str)
    }

    /// A numeric field by name (case-insensitive).
    pub fn field(&self, name: &str) -> Option<f64> {
        self.fields.get(name).copied().or_else(|| {
            self.fields
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
        })
    }
}

/// A dataset of imported photos (the `datasets` table, by name). A dataset is listed once its
/// import committed: the items and this record are written in one transaction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatasetRecord {
    pub name: String,
    pub created_ms: u64,
    pub updated_ms: u64,
    /// Items in the dataset.
    pub items: u64,
    /// The paths given to each import, in order.
    pub sources: Vec<String>,
}

/// The indexed form of a tag or field name: lowercased (queries are case-insensitive).
pub fn norm_tag(tag: &str) -> String {
    tag.trim().to_lowercase()
}

/// Checks a tag given by a user: not empty, no control characters, at most 200 bytes; a
/// `key:value` tag needs a key and a value.
pub fn check_tag(tag: &str) -> Result<(), String> {
    let t = tag.trim();
    if t.is_empty() {
        return Err("a tag cannot be empty".into());
    }
    if t.len() > 200 {
        return Err(format!("tag \"{t}\" is longer than 200 bytes"));
    }
    if t.chars().any(char::is_control) {
        return Err(format!("tag {t:?} contains a control character"));
    }
    if let Some((k, v)) = t.split_once(':') {
        if k.is_empty() || v.is_empty() {
            return Err(format!("tag \"{t}\": a key:value tag needs both"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_checked() {
        assert!(check_tag("scratch").is_ok());
        assert!(check_tag("label:scratch").is_ok());
        assert!(check_tag(" ").is_err());
        assert!(check_tag(":x").is_err());
        assert!(check_tag("x:").is_err());
        assert!(check_tag("a\nb").is_err());
        assert_eq!(norm_tag(" Label:Scratch "), "label:scratch");
    }
}
