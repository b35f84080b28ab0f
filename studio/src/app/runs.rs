//! Run state: queueing a run of the document, applying the worker's events to the run views,
//! node states and previews, and the run panel.

use std::path::{Path, PathBuf};

use egui::Color32;
use engine::run::{plan, BatchEvent, BatchJob, PlanSpec};
use engine::{Event, WorkerEvent};

use super::editor::NodeRunState;
use super::painter;
use super::{AppCommand, StudioApp};

/// A queued or finished run, as the run panel shows it.
#[derive(Clone, Debug)]
pub struct RunView {
    pub label: String,
    pub state: RunState,
    pub items: usize,
    pub done: usize,
    pub run_id: Option<u64>,
    pub current: String,
    /// Its id in the worker's queue.
    pub job: Option<engine::queue::JobId>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum RunState {
    Queued,
    Running,
    Succeeded,
    Failed(String),
    Cancelled,
    /// Removed from the queue before it started.
    Removed,
}

impl StudioApp {
    /// Whether a run is queued or running.
    pub fn running(&self) -> bool {
        self.training.busy()
            || self
                .runs
                .iter()
                .any(|r| matches!(r.state, RunState::Queued | RunState::Running))
    }

    pub(super) fn out_dir(&self) -> PathBuf {
        self.settings
            .out_dir
            .clone()
            .unwrap_or_else(engine::paths::default_out_dir)
    }

    /// Queues a run of the current document.
    pub(super) fn run(&mut self, ctx: &egui::Context, to_node: Option<String>) {
        let mut doc = self.doc.to_doc(&self.catalogue);
        if let Err(e) = engine::recipes::resolve_from_library(&mut doc) {
            self.notify(ctx, format!("Cannot run: {e}"));
            return;
        }
        if let Err(e) = nodes::validate(&doc, &self.catalogue) {
            for err in &e.0 {
                if let Some(n) = &err.node {
                    self.states
                        .insert(n.clone(), NodeRunState::Error(err.to_string()));
                }
            }
            self.notify(
                ctx,
                format!(
                    "The graph is not valid: {}",
                    e.0.first().map(|e| e.to_string()).unwrap_or_default()
                ),
            );
            return;
        }
        let base_dir = self
            .doc
            .path
            .as_ref()
            .and_then(|p| p.parent())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| std::env::current_dir().unwrap_or_default());
        let seed = if self.settings.run_seed == 0 {
            doc.meta.seed.unwrap_or(0)
        } else {
            self.settings.run_seed
        };
        let planned = plan(&PlanSpec {
            doc: &doc,
            base_dir: &base_dir,
            count: self.settings.run_count.max(1),
            seed,
            sweeps: &[],
            shard: None,
        });
        let (items, _) = match planned {
            Ok(p) => p,
            Err(e) => {
                self.notify(ctx, e.to_string());
                return;
            }
        };
        let graph_name = match &self.doc.path {
            Some(p) => crate::graph_file::graph_name(&doc, p),
            None => doc.title_or("untitled").to_string(),
        };
        let label = match &to_node {
            Some(n) => format!("{graph_name} → {n}"),
            None => graph_name.clone(),
        };
        let n_items = items.len();
        let job = BatchJob {
            doc,
            graph_name,
            base_dir,
            items,
            base_seed: seed,
            shard: None,
            out_dir: self.out_dir(),
            store_path: engine::paths::store_path(),
            // Inside an open subgraph, the node's path in the flattened graph.
            targets: to_node.map(|n| vec![self.doc.flat_id(&n)]),
            graph_path: self.doc.path.clone(),
            embed_assets: false,
            device: self.run_device.clone(),
        };
        match self.worker.submit(job) {
            Ok(id) => self.runs.push(RunView {
                label,
                state: RunState::Queued,
                items: n_items,
                done: 0,
                run_id: None,
                current: String::new(),
                job: Some(id),
            }),
            Err(e) => self.error("Cannot run", e.to_string()),
        }
    }

