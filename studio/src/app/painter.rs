//! The mask painter: brush and eraser with size and hardness over the node's input image,
//! fill, clear, invert, undo/redo of strokes, zoom and pan, overlay colour and opacity,
//! PNG import/export. Shortcuts: `[` and `]` change the size, `X` swaps brush and eraser,
//! Ctrl+Z / Ctrl+Y undo and redo.

use egui::{Color32, ColorImage, Pos2, Rect, Sense, TextureHandle, TextureOptions, Vec2};
use engine::{Image, Mask};

/// What the painter asks of the app.
pub enum PainterAction {
    /// Store this mask (as the node's painting) and close.
    Apply(Mask),
    Close,
}

/// The painter's state for one PaintMask node.
pub struct MaskPainter {
    pub node: String,
    pub mask: Mask,
    pub brush_size: f32,
    pub hardness: f32,
    pub eraser: bool,
    pub overlay: Color32,
    pub opacity: f32,
    background: Option<TextureHandle>,
    mask_tex: Option<TextureHandle>,
    dirty: bool,
    undo: Vec<Mask>,
    redo: Vec<Mask>,
    zoom: f32,
    pan: Vec2,
    last: Option<Pos2>,
    pub message: Option<String>,
}

impl MaskPainter {
    /// Whether the painter shows an image under the mask.
    pub fn has_background(&self) -> bool {
        self.background.is_some()
    }

