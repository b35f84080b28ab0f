//! `dataset import`: folders (recursive, sorted) and `.zip` files (read in memory,
//! [`super::zipread`]) of images into a named dataset, with optional CSV/JSON metadata
//! ([`super::meta`]). Images are decoded through the engine's hardened decoder (the same size
//! limits as `LoadImage`); regular files only. Files are deduplicated by sha256: bytes are
//! stored once in the store, and a file already in the dataset is skipped as a duplicate.
//!
//! **Atomic:** the items, their bytes, the indexes and the dataset record are written in one
//! redb transaction, so a dataset appears complete or not at all (an interrupted import leaves
//! nothing). **An existing name:** the import adds to that dataset, and the report says so.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::items::{a1111_tags, push_tag};
use super::meta::{read_meta, MetaRow};
pub use super::zipread::ZipLimits;
use super::zipread::{read_zip, ZipItem};
use super::{DatasetRecord, ItemRecord, ItemSource};
use crate::error::{EngineError, Result};
use crate::store::{now_ms, CatalogTx, Store};

/// The largest image file imported (bigger files are skipped as too big).
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// What to import into.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// The dataset's name (created, or added to when it exists).
    pub name: String,
    /// A metadata file: `.csv` or `.json` with a `file` column.
    pub meta: Option<PathBuf>,
    pub zip_limits: ZipLimits,
}

impl ImportOptions {
    pub fn new(name: &str) -> ImportOptions {
        ImportOptions {
            name: name.to_string(),
            meta: None,
            zip_limits: ZipLimits::default(),
        }
    }
}

/// A file or archive entry left out, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    pub name: String,
    pub reason: String,
}

/// What an import did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ImportReport {
    pub dataset: String,
    /// The dataset existed before: the items were added to it.
    pub existed: bool,
    /// The items added: id and file name.
    pub added: Vec<(u64, String)>,
    /// How many of them had bytes not yet in the store (the others share stored bytes).
    pub new_images: usize,
    pub skipped: Vec<Skipped>,
    /// Metadata rows naming a file that was not imported: where the row is, and the file.
    pub unmatched_meta: Vec<(String, String)>,
}

fn check_name(name: &str) -> Result<()> {
    let n = name.trim();
    if n.is_empty() || n.len() > 100 || n.chars().any(char::is_control) || n.contains(':') {
        return Err(EngineError::failed(format!(
            "dataset name {name:?}: expected 1 to 100 characters, no ':' or control characters"
        )));
    }
    Ok(())
}

/// Metadata rows, looked up by the path a file has under its import root, else by file name.
struct Meta {
    rows: Vec<MetaRow>,
    used: Vec<bool>,
    by_path: HashMap<String, usize>,
    by_name: HashMap<String, Vec<usize>>,
}

impl Meta {
    fn new(rows: Vec<MetaRow>) -> Meta {
        let mut by_path = HashMap::new();
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, r) in rows.iter().enumerate() {
            let p = r.file.trim_start_matches("./").to_string();
            let base = p.rsplit('/').next().unwrap_or(&p).to_string();
            by_path.entry(p).or_insert(i);
            by_name.entry(base).or_default().push(i);
        }
        Meta {
            used: vec![false; rows.len()],
            rows,
            by_path,
            by_name,
        }
    }

    /// The row for a file at `rel` (its path under the import root).
    fn find(&mut self, rel: &str) -> Option<&MetaRow> {
        let i = self.by_path.get(rel).copied().or_else(|| {
            let base = rel.rsplit(['/', '!']).next().unwrap_or(rel);
            match self.by_name.get(base).map(Vec::as_slice) {
                Some([i]) => Some(*i),
                _ => None,
            }
        })?;
        self.used[i] = true;
        Some(&self.rows[i])
    }
}

