//! The node editor: a [`SnarlViewer`] over the edited document, the add-node menu, and the
//! per-node run state shown on each node.
//!
//! Submodules: [`ports`] (every node's ports, one lookup for all callers), [`actions`] (the
//! editor's document edits: subgraphs, parameters as inputs, reroutes, frames), [`frames`]
//! (frames drawn behind the nodes), [`lod`] (how much of a node is drawn as widgets), [`minimap`]
//! and [`subgraph`] (breadcrumb and interface panel of an open subgraph).

pub mod actions;
pub mod frames;
pub mod lod;
mod menus;
pub mod minimap;
pub mod ports;
pub mod subgraph;

use std::collections::HashMap;

use egui::{Color32, Pos2, Rect, Ui};
use egui_snarl::ui::{AnyPins, PinInfo, SnarlViewer};
use egui_snarl::{InPin, NodeId, OutPin, Snarl};
use nodes::subgraph::{Frame, REROUTE_KIND};
use nodes::{Catalogue, NodeSpec, PortType};

pub use actions::EditorCommand;
use lod::Detail;
pub use menus::{add_node_menu_ui, param_menu};
use ports::{Interfaces, Port, Ports};

use super::doc::{fresh_id, EditorNode};
use super::params::{param_row_ui, ParamRow};
use super::AppCommand;

/// The colour of a port type (pins and wires).
pub fn port_color(ty: PortType) -> Color32 {
    match ty {
        PortType::Image => Color32::from_rgb(100, 170, 255),
        PortType::Mask => Color32::from_rgb(230, 230, 230),
        PortType::Model => Color32::from_rgb(180, 120, 255),
        PortType::Int => Color32::from_rgb(120, 220, 140),
        PortType::Float => Color32::from_rgb(160, 230, 100),
        PortType::Text => Color32::from_rgb(250, 200, 90),
        PortType::Seed => Color32::from_rgb(250, 140, 90),
        PortType::Choice => Color32::from_rgb(200, 200, 120),
        PortType::Detector => Color32::from_rgb(240, 110, 160),
        PortType::ControlNet => Color32::from_rgb(90, 200, 220),
        PortType::Control => Color32::from_rgb(60, 150, 250),
    }
}

/// How far (graph units) a node may reach from its position, for culling a node not drawn in
/// full yet (its size is not known).
const NODE_REACH: f32 = 500.0;

/// How close (screen points) a node drawn before must come to the canvas to be drawn in full.
const NEAR_PX: f32 = 96.0;

/// Below this zoom, node bodies (parameter widgets) are not drawn.
pub const LOD_SCALE: f32 = 0.5;

/// What the last run did with a node.
#[derive(Clone, Debug, PartialEq)]
pub enum NodeRunState {
    Idle,
    Queued,
    Running { step: u32, total: u32 },
    Cached,
    Done { seconds: f64 },
    Error(String),
}

/// Draws the graph and applies the user's edits to it; actions beyond the graph (run to here,
/// open the painter) are returned as commands.
pub struct GraphViewer<'a> {
    pub catalogue: &'a Catalogue,
    pub states: &'a HashMap<String, NodeRunState>,
    /// Why the last link was refused, shown to the user.
    pub refusal: Option<String>,
    pub commands: Vec<AppCommand>,
    /// The search text of the add-node menu.
    pub search: &'a mut String,
    /// When set, the view is fitted to all nodes within this screen rectangle.
    pub frame: Option<egui::Rect>,
    /// The view transform (graph → screen) seen this frame.
    pub transform: Option<egui::emath::TSTransform>,
    /// The graph widget's screen rectangle, for culling.
    pub view: Option<egui::Rect>,
    /// Ids of the nodes near the screen this frame (None: not computed, draw all).
    pub visible: Option<std::collections::HashSet<String>>,
    /// Every node's ports (kinds, parameters as inputs, subgraph interfaces, reroutes).
    pub ports: Ports<'a>,
    /// Node rectangles drawn this frame (graph coordinates), by document node id.
    pub rects: HashMap<String, Rect>,
    /// Frames drawn behind the nodes, around last frame's node rectangles.
    pub frames: &'a [Frame],
    pub last_rects: Option<&'a HashMap<String, Rect>>,
    /// Centre the view on this graph point this frame (the minimap).
    pub look_at: Option<Pos2>,
    /// The canvas shows an open subgraph: parameters can be exposed.
    pub in_subgraph: bool,
    /// The open subgraph's path in the flattened graph (`outer/inner`), which prefixes the
    /// run states of the nodes shown; empty at the top level.
    pub scope_prefix: String,
    /// What each node's header and port names took when last drawn with widgets (kept across
    /// frames by the caller: see [`lod`]).
    pub sizes: lod::Sizes,
}

