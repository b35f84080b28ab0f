//! The Models window (issue 26 §1): what the model manager finds in the model folders, grouped
//! by kind ([`engine::models::browse::ModelKind`]), with architecture, size, sha256 and AutoV2,
//! metadata, and for LoRAs the base model and the most frequent training tags (a click appends
//! one to the prompt of the sampler node in the inspector). Search by name, tag or hash prefix
//! and filter by kind; drag a checkpoint or LoRA onto the canvas (or "Add to graph") for a
//! LoadCheckpoint or LoraLoader node naming it; fetch the models `models fetch` knows.
//!
//! Scanning, hashing and fetching run on background threads ([`jobs`]): the UI thread only
//! reads their messages, so the window costs a frame no file access. [`missing`] is the
//! missing-models dialog an opened graph raises: a file is accepted for a reference when its
//! sha256 matches, or after a warning that says it does not.

mod jobs;
pub mod missing;
mod panel;

use std::path::PathBuf;

use egui::Pos2;
use engine::models::browse::{self, ModelKind};
use engine::models::manager::ModelInfo;
use nodes::{ModelRef, ParamValue};

use super::{AppCommand, StudioApp};
use jobs::{JobMsg, Jobs};
pub use missing::{MissingDialog, MissingRow, RowState};

/// How many training tags a LoRA shows.
pub const TOP_TAGS: usize = 8;

/// What the Models window and the missing-models dialog ask for.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelsCommand {
    /// Show the window (scanning the model folders the first time).
    Open,
    /// Scan the model folders again.
    Rescan,
    /// Add a loader node for a model at a graph position (`None`: the view's centre).
    AddNode { model: ModelDrag, pos: Option<Pos2> },
    /// Append a training tag to the prompt of the sampler node in the inspector (else the
    /// first node with a prompt).
    AddTag(String),
    /// Install a model of [`browse::FETCHABLE`] (on a background thread).
    Fetch(String),
    /// Hash the file typed for missing reference `i` and accept it if the hash matches.
    CheckMissing(usize),
    /// Accept the file checked for missing reference `i` although its hash differs.
    UseAnyway(usize),
    /// Close the missing-models dialog (references not located stay missing).
    CloseMissing,
}

/// A model row dragged towards the canvas (or added with "Add to graph").
#[derive(Clone, Debug, PartialEq)]
pub struct ModelDrag {
    pub kind: ModelKind,
    /// The name graphs store: relative to its model folder.
    pub name: String,
    pub sha256: String,
    pub arch: String,
}

/// One scanned file with what the window shows about it, read once per scan.
#[derive(Clone, Debug)]
pub struct Entry {
    pub info: ModelInfo,
    pub kind: ModelKind,
    /// Relative to its model folder (`/`-separated), as graphs name it.
    pub name: String,
    /// The most frequent training tags first (all of them: the search reads every one).
    pub tags: Vec<(String, u64)>,
    pub base: Option<String>,
    /// The newest outputs of runs that used the model (found by its sha256), scaled down.
    pub thumbs: Vec<egui::ColorImage>,
}

impl Entry {
    /// Reads what the window shows from a scanned file; `name` is its relative name.
    pub fn new(info: ModelInfo, name: String) -> Entry {
        Entry {
            kind: ModelKind::of(&info),
            tags: browse::top_tags(&info.metadata, usize::MAX),
            base: browse::base_model(&info),
            thumbs: Vec::new(),
            name,
            info,
        }
    }

    /// The drag payload for a loadable model.
    pub fn drag(&self) -> Option<ModelDrag> {
        self.kind.loader_node().map(|_| ModelDrag {
            kind: self.kind,
            name: self.name.clone(),
            sha256: self.info.sha256.clone(),
            arch: self.info.arch.clone(),
        })
    }
}

/// The window's state.
#[derive(Default)]
pub struct ModelsPanel {
    pub open: bool,
    /// The last scan (`None` until the first one is done).
    pub entries: Option<Vec<Entry>>,
    pub search: String,
    /// Only this kind (`None`: all).
    pub filter: Option<ModelKind>,
    /// The file whose details are shown.
    pub selected: Option<PathBuf>,
    /// The outcome of the last action (ok, text).
    pub message: Option<(bool, String)>,
    /// What a background job is doing now (hashing a file, fetching), while it runs, with the
    /// fraction done when it is known.
    pub progress: Option<(String, Option<f32>)>,
    /// The missing-models dialog of the last opened graph.
    pub missing: Option<MissingDialog>,
    /// Indices into `entries` that pass the search and filter, and for which (search, filter,
    /// scan) they were computed.
    shown: Vec<usize>,
    shown_for: Option<(String, Option<ModelKind>, u64)>,
    scan_generation: u64,
    /// A fetch finished: scan again.
    needs_rescan: bool,
    /// The selected model's thumbnails as textures (made when first shown).
    pub(super) thumb_textures: Option<(PathBuf, Vec<egui::TextureHandle>)>,
    jobs: Jobs,
}

