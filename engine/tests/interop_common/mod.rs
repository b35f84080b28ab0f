//! Helpers shared by the interop tests: the package folder and graph inspection.

#![allow(dead_code)]

use nodes::{GraphDoc, ParamValue};

/// This package's folder, read when the test runs: a test binary reused from another checkout
/// that shared the target folder would otherwise read that checkout's files.
pub fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}

/// Asserts `g` validates against the interop catalogue and survives a JSON round trip.
pub fn valid(g: &GraphDoc) {
    if let Err(e) = nodes::validate(g, &engine::interop::catalogue()) {
        panic!("invalid graph:\n{e}\n{}", g.to_json());
    }
    // The canonical JSON loads back to the same document.
    assert_eq!(GraphDoc::from_json(&g.to_json()).unwrap(), *g);
}

pub fn kind(g: &GraphDoc, id: &str) -> String {
    g.nodes
        .get(id)
        .unwrap_or_else(|| panic!("no node {id}: {}", g.to_json()))
        .kind
        .clone()
}

/// Parameter `name` of node `id`.
pub fn param(g: &GraphDoc, id: &str, name: &str) -> ParamValue {
    g.nodes
        .get(id)
        .unwrap_or_else(|| panic!("no node {id}: {}", g.to_json()))
        .params
        .get(name)
        .unwrap_or_else(|| panic!("node {id} has no param {name}"))
        .clone()
}

pub fn t(s: &str) -> ParamValue {
    ParamValue::Text(s.into())
}

pub fn linked(g: &GraphDoc, from: (&str, &str), to: (&str, &str)) -> bool {
    g.links.iter().any(|l| {
        l.from.node() == from.0
            && l.from.port() == from.1
            && l.to.node() == to.0
            && l.to.port() == to.1
    })
}

/// What A1111's `parse_generation_parameters` (`modules/infotext_utils.py`) makes of a text,
/// re-implemented here independently of the engine's parser (its prompt/negative split and
/// `re_param` pairs, before its defaults are added): (prompt, negative, pairs).
pub fn a1111_reference(x: &str) -> (String, String, Vec<(String, String)>) {
    let re = regex::Regex::new(r#"\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)"#).unwrap();
    let mut lines: Vec<&str> = x.trim().split('\n').collect();
    let mut lastline = lines.pop().unwrap_or("");
    if re.find_iter(lastline).count() < 3 {
        lines.push(lastline);
        lastline = "";
    }
    let (mut prompt, mut negative, mut done) = (String::new(), String::new(), false);
    for line in lines {
        let mut line = line.trim();
        if let Some(rest) = line.strip_prefix("Negative prompt:") {
            done = true;
            line = rest.trim();
        }
        let target = if done { &mut negative } else { &mut prompt };
        if !target.is_empty() {
            target.push('\n');
        }
        target.push_str(line);
    }
    let pairs = re
        .captures_iter(lastline)
        .map(|c| {
            let v = &c[2];
            let v = if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
                serde_json::from_str::<String>(v).unwrap_or_else(|_| v.to_string())
            } else {
                v.to_string()
            };
            (c[1].to_string(), v)
        })
        .collect();
    (prompt, negative, pairs)
}
