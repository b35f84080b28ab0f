//! `nodes` and `history`: what the catalogue declares and what the store holds.

use std::path::PathBuf;

use anyhow::Result;
use engine::Store;
use nodes::{Catalogue, ParamKind};

fn param_json(p: &nodes::ParamSpec) -> serde_json::Value {
    let mut v = serde_json::json!({
        "name": p.name,
        "doc": p.doc,
        "widget": format!("{:?}", p.widget),
        "default": p.default_value(),
        "expected": p.expected(),
    });
    let (ty, extra) = match &p.kind {
        ParamKind::Int { min, max, .. } => ("int", serde_json::json!({"min": min, "max": max})),
        ParamKind::Float { min, max, .. } => ("float", serde_json::json!({"min": min, "max": max})),
        ParamKind::Bool { .. } => ("bool", serde_json::json!({})),
        ParamKind::Text { .. } => ("text", serde_json::json!({})),
        ParamKind::Choice { options, .. } => ("choice", serde_json::json!({"options": options})),
        ParamKind::Seed => ("seed", serde_json::json!({})),
        ParamKind::Color { .. } => ("color", serde_json::json!({})),
        ParamKind::InputFile { extensions } => {
            ("input_file", serde_json::json!({"extensions": extensions}))
        }
        ParamKind::OutputTemplate { .. } => ("output_template", serde_json::json!({})),
    };
    if let (Some(obj), Some(extra)) = (v.as_object_mut(), extra.as_object()) {
        obj.insert("type".into(), ty.into());
        obj.extend(extra.clone());
    }
    v
}

