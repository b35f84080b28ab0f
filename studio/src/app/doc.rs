//! The graph being edited: a [`Snarl`] of [`EditorNode`]s plus the rest of the document, with
//! conversion to and from [`GraphDoc`], undo/redo, and copy/paste fragments.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use egui::Pos2;
use egui_snarl::{InPinId, NodeId, OutPinId, Snarl};
use nodes::{Catalogue, GraphDoc, NodeDoc, NodeLayout, ParamValue, PortRef};

/// One node in the editor: its id in the document, its kind and the parameters set on it.
#[derive(Clone, Debug, PartialEq)]
pub struct EditorNode {
    pub id: String,
    pub kind: String,
    pub params: BTreeMap<String, ParamValue>,
}

/// The edited document with its history.
pub struct EditorDoc {
    pub snarl: Snarl<EditorNode>,
    /// Everything of the document that is not nodes, links or layout: models, assets, meta.
    pub extra: GraphDoc,
    /// The file it was opened from or saved to.
    pub path: Option<PathBuf>,
    /// The document as last saved or opened (for the unsaved-changes prompt).
    pub saved: GraphDoc,
    committed: GraphDoc,
    undo: Vec<GraphDoc>,
    redo: Vec<GraphDoc>,
}

const HISTORY: usize = 200;

impl EditorDoc {
    pub fn new(doc: &GraphDoc, catalogue: &Catalogue, path: Option<PathBuf>) -> EditorDoc {
        let (snarl, extra) = build(doc, catalogue);
        let mut ed = EditorDoc {
            snarl,
            extra,
            path,
            saved: GraphDoc::new(),
            committed: GraphDoc::new(),
            undo: Vec::new(),
            redo: Vec::new(),
        };
        let now = ed.to_doc(catalogue);
        ed.saved = now.clone();
        ed.committed = now;
        ed
    }

    /// The document as it stands in the editor.
    pub fn to_doc(&self, catalogue: &Catalogue) -> GraphDoc {
        let mut doc = self.extra.clone();
        doc.nodes.clear();
        doc.links.clear();
        doc.layout.clear();
        for (nid, pos, node) in self.snarl.nodes_pos_ids() {
            let version = catalogue.get(&node.kind).map(|s| s.version).unwrap_or(1);
            doc.nodes.insert(
                node.id.clone(),
                NodeDoc {
                    kind: node.kind.clone(),
                    version,
                    params: node.params.clone(),
                    param_inputs: Default::default(),
                    subgraph: None,
                },
            );
            let open = self
                .snarl
                .get_node_info(nid)
                .map(|i| i.open)
                .unwrap_or(true);
            doc.layout.insert(
                node.id.clone(),
                NodeLayout {
                    pos: [pos.x.round(), pos.y.round()],
                    collapsed: !open,
                },
            );
        }
        for (out, inp) in self.snarl.wires() {
            let (Some(from), Some(to)) =
                (self.snarl.get_node(out.node), self.snarl.get_node(inp.node))
            else {
                continue;
            };
            let (Some(fs), Some(ts)) = (catalogue.get(&from.kind), catalogue.get(&to.kind)) else {
                continue;
            };
            let (Some(fp), Some(tp)) =
                (fs.outputs.get(out.output), ts.input_ports().get(inp.input))
            else {
                continue;
            };
            doc.links.push(nodes::Link {
                from: PortRef(from.id.clone(), fp.name.into()),
                to: PortRef(to.id.clone(), tp.name.into()),
            });
        }
        doc.links
            .sort_by(|a, b| (&a.to, &a.from).cmp(&(&b.to, &b.from)));
        doc
    }

    /// Replaces the editor's content with `doc` (an undoable edit).
    pub fn replace(&mut self, doc: &GraphDoc, catalogue: &Catalogue) {
        let (snarl, extra) = build(doc, catalogue);
        self.snarl = snarl;
        self.extra = extra;
    }

    /// Records an edit once it is complete: call after every frame with whether a pointer
    /// button is still down (a drag in progress is one edit, not one per frame).
    pub fn commit_edits(&mut self, catalogue: &Catalogue, pointer_down: bool) -> bool {
        if pointer_down {
            return false;
        }
        let now = self.to_doc(catalogue);
        if now == self.committed {
            return false;
        }
        self.undo.push(std::mem::replace(&mut self.committed, now));
        if self.undo.len() > HISTORY {
            self.undo.remove(0);
        }
        self.redo.clear();
        true
    }

