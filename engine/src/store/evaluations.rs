//! Evaluations (`evaluate`): one row per evaluation of a detector on a labelled set, with its
//! full report (metrics, curves, every image's score), the model's path and sha256 and the
//! data hash (docs/ARCHITECTURE.md, §15). Each is written in one transaction.

use serde::{Deserialize, Serialize};

use redb::ReadableTable;

use super::{json, read_table, Store, EVALUATIONS};
use crate::error::Result;
use crate::inspect::evaluate::EvalReport;

/// One stored evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvaluationRecord {
    /// The model file as given, and its sha256.
    pub model_path: String,
    pub model_sha256: String,
    /// The data folder and its content hash (`inspect::data::data_hash`).
    pub data_dir: String,
    pub data_hash: String,
    /// When it was evaluated (ms since the Unix epoch).
    pub created_ms: u64,
    pub report: EvalReport,
}

impl EvaluationRecord {
    /// A record of `report` for the model at `model_path`, made now.
    pub fn new(model_path: &str, report: EvalReport) -> Self {
        EvaluationRecord {
            model_path: model_path.to_string(),
            model_sha256: report.model_sha256.clone(),
            data_dir: report.data_root.clone(),
            data_hash: report.data_hash.clone(),
            created_ms: super::now_ms(),
            report,
        }
    }
}

impl Store {
    /// Stores an evaluation (one transaction); returns its id (1, 2, …).
    pub fn add_evaluation(&self, rec: &EvaluationRecord) -> Result<u64> {
        self.insert_next(EVALUATIONS, &json(rec))
    }

    /// One evaluation by id.
    pub fn evaluation(&self, id: u64) -> Result<Option<EvaluationRecord>> {
        self.get_bytes(EVALUATIONS, id)?
            .map(|b| self.decode(&b, "evaluation"))
            .transpose()
    }

    /// Every evaluation, oldest first.
    pub fn evaluations(&self) -> Result<Vec<(u64, EvaluationRecord)>> {
        let tx = self.begin_read()?;
        let Some(t) = read_table(&tx, EVALUATIONS).map_err(|e| self.err(e))? else {
            return Ok(Default::default());
        };
        let mut out = Vec::new();
        for row in t.iter().map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            out.push((k.value(), self.decode(v.value(), "evaluation")?));
        }
        Ok(out)
    }
}
