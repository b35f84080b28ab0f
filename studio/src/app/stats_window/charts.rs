//! The Statistics window's bar charts (`egui_plot`): images per day or week, images per graph,
//! compute seconds per model and per device.

use egui::Color32;
use egui_plot::{AxisHints, Bar, BarChart, GridInput, GridMark, Plot};
use engine::stats::{PeriodRow, Stats};

/// Days filled in with zeros between the first and the last day shown, at most this many (a
/// longer range shows only the days with runs).
const MAX_FILLED_DAYS: u32 = 400;

/// The least room between two labelled bars, in points.
const MIN_LABEL_PX: f32 = 84.0;

/// About the width of one label character, in points (a little more than egui's default font).
const CHAR_PX: f32 = 7.5;

/// About the width of a chart's value axis, in points.
const AXIS_PX: f32 = 50.0;

/// One bar chart: a name and a value per bar.
struct Bars<'a> {
    id: &'a str,
    title: &'a str,
    unit: &'a str,
    names: Vec<String>,
    values: Vec<f64>,
    color: Color32,
}

/// Every chart, for `stats`; `weekly` is the day/week switch.
pub(super) fn charts_ui(ui: &mut egui::Ui, stats: &Stats, weekly: &mut bool) {
    ui.horizontal(|ui| {
        ui.strong("Images per");
        ui.selectable_value(weekly, false, "day");
        ui.selectable_value(weekly, true, "week");
    });
    let (names, values) = if *weekly {
        period_bars(&stats.per_week)
    } else {
        day_bars(&stats.per_day)
    };
    let width = ui.available_width();
    bars_ui(
        ui,
        Bars {
            id: "stats-periods",
            title: "",
            unit: "images",
            names,
            values,
            color: Color32::from_rgb(90, 160, 230),
        },
        width,
        170.0,
    );
    let graphs = Bars {
        id: "stats-graphs",
        title: "Images per graph",
        unit: "images",
        names: stats.graphs.iter().map(|g| g.graph.clone()).collect(),
        values: stats.graphs.iter().map(|g| g.images as f64).collect(),
        color: Color32::from_rgb(120, 190, 120),
    };
    let models = stats.models.iter().chain(&stats.loras);
    let models = Bars {
        id: "stats-models",
        title: "Compute per model (s)",
        unit: "s",
        names: models.clone().map(|m| short_name(&m.name)).collect(),
        values: models.map(|m| m.seconds).collect(),
        color: Color32::from_rgb(220, 150, 80),
    };
    let devices = Bars {
        id: "stats-devices",
        title: "Compute per device (s)",
        unit: "s",
        names: stats.devices.iter().map(|d| d.device.clone()).collect(),
        values: stats.devices.iter().map(|d| d.seconds).collect(),
        color: Color32::from_rgb(190, 120, 200),
    };
    ui.columns(3, |cols| {
        for (col, bars) in cols.iter_mut().zip([graphs, models, devices]) {
            let w = col.available_width();
            bars_ui(col, bars, w, 150.0);
        }
    });
}

/// Periods as they come (weeks).
fn period_bars(rows: &[PeriodRow]) -> (Vec<String>, Vec<f64>) {
    (
        rows.iter().map(|r| r.period.clone()).collect(),
        rows.iter().map(|r| r.images as f64).collect(),
    )
}

/// Days, with the days without runs in between as zero bars (up to [`MAX_FILLED_DAYS`]).
fn day_bars(rows: &[PeriodRow]) -> (Vec<String>, Vec<f64>) {
    let days: Option<Vec<(u32, f64)>> = rows
        .iter()
        .map(|r| {
            engine::stats::parse_day(&r.period)
                .ok()
                .map(|d| (d, r.images as f64))
        })
        .collect();
    let (Some(days), Some(first), Some(last)) = (
        days.clone(),
        days.as_ref().and_then(|d| d.first().map(|x| x.0)),
        days.as_ref().and_then(|d| d.last().map(|x| x.0)),
    ) else {
        return period_bars(rows);
    };
    if last < first || last - first >= MAX_FILLED_DAYS {
        return period_bars(rows);
    }
    let mut values = vec![0.0; (last - first + 1) as usize];
    for (d, v) in days {
        if let Some(slot) = values.get_mut((d - first) as usize) {
            *slot += v;
        }
    }
    let names = (first..=last).map(engine::stats::format_day).collect();
    (names, values)
}

/// A model's name without its folders.
fn short_name(name: &str) -> String {
    std::path::Path::new(name)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| name.to_string())
}

/// A label that fits under a bar.
fn clip(name: &str, chars: usize) -> String {
    if name.chars().count() <= chars {
        name.to_string()
    } else {
        let head: String = name.chars().take(chars.saturating_sub(1)).collect();
        format!("{head}…")
    }
}

