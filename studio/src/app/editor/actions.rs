//! The editor's document edits beyond what the canvas does by itself: subgraphs (make, open,
//! go up, ungroup, expose a parameter), parameters as inputs, reroutes and frames. Each one is
//! an [`EditorCommand`] carried out on the view's document and written back, so it is one undo
//! step like any other edit.

use std::collections::{BTreeMap, BTreeSet};

use nodes::subgraph::{ExposedParam, Frame, REROUTE_KIND};
use nodes::{GraphDoc, Link, NodeDoc, NodeLayout, PortRef};

use super::super::StudioApp;

/// What the editor asks the app to do with the document.
#[derive(Clone, Debug)]
pub enum EditorCommand {
    /// Show parameter `param` of `node` as an input port (`input`), or back as a parameter
    /// (its link is removed).
    ParamInput {
        node: String,
        param: String,
        input: bool,
    },
    /// Expose an inner parameter on the open subgraph's interface.
    ExposeParam { node: String, param: String },
    /// These nodes (document ids; empty: the selection) become one subgraph node.
    MakeSubgraph(Vec<String>),
    /// Edit subgraph node `id`'s definition in the canvas.
    OpenSubgraph(String),
    /// Go up to this depth (0: the top level), writing the open definition back.
    LeaveSubgraph(usize),
    /// Replace subgraph node `id` by its definition's nodes.
    Ungroup(String),
    /// Put a reroute point on the link into `node.port`.
    InsertReroute { node: String, port: String },
    /// A frame around these nodes (document ids; empty: the selection).
    FrameSelection(Vec<String>),
}

/// The colour of a new frame.
pub const FRAME_COLOR: &str = "#4a6fa5";

impl StudioApp {
    /// Carries out one editor command.
    pub(in crate::app) fn apply_editor(&mut self, ctx: &egui::Context, cmd: EditorCommand) {
        let cat = &self.catalogue;
        let selection = |app: &StudioApp, ids: Vec<String>| -> Vec<String> {
            if !ids.is_empty() {
                return ids;
            }
            app.selected(ctx)
                .iter()
                .filter_map(|n| app.doc.snarl.get_node(*n))
                .map(|n| n.id.clone())
                .collect()
        };
        match cmd {
            EditorCommand::ParamInput { node, param, input } => {
                let mut view = self.doc.view_doc(cat);
                if let Some(n) = view.nodes.get_mut(&node) {
                    if input {
                        n.param_inputs.insert(param);
                    } else {
                        n.param_inputs.remove(&param);
                        view.links.retain(|l| !(l.to.0 == node && l.to.1 == param));
                    }
                    self.doc.set_view(&view, cat);
                }
            }
            EditorCommand::ExposeParam { node, param } => {
                if let Some(scope) = &mut self.doc.scope {
                    let name = unique(&param, scope.def.params.iter().map(|p| p.name.as_str()));
                    scope.def.params.push(ExposedParam {
                        name: name.clone(),
                        targets: vec![PortRef(node, param)],
                        doc: String::new(),
                        default: None,
                        min: None,
                        max: None,
                    });
                    self.notify(ctx, format!("exposed as {name}"));
                }
            }
            EditorCommand::MakeSubgraph(ids) => {
                let ids = selection(self, ids);
                if ids.is_empty() {
                    self.notify(ctx, "Select the nodes to make a subgraph of.");
                    return;
                }
                let mut view = self.doc.view_doc(cat);
                let name = unique(
                    "subgraph",
                    view.definitions.values().map(|d| d.name.as_str()),
                );
                match nodes::subgraph::make_subgraph(&mut view, &ids, &name, cat) {
                    Ok(id) => {
                        self.doc.set_view(&view, cat);
                        self.inspected = Some(id);
                    }
                    Err(e) => self.error("Cannot make a subgraph", e.to_string()),
                }
            }
            EditorCommand::OpenSubgraph(id) => {
                if !self.doc.enter(&id, cat) {
                    self.notify(ctx, format!("{id} is not a subgraph node"));
                }
                self.inspected = None;
                self.frame_all = true;
            }
            EditorCommand::LeaveSubgraph(depth) => {
                let back_to = self.doc.path().get(depth).cloned();
                self.doc.leave_to(depth, cat);
                self.inspected = back_to;
                self.frame_all = true;
            }
            EditorCommand::Ungroup(id) => {
                let mut view = self.doc.view_doc(cat);
                match ungroup(&mut view, &id) {
                    Ok(_) => self.doc.set_view(&view, cat),
                    Err(e) => self.error("Cannot ungroup", e),
                }
            }
            EditorCommand::InsertReroute { node, port } => {
                let mut view = self.doc.view_doc(cat);
                if insert_reroute(&mut view, &node, &port).is_some() {
                    self.doc.set_view(&view, cat);
                }
            }
            EditorCommand::FrameSelection(ids) => {
                let ids = selection(self, ids);
                if ids.is_empty() {
                    self.notify(ctx, "Select the nodes to frame.");
                    return;
                }
                self.doc.frames.push(Frame {
                    title: "Frame".into(),
                    color: FRAME_COLOR.into(),
                    nodes: ids,
                });
            }
        }
    }
}

