//! 8-connected component labelling of binary masks.

/// One 8-connected component found by [`label_components`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Component {
    /// Inclusive bounding box `(x0, y0, x1, y1)`.
    pub bbox: (u32, u32, u32, u32),
    /// Number of pixels.
    pub area: u64,
    /// First pixel in raster order (top-most row, then left-most); used to start tracing.
    pub first: (u32, u32),
}

/// A label image: `labels[y * width + x]` is 0 for background and `k + 1` for pixels
/// of `comps[k]`.
pub(crate) struct Labels {
    pub width: u32,
    pub height: u32,
    pub labels: Vec<u32>,
    pub comps: Vec<Component>,
}

impl Labels {
    /// True when pixel `(x, y)` (may be out of range) belongs to component `k`.
    pub fn is(&self, k: usize, x: i64, y: i64) -> bool {
        if x < 0 || y < 0 || x >= i64::from(self.width) || y >= i64::from(self.height) {
            return false;
        }
        self.labels[(y as usize) * self.width as usize + x as usize] == k as u32 + 1
    }
}

/// Labels the 8-connected components of a row-major `width x height` mask, numbered in
/// raster order of their first pixel. Values beyond `mask.len()` count as `false`.
pub(crate) fn label_components(mask: &[bool], width: u32, height: u32) -> Labels {
    let (w, h) = (width as usize, height as usize);
    let mut labels = vec![0u32; w * h];
    let mut comps = Vec::new();
    let mut stack: Vec<usize> = Vec::new();
    for start in 0..w * h {
        if !mask.get(start).copied().unwrap_or(false) || labels[start] != 0 {
            continue;
        }
        let id = comps.len() as u32 + 1;
        let (sx, sy) = ((start % w) as u32, (start / w) as u32);
        let mut comp = Component {
            bbox: (sx, sy, sx, sy),
            area: 0,
            first: (sx, sy),
        };
        labels[start] = id;
        stack.push(start);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            comp.area += 1;
            let b = &mut comp.bbox;
            b.0 = b.0.min(x as u32);
            b.1 = b.1.min(y as u32);
            b.2 = b.2.max(x as u32);
            b.3 = b.3.max(y as u32);
            for ny in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                for nx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                    let j = ny * w + nx;
                    if labels[j] == 0 && mask.get(j).copied().unwrap_or(false) {
                        labels[j] = id;
                        stack.push(j);
                    }
                }
            }
        }
        comps.push(comp);
    }
    Labels {
        width,
        height,
        labels,
        comps,
    }
}

/// Splits a row-major binary mask into its 8-connected components (instances).
///
/// Each returned mask has `width * height` pixels and holds exactly one component;
/// components are ordered by their first pixel in raster order.
pub fn components(mask: &[bool], width: u32, height: u32) -> Vec<Vec<bool>> {
    let lab = label_components(mask, width, height);
    (0..lab.comps.len())
        .map(|k| lab.labels.iter().map(|&l| l == k as u32 + 1).collect())
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A mask drawn as text rows (`#` = defect), with its width and height.
    pub(crate) fn parse(rows: &[&str]) -> (Vec<bool>, u32, u32) {
        let h = rows.len() as u32;
        let w = rows[0].len() as u32;
        let mask = rows
            .iter()
            .flat_map(|r| r.chars().map(|c| c == '#'))
            .collect();
        (mask, w, h)
    }

    #[test]
    fn two_separate_blobs() {
        let (m, w, h) = parse(&["##...", "##...", ".....", "...##", "...#."]);
        let comps = components(&m, w, h);
        assert_eq!(comps.len(), 2);
        assert_eq!(comps[0].iter().filter(|&&v| v).count(), 4);
        assert_eq!(comps[1].iter().filter(|&&v| v).count(), 3);
        // Union of components is the mask, and they are disjoint.
        for i in 0..m.len() {
            assert_eq!(m[i], comps[0][i] || comps[1][i]);
            assert!(!(comps[0][i] && comps[1][i]));
        }
        let lab = label_components(&m, w, h);
        assert_eq!(lab.comps[0].bbox, (0, 0, 1, 1));
        assert_eq!(lab.comps[1].bbox, (3, 3, 4, 4));
        assert_eq!(lab.comps[1].first, (3, 3));
    }

    #[test]
    fn diagonal_touching_is_one_component() {
        let (m, w, h) = parse(&["#..", ".#.", "..#"]);
        assert_eq!(components(&m, w, h).len(), 1);
        let (m, w, h) = parse(&[".#", "#."]);
        assert_eq!(components(&m, w, h).len(), 1);
        let (m, w, h) = parse(&["#.#", "...", "#.#"]);
        assert_eq!(components(&m, w, h).len(), 4);
    }

    #[test]
    fn empty_and_full() {
        assert!(components(&[false; 12], 4, 3).is_empty());
        assert_eq!(components(&[true; 12], 4, 3).len(), 1);
        assert!(components(&[], 0, 0).is_empty());
    }
}
