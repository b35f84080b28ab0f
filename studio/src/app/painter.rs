//! The mask painter: brush and eraser with size and hardness, rectangle, ellipse and
//! polygon/lasso tools (filling, or erasing in eraser mode, one undo step per shape), fill,
//! clear, invert, undo/redo, zoom and pan, overlay colour and opacity, a start from a mask file
//! or from any Mask output of the last run, PNG export. Its keys live in the one shortcut table
//! (`shortcuts.rs`, painter scope). What the mask is for is its [`PaintTarget`]: a PaintMask
//! node, a LoadMask node's file (or the graph's assets), or a gallery output that becomes an
//! Inpaint recipe; `painter_open.rs` opens the painter on each and stores the result, and
//! `painter_canvas.rs` draws the canvas and turns the pointer into strokes and shapes
//! (`painter_shapes.rs` rasterises them).

use std::path::PathBuf;
use std::sync::Arc;

use egui::{Color32, ColorImage, Pos2, TextureHandle, TextureOptions, Vec2};
use engine::{Image, Mask};
use nodes::GraphDoc;

pub use super::painter_shapes::Tool;
use super::shortcuts::{self, Action, Scope};

/// What the painter asks of the app.
pub enum PainterAction {
    /// Store this mask where the target keeps it (the PaintMask node's painting, the LoadMask
    /// node's file, a new Inpaint recipe) and close.
    Apply(Mask),
    /// LoadMask only: store the mask in the graph's assets and point the node at it.
    IntoGraph(Mask),
    Close,
}

/// What the painted mask is for.
#[derive(Clone, Debug)]
pub enum PaintTarget {
    /// A PaintMask node: the painting goes into the graph's assets.
    PaintMask(String),
    /// A LoadMask node: saved back to `file` (atomically), or into the graph's assets; `file`
    /// is `None` when the node already reads an embedded asset.
    LoadMask {
        node: String,
        file: Option<PathBuf>,
        /// The node's `channel` and `invert`, so the saved file reads back as painted.
        channel: String,
        invert: bool,
    },
    /// A gallery output: applying makes an Inpaint recipe with the output as its image.
    Output {
        id: u64,
        image_png: Arc<Vec<u8>>,
        like: Option<Box<GraphDoc>>,
    },
}

impl PaintTarget {
    /// The graph node the mask belongs to, if any.
    pub fn node(&self) -> Option<&str> {
        match self {
            PaintTarget::PaintMask(n) | PaintTarget::LoadMask { node: n, .. } => Some(n),
            PaintTarget::Output { .. } => None,
        }
    }

    /// The window title's subject.
    pub fn title(&self) -> String {
        match self {
            PaintTarget::PaintMask(n) => n.clone(),
            PaintTarget::LoadMask {
                node,
                file: Some(f),
                ..
            } => format!("{node} ({})", f.display()),
            PaintTarget::LoadMask { node, .. } => format!("{node} (embedded)"),
            PaintTarget::Output { id, .. } => format!("output #{id} → Inpaint"),
        }
    }
}

/// What the app asks about the painter (`AppCommand::Painter`).
#[derive(Clone, Debug)]
pub enum PainterCommand {
    /// "Paint this mask…" on a node's Mask input: edit the PaintMask or LoadMask node linked
    /// there, else add a PaintMask node feeding it.
    PaintInput { node: String, input: String },
    /// Open this recipe as the document (after the unsaved-changes question).
    OpenRecipe(Box<GraphDoc>),
}

/// The painter's state.
pub struct MaskPainter {
    pub target: PaintTarget,
    pub mask: Mask,
    pub tool: Tool,
    pub brush_size: f32,
    pub hardness: f32,
    /// Erase instead of paint (the brush and the shapes).
    pub eraser: bool,
    pub overlay: Color32,
    pub opacity: f32,
    /// Whether a background of another size rescales the mask (PaintMask: the painting follows
    /// its image); else the mask keeps its size (a file's pixels) and the image is stretched.
    pub(super) follow_background: bool,
    pub(super) background: Option<TextureHandle>,
    pub(super) mask_tex: Option<TextureHandle>,
    pub(super) dirty: bool,
    undo: Vec<Mask>,
    redo: Vec<Mask>,
    pub(super) zoom: f32,
    pub(super) pan: Vec2,
    /// The last brush position of a stroke in progress.
    pub(super) last: Option<Pos2>,
    /// A rectangle or ellipse being dragged: its first corner and the pointer.
    pub(super) shape: Option<(Pos2, Pos2)>,
    /// The lasso's points so far (mask pixels), and whether they come from a drag.
    pub(super) lasso: Vec<Pos2>,
    pub(super) lasso_drag: bool,
    /// How many nodes had outputs when the app last looked for the background (it looks
    /// again only when a run has added some).
    pub(super) outputs_seen: Option<usize>,
    /// Masks to start from besides the target's own (e.g. the output's defect mask).
    pub extra_sources: Vec<(String, Arc<Mask>)>,
    pub message: Option<String>,
}

