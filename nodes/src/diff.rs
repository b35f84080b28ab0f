//! A readable diff of two graph documents, for reviewing recipe changes (`defect-studio diff`,
//! the studio's version history).
//!
//! The diff is semantic, not textual: it compares nodes by id, parameters by name, links as
//! pairs of ports, and subgraph definitions by name (a definition whose hash changed is
//! compared with its older self, its lines prefixed with its name). Each change is one line:
//!
//! ```text
//! ~ meta.title: "Scratches" → "Scratches v2"
//! - node blur (Blur)
//! + node dent (Dent)
//! ~ scratch.count: 3 → 5
//! ~ scratch.width: 2.0 → (default)
//! ~ txt.seed: parameter → input
//! - link tex.image → scratch.image
//! + link tex.image → dent.image
//! ~ definition scratch-block: 1a2b3c4d → 5e6f7a8b
//! ~ scratch-block › crack.depth: 0.3 → 0.5
//! + scratch-block › param depth → crack.depth
//! ~ layout: 2 nodes moved
//! ```
//!
//! Lines come in a fixed order (meta, nodes, parameters, links, models, assets, definitions,
//! frames, layout), each group sorted, so the same two files always give the same text.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::graph::{GraphDoc, Link, NodeDoc, ParamValue};
use crate::quote::clip;
use crate::subgraph::{Definition, ExposedParam, Frame, PATH_SEP};

/// What happened to one thing.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Added,
    Removed,
    Changed,
}

impl Change {
    /// The line's mark: `+`, `-` or `~`.
    pub fn mark(self) -> char {
        match self {
            Change::Added => '+',
            Change::Removed => '-',
            Change::Changed => '~',
        }
    }
}

/// One change, as one line of text (without its mark).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiffLine {
    pub change: Change,
    pub text: String,
}

impl fmt::Display for DiffLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.change.mark(), self.text)
    }
}

/// The changes from one document to another.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GraphDiff {
    lines: Vec<DiffLine>,
}

impl GraphDiff {
    /// True when the documents are the same recipe (layout included).
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
    pub fn lines(&self) -> &[DiffLine] {
        &self.lines
    }
    /// How many lines of each kind: (added, removed, changed).
    pub fn counts(&self) -> (usize, usize, usize) {
        let n = |c| self.lines.iter().filter(|l| l.change == c).count();
        (n(Change::Added), n(Change::Removed), n(Change::Changed))
    }
}

impl fmt::Display for GraphDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for l in &self.lines {
            writeln!(f, "{l}")?;
        }
        Ok(())
    }
}

/// The changes that turn `old` into `new`.
pub fn diff(old: &GraphDoc, new: &GraphDoc) -> GraphDiff {
    let mut out = Out::default();
    meta(&mut out, old, new);
    body(
        &mut out,
        "",
        Body {
            nodes: &old.nodes,
            links: &old.links,
        },
        Body {
            nodes: &new.nodes,
            links: &new.links,
        },
        &old.definitions,
        &new.definitions,
    );
    models(&mut out, old, new);
    assets(&mut out, old, new);
    definitions(&mut out, "", old, new);
    frames(&mut out, "", &old.frames, &new.frames);
    layout(&mut out, "", &old.layout, &new.layout);
    GraphDiff { lines: out.lines }
}

#[derive(Default)]
struct Out {
    lines: Vec<DiffLine>,
}

impl Out {
    fn push(&mut self, change: Change, text: String) {
        self.lines.push(DiffLine { change, text });
    }
}

/// The nodes and links of a document or a definition.
#[derive(Clone, Copy)]
struct Body<'a> {
    nodes: &'a BTreeMap<String, NodeDoc>,
    links: &'a [Link],
}

/// A value as it reads in a diff: JSON, long texts clipped.
fn show(v: &ParamValue) -> String {
    clip(&v.to_json())
}

fn show_opt(v: Option<&ParamValue>) -> String {
    v.map_or_else(|| "(default)".to_string(), show)
}

fn quoted(s: &str) -> String {
    clip(&serde_json::Value::from(s).to_string())
}

fn short(hash: &str) -> &str {
    hash.get(..8).unwrap_or(hash)
}

