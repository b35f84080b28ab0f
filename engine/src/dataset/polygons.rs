//! YOLO-seg polygons that Ultralytics rasterises back to the exact mask.
//!
//! Ultralytics turns a label line into a mask with `polygons2masks`: the normalised points
//! are scaled to pixels, truncated to `int32` and filled with `cv2.fillPoly`, which fills
//! by the even–odd rule **and draws every edge** (8-connected lines). So a polygon whose
//! vertices are the *centres of the region's boundary pixels* fills back exactly that region:
//!
//! * **Outer boundary:** the region's border pixels in order (clockwise, y down), found by
//!   walking the cracks between region and background with the region on the right;
//!   straight runs are merged (lossless: same edges, same pixels drawn).
//! * **Holes** (background 4-components enclosed by the region): each hole's ring of
//!   border pixels is joined to the polygon by a **zero-width bridge**: a vertical segment
//!   from the hole's top border pixel straight up through region pixels to the first pixel
//!   already on the polygon (the outer ring or an earlier hole), walked down and back up.
//!   Even–odd filling counts the two bridge edges twice, so they cancel; fillPoly draws them
//!   over region pixels only, so the hole stays empty and nothing outside is added.
//! * **Several regions in one instance** (`per-defect`): joined as Ultralytics'
//!   `merge_multi_segment` joins them: region `i` to region `i − 1` by a two-way segment
//!   between their closest vertices. Those bridges cross background, which fillPoly draws
//!   (a one-pixel line per bridge) — Ultralytics' own convention for multi-part instances.
//!
//! Vertices are pixel indices `(x, y)`; the label file writes `(x + 0.5) / w, (y + 0.5) / h`,
//! the pixel centre in continuous coordinates, so Ultralytics' `int32` truncation at the
//! image's own size lands on the pixel itself whatever the rounding of the six decimals.

use super::components::Labels;

/// Direction vectors: right, down, left, up (turning right = index + 1).
const DIRS: [(i64, i64); 4] = [(1, 0), (0, 1), (-1, 0), (0, -1)];

/// Walks the cracks between `inside` (8-connected, kept on the right) and the background
/// from corner `start` in direction `dir` until it returns there, and returns the inside
/// pixels on the right of each crack, consecutive repeats removed (a closed ring: the last
/// pixel is not the first again).
fn trace_ring(
    start: (i64, i64),
    dir: usize,
    max_steps: u64,
    inside: impl Fn(i64, i64) -> bool,
) -> Vec<(i64, i64)> {
    let (mut x, mut y, mut d) = (start.0, start.1, dir);
    let mut ring: Vec<(i64, i64)> = Vec::new();
    for _ in 0..max_steps {
        let (dx, dy) = DIRS[d];
        // The pixel right of the crack from (x, y) along d.
        let px = if dx - dy > 0 { x } else { x - 1 };
        let py = if dy + dx > 0 { y } else { y - 1 };
        if ring.last() != Some(&(px, py)) {
            ring.push((px, py));
        }
        x += dx;
        y += dy;
        // Pixel whose centre is half a step ahead and half a step to the given side.
        let pixel = |(ox, oy): (i64, i64)| {
            let qx = if dx + ox > 0 { x } else { x - 1 };
            let qy = if dy + oy > 0 { y } else { y - 1 };
            inside(qx, qy)
        };
        d = if pixel((dy, -dx)) {
            (d + 3) % 4
        } else if pixel((-dy, dx)) {
            d
        } else {
            (d + 1) % 4
        };
        if (x, y, d) == (start.0, start.1, dir) {
            break;
        }
    }
    if ring.len() > 1 && ring.first() == ring.last() {
        ring.pop();
    }
    ring
}

/// The step from `a` to `b` reduced to its direction (divided by the gcd).
fn direction(a: (i64, i64), b: (i64, i64)) -> (i64, i64) {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let (mut p, mut q) = (dx.abs(), dy.abs());
    while q != 0 {
        (p, q) = (q, p % q);
    }
    if p == 0 {
        (0, 0)
    } else {
        (dx / p, dy / p)
    }
}

/// Drops vertices in the middle of a straight run (same direction in and out) and
/// consecutive repeats. Lossless for fillPoly: the same pixels are drawn and every scanline
/// crosses the same edges.
pub(crate) fn compress(ring: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let mut pts: Vec<(i64, i64)> = Vec::with_capacity(ring.len());
    for &p in ring {
        if pts.last() != Some(&p) {
            pts.push(p);
        }
    }
    while pts.len() > 1 && pts.first() == pts.last() {
        pts.pop();
    }
    let n = pts.len();
    if n < 3 {
        return pts;
    }
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let (prev, cur, next) = (pts[(i + n - 1) % n], pts[i], pts[(i + 1) % n]);
        if direction(prev, cur) != direction(cur, next) {
            out.push(cur);
        }
    }
    if out.is_empty() {
        // A straight back-and-forth never reaches here (directions reverse); keep safe.
        return pts;
    }
    out
}

