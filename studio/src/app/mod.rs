//! The studio window: [`StudioApp`] owns the persisted [`Settings`], the edited document
//! ([`doc::EditorDoc`]), and handles to the engine worker and the store. Panels are `*_ui`
//! functions that return [`AppCommand`]s; [`StudioApp::apply`] carries them out.

pub mod doc;
pub mod editor;
pub mod gallery;
pub mod inspector;
pub mod painter;
pub mod params;
pub mod training;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use egui::{Color32, Id, Pos2, Rect, Vec2};
use egui_snarl::ui::{SnarlStyle, SnarlWidget};
use egui_snarl::NodeId;
use engine::run::{plan, BatchEvent, BatchJob, PlanSpec};
use engine::{Event, Executor, Outputs, Store, Worker, WorkerEvent};
use nodes::{Catalogue, GraphDoc, ParamValue};
use serde::{Deserialize, Serialize};

use doc::EditorDoc;
use editor::{GraphViewer, NodeRunState};
use gallery::Gallery;
use inspector::Inspector;
use painter::{MaskPainter, PainterAction};
use training::{TrainForm, TrainingPanel};

/// The example recipe the studio opens with on a fresh machine.
pub const EXAMPLE: &str = include_str!("../../../examples/brushed-metal-scratch.json");

/// The id of the graph widget (its selection is read through it).
pub const GRAPH_ID: &str = "defect-studio-graph";

/// Settings kept between launches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Output folder; `None` means the data folder's `outputs/`.
    pub out_dir: Option<PathBuf>,
    pub model_dirs: Vec<PathBuf>,
    /// `cpu`, or `cuda:N` in builds with the `cuda` feature.
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
            device: "cpu".into(),
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

/// Everything the UI asks the app to do.
#[derive(Clone, Debug)]
pub enum AppCommand {
    NewGraph,
    OpenDialog,
    Open(PathBuf),
    Save,
    SaveAs,
    SaveTo(PathBuf),
    /// Run the graph's sinks, or only what one node needs.
    Run {
        to_node: Option<String>,
    },
    Cancel,
    Undo,
    Redo,
    FrameAll,
    DeleteSelected,
    Duplicate(Vec<NodeId>),
    Copy,
    Paste,
    /// Add a node of this kind at a graph position.
    AddNode {
        kind: String,
        pos: Pos2,
    },
    /// Link an output to an input, through the same checks as dragging a wire.
    Connect {
        from: (String, String),
        to: (String, String),
    },
    OpenPainter(String),
    /// Show this node in the inspector.
    Inspect(String),
    SavePreset {
        kind: String,
        name: String,
        params: serde_json::Value,
    },
    ApplyPreset {
        node: String,
        params: serde_json::Value,
    },
    DeletePreset {
        kind: String,
        name: String,
    },
    Bookmark {
        output: u64,
        on: bool,
    },
    DeleteOutputs(Vec<u64>),
    ExportOutputs(Vec<u64>),
    OpenOutput(u64),
    RestoreGraph(u64),
    RefreshGallery,
    ApplySettings(Box<Settings>),
    OpenTraining,
    /// Queue a LoRA training run with these settings.
    StartTraining(Box<TrainForm>),
    CancelTraining,
    RefreshTrainings,
    /// Add a LoraLoader node with this LoRA file to the graph.
    AddLora(PathBuf),
}