fn meta(out: &mut Out, old: &GraphDoc, new: &GraphDoc) {
    let (a, b) = (&old.meta, &new.meta);
    for (field, x, y) in [
        ("title", &a.title, &b.title),
        ("notes", &a.notes, &b.notes),
        ("author", &a.author, &b.author),
    ] {
        if x != y {
            out.push(
                Change::Changed,
                format!("meta.{field}: {} → {}", quoted(x), quoted(y)),
            );
        }
    }
    if a.seed != b.seed {
        let s = |v: Option<u64>| v.map_or_else(|| "(none)".to_string(), |v| v.to_string());
        out.push(
            Change::Changed,
            format!("meta.seed: {} → {}", s(a.seed), s(b.seed)),
        );
    }
    set_lines(out, "meta.tag ", &a.tags, &b.tags);
}

/// `+`/`-` lines for the members of two lists compared as sets.
fn set_lines(out: &mut Out, what: &str, old: &[String], new: &[String]) {
    let a: BTreeSet<&String> = old.iter().collect();
    let b: BTreeSet<&String> = new.iter().collect();
    for t in a.difference(&b) {
        out.push(Change::Removed, format!("{what}{}", quoted(t)));
    }
    for t in b.difference(&a) {
        out.push(Change::Added, format!("{what}{}", quoted(t)));
    }
}

/// The name a node's kind reads as: the kind, or for a subgraph node its definition's name.
fn kind_label(node: &NodeDoc) -> String {
    match &node.subgraph {
        Some(r) => format!("subgraph {}", r.name),
        None => node.kind.clone(),
    }
}

fn body(
    out: &mut Out,
    prefix: &str,
    old: Body,
    new: Body,
    old_defs: &BTreeMap<String, Definition>,
    new_defs: &BTreeMap<String, Definition>,
) {
    for (id, n) in old.nodes {
        if !new.nodes.contains_key(id) {
            out.push(
                Change::Removed,
                format!("{prefix}node {id} ({})", kind_label(n)),
            );
        }
    }
    for (id, n) in new.nodes {
        if !old.nodes.contains_key(id) {
            out.push(
                Change::Added,
                format!("{prefix}node {id} ({})", kind_label(n)),
            );
            for (p, v) in &n.params {
                out.push(Change::Added, format!("{prefix}{id}.{p} = {}", show(v)));
            }
        }
    }
    for (id, a) in old.nodes {
        let Some(b) = new.nodes.get(id) else {
            continue;
        };
        node(out, prefix, id, a, b, old_defs, new_defs);
    }
    let a: BTreeSet<(&str, &str, &str, &str)> = old.links.iter().map(link_key).collect();
    let b: BTreeSet<(&str, &str, &str, &str)> = new.links.iter().map(link_key).collect();
    for l in a.difference(&b) {
        out.push(Change::Removed, format!("{prefix}link {}", link_text(*l)));
    }
    for l in b.difference(&a) {
        out.push(Change::Added, format!("{prefix}link {}", link_text(*l)));
    }
}

fn link_key(l: &Link) -> (&str, &str, &str, &str) {
    (l.from.node(), l.from.port(), l.to.node(), l.to.port())
}

fn link_text((a, b, c, d): (&str, &str, &str, &str)) -> String {
    format!("{a}.{b} → {c}.{d}")
}

fn node(
    out: &mut Out,
    prefix: &str,
    id: &str,
    a: &NodeDoc,
    b: &NodeDoc,
    old_defs: &BTreeMap<String, Definition>,
    new_defs: &BTreeMap<String, Definition>,
) {
    if a.kind != b.kind || a.version != b.version {
        out.push(
            Change::Changed,
            format!(
                "{prefix}{id}: {}@{} → {}@{}",
                a.kind, a.version, b.kind, b.version
            ),
        );
    }
    match (&a.subgraph, &b.subgraph) {
        (Some(x), Some(y)) if x != y => {
            let name = |d: &BTreeMap<String, Definition>, h: &str, n: &str| {
                d.get(h).map_or_else(|| n.to_string(), |d| d.name.clone())
            };
            let (nx, ny) = (
                name(old_defs, &x.hash, &x.name),
                name(new_defs, &y.hash, &y.name),
            );
            let lib = |l: bool| if l { " (library)" } else { "" };
            out.push(
                Change::Changed,
                format!(
                    "{prefix}{id}: subgraph {nx} {}{} → {ny} {}{}",
                    short(&x.hash),
                    lib(x.library),
                    short(&y.hash),
                    lib(y.library)
                ),
            );
        }
        _ => {}
    }
    let names: BTreeSet<&String> = a.params.keys().chain(b.params.keys()).collect();
    for p in names {
        let (x, y) = (a.params.get(p), b.params.get(p));
        if x != y {
            out.push(
                Change::Changed,
                format!("{prefix}{id}.{p}: {} → {}", show_opt(x), show_opt(y)),
            );
        }
    }
    for p in a.param_inputs.difference(&b.param_inputs) {
        out.push(
            Change::Changed,
            format!("{prefix}{id}.{p}: input → parameter"),
        );
    }
    for p in b.param_inputs.difference(&a.param_inputs) {
        out.push(
            Change::Changed,
            format!("{prefix}{id}.{p}: parameter → input"),
        );
    }
}

