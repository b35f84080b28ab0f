//! The Training panel: LoRA training from a folder of product or defect photos.
//!
//! The form ([`TrainForm`], with its presets) is in [`super::train_form`].
//! [`TrainingPanel::training_ui`] draws the form, the live loss plot, steps per second, ETA, the
//! sample images and the past runs from the store, and returns [`AppCommand`]s: the engine
//! worker runs the job (the same [`engine::sd::train::job::run_job`] as `defect-studio
//! train-lora`), and its events come back through [`TrainingPanel::on_event`].

use std::path::{Path, PathBuf};

use egui::{Color32, Pos2, Stroke, Vec2};
use engine::sd::train::job::{TrainEvent, TrainOutcome};
use engine::{RunStatus, TrainingRecord};

pub use super::train_form::{TrainForm, PRESET_KIND, TRAIN_PRESETS};
use super::AppCommand;

/// Where the current run is.
#[derive(Clone, Debug, PartialEq)]
pub enum TrainState {
    Idle,
    Queued,
    /// Loading or caching, with what it is doing.
    Preparing(String),
    Running,
    Succeeded(String),
    Failed(String),
    Cancelled,
}

/// The panel's runtime state (not persisted: the store keeps the history).
pub struct TrainingPanel {
    pub open: bool,
    pub state: TrainState,
    pub step: usize,
    pub total: usize,
    pub resumed_from: usize,
    /// `(step, loss)` of this run.
    pub losses: Vec<(usize, f32)>,
    pub lr: f64,
    pub steps_per_s: f64,
    pub eta_s: f64,
    pub info: String,
    /// The latest samples, newest last (at most [`MAX_SAMPLES`]).
    pub samples: Vec<(usize, egui::TextureHandle)>,
    pub history: Vec<(u64, TrainingRecord)>,
    pub user_presets: Vec<(String, serde_json::Value)>,
    preset_name: String,
    /// A message about the form (what is missing).
    pub message: Option<String>,
}

/// Sample thumbnails kept in the panel.
pub const MAX_SAMPLES: usize = 8;

impl Default for TrainingPanel {
    fn default() -> Self {
        TrainingPanel {
            open: false,
            state: TrainState::Idle,
            step: 0,
            total: 0,
            resumed_from: 0,
            losses: Vec::new(),
            lr: 0.0,
            steps_per_s: 0.0,
            eta_s: f64::NAN,
            info: String::new(),
            samples: Vec::new(),
            history: Vec::new(),
            user_presets: Vec::new(),
            preset_name: String::new(),
            message: None,
        }
    }
}

impl TrainingPanel {
    /// Whether a job is queued or running.
    pub fn busy(&self) -> bool {
        matches!(
            self.state,
            TrainState::Queued | TrainState::Preparing(_) | TrainState::Running
        )
    }

    /// A job was submitted: clear the last run's curve and samples.
    pub fn started(&mut self) {
        *self = TrainingPanel {
            open: true,
            state: TrainState::Queued,
            history: std::mem::take(&mut self.history),
            user_presets: std::mem::take(&mut self.user_presets),
            preset_name: std::mem::take(&mut self.preset_name),
            ..TrainingPanel::default()
        };
    }

    pub fn on_event(&mut self, ctx: &egui::Context, ev: TrainEvent) {
        match ev {
            TrainEvent::Status(s) => self.state = TrainState::Preparing(s),
            TrainEvent::Started {
                total,
                resumed_from,
                images,
                class_images,
                modules,
                text_modules,
                ..
            } => {
                self.state = TrainState::Running;
                self.total = total;
                self.step = resumed_from;
                self.resumed_from = resumed_from;
                self.info = format!(
                    "{images} images{}, {} UNet layers{} adapted{}",
                    if class_images > 0 {
                        format!(" + {class_images} class images")
                    } else {
                        String::new()
                    },
                    modules - text_modules,
                    if text_modules > 0 {
                        format!(" + {text_modules} text-encoder layers")
                    } else {
                        String::new()
                    },
                    if resumed_from > 0 {
                        format!(", resumed at step {resumed_from}")
                    } else {
                        String::new()
                    }
                );
            }
            TrainEvent::Step {
                step,
                total,
                loss,
                lr,
                steps_per_s,
                eta_s,
            } => {
                self.step = step;
                self.total = total;
                self.losses.push((step, loss));
                self.lr = lr;
                self.steps_per_s = steps_per_s;
                self.eta_s = eta_s;
            }
            TrainEvent::Sample { step, image, .. } => {
                let tex = ctx.load_texture(
                    format!("train-sample-{step}"),
                    super::painter::image_to_color(&image),
                    egui::TextureOptions::LINEAR,
                );
                self.samples.push((step, tex));
                if self.samples.len() > MAX_SAMPLES {
                    let _evicted = self.samples.remove(0);
                }
            }
            TrainEvent::Saved { .. } => {}
        }
    }

