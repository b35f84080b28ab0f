//! kohya's `ss_*` metadata of a saved LoRA, and the base model's hashes it records.

use std::collections::BTreeMap;
use std::path::Path;

use super::{data, LoraTrainer, LrSchedule};
use crate::sd::model::Family;
use crate::sd::scheduler::config::Prediction;

impl LoraTrainer<'_> {
    /// kohya's `ss_*` metadata for the saved LoRA.
    pub fn metadata(&self) -> BTreeMap<String, String> {
        let c = &self.cfg;
        let model_name = Path::new(&self.model.source)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.model.source.clone());
        let v2 = self.model.family == Family::Sd2;
        let xl = self.model.family == Family::Sdxl;
        let tags = data::tag_frequency(&self.data_dir, &self.examples);
        let mut m = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            m.insert(k.to_string(), v);
        };
        put(
            "ss_base_model_version",
            match (xl, v2) {
                (true, _) => "sdxl_base_v1-0",
                (_, true) => "sd_v2",
                _ => "sd_v1",
            }
            .into(),
        );
        put("ss_v2", if v2 { "True" } else { "False" }.into());
        put(
            "ss_v_parameterization",
            if self.prediction == Prediction::VPrediction {
                "True"
            } else {
                "False"
            }
            .into(),
        );
        put("ss_sd_model_name", model_name);
        if let Some((sha, legacy)) = &self.model_hash {
            put("ss_new_sd_model_hash", sha.clone());
            put("ss_sd_model_hash", legacy.clone());
        }
        put(
            "ss_resolution",
            format!("({}, {})", c.resolution, c.resolution),
        );
        put("ss_max_train_steps", c.steps.to_string());
        put("ss_steps", self.step.to_string());
        put("ss_network_module", "networks.lora".into());
        put("ss_network_dim", c.rank.to_string());
        put("ss_network_alpha", format!("{}", c.alpha));
        // kohya: `--network_train_unet_only` ↔ not training the text encoder(s); for SDXL the
        // same key covers both encoders (both train or neither).
        put(
            "ss_network_train_unet_only",
            if c.train_text_encoder {
                "False"
            } else {
                "True"
            }
            .into(),
        );
        if c.targets.conv {
            put(
                "ss_network_args",
                serde_json::json!({"conv_dim": c.rank.to_string(), "conv_alpha": format!("{}", c.alpha)})
                    .to_string(),
            );
        }
        put("ss_learning_rate", format!("{}", c.lr));
        put("ss_unet_lr", format!("{}", c.lr));
        // The rate the text-encoder adapters used (kohya writes its `text_encoder_lr`, which
        // falls back to the learning rate); 0 when the text encoder is not trained.
        put(
            "ss_text_encoder_lr",
            if c.train_text_encoder {
                format!("{}", c.text_encoder_lr.unwrap_or(c.lr))
            } else {
                "0".into()
            },
        );
        put(
            "ss_lr_scheduler",
            match c.schedule {
                LrSchedule::Constant => "constant_with_warmup",
                LrSchedule::Cosine => "cosine_with_warmup",
            }
            .into(),
        );
        put("ss_lr_warmup_steps", c.warmup.to_string());
        put("ss_train_batch_size", c.batch.to_string());
        put("ss_gradient_accumulation_steps", c.grad_accum.to_string());
        put("ss_optimizer", "AdamW".into());
        put("ss_seed", c.seed.to_string());
        put(
            "ss_min_snr_gamma",
            c.min_snr_gamma
                .map(|g| g.to_string())
                .unwrap_or_else(|| "None".into()),
        );
        put("ss_flip_aug", if c.flip { "True" } else { "False" }.into());
        put("ss_num_train_images", self.examples.len().to_string());
        put("ss_num_reg_images", self.class_examples.len().to_string());
        put("ss_prior_loss_weight", format!("{}", c.prior_loss_weight));
        put(
            "ss_enable_bucket",
            if c.buckets { "True" } else { "False" }.into(),
        );
        if c.buckets {
            let mut counts: BTreeMap<String, u64> = BTreeMap::new();
            for ex in &self.data {
                let d = ex.latents[0].dims();
                let f = self.model.vae_scale();
                *counts
                    .entry(format!("({}, {})", d[3] * f, d[2] * f))
                    .or_default() += 1;
            }
            put(
                "ss_bucket_info",
                serde_json::to_string(&counts).unwrap_or_else(|_| "{}".into()),
            );
        }
        put(
            "ss_tag_frequency",
            serde_json::to_string(&tags).unwrap_or_else(|_| "{}".into()),
        );
        put("ss_training_comment", "trained by Defect Studio".into());
        m
    }
}

/// The sha256 of a model file (for a diffusers folder: of its UNet weights; cached by the model
/// manager) and A1111's legacy hash (sha256 of the 64 KiB at offset 1 MiB, 8 hex digits), as kohya records them; `None`
/// when the file cannot be read.
pub(super) fn model_hashes(source: &Path) -> Option<(String, String)> {
    use std::io::{Read, Seek, SeekFrom};
    let file = if source.is_dir() {
        [
            "unet/diffusion_pytorch_model.safetensors",
            "unet/diffusion_pytorch_model.fp16.safetensors",
        ]
        .iter()
        .map(|f| source.join(f))
        .find(|p| p.is_file())?
    } else {
        source.to_path_buf()
    };
    // The manager's hash cache: a multi-GB checkpoint is hashed once, not at every run.
    let sha = crate::models::manager::ModelManager::default_dirs()
        .sha256(&file)
        .ok()?;
    let mut f = std::fs::File::open(&file).ok()?;
    let mut buf = vec![0u8; 0x10000];
    f.seek(SeekFrom::Start(0x100000)).ok()?;
    let n = f.read(&mut buf).ok()?;
    let legacy = crate::hashing::sha256_hex(&buf[..n]);
    Some((sha, legacy[..8].to_string()))
}
