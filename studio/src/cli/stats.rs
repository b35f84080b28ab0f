//! `stats [--since DATE] [--until DATE] [--graph NAME] [--label L] [--json] [--csv DIR]
//! [--store PATH]...`: usage statistics from the store (docs/ARCHITECTURE.md §17): totals,
//! images per day and per ISO week, the most-run recipes, images per label, node kinds (with
//! their failure rate), models and LoRAs (name and AutoV2 short hash), devices and trainings.
//! Several `--store` (the shards of one batch, several workstations) are summed
//! (`engine::stats::merge`).
//!
//! The numbers are `engine::stats::stats`, the same query the studio's Statistics window makes;
//! `--json` prints its `Stats` as is (users script it), `--csv DIR` writes one CSV per
//! breakdown through `engine::stats::csv::write_dir` (the window's "Export CSV…").

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use engine::stats::{self, Stats, StatsFilter};

/// The arguments of `stats`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  \
    defect-studio stats --since 2026-12-01\n  \
    defect-studio stats --graph cracks-on-concrete --json | jq .totals.images\n  \
    defect-studio stats --label scratch --csv stats/")]
pub struct StatsArgs {
    /// First day counted (YYYY-MM-DD, UTC, inclusive), by the day a run started.
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Last day counted (YYYY-MM-DD, UTC, inclusive).
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,
    /// Only runs of this graph (its name as `history` shows it).
    #[arg(long, value_name = "NAME")]
    pub graph: Option<String>,
    /// Only runs that saved an output with this label, and only those outputs.
    #[arg(long, value_name = "LABEL")]
    pub label: Option<String>,
    /// Print the statistics as JSON (the `Stats` structure).
    #[arg(long)]
    pub json: bool,
    /// Write one CSV per breakdown into DIR (created if missing) and list the files, instead of
    /// the tables (with --json, the list goes to stderr).
    #[arg(long, value_name = "DIR")]
    pub csv: Option<PathBuf>,
    /// Store file (default: the user store). Repeatable: the statistics of several stores (e.g.
    /// the shards of one batch) are summed.
    #[arg(long = "store", value_name = "STORE")]
    pub stores: Vec<PathBuf>,
}

