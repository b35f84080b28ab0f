//! The `queue` table: batches waiting in a worker's queue ([`crate::queue`]), one row each
//! (id → JSON of a [`QueuedBatch`]), written when the batch is queued and removed when it
//! starts (its run record then takes over) or is removed from the queue. Row ids only grow
//! (`meta`'s `queue.next`), so a row id never names two batches.

use std::path::PathBuf;

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::{read_table, Store, META, QUEUE};
use crate::error::{EngineError, Result};
use crate::run::Plan;

/// `meta` key of the next queue row id.
const NEXT_KEY: &str = "queue.next";

/// A queued batch as kept in the store: everything of a [`crate::run::BatchJob`] but its store
/// (the store holding the row), plus who queued it and when.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct QueuedBatch {
    /// The document as JSON (`GraphDoc::to_json`; read back through the migrations).
    pub graph_json: String,
    pub graph_name: String,
    pub base_dir: PathBuf,
    pub items: Plan,
    pub base_seed: u64,
    pub shard: Option<(u32, u32)>,
    pub out_dir: PathBuf,
    pub targets: Option<Vec<String>>,
    pub graph_path: Option<PathBuf>,
    pub embed_assets: bool,
    /// The process whose worker holds the batch in its queue (0: none, its worker went away).
    pub pid: u32,
    /// When it was first queued (ms since the Unix epoch).
    pub submitted_ms: u64,
    /// The device the batch targets (`None`: the default device when it runs).
    #[serde(default)]
    pub device: Option<String>,
}

impl Store {
    /// Keeps a queued batch; returns its row id.
    pub fn add_queued(&self, rec: &QueuedBatch) -> Result<u64> {
        let bytes = serde_json::to_vec(rec)?;
        let tx = self.begin_write()?;
        let id;
        {
            let mut meta = tx.open_table(META).map_err(|e| self.err(e))?;
            let next = meta
                .get(NEXT_KEY)
                .map_err(|e| self.err(e))?
                .map(|g| g.value())
                .unwrap_or(1);
            let mut t = tx.open_table(QUEUE).map_err(|e| self.err(e))?;
            let after_last = t
                .last()
                .map_err(|e| self.err(e))?
                .map(|(k, _)| k.value() + 1)
                .unwrap_or(1);
            id = next.max(after_last);
            t.insert(id, bytes.as_slice()).map_err(|e| self.err(e))?;
            meta.insert(NEXT_KEY, id + 1).map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(id)
    }

    /// Every queued batch, by row id (queue order).
    pub fn queued(&self) -> Result<Vec<(u64, QueuedBatch)>> {
        let tx = self.begin_read()?;
        let Some(t) = read_table(&tx, QUEUE).map_err(|e| self.err(e))? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for row in t.iter().map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            out.push((k.value(), self.decode(v.value(), "queued batch")?));
        }
        Ok(out)
    }

    /// Removes a queued batch's row; false when it was already gone (started or dropped by
    /// another process). A worker starts a stored batch only when this returns true, so two
    /// processes never both run it.
    pub fn take_queued(&self, id: u64) -> Result<bool> {
        let tx = self.begin_write()?;
        let found;
        {
            let mut t = tx.open_table(QUEUE).map_err(|e| self.err(e))?;
            found = t.remove(id).map_err(|e| self.err(e))?.is_some();
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(found)
    }

    /// Records that process `pid` now holds queued batch `id`; false when the row is gone.
    pub fn set_queued_owner(&self, id: u64, pid: u32) -> Result<bool> {
        self.update_queued(id, |rec| rec.pid = pid)
    }

    /// Sets the device queued batch `id` targets (`None`: the default device when it starts);
    /// false when the row is gone (started or dropped).
    pub fn set_queued_device(&self, id: u64, device: Option<String>) -> Result<bool> {
        self.update_queued(id, |rec| rec.device = device)
    }

    /// Changes queued batch `id`'s record in one transaction; false when the row is gone.
    fn update_queued(&self, id: u64, change: impl FnOnce(&mut QueuedBatch)) -> Result<bool> {
        let tx = self.begin_write()?;
        let found;
        {
            let mut t = tx.open_table(QUEUE).map_err(|e| self.err(e))?;
            let rec: Option<QueuedBatch> = t
                .get(id)
                .map_err(|e| self.err(e))?
                .map(|v| self.decode(v.value(), "queued batch"))
                .transpose()?;
            found = rec.is_some();
            if let Some(mut rec) = rec {
                change(&mut rec);
                let bytes = serde_json::to_vec(&rec).map_err(EngineError::Json)?;
                t.insert(id, bytes.as_slice()).map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(found)
    }
}
