//! The redb store: graphs (every save kept as a version), runs (history), outputs (PNG bytes and
//! metadata), LoRA training runs, bookmarks, presets, settings and queued batches. Every table
//! is declared in this module.
//!
//! **Several processes, one store.** The studio keeps the user store open while the CLI runs
//! batches against the same file. redb locks a database to one process by default, so every
//! handle opens it in redb's [`ConcurrencyMode::MultiWriter`] mode: any number of processes may
//! hold it open, reads see other processes' commits, and write transactions are serialised by a
//! byte-range lock (a writer waits for the current one to commit). Each output is committed in its
//! own durable transaction, so a crash or `kill -9` mid-batch loses nothing already committed;
//! redb repairs the file on the next open.
//!
//! **Read-only handles.** Commands that only read (`history`, `export`, `store check`) open the
//! store with [`Store::open_read_only`]: nothing is written, the file stays byte-identical
//! (unless a killed writer left it to repair: the repair comes first).
//!
//! **A store is never replaced.** A new store is made under a temporary name and linked into
//! place, so a store file is never seen empty; an empty (0-byte) or unreadable file at the
//! store's path is an error naming it, never silently initialised as a new, empty store.
//!
//! **Schema versions.** The `meta` table holds a schema version per table. Opening a store whose
//! tables are newer than this build fails with a clear error instead of misreading them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use redb::{
    ConcurrencyMode, Database, ReadOnlyDatabase, ReadOnlyTable, ReadTransaction, ReadableDatabase,
    ReadableTable, TableDefinition, TableError,
};
use serde::{de::DeserializeOwned, Serialize};

use crate::error::{EngineError, Result};

mod evaluations;
mod explore;
mod features;
mod queue;
mod records;
mod stats;
pub use evaluations::EvaluationRecord;
pub use explore::{CatalogTx, RawIndex};
pub use queue::QueuedBatch;
pub use records::*;
pub use stats::ImportRun;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const GRAPHS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("graphs");
const RUNS: TableDefinition<u64, &[u8]> = TableDefinition::new("runs");
const OUTPUTS: TableDefinition<u64, &[u8]> = TableDefinition::new("outputs");
const OUTPUT_PNG: TableDefinition<u64, &[u8]> = TableDefinition::new("output_png");
const OUTPUT_MASK_PNG: TableDefinition<u64, &[u8]> = TableDefinition::new("output_mask_png");
/// Per-pixel defect instance ids of an output (16-bit grey PNG, 0 = none), when its mask came
/// from a defect generator; absent in stores written before (export then uses regions).
const OUTPUT_INSTANCES_PNG: TableDefinition<u64, &[u8]> =
    TableDefinition::new("output_instances_png");
/// The defect-free image saved with an output (SaveImage's `clean` input), by output id.
const OUTPUT_CLEAN_PNG: TableDefinition<u64, &[u8]> = TableDefinition::new("output_clean_png");
const BOOKMARKS: TableDefinition<u64, &[u8]> = TableDefinition::new("bookmarks");
const PRESETS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("presets");
const SETTINGS: TableDefinition<&str, &[u8]> = TableDefinition::new("settings");
const TRAININGS: TableDefinition<u64, &[u8]> = TableDefinition::new("trainings");
/// Explorer features by `"<feature model>/<image sha256>"` (`explore::features` encodes them).
const FEATURES: TableDefinition<&str, &[u8]> = TableDefinition::new("features");
/// Evaluations of trained detectors (`evaluate`), by id (`store/evaluations.rs`).
const EVALUATIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("evaluations");
/// Batches waiting in a worker's queue, by row id (`store/queue.rs`, `crate::queue`).
const QUEUE: TableDefinition<u64, &[u8]> = TableDefinition::new("queue");

/// Schema version of each table, recorded in `meta` as `schema.<table>`.
pub const SCHEMA: &[(&str, u64)] = &[
    ("graphs", 1),
    ("runs", 1),
    ("outputs", 1),
    ("output_png", 1),
    ("output_mask_png", 1),
    ("output_instances_png", 1),
    ("output_clean_png", 1),
    ("bookmarks", 1),
    ("presets", 1),
    ("settings", 1),
    ("trainings", 1),
    ("features", 1),
    ("items", 1),
    ("item_blobs", 1),
    ("item_outputs", 1),
    ("datasets", 1),
    ("item_tags", 1),
    ("item_fields", 1),
    ("evaluations", 1),
    ("queue", 1),
    ("stats_buckets", 1),
    ("stats_runs", 1),
];

