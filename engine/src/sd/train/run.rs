//! The run loop: [`train_lora`] prepares a [`LoraTrainer`], resumes it from its checkpoint if
//! asked, steps it to the end, and writes checkpoints and the LoRA as [`RunOptions`] say.

use std::path::{Path, PathBuf};

use super::{LoraTrainer, StepInfo, TrainConfig};
use crate::error::{EngineError, Result};
use crate::sd::model::SdModel;

/// Where to write, and how often.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The LoRA `.safetensors`.
    pub out: PathBuf,
    /// The checkpoint file; `None` = `<out stem>.ckpt.safetensors` beside `out`.
    pub checkpoint: Option<PathBuf>,
    /// Write a checkpoint (and the LoRA) every N steps; 0 = only at the end.
    pub save_every: usize,
    /// Continue from the checkpoint if it exists.
    pub resume: bool,
}

impl RunOptions {
    pub fn checkpoint_path(&self) -> PathBuf {
        self.checkpoint.clone().unwrap_or_else(|| {
            let stem = self
                .out
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "lora".into());
            self.out.with_file_name(format!("{stem}.ckpt.safetensors"))
        })
    }
}

/// How a run went.
#[derive(Clone, Debug)]
pub struct TrainSummary {
    pub steps: usize,
    /// The step the run started from (0, or the checkpoint's).
    pub resumed_from: usize,
    /// Adapted layers, UNet and text encoders.
    pub modules: usize,
    /// Of which in the text encoder(s) (0 unless the text encoder is trained).
    pub text_modules: usize,
    pub images: usize,
    pub class_images: usize,
    pub last_loss: Option<f32>,
}

/// What [`train_lora`] reports as it goes.
pub enum Progress<'a, 'm> {
    /// The trainer is ready (data cached, checkpoint restored): nothing trained yet this run.
    Ready(&'a LoraTrainer<'m>),
    /// An optimizer step is done; `saved` = a checkpoint and the LoRA were just written.
    Step {
        trainer: &'a LoraTrainer<'m>,
        info: StepInfo,
        saved: bool,
    },
}

/// Trains a LoRA: prepares the trainer, resumes from the checkpoint if asked, steps to
/// `cfg.steps` calling `on_progress` after each (an error from it — e.g.
/// [`EngineError::Cancelled`] — stops the run, keeping the last checkpoint), writes a
/// checkpoint and the LoRA every `save_every` steps and at the end.
pub fn train_lora(
    model: &SdModel,
    cfg: TrainConfig,
    data_dir: &Path,
    run: &RunOptions,
    on_progress: &mut dyn FnMut(Progress) -> Result<()>,
) -> Result<TrainSummary> {
    let ckpt = run.checkpoint_path();
    for file in [&run.out, &ckpt] {
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| EngineError::io(dir, e))?;
        }
    }
    let mut trainer = LoraTrainer::new(model, cfg, data_dir)?;
    if run.resume && ckpt.is_file() {
        trainer.load_checkpoint(&ckpt)?;
    }
    let resumed_from = trainer.step();
    on_progress(Progress::Ready(&trainer))?;
    let mut last_loss = None;
    while trainer.step() < trainer.config().steps {
        let info = trainer.train_step()?;
        last_loss = Some(info.loss);
        if !info.loss.is_finite() {
            return Err(EngineError::failed(format!(
                "train-lora: the loss became {} at step {} (lower the learning rate?)",
                info.loss, info.step
            )));
        }
        let saved = run.save_every > 0 && info.step % run.save_every == 0 && info.step < info.total;
        if saved {
            trainer.save_checkpoint(&ckpt)?;
            trainer.save_lora(&run.out)?;
        }
        on_progress(Progress::Step {
            trainer: &trainer,
            info,
            saved,
        })?;
    }
    trainer.save_checkpoint(&ckpt)?;
    trainer.save_lora(&run.out)?;
    Ok(TrainSummary {
        steps: trainer.step(),
        resumed_from,
        modules: trainer.num_modules(),
        text_modules: trainer.num_text_modules(),
        images: trainer.examples().len(),
        class_images: trainer.class_examples().len(),
        last_loss,
    })
}
