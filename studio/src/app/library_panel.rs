//! The recipe library window (`engine::recipes`): search, tag chips, a list with thumbnails (the
//! last output of a run of each recipe, decoded a few per frame and cached as textures), "Open",
//! "Insert as subgraph" (or drag a row onto the canvas) and "Save current graph to library".

use std::collections::{BTreeSet, HashMap};

use egui::{Pos2, TextureHandle, TextureOptions, Vec2};
use engine::recipes::{self, Library};
use engine::store::Store;

use super::painter::image_to_color;
use super::{AppCommand, StudioApp};

/// What the library window asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum LibraryCommand {
    /// Show the window (scanning the recipe folders).
    Open,
    /// Scan the recipe folders again.
    Rescan,
    /// Open recipe `name` as the document.
    OpenRecipe(String),
    /// Insert recipe `name` as a subgraph node at a graph position (`None`: the view's centre).
    Insert { name: String, pos: Option<Pos2> },
    /// Add the current document to the data folder's `recipes/` as `name` with these tags.
    SaveCurrent { name: String, tags: Vec<String> },
}

/// A recipe row being dragged towards the canvas.
#[derive(Clone, Debug)]
pub struct RecipeDrag(pub String);

/// The window's state.
#[derive(Default)]
pub struct LibraryPanel {
    pub open: bool,
    /// The last scan (`None` until the window is first opened).
    pub library: Option<Library>,
    pub search: String,
    /// The tag chips turned on (a recipe must carry them all).
    pub tags: BTreeSet<String>,
    /// The "Save current graph" form.
    pub save_name: String,
    pub save_tags: String,
    /// The outcome of the last action shown in the window (ok, text).
    pub message: Option<(bool, String)>,
    thumbs: HashMap<String, Option<TextureHandle>>,
}

const THUMB: f32 = 56.0;
const THUMBS_PER_FRAME: usize = 2;

impl LibraryPanel {
    /// Scans the recipe folders ([`recipes::recipe_dirs`]); thumbnails are read again.
    pub fn rescan(&mut self) {
        self.library = Some(Library::scan(&recipes::recipe_dirs()));
        self.thumbs.clear();
        let known: BTreeSet<String> = self.all_tags();
        self.tags.retain(|t| known.contains(t));
    }

    fn all_tags(&self) -> BTreeSet<String> {
        self.library
            .iter()
            .flat_map(|l| l.entries())
            .flat_map(|e| e.tags.iter().cloned())
            .collect()
    }

    /// The thumbnail of recipe `name`, loading at most `budget` more this frame.
    fn thumb(
        &mut self,
        ctx: &egui::Context,
        store: Option<&Store>,
        name: &str,
        budget: &mut usize,
    ) -> Option<TextureHandle> {
        if let Some(t) = self.thumbs.get(name) {
            return t.clone();
        }
        let (Some(store), Some(lib)) = (store, &self.library) else {
            return None;
        };
        if *budget == 0 {
            ctx.request_repaint();
            return None;
        }
        *budget -= 1;
        let tex = lib
            .get(name)
            .and_then(|e| recipes::thumbnail(store, e).ok().flatten())
            .and_then(|png| engine::codec::decode_image(&png, name).ok())
            .map(|img| {
                let s = (2.0 * THUMB / img.width.max(img.height) as f32).min(1.0);
                let small = engine::ops::resize_image(
                    &img,
                    ((img.width as f32 * s) as u32).max(1),
                    ((img.height as f32 * s) as u32).max(1),
                    engine::ops::Filter::Bilinear,
                );
                ctx.load_texture(
                    format!("recipe-thumb-{name}"),
                    image_to_color(&small),
                    TextureOptions::LINEAR,
                )
            });
        self.thumbs.insert(name.to_string(), tex.clone());
        tex
    }

    /// The window, while open.
    pub fn library_ui(&mut self, ctx: &egui::Context, store: Option<&Store>) -> Vec<AppCommand> {
        let mut cmds = Vec::new();
        if !self.open {
            return cmds;
        }
        let mut open = true;
        egui::Window::new("Recipe library")
            .open(&mut open)
            .default_size([420.0, 560.0])
            .show(ctx, |ui| self.body_ui(ui, store, &mut cmds));
        if !open {
            self.open = false;
        }
        cmds
    }

