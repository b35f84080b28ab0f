//! The inspector: every parameter of the selected node with full-size widgets, its inputs'
//! sources, its last outputs with zoom, and its presets.

use std::collections::HashMap;
use std::sync::Arc;

use egui::{TextureHandle, TextureOptions};
use engine::{Outputs, Value};
use nodes::Catalogue;

use super::doc::EditorDoc;
use super::editor::ports::Ports;
use super::editor::{param_menu, EditorCommand};
use super::painter::image_to_color;
use super::params::{param_row_ui, ParamRow};
use super::AppCommand;

/// Textures of node outputs, keyed by node and port, rebuilt when the output changes.
#[derive(Default)]
pub struct OutputTextures {
    map: HashMap<(String, String), (usize, TextureHandle)>,
}

impl OutputTextures {
    fn get(
        &mut self,
        ctx: &egui::Context,
        node: &str,
        port: &str,
        value: &Value,
    ) -> Option<TextureHandle> {
        let (ptr, img) = match value {
            Value::Image(i) => (Arc::as_ptr(i) as usize, (**i).clone()),
            Value::Mask(m) | Value::InstanceMask(m, _) => (Arc::as_ptr(m) as usize, m.to_image()),
            _ => return None,
        };
        let key = (node.to_string(), port.to_string());
        if let Some((p, t)) = self.map.get(&key) {
            if *p == ptr {
                return Some(t.clone());
            }
        }
        let t = ctx.load_texture(
            format!("out-{node}-{port}"),
            image_to_color(&img),
            TextureOptions::LINEAR,
        );
        self.map.insert(key, (ptr, t.clone()));
        Some(t)
    }
}

/// Inspector state that outlives a frame.
#[derive(Default)]
pub struct Inspector {
    pub zoom: f32,
    pub preset_name: String,
    pub textures: OutputTextures,
    /// Presets by kind, read from the store (refreshed after every preset command).
    pub presets: HashMap<String, Vec<(String, serde_json::Value)>>,
}

