//! The explorer (temporary stub for the lead's features module).

pub mod analysis_file;
pub mod features;
