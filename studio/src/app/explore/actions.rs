//! The Explore window's controls: the toolbar (query, map method, 2D/3D, colour by, selection
//! tool) and the side panel (actions on the selection, coverage, legend, the inspected item).

use std::path::PathBuf;

use engine::dataset::Format;

use super::colors;
use super::grid;
use super::view::{ExploreCommand, MapMethod};
use super::{ExplorePanel, Tool};

impl ExplorePanel {
    pub(super) fn toolbar_ui(&mut self, ui: &mut egui::Ui, cmds: &mut Vec<ExploreCommand>) {
        ui.horizontal_wrapped(|ui| {
            let label = ui.label("Query");
            let edit = ui
                .add(
                    egui::TextEdit::singleline(&mut self.query)
                        .hint_text("label:scratch AND NOT source:imported AND area>200")
                        .desired_width(380.0),
                )
                .labelled_by(label.id);
            let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            if enter || ui.button("Run query").clicked() {
                cmds.push(ExploreCommand::Query(self.query.trim().to_string()));
            }
            ui.separator();
            let label = ui.label("Map");
            egui::ComboBox::from_id_salt("explore-method")
                .selected_text(self.method.label())
                .show_ui(ui, |ui| {
                    for m in MapMethod::ALL {
                        ui.selectable_value(&mut self.method, m, m.label());
                    }
                })
                .response
                .labelled_by(label.id);
            let was = self.three_d;
            ui.selectable_value(&mut self.three_d, false, "2D");
            ui.selectable_value(&mut self.three_d, true, "3D");
            let need_3d =
                self.three_d && !was && self.view().xyz.is_none() && !self.view().is_empty();
            if ui
                .add_enabled(!self.view().is_empty(), egui::Button::new("Recompute"))
                .on_hover_text("Compute the map again with this method")
                .clicked()
                || need_3d
            {
                cmds.push(ExploreCommand::Recompute {
                    method: self.method,
                    dims: if self.three_d { 3 } else { 2 },
                });
            }
            ui.separator();
            let label = ui.label("Colour by");
            let current = self.color_column_name().unwrap_or("none").to_string();
            let mut pick: Option<Option<String>> = None;
            egui::ComboBox::from_id_salt("explore-color")
                .selected_text(current.clone())
                .show_ui(ui, |ui| {
                    if ui.selectable_label(current == "none", "none").clicked() {
                        pick = Some(None);
                    }
                    for (name, _) in &self.view().columns {
                        if ui.selectable_label(current == *name, name).clicked() {
                            pick = Some(Some(name.clone()));
                        }
                    }
                })
                .response
                .labelled_by(label.id);
            if let Some(p) = pick {
                self.set_color_by(p.as_deref());
            }
            ui.separator();
            ui.selectable_value(&mut self.tool, Tool::Box, "Box")
                .on_hover_text("Drag a rectangle to select");
            ui.selectable_value(&mut self.tool, Tool::Lasso, "Lasso")
                .on_hover_text("Draw around the points to select");
            if ui.button("Fit").on_hover_text("Show every point").clicked() {
                self.fit_pending = true;
            }
            ui.add(egui::Slider::new(&mut self.point_radius, 1.0..=8.0).text("point size"));
        });
        if !self.view().note.is_empty() {
            ui.weak(&self.view().note);
        }
        ui.separator();
    }