/// `base`, or `base2`, `base3`, … : the first not in `taken`.
pub fn unique<'a>(base: &str, taken: impl Iterator<Item = &'a str>) -> String {
    let taken: BTreeSet<&str> = taken.collect();
    if !taken.contains(base) {
        return base.to_string();
    }
    (2..)
        .map(|i| format!("{base}{i}"))
        .find(|c| !taken.contains(c.as_str()))
        .unwrap_or_else(|| base.to_string())
}

/// Puts a reroute node on the link into `node.port`, half way; returns its id.
pub fn insert_reroute(doc: &mut GraphDoc, node: &str, port: &str) -> Option<String> {
    let i = doc
        .links
        .iter()
        .position(|l| l.to.0 == node && l.to.1 == port)?;
    let link = doc.links.remove(i);
    let id = unique("reroute", doc.nodes.keys().map(String::as_str));
    let at = |n: &str| doc.layout.get(n).map(|l| l.pos).unwrap_or([0.0, 0.0]);
    let (a, b) = (at(&link.from.0), at(node));
    doc.layout.insert(
        id.clone(),
        NodeLayout {
            pos: [
                ((a[0] + b[0]) / 2.0 + 120.0).round(),
                ((a[1] + b[1]) / 2.0).round(),
            ],
            collapsed: false,
        },
    );
    doc.nodes.insert(id.clone(), NodeDoc::new(REROUTE_KIND, 1));
    doc.links.push(Link {
        from: link.from,
        to: PortRef(id.clone(), "in".into()),
    });
    doc.links.push(Link {
        from: PortRef(id.clone(), "out".into()),
        to: link.to,
    });
    Some(id)
}