/// Runs `stats`.
pub(crate) fn stats_cmd(args: &StatsArgs) -> Result<i32> {
    let filter = filter(args)?;
    let paths = if args.stores.is_empty() {
        vec![engine::paths::store_path()]
    } else {
        args.stores.clone()
    };
    // A store that does not exist has no runs yet (as in `history`); it is named in the text.
    let (present, missing): (Vec<PathBuf>, Vec<PathBuf>) =
        paths.iter().cloned().partition(|p| p.exists());
    let mut parts = Vec::new();
    for p in &present {
        let store = engine::Store::open_read_only(p)?;
        parts.push(stats::stats(&store, &filter)?);
    }
    let stats = if parts.is_empty() {
        Stats {
            filter,
            ..Stats::default()
        }
    } else if parts.len() == 1 {
        parts.remove(0)
    } else {
        stats::merge(parts)
    };
    if let Some(dir) = &args.csv {
        let files = stats::csv::write_dir(&stats, dir)?;
        let list: String = files
            .iter()
            .map(|f| format!("wrote {}\n", f.display()))
            .collect();
        if args.json {
            eprint!("{list}");
        } else {
            print!("{list}");
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
    } else if args.csv.is_none() {
        print!("{}", render(&stats, &paths, &missing));
    }
    Ok(0)
}

/// The filter of the flags: dates parsed (one clear error naming the flag), `--since` not after
/// `--until`.
fn filter(args: &StatsArgs) -> Result<StatsFilter> {
    let day = |flag: &str, text: &Option<String>| -> Result<Option<stats::Day>> {
        text.as_deref()
            .map(|t| stats::parse_day(t).with_context(|| format!("--{flag}")))
            .transpose()
    };
    let (since, until) = (day("since", &args.since)?, day("until", &args.until)?);
    if let (Some(s), Some(u)) = (since, until) {
        if s > u {
            bail!(
                "--since {} is after --until {}: no day is in that range",
                stats::format_day(s),
                stats::format_day(u)
            );
        }
    }
    Ok(StatsFilter {
        since,
        until,
        graph: args.graph.clone(),
        label: args.label.clone(),
    })
}

/// The statistics as text: a heading naming the stores and filter, the totals, then one
/// aligned table per breakdown (an empty one says so). `missing`: the stores that do not exist.
pub(crate) fn render(s: &Stats, stores: &[PathBuf], missing: &[PathBuf]) -> String {
    let mut out = String::new();
    let names: Vec<String> = stores.iter().map(|p| p.display().to_string()).collect();
    let _ = writeln!(
        out,
        "statistics of {}{}",
        names.join(", "),
        describe(&s.filter)
    );
    for m in missing {
        let _ = writeln!(out, "no runs yet (store {} does not exist)", m.display());
    }
    if missing.len() == stores.len() {
        return out;
    }
    let t = &s.totals;
    if t.runs == 0 {
        let unfiltered = describe(&s.filter).is_empty();
        let _ = writeln!(
            out,
            "{}",
            if unfiltered {
                "no runs yet"
            } else {
                "no runs match the filter"
            }
        );
    }
    let _ = writeln!(
        out,
        "runs {}: {} succeeded, {} failed, {} cancelled, {} unfinished; {} items, {} images, {} compute s",
        t.runs, t.succeeded, t.failed, t.cancelled, t.unfinished, t.items, t.images, stats::tables::seconds(t.seconds)
    );
    for t in stats::tables::tables(s) {
        table(&mut out, t.title, t.columns, t.text_columns, t.rows);
    }
    out
}

/// ` (2026-12-01 … 2026-12-06, graph G, label L)`, or nothing without a filter.
fn describe(f: &StatsFilter) -> String {
    let mut parts = Vec::new();
    match (f.since, f.until) {
        (None, None) => {}
        (since, until) => parts.push(format!(
            "{} … {}",
            since.map_or("start".into(), stats::format_day),
            until.map_or("today".into(), stats::format_day)
        )),
    }
    if let Some(g) = &f.graph {
        parts.push(format!("graph {g}"));
    }
    if let Some(l) = &f.label {
        parts.push(format!("label {l}"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

/// A titled table: the first `left` columns aligned left (names), the rest right (numbers);
/// `(none)` when it has no rows. Names on one line: control characters are shown escaped.
fn table(out: &mut String, title: &str, heads: &[&str], left: usize, rows: Vec<Vec<String>>) {
    let _ = writeln!(out, "\n{title}");
    if rows.is_empty() {
        let _ = writeln!(out, "  (none)");
        return;
    }
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|r| r.into_iter().map(|c| one_line(&c)).collect())
        .collect();
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([heads[i].chars().count()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..heads.len()).map(width).collect();
    let line = |cells: &[String]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = " ".repeat(widths[i].saturating_sub(c.chars().count()));
            if i < left {
                l += &format!("  {c}{pad}");
            } else {
                l += &format!("  {pad}{c}");
            }
        }
        l.trim_end().to_string()
    };
    let heads: Vec<String> = heads.iter().map(|h| h.to_string()).collect();
    let _ = writeln!(out, "{}", line(&heads));
    for r in &rows {
        let _ = writeln!(out, "{}", line(r));
    }
}

/// A name as one table cell: newlines, tabs and other control characters escaped.
fn one_line(text: &str) -> String {
    if text.chars().any(char::is_control) {
        text.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect()
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::stats::{GraphRow, KindRow};

    #[test]
    fn tables_align_and_empty_sections_say_so() {
        let s = Stats {
            graphs: vec![
                GraphRow {
                    graph: "a".into(),
                    runs: 12,
                    succeeded: 12,
                    images: 120,
                    seconds: 3.0,
                    ..GraphRow::default()
                },
                GraphRow {
                    graph: "long\nname".into(),
                    runs: 1,
                    failed: 1,
                    ..GraphRow::default()
                },
            ],
            kinds: vec![KindRow {
                kind: "Noise".into(),
                executed: 3,
                failed: 1,
                failure_rate: 0.25,
                ..KindRow::default()
            }],
            ..Stats::default()
        };
        let text = render(&s, &[PathBuf::from("/s.redb")], &[]);
        let lines: Vec<&str> = text.lines().collect();
        let at = lines.iter().position(|l| *l == "most-run recipes").unwrap();
        assert_eq!(
            &lines[at + 1..at + 4],
            [
                "  graph       runs  succeeded  failed  images  seconds",
                "  a             12         12       0     120     3.00",
                "  long\\nname     1          0       1       0     0.00",
            ]
        );
        assert!(text.contains("images per label\n  (none)\n"), "{text}");
        assert!(
            text.contains("  Noise     0         3       0       1    25.0%"),
            "{text}"
        );
        assert!(text.contains("LoRAs\n  (none)\n"), "{text}");
    }

    #[test]
    fn filter_describes_itself() {
        let f = StatsFilter {
            since: stats::parse_day("2026-12-01").ok(),
            until: None,
            graph: Some("g".into()),
            label: None,
        };
        assert_eq!(describe(&f), " (2026-12-01 … today, graph g)");
        assert_eq!(describe(&StatsFilter::default()), "");
    }
}