impl MaskPainter {
    /// Whether the painter shows an image under the mask.
    pub fn has_background(&self) -> bool {
        self.background.is_some()
    }

    /// Puts `image` under the mask (once a run has produced it), scaling the painting to it
    /// when the target follows its image.
    pub fn set_background(&mut self, image: &Image, ctx: &egui::Context) {
        if self.follow_background
            && (image.width, image.height) != (self.mask.width, self.mask.height)
        {
            self.mask = engine::ops::resize_mask(
                &self.mask,
                image.width,
                image.height,
                engine::ops::Filter::Nearest,
            );
            self.undo.clear();
            self.redo.clear();
            self.dirty = true;
        }
        self.background =
            Some(ctx.load_texture("painter-bg", image_to_color(image), TextureOptions::LINEAR));
        self.message = None;
    }

    /// A painter for `target` over `image` (which sets the size), starting from `mask` if
    /// given. A LoadMask target keeps the mask's own size.
    pub fn new(
        target: PaintTarget,
        image: Option<&Image>,
        mask: Option<Mask>,
        ctx: &egui::Context,
    ) -> MaskPainter {
        let follow = !matches!(target, PaintTarget::LoadMask { .. });
        let from_image = image.map(|i| (i.width, i.height));
        let from_mask = mask.as_ref().map(|m| (m.width, m.height));
        let (w, h) = if follow {
            from_image.or(from_mask)
        } else {
            from_mask.or(from_image)
        }
        .unwrap_or((512, 512));
        let mask = match mask {
            Some(m) if (m.width, m.height) == (w, h) => m,
            Some(m) => engine::ops::resize_mask(&m, w, h, engine::ops::Filter::Nearest),
            None => Mask::filled(w, h, 0.0),
        };
        let background = image
            .map(|img| ctx.load_texture("painter-bg", image_to_color(img), TextureOptions::LINEAR));
        MaskPainter {
            target,
            mask,
            tool: Tool::Brush,
            brush_size: 24.0,
            hardness: 0.7,
            eraser: false,
            overlay: Color32::from_rgb(255, 40, 40),
            opacity: 0.5,
            follow_background: follow,
            background,
            mask_tex: None,
            dirty: true,
            undo: Vec::new(),
            redo: Vec::new(),
            zoom: 1.0,
            pan: Vec2::ZERO,
            last: None,
            shape: None,
            lasso: Vec::new(),
            lasso_drag: false,
            outputs_seen: None,
            extra_sources: Vec::new(),
            message: None,
        }
    }

    pub(super) fn checkpoint(&mut self) {
        self.undo.push(self.mask.clone());
        if self.undo.len() > 100 {
            self.undo.remove(0);
        }
        self.redo.clear();
    }

    pub fn undo(&mut self) {
        if let Some(m) = self.undo.pop() {
            self.redo.push(std::mem::replace(&mut self.mask, m));
            self.dirty = true;
        }
    }

    pub fn redo(&mut self) {
        if let Some(m) = self.redo.pop() {
            self.undo.push(std::mem::replace(&mut self.mask, m));
            self.dirty = true;
        }
    }

