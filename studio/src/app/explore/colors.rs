//! Point colours: a categorical palette for tag columns, a colour ramp for numeric ones, and
//! their legends.

use egui::{Color32, Rect, Sense, Vec2};

use super::view::{format_number, Column};

/// The colour of points when nothing colours them.
pub const PLAIN: Color32 = Color32::from_rgb(100, 160, 230);
/// Missing values.
pub const MISSING: Color32 = Color32::from_rgb(120, 120, 120);

/// Tableau 10: distinct on dark and light backgrounds.
const PALETTE: [Color32; 10] = [
    Color32::from_rgb(78, 121, 167),
    Color32::from_rgb(242, 142, 43),
    Color32::from_rgb(225, 87, 89),
    Color32::from_rgb(118, 183, 178),
    Color32::from_rgb(89, 161, 79),
    Color32::from_rgb(237, 201, 72),
    Color32::from_rgb(176, 122, 161),
    Color32::from_rgb(255, 157, 167),
    Color32::from_rgb(156, 117, 95),
    Color32::from_rgb(186, 176, 172),
];

/// Categories past the palette share one colour, listed as "other" in the legend.
pub const OTHER: Color32 = Color32::from_rgb(160, 160, 160);

/// Viridis at 9 stops (interpolated linearly).
const RAMP: [[u8; 3]; 9] = [
    [68, 1, 84],
    [71, 44, 122],
    [59, 81, 139],
    [44, 113, 142],
    [33, 144, 141],
    [39, 173, 129],
    [92, 200, 99],
    [170, 220, 50],
    [253, 231, 37],
];

/// Category `code`'s colour.
pub fn category_color(code: u32) -> Color32 {
    PALETTE.get(code as usize).copied().unwrap_or(OTHER)
}

/// The ramp's colour at `t` in 0..=1.
pub fn ramp(t: f32) -> Color32 {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let x = t * (RAMP.len() - 1) as f32;
    let i = (x.floor() as usize).min(RAMP.len() - 2);
    let f = x - i as f32;
    let c = |k: usize| (RAMP[i][k] as f32 * (1.0 - f) + RAMP[i + 1][k] as f32 * f).round() as u8;
    Color32::from_rgb(c(0), c(1), c(2))
}

/// How a column maps to colours, for the legend.
#[derive(Clone, Debug, PartialEq)]
pub enum Legend {
    None,
    /// Category names, colours and counts (the first palette-length ones; the rest "other").
    Categories(Vec<(String, Color32, usize)>, usize),
    /// The numeric range the ramp spans.
    Range(f32, f32),
}

/// Every item's colour under `column` (or [`PLAIN`]), and the legend.
pub fn colors_for(n: usize, column: Option<&Column>) -> (Vec<Color32>, Legend) {
    match column {
        None => (vec![PLAIN; n], Legend::None),
        Some(Column::Category { names, codes }) => {
            let mut counts = vec![0usize; names.len()];
            let colors = (0..n)
                .map(|i| match codes.get(i).copied().flatten() {
                    Some(c) => {
                        if let Some(k) = counts.get_mut(c as usize) {
                            *k += 1;
                        }
                        category_color(c)
                    }
                    None => MISSING,
                })
                .collect();
            let shown: Vec<(String, Color32, usize)> = names
                .iter()
                .zip(&counts)
                .take(PALETTE.len())
                .enumerate()
                .map(|(i, (name, k))| (name.clone(), category_color(i as u32), *k))
                .collect();
            let other = counts.iter().skip(PALETTE.len()).sum();
            (colors, Legend::Categories(shown, other))
        }
        Some(Column::Number(v)) => {
            let (lo, hi) = v
                .iter()
                .filter(|x| x.is_finite())
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), x| {
                    (a.min(*x), b.max(*x))
                });
            if lo > hi {
                return (vec![MISSING; n], Legend::None);
            }
            let span = (hi - lo).max(f32::MIN_POSITIVE);
            let colors = (0..n)
                .map(|i| match v.get(i) {
                    Some(x) if x.is_finite() => ramp((x - lo) / span),
                    _ => MISSING,
                })
                .collect();
            (colors, Legend::Range(lo, hi))
        }
    }
}

/// Draws the legend.
pub fn legend_ui(ui: &mut egui::Ui, legend: &Legend) {
    match legend {
        Legend::None => {}
        Legend::Categories(list, other) => {
            for (name, color, count) in list {
                ui.horizontal(|ui| {
                    swatch(ui, *color);
                    ui.label(format!("{name} ({count})"));
                });
            }
            if *other > 0 {
                ui.horizontal(|ui| {
                    swatch(ui, OTHER);
                    ui.label(format!("other ({other})"));
                });
            }
        }
        Legend::Range(lo, hi) => {
            ui.horizontal(|ui| {
                ui.label(format_number(*lo));
                let (rect, _) = ui.allocate_exact_size(Vec2::new(120.0, 12.0), Sense::hover());
                let steps = 24;
                for s in 0..steps {
                    let x0 = rect.left() + rect.width() * s as f32 / steps as f32;
                    let x1 = rect.left() + rect.width() * (s + 1) as f32 / steps as f32;
                    ui.painter().rect_filled(
                        Rect::from_x_y_ranges(x0..=x1, rect.y_range()),
                        0.0,
                        ramp((s as f32 + 0.5) / steps as f32),
                    );
                }
                ui.label(format_number(*hi));
            });
        }
    }
}

fn swatch(ui: &mut egui::Ui, color: Color32) {
    let (rect, _) = ui.allocate_exact_size(Vec2::splat(10.0), Sense::hover());
    ui.painter().circle_filled(rect.center(), 5.0, color);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ramp_runs_from_its_first_to_its_last_stop() {
        assert_eq!(ramp(0.0), Color32::from_rgb(68, 1, 84));
        assert_eq!(ramp(1.0), Color32::from_rgb(253, 231, 37));
        assert_eq!(ramp(0.5), Color32::from_rgb(33, 144, 141));
    }

    #[test]
    fn numbers_span_the_ramp_and_missing_values_are_grey() {
        let (c, legend) = colors_for(3, Some(&Column::Number(vec![2.0, f32::NAN, 6.0])));
        assert_eq!(c, vec![ramp(0.0), MISSING, ramp(1.0)]);
        assert_eq!(legend, Legend::Range(2.0, 6.0));
    }

    #[test]
    fn categories_count_their_items() {
        let col = Column::category(&[Some("x"), Some("y"), Some("x"), None]);
        let (c, legend) = colors_for(4, Some(&col));
        assert_eq!(c[0], c[2]);
        assert_ne!(c[0], c[1]);
        assert_eq!(c[3], MISSING);
        let Legend::Categories(list, 0) = legend else {
            panic!("{legend:?}")
        };
        assert_eq!(list[0].0, "x");
        assert_eq!(list[0].2, 2);
    }
}
