//! The inspector: every parameter of the selected node with full-size widgets, its inputs'
//! sources, its last outputs with zoom, and its presets.

use std::collections::HashMap;
use std::sync::Arc;

use egui::{TextureHandle, TextureOptions};
use engine::{Outputs, Value};
use nodes::Catalogue;

use super::doc::EditorDoc;
use super::painter::image_to_color;
use super::params::param_ui;
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

/// The inspector panel for document node `node_id`.
pub fn inspector_ui(
    ui: &mut egui::Ui,
    insp: &mut Inspector,
    doc: &mut EditorDoc,
    node_id: &str,
    catalogue: &Catalogue,
    outputs: &HashMap<String, Arc<Outputs>>,
    status: Option<&str>,
) -> Vec<AppCommand> {
    let mut cmds = Vec::new();
    let Some(nid) = doc.find(node_id) else {
        ui.label("Select a node to inspect it.");
        return cmds;
    };
    let sources: Vec<(String, String, nodes::PortType)> = doc
        .snarl
        .nodes()
        .filter(|n| n.id != node_id)
        .flat_map(|n| {
            catalogue.get(&n.kind).into_iter().flat_map(move |s| {
                s.outputs
                    .iter()
                    .map(move |p| (n.id.clone(), p.name.to_string(), p.ty))
            })
        })
        .collect();
    let current = doc.to_doc(catalogue);
    let Some(node) = doc.snarl.get_node_mut(nid) else {
        return cmds;
    };
    let Some(spec) = catalogue.get(&node.kind) else {
        ui.colored_label(
            egui::Color32::LIGHT_RED,
            format!("unknown kind {}", node.kind),
        );
        return cmds;
    };
    ui.heading(format!("{} · {}", spec.kind, node.id));
    ui.label(egui::RichText::new(spec.doc).weak());
    if let Some(s) = status {
        ui.label(egui::RichText::new(s).color(egui::Color32::from_rgb(150, 200, 255)));
    }
    ui.separator();
    if !spec.input_ports().is_empty() {
        ui.label(egui::RichText::new("Inputs").strong());
        for p in spec.input_ports() {
            let linked = current
                .link_into(&node.id, p.name)
                .map(|l| l.from.to_string());
            ui.horizontal(|ui| {
                egui::ComboBox::new(("src", &node.id, p.name), format!("{} ({})", p.name, p.ty))
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
                                    to: (node.id.clone(), p.name.to_string()),
                                });
                            }
                        }
                    });
            });
        }
        ui.separator();
    }
    ui.label(egui::RichText::new("Parameters").strong());
    for p in spec.params {
        param_ui(ui, p, &mut node.params, false);
    }
    if spec.kind == "PaintMask" && ui.button("Paint mask…").clicked() {
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
    match outputs.get(&node.id) {
        None => {
            ui.label(egui::RichText::new("not run yet").weak());
        }
        Some(outs) => {
            let id = node.id.clone();
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
