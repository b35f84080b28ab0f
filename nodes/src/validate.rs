//! Checking a [`GraphDoc`] against a [`Catalogue`].

use std::collections::BTreeMap;

use crate::catalogue::{
    input_ports, param_accepts, param_port, Catalogue, NodeSpec, ParamKind, OUTPUT_TEMPLATE_VARS,
};
use crate::graph::{GraphDoc, ParamValue};
use crate::quote::{clip, quote};

/// One problem in a graph, located at a node and (usually) a port or parameter.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidationError {
    /// The node id, when the problem belongs to one node.
    pub node: Option<String>,
    /// The port or parameter name, when there is one.
    pub field: Option<String>,
    pub problem: Problem,
}

/// What is wrong.
#[derive(Clone, Debug, PartialEq)]
pub enum Problem {
    UnknownKind {
        kind: String,
    },
    NewerNodeVersion {
        kind: String,
        found: u32,
        supported: u32,
    },
    OlderNodeVersion {
        kind: String,
        found: u32,
        supported: u32,
    },
    UnknownParam {
        known: Vec<String>,
    },
    BadParamValue {
        value: String,
        expected: String,
    },
    OutOfRange {
        value: String,
        expected: String,
    },
    /// The lower end of a declared range is above its upper end.
    InvertedRange {
        min: String,
        min_value: f64,
        max: String,
        max_value: f64,
    },
    UnsafeOutputPath {
        reason: String,
    },
    MissingAsset {
        sha256: String,
    },
    MissingRequiredInput {
        ty: String,
    },
    UnknownInputPort {
        known: Vec<String>,
    },
    UnknownOutputPort {
        node: String,
        port: String,
        known: Vec<String>,
    },
    LinkFromMissingNode {
        from: String,
    },
    LinkToMissingNode,
    TypeMismatch {
        from: String,
        from_ty: String,
        to_ty: String,
    },
    DuplicateInputLink {
        first: String,
        second: String,
    },
    Cycle {
        path: Vec<String>,
    },
    /// A node id contains [`crate::subgraph::PATH_SEP`]'s `›`.
    BadNodeId,
    /// A subgraph node names a definition the document does not hold.
    MissingDefinition {
        name: String,
        hash: String,
    },
    /// A library reference whose definition the recipe library has not filled in.
    LibraryDefinition {
        name: String,
        hash: String,
    },
    /// A definition stored under a key that is not its content hash.
    DefinitionHashMismatch {
        name: String,
        key: String,
        hash: String,
    },
    /// A definition that contains itself, through the named chain of definitions.
    RecursiveDefinition {
        chain: Vec<String>,
    },
    /// An exposed input, output or parameter of a definition that does not fit its inner graph.
    BadExposed {
        message: String,
    },
    /// A reroute whose input is not connected.
    RerouteWithoutSource,
    /// `param_inputs` names something that is not a parameter of the node.
    UnknownParamInput {
        known: Vec<String>,
    },
    /// A subgraph node without a `subgraph` reference, or another node with one.
    BadSubgraphRef {
        message: String,
    },
}

