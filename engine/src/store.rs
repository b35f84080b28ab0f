//! The redb store: graphs (every save kept as a version), runs (history), outputs (PNG bytes and
//! metadata), LoRA training runs, bookmarks, presets and settings. Every table is declared in
//! this module.
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
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redb::{
    ConcurrencyMode, Database, ReadOnlyDatabase, ReadOnlyTable, ReadTransaction, ReadableDatabase,
    ReadableTable, TableDefinition, TableError,
};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::error::{EngineError, Result};

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const GRAPHS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("graphs");
const RUNS: TableDefinition<u64, &[u8]> = TableDefinition::new("runs");
const OUTPUTS: TableDefinition<u64, &[u8]> = TableDefinition::new("outputs");
const OUTPUT_PNG: TableDefinition<u64, &[u8]> = TableDefinition::new("output_png");
const OUTPUT_MASK_PNG: TableDefinition<u64, &[u8]> = TableDefinition::new("output_mask_png");
const BOOKMARKS: TableDefinition<u64, &[u8]> = TableDefinition::new("bookmarks");
const PRESETS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("presets");
const SETTINGS: TableDefinition<&str, &[u8]> = TableDefinition::new("settings");
const TRAININGS: TableDefinition<u64, &[u8]> = TableDefinition::new("trainings");

/// Schema version of each table, recorded in `meta` as `schema.<table>`.
pub const SCHEMA: &[(&str, u64)] = &[
    ("graphs", 1),
    ("runs", 1),
    ("outputs", 1),
    ("output_png", 1),
    ("output_mask_png", 1),
    ("bookmarks", 1),
    ("presets", 1),
    ("settings", 1),
    ("trainings", 1),
];

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Civil date and time (UTC) from Unix milliseconds.
pub fn utc(ms: u64) -> (i64, u32, u32, u32, u32, u32) {
    let secs = (ms / 1000) as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        ((rem % 3600) / 60) as u32,
        (rem % 60) as u32,
    )
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) from Unix milliseconds.
pub fn format_utc(ms: u64) -> String {
    let (y, mo, d, h, mi, s) = utc(ms);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
}

/// One saved version of a named graph.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GraphVersion {
    pub name: String,
    pub version: u64,
    pub saved_ms: u64,
    /// The graph document, canonical JSON.
    pub json: String,
}

/// The state of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
    Cancelled,
    /// Derived when reading: a run still marked running whose process is gone (killed).
    Interrupted,
}

impl RunStatus {
    pub fn name(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

/// Time spent in one node of one work item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeTiming {
    pub item: u64,
    pub node: String,
    pub kind: String,
    pub seconds: f64,
    pub cached: bool,
}

/// A run in the history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub graph_name: String,
    /// The graph as it ran (a snapshot, so later edits do not change history).
    pub graph_json: String,
    pub seed: u64,
    /// Work items in this run (after sharding).
    pub items: u64,
    #[serde(default)]
    pub shard: Option<(u32, u32)>,
    pub status: RunStatus,
    pub pid: u32,
    pub started_ms: u64,
    #[serde(default)]
    pub ended_ms: Option<u64>,
    #[serde(default)]
    pub node_timings: Vec<NodeTiming>,
    #[serde(default)]
    pub error: Option<String>,
    /// The graph file the run came from, if any.
    #[serde(default)]
    pub graph_path: Option<String>,
}

impl RunRecord {
    /// The status, with a run whose process died while running reported as interrupted.
    pub fn effective_status(&self) -> RunStatus {
        effective_status(self.status, self.pid)
    }
}

/// `status`, or `Interrupted` when it says running but process `pid` is gone.
fn effective_status(status: RunStatus, pid: u32) -> RunStatus {
    if status == RunStatus::Running && pid != std::process::id() && !process_alive(pid) {
        RunStatus::Interrupted
    } else {
        status
    }
}

fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