fn models(out: &mut Out, old: &GraphDoc, new: &GraphDoc) {
    let key = |m: &crate::graph::ModelRef| (m.name.clone(), m.sha256.clone(), m.arch.clone());
    let a: BTreeSet<_> = old.models.iter().map(key).collect();
    let b: BTreeSet<_> = new.models.iter().map(key).collect();
    let text = |(n, h, arch): &(String, String, String)| {
        let arch = if arch.is_empty() {
            String::new()
        } else {
            format!(", {arch}")
        };
        format!("model {} ({}{arch})", quoted(n), short(h))
    };
    for m in a.difference(&b) {
        out.push(Change::Removed, text(m));
    }
    for m in b.difference(&a) {
        out.push(Change::Added, text(m));
    }
}

fn assets(out: &mut Out, old: &GraphDoc, new: &GraphDoc) {
    for (h, a) in &old.assets {
        if !new.assets.contains_key(h) {
            out.push(Change::Removed, format!("asset {} ({})", short(h), a.mime));
        }
    }
    for (h, a) in &new.assets {
        if !old.assets.contains_key(h) {
            out.push(Change::Added, format!("asset {} ({})", short(h), a.mime));
        }
    }
}

/// Definitions are matched by name: a name in both with another hash is a changed definition,
/// whose body and interface are compared line by line under `name › `.
fn definitions(out: &mut Out, prefix: &str, old: &GraphDoc, new: &GraphDoc) {
    let by_name = |d: &BTreeMap<String, Definition>| -> BTreeMap<String, Vec<String>> {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (h, def) in d {
            m.entry(def.name.clone()).or_default().push(h.clone());
        }
        m
    };
    let (a, b) = (by_name(&old.definitions), by_name(&new.definitions));
    let names: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for name in names {
        let empty = Vec::new();
        let (ha, hb) = (a.get(name).unwrap_or(&empty), b.get(name).unwrap_or(&empty));
        // Hashes in both documents are the same definition; the rest changed.
        let gone: Vec<&String> = ha.iter().filter(|h| !hb.contains(h)).collect();
        let came: Vec<&String> = hb.iter().filter(|h| !ha.contains(h)).collect();
        match (gone.as_slice(), came.as_slice()) {
            ([], []) => {}
            ([x], [y]) => {
                out.push(
                    Change::Changed,
                    format!("{prefix}definition {name}: {} → {}", short(x), short(y)),
                );
                if let (Some(dx), Some(dy)) = (old.definitions.get(*x), new.definitions.get(*y)) {
                    definition(out, &format!("{prefix}{name}{PATH_SEP}"), dx, dy, old, new);
                }
            }
            _ => {
                for h in gone {
                    out.push(
                        Change::Removed,
                        format!("{prefix}definition {name} ({})", short(h)),
                    );
                }
                for h in came {
                    out.push(
                        Change::Added,
                        format!("{prefix}definition {name} ({})", short(h)),
                    );
                }
            }
        }
    }
}

fn definition(
    out: &mut Out,
    prefix: &str,
    a: &Definition,
    b: &Definition,
    old: &GraphDoc,
    new: &GraphDoc,
) {
    if a.doc != b.doc {
        out.push(
            Change::Changed,
            format!("{prefix}doc: {} → {}", quoted(&a.doc), quoted(&b.doc)),
        );
    }
    set_lines(out, &format!("{prefix}tag "), &a.tags, &b.tags);
    body(
        out,
        prefix,
        Body {
            nodes: &a.nodes,
            links: &a.links,
        },
        Body {
            nodes: &b.nodes,
            links: &b.links,
        },
        &old.definitions,
        &new.definitions,
    );
    let ports = |d: &Definition| -> BTreeMap<String, String> {
        d.inputs
            .iter()
            .map(|p| {
                let to: Vec<String> = p.targets.iter().map(|t| t.to_string()).collect();
                (format!("input {}", p.name), to.join(", "))
            })
            .chain(
                d.outputs
                    .iter()
                    .map(|p| (format!("output {}", p.name), p.from.to_string())),
            )
            .collect()
    };
    keyed(out, prefix, &ports(a), &ports(b));
    let params = |d: &Definition| -> BTreeMap<String, String> {
        d.params
            .iter()
            .map(|p| (format!("param {}", p.name), param_text(p)))
            .collect()
    };
    keyed(out, prefix, &params(a), &params(b));
    frames(out, prefix, &a.frames, &b.frames);
    layout(out, prefix, &a.layout, &b.layout);
}

