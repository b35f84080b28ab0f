//! The breakdowns of a [`Stats`] as titled tables of text cells: the one place that says which
//! columns each breakdown has, what they are called and how each value is written, shared by
//! `defect-studio stats` (aligned text) and the studio's Statistics window (grids).

use super::{ModelRow, PeriodRow, Stats};

/// One breakdown as text.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// The breakdown, as the CSV file's stem (`per_day`, `graphs`, `kinds`, …).
    pub id: &'static str,
    pub title: &'static str,
    pub columns: &'static [&'static str],
    /// The first `text_columns` columns are names (aligned left); the rest are numbers.
    pub text_columns: usize,
    pub rows: Vec<Vec<String>>,
}

/// Every breakdown but the totals, in the order `stats` prints them.
pub fn tables(s: &Stats) -> Vec<Table> {
    vec![
        periods(
            "per_day",
            "images per day",
            &["day", "runs", "images", "seconds"],
            &s.per_day,
        ),
        periods(
            "per_week",
            "images per week",
            &["week", "runs", "images", "seconds"],
            &s.per_week,
        ),
        Table {
            id: "graphs",
            title: "most-run recipes",
            columns: &["graph", "runs", "succeeded", "failed", "images", "seconds"],
            text_columns: 1,
            rows: s
                .graphs
                .iter()
                .map(|g| {
                    vec![
                        g.graph.clone(),
                        g.runs.to_string(),
                        g.succeeded.to_string(),
                        g.failed.to_string(),
                        g.images.to_string(),
                        seconds(g.seconds),
                    ]
                })
                .collect(),
        },
        Table {
            id: "labels",
            title: "images per label",
            columns: &["label", "images"],
            text_columns: 1,
            rows: s
                .labels
                .iter()
                .map(|l| vec![l.label.clone(), l.images.to_string()])
                .collect(),
        },
        Table {
            id: "kinds",
            title: "node kinds",
            columns: &[
                "kind", "runs", "executed", "cached", "failed", "failure", "seconds",
            ],
            text_columns: 1,
            rows: s
                .kinds
                .iter()
                .map(|k| {
                    vec![
                        k.kind.clone(),
                        k.runs.to_string(),
                        k.executed.to_string(),
                        k.cached.to_string(),
                        k.failed.to_string(),
                        format!("{:.1}%", k.failure_rate * 100.0),
                        seconds(k.seconds),
                    ]
                })
                .collect(),
        },
        models("models", "models", &s.models),
        models("loras", "LoRAs", &s.loras),
        Table {
            id: "devices",
            title: "devices",
            columns: &["device", "runs", "seconds"],
            text_columns: 1,
            rows: s
                .devices
                .iter()
                .map(|d| vec![d.device.clone(), d.runs.to_string(), seconds(d.seconds)])
                .collect(),
        },
        Table {
            id: "trainings",
            title: "trainings",
            columns: &["kind", "runs", "succeeded", "failed", "hours"],
            text_columns: 1,
            rows: s
                .trainings
                .iter()
                .map(|t| {
                    vec![
                        t.kind.clone(),
                        t.runs.to_string(),
                        t.succeeded.to_string(),
                        t.failed.to_string(),
                        format!("{:.2}", t.hours),
                    ]
                })
                .collect(),
        },
    ]
}

/// Seconds with two decimals.
pub fn seconds(s: f64) -> String {
    format!("{s:.2}")
}

/// A1111's AutoV2 short hash: the first 10 hex digits of the sha256, lower case (`-` when the
/// model was not hashed).
pub fn short_hash(sha256: &str) -> String {
    if sha256.is_empty() {
        "-".into()
    } else {
        sha256.chars().take(10).collect::<String>().to_lowercase()
    }
}

fn periods(
    id: &'static str,
    title: &'static str,
    columns: &'static [&'static str],
    rows: &[PeriodRow],
) -> Table {
    Table {
        id,
        title,
        columns,
        text_columns: 1,
        rows: rows
            .iter()
            .map(|p| {
                vec![
                    p.period.clone(),
                    p.runs.to_string(),
                    p.images.to_string(),
                    seconds(p.seconds),
                ]
            })
            .collect(),
    }
}

fn models(id: &'static str, title: &'static str, rows: &[ModelRow]) -> Table {
    Table {
        id,
        title,
        columns: &["role", "name", "sha256", "runs", "images", "seconds"],
        text_columns: 3,
        rows: rows
            .iter()
            .map(|m| {
                vec![
                    m.role.clone(),
                    m.name.clone(),
                    short_hash(&m.sha256),
                    m.runs.to_string(),
                    m.images.to_string(),
                    seconds(m.seconds),
                ]
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_breakdown_has_its_csv_file_and_rows_match_columns() {
        let mut s = Stats::default();
        s.models.push(ModelRow {
            role: "checkpoint".into(),
            name: "sd15.safetensors".into(),
            sha256: "6CE0161689B3853ACAA03779EC93EAFE75A02F4CED659BEE03F50797806FA2FA".into(),
            runs: 2,
            images: 4,
            seconds: 1.234,
        });
        let t = tables(&s);
        for table in &t {
            assert!(
                super::super::csv::FILES.contains(&format!("{}.csv", table.id).as_str()),
                "{}",
                table.id
            );
            for r in &table.rows {
                assert_eq!(r.len(), table.columns.len(), "{}", table.id);
            }
        }
        let m = t.iter().find(|t| t.id == "models").unwrap();
        assert_eq!(
            m.rows[0],
            [
                "checkpoint",
                "sd15.safetensors",
                "6ce0161689",
                "2",
                "4",
                "1.23"
            ]
        );
        assert_eq!(short_hash(""), "-");
    }
}