    /// Stamps one brush dab centred at `c` (mask pixel coordinates).
    pub fn dab(&mut self, c: Pos2) {
        let r = (self.brush_size / 2.0).max(0.5);
        let hard = self.hardness.clamp(0.0, 1.0);
        let (w, h) = (self.mask.width as i64, self.mask.height as i64);
        let (x0, x1) = (
            ((c.x - r).floor() as i64).max(0),
            ((c.x + r).ceil() as i64).min(w - 1),
        );
        let (y0, y1) = (
            ((c.y - r).floor() as i64).max(0),
            ((c.y + r).ceil() as i64).min(h - 1),
        );
        for y in y0..=y1 {
            for x in x0..=x1 {
                let d = ((x as f32 + 0.5 - c.x).powi(2) + (y as f32 + 0.5 - c.y).powi(2)).sqrt();
                // Full strength inside r·hardness, then a smooth feathered falloff to the rim.
                let v = if d <= r * hard {
                    1.0
                } else if d >= r {
                    0.0
                } else {
                    let t = (r - d) / (r * (1.0 - hard)).max(1e-3);
                    t * t * (3.0 - 2.0 * t)
                };
                if v <= 0.0 {
                    continue;
                }
                let i = (y * w + x) as usize;
                let cur = self.mask.data[i];
                self.mask.data[i] = if self.eraser {
                    cur.min(1.0 - v)
                } else {
                    cur.max(v)
                };
            }
        }
        self.dirty = true;
    }

    /// Paints a segment with dabs a quarter brush apart.
    pub fn stroke(&mut self, a: Pos2, b: Pos2) {
        let step = (self.brush_size / 4.0).max(0.5);
        let n = ((b - a).length() / step).ceil().max(1.0) as usize;
        for i in 0..=n {
            self.dab(a + (b - a) * (i as f32 / n as f32));
        }
    }

    /// Fills (or erases) a closed polygon in mask pixels as one undo step.
    pub fn fill_shape(&mut self, pts: &[Pos2]) {
        let mut next = self.mask.clone();
        if super::painter_shapes::fill_polygon(&mut next, pts, self.eraser) {
            self.checkpoint();
            self.mask = next;
            self.dirty = true;
        }
    }

    /// The rectangle with corners `a` and `b` (mask pixels), as one undo step.
    pub fn fill_rect(&mut self, a: Pos2, b: Pos2) {
        self.fill_shape(&super::painter_shapes::rect_polygon(a, b));
    }

    /// The ellipse inscribed in the rectangle with corners `a` and `b`, as one undo step.
    pub fn fill_ellipse(&mut self, a: Pos2, b: Pos2) {
        self.fill_shape(&super::painter_shapes::ellipse_polygon(a, b));
    }

    /// Closes the lasso in progress and fills it (nothing with fewer than three points).
    pub fn close_lasso(&mut self) {
        let pts = std::mem::take(&mut self.lasso);
        self.lasso_drag = false;
        if pts.len() >= 3 {
            self.fill_shape(&pts);
        }
    }

    pub fn fill(&mut self) {
        self.checkpoint();
        self.mask.data.iter_mut().for_each(|v| *v = 1.0);
        self.dirty = true;
    }

    pub fn clear(&mut self) {
        self.checkpoint();
        self.mask.data.iter_mut().for_each(|v| *v = 0.0);
        self.dirty = true;
    }

    pub fn invert(&mut self) {
        self.checkpoint();
        self.mask.data.iter_mut().for_each(|v| *v = 1.0 - *v);
        self.dirty = true;
    }

    /// Replaces the painting with `m` (scaled to the painter's size) as one undo step.
    pub fn start_from(&mut self, m: &Mask) {
        self.checkpoint();
        self.mask = if (m.width, m.height) == (self.mask.width, self.mask.height) {
            m.clone()
        } else {
            engine::ops::resize_mask(
                m,
                self.mask.width,
                self.mask.height,
                engine::ops::Filter::Bilinear,
            )
        };
        self.dirty = true;
    }

    /// Starts from a mask file (its luma, as a greyscale mask file holds it).
    pub fn load_mask_file(&mut self, bytes: &[u8], name: &str) {
        match engine::codec::decode_image(bytes, name) {
            Ok(img) => self.start_from(&Mask {
                width: img.width,
                height: img.height,
                data: img
                    .data
                    .chunks_exact(4)
                    .map(|p| 0.2126 * p[0] + 0.7152 * p[1] + 0.0722 * p[2])
                    .collect(),
            }),
            Err(e) => self.message = Some(e),
        }
    }

