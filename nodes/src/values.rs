//! The value kinds (category [`VALUES`]): one number, text, seed or choice, so one value can
//! drive parameters of several nodes (linked into parameters shown as inputs); and the graph
//! kinds (category [`GRAPH`]): [`REROUTE`] points and [`SUBGRAPH`] nodes, whose ports are
//! dynamic (a reroute's type is its source's, a subgraph's ports are its definition's
//! interface, see [`crate::subgraph`]) and which [`crate::subgraph::flatten`] removes before a
//! run.

use crate::catalogue::{NodeSpec, ParamSpec as P, PortSpec, PortType as T, Widget};

pub const VALUES: &str = "Values";
pub const GRAPH: &str = "Graph";

/// The range of the Int and Float value kinds.
const LIMIT: i64 = 1_000_000_000_000;

pub static INT: NodeSpec = NodeSpec {
    kind: "Int",
    version: 1,
    category: VALUES,
    doc: "One integer. Link it into integer (or float) parameters shown as inputs, so one value \
          drives several nodes.",
    inputs: &[],
    outputs: &[PortSpec::new("value", T::Int, "The integer.")],
    params: &[P::int("value", -LIMIT, LIMIT, 0, "The integer.")],
    deterministic: true,
    sink: false,
};

pub static FLOAT: NodeSpec = NodeSpec {
    kind: "Float",
    version: 1,
    category: VALUES,
    doc: "One number. Link it into number parameters shown as inputs, so one value drives \
          several nodes.",
    inputs: &[],
    outputs: &[PortSpec::new("value", T::Float, "The number.")],
    params: &[
        P::float("value", -LIMIT as f64, LIMIT as f64, 0.0, "The number.")
            .with_widget(Widget::DragValue),
    ],
    deterministic: true,
    sink: false,
};

pub static TEXT: NodeSpec = NodeSpec {
    kind: "Text",
    version: 1,
    category: VALUES,
    doc: "One text, e.g. a prompt shared by several nodes. A text parameter it feeds uses its own \
          text as a template ({input} marks where this text goes).",
    inputs: &[],
    outputs: &[PortSpec::new("value", T::Text, "The text.")],
    params: &[P::text("value", "", "The text.").with_widget(Widget::TextArea)],
    deterministic: true,
    sink: false,
};

pub static SEED: NodeSpec = NodeSpec {
    kind: "Seed",
    version: 1,
    category: VALUES,
    doc: "One seed: fixed, or from the run seed plus an offset (so --seed and --count vary it). \
          Its output is the resolved seed; link it into the seed parameters of several nodes to \
          keep them in step.",
    inputs: &[],
    outputs: &[PortSpec::new("value", T::Seed, "The resolved seed.")],
    params: &[P::seed(
        "seed",
        "The seed: fixed, or from the run seed plus an offset.",
    )],
    deterministic: true,
    sink: false,
};

pub static CHOICE: NodeSpec = NodeSpec {
    kind: "Choice",
    version: 1,
    category: VALUES,
    doc: "One choice (e.g. a blend mode or a scheduler) for the choice parameters it feeds; each \
          checks that the value is one of its options.",
    inputs: &[],
    outputs: &[PortSpec::new("value", T::Choice, "The chosen option.")],
    params: &[
        P::text("value", "", "The chosen option."),
        P::text(
            "options",
            "",
            "The allowed options, comma-separated; empty allows any value.",
        ),
    ],
    deterministic: true,
    sink: false,
};

pub static REROUTE: NodeSpec = NodeSpec {
    kind: crate::subgraph::REROUTE_KIND,
    version: 1,
    category: GRAPH,
    doc: "A reroute point: passes the value on its input \"in\" to its output \"out\", to tidy \
          long links. Its type is its source's. Removed before a run.",
    inputs: &[],
    outputs: &[],
    params: &[],
    deterministic: true,
    sink: false,
};

pub static SUBGRAPH: NodeSpec = NodeSpec {
    kind: crate::subgraph::SUBGRAPH_KIND,
    version: 1,
    category: GRAPH,
    doc: "A reusable block of nodes (a definition in the graph's \"definitions\" or the recipe \
          library). Its inputs, outputs and parameters are the ones the definition exposes. \
          Inlined before a run.",
    inputs: &[],
    outputs: &[],
    params: &[],
    deterministic: true,
    sink: false,
};