impl<'a> GraphViewer<'a> {
    /// The last run's state of node `id` of the view (inside a subgraph, of its flattened path).
    fn state_of(&self, id: &str) -> &'a NodeRunState {
        let state = if self.scope_prefix.is_empty() {
            self.states.get(id)
        } else {
            let flat = nodes::subgraph::join_path(&self.scope_prefix, id);
            self.states.get(&flat)
        };
        state.unwrap_or(&NodeRunState::Idle)
    }

    /// A viewer with nothing to fit, cull or draw behind the nodes.
    pub fn new(
        catalogue: &'a Catalogue,
        interfaces: &'a Interfaces,
        states: &'a HashMap<String, NodeRunState>,
        search: &'a mut String,
    ) -> GraphViewer<'a> {
        GraphViewer {
            catalogue,
            states,
            refusal: None,
            commands: Vec::new(),
            search,
            frame: None,
            transform: None,
            view: None,
            visible: None,
            ports: Ports::new(catalogue, interfaces),
            rects: HashMap::new(),
            frames: &[],
            last_rects: None,
            look_at: None,
            in_subgraph: false,
            scope_prefix: String::new(),
            sizes: lod::Sizes::default(),
        }
    }

    /// How much of `node` is drawn as widgets this frame ([`lod`]): everything near the screen
    /// at a readable zoom; painted text zoomed out; only the space it took far off screen. A
    /// node whose sizes are not known yet is drawn in full (once).
    fn detail(&self, node: &EditorNode) -> Detail {
        if self.visible.as_ref().is_some_and(|v| !v.contains(&node.id)) {
            Detail::Sketch
        } else if self.transform.is_some_and(|t| t.scaling < LOD_SCALE) {
            Detail::Painted
        } else {
            Detail::Full
        }
    }

    /// A click on a node's title inspects the node; a double click opens a subgraph node.
    fn title_clicks(&mut self, title: &egui::Response, n: &EditorNode) {
        if title.double_clicked() && n.subgraph.is_some() {
            self.commands
                .push(AppCommand::Editor(EditorCommand::OpenSubgraph(
                    n.id.clone(),
                )));
        } else if title.clicked() {
            self.commands.push(AppCommand::Inspect(n.id.clone()));
        }
    }

    /// Shows port `index`'s name (an input's or an output's) at this frame's level of detail,
    /// with its type and doc as tooltip, and remembers the space it took.
    fn port_label(
        &mut self,
        ui: &mut Ui,
        n: &EditorNode,
        input: bool,
        index: usize,
        p: &Port<'_>,
        optional: bool,
    ) {
        let text = |p: &Port<'_>| -> String {
            if optional {
                format!("{} (optional)", p.name)
            } else {
                p.name.to_string()
            }
        };
        let known = self
            .sizes
            .get(&n.id)
            .and_then(|s| lod::recall(if input { &s.inputs } else { &s.outputs }, index));
        match (self.detail(n), known) {
            (Detail::Sketch, Some(size)) => {
                lod::space(ui, size);
                return;
            }
            (Detail::Painted, Some(size)) => {
                let rect = lod::space(ui, size);
                if optional {
                    lod::paint_label(ui, rect, &text(p));
                } else {
                    lod::paint_label(ui, rect, p.name);
                }
                return;
            }
            _ => {}
        }
        let label = if optional {
            ui.label(text(p))
        } else {
            ui.label(p.name)
        };
        let size = label.rect.size();
        label.on_hover_ui(|ui| {
            let ty = p.ty.map(|t| t.to_string()).unwrap_or_else(|| "any".into());
            ui.label(format!("{ty}: {}", p.doc));
        });
        self.sizes.update(&n.id, |s| {
            let list = if input { &mut s.inputs } else { &mut s.outputs };
            lod::remember(list, index, size);
        });
    }
}