/// A queued or finished run, as the run panel shows it.
#[derive(Clone, Debug)]
pub struct RunView {
    pub label: String,
    pub state: RunState,
    pub items: usize,
    pub done: usize,
    pub run_id: Option<u64>,
    pub current: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum RunState {
    Queued,
    Running,
    Succeeded,
    Failed(String),
    Cancelled,
}

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

/// The studio application.
pub struct StudioApp {
    pub settings: Settings,
    pub catalogue: Catalogue,
    pub doc: EditorDoc,
    worker: Worker,
    worker_budget: u64,
    pub store: Option<Store>,
    pub states: HashMap<String, NodeRunState>,
    /// Status lines nodes reported in the last run (e.g. what a LoRA matched).
    pub statuses: HashMap<String, String>,
    pub outputs: HashMap<String, Arc<Outputs>>,
    preview: Option<egui::TextureHandle>,
    pub runs: Vec<RunView>,
    pub gallery: Gallery,
    pub inspector: Inspector,
    pub painter: Option<MaskPainter>,
    pub training: TrainingPanel,
    /// The node the inspector shows (follows the graph selection).
    pub inspected: Option<String>,
    last_selection: Vec<NodeId>,
    pub dialog: Option<Dialog>,
    /// A message shown briefly over the graph (e.g. why a link was refused).
    pub toast: Option<String>,
    toast_until: f64,
    search: String,
    add_menu_at: Option<Pos2>,
    frame_all: bool,
    graph_transform: egui::emath::TSTransform,
    clipboard: Option<GraphDoc>,
    show_settings: Option<Settings>,
    allow_close: bool,
    pending: Vec<AppCommand>,
    /// An edit may be in progress (a drag): check again next frame even without input.
    doc_maybe_changed: bool,
}

impl StudioApp {
    /// A studio on the user's store, with `settings`, opening `initial` (else the example).
    pub fn new(ctx: &egui::Context, settings: Settings, initial: Option<PathBuf>) -> StudioApp {
        let catalogue = Catalogue::builtin();
        let notify_ctx = ctx.clone();
        let budget = settings.cache_budget_mib;
        let worker = Worker::spawn_with_notify(
            executor(budget),
            Some(Box::new(move || notify_ctx.request_repaint())),
        );
        let store = Store::open(&engine::paths::store_path());
        let (store, store_error) = match store {
            Ok(s) => (Some(s), None),
            Err(e) => (None, Some(e.to_string())),
        };
        engine::models::manager::set_extra_dirs(settings.model_dirs.clone());
        let example = GraphDoc::from_json(EXAMPLE).unwrap_or_default();
        let doc = EditorDoc::new(&example, &catalogue, None);
        let mut app = StudioApp {
            settings,
            catalogue,
            doc,
            worker,
            worker_budget: budget,
            store,
            states: HashMap::new(),
            statuses: HashMap::new(),
            outputs: HashMap::new(),
            preview: None,
            runs: Vec::new(),
            gallery: Gallery::default(),
            inspector: Inspector::default(),
            painter: None,
            training: TrainingPanel::default(),
            inspected: None,
            last_selection: Vec::new(),
            dialog: store_error.map(|text| Dialog::Error {
                title: "Cannot open the store".into(),
                text,
            }),
            toast: None,
            toast_until: 0.0,
            search: String::new(),
            add_menu_at: None,
            frame_all: true,
            graph_transform: Default::default(),
            clipboard: None,
            show_settings: None,
            allow_close: false,
            pending: Vec::new(),
            doc_maybe_changed: false,
        };
        if let Some(p) = initial {
            app.apply(ctx, AppCommand::Open(p));
        }
        app.apply(ctx, AppCommand::RefreshGallery);
        app
    }

    fn catalogue_ref(&self) -> &Catalogue {
        &self.catalogue
    }

    /// Shows a message over the graph for a few seconds.
    pub fn notify(&mut self, ctx: &egui::Context, msg: impl Into<String>) {
        self.toast = Some(msg.into());
        self.toast_until = ctx.input(|i| i.time) + 4.0;
    }

    fn error(&mut self, title: &str, text: impl Into<String>) {
        self.dialog = Some(Dialog::Error {
            title: title.into(),
            text: text.into(),
        });
    }

    /// Document node ids selected in the graph.
    pub fn selected(&self, ctx: &egui::Context) -> Vec<NodeId> {
        egui_snarl::ui::get_selected_nodes(Id::new(GRAPH_ID), ctx)
    }

    /// Queues a command (for panels that cannot reach `apply` directly).
    pub fn push(&mut self, cmd: AppCommand) {
        self.pending.push(cmd);
    }

    /// Reads and validates a graph file; the error text lists every problem.
    pub fn load_graph(&self, path: &Path) -> Result<GraphDoc, String> {
        let doc = crate::graph_file::load(path).map_err(|e| format!("{e:#}"))?;
        nodes::validate(&doc, &self.catalogue).map_err(|e| format!("{}:\n{e}", path.display()))?;
        Ok(doc)
    }

