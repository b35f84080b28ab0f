//! The ports of an editor node, one place for every caller (the canvas, the inspector, the
//! document conversion): a kind's declared inputs followed by the parameters the user turned
//! into inputs (`nodes::input_ports`), a subgraph node's interface, and a reroute's one `in` and
//! one `out` whose type is its source's.

use std::collections::HashMap;

use egui_snarl::{NodeId, Snarl};
use nodes::subgraph::{Interface, REROUTE_KIND, SUBGRAPH_KIND};
use nodes::{Catalogue, ParamSpec, PortType};

use super::super::doc::EditorNode;

/// The interfaces of a document's subgraph definitions, by definition hash.
pub type Interfaces = HashMap<String, Interface>;

/// One port as the editor shows it.
#[derive(Clone, Copy, Debug)]
pub struct Port<'a> {
    pub name: &'a str,
    /// `None`: any type (a reroute not fed yet).
    pub ty: Option<PortType>,
    pub optional: bool,
    pub doc: &'a str,
    /// A parameter shown as an input (its own or a kind's `.as_input()` one).
    pub param: Option<&'static ParamSpec>,
}

/// Resolves node ports through the catalogue and the document's subgraph interfaces.
#[derive(Clone, Copy)]
pub struct Ports<'a> {
    pub catalogue: &'a Catalogue,
    pub interfaces: &'a Interfaces,
}

