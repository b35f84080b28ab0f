//! `train-lora`: one engine training job, the same the studio's panel runs.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};

use crate::fmt::format_duration;

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

pub(crate) fn train_lora_cmd(a: &TrainLoraArgs) -> Result<i32> {
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