pub(crate) fn nodes_cmd(json: bool) -> Result<i32> {
    let catalogue = Catalogue::builtin();
    if json {
        let ports = |ps: &[nodes::PortSpec]| -> Vec<serde_json::Value> {
            ps.iter().map(|p| serde_json::json!({"name": p.name, "type": p.ty.name(), "optional": p.optional, "doc": p.doc})).collect()
        };
        let list: Vec<serde_json::Value> = catalogue
            .specs()
            .iter()
            .map(|s| {
                serde_json::json!({
                    "kind": s.kind, "version": s.version, "category": s.category, "doc": s.doc,
                    "deterministic": s.deterministic, "sink": s.sink,
                    "inputs": ports(s.input_ports()), "outputs": ports(s.outputs),
                    "params": s.params.iter().map(param_json).collect::<Vec<_>>(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(0);
    }
    for cat in catalogue.categories() {
        println!("{cat}");
        for s in catalogue.specs().iter().filter(|s| s.category == cat) {
            let fmt_ports = |ps: &[nodes::PortSpec]| {
                ps.iter()
                    .map(|p| format!("{}:{}{}", p.name, p.ty, if p.optional { "?" } else { "" }))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            println!(
                "  {}@{}  ({}) -> ({})",
                s.kind,
                s.version,
                fmt_ports(s.input_ports()),
                fmt_ports(s.outputs)
            );
            for p in s.params {
                println!(
                    "      {:<10} {} [default {}]",
                    p.name,
                    p.expected(),
                    p.default_value().to_json()
                );
            }
        }
    }
    Ok(0)
}

pub(crate) fn history_cmd(json: bool, store: Option<PathBuf>) -> Result<i32> {
    let path = store.unwrap_or_else(engine::paths::store_path);
    if !path.exists() {
        if json {
            println!("[]");
        } else {
            println!("no runs yet (store {} does not exist)", path.display());
        }
        return Ok(0);
    }
    let store = Store::open_read_only(&path)?;
    let runs = store.runs()?;
    let outputs = store.outputs(None)?;
    if json {
        let list: Vec<serde_json::Value> = runs
            .iter()
            .map(|(id, r)| {
                let outs: Vec<serde_json::Value> = outputs
                    .iter()
                    .filter(|(_, o)| o.run_id == *id)
                    .map(|(oid, o)| {
                        let mut v = serde_json::to_value(o).unwrap_or_default();
                        if let Some(obj) = v.as_object_mut() {
                            obj.insert("id".into(), (*oid).into());
                        }
                        v
                    })
                    .collect();
                serde_json::json!({
                    "id": id, "graph": r.graph_name, "status": r.effective_status().name(), "seed": r.seed,
                    "items": r.items, "shard": r.shard, "started_ms": r.started_ms, "ended_ms": r.ended_ms,
                    "error": r.error, "node_timings": r.node_timings, "outputs": outs,
                    "retries": r.retries, "device": r.device,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(0);
    }
    if runs.is_empty() {
        println!("no runs yet ({})", path.display());
    }
    for (id, r) in &runs {
        let outs: Vec<_> = outputs.iter().filter(|(_, o)| o.run_id == *id).collect();
        let took = r
            .ended_ms
            .map(|e| format!("{:.2} s", (e.saturating_sub(r.started_ms)) as f64 / 1000.0))
            .unwrap_or_else(|| "-".into());
        println!(
            "#{id:<4} {:<11} {}  {:<24} seed {:<6} items {:<4} outputs {:<4} {:<9} on {}",
            r.effective_status().name(),
            engine::store::format_utc(r.started_ms),
            r.graph_name,
            r.seed,
            r.items,
            outs.len(),
            took,
            // Runs recorded before devices were recorded.
            r.device.as_deref().unwrap_or("-")
        );
        if let Some(e) = &r.error {
            println!("      error: {e}");
        }
        if !r.retries.is_empty() {
            let rejected = r.retries.iter().filter(|a| !a.kept).count();
            println!(
                "      filters: {} item(s) retried, {rejected} rejected",
                r.retries.len()
            );
        }
        for (oid, o) in outs {
            println!(
                "      output {oid}: {} ({}×{}, seed {})",
                o.path, o.width, o.height, o.seed
            );
        }
    }
    Ok(0)
}

/// Stored records as `history --json` prints them: each record's fields plus its `id`, and
/// whatever `extra` adds.
pub(crate) fn records_json<T: serde::Serialize>(
    list: &[(u64, T)],
    extra: impl Fn(&T, &mut serde_json::Map<String, serde_json::Value>),
) -> Vec<serde_json::Value> {
    list.iter()
        .map(|(id, r)| {
            let mut v = serde_json::to_value(r).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("id".into(), (*id).into());
                extra(r, o);
            }
            v
        })
        .collect()
}

/// `history --trainings`: every training run in the store (LoRA, classifier, segmenter).
pub(crate) fn trainings_cmd(json: bool, store: Option<PathBuf>) -> Result<i32> {
    let path = store.unwrap_or_else(engine::paths::store_path);
    let list = if path.exists() {
        Store::open_read_only(&path)?.trainings()?
    } else {
        Vec::new()
    };
    if json {
        let v = records_json(&list, |r, o| {
            o.insert("status".into(), r.effective_status().name().into());
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    if list.is_empty() {
        println!("no trainings yet ({})", path.display());
    }
    for (id, r) in &list {
        println!(
            "#{id:<4} {:<10} {:<11} {}  {:<24} steps {}/{}  loss {}  {}",
            r.kind.name(),
            r.effective_status().name(),
            engine::store::format_utc(r.started_ms),
            r.name,
            r.steps_done,
            r.steps_total,
            r.losses
                .last()
                .map(|l| format!("{:.4}", l.1))
                .unwrap_or_else(|| "-".into()),
            r.lora_path
        );
        if let Some(m) = r.epochs.last() {
            println!(
                "      epoch {}  train loss {:.4} acc {:.3}  val loss {} balanced acc {}",
                m.epoch,
                m.train_loss,
                m.train_accuracy,
                m.val_loss.map_or("-".into(), |v| format!("{v:.4}")),
                m.val_balanced_accuracy
                    .map_or("-".into(), |v| format!("{v:.3}"))
            );
        }
        if let Some(e) = &r.error {
            println!("      error: {e}");
        }
    }
    Ok(0)
}
