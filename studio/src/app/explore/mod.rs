//! The Explore window: every catalogue item on a 2D map (pan, zoom, box and lasso selection,
//! colour by a tag or a field, a thumbnail on hover) or a 3D one you orbit, the selection as a
//! thumbnail grid, and actions on it (tag, bookmark, open the recipe, export, find similar,
//! near-duplicates, uniqueness, coverage).
//!
//! The app gives the window an [`ExploreView`] and carries out the [`ExploreCommand`]s that
//! [`ExplorePanel::explore_ui`] returns; nothing here runs engine code (docs/ARCHITECTURE.md
//! §10). Thumbnails arrive the same way: the window asks with
//! [`ExploreCommand::WantThumbnails`] and the app calls [`ExplorePanel::insert_thumbnail`].

mod actions;
mod apply;
pub mod colors;
pub mod grid;
pub mod jobs;
pub mod orbit;
pub mod plot;
pub mod scatter;
pub mod view;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use egui::{Color32, Mesh, PointerButton, Pos2, Rect, Sense, TextureHandle, TextureOptions};
use engine::dataset::Format;

pub use plot::{Mode, Tool};
pub use scatter::Camera2;
pub use view::{Column, CoverageReadout, ExploreCommand, ExploreView, MapMethod};

use colors::Legend;
use grid::GridState;
use orbit::{Cloud, Orbit};
use plot::{Gesture, MeshKey, Selection};
use scatter::GridIndex;

/// Pointer distance (points) within which a point counts as hovered or clicked.
const PICK_RADIUS: f32 = 6.0;

/// The Explore window's state.
pub struct ExplorePanel {
    /// Whether the window is shown.
    pub open: bool,
    view: ExploreView,
    index: GridIndex,
    cloud: Option<Cloud>,
    selection: Selection,
    grid: GridState,
    color_by: Option<usize>,
    colors: Vec<Color32>,
    colors_generation: u64,
    legend: Legend,
    hovered: Option<usize>,
    /// The query text (Enter runs it).
    pub query: String,
    /// The tag to add or remove.
    pub tag_text: String,
    /// Export: folder and format.
    pub export_dir: String,
    pub export_format: Format,
    /// Find similar: how many neighbours.
    pub k: usize,
    /// Near-duplicates: the cosine similarity threshold.
    pub threshold: f32,
    /// The map method to recompute with.
    pub method: MapMethod,
    /// Show the 3D map.
    pub three_d: bool,
    /// The selection gesture's shape.
    pub tool: Tool,
    /// Point radius (points).
    pub point_radius: f32,
    /// Coverage: the real and the synthetic set's queries.
    pub coverage_real: String,
    pub coverage_synthetic: String,
    camera: Camera2,
    orbit: Orbit,
    fit_pending: bool,
    gesture: Option<Gesture>,
    screen: Vec<Pos2>,
    order: Option<Vec<u32>>,
    screen_key: Option<(Rect, [f32; 4], bool)>,
    mesh: Option<(MeshKey, Arc<Mesh>)>,
    dot: Option<TextureHandle>,
    thumbs: HashMap<u64, TextureHandle>,
    requested: HashSet<u64>,
    plot_rect: Rect,
}

impl Default for ExplorePanel {
    fn default() -> Self {
        ExplorePanel {
            open: false,
            view: ExploreView::default(),
            index: GridIndex::default(),
            cloud: None,
            selection: Selection::new(0),
            grid: GridState::default(),
            color_by: None,
            colors: Vec::new(),
            colors_generation: 0,
            legend: Legend::None,
            hovered: None,
            query: String::new(),
            tag_text: String::new(),
            export_dir: String::new(),
            export_format: Format::Folder,
            k: 12,
            threshold: 0.95,
            method: MapMethod::Pca,
            three_d: false,
            tool: Tool::Box,
            point_radius: 3.0,
            coverage_real: "source:imported".into(),
            coverage_synthetic: "source:generated".into(),
            camera: Camera2::default(),
            orbit: Orbit::default(),
            fit_pending: true,
            gesture: None,
            screen: Vec::new(),
            order: None,
            screen_key: None,
            mesh: None,
            dot: None,
            thumbs: HashMap::new(),
            requested: HashSet::new(),
            plot_rect: Rect::NOTHING,
        }
    }
}

