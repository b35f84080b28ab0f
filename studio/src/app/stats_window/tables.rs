//! The Statistics window's tables: most-run recipes, node kinds with their failure rate,
//! models and LoRAs (name, AutoV2 short hash, runs, images, seconds), labels, devices and
//! trainings.

use egui::Color32;
use engine::stats::{ModelRow, Stats};

use super::seconds_text;

/// A table: a heading, a header row and the rows, as text.
fn table(ui: &mut egui::Ui, id: &str, heading: &str, header: &[&str], rows: Vec<Vec<String>>) {
    ui.strong(heading);
    if rows.is_empty() {
        ui.label(egui::RichText::new("none in this range").weak());
        return;
    }
    egui::Grid::new(id)
        .striped(true)
        .num_columns(header.len())
        .spacing([14.0, 3.0])
        .show(ui, |ui| {
            for h in header {
                ui.label(egui::RichText::new(*h).underline());
            }
            ui.end_row();
            for r in rows {
                for cell in r {
                    ui.label(cell);
                }
                ui.end_row();
            }
        });
}

/// The AutoV2 short hash (A1111, Civitai): the first 10 hex digits of the sha256.
pub fn autov2(sha256: &str) -> String {
    sha256.chars().take(10).collect()
}

fn model_rows(rows: &[ModelRow], lora: bool) -> impl Iterator<Item = Vec<String>> + '_ {
    rows.iter().map(move |m| {
        vec![
            m.name.clone(),
            if lora { "lora".into() } else { m.role.clone() },
            if m.sha256.is_empty() {
                "—".into()
            } else {
                autov2(&m.sha256)
            },
            m.runs.to_string(),
            m.images.to_string(),
            format!("{:.1}", m.seconds),
        ]
    })
}

/// Every table of `stats`.
pub(super) fn tables_ui(ui: &mut egui::Ui, stats: &Stats) {
    ui.add_space(6.0);
    ui.columns(2, |cols| {
        let [left, right] = cols else { return };
        table(
            left,
            "stats-graphs-table",
            "Most-run recipes",
            &["graph", "runs", "ok", "failed", "images", "compute"],
            stats
                .graphs
                .iter()
                .map(|g| {
                    vec![
                        g.graph.clone(),
                        g.runs.to_string(),
                        g.succeeded.to_string(),
                        g.failed.to_string(),
                        g.images.to_string(),
                        seconds_text(g.seconds),
                    ]
                })
                .collect(),
        );
        table(
            right,
            "stats-kinds-table",
            "Node kinds",
            &[
                "kind",
                "runs",
                "computed",
                "cached",
                "failed",
                "failure rate",
                "compute",
            ],
            stats
                .kinds
                .iter()
                .map(|k| {
                    vec![
                        k.kind.clone(),
                        k.runs.to_string(),
                        k.executed.to_string(),
                        k.cached.to_string(),
                        k.failed.to_string(),
                        format!("{:.1} %", k.failure_rate * 100.0),
                        seconds_text(k.seconds),
                    ]
                })
                .collect(),
        );
    });
    ui.add_space(6.0);
    table(
        ui,
        "stats-models-table",
        "Models and LoRAs",
        &["name", "role", "AutoV2", "runs", "images", "seconds"],
        model_rows(&stats.models, false)
            .chain(model_rows(&stats.loras, true))
            .collect(),
    );
    ui.add_space(6.0);
    ui.columns(3, |cols| {
        let [a, b, c] = cols else { return };
        table(
            a,
            "stats-labels-table",
            "Labels",
            &["label", "images"],
            stats
                .labels
                .iter()
                .map(|l| {
                    let name = if l.label.is_empty() {
                        "(none)".to_string()
                    } else {
                        l.label.clone()
                    };
                    vec![name, l.images.to_string()]
                })
                .collect(),
        );
        table(
            b,
            "stats-devices-table",
            "Devices",
            &["device", "runs", "compute"],
            stats
                .devices
                .iter()
                .map(|d| {
                    vec![
                        d.device.clone(),
                        d.runs.to_string(),
                        seconds_text(d.seconds),
                    ]
                })
                .collect(),
        );
        table(
            c,
            "stats-trainings-table",
            "Trainings",
            &["kind", "runs", "ok", "failed", "hours"],
            stats
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
        );
    });
    if stats.filter.graph.is_some() || stats.filter.label.is_some() {
        ui.colored_label(
            Color32::GRAY,
            "Trainings are not runs of a graph: the graph and label filters do not apply to them.",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn autov2_is_ten_hex_digits() {
        assert_eq!(
            autov2("6ce0161689b3853acaa03779ec93eafe75a02f4ced659bee03f50797806fa2fa"),
            "6ce0161689"
        );
        assert_eq!(autov2(""), "");
    }
}