/// The running import: one catalogue transaction and what it has seen.
struct Importer<'a, 's> {
    tx: CatalogTx<'s>,
    name: &'a str,
    opts: &'a ImportOptions,
    meta: Meta,
    /// sha256 → the file that brought it into the dataset.
    in_dataset: HashMap<String, String>,
    report: ImportReport,
    progress: &'a mut dyn FnMut(usize, &str),
}

impl Importer<'_, '_> {
    fn skip(&mut self, name: &str, reason: impl Into<String>) {
        self.report.skipped.push(Skipped {
            name: name.to_string(),
            reason: reason.into(),
        });
    }

    /// One file's bytes: `shown` is how the report names it, `rel` its path under its root.
    fn file(&mut self, shown: &str, rel: &str, bytes: &[u8]) -> Result<()> {
        let sha = crate::hashing::sha256_hex(bytes);
        if let Some(first) = self.in_dataset.get(&sha) {
            let why = format!("duplicate of {first} (same sha256), already in the dataset");
            self.skip(shown, why);
            return Ok(());
        }
        let (width, height) = match crate::codec::decode_rgb8(bytes, shown) {
            Ok((w, h, _, _)) => (w, h),
            Err(e) => {
                let e = e
                    .strip_prefix(&format!("{shown}: "))
                    .unwrap_or(&e)
                    .to_string();
                let reason = if e.starts_with("not an image") {
                    e
                } else {
                    format!("unreadable image: {e}")
                };
                self.skip(shown, reason);
                return Ok(());
            }
        };
        let now = now_ms();
        let mut tags = vec!["source:imported".to_string()];
        push_tag(&mut tags, "dataset", self.name);
        a1111_tags(bytes, &mut tags);
        let mut fields = std::collections::BTreeMap::new();
        fields.insert("created".to_string(), now as f64);
        if let Some(row) = self.meta.find(rel) {
            for t in &row.tags {
                if !tags.contains(t) {
                    tags.push(t.clone());
                }
            }
            fields.extend(row.fields.iter().map(|(k, v)| (k.clone(), *v)));
        }
        fields.insert("width".to_string(), f64::from(width));
        fields.insert("height".to_string(), f64::from(height));
        let rec = ItemRecord {
            sha256: sha.clone(),
            source: ItemSource::Imported,
            output_id: None,
            dataset: Some(self.name.to_string()),
            name: shown.to_string(),
            created_ms: now,
            width,
            height,
            auto_tags: tags,
            tags: Vec::new(),
            fields,
        };
        if !self.tx.has_blob(&sha)? {
            self.report.new_images += 1;
        }
        let id = self.tx.add_item(&rec, Some(bytes))?;
        self.in_dataset.insert(sha, shown.to_string());
        self.report.added.push((id, shown.to_string()));
        (self.progress)(self.report.added.len(), shown);
        Ok(())
    }

    fn zip(&mut self, path: &Path, rel_prefix: &str) -> Result<()> {
        let shown_zip = path.display().to_string();
        let limits = self.opts.zip_limits;
        read_zip(path, &limits, |item| match item {
            ZipItem::File { name, bytes } => {
                let rel = format!("{rel_prefix}{name}");
                self.file(&format!("{shown_zip}!{name}"), &rel, &bytes)
            }
            ZipItem::Skipped { name, reason } => {
                self.skip(&format!("{shown_zip}!{name}"), reason);
                Ok(())
            }
        })
    }