/// Rings joined into one closed path by two-way bridges. Each ring after the first hangs
/// off a vertex of an earlier ring; [`Joined::flatten`] walks ring 0 and, at each vertex
/// with rings hanging off it, goes round each of them and back (`at → child… →
/// child[start] → at`). Built once and flattened once: linear in the vertex count.
struct Joined {
    rings: Vec<Vec<(i64, i64)>>,
    /// `(parent ring, vertex index)` → `(child ring, start index)`, in insertion order.
    children: std::collections::HashMap<(usize, usize), Vec<(usize, usize)>>,
}

impl Joined {
    fn new(first: Vec<(i64, i64)>) -> Self {
        Joined {
            rings: vec![first],
            children: Default::default(),
        }
    }

    /// Hangs `ring` (walked from index `start`) off vertex `at` of ring `parent`.
    fn attach(&mut self, parent: usize, at: usize, ring: Vec<(i64, i64)>, start: usize) {
        let r = self.rings.len();
        self.rings.push(ring);
        self.children
            .entry((parent, at))
            .or_default()
            .push((r, start));
    }

    /// The joined closed path.
    fn flatten(&self) -> Vec<(i64, i64)> {
        let total: usize = self.rings.iter().map(|r| r.len() + 2).sum();
        let mut out = Vec::with_capacity(total);
        // Frames: (ring, start, steps done, vertex to return to).
        type Frame = (usize, usize, usize, Option<(i64, i64)>);
        let mut stack: Vec<Frame> = vec![(0, 0, 0, None)];
        while let Some(frame) = stack.last_mut() {
            let (r, start, done, back) = *frame;
            let ring = &self.rings[r];
            if done == ring.len() {
                stack.pop();
                if let Some(at) = back {
                    if let Some(&first) = ring.get(start) {
                        out.push(first);
                    }
                    out.push(at);
                }
                continue;
            }
            let i = (start + done) % ring.len();
            frame.2 += 1;
            out.push(ring[i]);
            if let Some(kids) = self.children.get(&(r, i)) {
                // Pushed in reverse so that the first child is walked first.
                for &(c, cs) in kids.iter().rev() {
                    stack.push((c, cs, 0, Some(ring[i])));
                }
            }
        }
        out
    }
}

/// The polygon (pixel-index vertices, uncompressed) of component `k` of `lab`, holes
/// bridged in. See the module documentation for the rule.
pub(crate) fn region_polygon(lab: &Labels, k: usize) -> Vec<(i64, i64)> {
    let Some(comp) = lab.comps.get(k) else {
        return Vec::new();
    };
    let (w, h) = (i64::from(lab.width), i64::from(lab.height));
    let max_steps = 4 * (w as u64 + 2) * (h as u64 + 2);
    let inside = |x: i64, y: i64| lab.is(k, x, y);
    let (fx, fy) = (i64::from(comp.first.0), i64::from(comp.first.1));
    let mut joined = Joined::new(trace_ring((fx, fy), 0, max_steps, inside));
    // Where each traced pixel first occurs: (ring, index).
    let mut index: std::collections::HashMap<(i64, i64), (usize, usize)> = Default::default();
    for (i, &p) in joined.rings[0].iter().enumerate() {
        index.entry(p).or_insert((0, i));
    }
    for (hx, hy) in holes(lab, k) {
        let ring = trace_ring((hx + 1, hy), 2, max_steps, inside);
        // Straight up from the hole's top border pixel to the first pixel already traced:
        // the last region pixel before a non-region pixel (outside or an earlier hole).
        let mut top = hy - 1;
        while top > 0 && inside(hx, top - 1) {
            top -= 1;
        }
        let Some(&(parent, at)) = index.get(&(hx, top)) else {
            // Not expected (that pixel borders traced background); the hole then stays
            // filled rather than the region losing its outline.
            continue;
        };
        let r = joined.rings.len();
        for (i, &p) in ring.iter().enumerate() {
            index.entry(p).or_insert((r, i));
        }
        joined.attach(parent, at, ring, 0);
    }
    joined.flatten()
}

