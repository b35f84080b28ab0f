//! The settings kept between launches.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::training::TrainForm;

/// Settings kept between launches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Output folder; `None` means the data folder's `outputs/`.
    pub out_dir: Option<PathBuf>,
    pub model_dirs: Vec<PathBuf>,
    /// `cpu`, or `cuda:N` in builds with the `cuda` feature.
    pub device: String,
    /// Memory budget of the node output cache, in MiB.
    pub cache_budget_mib: u64,
    pub recent: Vec<PathBuf>,
    pub show_inspector: bool,
    pub show_gallery: bool,
    pub run_count: u64,
    pub run_seed: u64,
    /// The Training panel's form.
    pub training: TrainForm,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            out_dir: None,
            model_dirs: vec![engine::paths::models_dir()],
            device: "cpu".into(),
            cache_budget_mib: 2048,
            recent: Vec::new(),
            show_inspector: true,
            show_gallery: true,
            run_count: 1,
            run_seed: 0,
            training: TrainForm::default(),
        }
    }
}