    pub(super) fn actions_ui(&mut self, ui: &mut egui::Ui, cmds: &mut Vec<ExploreCommand>) {
        let targets = self.targets();
        let ids: Vec<u64> = targets.iter().map(|i| self.view().ids[*i]).collect();
        let any = !ids.is_empty();
        ui.heading("Actions");
        ui.label(match (ids.len(), self.grid.picked.is_empty()) {
            (0, _) => "Nothing selected".to_string(),
            (n, true) => format!("on the {n} selected item(s)"),
            (n, false) => format!("on the {n} item(s) picked in the grid"),
        });
        ui.horizontal(|ui| {
            let label = ui.label("Tag");
            ui.add(
                egui::TextEdit::singleline(&mut self.tag_text)
                    .hint_text("reviewed or key:value")
                    .desired_width(150.0),
            )
            .labelled_by(label.id);
        });
        let tag = self.tag_text.trim().to_string();
        ui.horizontal(|ui| {
            if ui
                .add_enabled(any && !tag.is_empty(), egui::Button::new("Add tag"))
                .clicked()
            {
                cmds.push(ExploreCommand::Tag {
                    ids: ids.clone(),
                    tag: tag.clone(),
                });
            }
            if ui
                .add_enabled(any && !tag.is_empty(), egui::Button::new("Remove tag"))
                .clicked()
            {
                cmds.push(ExploreCommand::Untag {
                    ids: ids.clone(),
                    tag: tag.clone(),
                });
            }
        });
        ui.horizontal(|ui| {
            if ui.add_enabled(any, egui::Button::new("Bookmark")).clicked() {
                cmds.push(ExploreCommand::Bookmark(ids.clone()));
            }
            let focus = self.grid.inspected.or(targets.first().copied());
            let recipe = focus.filter(|i| self.view().is_generated(*i));
            if ui
                .add_enabled(recipe.is_some(), egui::Button::new("Open recipe"))
                .on_disabled_hover_text("Inspect a generated item first")
                .clicked()
            {
                if let Some(i) = recipe {
                    cmds.push(ExploreCommand::OpenRecipe(self.view().ids[i]));
                }
            }
        });
        ui.separator();
        ui.strong("Export selection");
        ui.horizontal(|ui| {
            let label = ui.label("Format");
            egui::ComboBox::from_id_salt("explore-export-format")
                .selected_text(self.export_format.name())
                .show_ui(ui, |ui| {
                    for f in Format::ALL {
                        ui.selectable_value(&mut self.export_format, f, f.name());
                    }
                })
                .response
                .labelled_by(label.id);
        });
        ui.horizontal(|ui| {
            let label = ui.label("Folder");
            ui.add(egui::TextEdit::singleline(&mut self.export_dir).desired_width(150.0))
                .labelled_by(label.id);
            if ui.button("Browse…").clicked() {
                cmds.push(ExploreCommand::PickExportDir);
            }
        });
        let dir = self.export_dir.trim().to_string();
        if ui
            .add_enabled(any && !dir.is_empty(), egui::Button::new("Export"))
            .on_disabled_hover_text("Select items and choose a folder")
            .clicked()
        {
            cmds.push(ExploreCommand::ExportSelection {
                ids: ids.clone(),
                format: self.export_format,
                dir: PathBuf::from(dir),
            });
        }
        ui.separator();
        ui.strong("Similarity");
        ui.horizontal(|ui| {
            let focus = self
                .grid
                .inspected
                .or(self.hovered())
                .or(targets.first().copied());
            if ui
                .add_enabled(focus.is_some(), egui::Button::new("Find similar"))
                .on_hover_text("The k nearest items to the inspected (or first selected) item")
                .clicked()
            {
                if let Some(i) = focus {
                    cmds.push(ExploreCommand::FindSimilar {
                        id: self.view().ids[i],
                        k: self.k,
                    });
                }
            }
            ui.label("k");
            ui.add(egui::DragValue::new(&mut self.k).range(1..=1000));
        });
        ui.horizontal(|ui| {
            if ui.button("Near-duplicates").clicked() {
                cmds.push(ExploreCommand::NearDuplicates {
                    threshold: self.threshold,
                });
            }
            ui.add(
                egui::Slider::new(&mut self.threshold, 0.5..=1.0)
                    .text("cosine ≥")
                    .max_decimals(3),
            );
        });
        if ui
            .button("Rank by uniqueness")
            .on_hover_text("Outliers first")
            .clicked()
        {
            cmds.push(ExploreCommand::RankUniqueness);
        }
        ui.separator();
        self.coverage_ui(ui, cmds);
        if self.color_column_name().is_some() {
            ui.separator();
            ui.strong(format!(
                "Colour: {}",
                self.color_column_name().unwrap_or("")
            ));
            colors::legend_ui(ui, &self.legend);
        }
        if let Some(i) = self.grid.inspected.filter(|i| *i < self.view().len()) {
            ui.separator();
            grid::inspect_ui(ui, self.view(), i);
        }
    }

    fn coverage_ui(&mut self, ui: &mut egui::Ui, cmds: &mut Vec<ExploreCommand>) {
        ui.strong("Coverage");
        egui::Grid::new("explore-coverage-sets")
            .num_columns(2)
            .show(ui, |ui| {
                let l = ui.label("real");
                ui.add(egui::TextEdit::singleline(&mut self.coverage_real).desired_width(160.0))
                    .labelled_by(l.id);
                ui.end_row();
                let l = ui.label("synthetic");
                ui.add(
                    egui::TextEdit::singleline(&mut self.coverage_synthetic).desired_width(160.0),
                )
                .labelled_by(l.id);
                ui.end_row();
            });
        if ui.button("Compute coverage").clicked() {
            cmds.push(ExploreCommand::Coverage {
                real: self.coverage_real.trim().to_string(),
                synthetic: self.coverage_synthetic.trim().to_string(),
            });
        }
        let Some(c) = self.view().coverage.clone() else {
            return;
        };
        egui::Grid::new("explore-coverage")
            .num_columns(2)
            .striped(true)
            .show(ui, |ui| {
                ui.label("sets");
                ui.label(format!(
                    "{} real · {} synthetic",
                    c.real_count, c.synthetic_count
                ));
                ui.end_row();
                ui.label(format!("precision (k={})", c.k));
                ui.label(format!("{:.3}", c.precision));
                ui.end_row();
                ui.label(format!("recall (k={})", c.k));
                ui.label(format!("{:.3}", c.recall));
                ui.end_row();
                ui.label("KID");
                ui.label(format!("{:.4} ± {:.4}", c.kid, c.kid_se));
                ui.end_row();
            });
        ui.label(format!(
            "{} real item(s) not covered by any synthetic one",
            c.uncovered.len()
        ));
        if !c.uncovered.is_empty() {
            if ui.button("Select the uncovered items").clicked() {
                self.select_ids(&c.uncovered);
            }
            let names: Vec<String> = c
                .uncovered
                .iter()
                .take(20)
                .filter_map(|id| self.view().ids.iter().position(|x| x == id))
                .map(|i| self.view().name(i))
                .collect();
            ui.weak(names.join(", "));
            if c.uncovered.len() > 20 {
                ui.weak(format!("… and {} more", c.uncovered.len() - 20));
            }
        }
    }
}