/// Whether a store file exists at `path`; an error naming it when something is there that
/// cannot be a store (an empty file, a folder, a file that cannot be read).
fn check_file(path: &Path) -> Result<bool> {
    let err = |m: String| EngineError::Store {
        path: path.to_path_buf(),
        message: m,
    };
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(err(format!("cannot read: {e}"))),
        Ok(md) if !md.is_file() => Err(err("is not a file".into())),
        Ok(md) if md.len() == 0 => Err(err(
            "is an empty file (0 bytes), not a store; it was left as it is: move it away to \
             start a new store"
                .into(),
        )),
        Ok(_) => Ok(true),
    }
}

/// Makes a new, empty store at `path`: built under a temporary name beside it, then linked to
/// `path` (which fails, harmlessly, when another process made it first).
fn create_new(path: &Path) -> Result<()> {
    let err = |m: String| EngineError::Store {
        path: path.to_path_buf(),
        message: m,
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "store.redb".into());
    // Unique per process and per call: two threads of one process creating the same store in
    // the same millisecond must not share (and remove) each other's temporary file.
    static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let serial = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_file_name(format!(
        ".{name}.new-{}-{}-{serial}",
        std::process::id(),
        now_ms()
    ));
    let made = (|| {
        let db = builder()
            .create(&tmp)
            .map_err(|e| err(format!("cannot create: {e}")))?;
        let store = Store {
            db: Db::Write(db),
            path: tmp.clone(),
        };
        store.init_schema()?;
        drop(store);
        match std::fs::hard_link(&tmp, path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(err(format!("cannot create: {e}"))),
        }
    })();
    let _ = std::fs::remove_file(&tmp);
    made
}

