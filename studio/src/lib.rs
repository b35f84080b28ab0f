//! Defect Studio's front ends: the studio app and the `defect-studio` command line, one binary.
//!
//! - [`cli`]: the command-line contract of DESIGN.md §3 (`run`, `validate`, `nodes`,
//!   `history`), built on clap. Every command goes through the engine's
//!   [`engine::Worker`] / [`engine::Executor`], the same code the studio window uses.
//! - [`graph_file`]: loading a graph document from a file with errors that name the file.
//!
//! The studio window (egui/eframe) lands with the GUI issue; until then running the binary with
//! no arguments explains how to use the CLI.

pub mod cli;
pub mod graph_file;