impl ExplorePanel {
    /// Shows `view`. The selection keeps the items still present (by id), the colouring keeps
    /// its column when one of the same name exists; the camera fits the new map.
    pub fn set_view(&mut self, view: ExploreView) -> Result<(), String> {
        view.check()?;
        let kept = self.selected_ids();
        let color_name = self.color_column_name().map(str::to_string);
        self.index = GridIndex::build(&view.xy);
        self.cloud = view.xyz.as_deref().map(Cloud::new);
        self.method = view.method;
        self.view = view;
        self.selection = Selection::new(self.view.len());
        self.grid = GridState::default();
        self.hovered = None;
        self.gesture = None;
        self.select_ids(&kept);
        self.color_by = color_name.and_then(|n| self.column_index(&n));
        self.recolor();
        self.fit_pending = true;
        self.screen_key = None;
        self.mesh = None;
        Ok(())
    }

    /// The view shown.
    pub fn view(&self) -> &ExploreView {
        &self.view
    }

    /// Selected item ids, in selection order.
    pub fn selected_ids(&self) -> Vec<u64> {
        self.selection
            .indices()
            .iter()
            .map(|i| self.view.ids[*i])
            .collect()
    }

    /// Selects exactly these ids (in this order; unknown ids are ignored), e.g. a query's or
    /// a find-similar result.
    pub fn select_ids(&mut self, ids: &[u64]) {
        let pos: HashMap<u64, usize> = self
            .view
            .ids
            .iter()
            .enumerate()
            .map(|(i, id)| (*id, i))
            .collect();
        self.selection.apply(
            ids.iter().filter_map(|id| pos.get(id).copied()),
            Mode::Replace,
        );
        self.grid.picked.clear();
    }

    /// Colours points by the column named `name` (`None`: one colour). False when there is no
    /// such column.
    pub fn set_color_by(&mut self, name: Option<&str>) -> bool {
        let idx = match name {
            None => None,
            Some(n) => match self.column_index(n) {
                Some(i) => Some(i),
                None => return false,
            },
        };
        self.color_by = idx;
        self.recolor();
        true
    }

    /// The column points are coloured by.
    pub fn color_column_name(&self) -> Option<&str> {
        self.color_by
            .and_then(|i| self.view.columns.get(i))
            .map(|(n, _)| n.as_str())
    }

    /// Every point's colour.
    pub fn colors(&self) -> &[Color32] {
        &self.colors
    }

    /// Puts a thumbnail in the cache (the answer to [`ExploreCommand::WantThumbnails`]).
    pub fn insert_thumbnail(&mut self, id: u64, texture: TextureHandle) {
        self.thumbs.insert(id, texture);
    }

    /// The cached thumbnail of `id`, if any.
    pub fn thumbnail(&self, id: u64) -> Option<&TextureHandle> {
        self.thumbs.get(&id)
    }

    /// Records that no thumbnail exists for `id` (it is not asked for again).
    pub fn no_thumbnail(&mut self, id: u64) {
        self.requested.insert(id);
    }

    /// Sets the export folder (the answer to [`ExploreCommand::PickExportDir`]).
    pub fn set_export_dir(&mut self, dir: &Path) {
        self.export_dir = dir.display().to_string();
    }

    /// The 2D camera and the map's screen rectangle of the last frame (tests map screen
    /// positions to map coordinates with them).
    pub fn camera(&self) -> (Camera2, Rect) {
        (self.camera, self.plot_rect)
    }

    /// The 3D camera.
    pub fn orbit(&self) -> Orbit {
        self.orbit
    }

    /// The hovered item (index into the view).
    pub fn hovered(&self) -> Option<usize> {
        self.hovered
    }

