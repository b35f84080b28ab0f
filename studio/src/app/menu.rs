//! The menu bar: File, Edit, Train, View and Help menus, each item emitting an [`AppCommand`].

use super::{editor, library_panel, models, stats_window, versions, AppCommand, StudioApp};

impl StudioApp {
    pub(super) fn menu_ui(&mut self, root: &mut egui::Ui) -> Vec<AppCommand> {
        let mut cmds = Vec::new();
        egui::Panel::top("menu").show(root, |ui| {
            egui::MenuBar::new().ui(ui, |ui| {
                ui.menu_button("File", |ui| {
                    if ui.button("New").clicked() {
                        cmds.push(AppCommand::NewGraph);
                    }
                    if ui.button("Open…").clicked() {
                        cmds.push(AppCommand::OpenDialog);
                    }
                    if ui
                        .button("Import…")
                        .on_hover_text(
                            "A ComfyUI workflow (.json, API or UI format), or a PNG carrying a \
                             recipe (ours, A1111 parameters or ComfyUI)",
                        )
                        .clicked()
                    {
                        cmds.push(AppCommand::OpenDialog);
                    }
                    ui.menu_button("Open recent", |ui| {
                        if self.settings.recent.is_empty() {
                            ui.label("none yet");
                        }
                        for p in &self.settings.recent {
                            if ui.button(p.display().to_string()).clicked() {
                                cmds.push(AppCommand::Open(p.clone()));
                            }
                        }
                    });
                    if ui.button("Save").clicked() {
                        cmds.push(AppCommand::Save);
                    }
                    if ui.button("Save as…").clicked() {
                        cmds.push(AppCommand::SaveAs);
                    }
                    if ui
                        .button("Version history…")
                        .on_hover_text("Every save of this graph, with its changes (Ctrl+H)")
                        .clicked()
                    {
                        cmds.push(AppCommand::Versions(versions::VersionsCommand::Open));
                    }
                    if ui.button("Settings…").clicked() {
                        cmds.push(AppCommand::OpenSettings);
                    }
                });
                ui.menu_button("Edit", |ui| {
                    if ui
                        .add_enabled(self.doc.can_undo(), egui::Button::new("Undo"))
                        .clicked()
                    {
                        cmds.push(AppCommand::Undo);
                    }
                    if ui
                        .add_enabled(self.doc.can_redo(), egui::Button::new("Redo"))
                        .clicked()
                    {
                        cmds.push(AppCommand::Redo);
                    }
                    if ui.button("Copy").clicked() {
                        cmds.push(AppCommand::Copy);
                    }
                    if ui.button("Paste").clicked() {
                        cmds.push(AppCommand::Paste);
                    }
                    if ui.button("Delete selected").clicked() {
                        cmds.push(AppCommand::DeleteSelected);
                    }
                    if ui.button("Frame all").clicked() {
                        cmds.push(AppCommand::FrameAll);
                    }
                    ui.separator();
                    if ui.button("Make subgraph").on_hover_text("Ctrl+G").clicked() {
                        cmds.push(AppCommand::Editor(editor::EditorCommand::MakeSubgraph(
                            Vec::new(),
                        )));
                    }
                    if ui.button("Frame selection").clicked() {
                        cmds.push(AppCommand::Editor(editor::EditorCommand::FrameSelection(
                            Vec::new(),
                        )));
                    }
                });
                ui.menu_button("Train", |ui| {
                    if ui
                        .button("Train LoRA…")
                        .on_hover_text("Train a LoRA on a folder of product or defect photos")
                        .clicked()
                    {
                        cmds.push(AppCommand::OpenTraining);
                    }
                    if ui
                        .button("Inspection…")
                        .on_hover_text(
                            "Train a defect classifier and evaluate a detector on real images",
                        )
                        .clicked()
                    {
                        self.inspect.open = true;
                    }
                });
                ui.menu_button("View", |ui| {
                    ui.checkbox(&mut self.settings.show_inspector, "Inspector");
                    ui.checkbox(&mut self.settings.show_gallery, "Gallery");
                    let mut minimap = self.canvas.minimap_on(self.doc.snarl.nodes().count());
                    if ui.checkbox(&mut minimap, "Minimap").changed() {
                        self.canvas.minimap = Some(minimap);
                    }
                    if ui.button("Explore…").clicked() {
                        cmds.push(AppCommand::OpenExplore);
                    }
                    if ui
                        .button("Models…")
                        .on_hover_text(
                            "Checkpoints, LoRAs and other models in the model folders: hashes, \
                             metadata, training tags; drag one onto the graph (Ctrl+M)",
                        )
                        .clicked()
                    {
                        cmds.push(AppCommand::Models(models::ModelsCommand::Open));
                    }
                    if ui
                        .button("Recipe library…")
                        .on_hover_text("Search, open and insert saved recipes (Ctrl+L)")
                        .clicked()
                    {
                        cmds.push(AppCommand::Library(library_panel::LibraryCommand::Open));
                    }
                    if ui
                        .button("Statistics…")
                        .on_hover_text(
                            "Images per day, recipes, node kinds, models and devices used",
                        )
                        .clicked()
                    {
                        cmds.push(AppCommand::Stats(stats_window::StatsCommand::Open));
                    }
                });
                ui.menu_button("Help", |ui| {
                    if ui
                        .button("Keyboard shortcuts")
                        .on_hover_text("F1 or ?")
                        .clicked()
                    {
                        cmds.push(AppCommand::ShowShortcuts);
                    }
                });
                ui.separator();
                if ui.button("▶ Run").on_hover_text("Ctrl+Enter").clicked() {
                    cmds.push(AppCommand::Run { to_node: None });
                }
                if ui
                    .add_enabled(self.running(), egui::Button::new("■ Cancel"))
                    .clicked()
                {
                    cmds.push(AppCommand::Cancel);
                }
                ui.separator();
                let dirty = self.doc.dirty(&self.catalogue);
                ui.label(format!(
                    "{}{}",
                    self.doc.display_name(),
                    if dirty { " •" } else { "" }
                ))
                .on_hover_text(
                    self.doc
                        .path
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| "not saved to a file yet".into()),
                );
                ui.separator();
                ui.label("seed");
                ui.add(egui::DragValue::new(&mut self.settings.run_seed))
                    .on_hover_text("Run seed (0: the graph's meta.seed)");
                ui.label("count");
                ui.add(egui::DragValue::new(&mut self.settings.run_count).range(1..=100_000));
                self.run_device_ui(ui);
            });
        });
        cmds
    }
}
