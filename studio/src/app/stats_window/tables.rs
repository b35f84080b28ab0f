//! The Statistics window's tables: most-run recipes, node kinds with their failure rate,
//! models and LoRAs (name, AutoV2 short hash, runs, images, seconds), labels, devices and
//! trainings.

use egui::Color32;
use engine::stats::tables::Table;
use engine::stats::Stats;

/// A table: its title, a header row and the rows, as text.
fn table_ui(ui: &mut egui::Ui, t: &Table) {
    ui.strong(t.title);
    if t.rows.is_empty() {
        ui.label(egui::RichText::new("none in this range").weak());
        return;
    }
    egui::Grid::new(("stats-table", t.id))
        .striped(true)
        .num_columns(t.columns.len())
        .spacing([14.0, 3.0])
        .show(ui, |ui| {
            for h in t.columns {
                ui.label(egui::RichText::new(*h).underline());
            }
            ui.end_row();
            for r in &t.rows {
                for cell in r {
                    ui.label(cell);
                }
                ui.end_row();
            }
        });
}

/// Every table of `stats` ([`engine::stats::tables`], the same columns `defect-studio stats`
/// prints): recipes beside node kinds, then models, LoRAs, then labels, devices and trainings
/// side by side.
pub(super) fn tables_ui(ui: &mut egui::Ui, stats: &Stats) {
    let mut all = engine::stats::tables::tables(stats);
    let mut take = |id: &str| all.iter().position(|t| t.id == id).map(|i| all.remove(i));
    let rows: [&[&str]; 4] = [
        &["graphs", "kinds"],
        &["models"],
        &["loras"],
        &["labels", "devices", "trainings"],
    ];
    for ids in rows {
        let tables: Vec<Table> = ids.iter().filter_map(|id| take(id)).collect();
        ui.add_space(6.0);
        ui.columns(tables.len().max(1), |cols| {
            for (col, t) in cols.iter_mut().zip(&tables) {
                table_ui(col, t);
            }
        });
    }
    if stats.filter.graph.is_some() || stats.filter.label.is_some() {
        ui.colored_label(
            Color32::GRAY,
            "Trainings are not runs of a graph: the graph and label filters do not apply to them.",
        );
    }
}