impl std::fmt::Display for ValidationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(node) = &self.node {
            write!(f, "node \"{}\"", clip(node))?;
            if let Some(field) = &self.field {
                write!(f, " {}", clip(field))?;
            }
            f.write_str(": ")?;
        }
        match &self.problem {
            Problem::UnknownKind { kind } => write!(f, "unknown node kind {}", quote(kind)),
            Problem::NewerNodeVersion {
                kind,
                found,
                supported,
            } => write!(
                f,
                "{kind}@{found} is newer than this Defect Studio supports ({kind}@{supported})"
            ),
            Problem::OlderNodeVersion {
                kind,
                found,
                supported,
            } => {
                write!(f, "{kind}@{found} has no migration to {kind}@{supported}")
            }
            Problem::UnknownParam { known } => {
                write!(f, "unknown parameter (this kind has: {})", list(known))
            }
            Problem::BadParamValue { value, expected } => {
                write!(f, "value {value} is not valid, expected {expected}")
            }
            Problem::OutOfRange { value, expected } => {
                write!(f, "value {value} is out of range, expected {expected}")
            }
            Problem::InvertedRange {
                min,
                min_value,
                max,
                max_value,
            } => write!(
                f,
                "\"{min}\" ({min_value}) is larger than \"{max}\" ({max_value}); the range needs {min} <= {max}"
            ),
            Problem::UnsafeOutputPath { reason } => write!(f, "unsafe output path: {reason}"),
            Problem::MissingAsset { sha256 } => {
                write!(
                    f,
                    "refers to asset {sha256}, which the graph's \"assets\" does not hold"
                )
            }
            Problem::MissingRequiredInput { ty } => {
                write!(f, "required input is not connected (expects {ty})")
            }
            Problem::UnknownInputPort { known } => {
                write!(
                    f,
                    "link goes into an unknown input port (inputs: {})",
                    list(known)
                )
            }
            Problem::UnknownOutputPort { node, port, known } => write!(
                f,
                "link comes from unknown output port {}.{} (outputs: {})",
                clip(node),
                clip(port),
                list(known)
            ),
            Problem::LinkFromMissingNode { from } => {
                write!(f, "link comes from node {}, which does not exist", quote(from))
            }
            Problem::LinkToMissingNode => write!(f, "link goes into a node that does not exist"),
            Problem::TypeMismatch {
                from,
                from_ty,
                to_ty,
            } => write!(
                f,
                "type mismatch: {} gives {from_ty}, this input expects {to_ty}",
                clip(from)
            ),
            Problem::DuplicateInputLink { first, second } => write!(
                f,
                "two links go into this input (from {} and {}); an input takes one",
                clip(first),
                clip(second)
            ),
            Problem::Cycle { path } => write!(f, "cycle: {}", clip(&path.join(" -> "))),
            Problem::BadNodeId => write!(
                f,
                "node ids may not contain \"›\" (it joins the ids of a subgraph path)"
            ),
            Problem::MissingDefinition { name, hash } => write!(
                f,
                "subgraph {} refers to definition {hash}, which the graph's \"definitions\" \
                 does not hold",
                quote(name)
            ),
            Problem::LibraryDefinition { name, hash } => write!(
                f,
                "subgraph {} ({hash}) is a recipe-library reference: the recipe library must \
                 provide its definition, and this file does not hold it",
                quote(name)
            ),
            Problem::DefinitionHashMismatch { name, key, hash } => write!(
                f,
                "definition {} is stored under key {key} but its content hashes to {hash}: it \
                 was changed without being re-keyed",
                quote(name)
            ),
            Problem::RecursiveDefinition { chain } => write!(
                f,
                "recursive subgraph: definition {} contains itself ({})",
                quote(chain.last().map(String::as_str).unwrap_or("")),
                clip(&chain.join(crate::subgraph::PATH_SEP))
            ),
            Problem::BadExposed { message } => f.write_str(message),
            Problem::RerouteWithoutSource => write!(
                f,
                "reroute has no source: link an output into its input \"in\""
            ),
            Problem::UnknownParamInput { known } => write!(
                f,
                "is shown as an input but is not a parameter of this kind (it has: {})",
                list(known)
            ),
            Problem::BadSubgraphRef { message } => f.write_str(message),
        }
    }
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// Every problem found in a graph; displays one per line.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidationErrors(pub Vec<ValidationError>);

impl std::fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

/// Characters that reorder or hide text (bidi overrides, isolates and marks): refused in
/// output names, where they make a file name read differently from what it is.
const BIDI_CONTROLS: &[char] = &[
    '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}',
    '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}',
];

