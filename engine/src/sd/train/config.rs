//! Training settings: [`TrainConfig`] with its [`Targets`] and [`LrSchedule`], the checks a run
//! makes before it starts, and the fingerprint a resumed checkpoint must match.
//!
//! `TrainConfig` is the one place the settings and their defaults are defined. It serialises
//! flat (the targets' three switches sit beside the other fields); the CLI's `train-lora` flags
//! and the studio's Training form are built from its field table ([`super::fields::FIELDS`]), the
//! store's training record keeps its serialised form, and the resume fingerprint is that form
//! without the fields a resume may change.

use std::path::PathBuf;

use candle_core::DType;
use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};

/// The learning-rate curve after the warm-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LrSchedule {
    Constant,
    /// Half a cosine from the base rate to 0 over the steps after the warm-up.
    Cosine,
}

/// Which UNet layers get an adapter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Targets {
    /// Attention `to_q`, `to_k`, `to_v`, `to_out.0` (self and cross attention).
    pub attention: bool,
    /// Feed-forward `ff.net.0.proj` and `ff.net.2` of the transformer blocks.
    pub feed_forward: bool,
    /// Convolutions (kohya's LoCon `conv_dim`): ResNet `conv1`, `conv2`, `conv_shortcut`, and
    /// the down/upsampler convs.
    pub conv: bool,
}

impl Default for Targets {
    fn default() -> Self {
        Targets {
            attention: true,
            feed_forward: false,
            conv: false,
        }
    }
}

impl Targets {
    /// Whether the UNet weight `key` gets an adapter.
    pub(super) fn covers(&self, key: &str) -> bool {
        let ends = |list: &[&str]| list.iter().any(|s| key.ends_with(s));
        let in_transformer = key.contains(".transformer_blocks.");
        (self.attention
            && in_transformer
            && ends(&[
                ".to_q.weight",
                ".to_k.weight",
                ".to_v.weight",
                ".to_out.0.weight",
            ]))
            || (self.feed_forward
                && in_transformer
                && ends(&[".ff.net.0.proj.weight", ".ff.net.2.weight"]))
            || (self.conv
                && ((key.contains(".resnets.")
                    && ends(&[".conv1.weight", ".conv2.weight", ".conv_shortcut.weight"]))
                    || ends(&[".downsamplers.0.conv.weight", ".upsamplers.0.conv.weight"])))
    }
}

/// Training parameters. Missing fields take their defaults when deserialised.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    /// Optimizer steps.
    pub steps: usize,
    pub rank: usize,
    pub alpha: f64,
    pub lr: f64,
    pub warmup: usize,
    pub schedule: LrSchedule,
    /// Examples per micro-batch.
    pub batch: usize,
    /// Micro-batches per optimizer step.
    pub grad_accum: usize,
    /// Square training size in pixels (a multiple of 8).
    pub resolution: u32,
    pub seed: u64,
    /// The caption of images without a `.txt` file.
    pub instance_prompt: Option<String>,
    /// Min-SNR-γ loss weighting (Hang et al. 2023); `None` = plain MSE.
    pub min_snr_gamma: Option<f64>,
    #[serde(flatten)]
    pub targets: Targets,
    /// Random horizontal flips (both orientations are encoded once, before training).
    pub flip: bool,
    /// Cache a posterior sample (seeded) instead of the posterior mean.
    pub sample_latents: bool,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// dtype of the saved LoRA tensors (F32 or F16; `"f32"` / `"f16"` when serialised).
    #[serde(with = "save_dtype")]
    pub save_dtype: DType,
    /// Aspect-ratio bucketing instead of square centre crops.
    pub buckets: bool,
    /// DreamBooth class (regularisation) images, captioned with `class_prompt` where they have
    /// no `.txt` file.
    pub class_data: Option<PathBuf>,
    pub class_prompt: Option<String>,
    /// Weight of the class images' loss.
    pub prior_loss_weight: f64,
    /// Also train LoRA adapters on the text encoder(s) (every CLIP layer's attention
    /// q/k/v/out and MLP fc1/fc2). Off by default, as diffusers' training scripts; kohya's
    /// sd-scripts train it unless `--network_train_unet_only`.
    pub train_text_encoder: bool,
    /// Learning rate of the text-encoder adapters (same warm-up and schedule); `None` = `lr`
    /// (kohya's `text_encoder_lr`).
    pub text_encoder_lr: Option<f64>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            steps: 500,
            rank: 8,
            alpha: 8.0,
            lr: 1e-4,
            warmup: 0,
            schedule: LrSchedule::Constant,
            batch: 1,
            grad_accum: 1,
            resolution: 512,
            seed: 0,
            instance_prompt: None,
            min_snr_gamma: None,
            targets: Targets::default(),
            flip: true,
            sample_latents: false,
            weight_decay: 0.01,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            save_dtype: DType::F32,
            buckets: false,
            class_data: None,
            class_prompt: None,
            prior_loss_weight: 1.0,
            train_text_encoder: false,
            text_encoder_lr: None,
        }
    }
}

