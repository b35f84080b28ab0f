//! The graph being edited: a [`Snarl`] of [`EditorNode`]s plus the rest of the document, with
//! conversion to and from [`GraphDoc`], undo/redo, and copy/paste fragments.
//!
//! The canvas shows one *view*: the document's top level, or (while a subgraph is open, see
//! [`Scope`]) one definition's inner graph. Either way [`EditorDoc::to_doc`] gives the whole
//! document: an open definition is written back through `nodes::subgraph::replace_definition`,
//! so every edit, inside or out, is one new document snapshot for undo.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use egui::Pos2;
use egui_snarl::{InPinId, NodeId, OutPinId, Snarl};
use nodes::subgraph::{Definition, Frame, SubgraphRef};
use nodes::{Catalogue, GraphDoc, Link, NodeDoc, NodeLayout, ParamValue, PortRef};

use super::editor::ports::{Interfaces, Ports};

/// One node in the editor: its id in the document, its kind and the parameters set on it.
#[derive(Clone, Debug, PartialEq)]
pub struct EditorNode {
    pub id: String,
    pub kind: String,
    pub params: BTreeMap<String, ParamValue>,
    /// Parameters shown as input ports.
    pub param_inputs: BTreeSet<String>,
    /// For a subgraph node: the definition it instantiates.
    pub subgraph: Option<SubgraphRef>,
}

impl EditorNode {
    /// A node of `kind` with default parameters.
    pub fn new(id: String, kind: &str) -> EditorNode {
        EditorNode {
            id,
            kind: kind.to_string(),
            params: BTreeMap::new(),
            param_inputs: BTreeSet::new(),
            subgraph: None,
        }
    }

    fn from_doc(id: &str, node: &NodeDoc) -> EditorNode {
        EditorNode {
            id: id.to_string(),
            kind: node.kind.clone(),
            params: node.params.clone(),
            param_inputs: node.param_inputs.clone(),
            subgraph: node.subgraph.clone(),
        }
    }
}

/// The subgraph open in the canvas: the chain of subgraph nodes from the top level to it.
#[derive(Clone, Debug, PartialEq)]
pub struct Scope {
    /// Subgraph node ids, outermost first (each one inside the previous one's definition).
    pub path: Vec<String>,
    /// The names of the definitions along the path (for the breadcrumb).
    pub names: Vec<String>,
    /// The open definition's hash in the document the view was built from.
    pub hash: String,
    /// The open definition: its interface and doc (its nodes, links, layout and frames are the
    /// canvas's).
    pub def: Definition,
}

/// The edited document with its history.
pub struct EditorDoc {
    pub snarl: Snarl<EditorNode>,
    /// At the top level: everything of the document but the view's nodes, links, layout and
    /// frames (models, assets, meta, definitions). Inside a subgraph: the whole document as it
    /// was when the view was built (the open definition is replaced in it by [`Self::to_doc`]).
    pub extra: GraphDoc,
    /// The view's frames.
    pub frames: Vec<Frame>,
    /// The document's subgraph interfaces (recomputed whenever the view is rebuilt).
    pub interfaces: Interfaces,
    /// The open subgraph; `None` at the top level.
    pub scope: Option<Scope>,
    /// The view's links in the order the document listed them (the canvas keeps no order):
    /// they are written back in that order, new ones after them, so an unchanged document
    /// saves byte for byte.
    link_order: HashMap<(PortRef, PortRef), usize>,
    /// The file it was opened from or saved to.
    pub path: Option<PathBuf>,
    /// The document as last saved or opened (for the unsaved-changes prompt).
    pub saved: GraphDoc,
    committed: GraphDoc,
    undo: Vec<GraphDoc>,
    redo: Vec<GraphDoc>,
    /// Which build of the canvas this is: a new number, unique across documents, whenever the
    /// canvas is rebuilt from a document (open, undo, an editor command), so what is cached by
    /// node id (the canvas's node sizes) knows when to start over.
    generation: u64,
}