/// Replaces subgraph node `id` of `doc` by its definition's nodes (fresh ids where taken),
/// wired as the node was, with the node's exposed parameter values set on their targets.
/// Returns the new node ids.
pub fn ungroup(doc: &mut GraphDoc, id: &str) -> Result<Vec<String>, String> {
    let node = doc
        .nodes
        .get(id)
        .cloned()
        .ok_or_else(|| format!("no node {id}"))?;
    let r = node
        .subgraph
        .as_ref()
        .ok_or_else(|| format!("{id} is not a subgraph node"))?;
    let def = doc
        .definitions
        .get(&r.hash)
        .cloned()
        .ok_or_else(|| format!("{id}: definition {} is not in the document", r.name))?;
    doc.nodes.remove(id);
    let at = doc.layout.remove(id).map(|l| l.pos).unwrap_or([0.0, 0.0]);
    // Inner positions keep their shape, centred on the subgraph node.
    let n = def.layout.len().max(1) as f32;
    let centre = def.layout.values().fold([0.0, 0.0], |c, l| {
        [c[0] + l.pos[0] / n, c[1] + l.pos[1] / n]
    });
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    for (inner, nd) in &def.nodes {
        let new = unique(inner, doc.nodes.keys().map(String::as_str));
        doc.nodes.insert(new.clone(), nd.clone());
        let pos = def.layout.get(inner).map(|l| l.pos).unwrap_or(centre);
        doc.layout.insert(
            new.clone(),
            NodeLayout {
                pos: [
                    (at[0] + pos[0] - centre[0]).round(),
                    (at[1] + pos[1] - centre[1]).round(),
                ],
                collapsed: def.layout.get(inner).is_some_and(|l| l.collapsed),
            },
        );
        ids.insert(inner.clone(), new);
    }
    let map = |p: &PortRef| PortRef(ids.get(&p.0).cloned().unwrap_or_default(), p.1.clone());
    for p in &def.params {
        let value = node.params.get(&p.name).or(p.default.as_ref());
        if let Some(v) = value {
            for t in &p.targets {
                let t = map(t);
                if let Some(inner) = doc.nodes.get_mut(&t.0) {
                    inner.params.insert(t.1, v.clone());
                }
            }
        }
    }
    let outer = std::mem::take(&mut doc.links);
    let mut links: Vec<Link> = def
        .links
        .iter()
        .map(|l| Link {
            from: map(&l.from),
            to: map(&l.to),
        })
        .collect();
    for l in outer {
        if l.to.0 == id {
            if let Some(inp) = def.inputs.iter().find(|i| i.name == l.to.1) {
                for t in &inp.targets {
                    links.push(Link {
                        from: l.from.clone(),
                        to: map(t),
                    });
                }
            }
        } else if l.from.0 == id {
            if let Some(out) = def.outputs.iter().find(|o| o.name == l.from.1) {
                links.push(Link {
                    from: map(&out.from),
                    to: l.to,
                });
            }
        } else {
            links.push(l);
        }
    }
    links.sort_by(|a, b| (&a.to, &a.from).cmp(&(&b.to, &b.from)));
    doc.links = links;
    for f in &mut doc.frames {
        if let Some(i) = f.nodes.iter().position(|n| n == id) {
            f.nodes.remove(i);
            f.nodes.extend(ids.values().cloned());
        }
    }
    Ok(ids.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nodes::subgraph::{Definition, ExposedOutput, ExposedPort, SubgraphRef, SUBGRAPH_KIND};
    use nodes::ParamValue;

    fn link(a: &str, ap: &str, b: &str, bp: &str) -> Link {
        Link {
            from: PortRef(a.into(), ap.into()),
            to: PortRef(b.into(), bp.into()),
        }
    }

    #[test]
    fn ungroup_rewires_the_instance_and_sets_its_parameters() {
        let mut def = Definition {
            name: "block".into(),
            doc: String::new(),
            tags: vec![],
            nodes: BTreeMap::new(),
            links: vec![link("scratch", "image", "blur", "image")],
            inputs: vec![ExposedPort {
                name: "image".into(),
                targets: vec![PortRef("scratch".into(), "image".into())],
                doc: String::new(),
            }],
            outputs: vec![ExposedOutput {
                name: "out".into(),
                from: PortRef("blur".into(), "image".into()),
                doc: String::new(),
            }],
            params: vec![ExposedParam {
                name: "depth".into(),
                targets: vec![PortRef("scratch".into(), "depth".into())],
                doc: String::new(),
                default: None,
                min: None,
                max: None,
            }],
            layout: BTreeMap::new(),
            frames: vec![],
        };
        def.nodes
            .insert("scratch".into(), NodeDoc::new("Scratch", 1));
        def.nodes.insert("blur".into(), NodeDoc::new("Blur", 1));
        let mut doc = GraphDoc::new();
        doc.nodes
            .insert("scratch".into(), NodeDoc::new("Texture", 1));
        let mut sub = NodeDoc::new(SUBGRAPH_KIND, 1);
        sub.subgraph = Some(SubgraphRef {
            hash: "h".into(),
            name: "block".into(),
            library: false,
        });
        sub.params.insert("depth".into(), ParamValue::Float(0.7));
        doc.nodes.insert("block".into(), sub);
        doc.nodes
            .insert("save".into(), NodeDoc::new("SaveImage", 1));
        doc.definitions.insert("h".into(), def);
        doc.links = vec![
            link("scratch", "image", "block", "image"),
            link("block", "out", "save", "image"),
        ];
        let new = ungroup(&mut doc, "block").unwrap();
        assert_eq!(new, ["blur", "scratch2"]);
        assert!(!doc.nodes.contains_key("block"));
        assert_eq!(
            doc.nodes["scratch2"].params["depth"],
            ParamValue::Float(0.7)
        );
        assert_eq!(
            doc.links,
            vec![
                link("scratch2", "image", "blur", "image"),
                link("blur", "image", "save", "image"),
                link("scratch", "image", "scratch2", "image"),
            ]
        );
        assert!(ungroup(&mut doc, "save").is_err());
    }

    #[test]
    fn a_reroute_goes_on_the_link() {
        let mut doc = GraphDoc::new();
        doc.nodes.insert("a".into(), NodeDoc::new("Texture", 1));
        doc.nodes.insert("b".into(), NodeDoc::new("SaveImage", 1));
        doc.links = vec![link("a", "image", "b", "image")];
        let id = insert_reroute(&mut doc, "b", "image").unwrap();
        assert_eq!(doc.nodes[&id].kind, REROUTE_KIND);
        assert_eq!(
            doc.links,
            vec![
                link("a", "image", &id, "in"),
                link(&id, "out", "b", "image")
            ]
        );
        assert!(insert_reroute(&mut doc, "b", "mask").is_none());
    }

    #[test]
    fn unique_names_count_up() {
        assert_eq!(unique("x", ["y"].into_iter()), "x");
        assert_eq!(unique("x", ["x", "x2"].into_iter()), "x3");
    }
}
