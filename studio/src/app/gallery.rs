//! Gallery and history: runs and outputs from the store with lazily loaded thumbnails,
//! filters, a full-size viewer with a before/after slider, bookmarks, delete, export, and the
//! selected output's details ([`super::output_details`]) in a window beside them.

use std::collections::{BTreeSet, HashMap, HashSet};

use egui::{Color32, Rect, TextureHandle, TextureOptions, Vec2};
use engine::store::{OutputRecord, RunRecord, Store};

use super::output_details::{details_ui, OutputDetails};
use super::painter::image_to_color;
use super::AppCommand;

/// How far back the gallery looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Since {
    All,
    Day,
    Week,
}

/// The gallery's state: what was read from the store, filters, thumbnails, the open viewer.
pub struct Gallery {
    pub runs: Vec<(u64, RunRecord)>,
    pub outputs: Vec<(u64, OutputRecord)>,
    pub bookmarks: HashSet<u64>,
    pub filter_graph: String,
    pub only_bookmarked: bool,
    pub since: Since,
    pub selected: BTreeSet<u64>,
    thumbs: HashMap<u64, Option<TextureHandle>>,
    pub viewer: Option<OutputViewer>,
    pub error: Option<String>,
    /// The details of the one selected output (read when the selection changes).
    pub details: Option<OutputDetails>,
    /// The outputs "Compare with…" offers the details' output, as (id, label).
    compare_choices: Vec<(u64, String)>,
}

/// A full-size output with zoom and a before/after compare slider.
pub struct OutputViewer {
    pub id: u64,
    pub image: TextureHandle,
    pub before: Option<(String, TextureHandle)>,
    pub split: f32,
    pub zoom: f32,
}

const THUMB: u32 = 128;
const THUMBS_PER_FRAME: usize = 4;
/// The most outputs "Compare with…" offers (the latest ones).
const COMPARE_CHOICES: usize = 50;

impl Default for Gallery {
    fn default() -> Self {
        Gallery {
            runs: Vec::new(),
            outputs: Vec::new(),
            bookmarks: HashSet::new(),
            filter_graph: String::new(),
            only_bookmarked: false,
            since: Since::All,
            selected: BTreeSet::new(),
            thumbs: HashMap::new(),
            viewer: None,
            error: None,
            details: None,
            compare_choices: Vec::new(),
        }
    }
}

