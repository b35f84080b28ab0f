//! ROC and precision–recall curves as PNG images (docs/ARCHITECTURE.md, §15), drawn with
//! `plotters` into an RGB buffer (its bitmap backend, no image encoder) and encoded by
//! [`crate::codec`]. Text uses an embedded font (egui's Ubuntu Light, registered once with
//! plotters' `ab_glyph` backend), so nothing looks up system fonts.

use std::ops::Range;
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use super::metrics::{PrCurve, RocCurve};
use crate::error::{EngineError, Result};

/// The default plot size in pixels.
pub const PLOT_SIZE: (u32, u32) = (640, 480);

/// The colour of the curve (matplotlib's first colour).
pub const CURVE_RGB: [u8; 3] = [31, 119, 180];

/// The font family the plots use, registered from embedded bytes.
const FONT: &str = "sans-serif";

/// A rendered plot: the PNG and where its axes' data range lies in pixels, so callers (and
/// tests) can map data coordinates to pixels.
#[derive(Clone, Debug)]
pub struct Plot {
    pub png: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// Pixel columns of x = 0 … 1 (start, end exclusive).
    pub x_pixels: Range<i32>,
    /// Pixel rows of y = 1 … 0 (top to bottom).
    pub y_pixels: Range<i32>,
}

impl Plot {
    /// The pixel (column, row) of data point `(x, y)` in `[0, 1]²`.
    pub fn pixel(&self, x: f64, y: f64) -> (i32, i32) {
        let (xr, yr) = (&self.x_pixels, &self.y_pixels);
        let px = f64::from(xr.start) + x * f64::from(xr.end - xr.start - 1);
        let py = f64::from(yr.start) + (1.0 - y) * f64::from(yr.end - yr.start - 1);
        (px.round() as i32, py.round() as i32)
    }
}

fn font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        register_font(FONT, FontStyle::Normal, epaint_default_fonts::UBUNTU_LIGHT).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(EngineError::Inspect(
            "plot: the embedded font does not load".to_string(),
        ))
    }
}

fn plot_err(e: impl std::fmt::Display) -> EngineError {
    EngineError::Inspect(format!("plot: {e}"))
}

/// One curve on a unit square: title, axis names, legend text, points, and whether to draw
/// the chance diagonal.
struct Spec<'a> {
    title: &'a str,
    x_name: &'a str,
    y_name: &'a str,
    legend: String,
    x: &'a [f64],
    y: &'a [f64],
    step: bool,
    diagonal: bool,
}

fn draw(spec: &Spec, (w, h): (u32, u32)) -> Result<Plot> {
    font()?;
    if spec.x.len() != spec.y.len() || spec.x.is_empty() {
        return Err(EngineError::Inspect(format!(
            "plot {}: {} x values and {} y values",
            spec.title,
            spec.x.len(),
            spec.y.len()
        )));
    }
    let mut buf = vec![255u8; (w as usize) * (h as usize) * 3];
    let (x_pixels, y_pixels) = {
        let root =
            BitMapBackend::<plotters::backend::RGBPixel>::with_buffer_and_format(&mut buf, (w, h))
                .map_err(plot_err)?
                .into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(spec.title, (FONT, 22))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(52)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc(spec.x_name)
            .y_desc(spec.y_name)
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 16))
            .light_line_style(RGBColor(235, 235, 235))
            .bold_line_style(RGBColor(215, 215, 215))
            .draw()
            .map_err(plot_err)?;
        if spec.diagonal {
            chart
                .draw_series(DashedLineSeries::new(
                    [(0.0, 0.0), (1.0, 1.0)],
                    6,
                    4,
                    RGBColor(150, 150, 150).stroke_width(1),
                ))
                .map_err(plot_err)?;
        }
        let mut pts: Vec<(f64, f64)> = Vec::with_capacity(spec.x.len() * 2);
        for (i, (&x, &y)) in spec.x.iter().zip(spec.y).enumerate() {
            if spec.step && i > 0 {
                // PR curves are step functions: precision holds until recall moves.
                pts.push((x, spec.y[i - 1]));
            }
            pts.push((x, y));
        }
        let [r, g, b] = CURVE_RGB;
        let colour = RGBColor(r, g, b);
        chart
            .draw_series(LineSeries::new(pts, colour.stroke_width(2)))
            .map_err(plot_err)?
            .label(spec.legend.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font((FONT, 16))
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(180, 180, 180))
            .draw()
            .map_err(plot_err)?;
        let ranges = chart.plotting_area().get_pixel_range();
        root.present().map_err(plot_err)?;
        ranges
    };
    let png = png_rgb(w, h, &buf)?;
    Ok(Plot {
        png,
        width: w,
        height: h,
        x_pixels,
        y_pixels,
    })
}

fn png_rgb(w: u32, h: u32, rgb: &[u8]) -> Result<Vec<u8>> {
    let rgba: Vec<u8> = rgb
        .chunks_exact(3)
        .flat_map(|p| [p[0], p[1], p[2], 255])
        .collect();
    crate::codec::encode_rgba8_png(w, h, &rgba).map_err(plot_err)
}

/// The ROC curve (FPR → TPR) with the chance diagonal and `AUROC = …` in the legend.
pub fn roc_plot(roc: &RocCurve, auroc: f64, title: &str, size: (u32, u32)) -> Result<Plot> {
    draw(
        &Spec {
            title,
            x_name: "False positive rate",
            y_name: "True positive rate",
            legend: format!("AUROC = {auroc:.4}"),
            x: &roc.fpr,
            y: &roc.tpr,
            step: false,
            diagonal: true,
        },
        size,
    )
}

/// The precision–recall curve (recall → precision, as a step function) with `AP = …` in the
/// legend.
pub fn pr_plot(pr: &PrCurve, ap: f64, title: &str, size: (u32, u32)) -> Result<Plot> {
    draw(
        &Spec {
            title,
            x_name: "Recall",
            y_name: "Precision",
            legend: format!("AP = {ap:.4}"),
            x: &pr.recall,
            y: &pr.precision,
            step: true,
            diagonal: false,
        },
        size,
    )
}
