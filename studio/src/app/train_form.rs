//! The Training panel's form: [`TrainForm`] holds what the user chose (base model, data folder,
//! DreamBooth class folder, parameters; persisted with the settings), [`TRAIN_PRESETS`] and the
//! user's presets in the store fill in the parameters, and [`TrainForm::to_job`] makes the
//! engine job.

use std::path::PathBuf;

use engine::sd::train::job::{SampleSpec, TrainJob};
use engine::sd::train::{LrSchedule, RunOptions, Targets, TrainConfig};
use serde::{Deserialize, Serialize};

/// The store's preset kind for training settings.
pub const PRESET_KIND: &str = "train-lora";

/// What the user chose in the panel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainForm {
    /// The LoRA's name: `<models>/loras/<name>.safetensors`.
    pub name: String,
    /// Base checkpoint: a path, or a name in the model folders.
    pub model: String,
    pub data: String,
    /// Caption of images without a `.txt` file.
    pub instance_prompt: String,
    /// DreamBooth class images (empty = none).
    pub class_data: String,
    pub class_prompt: String,
    pub prior_weight: f64,
    pub steps: usize,
    pub rank: usize,
    pub alpha: f64,
    pub lr: f64,
    pub warmup: usize,
    pub cosine: bool,
    pub batch: usize,
    pub grad_accum: usize,
    pub resolution: u32,
    pub seed: u64,
    /// Min-SNR-γ; 0 = off.
    pub min_snr: f64,
    pub feed_forward: bool,
    /// Convolution layers too (LoCon).
    pub conv: bool,
    pub flip: bool,
    pub buckets: bool,
    pub save_every: usize,
    /// 0 = no samples.
    pub sample_every: usize,
    pub sample_prompt: String,
    pub sample_steps: usize,
    pub resume: bool,
}

impl Default for TrainForm {
    fn default() -> Self {
        TrainForm {
            name: "my-defect-lora".into(),
            model: String::new(),
            data: String::new(),
            instance_prompt: String::new(),
            class_data: String::new(),
            class_prompt: String::new(),
            prior_weight: 1.0,
            steps: 1000,
            rank: 16,
            alpha: 16.0,
            lr: 1e-4,
            warmup: 50,
            cosine: true,
            batch: 1,
            grad_accum: 1,
            resolution: 512,
            seed: 0,
            min_snr: 5.0,
            feed_forward: false,
            conv: false,
            flip: true,
            buckets: true,
            save_every: 100,
            sample_every: 100,
            sample_prompt: String::new(),
            sample_steps: 20,
            resume: true,
        }
    }
}

/// The parameters a preset sets (everything but the model, the data and the name).
const PRESET_FIELDS: &[&str] = &[
    "prior_weight",
    "steps",
    "rank",
    "alpha",
    "lr",
    "warmup",
    "cosine",
    "batch",
    "grad_accum",
    "resolution",
    "min_snr",
    "feed_forward",
    "conv",
    "flip",
    "buckets",
    "save_every",
    "sample_every",
    "sample_steps",
];

/// Built-in presets: (name, what it is for, the fields it sets).
pub const TRAIN_PRESETS: &[(&str, &str, &str)] = &[
    (
        "Defect look (SD 1.5, 512²)",
        "A defect's appearance (texture too: conv layers) from 20–100 cropped photos with captions.",
        r#"{"steps": 1500, "rank": 16, "alpha": 16, "lr": 1e-4, "warmup": 100, "cosine": true,
            "batch": 1, "grad_accum": 2, "resolution": 512, "min_snr": 5, "feed_forward": false,
            "conv": true, "flip": true, "buckets": true, "save_every": 250, "sample_every": 250}"#,
    ),
    (
        "Product identity (DreamBooth)",
        "One product from 5–20 photos, one instance prompt and a class folder.",
        r#"{"steps": 800, "rank": 32, "alpha": 16, "lr": 1e-4, "warmup": 50, "cosine": false,
            "batch": 1, "grad_accum": 1, "resolution": 512, "min_snr": 5, "feed_forward": true,
            "flip": false, "buckets": true, "prior_weight": 1.0, "save_every": 200,
            "sample_every": 200}"#,
    ),
    (
        "Quick look (CPU)",
        "A few hundred steps at 256² to check data and captions before a long run.",
        r#"{"steps": 200, "rank": 4, "alpha": 4, "lr": 3e-4, "warmup": 10, "cosine": false,
            "batch": 1, "grad_accum": 1, "resolution": 256, "min_snr": 5, "feed_forward": false,
            "flip": true, "buckets": false, "save_every": 50, "sample_every": 50,
            "sample_steps": 12}"#,
    ),
    (
        "Low memory",
        "Batch 1 with 4 accumulated micro-batches and rank 8.",
        r#"{"rank": 8, "alpha": 8, "batch": 1, "grad_accum": 4, "feed_forward": false}"#,
    ),
];

impl TrainForm {
    /// The preset fields of this form, as stored.
    pub fn preset_value(&self) -> serde_json::Value {
        let all = serde_json::to_value(self).unwrap_or_default();
        let mut out = serde_json::Map::new();
        for f in PRESET_FIELDS {
            if let Some(v) = all.get(*f) {
                out.insert((*f).to_string(), v.clone());
            }
        }
        serde_json::Value::Object(out)
    }

    /// This form with the preset's fields set (unknown fields ignored).
    pub fn with_preset(&self, preset: &serde_json::Value) -> TrainForm {
        let mut all = serde_json::to_value(self).unwrap_or_default();
        if let (Some(dst), Some(src)) = (all.as_object_mut(), preset.as_object()) {
            for (k, v) in src {
                if PRESET_FIELDS.contains(&k.as_str()) {
                    dst.insert(k.clone(), v.clone());
                }
            }
        }
        serde_json::from_value(all).unwrap_or_else(|_| self.clone())
    }