    pub fn can_undo(&self) -> bool {
        !self.undo.is_empty()
    }

    pub fn can_redo(&self) -> bool {
        !self.redo.is_empty()
    }

    pub fn undo(&mut self, catalogue: &Catalogue) {
        if let Some(prev) = self.undo.pop() {
            let cur = std::mem::replace(&mut self.committed, prev.clone());
            self.redo.push(cur);
            self.replace(&prev, catalogue);
        }
    }

    pub fn redo(&mut self, catalogue: &Catalogue) {
        if let Some(next) = self.redo.pop() {
            let cur = std::mem::replace(&mut self.committed, next.clone());
            self.undo.push(cur);
            self.replace(&next, catalogue);
        }
    }

    /// Whether the document differs from the file.
    /// Whether the document differs from the file, as of the last committed edit (see
    /// [`EditorDoc::commit_edits`]); cheap enough to ask every frame.
    pub fn dirty(&self, _catalogue: &Catalogue) -> bool {
        self.committed != self.saved
    }

    pub fn mark_saved(&mut self, doc: GraphDoc, path: PathBuf) {
        self.committed = doc.clone();
        self.saved = doc;
        self.path = Some(path);
    }

    /// A node id not used yet, from the kind's name (`texture`, `texture2`, …).
    pub fn fresh_id(&self, kind: &str) -> String {
        fresh_id(&self.snarl, kind)
    }

    /// Adds a node of `kind` with default parameters.
    pub fn add_node(&mut self, kind: &str, pos: Pos2) -> NodeId {
        let id = self.fresh_id(kind);
        self.snarl.insert_node(
            pos,
            EditorNode {
                id,
                kind: kind.to_string(),
                params: BTreeMap::new(),
            },
        )
    }

    /// The snarl node holding document node `id`.
    pub fn find(&self, id: &str) -> Option<NodeId> {
        self.snarl
            .node_ids()
            .find(|(_, n)| n.id == id)
            .map(|(nid, _)| nid)
    }

    /// A document fragment holding `nodes` and the links among them (for copy and duplicate).
    pub fn fragment(&self, nodes: &[NodeId], catalogue: &Catalogue) -> GraphDoc {
        let full = self.to_doc(catalogue);
        let ids: std::collections::HashSet<String> = nodes
            .iter()
            .filter_map(|n| self.snarl.get_node(*n))
            .map(|n| n.id.clone())
            .collect();
        let mut frag = GraphDoc::new();
        frag.nodes = full
            .nodes
            .into_iter()
            .filter(|(k, _)| ids.contains(k))
            .collect();
        frag.layout = full
            .layout
            .into_iter()
            .filter(|(k, _)| ids.contains(k))
            .collect();
        frag.links = full
            .links
            .into_iter()
            .filter(|l| ids.contains(&l.from.0) && ids.contains(&l.to.0))
            .collect();
        let used: Vec<String> = frag
            .nodes
            .values()
            .flat_map(|n| n.params.values())
            .filter_map(|v| v.as_str())
            .filter_map(|s| s.strip_prefix("asset:"))
            .map(str::to_string)
            .collect();
        frag.assets = full
            .assets
            .into_iter()
            .filter(|(k, _)| used.contains(k))
            .collect();
        frag
    }

    /// Inserts a fragment with fresh ids, shifted by `offset`; returns the new snarl nodes.
    pub fn paste(
        &mut self,
        frag: &GraphDoc,
        offset: egui::Vec2,
        catalogue: &Catalogue,
    ) -> Vec<NodeId> {
        let mut map: HashMap<String, NodeId> = HashMap::new();
        for (id, node) in &frag.nodes {
            let pos = frag
                .layout
                .get(id)
                .map(|l| Pos2::new(l.pos[0], l.pos[1]))
                .unwrap_or(Pos2::ZERO)
                + offset;
            let new_id = self.fresh_id(&node.kind);
            let nid = self.snarl.insert_node(
                pos,
                EditorNode {
                    id: new_id,
                    kind: node.kind.clone(),
                    params: node.params.clone(),
                },
            );
            map.insert(id.clone(), nid);
        }
        for l in &frag.links {
            if let (Some(f), Some(t)) = (map.get(&l.from.0), map.get(&l.to.0)) {
                connect_named(&mut self.snarl, *f, &l.from.1, *t, &l.to.1, catalogue);
            }
        }
        for (k, v) in &frag.assets {
            self.extra
                .assets
                .entry(k.clone())
                .or_insert_with(|| v.clone());
        }
        map.into_values().collect()
    }