/// A LoRA training run: what it trained on, how far it got, and the LoRA it wrote.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingRecord {
    /// The LoRA's name (its file stem).
    pub name: String,
    /// The base model as given, and its sha256 when known.
    pub model: String,
    #[serde(default)]
    pub model_sha256: Option<String>,
    pub data: String,
    /// The LoRA file (written at every checkpoint and at the end).
    pub lora_path: String,
    #[serde(default)]
    pub lora_sha256: Option<String>,
    pub checkpoint_path: String,
    /// The training parameters (as the CLI/panel named them).
    pub params: serde_json::Value,
    pub status: RunStatus,
    pub pid: u32,
    pub started_ms: u64,
    #[serde(default)]
    pub ended_ms: Option<u64>,
    pub steps_done: u64,
    pub steps_total: u64,
    #[serde(default)]
    pub resumed_from: u64,
    /// `(step, loss)` of every step, so the loss curve can be drawn again later.
    #[serde(default)]
    pub losses: Vec<(u64, f32)>,
    /// Sample images written during the run, `(step, path)`.
    #[serde(default)]
    pub samples: Vec<(u64, String)>,
    #[serde(default)]
    pub error: Option<String>,
}

impl TrainingRecord {
    /// The status, with a run whose process died while training reported as interrupted.
    pub fn effective_status(&self) -> RunStatus {
        effective_status(self.status, self.pid)
    }
}

/// Metadata of one saved output image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutputRecord {
    pub run_id: u64,
    pub item: u64,
    pub node: String,
    pub seed: u64,
    /// Where the PNG was written.
    pub path: String,
    /// sha256 of the PNG bytes (as stored and as written).
    pub sha256: String,
    pub width: u32,
    pub height: u32,
    #[serde(default)]
    pub mask_path: Option<String>,
    #[serde(default)]
    pub mask_sha256: Option<String>,
    pub created_ms: u64,
    /// The defect class (SaveImage's `label`), used as the category when exporting datasets.
    #[serde(default)]
    pub label: String,
    /// The parameters this work item set on top of the graph (folder items, sweeps), as
    /// `{"node.param": value}`.
    #[serde(default)]
    pub overrides: serde_json::Value,
}

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
    let tmp = path.with_file_name(format!(".{name}.new-{}-{}", std::process::id(), now_ms()));
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
        {
            let mut meta = tx.open_table(META).map_err(|e| self.err(e))?;
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
            tx.open_table(BOOKMARKS).map_err(|e| self.err(e))?;
            tx.open_table(PRESETS).map_err(|e| self.err(e))?;
            tx.open_table(SETTINGS).map_err(|e| self.err(e))?;
            tx.open_table(TRAININGS).map_err(|e| self.err(e))?;
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

    /// Records a new run; returns its id.
    pub fn begin_run(&self, rec: &RunRecord) -> Result<u64> {
        self.insert_next(RUNS, &json(rec))
    }

    /// Replaces a run's record (status, timings, end time).
    pub fn update_run(&self, id: u64, rec: &RunRecord) -> Result<()> {
        let tx = self.begin_write()?;
        {
            let mut t = tx.open_table(RUNS).map_err(|e| self.err(e))?;
            t.insert(id, json(rec).as_slice())
                .map_err(|e| self.err(e))?;
        }
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
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(id)
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

    /// Deletes an output's record, PNG bytes and mask, and its bookmark (files on disk stay).
    pub fn delete_output(&self, id: u64) -> Result<()> {
        let tx = self.begin_write()?;
        {
            tx.open_table(OUTPUTS)
                .map_err(|e| self.err(e))?
                .remove(id)
                .map_err(|e| self.err(e))?;
            tx.open_table(OUTPUT_PNG)
                .map_err(|e| self.err(e))?
                .remove(id)
                .map_err(|e| self.err(e))?;
            tx.open_table(OUTPUT_MASK_PNG)
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