/// First pixels (raster order) of the holes of component `k`: the 4-connected pieces of
/// background inside its bounding box that do not reach the box's surrounding frame.
fn holes(lab: &Labels, k: usize) -> Vec<(i64, i64)> {
    let Some(comp) = lab.comps.get(k) else {
        return Vec::new();
    };
    let (x0, y0, x1, y1) = comp.bbox;
    if x1 - x0 < 2 || y1 - y0 < 2 {
        return Vec::new();
    }
    // Window = bbox grown by one pixel (may reach outside the image: that is background).
    let (ox, oy) = (i64::from(x0) - 1, i64::from(y0) - 1);
    let (ww, wh) = ((x1 - x0 + 3) as usize, (y1 - y0 + 3) as usize);
    // 0 = region, 1 = background not yet reached, 2 = outside (reached from the frame).
    let mut state: Vec<u8> = (0..ww * wh)
        .map(|i| {
            let (x, y) = (ox + (i % ww) as i64, oy + (i / ww) as i64);
            if lab.is(k, x, y) {
                0
            } else {
                1
            }
        })
        .collect();
    let mut stack: Vec<usize> = (0..ww * wh)
        .filter(|&i| {
            let (x, y) = (i % ww, i / ww);
            x == 0 || y == 0 || x == ww - 1 || y == wh - 1
        })
        .collect();
    for &i in &stack {
        state[i] = 2;
    }
    let flood = |stack: &mut Vec<usize>, state: &mut Vec<u8>, mark: u8| {
        while let Some(i) = stack.pop() {
            let (x, y) = (i % ww, i / ww);
            let mut visit = |j: usize| {
                if state[j] == 1 {
                    state[j] = mark;
                    stack.push(j);
                }
            };
            if x > 0 {
                visit(i - 1);
            }
            if x + 1 < ww {
                visit(i + 1);
            }
            if y > 0 {
                visit(i - ww);
            }
            if y + 1 < wh {
                visit(i + ww);
            }
        }
    };
    flood(&mut stack, &mut state, 2);
    let mut firsts = Vec::new();
    for i in 0..ww * wh {
        if state[i] == 1 {
            firsts.push((ox + (i % ww) as i64, oy + (i / ww) as i64));
            state[i] = 3;
            stack.push(i);
            flood(&mut stack, &mut state, 3);
        }
    }
    firsts
}

/// Joins several regions' polygons into one, as Ultralytics' `merge_multi_segment` does:
/// region `i` is linked to region `i − 1` by a two-way segment between their closest
/// vertices. One region: returned as it is.
pub(crate) fn merge_regions(regions: Vec<Vec<(i64, i64)>>) -> Vec<(i64, i64)> {
    let mut iter = regions.into_iter().filter(|r| !r.is_empty());
    let Some(first) = iter.next() else {
        return Vec::new();
    };
    let mut joined = Joined::new(first);
    for ring in iter {
        let prev = joined.rings.len() - 1;
        let mut best = (i64::MAX, 0usize, 0usize);
        for (i, a) in joined.rings[prev].iter().enumerate() {
            for (j, b) in ring.iter().enumerate() {
                let d = (a.0 - b.0).pow(2) + (a.1 - b.1).pow(2);
                if d < best.0 {
                    best = (d, i, j);
                }
            }
        }
        joined.attach(prev, best.1, ring, best.2);
    }
    joined.flatten()
}