    pub fn on_finished(&mut self, result: Result<TrainOutcome, String>) {
        self.state = match result {
            Ok(o) => TrainState::Succeeded(format!(
                "{} written ({} steps, sha256 {})",
                o.lora.display(),
                o.summary.steps,
                &o.lora_sha256[..10.min(o.lora_sha256.len())]
            )),
            Err(e) if e == engine::EngineError::Cancelled.to_string() => TrainState::Cancelled,
            Err(e) => TrainState::Failed(e),
        };
    }

    /// The panel (a window while open).
    pub fn training_ui(&mut self, ctx: &egui::Context, form: &mut TrainForm) -> Vec<AppCommand> {
        let mut cmds = Vec::new();
        let mut open = self.open;
        egui::Window::new("Train LoRA")
            .open(&mut open)
            .default_size([980.0, 720.0])
            .show(ctx, |ui| {
                ui.horizontal_top(|ui| {
                    ui.vertical(|ui| {
                        ui.set_width(420.0);
                        self.actions_ui(ui, form, &mut cmds);
                        ui.separator();
                        egui::ScrollArea::vertical()
                            .id_salt("train-form")
                            .max_height(600.0)
                            .show(ui, |ui| self.form_ui(ui, form, &mut cmds));
                    });
                    ui.separator();
                    ui.vertical(|ui| {
                        self.progress_ui(ui, form, &mut cmds);
                        ui.separator();
                        self.history_ui(ui, &mut cmds);
                    });
                });
            });
        self.open = open;
        cmds
    }

    fn form_ui(&mut self, ui: &mut egui::Ui, f: &mut TrainForm, cmds: &mut Vec<AppCommand>) {
        ui.horizontal(|ui| {
            ui.label("Preset");
            egui::ComboBox::from_id_salt("train-preset")
                .selected_text("choose…")
                .show_ui(ui, |ui| {
                    for (name, doc, json) in TRAIN_PRESETS {
                        if ui.button(*name).on_hover_text(*doc).clicked() {
                            if let Ok(v) = serde_json::from_str(json) {
                                *f = f.with_preset(&v);
                            }
                        }
                    }
                    for (name, v) in &self.user_presets {
                        if ui.button(format!("★ {name}")).clicked() {
                            *f = f.with_preset(v);
                        }
                    }
                });
            ui.add(
                egui::TextEdit::singleline(&mut self.preset_name)
                    .hint_text("preset name")
                    .desired_width(110.0),
            );
            if ui
                .add_enabled(
                    !self.preset_name.trim().is_empty(),
                    egui::Button::new("Save preset"),
                )
                .clicked()
            {
                cmds.push(AppCommand::SavePreset {
                    kind: PRESET_KIND.into(),
                    name: self.preset_name.trim().to_string(),
                    params: f.preset_value(),
                });
            }
        });
        ui.separator();
        egui::Grid::new("train-files")
            .num_columns(2)
            .show(ui, |ui| {
                labelled_text(ui, "LoRA name", &mut f.name, "file name in models/loras");
                ui.end_row();
                ui.label("Base model");
                ui.horizontal(|ui| {
                    ui.add(
                        egui::TextEdit::singleline(&mut f.model)
                            .hint_text("name in the model folders, or a path")
                            .desired_width(230.0),
                    );
                    if ui
                        .small_button("…")
                        .on_hover_text("Choose a file")
                        .clicked()
                    {
                        if let Some(p) = rfd::FileDialog::new()
                            .add_filter("safetensors", &["safetensors"])
                            .pick_file()
                        {
                            f.model = p.display().to_string();
                        }
                    }
                });
                ui.end_row();
                folder_row(
                    ui,
                    "Data folder",
                    &mut f.data,
                    "images + same-name .txt captions",
                );
                ui.end_row();
            });
        ui.separator();
        super::train_form::config_ui(ui, &mut f.config);
        ui.separator();
        ui.horizontal(|ui| {
            ui.label("Save every");
            ui.add(egui::DragValue::new(&mut f.save_every).range(0..=1_000_000));
            ui.label("steps");
            ui.checkbox(&mut f.resume, "resume from checkpoint");
        });
        ui.separator();
        ui.horizontal(|ui| {
            ui.label("Sample every");
            ui.add(egui::DragValue::new(&mut f.sample_every).range(0..=1_000_000));
            ui.label("steps with");
            ui.add(egui::DragValue::new(&mut f.sample_steps).range(1..=150));
            ui.label("sampler steps");
        });
        ui.add(
            egui::TextEdit::singleline(&mut f.sample_prompt)
                .hint_text("sample prompt, e.g. a scratch on brushed metal")
                .desired_width(400.0),
        );
    }