    /// Carries out one command.
    pub fn apply(&mut self, ctx: &egui::Context, cmd: AppCommand) {
        let dirty = |app: &StudioApp| app.doc.dirty(app.catalogue_ref());
        match cmd {
            AppCommand::NewGraph => {
                if dirty(self) {
                    self.dialog = Some(Dialog::Unsaved(Box::new(AppCommand::NewGraph)));
                    return;
                }
                self.doc = EditorDoc::new(&GraphDoc::new(), &self.catalogue, None);
                self.outputs.clear();
                self.states.clear();
            }
            AppCommand::OpenDialog => match rfd::FileDialog::new()
                .add_filter("graph, ComfyUI workflow or output PNG", &["json", "png"])
                .pick_file()
            {
                Some(p) => self.apply(ctx, AppCommand::Open(p)),
                None => {
                    self.dialog = Some(Dialog::Path {
                        title: "Open graph".into(),
                        text: String::new(),
                        save: false,
                    })
                }
            },
            AppCommand::Open(path) => match self.load_graph(&path) {
                Ok(doc) => {
                    if dirty(self) && !matches!(self.dialog, Some(Dialog::Unsaved(_))) {
                        self.dialog = Some(Dialog::Unsaved(Box::new(AppCommand::Open(path))));
                        return;
                    }
                    // A PNG's recipe or an imported workflow opens untitled: saving must not
                    // overwrite the file it came from.
                    let own = crate::graph_file::is_native(&path).then(|| path.clone());
                    self.doc = EditorDoc::new(&doc, &self.catalogue, own);
                    self.outputs.clear();
                    self.states.clear();
                    self.frame_all = true;
                    self.remember(path);
                    // Models are found by hash first, then by name; missing ones are listed.
                    let manager = engine::models::manager::ModelManager::default_dirs();
                    if let Err(e) = manager.resolve(&doc.models) {
                        self.error("Missing models", e.to_string());
                    }
                }
                Err(e) => self.error("Cannot open the graph", e),
            },
            AppCommand::Save => match self.doc.path.clone() {
                Some(p) => self.apply(ctx, AppCommand::SaveTo(p)),
                None => self.apply(ctx, AppCommand::SaveAs),
            },
            AppCommand::SaveAs => match rfd::FileDialog::new()
                .add_filter("graph", &["json"])
                .set_file_name("recipe.json")
                .save_file()
            {
                Some(p) => self.apply(ctx, AppCommand::SaveTo(p)),
                None => {
                    self.dialog = Some(Dialog::Path {
                        title: "Save graph as".into(),
                        text: "recipe.json".into(),
                        save: true,
                    })
                }
            },
            AppCommand::SaveTo(path) => {
                self.doc.prune_assets();
                let doc = self.doc.to_doc(&self.catalogue);
                match std::fs::write(&path, doc.to_json()) {
                    Ok(()) => {
                        if let Some(s) = &self.store {
                            let name = crate::graph_file::graph_name(&doc, &path);
                            let _ = s.save_graph(&name, &doc.to_json());
                        }
                        self.doc.mark_saved(doc, path.clone());
                        self.notify(ctx, format!("saved {}", path.display()));
                        self.remember(path);
                    }
                    Err(e) => self.error("Cannot save", format!("{}: {e}", path.display())),
                }
            }
            AppCommand::Run { to_node } => self.run(ctx, to_node),
            AppCommand::Cancel | AppCommand::CancelTraining => self.worker.cancel(),
            AppCommand::OpenTraining => {
                self.training.open = true;
                self.apply(ctx, AppCommand::RefreshTrainings);
            }
            AppCommand::RefreshTrainings => {
                if let Some(s) = &self.store {
                    self.training.history = s.trainings().unwrap_or_default();
                }
                self.refresh_presets(training::PRESET_KIND);
            }
            AppCommand::StartTraining(form) => match form.to_job(&self.settings.device) {
                Ok(job) => match self.worker.submit_training(job) {
                    Ok(()) => self.training.started(),
                    Err(e) => self.error("Cannot start training", e.to_string()),
                },
                Err(m) => self.training.message = Some(m),
            },
            AppCommand::AddLora(path) => {
                let pos = self.graph_transform.inverse() * ctx.content_rect().center();
                let node = self.doc.add_node("LoraLoader", pos);
                if let Some(n) = self.doc.snarl.get_node_mut(node) {
                    n.params
                        .insert("lora".into(), ParamValue::Text(path.display().to_string()));
                    let id = n.id.clone();
                    self.inspected = Some(id.clone());
                    self.notify(ctx, format!("added {id} with {}", path.display()));
                }
            }
            AppCommand::Undo => self.doc.undo(&self.catalogue),
            AppCommand::Redo => self.doc.redo(&self.catalogue),
            AppCommand::FrameAll => self.frame_all = true,
            AppCommand::DeleteSelected => {
                for n in self.selected(ctx) {
                    if self.doc.snarl.get_node(n).is_some() {
                        self.doc.snarl.remove_node(n);
                    }
                }
            }
            AppCommand::Duplicate(nodes) => {
                let frag = self.doc.fragment(&nodes, &self.catalogue);
                self.doc
                    .paste(&frag, Vec2::new(40.0, 40.0), &self.catalogue);
            }
            AppCommand::Copy => {
                let sel = self.selected(ctx);
                if !sel.is_empty() {
                    let frag = self.doc.fragment(&sel, &self.catalogue);
                    ctx.copy_text(frag.to_json());
                    self.clipboard = Some(frag);
                }
            }
            AppCommand::Paste => {
                if let Some(frag) = self.clipboard.clone() {
                    self.doc
                        .paste(&frag, Vec2::new(60.0, 60.0), &self.catalogue);
                }
            }
            AppCommand::AddNode { kind, pos } => {
                self.doc.add_node(&kind, pos);
            }
            AppCommand::Connect { from, to } => {
                let (Some(f), Some(t)) = (self.doc.find(&from.0), self.doc.find(&to.0)) else {
                    return;
                };
                let (Some(fs), Some(ts)) = (
                    self.doc
                        .snarl
                        .get_node(f)
                        .and_then(|n| self.catalogue.get(&n.kind)),
                    self.doc
                        .snarl
                        .get_node(t)
                        .and_then(|n| self.catalogue.get(&n.kind)),
                ) else {
                    return;
                };
                let (Some(o), Some(i)) = (
                    fs.outputs.iter().position(|p| p.name == from.1),
                    ts.inputs.iter().position(|p| p.name == to.1),
                ) else {
                    return;
                };
                let out = self
                    .doc
                    .snarl
                    .out_pin(egui_snarl::OutPinId { node: f, output: o });
                let inp = self
                    .doc
                    .snarl
                    .in_pin(egui_snarl::InPinId { node: t, input: i });
                let states = HashMap::new();
                let mut search = String::new();
                let mut viewer = GraphViewer {
                    catalogue: &self.catalogue,
                    states: &states,
                    refusal: None,
                    commands: Vec::new(),
                    search: &mut search,
                    frame: None,
                    transform: None,
                    view: None,
                    visible: None,
                };
                egui_snarl::ui::SnarlViewer::connect(&mut viewer, &out, &inp, &mut self.doc.snarl);
                if let Some(r) = viewer.refusal {
                    self.notify(ctx, r);
                }
            }
            AppCommand::OpenPainter(node) => self.open_painter(ctx, &node),
            AppCommand::Inspect(node) => self.inspected = Some(node),
            AppCommand::SavePreset { kind, name, params } => {
                if let Some(s) = &self.store {
                    if let Err(e) = s.save_preset(&kind, &name, &params) {
                        self.error("Cannot save the preset", e.to_string());
                    }
                }
                self.refresh_presets(&kind);
            }
            AppCommand::ApplyPreset { node, params } => {
                if let (Some(nid), Ok(p)) = (
                    self.doc.find(&node),
                    serde_json::from_value::<std::collections::BTreeMap<String, ParamValue>>(
                        params,
                    ),
                ) {
                    if let Some(n) = self.doc.snarl.get_node_mut(nid) {
                        n.params = p;
                    }
                }
            }
            AppCommand::DeletePreset { kind, name } => {
                if let Some(s) = &self.store {
                    let _ = s.delete_preset(&kind, &name);
                }
                self.refresh_presets(&kind);
            }
            AppCommand::Bookmark { output, on } => {
                if let Some(s) = &self.store {
                    let r = if on {
                        s.set_bookmark(output, "")
                    } else {
                        s.remove_bookmark(output)
                    };
                    self.gallery.refresh(s);
                    if let Err(e) = r {
                        self.error("Cannot bookmark", e.to_string());
                    }
                }
            }
            AppCommand::DeleteOutputs(ids) => {
                if let Some(s) = &self.store {
                    for id in ids {
                        let _ = s.delete_output(id);
                    }
                    self.gallery.refresh(s);
                }
            }
            AppCommand::ExportOutputs(ids) => self.export(ctx, &ids),
            AppCommand::OpenOutput(id) => {
                if let Some(s) = &self.store {
                    self.gallery.open(ctx, s, id);
                }
            }
            AppCommand::RestoreGraph(run_id) => {
                let Some((_, run)) = self.gallery.runs.iter().find(|(id, _)| *id == run_id) else {
                    return;
                };
                match GraphDoc::from_json(&run.graph_json) {
                    Ok(doc) => {
                        self.doc.replace(&doc, &self.catalogue);
                        self.frame_all = true;
                        self.notify(ctx, format!("restored the graph of run #{run_id}"));
                    }
                    Err(e) => self.error("Cannot restore the graph", e.to_string()),
                }
            }
            AppCommand::RefreshGallery => {
                if let Some(s) = &self.store {
                    self.gallery.refresh(s);
                }
            }
            AppCommand::ApplySettings(s) => {
                self.settings = *s;
                engine::models::manager::set_extra_dirs(self.settings.model_dirs.clone());
                if self.settings.cache_budget_mib != self.worker_budget && !self.running() {
                    let notify_ctx = ctx.clone();
                    self.worker = Worker::spawn_with_notify(
                        executor(self.settings.cache_budget_mib),
                        Some(Box::new(move || notify_ctx.request_repaint())),
                    );
                    self.worker_budget = self.settings.cache_budget_mib;
                }
            }
        }
    }