    /// Applies the worker's events to the run views, node states, outputs and previews.
    pub fn poll_worker(&mut self, ctx: &egui::Context) {
        while let Ok(ev) = self.worker.events().try_recv() {
            // The batch events are the running job's: the queue reports which job started
            // (before its first batch event) and the run view of that job is marked running.
            let current = match self.runs.iter().position(|r| r.state == RunState::Running) {
                Some(i) => self.runs.get_mut(i),
                None => self.runs.iter_mut().find(|r| r.state == RunState::Queued),
            };
            match ev {
                WorkerEvent::Batch(BatchEvent::RunStarted { run_id, .. }) => {
                    if let Some(r) = current {
                        r.state = RunState::Running;
                        r.run_id = Some(run_id);
                    }
                    let ids: Vec<String> = self.doc.snarl.nodes().map(|n| n.id.clone()).collect();
                    self.states = ids
                        .into_iter()
                        .map(|id| (id, NodeRunState::Queued))
                        .collect();
                }
                WorkerEvent::Batch(BatchEvent::ItemStarted { .. }) => {
                    for s in self.states.values_mut() {
                        *s = NodeRunState::Queued;
                    }
                }
                WorkerEvent::Batch(BatchEvent::Node { event, .. }) => match event {
                    Event::NodeStarted { node } => {
                        if let Some(r) = current {
                            r.current = node.clone();
                        }
                        self.states
                            .insert(node, NodeRunState::Running { step: 0, total: 0 });
                    }
                    Event::NodeProgress {
                        node,
                        step,
                        total,
                        preview,
                    } => {
                        self.states
                            .insert(node, NodeRunState::Running { step, total });
                        if let Some(p) = preview {
                            self.preview = Some(ctx.load_texture(
                                "step-preview",
                                painter::image_to_color(&p),
                                egui::TextureOptions::LINEAR,
                            ));
                        }
                    }
                    Event::NodeFinished {
                        node,
                        seconds,
                        cached,
                    } => {
                        self.states.insert(
                            node,
                            if cached {
                                NodeRunState::Cached
                            } else {
                                NodeRunState::Done { seconds }
                            },
                        );
                    }
                    Event::NodeError { node, message } => {
                        self.states.insert(node, NodeRunState::Error(message));
                    }
                    Event::NodeStatus { node, message } => {
                        self.statuses.insert(node, message);
                    }
                    Event::Saved { path, .. } => {
                        let msg = format!("saved {}", path.display());
                        self.notify(ctx, msg);
                    }
                },
                WorkerEvent::Queue(entries) => {
                    for e in entries.iter().filter(|e| e.running) {
                        for r in self.runs.iter_mut() {
                            if r.job == Some(e.id) && r.state == RunState::Queued {
                                r.state = RunState::Running;
                            }
                        }
                    }
                    self.queue.entries = entries;
                    self.queue.paused = self.worker.is_paused();
                }
                WorkerEvent::Train(e) => self.training.on_event(ctx, e),
                WorkerEvent::TrainFinished(result) => {
                    if let Err(e) = &result {
                        if e != &engine::EngineError::Cancelled.to_string() {
                            self.notify(ctx, format!("training failed: {e}"));
                        }
                    }
                    self.training.on_finished(result);
                    if let Some(s) = &self.store {
                        self.training.history = s.trainings().unwrap_or_default();
                    }
                }
                // Detector trainings: the Inspection window shows their progress; here a
                // failure is told too and the training history refreshed.
                WorkerEvent::Detector(e) => self.inspect.on_train_event(e),
                WorkerEvent::DetectorFinished(result) => {
                    self.inspect.on_trained(result.clone());
                    if let Err(e) = &result {
                        if e != &engine::EngineError::Cancelled.to_string() {
                            self.notify(ctx, format!("training failed: {e}"));
                        }
                    }
                    if let Some(s) = &self.store {
                        self.training.history = s.trainings().unwrap_or_default();
                    }
                }
                WorkerEvent::Batch(BatchEvent::ItemFinished { outputs, .. }) => {
                    if let Some(r) = current {
                        r.done += 1;
                    }
                    self.outputs.extend(outputs);
                }
                WorkerEvent::Finished(result) => {
                    if let Some(r) = current {
                        r.state = match &result {
                            Ok(s) => match s.status {
                                engine::RunStatus::Succeeded => RunState::Succeeded,
                                engine::RunStatus::Cancelled => RunState::Cancelled,
                                _ => RunState::Failed(s.error.clone().unwrap_or_default()),
                            },
                            Err(e) => RunState::Failed(e.clone()),
                        };
                        r.current.clear();
                    }
                    for s in self.states.values_mut() {
                        if *s == NodeRunState::Queued {
                            *s = NodeRunState::Idle;
                        }
                    }
                    if let Err(e) = &result {
                        self.notify(ctx, e.clone());
                    }
                    if let Some(s) = &self.store {
                        self.gallery.refresh(s);
                    }
                }
            }
        }
    }

    pub(super) fn runs_ui(&mut self, root: &mut egui::Ui) -> Vec<AppCommand> {
        let mut cmds = Vec::new();
        egui::Panel::left("runs")
            .default_size(220.0)
            .show(root, |ui| {
                cmds.extend(self.queue.queue_ui(ui, &self.devices.targets()));
                ui.separator();
                ui.heading("Runs");
                if self.runs.is_empty() {
                    ui.label("No runs yet: press ▶ Run.");
                }
                for r in self.runs.iter().rev().take(30) {
                    ui.group(|ui| {
                        ui.label(egui::RichText::new(&r.label).strong());
                        let (text, color) = match &r.state {
                            RunState::Queued => ("queued".to_string(), Color32::YELLOW),
                            RunState::Running => {
                                (format!("running {}", r.current), Color32::LIGHT_BLUE)
                            }
                            RunState::Succeeded => ("succeeded".into(), Color32::LIGHT_GREEN),
                            RunState::Failed(e) => (format!("failed: {e}"), Color32::LIGHT_RED),
                            RunState::Cancelled => ("cancelled".into(), Color32::GRAY),
                            RunState::Removed => ("removed from the queue".into(), Color32::GRAY),
                        };
                        ui.colored_label(color, text);
                        let frac = if r.items == 0 {
                            0.0
                        } else {
                            r.done as f32 / r.items as f32
                        };
                        ui.add(
                            egui::ProgressBar::new(frac)
                                .text(format!("{}/{} items", r.done, r.items)),
                        );
                        if let Some(id) = r.run_id {
                            ui.label(egui::RichText::new(format!("store run #{id}")).weak());
                        }
                    });
                }
                if self.running() && ui.button("■ Cancel run").clicked() {
                    cmds.push(AppCommand::Cancel);
                }
                if let Some(p) = &self.preview {
                    ui.separator();
                    ui.label("Live preview");
                    ui.add(egui::Image::new(p).max_width(200.0));
                }
            });
        cmds
    }
}