    fn body_ui(&mut self, ui: &mut egui::Ui, store: Option<&Store>, cmds: &mut Vec<AppCommand>) {
        let cmd = |c| AppCommand::Library(c);
        ui.horizontal(|ui| {
            ui.label("Search");
            ui.add(
                egui::TextEdit::singleline(&mut self.search)
                    .hint_text("name, title, tag, notes or node kind")
                    .desired_width(240.0),
            );
            if ui
                .button("⟳")
                .on_hover_text("Scan the recipe folders again")
                .clicked()
            {
                cmds.push(cmd(LibraryCommand::Rescan));
            }
        });
        let all_tags = self.all_tags();
        if !all_tags.is_empty() {
            ui.horizontal_wrapped(|ui| {
                ui.label("Tags");
                for t in &all_tags {
                    let on = self.tags.contains(t);
                    if ui.selectable_label(on, format!("#{t}")).clicked() {
                        if on {
                            self.tags.remove(t);
                        } else {
                            self.tags.insert(t.clone());
                        }
                    }
                }
            });
        }
        super::dialogs::outcome_ui(ui, &self.message);
        ui.separator();
        let Some(lib) = &self.library else {
            ui.label("Scanning…");
            return;
        };
        let tags: Vec<String> = self.tags.iter().cloned().collect();
        let found: Vec<(String, String, Vec<String>, usize)> = lib
            .search(&self.search, &tags)
            .into_iter()
            .map(|e| (e.name.clone(), e.title.clone(), e.tags.clone(), e.nodes))
            .collect();
        let problems = lib.problems().to_vec();
        let total = lib.entries().len();
        ui.label(egui::RichText::new(format!("{} of {total} recipes", found.len())).weak());
        let mut budget = THUMBS_PER_FRAME;
        egui::ScrollArea::vertical()
            .id_salt("library-list")
            .max_height(ui.available_height() - 150.0)
            .show(ui, |ui| {
                if total == 0 {
                    ui.label(
                        "No recipes yet: save a graph below, or add folders in Settings \
                         (or DEFECT_STUDIO_RECIPE_DIRS).",
                    );
                }
                for (name, title, tags, nodes) in &found {
                    let tex = self.thumb(ui.ctx(), store, name, &mut budget);
                    ui.horizontal(|ui| {
                        let id = egui::Id::new(("recipe-drag", name.as_str()));
                        ui.dnd_drag_source(id, RecipeDrag(name.clone()), |ui| {
                            match &tex {
                                Some(t) => {
                                    ui.add(
                                        egui::Image::new(t).fit_to_exact_size(Vec2::splat(THUMB)),
                                    );
                                }
                                None => {
                                    let (r, _) = ui.allocate_exact_size(
                                        Vec2::splat(THUMB),
                                        egui::Sense::hover(),
                                    );
                                    ui.painter()
                                        .rect_filled(r, 4.0, ui.visuals().faint_bg_color);
                                }
                            }
                            ui.vertical(|ui| {
                                ui.strong(name);
                                if !title.is_empty() {
                                    ui.label(title);
                                }
                                let tags: Vec<String> =
                                    tags.iter().map(|t| format!("#{t}")).collect();
                                ui.label(
                                    egui::RichText::new(format!(
                                        "{nodes} nodes {}",
                                        tags.join(" ")
                                    ))
                                    .weak(),
                                );
                            });
                        })
                        .response
                        .on_hover_text("Drag onto the graph to insert it as a subgraph node");
                    });
                    ui.horizontal(|ui| {
                        ui.add_space(THUMB + 8.0);
                        if ui.button("Open").clicked() {
                            cmds.push(cmd(LibraryCommand::OpenRecipe(name.clone())));
                        }
                        if ui.button("Insert as subgraph").clicked() {
                            cmds.push(cmd(LibraryCommand::Insert {
                                name: name.clone(),
                                pos: None,
                            }));
                        }
                    });
                    ui.separator();
                }
                if !problems.is_empty() {
                    ui.collapsing(
                        format!("{} files could not be used", problems.len()),
                        |ui| {
                            for (p, why) in &problems {
                                ui.label(format!("{}: {why}", p.display()));
                            }
                        },
                    );
                }
            });
        ui.separator();
        ui.strong("Save current graph to library");
        ui.horizontal(|ui| {
            ui.label("Name");
            ui.add(
                egui::TextEdit::singleline(&mut self.save_name)
                    .hint_text("metal/scratch")
                    .desired_width(160.0),
            );
            ui.label("Tags");
            ui.add(
                egui::TextEdit::singleline(&mut self.save_tags)
                    .hint_text("comma separated")
                    .desired_width(120.0),
            );
        });
        if ui
            .add_enabled(
                !self.save_name.trim().is_empty(),
                egui::Button::new("Save to library"),
            )
            .clicked()
        {
            let tags = self
                .save_tags
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(String::from)
                .collect();
            cmds.push(cmd(LibraryCommand::SaveCurrent {
                name: self.save_name.trim().to_string(),
                tags,
            }));
        }
    }
}

