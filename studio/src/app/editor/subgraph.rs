//! An open subgraph's breadcrumb (`recipe › scratch-block › …`, click a level to go up) and its
//! interface panel (name, doc; the exposed inputs, outputs and parameters with their names,
//! docs, defaults and ranges).

use nodes::Catalogue;

use super::super::doc::{EditorDoc, Scope};
use super::super::params::{param_row_ui, ParamRow};
use super::super::AppCommand;
use super::EditorCommand;

/// The breadcrumb and the interface panel, when a subgraph is open.
pub fn scope_ui(ui: &mut egui::Ui, doc: &mut EditorDoc, catalogue: &Catalogue) -> Vec<AppCommand> {
    let mut cmds = Vec::new();
    let root = doc.extra.title_or("recipe").to_string();
    let Some(scope) = &mut doc.scope else {
        return cmds;
    };
    ui.horizontal(|ui| {
        if ui
            .button(format!("⬆ {root}"))
            .on_hover_text("Back to the top level")
            .clicked()
        {
            cmds.push(AppCommand::Editor(EditorCommand::LeaveSubgraph(0)));
        }
        let last = scope.names.len().saturating_sub(1);
        for (i, name) in scope.names.iter().enumerate() {
            ui.label("›");
            if i == last {
                ui.label(egui::RichText::new(name).strong());
            } else if ui.button(name).clicked() {
                cmds.push(AppCommand::Editor(EditorCommand::LeaveSubgraph(i + 1)));
            }
        }
    });
    let snarl = &doc.snarl;
    egui::Panel::left("subgraph-interface")
        .default_size(260.0)
        .show(ui, |ui| {
            egui::ScrollArea::vertical()
                .id_salt("subgraph-interface-scroll")
                .show(ui, |ui| {
                    interface_ui(
                        ui,
                        scope,
                        |node: &str| snarl.nodes().find(|n| n.id == node).map(|n| n.kind.clone()),
                        catalogue,
                    )
                });
        });
    cmds
}

/// Edits the open definition's interface in place (the next commit writes it back).
fn interface_ui(
    ui: &mut egui::Ui,
    scope: &mut Scope,
    kind_of: impl Fn(&str) -> Option<String>,
    catalogue: &Catalogue,
) {
    let def = &mut scope.def;
    ui.heading("Subgraph");
    ui.horizontal(|ui| {
        ui.label("name");
        ui.text_edit_singleline(&mut def.name);
    });
    ui.add(
        egui::TextEdit::multiline(&mut def.doc)
            .hint_text("what it does")
            .desired_rows(2),
    );
    ui.separator();
    ui.label(egui::RichText::new("Inputs").strong());
    for p in &mut def.inputs {
        ui.horizontal(|ui| {
            ui.add(egui::TextEdit::singleline(&mut p.name).desired_width(90.0));
            ui.weak(
                p.targets
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        });
        ui.add(egui::TextEdit::singleline(&mut p.doc).hint_text("doc"));
    }
    ui.label(egui::RichText::new("Outputs").strong());
    for p in &mut def.outputs {
        ui.horizontal(|ui| {
            ui.add(egui::TextEdit::singleline(&mut p.name).desired_width(90.0));
            ui.weak(p.from.to_string());
        });
        ui.add(egui::TextEdit::singleline(&mut p.doc).hint_text("doc"));
    }
    ui.label(egui::RichText::new("Parameters").strong());
    if def.params.is_empty() {
        ui.weak("none: right-click an inner parameter → Expose parameter");
    }
    let mut remove = None;
    for (i, p) in def.params.iter_mut().enumerate() {
        ui.push_id(("exposed", i), |ui| {
            ui.horizontal(|ui| {
                ui.add(egui::TextEdit::singleline(&mut p.name).desired_width(90.0));
                ui.weak(
                    p.targets
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                );
                if ui
                    .small_button("✖")
                    .on_hover_text("Stop exposing it")
                    .clicked()
                {
                    remove = Some(i);
                }
            });
            ui.add(egui::TextEdit::singleline(&mut p.doc).hint_text("doc"));
            // The default, edited with the inner parameter's widget.
            let spec = p.targets.first().and_then(|t| {
                let kind = kind_of(&t.0)?;
                catalogue.get(&kind)?.params.iter().find(|s| s.name == t.1)
            });
            let mut has_default = p.default.is_some();
            if ui
                .checkbox(&mut has_default, "default")
                .on_hover_text(
                    "Unset on the subgraph node, the parameter takes this default; without one, \
                     the inner nodes keep their own values",
                )
                .changed()
            {
                p.default = has_default
                    .then(|| spec.map(|s| s.default_value()))
                    .flatten();
            }
            if !has_default {
                ui.weak("unset: the inner nodes' own values");
            } else if let Some(spec) = spec {
                let mut one = std::collections::BTreeMap::new();
                if let Some(v) = &p.default {
                    one.insert(spec.name.to_string(), v.clone());
                }
                let mut row = ParamRow::of(spec);
                row.doc = "the default when the subgraph node leaves it unset";
                let (changed, _) = param_row_ui(ui, &row, &mut one, true);
                if changed {
                    p.default = Some(
                        one.remove(spec.name)
                            .unwrap_or_else(|| spec.default_value()),
                    );
                }
            }
            ui.horizontal(|ui| {
                range_ui(ui, "min", &mut p.min);
                range_ui(ui, "max", &mut p.max);
            });
        });
    }
    if let Some(i) = remove {
        def.params.remove(i);
    }
}

fn range_ui(ui: &mut egui::Ui, label: &str, v: &mut Option<f64>) {
    let mut on = v.is_some();
    if ui.checkbox(&mut on, label).changed() {
        *v = on.then_some(0.0);
    }
    if let Some(x) = v {
        ui.add(egui::DragValue::new(x).speed(0.01));
    }
}
