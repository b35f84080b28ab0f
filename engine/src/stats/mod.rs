//! Usage statistics from the store: what was generated, with which recipes, node kinds, models
//! and LoRAs, on which devices, how long it took, how often it failed, and the training runs
//! (docs/ARCHITECTURE.md §17).
//!
//! Filters: a date range (UTC days, both ends inclusive, by the day a run *started*), a graph
//! name and an output label. Trainings are not runs of a graph: the graph and label filters
//! do not apply to them, the date range does.
//!
//! The numbers come from running aggregates the store keeps per (day, graph) and per (day,
//! graph, label), updated in the same transactions that record runs and commit outputs, so a
//! query reads a few thousand small rows whatever the number of runs ([`stats`]).
//!
//! **What counts.** A run counts from `begin_run` on, on the day it started (UTC), in its graph.
//! Its status counts when its end is recorded (until then, or when its process died, it is
//! *unfinished*); a failed run's failure counts against the kind of the node whose error ended
//! it. Compute time is the time of the nodes that computed (cache hits count as cached, with no
//! time), summed in integer microseconds (each timing rounded once) so every sum is exact; it
//! counts for the node's kind, for the device the node ran on ([`recipe::analyse`]: its own
//! `device`, `auto` being the run's device; a node fed a model runs where the model was loaded;
//! anything else on `cpu`), and for every model the node runs (the node naming the model and
//! every node downstream of it through Model or Detector links: a Txt2Img's time counts for its
//! checkpoint and for each LoRA in its chain). A model's runs are the runs whose recipe names it,
//! its images the images those runs saved. Work items count when they finish and are kept (a
//! rejected item saved nothing and is not counted). Outputs without a label are in no label's
//! row. `run_batch` adds compute time to the store at most about once a second and at the end,
//! so a killed run loses at most about a second of it.
//!
//! **The label filter.** A run joins a label's statistics, with everything it has done so far,
//! when its first output with that label is committed; of its images only those with the label
//! count there. Deleting an output takes its image back out, and deleting a run's last output
//! with a label takes the run out of that label's statistics.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};
use crate::store::Store;

mod build;
pub mod csv;
pub mod recipe;
pub mod tables;
pub mod tally;

pub use build::merge;

/// A day: days since 1970-01-01 (UTC).
pub type Day = u32;

/// What a statistics query keeps.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsFilter {
    /// First day kept (inclusive).
    pub since: Option<Day>,
    /// Last day kept (inclusive).
    pub until: Option<Day>,
    /// Only runs of this graph (the run's graph name, as `history` shows it).
    pub graph: Option<String>,
    /// Only runs that saved at least one output with this label, and of their outputs only
    /// those with this label.
    pub label: Option<String>,
}

/// Run counts and totals.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub runs: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub cancelled: u64,
    /// Still running, or interrupted (a killed process never recorded an end).
    pub unfinished: u64,
    /// Work items finished.
    pub items: u64,
    /// Output images saved.
    pub images: u64,
    /// Compute seconds: the time nodes spent computing (cache hits cost nothing).
    pub seconds: f64,
}

/// One day or one ISO week.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PeriodRow {
    /// `YYYY-MM-DD`, or an ISO week `YYYY-Www`.
    pub period: String,
    pub runs: u64,
    pub images: u64,
    pub seconds: f64,
}

/// One graph (recipe): most-run first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GraphRow {
    pub graph: String,
    pub runs: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub images: u64,
    pub seconds: f64,
}

/// Images per output label.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LabelRow {
    pub label: String,
    pub images: u64,
}

/// One node kind.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KindRow {
    pub kind: String,
    /// Runs in which the kind ran (computed or from the cache) or failed at least once.
    pub runs: u64,
    /// Times a node of this kind computed.
    pub executed: u64,
    /// Times it was answered from the cache.
    pub cached: u64,
    /// Times it failed (the error that ended a run named a node of this kind).
    pub failed: u64,
    pub seconds: f64,
    /// `failed / (executed + failed)`; 0 when it never ran.
    pub failure_rate: f64,
}

/// One model file (checkpoint, VAE, LoRA, ISNet, detector…), by name and sha256.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelRow {
    /// What the model is to the recipe: `checkpoint`, `vae`, `lora`, `isnet`, `detector`, …
    pub role: String,
    /// The name the recipe gave (file name or path).
    pub name: String,
    /// Its sha256 when it could be hashed (empty otherwise).
    pub sha256: String,
    /// Runs whose recipe used it.
    pub runs: u64,
    /// Images those runs saved.
    pub images: u64,
    /// Compute seconds of the nodes that ran it.
    pub seconds: f64,
}