/// Checks an output file name template: relative, inside the output folder, known variables,
/// no control or bidi characters, and a real name: after expanding the variables the last
/// component has a stem (`.`, `..png`, `sub/.`, `.png` and `sub/` are refused). Messages
/// quote at most [`crate::QUOTE_MAX`] characters of the template.
pub fn check_output_template(template: &str) -> Result<(), String> {
    let t = template.trim();
    let q = quote(t);
    if t.is_empty() {
        return Err("the file name is empty".into());
    }
    if t.contains('\0') {
        return Err("the file name contains a NUL byte".into());
    }
    // Checked before trimming: a trailing newline is a control character too.
    if let Some(c) = template.chars().find(|c| c.is_control()) {
        return Err(format!(
            "{q} contains the control character U+{:04X}; use printable characters",
            u32::from(c)
        ));
    }
    if let Some(c) = template.chars().find(|c| BIDI_CONTROLS.contains(c)) {
        return Err(format!(
            "{q} contains the text-direction character U+{:04X}, which makes the name read \
             differently from what it is",
            u32::from(c)
        ));
    }
    if t.starts_with('/') || t.starts_with('\\') || t.starts_with('~') {
        return Err(format!(
            "{q} is an absolute path; use a path inside the output folder"
        ));
    }
    if t.len() >= 2 && t.as_bytes()[1] == b':' {
        return Err(format!(
            "{q} names a drive; use a path inside the output folder"
        ));
    }
    for part in t.split(['/', '\\']) {
        if part == ".." {
            return Err(format!("{q} leaves the output folder through \"..\""));
        }
    }
    // Variables, and the name with each replaced by a placeholder (they expand to non-empty
    // text: a title, an id or a number).
    let mut expanded = String::new();
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        expanded.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("{q} has an unclosed '{{'"))?;
        let var = &after[..close];
        let name = var.split(':').next().unwrap_or("");
        if !OUTPUT_TEMPLATE_VARS.iter().any(|(n, _)| *n == name) {
            let known: Vec<&str> = OUTPUT_TEMPLATE_VARS.iter().map(|(n, _)| *n).collect();
            return Err(format!(
                "unknown variable {{{}}} (known: {})",
                clip(var),
                known.join(", ")
            ));
        }
        if let Some(fmt) = var.split(':').nth(1) {
            let ok = fmt.len() >= 2 && fmt.starts_with('0') && fmt[1..].parse::<u8>().is_ok();
            if !ok {
                return Err(format!(
                    "bad format {} in {{{name}}}: use {{{name}:0N}}",
                    quote(fmt)
                ));
            }
        }
        expanded.push('x');
        rest = &after[close + 1..];
    }
    expanded.push_str(rest);
    let last = expanded.rsplit(['/', '\\']).next().unwrap_or("");
    let stem = match last.rfind('.') {
        Some(dot) => &last[..dot],
        None => last,
    };
    if stem.chars().all(|c| c == '.' || c.is_whitespace()) {
        return Err(format!(
            "{q} has no real name: its last part {} needs a stem (e.g. \"out.png\")",
            quote(last)
        ));
    }
    for part in expanded.split(['/', '\\']) {
        if part == "." {
            return Err(format!("{q} has a \".\" folder; name folders plainly"));
        }
    }
    Ok(())
}

/// Checks one parameter value against its spec.
fn check_param(
    spec: &crate::catalogue::ParamSpec,
    value: &ParamValue,
    doc: &GraphDoc,
) -> Option<crate::validate::Problem> {
    let bad = || Problem::BadParamValue {
        value: clip(&value.to_json()),
        expected: spec.expected(),
    };
    let out_of_range = || Problem::OutOfRange {
        value: clip(&value.to_json()),
        expected: spec.expected(),
    };
    match (&spec.kind, value) {
        (ParamKind::Int { min, max, .. }, ParamValue::Int(v)) => {
            (v < min || v > max).then(out_of_range)
        }
        (ParamKind::Float { min, max, .. }, ParamValue::Int(_) | ParamValue::Float(_)) => {
            let v = value.as_f64().unwrap_or(f64::NAN);
            (!v.is_finite() || v < *min || v > *max).then(out_of_range)
        }
        (ParamKind::Bool { .. }, ParamValue::Bool(_)) => None,
        (ParamKind::Text { .. }, ParamValue::Text(_)) => None,
        (ParamKind::Choice { options, .. }, ParamValue::Text(s)) => {
            (!options.contains(&s.as_str())).then(bad)
        }
        (ParamKind::Seed, v) => v.as_seed().is_none().then(bad),
        (ParamKind::Color { .. }, ParamValue::Text(s)) => parse_hex_color(s).is_none().then(bad),
        (ParamKind::InputFile { .. }, ParamValue::Text(s)) => {
            let sha = s.strip_prefix("asset:")?;
            (!doc.assets.contains_key(sha)).then(|| Problem::MissingAsset { sha256: clip(sha) })
        }
        (ParamKind::OutputTemplate { .. }, ParamValue::Text(s)) => check_output_template(s)
            .err()
            .map(|reason| Problem::UnsafeOutputPath { reason }),
        _ => Some(bad()),
    }
}