impl TrainConfig {
    /// The learning rate of optimizer step `step` (0-based): linear warm-up
    /// `lr·(step+1)/(warmup+1)`, then constant or cosine.
    pub fn lr_at(&self, step: usize) -> f64 {
        self.rate_at(self.lr, step)
    }

    /// The text-encoder adapters' learning rate at `step`:
    /// [`text_encoder_lr`](Self::text_encoder_lr) (or `lr`) under the same warm-up and schedule
    /// as [`lr_at`](Self::lr_at).
    pub fn text_encoder_lr_at(&self, step: usize) -> f64 {
        self.rate_at(self.text_encoder_lr.unwrap_or(self.lr), step)
    }

    /// `base` under the warm-up and schedule at step `step`.
    fn rate_at(&self, base: f64, step: usize) -> f64 {
        if step < self.warmup {
            return base * (step + 1) as f64 / (self.warmup + 1) as f64;
        }
        match self.schedule {
            LrSchedule::Constant => base,
            LrSchedule::Cosine => {
                let span = self.steps.saturating_sub(self.warmup).max(1) as f64;
                let p = ((step - self.warmup) as f64 / span).min(1.0);
                base * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
            }
        }
    }

    pub(super) fn check(&self) -> Result<()> {
        let bad = |m: &str| Err(EngineError::failed(format!("train-lora: {m}")));
        if self.rank == 0 {
            return bad("the rank must be at least 1");
        }
        if self.batch == 0 || self.grad_accum == 0 {
            return bad("batch and grad-accum must be at least 1");
        }
        if self.resolution == 0 || !self.resolution.is_multiple_of(8) {
            return bad("the resolution must be a positive multiple of 8");
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("the learning rate must be positive");
        }
        if let Some(te) = self.text_encoder_lr {
            if !(te.is_finite() && te >= 0.0) {
                return bad("the text encoder's learning rate must be 0 or more");
            }
        }
        if !matches!(self.save_dtype, DType::F32 | DType::F16) {
            return bad("LoRAs are saved in f32 or f16");
        }
        if !self.targets.attention && !self.targets.feed_forward && !self.targets.conv {
            return bad("no target layers");
        }
        if self.class_data.is_some() && self.class_prompt.is_none() {
            return bad("a class folder needs a class prompt");
        }
        if !(self.prior_loss_weight.is_finite() && self.prior_loss_weight >= 0.0) {
            return bad("the prior loss weight must be 0 or more");
        }
        Ok(())
    }

    /// What a checkpoint must agree on to be resumed: every setting but the step count (a run
    /// may be extended) and the saved dtype (it only affects the written file), as JSON.
    pub(super) fn fingerprint(&self) -> String {
        let c = TrainConfig {
            steps: 0,
            save_dtype: DType::F32,
            ..self.clone()
        };
        serde_json::to_string(&c).unwrap_or_else(|e| format!("unserialisable settings: {e}"))
    }

    /// Whether a checkpoint's fingerprint (see [`fingerprint`](Self::fingerprint)) agrees with
    /// these settings. Compared as JSON, with the text-encoder settings left out where they
    /// hold their defaults, so that a UNet-only checkpoint written before they existed still
    /// resumes.
    pub(super) fn fingerprint_matches(&self, saved: &str) -> bool {
        let norm = |text: &str| -> Option<serde_json::Value> {
            let mut v: serde_json::Value = serde_json::from_str(text).ok()?;
            let m = v.as_object_mut()?;
            if m.get("train_text_encoder") == Some(&serde_json::Value::Bool(false)) {
                m.remove("train_text_encoder");
            }
            if m.get("text_encoder_lr") == Some(&serde_json::Value::Null) {
                m.remove("text_encoder_lr");
            }
            Some(v)
        };
        match (norm(saved), norm(&self.fingerprint())) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        }
    }

    /// The names of the serialised fields, sorted (the targets' switches in place of
    /// `targets`).
    pub fn field_names() -> Vec<String> {
        match serde_json::to_value(TrainConfig::default()) {
            Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }
}

/// `save_dtype` as `"f32"` / `"f16"`.
mod save_dtype {
    use candle_core::DType;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &DType, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(d.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<DType, D::Error> {
        let text = String::deserialize(d)?;
        match text.as_str() {
            "f32" => Ok(DType::F32),
            "f16" => Ok(DType::F16),
            other => Err(serde::de::Error::custom(format!(
                "save_dtype `{other}`: LoRAs are saved in f32 or f16"
            ))),
        }
    }
}