    fn remember(&mut self, path: PathBuf) {
        self.settings.recent.retain(|p| p != &path);
        self.settings.recent.insert(0, path);
        self.settings.recent.truncate(10);
    }

    fn refresh_presets(&mut self, kind: &str) {
        if let Some(s) = &self.store {
            let list = s.presets(kind).unwrap_or_default();
            if kind == training::PRESET_KIND {
                self.training.user_presets = list.clone();
            }
            self.inspector.presets.insert(kind.to_string(), list);
        }
    }

    /// Whether a run is queued or running.
    pub fn running(&self) -> bool {
        self.training.busy()
            || self
                .runs
                .iter()
                .any(|r| matches!(r.state, RunState::Queued | RunState::Running))
    }

    fn out_dir(&self) -> PathBuf {
        self.settings
            .out_dir
            .clone()
            .unwrap_or_else(engine::paths::default_out_dir)
    }

    /// Queues a run of the current document.
    fn run(&mut self, ctx: &egui::Context, to_node: Option<String>) {
        let doc = self.doc.to_doc(&self.catalogue);
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
            targets: to_node.map(|n| vec![n]),
            graph_path: self.doc.path.clone(),
            embed_assets: false,
        };
        match self.worker.submit(job) {
            Ok(()) => self.runs.push(RunView {
                label,
                state: RunState::Queued,
                items: n_items,
                done: 0,
                run_id: None,
                current: String::new(),
            }),
            Err(e) => self.error("Cannot run", e.to_string()),
        }
    }

