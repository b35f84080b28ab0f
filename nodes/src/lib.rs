//! The node catalogue and graph model of Defect Studio.
//!
//! Everything that knows what a node *is* reads this crate: the studio's editor, the engine's
//! executor, the CLI's `nodes` listing and the graph file format. It has no ML or GUI dependency.
//!
//! - [`NodeSpec`], [`PortSpec`], [`ParamSpec`]: a node kind, declared once as a `static` table
//!   with its typed ports ([`PortType`]) and named parameters ([`ParamKind`], [`Widget`]).
//! - [`Catalogue`]: the set of kinds; [`Catalogue::builtin`] holds the shipped ones
//!   (see [`builtin`]; the Stable Diffusion kinds are in [`diffusion`], the ControlNet kinds
//!   and control-image preprocessors in [`control`], the inspection kinds in [`inspect`]).
//! - A parameter may be fed by a link ([`ParamSpec::input`]): its kind then has an optional
//!   input port of the parameter's name ([`NodeSpec::input_ports`]); a linked Text fills the
//!   parameter's text as a template ([`fill_template`], [`TEXT_PLACEHOLDER`]).
//! - [`GraphDoc`]: the versioned JSON graph document (`"format": "defect-studio/graph"`), with
//!   named [`ParamValue`]s, [`Link`]s by port name, model references, embedded assets, layout and
//!   meta. [`GraphDoc::from_json`] migrates older versions ([`migrate`]) and refuses newer ones;
//!   [`GraphDoc::to_json`] writes the canonical, byte-stable form.
//! - [`subgraph`]: reusable blocks ([`subgraph::Definition`], kept in a document's
//!   `definitions` by content hash), inlined for the executor by [`subgraph::flatten`].
//! - [`diff`]: a readable, semantic diff of two documents ([`diff::diff`]).
//! - [`values`]: the value kinds (Int, Float, Text, Seed, Choice) and the graph kinds (Reroute,
//!   Subgraph). Any parameter may be shown as an input port (`NodeDoc::param_inputs`,
//!   [`input_ports`]) and fed by a link of a type it accepts ([`param_accepts`]).
//! - [`validate()`]: checks a document against a catalogue and returns every problem as a
//!   [`ValidationError`] that names the node, the port or parameter, and what was expected.
//! - [`typed`]: a node's effective parameters as the JSON object its executor's parameter
//!   struct deserialises from ([`typed::from_params`], [`typed::check_defaults`]).
//! - [`clip`] and [`quote`]: every message that echoes a user value quotes at most
//!   [`QUOTE_MAX`] characters of it.
//! - [`NodesError`]: the crate's error type.

pub mod builtin;
mod catalogue;
pub mod control;
mod defects;
pub mod diff;
pub mod diffusion;
mod dupkeys;
mod error;
mod graph;
pub mod inspect;
pub mod migrate;
mod quote;
pub mod schedulers;
pub mod subgraph;
pub mod typed;
mod validate;
pub mod values;

pub use catalogue::{
    fill_template, input_ports, param_accepts, param_port, Catalogue, FileRole, NodeSpec,
    ParamKind, ParamSpec, PortSpec, PortType, Widget, OUTPUT_TEMPLATE_VARS, TEXT_PLACEHOLDER,
    TEXT_PLACEHOLDER_ALIASES,
};
pub use error::NodesError;
pub use graph::{
    Asset, GraphDoc, Link, Meta, ModelRef, NodeDoc, NodeLayout, ParamValue, PortRef, SeedValue,
    FORMAT, VERSION,
};
pub use quote::{clip, quote, QUOTE_MAX};
pub use validate::{
    check_output_template, parse_hex_color, validate, validate_flat, Problem, ValidationError,
    ValidationErrors,
};