fn bars_ui(ui: &mut egui::Ui, b: Bars<'_>, width: f32, height: f32) {
    if !b.title.is_empty() {
        ui.strong(b.title);
    }
    if b.values.is_empty() {
        ui.label(egui::RichText::new("nothing in this range").weak());
        return;
    }
    let n = b.names.len();
    let unit = b.unit.to_string();
    let bars: Vec<Bar> = b
        .values
        .iter()
        .zip(&b.names)
        .enumerate()
        .map(|(i, (v, name))| {
            Bar::new(i as f64, *v)
                .name(format!("{name}: {} {unit}", trim_number(*v)))
                .width(0.7)
                .fill(b.color)
        })
        .collect();
    let names = b.names;
    // Label every `step`-th bar, `MIN_LABEL_PX` apart at least, clipped to fit that space.
    // The value axis takes about `AXIS_PX`; the bars span n + 0.2 units.
    let per_bar = (width - AXIS_PX).max(1.0) / (n as f32 + 0.2);
    let step = ((MIN_LABEL_PX / per_bar).ceil() as usize).max(1);
    let chars = ((per_bar * step as f32 / CHAR_PX) as usize)
        .saturating_sub(1)
        .clamp(3, 24);
    let axis = AxisHints::new_x()
        .label_spacing(8.0..=12.0)
        .formatter(move |mark, _| {
            let i = mark.value.round();
            if (mark.value - i).abs() > 1e-6 || i < 0.0 {
                return String::new();
            }
            names
                .get(i as usize)
                .map(|s| clip(s, chars))
                .unwrap_or_default()
        });
    Plot::new(b.id)
        .width(width)
        .height(height)
        .allow_drag(false)
        .allow_zoom(false)
        .allow_scroll(false)
        .show_grid([false, true])
        .include_y(0.0)
        .include_x(-0.6)
        .include_x(n as f64 - 0.4)
        .x_grid_spacer(move |_| {
            (0..n)
                .step_by(step)
                .map(|i| GridMark {
                    value: i as f64,
                    step_size: step as f64,
                })
                .collect()
        })
        .custom_x_axes(vec![axis])
        .y_grid_spacer(value_marks)
        // egui_plot's own labels round 0.5 steps to whole numbers (`2, 2, 1, 0, 0`).
        .y_axis_formatter(|mark, _| trim_number(mark.value))
        .label_formatter(|_| None)
        .show(ui, |p| {
            p.bar_chart(
                BarChart::new(b.id, bars)
                    .color(b.color)
                    .element_formatter(Box::new(|bar, _| bar.name.clone())),
            )
        });
}

/// About five value marks at 1, 2 or 5 times a power of ten (egui_plot's default powers of ten
/// leave a short chart of small counts with only its 0 labelled).
fn value_marks(input: GridInput) -> Vec<GridMark> {
    let (lo, hi) = input.bounds;
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0) {
        return Vec::new();
    }
    let step = nice_step(span / 5.0);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last)
        .map(|i| GridMark {
            value: i as f64 * step,
            step_size: step,
        })
        .collect()
}

/// The smallest of 1, 2, 5 × 10^k that is at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * mag)
}

/// `3`, `2.5`, `0.125`: no trailing zeros.
fn trim_number(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(period: &str, images: u64) -> PeriodRow {
        PeriodRow {
            period: period.into(),
            images,
            ..Default::default()
        }
    }

    #[test]
    fn days_between_are_zero() {
        let (names, values) = day_bars(&[row("2026-11-29", 2), row("2026-12-02", 5)]);
        assert_eq!(
            names,
            ["2026-11-29", "2026-11-30", "2026-12-01", "2026-12-02"]
        );
        assert_eq!(values, [2.0, 0.0, 0.0, 5.0]);
        let (names, _) = day_bars(&[row("2020-01-01", 1), row("2026-12-02", 1)]);
        assert_eq!(names.len(), 2, "a long range is not filled");
    }

    #[test]
    fn labels_fit() {
        assert_eq!(clip("brushed-metal-scratch", 8), "brushed…");
        assert_eq!(clip("cpu", 8), "cpu");
        assert_eq!(
            short_name("models/sd15/v1-5.safetensors"),
            "v1-5.safetensors"
        );
        assert_eq!(trim_number(2.5), "2.5");
        assert_eq!(trim_number(3.0), "3");
    }

    #[test]
    fn value_marks_are_round() {
        assert_eq!(nice_step(1.4), 2.0);
        assert_eq!(nice_step(0.8), 1.0);
        assert_eq!(nice_step(30.0), 50.0);
        assert_eq!(nice_step(100.0), 100.0);
        let marks = value_marks(GridInput {
            bounds: (-0.3, 7.4),
            base_step_size: 0.01,
        });
        let values: Vec<f64> = marks.iter().map(|m| m.value).collect();
        assert_eq!(values, [0.0, 2.0, 4.0, 6.0]);
    }
}