/// Rasterises a polygon (pixel-index vertices) the way Ultralytics' `polygon2mask` does
/// with `cv2.fillPoly` at the image's own size: even–odd scanline fill of pixel rows
/// (an edge covers rows `y0 ≤ y < y1`; a span covers `ceil(xa) ..= floor(xb)`), plus every
/// edge drawn as an 8-connected line. Mirrors OpenCV's `FillEdgeCollection` and `Line`
/// for the axis-aligned and diagonal edges [`region_polygon`] produces; used by the tests
/// that check every example recipe.
pub fn rasterize_like_fillpoly(poly: &[(i64, i64)], width: u32, height: u32) -> Vec<bool> {
    let (w, h) = (i64::from(width), i64::from(height));
    let mut out = vec![false; (width as usize) * (height as usize)];
    let mut set = |x: i64, y: i64| {
        if x >= 0 && y >= 0 && x < w && y < h {
            out[(y * w + x) as usize] = true;
        }
    };
    let n = poly.len();
    // Edges as 8-connected lines (Bresenham).
    for i in 0..n {
        let (a, b) = (poly[i], poly[(i + 1) % n]);
        let (dx, dy) = ((b.0 - a.0).abs(), (b.1 - a.1).abs());
        let (sx, sy) = ((b.0 - a.0).signum(), (b.1 - a.1).signum());
        let (mut x, mut y) = a;
        let mut err = dx - dy;
        loop {
            set(x, y);
            if (x, y) == b {
                break;
            }
            let e2 = 2 * err;
            if e2 > -dy {
                err -= dy;
                x += sx;
            }
            if e2 < dx {
                err += dx;
                y += sy;
            }
        }
    }
    // Even–odd interior.
    for y in 0..h {
        let mut xs: Vec<f64> = Vec::new();
        for i in 0..n {
            let (a, b) = (poly[i], poly[(i + 1) % n]);
            let (lo, hi) = if a.1 < b.1 { (a, b) } else { (b, a) };
            if lo.1 == hi.1 || y < lo.1 || y >= hi.1 {
                continue;
            }
            let t = (y - lo.1) as f64 / (hi.1 - lo.1) as f64;
            xs.push(lo.0 as f64 + t * (hi.0 - lo.0) as f64);
        }
        xs.sort_by(|a, b| a.total_cmp(b));
        for pair in xs.chunks(2) {
            if let [xa, xb] = pair {
                let (from, to) = (xa.ceil() as i64, xb.floor() as i64);
                for x in from..=to {
                    set(x, y);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::components::label_components;
    use crate::dataset::components::tests::parse;

    /// Every component's polygon fills back exactly that component.
    fn assert_exact(rows: &[&str]) {
        let (m, w, h) = parse(rows);
        let lab = label_components(&m, w, h);
        assert!(!lab.comps.is_empty());
        for k in 0..lab.comps.len() {
            let poly = compress(&region_polygon(&lab, k));
            let filled = rasterize_like_fillpoly(&poly, w, h);
            let want: Vec<bool> = lab.labels.iter().map(|&l| l == k as u32 + 1).collect();
            assert_eq!(filled, want, "{rows:?} component {k}: {poly:?}");
        }
    }

    #[test]
    fn simple_shapes_fill_back_exactly() {
        assert_exact(&["...", ".#.", "..."]);
        assert_exact(&["#"]);
        assert_exact(&["....", ".###", ".###"]);
        assert_exact(&["#..", ".#.", "..#"]);
        assert_exact(&[".#.", "###", ".#."]);
        assert_exact(&["..##", ".#..", "#...", "####"]);
        assert_exact(&["#.#", "...", "#.#"]);
        assert_exact(&["####", "#...", "#.##", "#..#"]);
    }

    #[test]
    fn holes_stay_empty() {
        assert_exact(&["#####", "#...#", "#...#", "#####"]);
        assert_exact(&["##..#", "#.#.#", "#..##", ".##.."]);
        // Two holes side by side and one below another, an island in a hole, a hole whose
        // bridge must pass another hole, and a hole touching the border diagonally.
        assert_exact(&[
            "#########",
            "#..#.#..#",
            "#..#.####",
            "####.#..#",
            "#..###..#",
            "#.#######",
            "#########",
        ]);
        assert_exact(&[
            "#######", "#.....#", "#.###.#", "#.#.#.#", "#.###.#", "#.....#", "#######",
        ]);
        assert_exact(&["#####", "#.#.#", "#####", "#.#.#", "#####"]);
        assert_exact(&[".###.", "#...#", "#...#", ".###."]);
    }

    #[test]
    fn random_blobs_fill_back_exactly() {
        // A deterministic pseudo-random field: many shapes, holes, diagonal contacts.
        let (w, h) = (41u32, 37u32);
        for seed in 1..40u64 {
            let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let m: Vec<bool> = (0..w * h)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    s % 100 < 55
                })
                .collect();
            let lab = label_components(&m, w, h);
            for k in 0..lab.comps.len() {
                let poly = compress(&region_polygon(&lab, k));
                let filled = rasterize_like_fillpoly(&poly, w, h);
                let want: Vec<bool> = lab.labels.iter().map(|&l| l == k as u32 + 1).collect();
                assert_eq!(filled, want, "seed {seed} component {k}");
            }
        }
    }

    #[test]
    fn merged_regions_cover_every_region() {
        let (m, w, h) = parse(&["##......", "##......", "......##", ".....###"]);
        let lab = label_components(&m, w, h);
        let poly = compress(&merge_regions(vec![
            region_polygon(&lab, 0),
            region_polygon(&lab, 1),
        ]));
        let filled = rasterize_like_fillpoly(&poly, w, h);
        for (i, &v) in m.iter().enumerate() {
            assert!(!v || filled[i], "pixel {i} lost");
        }
    }
}
