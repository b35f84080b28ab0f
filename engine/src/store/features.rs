//! Explorer features, cached by image content: one row per (feature model, image sha256).
//! The row format belongs to [`crate::explore::features`]; the store only keeps the bytes.

use super::{read_table, Store, FEATURES};
use crate::error::Result;

/// The key of an image's features under a feature model: `"<model id>/<sha256>"`.
fn key(model: &str, sha256: &str) -> String {
    format!("{model}/{sha256}")
}

impl Store {
    /// Stores the encoded features of several images in one transaction.
    pub fn put_features(&self, model: &str, rows: &[(String, Vec<u8>)]) -> Result<()> {
        let tx = self.begin_write()?;
        {
            let mut t = tx.open_table(FEATURES).map_err(|e| self.err(e))?;
            for (sha, bytes) in rows {
                t.insert(key(model, sha).as_str(), bytes.as_slice())
                    .map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// The encoded features of each image (`None` where none are cached), read in one
    /// transaction, in the order of `shas`.
    pub fn features(&self, model: &str, shas: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        let tx = self.begin_read()?;
        let Some(t) = read_table(&tx, FEATURES).map_err(|e| self.err(e))? else {
            return Ok(vec![None; shas.len()]);
        };
        shas.iter()
            .map(|sha| {
                let v = t.get(key(model, sha).as_str()).map_err(|e| self.err(e))?;
                Ok(v.map(|v| v.value().to_vec()))
            })
            .collect()
    }
}
