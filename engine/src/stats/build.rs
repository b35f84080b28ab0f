//! Turning summed tallies into the [`Stats`] breakdowns, sorted as documented; and [`merge`],
//! which sums the statistics of several stores.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use super::tally::Tally;
use super::{
    format_day, iso_week, Day, DeviceRow, GraphRow, KindRow, LabelRow, ModelRow, PeriodRow, Stats,
    StatsFilter, Totals, TrainingRow,
};
use crate::store::{RunStatus, TrainingRecord};

fn seconds(us: u64) -> f64 {
    us as f64 / 1e6
}

/// The statistics of `rows` (`(day, graph, tally)`, as [`crate::store::Store::stats_tallies`]
/// gives them) and of the trainings, under `filter`.
pub(super) fn build(
    filter: &StatsFilter,
    rows: &[(Day, String, Tally)],
    trainings: &[(u64, TrainingRecord)],
) -> Stats {
    let mut total = Tally::default();
    let mut days: BTreeMap<Day, (u64, u64, u64)> = BTreeMap::new();
    let mut graphs: BTreeMap<&str, Tally> = BTreeMap::new();
    for (day, graph, t) in rows {
        let d = days.entry(*day).or_default();
        d.0 += t.runs;
        d.1 += t.images;
        d.2 += t.us;
        // The graph rows need only the counts: no per-kind maps to merge.
        let g = graphs.entry(graph.as_str()).or_default();
        g.runs += t.runs;
        g.succeeded += t.succeeded;
        g.failed += t.failed;
        g.images += t.images;
        g.us += t.us;
        total.add(t);
    }
    let period = |period: String, (runs, images, us): (u64, u64, u64)| PeriodRow {
        period,
        runs,
        images,
        seconds: seconds(us),
    };
    let per_day = days
        .iter()
        .map(|(d, v)| period(format_day(*d), *v))
        .collect();
    let mut weeks: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    for (d, (r, i, us)) in &days {
        let w = weeks.entry(iso_week(*d)).or_default();
        w.0 += r;
        w.1 += i;
        w.2 += us;
    }
    let per_week = weeks.into_iter().map(|(w, v)| period(w, v)).collect();
    let mut stats = Stats {
        filter: filter.clone(),
        totals: Totals {
            runs: total.runs,
            succeeded: total.succeeded,
            failed: total.failed,
            cancelled: total.cancelled,
            unfinished: total
                .runs
                .saturating_sub(total.succeeded + total.failed + total.cancelled),
            items: total.items,
            images: total.images,
            seconds: seconds(total.us),
        },
        per_day,
        per_week,
        graphs: graphs
            .into_iter()
            .map(|(g, t)| GraphRow {
                graph: g.to_string(),
                runs: t.runs,
                succeeded: t.succeeded,
                failed: t.failed,
                images: t.images,
                seconds: seconds(t.us),
            })
            .collect(),
        labels: total
            .labels
            .iter()
            .map(|(l, n)| LabelRow {
                label: l.clone(),
                images: *n,
            })
            .collect(),
        kinds: total
            .kinds
            .iter()
            .map(|(k, t)| KindRow {
                kind: k.clone(),
                runs: t.runs,
                executed: t.executed,
                cached: t.cached,
                failed: t.failed,
                seconds: seconds(t.us),
                failure_rate: 0.0,
            })
            .collect(),
        models: Vec::new(),
        loras: Vec::new(),
        devices: total
            .devices
            .iter()
            .map(|(d, t)| DeviceRow {
                device: d.clone(),
                runs: t.runs,
                seconds: seconds(t.us),
            })
            .collect(),
        trainings: training_rows(filter, trainings),
    };
    for m in &total.models {
        let row = ModelRow {
            role: m.role.clone(),
            name: m.name.clone(),
            sha256: m.sha256.clone(),
            runs: m.runs,
            images: m.images,
            seconds: seconds(m.us),
        };
        if m.role == "lora" {
            stats.loras.push(row);
        } else {
            stats.models.push(row);
        }
    }
    sort(&mut stats);
    stats
}

/// The trainings that started in the filter's date range, per kind (the graph and label
/// filters do not apply to them).
fn training_rows(filter: &StatsFilter, trainings: &[(u64, TrainingRecord)]) -> Vec<TrainingRow> {
    let mut rows: BTreeMap<&str, (u64, u64, u64, u64)> = BTreeMap::new();
    for (_, t) in trainings {
        let day = super::day_of_ms(t.started_ms);
        if filter.since.is_some_and(|s| day < s) || filter.until.is_some_and(|u| day > u) {
            continue;
        }
        let r = rows.entry(t.kind.name()).or_default();
        r.0 += 1;
        match t.status {
            RunStatus::Succeeded => r.1 += 1,
            RunStatus::Failed => r.2 += 1,
            _ => {}
        }
        if let Some(end) = t.ended_ms {
            r.3 += end.saturating_sub(t.started_ms);
        }
    }
    rows.into_iter()
        .map(|(kind, (runs, succeeded, failed, ms))| TrainingRow {
            kind: kind.to_string(),
            runs,
            succeeded,
            failed,
            hours: ms as f64 / 3_600_000.0,
        })
        .collect()
}

