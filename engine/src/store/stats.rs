//! The statistics aggregates (docs/ARCHITECTURE.md §17): a [`Tally`] per (day, graph) and per
//! (day, graph, label), and a [`RunState`] per run, updated in the same write transactions that
//! record the facts (`begin_run`, `update_run`, `add_output*`, `delete_output`, and
//! [`Store::add_run_usage`], which `run_batch` calls about once a second and at the end).
//!
//! Every change goes through one function ([`Store::stats_apply`]): the run's contributions
//! come out of the buckets, its state changes, its new contributions go in. A store made before
//! these tables existed gets them built from its records on its first read-write open (one
//! transaction, in `init_schema`); a read-only handle on such a store counts from the records.

use std::collections::{BTreeMap, BTreeSet};

use redb::{ReadableTable, TableDefinition, WriteTransaction};

use super::{json, read_table, OutputRecord, RunRecord, Store, OUTPUTS, OUTPUT_PNG, RUNS};
use crate::error::Result;
use crate::stats::tally::{RunState, Tally};
use crate::stats::{Day, StatsFilter};

/// Tallies by (day the runs started, graph name, output label); label `""` is the graph's
/// bucket (every run and image), a label's bucket holds the runs that saved an output with it.
pub(super) const STATS_BUCKETS: TableDefinition<(u32, &str, &str), &[u8]> =
    TableDefinition::new("stats_buckets");
/// The same tallies by (month, graph, label), the month counted `year · 12 + month − 1`: a
/// query over whole months reads these instead of every day's.
pub(super) const STATS_MONTHS: TableDefinition<(u32, &str, &str), &[u8]> =
    TableDefinition::new("stats_months");
/// The counts of the day tallies alone (runs, statuses, items, images, compute time; no
/// per-kind, model, device or label rows), for the per-day, per-week and per-graph rows.
pub(super) const STATS_DAYS: TableDefinition<(u32, &str, &str), &[u8]> =
    TableDefinition::new("stats_days");
/// The statistics state of each run (its facts and cumulative usage), by run id.
pub(super) const STATS_RUNS: TableDefinition<u64, &[u8]> = TableDefinition::new("stats_runs");

/// An aggregate table: tallies by (day or month, graph, label).
type AggregateTable = TableDefinition<'static, (u32, &'static str, &'static str), &'static [u8]>;

/// Every aggregate table (cleared and rebuilt together).
const AGGREGATES: [AggregateTable; 3] = [STATS_BUCKETS, STATS_MONTHS, STATS_DAYS];

/// Creates the statistics tables (`init_schema`).
pub(super) fn open_tables(tx: &WriteTransaction) -> std::result::Result<(), redb::TableError> {
    for t in AGGREGATES {
        tx.open_table(t)?;
    }
    tx.open_table(STATS_RUNS)?;
    Ok(())
}