    /// A path given on the command line or found in a folder; `rel` is its path under the
    /// root it was given with.
    fn path(&mut self, path: &Path, rel: &str) -> Result<()> {
        let shown = path.display().to_string();
        let md = match std::fs::symlink_metadata(path) {
            Ok(md) => md,
            Err(e) => {
                self.skip(&shown, format!("unreadable: {e}"));
                return Ok(());
            }
        };
        let ft = md.file_type();
        if ft.is_symlink() {
            self.skip(&shown, "a symlink (regular files only)");
            return Ok(());
        }
        if ft.is_dir() {
            let mut entries: Vec<PathBuf> = match std::fs::read_dir(path) {
                Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
                Err(e) => {
                    self.skip(&shown, format!("unreadable folder: {e}"));
                    return Ok(());
                }
            };
            entries.sort();
            for e in entries {
                let name = e.file_name().unwrap_or_default().to_string_lossy();
                let sub = if rel.is_empty() {
                    name.into_owned()
                } else {
                    format!("{rel}/{name}")
                };
                self.path(&e, &sub)?;
            }
            return Ok(());
        }
        if !ft.is_file() {
            self.skip(&shown, "not a regular file (a FIFO, socket or device)");
            return Ok(());
        }
        let is_zip = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("zip"));
        if is_zip {
            let prefix = if rel.is_empty() {
                String::new()
            } else {
                format!("{rel}!")
            };
            return self.zip(path, &prefix);
        }
        if md.len() > MAX_FILE_BYTES {
            self.skip(
                &shown,
                format!(
                    "too big: {} bytes, more than the limit of {MAX_FILE_BYTES}",
                    md.len()
                ),
            );
            return Ok(());
        }
        match std::fs::read(path) {
            Ok(bytes) => {
                let rel = if rel.is_empty() {
                    path.file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned()
                } else {
                    rel.to_string()
                };
                self.file(&shown, &rel, &bytes)
            }
            Err(e) => {
                self.skip(&shown, format!("unreadable: {e}"));
                Ok(())
            }
        }
    }
}

/// Imports `paths` (folders, `.zip` files, image files) into the dataset `opts.name`, in one
/// transaction; `progress(n, file)` is told of every item added. Errors (nothing imported):
/// a bad dataset name, a missing path, an unreadable metadata file, an archive refused by
/// its limits or unreadable as a zip.
pub fn import_dataset(
    store: &Store,
    paths: &[PathBuf],
    opts: &ImportOptions,
    progress: &mut dyn FnMut(usize, &str),
) -> Result<ImportReport> {
    check_name(&opts.name)?;
    let name = opts.name.trim();
    if paths.is_empty() {
        return Err(EngineError::failed(
            "nothing to import: give folders, .zip or image files",
        ));
    }
    for p in paths {
        if std::fs::symlink_metadata(p).is_err() {
            return Err(EngineError::Import {
                path: p.clone(),
                message: "no such file or folder; nothing was imported".into(),
            });
        }
    }
    let rows = match &opts.meta {
        Some(m) => read_meta(m)?,
        None => Vec::new(),
    };
    let in_dataset: HashMap<String, String> = store
        .items()?
        .into_iter()
        .filter(|(_, it)| it.dataset.as_deref() == Some(name))
        .map(|(_, it)| (it.sha256, it.name))
        .collect();
    let tx = store.catalog_tx()?;
    let existing = tx.dataset(name)?;
    let mut imp = Importer {
        tx,
        name,
        opts,
        meta: Meta::new(rows),
        in_dataset,
        report: ImportReport {
            dataset: name.to_string(),
            existed: existing.is_some(),
            ..ImportReport::default()
        },
        progress,
    };
    let mut seen = HashSet::new();
    for p in paths {
        if !seen.insert(p.clone()) {
            continue;
        }
        imp.path(p, "")?;
    }
    let Importer {
        mut tx,
        meta,
        mut report,
        ..
    } = imp;
    for (i, row) in meta.rows.iter().enumerate() {
        if !meta.used[i] {
            report
                .unmatched_meta
                .push((row.at.clone(), row.file.clone()));
        }
    }
    let now = now_ms();
    let mut rec = existing.unwrap_or(DatasetRecord {
        name: name.to_string(),
        created_ms: now,
        updated_ms: now,
        items: 0,
        sources: Vec::new(),
    });
    rec.updated_ms = now;
    rec.items += report.added.len() as u64;
    rec.sources
        .extend(paths.iter().map(|p| p.display().to_string()));
    tx.put_dataset(&rec)?;
    tx.commit()?;
    Ok(report)
}