    /// Applies the worker's events to the run views, node states, outputs and previews.
    pub fn poll_worker(&mut self, ctx: &egui::Context) {
        while let Ok(ev) = self.worker.events().try_recv() {
            let current = self
                .runs
                .iter_mut()
                .find(|r| matches!(r.state, RunState::Queued | RunState::Running));
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

    /// The image feeding a node's `image` input, from the last run.
    fn input_image(&self, node: &str) -> Option<engine::Image> {
        let doc = self.doc.to_doc(&self.catalogue);
        let link = doc.link_into(node, "image")?;
        let v = self.outputs.get(&link.from.0)?.get(link.from.1.as_str())?;
        v.as_image().map(|i| (**i).clone())
    }

    fn open_painter(&mut self, ctx: &egui::Context, node: &str) {
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

    fn export(&mut self, ctx: &egui::Context, ids: &[u64]) {
        let Some(store) = &self.store else { return };
        let dir = rfd::FileDialog::new().pick_folder().unwrap_or_else(|| {
            self.out_dir().join(format!(
                "export-{}",
                engine::store::format_utc(engine::store::now_ms()).replace([' ', ':'], "-")
            ))
        });
        let mut n = 0;
        let result = (|| -> Result<(), String> {
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            for id in ids {
                let Some((_, rec)) = self.gallery.outputs.iter().find(|(o, _)| o == id) else {
                    continue;
                };
                let stem = Path::new(&rec.path)
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or("output")
                    .to_string();
                if let Some(png) = store.output_png(*id).map_err(|e| e.to_string())? {
                    std::fs::write(dir.join(format!("{id:06}-{stem}.png")), png)
                        .map_err(|e| e.to_string())?;
                    n += 1;
                }
                if let Some(mask) = store.output_mask_png(*id).map_err(|e| e.to_string())? {
                    std::fs::write(dir.join(format!("{id:06}-{stem}_mask.png")), mask)
                        .map_err(|e| e.to_string())?;
                }
            }
            Ok(())
        })();
        match result {
            Ok(()) => self.notify(ctx, format!("exported {n} image(s) to {}", dir.display())),
            Err(e) => self.error("Export failed", e),
        }
    }

    /// The whole window, one frame. Used by eframe and by the UI tests.
    pub fn ui(&mut self, root: &mut egui::Ui) {
        let ctx = &root.ctx().clone();
        self.poll_worker(ctx);
        let mut cmds: Vec<AppCommand> = std::mem::take(&mut self.pending);
        cmds.extend(self.shortcuts(ctx));
        for f in ctx.input(|i| i.raw.dropped_files.clone()) {
            let p = f.path();
            if !p.as_os_str().is_empty() {
                cmds.push(AppCommand::Open(p.to_path_buf()));
            }
        }
        if ctx.input(|i| i.viewport().close_requested())
            && !self.allow_close
            && self.doc.dirty(&self.catalogue)
        {
            ctx.send_viewport_cmd(egui::ViewportCommand::CancelClose);
            self.dialog = Some(Dialog::UnsavedClose);
        }
        cmds.extend(self.menu_ui(root));
        cmds.extend(self.runs_ui(root));
        let sel = self.selected(ctx);
        if sel != self.last_selection {
            if let Some(id) = sel
                .first()
                .and_then(|n| self.doc.snarl.get_node(*n))
                .map(|n| n.id.clone())
            {
                self.inspected = Some(id);
            }
            self.last_selection = sel;
        }
        if self
            .inspected
            .as_ref()
            .is_some_and(|id| self.doc.find(id).is_none())
        {
            self.inspected = None;
        }
        if self.settings.show_inspector {
            let node_id = self.inspected.clone();
            if let Some(id) = &node_id {
                let kind = self
                    .doc
                    .find(id)
                    .and_then(|n| self.doc.snarl.get_node(n))
                    .map(|n| n.kind.clone())
                    .unwrap_or_default();
                if !self.inspector.presets.contains_key(&kind) {
                    self.refresh_presets(&kind);
                }
            }
            egui::Panel::right("inspector").default_size(340.0).show(root, |ui| {
                egui::ScrollArea::vertical().id_salt("inspector-scroll").show(ui, |ui| match &node_id {
                    Some(id) => cmds.extend(inspector::inspector_ui(ui, &mut self.inspector, &mut self.doc, id, &self.catalogue, &self.outputs, self.statuses.get(id).map(String::as_str))),
                    None => {
                        ui.heading("Inspector");
                        ui.label("Select a node to see all its parameters, its last outputs and its presets.");
                    }
                });
            });
        }
        if self.settings.show_gallery {
            egui::Panel::bottom("gallery")
                .resizable(true)
                .default_size(250.0)
                .show(root, |ui| {
                    ui.heading("Gallery");
                    cmds.extend(self.gallery.gallery_ui(ui, self.store.as_ref()));
                });
        }
        egui::CentralPanel::default().show(root, |ui| cmds.extend(self.graph_ui(ui)));
        self.windows_ui(ctx, &mut cmds);
        // The document only changes through input or commands: frames with neither (repaints
        // for progress) skip the edit check.
        let changed =
            !cmds.is_empty() || ctx.input(|i| !i.events.is_empty()) || self.doc_maybe_changed;
        for c in cmds {
            self.apply(ctx, c);
        }
        if changed {
            let pointer_down = ctx.input(|i| i.pointer.any_down());
            self.doc_maybe_changed =
                !self.doc.commit_edits(&self.catalogue, pointer_down) && pointer_down;
        }
        if self.running() {
            ctx.request_repaint_after(std::time::Duration::from_millis(250));
        }
    }

    fn shortcuts(&mut self, ctx: &egui::Context) -> Vec<AppCommand> {
        let mut cmds = Vec::new();
        if ctx.egui_wants_keyboard_input() || self.painter.is_some() {
            return cmds;
        }
        ctx.input_mut(|i| {
            use egui::{Key, KeyboardShortcut as K, Modifiers as M};
            let mut s = |m: M, k: Key, c: AppCommand| {
                if i.consume_shortcut(&K::new(m, k)) {
                    cmds.push(c);
                }
            };
            s(M::COMMAND | M::SHIFT, Key::Z, AppCommand::Redo);
            s(M::COMMAND, Key::Z, AppCommand::Undo);
            s(M::COMMAND, Key::Y, AppCommand::Redo);
            s(M::COMMAND, Key::S, AppCommand::Save);
            s(M::COMMAND, Key::O, AppCommand::OpenDialog);
            s(M::COMMAND, Key::N, AppCommand::NewGraph);
            s(M::COMMAND, Key::Enter, AppCommand::Run { to_node: None });
            s(M::NONE, Key::Delete, AppCommand::DeleteSelected);
            s(M::NONE, Key::F, AppCommand::FrameAll);
            if i.consume_shortcut(&K::new(M::COMMAND, Key::D)) {
                cmds.push(AppCommand::Duplicate(Vec::new()));
            }
            if i.consume_shortcut(&K::new(M::SHIFT, Key::A))
                || i.consume_shortcut(&K::new(M::NONE, Key::Tab))
            {
                self.add_menu_at = Some(i.pointer.hover_pos().unwrap_or(Pos2::new(400.0, 300.0)));
            }
            // Copy and paste arrive as events.
            for e in &i.events {
                match e {
                    egui::Event::Copy => cmds.push(AppCommand::Copy),
                    egui::Event::Paste(_) => cmds.push(AppCommand::Paste),
                    _ => {}
                }
            }
        });
        // Duplicate takes the selection, which is only known here.
        for c in cmds.iter_mut() {
            if let AppCommand::Duplicate(v) = c {
                if v.is_empty() {
                    *v = self.selected(ctx);
                }
            }
        }
        cmds
    }

    fn menu_ui(&mut self, root: &mut egui::Ui) -> Vec<AppCommand> {
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
                    if ui.button("Settings…").clicked() {
                        self.show_settings = Some(self.settings.clone());
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
                });
                ui.menu_button("Train", |ui| {
                    if ui
                        .button("Train LoRA…")
                        .on_hover_text("Train a LoRA on a folder of product or defect photos")
                        .clicked()
                    {
                        cmds.push(AppCommand::OpenTraining);
                    }
                });
                ui.menu_button("View", |ui| {
                    ui.checkbox(&mut self.settings.show_inspector, "Inspector");
                    ui.checkbox(&mut self.settings.show_gallery, "Gallery");
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
                let name = self
                    .doc
                    .path
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "untitled".into());
                ui.label(format!("{name}{}", if dirty { " •" } else { "" }));
                ui.separator();
                ui.label("seed");
                ui.add(egui::DragValue::new(&mut self.settings.run_seed))
                    .on_hover_text("Run seed (0: the graph's meta.seed)");
                ui.label("count");
                ui.add(egui::DragValue::new(&mut self.settings.run_count).range(1..=100_000));
            });
        });
        cmds
    }

    fn runs_ui(&mut self, root: &mut egui::Ui) -> Vec<AppCommand> {
        let mut cmds = Vec::new();
        egui::Panel::left("runs")
            .default_size(220.0)
            .show(root, |ui| {
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

    fn graph_ui(&mut self, ui: &mut egui::Ui) -> Vec<AppCommand> {
        let frame = self.frame_all.then(|| ui.max_rect());
        self.frame_all = false;
        let mut viewer = GraphViewer {
            catalogue: &self.catalogue,
            states: &self.states,
            refusal: None,
            commands: Vec::new(),
            search: &mut self.search,
            frame,
            transform: None,
            view: Some(ui.max_rect()),
            visible: None,
        };
        let style = SnarlStyle::new();
        SnarlWidget::new().id(Id::new(GRAPH_ID)).style(style).show(
            &mut self.doc.snarl,
            &mut viewer,
            ui,
        );
        let mut cmds = std::mem::take(&mut viewer.commands);
        if let Some(t) = viewer.transform {
            self.graph_transform = t;
        }
        if let Some(r) = viewer.refusal.take() {
            let ctx = ui.ctx().clone();
            self.notify(&ctx, r);
        }
        let now = ui.input(|i| i.time);
        if let Some(t) = &self.toast {
            if now < self.toast_until {
                let rect = ui.max_rect();
                egui::Area::new(Id::new("toast"))
                    .fixed_pos(Pos2::new(rect.left() + 12.0, rect.bottom() - 40.0))
                    .show(ui.ctx(), |ui| {
                        egui::Frame::popup(ui.style()).show(ui, |ui| {
                            ui.label(t);
                        });
                    });
                ui.ctx()
                    .request_repaint_after(std::time::Duration::from_millis(500));
            }
        }
        if let Some(at) = self.add_menu_at {
            let mut open = true;
            let mut picked = None;
            egui::Window::new("Add node")
                .open(&mut open)
                .fixed_pos(at)
                .collapsible(false)
                .resizable(false)
                .show(ui.ctx(), |ui| {
                    picked = editor::add_node_menu_ui(ui, &self.catalogue, &mut self.search, None);
                });
            if let Some(k) = picked {
                let pos = self.graph_transform.inverse() * at;
                cmds.push(AppCommand::AddNode {
                    kind: k.kind.to_string(),
                    pos,
                });
                self.search.clear();
                open = false;
            }
            if !open || ui.input(|i| i.key_pressed(egui::Key::Escape)) {
                self.add_menu_at = None;
            }
        }
        cmds
    }

    fn windows_ui(&mut self, ctx: &egui::Context, cmds: &mut Vec<AppCommand>) {
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
                            ui.label("Device");
                            egui::ComboBox::from_id_salt("device")
                                .selected_text(s.device.clone())
                                .show_ui(ui, |ui| {
                                    ui.selectable_value(&mut s.device, "cpu".to_string(), "CPU");
                                    #[cfg(feature = "cuda")]
                                    ui.selectable_value(
                                        &mut s.device,
                                        "cuda:0".to_string(),
                                        "CUDA GPU 0",
                                    );
                                });
                            ui.end_row();
                            ui.label("Cache memory budget (MiB)");
                            ui.add(
                                egui::DragValue::new(&mut s.cache_budget_mib).range(64..=262_144),
                            );
                            ui.end_row();
                        });
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

fn executor(budget_mib: u64) -> Executor {
    Executor::new(
        Catalogue::builtin(),
        engine::Registry::builtin(),
        (budget_mib as usize).saturating_mul(1 << 20),
    )
}

impl eframe::App for StudioApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        StudioApp::ui(self, ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, eframe::APP_KEY, &self.settings);
    }
}

