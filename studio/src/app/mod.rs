//! The studio window: [`StudioApp`] owns the persisted [`Settings`], the edited document
//! ([`doc::EditorDoc`]), and handles to the engine worker and the store. Panels are `*_ui`
//! functions that return [`AppCommand`]s; [`StudioApp::apply`] carries them out.

mod commands;
pub mod devices_ui;
mod dialogs;
pub mod doc;
pub mod editor;
pub mod explore;
pub mod gallery;
pub mod inspect;
pub mod inspector;
pub mod library_panel;
mod menu;
pub mod models;
pub mod output_details;
pub mod output_recipes;
pub mod painter;
mod painter_canvas;
mod painter_open;
pub mod painter_shapes;
pub mod params;
pub mod queue_panel;
mod runs;
mod settings;
pub mod shortcuts;
pub mod stats_window;
pub mod train_form;
pub mod training;
pub mod versions;

pub use commands::AppCommand;
pub use dialogs::Dialog;
pub use runs::{RunState, RunView};
pub use settings::Settings;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use egui::{Id, Pos2, Rect, Vec2};
use egui_snarl::ui::{SnarlStyle, SnarlWidget};
use egui_snarl::NodeId;
use engine::devices::GpuProvider;
use engine::{Executor, Outputs, Store, Worker};
use nodes::{Catalogue, GraphDoc};

use doc::EditorDoc;
use editor::{GraphViewer, NodeRunState};
use explore::ExplorePanel;
use gallery::Gallery;
use inspector::Inspector;
use painter::MaskPainter;
use training::TrainingPanel;

/// The example recipe the studio opens with on a fresh machine.
pub const EXAMPLE: &str = include_str!("../../../examples/brushed-metal-scratch.json");