/// Parses `#rrggbb` into sRGB components in `0..=1`.
pub fn parse_hex_color(s: &str) -> Option<[f32; 3]> {
    let h = s.trim().strip_prefix('#')?;
    if h.len() != 6 || !h.is_ascii() {
        return None;
    }
    let c = |i: usize| {
        u8::from_str_radix(&h[i..i + 2], 16)
            .ok()
            .map(|v| f32::from(v) / 255.0)
    };
    Some([c(0)?, c(2)?, c(4)?])
}

/// Checks a document against a catalogue and returns every problem found: unknown kinds and
/// parameters, wrong or out-of-range values, unsafe output paths, missing assets, bad links
/// (unknown nodes or ports, type mismatches, two links into one input), missing required
/// inputs, and cycles.
///
/// A document with subgraphs or reroutes is flattened first ([`crate::subgraph::flatten`]), so
/// problems inside a subgraph name the node's path (`outer › scratch-block › crack`).
pub fn validate(doc: &GraphDoc, catalogue: &Catalogue) -> Result<(), ValidationErrors> {
    if crate::subgraph::needs_flatten(doc) {
        let flat = crate::subgraph::flatten(doc, catalogue)?;
        return validate_flat(&flat.doc, catalogue);
    }
    let bad_ids: Vec<ValidationError> = doc
        .nodes
        .keys()
        .filter(|id| id.contains('›'))
        .map(|id| ValidationError {
            node: Some(id.clone()),
            field: None,
            problem: Problem::BadNodeId,
        })
        .collect();
    if !bad_ids.is_empty() {
        return Err(ValidationErrors(bad_ids));
    }
    validate_flat(doc, catalogue)
}

