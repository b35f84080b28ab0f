//! The painter's shape tools as mask operations: a rectangle, an ellipse or a polygon/lasso is
//! filled (or erased) with anti-aliased edges. Every shape becomes a closed polygon and goes
//! through one scanline rasteriser: four sub-rows per pixel row, exact horizontal overlap per
//! sub-row, even-odd fill (a lasso that crosses itself leaves the crossed loop out, as GIMP's
//! free select does). Coordinates are mask pixels: pixel (x, y) covers [x, x+1) × [y, y+1).

use egui::Pos2;
use engine::Mask;

/// Sub-rows per pixel row.
const SUB: usize = 4;

/// The shape tools (the brush paints dabs instead; see `MaskPainter::dab`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    Brush,
    Rectangle,
    Ellipse,
    /// Click points (double-click or Enter closes), or drag a free path (closes on release).
    Lasso,
}

impl Tool {
    pub const ALL: [Tool; 4] = [Tool::Brush, Tool::Rectangle, Tool::Ellipse, Tool::Lasso];

    pub fn label(self) -> &'static str {
        match self {
            Tool::Brush => "🖌 Brush",
            Tool::Rectangle => "⬛ Rectangle",
            Tool::Ellipse => "⬤ Ellipse",
            Tool::Lasso => "➰ Lasso",
        }
    }
}

/// The rectangle with corners `a` and `b` (any two opposite corners), as a polygon.
pub fn rect_polygon(a: Pos2, b: Pos2) -> Vec<Pos2> {
    let (x0, x1) = (a.x.min(b.x), a.x.max(b.x));
    let (y0, y1) = (a.y.min(b.y), a.y.max(b.y));
    vec![
        Pos2::new(x0, y0),
        Pos2::new(x1, y0),
        Pos2::new(x1, y1),
        Pos2::new(x0, y1),
    ]
}

/// The ellipse inscribed in the rectangle with corners `a` and `b`, as a polygon whose sides
/// are at most about one pixel long (its error is under 1/(8·radius) of a pixel).
pub fn ellipse_polygon(a: Pos2, b: Pos2) -> Vec<Pos2> {
    let c = Pos2::new((a.x + b.x) / 2.0, (a.y + b.y) / 2.0);
    let (rx, ry) = ((a.x - b.x).abs() / 2.0, (a.y - b.y).abs() / 2.0);
    let n = ((std::f32::consts::TAU * rx.max(ry)).ceil() as usize).clamp(16, 8192);
    (0..n)
        .map(|i| {
            let t = std::f32::consts::TAU * i as f32 / n as f32;
            Pos2::new(c.x + rx * t.cos(), c.y + ry * t.sin())
        })
        .collect()
}

/// How much of each pixel the closed polygon `pts` covers (0..1), row-major `w`×`h`, for the
/// rows `y0..y1` it touches; `None` when it touches no pixel (fewer than 3 points, empty, or
/// outside the mask).
pub fn coverage(pts: &[Pos2], w: u32, h: u32) -> Option<(usize, usize, Vec<f32>)> {
    if pts.len() < 3 || w == 0 || h == 0 {
        return None;
    }
    let finite = pts.iter().all(|p| p.x.is_finite() && p.y.is_finite());
    if !finite {
        return None;
    }
    let (w, h) = (w as usize, h as usize);
    let ymin = pts.iter().map(|p| p.y).fold(f32::INFINITY, f32::min);
    let ymax = pts.iter().map(|p| p.y).fold(f32::NEG_INFINITY, f32::max);
    let y0 = (ymin.floor().max(0.0) as usize).min(h);
    let y1 = (ymax.ceil().max(0.0) as usize).min(h);
    let xmin = pts.iter().map(|p| p.x).fold(f32::INFINITY, f32::min);
    let xmax = pts.iter().map(|p| p.x).fold(f32::NEG_INFINITY, f32::max);
    if y0 >= y1 || xmax <= 0.0 || xmin >= w as f32 || xmax <= xmin {
        return None;
    }
    let mut acc = vec![0.0f32; (y1 - y0) * w];
    let mut xs: Vec<f32> = Vec::new();
    for y in y0..y1 {
        let row = &mut acc[(y - y0) * w..(y - y0 + 1) * w];
        for k in 0..SUB {
            let sy = y as f32 + (k as f32 + 0.5) / SUB as f32;
            xs.clear();
            for i in 0..pts.len() {
                let (p, q) = (pts[i], pts[(i + 1) % pts.len()]);
                if (p.y <= sy) != (q.y <= sy) {
                    xs.push(p.x + (sy - p.y) * (q.x - p.x) / (q.y - p.y));
                }
            }
            xs.sort_by(f32::total_cmp);
            for span in xs.chunks_exact(2) {
                let (a, b) = (span[0].clamp(0.0, w as f32), span[1].clamp(0.0, w as f32));
                if b <= a {
                    continue;
                }
                let (first, last) = (a.floor() as usize, (b.ceil() as usize).min(w));
                for (x, v) in row.iter_mut().enumerate().take(last).skip(first) {
                    let overlap = b.min(x as f32 + 1.0) - a.max(x as f32);
                    if overlap > 0.0 {
                        *v += overlap / SUB as f32;
                    }
                }
            }
        }
    }
    Some((y0, y1, acc))
}

/// Fills the closed polygon `pts` into `mask` (each pixel at least its coverage), or erases it
/// (each pixel at most one minus its coverage), the way the brush paints and erases.
/// Returns whether the shape covers any pixel.
pub fn fill_polygon(mask: &mut Mask, pts: &[Pos2], erase: bool) -> bool {
    let Some((y0, y1, acc)) = coverage(pts, mask.width, mask.height) else {
        return false;
    };
    let w = mask.width as usize;
    let rows = &mut mask.data[y0 * w..y1 * w];
    let mut touched = false;
    for (m, c) in rows.iter_mut().zip(acc) {
        let c = c.clamp(0.0, 1.0);
        if c > 0.0 {
            *m = if erase { m.min(1.0 - c) } else { m.max(c) };
            touched = true;
        }
    }
    touched
}