/// A number no canvas build has had yet.
fn next_generation() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

const HISTORY: usize = 200;

impl EditorDoc {
    pub fn new(doc: &GraphDoc, catalogue: &Catalogue, path: Option<PathBuf>) -> EditorDoc {
        let mut ed = EditorDoc {
            snarl: Snarl::new(),
            extra: GraphDoc::new(),
            frames: Vec::new(),
            interfaces: Interfaces::new(),
            scope: None,
            link_order: HashMap::new(),
            path,
            saved: GraphDoc::new(),
            committed: GraphDoc::new(),
            undo: Vec::new(),
            redo: Vec::new(),
            generation: 0,
        };
        ed.load_view(doc, &[], catalogue);
        let now = ed.to_doc(catalogue);
        ed.saved = now.clone();
        ed.committed = now;
        ed
    }

    /// Recomputes the subgraph interfaces from the document's definitions.
    pub fn refresh_interfaces(&mut self, catalogue: &Catalogue) {
        self.interfaces = interfaces_of(&self.extra, catalogue);
    }

    /// Which build of the canvas this is (see the field's doc).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Port lookups for this document's nodes.
    pub fn ports<'a>(&'a self, catalogue: &'a Catalogue) -> Ports<'a> {
        Ports::new(catalogue, &self.interfaces)
    }

