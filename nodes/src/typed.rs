//! Typed node parameters: a node's effective parameters (defaults filled in, seeds resolved)
//! as one JSON object, deserialised into the executor's parameter struct.
//!
//! The object holds every parameter of the spec: Int → integer, Float → number, Bool → bool,
//! Text/Choice/InputFile/OutputTemplate → string, Seed → the resolved `u64`, Color → `[r, g, b]`
//! sRGB 0..1. Parameter structs use `#[serde(deny_unknown_fields)]` and no `#[serde(default)]`:
//! defaults live only in the catalogue, and [`check_defaults`] (run over the whole catalogue by
//! the engine's tests) shows that a struct and its spec name the same parameters.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde_json::{Map, Number, Value as Json};

use crate::catalogue::{NodeSpec, ParamKind};
use crate::graph::{ParamValue, SeedValue};
use crate::quote::clip;
use crate::validate::parse_hex_color;

/// Parameters with defaults filled in, seeds resolved to fixed values and float parameters
/// held as floats: what a node runs with (and what its cache key hashes).
pub fn effective_params(
    spec: &NodeSpec,
    given: &BTreeMap<String, ParamValue>,
    run_seed: u64,
) -> BTreeMap<String, ParamValue> {
    spec.params
        .iter()
        .map(|p| {
            let v = given
                .get(p.name)
                .cloned()
                .unwrap_or_else(|| p.default_value());
            let v = match (&p.kind, v.as_seed()) {
                (ParamKind::Seed, Some(s)) => ParamValue::Seed(SeedValue::Fixed {
                    value: s.resolve(run_seed),
                }),
                (ParamKind::Float { .. }, _) => v.as_f64().map(ParamValue::Float).unwrap_or(v),
                _ => v,
            };
            (p.name.to_string(), v)
        })
        .collect()
}

/// The effective parameters as the JSON object a parameter struct deserialises from (see the
/// module docs). `run_seed` resolves seeds still "from run".
pub fn params_json(
    spec: &NodeSpec,
    effective: &BTreeMap<String, ParamValue>,
    run_seed: u64,
) -> Result<Map<String, Json>, String> {
    let mut out = Map::new();
    for p in spec.params {
        let v = effective
            .get(p.name)
            .ok_or_else(|| format!("parameter \"{}\" has no value", p.name))?;
        let wrong = || {
            format!(
                "parameter \"{}\": {} is not {}",
                p.name,
                clip(&v.to_json()),
                p.expected()
            )
        };
        let json = match &p.kind {
            ParamKind::Int { .. } => match v {
                ParamValue::Int(i) => Json::from(*i),
                _ => return Err(wrong()),
            },
            ParamKind::Float { .. } => v
                .as_f64()
                .and_then(Number::from_f64)
                .map(Json::Number)
                .ok_or_else(wrong)?,
            ParamKind::Bool { .. } => match v {
                ParamValue::Bool(b) => Json::Bool(*b),
                _ => return Err(wrong()),
            },
            ParamKind::Seed => Json::from(v.as_seed().ok_or_else(wrong)?.resolve(run_seed)),
            ParamKind::Color { .. } => {
                let rgb = v.as_str().and_then(parse_hex_color).ok_or_else(wrong)?;
                Json::Array(
                    rgb.iter()
                        .map(|c| Number::from_f64(f64::from(*c)).map_or(Json::Null, Json::Number))
                        .collect(),
                )
            }
            ParamKind::Text { .. }
            | ParamKind::Choice { .. }
            | ParamKind::InputFile { .. }
            | ParamKind::OutputTemplate { .. } => {
                Json::String(v.as_str().ok_or_else(wrong)?.to_string())
            }
        };
        out.insert(p.name.to_string(), json);
    }
    Ok(out)
}

/// Deserialises effective parameters into `P`. Errors name the parameter (or the kind, for a
/// parameter missing from or unknown to `P`) and quote at most a short piece of any value.
pub fn from_params<P: DeserializeOwned>(
    spec: &NodeSpec,
    effective: &BTreeMap<String, ParamValue>,
    run_seed: u64,
) -> Result<P, String> {
    let map = params_json(spec, effective, run_seed)?;
    serde_path_to_error::deserialize(Json::Object(map)).map_err(|e| {
        let path = e.path().to_string();
        let message = clip(&e.inner().to_string());
        if path.is_empty() || path == "." {
            format!("parameters of {}: {message}", spec.kind)
        } else {
            format!("parameter \"{path}\" of {}: {message}", spec.kind)
        }
    })
}

/// Checks that the spec's default parameters deserialise into `P`: the struct and the spec
/// name the same parameters with compatible types.
pub fn check_defaults<P: DeserializeOwned>(spec: &NodeSpec) -> Result<(), String> {
    let effective = effective_params(spec, &BTreeMap::new(), 0);
    from_params::<P>(spec, &effective, 0).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Scratch {
        seed: u64,
        count: u32,
        length: f32,
        width: f32,
        angle: f32,
        angle_jitter: f32,
        curvature: f32,
        depth: f32,
        light: f32,
    }

    #[test]
    fn defaults_deserialise_and_seeds_resolve() {
        let spec = &crate::builtin::SCRATCH;
        check_defaults::<Scratch>(spec).unwrap();
        let eff = effective_params(spec, &BTreeMap::new(), 42);
        let p: Scratch = from_params(spec, &eff, 42).unwrap();
        assert_eq!(p.seed, 42);
        assert_eq!(p.count, 3);
    }

    #[test]
    fn a_bad_value_names_the_parameter() {
        let spec = &crate::builtin::SCRATCH;
        let mut given = BTreeMap::new();
        given.insert("count".to_string(), ParamValue::Int(-1));
        let eff = effective_params(spec, &given, 0);
        let e = from_params::<Scratch>(spec, &eff, 0).unwrap_err();
        assert!(e.contains("\"count\""), "{e}");
    }
}
