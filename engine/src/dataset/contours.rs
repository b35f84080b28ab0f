//! Outer boundary tracing on pixel corners, plus a guarded polygon simplification.
//!
//! The tracer walks the cracks between inside and outside pixels, keeping the
//! component on its right (clockwise on screen, y down). Turning left whenever the
//! pixel ahead-left is inside follows diagonal contacts, so the traced outline is that
//! of the whole 8-connected component. Holes are not traced (outer boundary only).

/// Direction vectors: right, down, left, up (turning right = index + 1).
const DIRS: [(i64, i64); 4] = [(1, 0), (0, 1), (-1, 0), (0, -1)];

/// Traces the outer boundary of the component containing pixel `start`, which must be
/// its first pixel in raster order. Returns the corner points where the boundary turns
/// (an exact polygon on pixel corners, clockwise in image coordinates).
pub(crate) fn trace_outer(
    width: u32,
    height: u32,
    start: (u32, u32),
    inside: impl Fn(i64, i64) -> bool,
) -> Vec<(i64, i64)> {
    let (sx, sy) = (i64::from(start.0), i64::from(start.1));
    let mut pts = vec![(sx, sy)];
    let (mut x, mut y, mut d) = (sx, sy, 0usize);
    // Each corner is visited at most a few times; this bound only guards bad input.
    let max_steps = 4 * (u64::from(width) + 2) * (u64::from(height) + 2);
    for _ in 0..max_steps {
        let (dx, dy) = DIRS[d];
        x += dx;
        y += dy;
        if (x, y) == (sx, sy) {
            return pts;
        }
        // Pixel whose centre is half a step ahead and half a step to the given side.
        let pixel = |(ox, oy): (i64, i64)| {
            let px = if dx + ox > 0 { x } else { x - 1 };
            let py = if dy + oy > 0 { y } else { y - 1 };
            inside(px, py)
        };
        let right = (-dy, dx);
        let left = (dy, -dx);
        let nd = if pixel(left) {
            (d + 3) % 4
        } else if pixel(right) {
            d
        } else {
            (d + 1) % 4
        };
        if nd != d {
            pts.push((x, y));
        }
        d = nd;
    }
    pts
}

/// Twice the signed area of a closed polygon (shoelace formula).
fn area2(pts: &[(f64, f64)]) -> f64 {
    let n = pts.len();
    (0..n)
        .map(|i| {
            let (a, b) = (pts[i], pts[(i + 1) % n]);
            a.0 * b.1 - b.0 * a.1
        })
        .sum()
}

/// Perimeter of a closed polygon.
fn perimeter(pts: &[(f64, f64)]) -> f64 {
    let n = pts.len();
    (0..n)
        .map(|i| {
            let (a, b) = (pts[i], pts[(i + 1) % n]);
            (a.0 - b.0).hypot(a.1 - b.1)
        })
        .sum()
}