impl<'a> Ports<'a> {
    pub fn new(catalogue: &'a Catalogue, interfaces: &'a Interfaces) -> Ports<'a> {
        Ports {
            catalogue,
            interfaces,
        }
    }

    fn interface(&self, node: &EditorNode) -> Option<&'a Interface> {
        if node.kind != SUBGRAPH_KIND {
            return None;
        }
        node.subgraph
            .as_ref()
            .and_then(|r| self.interfaces.get(&r.hash))
    }

    pub fn inputs(&self, node: &EditorNode) -> usize {
        if node.kind == REROUTE_KIND {
            return 1;
        }
        if let Some(i) = self.interface(node) {
            return i.inputs.len()
                + i.params
                    .iter()
                    .filter(|p| node.param_inputs.contains(&p.name))
                    .count();
        }
        self.catalogue
            .get(&node.kind)
            .map(|s| {
                s.input_ports().len()
                    + s.params
                        .iter()
                        .filter(|p| !p.input && node.param_inputs.contains(p.name))
                        .count()
            })
            .unwrap_or(0)
    }

    pub fn input(&self, node: &EditorNode, index: usize) -> Option<Port<'a>> {
        if node.kind == REROUTE_KIND {
            return (index == 0).then_some(Port {
                name: "in",
                ty: None,
                optional: false,
                doc: "a reroute point: passes its input on unchanged",
                param: None,
            });
        }
        if let Some(i) = self.interface(node) {
            // The interface's inputs, then its parameters shown as inputs (in parameter order).
            if let Some(p) = i.inputs.get(index) {
                return Some(Port {
                    name: &p.name,
                    ty: Some(p.ty),
                    optional: p.optional,
                    doc: &p.doc,
                    param: None,
                });
            }
            return i
                .params
                .iter()
                .filter(|p| node.param_inputs.contains(&p.name))
                .nth(index - i.inputs.len())
                .map(|p| Port {
                    name: &p.name,
                    ty: Some(PortType::of_param(&p.spec.kind)),
                    optional: true,
                    doc: &p.doc,
                    param: Some(p.spec),
                });
        }
        let s = self.catalogue.get(&node.kind)?;
        let declared = s.input_ports();
        if let Some(p) = declared.get(index) {
            return Some(Port {
                name: p.name,
                ty: Some(p.ty),
                optional: p.optional,
                doc: p.doc,
                param: s.params.iter().find(|q| q.input && q.name == p.name),
            });
        }
        s.params
            .iter()
            .filter(|p| !p.input && node.param_inputs.contains(p.name))
            .nth(index - declared.len())
            .map(|p| Port {
                name: p.name,
                ty: Some(PortType::of_param(&p.kind)),
                optional: true,
                doc: p.doc,
                param: Some(p),
            })
    }

    pub fn input_index(&self, node: &EditorNode, name: &str) -> Option<usize> {
        (0..self.inputs(node)).find(|i| self.input(node, *i).is_some_and(|p| p.name == name))
    }

    pub fn outputs(&self, node: &EditorNode) -> usize {
        if node.kind == REROUTE_KIND {
            return 1;
        }
        if let Some(i) = self.interface(node) {
            return i.outputs.len();
        }
        self.catalogue
            .get(&node.kind)
            .map(|s| s.outputs.len())
            .unwrap_or(0)
    }

    pub fn output(&self, node: &EditorNode, index: usize) -> Option<Port<'a>> {
        if node.kind == REROUTE_KIND {
            return (index == 0).then_some(Port {
                name: "out",
                ty: None,
                optional: false,
                doc: "what the reroute's input carries",
                param: None,
            });
        }
        if let Some(i) = self.interface(node) {
            return i.outputs.get(index).map(|p| Port {
                name: &p.name,
                ty: Some(p.ty),
                optional: false,
                doc: &p.doc,
                param: None,
            });
        }
        self.catalogue
            .get(&node.kind)?
            .outputs
            .get(index)
            .map(|p| Port {
                name: p.name,
                ty: Some(p.ty),
                optional: false,
                doc: p.doc,
                param: None,
            })
    }

    pub fn output_index(&self, node: &EditorNode, name: &str) -> Option<usize> {
        (0..self.outputs(node)).find(|i| self.output(node, *i).is_some_and(|p| p.name == name))
    }

    /// The type an output carries: its port's, or for a reroute its source's (followed through
    /// chains of reroutes; `None` when nothing feeds it).
    pub fn output_type(
        &self,
        snarl: &Snarl<EditorNode>,
        node: NodeId,
        index: usize,
    ) -> Option<PortType> {
        let mut cur = (node, index);
        // A chain of reroutes cannot be longer than the graph.
        for _ in 0..=snarl.nodes().count() {
            let n = snarl.get_node(cur.0)?;
            if n.kind != REROUTE_KIND {
                return self.output(n, cur.1).and_then(|p| p.ty);
            }
            let src = snarl
                .wires()
                .find(|(_, i)| i.node == cur.0 && i.input == 0)?
                .0;
            cur = (src.node, src.output);
        }
        None
    }

    /// Whether input `port` takes an output of type `from` (a parameter input takes a little
    /// more than its own type: `nodes::param_accepts`).
    pub fn accepts(port: &Port<'_>, from: PortType) -> bool {
        match (port.param, port.ty) {
            (Some(p), _) => nodes::param_accepts(&p.kind, from),
            (None, Some(ty)) => ty == from,
            (None, None) => true,
        }
    }

    /// The type an input takes: its port's, or for a reroute what it is fed (if anything).
    pub fn input_type(
        &self,
        snarl: &Snarl<EditorNode>,
        node: NodeId,
        index: usize,
    ) -> Option<PortType> {
        let n = snarl.get_node(node)?;
        if n.kind == REROUTE_KIND {
            return self.output_type(snarl, node, 0);
        }
        self.input(n, index).and_then(|p| p.ty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ports listed here are `nodes::input_ports`'s (same names, types, order) for every
    /// kind, with and without parameters turned into inputs: the canvas walks them without
    /// allocating, and must not drift from the executor's list.
    #[test]
    fn inputs_match_nodes_input_ports() {
        let catalogue = Catalogue::builtin();
        let interfaces = Interfaces::new();
        let ports = Ports::new(&catalogue, &interfaces);
        for spec in catalogue.specs() {
            // Their ports are dynamic: a reroute's type is its source's, a subgraph's are its
            // definition's (nested_subgraphs_round_trip_and_open_without_changes covers both).
            if spec.kind == REROUTE_KIND || spec.kind == SUBGRAPH_KIND {
                continue;
            }
            for every in [false, true] {
                let mut doc = nodes::NodeDoc::new(spec.kind, spec.version);
                let mut node = EditorNode::new("n".into(), spec.kind);
                if every {
                    for p in spec.params.iter().step_by(2) {
                        doc.param_inputs.insert(p.name.to_string());
                        node.param_inputs.insert(p.name.to_string());
                    }
                }
                let want: Vec<(&str, PortType)> = nodes::input_ports(spec, &doc)
                    .iter()
                    .map(|p| (p.name, p.ty))
                    .collect();
                let got: Vec<(&str, PortType)> = (0..ports.inputs(&node))
                    .filter_map(|i| ports.input(&node, i))
                    .map(|p| (p.name, p.ty.unwrap()))
                    .collect();
                assert_eq!(got, want, "{}", spec.kind);
            }
        }
    }
}
