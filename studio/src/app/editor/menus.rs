//! The editor's menus: the searchable add-node menu and a parameter row's context menu.

use egui::Ui;
use nodes::{Catalogue, NodeSpec, PortType};

use super::super::doc::EditorNode;
use super::super::AppCommand;
use super::EditorCommand;

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
