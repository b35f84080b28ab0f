//! The queue panel (top of the Runs panel): the worker's jobs, the running one first, then the
//! waiting ones in the order they will start (`engine::queue`); move a waiting job up or down
//! (buttons, or drag its label onto another waiting row),
//! run it next or remove it; choose the device a waiting batch runs on ("default": the
//! default device when it starts); pause and resume the whole queue. Batches an earlier session
//! queued and never started are listed as "not started (last session)" until the user resumes
//! or discards them.

use std::path::PathBuf;

use egui::Color32;
use engine::queue::{JobId, QueueEntry, KIND_BATCH};

use super::runs::{RunState, RunView};
use super::{AppCommand, StudioApp};

/// What the queue panel asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum QueueCommand {
    Pause,
    Resume,
    /// Move a waiting job to this index among the waiting jobs.
    MoveTo(JobId, usize),
    RunNext(JobId),
    Remove(JobId),
    /// Queue every batch left by the last session.
    ResumeRestored,
    /// Drop one batch left by the last session (by its store row id), or all of them.
    DiscardRestored(Option<JobId>),
    /// Run a waiting batch on this device (`None`: the default device).
    SetDevice(JobId, Option<String>),
}

/// A waiting job being dragged to another place in the queue.
#[derive(Clone, Copy, Debug)]
struct QueueDrag(JobId);

/// A batch an earlier session queued in the store and never started.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingView {
    /// Its row id in the store (what `engine::queue::discard_pending` takes).
    pub row: JobId,
    pub label: String,
    pub items: usize,
    /// The device it targets (`None`: the default device).
    pub device: Option<String>,
}

/// The queue panel's state.
#[derive(Default)]
pub struct QueuePanel {
    /// The queue as the worker last reported it (`WorkerEvent::Queue`).
    pub entries: Vec<QueueEntry>,
    pub paused: bool,
    /// Batches of the last session not started (read at start-up).
    pub pending: Vec<PendingView>,
    /// The store they are kept in.
    pub store_path: PathBuf,
    pub error: Option<String>,
}

impl QueuePanel {
    /// Reads the batches an earlier session left in the store `store_path`.
    pub fn load_pending(&mut self, store_path: PathBuf) {
        match engine::queue::pending_jobs(&store_path) {
            Ok(jobs) => {
                self.pending = jobs
                    .into_iter()
                    .map(|(row, job)| PendingView {
                        row,
                        label: job.graph_name.clone(),
                        items: job.items.len(),
                        device: job.device.clone(),
                    })
                    .collect();
                self.error = None;
            }
            Err(e) => {
                self.pending.clear();
                self.error = Some(e.to_string());
            }
        }
        self.store_path = store_path;
    }

    /// The panel: pause/resume, the jobs, and the last session's batches; `targets` are the
    /// devices a waiting batch may be sent to (`cpu`, `cuda:N`).
    pub fn queue_ui(&self, ui: &mut egui::Ui, targets: &[String]) -> Vec<AppCommand> {
        let mut cmds = Vec::new();
        let cmd = AppCommand::Queue;
        ui.horizontal(|ui| {
            ui.heading("Queue");
            let (text, hover, c) = if self.paused {
                (
                    "▶ Resume",
                    "Let the running batch go on and waiting jobs start",
                    QueueCommand::Resume,
                )
            } else {
                (
                    "⏸ Pause",
                    "Stop the running batch before its next item; no waiting job starts",
                    QueueCommand::Pause,
                )
            };
            if ui.button(text).on_hover_text(hover).clicked() {
                cmds.push(cmd(c));
            }
        });
        if self.paused {
            ui.colored_label(Color32::YELLOW, "paused");
        }
        if let Some(e) = &self.error {
            ui.colored_label(Color32::LIGHT_RED, e);
        }
        let waiting: Vec<&QueueEntry> = self.entries.iter().filter(|e| !e.running).collect();
        for e in self.entries.iter().filter(|e| e.running) {
            ui.horizontal(|ui| {
                ui.colored_label(Color32::LIGHT_BLUE, "running");
                ui.label(entry_text(e));
            });
            if e.kind == KIND_BATCH {
                ui.label(
                    egui::RichText::new(format!(
                        "on {}",
                        e.device.as_deref().unwrap_or("the default device")
                    ))
                    .weak(),
                );
            }
        }
        if self.entries.is_empty() {
            ui.label(egui::RichText::new("nothing queued").weak());
        }
        let n = waiting.len();
        for (i, e) in waiting.iter().enumerate() {
            let row = ui.horizontal(|ui| {
                if ui
                    .add_enabled(i > 0, egui::Button::new("⬆").small())
                    .on_hover_text("Move up")
                    .clicked()
                {
                    cmds.push(cmd(QueueCommand::MoveTo(e.id, i - 1)));
                }
                if ui
                    .add_enabled(i + 1 < n, egui::Button::new("⬇").small())
                    .on_hover_text("Move down")
                    .clicked()
                {
                    cmds.push(cmd(QueueCommand::MoveTo(e.id, i + 1)));
                }
                // The label is the drag handle: drop it on another waiting row to move it there.
                ui.dnd_drag_source(egui::Id::new(("queue-drag", e.id)), QueueDrag(e.id), |ui| {
                    ui.label(entry_text(e));
                })
                .response
                .on_hover_text("Drag onto another waiting job to move it there");
            });
            if let Some(dragged) = row.response.dnd_release_payload::<QueueDrag>() {
                if dragged.0 != e.id {
                    cmds.push(cmd(QueueCommand::MoveTo(dragged.0, i)));
                }
            }
            ui.horizontal(|ui| {
                ui.add_space(16.0);
                if e.restored {
                    ui.label(egui::RichText::new("(last session)").weak());
                }
                if ui
                    .add_enabled(i > 0, egui::Button::new("Run next").small())
                    .clicked()
                {
                    cmds.push(cmd(QueueCommand::RunNext(e.id)));
                }
                if ui.small_button("Remove").clicked() {
                    cmds.push(cmd(QueueCommand::Remove(e.id)));
                }
                if e.kind == KIND_BATCH {
                    if let Some(d) = device_combo(ui, e, targets) {
                        cmds.push(cmd(QueueCommand::SetDevice(e.id, d)));
                    }
                }
            });
        }
        if !self.pending.is_empty() {
            ui.separator();
            ui.colored_label(
                Color32::YELLOW,
                format!("{} batches not started (last session)", self.pending.len()),
            );
            for p in &self.pending {
                ui.horizontal(|ui| {
                    let on = p.device.as_ref().map(|d| format!(" · on {d}"));
                    ui.label(format!(
                        "{} · {} items · not started{}",
                        p.label,
                        p.items,
                        on.unwrap_or_default()
                    ));
                    if ui
                        .small_button("✖")
                        .on_hover_text("Discard this batch")
                        .clicked()
                    {
                        cmds.push(cmd(QueueCommand::DiscardRestored(Some(p.row))));
                    }
                });
            }
            ui.horizontal(|ui| {
                if ui.button("Resume all").clicked() {
                    cmds.push(cmd(QueueCommand::ResumeRestored));
                }
                if ui.button("Discard").clicked() {
                    cmds.push(cmd(QueueCommand::DiscardRestored(None)));
                }
            });
        }
        cmds
    }
}

