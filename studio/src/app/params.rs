//! Parameter widgets, generated from the catalogue's [`ParamSpec`]s. The node body uses the
//! compact form, the inspector the full-size one.

use std::collections::BTreeMap;

use nodes::{ParamKind, ParamSpec, ParamValue, SeedValue, Widget};

/// One parameter row: the name the value is set under (a subgraph node's exposed name), the
/// spec that gives its kind and widget, and its default and range (an exposed parameter may
/// narrow the inner one's).
pub struct ParamRow<'a> {
    pub name: &'a str,
    pub spec: &'a ParamSpec,
    pub default: ParamValue,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub doc: &'a str,
}

impl<'a> ParamRow<'a> {
    /// A node's own parameter.
    pub fn of(spec: &'a ParamSpec) -> ParamRow<'a> {
        ParamRow {
            name: spec.name,
            spec,
            default: spec.default_value(),
            min: None,
            max: None,
            doc: spec.doc,
        }
    }

    /// A subgraph node's exposed parameter.
    pub fn exposed(p: &'a nodes::subgraph::InterfaceParam) -> ParamRow<'a> {
        ParamRow {
            name: &p.name,
            spec: p.spec,
            default: p.default.clone(),
            min: p.min,
            max: p.max,
            doc: if p.doc.is_empty() { p.spec.doc } else { &p.doc },
        }
    }
}

/// Shows one parameter's widget; returns true when the value changed. A value equal to the
/// default is removed from `params`, so documents stay minimal.
pub fn param_ui(
    ui: &mut egui::Ui,
    spec: &ParamSpec,
    params: &mut BTreeMap<String, ParamValue>,
    compact: bool,
) -> bool {
    param_row_ui(ui, &ParamRow::of(spec), params, compact).0
}

/// Shows one parameter row; returns whether the value changed and the name label's response
/// (right-click on it for the parameter's context menu).
pub fn param_row_ui(
    ui: &mut egui::Ui,
    row: &ParamRow<'_>,
    params: &mut BTreeMap<String, ParamValue>,
    compact: bool,
) -> (bool, egui::Response) {
    let default = &row.default;
    let mut value = params
        .get(row.name)
        .cloned()
        .unwrap_or_else(|| default.clone());
    let width = if compact {
        COMPACT_WIDTH
    } else {
        ui.available_width().max(160.0)
    };
    let (changed, label) = ui
        .horizontal(|ui| {
            let label = ui
                .add(egui::Label::new(row.name).sense(egui::Sense::click()))
                .on_hover_text(row.doc);
            let changed = value_ui(ui, row, &mut value, width, compact);
            (changed, label)
        })
        .inner;
    if changed {
        if &value == default {
            params.remove(row.name);
        } else {
            params.insert(row.name.to_string(), value);
        }
    }
    (changed, label)
}

/// Width of a value widget inside a node (the inspector uses the panel's width): wide enough
/// for a file name template such as `{graph}/{seed:04}-{node}.png`.
const COMPACT_WIDTH: f32 = 190.0;

/// The smallest size of a text field: inside a node (`compact`) its full width, since a node's
/// body starts narrow and a text field otherwise shrinks to it; in a panel nothing (the panel
/// would grow to fit a field as wide as itself, frame after frame).
fn min_size(width: f32, compact: bool) -> egui::Vec2 {
    egui::vec2(if compact { width } else { 0.0 }, 0.0)
}

/// A one-line text field, kept wide inside a node, with the full text on hover.
fn line_ui(
    ui: &mut egui::Ui,
    s: &mut String,
    width: f32,
    compact: bool,
    hint: Option<&str>,
) -> egui::Response {
    let mut edit = egui::TextEdit::singleline(s)
        .desired_width(width)
        .min_size(min_size(width, compact));
    if let Some(h) = hint {
        edit = edit.hint_text(h);
    }
    let r = ui.add(edit);
    if s.is_empty() {
        r
    } else {
        let full = s.clone();
        r.on_hover_text(full)
    }
}

fn value_ui(
    ui: &mut egui::Ui,
    row: &ParamRow<'_>,
    value: &mut ParamValue,
    width: f32,
    compact: bool,
) -> bool {
    let spec = row.spec;
    let id = ui.id().with(row.name);
    match &spec.kind {
        ParamKind::Int { min, max, .. } => {
            let min = &row.min.map_or(*min, |m| (m.ceil() as i64).max(*min));
            let max = &row.max.map_or(*max, |m| (m.floor() as i64).min(*max));
            let mut v = match value {
                ParamValue::Int(i) => *i,
                ParamValue::Float(f) => f.round() as i64,
                _ => 0,
            };
            let r = if spec.widget == Widget::Slider {
                ui.add(egui::Slider::new(&mut v, *min..=*max))
            } else {
                ui.add(egui::DragValue::new(&mut v).range(*min..=*max))
            };
            let r = r.on_hover_text(row.doc);
            if r.changed() {
                *value = ParamValue::Int(v);
            }
            r.changed()
        }
        ParamKind::Float { min, max, .. } => {
            let min = &row.min.map_or(*min, |m| m.max(*min));
            let max = &row.max.map_or(*max, |m| m.min(*max));
            let mut v = value.as_f64().unwrap_or(0.0);
            let r = if spec.widget == Widget::Slider && (max - min) <= 1000.0 {
                ui.add_sized(
                    [width, 18.0],
                    egui::Slider::new(&mut v, *min..=*max).max_decimals(3),
                )
            } else {
                ui.add(
                    egui::DragValue::new(&mut v)
                        .range(*min..=*max)
                        .speed(((max - min) / 1000.0).clamp(0.001, 1.0))
                        .max_decimals(3),
                )
            };
            let r = r.on_hover_text(row.doc);
            if r.changed() {
                *value = ParamValue::Float(v);
            }
            r.changed()
        }
        ParamKind::Bool { .. } => {
            let mut v = matches!(value, ParamValue::Bool(true));
            let r = ui.checkbox(&mut v, "").on_hover_text(row.doc);
            if r.changed() {
                *value = ParamValue::Bool(v);
            }
            r.changed()
        }
        ParamKind::Text { .. } => {
            let mut s = value.as_str().unwrap_or_default().to_string();
            let r = if spec.widget == Widget::TextArea {
                ui.add(
                    egui::TextEdit::multiline(&mut s)
                        .desired_width(width)
                        .min_size(min_size(width, compact))
                        .desired_rows(if compact { 2 } else { 5 }),
                )
            } else {
                line_ui(ui, &mut s, width, compact, None)
            };
            if r.changed() {
                *value = ParamValue::Text(s);
            }
            r.changed()
        }
        ParamKind::Choice { options, .. } => {
            let mut current = value.as_str().unwrap_or_default().to_string();
            let before = current.clone();
            egui::ComboBox::from_id_salt(id)
                .selected_text(current.clone())
                .width(width * 0.8)
                .show_ui(ui, |ui| {
                    for o in options.iter() {
                        ui.selectable_value(&mut current, (*o).to_string(), *o);
                    }
                });
            if current != before {
                *value = ParamValue::Text(current);
                true
            } else {
                false
            }
        }
        ParamKind::Seed => seed_ui(ui, value),
        ParamKind::Color { .. } => {
            let rgb = value
                .as_str()
                .and_then(nodes::parse_hex_color)
                .unwrap_or([0.5, 0.5, 0.5]);
            let mut c = egui::Color32::from_rgb(
                (rgb[0] * 255.0).round() as u8,
                (rgb[1] * 255.0).round() as u8,
                (rgb[2] * 255.0).round() as u8,
            );
            let r = egui::widgets::color_picker::color_edit_button_srgba(
                ui,
                &mut c,
                egui::color_picker::Alpha::Opaque,
            );
            if r.changed() {
                *value = ParamValue::Text(format!("#{:02x}{:02x}{:02x}", c.r(), c.g(), c.b()));
            }
            r.changed()
        }
        ParamKind::InputFile { extensions } => {
            let mut s = value.as_str().unwrap_or_default().to_string();
            let mut changed = false;
            if let Some(sha) = s.strip_prefix("asset:") {
                ui.label(format!("embedded {}", &sha[..sha.len().min(10)]))
                    .on_hover_text(s.clone());
            } else {
                changed |=
                    line_ui(ui, &mut s, width * 0.75, compact, Some("file or folder")).changed();
            }
            if ui.button("…").on_hover_text("Choose a file").clicked() {
                // With no desktop portal the dialog returns None; the text field still works.
                if let Some(p) = rfd::FileDialog::new()
                    .add_filter("images", extensions)
                    .pick_file()
                {
                    s = p.to_string_lossy().into_owned();
                    changed = true;
                }
            }
            if changed {
                *value = ParamValue::Text(s);
            }
            changed
        }
        ParamKind::OutputTemplate { .. } => {
            let mut s = value.as_str().unwrap_or_default().to_string();
            let r = line_ui(ui, &mut s, width, compact, None);
            let bad = nodes::check_output_template(&s).err();
            if let Some(e) = &bad {
                ui.colored_label(egui::Color32::LIGHT_RED, "⚠")
                    .on_hover_text(e);
            }
            if r.changed() {
                *value = ParamValue::Text(s);
            }
            r.changed()
        }
    }
}

/// A seed: mode (from run + offset, or fixed) and a randomize button.
fn seed_ui(ui: &mut egui::Ui, value: &mut ParamValue) -> bool {
    let mut seed = value.as_seed().unwrap_or(SeedValue::Run { offset: 0 });
    let before = seed;
    let mut fixed = matches!(seed, SeedValue::Fixed { .. });
    if ui
        .checkbox(&mut fixed, "fixed")
        .on_hover_text("Fixed: this value. Otherwise: the run seed plus an offset.")
        .changed()
    {
        seed = if fixed {
            SeedValue::Fixed { value: 0 }
        } else {
            SeedValue::Run { offset: 0 }
        };
    }
    match &mut seed {
        SeedValue::Fixed { value } => {
            ui.add(egui::DragValue::new(value));
        }
        SeedValue::Run { offset } => {
            ui.label("run +");
            ui.add(egui::DragValue::new(offset));
        }
    }
    if ui.button("random").on_hover_text("Randomize").clicked() {
        let r = random_u32();
        seed = match seed {
            SeedValue::Fixed { .. } => SeedValue::Fixed {
                value: u64::from(r),
            },
            SeedValue::Run { .. } => SeedValue::Run {
                offset: u64::from(r % 100_000),
            },
        };
    }
    if seed != before {
        *value = ParamValue::Seed(seed);
        true
    } else {
        false
    }
}

/// A random number from the clock and a counter (seeds only need to differ).
fn random_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish() as u32
}