    /// Removes assets no node refers to (run before saving).
    pub fn prune_assets(&mut self) {
        let used: std::collections::HashSet<String> = self
            .snarl
            .nodes()
            .flat_map(|n| n.params.values())
            .filter_map(|v| v.as_str())
            .filter_map(|s| s.strip_prefix("asset:"))
            .map(str::to_string)
            .collect();
        self.extra.assets.retain(|k, _| used.contains(k));
    }
}

/// A node id not used in `snarl` yet, from the kind's name (`texture`, `texture2`, …).
pub fn fresh_id(snarl: &Snarl<EditorNode>, kind: &str) -> String {
    let base: String = kind
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    let taken: std::collections::HashSet<&str> = snarl.nodes().map(|n| n.id.as_str()).collect();
    if !taken.contains(base.as_str()) {
        return base;
    }
    (2..)
        .map(|i| format!("{base}{i}"))
        .find(|c| !taken.contains(c.as_str()))
        .unwrap_or(base)
}

/// Connects output port `from_port` of `from` to input `to_port` of `to`, by name.
pub fn connect_named(
    snarl: &mut Snarl<EditorNode>,
    from: NodeId,
    from_port: &str,
    to: NodeId,
    to_port: &str,
    catalogue: &Catalogue,
) -> bool {
    let (Some(fnode), Some(tnode)) = (snarl.get_node(from), snarl.get_node(to)) else {
        return false;
    };
    let (Some(fs), Some(ts)) = (catalogue.get(&fnode.kind), catalogue.get(&tnode.kind)) else {
        return false;
    };
    let (Some(o), Some(i)) = (
        fs.outputs.iter().position(|p| p.name == from_port),
        ts.input_ports().iter().position(|p| p.name == to_port),
    ) else {
        return false;
    };
    snarl.connect(
        OutPinId {
            node: from,
            output: o,
        },
        InPinId { node: to, input: i },
    )
}

/// Builds a snarl from a document. Nodes without a layout are placed in columns by depth.
fn build(doc: &GraphDoc, catalogue: &Catalogue) -> (Snarl<EditorNode>, GraphDoc) {
    let mut snarl = Snarl::new();
    let depth = depths(doc);
    let mut per_column: HashMap<usize, f32> = HashMap::new();
    let mut ids: HashMap<&str, NodeId> = HashMap::new();
    for (id, node) in &doc.nodes {
        let (pos, collapsed) = match doc.layout.get(id) {
            Some(l) => (Pos2::new(l.pos[0], l.pos[1]), l.collapsed),
            None => {
                let d = depth.get(id.as_str()).copied().unwrap_or(0);
                let y = per_column.entry(d).or_insert(40.0);
                let pos = Pos2::new(40.0 + d as f32 * 300.0, *y);
                *y += 260.0;
                (pos, false)
            }
        };
        let en = EditorNode {
            id: id.clone(),
            kind: node.kind.clone(),
            params: node.params.clone(),
        };
        let nid = if collapsed {
            snarl.insert_node_collapsed(pos, en)
        } else {
            snarl.insert_node(pos, en)
        };
        ids.insert(id, nid);
    }
    for l in &doc.links {
        if let (Some(f), Some(t)) = (ids.get(l.from.0.as_str()), ids.get(l.to.0.as_str())) {
            connect_named(&mut snarl, *f, &l.from.1, *t, &l.to.1, catalogue);
        }
    }
    let mut extra = doc.clone();
    extra.nodes.clear();
    extra.links.clear();
    extra.layout.clear();
    (snarl, extra)
}

/// Longest path from a source, per node (for automatic layout).
fn depths(doc: &GraphDoc) -> HashMap<&str, usize> {
    let mut depth: HashMap<&str, usize> = HashMap::new();
    let all: Vec<&str> = doc.nodes.keys().map(String::as_str).collect();
    let order = doc.upstream_order(&all).unwrap_or_default();
    for id in &order {
        let d = doc
            .links_into(id)
            .filter_map(|l| depth.get(l.from.0.as_str()).map(|d| d + 1))
            .max()
            .unwrap_or(0);
        if let Some(k) = doc
            .nodes
            .get_key_value(id.as_str())
            .map(|(k, _)| k.as_str())
        {
            depth.insert(k, d);
        }
    }
    depth
}
