//! `evaluate --model MODEL --data DIR`: a trained detector on a held-out labelled folder,
//! through `engine::inspect::evaluate` (the studio's Inspection window uses the same): a short
//! table (or the full JSON report with every image's path, label and score), `roc.png` and
//! `pr.png`, and the result stored with the model and data hashes. `history --evaluations`
//! lists the stored evaluations.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Result;
use engine::inspect::evaluate::{run_evaluation, EvalJob, EvalOptions};
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
    let store_path = a.store.clone().unwrap_or_else(engine::paths::store_path);
    let job = EvalJob {
        model: a.model.clone(),
        data: a.data.clone(),
        device: a.device.clone(),
        plots: a.plots.clone(),
        store: Some(store_path.clone()),
        opts: EvalOptions {
            batch_size: a.batch_size.max(1),
            ..Default::default()
        },
    };
    let out = run_evaluation(&job, &mut bar())?;
    let rec = &out.record;
    for s in &rec.report.skipped {
        eprintln!("skipped {s}");
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rec.report)?);
    } else {
        print!("{}", rec.report.table());
        for p in &out.plots {
            println!("plot          {}", p.display());
        }
        println!(
            "stored        evaluation #{} in {} (model {}, data {})",
            out.id.unwrap_or_default(),
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
        let v = super::info::records_json(&list, |_, _| {});
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
