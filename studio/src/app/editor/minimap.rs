//! The minimap: a small overview in the canvas's corner (nodes as rectangles, the view as a
//! frame); clicking or dragging in it moves the view there. On by default for graphs over
//! [`AUTO_NODES`] nodes; View → Minimap toggles it.

use std::collections::HashMap;

use egui::{Color32, Id, Pos2, Rect, Sense, Stroke, Vec2};
use egui_snarl::Snarl;

use super::super::doc::EditorNode;

/// Graphs with more nodes than this show the minimap unless the user hid it.
pub const AUTO_NODES: usize = 30;
/// The minimap's size on screen.
pub const SIZE: Vec2 = Vec2::new(220.0, 150.0);
/// A node's size before it has been drawn once.
const NODE_SIZE: Vec2 = Vec2::new(200.0, 120.0);

/// Canvas state that outlives a frame: node rectangles, the minimap switch, a pending view move.
#[derive(Default)]
pub struct Canvas {
    /// Node rectangles drawn last frame (graph coordinates), by document node id.
    pub rects: HashMap<String, Rect>,
    /// The minimap: `Some(on)` as the user chose; `None` follows the graph's size.
    pub minimap: Option<bool>,
    /// Centre the view on this graph point next frame.
    pub look_at: Option<Pos2>,
    /// The view (graph → screen) drawn last frame.
    pub to_screen: egui::emath::TSTransform,
    /// What node headers and port names took when last drawn with widgets (see
    /// [`super::lod`]).
    pub sizes: super::lod::Sizes,
}

impl Canvas {
    /// Whether the minimap shows for a graph of `nodes` nodes.
    pub fn minimap_on(&self, nodes: usize) -> bool {
        self.minimap.unwrap_or(nodes > AUTO_NODES)
    }
}

/// Draws the minimap in the bottom-right corner of `view` (the canvas's screen rectangle);
/// a click or drag sets `canvas.look_at`.
pub fn minimap_ui(
    ctx: &egui::Context,
    view: Rect,
    to_screen: egui::emath::TSTransform,
    snarl: &Snarl<EditorNode>,
    canvas: &mut Canvas,
) {
    let at = view.right_bottom() - SIZE - Vec2::splat(12.0);
    if !view.contains(at) {
        return;
    }
    let node_rect = |p: Pos2, n: &EditorNode| {
        canvas
            .rects
            .get(&n.id)
            .copied()
            .unwrap_or_else(|| Rect::from_min_size(p, NODE_SIZE))
    };
    let seen = to_screen.inverse() * view;
    let mut bounds = seen;
    for (p, n) in snarl.nodes_pos() {
        bounds = bounds.union(node_rect(p, n));
    }
    let bounds = bounds.expand(40.0);
    let scale = (SIZE.x / bounds.width()).min(SIZE.y / bounds.height());
    let mut look_at = None;
    egui::Area::new(Id::new("minimap"))
        .fixed_pos(at)
        .constrain(false)
        .order(egui::Order::Middle)
        .show(ctx, |ui| {
            let (rect, resp) = ui.allocate_exact_size(SIZE, Sense::click_and_drag());
            resp.widget_info(|| {
                egui::WidgetInfo::labeled(egui::WidgetType::Other, true, "minimap")
            });
            let origin = rect.center() - bounds.center().to_vec2() * scale;
            let to_mini = |r: Rect| {
                Rect::from_min_max(
                    origin + r.min.to_vec2() * scale,
                    origin + r.max.to_vec2() * scale,
                )
            };
            let painter = ui.painter_at(rect);
            painter.rect_filled(rect, 4.0, Color32::from_black_alpha(200));
            for (p, n) in snarl.nodes_pos() {
                painter.rect_filled(to_mini(node_rect(p, n)), 1.0, Color32::from_gray(150));
            }
            painter.rect_stroke(
                to_mini(seen),
                1.0,
                Stroke::new(1.5, Color32::from_rgb(120, 180, 255)),
                egui::StrokeKind::Inside,
            );
            if resp.clicked() || resp.dragged() {
                if let Some(p) = resp.interact_pointer_pos() {
                    look_at = Some(Pos2::new(
                        (p.x - origin.x) / scale,
                        (p.y - origin.y) / scale,
                    ));
                }
            }
        });
    if look_at.is_some() {
        canvas.look_at = look_at;
        ctx.request_repaint();
    }
}