    fn column_index(&self, name: &str) -> Option<usize> {
        self.view.columns.iter().position(|(n, _)| n == name)
    }

    fn recolor(&mut self) {
        let col = self
            .color_by
            .and_then(|i| self.view.columns.get(i))
            .map(|(_, c)| c);
        (self.colors, self.legend) = colors::colors_for(self.view.len(), col);
        self.colors_generation += 1;
    }

    /// The items the actions apply to: those picked in the grid, else the whole selection.
    fn targets(&self) -> Vec<usize> {
        if self.grid.picked.is_empty() {
            self.selection.indices().to_vec()
        } else {
            self.grid.picked.iter().copied().collect()
        }
    }

    /// The whole window's contents, one frame.
    pub fn explore_ui(&mut self, ui: &mut egui::Ui) -> Vec<ExploreCommand> {
        let mut cmds = Vec::new();
        if self.dot.is_none() {
            self.dot = Some(ui.ctx().load_texture(
                "explore-dot",
                plot::dot_image(),
                TextureOptions::LINEAR,
            ));
        }
        self.toolbar_ui(ui, &mut cmds);
        egui::Panel::right("explore-actions")
            .resizable(true)
            .default_size(300.0)
            .min_size(300.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical()
                    .id_salt("explore-actions-scroll")
                    .show(ui, |ui| self.actions_ui(ui, &mut cmds));
            });
        let mut missing = Vec::new();
        egui::Panel::bottom("explore-grid")
            .resizable(true)
            .default_size(240.0)
            .min_size(240.0)
            .show(ui, |ui| {
                ui.horizontal(|ui| {
                    ui.strong(format!("Selection: {}", self.selection.len()));
                    if !self.grid.picked.is_empty() {
                        ui.label(format!("({} picked)", self.grid.picked.len()));
                        if ui.button("Keep picked").clicked() {
                            let keep: Vec<usize> = self.grid.picked.iter().copied().collect();
                            self.selection.apply(keep, Mode::Replace);
                            self.grid.picked.clear();
                        }
                    }
                    if !self.selection.is_empty() && ui.button("Clear").clicked() {
                        self.selection.clear();
                        self.grid = GridState::default();
                    }
                });
                let items = self.selection.indices().to_vec();
                missing = grid::grid_ui(
                    ui,
                    &self.view,
                    &items,
                    &self.colors,
                    &self.thumbs,
                    &mut self.grid,
                );
            });
        egui::CentralPanel::default().show(ui, |ui| self.map_ui(ui));
        if let Some(i) = self.hovered {
            missing.push(self.view.ids[i]);
        }
        let want: Vec<u64> = missing
            .into_iter()
            .filter(|id| !self.thumbs.contains_key(id) && self.requested.insert(*id))
            .collect();
        if !want.is_empty() {
            cmds.push(ExploreCommand::WantThumbnails(want));
        }
        cmds
    }

    fn map_ui(&mut self, ui: &mut egui::Ui) {
        let (rect, resp) = ui.allocate_exact_size(ui.available_size(), Sense::click_and_drag());
        resp.widget_info(|| egui::WidgetInfo::labeled(egui::WidgetType::Other, true, "map"));
        self.plot_rect = rect;
        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, 4.0, ui.visuals().extreme_bg_color);
        if self.view.is_empty() {
            painter.text(
                rect.center(),
                egui::Align2::CENTER_CENTER,
                "No items: run a query, or import a dataset (defect-studio dataset import).",
                egui::FontId::proportional(14.0),
                ui.visuals().weak_text_color(),
            );
            return;
        }
        let three_d = self.three_d && self.cloud.is_some();
        if self.fit_pending {
            self.camera = Camera2::fit(&self.view.xy, rect);
            self.orbit = Orbit::default();
            self.fit_pending = false;
        }
        // Zoom: the wheel (or a pinch) over the map.
        if resp.hovered() {
            let (scroll, pinch, at) = ui.input(|i| {
                (
                    i.smooth_scroll_delta.y,
                    i.zoom_delta(),
                    i.pointer.hover_pos(),
                )
            });
            let factor = (scroll * 0.0025).exp() * pinch;
            if factor != 1.0 {
                if three_d {
                    self.orbit.zoom = (self.orbit.zoom * factor).clamp(0.05, 50.0);
                } else if let Some(at) = at {
                    self.camera.zoom(rect, at, factor);
                }
            }
        }
        // Pan (2D) or rotate (3D); the other button selects.
        let select_button = if three_d {
            PointerButton::Secondary
        } else {
            PointerButton::Primary
        };
        let delta = resp.drag_delta();
        if three_d && resp.dragged_by(PointerButton::Primary) {
            self.orbit.rotate(delta.x, delta.y);
        } else if !three_d
            && (resp.dragged_by(PointerButton::Secondary) || resp.dragged_by(PointerButton::Middle))
        {
            self.camera.pan(delta);
        }
        self.project(rect, three_d);
        let modifiers = ui.input(|i| i.modifiers);
        if resp.drag_started_by(select_button) {
            let start = ui
                .input(|i| i.pointer.press_origin())
                .or(resp.interact_pointer_pos());
            self.gesture = start.map(|p| Gesture {
                tool: self.tool,
                points: vec![p],
                modifiers,
            });
        }
        if let Some(g) = &mut self.gesture {
            if let Some(p) = resp
                .interact_pointer_pos()
                .or(ui.input(|i| i.pointer.latest_pos()))
            {
                if g.points.last().is_none_or(|l| l.distance(p) >= 2.0) {
                    g.points.push(p);
                }
            }
            g.modifiers = egui::Modifiers {
                shift: g.modifiers.shift || modifiers.shift,
                ctrl: g.modifiers.ctrl || modifiers.ctrl,
                command: g.modifiers.command || modifiers.command,
                ..g.modifiers
            };
        }
        if resp.drag_stopped_by(select_button) || (self.gesture.is_some() && !resp.dragged()) {
            if let Some(g) = self.gesture.take() {
                let hits = g.hits(&self.screen);
                self.selection
                    .apply(hits, Mode::from_modifiers(g.modifiers));
                self.grid.picked.clear();
            }
        }
        // Hover and click.
        self.hovered = resp.hover_pos().and_then(|p| self.pick(rect, p, three_d));
        if resp.clicked() {
            match self.hovered {
                Some(i) => {
                    self.selection.apply([i], Mode::from_modifiers(modifiers));
                    self.grid.inspected = Some(i);
                }
                None if Mode::from_modifiers(modifiers) == Mode::Replace => self.selection.clear(),
                None => {}
            }
        }
        if resp.double_clicked() && self.hovered.is_none() {
            self.fit_pending = true;
        }
        self.paint(ui, &painter, rect, three_d);
    }

    /// Updates the screen positions (and the 3D drawing order) when the camera or the
    /// rectangle changed.
    fn project(&mut self, rect: Rect, three_d: bool) {
        let cam = if three_d {
            [self.orbit.yaw, self.orbit.pitch, self.orbit.zoom, 0.0]
        } else {
            [
                self.camera.center[0],
                self.camera.center[1],
                self.camera.scale,
                1.0,
            ]
        };
        let key = (rect, cam, three_d);
        if self.screen_key == Some(key) {
            return;
        }
        match (&self.cloud, three_d) {
            (Some(cloud), true) => {
                let (screen, order) = self.orbit.project_all(rect, cloud);
                self.screen = screen;
                self.order = Some(order);
            }
            _ => {
                let cam = self.camera;
                self.screen = self
                    .view
                    .xy
                    .iter()
                    .map(|p| cam.to_screen(rect, *p))
                    .collect();
                self.order = None;
            }
        }
        self.screen_key = Some(key);
    }

    /// The point under screen position `p`, if any: through the grid index in 2D, a scan of
    /// the projected points in 3D (nearest first; in 3D the nearer of equals).
    fn pick(&self, rect: Rect, p: Pos2, three_d: bool) -> Option<usize> {
        if !rect.contains(p) {
            return None;
        }
        if three_d {
            let mut best: Option<(usize, f32)> = None;
            for (i, s) in self.screen.iter().enumerate() {
                let d = s.distance_sq(p);
                if d <= PICK_RADIUS * PICK_RADIUS && best.is_none_or(|(_, b)| d < b) {
                    best = Some((i, d));
                }
            }
            best.map(|(i, _)| i)
        } else {
            let m = self.camera.to_map(rect, p);
            self.index
                .nearest(&self.view.xy, m, PICK_RADIUS / self.camera.scale)
        }
    }

    fn paint(&mut self, ui: &egui::Ui, painter: &egui::Painter, rect: Rect, three_d: bool) {
        if three_d {
            let names = ["x", "y", "z"];
            for (k, (a, b)) in self.orbit.axes(rect).into_iter().enumerate() {
                let c = ui.visuals().weak_text_color();
                painter.line_segment([a, b], egui::Stroke::new(1.0, c));
                painter.text(
                    b,
                    egui::Align2::LEFT_BOTTOM,
                    names[k],
                    egui::FontId::monospace(11.0),
                    c,
                );
            }
        }
        let Some(dot) = self.dot.as_ref().map(|d| d.id()) else {
            return;
        };
        let key = MeshKey {
            rect,
            camera: self.screen_key.map(|k| k.1).unwrap_or_default(),
            radius: self.point_radius,
            colors: self.colors_generation,
            selection: self.selection.generation,
            three_d,
        };
        let mesh = match &self.mesh {
            Some((k, m)) if *k == key => m.clone(),
            _ => {
                let m = plot::point_mesh(
                    rect,
                    &self.screen,
                    self.order.as_deref(),
                    &self.colors,
                    &self.selection,
                    dot,
                    self.point_radius,
                );
                self.mesh = Some((key, m.clone()));
                m
            }
        };
        painter.add(egui::Shape::Mesh(mesh));
        if let Some(g) = &self.gesture {
            g.paint(painter);
        }
        if let Some(i) = self.hovered {
            let s = self.screen[i];
            painter.circle_stroke(
                s,
                self.point_radius + 3.0,
                egui::Stroke::new(1.5, Color32::WHITE),
            );
            self.hover_card(ui, s, i);
        }
        let hint = if three_d {
            "drag: rotate · wheel: zoom · right-drag: select (shift adds, ctrl removes)"
        } else {
            "drag: select (shift adds, ctrl removes) · right-drag: pan · wheel: zoom · double-click: fit"
        };
        painter.text(
            rect.left_bottom() + egui::vec2(6.0, -4.0),
            egui::Align2::LEFT_BOTTOM,
            hint,
            egui::FontId::proportional(11.0),
            ui.visuals().weak_text_color(),
        );
    }

    /// The hovered item's thumbnail, name and colour value next to the pointer.
    fn hover_card(&self, ui: &egui::Ui, at: Pos2, i: usize) {
        egui::Area::new(egui::Id::new("explore-hover"))
            .order(egui::Order::Tooltip)
            .fixed_pos(at + egui::vec2(14.0, 14.0))
            .interactable(false)
            .show(ui.ctx(), |ui| {
                egui::Frame::popup(ui.style()).show(ui, |ui| {
                    match self.thumbs.get(&self.view.ids[i]) {
                        Some(t) => {
                            let s = t.size_vec2();
                            let k = (128.0 / s.x.max(s.y)).min(1.0);
                            ui.image((t.id(), s * k));
                        }
                        None => {
                            ui.weak("(thumbnail loading)");
                        }
                    }
                    ui.add(egui::Label::new(self.view.name(i)).extend());
                    if let Some((name, col)) = self.color_by.and_then(|c| self.view.columns.get(c))
                    {
                        ui.label(format!(
                            "{name}: {}",
                            col.text(i).unwrap_or_else(|| "—".into())
                        ));
                    }
                });
            });
    }
}