    /// Start and Cancel, what is missing, and where the files go: above the form's scroll area,
    /// so that they stay in view however long the form is.
    fn actions_ui(&mut self, ui: &mut egui::Ui, f: &TrainForm, cmds: &mut Vec<AppCommand>) {
        ui.horizontal(|ui| {
            if ui
                .add_enabled(!self.busy(), egui::Button::new("▶ Start training"))
                .clicked()
            {
                match f.to_job("cpu") {
                    Ok(_) => {
                        self.message = None;
                        cmds.push(AppCommand::StartTraining(Box::new(f.clone())));
                    }
                    Err(m) => self.message = Some(m),
                }
            }
            if ui
                .add_enabled(self.busy(), egui::Button::new("■ Cancel"))
                .on_hover_text("Stops after the current step; the last checkpoint stays")
                .clicked()
            {
                cmds.push(AppCommand::CancelTraining);
            }
        });
        if let Some(m) = &self.message {
            ui.colored_label(Color32::from_rgb(230, 120, 60), m);
        }
        ui.label(
            egui::RichText::new(format!(
                "LoRA: {}\nCheckpoint and samples: {}",
                f.lora_path().display(),
                f.work_dir().display()
            ))
            .weak()
            .small(),
        );
    }

    fn progress_ui(&mut self, ui: &mut egui::Ui, form: &TrainForm, cmds: &mut Vec<AppCommand>) {
        let status = match &self.state {
            TrainState::Idle => "Not started".to_string(),
            TrainState::Queued => "Queued (waits for the running job)".into(),
            TrainState::Preparing(s) => format!("Preparing: {s}…"),
            TrainState::Running => "Training".into(),
            TrainState::Succeeded(s) => format!("Done: {s}"),
            TrainState::Failed(e) => format!("Failed: {e}"),
            TrainState::Cancelled => "Cancelled (resume continues from the last checkpoint)".into(),
        };
        ui.label(egui::RichText::new(status).strong());
        if !self.info.is_empty() {
            ui.label(&self.info);
        }
        let frac = if self.total > 0 {
            self.step as f32 / self.total as f32
        } else {
            0.0
        };
        ui.add(egui::ProgressBar::new(frac).text(format!("step {}/{}", self.step, self.total)));
        ui.label(format!(
            "loss {}   lr {:.2e}   {:.3} steps/s   ETA {}",
            self.losses
                .last()
                .map(|l| format!("{:.4}", l.1))
                .unwrap_or_else(|| "–".into()),
            self.lr,
            self.steps_per_s,
            if self.busy() {
                crate::fmt::format_duration(self.eta_s)
            } else {
                "–".into()
            }
        ));
        loss_plot_ui(ui, &self.losses, Vec2::new(500.0, 200.0));
        if !self.samples.is_empty() {
            ui.label("Samples");
            ui.horizontal_wrapped(|ui| {
                for (step, tex) in &self.samples {
                    ui.vertical(|ui| {
                        ui.add(egui::Image::new(tex).fit_to_exact_size(Vec2::splat(120.0)));
                        ui.small(format!("step {step}"));
                    });
                }
            });
        }
        if matches!(self.state, TrainState::Succeeded(_)) {
            let path = form.lora_path();
            if ui
                .button("Use in graph")
                .on_hover_text("Adds a LoraLoader node with this LoRA")
                .clicked()
            {
                cmds.push(AppCommand::AddLora(path));
            }
        }
    }

    fn history_ui(&mut self, ui: &mut egui::Ui, cmds: &mut Vec<AppCommand>) {
        ui.horizontal(|ui| {
            ui.label(egui::RichText::new("Past trainings").strong());
            if ui
                .small_button("⟳")
                .on_hover_text("Reload from the store")
                .clicked()
            {
                cmds.push(AppCommand::RefreshTrainings);
            }
        });
        egui::ScrollArea::vertical()
            .id_salt("train-history")
            .max_height(220.0)
            .show(ui, |ui| {
                if self.history.is_empty() {
                    ui.weak("none yet");
                }
                egui::Grid::new("train-history-grid")
                    .num_columns(5)
                    .striped(true)
                    .show(ui, |ui| {
                        for (id, rec) in self.history.iter().rev() {
                            ui.label(format!("#{id} {}", rec.name));
                            ui.label(rec.effective_status().name());
                            ui.label(format!("{}/{}", rec.steps_done, rec.steps_total));
                            ui.label(
                                rec.losses
                                    .last()
                                    .map(|l| format!("loss {:.4}", l.1))
                                    .unwrap_or_default(),
                            )
                            .on_hover_text(format!(
                                "base {}\ndata {}\nstarted {}",
                                rec.model,
                                rec.data,
                                engine::store::format_utc(rec.started_ms)
                            ));
                            let exists = Path::new(&rec.lora_path).is_file();
                            if ui
                                .add_enabled(
                                    exists && rec.status == RunStatus::Succeeded,
                                    egui::Button::new("Use").small(),
                                )
                                .on_hover_text(&rec.lora_path)
                                .clicked()
                            {
                                cmds.push(AppCommand::AddLora(PathBuf::from(&rec.lora_path)));
                            }
                            ui.end_row();
                        }
                    });
            });
    }
}