/// Most first by `(runs, seconds)`, ties by name.
fn most(a: (u64, f64, &str), b: (u64, f64, &str)) -> Ordering {
    b.0.cmp(&a.0)
        .then(b.1.total_cmp(&a.1))
        .then_with(|| a.2.cmp(b.2))
}

/// Sorts every breakdown as [`Stats`] documents, and works out the failure rates.
fn sort(s: &mut Stats) {
    s.per_day.sort_by(|a, b| a.period.cmp(&b.period));
    s.per_week.sort_by(|a, b| a.period.cmp(&b.period));
    s.graphs
        .sort_by(|a, b| most((a.runs, a.seconds, &a.graph), (b.runs, b.seconds, &b.graph)));
    s.labels
        .sort_by(|a, b| b.images.cmp(&a.images).then_with(|| a.label.cmp(&b.label)));
    for k in &mut s.kinds {
        let tried = k.executed + k.failed;
        k.failure_rate = if tried == 0 {
            0.0
        } else {
            k.failed as f64 / tried as f64
        };
    }
    s.kinds
        .sort_by(|a, b| most((a.runs, a.seconds, &a.kind), (b.runs, b.seconds, &b.kind)));
    let model_order = |a: &ModelRow, b: &ModelRow| {
        most((a.runs, a.seconds, &a.name), (b.runs, b.seconds, &b.name))
            .then_with(|| a.role.cmp(&b.role))
            .then_with(|| a.sha256.cmp(&b.sha256))
    };
    s.models.sort_by(model_order);
    s.loras.sort_by(model_order);
    s.devices.sort_by(|a, b| {
        most(
            (a.runs, a.seconds, &a.device),
            (b.runs, b.seconds, &b.device),
        )
    });
    s.trainings
        .sort_by(|a, b| b.runs.cmp(&a.runs).then_with(|| a.kind.cmp(&b.kind)));
}

/// Sums the statistics of several stores (shards of one batch, several workstations): totals
/// added, rows added by key (period; graph; label; kind; (role, name, sha256) for models and
/// LoRAs; device; training kind), failure rates worked out again, rows sorted as documented.
/// The filter is the first part's.
pub fn merge(parts: Vec<Stats>) -> Stats {
    let mut parts = parts.into_iter();
    let Some(mut out) = parts.next() else {
        return Stats::default();
    };
    fn add_rows<R: Clone>(
        into: &mut Vec<R>,
        from: Vec<R>,
        same: impl Fn(&R, &R) -> bool,
        add: impl Fn(&mut R, &R),
    ) {
        for r in from {
            match into.iter_mut().find(|x| same(x, &r)) {
                Some(x) => add(x, &r),
                None => into.push(r),
            }
        }
    }
    for p in parts {
        let t = &mut out.totals;
        t.runs += p.totals.runs;
        t.succeeded += p.totals.succeeded;
        t.failed += p.totals.failed;
        t.cancelled += p.totals.cancelled;
        t.unfinished += p.totals.unfinished;
        t.items += p.totals.items;
        t.images += p.totals.images;
        t.seconds += p.totals.seconds;
        let period = |a: &mut PeriodRow, b: &PeriodRow| {
            a.runs += b.runs;
            a.images += b.images;
            a.seconds += b.seconds;
        };
        add_rows(
            &mut out.per_day,
            p.per_day,
            |a, b| a.period == b.period,
            period,
        );
        add_rows(
            &mut out.per_week,
            p.per_week,
            |a, b| a.period == b.period,
            period,
        );
        add_rows(
            &mut out.graphs,
            p.graphs,
            |a, b| a.graph == b.graph,
            |a, b| {
                a.runs += b.runs;
                a.succeeded += b.succeeded;
                a.failed += b.failed;
                a.images += b.images;
                a.seconds += b.seconds;
            },
        );
        add_rows(
            &mut out.labels,
            p.labels,
            |a, b| a.label == b.label,
            |a, b| a.images += b.images,
        );
        add_rows(
            &mut out.kinds,
            p.kinds,
            |a, b| a.kind == b.kind,
            |a, b| {
                a.runs += b.runs;
                a.executed += b.executed;
                a.cached += b.cached;
                a.failed += b.failed;
                a.seconds += b.seconds;
            },
        );
        let model_same = |a: &ModelRow, b: &ModelRow| {
            (&a.role, &a.name, &a.sha256) == (&b.role, &b.name, &b.sha256)
        };
        let model_add = |a: &mut ModelRow, b: &ModelRow| {
            a.runs += b.runs;
            a.images += b.images;
            a.seconds += b.seconds;
        };
        add_rows(&mut out.models, p.models, model_same, model_add);
        add_rows(&mut out.loras, p.loras, model_same, model_add);
        add_rows(
            &mut out.devices,
            p.devices,
            |a, b| a.device == b.device,
            |a, b| {
                a.runs += b.runs;
                a.seconds += b.seconds;
            },
        );
        add_rows(
            &mut out.trainings,
            p.trainings,
            |a, b| a.kind == b.kind,
            |a, b| {
                a.runs += b.runs;
                a.succeeded += b.succeeded;
                a.failed += b.failed;
                a.hours += b.hours;
            },
        );
    }
    sort(&mut out);
    out
}
