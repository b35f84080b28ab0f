//! Dialogs and windows: the modal [`Dialog`]s, the settings window and the mask painter.

use std::path::PathBuf;

use nodes::ParamValue;

use super::painter::{MaskPainter, PainterAction};
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
    /// The image feeding a node's `image` input, from the last run.
    pub(super) fn input_image(&self, node: &str) -> Option<engine::Image> {
        let doc = self.doc.to_doc(&self.catalogue);
        let link = doc.link_into(node, "image")?;
        let v = self.outputs.get(&link.from.0)?.get(link.from.1.as_str())?;
        v.as_image().map(|i| (**i).clone())
    }

    pub(super) fn open_painter(&mut self, ctx: &egui::Context, node: &str) {
        let Some(nid) = self.doc.find(node) else {
            return;
        };
        let painting = self
            .doc
            .snarl
            .get_node(nid)
            .and_then(|n| n.params.get("painting"))
            .and_then(|v| v.as_str())
            .and_then(|s| s.strip_prefix("asset:"))
            .and_then(|sha| self.doc.extra.assets.get(sha))
            .and_then(|a| engine::hashing::decode_base64(&a.data_base64).ok())
            .and_then(|b| engine::codec::decode_image(&b, "painting").ok())
            .map(|img| engine::Mask {
                width: img.width,
                height: img.height,
                data: img.data.chunks_exact(4).map(|p| p[0]).collect(),
            });
        let image = self.input_image(node);
        let mut painter = MaskPainter::new(node, image.as_ref(), painting, ctx);
        if image.is_none() {
            painter.message =
                Some("Run the graph (or \"Run to here\") to paint over the input image.".into());
            self.apply(
                ctx,
                AppCommand::Run {
                    to_node: Some(node.to_string()),
                },
            );
        }
        self.painter = Some(painter);
    }

    /// Stores a painted mask in the document's assets and points the node at it.
    pub fn apply_painting(&mut self, node: &str, mask: &engine::Mask) -> Result<(), String> {
        let png = engine::codec::encode_mask_png(mask, &[])?;
        let sha = engine::hashing::sha256_hex(&png);
        self.doc.extra.assets.insert(
            sha.clone(),
            nodes::Asset {
                mime: "image/png".into(),
                data_base64: engine::hashing::encode_base64(&png),
                external: false,
                size: None,
            },
        );
        let nid = self
            .doc
            .find(node)
            .ok_or_else(|| format!("node {node} is gone"))?;
        if let Some(n) = self.doc.snarl.get_node_mut(nid) {
            n.params
                .insert("painting".into(), ParamValue::Text(format!("asset:{sha}")));
        }
        Ok(())
    }

    pub(super) fn windows_ui(&mut self, ctx: &egui::Context, cmds: &mut Vec<AppCommand>) {
        // Once the run to the painted node has produced its input image, show it under the mask.
        if let Some(node) = self
            .painter
            .as_ref()
            .filter(|p| !p.has_background())
            .map(|p| p.node.clone())
        {
            if let Some(img) = self.input_image(&node) {
                if let Some(p) = &mut self.painter {
                    p.set_background(&img, ctx);
                }
            }
        }
        if let Some(p) = &mut self.painter {
            let mut open = true;
            let mut action = None;
            egui::Window::new(format!("Mask painter · {}", p.node))
                .open(&mut open)
                .default_size([820.0, 720.0])
                .show(ctx, |ui| {
                    action = p.painter_ui(ui);
                });
            match action {
                Some(PainterAction::Apply(mask)) => {
                    let node = p.node.clone();
                    if let Err(e) = self.apply_painting(&node, &mask) {
                        self.error("Cannot store the painting", e);
                    }
                    self.painter = None;
                }
                Some(PainterAction::Close) => self.painter = None,
                None if !open => self.painter = None,
                None => {}
            }
        }
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
