//! The Defect Studio engine: it runs graphs and keeps what they make.
//!
//! - [`exec`]: the [`Executor`] runs the subgraph that the requested outputs need, in topological
//!   order, caching node outputs by input signature under an LRU memory budget, and reports
//!   [`Event`]s; a [`CancelToken`] stops it within one step. Node kinds are implemented as
//!   [`NodeFn`]s in a [`Registry`] ([`Registry::builtin`] for the shipped kinds), each taking
//!   one typed parameter struct ([`Registry::register_typed`], [`NodeCtx::params`]).
//! - [`run`]: batches ([`BatchJob`]: variations × folder items × sweep cells, sharded), the
//!   output folder, and the [`Worker`] thread that the studio and the CLI both drive;
//!   [`queue`]: the worker's queue (pause, reorder, remove, run next), kept in the store.
//! - [`store`]: the redb [`Store`] of graphs, runs, outputs, LoRA trainings
//!   ([`TrainingRecord`]), bookmarks, presets and settings, shared safely between processes.
//! - [`defects`]: defect generators (scratch, crack, dent, stain, chip, DRAEM, CutPaste, NSA
//!   with Poisson blending), each returning the image and its exact mask; [`cleanup`]:
//!   PatchMatch object removal.
//! - [`dataset`] and [`export`]: folder, COCO, YOLO and MVTec datasets with provenance, from
//!   one or several stores; [`contact`]: labelled contact sheets.
//! - [`files`]: finding the files a recipe names (models by name or path, inputs by path),
//!   and listing every missing one before a run.
//! - [`models`]: the model manager (folders, hashes, architectures, resolving a graph's model
//!   references), ISNet on candle and background removal, fetching and converting its weights.
//! - [`sd`]: the Stable Diffusion engine on candle: UNet, VAE and CLIP mirroring diffusers'
//!   weight names, single-file checkpoints, eight schedulers, txt2img/img2img/inpaint pipelines
//!   equal to diffusers', LoRA loading and LoRA training ([`sd::train`], run by the [`Worker`]
//!   as a [`sd::train::job::TrainJob`]).
//! - [`preprocess`]: control images for ControlNets without downloaded weights (Canny,
//!   soft edges, mask outlines and scribbles).
//! - [`image`], [`codec`], [`ops`], [`procedural`]: pixel buffers ([`Image`], [`Mask`]), file
//!   decoding/encoding with size limits, classical image operations, and procedural textures,
//!   noise and shapes.
//! - [`analysis`]: the Explorer's math on row-major `f32` matrices: PCA, t-SNE and UMAP maps,
//!   trustworthiness, cosine k-NN, near-duplicates, uniqueness, coverage (precision/recall, KID).
//! - [`explore`]: the explorer's catalogue: items (every output and imported photo) with
//!   tags and numeric fields, dataset import, and the query language evaluated from indexes.
//! - [`inspect`]: the inspection loop: train and evaluate defect classifiers and segmenters
//!   on EfficientNet-Lite0, metrics equal to scikit-learn's and anomalib's, and captions.
//! - [`recipes`]: the recipe library (folders, search, thumbnails), recipes as subgraph nodes
//!   and library references, and `.dsbundle` sharing.
//! - [`stats`]: usage statistics (images per day, recipes, node kinds, models, LoRAs, devices,
//!   failures, trainings) from running aggregates in the store; [`devices`]: the CPU, NVIDIA
//!   GPUs through NVML, and the default device.
//! - [`EngineError`]: the crate's error type; errors of a node name the node.

#![recursion_limit = "256"]

pub mod analysis;
pub mod cleanup;
pub mod codec;
pub mod contact;
pub mod dataset;
pub mod defects;
pub mod devices;
mod error;
pub mod exec;
pub mod explore;
pub mod export;
pub mod files;
pub mod hashing;
pub mod image;
pub mod inspect;
pub mod interop;
mod kinds;
pub mod models;
pub mod ops;
pub mod paths;
pub mod preprocess;
pub mod recipes;
pub mod sd;
pub mod stats;

pub mod procedural;
pub mod queue;
mod registry;
pub mod run;
pub mod store;
mod value;

pub use error::{EngineError, Result};
pub use exec::{
    CancelToken, Event, Executor, NodeCtx, NodeFn, OutputSink, Registry, RunOutcome, RunRequest,
    Saved,
};
pub use image::{Image, Mask};
pub use queue::{JobId, QueueEntry};
pub use run::{BatchEvent, BatchJob, BatchSummary, Worker, WorkerEvent};
pub use store::{RunRecord, RunStatus, Store, TrainingRecord};
pub use value::{Outputs, Value};