fn labelled_text(ui: &mut egui::Ui, label: &str, text: &mut String, hint: &str) {
    let l = ui.label(label);
    ui.add(
        egui::TextEdit::singleline(text)
            .hint_text(hint)
            .desired_width(260.0),
    )
    .labelled_by(l.id);
}

fn folder_row(ui: &mut egui::Ui, label: &str, text: &mut String, hint: &str) {
    let l = ui.label(label);
    ui.horizontal(|ui| {
        ui.add(
            egui::TextEdit::singleline(text)
                .hint_text(hint)
                .desired_width(230.0),
        )
        .labelled_by(l.id);
        if ui
            .small_button("…")
            .on_hover_text("Choose a folder")
            .clicked()
        {
            if let Some(p) = rfd::FileDialog::new().pick_folder() {
                *text = p.display().to_string();
            }
        }
    });
}

/// The loss curve: every step (faint) and its exponential moving average (bold), with the
/// value range on the left and the step range below.
pub fn loss_plot_ui(ui: &mut egui::Ui, losses: &[(usize, f32)], size: Vec2) {
    let (rect, _) = ui.allocate_exact_size(size, egui::Sense::hover());
    let p = ui.painter_at(rect);
    let visuals = ui.visuals();
    p.rect_filled(rect, 4.0, visuals.extreme_bg_color);
    let finite: Vec<(usize, f32)> = losses
        .iter()
        .copied()
        .filter(|(_, l)| l.is_finite())
        .collect();
    if finite.len() < 2 {
        p.text(
            rect.center(),
            egui::Align2::CENTER_CENTER,
            "the loss curve appears here",
            egui::FontId::proportional(13.0),
            visuals.weak_text_color(),
        );
        return;
    }
    let (x0, x1) = (finite[0].0 as f32, finite[finite.len() - 1].0 as f32);
    let (mut lo, mut hi) = finite.iter().fold((f32::MAX, f32::MIN), |(a, b), (_, l)| {
        (a.min(*l), b.max(*l))
    });
    if hi - lo < 1e-6 {
        hi += 1e-3;
        lo -= 1e-3;
    }
    let plot = rect.shrink2(Vec2::new(36.0, 14.0));
    let to_screen = |s: f32, l: f32| {
        Pos2::new(
            plot.left() + (s - x0) / (x1 - x0).max(1.0) * plot.width(),
            plot.bottom() - (l - lo) / (hi - lo) * plot.height(),
        )
    };
    let raw: Vec<Pos2> = finite
        .iter()
        .map(|(s, l)| to_screen(*s as f32, *l))
        .collect();
    p.add(egui::Shape::line(
        raw,
        Stroke::new(1.0, Color32::from_rgba_unmultiplied(120, 170, 255, 90)),
    ));
    let mut ema = finite[0].1;
    let smooth: Vec<Pos2> = finite
        .iter()
        .map(|(s, l)| {
            ema = 0.9 * ema + 0.1 * l;
            to_screen(*s as f32, ema)
        })
        .collect();
    p.add(egui::Shape::line(
        smooth,
        Stroke::new(2.0, Color32::from_rgb(120, 170, 255)),
    ));
    let font = egui::FontId::monospace(10.0);
    let weak = visuals.weak_text_color();
    p.text(
        Pos2::new(rect.left() + 2.0, plot.top()),
        egui::Align2::LEFT_CENTER,
        format!("{hi:.3}"),
        font.clone(),
        weak,
    );
    p.text(
        Pos2::new(rect.left() + 2.0, plot.bottom()),
        egui::Align2::LEFT_CENTER,
        format!("{lo:.3}"),
        font.clone(),
        weak,
    );
    p.text(
        Pos2::new(plot.left(), rect.bottom() - 1.0),
        egui::Align2::LEFT_BOTTOM,
        format!("{}", finite[0].0),
        font.clone(),
        weak,
    );
    p.text(
        Pos2::new(plot.right(), rect.bottom() - 1.0),
        egui::Align2::RIGHT_BOTTOM,
        format!("step {}", finite[finite.len() - 1].0),
        font,
        weak,
    );
}
