//! The Models window's layout: search and kind chips, the list grouped by kind (rows are drag
//! sources for the canvas), the selected file's details, and the fetch buttons.

use egui::RichText;
use engine::models::browse::{ModelKind, FETCHABLE};

use super::{Entry, ModelsCommand, ModelsPanel, TOP_TAGS};
use crate::app::AppCommand;

/// A file size for people.
pub fn human_size(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2} GiB", b / (1024.0 * 1024.0 * 1024.0))
    } else if b >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / (1024.0 * 1024.0))
    } else {
        format!("{:.0} KiB", (b / 1024.0).ceil())
    }
}

impl ModelsPanel {
    /// The window, while open.
    pub fn models_ui(&mut self, ctx: &egui::Context) -> Vec<AppCommand> {
        let mut cmds = Vec::new();
        if !self.open {
            return cmds;
        }
        let mut open = true;
        egui::Window::new("Models")
            .open(&mut open)
            .default_pos([16.0, 48.0])
            .default_size([560.0, 700.0])
            .show(ctx, |ui| self.body_ui(ui, &mut cmds));
        if !open {
            self.open = false;
        }
        cmds
    }

    fn body_ui(&mut self, ui: &mut egui::Ui, cmds: &mut Vec<AppCommand>) {
        let cmd = |c| AppCommand::Models(c);
        ui.horizontal(|ui| {
            let label = ui.label("Search");
            ui.add(
                egui::TextEdit::singleline(&mut self.search)
                    .hint_text("name, training tag or hash prefix")
                    .desired_width(280.0),
            )
            .labelled_by(label.id);
            if ui
                .add_enabled(!self.scanning(), egui::Button::new("⟳ Rescan"))
                .on_hover_text("Scan the model folders again (new files are hashed)")
                .clicked()
            {
                cmds.push(cmd(ModelsCommand::Rescan));
            }
        });
        let counts: Vec<(ModelKind, usize)> = ModelKind::ALL
            .iter()
            .map(|k| {
                let n = self
                    .entries
                    .iter()
                    .flatten()
                    .filter(|e| e.kind == *k)
                    .count();
                (*k, n)
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        ui.horizontal_wrapped(|ui| {
            if ui.selectable_label(self.filter.is_none(), "All").clicked() {
                self.filter = None;
            }
            for (k, n) in counts {
                let on = self.filter == Some(k);
                if ui
                    .selectable_label(on, format!("{} ({n})", k.label()))
                    .clicked()
                {
                    self.filter = if on { None } else { Some(k) };
                }
            }
        });
        if let Some((line, fraction)) = &self.progress {
            match fraction {
                Some(f) => {
                    ui.add(egui::ProgressBar::new(*f).text(line.as_str()));
                }
                None => {
                    ui.horizontal(|ui| {
                        ui.spinner();
                        ui.label(line);
                    });
                }
            }
        } else if self.scanning() {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("scanning the model folders…");
            });
        }
        crate::app::dialogs::outcome_ui(ui, &self.message);
        ui.separator();
        let Some(total) = self.entries.as_ref().map(Vec::len) else {
            if !self.scanning() {
                ui.label("Not scanned yet.");
            }
            return;
        };
        let shown = self.shown().to_vec();
        ui.label(RichText::new(format!("{} of {total} files", shown.len())).weak());
        let list_height = (ui.available_height() * 0.5).max(160.0);
        egui::ScrollArea::vertical()
            .id_salt("models-list")
            .max_height(list_height)
            .auto_shrink([false, true])
            .show(ui, |ui| {
                if total == 0 {
                    ui.label(
                        "No .safetensors files in the model folders: add folders in Settings \
                         (or DEFECT_STUDIO_MODEL_DIRS), or fetch a model below.",
                    );
                }
                let mut last_kind = None;
                for i in shown {
                    let Some(e) = self.entries.as_ref().and_then(|v| v.get(i)) else {
                        continue;
                    };
                    if last_kind != Some(e.kind) {
                        last_kind = Some(e.kind);
                        ui.add_space(4.0);
                        ui.strong(e.kind.label());
                    }
                    let selected = self.selected.as_ref() == Some(&e.info.path);
                    if row_ui(ui, e, selected) {
                        self.selected = Some(e.info.path.clone());
                    }
                }
            });
        ui.separator();
        let sel = self
            .selected
            .as_ref()
            .and_then(|p| self.entries.iter().flatten().find(|e| &e.info.path == p));
        let textures = &mut self.thumb_textures;
        egui::ScrollArea::vertical()
            .id_salt("models-details")
            .max_height((ui.available_height() - 90.0).max(80.0))
            .auto_shrink([false, true])
            .show(ui, |ui| match sel {
                Some(e) => {
                    details_ui(ui, e, cmds);
                    thumbs_ui(ui, e, textures);
                }
                None => {
                    ui.label(
                        RichText::new("Select a file to see its hashes, metadata and tags.").weak(),
                    );
                }
            });
        ui.separator();
        self.fetch_ui(ui, cmds);
    }

