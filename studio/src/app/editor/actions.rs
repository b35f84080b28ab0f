//! The editor's document edits beyond what the canvas does by itself: subgraphs (make, open,
//! go up, ungroup, expose a parameter), parameters as inputs, reroutes and frames. Each one is
//! an [`EditorCommand`] carried out on the view's document and written back, so it is one undo
//! step like any other edit.

use std::collections::BTreeSet;

use nodes::subgraph::{Frame, REROUTE_KIND};
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
                let view = self.doc.view_doc(cat);
                let Some(scope) = &mut self.doc.scope else {
                    return;
                };
                let name = unique(&param, scope.def.params.iter().map(|p| p.name.as_str()));
                // The definition as it stands (its nodes are the canvas's).
                let mut def = scope.def.clone();
                def.nodes = view.nodes;
                match nodes::subgraph::expose_param(&mut def, &node, &param, &name) {
                    Ok(()) => {
                        scope.def.params = def.params;
                        self.notify(ctx, format!("exposed {node}.{param} as {name}"));
                    }
                    Err(e) => self.error("Cannot expose the parameter", e.to_string()),
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
                match nodes::subgraph::unpack(&mut view, &id) {
                    Ok(_) => self.doc.set_view(&view, cat),
                    Err(e) => self.error("Cannot ungroup", e.to_string()),
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
    doc.nodes.insert(
        id.clone(),
        NodeDoc::new(REROUTE_KIND, nodes::subgraph::SUBGRAPH_VERSION),
    );
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

#[cfg(test)]
mod tests {
    use super::*;

    fn link(a: &str, ap: &str, b: &str, bp: &str) -> Link {
        Link {
            from: PortRef(a.into(), ap.into()),
            to: PortRef(b.into(), bp.into()),
        }
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
