//! Where Defect Studio keeps its files: the data folder (`DEFECT_STUDIO_HOME`, else
//! `dirs::data_dir()/defect-studio`) holds the store, the default output folder and models.

use std::path::PathBuf;

/// The environment variable that overrides the data folder (tests use it to isolate themselves).
pub const HOME_VAR: &str = "DEFECT_STUDIO_HOME";

/// The data folder.
pub fn home() -> PathBuf {
    match std::env::var_os(HOME_VAR) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => dirs::data_dir()
            .unwrap_or_else(|| PathBuf::from("."))
            .join("defect-studio"),
    }
}

/// The user store.
pub fn store_path() -> PathBuf {
    home().join("store.redb")
}

/// The default output folder.
pub fn default_out_dir() -> PathBuf {
    home().join("outputs")
}

/// The default model folder.
pub fn models_dir() -> PathBuf {
    home().join("models")
}