impl StudioApp {
    /// A recipe dragged from the library and released over the canvas: insert it there.
    pub(super) fn library_drop(&mut self, ctx: &egui::Context) -> Option<AppCommand> {
        let (drag, pos) = self.canvas_drop::<RecipeDrag>(ctx)?;
        Some(AppCommand::Library(LibraryCommand::Insert {
            name: drag.0.clone(),
            pos: Some(pos),
        }))
    }

    /// A payload of type `P` dragged from a window and released over the canvas (not over a
    /// window on it): the payload and where it was dropped, in graph coordinates. The payload
    /// is taken only on release, so a drag still in flight stays with its source.
    pub(super) fn canvas_drop<P: std::any::Any + Send + Sync>(
        &self,
        ctx: &egui::Context,
    ) -> Option<(std::sync::Arc<P>, egui::Pos2)> {
        if !egui::DragAndDrop::has_payload_of_type::<P>(ctx)
            || !ctx.input(|i| i.pointer.any_released())
        {
            return None;
        }
        let pos = ctx.input(|i| i.pointer.interact_pos())?;
        let over_canvas = self.graph_rect.contains(pos)
            && ctx
                .layer_id_at(pos)
                .is_none_or(|l| l.order == egui::Order::Background);
        let drag = egui::DragAndDrop::take_payload::<P>(ctx)?;
        over_canvas.then(|| (drag, self.graph_transform.inverse() * pos))
    }

    /// Carries out a [`LibraryCommand`].
    pub(super) fn apply_library(&mut self, ctx: &egui::Context, cmd: LibraryCommand) {
        if self.library.library.is_none()
            || matches!(cmd, LibraryCommand::Open | LibraryCommand::Rescan)
        {
            self.library.rescan();
        }
        match cmd {
            LibraryCommand::Open => self.library.open = true,
            LibraryCommand::Rescan => {}
            LibraryCommand::OpenRecipe(name) => {
                match self.library.library.as_ref().and_then(|l| l.get(&name)) {
                    Some(e) => {
                        let path = e.path.clone();
                        self.apply(ctx, AppCommand::Open(path));
                    }
                    None => self.library.message = Some((false, format!("no recipe \"{name}\""))),
                }
            }
            LibraryCommand::Insert { name, pos } => {
                let pos = pos
                    .unwrap_or_else(|| self.graph_transform.inverse() * self.graph_rect.center());
                // Into the graph the canvas shows (the top level, or the open subgraph).
                let mut view = self.doc.view_doc(&self.catalogue);
                let inserted = self
                    .library
                    .library
                    .as_ref()
                    .ok_or_else(|| "the library is not scanned".to_string())
                    .and_then(|l| l.load(&name).map_err(|e| e.to_string()))
                    .and_then(|recipe| {
                        recipes::insert_as_subgraph(
                            &mut view,
                            &recipe,
                            &name,
                            [pos.x.round(), pos.y.round()],
                            &self.catalogue,
                        )
                        .map_err(|e| e.to_string())
                    });
                match inserted {
                    Ok(id) => {
                        // One undoable edit (`commit_edits` records it this frame). The view
                        // carries definitions and assets; the recipe's model references are
                        // the document's.
                        for m in &view.models {
                            if !self.doc.extra.models.contains(m) {
                                self.doc.extra.models.push(m.clone());
                            }
                        }
                        self.doc.set_view(&view, &self.catalogue);
                        self.inspected = Some(id.clone());
                        self.library.message = Some((true, format!("inserted {name} as {id}")));
                        self.notify(ctx, format!("inserted recipe {name} as {id}"));
                    }
                    Err(e) => self.library.message = Some((false, e)),
                }
            }
            LibraryCommand::SaveCurrent { name, tags } => {
                let doc = self.doc.to_doc(&self.catalogue);
                match recipes::add_recipe(&doc, &name, &tags) {
                    Ok(path) => {
                        self.library.message =
                            Some((true, format!("saved {name} to {}", path.display())));
                        self.library.save_name.clear();
                        self.library.save_tags.clear();
                        self.library.rescan();
                    }
                    Err(e) => self.library.message = Some((false, e.to_string())),
                }
            }
        }
    }
}