fn param_text(p: &ExposedParam) -> String {
    let to: Vec<String> = p.targets.iter().map(|t| t.to_string()).collect();
    let mut s = to.join(", ");
    if let Some(d) = &p.default {
        s.push_str(&format!(", default {}", show(d)));
    }
    match (p.min, p.max) {
        (None, None) => {}
        (lo, hi) => {
            let f = |v: Option<f64>| v.map_or_else(String::new, |v| v.to_string());
            s.push_str(&format!(", range {}..{}", f(lo), f(hi)));
        }
    }
    s
}

/// Lines for two maps of `what → description`: removed, added, then changed.
fn keyed(out: &mut Out, prefix: &str, a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) {
    for (k, v) in a {
        if !b.contains_key(k) {
            out.push(Change::Removed, format!("{prefix}{k} → {v}"));
        }
    }
    for (k, v) in b {
        match a.get(k) {
            None => out.push(Change::Added, format!("{prefix}{k} → {v}")),
            Some(old) if old != v => {
                out.push(Change::Changed, format!("{prefix}{k}: {old} ⇒ {v}"));
            }
            _ => {}
        }
    }
}

fn frames(out: &mut Out, prefix: &str, a: &[Frame], b: &[Frame]) {
    let text = |f: &Frame| {
        let n = f.nodes.len();
        let s = if n == 1 { "" } else { "s" };
        format!(
            "{prefix}frame {} ({}, {n} node{s})",
            quoted(&f.title),
            f.color
        )
    };
    let ta: BTreeSet<String> = a.iter().map(text).collect();
    let tb: BTreeSet<String> = b.iter().map(text).collect();
    for t in ta.difference(&tb) {
        out.push(Change::Removed, t.clone());
    }
    for t in tb.difference(&ta) {
        out.push(Change::Added, t.clone());
    }
}

