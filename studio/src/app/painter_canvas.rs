//! The painter's canvas: the image and the mask overlay with zoom and pan, and the pointer
//! turned into brush strokes, rectangles, ellipses and lasso shapes (with their outline shown
//! while they are drawn).

use egui::{Color32, Pos2, Rect, Sense, Stroke, TextureOptions, Vec2};

use super::painter::{MaskPainter, Tool};
use super::painter_shapes::{ellipse_polygon, rect_polygon};

impl MaskPainter {
    pub(super) fn canvas_ui(&mut self, ui: &mut egui::Ui) {
        let avail = ui.available_size().max(Vec2::splat(200.0));
        let (rect, response) = ui.allocate_exact_size(avail, Sense::click_and_drag());
        response.widget_info(|| {
            egui::WidgetInfo::labeled(egui::WidgetType::Other, true, "mask canvas")
        });
        let (w, h) = (self.mask.width as f32, self.mask.height as f32);
        let fit = (rect.width() / w).min(rect.height() / h);
        let scale = fit * self.zoom;
        let img_rect = Rect::from_center_size(rect.center() + self.pan, Vec2::new(w, h) * scale);
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
        let pointer = response.interact_pointer_pos().map(to_mask);
        // A drag starts once the pointer has moved a little: shapes begin where it was pressed.
        let origin = ui.input(|i| i.pointer.press_origin()).map(to_mask);
        match self.tool {
            Tool::Brush => self.brush_input(&response, pointer),
            Tool::Rectangle | Tool::Ellipse => self.shape_input(&response, origin, pointer),
            Tool::Lasso => self.lasso_input(&response, origin, pointer),
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
            let ci = self.overlay_image();
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
        let to_screen = |p: Pos2| img_rect.min + p.to_vec2() * scale;
        let outline = Stroke::new(
            1.5,
            if self.eraser {
                Color32::LIGHT_BLUE
            } else {
                Color32::WHITE
            },
        );
        let hover = response.hover_pos();
        match self.tool {
            Tool::Brush => {
                if let Some(p) = hover {
                    painter.circle_stroke(p, self.brush_size / 2.0 * scale, outline);
                }
            }
            Tool::Rectangle | Tool::Ellipse => {
                if let Some((a, b)) = self.shape {
                    let pts = if self.tool == Tool::Rectangle {
                        rect_polygon(a, b)
                    } else {
                        ellipse_polygon(a, b)
                    };
                    painter.add(egui::Shape::closed_line(
                        pts.into_iter().map(to_screen).collect(),
                        outline,
                    ));
                }
            }
            Tool::Lasso => {
                let mut pts: Vec<Pos2> = self.lasso.iter().map(|p| to_screen(*p)).collect();
                if !self.lasso_drag && !pts.is_empty() {
                    pts.extend(hover);
                }
                if pts.len() >= 2 {
                    painter.add(egui::Shape::line(pts, outline));
                }
            }
        }
    }

    fn brush_input(&mut self, response: &egui::Response, pointer: Option<Pos2>) {
        if response.drag_started_by(egui::PointerButton::Primary)
            || (response.clicked() && self.last.is_none())
        {
            self.checkpoint();
            if let Some(m) = pointer {
                self.dab(m);
                self.last = Some(m);
            }
        }
        if response.dragged_by(egui::PointerButton::Primary) {
            if let Some(m) = pointer {
                let from = self.last.unwrap_or(m);
                self.stroke(from, m);
                self.last = Some(m);
            }
        }
        if response.drag_stopped() || response.clicked() {
            self.last = None;
        }
    }

    /// A rectangle or an ellipse: drag from one corner to the other; filled on release.
    fn shape_input(
        &mut self,
        response: &egui::Response,
        origin: Option<Pos2>,
        pointer: Option<Pos2>,
    ) {
        if response.drag_started_by(egui::PointerButton::Primary) {
            self.shape = origin.or(pointer).map(|o| (o, pointer.unwrap_or(o)));
        }
        if response.dragged_by(egui::PointerButton::Primary) {
            if let (Some((_, b)), Some(p)) = (&mut self.shape, pointer) {
                *b = p;
            }
        }
        if response.drag_stopped() {
            if let Some((a, mut b)) = self.shape.take() {
                if let Some(p) = pointer {
                    b = p;
                }
                if (a.x - b.x).abs() > 0.0 && (a.y - b.y).abs() > 0.0 {
                    match self.tool {
                        Tool::Ellipse => self.fill_ellipse(a, b),
                        _ => self.fill_rect(a, b),
                    }
                }
            }
        }
    }

    /// The lasso: a drag draws a free path that closes on release; clicks add points, and a
    /// double-click (or Enter) closes the polygon.
    fn lasso_input(
        &mut self,
        response: &egui::Response,
        origin: Option<Pos2>,
        pointer: Option<Pos2>,
    ) {
        if response.drag_started_by(egui::PointerButton::Primary) && self.lasso.is_empty() {
            self.lasso_drag = true;
            self.lasso.extend(origin);
            self.lasso.extend(pointer);
        }
        if self.lasso_drag && response.dragged_by(egui::PointerButton::Primary) {
            if let Some(p) = pointer {
                // A new point once the pointer has moved half a mask pixel.
                if self
                    .lasso
                    .last()
                    .is_none_or(|l| (p - *l).length_sq() >= 0.25)
                {
                    self.lasso.push(p);
                }
            }
        }
        if self.lasso_drag && response.drag_stopped() {
            self.close_lasso();
            return;
        }
        if response.double_clicked() {
            self.close_lasso();
        } else if response.clicked_by(egui::PointerButton::Primary) && !self.lasso_drag {
            self.lasso.extend(pointer);
        }
    }
}