impl ModelsPanel {
    /// Whether a scan is running.
    pub fn scanning(&self) -> bool {
        self.jobs.scanning
    }

    /// Whether a fetch is running.
    pub fn fetching(&self) -> Option<&str> {
        self.jobs.fetching.as_deref()
    }

    /// Whether any background job (scan, fetch, hash, reference check) is running.
    pub fn busy(&self) -> bool {
        self.jobs.busy()
    }

    /// Starts a scan of the model folders on a background thread.
    pub fn rescan(&mut self, ctx: &egui::Context) {
        self.jobs.scan(ctx);
    }

    /// Starts checking an opened graph's model references on a background thread; missing
    /// ones open the dialog.
    pub fn check_refs(&mut self, ctx: &egui::Context, refs: Vec<ModelRef>) {
        self.missing = None;
        self.jobs.check_refs(ctx, refs);
    }

    /// Reads the background jobs' messages (cheap: no file access).
    pub fn poll(&mut self) {
        while let Some(msg) = self.jobs.try_recv() {
            match msg {
                JobMsg::Progress(line, fraction) => self.progress = Some((line, fraction)),
                JobMsg::HashProgress { row, fraction } => {
                    if let Some(d) = &mut self.missing {
                        d.hash_progress(row, fraction);
                    }
                }
                JobMsg::Scanned(Ok(entries)) => {
                    self.progress = None;
                    if let Some(sel) = &self.selected {
                        if !entries.iter().any(|e| &e.info.path == sel) {
                            self.selected = None;
                        }
                    }
                    self.entries = Some(entries);
                    self.scan_generation += 1;
                    self.thumb_textures = None;
                }
                JobMsg::Scanned(Err(e)) => {
                    self.progress = None;
                    self.message = Some((false, format!("scan failed: {e}")));
                }
                JobMsg::Fetched(name, result) => {
                    self.progress = None;
                    self.needs_rescan = true;
                    self.message = Some(match result {
                        Ok(p) => (true, format!("{name}: installed {}", p.display())),
                        Err(e) => (false, format!("{name}: {e}")),
                    });
                }
                JobMsg::Missing(rows) => {
                    self.missing = (!rows.is_empty()).then(|| MissingDialog::new(rows));
                }
                JobMsg::Hashed { row, path, result } => {
                    if let Some(d) = &mut self.missing {
                        d.hashed(row, path, result);
                    }
                }
            }
        }
    }

    /// The entries passing the search and the kind filter, in list order.
    pub fn shown(&mut self) -> &[usize] {
        let key = (self.search.clone(), self.filter, self.scan_generation);
        if self.shown_for.as_ref() != Some(&key) {
            self.shown = self
                .entries
                .iter()
                .flatten()
                .enumerate()
                .filter(|(_, e)| self.filter.is_none_or(|k| k == e.kind))
                .filter(|(_, e)| browse::matches_with_tags(&e.info, &e.tags, &self.search))
                .map(|(i, _)| i)
                .collect();
            self.shown_for = Some(key);
        }
        &self.shown
    }
}

impl StudioApp {
    /// The Models window and the missing-models dialog, while shown.
    pub(super) fn models_window(&mut self, ctx: &egui::Context) -> Vec<AppCommand> {
        self.models.poll();
        // A fetch that finished changes the folders' content.
        if std::mem::take(&mut self.models.needs_rescan) {
            self.models.rescan(ctx);
        }
        if self.models.busy() {
            ctx.request_repaint_after(std::time::Duration::from_millis(100));
        }
        let mut cmds = self.models.models_ui(ctx);
        cmds.extend(missing::missing_ui(&mut self.models.missing, ctx));
        cmds
    }

    /// A model dragged from the Models window and released over the canvas: add its loader
    /// there.
    pub(super) fn models_drop(&mut self, ctx: &egui::Context) -> Option<AppCommand> {
        let (drag, pos) = self.canvas_drop::<ModelDrag>(ctx)?;
        Some(AppCommand::Models(ModelsCommand::AddNode {
            model: (*drag).clone(),
            pos: Some(pos),
        }))
    }

    /// Carries out a [`ModelsCommand`].
    pub(super) fn apply_models(&mut self, ctx: &egui::Context, cmd: ModelsCommand) {
        match cmd {
            ModelsCommand::Open => {
                self.models.open = true;
                if self.models.entries.is_none() && !self.models.scanning() {
                    self.models.rescan(ctx);
                }
            }
            ModelsCommand::Rescan => self.models.rescan(ctx),
            ModelsCommand::AddNode { model, pos } => self.add_model_node(ctx, &model, pos),
            ModelsCommand::AddTag(tag) => self.add_tag(ctx, &tag),
            ModelsCommand::Fetch(name) => self.models.jobs.fetch(ctx, &name),
            ModelsCommand::CheckMissing(row) => {
                if let Some(d) = &mut self.models.missing {
                    if let Some(path) = d.start_check(row) {
                        self.models.jobs.hash(ctx, row, path);
                    }
                }
            }
            ModelsCommand::UseAnyway(row) => {
                if let Some(d) = &mut self.models.missing {
                    if let Some((r, path, sha)) = d.use_anyway(row) {
                        self.point_graph_at(ctx, &r, &path, &sha);
                    }
                }
            }
            ModelsCommand::CloseMissing => self.models.missing = None,
        }
        // A hash that matched is accepted as soon as it arrives (see `accept_matched`).
    }

