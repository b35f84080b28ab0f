//! The Training panel's form: [`TrainForm`] holds what the user chose (base model, data folder,
//! the training settings as one [`TrainConfig`], the job's own options; persisted with the
//! settings), [`TRAIN_PRESETS`] and the user's presets in the store fill in the settings, and
//! [`TrainForm::to_job`] makes the engine job. The form's widgets for the settings are drawn
//! from the engine's field table ([`config_ui`]), so every setting of the config is on the form.

use std::path::PathBuf;

use engine::sd::train::fields::{self, FieldKind};
use engine::sd::train::job::{SampleSpec, TrainJob};
use engine::sd::train::{RunOptions, TrainConfig};
use serde::{Deserialize, Serialize};
use serde_json::Value;

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
    /// The training settings (serialised flat, beside the form's own fields).
    #[serde(flatten)]
    pub config: TrainConfig,
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
            config: TrainConfig::default(),
            save_every: 100,
            sample_every: 100,
            sample_prompt: String::new(),
            sample_steps: 20,
            resume: true,
        }
    }
}

/// Settings a preset leaves alone: they describe this run's data, not a way of training.
const NOT_IN_PRESETS: &[&str] = &["seed", "instance_prompt", "class_data", "class_prompt"];

/// The form's own fields a preset sets.
const FORM_PRESET_FIELDS: &[&str] = &["save_every", "sample_every", "sample_steps"];

/// Whether a preset may set the field `name`: every training setting but [`NOT_IN_PRESETS`],
/// and [`FORM_PRESET_FIELDS`].
fn is_preset_field(name: &str) -> bool {
    FORM_PRESET_FIELDS.contains(&name)
        || (fields::field(name).is_some() && !NOT_IN_PRESETS.contains(&name))
}

/// Built-in presets: (name, what it is for, the fields it sets).
pub const TRAIN_PRESETS: &[(&str, &str, &str)] = &[
    (
        "Defect look (SD 1.5, 512²)",
        "A defect's appearance (texture too: conv layers) from 20–100 cropped photos with captions.",
        r#"{"steps": 1500, "rank": 16, "alpha": 16, "lr": 1e-4, "warmup": 100,
            "schedule": "cosine", "batch": 1, "grad_accum": 2, "resolution": 512,
            "min_snr_gamma": 5, "feed_forward": false, "conv": true, "flip": true, "buckets": true,
            "save_every": 250, "sample_every": 250}"#,
    ),
    (
        "Product identity (DreamBooth)",
        "One product from 5–20 photos, one instance prompt and a class folder.",
        r#"{"steps": 800, "rank": 32, "alpha": 16, "lr": 1e-4, "warmup": 50,
            "schedule": "constant", "batch": 1, "grad_accum": 1, "resolution": 512,
            "min_snr_gamma": 5, "feed_forward": true, "flip": false, "buckets": true,
            "prior_loss_weight": 1.0, "save_every": 200, "sample_every": 200}"#,
    ),
    (
        "Quick look (CPU)",
        "A few hundred steps at 256² to check data and captions before a long run.",
        r#"{"steps": 200, "rank": 4, "alpha": 4, "lr": 3e-4, "warmup": 10,
            "schedule": "constant", "batch": 1, "grad_accum": 1, "resolution": 256,
            "min_snr_gamma": 5, "feed_forward": false, "flip": true, "buckets": false,
            "save_every": 50, "sample_every": 50, "sample_steps": 12}"#,
    ),
    (
        "Low memory",
        "Batch 1 with 4 accumulated micro-batches and rank 8.",
        r#"{"rank": 8, "alpha": 8, "batch": 1, "grad_accum": 4, "feed_forward": false}"#,
    ),
];

/// Names older versions of the form stored in user presets, and their settings now.
const LEGACY_PRESET_NAMES: &[(&str, &str)] = &[
    ("prior_weight", "prior_loss_weight"),
    ("min_snr", "min_snr_gamma"),
];

