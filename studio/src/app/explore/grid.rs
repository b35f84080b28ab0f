//! The selection as a thumbnail grid (only visible rows are laid out), with click to inspect,
//! ctrl/cmd-click and shift-click to pick several, and the inspected item's tags and fields.

use std::collections::{BTreeSet, HashMap};

use egui::{Color32, Rect, Sense, TextureHandle, Vec2};

use super::view::ExploreView;

/// Thumbnail cell size (points).
pub const CELL: f32 = 96.0;

/// The grid's own state: the picked items (indices into the view) and the inspected one.
#[derive(Clone, Debug, Default)]
pub struct GridState {
    pub picked: BTreeSet<usize>,
    pub inspected: Option<usize>,
    anchor: Option<usize>,
}

/// Draws the grid of `items`; returns the ids of visible items without a thumbnail.
pub fn grid_ui(
    ui: &mut egui::Ui,
    view: &ExploreView,
    items: &[usize],
    colors: &[Color32],
    thumbs: &HashMap<u64, TextureHandle>,
    state: &mut GridState,
) -> Vec<u64> {
    let mut missing = Vec::new();
    if items.is_empty() {
        ui.label("Select points on the map (drag a box or a lasso) to see them here.");
        return missing;
    }
    let spacing = ui.spacing().item_spacing;
    let cols = ((ui.available_width() + spacing.x) / (CELL + spacing.x))
        .floor()
        .max(1.0) as usize;
    let rows = items.len().div_ceil(cols);
    egui::ScrollArea::vertical()
        .id_salt("explore-grid")
        .auto_shrink([false, false])
        .show_rows(ui, CELL + 16.0, rows, |ui, range| {
            for r in range {
                ui.horizontal(|ui| {
                    for (pos, &i) in items.iter().enumerate().skip(r * cols).take(cols) {
                        let id = view.ids[i];
                        let name = view.name(i);
                        let (rect, resp) =
                            ui.allocate_exact_size(Vec2::new(CELL, CELL + 16.0), Sense::click());
                        resp.widget_info(|| {
                            egui::WidgetInfo::selected(
                                egui::WidgetType::Checkbox,
                                true,
                                state.picked.contains(&i),
                                &name,
                            )
                        });
                        let img = Rect::from_min_size(rect.min, Vec2::splat(CELL));
                        let p = ui.painter();
                        match thumbs.get(&id) {
                            Some(t) => {
                                let s = t.size_vec2();
                                let fit = img.shrink(2.0);
                                let k = (fit.width() / s.x).min(fit.height() / s.y);
                                let r = Rect::from_center_size(fit.center(), s * k);
                                p.image(
                                    t.id(),
                                    r,
                                    Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0)),
                                    Color32::WHITE,
                                );
                            }
                            None => {
                                missing.push(id);
                                p.rect_filled(img.shrink(2.0), 4.0, ui.visuals().faint_bg_color);
                            }
                        }
                        let c = colors.get(i).copied().unwrap_or(Color32::GRAY);
                        p.circle_filled(img.left_top() + Vec2::splat(9.0), 5.0, c);
                        p.text(
                            egui::pos2(rect.left() + 2.0, rect.bottom() - 1.0),
                            egui::Align2::LEFT_BOTTOM,
                            truncate(&name, 15),
                            egui::FontId::proportional(11.0),
                            ui.visuals().text_color(),
                        );
                        if state.picked.contains(&i) {
                            p.rect_stroke(
                                img.shrink(1.0),
                                4.0,
                                egui::Stroke::new(2.0, ui.visuals().selection.stroke.color),
                                egui::StrokeKind::Inside,
                            );
                        }
                        if resp.clicked() {
                            click(ui, state, items, pos, i);
                        }
                        resp.on_hover_text(&name);
                    }
                });
            }
        });
    missing
}

fn click(ui: &egui::Ui, state: &mut GridState, items: &[usize], pos: usize, i: usize) {
    let m = ui.input(|inp| inp.modifiers);
    if m.shift {
        let a = state
            .anchor
            .and_then(|a| items.iter().position(|x| *x == a))
            .unwrap_or(pos);
        let (lo, hi) = (a.min(pos), a.max(pos));
        state.picked.extend(items[lo..=hi].iter().copied());
    } else if m.command || m.ctrl {
        if !state.picked.remove(&i) {
            state.picked.insert(i);
        }
        state.anchor = Some(i);
    } else {
        state.picked = BTreeSet::from([i]);
        state.anchor = Some(i);
    }
    state.inspected = Some(i);
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

/// The inspected item: name, id, tags and every column's value.
pub fn inspect_ui(ui: &mut egui::Ui, view: &ExploreView, i: usize) {
    ui.strong(view.name(i));
    ui.label(format!("item #{}", view.ids[i]));
    let tags = view.tags_of(i);
    if !tags.is_empty() {
        ui.horizontal_wrapped(|ui| {
            for t in tags {
                ui.label(egui::RichText::new(t).code());
            }
        });
    }
    egui::Grid::new("explore-inspect")
        .num_columns(2)
        .striped(true)
        .show(ui, |ui| {
            for (name, col) in &view.columns {
                ui.label(name);
                ui.label(col.text(i).unwrap_or_else(|| "—".into()));
                ui.end_row();
            }
        });
}
