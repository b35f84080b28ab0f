//! The editor's menus: the searchable add-node menu, a parameter row's context menu, the menu
//! of a dropped wire and a node's context menu.

use egui::{Pos2, Ui};
use egui_snarl::ui::AnyPins;
use egui_snarl::{InPin, NodeId, Snarl};
use nodes::{Catalogue, NodeSpec, PortType};

use super::super::doc::EditorNode;
use super::super::AppCommand;
use super::ports::Ports;
use super::{value_kind, EditorCommand, GraphViewer};
use crate::app::doc::fresh_id;

/// The context menu of a parameter row (right-click on its name): convert it to an input and
/// back, expose it on the open subgraph. `kind_input`: the kind declares it an input already
/// (it cannot be turned back into a parameter).
pub fn param_menu(
    commands: &mut Vec<AppCommand>,
    label: &egui::Response,
    node: &EditorNode,
    param: &str,
    kind_input: bool,
    in_subgraph: bool,
) {
    label.context_menu(|ui| {
        let is_input = node.param_inputs.contains(param);
        let mut push = |c: EditorCommand, ui: &mut Ui| {
            commands.push(AppCommand::Editor(c));
            ui.close();
        };
        if !kind_input {
            let text = if is_input {
                "Convert to parameter"
            } else {
                "Convert to input"
            };
            if ui.button(text).clicked() {
                push(
                    EditorCommand::ParamInput {
                        node: node.id.clone(),
                        param: param.to_string(),
                        input: !is_input,
                    },
                    ui,
                );
            }
        }
        if in_subgraph && ui.button("Expose parameter").clicked() {
            push(
                EditorCommand::ExposeParam {
                    node: node.id.clone(),
                    param: param.to_string(),
                },
                ui,
            );
        }
        if kind_input && !in_subgraph {
            ui.label(egui::RichText::new("nothing to do for this parameter").weak());
        }
    });
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
        // Subgraph nodes come from "Make subgraph" or the recipe library, with a definition.
        if s.kind == nodes::subgraph::SUBGRAPH_KIND {
            return false;
        }
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

impl GraphViewer<'_> {
    /// The menu of a wire dropped on the canvas: the kinds with a matching port (a value node
    /// first for a parameter input); the picked one is added and connected.
    pub(super) fn dropped_wire_menu_ui(
        &mut self,
        pos: Pos2,
        ui: &mut Ui,
        src: AnyPins,
        snarl: &mut Snarl<EditorNode>,
    ) {
        let ports = self.ports;
        // Offer only kinds with a matching port, and connect the first one.
        let ty = match &src {
            AnyPins::Out(pins) => pins
                .first()
                .and_then(|p| ports.output_type(snarl, p.node, p.output))
                .map(|t| (t, true, false)),
            AnyPins::In(pins) => pins.first().and_then(|p| {
                let n = snarl.get_node(p.node)?;
                let port = ports.input(n, p.input)?;
                Some((port.ty?, false, port.param.is_some()))
            }),
        };
        let Some((ty, from_output, param)) = ty else {
            return;
        };
        // A parameter input is fed by a value node first of all.
        let value = (param && !from_output)
            .then(|| value_kind(self.catalogue, ty))
            .flatten();
        let mut picked = None;
        if let Some(v) = value {
            if ui
                .button(format!("{} value", v.kind))
                .on_hover_text(v.doc)
                .clicked()
            {
                picked = Some(v);
            }
            ui.separator();
        }
        ui.label(format!("Add a node taking {ty}"));
        picked = picked.or(add_node_menu_ui(
            ui,
            self.catalogue,
            self.search,
            Some((ty, from_output)),
        ));
        if let Some(kind) = picked {
            let id = fresh_id(snarl, kind.kind);
            let new = snarl.insert_node(pos, EditorNode::new(id, kind.kind));
            match src {
                AnyPins::Out(pins) => {
                    if let (Some(p), Some(i)) = (
                        pins.first(),
                        kind.input_ports().iter().position(|p| p.ty == ty),
                    ) {
                        let to = egui_snarl::InPinId {
                            node: new,
                            input: i,
                        };
                        snarl.drop_inputs(to);
                        snarl.connect(*p, to);
                    }
                }
                AnyPins::In(pins) => {
                    let out = kind.outputs.iter().position(|p| p.ty == ty).or_else(|| {
                        let port = pins
                            .first()
                            .and_then(|p| snarl.get_node(p.node).zip(Some(p.input)))
                            .and_then(|(n, i)| ports.input(n, i));
                        kind.outputs
                            .iter()
                            .position(|o| port.is_some_and(|p| Ports::accepts(&p, o.ty)))
                    });
                    if let (Some(p), Some(o)) = (pins.first(), out) {
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

    /// A node's context menu: run to here, painter, subgraph actions, reroutes, duplicate,
    /// remove.
    pub(super) fn node_menu_ui(
        &mut self,
        node: NodeId,
        inputs: &[InPin],
        ui: &mut Ui,
        snarl: &mut Snarl<EditorNode>,
    ) {
        let Some(n) = snarl.get_node(node) else {
            return;
        };
        let id = n.id.clone();
        let kind = n.kind.clone();
        let sub = n.subgraph.is_some();
        let mut cmd = |c: AppCommand, ui: &mut Ui| {
            self.commands.push(c);
            ui.close();
        };
        if ui.button("▶ Run to here").clicked() {
            cmd(
                AppCommand::Run {
                    to_node: Some(id.clone()),
                },
                ui,
            );
        }
        if matches!(kind.as_str(), "PaintMask" | "LoadMask") && ui.button("Paint mask…").clicked()
        {
            cmd(AppCommand::OpenPainter(id.clone()), ui);
        }
        let masks = self
            .catalogue
            .get(&kind)
            .map(|s| s.inputs)
            .unwrap_or_default();
        for p in masks.iter().filter(|p| p.ty == PortType::Mask) {
            if ui
                .button(format!("Paint this mask ({})…", p.name))
                .clicked()
            {
                cmd(
                    AppCommand::Painter(crate::app::painter::PainterCommand::PaintInput {
                        node: id.clone(),
                        input: p.name.to_string(),
                    }),
                    ui,
                );
            }
        }
        if sub {
            if ui.button("Open subgraph").clicked() {
                cmd(
                    AppCommand::Editor(EditorCommand::OpenSubgraph(id.clone())),
                    ui,
                );
            }
            if ui.button("Ungroup").clicked() {
                cmd(AppCommand::Editor(EditorCommand::Ungroup(id.clone())), ui);
            }
        }
        if ui
            .button("Make subgraph")
            .on_hover_text("Ctrl+G: the selected nodes (or this one) become one subgraph node")
            .clicked()
        {
            cmd(
                AppCommand::Editor(EditorCommand::MakeSubgraph(vec![id.clone()])),
                ui,
            );
        }
        if ui.button("Frame selection").clicked() {
            cmd(
                AppCommand::Editor(EditorCommand::FrameSelection(vec![id.clone()])),
                ui,
            );
        }
        let linked: Vec<String> = inputs
            .iter()
            .filter(|p| !p.remotes.is_empty())
            .filter_map(|p| self.ports.input(n, p.id.input).map(|p| p.name.to_string()))
            .collect();
        if !linked.is_empty() {
            ui.menu_button("Insert reroute", |ui| {
                for port in linked {
                    if ui.button(&port).clicked() {
                        self.commands
                            .push(AppCommand::Editor(EditorCommand::InsertReroute {
                                node: id.clone(),
                                port,
                            }));
                        ui.close();
                    }
                }
            });
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
