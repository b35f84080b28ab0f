//! Defect Studio's front ends: the studio app and the `defect-studio` command line, one binary.
//!
//! - [`cli`]: the command-line contract (docs/ARCHITECTURE.md, "One path") (`run`, `validate`, `nodes`,
//!   `history`), built on clap. Every command goes through the engine's
//!   [`engine::Worker`] / [`engine::Executor`], the same code the studio window uses.
//! - [`fmt`]: small text formatting helpers both use ([`fmt::format_duration`]).
//! - [`graph_file`]: loading a graph document from a file with errors that name the file.
//!
//! - [`app`]: the studio window ([`app::StudioApp`], eframe with the wgpu renderer): the node
//!   editor (egui-snarl), inspector, mask painter, run queue, gallery and history. The binary
//!   opens it when run with no arguments.

pub mod app;
pub mod cli;
pub mod fmt;
pub mod graph_file;