/// The device combo of a waiting batch; the new choice when the user changed it.
fn device_combo(ui: &mut egui::Ui, e: &QueueEntry, targets: &[String]) -> Option<Option<String>> {
    let mut chosen = e.device.clone();
    let l = ui.label("on");
    egui::ComboBox::from_id_salt(("queue-device", e.id))
        .width(70.0)
        .selected_text(chosen.as_deref().unwrap_or("default"))
        .show_ui(ui, |ui| {
            ui.selectable_value(&mut chosen, None, "default")
                .on_hover_text("The default device when the batch starts");
            for t in targets {
                ui.selectable_value(&mut chosen, Some(t.clone()), t);
            }
        })
        .response
        .labelled_by(l.id)
        .on_hover_text("The device this batch runs on");
    (chosen != e.device).then_some(chosen)
}

fn entry_text(e: &QueueEntry) -> String {
    let unit = match e.kind {
        KIND_BATCH => "items",
        engine::queue::KIND_LORA => "steps",
        _ => "epochs",
    };
    let kind = if e.kind == KIND_BATCH {
        String::new()
    } else {
        format!(" ({})", e.kind)
    };
    format!("#{} {}{kind} · {} {unit}", e.id, e.label, e.items)
}

impl StudioApp {
    /// Carries out a [`QueueCommand`].
    pub(super) fn apply_queue(&mut self, ctx: &egui::Context, cmd: QueueCommand) {
        match cmd {
            QueueCommand::Pause => self.worker.pause(),
            QueueCommand::Resume => self.worker.resume(),
            QueueCommand::MoveTo(id, index) => {
                self.worker.move_to(id, index);
            }
            QueueCommand::RunNext(id) => {
                self.worker.run_next(id);
            }
            QueueCommand::SetDevice(id, device) => {
                if !self.worker.set_device(id, device) {
                    self.notify(ctx, "the batch has already started: its device stays");
                }
            }
            QueueCommand::Remove(id) => {
                if self.worker.remove(id) {
                    for r in self.runs.iter_mut().filter(|r| r.job == Some(id)) {
                        r.state = RunState::Removed;
                    }
                }
            }
            QueueCommand::ResumeRestored => {
                let path = self.queue.store_path.clone();
                match self.worker.restore(&path) {
                    Ok(ids) => {
                        let queue = self.worker.queue();
                        for id in ids {
                            if let Some(e) = queue.iter().find(|e| e.id == id) {
                                self.runs.push(RunView {
                                    label: e.label.clone(),
                                    state: RunState::Queued,
                                    items: e.items as usize,
                                    done: 0,
                                    run_id: None,
                                    current: String::new(),
                                    job: Some(id),
                                });
                            }
                        }
                        self.queue.pending.clear();
                    }
                    Err(e) => self.error("Cannot resume the last session's batches", e.to_string()),
                }
            }
            QueueCommand::DiscardRestored(which) => {
                let path = self.queue.store_path.clone();
                let rows: Vec<JobId> = match which {
                    Some(r) => vec![r],
                    None => self.queue.pending.iter().map(|p| p.row).collect(),
                };
                for row in rows {
                    if let Err(e) = engine::queue::discard_pending(&path, row) {
                        self.error("Cannot discard the batch", e.to_string());
                        break;
                    }
                    self.queue.pending.retain(|p| p.row != row);
                }
                self.notify(ctx, "discarded the last session's batches");
            }
        }
        self.queue.paused = self.worker.is_paused();
    }
}
