//! The settings kept between launches, and their window.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::training::TrainForm;
use super::{AppCommand, StudioApp};

/// Settings kept between launches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Output folder; `None` means the data folder's `outputs/`.
    pub out_dir: Option<PathBuf>,
    pub model_dirs: Vec<PathBuf>,
    /// Extra recipe library folders (besides the data folder's `recipes/` and
    /// `DEFECT_STUDIO_RECIPE_DIRS`).
    pub recipe_dirs: Vec<PathBuf>,
    /// The default device (`auto`, `cpu` or `cuda:N`). The user store's setting
    /// (`engine::devices::default_device`) wins over this copy: it is read at start and written
    /// on Apply; the field stays so settings saved by older versions still load.
    pub device: String,
    /// Memory budget of the node output cache, in MiB.
    pub cache_budget_mib: u64,
    pub recent: Vec<PathBuf>,
    pub show_inspector: bool,
    pub show_gallery: bool,
    pub run_count: u64,
    pub run_seed: u64,
    /// The Training panel's form.
    pub training: TrainForm,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            out_dir: None,
            model_dirs: vec![engine::paths::models_dir()],
            recipe_dirs: Vec::new(),
            device: "auto".into(),
            cache_budget_mib: 2048,
            recent: Vec::new(),
            show_inspector: true,
            show_gallery: true,
            run_count: 1,
            run_seed: 0,
            training: TrainForm::default(),
        }
    }
}

/// The list of extra recipe folders: remove one, type a path and add it, or pick one.
fn recipe_dirs_ui(ui: &mut egui::Ui, dirs: &mut Vec<PathBuf>, text: &mut String) {
    ui.vertical(|ui| {
        let mut remove = None;
        for (i, d) in dirs.iter().enumerate() {
            ui.horizontal(|ui| {
                ui.label(d.display().to_string());
                if ui
                    .small_button("✖")
                    .on_hover_text("Remove this recipe folder")
                    .clicked()
                {
                    remove = Some(i);
                }
            });
        }
        if let Some(i) = remove {
            dirs.remove(i);
        }
        ui.horizontal(|ui| {
            ui.add(
                egui::TextEdit::singleline(text)
                    .hint_text("folder path")
                    .desired_width(220.0),
            );
            let typed = PathBuf::from(text.trim());
            if ui
                .add_enabled(
                    !text.trim().is_empty(),
                    egui::Button::new("Add recipe folder"),
                )
                .clicked()
                && !dirs.contains(&typed)
            {
                dirs.push(typed);
                text.clear();
            }
            if ui.button("Browse…").clicked() {
                if let Some(d) = rfd::FileDialog::new().pick_folder() {
                    if !dirs.contains(&d) {
                        dirs.push(d);
                    }
                }
            }
        });
    });
}

impl StudioApp {
    /// The Settings window, while open (with the devices section, `devices_ui`); "Apply"
    /// queues [`AppCommand::ApplySettings`].
    pub(super) fn settings_window_ui(&mut self, ctx: &egui::Context, cmds: &mut Vec<AppCommand>) {
        if let Some(mut s) = self.show_settings.take() {
            let mut open = true;
            let mut apply = false;
            egui::Window::new("Settings")
                .open(&mut open)
                .show(ctx, |ui| {
                    egui::Grid::new("settings-grid")
                        .num_columns(2)
                        .show(ui, |ui| {
                            ui.label("Output folder");
                            let mut text = s
                                .out_dir
                                .as_ref()
                                .map(|p| p.display().to_string())
                                .unwrap_or_default();
                            if ui
                                .add(egui::TextEdit::singleline(&mut text).hint_text(
                                    engine::paths::default_out_dir().display().to_string(),
                                ))
                                .changed()
                            {
                                s.out_dir =
                                    (!text.trim().is_empty()).then(|| PathBuf::from(text.trim()));
                            }
                            ui.end_row();
                            ui.label("Model folders");
                            ui.vertical(|ui| {
                                let mut remove = None;
                                for (i, d) in s.model_dirs.iter().enumerate() {
                                    ui.horizontal(|ui| {
                                        ui.label(d.display().to_string());
                                        if ui.small_button("✖").clicked() {
                                            remove = Some(i);
                                        }
                                    });
                                }
                                if let Some(i) = remove {
                                    s.model_dirs.remove(i);
                                }
                                if ui.button("Add folder…").clicked() {
                                    if let Some(d) = rfd::FileDialog::new().pick_folder() {
                                        s.model_dirs.push(d);
                                    }
                                }
                            });
                            ui.end_row();
                            ui.label("Recipe folders");
                            let text_id = egui::Id::new("recipe-dir-text");
                            let mut text: String =
                                ui.data_mut(|d| d.get_temp(text_id)).unwrap_or_default();
                            recipe_dirs_ui(ui, &mut s.recipe_dirs, &mut text);
                            ui.data_mut(|d| d.insert_temp(text_id, text));
                            ui.end_row();
                            ui.label("Cache memory budget (MiB)");
                            ui.add(
                                egui::DragValue::new(&mut s.cache_budget_mib).range(64..=262_144),
                            );
                            ui.end_row();
                        });
                    ui.separator();
                    cmds.extend(super::devices_ui::devices_ui(
                        ui,
                        &self.devices,
                        &mut s.device,
                    ));
                    ui.separator();
                    ui.label(
                        egui::RichText::new(format!(
                            "Data folder: {}",
                            engine::paths::home().display()
                        ))
                        .weak(),
                    );
                    if ui.button("Apply").clicked() {
                        apply = true;
                    }
                });
            if apply {
                cmds.push(AppCommand::ApplySettings(Box::new(s)));
            } else if open {
                self.show_settings = Some(s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// eframe's storage in memory.
    #[derive(Default)]
    struct Memory(std::collections::HashMap<String, String>);

    impl eframe::Storage for Memory {
        fn get_string(&self, key: &str) -> Option<String> {
            self.0.get(key).cloned()
        }

        fn set_string(&mut self, key: &str, value: String) {
            self.0.insert(key.to_string(), value);
        }

        fn remove_string(&mut self, key: &str) {
            self.0.remove(key);
        }

        fn flush(&mut self) {}
    }

    #[test]
    fn settings_survive_eframes_storage() {
        let mut s = Settings::default();
        s.training.name = "kept".into();
        s.training.config.rank = 24;
        s.training.config.min_snr_gamma = Some(5.0);
        s.training.config.class_data = Some(PathBuf::from("/class"));
        s.training.config.schedule = engine::sd::train::LrSchedule::Cosine;
        s.training.config.targets.conv = true;
        s.training.config.save_dtype = candle_core::DType::F16;
        let mut m = Memory::default();
        eframe::set_value(&mut m, eframe::APP_KEY, &s);
        let back: Option<Settings> = eframe::get_value(&m, eframe::APP_KEY);
        assert_eq!(back, Some(s));
    }

    #[test]
    fn settings_saved_before_devices_still_load() {
        // As an older studio saved them: a `device` of its own, no field added since.
        let old = r#"{"out_dir": null, "device": "cuda:0", "cache_budget_mib": 512}"#;
        let s: Settings = serde_json::from_str(old).unwrap();
        assert_eq!(s.device, "cuda:0");
        assert_eq!(s.cache_budget_mib, 512);
        assert_eq!(s.run_count, Settings::default().run_count);
        let none: Settings = serde_json::from_str("{}").unwrap();
        assert_eq!(none.device, "auto");
    }
}