/// Distance from `p` to the segment `a`-`b`.
fn seg_dist(p: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    let (vx, vy) = (b.0 - a.0, b.1 - a.1);
    let len2 = vx * vx + vy * vy;
    let t = if len2 > 0.0 {
        (((p.0 - a.0) * vx + (p.1 - a.1) * vy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    (p.0 - a.0 - t * vx).hypot(p.1 - a.1 - t * vy)
}

/// Douglas–Peucker on the open chain `pts[lo..=hi]`; marks kept vertices in `keep`.
fn douglas_peucker(pts: &[(f64, f64)], lo: usize, hi: usize, eps: f64, keep: &mut [bool]) {
    let mut stack = vec![(lo, hi)];
    while let Some((a, b)) = stack.pop() {
        keep[a] = true;
        keep[b % pts.len()] = true;
        let (pa, pb) = (pts[a], pts[b % pts.len()]);
        let mut best = (0.0, a);
        for (i, &p) in pts.iter().enumerate().take(b).skip(a + 1) {
            let dist = seg_dist(p, pa, pb);
            if dist > best.0 {
                best = (dist, i);
            }
        }
        if best.0 > eps {
            stack.push((a, best.1));
            stack.push((best.1, b));
        }
    }
}

/// Simplifies an exact pixel-corner polygon with Douglas–Peucker. The tolerance is at
/// most half a pixel and is shrunk for small shapes so that `eps * perimeter` (a bound
/// on the area that can change) stays within 4 % of the polygon's area; the exact
/// polygon is kept when simplification would leave fewer than 3 points.
pub(crate) fn simplify(exact: &[(i64, i64)]) -> Vec<(f32, f32)> {
    let pts: Vec<(f64, f64)> = exact.iter().map(|&(x, y)| (x as f64, y as f64)).collect();
    let as_f32 = |p: &[(f64, f64)]| p.iter().map(|&(x, y)| (x as f32, y as f32)).collect();
    let n = pts.len();
    if n <= 4 {
        return as_f32(&pts);
    }
    let area = area2(&pts).abs() / 2.0;
    let eps = (0.04 * area / perimeter(&pts).max(1.0)).min(0.5);
    // Split the ring at vertex 0 and the vertex farthest from it.
    let far = (1..n)
        .max_by(|&i, &j| {
            let di = (pts[i].0 - pts[0].0).hypot(pts[i].1 - pts[0].1);
            let dj = (pts[j].0 - pts[0].0).hypot(pts[j].1 - pts[0].1);
            di.total_cmp(&dj)
        })
        .unwrap_or(n / 2);
    let mut keep = vec![false; n];
    douglas_peucker(&pts, 0, far, eps, &mut keep);
    // Second half wraps around: index n stands for vertex 0.
    let mut ring = pts.clone();
    ring.push(pts[0]);
    let mut keep2 = vec![false; n + 1];
    douglas_peucker(&ring, far, n, eps, &mut keep2);
    let out: Vec<(f64, f64)> = (0..n)
        .filter(|&i| keep[i] || keep2[i])
        .map(|i| pts[i])
        .collect();
    if out.len() < 3 {
        return as_f32(&pts);
    }
    as_f32(&out)
}

/// Polygon of the outer boundary of a component mask (row-major `width x height`),
/// on pixel corners: the point `(x, y)` is the top-left corner of pixel `(x, y)`, so
/// coordinates range over `0..=width` and `0..=height`. The polygon runs clockwise in
/// image coordinates (y down), is simplified (tolerance ≤ 0.5 px, reduced for small
/// shapes), and ignores holes. If the mask holds several components, the first in
/// raster order is traced. Empty mask: empty polygon.
pub fn outer_contour(component: &[bool], width: u32, height: u32) -> Vec<(f32, f32)> {
    let w = width as usize;
    let n = (w * height as usize).min(component.len());
    let Some(first) = (0..n).find(|&i| component[i]) else {
        return Vec::new();
    };
    let start = ((first % w) as u32, (first / w) as u32);
    let inside = |x: i64, y: i64| {
        x >= 0
            && y >= 0
            && x < i64::from(width)
            && y < i64::from(height)
            && component
                .get(y as usize * w + x as usize)
                .copied()
                .unwrap_or(false)
    };
    simplify(&trace_outer(width, height, start, inside))
}

/// Test helper: fills a polygon by sampling pixel centres with the even–odd rule.
#[cfg(test)]
pub(crate) fn fill_polygon(poly: &[(f32, f32)], width: u32, height: u32) -> Vec<bool> {
    let mut out = vec![false; (width * height) as usize];
    let n = poly.len();
    for y in 0..height {
        let cy = y as f64 + 0.5;
        let mut xs: Vec<f64> = Vec::new();
        for i in 0..n {
            let (a, b) = (poly[i], poly[(i + 1) % n]);
            let (ax, ay, bx, by) = (a.0 as f64, a.1 as f64, b.0 as f64, b.1 as f64);
            // Half-open rule: an edge counts when cy is in [min, max).
            if (ay <= cy && cy < by) || (by <= cy && cy < ay) {
                xs.push(ax + (cy - ay) * (bx - ax) / (by - ay));
            }
        }
        xs.sort_by(|a, b| a.total_cmp(b));
        for pair in xs.chunks(2) {
            if let [x0, x1] = pair {
                for x in 0..width {
                    let cx = x as f64 + 0.5;
                    if cx >= *x0 && cx < *x1 {
                        out[(y * width + x) as usize] = true;
                    }
                }
            }
        }
    }
    out
}

/// Test helper: intersection over union of two masks.
#[cfg(test)]
pub(crate) fn iou(a: &[bool], b: &[bool]) -> f64 {
    let inter = a.iter().zip(b).filter(|(p, q)| **p && **q).count();
    let union = a.iter().zip(b).filter(|(p, q)| **p || **q).count();
    if union == 0 {
        1.0
    } else {
        inter as f64 / union as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::components::components;
    use crate::dataset::components::tests::parse;

    #[test]
    fn single_pixel_and_rectangle() {
        let (m, w, h) = parse(&["...", ".#.", "..."]);
        assert_eq!(
            outer_contour(&m, w, h),
            vec![(1.0, 1.0), (2.0, 1.0), (2.0, 2.0), (1.0, 2.0)]
        );
        let (m, w, h) = parse(&["....", ".###", ".###"]);
        assert_eq!(
            outer_contour(&m, w, h),
            vec![(1.0, 1.0), (4.0, 1.0), (4.0, 3.0), (1.0, 3.0)]
        );
    }

    #[test]
    fn exact_trace_fills_back_exactly() {
        let shapes: [&[&str]; 4] = [
            &["#..", ".#.", "..#"],
            &[".#.", "###", ".#."],
            &["##..#", "#.#.#", "#..##", ".##.."],
            &["..##", ".#..", "#...", "####"],
        ];
        for rows in shapes {
            let (m, w, h) = parse(rows);
            let comps = components(&m, w, h);
            assert_eq!(comps.len(), 1, "{rows:?}");
            let lab = crate::dataset::components::label_components(&m, w, h);
            let exact = trace_outer(w, h, lab.comps[0].first, |x, y| lab.is(0, x, y));
            let poly: Vec<(f32, f32)> = exact.iter().map(|&(x, y)| (x as f32, y as f32)).collect();
            let filled = fill_polygon(&poly, w, h);
            // No holes in these shapes except the middle of the third, which the outer
            // contour fills: compare against the mask with holes filled.
            let mut expected = m.clone();
            if rows[1] == "#.#.#" {
                expected[(w + 1) as usize] = true;
                expected[(2 * w + 1) as usize] = true;
                expected[(2 * w + 2) as usize] = true;
            }
            assert_eq!(filled, expected, "{rows:?} -> {poly:?}");
        }
    }

    #[test]
    fn discs_iou_after_simplification() {
        for r in [3.2f64, 5.0, 11.5, 40.0] {
            let (w, h) = (100u32, 100u32);
            let m: Vec<bool> = (0..w * h)
                .map(|i| {
                    let (x, y) = ((i % w) as f64 + 0.5, (i / w) as f64 + 0.5);
                    (x - 50.3).powi(2) + ((y - 47.0) * 1.3).powi(2) <= r * r
                })
                .collect();
            let poly = outer_contour(&m, w, h);
            assert!(poly.len() >= 3);
            let score = iou(&fill_polygon(&poly, w, h), &m);
            assert!(score >= 0.9, "r={r}: IoU {score}, {} points", poly.len());
        }
    }
}