    fn keys(&mut self, ui: &egui::Ui) {
        if ui.ctx().egui_wants_keyboard_input() {
            return;
        }
        for a in ui.input_mut(|i| shortcuts::pressed(i, Scope::Painter)) {
            match a {
                Action::BrushSmaller => self.brush_size = (self.brush_size / 1.25).max(1.0),
                Action::BrushLarger => self.brush_size = (self.brush_size * 1.25).min(1024.0),
                Action::ToggleEraser => self.eraser = !self.eraser,
                Action::Undo => self.undo(),
                Action::Redo => self.redo(),
                Action::ToolBrush => self.tool = Tool::Brush,
                Action::ToolRectangle => self.tool = Tool::Rectangle,
                Action::ToolEllipse => self.tool = Tool::Ellipse,
                Action::ToolLasso => self.tool = Tool::Lasso,
                Action::CloseShape => self.close_lasso(),
                Action::CancelShape => {
                    self.lasso.clear();
                    self.shape = None;
                }
                _ => {}
            }
        }
    }

    /// The painter window's content; `sources` are the Mask outputs of the last run.
    pub fn painter_ui(
        &mut self,
        ui: &mut egui::Ui,
        sources: &[(String, Arc<Mask>)],
    ) -> Option<PainterAction> {
        self.keys(ui);
        let ctx = ui.ctx().clone();
        let key = |a: Action| shortcuts::keys_of(&ctx, Scope::Painter, a);
        ui.horizontal_wrapped(|ui| {
            for (t, a) in [
                (Tool::Brush, Action::ToolBrush),
                (Tool::Rectangle, Action::ToolRectangle),
                (Tool::Ellipse, Action::ToolEllipse),
                (Tool::Lasso, Action::ToolLasso),
            ] {
                let hint = match t {
                    Tool::Lasso => format!(
                        "{}: click points (double-click or {} closes) or drag a free path",
                        key(a),
                        key(Action::CloseShape)
                    ),
                    _ => key(a),
                };
                ui.selectable_value(&mut self.tool, t, t.label())
                    .on_hover_text(hint);
            }
            ui.separator();
            ui.selectable_value(&mut self.eraser, false, "Paint")
                .on_hover_text(key(Action::ToggleEraser));
            ui.selectable_value(&mut self.eraser, true, "⌫ Eraser")
                .on_hover_text(key(Action::ToggleEraser));
            ui.add(
                egui::Slider::new(&mut self.brush_size, 1.0..=512.0)
                    .logarithmic(true)
                    .text("size"),
            )
            .on_hover_text(format!(
                "{} and {}",
                key(Action::BrushSmaller),
                key(Action::BrushLarger)
            ));
            ui.add(egui::Slider::new(&mut self.hardness, 0.0..=1.0).text("hardness"));
            if ui.button("Fill").clicked() {
                self.fill();
            }
            if ui.button("Clear").clicked() {
                self.clear();
            }
            if ui.button("Invert").clicked() {
                self.invert();
            }
            if ui
                .add_enabled(!self.undo.is_empty(), egui::Button::new("Undo"))
                .on_hover_text(key(Action::Undo))
                .clicked()
            {
                self.undo();
            }
            if ui
                .add_enabled(!self.redo.is_empty(), egui::Button::new("Redo"))
                .on_hover_text(key(Action::Redo))
                .clicked()
            {
                self.redo();
            }
        });
        ui.horizontal_wrapped(|ui| {
            ui.label("overlay");
            egui::widgets::color_picker::color_edit_button_srgba(
                ui,
                &mut self.overlay,
                egui::color_picker::Alpha::Opaque,
            );
            ui.add(egui::Slider::new(&mut self.opacity, 0.0..=1.0).text("opacity"));
            ui.add(
                egui::Slider::new(&mut self.zoom, 0.1..=16.0)
                    .logarithmic(true)
                    .text("zoom"),
            );
            if ui.button("Fit").clicked() {
                self.zoom = 1.0;
                self.pan = Vec2::ZERO;
            }
            self.sources_ui(ui, sources);
            self.export_ui(ui);
        });
        if let Some(m) = &self.message {
            ui.label(m);
        }
        let action = self.apply_buttons_ui(ui);
        self.canvas_ui(ui);
        action
    }