/// A table of a read transaction; `None` when the store does not have it yet (a store made by
/// an older build, opened read-only).
fn read_table<K: redb::Key + 'static, V: redb::Value + 'static>(
    tx: &ReadTransaction,
    def: TableDefinition<K, V>,
) -> std::result::Result<Option<ReadOnlyTable<K, V>>, TableError> {
    match tx.open_table(def) {
        Ok(t) => Ok(Some(t)),
        Err(TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A handle on a store file.
pub struct Store {
    db: Db,
    path: PathBuf,
}

/// The redb handle: read-write, or read-only.
enum Db {
    Write(Database),
    Read(ReadOnlyDatabase),
}

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// The page cache of each store handle, in bytes. redb's default (1 GiB) filled up with the
/// pages of the PNGs a long batch commits: resident memory grew by up to 1 GiB over a batch.
pub const STORE_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// The builder every handle uses (see the module docs: several processes, one store).
fn builder() -> redb::Builder {
    let mut b = Database::builder();
    b.set_concurrency_mode(ConcurrencyMode::MultiWriter)
        .set_cache_size(STORE_CACHE_BYTES);
    b
}

/// Retries an open while another process holds the file exclusively (creating or repairing it).
fn retry_open<T>(
    mut open: impl FnMut() -> std::result::Result<T, redb::DatabaseError>,
) -> std::result::Result<T, redb::DatabaseError> {
    let mut attempt = 0;
    loop {
        match open() {
            Err(redb::DatabaseError::DatabaseAlreadyOpen) if attempt < 100 => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

impl Store {
    /// Opens (or creates) the store at `path`, beside any other process that has it open.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| EngineError::io(dir, e))?;
            }
        }
        let err = |m: String| EngineError::Store {
            path: path.to_path_buf(),
            message: m,
        };
        if !check_file(path)? {
            create_new(path)?;
        }
        let db =
            retry_open(|| builder().open(path)).map_err(|e| err(format!("cannot open: {e}")))?;
        let store = Store {
            db: Db::Write(db),
            path: path.to_path_buf(),
        };
        store.init_schema()?;
        Ok(store)
    }

    /// Opens an existing store only to read it: nothing is written to the file, so it stays
    /// byte-identical, with one exception: a store left unclean by a killed writer (and no
    /// writer open to repair it) is repaired first by a read-write open, as any open would,
    /// since a read-only handle cannot read it otherwise. Other processes may write meanwhile.
    pub fn open_read_only(path: &Path) -> Result<Store> {
        if !check_file(path)? {
            return Err(EngineError::Store {
                path: path.to_path_buf(),
                message: "no such store".into(),
            });
        }
        let open = || retry_open(|| builder().open_read_only(path));
        let db = match open() {
            Err(redb::DatabaseError::RepairAborted) => {
                drop(Store::open(path)?);
                open()
            }
            other => other,
        }
        .map_err(|e| EngineError::Store {
            path: path.to_path_buf(),
            message: format!("cannot open: {e}"),
        })?;
        let store = Store {
            db: Db::Read(db),
            path: path.to_path_buf(),
        };
        store.check_schema()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: impl std::fmt::Display) -> EngineError {
        EngineError::Store {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    /// Whether this handle was opened read-only.
    pub fn is_read_only(&self) -> bool {
        matches!(self.db, Db::Read(_))
    }

    fn begin_read(&self) -> Result<ReadTransaction> {
        match &self.db {
            Db::Write(db) => db.begin_read(),
            Db::Read(db) => db.begin_read(),
        }
        .map_err(|e| self.err(e))
    }

    fn begin_write(&self) -> Result<redb::WriteTransaction> {
        match &self.db {
            Db::Write(db) => db.begin_write().map_err(|e| self.err(e)),
            Db::Read(_) => Err(self.err("opened read-only: cannot write")),
        }
    }

    /// Refuses a store whose tables are newer than this build (read-only handles).
    fn check_schema(&self) -> Result<()> {
        let tx = self.begin_read()?;
        let Some(meta) = read_table(&tx, META).map_err(|e| self.err(e))? else {
            return Ok(());
        };
        for (table, version) in SCHEMA {
            let key = format!("schema.{table}");
            if let Some(v) = meta.get(key.as_str()).map_err(|e| self.err(e))? {
                if v.value() > *version {
                    return Err(self.newer(table, v.value(), *version));
                }
            }
        }
        Ok(())
    }

    fn newer(&self, table: &str, found: u64, supported: u64) -> EngineError {
        self.err(format!(
            "table \"{table}\" has schema version {found}, newer than this Defect Studio supports ({supported}); update Defect Studio"
        ))
    }

    fn init_schema(&self) -> Result<()> {
        let tx = self.begin_write()?;
        let build_stats;
        {
            let mut meta = tx.open_table(META).map_err(|e| self.err(e))?;
            // No statistics tables yet: build them from the records below (a migration).
            build_stats = meta
                .get("schema.stats_buckets")
                .map_err(|e| self.err(e))?
                .is_none();
            for (table, version) in SCHEMA {
                let key = format!("schema.{table}");
                let found = meta
                    .get(key.as_str())
                    .map_err(|e| self.err(e))?
                    .map(|g| g.value());
                match found {
                    Some(v) if v > *version => return Err(self.newer(table, v, *version)),
                    Some(_) => {}
                    None => {
                        meta.insert(key.as_str(), version)
                            .map_err(|e| self.err(e))?;
                    }
                }
            }
            tx.open_table(GRAPHS).map_err(|e| self.err(e))?;
            tx.open_table(RUNS).map_err(|e| self.err(e))?;
            tx.open_table(OUTPUTS).map_err(|e| self.err(e))?;
            tx.open_table(OUTPUT_PNG).map_err(|e| self.err(e))?;
            tx.open_table(OUTPUT_MASK_PNG).map_err(|e| self.err(e))?;
            tx.open_table(OUTPUT_CLEAN_PNG).map_err(|e| self.err(e))?;
            tx.open_table(BOOKMARKS).map_err(|e| self.err(e))?;
            tx.open_table(PRESETS).map_err(|e| self.err(e))?;
            tx.open_table(SETTINGS).map_err(|e| self.err(e))?;
            tx.open_table(TRAININGS).map_err(|e| self.err(e))?;
            tx.open_table(FEATURES).map_err(|e| self.err(e))?;
            tx.open_table(EVALUATIONS).map_err(|e| self.err(e))?;
            tx.open_table(QUEUE).map_err(|e| self.err(e))?;
            explore::open_tables(&tx).map_err(|e| self.err(e))?;
            tx.open_table(stats::STATS_BUCKETS)
                .map_err(|e| self.err(e))?;
            tx.open_table(stats::STATS_RUNS).map_err(|e| self.err(e))?;
        }
        if build_stats {
            self.stats_build(&tx)?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8], what: &str) -> Result<T> {
        serde_json::from_slice(bytes).map_err(|e| self.err(format!("corrupt {what} record: {e}")))
    }

    // ---- graphs ----

    /// Saves a new version of the named graph; returns its version number (1, 2, …).
    pub fn save_graph(&self, name: &str, graph_json: &str) -> Result<u64> {
        let tx = self.begin_write()?;
        let version;
        {
            let mut t = tx.open_table(GRAPHS).map_err(|e| self.err(e))?;
            let mut last = 0;
            for row in t.iter().map_err(|e| self.err(e))? {
                let (k, _) = row.map_err(|e| self.err(e))?;
                let (n, v) = k.value();
                if n == name {
                    last = last.max(v);
                }
            }
            version = last + 1;
            let rec = GraphVersion {
                name: name.into(),
                version,
                saved_ms: now_ms(),
                json: graph_json.into(),
            };
            t.insert((name, version), json(&rec).as_slice())
                .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(version)
    }

    /// Every saved version of every graph, by name then version.
    pub fn graph_versions(&self) -> Result<Vec<GraphVersion>> {
        let tx = self.begin_read()?;
        let Some(t) = read_table(&tx, GRAPHS).map_err(|e| self.err(e))? else {
            return Ok(Default::default());
        };
        let mut out = Vec::new();
        for row in t.iter().map_err(|e| self.err(e))? {
            let (_, v) = row.map_err(|e| self.err(e))?;
            out.push(self.decode(v.value(), "graph")?);
        }
        Ok(out)
    }

    /// The latest version of a named graph.
    pub fn latest_graph(&self, name: &str) -> Result<Option<GraphVersion>> {
        Ok(self
            .graph_versions()?
            .into_iter()
            .filter(|g| g.name == name)
            .max_by_key(|g| g.version))
    }

    // ---- runs ----

    /// Records a new run; returns its id. Counts it in the statistics (same transaction).
    pub fn begin_run(&self, rec: &RunRecord) -> Result<u64> {
        let tx = self.begin_write()?;
        let id;
        {
            let mut t = tx.open_table(RUNS).map_err(|e| self.err(e))?;
            id = t
                .last()
                .map_err(|e| self.err(e))?
                .map(|(k, _)| k.value() + 1)
                .unwrap_or(1);
            t.insert(id, json(rec).as_slice())
                .map_err(|e| self.err(e))?;
        }
        self.stats_on_record(&tx, id, rec)?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(id)
    }

    /// Replaces a run's record (status, timings, end time); its statistics follow (a new
    /// status, day or graph moves its counts).
    pub fn update_run(&self, id: u64, rec: &RunRecord) -> Result<()> {
        let tx = self.begin_write()?;
        {
            let mut t = tx.open_table(RUNS).map_err(|e| self.err(e))?;
            t.insert(id, json(rec).as_slice())
                .map_err(|e| self.err(e))?;
        }
        self.stats_on_record(&tx, id, rec)?;
        tx.commit().map_err(|e| self.err(e))
    }

    pub fn run(&self, id: u64) -> Result<Option<RunRecord>> {
        let tx = self.begin_read()?;
        let Some(t) = read_table(&tx, RUNS).map_err(|e| self.err(e))? else {
            return Ok(Default::default());
        };
        let v = t.get(id).map_err(|e| self.err(e))?;
        v.map(|v| self.decode(v.value(), "run")).transpose()
    }

    /// Every run, oldest first.
    pub fn runs(&self) -> Result<Vec<(u64, RunRecord)>> {
        let tx = self.begin_read()?;
        let Some(t) = read_table(&tx, RUNS).map_err(|e| self.err(e))? else {
            return Ok(Default::default());
        };
        let mut out = Vec::new();
        for row in t.iter().map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            out.push((k.value(), self.decode(v.value(), "run")?));
        }
        Ok(out)
    }

    // ---- LoRA trainings ----

    /// Records a new training run; returns its id.
    pub fn begin_training(&self, rec: &TrainingRecord) -> Result<u64> {
        self.insert_next(TRAININGS, &json(rec))
    }

    /// Replaces a training run's record (progress, status, LoRA hash).
    pub fn update_training(&self, id: u64, rec: &TrainingRecord) -> Result<()> {
        self.put(TRAININGS, id, &json(rec))
    }

    /// Every training run, oldest first.
    pub fn trainings(&self) -> Result<Vec<(u64, TrainingRecord)>> {
        let tx = self.begin_read()?;
        let Some(t) = read_table(&tx, TRAININGS).map_err(|e| self.err(e))? else {
            return Ok(Default::default());
        };
        let mut out = Vec::new();
        for row in t.iter().map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            out.push((k.value(), self.decode(v.value(), "training")?));
        }
        Ok(out)
    }

    // ---- outputs ----

    /// Commits one output (metadata, PNG bytes, optional mask PNG) in one durable transaction.
    pub fn add_output(
        &self,
        rec: &OutputRecord,
        png: &[u8],
        mask_png: Option<&[u8]>,
    ) -> Result<u64> {
        self.add_output_with_clean(rec, png, mask_png, None)
    }

    /// [`Store::add_output`], with the output's defect-free image (`clean_png`, SaveImage's
    /// `clean` input) committed in the same transaction.
    pub fn add_output_with_clean(
        &self,
        rec: &OutputRecord,
        png: &[u8],
        mask_png: Option<&[u8]>,
        clean_png: Option<&[u8]>,
    ) -> Result<u64> {
        let tx = self.begin_write()?;
        let id;
        {
            let mut t = tx.open_table(OUTPUTS).map_err(|e| self.err(e))?;
            id = t
                .last()
                .map_err(|e| self.err(e))?
                .map(|(k, _)| k.value() + 1)
                .unwrap_or(1);
            t.insert(id, json(rec).as_slice())
                .map_err(|e| self.err(e))?;
            let mut p = tx.open_table(OUTPUT_PNG).map_err(|e| self.err(e))?;
            p.insert(id, png).map_err(|e| self.err(e))?;
            if let Some(m) = mask_png {
                let mut mt = tx.open_table(OUTPUT_MASK_PNG).map_err(|e| self.err(e))?;
                mt.insert(id, m).map_err(|e| self.err(e))?;
            }
            if let Some(c) = clean_png {
                let mut ct = tx.open_table(OUTPUT_CLEAN_PNG).map_err(|e| self.err(e))?;
                ct.insert(id, c).map_err(|e| self.err(e))?;
            }
        }
        self.stats_on_output(&tx, rec, true)?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(id)
    }

    /// Stores an output's instance map (16-bit grey PNG of per-pixel defect instance ids).
    pub fn set_output_instances(&self, id: u64, png: &[u8]) -> Result<()> {
        let tx = self.begin_write()?;
        {
            let mut t = tx
                .open_table(OUTPUT_INSTANCES_PNG)
                .map_err(|e| self.err(e))?;
            t.insert(id, png).map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// The instance map PNG of an output, if its mask carried instance ids.
    pub fn output_instances_png(&self, id: u64) -> Result<Option<Vec<u8>>> {
        self.get_bytes(OUTPUT_INSTANCES_PNG, id)
    }

    /// Every output's metadata, oldest first; `run` filters to one run.
    pub fn outputs(&self, run: Option<u64>) -> Result<Vec<(u64, OutputRecord)>> {
        let tx = self.begin_read()?;
        let Some(t) = read_table(&tx, OUTPUTS).map_err(|e| self.err(e))? else {
            return Ok(Default::default());
        };
        let mut out = Vec::new();
        for row in t.iter().map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            let rec: OutputRecord = self.decode(v.value(), "output")?;
            if run.is_none_or(|r| r == rec.run_id) {
                out.push((k.value(), rec));
            }
        }
        Ok(out)
    }

    /// Deletes an output's record, PNG bytes, mask and clean image, and its bookmark (files on
    /// disk stay); its image leaves the statistics.
    pub fn delete_output(&self, id: u64) -> Result<()> {
        let tx = self.begin_write()?;
        {
            let removed = tx
                .open_table(OUTPUTS)
                .map_err(|e| self.err(e))?
                .remove(id)
                .map_err(|e| self.err(e))?
                .map(|v| self.decode::<OutputRecord>(v.value(), "output"))
                .transpose()?;
            if let Some(rec) = removed {
                self.stats_on_output(&tx, &rec, false)?;
            }
            tx.open_table(OUTPUT_PNG)
                .map_err(|e| self.err(e))?
                .remove(id)
                .map_err(|e| self.err(e))?;
            tx.open_table(OUTPUT_MASK_PNG)
                .map_err(|e| self.err(e))?
                .remove(id)
                .map_err(|e| self.err(e))?;
            tx.open_table(OUTPUT_INSTANCES_PNG)
                .map_err(|e| self.err(e))?
                .remove(id)
                .map_err(|e| self.err(e))?;
            tx.open_table(OUTPUT_CLEAN_PNG)
                .map_err(|e| self.err(e))?
                .remove(id)
                .map_err(|e| self.err(e))?;
            tx.open_table(BOOKMARKS)
                .map_err(|e| self.err(e))?
                .remove(id)
                .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// The PNG bytes of an output.
    pub fn output_png(&self, id: u64) -> Result<Option<Vec<u8>>> {
        self.get_bytes(OUTPUT_PNG, id)
    }

    /// The mask PNG bytes of an output, if it was saved with one.
    pub fn output_mask_png(&self, id: u64) -> Result<Option<Vec<u8>>> {
        self.get_bytes(OUTPUT_MASK_PNG, id)
    }

    /// The defect-free image saved with an output, if it was saved with one.
    pub fn output_clean_png(&self, id: u64) -> Result<Option<Vec<u8>>> {
        self.get_bytes(OUTPUT_CLEAN_PNG, id)
    }

    fn get_bytes(&self, table: TableDefinition<u64, &[u8]>, id: u64) -> Result<Option<Vec<u8>>> {
        let tx = self.begin_read()?;
        let Some(t) = read_table(&tx, table).map_err(|e| self.err(e))? else {
            return Ok(Default::default());
        };
        let v = t.get(id).map_err(|e| self.err(e))?;
        Ok(v.map(|v| v.value().to_vec()))
    }

    fn insert_next(&self, table: TableDefinition<u64, &[u8]>, bytes: &[u8]) -> Result<u64> {
        let tx = self.begin_write()?;
        let id;
        {
            let mut t = tx.open_table(table).map_err(|e| self.err(e))?;
            id = t
                .last()
                .map_err(|e| self.err(e))?
                .map(|(k, _)| k.value() + 1)
                .unwrap_or(1);
            t.insert(id, bytes).map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(id)
    }

    // ---- bookmarks, presets, settings ----

    /// Bookmarks an output with a note (replacing an earlier note).
    pub fn set_bookmark(&self, output_id: u64, note: &str) -> Result<()> {
        self.put(BOOKMARKS, output_id, &json(&note))
    }

    pub fn remove_bookmark(&self, output_id: u64) -> Result<()> {
        self.remove(BOOKMARKS, output_id)
    }

    /// Bookmarked outputs and their notes.
    pub fn bookmarks(&self) -> Result<Vec<(u64, String)>> {
        let tx = self.begin_read()?;
        let Some(t) = read_table(&tx, BOOKMARKS).map_err(|e| self.err(e))? else {
            return Ok(Default::default());
        };
        let mut out = Vec::new();
        for row in t.iter().map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            out.push((k.value(), self.decode(v.value(), "bookmark")?));
        }
        Ok(out)
    }

    /// Saves a named preset (a parameter set) for a node kind.
    pub fn save_preset(&self, kind: &str, name: &str, params: &serde_json::Value) -> Result<()> {
        self.put(PRESETS, (kind, name), &json(params))
    }

    pub fn delete_preset(&self, kind: &str, name: &str) -> Result<()> {
        self.remove(PRESETS, (kind, name))
    }

    /// The presets of one node kind, by name.
    pub fn presets(&self, kind: &str) -> Result<Vec<(String, serde_json::Value)>> {
        let tx = self.begin_read()?;
        let Some(t) = read_table(&tx, PRESETS).map_err(|e| self.err(e))? else {
            return Ok(Default::default());
        };
        let mut out = Vec::new();
        for row in t.iter().map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            let (kd, name) = k.value();
            if kd == kind {
                out.push((name.to_string(), self.decode(v.value(), "preset")?));
            }
        }
        Ok(out)
    }

    pub fn set_setting(&self, key: &str, value: &serde_json::Value) -> Result<()> {
        self.put(SETTINGS, key, &json(value))
    }

    pub fn setting(&self, key: &str) -> Result<Option<serde_json::Value>> {
        let tx = self.begin_read()?;
        let Some(t) = read_table(&tx, SETTINGS).map_err(|e| self.err(e))? else {
            return Ok(Default::default());
        };
        let v = t.get(key).map_err(|e| self.err(e))?;
        v.map(|v| self.decode(v.value(), "setting")).transpose()
    }

    fn put<K: redb::Key + 'static>(
        &self,
        table: TableDefinition<K, &[u8]>,
        key: K::SelfType<'_>,
        bytes: &[u8],
    ) -> Result<()> {
        let tx = self.begin_write()?;
        {
            let mut t = tx.open_table(table).map_err(|e| self.err(e))?;
            t.insert(key, bytes).map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    fn remove<K: redb::Key + 'static>(
        &self,
        table: TableDefinition<K, &[u8]>,
        key: K::SelfType<'_>,
    ) -> Result<()> {
        let tx = self.begin_write()?;
        {
            let mut t = tx.open_table(table).map_err(|e| self.err(e))?;
            t.remove(key).map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }
}
