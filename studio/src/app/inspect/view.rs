//! The Inspection window's widgets: the training form, the live loss and accuracy curves, the
//! evaluation form, its metrics and its ROC and PR curves (`egui_plot`).

use std::path::PathBuf;

use egui_plot::{Legend, Line, Plot, PlotPoints};
use engine::inspect::evaluate::EvalReport;

use super::{InspectCommand, InspectPanel, JobState};

/// A labelled single-line text field (the label names it for screen readers and tests).
fn path_field(ui: &mut egui::Ui, label: &str, value: &mut String, hint: &str) {
    ui.horizontal(|ui| {
        let l = ui.label(label);
        ui.add(
            egui::TextEdit::singleline(value)
                .hint_text(hint)
                .desired_width(300.0),
        )
        .labelled_by(l.id);
    });
}

impl InspectPanel {
    /// The window (while open); returns what it asks for.
    pub fn inspect_ui(&mut self, ctx: &egui::Context) -> Vec<InspectCommand> {
        let mut cmds = Vec::new();
        let mut open = self.open;
        egui::Window::new("Inspection")
            .open(&mut open)
            .default_size([980.0, 760.0])
            .show(ctx, |ui| cmds = self.contents_ui(ui));
        self.open = open;
        cmds
    }

    /// The window's contents (the tests draw them in a bare UI).
    pub fn contents_ui(&mut self, ui: &mut egui::Ui) -> Vec<InspectCommand> {
        let mut cmds = Vec::new();
        egui::ScrollArea::vertical()
            .id_salt("inspect-scroll")
            .show(ui, |ui| {
                self.status_ui(ui, &mut cmds);
                ui.separator();
                ui.heading("Train a classifier");
                self.train_form_ui(ui, &mut cmds);
                self.curves_ui(ui);
                ui.separator();
                ui.heading("Evaluate");
                self.eval_form_ui(ui, &mut cmds);
                if let Some(o) = self.evaluation.take() {
                    self.report_ui(ui, &o.record.report, &o.plots);
                    self.evaluation = Some(o);
                }
            });
        cmds
    }

    fn status_ui(&mut self, ui: &mut egui::Ui, cmds: &mut Vec<InspectCommand>) {
        ui.horizontal(|ui| {
            match &self.state {
                JobState::Idle => ui.label("Ready."),
                JobState::Busy(s) => {
                    ui.spinner();
                    ui.label(s.as_str())
                }
                JobState::Done(s) => ui.label(s.as_str()),
                JobState::Failed(e) => {
                    ui.colored_label(ui.visuals().error_fg_color, format!("Failed: {e}"))
                }
            };
            if self.busy() && ui.button("Stop").clicked() {
                cmds.push(InspectCommand::Cancel);
            }
        });
        if let Some(m) = &self.message {
            ui.colored_label(ui.visuals().warn_fg_color, m.as_str());
        }
    }

    fn train_form_ui(&mut self, ui: &mut egui::Ui, cmds: &mut Vec<InspectCommand>) {
        let f = &mut self.form;
        path_field(
            ui,
            "Training folder",
            &mut f.data,
            "class folders, MVTec, an export…",
        );
        path_field(ui, "Model file", &mut f.out, "classifier.safetensors");
        ui.horizontal(|ui| {
            ui.label("Epochs");
            ui.add(egui::DragValue::new(&mut f.cfg.epochs).range(1..=500));
            ui.label("Batch");
            ui.add(egui::DragValue::new(&mut f.cfg.batch).range(1..=256));
            ui.label("Size");
            ui.add(
                egui::DragValue::new(&mut f.cfg.size)
                    .range(32..=1024)
                    .speed(32),
            );
            ui.label("Seed");
            ui.add(egui::DragValue::new(&mut f.cfg.seed));
        });
        ui.horizontal(|ui| {
            ui.label("Validation share");
            ui.add(
                egui::DragValue::new(&mut f.cfg.val_fraction)
                    .range(0.0..=0.85)
                    .speed(0.01),
            );
            ui.label("Device");
            ui.add(egui::TextEdit::singleline(&mut f.device).desired_width(70.0));
            ui.checkbox(&mut f.cfg.multiclass, "One class per label");
        });
        let busy = self.busy();
        if ui
            .add_enabled(!busy, egui::Button::new("Train classifier"))
            .clicked()
        {
            cmds.push(InspectCommand::Train(Box::new(self.form.clone())));
        }
    }

