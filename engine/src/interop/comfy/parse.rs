//! Reading ComfyUI's two formats (the API prompt and the UI workflow) into the neutral form.

use std::collections::BTreeMap;

use nodes::{GraphDoc, NodeLayout};
use serde_json::Value;

use super::convert::convert;
use super::tables::{widget_names, EDITOR_ONLY};
use super::{comfy_err, CNode, Flow, Input};
use crate::interop::{ImportReport, ImportResult, Result};

/// A node id from a JSON string or number.
fn id_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A `[x, y]` or `{"0": x, "1": y}` position.
fn pos_of(v: Option<&Value>) -> Option<[f32; 2]> {
    let v = v?;
    let (x, y) = match v {
        Value::Array(a) => (a.first()?.as_f64()?, a.get(1)?.as_f64()?),
        Value::Object(o) => (o.get("0")?.as_f64()?, o.get("1")?.as_f64()?),
        _ => return None,
    };
    Some([x as f32, y as f32])
}

/// Imports the API "prompt" format.
pub fn import_api(v: &Value) -> Result<ImportResult> {
    let obj = v
        .as_object()
        .ok_or_else(|| comfy_err("the API prompt is not a JSON object"))?;
    let mut flow = Flow::new();
    for (id, node) in obj {
        let class = node
            .get("class_type")
            .and_then(Value::as_str)
            .ok_or_else(|| comfy_err(format!("node \"{id}\" has no class_type")))?;
        let mut inputs = BTreeMap::new();
        if let Some(ins) = node.get("inputs").and_then(Value::as_object) {
            for (name, val) in ins {
                let link = val
                    .as_array()
                    .filter(|a| a.len() == 2)
                    .and_then(|a| Some(Input::Link(id_of(&a[0])?, a[1].as_u64()?)));
                inputs.insert(
                    name.clone(),
                    link.unwrap_or_else(|| Input::Value(val.clone())),
                );
            }
        }
        flow.insert(
            id.clone(),
            CNode {
                class: class.to_string(),
                inputs,
                pos: None,
            },
        );
    }
    Ok(convert(&flow, ImportReport::default()))
}

/// One UI-format link: source node, source slot, type name.
struct UiLink {
    from: String,
    slot: u64,
    ty: String,
}