/// The colour of a run state's dot.
fn state_color(state: &NodeRunState) -> Color32 {
    match state {
        NodeRunState::Idle => Color32::GRAY,
        NodeRunState::Queued => Color32::from_rgb(200, 200, 80),
        NodeRunState::Running { .. } => Color32::from_rgb(80, 200, 255),
        NodeRunState::Cached => Color32::from_rgb(120, 160, 120),
        NodeRunState::Done { .. } => Color32::from_rgb(90, 220, 90),
        NodeRunState::Error(_) => Color32::from_rgb(255, 80, 80),
    }
}

/// A run state's tooltip.
fn state_tip(state: &NodeRunState) -> String {
    match state {
        NodeRunState::Idle => "idle".into(),
        NodeRunState::Queued => "queued".into(),
        NodeRunState::Running { step, total } => format!("running {step}/{total}"),
        NodeRunState::Cached => "cached: reused from an earlier run".into(),
        NodeRunState::Done { seconds } => format!("done in {:.0} ms", seconds * 1000.0),
        NodeRunState::Error(m) => format!("error: {m}"),
    }
}

fn spec(catalogue: &Catalogue, node: &EditorNode) -> Option<&'static NodeSpec> {
    catalogue.get(&node.kind)
}

/// The value node kind that feeds a parameter input of type `ty`, when the catalogue has it.
pub fn value_kind(catalogue: &Catalogue, ty: PortType) -> Option<&'static NodeSpec> {
    let kind = match ty {
        PortType::Int => "Int",
        PortType::Float => "Float",
        PortType::Text => "Text",
        PortType::Seed => "Seed",
        PortType::Choice => "Choice",
        _ => return None,
    };
    catalogue.get(kind)
}

