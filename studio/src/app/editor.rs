//! The node editor: a [`SnarlViewer`] over the edited document, the add-node menu, and the
//! per-node run state shown on each node.

use std::collections::HashMap;

use egui::{Color32, Pos2, Ui};
use egui_snarl::ui::{AnyPins, PinInfo, SnarlViewer};
use egui_snarl::{InPin, NodeId, OutPin, Snarl};
use nodes::{Catalogue, NodeSpec, PortType};

use super::doc::{fresh_id, EditorNode};
use super::params::param_ui;
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
    }
}

/// How far (graph units) a node may reach from its position, for culling.
const NODE_REACH: f32 = 500.0;

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
}

fn spec(catalogue: &Catalogue, node: &EditorNode) -> Option<&'static NodeSpec> {
    catalogue.get(&node.kind)
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
        let state = self
            .states
            .get(&n.id)
            .cloned()
            .unwrap_or(NodeRunState::Idle);
        let doc = spec(self.catalogue, n)
            .map(|s| s.doc)
            .unwrap_or("unknown kind");
        ui.horizontal(|ui| {
            let (dot, tip) = match &state {
                NodeRunState::Idle => (Color32::GRAY, "idle".to_string()),
                NodeRunState::Queued => (Color32::from_rgb(200, 200, 80), "queued".into()),
                NodeRunState::Running { step, total } => (
                    Color32::from_rgb(80, 200, 255),
                    format!("running {step}/{total}"),
                ),
                NodeRunState::Cached => (
                    Color32::from_rgb(120, 160, 120),
                    "cached: reused from an earlier run".into(),
                ),
                NodeRunState::Done { seconds } => (
                    Color32::from_rgb(90, 220, 90),
                    format!("done in {:.0} ms", seconds * 1000.0),
                ),
                NodeRunState::Error(m) => (Color32::from_rgb(255, 80, 80), format!("error: {m}")),
            };
            let (r, resp) = ui.allocate_exact_size(egui::vec2(12.0, 12.0), egui::Sense::hover());
            ui.painter().circle_filled(r.center(), 5.0, dot);
            resp.on_hover_text(tip);
            let title = ui
                .add(
                    egui::Label::new(egui::RichText::new(&n.kind).strong())
                        .sense(egui::Sense::click()),
                )
                .on_hover_text(doc);
            if title.clicked() {
                self.commands.push(AppCommand::Inspect(n.id.clone()));
            }
            ui.label(egui::RichText::new(&n.id).weak().small());
            if let NodeRunState::Running { step, total } = state {
                if total > 0 {
                    ui.add(egui::ProgressBar::new(step as f32 / total as f32).desired_width(60.0));
                }
            }
            if let NodeRunState::Error(m) = &state {
                ui.colored_label(Color32::from_rgb(255, 80, 80), "⚠")
                    .on_hover_text(m);
            }
        });
    }

    fn inputs(&mut self, node: &EditorNode) -> usize {
        spec(self.catalogue, node)
            .map(|s| s.input_ports().len())
            .unwrap_or(0)
    }

    fn outputs(&mut self, node: &EditorNode) -> usize {
        spec(self.catalogue, node)
            .map(|s| s.outputs.len())
            .unwrap_or(0)
    }

    fn show_input(
        &mut self,
        pin: &InPin,
        ui: &mut Ui,
        snarl: &mut Snarl<EditorNode>,
    ) -> impl egui_snarl::ui::SnarlPin + 'static {
        let port = snarl
            .get_node(pin.id.node)
            .and_then(|n| spec(self.catalogue, n))
            .and_then(|s| s.input_ports().get(pin.id.input));
        match port {
            Some(p) => {
                let text = if p.optional {
                    format!("{} (optional)", p.name)
                } else {
                    p.name.to_string()
                };
                ui.label(text).on_hover_text(format!("{}: {}", p.ty, p.doc));
                PinInfo::circle().with_fill(port_color(p.ty))
            }
            None => PinInfo::circle(),
        }
    }

    fn show_output(
        &mut self,
        pin: &OutPin,
        ui: &mut Ui,
        snarl: &mut Snarl<EditorNode>,
    ) -> impl egui_snarl::ui::SnarlPin + 'static {
        let port = snarl
            .get_node(pin.id.node)
            .and_then(|n| spec(self.catalogue, n))
            .and_then(|s| s.outputs.get(pin.id.output));
        match port {
            Some(p) => {
                ui.label(p.name)
                    .on_hover_text(format!("{}: {}", p.ty, p.doc));
                PinInfo::circle().with_fill(port_color(p.ty))
            }
            None => PinInfo::circle(),
        }
    }

    fn has_body(&mut self, node: &EditorNode) -> bool {
        // Level of detail: zoomed far out, parameter widgets are unreadable and only cost time;
        // nodes then show their header and ports (the inspector still edits everything).
        let readable = self.transform.is_none_or(|t| t.scaling >= LOD_SCALE);
        // Culling: egui-snarl lays out every node; bodies of nodes far off screen are skipped.
        let on_screen = self.visible.as_ref().is_none_or(|v| v.contains(&node.id));
        readable && on_screen && spec(self.catalogue, node).is_some_and(|s| !s.params.is_empty())
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
        let Some(s) = self.catalogue.get(&n.kind) else {
            return;
        };
        // Parameters fed by a link: a Text keeps its template (the link fills `{input}`), a
        // number is set by the link, so its widget gives way to a note.
        let ports = s.input_ports();
        let linked = |name: &str| {
            inputs.iter().any(|pin| {
                !pin.remotes.is_empty() && ports.get(pin.id.input).is_some_and(|p| p.name == name)
            })
        };
        ui.vertical(|ui| {
            for p in s.params {
                let fed = p.input && linked(p.name);
                if fed && PortType::of_param(&p.kind) != PortType::Text {
                    ui.label(format!("{} ← linked", p.name))
                        .on_hover_text(p.doc);
                    continue;
                }
                param_ui(ui, p, &mut n.params, true);
                if fed {
                    ui.weak(format!(
                        "{} ← linked text fills {} (or {{caption}})",
                        p.name,
                        nodes::TEXT_PLACEHOLDER
                    ));
                }
            }
            if s.kind == "PaintMask" && ui.button("Paint mask…").clicked() {
                self.commands.push(AppCommand::OpenPainter(n.id.clone()));
            }
        });
    }

    fn connect(&mut self, from: &OutPin, to: &InPin, snarl: &mut Snarl<EditorNode>) {
        let out = snarl
            .get_node(from.id.node)
            .and_then(|n| spec(self.catalogue, n).map(|s| (n.id.clone(), s)));
        let inp = snarl
            .get_node(to.id.node)
            .and_then(|n| spec(self.catalogue, n).map(|s| (n.id.clone(), s)));
        let (Some((fid, fs)), Some((tid, ts))) = (out, inp) else {
            return;
        };
        let (Some(op), Some(ip)) = (
            fs.outputs.get(from.id.output),
            ts.input_ports().get(to.id.input),
        ) else {
            return;
        };
        if from.id.node == to.id.node {
            self.refusal = Some("A node cannot feed itself.".into());
            return;
        }
        if op.ty != ip.ty {
            self.refusal = Some(format!(
                "Cannot connect {fid}.{} ({}) to {tid}.{} ({}): the types differ.",
                op.name, op.ty, ip.name, ip.ty
            ));
            return;
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
        self.transform = Some(*to_global);
        if let Some(view) = self.view {
            // A generous node size, so bodies appear before a node scrolls into view.
            let margin = egui::vec2(NODE_REACH, NODE_REACH);
            let t = *to_global;
            self.visible = Some(
                snarl
                    .nodes_pos()
                    .filter(|(p, _)| {
                        let r =
                            egui::Rect::from_min_max(t * (*p - margin), t * (*p + margin * 2.0));
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
            snarl.insert_node(
                pos,
                EditorNode {
                    id,
                    kind: kind.kind.to_string(),
                    params: Default::default(),
                },
            );
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
        // Offer only kinds with a matching port, and connect the first one.
        let ty = match &src {
            AnyPins::Out(pins) => pins
                .first()
                .and_then(|p| snarl.get_node(p.node))
                .and_then(|n| spec(self.catalogue, n))
                .and_then(|s| pins.first().and_then(|p| s.outputs.get(p.output)))
                .map(|p| (p.ty, true)),
            AnyPins::In(pins) => pins
                .first()
                .and_then(|p| snarl.get_node(p.node))
                .and_then(|n| spec(self.catalogue, n))
                .and_then(|s| pins.first().and_then(|p| s.input_ports().get(p.input)))
                .map(|p| (p.ty, false)),
        };
        let Some((ty, from_output)) = ty else { return };
        ui.label(format!("Add a node taking {ty}"));
        if let Some(kind) =
            add_node_menu_ui(ui, self.catalogue, self.search, Some((ty, from_output)))
        {
            let id = fresh_id(snarl, kind.kind);
            let new = snarl.insert_node(
                pos,
                EditorNode {
                    id,
                    kind: kind.kind.to_string(),
                    params: Default::default(),
                },
            );
            match src {
                AnyPins::Out(pins) => {
                    if let (Some(p), Some(i)) = (
                        pins.first(),
                        kind.input_ports().iter().position(|p| p.ty == ty),
                    ) {
                        snarl.drop_inputs(egui_snarl::InPinId {
                            node: new,
                            input: i,
                        });
                        snarl.connect(
                            *p,
                            egui_snarl::InPinId {
                                node: new,
                                input: i,
                            },
                        );
                    }
                }
                AnyPins::In(pins) => {
                    if let (Some(p), Some(o)) =
                        (pins.first(), kind.outputs.iter().position(|p| p.ty == ty))
                    {
                        snarl.drop_inputs(*p);
                        snarl.connect(
                            egui_snarl::OutPinId {
                                node: new,
                                output: o,
                            },
                            *p,
                        );
                    }
                }
            }
            self.search.clear();
            ui.close();
        }
    }

    fn has_node_menu(&mut self, _node: &EditorNode) -> bool {
        true
    }

    fn show_node_menu(
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
        let id = n.id.clone();
        let kind = n.kind.clone();
        if ui.button("▶ Run to here").clicked() {
            self.commands.push(AppCommand::Run {
                to_node: Some(id.clone()),
            });
            ui.close();
        }
        if kind == "PaintMask" && ui.button("Paint mask…").clicked() {
            self.commands.push(AppCommand::OpenPainter(id.clone()));
            ui.close();
        }
        if ui.button("Duplicate").clicked() {
            self.commands.push(AppCommand::Duplicate(vec![node]));
            ui.close();
        }
        if ui.button("Remove").clicked() {
            snarl.remove_node(node);
            ui.close();
        }
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

/// The searchable add-node menu, grouped by category, with the doc text as tooltip. With
/// `port`, only kinds with a port of that type on the matching side are listed.
pub fn add_node_menu_ui(
    ui: &mut Ui,
    catalogue: &Catalogue,
    search: &mut String,
    port: Option<(PortType, bool)>,
) -> Option<&'static NodeSpec> {
    let r = ui.add(
        egui::TextEdit::singleline(search)
            .hint_text("search nodes")
            .desired_width(180.0),
    );
    r.request_focus();
    let needle = search.to_ascii_lowercase();
    let mut picked = None;
    let matches = |s: &'static NodeSpec| {
        let text_ok = needle.is_empty()
            || s.kind.to_ascii_lowercase().contains(&needle)
            || s.doc.to_ascii_lowercase().contains(&needle)
            || s.category.to_ascii_lowercase().contains(&needle);
        let port_ok = match port {
            None => true,
            Some((ty, true)) => s.input_ports().iter().any(|p| p.ty == ty),
            Some((ty, false)) => s.outputs.iter().any(|p| p.ty == ty),
        };
        text_ok && port_ok
    };
    let mut first = None;
    for cat in catalogue.categories() {
        let kinds: Vec<&'static NodeSpec> = catalogue
            .specs()
            .iter()
            .copied()
            .filter(|s| s.category == cat && matches(s))
            .collect();
        if kinds.is_empty() {
            continue;
        }
        ui.label(egui::RichText::new(cat).weak());
        for k in kinds {
            first.get_or_insert(k);
            if ui.button(k.kind).on_hover_text(k.doc).clicked() {
                picked = Some(k);
            }
        }
    }
    if r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
        picked = picked.or(first);
    }
    picked
}
