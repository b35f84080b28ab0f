//! `train-lora`: one engine training job, the same the studio's panel runs.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};
use engine::sd::train::{fields, TrainConfig};

use crate::fmt::format_duration;

/// The options of `train-lora`: the files, the job's own options, and every training setting
/// as a flag ([`ConfigArgs`]).
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
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Write a checkpoint (and the LoRA) every N steps (0 = only at the end).
    #[arg(long, default_value_t = 0)]
    pub save_every: usize,
    /// Continue from OUT's checkpoint (<out stem>.ckpt.safetensors) if there is one.
    #[arg(long)]
    pub resume: bool,
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

/// Flags that were renamed when the settings became one table: (earlier flag, setting).
const RENAMED: &[(&str, &str)] = &[
    ("min-snr", "min_snr_gamma"),
    ("ff", "feed_forward"),
    ("prior-weight", "prior_loss_weight"),
];

/// Earlier switches that set a setting to one value: (flag, setting, value).
const LEGACY_SWITCHES: &[(&str, &str, &str)] = &[
    ("no-flip", "flip", "false"),
    ("f16", "save_dtype", "f16"),
    ("cosine", "schedule", "cosine"),
];

/// The training settings as flags, one per row of the engine's field table
/// ([`engine::sd::train::fields::FIELDS`]): `--rank 16`, `--schedule cosine`,
/// `--min-snr-gamma 5`, `--flip=false`, a bare `--buckets`. Omitted flags keep
/// [`TrainConfig::default`]'s values, which the help shows.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigArgs(pub TrainConfig);

impl clap::Args for ConfigArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        let defaults = serde_json::to_value(TrainConfig::default()).unwrap_or_default();
        let cmd = fields::FIELDS.iter().fold(cmd, |cmd, f| {
            let default = fields::value_text(&defaults[f.name])
                .map(|d| format!(" [default: {d}]"))
                .unwrap_or_default();
            let values = match f.kind {
                fields::FieldKind::Choice(options) => format!(" ({})", options.join(", ")),
                _ => String::new(),
            };
            let arg = clap::Arg::new(f.name)
                .long(f.flag)
                .help(format!("{}{values}{default}", f.doc))
                .value_parser(clap::value_parser!(String))
                .action(clap::ArgAction::Set)
                .aliases(
                    RENAMED
                        .iter()
                        .filter(|(_, field)| *field == f.name)
                        .map(|(old, _)| *old),
                );
            cmd.arg(match f.kind {
                // `--buckets` alone means true; `--flip=false` turns a default off.
                fields::FieldKind::Bool => arg
                    .num_args(0..=1)
                    .require_equals(true)
                    .default_missing_value("true")
                    .value_name("BOOL"),
                _ => arg.num_args(1),
            })
        });
        // Earlier spellings stay accepted (users' scripts call them), hidden from the help.
        LEGACY_SWITCHES.iter().fold(cmd, |cmd, (old, _, _)| {
            cmd.arg(
                clap::Arg::new(*old)
                    .long(*old)
                    .hide(true)
                    .action(clap::ArgAction::SetTrue),
            )
        })
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl clap::FromArgMatches for ConfigArgs {
    fn from_arg_matches(m: &clap::ArgMatches) -> std::result::Result<Self, clap::Error> {
        let mut a = ConfigArgs(TrainConfig::default());
        a.update_from_arg_matches(m)?;
        Ok(a)
    }

    fn update_from_arg_matches(
        &mut self,
        m: &clap::ArgMatches,
    ) -> std::result::Result<(), clap::Error> {
        let mut given: Vec<(&str, String)> = Vec::new();
        for (old, field, value) in LEGACY_SWITCHES {
            if m.try_get_one::<bool>(old).ok().flatten() == Some(&true) {
                given.push((field, value.to_string()));
            }
        }
        for f in fields::FIELDS {
            if let Ok(Some(v)) = m.try_get_one::<String>(f.name) {
                given.push((f.name, v.clone()));
            }
        }
        self.0 = fields::with_values(&self.0, given.iter().map(|(n, v)| (*n, v.as_str())))
            .map_err(|e| {
                clap::Error::raw(clap::error::ErrorKind::ValueValidation, format!("{e}\n"))
            })?;
        Ok(())
    }
}