    fn fetch_ui(&mut self, ui: &mut egui::Ui, cmds: &mut Vec<AppCommand>) {
        ui.strong("Fetch");
        let fetching = self.fetching().map(str::to_string);
        for f in FETCHABLE {
            let installed = self
                .entries
                .iter()
                .flatten()
                .any(|e| e.info.name == f.file_name);
            ui.horizontal(|ui| {
                let busy = fetching.is_some();
                let label = if fetching.as_deref() == Some(f.name) {
                    format!("Fetching {}…", f.name)
                } else {
                    format!("Fetch {}", f.name)
                };
                if ui
                    .add_enabled(!busy, egui::Button::new(label))
                    .on_hover_text(f.about)
                    .clicked()
                {
                    cmds.push(AppCommand::Models(ModelsCommand::Fetch(f.name.to_string())));
                }
                if installed {
                    ui.label(RichText::new(format!("✔ {} installed", f.file_name)).weak());
                } else {
                    ui.label(RichText::new(f.file_name).weak());
                }
            });
        }
    }
}

/// One list row: click selects it; a checkpoint or LoRA row can also be dragged (onto the
/// canvas). Whether it was clicked.
fn row_ui(ui: &mut egui::Ui, e: &Entry, selected: bool) -> bool {
    let summary = format!(
        "{} · {} · {}",
        e.info.arch,
        human_size(e.info.size),
        e.info.autov2
    );
    let bg = ui.painter().add(egui::Shape::Noop);
    let rect = ui
        .scope(|ui| {
            ui.horizontal(|ui| {
                let name = RichText::new(&e.name);
                ui.label(if selected { name.strong() } else { name });
                ui.label(RichText::new(&summary).weak().monospace());
            });
            if e.kind == ModelKind::Lora && !e.tags.is_empty() {
                let tags: Vec<&str> = e.tags.iter().take(4).map(|(t, _)| t.as_str()).collect();
                ui.label(
                    RichText::new(format!("   {}", tags.join(", ")))
                        .weak()
                        .small(),
                );
            }
        })
        .response
        .rect;
    let rect = rect.with_max_x(ui.max_rect().right());
    let drag = e.drag();
    let sense = if drag.is_some() {
        egui::Sense::click_and_drag()
    } else {
        egui::Sense::click()
    };
    let resp = ui.interact(
        rect,
        egui::Id::new(("model-row", e.info.path.as_path())),
        sense,
    );
    let visuals = ui.visuals();
    let fill = if selected {
        Some(visuals.selection.bg_fill.gamma_multiply(0.5))
    } else if resp.hovered() {
        Some(visuals.widgets.hovered.weak_bg_fill)
    } else {
        None
    };
    if let Some(fill) = fill {
        ui.painter()
            .set(bg, egui::Shape::rect_filled(rect.expand(1.0), 3.0, fill));
    }
    let clicked = resp.clicked();
    if let Some(payload) = drag {
        resp.dnd_set_drag_payload(payload);
        if resp.dragged() {
            // The name follows the pointer (painted, not an area: the drop test asks which
            // layer is under the pointer).
            if let Some(p) = ui.ctx().pointer_interact_pos() {
                let layer = egui::LayerId::new(egui::Order::Tooltip, resp.id);
                ui.ctx().layer_painter(layer).text(
                    p + egui::vec2(14.0, 4.0),
                    egui::Align2::LEFT_TOP,
                    &e.name,
                    egui::FontId::proportional(14.0),
                    ui.visuals().strong_text_color(),
                );
            }
        }
        resp.on_hover_text("Click for details; drag onto the graph for a loader node");
    }
    clicked
}