    /// Puts `image` under the mask (once a run has produced it), scaling the painting to it.
    pub fn set_background(&mut self, image: &Image, ctx: &egui::Context) {
        if (image.width, image.height) != (self.mask.width, self.mask.height) {
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

    /// A painter over `image` (which sets the size), starting from `mask` if given.
    pub fn new(
        node: &str,
        image: Option<&Image>,
        mask: Option<Mask>,
        ctx: &egui::Context,
    ) -> MaskPainter {
        let (w, h) = image
            .map(|i| (i.width, i.height))
            .or(mask.as_ref().map(|m| (m.width, m.height)))
            .unwrap_or((512, 512));
        let mask = match mask {
            Some(m) if (m.width, m.height) == (w, h) => m,
            Some(m) => engine::ops::resize_mask(&m, w, h, engine::ops::Filter::Nearest),
            None => Mask::filled(w, h, 0.0),
        };
        let background = image
            .map(|img| ctx.load_texture("painter-bg", image_to_color(img), TextureOptions::LINEAR));
        MaskPainter {
            node: node.to_string(),
            mask,
            brush_size: 24.0,
            hardness: 0.7,
            eraser: false,
            overlay: Color32::from_rgb(255, 40, 40),
            opacity: 0.5,
            background,
            mask_tex: None,
            dirty: true,
            undo: Vec::new(),
            redo: Vec::new(),
            zoom: 1.0,
            pan: Vec2::ZERO,
            last: None,
            message: None,
        }
    }

    fn checkpoint(&mut self) {
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

    fn import(&mut self, bytes: &[u8]) {
        match engine::codec::decode_image(bytes, "imported mask") {
            Ok(img) => {
                self.checkpoint();
                let m = Mask {
                    width: img.width,
                    height: img.height,
                    data: img
                        .data
                        .chunks_exact(4)
                        .map(|p| 0.2126 * p[0] + 0.7152 * p[1] + 0.0722 * p[2])
                        .collect(),
                };
                self.mask = engine::ops::resize_mask(
                    &m,
                    self.mask.width,
                    self.mask.height,
                    engine::ops::Filter::Bilinear,
                );
                self.dirty = true;
            }
            Err(e) => self.message = Some(e),
        }
    }

    /// The painter window's content.
    pub fn painter_ui(&mut self, ui: &mut egui::Ui) -> Option<PainterAction> {
        let mut action = None;
        let typing = ui.ctx().egui_wants_keyboard_input();
        if !typing {
            use super::shortcuts::{pressed, Action, Scope};
            for a in ui.input_mut(|i| pressed(i, Scope::Painter)) {
                match a {
                    Action::BrushSmaller => self.brush_size = (self.brush_size / 1.25).max(1.0),
                    Action::BrushLarger => self.brush_size = (self.brush_size * 1.25).min(1024.0),
                    Action::ToggleEraser => self.eraser = !self.eraser,
                    Action::Undo => self.undo(),
                    Action::Redo => self.redo(),
                    _ => {}
                }
            }
        }
        ui.horizontal_wrapped(|ui| {
            ui.selectable_value(&mut self.eraser, false, "Brush");
            ui.selectable_value(&mut self.eraser, true, "⌫ Eraser")
                .on_hover_text("X swaps");
            ui.add(
                egui::Slider::new(&mut self.brush_size, 1.0..=512.0)
                    .logarithmic(true)
                    .text("size"),
            )
            .on_hover_text("[ and ]");
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
                .clicked()
            {
                self.undo();
            }
            if ui
                .add_enabled(!self.redo.is_empty(), egui::Button::new("Redo"))
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
            if ui.button("Import PNG…").clicked() {
                if let Some(p) = rfd::FileDialog::new()
                    .add_filter("PNG", &["png"])
                    .pick_file()
                {
                    match std::fs::read(&p) {
                        Ok(b) => self.import(&b),
                        Err(e) => self.message = Some(format!("{}: {e}", p.display())),
                    }
                }
            }
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
        });
        if let Some(m) = &self.message {
            ui.label(m);
        }
        ui.horizontal(|ui| {
            if ui.button("✔ Apply").clicked() {
                action = Some(PainterAction::Apply(self.mask.clone()));
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
        self.canvas_ui(ui);
        action
    }

    fn canvas_ui(&mut self, ui: &mut egui::Ui) {
        let avail = ui.available_size().max(Vec2::splat(200.0));
        let (rect, response) = ui.allocate_exact_size(avail, Sense::click_and_drag());
        response.widget_info(|| {
            egui::WidgetInfo::labeled(egui::WidgetType::Other, true, "mask canvas")
        });
        let (w, h) = (self.mask.width as f32, self.mask.height as f32);
        let fit = (rect.width() / w).min(rect.height() / h);
        let scale = fit * self.zoom;
        let size = Vec2::new(w, h) * scale;
        let img_rect = Rect::from_center_size(rect.center() + self.pan, size);
        // Pan with the middle button or secondary drag; zoom with the wheel over the canvas.
        if response.dragged_by(egui::PointerButton::Middle)
            || response.dragged_by(egui::PointerButton::Secondary)
        {
            self.pan += response.drag_delta();
        }
        if response.hovered() {
            let scroll = ui.input(|i| i.smooth_scroll_delta.y);
            if scroll != 0.0 {
                self.zoom = (self.zoom * (1.0 + scroll * 0.002)).clamp(0.1, 16.0);
            }
        }
        let to_mask = |p: Pos2| {
            Pos2::new(
                (p.x - img_rect.min.x) / scale,
                (p.y - img_rect.min.y) / scale,
            )
        };
        if response.drag_started_by(egui::PointerButton::Primary)
            || (response.clicked() && self.last.is_none())
        {
            self.checkpoint();
            if let Some(p) = response.interact_pointer_pos() {
                let m = to_mask(p);
                self.dab(m);
                self.last = Some(m);
            }
        }
        if response.dragged_by(egui::PointerButton::Primary) {
            if let Some(p) = response.interact_pointer_pos() {
                let m = to_mask(p);
                let from = self.last.unwrap_or(m);
                self.stroke(from, m);
                self.last = Some(m);
            }
        }
        if response.drag_stopped() || response.clicked() {
            self.last = None;
        }
        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, 0.0, Color32::from_gray(30));
        let uv = Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0));
        if let Some(bg) = &self.background {
            painter.image(bg.id(), img_rect, uv, Color32::WHITE);
        } else {
            painter.rect_filled(img_rect, 0.0, Color32::from_gray(70));
        }
        if self.dirty || self.mask_tex.is_none() {
            let overlay = self.overlay;
            let pixels: Vec<Color32> = self
                .mask
                .data
                .iter()
                .map(|&v| {
                    let a = (v.clamp(0.0, 1.0) * 255.0) as u8;
                    Color32::from_rgba_unmultiplied(overlay.r(), overlay.g(), overlay.b(), a)
                })
                .collect();
            let ci = ColorImage {
                size: [self.mask.width as usize, self.mask.height as usize],
                source_size: Vec2::new(w, h),
                pixels,
            };
            match &mut self.mask_tex {
                Some(t) => t.set(ci, TextureOptions::NEAREST),
                None => {
                    self.mask_tex = Some(ui.ctx().load_texture(
                        "painter-mask",
                        ci,
                        TextureOptions::NEAREST,
                    ))
                }
            }
            self.dirty = false;
        }
        if let Some(t) = &self.mask_tex {
            painter.image(
                t.id(),
                img_rect,
                uv,
                Color32::from_white_alpha((self.opacity * 255.0) as u8),
            );
        }
        if let Some(p) = response.hover_pos() {
            painter.circle_stroke(
                p,
                self.brush_size / 2.0 * scale,
                egui::Stroke::new(
                    1.0,
                    if self.eraser {
                        Color32::LIGHT_BLUE
                    } else {
                        Color32::WHITE
                    },
                ),
            );
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
