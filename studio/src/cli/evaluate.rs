//! `evaluate --model MODEL --data DIR`: a trained detector on a held-out labelled folder,
//! through `engine::inspect::evaluate` (the studio's Inspection window uses the same): a short
//! table (or the full JSON report with every image's path, label and score), `roc.png` and
//! `pr.png`, and the result stored with the model and data hashes. `history --evaluations`
//! lists the stored evaluations.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result};
use engine::inspect::evaluate::{default_plot_dir, evaluate, write_plots, EvalOptions};
use engine::store::EvaluationRecord;
use engine::Store;

#[derive(clap::Args, Debug)]
pub struct EvaluateArgs {
    /// The trained detector (`train-classifier` / `train-segmenter` output, .safetensors).
    #[arg(long)]
    pub model: PathBuf,
    /// The labelled folder: MVTec AD category, images/ + masks/, class folders, or one of our
    /// exports.
    #[arg(long)]
    pub data: PathBuf,
    /// Print the full report as JSON (metrics, curves, every image's path, label and score).
    #[arg(long)]
    pub json: bool,
    /// Folder for roc.png and pr.png (default: `<model stem>-eval/` beside the model).
    #[arg(long, value_name = "DIR")]
    pub plots: Option<PathBuf>,
    /// Where the detector runs: cpu or cuda[:N].
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Images per batch.
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Store file (default: the user store).
    #[arg(long)]
    pub store: Option<PathBuf>,
}

/// A progress bar (on a terminal only).
fn bar() -> impl FnMut(usize, usize) {
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "scoring {bar:30} {pos}/{len} images ({eta} left)",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    move |done, total| {
        if let Some(b) = &bar {
            b.set_length(total as u64);
            b.set_position(done as u64);
            if done >= total {
                b.finish_and_clear();
            }
        }
    }
}

pub(crate) fn evaluate_cmd(a: &EvaluateArgs) -> Result<i32> {
    let data = std::path::absolute(&a.data).unwrap_or_else(|_| a.data.clone());
    let set = engine::inspect::data::read_dataset(&data)?;
    for s in &set.skipped {
        eprintln!("skipped {s}");
    }
    let device = engine::sd::nodes::parse_device(&a.device)?;
    let scorer = engine::inspect::load_scorer(&a.model, &device)
        .with_context(|| format!("cannot load the detector {}", a.model.display()))?;
    let opts = EvalOptions {
        batch_size: a.batch_size.max(1),
        ..Default::default()
    };
    let report = evaluate(scorer.as_ref(), &set, &opts, &mut bar())?;
    let plot_dir = a
        .plots
        .clone()
        .unwrap_or_else(|| default_plot_dir(&a.model));
    let plots = write_plots(&report, &plot_dir)?;
    let store_path = a.store.clone().unwrap_or_else(engine::paths::store_path);
    let model = std::path::absolute(&a.model).unwrap_or_else(|_| a.model.clone());
    let rec = EvaluationRecord::new(&model.display().to_string(), report);
    let id = Store::open(&store_path)?.add_evaluation(&rec)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rec.report)?);
    } else {
        print!("{}", rec.report.table());
        for p in &plots {
            println!("plot          {}", p.display());
        }
        println!(
            "stored        evaluation #{id} in {} (model {}, data {})",
            store_path.display(),
            short(&rec.model_sha256),
            short(&rec.data_hash)
        );
    }
    Ok(0)
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// `history --evaluations`: every stored evaluation, oldest first.
pub(crate) fn evaluations_cmd(json: bool, store: Option<PathBuf>) -> Result<i32> {
    let path = store.unwrap_or_else(engine::paths::store_path);
    let list = if path.exists() {
        Store::open_read_only(&path)?.evaluations()?
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
                }
                v
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    if list.is_empty() {
        println!("no evaluations yet ({})", path.display());
    }
    for (id, r) in &list {
        let pixel = r
            .report
            .pixel
            .as_ref()
            .map(|p| format!("  pixel AUROC {:.4}  PRO {:.4}", p.auroc, p.pro))
            .unwrap_or_default();
        println!(
            "#{id:<4} {}  AUROC {:.4}  AP {:.4}  F1 {:.4}{pixel}  {} images  {}  on {}",
            engine::store::format_utc(r.created_ms),
            r.report.auroc,
            r.report.ap,
            r.report.f1.f1,
            r.report.images,
            r.model_path,
            r.data_dir
        );
    }
    Ok(0)
}
