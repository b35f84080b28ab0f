//! [`AppCommand`]: everything the UI asks the app to do, and [`StudioApp::apply`], which carries
//! it out.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use egui::{Pos2, Vec2};
use egui_snarl::NodeId;
use engine::Worker;
use nodes::{GraphDoc, ParamValue};

use super::doc::EditorDoc;
use super::editor::GraphViewer;
use super::training::{self, TrainForm};
use super::{executor, Dialog, Settings, StudioApp};

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
    /// Show the Explore window.
    OpenExplore,
    /// What the Explore window asks for.
    Explore(super::explore::ExploreCommand),
    /// What the version history window asks for.
    Versions(super::versions::VersionsCommand),
    /// What the recipe library window asks for.
    Library(super::library_panel::LibraryCommand),
    /// What the Models window and the missing-models dialog ask for.
    Models(super::models::ModelsCommand),
    /// What the queue panel asks for.
    Queue(super::queue_panel::QueueCommand),
    /// A document edit of the graph editor (subgraphs, parameters as inputs, reroutes, frames).
    Editor(super::editor::EditorCommand),
    /// What the Statistics window asks for.
    Stats(super::stats_window::StatsCommand),
    /// Show the Settings window (the default device read again, the devices asked).
    OpenSettings,
    /// Ask the CPU and GPUs again (the Settings window's devices section).
    RefreshDevices,
    /// Show the keyboard shortcuts sheet.
    ShowShortcuts,
    /// Open the mask painter over a gallery output ("paint a mask here").
    PaintOnOutput(u64),
    /// What the mask painter asks for ("Paint this mask…" on a Mask input, open a recipe).
    Painter(super::painter::PainterCommand),
    /// What the output details' "send to" asks for.
    Details(super::output_details::DetailsCommand),
}

impl StudioApp {
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
                    // Models are found by hash first, then by name, off the UI thread; missing
                    // ones open the missing-models dialog.
                    self.models.check_refs(ctx, doc.models.clone());
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
                self.doc.prune_assets(&self.catalogue);
                let doc = self.doc.to_doc(&self.catalogue);
                match std::fs::write(&path, doc.to_json()) {
                    Ok(()) => {
                        if let Some(s) = &self.store {
                            let name = crate::graph_file::graph_name(&doc, &path);
                            let _ = s.save_graph(&name, &doc.to_json());
                        }
                        self.doc.mark_saved(doc, path.clone());
                        if self.versions.open {
                            self.apply(
                                ctx,
                                AppCommand::Versions(super::versions::VersionsCommand::Open),
                            );
                        }
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
            AppCommand::StartTraining(form) => match self
                .training_device()
                .and_then(|device| form.to_job(&device))
            {
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
            AppCommand::OpenExplore => self.open_explore(ctx),
            AppCommand::Explore(c) => self.apply_explore(ctx, c),
            AppCommand::Versions(c) => self.apply_versions(ctx, c),
            AppCommand::Library(c) => self.apply_library(ctx, c),
            AppCommand::Models(c) => self.apply_models(ctx, c),
            AppCommand::Queue(c) => self.apply_queue(ctx, c),
            AppCommand::Editor(c) => self.apply_editor(ctx, c),
            AppCommand::Stats(c) => self.apply_stats(c),
            AppCommand::OpenSettings => {
                self.load_default_device();
                self.show_settings = Some(self.settings.clone());
                self.apply(ctx, AppCommand::RefreshDevices);
            }
            AppCommand::RefreshDevices => self
                .devices
                .refresh(self.gpu_provider.as_ref(), self.store.as_ref()),
            AppCommand::Undo => self.doc.undo(&self.catalogue),
            AppCommand::Redo => self.doc.redo(&self.catalogue),
            AppCommand::FrameAll => self.frame_all = true,
            AppCommand::ShowShortcuts => self.shortcuts_open = true,
            AppCommand::PaintOnOutput(id) => self.paint_on_output(ctx, id),
            AppCommand::Painter(c) => self.apply_painter(ctx, c),
            AppCommand::Details(c) => self.apply_details(ctx, c),
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
                let ports = self.doc.ports(&self.catalogue);
                let (Some(o), Some(i)) = (
                    self.doc
                        .snarl
                        .get_node(f)
                        .and_then(|n| ports.output_index(n, &from.1)),
                    self.doc
                        .snarl
                        .get_node(t)
                        .and_then(|n| ports.input_index(n, &to.1)),
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
                let mut viewer =
                    GraphViewer::new(&self.catalogue, &self.doc.interfaces, &states, &mut search);
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
                let device = s.device.clone();
                self.settings = *s;
                self.store_default_device(&device);
                engine::models::manager::set_extra_dirs(self.settings.model_dirs.clone());
                engine::recipes::set_extra_dirs(self.settings.recipe_dirs.clone());
                if self.library.open {
                    self.library.rescan();
                }
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

    pub(super) fn remember(&mut self, path: PathBuf) {
        self.settings.recent.retain(|p| p != &path);
        self.settings.recent.insert(0, path);
        self.settings.recent.truncate(10);
    }

    pub(super) fn refresh_presets(&mut self, kind: &str) {
        if let Some(s) = &self.store {
            let list = s.presets(kind).unwrap_or_default();
            if kind == training::PRESET_KIND {
                self.training.user_presets = list.clone();
            }
            self.inspector.presets.insert(kind.to_string(), list);
        }
    }

    pub(super) fn export(&mut self, ctx: &egui::Context, ids: &[u64]) {
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
}
