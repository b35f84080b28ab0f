//! The value kinds (Int, Float, Text, Seed, Choice: `nodes::values`), and the graph kinds
//! (Reroute, Subgraph), which `nodes::subgraph::flatten` removes before a run: their executors
//! only say so.

use std::sync::Arc;

use serde::Deserialize;

use super::outputs;
use crate::error::{EngineError, Result};
use crate::exec::NodeCtx;
use crate::registry::Registry;
use crate::value::{Outputs, Value};

pub(super) fn register(r: &mut Registry) {
    r.register_typed("Int", |_: &mut NodeCtx, p: IntValue| {
        Ok(outputs([("value", Value::Int(p.value))]))
    });
    r.register_typed("Float", |_: &mut NodeCtx, p: FloatValue| {
        Ok(outputs([("value", Value::Float(p.value))]))
    });
    r.register_typed("Text", |_: &mut NodeCtx, p: TextValue| {
        Ok(outputs([("value", Value::Text(Arc::from(p.value)))]))
    });
    r.register_typed("Seed", |_: &mut NodeCtx, p: SeedValue| {
        Ok(outputs([("value", Value::Seed(p.seed))]))
    });
    r.register_typed("Choice", choice);
    for kind in [
        nodes::subgraph::REROUTE_KIND,
        nodes::subgraph::SUBGRAPH_KIND,
    ] {
        r.register_typed(kind, |ctx: &mut NodeCtx, _: NoParams| {
            Err(EngineError::failed(format!(
                "a {} node reached the executor; graphs are flattened before a run",
                ctx.spec.kind
            )))
        });
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IntValue {
    value: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FloatValue {
    value: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TextValue {
    value: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedValue {
    seed: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChoiceValue {
    value: String,
    options: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

/// The options of a Choice node: its comma-separated `options`, trimmed; empty = any value.
pub fn choice_options(options: &str) -> Vec<&str> {
    options
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .collect()
}

fn choice(_: &mut NodeCtx, p: ChoiceValue) -> Result<Outputs> {
    let options = choice_options(&p.options);
    if !options.is_empty() && !options.contains(&p.value.trim()) {
        return Err(EngineError::failed(format!(
            "value {} is not one of the options ({})",
            nodes::quote(&p.value),
            options.join(", ")
        )));
    }
    Ok(outputs([(
        "value",
        Value::Choice(Arc::from(p.value.trim())),
    )]))
}