    /// "Load mask…" from a file and "Start from" any Mask output of the last run.
    fn sources_ui(&mut self, ui: &mut egui::Ui, sources: &[(String, Arc<Mask>)]) {
        if ui
            .button("Load mask…")
            .on_hover_text("Start from a mask image file (its luma)")
            .clicked()
        {
            if let Some(p) = rfd::FileDialog::new()
                .add_filter(
                    "image",
                    &["png", "jpg", "jpeg", "bmp", "tif", "tiff", "webp"],
                )
                .pick_file()
            {
                match std::fs::read(&p) {
                    Ok(b) => self.load_mask_file(&b, &p.display().to_string()),
                    Err(e) => self.message = Some(format!("{}: {e}", p.display())),
                }
            }
        }
        let mut chosen = None;
        let all: Vec<&(String, Arc<Mask>)> =
            self.extra_sources.iter().chain(sources.iter()).collect();
        ui.add_enabled_ui(!all.is_empty(), |ui| {
            ui.menu_button("Start from…", |ui| {
                for (name, m) in &all {
                    let label = format!("{name} ({}×{})", m.width, m.height);
                    if ui.button(label).clicked() {
                        chosen = Some(Arc::clone(m));
                        ui.close();
                    }
                }
            })
            .response
            .on_hover_text(
                "Start from a Mask output of the last run (a defect's mask, ISNet's mask)",
            )
            .on_disabled_hover_text("No Mask output yet: run the graph first");
        });
        if let Some(m) = chosen {
            self.start_from(&m);
        }
    }

    fn export_ui(&mut self, ui: &mut egui::Ui) {
        if ui.button("Export PNG…").clicked() {
            if let Some(p) = rfd::FileDialog::new()
                .add_filter("PNG", &["png"])
                .set_file_name("mask.png")
                .save_file()
            {
                let r = engine::codec::encode_mask_png(&self.mask, &[])
                    .map_err(|e| e.to_string())
                    .and_then(|b| std::fs::write(&p, b).map_err(|e| e.to_string()));
                self.message = Some(match r {
                    Ok(()) => format!("exported {}", p.display()),
                    Err(e) => format!("{}: {e}", p.display()),
                });
            }
        }
    }

    /// The buttons that store the mask where the target wants it.
    fn apply_buttons_ui(&mut self, ui: &mut egui::Ui) -> Option<PainterAction> {
        let mut action = None;
        ui.horizontal(|ui| {
            match &self.target {
                PaintTarget::PaintMask(_) => {
                    if ui.button("✔ Apply").clicked() {
                        action = Some(PainterAction::Apply(self.mask.clone()));
                    }
                }
                PaintTarget::LoadMask { file, .. } => {
                    if let Some(f) = file {
                        if ui
                            .button("💾 Save to file")
                            .on_hover_text(format!("Overwrite {}", f.display()))
                            .clicked()
                        {
                            action = Some(PainterAction::Apply(self.mask.clone()));
                        }
                    }
                    if ui
                        .button("✔ Into the graph")
                        .on_hover_text("Keep the mask inside the graph file (an embedded asset)")
                        .clicked()
                    {
                        action = Some(PainterAction::IntoGraph(self.mask.clone()));
                    }
                }
                PaintTarget::Output { .. } => {
                    if ui
                        .button("✔ Inpaint with this mask")
                        .on_hover_text("Open an Inpaint recipe with this output as its image")
                        .clicked()
                    {
                        action = Some(PainterAction::Apply(self.mask.clone()));
                    }
                }
            }
            if ui.button("Close").clicked() {
                action = Some(PainterAction::Close);
            }
            ui.label(format!(
                "{}×{}, {:.1}% painted",
                self.mask.width,
                self.mask.height,
                100.0 * self.mask.data.iter().filter(|v| **v >= 0.5).count() as f32
                    / self.mask.data.len().max(1) as f32
            ));
        });
        action
    }

    /// The mask as the overlay texture's pixels.
    pub(super) fn overlay_image(&self) -> ColorImage {
        let o = self.overlay;
        let pixels = self
            .mask
            .data
            .iter()
            .map(|&v| {
                let a = (v.clamp(0.0, 1.0) * 255.0) as u8;
                Color32::from_rgba_unmultiplied(o.r(), o.g(), o.b(), a)
            })
            .collect();
        ColorImage {
            size: [self.mask.width as usize, self.mask.height as usize],
            source_size: Vec2::new(self.mask.width as f32, self.mask.height as f32),
            pixels,
        }
    }
}

/// An engine image as an egui image (8-bit sRGB, alpha kept).
pub fn image_to_color(img: &Image) -> ColorImage {
    let pixels = img
        .data
        .chunks_exact(4)
        .map(|p| {
            let c = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
            Color32::from_rgba_unmultiplied(c(p[0]), c(p[1]), c(p[2]), c(p[3]))
        })
        .collect();
    ColorImage {
        size: [img.width as usize, img.height as usize],
        source_size: Vec2::new(img.width as f32, img.height as f32),
        pixels,
    }
}
