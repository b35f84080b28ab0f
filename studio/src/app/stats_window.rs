//! The Statistics window (View ▸ Statistics…): what the store says was generated, with which
//! recipes, node kinds, models and LoRAs, on which devices, and the training runs
//! (`engine::stats`, docs/ARCHITECTURE.md §17).
//!
//! Filters at the top (a date range typed as `YYYY-MM-DD` or picked with the quick buttons, a
//! graph and a label), then the totals, bar charts (`egui_plot`) and tables. The query runs on
//! the store when the window opens, when a filter changes and on Refresh, never per frame: the
//! last [`Stats`] is kept in [`StatsWindow::stats`]. "Export CSV…" writes every breakdown
//! through `engine::stats::csv::write_dir`.

mod charts;
mod tables;

use std::path::PathBuf;

use egui::Color32;
use engine::stats::{Day, Stats, StatsFilter, Totals};

use super::{AppCommand, StudioApp};

/// What the Statistics window asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum StatsCommand {
    /// Show the window and query the store.
    Open,
    /// Query again (the store may have new runs), and the graph and label names seen.
    Refresh,
    /// A filter changed: query again if every field is valid.
    Filter,
    /// A quick date range: the last `n` days up to today, or every day (`None`).
    LastDays(Option<u32>),
    /// Write the shown statistics as CSV files into this folder (`None`: pick one).
    ExportCsv(Option<PathBuf>),
}

/// The Statistics window's state: the filter fields, and the last answer.
#[derive(Default)]
pub struct StatsWindow {
    pub open: bool,
    /// First day kept, as typed (`YYYY-MM-DD`; empty: no bound).
    pub since: String,
    /// Last day kept, as typed.
    pub until: String,
    /// Only this graph.
    pub graph: Option<String>,
    /// Only this output label.
    pub label: Option<String>,
    /// Images per ISO week instead of per day.
    pub weekly: bool,
    /// The last answer (for [`StatsWindow::filter`] as it was then).
    pub stats: Option<Stats>,
    /// Graph and label names in the whole store (for the combos).
    pub graphs_seen: Vec<String>,
    pub labels_seen: Vec<String>,
    /// Why the last query or export failed.
    pub error: Option<String>,
    /// What the last export wrote.
    pub message: Option<String>,
    /// Queries run so far (the window must not query every frame).
    pub queries: u64,
}

/// A typed day: `None` when empty, the parse error when it is not a day.
fn typed_day(text: &str) -> Result<Option<Day>, String> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    engine::stats::parse_day(text.trim())
        .map(Some)
        .map_err(|e| e.to_string())
}

impl StatsWindow {
    /// The filter the fields describe, or the first problem with them.
    pub fn filter(&self) -> Result<StatsFilter, String> {
        let since = typed_day(&self.since)?;
        let until = typed_day(&self.until)?;
        if let (Some(a), Some(b)) = (since, until) {
            if a > b {
                return Err(format!(
                    "the range is empty: {} is after {}",
                    self.since.trim(),
                    self.until.trim()
                ));
            }
        }
        Ok(StatsFilter {
            since,
            until,
            graph: self.graph.clone(),
            label: self.label.clone(),
        })
    }

    /// Sets the date fields to the last `days` days up to `today` (both ends kept), or clears
    /// them.
    pub fn set_last_days(&mut self, days: Option<u32>, today: Day) {
        match days {
            Some(n) => {
                self.since = engine::stats::format_day(today.saturating_sub(n.saturating_sub(1)));
                self.until = engine::stats::format_day(today);
            }
            None => {
                self.since.clear();
                self.until.clear();
            }
        }
    }

