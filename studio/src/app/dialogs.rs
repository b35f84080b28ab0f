//! Dialogs and windows: the modal [`Dialog`]s, the settings window, the call that shows the
//! mask painter (`painter_open.rs`), and the outcome line panels show after an action.

use std::path::PathBuf;

use super::{AppCommand, StudioApp};

/// A modal dialog.
#[derive(Clone, Debug)]
pub enum Dialog {
    Error {
        title: String,
        text: String,
    },
    /// Unsaved changes: what to do after the user chooses.
    Unsaved(Box<AppCommand>),
    UnsavedClose,
    /// Type a path (when no file dialog is available).
    Path {
        title: String,
        text: String,
        save: bool,
    },
}

impl StudioApp {
    pub(super) fn windows_ui(&mut self, ctx: &egui::Context, cmds: &mut Vec<AppCommand>) {
        self.painter_window_ui(ctx);
        self.gallery.viewer_ui(ctx);
        if self.training.open {
            cmds.extend(self.training.training_ui(ctx, &mut self.settings.training));
        }
        self.settings_window_ui(ctx, cmds);
        self.poll_explore(ctx);
        self.explore_window_ui(ctx, cmds);
        let mut close = false;
        let mut follow = None;
        match &mut self.dialog {
            None => {}
            Some(Dialog::Error { title, text }) => {
                egui::Window::new(title.clone())
                    .collapsible(false)
                    .anchor(egui::Align2::CENTER_CENTER, [0.0, 0.0])
                    .show(ctx, |ui| {
                        egui::ScrollArea::vertical()
                            .max_height(300.0)
                            .show(ui, |ui| {
                                ui.label(text.as_str());
                            });
                        if ui.button("OK").clicked() {
                            close = true;
                        }
                    });
            }
            Some(Dialog::Unsaved(then)) => {
                egui::Window::new("Unsaved changes")
                    .collapsible(false)
                    .anchor(egui::Align2::CENTER_CENTER, [0.0, 0.0])
                    .show(ctx, |ui| {
                        ui.label("The graph has unsaved changes.");
                        ui.horizontal(|ui| {
                            if ui.button("Discard").clicked() {
                                follow = Some((**then).clone());
                                close = true;
                            }
                            if ui.button("Cancel").clicked() {
                                close = true;
                            }
                        });
                    });
            }
            Some(Dialog::UnsavedClose) => {
                egui::Window::new("Quit with unsaved changes?")
                    .collapsible(false)
                    .anchor(egui::Align2::CENTER_CENTER, [0.0, 0.0])
                    .show(ctx, |ui| {
                        ui.horizontal(|ui| {
                            if ui.button("Save").clicked() {
                                cmds.push(AppCommand::Save);
                                close = true;
                            }
                            if ui.button("Quit without saving").clicked() {
                                self.allow_close = true;
                                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
                                close = true;
                            }
                            if ui.button("Cancel").clicked() {
                                close = true;
                            }
                        });
                    });
            }
            Some(Dialog::Path { title, text, save }) => {
                egui::Window::new(title.clone())
                    .collapsible(false)
                    .anchor(egui::Align2::CENTER_CENTER, [0.0, 0.0])
                    .show(ctx, |ui| {
                        ui.label("No file dialog is available here; type a path:");
                        ui.horizontal(|ui| {
                            let label = ui.label("Path");
                            ui.add(egui::TextEdit::singleline(text).desired_width(400.0))
                                .labelled_by(label.id);
                        });
                        ui.horizontal(|ui| {
                            if ui.button(if *save { "Save" } else { "Open" }).clicked() {
                                let p = PathBuf::from(text.trim());
                                follow = Some(if *save {
                                    AppCommand::SaveTo(p)
                                } else {
                                    AppCommand::Open(p)
                                });
                                close = true;
                            }
                            if ui.button("Cancel").clicked() {
                                close = true;
                            }
                        });
                    });
            }
        }
        if close {
            self.dialog = None;
        }
        if let Some(f) = follow {
            // A discard confirmed: mark the document clean so the follow-up goes through.
            let now = self.doc.to_doc(&self.catalogue);
            self.doc.saved = now;
            cmds.push(f);
        }
    }
}

/// A panel's outcome line for its last action (ok, text): green when it worked, red when not.
pub fn outcome_ui(ui: &mut egui::Ui, message: &Option<(bool, String)>) {
    if let Some((ok, m)) = message {
        let color = if *ok {
            egui::Color32::LIGHT_GREEN
        } else {
            egui::Color32::LIGHT_RED
        };
        ui.colored_label(color, m);
    }
}