impl Gallery {
    /// Re-reads runs, outputs and bookmarks from the store.
    pub fn refresh(&mut self, store: &Store) {
        let read = || -> engine::Result<_> {
            Ok((store.runs()?, store.outputs(None)?, store.bookmarks()?))
        };
        match read() {
            Ok((runs, outputs, bookmarks)) => {
                self.runs = runs;
                self.outputs = outputs;
                self.bookmarks = bookmarks.into_iter().map(|(id, _)| id).collect();
                let live: HashSet<u64> = self.outputs.iter().map(|(id, _)| *id).collect();
                self.thumbs.retain(|id, _| live.contains(id));
                self.selected.retain(|id| live.contains(id));
                // Read again: a refresh may follow a delete, or the run's record may have grown.
                self.details = None;
                self.error = None;
            }
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    fn visible(&self) -> Vec<&(u64, OutputRecord)> {
        let now = engine::store::now_ms();
        let horizon = match self.since {
            Since::All => 0,
            Since::Day => now.saturating_sub(86_400_000),
            Since::Week => now.saturating_sub(7 * 86_400_000),
        };
        let graph_of: HashMap<u64, &str> = self
            .runs
            .iter()
            .map(|(id, r)| (*id, r.graph_name.as_str()))
            .collect();
        let needle = self.filter_graph.to_ascii_lowercase();
        self.outputs
            .iter()
            .rev()
            .filter(|(id, o)| {
                o.created_ms >= horizon
                    && (!self.only_bookmarked || self.bookmarks.contains(id))
                    && (needle.is_empty()
                        || graph_of
                            .get(&o.run_id)
                            .is_some_and(|g| g.to_ascii_lowercase().contains(&needle)))
            })
            .collect()
    }

    fn thumb(
        &mut self,
        ctx: &egui::Context,
        store: &Store,
        id: u64,
        budget: &mut usize,
    ) -> Option<TextureHandle> {
        if let Some(t) = self.thumbs.get(&id) {
            return t.clone();
        }
        if *budget == 0 {
            return None;
        }
        *budget -= 1;
        let tex = store
            .output_png(id)
            .ok()
            .flatten()
            .and_then(|png| engine::codec::decode_image(&png, "output").ok())
            .map(|img| {
                let s = (THUMB as f32 / img.width.max(img.height) as f32).min(1.0);
                let small = engine::ops::resize_image(
                    &img,
                    ((img.width as f32 * s) as u32).max(1),
                    ((img.height as f32 * s) as u32).max(1),
                    engine::ops::Filter::Bilinear,
                );
                ctx.load_texture(
                    format!("thumb-{id}"),
                    image_to_color(&small),
                    TextureOptions::LINEAR,
                )
            });
        self.thumbs.insert(id, tex.clone());
        tex
    }

    /// Opens the viewer on an output; "before" is the recipe's first input image when its file
    /// is still there, else the output's mask.
    pub fn open(&mut self, ctx: &egui::Context, store: &Store, id: u64) {
        let Some((_, rec)) = self.outputs.iter().find(|(oid, _)| *oid == id) else {
            return;
        };
        let load = |png: Vec<u8>, name: &str| {
            engine::codec::decode_image(&png, name).ok().map(|img| {
                ctx.load_texture(
                    name.to_string(),
                    image_to_color(&img),
                    TextureOptions::LINEAR,
                )
            })
        };
        let Some(image) = store
            .output_png(id)
            .ok()
            .flatten()
            .and_then(|b| load(b, "viewer-image"))
        else {
            self.error = Some(format!("output {id} has no image in the store"));
            return;
        };
        let run = self
            .runs
            .iter()
            .find(|(rid, _)| *rid == rec.run_id)
            .map(|(_, r)| r);
        let before_file = run.and_then(first_input_file);
        let before = before_file
            .and_then(|p| {
                std::fs::read(&p)
                    .ok()
                    .and_then(|b| load(b, "viewer-before"))
                    .map(|t| (format!("input {}", p.display()), t))
            })
            .or_else(|| {
                store
                    .output_mask_png(id)
                    .ok()
                    .flatten()
                    .and_then(|b| load(b, "viewer-mask"))
                    .map(|t| ("mask".to_string(), t))
            });
        self.viewer = Some(OutputViewer {
            id,
            image,
            before,
            split: 0.5,
            zoom: 1.0,
        });
    }

    /// Opens the viewer on output `id` with output `with` as its "before".
    pub fn compare(&mut self, ctx: &egui::Context, store: &Store, id: u64, with: u64) {
        self.open(ctx, store, id);
        let Some(v) = &mut self.viewer else { return };
        let before = store
            .output_png(with)
            .ok()
            .flatten()
            .and_then(|png| engine::codec::decode_image(&png, "compare").ok());
        match before {
            Some(img) => {
                let tex = ctx.load_texture(
                    "viewer-compare",
                    image_to_color(&img),
                    TextureOptions::LINEAR,
                );
                v.before = Some((format!("output {with}"), tex));
            }
            None => self.error = Some(format!("output {with} has no image in the store")),
        }
    }

    /// The details of the one selected output, read again when the selection changed.
    fn sync_details(&mut self, store: &Store) {
        let one = match self.selected.len() {
            1 => self.selected.first().copied(),
            _ => None,
        };
        let Some(id) = one else {
            self.details = None;
            return;
        };
        if self.details.as_ref().is_some_and(|d| d.id == id) {
            return;
        }
        let Some((_, rec)) = self.outputs.iter().find(|(o, _)| *o == id) else {
            self.details = None;
            return;
        };
        let run = self
            .runs
            .iter()
            .find(|(r, _)| *r == rec.run_id)
            .map(|(_, r)| r);
        self.details = Some(OutputDetails::load(store, id, rec, run));
        self.compare_choices = self
            .outputs
            .iter()
            .rev()
            .filter(|(o, _)| *o != id)
            .take(COMPARE_CHOICES)
            .map(|(o, r)| {
                (
                    *o,
                    format!("output {o} · run #{} · seed {}", r.run_id, r.seed),
                )
            })
            .collect();
    }

    /// The gallery panel. Store writes (bookmarks, deletes, exports) go out as commands.
    pub fn gallery_ui(&mut self, ui: &mut egui::Ui, store: Option<&Store>) -> Vec<AppCommand> {
        let mut cmds = Vec::new();
        ui.horizontal_wrapped(|ui| {
            ui.add(
                egui::TextEdit::singleline(&mut self.filter_graph)
                    .hint_text("filter by graph")
                    .desired_width(120.0),
            );
            ui.checkbox(&mut self.only_bookmarked, "★ only");
            egui::ComboBox::from_id_salt("since")
                .selected_text(match self.since {
                    Since::All => "any date",
                    Since::Day => "last 24 h",
                    Since::Week => "last 7 days",
                })
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.since, Since::All, "any date");
                    ui.selectable_value(&mut self.since, Since::Day, "last 24 h");
                    ui.selectable_value(&mut self.since, Since::Week, "last 7 days");
                });
            if ui
                .button("⟳")
                .on_hover_text("Refresh from the store")
                .clicked()
            {
                cmds.push(AppCommand::RefreshGallery);
            }
        });
        ui.horizontal(|ui| {
            ui.label(format!(
                "{} runs, {} outputs, {} selected",
                self.runs.len(),
                self.outputs.len(),
                self.selected.len()
            ));
            if ui
                .add_enabled(!self.selected.is_empty(), egui::Button::new("Export…"))
                .clicked()
            {
                cmds.push(AppCommand::ExportOutputs(
                    self.selected.iter().copied().collect(),
                ));
            }
            if ui
                .add_enabled(!self.selected.is_empty(), egui::Button::new("Delete"))
                .clicked()
            {
                cmds.push(AppCommand::DeleteOutputs(
                    self.selected.iter().copied().collect(),
                ));
            }
        });
        if let Some(e) = &self.error {
            ui.colored_label(Color32::LIGHT_RED, e);
        }
        let Some(store) = store else {
            ui.label("no store open");
            return cmds;
        };
        self.sync_details(store);
        if let Some(d) = &self.details {
            // A window beside the gallery: the gallery panel is too low for a recipe's worth
            // of parameters. Closing it clears the selection.
            let mut open = true;
            let screen = ui.ctx().content_rect();
            egui::Window::new("Output details")
                .id(egui::Id::new("output-details"))
                .open(&mut open)
                .default_pos(screen.right_bottom() - Vec2::new(470.0, 620.0))
                .default_size([440.0, 560.0])
                .show(ui.ctx(), |ui| {
                    egui::ScrollArea::vertical()
                        .id_salt("output-details-scroll")
                        .show(ui, |ui| {
                            cmds.extend(details_ui(ui, d, &self.compare_choices))
                        });
                });
            if !open {
                self.selected.clear();
            }
        }
        let visible: Vec<(u64, OutputRecord)> = self.visible().into_iter().cloned().collect();
        let mut budget = THUMBS_PER_FRAME;
        egui::ScrollArea::vertical()
            .id_salt("gallery-scroll")
            .show(ui, |ui| {
                ui.horizontal_wrapped(|ui| {
                    for (id, rec) in &visible {
                        let tex = self.thumb(ui.ctx(), store, *id, &mut budget);
                        ui.vertical(|ui| {
                            let size = Vec2::splat(THUMB as f32);
                            let selected = self.selected.contains(id);
                            let r = match &tex {
                                Some(t) => ui.add(
                                    egui::Image::new(t)
                                        .fit_to_exact_size(size)
                                        .sense(egui::Sense::click())
                                        .alt_text(format!("output {id}")),
                                ),
                                None => ui.add_sized(size, egui::Button::new("…")),
                            };
                            let r = r.on_hover_text(format!(
                                "output {id}\nrun {} · item {} · seed {}\n{}",
                                rec.run_id, rec.item, rec.seed, rec.path
                            ));
                            if selected {
                                ui.painter().rect_stroke(
                                    r.rect,
                                    2.0,
                                    egui::Stroke::new(2.0, Color32::YELLOW),
                                    egui::StrokeKind::Outside,
                                );
                            }
                            if r.clicked() {
                                if ui.input(|i| i.modifiers.command || i.modifiers.shift) {
                                    if !self.selected.remove(id) {
                                        self.selected.insert(*id);
                                    }
                                } else {
                                    self.selected.clear();
                                    self.selected.insert(*id);
                                }
                            }
                            if r.double_clicked() {
                                cmds.push(AppCommand::OpenOutput(*id));
                            }
                            ui.horizontal(|ui| {
                                let star = self.bookmarks.contains(id);
                                if ui
                                    .small_button(if star { "★" } else { "☆" })
                                    .on_hover_text("Bookmark")
                                    .clicked()
                                {
                                    cmds.push(AppCommand::Bookmark {
                                        output: *id,
                                        on: !star,
                                    });
                                }
                                if ui.small_button("open").on_hover_text("Open").clicked() {
                                    cmds.push(AppCommand::OpenOutput(*id));
                                }
                                if ui
                                    .small_button("↺")
                                    .on_hover_text("Restore the graph that made it")
                                    .clicked()
                                {
                                    cmds.push(AppCommand::RestoreGraph(rec.run_id));
                                }
                            });
                        });
                    }
                });
                ui.separator();
                ui.heading("History");
                for (id, run) in self.runs.iter().rev() {
                    let status = run.effective_status();
                    let color = match status {
                        engine::RunStatus::Succeeded => Color32::from_rgb(120, 220, 120),
                        engine::RunStatus::Failed | engine::RunStatus::Interrupted => {
                            Color32::from_rgb(255, 110, 110)
                        }
                        _ => Color32::GRAY,
                    };
                    ui.horizontal(|ui| {
                        ui.colored_label(color, status.name());
                        ui.label(format!(
                            "#{id} {} · {} · seed {} · {} items",
                            run.graph_name,
                            engine::store::format_utc(run.started_ms),
                            run.seed,
                            run.items
                        ));
                        if ui
                            .small_button("↺")
                            .on_hover_text("Restore this run's graph")
                            .clicked()
                        {
                            cmds.push(AppCommand::RestoreGraph(*id));
                        }
                    });
                    if let Some(e) = &run.error {
                        ui.colored_label(Color32::from_rgb(255, 140, 140), e);
                    }
                }
            });
        if budget == 0 {
            ui.ctx().request_repaint();
        }
        cmds
    }

    /// The full-size viewer window, if open.
    pub fn viewer_ui(&mut self, ctx: &egui::Context) {
        let mut open = self.viewer.is_some();
        let Some(v) = &mut self.viewer else { return };
        egui::Window::new(format!("Output {}", v.id))
            .open(&mut open)
            .default_size([720.0, 640.0])
            .show(ctx, |ui| {
                ui.horizontal(|ui| {
                    ui.add(
                        egui::Slider::new(&mut v.zoom, 0.1..=8.0)
                            .logarithmic(true)
                            .text("zoom"),
                    );
                    if let Some((name, _)) = &v.before {
                        ui.add(
                            egui::Slider::new(&mut v.split, 0.0..=1.0)
                                .text(format!("before ({name}) / after")),
                        );
                    }
                });
                egui::ScrollArea::both().show(ui, |ui| {
                    let size = v.image.size_vec2() * v.zoom;
                    let (rect, _) = ui.allocate_exact_size(size, egui::Sense::hover());
                    let p = ui.painter_at(rect);
                    let uv = Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0));
                    p.image(v.image.id(), rect, uv, Color32::WHITE);
                    if let Some((_, before)) = &v.before {
                        // Left of the split shows "before".
                        let x = rect.min.x + rect.width() * v.split;
                        let left = Rect::from_min_max(rect.min, egui::pos2(x, rect.max.y));
                        let uv_left = Rect::from_min_max(uv.min, egui::pos2(v.split, 1.0));
                        p.image(before.id(), left, uv_left, Color32::WHITE);
                        p.line_segment(
                            [egui::pos2(x, rect.min.y), egui::pos2(x, rect.max.y)],
                            egui::Stroke::new(2.0, Color32::YELLOW),
                        );
                    }
                });
            });
        if !open {
            self.viewer = None;
        }
    }
}

/// The first LoadImage file of a run's graph, resolved against the graph file's folder.
fn first_input_file(run: &RunRecord) -> Option<std::path::PathBuf> {
    let doc = nodes::GraphDoc::from_json(&run.graph_json).ok()?;
    let base = run
        .graph_path
        .as_deref()
        .and_then(|p| std::path::Path::new(p).parent())
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    doc.nodes
        .values()
        .filter(|n| n.kind == "LoadImage")
        .filter_map(|n| n.params.get("source")?.as_str().map(str::to_string))
        .find(|s| !s.starts_with("asset:"))
        .map(|s| engine::exec::resolve_path(&base, &s))
        .filter(|p| p.is_file())
}