    /// The graph the canvas shows, as a document: its nodes, links, layout and frames, with the
    /// whole document's definitions and assets (so subgraph nodes and assets resolve).
    pub fn view_doc(&self, catalogue: &Catalogue) -> GraphDoc {
        let ports = self.ports(catalogue);
        let mut doc = GraphDoc::new();
        doc.definitions = self.extra.definitions.clone();
        doc.assets = self.extra.assets.clone();
        doc.frames = self.frames.clone();
        for (nid, pos, node) in self.snarl.nodes_pos_ids() {
            let version = catalogue.get(&node.kind).map(|s| s.version).unwrap_or(1);
            doc.nodes.insert(
                node.id.clone(),
                NodeDoc {
                    kind: node.kind.clone(),
                    version,
                    params: node.params.clone(),
                    param_inputs: node.param_inputs.clone(),
                    subgraph: node.subgraph.clone(),
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
            let (Some(fp), Some(tp)) = (ports.output(from, out.output), ports.input(to, inp.input))
            else {
                continue;
            };
            doc.links.push(Link {
                from: PortRef(from.id.clone(), fp.name.into()),
                to: PortRef(to.id.clone(), tp.name.into()),
            });
        }
        let rank = |l: &Link| {
            self.link_order
                .get(&(l.from.clone(), l.to.clone()))
                .copied()
                .unwrap_or(usize::MAX)
        };
        doc.links
            .sort_by(|a, b| (rank(a), &a.to, &a.from).cmp(&(rank(b), &b.to, &b.from)));
        doc
    }

    /// The document as it stands in the editor (the whole document, also while a subgraph is
    /// open).
    pub fn to_doc(&self, catalogue: &Catalogue) -> GraphDoc {
        let view = self.view_doc(catalogue);
        let mut doc = self.extra.clone();
        match &self.scope {
            None => {
                doc.nodes = view.nodes;
                doc.links = view.links;
                doc.layout = view.layout;
                doc.frames = view.frames;
            }
            Some(scope) => {
                let mut def = scope.def.clone();
                def.nodes = view.nodes;
                def.links = view.links;
                def.layout = view.layout;
                def.frames = view.frames;
                if def.hash() == scope.hash {
                    // Only layout or frames changed: the hash, and every reference, stay.
                    doc.definitions.insert(scope.hash.clone(), def);
                } else if let Err(e) =
                    nodes::subgraph::replace_definition(&mut doc, &scope.hash, def)
                {
                    // Cannot happen for a hash taken from this document; keep it as it was.
                    eprintln!("cannot write the subgraph back: {e}");
                }
            }
        }
        doc
    }

    /// Shows `path` (subgraph node ids from the top level; empty for the top level) of `doc`.
    /// A path that no longer resolves (an undo removed the subgraph) falls back to the longest
    /// prefix that does.
    pub fn load_view(&mut self, doc: &GraphDoc, path: &[String], catalogue: &Catalogue) {
        self.generation = next_generation();
        self.interfaces = interfaces_of(doc, catalogue);
        let mut names = Vec::new();
        let mut found: Option<(String, &Definition)> = None;
        let mut nodes = &doc.nodes;
        let mut depth = 0;
        for id in path {
            let Some(r) = nodes.get(id).and_then(|n| n.subgraph.as_ref()) else {
                break;
            };
            let Some(def) = doc.definitions.get(&r.hash) else {
                break;
            };
            names.push(def.name.clone());
            found = Some((r.hash.clone(), def));
            nodes = &def.nodes;
            depth += 1;
        }
        match found {
            None => {
                let mut extra = doc.clone();
                extra.nodes.clear();
                extra.links.clear();
                extra.layout.clear();
                self.frames = std::mem::take(&mut extra.frames);
                self.snarl = build(&doc.nodes, &doc.links, &doc.layout, &self.ports(catalogue));
                self.link_order = link_order(&doc.links);
                self.extra = extra;
                self.scope = None;
            }
            Some((hash, def)) => {
                self.snarl = build(&def.nodes, &def.links, &def.layout, &self.ports(catalogue));
                self.link_order = link_order(&def.links);
                self.frames = def.frames.clone();
                let mut def = def.clone();
                def.nodes.clear();
                def.links.clear();
                def.layout.clear();
                def.frames.clear();
                self.scope = Some(Scope {
                    path: path[..depth].to_vec(),
                    names,
                    hash,
                    def,
                });
                self.extra = doc.clone();
            }
        }
    }

    /// Replaces the view with `view` (a document as [`Self::view_doc`] gives it: nodes, links,
    /// layout, frames, and the whole document's definitions and assets). At the top level,
    /// definitions nothing uses any more are dropped.
    pub fn set_view(&mut self, view: &GraphDoc, catalogue: &Catalogue) {
        self.extra.definitions = if self.scope.is_none() {
            used_definitions(view.nodes.values(), &view.definitions)
        } else {
            view.definitions.clone()
        };
        self.extra.assets = view.assets.clone();
        self.generation = next_generation();
        self.refresh_interfaces(catalogue);
        self.frames = view.frames.clone();
        self.link_order = link_order(&view.links);
        self.snarl = build(
            &view.nodes,
            &view.links,
            &view.layout,
            &self.ports(catalogue),
        );
    }

    /// The open subgraph's path (empty at the top level).
    pub fn path(&self) -> Vec<String> {
        self.scope
            .as_ref()
            .map(|s| s.path.clone())
            .unwrap_or_default()
    }

    /// The id a run gives node `id` of the current view: its path through the open subgraphs
    /// (`outer/inner/id`, as the flattened graph names it), or `id` at the top level.
    pub fn flat_id(&self, id: &str) -> String {
        let prefix = self.path().join(nodes::subgraph::PATH_SEP);
        nodes::subgraph::join_path(&prefix, id)
    }

    /// Opens subgraph node `id` of the current view.
    pub fn enter(&mut self, id: &str, catalogue: &Catalogue) -> bool {
        let doc = self.to_doc(catalogue);
        let mut path = self.path();
        path.push(id.to_string());
        self.load_view(&doc, &path, catalogue);
        self.path() == path
    }

    /// Goes up to `depth` levels below the top (0: the top level), writing the open definition
    /// back.
    pub fn leave_to(&mut self, depth: usize, catalogue: &Catalogue) {
        let doc = self.to_doc(catalogue);
        let mut path = self.path();
        path.truncate(depth);
        self.load_view(&doc, &path, catalogue);
    }

    /// Replaces the editor's content with `doc` (an undoable edit), keeping the open subgraph
    /// when it still exists.
    pub fn replace(&mut self, doc: &GraphDoc, catalogue: &Catalogue) {
        let path = self.path();
        self.load_view(doc, &path, catalogue);
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

    /// Whether the document differs from the file, as of the last committed edit (see
    /// [`EditorDoc::commit_edits`]); cheap enough to ask every frame.
    pub fn dirty(&self, _catalogue: &Catalogue) -> bool {
        self.committed != self.saved
    }

    /// The graph's name for the user: its title, else its file's stem, else "untitled".
    pub fn display_name(&self) -> String {
        let title = self.committed.meta.title.trim();
        if !title.is_empty() {
            return title.to_string();
        }
        self.path
            .as_ref()
            .and_then(|p| p.file_stem())
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "untitled".into())
    }

    /// The window title: the graph's name, its file (or "not saved"), an unsaved-changes mark.
    pub fn window_title(&self, catalogue: &Catalogue) -> String {
        let file = self
            .path
            .as_ref()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "not saved".into());
        let mark = if self.dirty(catalogue) { "● " } else { "" };
        format!("{mark}{} ({file}) — Defect Studio", self.display_name())
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
        self.snarl.insert_node(pos, EditorNode::new(id, kind))
    }

    /// The snarl node holding document node `id`.
    pub fn find(&self, id: &str) -> Option<NodeId> {
        self.snarl
            .node_ids()
            .find(|(_, n)| n.id == id)
            .map(|(nid, _)| nid)
    }

    /// A document fragment holding `nodes`, the links among them and the definitions and
    /// assets they use (for copy and duplicate).
    pub fn fragment(&self, nodes: &[NodeId], catalogue: &Catalogue) -> GraphDoc {
        let full = self.view_doc(catalogue);
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
        frag.definitions = used_definitions(frag.nodes.values(), &full.definitions);
        let used = used_assets(&frag);
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
        let new_defs = frag
            .definitions
            .keys()
            .any(|k| !self.extra.definitions.contains_key(k));
        for (k, v) in &frag.definitions {
            self.extra
                .definitions
                .entry(k.clone())
                .or_insert_with(|| v.clone());
        }
        if new_defs {
            self.refresh_interfaces(catalogue);
        }
        let mut map: HashMap<String, NodeId> = HashMap::new();
        for (id, node) in &frag.nodes {
            let pos = frag
                .layout
                .get(id)
                .map(|l| Pos2::new(l.pos[0], l.pos[1]))
                .unwrap_or(Pos2::ZERO)
                + offset;
            let mut en = EditorNode::from_doc(id, node);
            en.id = self.fresh_id(&node.kind);
            let nid = self.snarl.insert_node(pos, en);
            map.insert(id.clone(), nid);
        }
        let ports = Ports::new(catalogue, &self.interfaces);
        for l in &frag.links {
            if let (Some(f), Some(t)) = (map.get(&l.from.0), map.get(&l.to.0)) {
                connect_named(&mut self.snarl, *f, &l.from.1, *t, &l.to.1, &ports);
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

    /// Removes assets no node refers to, at any depth (run before saving).
    pub fn prune_assets(&mut self, catalogue: &Catalogue) {
        let used = used_assets(&self.to_doc(catalogue));
        self.extra.assets.retain(|k, _| used.contains(k));
    }
}

/// Each link's place in `links`.
fn link_order(links: &[Link]) -> HashMap<(PortRef, PortRef), usize> {
    links
        .iter()
        .enumerate()
        .map(|(i, l)| ((l.from.clone(), l.to.clone()), i))
        .collect()
}

/// The interfaces of every definition of `doc` (those that are broken are left out: their
/// nodes show no ports, and validation names the problem).
fn interfaces_of(doc: &GraphDoc, catalogue: &Catalogue) -> Interfaces {
    doc.definitions
        .keys()
        .filter_map(|h| {
            nodes::subgraph::interface(doc, h, catalogue)
                .ok()
                .map(|i| (h.clone(), i))
        })
        .collect()
}

/// The asset keys a document's nodes (top level and definitions) refer to.
fn used_assets(doc: &GraphDoc) -> BTreeSet<String> {
    doc.nodes
        .values()
        .chain(doc.definitions.values().flat_map(|d| d.nodes.values()))
        .flat_map(|n| n.params.values())
        .filter_map(|v| v.as_str())
        .filter_map(|s| s.strip_prefix("asset:"))
        .map(str::to_string)
        .collect()
}

/// The definitions `nodes` use, nested ones included.
fn used_definitions<'a>(
    nodes: impl Iterator<Item = &'a NodeDoc>,
    all: &BTreeMap<String, Definition>,
) -> BTreeMap<String, Definition> {
    let mut out = BTreeMap::new();
    let mut todo: Vec<String> = nodes
        .filter_map(|n| n.subgraph.as_ref().map(|r| r.hash.clone()))
        .collect();
    while let Some(h) = todo.pop() {
        if out.contains_key(&h) {
            continue;
        }
        if let Some(d) = all.get(&h) {
            todo.extend(
                d.nodes
                    .values()
                    .filter_map(|n| n.subgraph.as_ref().map(|r| r.hash.clone())),
            );
            out.insert(h, d.clone());
        }
    }
    out
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
    ports: &Ports<'_>,
) -> bool {
    let (Some(fnode), Some(tnode)) = (snarl.get_node(from), snarl.get_node(to)) else {
        return false;
    };
    let (Some(o), Some(i)) = (
        ports.output_index(fnode, from_port),
        ports.input_index(tnode, to_port),
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

/// Builds a snarl from a graph. Nodes without a layout are placed in columns by depth.
fn build(
    nodes: &BTreeMap<String, NodeDoc>,
    links: &[Link],
    layout: &BTreeMap<String, NodeLayout>,
    ports: &Ports<'_>,
) -> Snarl<EditorNode> {
    let mut snarl = Snarl::new();
    let depth = depths(nodes, links);
    let mut per_column: HashMap<usize, f32> = HashMap::new();
    let mut ids: HashMap<&str, NodeId> = HashMap::new();
    for (id, node) in nodes {
        let (pos, collapsed) = match layout.get(id) {
            Some(l) => (Pos2::new(l.pos[0], l.pos[1]), l.collapsed),
            None => {
                let d = depth.get(id.as_str()).copied().unwrap_or(0);
                let y = per_column.entry(d).or_insert(40.0);
                let pos = Pos2::new(40.0 + d as f32 * 300.0, *y);
                *y += 260.0;
                (pos, false)
            }
        };
        let en = EditorNode::from_doc(id, node);
        let nid = if collapsed {
            snarl.insert_node_collapsed(pos, en)
        } else {
            snarl.insert_node(pos, en)
        };
        ids.insert(id, nid);
    }
    for l in links {
        if let (Some(f), Some(t)) = (ids.get(l.from.0.as_str()), ids.get(l.to.0.as_str())) {
            connect_named(&mut snarl, *f, &l.from.1, *t, &l.to.1, ports);
        }
    }
    snarl
}

/// Longest path from a source, per node (for automatic layout).
fn depths<'a>(nodes: &'a BTreeMap<String, NodeDoc>, links: &[Link]) -> HashMap<&'a str, usize> {
    let mut doc = GraphDoc::new();
    doc.nodes = nodes.clone();
    doc.links = links.to_vec();
    let mut depth: HashMap<&str, usize> = HashMap::new();
    let all: Vec<&str> = nodes.keys().map(String::as_str).collect();
    let order = doc.upstream_order(&all).unwrap_or_default();
    for id in &order {
        let d = doc
            .links_into(id)
            .filter_map(|l| depth.get(l.from.0.as_str()).map(|d| d + 1))
            .max()
            .unwrap_or(0);
        if let Some(k) = nodes.get_key_value(id.as_str()).map(|(k, _)| k.as_str()) {
            depth.insert(k, d);
        }
    }
    depth
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A document of the new format (frames, parameters as inputs, tags) loaded into the editor
    /// and saved unchanged gives the same JSON.
    #[test]
    fn a_document_round_trips_through_the_editor() {
        let catalogue = Catalogue::builtin();
        let mut doc = GraphDoc::from_json(super::super::EXAMPLE).unwrap();
        doc.frames.push(Frame {
            title: "plate".into(),
            color: "#336699".into(),
            nodes: vec!["plate".into(), "mark".into()],
        });
        doc.meta.tags = vec!["metal".into()];
        doc.nodes
            .get_mut("scratch")
            .unwrap()
            .param_inputs
            .insert("width".into());
        doc.nodes
            .get_mut("stamp")
            .unwrap()
            .param_inputs
            .insert("opacity".into());
        let text = doc.to_json();
        let ed = EditorDoc::new(&doc, &catalogue, None);
        assert_eq!(ed.to_doc(&catalogue).to_json(), text);
        // The parameter inputs are ports: after the kind's inputs, in parameter order.
        let ports = ed.ports(&catalogue);
        let scratch = ed.snarl.get_node(ed.find("scratch").unwrap()).unwrap();
        let spec = catalogue.get("ShapeMask").unwrap();
        let n = spec.input_ports().len();
        assert_eq!(ports.inputs(scratch), n + 1);
        let p = ports.input(scratch, n).unwrap();
        assert_eq!((p.name, p.param.map(|s| s.name)), ("width", Some("width")));
        assert_eq!(ports.input_index(scratch, "width"), Some(n));
    }

    /// The nested-subgraph golden file (instances two deep, exposed parameters at both levels, a
    /// parameter input fed by a Seed node, frames, reroutes) round-trips byte for byte, and
    /// opening any subgraph, one or two levels deep, and going up changes nothing.
    #[test]
    fn nested_subgraphs_round_trip_and_open_without_changes() {
        let catalogue = Catalogue::builtin();
        let text = include_str!("../../../nodes/tests/fixtures/nested_subgraphs.json");
        let doc = GraphDoc::from_json(text).unwrap();
        let mut ed = EditorDoc::new(&doc, &catalogue, None);
        assert_eq!(ed.to_doc(&catalogue).to_json(), text);
        let subgraphs = |ed: &EditorDoc| -> Vec<String> {
            ed.snarl
                .nodes()
                .filter(|n| n.subgraph.is_some())
                .map(|n| n.id.clone())
                .collect()
        };
        let top = subgraphs(&ed);
        assert!(!top.is_empty());
        let mut deep = 0;
        for id in top {
            assert!(ed.enter(&id, &catalogue), "cannot open {id}");
            assert_eq!(ed.to_doc(&catalogue).to_json(), text, "inside {id}");
            for inner in subgraphs(&ed) {
                assert!(ed.enter(&inner, &catalogue));
                assert_eq!(ed.path(), [id.clone(), inner.clone()]);
                assert_eq!(
                    ed.to_doc(&catalogue).to_json(),
                    text,
                    "inside {id} › {inner}"
                );
                deep += 1;
                ed.leave_to(1, &catalogue);
            }
            ed.leave_to(0, &catalogue);
            assert!(ed.scope.is_none());
            assert_eq!(ed.to_doc(&catalogue).to_json(), text);
        }
        assert!(deep > 0, "the fixture nests subgraphs");
    }
}
