//! Level of detail of a node's header and port names. egui-snarl lays out every node every
//! frame (the wires need every pin's position), and at 200 nodes the widgets of headers and port
//! names were most of a frame's time (`studio/benches/frame.rs`): each one is hit-tested,
//! registered for accessibility and given a tooltip. So a node is drawn with widgets only where
//! the user can read and reach it ([`Detail::Full`]); zoomed out below [`super::LOD_SCALE`] its
//! text is painted without widgets ([`Detail::Painted`]: no tooltips; a click on the header
//! still inspects the node), and far off screen it only takes the space it took when last drawn
//! ([`Detail::Sketch`]), so node rectangles (minimap, frames) and pin positions (wires) stay
//! where they were.

use std::collections::HashMap;

use egui::{Align2, Color32, FontId, Pos2, Rect, TextStyle, Ui, Vec2};

/// How a node's header and port names are drawn this frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detail {
    /// Widgets: tooltips, the clickable title, text that can be read.
    Full,
    /// Zoomed out: the same text painted in the space it took, without widgets.
    Painted,
    /// Far off screen: only the space it took.
    Sketch,
}

/// What a node's parts took when last drawn with widgets (graph units).
#[derive(Clone, Debug, Default)]
pub struct NodeSizes {
    /// The whole node, body included, when last drawn in full.
    pub node: Option<Vec2>,
    pub header: Option<Vec2>,
    pub inputs: Vec<Option<Vec2>>,
    pub outputs: Vec<Option<Vec2>>,
}

/// The sizes by document node id, for one build of the canvas
/// ([`crate::app::doc::EditorDoc::generation`]); kept across frames by the canvas.
#[derive(Default)]
pub struct Sizes {
    pub generation: u64,
    pub nodes: HashMap<String, NodeSizes>,
}

impl Sizes {
    /// Starts over when the canvas was rebuilt (`generation`) since the sizes were taken: a node
    /// id may then stand for another kind, other ports or another subgraph.
    pub fn follow(&mut self, generation: u64) {
        if self.generation != generation {
            self.generation = generation;
            self.nodes.clear();
        }
    }

    pub fn get(&self, id: &str) -> Option<&NodeSizes> {
        self.nodes.get(id)
    }

    /// Changes the sizes of node `id` (made empty first when there are none).
    pub fn update(&mut self, id: &str, f: impl FnOnce(&mut NodeSizes)) {
        match self.nodes.get_mut(id) {
            Some(s) => f(s),
            None => {
                let mut s = NodeSizes::default();
                f(&mut s);
                self.nodes.insert(id.to_string(), s);
            }
        }
    }
}

/// Remembers `size` at `index` of `list`.
pub fn remember(list: &mut Vec<Option<Vec2>>, index: usize, size: Vec2) {
    if list.len() <= index {
        list.resize(index + 1, None);
    }
    list[index] = Some(size);
}

/// The size remembered at `index` of `list`, if any.
pub fn recall(list: &[Option<Vec2>], index: usize) -> Option<Vec2> {
    list.get(index).copied().flatten()
}

/// Takes `size` in `ui` without a widget; returns the space's rectangle.
pub fn space(ui: &mut Ui, size: Vec2) -> Rect {
    ui.allocate_space(size).1
}

/// Paints `text` at the top left of `rect` in the body font (a port name as a label shows it).
pub fn paint_label(ui: &Ui, rect: Rect, text: &str) {
    let font = TextStyle::Body.resolve(ui.style());
    let color = ui.visuals().text_color();
    ui.painter()
        .text(rect.min, Align2::LEFT_TOP, text, font, color);
}