/// The inspector panel for document node `node_id`, with its last outputs and status line
/// (`outputs` and `statuses` are keyed as runs name nodes: [`EditorDoc::flat_id`]).
pub fn inspector_ui(
    ui: &mut egui::Ui,
    insp: &mut Inspector,
    doc: &mut EditorDoc,
    node_id: &str,
    catalogue: &Catalogue,
    outputs: &HashMap<String, Arc<Outputs>>,
    statuses: &HashMap<String, String>,
) -> Vec<AppCommand> {
    let mut cmds = Vec::new();
    // Runs name a node inside an open subgraph by its flattened path.
    let run_id = doc.flat_id(node_id);
    let Some(nid) = doc.find(node_id) else {
        ui.label("Select a node to inspect it.");
        return cmds;
    };
    let ports = Ports::new(catalogue, &doc.interfaces);
    let sources: Vec<(String, String, String)> = doc
        .snarl
        .node_ids()
        .filter(|(_, n)| n.id != node_id)
        .flat_map(|(nid, n)| {
            let snarl = &doc.snarl;
            (0..ports.outputs(n)).filter_map(move |o| {
                let p = ports.output(n, o)?;
                let ty = ports
                    .output_type(snarl, nid, o)
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| "any".into());
                Some((n.id.clone(), p.name.to_string(), ty))
            })
        })
        .collect();
    let current = doc.view_doc(catalogue);
    let in_subgraph = doc.scope.is_some();
    let Some(node) = doc.snarl.get_node_mut(nid) else {
        return cmds;
    };
    let spec = catalogue.get(&node.kind);
    let iface = node
        .subgraph
        .as_ref()
        .and_then(|r| doc.interfaces.get(&r.hash));
    let (title, about) = match (&node.subgraph, spec) {
        (Some(r), _) => (format!("⊞ {} · {}", r.name, node.id), "A subgraph node"),
        (None, Some(s)) => (format!("{} · {}", s.kind, node.id), s.doc),
        (None, None) if node.kind == nodes::subgraph::REROUTE_KIND => {
            (format!("Reroute · {}", node.id), "A reroute point")
        }
        (None, None) => {
            ui.colored_label(
                egui::Color32::LIGHT_RED,
                format!("unknown kind {}", node.kind),
            );
            return cmds;
        }
    };
    ui.heading(title);
    ui.label(egui::RichText::new(about).weak());
    if let Some(s) = statuses.get(&run_id) {
        ui.label(egui::RichText::new(s).color(egui::Color32::from_rgb(150, 200, 255)));
    }
    if node.subgraph.is_some() {
        ui.horizontal(|ui| {
            if ui.button("Open subgraph").clicked() {
                cmds.push(AppCommand::Editor(EditorCommand::OpenSubgraph(
                    node.id.clone(),
                )));
            }
            if ui.button("Ungroup").clicked() {
                cmds.push(AppCommand::Editor(EditorCommand::Ungroup(node.id.clone())));
            }
        });
    }
    ui.separator();
    let inputs: Vec<(String, String)> = (0..ports.inputs(node))
        .filter_map(|i| ports.input(node, i))
        .map(|p| {
            let ty = p.ty.map(|t| t.to_string()).unwrap_or_else(|| "any".into());
            (p.name.to_string(), ty)
        })
        .collect();
    if !inputs.is_empty() {
        ui.label(egui::RichText::new("Inputs").strong());
        for (name, ty) in &inputs {
            let linked = current
                .link_into(&node.id, name)
                .map(|l| l.from.to_string());
            ui.horizontal(|ui| {
                egui::ComboBox::new(("src", &node.id, name), format!("{name} ({ty})"))
                    .selected_text(linked.clone().unwrap_or_else(|| "— not connected —".into()))
                    .show_ui(ui, |ui| {
                        for (n, port, ty) in &sources {
                            let label = format!("{n}.{port} ({ty})");
                            if ui
                                .selectable_label(
                                    linked.as_deref() == Some(&format!("{n}.{port}")),
                                    label,
                                )
                                .clicked()
                            {
                                cmds.push(AppCommand::Connect {
                                    from: (n.clone(), port.clone()),
                                    to: (node.id.clone(), name.clone()),
                                });
                            }
                        }
                    });
                if ty == "Mask"
                    && ui
                        .small_button("🖌 Paint…")
                        .on_hover_text("Paint this mask: edits the PaintMask or LoadMask node feeding it, else adds a PaintMask node here")
                        .clicked()
                {
                    cmds.push(AppCommand::Painter(super::painter::PainterCommand::PaintInput {
                        node: node.id.clone(),
                        input: name.clone(),
                    }));
                }
            });
        }
        ui.separator();
    }
    ui.label(egui::RichText::new("Parameters").strong());
    if let Some(iface) = iface {
        for p in &iface.params {
            let (_, label) = param_row_ui(ui, &ParamRow::exposed(p), &mut node.params, false);
            param_menu(&mut cmds, &label, node, &p.name, false, in_subgraph);
        }
    }
    let Some(spec) = spec else {
        return cmds;
    };
    for p in spec.params {
        let (_, label) = param_row_ui(ui, &ParamRow::of(p), &mut node.params, false);
        param_menu(&mut cmds, &label, node, p.name, p.input, in_subgraph);
    }
    if matches!(spec.kind, "PaintMask" | "LoadMask") && ui.button("Paint mask…").clicked() {
        cmds.push(AppCommand::OpenPainter(node.id.clone()));
    }
    if ui.button("▶ Run to here").clicked() {
        cmds.push(AppCommand::Run {
            to_node: Some(node.id.clone()),
        });
    }
    ui.separator();
    ui.label(egui::RichText::new("Presets").strong());
    let kind = spec.kind.to_string();
    let presets = insp.presets.get(&kind).cloned().unwrap_or_default();
    if presets.is_empty() {
        ui.label(egui::RichText::new("none saved for this kind").weak());
    }
    for (name, params) in presets {
        ui.horizontal(|ui| {
            ui.label(&name);
            if ui.small_button("apply").clicked() {
                cmds.push(AppCommand::ApplyPreset {
                    node: node.id.clone(),
                    params: params.clone(),
                });
            }
            if ui.small_button("delete").clicked() {
                cmds.push(AppCommand::DeletePreset {
                    kind: kind.clone(),
                    name: name.clone(),
                });
            }
        });
    }
    ui.horizontal(|ui| {
        ui.add(
            egui::TextEdit::singleline(&mut insp.preset_name)
                .hint_text("preset name")
                .desired_width(120.0),
        );
        if ui
            .add_enabled(
                !insp.preset_name.trim().is_empty(),
                egui::Button::new("save preset"),
            )
            .clicked()
        {
            let params = serde_json::to_value(&node.params).unwrap_or_default();
            cmds.push(AppCommand::SavePreset {
                kind: kind.clone(),
                name: insp.preset_name.trim().to_string(),
                params,
            });
            insp.preset_name.clear();
        }
    });
    ui.separator();
    ui.label(egui::RichText::new("Last outputs").strong());
    if insp.zoom <= 0.0 {
        insp.zoom = 0.5;
    }
    ui.add(
        egui::Slider::new(&mut insp.zoom, 0.05..=4.0)
            .logarithmic(true)
            .text("zoom"),
    );
    match outputs.get(&run_id) {
        None => {
            ui.label(egui::RichText::new("not run yet").weak());
        }
        Some(outs) => {
            let id = run_id.clone();
            egui::ScrollArea::both()
                .id_salt("inspector-outputs")
                .max_height(ui.available_height())
                .show(ui, |ui| {
                    for (port, value) in outs.iter() {
                        if let Some(t) = insp.textures.get(ui.ctx(), &id, port, value) {
                            ui.label(format!("{port} ({}×{})", t.size()[0], t.size()[1]));
                            ui.add(
                                egui::Image::new(&t).fit_to_exact_size(t.size_vec2() * insp.zoom),
                            );
                        }
                    }
                });
        }
    }
    cmds
}