fn details_ui(ui: &mut egui::Ui, e: &Entry, cmds: &mut Vec<AppCommand>) {
    let cmd = |c| AppCommand::Models(c);
    ui.heading(&e.name);
    egui::Grid::new("model-details")
        .num_columns(2)
        .spacing([12.0, 4.0])
        .show(ui, |ui| {
            let row = |ui: &mut egui::Ui, k: &str, v: String| {
                ui.label(RichText::new(k).weak());
                ui.label(v);
                ui.end_row();
            };
            row(ui, "kind", e.kind.label().to_string());
            row(ui, "architecture", e.info.arch.clone());
            row(
                ui,
                "size",
                format!("{} ({} bytes)", human_size(e.info.size), e.info.size),
            );
            row(ui, "tensors", e.info.tensors.to_string());
            ui.label(RichText::new("sha256").weak());
            ui.label(RichText::new(&e.info.sha256).monospace().small());
            ui.end_row();
            ui.label(RichText::new("AutoV2").weak());
            ui.label(RichText::new(&e.info.autov2).monospace());
            ui.end_row();
            if let Some(b) = &e.base {
                row(ui, "base model", b.clone());
            }
            row(ui, "path", e.info.path.display().to_string());
        });
    ui.horizontal(|ui| {
        if ui
            .button("Copy sha256")
            .on_hover_text("Copy the full sha256")
            .clicked()
        {
            ui.ctx().copy_text(e.info.sha256.clone());
        }
        if let Some(model) = e.drag() {
            if ui
                .button("Add to graph")
                .on_hover_text("Add a loader node naming this file at the view's centre")
                .clicked()
            {
                cmds.push(cmd(ModelsCommand::AddNode { model, pos: None }));
            }
        }
    });
    if e.kind == ModelKind::Lora {
        if e.tags.is_empty() {
            ui.label(RichText::new("No training tags in the file (ss_tag_frequency).").weak());
        } else {
            ui.label("Training tags (click one to add it to the prompt):");
            ui.horizontal_wrapped(|ui| {
                for (tag, n) in e.tags.iter().take(TOP_TAGS) {
                    if ui
                        .button(format!("+ {tag}"))
                        .on_hover_text(format!(
                            "{n} training images; appends \"{tag}\" to the selected sampler's \
                             prompt"
                        ))
                        .clicked()
                    {
                        cmds.push(cmd(ModelsCommand::AddTag(tag.clone())));
                    }
                }
            });
        }
    }
    if !e.info.metadata.is_empty() {
        egui::CollapsingHeader::new(format!("Metadata ({} keys)", e.info.metadata.len()))
            .id_salt("model-metadata")
            .show(ui, |ui| {
                for (k, v) in &e.info.metadata {
                    let v: String = if v.chars().count() > 200 {
                        v.chars().take(200).chain(std::iter::once('…')).collect()
                    } else {
                        v.clone()
                    };
                    ui.label(RichText::new(format!("{k}: {v}")).small());
                }
            });
    }
}

/// The outputs that used the model, as textures made once per selection (`textures`).
fn thumbs_ui(
    ui: &mut egui::Ui,
    e: &Entry,
    textures: &mut Option<(std::path::PathBuf, Vec<egui::TextureHandle>)>,
) {
    if e.thumbs.is_empty() {
        ui.label(RichText::new("No outputs in the store used this model yet.").weak());
        return;
    }
    if textures.as_ref().map(|(p, _)| p) != Some(&e.info.path) {
        let made = e
            .thumbs
            .iter()
            .enumerate()
            .map(|(i, img)| {
                ui.ctx().load_texture(
                    format!("model-thumb-{}-{i}", e.info.sha256),
                    img.clone(),
                    egui::TextureOptions::LINEAR,
                )
            })
            .collect();
        *textures = Some((e.info.path.clone(), made));
    }
    ui.label("Outputs that used it:");
    ui.horizontal_wrapped(|ui| {
        for t in textures.iter().flat_map(|(_, t)| t) {
            ui.add(egui::Image::new(t).max_size(egui::Vec2::splat(96.0)));
        }
    });
}
