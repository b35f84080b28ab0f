use crate::validate::ValidationErrors;

/// Everything that can go wrong while reading, migrating or validating a graph document.
#[derive(Debug, thiserror::Error)]
pub enum NodesError {
    #[error("malformed JSON at line {line}, column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("not a Defect Studio graph: \"format\" is {found}, expected \"{expected}\"")]
    WrongFormat {
        found: String,
        expected: &'static str,
    },
    #[error("graph file has no valid \"version\" number")]
    MissingVersion,
    #[error(
        "graph format version {found} is newer than this Defect Studio supports (up to {supported}); \
         update Defect Studio to open it"
    )]
    UnsupportedVersion { found: u64, supported: u32 },
    #[error("cannot migrate graph from version {from}: {message}")]
    Migration { from: u32, message: String },
    #[error("invalid graph document at {path}: {message}")]
    Schema { path: String, message: String },
    #[error("{0}")]
    Invalid(ValidationErrors),
    #[error("cannot parse value {} for {node}.{param}: {message}", crate::quote::quote(.value))]
    BadValue {
        node: String,
        param: String,
        value: String,
        message: String,
    },
    /// A subgraph edit that cannot be made (names the node or definition).
    #[error("{0}")]
    Subgraph(String),
}