/// One device (`cpu`, `cuda:0`, …).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceRow {
    pub device: String,
    /// Runs whose default device it was.
    pub runs: u64,
    /// Compute seconds of the nodes that ran on it.
    pub seconds: f64,
}

/// Training runs of one kind (`lora`, `classifier`, `segmenter`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingRow {
    pub kind: String,
    pub runs: u64,
    pub succeeded: u64,
    pub failed: u64,
    /// Hours of finished trainings (start to end).
    pub hours: f64,
}

/// Everything a statistics query answers. Rows are sorted: periods by date; graphs, kinds,
/// models, LoRAs and devices by runs (then seconds), most first, ties by name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub filter: StatsFilter,
    pub totals: Totals,
    pub per_day: Vec<PeriodRow>,
    pub per_week: Vec<PeriodRow>,
    pub graphs: Vec<GraphRow>,
    pub labels: Vec<LabelRow>,
    pub kinds: Vec<KindRow>,
    /// Every model but LoRAs.
    pub models: Vec<ModelRow>,
    pub loras: Vec<ModelRow>,
    pub devices: Vec<DeviceRow>,
    pub trainings: Vec<TrainingRow>,
}

/// Statistics over `store` under `filter`: the buckets in range summed
/// ([`Store::stats_tallies`]; counted from the records on a read-only handle of a store made
/// before the aggregates existed), and the trainings (few rows) counted from their records.
pub fn stats(store: &Store, filter: &StatsFilter) -> Result<Stats> {
    let rows = store.stats_tallies(filter)?;
    let trainings = store.trainings()?;
    Ok(build::build(filter, &rows, &trainings))
}

/// The day of a Unix time in milliseconds (UTC).
pub fn day_of_ms(ms: u64) -> Day {
    (ms / 86_400_000) as Day
}

/// `YYYY-MM-DD` of a day.
pub fn format_day(day: Day) -> String {
    let (y, m, d, ..) = crate::store::utc(u64::from(day) * 86_400_000);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Parses `YYYY-MM-DD` (a UTC day); the error names the text and the expected form.
pub fn parse_day(text: &str) -> Result<Day> {
    let bad = || {
        EngineError::Plan(format!(
            "date \"{text}\": expected YYYY-MM-DD (a UTC day, e.g. 2026-12-01)"
        ))
    };
    let mut parts = text.trim().split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let (y, m, d): (i64, i64, i64) = (
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        d.parse().map_err(|_| bad())?,
    );
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return Err(bad());
    }
    // Howard Hinnant's days-from-civil.
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Ok((era * 146_097 + doe - 719_468) as Day)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The ISO week of a day, as `YYYY-Www` (weeks start on Monday; week 1 holds the year's first
/// Thursday).
pub fn iso_week(day: Day) -> String {
    let day = i64::from(day);
    // 1970-01-01 was a Thursday; ISO weekday 1 = Monday … 7 = Sunday.
    let weekday = (day + 3).rem_euclid(7) + 1;
    let thursday = day - weekday + 4;
    let (year, ..) = crate::store::utc(thursday as u64 * 86_400_000);
    let jan1 = parse_day(&format!("{year:04}-01-01")).map_or(0, i64::from);
    let week = (thursday - jan1) / 7 + 1;
    format!("{year:04}-W{week:02}")
}

/// Files [`csv::write_dir`] writes, for callers that list them.
pub fn csv_files(dir: &Path) -> Vec<PathBuf> {
    csv::FILES.iter().map(|f| dir.join(f)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip() {
        for text in ["1970-01-01", "2000-02-29", "2026-12-06", "2100-03-01"] {
            assert_eq!(format_day(parse_day(text).unwrap()), text);
        }
        assert_eq!(
            day_of_ms(1_795_635_677_000),
            parse_day("2026-11-25").unwrap()
        );
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "26-1-1",
            "2026-01-01-1",
            "yesterday",
        ] {
            assert!(parse_day(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn iso_weeks() {
        // Python: datetime.date(y, m, d).isocalendar()
        for (d, w) in [
            ("2026-12-06", "2026-W49"),
            ("2026-12-07", "2026-W50"),
            ("2021-01-03", "2020-W53"),
            ("2024-12-30", "2025-W01"),
            ("1970-01-01", "1970-W01"),
        ] {
            assert_eq!(iso_week(parse_day(d).unwrap()), w, "{d}");
        }
    }
}