/// [`validate()`] for a document without subgraphs or reroutes (a [`crate::subgraph::Flat`]
/// document): its ids may be paths.
pub fn validate_flat(doc: &GraphDoc, catalogue: &Catalogue) -> Result<(), ValidationErrors> {
    let mut errors = Vec::new();
    let mut push = |node: Option<&str>, field: Option<String>, problem: Problem| {
        errors.push(ValidationError {
            node: node.map(str::to_string),
            field,
            problem,
        })
    };
    let mut specs: BTreeMap<&str, &'static NodeSpec> = BTreeMap::new();

    for (id, node) in &doc.nodes {
        let Some(spec) = catalogue.get(&node.kind) else {
            push(
                Some(id),
                None,
                Problem::UnknownKind {
                    kind: node.kind.clone(),
                },
            );
            continue;
        };
        specs.insert(id, spec);
        if node.version > spec.version {
            push(
                Some(id),
                None,
                Problem::NewerNodeVersion {
                    kind: spec.kind.into(),
                    found: node.version,
                    supported: spec.version,
                },
            );
        } else if node.version < spec.version {
            push(
                Some(id),
                None,
                Problem::OlderNodeVersion {
                    kind: spec.kind.into(),
                    found: node.version,
                    supported: spec.version,
                },
            );
        }
        for name in &node.param_inputs {
            if spec.param(name).is_none() {
                push(
                    Some(id),
                    Some(format!("param \"{name}\"")),
                    Problem::UnknownParamInput {
                        known: spec.params.iter().map(|p| p.name.to_string()).collect(),
                    },
                );
            }
        }
        for (name, value) in &node.params {
            let field = Some(format!("param \"{name}\""));
            match spec.param(name) {
                None => push(
                    Some(id),
                    field,
                    Problem::UnknownParam {
                        known: spec.params.iter().map(|p| p.name.to_string()).collect(),
                    },
                ),
                Some(p) => {
                    if let Some(problem) = check_param(p, value, doc) {
                        push(Some(id), field, problem);
                    }
                }
            }
        }
        // Defaults must be valid too (an output template default is checked here once).
        for p in spec.params {
            if !node.params.contains_key(p.name) {
                if let Some(problem) = check_param(p, &p.default_value(), doc) {
                    push(Some(id), Some(format!("param \"{}\"", p.name)), problem);
                }
            }
        }
        // Declared ranges: the lower end may not exceed the upper one.
        let number = |name: &str| {
            node.params
                .get(name)
                .cloned()
                .or_else(|| spec.param(name).map(|p| p.default_value()))
                .and_then(|v| v.as_f64())
        };
        for p in spec.params {
            let Some(lo) = p.at_least else { continue };
            if let (Some(min_value), Some(max_value)) = (number(lo), number(p.name)) {
                if min_value > max_value {
                    push(
                        Some(id),
                        Some(format!("params \"{lo}\" and \"{}\"", p.name)),
                        Problem::InvertedRange {
                            min: lo.to_string(),
                            min_value,
                            max: p.name.to_string(),
                            max_value,
                        },
                    );
                }
            }
        }
    }

    let mut seen_inputs: BTreeMap<(&str, &str), &crate::graph::PortRef> = BTreeMap::new();
    for link in &doc.links {
        let to_node = link.to.node();
        let field = Some(format!("input \"{}\"", link.to.port()));
        if !doc.nodes.contains_key(to_node) {
            push(Some(to_node), field, Problem::LinkToMissingNode);
            continue;
        }
        if !doc.nodes.contains_key(link.from.node()) {
            push(
                Some(to_node),
                field,
                Problem::LinkFromMissingNode {
                    from: link.from.node().to_string(),
                },
            );
            continue;
        }
        if let Some(first) = seen_inputs.insert((to_node, link.to.port()), &link.from) {
            push(
                Some(to_node),
                field.clone(),
                Problem::DuplicateInputLink {
                    first: first.to_string(),
                    second: link.from.to_string(),
                },
            );
        }
        let (Some(to_spec), Some(from_spec)) = (specs.get(to_node), specs.get(link.from.node()))
        else {
            continue; // unknown kinds were reported above
        };
        let to_doc = &doc.nodes[to_node];
        let ports = input_ports(to_spec, to_doc);
        let Some(input) = ports.iter().find(|p| p.name == link.to.port()) else {
            push(
                Some(to_node),
                field,
                Problem::UnknownInputPort {
                    known: ports.iter().map(|p| p.name.to_string()).collect(),
                },
            );
            continue;
        };
        let Some(output) = from_spec.output(link.from.port()) else {
            push(
                Some(to_node),
                field,
                Problem::UnknownOutputPort {
                    node: link.from.node().to_string(),
                    port: link.from.port().to_string(),
                    known: from_spec
                        .outputs
                        .iter()
                        .map(|p| p.name.to_string())
                        .collect(),
                },
            );
            continue;
        };
        let accepts = match param_port(to_spec, to_doc, link.to.port()) {
            Some(p) => param_accepts(&p.kind, output.ty),
            None => output.ty == input.ty,
        };
        if !accepts {
            push(
                Some(to_node),
                field,
                Problem::TypeMismatch {
                    from: link.from.to_string(),
                    from_ty: output.ty.to_string(),
                    to_ty: input.ty.to_string(),
                },
            );
        }
    }

    let connected: std::collections::HashSet<(&str, &str)> = doc
        .links
        .iter()
        .map(|l| (l.to.node(), l.to.port()))
        .collect();
    for (id, spec) in &specs {
        for input in spec.inputs.iter().filter(|p| !p.optional) {
            if !connected.contains(&(*id, input.name)) {
                push(
                    Some(id),
                    Some(format!("input \"{}\"", input.name)),
                    Problem::MissingRequiredInput {
                        ty: input.ty.to_string(),
                    },
                );
            }
        }
    }

    let all: Vec<&str> = doc.nodes.keys().map(String::as_str).collect();
    if let Err(path) = doc.upstream_order(&all) {
        let first = path.first().cloned();
        push(first.as_deref(), None, Problem::Cycle { path });
    }

    if errors.is_empty() {
        Ok(())
    } else {
        Err(ValidationErrors(errors))
    }
}