impl TrainForm {
    /// The preset fields of this form, as stored.
    pub fn preset_value(&self) -> Value {
        let all = serde_json::to_value(self).unwrap_or_default();
        let mut out = serde_json::Map::new();
        if let Some(all) = all.as_object() {
            for (k, v) in all {
                if is_preset_field(k) {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
        Value::Object(out)
    }

    /// This form with the preset's fields set (unknown fields ignored; the names of older
    /// presets are read too).
    pub fn with_preset(&self, preset: &Value) -> TrainForm {
        let mut all = serde_json::to_value(self).unwrap_or_default();
        if let (Some(dst), Some(src)) = (all.as_object_mut(), preset.as_object()) {
            for (k, v) in src {
                let mut v = v.clone();
                let k = match LEGACY_PRESET_NAMES.iter().find(|(old, _)| old == k) {
                    Some((_, new)) => {
                        // The old form's "min_snr: 0" meant off.
                        if *new == "min_snr_gamma" && v.as_f64() == Some(0.0) {
                            v = Value::Null;
                        }
                        new.to_string()
                    }
                    None if k == "cosine" => {
                        v = Value::from(if v.as_bool() == Some(true) {
                            "cosine"
                        } else {
                            "constant"
                        });
                        "schedule".to_string()
                    }
                    None => k.clone(),
                };
                if is_preset_field(&k) {
                    dst.insert(k, v);
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
        if self.config.class_data.is_some()
            && self
                .config
                .class_prompt
                .as_deref()
                .unwrap_or("")
                .trim()
                .is_empty()
        {
            return Err("A class folder needs a class prompt.".into());
        }
        if self.sample_every > 0 && self.sample_prompt.trim().is_empty() {
            return Err("Sample images need a sample prompt (or set 'every' to 0).".into());
        }
        let text = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
        let cfg = self.config.clone();
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
                seed: self.config.seed,
            }),
            samples_dir: Some(work.join("samples")),
            store: Some(engine::paths::store_path()),
        })
    }
}

/// The widgets of every training setting, one row per entry of the engine's field table (label,
/// tooltip, and a widget by kind). Returns whether a setting changed.
pub fn config_ui(ui: &mut egui::Ui, cfg: &mut TrainConfig) -> bool {
    let Ok(Value::Object(mut map)) = serde_json::to_value(&*cfg) else {
        return false;
    };
    let mut changed = false;
    egui::Grid::new("train-config")
        .num_columns(2)
        .striped(true)
        .show(ui, |ui| {
            for f in fields::FIELDS {
                let Some(v) = map.get_mut(f.name) else {
                    continue;
                };
                let label = ui.label(f.label).on_hover_text(f.doc);
                let r = field_ui(ui, f, v);
                changed |= r.changed();
                r.labelled_by(label.id).on_hover_text(f.doc);
                ui.end_row();
            }
        });
    if changed {
        match serde_json::from_value(Value::Object(map)) {
            Ok(c) => *cfg = c,
            Err(_) => return false,
        }
    }
    changed
}

/// One setting's widget, editing its serialised value.
fn field_ui(ui: &mut egui::Ui, f: &fields::ConfigField, v: &mut Value) -> egui::Response {
    match f.kind {
        FieldKind::Int { min, max } => {
            let mut x = v.as_u64().unwrap_or(min);
            let r = ui.add(egui::DragValue::new(&mut x).range(min..=max));
            if r.changed() {
                *v = Value::from(x);
            }
            r
        }
        FieldKind::Float { min, max } => {
            let mut x = v.as_f64().unwrap_or(min);
            let r = ui.add(float_value(&mut x, min, max));
            if r.changed() {
                *v = Value::from(x);
            }
            r
        }
        FieldKind::OptFloat { min, max } => {
            ui.horizontal(|ui| {
                let mut on = !v.is_null();
                let mut x = v.as_f64().unwrap_or(min.max(max.min(5.0)));
                let mut r = ui.checkbox(&mut on, "");
                if on {
                    r |= ui.add(float_value(&mut x, min, max));
                }
                if r.changed() {
                    *v = if on { Value::from(x) } else { Value::Null };
                }
                r
            })
            .inner
        }
        FieldKind::Bool => {
            let mut b = v.as_bool().unwrap_or(false);
            let r = ui.checkbox(&mut b, "");
            if r.changed() {
                *v = Value::Bool(b);
            }
            r
        }
        FieldKind::OptText | FieldKind::OptPath => {
            ui.horizontal(|ui| {
                let mut text = v.as_str().unwrap_or_default().to_string();
                let mut r = ui.add(egui::TextEdit::singleline(&mut text).desired_width(230.0));
                if f.kind == FieldKind::OptPath {
                    let pick = ui.small_button("…").on_hover_text("Choose a folder");
                    if pick.clicked() {
                        if let Some(p) = rfd::FileDialog::new().pick_folder() {
                            text = p.display().to_string();
                            r.mark_changed();
                        }
                    }
                }
                if r.changed() {
                    *v = if text.trim().is_empty() {
                        Value::Null
                    } else {
                        Value::String(text)
                    };
                }
                r
            })
            .inner
        }
        FieldKind::Choice(options) => {
            let mut current = v.as_str().unwrap_or_default().to_string();
            let mut r = egui::ComboBox::from_id_salt(f.name)
                .selected_text(current.clone())
                .show_ui(ui, |ui| {
                    let mut changed = false;
                    for o in options {
                        changed |= ui
                            .selectable_value(&mut current, o.to_string(), *o)
                            .changed();
                    }
                    changed
                });
            if r.inner == Some(true) {
                *v = Value::String(current);
                r.response.mark_changed();
            }
            r.response
        }
    }
}

/// A drag value for a float setting: scientific notation for small ones (learning rates).
fn float_value(x: &mut f64, min: f64, max: f64) -> egui::DragValue<'_> {
    let d = egui::DragValue::new(x).range(min..=max);
    if max <= 1.0 && min < 1e-3 {
        d.speed(min.max(1e-6))
            .custom_formatter(|v, _| format!("{v:.1e}"))
            .custom_parser(|s| s.trim().parse().ok())
    } else {
        d.speed(0.05)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_holds_every_setting() {
        let v = serde_json::to_value(TrainForm::default()).expect("form");
        for name in TrainConfig::field_names() {
            assert!(v.get(&name).is_some(), "the form lacks `{name}`");
        }
        // The form starts from the config's defaults, not from its own.
        assert_eq!(TrainForm::default().config, TrainConfig::default());
        let back: TrainForm = serde_json::from_value(v).expect("form back");
        assert_eq!(back, TrainForm::default());
    }

    #[test]
    fn presets_set_only_parameters() {
        let form = TrainForm {
            model: "base.safetensors".into(),
            data: "/data".into(),
            name: "mine".into(),
            config: TrainConfig {
                seed: 9,
                instance_prompt: Some("a part".into()),
                ..TrainConfig::default()
            },
            ..TrainForm::default()
        };
        for (name, _, json) in TRAIN_PRESETS {
            let v: Value = serde_json::from_str(json).expect(name);
            for k in v.as_object().expect(name).keys() {
                assert!(is_preset_field(k), "{name}: {k}");
            }
            let f = form.with_preset(&v);
            assert_eq!(f.model, "base.safetensors");
            assert_eq!(f.data, "/data");
            assert_eq!(f.name, "mine");
            assert_eq!(f.config.seed, 9);
            assert_eq!(f.config.instance_prompt.as_deref(), Some("a part"));
            assert_eq!(
                f.preset_value().get("rank"),
                Some(&serde_json::json!(f.config.rank))
            );
            assert!(f.preset_value().get("seed").is_none());
        }
        let quick: Value = serde_json::from_str(TRAIN_PRESETS[2].2).expect("quick");
        let f = form.with_preset(&quick);
        assert_eq!(
            (f.config.steps, f.config.rank, f.config.resolution),
            (200, 4, 256)
        );
        let look: Value = serde_json::from_str(TRAIN_PRESETS[0].2).expect("look");
        let f = form.with_preset(&look);
        assert_eq!(f.config.schedule, engine::sd::train::LrSchedule::Cosine);
        assert_eq!(f.config.min_snr_gamma, Some(5.0));
        // A user preset round-trips.
        assert_eq!(form.with_preset(&f.preset_value()), f.clone());
        // A preset saved by the old form still applies.
        let old = serde_json::json!({"cosine": true, "min_snr": 0, "prior_weight": 0.5});
        let f = form.with_preset(&old);
        assert_eq!(f.config.schedule, engine::sd::train::LrSchedule::Cosine);
        assert_eq!(f.config.min_snr_gamma, None);
        assert_eq!(f.config.prior_loss_weight, 0.5);
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
        f.config.class_data = Some(dir.path().to_path_buf());
        assert!(f.to_job("cpu").unwrap_err().contains("class prompt"));
        f.config.class_prompt = Some("a photo of a part".into());
        f.name = "../escape".into();
        assert!(f.to_job("cpu").unwrap_err().contains("file name"));
        f.name = "ok".into();
        let job = f.to_job("cpu").expect("job");
        assert!(job.run.out.ends_with("loras/ok.safetensors"));
        assert_eq!(job.cfg, f.config);
        f.sample_every = 10;
        assert!(f.to_job("cpu").unwrap_err().contains("sample prompt"));
    }
}
