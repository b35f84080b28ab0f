//! What the 2D and 3D maps share: the selection (box and lasso gestures in screen space, with
//! shift to add and ctrl/cmd to remove) and drawing every point as one textured mesh.

use std::sync::Arc;

use egui::{Color32, ColorImage, Mesh, Pos2, Rect, TextureId, Vec2};

/// How a selection gesture draws its region.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Tool {
    #[default]
    Box,
    Lasso,
}

/// How a gesture's points combine with the selection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Replace,
    Add,
    Remove,
}

impl Mode {
    /// Shift adds, ctrl/cmd removes, neither replaces.
    pub fn from_modifiers(m: egui::Modifiers) -> Mode {
        if m.command || m.ctrl {
            Mode::Remove
        } else if m.shift {
            Mode::Add
        } else {
            Mode::Replace
        }
    }
}

/// The selected items (indices into the view), in the order they were selected.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    order: Vec<usize>,
    mask: Vec<bool>,
    /// Bumped on every change (the point mesh is rebuilt when it changes).
    pub generation: u64,
}

impl Selection {
    /// An empty selection over `n` items.
    pub fn new(n: usize) -> Selection {
        Selection {
            order: Vec::new(),
            mask: vec![false; n],
            generation: 0,
        }
    }

    /// Selected indices, in selection order.
    pub fn indices(&self) -> &[usize] {
        &self.order
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub fn contains(&self, i: usize) -> bool {
        self.mask.get(i).copied().unwrap_or(false)
    }

    /// Combines `hits` with the selection.
    pub fn apply(&mut self, hits: impl IntoIterator<Item = usize>, mode: Mode) {
        self.generation += 1;
        match mode {
            Mode::Replace => {
                self.clear();
                self.add(hits);
            }
            Mode::Add => self.add(hits),
            Mode::Remove => {
                for i in hits {
                    if let Some(m) = self.mask.get_mut(i) {
                        *m = false;
                    }
                }
                let mask = &self.mask;
                self.order.retain(|i| mask[*i]);
            }
        }
    }

    fn add(&mut self, hits: impl IntoIterator<Item = usize>) {
        for i in hits {
            if let Some(m) = self.mask.get_mut(i) {
                if !*m {
                    *m = true;
                    self.order.push(i);
                }
            }
        }
    }

    pub fn clear(&mut self) {
        self.generation += 1;
        for i in self.order.drain(..) {
            self.mask[i] = false;
        }
    }
}

/// The points inside a screen rectangle.
pub fn hits_in_rect(screen: &[Pos2], r: Rect) -> Vec<usize> {
    (0..screen.len())
        .filter(|i| r.contains(screen[*i]))
        .collect()
}

/// The points inside a closed polygon (even-odd rule).
pub fn hits_in_lasso(screen: &[Pos2], poly: &[Pos2]) -> Vec<usize> {
    if poly.len() < 3 {
        return Vec::new();
    }
    let bbox = Rect::from_points(poly);
    (0..screen.len())
        .filter(|i| bbox.contains(screen[*i]) && inside(screen[*i], poly))
        .collect()
}

/// Even-odd point-in-polygon test.
pub fn inside(p: Pos2, poly: &[Pos2]) -> bool {
    let mut inside = false;
    let mut j = poly.len() - 1;
    for i in 0..poly.len() {
        let (a, b) = (poly[i], poly[j]);
        if (a.y > p.y) != (b.y > p.y) && p.x < (b.x - a.x) * (p.y - a.y) / (b.y - a.y) + a.x {
            inside = !inside;
        }
        j = i;
    }
    inside
}

/// A selection gesture in progress: the screen points the pointer went through.
#[derive(Clone, Debug)]
pub struct Gesture {
    pub tool: Tool,
    pub points: Vec<Pos2>,
    pub modifiers: egui::Modifiers,
}

impl Gesture {
    /// The points the gesture covers.
    pub fn hits(&self, screen: &[Pos2]) -> Vec<usize> {
        match (self.tool, self.points.first(), self.points.last()) {
            (Tool::Box, Some(a), Some(b)) => hits_in_rect(screen, Rect::from_two_pos(*a, *b)),
            (Tool::Lasso, _, _) => hits_in_lasso(screen, &self.points),
            _ => Vec::new(),
        }
    }