    /// Where the LoRA goes: the models folder's `loras/`, so that the model manager and the
    /// LoraLoader node find it by name.
    pub fn lora_path(&self) -> PathBuf {
        engine::paths::models_dir()
            .join("loras")
            .join(format!("{}.safetensors", self.name.trim()))
    }

    /// The run's working folder (checkpoint and samples).
    pub fn work_dir(&self) -> PathBuf {
        engine::paths::home()
            .join("training")
            .join(self.name.trim())
    }

    /// The engine job, or what is missing.
    pub fn to_job(&self, device: &str) -> Result<TrainJob, String> {
        let name = self.name.trim();
        if name.is_empty()
            || name.starts_with('.')
            || name.contains(['/', '\\', ':'])
            || name.chars().any(char::is_control)
        {
            return Err("Give the LoRA a file name (no slashes).".into());
        }
        if self.model.trim().is_empty() {
            return Err("Choose the base model.".into());
        }
        let data = PathBuf::from(self.data.trim());
        if !data.is_dir() {
            return Err(format!(
                "The data folder {} does not exist.",
                data.display()
            ));
        }
        let class_data =
            (!self.class_data.trim().is_empty()).then(|| PathBuf::from(self.class_data.trim()));
        if class_data.is_some() && self.class_prompt.trim().is_empty() {
            return Err("A class folder needs a class prompt.".into());
        }
        if self.sample_every > 0 && self.sample_prompt.trim().is_empty() {
            return Err("Sample images need a sample prompt (or set 'every' to 0).".into());
        }
        let text = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
        let cfg = TrainConfig {
            steps: self.steps,
            rank: self.rank,
            alpha: self.alpha,
            lr: self.lr,
            warmup: self.warmup,
            schedule: if self.cosine {
                LrSchedule::Cosine
            } else {
                LrSchedule::Constant
            },
            batch: self.batch,
            grad_accum: self.grad_accum,
            resolution: self.resolution,
            seed: self.seed,
            instance_prompt: text(&self.instance_prompt),
            min_snr_gamma: (self.min_snr > 0.0).then_some(self.min_snr),
            targets: Targets {
                attention: true,
                feed_forward: self.feed_forward,
                conv: self.conv,
            },
            flip: self.flip,
            buckets: self.buckets,
            class_data,
            class_prompt: text(&self.class_prompt),
            prior_loss_weight: self.prior_weight,
            ..TrainConfig::default()
        };
        let work = self.work_dir();
        Ok(TrainJob {
            model: self.model.trim().to_string(),
            device: device.to_string(),
            dtype: "auto".into(),
            data,
            cfg,
            run: RunOptions {
                out: self.lora_path(),
                checkpoint: Some(work.join(format!("{name}.ckpt.safetensors"))),
                save_every: self.save_every,
                resume: self.resume,
            },
            sample: text(&self.sample_prompt).map(|prompt| SampleSpec {
                every: self.sample_every,
                prompt,
                negative: None,
                steps: self.sample_steps.max(1),
                cfg: 7.5,
                seed: self.seed,
            }),
            samples_dir: Some(work.join("samples")),
            store: Some(engine::paths::store_path()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_set_only_parameters() {
        let form = TrainForm {
            model: "base.safetensors".into(),
            data: "/data".into(),
            name: "mine".into(),
            ..TrainForm::default()
        };
        for (name, _, json) in TRAIN_PRESETS {
            let v: serde_json::Value = serde_json::from_str(json).expect(name);
            let keys: Vec<&String> = v.as_object().expect(name).keys().collect();
            for k in &keys {
                assert!(PRESET_FIELDS.contains(&k.as_str()), "{name}: {k}");
            }
            let f = form.with_preset(&v);
            assert_eq!(f.model, "base.safetensors");
            assert_eq!(f.data, "/data");
            assert_eq!(f.name, "mine");
            assert_eq!(
                f.preset_value().get("rank"),
                Some(&serde_json::json!(f.rank))
            );
        }
        let quick: serde_json::Value = serde_json::from_str(TRAIN_PRESETS[2].2).expect("quick");
        let f = form.with_preset(&quick);
        assert_eq!((f.steps, f.rank, f.resolution), (200, 4, 256));
        // A user preset round-trips.
        assert_eq!(form.with_preset(&f.preset_value()), f.clone());
    }

    #[test]
    fn the_form_says_what_is_missing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut f = TrainForm {
            sample_every: 0,
            ..TrainForm::default()
        };
        assert!(f.to_job("cpu").unwrap_err().contains("base model"));
        f.model = "m.safetensors".into();
        f.data = dir.path().join("missing").display().to_string();
        assert!(f.to_job("cpu").unwrap_err().contains("does not exist"));
        f.data = dir.path().display().to_string();
        f.class_data = dir.path().display().to_string();
        assert!(f.to_job("cpu").unwrap_err().contains("class prompt"));
        f.class_prompt = "a photo of a part".into();
        f.name = "../escape".into();
        assert!(f.to_job("cpu").unwrap_err().contains("file name"));
        f.name = "ok".into();
        let job = f.to_job("cpu").expect("job");
        assert!(job.run.out.ends_with("loras/ok.safetensors"));
        assert_eq!(job.cfg.class_prompt.as_deref(), Some("a photo of a part"));
        f.sample_every = 10;
        assert!(f.to_job("cpu").unwrap_err().contains("sample prompt"));
    }
}
