use std::path::PathBuf;

/// Everything that can go wrong in the engine. Errors that belong to a node name it.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A node failed; the message says why.
    #[error("node \"{node}\" ({kind}): {message}")]
    Node {
        node: String,
        kind: String,
        message: String,
    },
    /// Raised inside a node's code; the executor turns it into [`EngineError::Node`].
    #[error("{0}")]
    Failed(String),
    #[error("run cancelled")]
    Cancelled,
    /// A work item an inspection node turned down (FilterByScore, MaskFidelity with
    /// `action: reject`): the batch runner retries the item with its next retry seed, up to
    /// `max_attempts` tries in all (docs/ARCHITECTURE.md §15, *Retries*). Outside a batch it is
    /// an error like any other.
    #[error("node \"{node}\" rejected the item: {message}")]
    Rejected {
        node: String,
        message: String,
        max_attempts: u32,
    },
    #[error("invalid graph:\n{0}")]
    Invalid(nodes::ValidationErrors),
    #[error(transparent)]
    Graph(#[from] nodes::NodesError),
    /// The message includes the I/O error (not a `#[source]`, so a chained report such as
    /// anyhow's `{:#}` does not print it twice).
    #[error("{}: {err}", path.display())]
    Io { path: PathBuf, err: std::io::Error },
    #[error("store {}: {message}", path.display())]
    Store { path: PathBuf, message: String },
    #[error("{0}")]
    Plan(String),
    /// An A1111 "parameters" text could not be read (names the key and the value).
    #[error("A1111 parameters: {0}")]
    A1111(String),
    /// Bytes that are not a PNG we can read, or a chunk that could not be written.
    #[error("PNG: {0}")]
    Png(String),
    /// A ComfyUI file of a shape we do not understand (names the node and the field).
    #[error("ComfyUI workflow: {0}")]
    Comfy(String),
    /// Bad input to an analysis (maps, similarity, coverage): names the function and the problem.
    #[error("analysis: {0}")]
    Analysis(String),
    /// A torch pickle (`.pth`) we refuse or cannot read (names the global, opcode or tensor).
    #[error("torch pickle: {0}")]
    Pickle(String),
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A query that does not parse: the character position (0-based) and what was expected.
    #[error("query, at character {pos}: {message}")]
    Query { pos: usize, message: String },
    /// The inspection loop (training, evaluating, scoring, captioning): names the file, model or
    /// dataset and the problem.
    #[error("{0}")]
    Inspect(String),
    /// A dataset import that cannot go on (the file or archive is named).
    #[error("import {}: {message}", path.display())]
    Import { path: PathBuf, message: String },
    /// The recipe library or a `.dsbundle` (names the recipe or file and the problem).
    #[error("{0}")]
    Recipe(String),
    /// A device name that is not one, or a device a run cannot use (names the device and where
    /// it came from: the run's target or the default device).
    #[error("{0}")]
    Device(String),
}

impl EngineError {
    /// A failure inside a node, with a message for the user.
    pub fn failed(message: impl Into<String>) -> EngineError {
        EngineError::Failed(message.into())
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> EngineError {
        EngineError::Io {
            path: path.into(),
            err: source,
        }
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
