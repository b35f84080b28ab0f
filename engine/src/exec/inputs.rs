//! What a node reads besides its links: parameters fed by links (see the module docs of
//! [`crate::exec`], *Parameters fed by links*) and its input files.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use nodes::{GraphDoc, NodeSpec, ParamKind, ParamValue};

use super::resolve_path;
use crate::value::Value;

/// The value of parameter `p` fed by a link carrying `value` (see [`crate::exec`]): a Text
/// fills a text parameter's `template` (and replaces a colour, file or file name template
/// unless that holds the placeholder); an Int or Float replaces a number (in range); an Int
/// sets a Bool (non-zero = true); a Seed (or a non-negative Int) fixes a seed; a Choice or a
/// Text sets a choice, which must be one of its options.
pub(super) fn param_from_input(
    p: &nodes::ParamSpec,
    template: &ParamValue,
    value: &Value,
) -> std::result::Result<ParamValue, String> {
    let out_of_range = |v: f64, min: f64, max: f64| {
        format!(
            "parameter \"{}\": the linked value {v} is outside {min}..={max}",
            p.name
        )
    };
    let float = |f: f64, min: &f64, max: &f64| {
        if !f.is_finite() || f < *min || f > *max {
            return Err(out_of_range(f, *min, *max));
        }
        Ok(ParamValue::Float(f))
    };
    match (&p.kind, value) {
        (ParamKind::Int { min, max, .. }, Value::Int(i)) => {
            if i < min || i > max {
                return Err(out_of_range(*i as f64, *min as f64, *max as f64));
            }
            Ok(ParamValue::Int(*i))
        }
        (ParamKind::Bool { .. }, Value::Int(i)) => Ok(ParamValue::Bool(*i != 0)),
        (ParamKind::Float { min, max, .. }, Value::Float(f)) => float(*f, min, max),
        (ParamKind::Float { min, max, .. }, Value::Int(i)) => float(*i as f64, min, max),
        (ParamKind::Seed, Value::Seed(s)) => {
            Ok(ParamValue::Seed(nodes::SeedValue::Fixed { value: *s }))
        }
        (ParamKind::Seed, Value::Int(i)) => u64::try_from(*i)
            .map(|value| ParamValue::Seed(nodes::SeedValue::Fixed { value }))
            .map_err(|_| format!("parameter \"{}\": the linked seed {i} is negative", p.name)),
        (ParamKind::Choice { options, .. }, Value::Choice(t) | Value::Text(t)) => {
            let t = t.trim();
            if options.contains(&t) {
                Ok(ParamValue::Text(t.to_string()))
            } else {
                Err(format!(
                    "parameter \"{}\": the linked value {} is not one of {}",
                    p.name,
                    nodes::quote(t),
                    options.join(", ")
                ))
            }
        }
        (ParamKind::Text { .. }, Value::Text(t)) => Ok(ParamValue::Text(nodes::fill_template(
            template.as_str().unwrap_or(""),
            t,
        ))),
        (
            ParamKind::Color { .. }
            | ParamKind::InputFile { .. }
            | ParamKind::OutputTemplate { .. },
            Value::Text(t),
        ) => {
            let own = template.as_str().unwrap_or("");
            let marked = std::iter::once(nodes::TEXT_PLACEHOLDER)
                .chain(nodes::TEXT_PLACEHOLDER_ALIASES.iter().copied())
                .any(|m| own.contains(m));
            let text = if marked {
                nodes::fill_template(own, t)
            } else {
                t.to_string()
            };
            match &p.kind {
                ParamKind::Color { .. } if nodes::parse_hex_color(&text).is_none() => Err(format!(
                    "parameter \"{}\": the linked text {} is not a colour \"#rrggbb\"",
                    p.name,
                    nodes::quote(&text)
                )),
                ParamKind::OutputTemplate { .. } => nodes::check_output_template(&text)
                    .map(|()| ParamValue::Text(text.clone()))
                    .map_err(|e| format!("parameter \"{}\": {e}", p.name)),
                _ => Ok(ParamValue::Text(text)),
            }
        }
        (_, other) => Err(format!(
            "parameter \"{}\" cannot take a linked {}",
            p.name,
            other.port_type()
        )),
    }
}

/// A node's input files by parameter name: (content hash, bytes).
pub(super) type InputFiles = BTreeMap<String, (String, Arc<Vec<u8>>)>;

/// Reads every input file a node names: `(content hash, bytes)` by parameter name. Assets come
/// from the document; paths resolve against `base_dir`.
pub(super) fn read_input_files(
    spec: &NodeSpec,
    params: &BTreeMap<String, ParamValue>,
    doc: &GraphDoc,
    base_dir: &Path,
) -> std::result::Result<InputFiles, String> {
    let mut out = BTreeMap::new();
    for p in spec
        .params
        .iter()
        .filter(|p| matches!(p.kind, ParamKind::InputFile { .. }))
    {
        let Some(value) = params.get(p.name).and_then(|v| v.as_str()) else {
            continue;
        };
        if value.trim().is_empty() {
            continue;
        }
        let entry = if let Some(sha) = value.strip_prefix("asset:") {
            let asset = doc.assets.get(sha).ok_or_else(|| {
                format!("parameter \"{}\": asset {sha} is not in the graph", p.name)
            })?;
            let bytes = if asset.external {
                external_asset(sha).ok_or_else(|| {
                    format!(
                        "parameter \"{}\": asset {sha} ({} bytes) was left out of this graph \
                         (large inputs are referenced by hash in output PNGs) and is not in {}",
                        p.name,
                        asset
                            .size
                            .map(|s| s.to_string())
                            .unwrap_or_else(|| "?".into()),
                        crate::paths::home().join("assets").display()
                    )
                })?
            } else {
                crate::hashing::decode_base64(&asset.data_base64).map_err(|e| {
                    format!(
                        "parameter \"{}\": asset {sha} is not valid base64: {e}",
                        p.name
                    )
                })?
            };
            (sha.to_string(), Arc::new(bytes))
        } else {
            let path = resolve_path(base_dir, value);
            if path.is_dir() {
                return Err(format!(
                    "parameter \"{}\": {} is a folder; folders are expanded into work items by a batch run (defect-studio run)",
                    p.name,
                    path.display()
                ));
            }
            let bytes = crate::paths::read_input_file(&path).map_err(|e| {
                format!(
                    "parameter \"{}\": cannot read {}: {e}",
                    p.name,
                    path.display()
                )
            })?;
            (crate::hashing::sha256_hex(&bytes), Arc::new(bytes))
        };
        out.insert(p.name.to_string(), entry);
    }
    Ok(out)
}

/// The bytes of an external asset from the data folder's `assets/<sha256>`, if present and
/// intact.
fn external_asset(sha: &str) -> Option<Vec<u8>> {
    let bytes = std::fs::read(crate::paths::home().join("assets").join(sha)).ok()?;
    (crate::hashing::sha256_hex(&bytes).eq_ignore_ascii_case(sha)).then_some(bytes)
}