    /// Queries `store` under the fields' filter; with `names`, also the graph and label names
    /// of the whole store.
    pub fn query(&mut self, store: Option<&engine::Store>, names: bool) {
        let Some(store) = store else {
            self.error = Some("no store is open".into());
            return;
        };
        let filter = match self.filter() {
            Ok(f) => f,
            Err(e) => {
                self.error = Some(e);
                return;
            }
        };
        if names {
            self.queries += 1;
            match engine::stats::stats(store, &StatsFilter::default()) {
                Ok(all) => {
                    self.graphs_seen = all.graphs.into_iter().map(|g| g.graph).collect();
                    self.graphs_seen.sort();
                    self.labels_seen = all.labels.into_iter().map(|l| l.label).collect();
                    self.labels_seen.sort();
                }
                Err(e) => {
                    self.error = Some(e.to_string());
                    return;
                }
            }
        }
        self.queries += 1;
        match engine::stats::stats(store, &filter) {
            Ok(s) => {
                self.stats = Some(s);
                self.error = None;
            }
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    /// The window, while open.
    pub fn stats_ui(&mut self, ctx: &egui::Context) -> Vec<AppCommand> {
        let mut cmds = Vec::new();
        let mut open = self.open;
        egui::Window::new("Statistics")
            .open(&mut open)
            .default_size([1180.0, 700.0])
            .max_height(ctx.content_rect().height() - 40.0)
            .show(ctx, |ui| {
                self.filters_ui(ui, &mut cmds);
                ui.separator();
                egui::ScrollArea::vertical()
                    .id_salt("stats-scroll")
                    .show(ui, |ui| match &self.stats {
                        Some(s) => {
                            ui.label(egui::RichText::new(totals_text(&s.totals)).strong());
                            charts::charts_ui(ui, s, &mut self.weekly);
                            tables::tables_ui(ui, s);
                        }
                        None => {
                            ui.label("No statistics yet: press Refresh.");
                        }
                    });
            });
        self.open = open;
        cmds
    }

    fn filters_ui(&mut self, ui: &mut egui::Ui, cmds: &mut Vec<AppCommand>) {
        let cmd = AppCommand::Stats;
        let since_err = typed_day(&self.since).err();
        let until_err = typed_day(&self.until).err();
        let mut changed = false;
        ui.horizontal_wrapped(|ui| {
            let l = ui.label("From");
            changed |= date_field(ui, &mut self.since, since_err.is_some())
                .labelled_by(l.id)
                .changed();
            let l = ui.label("To");
            changed |= date_field(ui, &mut self.until, until_err.is_some())
                .labelled_by(l.id)
                .changed();
            for (text, days) in [("7 days", Some(7)), ("30 days", Some(30)), ("All", None)] {
                if ui.button(text).clicked() {
                    cmds.push(cmd(StatsCommand::LastDays(days)));
                }
            }
            ui.separator();
            changed |= name_combo(ui, "Graph", &mut self.graph, &self.graphs_seen);
            changed |= name_combo(ui, "Label", &mut self.label, &self.labels_seen);
            ui.separator();
            if ui
                .button("Refresh")
                .on_hover_text("Query the store again")
                .clicked()
            {
                cmds.push(cmd(StatsCommand::Refresh));
            }
            if ui
                .add_enabled(self.stats.is_some(), egui::Button::new("Export CSV…"))
                .on_hover_text("Write each breakdown as a CSV file into a folder")
                .clicked()
            {
                cmds.push(cmd(StatsCommand::ExportCsv(None)));
            }
        });
        for e in since_err.iter().chain(until_err.iter()) {
            ui.colored_label(Color32::LIGHT_RED, e);
        }
        if since_err.is_none() && until_err.is_none() {
            if let Err(e) = self.filter() {
                ui.colored_label(Color32::LIGHT_RED, e);
            } else if let Some(e) = &self.error {
                ui.colored_label(Color32::LIGHT_RED, e);
            }
        }
        if let Some(m) = &self.message {
            ui.label(egui::RichText::new(m).weak());
        }
        if changed && self.filter().is_ok() {
            cmds.push(cmd(StatsCommand::Filter));
        }
    }
}

/// A `YYYY-MM-DD` field, red while it is not a day.
fn date_field(ui: &mut egui::Ui, text: &mut String, bad: bool) -> egui::Response {
    let mut edit = egui::TextEdit::singleline(text)
        .hint_text("YYYY-MM-DD")
        .desired_width(90.0);
    if bad {
        edit = edit.text_color(Color32::LIGHT_RED);
    }
    ui.add(edit)
}

/// A combo of names with "any" first; whether the choice changed.
fn name_combo(ui: &mut egui::Ui, what: &str, value: &mut Option<String>, names: &[String]) -> bool {
    let before = value.clone();
    let l = ui.label(what);
    egui::ComboBox::from_id_salt(("stats-combo", what))
        .selected_text(value.clone().unwrap_or_else(|| "any".into()))
        .show_ui(ui, |ui| {
            ui.selectable_value(value, None, "any");
            for n in names {
                ui.selectable_value(value, Some(n.clone()), n);
            }
        })
        .response
        .labelled_by(l.id);
    *value != before
}

/// The totals line.
pub fn totals_text(t: &Totals) -> String {
    format!(
        "Runs {} ({} succeeded, {} failed, {} cancelled, {} unfinished) · Items {} · Images {} · \
         Compute {}",
        t.runs,
        t.succeeded,
        t.failed,
        t.cancelled,
        t.unfinished,
        t.items,
        t.images,
        seconds_text(t.seconds)
    )
}

/// Seconds as `12.3 s`, `4.5 min` or `2.1 h`.
pub fn seconds_text(s: f64) -> String {
    if s < 120.0 {
        format!("{s:.1} s")
    } else if s < 7200.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

impl StudioApp {
    /// Carries out a [`StatsCommand`].
    pub(super) fn apply_stats(&mut self, cmd: StatsCommand) {
        let w = &mut self.stats;
        match cmd {
            StatsCommand::Open => {
                w.open = true;
                w.message = None;
                w.query(self.store.as_ref(), true);
            }
            StatsCommand::Refresh => {
                w.message = None;
                w.query(self.store.as_ref(), true);
            }
            StatsCommand::Filter => w.query(self.store.as_ref(), false),
            StatsCommand::LastDays(days) => {
                w.set_last_days(days, engine::stats::day_of_ms(engine::store::now_ms()));
                w.query(self.store.as_ref(), false);
            }
            StatsCommand::ExportCsv(dir) => {
                let Some(dir) = dir.or_else(|| rfd::FileDialog::new().pick_folder()) else {
                    return;
                };
                if w.stats.is_none() {
                    w.query(self.store.as_ref(), false);
                }
                let Some(stats) = &w.stats else { return };
                match engine::stats::csv::write_dir(stats, &dir) {
                    Ok(files) => {
                        w.message = Some(format!(
                            "wrote {} CSV files to {}",
                            files.len(),
                            dir.display()
                        ));
                        w.error = None;
                    }
                    Err(e) => w.error = Some(format!("export to {}: {e}", dir.display())),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_make_the_filter() {
        let mut w = StatsWindow::default();
        assert_eq!(w.filter(), Ok(StatsFilter::default()));
        w.since = "2026-12-01".into();
        w.until = " 2026-12-03 ".into();
        w.graph = Some("g".into());
        let f = w.filter().unwrap();
        assert_eq!(f.since, engine::stats::parse_day("2026-12-01").ok());
        assert_eq!(f.until, engine::stats::parse_day("2026-12-03").ok());
        assert_eq!(f.graph.as_deref(), Some("g"));
        w.until = "2026-11-30".into();
        assert!(w.filter().unwrap_err().contains("empty"));
        w.until = "2026-02-30".into();
        assert!(w.filter().unwrap_err().contains("YYYY-MM-DD"));
    }

    #[test]
    fn quick_ranges_end_today() {
        let mut w = StatsWindow::default();
        let today = engine::stats::parse_day("2026-12-06").unwrap();
        w.set_last_days(Some(7), today);
        assert_eq!(
            (w.since.as_str(), w.until.as_str()),
            ("2026-11-30", "2026-12-06")
        );
        w.set_last_days(Some(1), today);
        assert_eq!(w.since, "2026-12-06");
        w.set_last_days(None, today);
        assert!(w.since.is_empty() && w.until.is_empty());
    }

    #[test]
    fn seconds_read_well() {
        assert_eq!(seconds_text(3.26), "3.3 s");
        assert_eq!(seconds_text(600.0), "10.0 min");
        assert_eq!(seconds_text(9000.0), "2.5 h");
    }
}
