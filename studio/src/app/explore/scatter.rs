//! The 2D map: a camera (pan, zoom about the pointer, fit) and a uniform-grid index over the
//! map coordinates that finds the point under the pointer without scanning every point.

use egui::{Pos2, Rect, Vec2};

/// The 2D camera: `scale` screen points per map unit, `center` the map point at the plot's
/// centre; map y grows upwards.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Camera2 {
    pub center: [f32; 2],
    pub scale: f32,
}

impl Default for Camera2 {
    fn default() -> Self {
        Camera2 {
            center: [0.0, 0.0],
            scale: 1.0,
        }
    }
}

impl Camera2 {
    /// The camera that shows every point of `xy` inside `rect`, with a margin.
    pub fn fit(xy: &[[f32; 2]], rect: Rect) -> Camera2 {
        let Some((lo, hi)) = bounds(xy) else {
            return Camera2::default();
        };
        let span = [(hi[0] - lo[0]).max(1e-6), (hi[1] - lo[1]).max(1e-6)];
        Camera2 {
            center: [(lo[0] + hi[0]) * 0.5, (lo[1] + hi[1]) * 0.5],
            scale: 0.9 * (rect.width() / span[0]).min(rect.height() / span[1]),
        }
    }

    /// Where map point `p` is on screen.
    #[inline]
    pub fn to_screen(&self, rect: Rect, p: [f32; 2]) -> Pos2 {
        let c = rect.center();
        Pos2::new(
            c.x + (p[0] - self.center[0]) * self.scale,
            c.y - (p[1] - self.center[1]) * self.scale,
        )
    }

    /// The map point under screen point `s`.
    pub fn to_map(&self, rect: Rect, s: Pos2) -> [f32; 2] {
        let c = rect.center();
        [
            self.center[0] + (s.x - c.x) / self.scale,
            self.center[1] - (s.y - c.y) / self.scale,
        ]
    }

    /// Moves the view by a screen-space drag.
    pub fn pan(&mut self, delta: Vec2) {
        self.center[0] -= delta.x / self.scale;
        self.center[1] += delta.y / self.scale;
    }

    /// Zooms by `factor`, keeping the map point under `at` where it is.
    pub fn zoom(&mut self, rect: Rect, at: Pos2, factor: f32) {
        let before = self.to_map(rect, at);
        self.scale = (self.scale * factor).clamp(1e-6, 1e9);
        let after = self.to_map(rect, at);
        self.center[0] += before[0] - after[0];
        self.center[1] += before[1] - after[1];
    }
}

/// The smallest and largest coordinates of the finite points.
pub fn bounds(xy: &[[f32; 2]]) -> Option<([f32; 2], [f32; 2])> {
    let mut lo = [f32::INFINITY; 2];
    let mut hi = [f32::NEG_INFINITY; 2];
    for p in xy.iter().filter(|p| p[0].is_finite() && p[1].is_finite()) {
        for k in 0..2 {
            lo[k] = lo[k].min(p[k]);
            hi[k] = hi[k].max(p[k]);
        }
    }
    (lo[0] <= hi[0]).then_some((lo, hi))
}

/// A uniform grid over the map: each cell lists the points inside it (about 4 per cell).
#[derive(Clone, Debug, Default)]
pub struct GridIndex {
    lo: [f32; 2],
    cell: f32,
    cols: usize,
    rows: usize,
    /// Cell start offsets into `items` (`cols * rows + 1` entries).
    starts: Vec<u32>,
    items: Vec<u32>,
}

impl GridIndex {
    /// Indexes `xy` (non-finite points are left out).
    pub fn build(xy: &[[f32; 2]]) -> GridIndex {
        let Some((lo, hi)) = bounds(xy) else {
            return GridIndex::default();
        };
        let span = [(hi[0] - lo[0]).max(1e-6), (hi[1] - lo[1]).max(1e-6)];
        let cells = (xy.len() / 4).clamp(1, 1 << 20) as f32;
        let cell = ((span[0] * span[1]) / cells)
            .sqrt()
            .max(span[0].max(span[1]) / 2048.0);
        let cols = (span[0] / cell).floor() as usize + 1;
        let rows = (span[1] / cell).floor() as usize + 1;
        let mut g = GridIndex {
            lo,
            cell,
            cols,
            rows,
            starts: vec![0; cols * rows + 1],
            items: Vec::new(),
        };
        let cell_of: Vec<Option<usize>> = xy.iter().map(|p| g.cell_of(*p)).collect();
        for c in cell_of.iter().flatten() {
            g.starts[c + 1] += 1;
        }
        for i in 0..cols * rows {
            g.starts[i + 1] += g.starts[i];
        }
        let mut fill = g.starts.clone();
        g.items = vec![0; g.starts[cols * rows] as usize];
        for (i, c) in cell_of.iter().enumerate() {
            if let Some(c) = c {
                g.items[fill[*c] as usize] = i as u32;
                fill[*c] += 1;
            }
        }
        g
    }