    /// Accepts the files whose hash matched their reference since the last frame.
    pub(super) fn accept_matched(&mut self, ctx: &egui::Context) {
        let accepted = self
            .models
            .missing
            .as_mut()
            .map(|d| d.take_matched())
            .unwrap_or_default();
        for (r, path, sha) in accepted {
            self.point_graph_at(ctx, &r, &path, &sha);
        }
        if self.models.missing.as_ref().is_some_and(|d| d.all_done()) {
            self.models.missing = None;
            self.notify(ctx, "every missing model is located");
        }
    }

    /// Points the graph's parameters naming reference `r` at `path` (its relative name when it
    /// lies in a model folder), inside subgraph definitions too, and the reference at the file
    /// and its sha256: one undoable edit.
    fn point_graph_at(
        &mut self,
        ctx: &egui::Context,
        r: &ModelRef,
        path: &std::path::Path,
        sha: &str,
    ) {
        let manager = engine::models::manager::ModelManager::default_dirs();
        let name = manager.relative_name(path);
        let mut doc = self.doc.to_doc(&self.catalogue);
        // Top-level nodes, subgraph nodes' exposed parameters and the definitions' nodes.
        let changed = nodes::subgraph::repoint_file_params(
            &mut doc,
            &self.catalogue,
            |role| role.is_model(),
            |v| missing::same_model_name(v, &r.name),
            &name,
        );
        for m in doc.models.iter_mut().filter(|m| *m == r) {
            m.name = name.clone();
            m.sha256 = sha.to_string();
        }
        self.doc.replace(&doc, &self.catalogue);
        self.notify(
            ctx,
            format!("{} now uses {name} ({changed} node parameter(s))", r.name),
        );
    }

    fn add_model_node(&mut self, ctx: &egui::Context, m: &ModelDrag, pos: Option<Pos2>) {
        let Some((kind, param)) = m.kind.loader_node() else {
            return;
        };
        let pos = pos.unwrap_or_else(|| self.graph_transform.inverse() * self.graph_rect.center());
        let node = self.doc.add_node(kind, pos);
        let Some(n) = self.doc.snarl.get_node_mut(node) else {
            return;
        };
        n.params
            .insert(param.into(), ParamValue::Text(m.name.clone()));
        let id = n.id.clone();
        // The graph carries the model's hash, so a colleague's copy is found under any name.
        let r = ModelRef {
            name: m.name.clone(),
            sha256: m.sha256.clone(),
            arch: m.arch.clone(),
        };
        if !self.doc.extra.models.contains(&r) {
            self.doc.extra.models.push(r);
        }
        self.inspected = Some(id.clone());
        self.models.message = Some((true, format!("added {id} with {}", m.name)));
        self.notify(ctx, format!("added {id} with {}", m.name));
    }

    /// The node a tag goes to: the inspected node when it has a prompt, else the first node
    /// (by id) that has one.
    fn prompt_node(&self) -> Option<String> {
        let has_prompt = |kind: &str| {
            self.catalogue
                .get(kind)
                .is_some_and(|s| s.params.iter().any(|p| p.name == "prompt"))
        };
        let inspected = self.inspected.as_ref().filter(|id| {
            self.doc
                .find(id)
                .and_then(|n| self.doc.snarl.get_node(n))
                .is_some_and(|n| has_prompt(&n.kind))
        });
        inspected.cloned().or_else(|| {
            let mut ids: Vec<&String> = self
                .doc
                .snarl
                .nodes()
                .filter(|n| has_prompt(&n.kind))
                .map(|n| &n.id)
                .collect();
            ids.sort();
            ids.first().map(|s| s.to_string())
        })
    }

    fn add_tag(&mut self, ctx: &egui::Context, tag: &str) {
        let Some(id) = self.prompt_node() else {
            self.models.message = Some((
                false,
                "no node with a prompt in the graph: add a Txt2Img, Img2Img or Inpaint node".into(),
            ));
            return;
        };
        let Some(n) = self
            .doc
            .find(&id)
            .and_then(|nid| self.doc.snarl.get_node_mut(nid))
        else {
            return;
        };
        let prompt = n
            .params
            .get("prompt")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .trim_end()
            .to_string();
        let joined = if prompt.is_empty() {
            tag.to_string()
        } else {
            format!("{}, {tag}", prompt.trim_end_matches(','))
        };
        n.params.insert("prompt".into(), ParamValue::Text(joined));
        self.models.message = Some((true, format!("added \"{tag}\" to {id}'s prompt")));
        self.notify(ctx, format!("added \"{tag}\" to {id}'s prompt"));
    }
}