/// Imports the UI workflow format.
pub fn import_ui(v: &Value) -> Result<ImportResult> {
    let nodes_v = v
        .get("nodes")
        .and_then(Value::as_array)
        .ok_or_else(|| comfy_err("the workflow has no \"nodes\" array"))?;
    let mut links: BTreeMap<u64, UiLink> = BTreeMap::new();
    for l in v
        .get("links")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        // Either [id, from, from_slot, to, to_slot, type] or an object with origin_*.
        let parsed = if let Some(a) = l.as_array() {
            (|| {
                Some((
                    a.first()?.as_u64()?,
                    id_of(a.get(1)?)?,
                    a.get(2)?.as_u64()?,
                    a.get(5).and_then(Value::as_str).unwrap_or("").to_string(),
                ))
            })()
        } else {
            (|| {
                Some((
                    l.get("id")?.as_u64()?,
                    id_of(l.get("origin_id")?)?,
                    l.get("origin_slot")?.as_u64()?,
                    l.get("type")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                ))
            })()
        };
        let (id, from, slot, ty) =
            parsed.ok_or_else(|| comfy_err(format!("malformed link {l}")))?;
        links.insert(id, UiLink { from, slot, ty });
    }

    let mut by_id: BTreeMap<String, &Value> = BTreeMap::new();
    for n in nodes_v {
        let id = n
            .get("id")
            .and_then(id_of)
            .ok_or_else(|| comfy_err(format!("a node has no id: {n}")))?;
        by_id.insert(id, n);
    }
    let class_of = |n: &Value| {
        n.get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let mode_of = |n: &Value| n.get("mode").and_then(Value::as_u64).unwrap_or(0);
    let input_links = |n: &Value| -> Vec<(String, Option<u64>, String, bool)> {
        n.get("inputs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|i| {
                (
                    i.get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    i.get("link").and_then(Value::as_u64),
                    i.get("type")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    i.get("widget").is_some(),
                )
            })
            .collect()
    };

    let mut report = ImportReport::default();
    // Bypassed nodes a link was passed through: (id, class, why).
    let mut bypassed: Vec<(String, String, String)> = Vec::new();
    // Follows a link through Reroutes and bypassed nodes to its real source.
    let resolve =
        |mut link: u64, bypassed: &mut Vec<(String, String, String)>| -> Option<(String, u64)> {
            for _ in 0..1000 {
                let l = links.get(&link)?;
                let n = by_id.get(&l.from)?;
                let class = class_of(n);
                if class == "Reroute" {
                    link = input_links(n).first()?.1?;
                    continue;
                }
                match mode_of(n) {
                    4 => {
                        let ins = input_links(n);
                        let same = ins
                            .iter()
                            .find(|(_, lk, ty, w)| !w && lk.is_some() && *ty == l.ty);
                        link = same?.1?;
                        bypassed.push((
                            l.from.clone(),
                            class,
                            format!("bypassed in ComfyUI: its {} input is passed through", l.ty),
                        ));
                        continue;
                    }
                    2 => return None,
                    _ => return Some((l.from.clone(), l.slot)),
                }
            }
            None
        };

    let mut flow = Flow::new();
    let mut bypassed_nodes: Vec<(String, String)> = Vec::new();
    for (id, n) in &by_id {
        let class = class_of(n);
        match class.as_str() {
            "Note" | "MarkdownNote" => {
                report.not_imported(id, &class, "an editor note");
                continue;
            }
            "Reroute" => {
                report.imported(id, &class, "the links it carries");
                continue;
            }
            "PrimitiveNode" => {
                let feeds = n
                    .get("outputs")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .any(|o| {
                        o.get("links")
                            .and_then(Value::as_array)
                            .is_some_and(|l| !l.is_empty())
                    });
                if feeds {
                    report.imported(id, &class, "its value, in the widgets it feeds");
                } else {
                    report.not_imported(id, &class, "feeds nothing");
                }
                continue;
            }
            c if EDITOR_ONLY.contains(&c) => continue,
            _ => {}
        }
        match mode_of(n) {
            2 => {
                report.not_imported(id, &class, "muted in ComfyUI");
                continue;
            }
            4 => {
                bypassed_nodes.push((id.clone(), class));
                continue;
            }
            _ => {}
        }
        let mut inputs = BTreeMap::new();
        // Widgets first; a link into a widget-turned-input keeps the value the editor shows.
        match n.get("widgets_values") {
            Some(Value::Array(vals)) => {
                if let Some(names) = widget_names(&class) {
                    if names.len() != vals.len() {
                        report.approximated(
                            id,
                            &class,
                            format!(
                                "{} widget values where {} were expected ({}); read positionally",
                                vals.len(),
                                names.len(),
                                names.join(", ")
                            ),
                        );
                    }
                    for (name, val) in names.iter().zip(vals) {
                        inputs.insert(name.to_string(), Input::Value(val.clone()));
                    }
                }
            }
            Some(Value::Object(map)) => {
                for (k, val) in map {
                    inputs.insert(k.clone(), Input::Value(val.clone()));
                }
            }
            _ => {}
        }
        for (name, link, _ty, is_widget) in input_links(n) {
            if is_widget {
                continue;
            }
            if let Some(lk) = link {
                match resolve(lk, &mut bypassed) {
                    Some((from, slot)) => {
                        inputs.insert(name, Input::Link(from, slot));
                    }
                    None => report.approximated(
                        id,
                        &class,
                        format!("input {name} comes from a muted or missing node"),
                    ),
                }
            }
        }
        flow.insert(
            id.clone(),
            CNode {
                class,
                inputs,
                pos: pos_of(n.get("pos")),
            },
        );
    }
    for (id, class, why) in bypassed {
        report.not_imported(&id, &class, why);
    }
    for (id, class) in bypassed_nodes {
        if !report.has(&id) {
            report.not_imported(&id, &class, "bypassed in ComfyUI");
        }
    }
    Ok(convert(&flow, report))
}

/// Copies the editor positions of a UI workflow onto the nodes of `graph` that carry the same
/// ids (used when a PNG holds both an API prompt and the workflow it came from).
pub fn copy_positions_from_workflow(graph: &mut GraphDoc, workflow: &Value) {
    for n in workflow
        .get("nodes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(id), Some(pos)) = (n.get("id").and_then(id_of), pos_of(n.get("pos"))) else {
            continue;
        };
        if graph.nodes.contains_key(&id) {
            graph.layout.insert(
                id,
                NodeLayout {
                    pos,
                    collapsed: false,
                },
            );
        }
    }
}