    fn cell_of(&self, p: [f32; 2]) -> Option<usize> {
        if !(p[0].is_finite() && p[1].is_finite()) || self.cols == 0 {
            return None;
        }
        let cx = ((p[0] - self.lo[0]) / self.cell).floor();
        let cy = ((p[1] - self.lo[1]) / self.cell).floor();
        (cx >= 0.0 && cy >= 0.0 && (cx as usize) < self.cols && (cy as usize) < self.rows)
            .then(|| cy as usize * self.cols + cx as usize)
    }

    /// The point of `xy` nearest to `p` within `radius` (map units), if any.
    pub fn nearest(&self, xy: &[[f32; 2]], p: [f32; 2], radius: f32) -> Option<usize> {
        if self.cols == 0 || radius.is_nan() || radius <= 0.0 {
            return None;
        }
        let range = |v: f32, lo: f32, n: usize| {
            let a = ((v - radius - lo) / self.cell).floor().max(0.0) as usize;
            let b = ((v + radius - lo) / self.cell).floor();
            if b < 0.0 {
                return None;
            }
            let b = (b as usize).min(n - 1);
            (a <= b).then_some((a, b))
        };
        let (x0, x1) = range(p[0], self.lo[0], self.cols)?;
        let (y0, y1) = range(p[1], self.lo[1], self.rows)?;
        let mut best: Option<(usize, f32)> = None;
        for cy in y0..=y1 {
            for cx in x0..=x1 {
                let c = cy * self.cols + cx;
                for &i in &self.items[self.starts[c] as usize..self.starts[c + 1] as usize] {
                    let q = xy[i as usize];
                    let d = (q[0] - p[0]).powi(2) + (q[1] - p[1]).powi(2);
                    if d <= radius * radius && best.is_none_or(|(_, bd)| d < bd) {
                        best = Some((i as usize, d));
                    }
                }
            }
        }
        best.map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(xy: &[[f32; 2]], p: [f32; 2], r: f32) -> Option<usize> {
        xy.iter()
            .enumerate()
            .map(|(i, q)| (i, (q[0] - p[0]).powi(2) + (q[1] - p[1]).powi(2)))
            .filter(|(_, d)| *d <= r * r)
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i)
    }

    #[test]
    fn the_grid_finds_the_same_nearest_point_as_a_scan() {
        let v = super::super::view::ExploreView::demo(3000, 3);
        let g = GridIndex::build(&v.xy);
        for k in 0..500 {
            let p = [
                -7.0 + 14.0 * ((k * 37) % 101) as f32 / 100.0,
                -7.0 + 14.0 * ((k * 53) % 97) as f32 / 96.0,
            ];
            for r in [0.05, 0.3, 2.0] {
                let a = g.nearest(&v.xy, p, r);
                let b = brute(&v.xy, p, r);
                // Equal distances may pick different points; compare the distances.
                let d = |i: Option<usize>| i.map(|i| (v.xy[i][0] - p[0]).hypot(v.xy[i][1] - p[1]));
                assert_eq!(d(a), d(b), "at {p:?} r {r}");
            }
        }
    }

    #[test]
    fn zoom_keeps_the_point_under_the_pointer() {
        let rect = Rect::from_min_size(Pos2::new(10.0, 20.0), Vec2::new(400.0, 300.0));
        let xy = [[0.0, 0.0], [10.0, 5.0]];
        let mut cam = Camera2::fit(&xy, rect);
        for p in xy {
            assert!(rect.contains(cam.to_screen(rect, p)));
        }
        let at = Pos2::new(100.0, 80.0);
        let before = cam.to_map(rect, at);
        cam.zoom(rect, at, 2.5);
        let after = cam.to_map(rect, at);
        assert!((before[0] - after[0]).abs() < 1e-4 && (before[1] - after[1]).abs() < 1e-4);
    }
}