/// Paints a header (run-state dot, title, node id) across `rect`, as the full header lays them
/// out.
pub fn paint_header(ui: &Ui, rect: Rect, dot: Color32, title: &str, id: &str) {
    let spacing = ui.spacing().item_spacing.x;
    let painter = ui.painter();
    let y = rect.center().y;
    painter.circle_filled(Pos2::new(rect.left() + 6.0, y), 5.0, dot);
    let x = rect.left() + 12.0 + spacing;
    let strong = ui.visuals().strong_text_color();
    let title = painter.text(
        Pos2::new(x, y),
        Align2::LEFT_CENTER,
        title,
        TextStyle::Body.resolve(ui.style()),
        strong,
    );
    let small: FontId = TextStyle::Small.resolve(ui.style());
    painter.text(
        Pos2::new(title.right() + spacing, y),
        Align2::LEFT_CENTER,
        id,
        small,
        ui.visuals().weak_text_color(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remember_and_recall_by_index() {
        let mut list = Vec::new();
        assert_eq!(recall(&list, 2), None);
        remember(&mut list, 2, Vec2::new(3.0, 4.0));
        assert_eq!(recall(&list, 2), Some(Vec2::new(3.0, 4.0)));
        assert_eq!(recall(&list, 0), None);
        remember(&mut list, 0, Vec2::new(1.0, 1.0));
        assert_eq!(recall(&list, 0), Some(Vec2::new(1.0, 1.0)));
        assert_eq!(list.len(), 3);
    }

    #[test]
    fn sizes_start_over_when_the_canvas_is_rebuilt() {
        let mut sizes = Sizes::default();
        sizes.follow(3);
        sizes.update("a", |s| s.header = Some(Vec2::new(10.0, 20.0)));
        sizes.update("a", |s| remember(&mut s.inputs, 1, Vec2::new(5.0, 6.0)));
        let a = sizes.get("a").map(|s| (s.header, recall(&s.inputs, 1)));
        assert_eq!(
            a,
            Some((Some(Vec2::new(10.0, 20.0)), Some(Vec2::new(5.0, 6.0))))
        );
        sizes.follow(3);
        assert!(sizes.get("a").is_some(), "the same build keeps its sizes");
        sizes.follow(4);
        assert!(sizes.get("a").is_none(), "a rebuilt canvas starts over");
    }

    /// 40 chains Texture → Scratch → Composite ← SolidColor, 320 units apart: at 100% most of
    /// them are far off screen.
    fn chains() -> nodes::GraphDoc {
        let mut g = nodes::GraphDoc::new();
        for c in 0..40 {
            let y = c as f32 * 320.0;
            for (id, kind, x, dy) in [
                (format!("tex{c}"), "Texture", 0.0, 0.0),
                (format!("scr{c}"), "Scratch", 320.0, 0.0),
                (format!("ink{c}"), "SolidColor", 320.0, 160.0),
                (format!("cmp{c}"), "Composite", 640.0, 0.0),
            ] {
                g.nodes.insert(id.clone(), nodes::NodeDoc::new(kind, 1));
                let pos = [x, y + dy];
                let collapsed = false;
                g.layout.insert(id, nodes::NodeLayout { pos, collapsed });
            }
            for (a, ap, b, bp) in [
                ("tex", "image", "scr", "image"),
                ("scr", "image", "cmp", "bottom"),
                ("ink", "image", "cmp", "top"),
            ] {
                g.links.push(nodes::Link {
                    from: nodes::PortRef(format!("{a}{c}"), ap.into()),
                    to: nodes::PortRef(format!("{b}{c}"), bp.into()),
                });
            }
        }
        g
    }

    use egui_kittest::kittest::Queryable;

    type H = egui_kittest::Harness<'static, Option<crate::app::StudioApp>>;

    fn rects(h: &mut H) -> HashMap<String, Rect> {
        h.state()
            .as_ref()
            .map(|a| a.canvas.rects.clone())
            .unwrap_or_default()
    }

    /// Far off screen (painting only the space taken) and zoomed out (painted text), a node
    /// keeps the size it had when drawn with widgets, so wires, frames and the minimap stay put;
    /// and only nodes near the screen at a readable zoom are widgets.
    #[test]
    fn nodes_keep_their_size_at_every_level_of_detail() {
        let home = tempfile::tempdir().unwrap();
        std::env::set_var(engine::paths::HOME_VAR, home.path());
        let mut h: H = egui_kittest::Harness::builder()
            .with_size([1600.0, 1000.0])
            .build_ui_state(
                |ui, app: &mut Option<crate::app::StudioApp>| {
                    let a = app.get_or_insert_with(|| {
                        crate::app::StudioApp::new(ui.ctx(), Default::default(), None)
                    });
                    a.ui(ui);
                },
                None,
            );
        h.step();
        let graph = chains();
        if let Some(app) = h.state_mut().as_mut() {
            app.doc = crate::app::doc::EditorDoc::new(&graph, &app.catalogue, None);
        }
        // The first frame draws every node with widgets: nothing is known yet.
        h.step();
        let first = rects(&mut h);
        assert_eq!(first.len(), 160);
        let app = h.state().as_ref().unwrap();
        let (view, t) = (app.graph_rect, app.graph_transform);
        assert!(t.scaling >= super::super::LOD_SCALE, "a readable zoom");
        let seen = t.inverse() * view;
        let far: Vec<String> = first
            .iter()
            .filter(|(_, r)| r.min.y > seen.max.y + 2000.0)
            .map(|(id, _)| id.clone())
            .collect();
        assert!(far.len() > 100, "most nodes far off screen: {}", far.len());
        assert!(!h.query_all_by_label("tex0").collect::<Vec<_>>().is_empty());

        // Then far nodes only take the space they took.
        h.run_steps(3);
        let sketched = rects(&mut h);
        for id in &far {
            assert_eq!(sketched[id], first[id], "{id} off screen");
        }
        assert!(
            h.query_all_by_label("tex39").next().is_none(),
            "no widgets far off screen"
        );
        // Near the screen, bodies are drawn: the node grows below its header and ports.
        assert!(sketched["scr0"].height() > sketched["scr39"].height());

        // Zoomed out, every node is painted at the size it had without its body.
        if let Some(app) = h.state_mut().as_mut() {
            app.frame_all = true;
        }
        h.run_steps(3);
        let app = h.state().as_ref().unwrap();
        assert!(app.graph_transform.scaling < super::super::LOD_SCALE);
        let painted = rects(&mut h);
        for id in &far {
            assert_eq!(painted[id], first[id], "{id} zoomed out");
        }
        assert_eq!(painted["scr0"].size(), painted["scr39"].size());
        assert!(
            h.query_all_by_label("tex0").next().is_none(),
            "painted, not widgets"
        );
    }
}