/// The id of the graph widget (its selection is read through it).
pub const GRAPH_ID: &str = "defect-studio-graph";

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
    /// The Inspection window (train a classifier, evaluate a detector).
    pub inspect: inspect::InspectPanel,
    /// The Explore window (items on a map, tags, queries, coverage).
    pub explore: ExplorePanel,
    /// The Explore window's engine job in flight, and its query and map.
    pub explore_jobs: explore::jobs::ExploreJobs,
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
    /// The version history window.
    pub versions: versions::VersionsWindow,
    /// The recipe library window.
    pub library: library_panel::LibraryPanel,
    /// The Models window and the missing-models dialog.
    pub models: models::ModelsPanel,
    /// The queue panel (above the runs).
    pub queue: queue_panel::QueuePanel,
    /// Where the graph canvas was drawn last frame (drops from the library land there).
    graph_rect: Rect,
    /// The canvas's node rectangles, minimap switch and pending view move.
    pub canvas: editor::minimap::Canvas,
    /// The Statistics window.
    pub stats: stats_window::StatsWindow,
    /// Where GPU information comes from (`engine::devices::provider()`; tests set a fake one
    /// with [`StudioApp::set_gpu_provider`]).
    gpu_provider: Arc<dyn GpuProvider>,
    /// The CPU and GPUs as last asked (the Settings window's devices section).
    pub devices: devices_ui::DevicesPanel,
    /// The device the run toolbar's ▶ Run targets (`BatchJob::device`); `None`: the default
    /// device.
    pub run_device: Option<String>,
    /// The keyboard shortcuts sheet (F1 or `?`).
    pub shortcuts_open: bool,
    /// The window title last sent to the viewport.
    window_title: String,
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
        engine::recipes::set_extra_dirs(settings.recipe_dirs.clone());
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
            inspect: Default::default(),
            explore: ExplorePanel::default(),
            explore_jobs: Default::default(),
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
            shortcuts_open: false,
            window_title: String::new(),
            versions: Default::default(),
            library: Default::default(),
            models: Default::default(),
            queue: Default::default(),
            graph_rect: Rect::from_min_size(Pos2::ZERO, Vec2::new(800.0, 600.0)),
            canvas: Default::default(),
            stats: Default::default(),
            gpu_provider: Arc::from(engine::devices::provider()),
            devices: Default::default(),
            run_device: None,
        };
        app.load_default_device();
        app.devices
            .refresh(app.gpu_provider.as_ref(), app.store.as_ref());
        // Batches the last session queued and never started: listed until resumed or discarded.
        if app.store.is_some() {
            app.queue.load_pending(engine::paths::store_path());
        }
        if let Some(p) = initial {
            app.apply(ctx, AppCommand::Open(p));
        }
        app.apply(ctx, AppCommand::RefreshGallery);
        app
    }

    /// Takes GPU information from `provider` from now on (tests: `FakeGpus`), and asks it.
    pub fn set_gpu_provider(&mut self, provider: impl GpuProvider + 'static) {
        self.gpu_provider = Arc::new(provider);
        self.devices
            .refresh(self.gpu_provider.as_ref(), self.store.as_ref());
    }

    /// The provider GPU information comes from.
    pub fn gpu_provider(&self) -> &dyn GpuProvider {
        self.gpu_provider.as_ref()
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
        // Library references stay references in the document; they are checked here and
        // filled in for each run.
        let mut resolved = doc.clone();
        engine::recipes::resolve_from_library(&mut resolved)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        nodes::validate(&resolved, &self.catalogue)
            .map_err(|e| format!("{}:\n{e}", path.display()))?;
        Ok(doc)
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
                    Some(id) => cmds.extend(inspector::inspector_ui(ui, &mut self.inspector, &mut self.doc, id, &self.catalogue, &self.outputs, &self.statuses)),
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
        if self.versions.open {
            let current = self.doc.to_doc(&self.catalogue);
            cmds.extend(self.versions.versions_ui(ctx, &current));
        }
        cmds.extend(self.library.library_ui(ctx, self.store.as_ref()));
        if self.stats.open {
            cmds.extend(self.stats.stats_ui(ctx));
        }
        cmds.extend(self.library_drop(ctx));
        if self.shortcuts_open {
            shortcuts::shortcuts_ui(ctx, &mut self.shortcuts_open);
        }
        let title = self.doc.window_title(&self.catalogue);
        if title != self.window_title {
            ctx.send_viewport_cmd(egui::ViewportCommand::Title(title.clone()));
            self.window_title = title;
        }
        cmds.extend(self.models_window(ctx));
        cmds.extend(self.models_drop(ctx));
        self.accept_matched(ctx);
        self.inspect.poll();
        if self.inspect.open {
            for c in self.inspect.inspect_ui(ctx) {
                self.inspect.apply(ctx, c, &self.worker);
            }
        }
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
        use shortcuts::Action;
        let (actions, pointer) = ctx.input_mut(|i| {
            (
                shortcuts::pressed(i, shortcuts::Scope::Graph),
                i.pointer.hover_pos(),
            )
        });
        for a in actions {
            cmds.push(match a {
                Action::Undo => AppCommand::Undo,
                Action::Redo => AppCommand::Redo,
                Action::Save => AppCommand::Save,
                Action::Open => AppCommand::OpenDialog,
                Action::New => AppCommand::NewGraph,
                Action::Library => AppCommand::Library(library_panel::LibraryCommand::Open),
                Action::Models => AppCommand::Models(models::ModelsCommand::Open),
                Action::History => AppCommand::Versions(versions::VersionsCommand::Open),
                Action::Run => AppCommand::Run { to_node: None },
                Action::Delete => AppCommand::DeleteSelected,
                Action::FrameAll => AppCommand::FrameAll,
                Action::MakeSubgraph => {
                    AppCommand::Editor(editor::EditorCommand::MakeSubgraph(Vec::new()))
                }
                Action::Duplicate => AppCommand::Duplicate(Vec::new()),
                Action::Copy => AppCommand::Copy,
                Action::Paste => AppCommand::Paste,
                Action::AddNode => {
                    self.add_menu_at = Some(pointer.unwrap_or(Pos2::new(400.0, 300.0)));
                    continue;
                }
                Action::Shortcuts => AppCommand::ShowShortcuts,
                // Painter-only actions are not bound in the graph scope.
                Action::BrushSmaller
                | Action::BrushLarger
                | Action::ToggleEraser
                | Action::ToolBrush
                | Action::ToolRectangle
                | Action::ToolEllipse
                | Action::ToolLasso
                | Action::CloseShape
                | Action::CancelShape => continue,
            });
        }
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

    fn graph_ui(&mut self, ui: &mut egui::Ui) -> Vec<AppCommand> {
        let mut cmds = editor::subgraph::scope_ui(ui, &mut self.doc, &self.catalogue);
        let frame = self.frame_all.then(|| ui.max_rect());
        self.graph_rect = ui.max_rect();
        self.frame_all = false;
        let mut viewer = GraphViewer::new(
            &self.catalogue,
            &self.doc.interfaces,
            &self.states,
            &mut self.search,
        );
        viewer.frame = frame;
        viewer.view = Some(ui.max_rect());
        viewer.frames = &self.doc.frames;
        viewer.last_rects = Some(&self.canvas.rects);
        viewer.look_at = self.canvas.look_at.take();
        viewer.in_subgraph = self.doc.scope.is_some();
        viewer.scope_prefix = self.doc.path().join(nodes::subgraph::PATH_SEP);
        viewer.sizes = std::mem::take(&mut self.canvas.sizes);
        viewer.sizes.follow(self.doc.generation());
        let style = SnarlStyle::new();
        // Text on the canvas is not selectable: a drag on a node's text moves the node, and a
        // selectable label is a click-and-drag widget with text-selection bookkeeping every
        // frame (studio/benches/frame.rs).
        ui.style_mut().interaction.selectable_labels = false;
        SnarlWidget::new().id(Id::new(GRAPH_ID)).style(style).show(
            &mut self.doc.snarl,
            &mut viewer,
            ui,
        );
        cmds.append(&mut viewer.commands);
        let rects = std::mem::take(&mut viewer.rects);
        let sizes = std::mem::take(&mut viewer.sizes);
        if let Some(t) = viewer.transform {
            self.graph_transform = t;
        }
        if let Some(r) = viewer.refusal.take() {
            let ctx = ui.ctx().clone();
            self.notify(&ctx, r);
        }
        self.canvas.rects = rects;
        self.canvas.sizes = sizes;
        self.canvas.to_screen = self.graph_transform;
        let view = ui.max_rect();
        editor::frames::frame_bars_ui(
            ui.ctx(),
            view,
            self.graph_transform,
            &mut self.doc.frames,
            &self.canvas.rects,
            &mut self.doc.snarl,
        );
        if self.canvas.minimap_on(self.doc.snarl.nodes().count()) {
            editor::minimap::minimap_ui(
                ui.ctx(),
                view,
                self.graph_transform,
                &self.doc.snarl,
                &mut self.canvas,
            );
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
    run_studio_with(initial, ExploreStart::No)
}

fn run_studio_with(initial: Option<PathBuf>, explore: ExploreStart) -> Result<(), String> {
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
            let mut app = StudioApp::new(&cc.egui_ctx, settings, initial);
            match explore {
                ExploreStart::No => {}
                ExploreStart::Store => app.apply(&cc.egui_ctx, AppCommand::OpenExplore),
                ExploreStart::Demo => app.open_explore_demo(),
            }
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| e.to_string())
}

/// Whether the studio opens with the Explore window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExploreStart {
    No,
    /// On the user's store (`defect-studio --explore`).
    Store,
    /// On demo data (`defect-studio --explore-demo`).
    Demo,
}

/// Opens the studio window with the Explore window open.
pub fn run_studio_explore(start: ExploreStart) -> Result<(), String> {
    run_studio_with(None, start)
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
