//! Statistics as CSV files, one per breakdown, for spreadsheets and pandas (contract stub: the
//! stats-CLI helper implements it).

use std::path::{Path, PathBuf};

use super::Stats;
use crate::error::Result;

/// The files [`write_dir`] writes, in order.
pub const FILES: &[&str] = &[
    "totals.csv",
    "per_day.csv",
    "per_week.csv",
    "graphs.csv",
    "labels.csv",
    "kinds.csv",
    "models.csv",
    "loras.csv",
    "devices.csv",
    "trainings.csv",
];

/// Writes every breakdown of `stats` into `dir` (created if missing); returns the files written.
pub fn write_dir(stats: &Stats, dir: &Path) -> Result<Vec<PathBuf>> {
    let _ = (stats, dir);
    Ok(Vec::new())
}