pub(crate) fn train_lora_cmd(a: &TrainLoraArgs) -> Result<i32> {
    use engine::sd::train::{self, job};
    if a.sample_every > 0 && a.sample_prompt.is_none() {
        bail!("--sample-every needs --sample-prompt");
    }
    let cfg = a.config.0.clone();
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
            seed: a.config.0.seed,
        }),
        samples_dir: None,
        store: Some(engine::paths::store_path()),
    };
    let bar = if std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new(train_job.cfg.steps as u64);
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
        "{}: {} steps{} on {} images{}, {} UNet modules{}, last loss {}; sha256 {}; checkpoint {}",
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
        summary.modules - summary.text_modules,
        if summary.text_modules > 0 {
            format!(" + {} text-encoder modules", summary.text_modules)
        } else {
            String::new()
        },
        summary
            .last_loss
            .map(|l| format!("{l:.4}"))
            .unwrap_or_else(|| "-".into()),
        &outcome.lora_sha256[..10.min(outcome.lora_sha256.len())],
        train_job.run.checkpoint_path().display()
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Args, FromArgMatches};

    fn command() -> clap::Command {
        TrainLoraArgs::augment_args(clap::Command::new("train-lora").no_binary_name(true))
    }

    fn parse(args: &[&str]) -> std::result::Result<TrainLoraArgs, clap::Error> {
        let mut all = vec!["--model", "m", "--data", "d", "--out", "o.safetensors"];
        all.extend_from_slice(args);
        let m = command().try_get_matches_from(all)?;
        TrainLoraArgs::from_arg_matches(&m)
    }

    #[test]
    fn every_setting_has_a_flag() {
        let cmd = command();
        cmd.clone().debug_assert();
        let ids: Vec<String> = cmd
            .get_arguments()
            .map(|a| a.get_id().to_string())
            .collect();
        for name in TrainConfig::field_names() {
            assert!(ids.contains(&name), "train-lora has no flag for `{name}`");
        }
    }

    #[test]
    fn omitted_flags_keep_the_config_defaults() {
        assert_eq!(parse(&[]).unwrap().config.0, TrainConfig::default());
        let a = parse(&[
            "--rank",
            "4",
            "--schedule",
            "cosine",
            "--min-snr-gamma",
            "5",
            "--flip=false",
            "--buckets",
            "--save-dtype",
            "f16",
            "--grad-accum",
            "2",
        ])
        .unwrap();
        let want = TrainConfig {
            rank: 4,
            schedule: engine::sd::train::LrSchedule::Cosine,
            min_snr_gamma: Some(5.0),
            flip: false,
            buckets: true,
            save_dtype: candle_core::DType::F16,
            grad_accum: 2,
            ..TrainConfig::default()
        };
        assert_eq!(a.config.0, want);
        let e = parse(&["--rank", "0"]).unwrap_err().to_string();
        assert!(e.contains("rank") && e.contains("1..="), "{e}");
    }

    #[test]
    fn text_encoder_flags_come_from_the_field_table() {
        let a = parse(&["--train-text-encoder", "--text-encoder-lr", "5e-5"]).unwrap();
        assert!(a.config.0.train_text_encoder);
        assert_eq!(a.config.0.text_encoder_lr, Some(5e-5));
        let b = parse(&["--train-text-encoder=false"]).unwrap();
        assert_eq!(b.config.0, TrainConfig::default());
        let help = command().render_long_help().to_string();
        assert!(
            help.contains("--train-text-encoder") && help.contains("--text-encoder-lr"),
            "{help}"
        );
        assert!(help.contains("network_train_unet_only"), "{help}");
    }

    #[test]
    fn earlier_flag_spellings_still_work() {
        let old = parse(&[
            "--min-snr",
            "5",
            "--ff",
            "--no-flip",
            "--f16",
            "--cosine",
            "--prior-weight",
            "0.5",
        ])
        .unwrap();
        let new = parse(&[
            "--min-snr-gamma",
            "5",
            "--feed-forward",
            "--flip=false",
            "--save-dtype",
            "f16",
            "--schedule",
            "cosine",
            "--prior-loss-weight",
            "0.5",
        ])
        .unwrap();
        assert_eq!(old.config.0, new.config.0);
        assert_ne!(old.config.0, TrainConfig::default());
        let help = command().render_long_help().to_string();
        assert!(
            !help.contains("--no-flip") && !help.contains("--min-snr "),
            "{help}"
        );
    }
}