    /// Draws the region.
    pub fn paint(&self, painter: &egui::Painter) {
        let stroke = egui::Stroke::new(1.5, Color32::WHITE);
        let fill = Color32::from_rgba_unmultiplied(255, 255, 255, 24);
        match (self.tool, self.points.first(), self.points.last()) {
            (Tool::Box, Some(a), Some(b)) => {
                let r = Rect::from_two_pos(*a, *b);
                painter.rect(r, 0.0, fill, stroke, egui::StrokeKind::Middle);
            }
            (Tool::Lasso, _, _) if self.points.len() > 1 => {
                painter.add(egui::Shape::closed_line(self.points.clone(), stroke));
            }
            _ => {}
        }
    }
}

/// A soft round dot, tinted per point.
pub fn dot_image() -> ColorImage {
    const S: usize = 32;
    let mut pixels = Vec::with_capacity(S * S);
    for y in 0..S {
        for x in 0..S {
            let d = ((x as f32 + 0.5 - S as f32 / 2.0).hypot(y as f32 + 0.5 - S as f32 / 2.0))
                / (S as f32 / 2.0);
            let a = ((1.0 - d) * S as f32 / 2.0).clamp(0.0, 1.0);
            pixels.push(Color32::from_white_alpha((a * 255.0) as u8));
        }
    }
    ColorImage {
        size: [S, S],
        source_size: Vec2::splat(S as f32),
        pixels,
    }
}

/// Everything that decides the point mesh; the mesh is rebuilt only when it changes.
#[derive(Clone, Debug, PartialEq)]
pub struct MeshKey {
    pub rect: Rect,
    pub camera: [f32; 4],
    pub radius: f32,
    pub colors: u64,
    pub selection: u64,
    pub three_d: bool,
}

/// Builds the mesh of every on-screen point, in `order` (or index order): a dot per point in
/// its colour, dimmed when a selection exists and it is not in it; selected points get a
/// white halo and are drawn last, on top.
pub fn point_mesh(
    rect: Rect,
    screen: &[Pos2],
    order: Option<&[u32]>,
    colors: &[Color32],
    sel: &Selection,
    dot: TextureId,
    radius: f32,
) -> Arc<Mesh> {
    let mut mesh = Mesh::with_texture(dot);
    let n = screen.len();
    mesh.reserve_vertices(4 * (n + sel.len()));
    mesh.reserve_triangles(2 * (n + sel.len()));
    let uv = Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0));
    let clip = rect.expand(radius + 2.0);
    let dim = !sel.is_empty();
    let quad = |mesh: &mut Mesh, p: Pos2, r: f32, c: Color32| {
        if clip.contains(p) {
            mesh.add_rect_with_uv(Rect::from_center_size(p, Vec2::splat(2.0 * r)), uv, c);
        }
    };
    let one = |mesh: &mut Mesh, i: usize| {
        let c = colors.get(i).copied().unwrap_or(Color32::GRAY);
        if dim && !sel.contains(i) {
            quad(mesh, screen[i], radius, c.gamma_multiply(0.35));
        } else if !dim {
            quad(mesh, screen[i], radius, c);
        }
    };
    match order {
        Some(o) => o.iter().for_each(|i| one(&mut mesh, *i as usize)),
        None => (0..n).for_each(|i| one(&mut mesh, i)),
    }
    let selected: Box<dyn Iterator<Item = usize>> = match order {
        Some(o) => Box::new(o.iter().map(|i| *i as usize).filter(|i| sel.contains(*i))),
        None => Box::new(sel.indices().iter().copied()),
    };
    for i in selected {
        let c = colors.get(i).copied().unwrap_or(Color32::GRAY);
        quad(&mut mesh, screen[i], radius + 1.5, Color32::WHITE);
        quad(&mut mesh, screen[i], radius, c);
    }
    Arc::new(mesh)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_replace_add_and_remove() {
        let mut s = Selection::new(6);
        s.apply([1, 2, 3], Mode::Replace);
        s.apply([3, 4], Mode::Add);
        assert_eq!(s.indices(), &[1, 2, 3, 4]);
        s.apply([2, 9], Mode::Remove);
        assert_eq!(s.indices(), &[1, 3, 4]);
        assert!(!s.contains(2) && s.contains(4));
        s.apply([0], Mode::Replace);
        assert_eq!(s.indices(), &[0]);
    }

    #[test]
    fn the_lasso_keeps_points_inside_a_concave_polygon() {
        // A U shape: the notch (2, 2.5) is outside.
        let poly = [
            (0., 0.),
            (4., 0.),
            (4., 4.),
            (3., 4.),
            (3., 1.),
            (1., 1.),
            (1., 4.),
            (0., 4.),
        ]
        .map(|(x, y)| Pos2::new(x, y));
        let pts = [(0.5, 3.0), (2.0, 2.5), (2.0, 0.5), (3.5, 3.5), (5.0, 1.0)]
            .map(|(x, y)| Pos2::new(x, y));
        assert_eq!(hits_in_lasso(&pts, &poly), vec![0, 2, 3]);
    }
}