impl SnarlViewer<EditorNode> for GraphViewer<'_> {
    fn title(&mut self, node: &EditorNode) -> String {
        format!("{} · {}", node.kind, node.id)
    }

    fn show_header(
        &mut self,
        node: NodeId,
        _inputs: &[InPin],
        _outputs: &[OutPin],
        ui: &mut Ui,
        snarl: &mut Snarl<EditorNode>,
    ) {
        let Some(n) = snarl.get_node(node) else {
            return;
        };
        if n.kind == REROUTE_KIND {
            // A reroute is a dot: its pins do the work.
            let (r, resp) = ui.allocate_exact_size(egui::vec2(10.0, 10.0), egui::Sense::click());
            ui.painter().circle_filled(r.center(), 4.0, Color32::GRAY);
            if resp.clicked() {
                self.commands.push(AppCommand::Inspect(n.id.clone()));
            }
            return;
        }
        let state = self.state_of(&n.id);
        // Progress and errors are always shown with widgets.
        let busy = matches!(state, NodeRunState::Running { .. } | NodeRunState::Error(_));
        let known = self.sizes.get(&n.id).and_then(|s| s.header);
        match (self.detail(n), known) {
            (Detail::Sketch, Some(size)) => {
                lod::space(ui, size);
                return;
            }
            (Detail::Painted, Some(size)) if !busy => {
                let rect = lod::space(ui, size);
                let title = match &n.subgraph {
                    Some(r) => format!("⊞ {}", r.name),
                    None => n.kind.clone(),
                };
                lod::paint_header(ui, rect, state_color(state), &title, &n.id);
                // The header still inspects (and opens a subgraph) on click.
                let id = egui::Id::new(("painted-header", &n.id));
                let resp = ui.interact(rect, id, egui::Sense::click());
                self.title_clicks(&resp, n);
                return;
            }
            _ => {}
        }
        let (title, doc) = match &n.subgraph {
            Some(r) => (
                format!("⊞ {}", r.name),
                "A subgraph: double-click (or Open subgraph) to edit inside",
            ),
            None => (
                n.kind.clone(),
                spec(self.catalogue, n)
                    .map(|s| s.doc)
                    .unwrap_or("unknown kind"),
            ),
        };
        let header = ui.horizontal(|ui| {
            let (r, resp) = ui.allocate_exact_size(egui::vec2(12.0, 12.0), egui::Sense::hover());
            ui.painter()
                .circle_filled(r.center(), 5.0, state_color(state));
            resp.on_hover_ui(|ui| {
                ui.label(state_tip(state));
            });
            let title = ui
                .add(
                    egui::Label::new(egui::RichText::new(title).strong())
                        .sense(egui::Sense::click()),
                )
                .on_hover_text(doc);
            self.title_clicks(&title, n);
            ui.label(egui::RichText::new(&n.id).weak().small());
            if let NodeRunState::Running { step, total } = *state {
                if total > 0 {
                    ui.add(egui::ProgressBar::new(step as f32 / total as f32).desired_width(60.0));
                }
            }
            if let NodeRunState::Error(m) = state {
                ui.colored_label(Color32::from_rgb(255, 80, 80), "⚠")
                    .on_hover_text(m);
            }
        });
        let size = header.response.rect.size();
        self.sizes.update(&n.id, |s| s.header = Some(size));
    }

    fn inputs(&mut self, node: &EditorNode) -> usize {
        self.ports.inputs(node)
    }

    fn outputs(&mut self, node: &EditorNode) -> usize {
        self.ports.outputs(node)
    }

    fn show_input(
        &mut self,
        pin: &InPin,
        ui: &mut Ui,
        snarl: &mut Snarl<EditorNode>,
    ) -> impl egui_snarl::ui::SnarlPin + 'static {
        let Some(n) = snarl.get_node(pin.id.node) else {
            return PinInfo::circle();
        };
        let Some(p) = self.ports.input(n, pin.id.input) else {
            return PinInfo::circle();
        };
        if n.kind == REROUTE_KIND {
            return match self.ports.input_type(snarl, pin.id.node, 0) {
                Some(ty) => PinInfo::circle().with_fill(port_color(ty)),
                None => PinInfo::circle(),
            };
        }
        let pin_info = match p.ty {
            Some(ty) if p.param.is_some() => PinInfo::square().with_fill(port_color(ty)),
            Some(ty) => PinInfo::circle().with_fill(port_color(ty)),
            None => PinInfo::circle(),
        };
        let optional = p.optional && p.param.is_none();
        self.port_label(ui, n, true, pin.id.input, &p, optional);
        pin_info
    }

    fn show_output(
        &mut self,
        pin: &OutPin,
        ui: &mut Ui,
        snarl: &mut Snarl<EditorNode>,
    ) -> impl egui_snarl::ui::SnarlPin + 'static {
        let Some(n) = snarl.get_node(pin.id.node) else {
            return PinInfo::circle();
        };
        let Some(p) = self.ports.output(n, pin.id.output) else {
            return PinInfo::circle();
        };
        if n.kind == REROUTE_KIND {
            return match self.ports.output_type(snarl, pin.id.node, 0) {
                Some(ty) => PinInfo::circle().with_fill(port_color(ty)),
                None => PinInfo::circle(),
            };
        }
        self.port_label(ui, n, false, pin.id.output, &p, false);
        match p.ty {
            Some(ty) => PinInfo::circle().with_fill(port_color(ty)),
            None => PinInfo::circle(),
        }
    }

    fn has_body(&mut self, node: &EditorNode) -> bool {
        // Level of detail: zoomed far out, parameter widgets are unreadable and only cost time;
        // nodes then show their header and ports (the inspector still edits everything).
        let readable = self.transform.is_none_or(|t| t.scaling >= LOD_SCALE);
        // Culling: egui-snarl lays out every node; bodies of nodes far off screen are skipped.
        let on_screen = self.visible.as_ref().is_none_or(|v| v.contains(&node.id));
        if !(readable && on_screen) {
            return false;
        }
        if let Some(r) = &node.subgraph {
            return self
                .ports
                .interfaces
                .get(&r.hash)
                .is_some_and(|i| !i.params.is_empty());
        }
        spec(self.catalogue, node).is_some_and(|s| !s.params.is_empty())
    }

    fn show_body(
        &mut self,
        node: NodeId,
        inputs: &[InPin],
        _outputs: &[OutPin],
        ui: &mut Ui,
        snarl: &mut Snarl<EditorNode>,
    ) {
        let Some(n) = snarl.get_node_mut(node) else {
            return;
        };
        let ports = self.ports;
        // Parameters fed by a link: a Text keeps its template (the link fills `{input}`), a
        // number is set by the link, so its widget gives way to a note.
        let linked: Vec<&str> = inputs
            .iter()
            .filter(|pin| !pin.remotes.is_empty())
            .filter_map(|pin| ports.input(n, pin.id.input))
            .filter(|p| p.param.is_some())
            .map(|p| p.name)
            .collect();
        if let Some(r) = n.subgraph.clone() {
            let Some(iface) = ports.interfaces.get(&r.hash) else {
                return;
            };
            ui.vertical(|ui| {
                for p in &iface.params {
                    if linked.contains(&p.name.as_str())
                        && PortType::of_param(&p.spec.kind) != PortType::Text
                    {
                        let label = ui.add(
                            egui::Label::new(format!("{} ← linked", p.name))
                                .sense(egui::Sense::click()),
                        );
                        param_menu(
                            &mut self.commands,
                            &label,
                            n,
                            &p.name,
                            false,
                            self.in_subgraph,
                        );
                        continue;
                    }
                    let (_, label) = param_row_ui(ui, &ParamRow::exposed(p), &mut n.params, true);
                    param_menu(
                        &mut self.commands,
                        &label,
                        n,
                        p.name.as_str(),
                        false,
                        self.in_subgraph,
                    );
                }
            });
            return;
        }
        let Some(s) = self.catalogue.get(&n.kind) else {
            return;
        };
        ui.vertical(|ui| {
            for p in s.params {
                let fed = linked.contains(&p.name);
                if fed && PortType::of_param(&p.kind) != PortType::Text {
                    let label = ui
                        .add(
                            egui::Label::new(format!("{} ← linked", p.name))
                                .sense(egui::Sense::click()),
                        )
                        .on_hover_text(p.doc);
                    param_menu(
                        &mut self.commands,
                        &label,
                        n,
                        p.name,
                        p.input,
                        self.in_subgraph,
                    );
                    continue;
                }
                let (_, label) = param_row_ui(ui, &ParamRow::of(p), &mut n.params, true);
                param_menu(
                    &mut self.commands,
                    &label,
                    n,
                    p.name,
                    p.input,
                    self.in_subgraph,
                );
                if fed {
                    ui.weak(format!(
                        "{} ← linked text fills {} (or {{caption}})",
                        p.name,
                        nodes::TEXT_PLACEHOLDER
                    ));
                }
            }
            if matches!(s.kind, "PaintMask" | "LoadMask") && ui.button("Paint mask…").clicked() {
                self.commands.push(AppCommand::OpenPainter(n.id.clone()));
            }
        });
    }

    fn final_node_rect(
        &mut self,
        node: NodeId,
        rect: Rect,
        _ui: &mut Ui,
        snarl: &mut Snarl<EditorNode>,
    ) {
        if let Some(n) = snarl.get_node(node) {
            self.rects.insert(n.id.clone(), rect);
            if self.detail(n) == Detail::Full {
                self.sizes.update(&n.id, |s| s.node = Some(rect.size()));
            }
        }
    }

    fn draw_background(
        &mut self,
        background: Option<&egui_snarl::ui::BackgroundPattern>,
        viewport: &Rect,
        snarl_style: &egui_snarl::ui::SnarlStyle,
        style: &egui::Style,
        painter: &egui::Painter,
        _snarl: &Snarl<EditorNode>,
    ) {
        if let Some(b) = background {
            b.draw(viewport, snarl_style, style, painter);
        }
        if let Some(rects) = self.last_rects {
            frames::paint_frames(painter, self.frames, rects);
        }
    }

    fn connect(&mut self, from: &OutPin, to: &InPin, snarl: &mut Snarl<EditorNode>) {
        let ports = self.ports;
        let (Some(fnode), Some(tnode)) = (snarl.get_node(from.id.node), snarl.get_node(to.id.node))
        else {
            return;
        };
        let (fid, tid) = (fnode.id.clone(), tnode.id.clone());
        let (Some(op), Some(ip)) = (
            ports.output(fnode, from.id.output),
            ports.input(tnode, to.id.input),
        ) else {
            return;
        };
        if from.id.node == to.id.node {
            self.refusal = Some("A node cannot feed itself.".into());
            return;
        }
        let from_ty = ports.output_type(snarl, from.id.node, from.id.output);
        // A reroute's input takes anything (it then carries that type).
        let to_ty = if tnode.kind == REROUTE_KIND {
            None
        } else {
            ip.ty
        };
        if let (Some(ft), Some(tt)) = (from_ty, to_ty) {
            if !Ports::accepts(&ip, ft) {
                self.refusal = Some(format!(
                    "Cannot connect {fid}.{} ({ft}) to {tid}.{} ({tt}): the types differ.",
                    op.name, ip.name
                ));
                return;
            }
        }
        // One link per input: a new link replaces the old one.
        snarl.drop_inputs(to.id);
        snarl.connect(from.id, to.id);
        if creates_cycle(snarl, to.id.node) {
            snarl.disconnect(from.id, to.id);
            self.refusal = Some(format!("Connecting {fid} to {tid} would make a cycle."));
        }
    }

    fn current_transform(
        &mut self,
        to_global: &mut egui::emath::TSTransform,
        snarl: &mut Snarl<EditorNode>,
    ) {
        if let Some(view) = self.frame.take() {
            let pts: Vec<Pos2> = snarl.nodes_pos().map(|(p, _)| p).collect();
            *to_global = super::fit_transform(&pts, view);
        }
        if let (Some(p), Some(view)) = (self.look_at.take(), self.view) {
            to_global.translation = view.center().to_vec2() - p.to_vec2() * to_global.scaling;
        }
        self.transform = Some(*to_global);
        if let Some(view) = self.view {
            // A node's size when last drawn in full (body included) and a margin, or before
            // that a generous size, so bodies appear before a node scrolls into view.
            let margin = egui::vec2(NODE_REACH, NODE_REACH);
            let t = *to_global;
            let sizes = &self.sizes;
            self.visible = Some(
                snarl
                    .nodes_pos()
                    .filter(|(p, n)| {
                        let r = match sizes.get(&n.id).and_then(|s| s.node) {
                            Some(size) => (t * Rect::from_min_size(*p, size)).expand(NEAR_PX),
                            None => Rect::from_min_max(t * (*p - margin), t * (*p + margin * 2.0)),
                        };
                        r.intersects(view)
                    })
                    .map(|(_, n)| n.id.clone())
                    .collect(),
            );
        }
    }

    fn has_graph_menu(&mut self, _pos: Pos2, _snarl: &mut Snarl<EditorNode>) -> bool {
        true
    }

    fn show_graph_menu(&mut self, pos: Pos2, ui: &mut Ui, snarl: &mut Snarl<EditorNode>) {
        ui.label("Add node");
        if let Some(kind) = add_node_menu_ui(ui, self.catalogue, self.search, None) {
            let id = fresh_id(snarl, kind.kind);
            snarl.insert_node(pos, EditorNode::new(id, kind.kind));
            self.search.clear();
            ui.close();
        }
    }

    fn has_dropped_wire_menu(&mut self, _src: AnyPins, _snarl: &mut Snarl<EditorNode>) -> bool {
        true
    }

    fn show_dropped_wire_menu(
        &mut self,
        pos: Pos2,
        ui: &mut Ui,
        src: AnyPins,
        snarl: &mut Snarl<EditorNode>,
    ) {
        self.dropped_wire_menu_ui(pos, ui, src, snarl);
    }

    fn has_node_menu(&mut self, _node: &EditorNode) -> bool {
        true
    }

    fn show_node_menu(
        &mut self,
        node: NodeId,
        inputs: &[InPin],
        _outputs: &[OutPin],
        ui: &mut Ui,
        snarl: &mut Snarl<EditorNode>,
    ) {
        self.node_menu_ui(node, inputs, ui, snarl);
    }
}

/// Whether `start` reaches itself through the wires.
fn creates_cycle(snarl: &Snarl<EditorNode>, start: NodeId) -> bool {
    let wires: Vec<(NodeId, NodeId)> = snarl.wires().map(|(o, i)| (o.node, i.node)).collect();
    let mut stack = vec![start];
    let mut seen = std::collections::HashSet::new();
    while let Some(n) = stack.pop() {
        for (a, b) in &wires {
            if *a == n {
                if *b == start {
                    return true;
                }
                if seen.insert(*b) {
                    stack.push(*b);
                }
            }
        }
    }
    false
}