    fn curves_ui(&mut self, ui: &mut egui::Ui) {
        if self.losses.is_empty() && self.accuracy.is_empty() {
            return;
        }
        let loss: Vec<[f64; 2]> = self
            .losses
            .iter()
            .map(|&(k, l)| [k as f64, f64::from(l)])
            .collect();
        let train: Vec<[f64; 2]> = self
            .accuracy
            .iter()
            .map(|&(e, a, _)| [e as f64, f64::from(a)])
            .collect();
        let val: Vec<[f64; 2]> = self
            .accuracy
            .iter()
            .filter_map(|&(e, _, v)| v.map(|v| [e as f64, f64::from(v)]))
            .collect();
        ui.horizontal(|ui| {
            Plot::new("inspect-loss")
                .width(440.0)
                .height(180.0)
                .x_axis_label("step")
                .legend(Legend::default())
                .show(ui, |p| {
                    p.line(Line::new("training loss", PlotPoints::from(loss)))
                });
            Plot::new("inspect-accuracy")
                .width(440.0)
                .height(180.0)
                .x_axis_label("epoch")
                .include_y(0.0)
                .include_y(1.0)
                .legend(Legend::default())
                .show(ui, |p| {
                    p.line(Line::new("train accuracy", PlotPoints::from(train)));
                    if !val.is_empty() {
                        p.line(Line::new("val balanced accuracy", PlotPoints::from(val)));
                    }
                });
        });
    }

    fn eval_form_ui(&mut self, ui: &mut egui::Ui, cmds: &mut Vec<InspectCommand>) {
        let f = &mut self.form;
        path_field(ui, "Model", &mut f.eval_model, "a trained .safetensors");
        path_field(
            ui,
            "Held-out folder",
            &mut f.eval_data,
            "real images: MVTec, images + masks…",
        );
        let busy = self.busy();
        if ui
            .add_enabled(!busy, egui::Button::new("Evaluate model"))
            .clicked()
        {
            cmds.push(InspectCommand::Evaluate {
                model: PathBuf::from(self.form.eval_model.trim()),
                data: PathBuf::from(self.form.eval_data.trim()),
                device: self.form.device.clone(),
            });
        }
    }

    fn report_ui(&mut self, ui: &mut egui::Ui, r: &EvalReport, plots: &[PathBuf]) {
        egui::Grid::new("inspect-metrics")
            .num_columns(2)
            .show(ui, |ui| {
                let mut row = |k: &str, v: String| {
                    ui.label(k);
                    ui.label(v);
                    ui.end_row();
                };
                row("Images", format!("{} ({} defect)", r.images, r.defects));
                row("Image AUROC", format!("{:.4}", r.auroc));
                row("Image AP", format!("{:.4}", r.ap));
                row(
                    "Best F1",
                    format!("{:.4} at score ≥ {:.4}", r.f1.f1, r.f1.threshold),
                );
                if let Some(p) = &r.pixel {
                    row("Pixel AUROC", format!("{:.4}", p.auroc));
                    row("Pixel AP", format!("{:.4}", p.ap));
                    row(
                        &format!("PRO (FPR ≤ {})", p.pro_fpr_limit),
                        format!("{:.4}", p.pro),
                    );
                }
                for p in plots {
                    row("Plot", p.display().to_string());
                }
            });
        let roc: Vec<[f64; 2]> = r
            .roc
            .fpr
            .iter()
            .zip(&r.roc.tpr)
            .map(|(&x, &y)| [x, y])
            .collect();
        let pr: Vec<[f64; 2]> = pr_steps(&r.pr.recall, &r.pr.precision);
        self.drawn_roc.clear();
        let drawn = &mut self.drawn_roc;
        ui.horizontal(|ui| {
            Plot::new("inspect-roc")
                .width(420.0)
                .height(320.0)
                .data_aspect(1.0)
                .x_axis_label("false positive rate")
                .y_axis_label("true positive rate")
                .legend(Legend::default())
                .show(ui, |p| {
                    p.line(Line::new(
                        "chance",
                        PlotPoints::from(vec![[0.0, 0.0], [1.0, 1.0]]),
                    ));
                    p.line(Line::new(
                        format!("ROC, AUROC = {:.4}", r.auroc),
                        PlotPoints::from(roc.clone()),
                    ));
                });
            drawn.extend(roc);
            Plot::new("inspect-pr")
                .width(420.0)
                .height(320.0)
                .data_aspect(1.0)
                .x_axis_label("recall")
                .y_axis_label("precision")
                .legend(Legend::default())
                .show(ui, |p| {
                    p.line(Line::new(
                        format!("PR, AP = {:.4}", r.ap),
                        PlotPoints::from(pr),
                    ));
                });
        });
    }
}

/// The PR curve as the step function AP integrates (precision holds until recall moves).
fn pr_steps(recall: &[f64], precision: &[f64]) -> Vec<[f64; 2]> {
    let mut out = Vec::with_capacity(recall.len() * 2);
    for i in 0..recall.len().min(precision.len()) {
        if i > 0 {
            out.push([recall[i], precision[i - 1]]);
        }
        out.push([recall[i], precision[i]]);
    }
    out
}