/// Layout is summarised: moving nodes is rarely what a reviewer wants to read line by line.
fn layout(
    out: &mut Out,
    prefix: &str,
    a: &BTreeMap<String, crate::graph::NodeLayout>,
    b: &BTreeMap<String, crate::graph::NodeLayout>,
) {
    let moved = a
        .iter()
        .filter(|(id, l)| b.get(*id).is_some_and(|m| m != *l))
        .count();
    if moved > 0 {
        let s = if moved == 1 { "" } else { "s" };
        out.push(
            Change::Changed,
            format!("{prefix}layout: {moved} node{s} moved"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{PortRef, SeedValue};
    use crate::subgraph::SubgraphRef;

    fn node(kind: &str, params: &[(&str, ParamValue)]) -> NodeDoc {
        let mut n = NodeDoc::new(kind, 1);
        for (k, v) in params {
            n.params.insert(k.to_string(), v.clone());
        }
        n
    }

    fn link(a: &str, b: &str, c: &str, d: &str) -> Link {
        Link {
            from: PortRef(a.into(), b.into()),
            to: PortRef(c.into(), d.into()),
        }
    }

    fn text(d: &GraphDiff) -> Vec<String> {
        d.lines().iter().map(|l| l.to_string()).collect()
    }

    fn base() -> GraphDoc {
        let mut g = GraphDoc::new();
        g.meta.title = "Scratches".into();
        g.nodes.insert(
            "tex".into(),
            node("Texture", &[("size", ParamValue::Int(256))]),
        );
        g.nodes.insert(
            "scratch".into(),
            node(
                "Scratch",
                &[
                    ("count", ParamValue::Int(3)),
                    ("width", ParamValue::Float(2.0)),
                ],
            ),
        );
        g.nodes.insert("save".into(), node("SaveImage", &[]));
        g.links.push(link("tex", "image", "scratch", "image"));
        g.links.push(link("scratch", "image", "save", "image"));
        g
    }

    #[test]
    fn same_document_has_no_lines() {
        let d = diff(&base(), &base());
        assert!(d.is_empty(), "{d}");
        assert_eq!(d.to_string(), "");
    }

    #[test]
    fn params_nodes_links_and_meta() {
        let a = base();
        let mut b = base();
        b.meta.title = "Scratches v2".into();
        let s = b.nodes.get_mut("scratch").expect("node");
        s.params.insert("count".into(), ParamValue::Int(5));
        s.params.remove("width");
        s.params.insert(
            "seed".into(),
            ParamValue::Seed(SeedValue::Fixed { value: 7 }),
        );
        s.param_inputs.insert("seed".into());
        b.nodes.insert(
            "dent".into(),
            node("Dent", &[("depth", ParamValue::Float(0.5))]),
        );
        b.links.retain(|l| l.to.node() != "save");
        b.links.push(link("dent", "image", "save", "image"));
        b.links.push(link("scratch", "image", "dent", "image"));
        let d = diff(&a, &b);
        assert_eq!(
            text(&d),
            [
                "~ meta.title: \"Scratches\" → \"Scratches v2\"",
                "+ node dent (Dent)",
                "+ dent.depth = 0.5",
                "~ scratch.count: 3 → 5",
                "~ scratch.seed: (default) → {\"mode\":\"fixed\",\"value\":7}",
                "~ scratch.width: 2.0 → (default)",
                "~ scratch.seed: parameter → input",
                "- link scratch.image → save.image",
                "+ link dent.image → save.image",
                "+ link scratch.image → dent.image",
            ]
        );
        assert_eq!(d.counts(), (4, 1, 5));
        // The other way round swaps every mark.
        let back = diff(&b, &a);
        assert_eq!(back.counts(), (1, 3, 5)); // a removed node is one line, without its parameters
    }

    #[test]
    fn changed_definition_is_compared_by_name() {
        let def = |depth: f64| Definition {
            name: "scratch-block".into(),
            doc: String::new(),
            tags: Vec::new(),
            nodes: [(
                "crack".to_string(),
                node("Crack", &[("depth", ParamValue::Float(depth))]),
            )]
            .into_iter()
            .collect(),
            links: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            params: Vec::new(),
            layout: BTreeMap::new(),
            frames: Vec::new(),
        };
        let with = |hash: &str, d: Definition| {
            let mut g = GraphDoc::new();
            let mut n = NodeDoc::new(crate::subgraph::SUBGRAPH_KIND, 1);
            n.subgraph = Some(SubgraphRef {
                hash: hash.into(),
                name: "scratch-block".into(),
                library: false,
            });
            g.nodes.insert("outer".into(), n);
            g.definitions.insert(hash.into(), d);
            g
        };
        let a = with("aaaaaaaa11", def(0.3));
        let mut d2 = def(0.5);
        d2.params.push(ExposedParam {
            name: "depth".into(),
            targets: vec![PortRef("crack".into(), "depth".into())],
            doc: String::new(),
            default: None,
            min: Some(0.0),
            max: Some(1.0),
        });
        let b = with("bbbbbbbb22", d2);
        assert_eq!(
            text(&diff(&a, &b)),
            [
                "~ outer: subgraph scratch-block aaaaaaaa → scratch-block bbbbbbbb",
                "~ definition scratch-block: aaaaaaaa → bbbbbbbb",
                "~ scratch-block › crack.depth: 0.3 → 0.5",
                "+ scratch-block › param depth → crack.depth, range 0..1",
            ]
        );
    }

    #[test]
    fn layout_and_frames_are_summarised() {
        let a = base();
        let mut b = base();
        for id in ["tex", "scratch"] {
            b.layout.insert(
                id.into(),
                crate::graph::NodeLayout {
                    pos: [1.0, 2.0],
                    collapsed: false,
                },
            );
        }
        let mut a2 = a.clone();
        for id in ["tex", "scratch"] {
            a2.layout.insert(
                id.into(),
                crate::graph::NodeLayout {
                    pos: [0.0, 0.0],
                    collapsed: false,
                },
            );
        }
        b.frames.push(Frame {
            title: "defects".into(),
            color: "#aa3322".into(),
            nodes: vec!["scratch".into()],
        });
        assert_eq!(
            text(&diff(&a2, &b)),
            [
                "+ frame \"defects\" (#aa3322, 1 node)",
                "~ layout: 2 nodes moved"
            ]
        );
    }
}
