//! Frames: titled, coloured groups of nodes. Drawn behind the nodes (the bounding box of their
//! nodes plus a margin, with a title bar); dragging the title bar moves the frame's nodes, and
//! its context menu edits the title and colour or removes the frame.

use std::collections::HashMap;

use egui::{Color32, Id, Pos2, Rect, Sense, Vec2};
use egui_snarl::Snarl;
use nodes::subgraph::Frame;

use super::super::doc::EditorNode;

/// Space around a frame's nodes, graph units.
const MARGIN: f32 = 16.0;
/// Height of a frame's title bar, graph units.
const TITLE: f32 = 26.0;

/// A frame's colour (grey when the text is not `#rrggbb`).
pub fn frame_color(frame: &Frame) -> Color32 {
    let [r, g, b] = nodes::parse_hex_color(&frame.color).unwrap_or([0.5, 0.5, 0.5]);
    Color32::from_rgb(
        (r * 255.0).round() as u8,
        (g * 255.0).round() as u8,
        (b * 255.0).round() as u8,
    )
}

/// A frame's rectangle in graph coordinates, around its nodes' last drawn rectangles (`None`
/// when none of its nodes has been drawn).
pub fn frame_rect(frame: &Frame, rects: &HashMap<String, Rect>) -> Option<Rect> {
    let r = frame
        .nodes
        .iter()
        .filter_map(|n| rects.get(n))
        .fold(Rect::NOTHING, |acc, r| acc.union(*r));
    if !r.is_positive() {
        return None;
    }
    let mut r = r.expand(MARGIN);
    r.min.y -= TITLE;
    Some(r)
}

fn title_rect(r: Rect) -> Rect {
    Rect::from_min_size(r.min, Vec2::new(r.width(), TITLE))
}

/// Paints the frames (graph coordinates: the canvas layer's painter, behind the nodes).
pub fn paint_frames(painter: &egui::Painter, frames: &[Frame], rects: &HashMap<String, Rect>) {
    for f in frames {
        let Some(r) = frame_rect(f, rects) else {
            continue;
        };
        let c = frame_color(f);
        painter.rect_filled(r, 6.0, c.gamma_multiply(0.18));
        painter.rect_stroke(r, 6.0, egui::Stroke::new(1.5, c), egui::StrokeKind::Inside);
        let t = title_rect(r);
        painter.rect_filled(t, 6.0, c.gamma_multiply(0.75));
        painter.text(
            Pos2::new(t.left() + 10.0, t.center().y),
            egui::Align2::LEFT_CENTER,
            &f.title,
            egui::FontId::proportional(15.0),
            Color32::WHITE,
        );
    }
}

/// The frames' title bars as widgets over the canvas (`view`: the canvas's screen rectangle,
/// `to_screen`: graph → screen): drag one to move its nodes, right-click it to edit or remove
/// the frame.
pub fn frame_bars_ui(
    ctx: &egui::Context,
    view: Rect,
    to_screen: egui::emath::TSTransform,
    frames: &mut Vec<Frame>,
    rects: &HashMap<String, Rect>,
    snarl: &mut Snarl<EditorNode>,
) {
    let mut remove = None;
    for (i, f) in frames.iter_mut().enumerate() {
        let Some(r) = frame_rect(f, rects) else {
            continue;
        };
        let bar = (to_screen * title_rect(r)).intersect(view);
        if !bar.is_positive() {
            continue;
        }
        egui::Area::new(Id::new(("frame-title", i)))
            .fixed_pos(bar.min)
            .constrain(false)
            .order(egui::Order::Middle)
            .show(ctx, |ui| {
                let (_, resp) = ui.allocate_exact_size(bar.size(), Sense::click_and_drag());
                let title = f.title.clone();
                resp.widget_info(|| {
                    egui::WidgetInfo::labeled(
                        egui::WidgetType::Other,
                        true,
                        format!("frame {title}"),
                    )
                });
                let resp =
                    resp.on_hover_text("Drag to move the frame's nodes; right-click to edit");
                if resp.dragged() && to_screen.scaling > 0.0 {
                    let delta = resp.drag_delta() / to_screen.scaling;
                    move_nodes(snarl, &f.nodes, delta);
                }
                resp.context_menu(|ui| {
                    ui.horizontal(|ui| {
                        ui.label("title");
                        ui.text_edit_singleline(&mut f.title);
                    });
                    ui.horizontal(|ui| {
                        ui.label("colour");
                        let mut c = frame_color(f);
                        if egui::widgets::color_picker::color_edit_button_srgba(
                            ui,
                            &mut c,
                            egui::color_picker::Alpha::Opaque,
                        )
                        .changed()
                        {
                            f.color = format!("#{:02x}{:02x}{:02x}", c.r(), c.g(), c.b());
                        }
                    });
                    if ui.button("Remove frame").clicked() {
                        remove = Some(i);
                        ui.close();
                    }
                });
            });
    }
    if let Some(i) = remove {
        frames.remove(i);
    }
}

/// Moves the nodes `ids` by `delta` graph units.
pub fn move_nodes(snarl: &mut Snarl<EditorNode>, ids: &[String], delta: Vec2) {
    let nids: Vec<_> = snarl
        .node_ids()
        .filter(|(_, n)| ids.contains(&n.id))
        .map(|(nid, _)| nid)
        .collect();
    for nid in nids {
        if let Some(info) = snarl.get_node_info_mut(nid) {
            info.pos += delta;
        }
    }
}