/// Whether the aggregates must be built from the records: a store made before them (or before
/// one of them), i.e. `meta` lacks one of their schema versions.
pub(super) fn needs_build(
    meta: &redb::Table<&str, u64>,
) -> std::result::Result<bool, redb::StorageError> {
    for name in ["stats_buckets", "stats_months", "stats_days", "stats_runs"] {
        if meta.get(format!("schema.{name}").as_str())?.is_none() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The month of a day: `year · 12 + month − 1`.
pub fn month_of(day: Day) -> u32 {
    let (y, m, ..) = super::utc(u64::from(day) * 86_400_000);
    (y as u32) * 12 + (m - 1)
}

/// The first day of a month ([`month_of`]).
fn month_start(month: u32) -> Day {
    crate::stats::parse_day(&format!("{:04}-{:02}-01", month / 12, month % 12 + 1)).unwrap_or(0)
}

/// What a statistics query sums ([`Store::stats_tallies`]).
#[derive(Clone, Debug, Default)]
pub struct StatsRows {
    /// `(day, graph, counts)`: runs, statuses, items, images and compute time per day and
    /// graph (the per-kind, model, device and label maps may be empty).
    pub days: Vec<(Day, String, Tally)>,
    /// Tallies whose sum holds the per-kind, model, device and label breakdowns of the same
    /// runs (whole months, and the days of the months the range cuts).
    pub breakdowns: Vec<Tally>,
}

/// A bucket's key, owned.
type BucketKey = (Day, String, String);

/// One run for [`Store::import_runs`]: its record (final: status, times, `node_timings` as the
/// run's usage) and its outputs (metadata and PNG bytes; `run_id` is set on import).
#[derive(Clone, Debug)]
pub struct ImportRun {
    pub record: RunRecord,
    pub outputs: Vec<(OutputRecord, Vec<u8>)>,
}

/// Items with at least one timing: the items a record's `node_timings` shows finished.
fn timed_items(rec: &RunRecord) -> u64 {
    rec.node_timings
        .iter()
        .map(|t| t.item)
        .collect::<BTreeSet<_>>()
        .len() as u64
}

impl Store {
    /// Applies `change` to run `run_id`'s statistics state inside `tx`: its old contributions
    /// leave their buckets, the new ones join theirs. `change` gets the state (`None`: the run
    /// has none yet) and returns the new one (`None`: nothing to count).
    pub(super) fn stats_apply(
        &self,
        tx: &WriteTransaction,
        run_id: u64,
        change: impl FnOnce(Option<RunState>) -> Option<RunState>,
    ) -> Result<()> {
        let mut runs = tx.open_table(STATS_RUNS).map_err(|e| self.err(e))?;
        let before: Option<RunState> = match runs.get(run_id).map_err(|e| self.err(e))? {
            Some(v) => Some(self.decode(v.value(), "run statistics")?),
            None => None,
        };
        let after = change(before.clone());
        if before == after {
            return Ok(());
        }
        let mut moves: BTreeMap<BucketKey, (Option<Tally>, Option<Tally>)> = BTreeMap::new();
        for (state, out) in [(&before, true), (&after, false)] {
            let Some(s) = state else { continue };
            for label in s.bucket_labels() {
                let c = s.contribution(&label);
                let slot = moves.entry((s.day, s.graph.clone(), label)).or_default();
                if out {
                    slot.0 = Some(c);
                } else {
                    slot.1 = Some(c);
                }
            }
        }
        for (table, at) in [
            (STATS_BUCKETS, Granule::Day),
            (STATS_MONTHS, Granule::Month),
            (STATS_DAYS, Granule::Counts),
        ] {
            let mut buckets = tx.open_table(table).map_err(|e| self.err(e))?;
            for ((day, graph, label), (old, new)) in &moves {
                let (old, new) = match at {
                    Granule::Counts => (
                        old.as_ref().map(Tally::counts),
                        new.as_ref().map(Tally::counts),
                    ),
                    _ => (old.clone(), new.clone()),
                };
                if old == new {
                    continue;
                }
                let first = match at {
                    Granule::Month => month_of(*day),
                    _ => *day,
                };
                let key = (first, graph.as_str(), label.as_str());
                let mut tally: Tally = match buckets.get(key).map_err(|e| self.err(e))? {
                    Some(v) => self.decode(v.value(), "statistics bucket")?,
                    None => Tally::default(),
                };
                if let Some(old) = &old {
                    tally.sub(old);
                }
                if let Some(new) = &new {
                    tally.add(new);
                }
                if tally.is_empty() {
                    buckets.remove(key).map_err(|e| self.err(e))?;
                } else {
                    buckets
                        .insert(key, json(&tally).as_slice())
                        .map_err(|e| self.err(e))?;
                }
            }
        }
        match &after {
            Some(s) => runs
                .insert(run_id, json(s).as_slice())
                .map_err(|e| self.err(e))?,
            None => runs.remove(run_id).map_err(|e| self.err(e))?,
        };
        Ok(())
    }

    /// A run's record was written (begun, updated, moved to another day or graph, ended).
    pub(super) fn stats_on_record(
        &self,
        tx: &WriteTransaction,
        run_id: u64,
        rec: &RunRecord,
    ) -> Result<()> {
        self.stats_apply(tx, run_id, |s| {
            let mut s = s.unwrap_or_default();
            s.set_record(rec);
            Some(s)
        })
    }

    /// An output was committed (`add`) or deleted.
    pub(super) fn stats_on_output(
        &self,
        tx: &WriteTransaction,
        rec: &OutputRecord,
        add: bool,
    ) -> Result<()> {
        self.stats_apply(tx, rec.run_id, |s| {
            s.map(|mut s| {
                s.count_output(&rec.label, add);
                s
            })
        })
    }

    /// Adds compute usage to a running run: `items` more work items finished, and their node
    /// timings (`RunOutcome::stats`). `run_batch` calls it at most about once a second and at
    /// the end, so a killed run loses at most about a second of compute time. A run with no
    /// statistics state (unknown id) is left alone.
    pub fn add_run_usage(
        &self,
        run_id: u64,
        items: u64,
        timings: &[crate::store::NodeTiming],
    ) -> Result<()> {
        if items == 0 && timings.is_empty() {
            return Ok(());
        }
        let tx = self.begin_write()?;
        self.stats_apply(&tx, run_id, |s| {
            s.map(|mut s| {
                s.items += items;
                s.add_timings(timings);
                s
            })
        })?;
        tx.commit().map_err(|e| self.err(e))
    }

    /// Records many finished runs and their outputs in one transaction (imports, benchmarks),
    /// through the same statistics code as [`Store::begin_run`], [`Store::add_output`] and
    /// [`Store::add_run_usage`] (each record's `node_timings` is its usage). Returns the new run
    /// ids.
    pub fn import_runs(&self, runs: &[ImportRun]) -> Result<Vec<u64>> {
        let tx = self.begin_write()?;
        let mut ids = Vec::with_capacity(runs.len());
        {
            for run in runs {
                let id = {
                    let mut t = tx.open_table(RUNS).map_err(|e| self.err(e))?;
                    let id = t
                        .last()
                        .map_err(|e| self.err(e))?
                        .map(|(k, _)| k.value() + 1)
                        .unwrap_or(1);
                    t.insert(id, json(&run.record).as_slice())
                        .map_err(|e| self.err(e))?;
                    id
                };
                self.stats_on_record(&tx, id, &run.record)?;
                for (out, png) in &run.outputs {
                    let mut rec = out.clone();
                    rec.run_id = id;
                    {
                        let mut t = tx.open_table(OUTPUTS).map_err(|e| self.err(e))?;
                        let oid = t
                            .last()
                            .map_err(|e| self.err(e))?
                            .map(|(k, _)| k.value() + 1)
                            .unwrap_or(1);
                        t.insert(oid, json(&rec).as_slice())
                            .map_err(|e| self.err(e))?;
                        let mut p = tx.open_table(OUTPUT_PNG).map_err(|e| self.err(e))?;
                        p.insert(oid, png.as_slice()).map_err(|e| self.err(e))?;
                    }
                    self.stats_on_output(&tx, &rec, true)?;
                }
                let items = timed_items(&run.record);
                self.stats_apply(&tx, id, |s| {
                    s.map(|mut s| {
                        s.items += items;
                        s.add_timings(&run.record.node_timings);
                        s
                    })
                })?;
                ids.push(id);
            }
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(ids)
    }

    /// Builds the aggregates from the records inside `tx` (a store made before they existed),
    /// through [`Store::stats_apply`].
    pub(super) fn stats_build(&self, tx: &WriteTransaction) -> Result<()> {
        for t in AGGREGATES {
            tx.open_table(t)
                .map_err(|e| self.err(e))?
                .retain(|_, _| false)
                .map_err(|e| self.err(e))?;
        }
        let states = {
            let runs = tx.open_table(RUNS).map_err(|e| self.err(e))?;
            let outputs = tx.open_table(OUTPUTS).map_err(|e| self.err(e))?;
            let usage = tx.open_table(STATS_RUNS).map_err(|e| self.err(e))?;
            let kept = |id: u64| -> Result<Option<RunState>> {
                let v = usage.get(id).map_err(|e| self.err(e))?;
                v.map(|v| self.decode(v.value(), "run statistics"))
                    .transpose()
            };
            self.states_of(&runs, &outputs, Some(&kept))?
        };
        tx.open_table(STATS_RUNS)
            .map_err(|e| self.err(e))?
            .retain(|_, _| false)
            .map_err(|e| self.err(e))?;
        for (id, state) in states {
            self.stats_apply(tx, id, |_| Some(state))?;
        }
        Ok(())
    }

    /// Rebuilds every aggregate from the records in one transaction (`store rebuild-stats`):
    /// the repair when `store check` finds them out of step (e.g. after an older build wrote to
    /// the store). Each run's compute usage is kept from its usage row.
    pub fn rebuild_stats(&self) -> Result<()> {
        let tx = self.begin_write()?;
        self.stats_build(&tx)?;
        tx.commit().map_err(|e| self.err(e))
    }

    /// Every run's statistics state recounted from the records: the record's facts, its
    /// outputs, and its usage from `usage` (the `stats_runs` row) when there is one, else from
    /// its `node_timings` (at most `MAX_NODE_TIMINGS` entries: the first items of a long run).
    fn states_of(
        &self,
        runs: &impl ReadableTable<u64, &'static [u8]>,
        outputs: &impl ReadableTable<u64, &'static [u8]>,
        usage: Option<&dyn Fn(u64) -> Result<Option<RunState>>>,
    ) -> Result<Vec<(u64, RunState)>> {
        let mut states = BTreeMap::new();
        for row in runs.iter().map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            let rec: RunRecord = self.decode(v.value(), "run")?;
            let mut s = RunState::default();
            s.set_record(&rec);
            match usage.map(|u| u(k.value())).transpose()?.flatten() {
                Some(kept) => {
                    s.items = kept.items;
                    s.nodes = kept.nodes;
                }
                None => {
                    s.items = timed_items(&rec);
                    s.add_timings(&rec.node_timings);
                }
            }
            states.insert(k.value(), s);
        }
        for row in outputs.iter().map_err(|e| self.err(e))? {
            let (_, v) = row.map_err(|e| self.err(e))?;
            let rec: OutputRecord = self.decode(v.value(), "output")?;
            if let Some(s) = states.get_mut(&rec.run_id) {
                s.count_output(&rec.label, true);
            }
        }
        Ok(states.into_iter().collect())
    }

    /// The tallies a statistics query sums ([`StatsRows`]), of the buckets `filter` keeps (its
    /// label's buckets with a label filter, else the graphs'). From the aggregate tables; on a
    /// read-only handle of a store made before them, counted from the records.
    pub fn stats_tallies(&self, filter: &StatsFilter) -> Result<StatsRows> {
        let since = filter.since.unwrap_or(0);
        let until = filter.until.unwrap_or(Day::MAX);
        let label = filter.label.as_deref().unwrap_or("");
        let keep_graph = |g: &str| filter.graph.as_deref().is_none_or(|f| f == g);
        let tx = self.begin_read()?;
        let tables = (
            read_table(&tx, STATS_DAYS).map_err(|e| self.err(e))?,
            read_table(&tx, STATS_MONTHS).map_err(|e| self.err(e))?,
            read_table(&tx, STATS_BUCKETS).map_err(|e| self.err(e))?,
        );
        let (Some(days), Some(months), Some(buckets)) = tables else {
            let (Some(runs), Some(outputs)) = (
                read_table(&tx, RUNS).map_err(|e| self.err(e))?,
                read_table(&tx, OUTPUTS).map_err(|e| self.err(e))?,
            ) else {
                return Ok(StatsRows::default());
            };
            let mut out = StatsRows::default();
            for (_, s) in self.states_of(&runs, &outputs, None)? {
                let in_label = label.is_empty() || s.labels.contains_key(label);
                if (since..=until).contains(&s.day) && keep_graph(&s.graph) && in_label {
                    let c = s.contribution(label);
                    out.days.push((s.day, s.graph.clone(), c.clone()));
                    out.breakdowns.push(c);
                }
            }
            return Ok(out);
        };
        let mut out = StatsRows::default();
        if since > until {
            return Ok(out);
        }
        // Reads the rows of `table` from `from` to `to` (inclusive) that the filter keeps.
        let read =
            |table: &redb::ReadOnlyTable<(u32, &'static str, &'static str), &'static [u8]>,
             from: u32,
             to: u32,
             each: &mut dyn FnMut(u32, &str, Tally)|
             -> Result<()> {
                for row in table.range((from, "", "")..).map_err(|e| self.err(e))? {
                    let (k, v) = row.map_err(|e| self.err(e))?;
                    let (at, graph, l) = k.value();
                    if at > to {
                        break;
                    }
                    if l == label && keep_graph(graph) {
                        each(at, graph, self.decode(v.value(), "statistics bucket")?);
                    }
                }
                Ok(())
            };
        read(&days, since, until, &mut |day, graph, t| {
            out.days.push((day, graph.to_string(), t))
        })?;
        // The breakdowns: whole months from the month rows, cut months day by day, over the
        // days that have runs.
        let (Some(lo), Some(hi)) = (
            out.days.iter().map(|d| d.0).min(),
            out.days.iter().map(|d| d.0).max(),
        ) else {
            return Ok(out);
        };
        let mut breakdowns = Vec::new();
        for month in month_of(lo)..=month_of(hi) {
            let (first, last) = (month_start(month), month_start(month + 1).saturating_sub(1));
            if first >= since && last <= until {
                read(&months, month, month, &mut |_, _, t| breakdowns.push(t))?;
            } else {
                read(&buckets, first.max(lo), last.min(hi), &mut |_, _, t| {
                    breakdowns.push(t)
                })?;
            }
        }
        out.breakdowns = breakdowns;
        Ok(out)
    }

    /// Recounts every bucket from the records (and the per-run usage rows) and lists each
    /// bucket whose stored tally differs (`store check`). Empty when they agree, or when the
    /// store has no aggregate tables (statistics then count from the records).
    pub fn check_stats(&self) -> Result<Vec<String>> {
        let tx = self.begin_read()?;
        let (Some(usage), Some(runs), Some(outputs)) = (
            read_table(&tx, STATS_RUNS).map_err(|e| self.err(e))?,
            read_table(&tx, RUNS).map_err(|e| self.err(e))?,
            read_table(&tx, OUTPUTS).map_err(|e| self.err(e))?,
        ) else {
            return Ok(Vec::new());
        };
        let kept = |id: u64| -> Result<Option<RunState>> {
            let v = usage.get(id).map_err(|e| self.err(e))?;
            v.map(|v| self.decode(v.value(), "run statistics"))
                .transpose()
        };
        let mut expected: BTreeMap<BucketKey, Tally> = BTreeMap::new();
        for (_, s) in self.states_of(&runs, &outputs, Some(&kept))? {
            for label in s.bucket_labels() {
                let c = s.contribution(&label);
                expected
                    .entry((s.day, s.graph.clone(), label))
                    .or_default()
                    .add(&c);
            }
        }
        let mut months: BTreeMap<BucketKey, Tally> = BTreeMap::new();
        let mut counts: BTreeMap<BucketKey, Tally> = BTreeMap::new();
        for ((day, graph, label), t) in &expected {
            months
                .entry((month_of(*day), graph.clone(), label.clone()))
                .or_default()
                .add(t);
            counts.insert((*day, graph.clone(), label.clone()), t.counts());
        }
        let mut problems = Vec::new();
        for (table, want, at) in [
            (STATS_BUCKETS, expected, Granule::Day),
            (STATS_MONTHS, months, Granule::Month),
            (STATS_DAYS, counts, Granule::Counts),
        ] {
            let Some(table) = read_table(&tx, table).map_err(|e| self.err(e))? else {
                continue;
            };
            self.compare(&table, want, at, &mut problems)?;
        }
        Ok(problems)
    }

    /// Lists the rows of `table` that differ from `want`.
    fn compare(
        &self,
        table: &redb::ReadOnlyTable<(u32, &'static str, &'static str), &'static [u8]>,
        mut want: BTreeMap<BucketKey, Tally>,
        at: Granule,
        problems: &mut Vec<String>,
    ) -> Result<()> {
        for row in table.iter().map_err(|e| self.err(e))? {
            let (k, v) = row.map_err(|e| self.err(e))?;
            let (first, graph, label) = k.value();
            let stored: Tally = self.decode(v.value(), "statistics bucket")?;
            let key = (first, graph.to_string(), label.to_string());
            let expected = want.remove(&key).unwrap_or_default();
            if stored != expected {
                problems.push(bucket_difference(&key, at, &stored, &expected));
            }
        }
        for (key, expected) in want {
            problems.push(bucket_difference(&key, at, &Tally::default(), &expected));
        }
        Ok(())
    }
}

/// Which aggregate table a change goes to.
#[derive(Clone, Copy)]
enum Granule {
    Day,
    Month,
    Counts,
}

/// One line for `store check`: which bucket, what it holds, what the records say.
fn bucket_difference(key: &BucketKey, at: Granule, stored: &Tally, want: &Tally) -> String {
    let (first, graph, label) = key;
    let when = match at {
        Granule::Day => crate::stats::format_day(*first),
        Granule::Month => format!("the month {:04}-{:02}", first / 12, first % 12 + 1),
        Granule::Counts => format!("{} (counts)", crate::stats::format_day(*first)),
    };
    let what = if label.is_empty() {
        format!("graph \"{graph}\"")
    } else {
        format!("graph \"{graph}\", label \"{label}\"")
    };
    format!(
        "statistics of {when} for {what}: stored {} run(s), {} image(s), {} µs; the records say {} \
         run(s), {} image(s), {} µs{}",
        stored.runs,
        stored.images,
        stored.us,
        want.runs,
        want.images,
        want.us,
        if stored.runs == want.runs && stored.images == want.images && stored.us == want.us {
            " (other breakdowns differ)"
        } else {
            ""
        }
    )
}