/// Opens the studio window (the binary with no arguments).
pub fn run_studio(initial: Option<PathBuf>) -> Result<(), String> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("Defect Studio")
            .with_inner_size([1600.0, 1000.0])
            .with_drag_and_drop(true),
        persist_window: true,
        ..Default::default()
    };
    eframe::run_native(
        "defect-studio",
        options,
        Box::new(move |cc| {
            let settings = cc
                .storage
                .and_then(|s| eframe::get_value::<Settings>(s, eframe::APP_KEY))
                .unwrap_or_default();
            Ok(Box::new(StudioApp::new(&cc.egui_ctx, settings, initial)))
        }),
    )
    .map_err(|e| e.to_string())
}

/// Kept for symmetry with the graph widget's frame-all: the visible graph rectangle to fit.
pub fn fit_transform(nodes: &[Pos2], view: Rect) -> egui::emath::TSTransform {
    if nodes.is_empty() {
        return egui::emath::TSTransform::default();
    }
    let mut r = Rect::from_points(nodes);
    r.max += Vec2::new(260.0, 240.0); // approximate node size
    r = r.expand(20.0);
    let scale = (view.width() / r.width())
        .min(view.height() / r.height())
        .clamp(0.2, 1.5);
    egui::emath::TSTransform::new(
        view.center().to_vec2() - r.center().to_vec2() * scale,
        scale,
    )
}
