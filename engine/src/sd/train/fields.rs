//! The field table of [`TrainConfig`]: for every serialised setting, its label, its help text
//! and how it is edited. The CLI's `train-lora` flags and the studio's Training form are built
//! from [`FIELDS`], and [`set_field`] parses a flag's text into the config, so that adding a
//! setting means adding it to `TrainConfig` and one row here (a test checks that the rows and
//! the serialised fields agree).

use serde_json::Value;

use super::TrainConfig;
use crate::error::{EngineError, Result};

/// How a setting is edited and parsed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FieldKind {
    /// A whole number in `min..=max`.
    Int { min: u64, max: u64 },
    /// A number in `min..=max`.
    Float { min: f64, max: f64 },
    /// A number in `min..=max`, or none (off).
    OptFloat { min: f64, max: f64 },
    /// On or off.
    Bool,
    /// Text, or none (empty).
    OptText,
    /// A folder, or none (empty).
    OptPath,
    /// One of these words.
    Choice(&'static [&'static str]),
}

/// One setting of [`TrainConfig`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConfigField {
    /// The serialised name.
    pub name: &'static str,
    /// The CLI flag without its `--`: the name with `-` for `_`.
    pub flag: &'static str,
    /// A short label for the form.
    pub label: &'static str,
    /// What it does (the flag's help and the form's tooltip).
    pub doc: &'static str,
    pub kind: FieldKind,
}

const fn f(
    name: &'static str,
    flag: &'static str,
    label: &'static str,
    kind: FieldKind,
    doc: &'static str,
) -> ConfigField {
    ConfigField {
        name,
        flag,
        label,
        doc,
        kind,
    }
}

const fn int(min: u64, max: u64) -> FieldKind {
    FieldKind::Int { min, max }
}

const fn float(min: f64, max: f64) -> FieldKind {
    FieldKind::Float { min, max }
}

/// Every setting of [`TrainConfig`], in the order the form shows them.
pub const FIELDS: &[ConfigField] = &[
    f(
        "steps",
        "steps",
        "Steps",
        int(1, 1_000_000),
        "Optimizer steps.",
    ),
    f(
        "rank",
        "rank",
        "Rank",
        int(1, 1024),
        "LoRA rank (the adapters' inner size).",
    ),
    f(
        "alpha",
        "alpha",
        "Alpha",
        float(0.001, 4096.0),
        "LoRA alpha: the adapters are scaled by alpha / rank.",
    ),
    f(
        "lr",
        "lr",
        "Learning rate",
        float(1e-8, 1.0),
        "Base learning rate.",
    ),
    f(
        "warmup",
        "warmup",
        "Warm-up",
        int(0, 1_000_000),
        "Linear warm-up steps.",
    ),
    f(
        "schedule",
        "schedule",
        "LR schedule",
        FieldKind::Choice(&["constant", "cosine"]),
        "Learning rate after the warm-up: constant, or half a cosine down to 0.",
    ),
    f(
        "batch",
        "batch",
        "Batch",
        int(1, 256),
        "Examples per micro-batch.",
    ),
    f(
        "grad_accum",
        "grad-accum",
        "Grad. accum.",
        int(1, 256),
        "Micro-batches per optimizer step (gradient accumulation).",
    ),
    f(
        "resolution",
        "resolution",
        "Resolution",
        int(8, 4096),
        "Training size in pixels, a multiple of 8 (square centre crops, or the bucket area).",
    ),
    f(
        "seed",
        "seed",
        "Seed",
        int(0, u64::MAX),
        "Seed of every random draw (initialisation, flips, timesteps, noise).",
    ),
    f(
        "instance_prompt",
        "instance-prompt",
        "Instance prompt",
        FieldKind::OptText,
        "Caption of images without a .txt file.",
    ),
    f(
        "min_snr_gamma",
        "min-snr-gamma",
        "Min-SNR γ",
        FieldKind::OptFloat {
            min: 0.0,
            max: 100.0,
        },
        "Min-SNR-γ loss weighting (e.g. 5); none = plain MSE.",
    ),
    f(
        "attention",
        "attention",
        "Attention layers",
        FieldKind::Bool,
        "Adapt the attention q/k/v/out projections.",
    ),
    f(
        "feed_forward",
        "feed-forward",
        "Feed-forward layers",
        FieldKind::Bool,
        "Also adapt the transformer feed-forward layers.",
    ),
    f(
        "conv",
        "conv",
        "Conv layers",
        FieldKind::Bool,
        "Also adapt the convolutions (ResNet conv1/conv2/shortcut, down/upsamplers; kohya's \
         LoCon layout, rank and alpha as for the linear layers).",
    ),
    f(
        "train_text_encoder",
        "train-text-encoder",
        "Train text encoder",
        FieldKind::Bool,
        "Also train LoRA adapters on the text encoder(s): every CLIP layer's attention \
         q/k/v/out and MLP fc1/fc2 (SDXL: both encoders). Off by default as in diffusers' \
         training scripts; kohya trains it unless --network_train_unet_only.",
    ),
    f(
        "text_encoder_lr",
        "text-encoder-lr",
        "Text encoder LR",
        FieldKind::OptFloat { min: 0.0, max: 1.0 },
        "Learning rate of the text-encoder adapters (same warm-up and schedule); none = the \
         learning rate (kohya's text_encoder_lr).",
    ),
    f(
        "flip",
        "flip",
        "Random flips",
        FieldKind::Bool,
        "Random horizontal flips.",
    ),
    f(
        "buckets",
        "buckets",
        "Aspect buckets",
        FieldKind::Bool,
        "Aspect-ratio bucketing (kohya's buckets) instead of square centre crops.",
    ),
    f(
        "sample_latents",
        "sample-latents",
        "Sample latents",
        FieldKind::Bool,
        "Cache a seeded posterior sample of each image instead of the posterior mean.",
    ),
    f(
        "class_data",
        "class-data",
        "Class folder",
        FieldKind::OptPath,
        "DreamBooth class (regularisation) images; needs a class prompt.",
    ),
    f(
        "class_prompt",
        "class-prompt",
        "Class prompt",
        FieldKind::OptText,
        "Caption of the class images without a .txt file (e.g. \"a photo of a metal part\").",
    ),
    f(
        "prior_loss_weight",
        "prior-loss-weight",
        "Prior weight",
        float(0.0, 100.0),
        "Weight of the class images' loss.",
    ),
    f(
        "weight_decay",
        "weight-decay",
        "Weight decay",
        float(0.0, 10.0),
        "AdamW's decoupled weight decay.",
    ),
    f(
        "beta1",
        "beta1",
        "Adam β1",
        float(0.0, 0.999_999),
        "AdamW's first-moment decay.",
    ),
    f(
        "beta2",
        "beta2",
        "Adam β2",
        float(0.0, 0.999_999),
        "AdamW's second-moment decay.",
    ),
    f(
        "eps",
        "eps",
        "Adam ε",
        float(1e-12, 1.0),
        "AdamW's epsilon.",
    ),
    f(
        "save_dtype",
        "save-dtype",
        "Saved dtype",
        FieldKind::Choice(&["f32", "f16"]),
        "dtype of the saved LoRA tensors.",
    ),
];

/// The row of the setting called `name`.
pub fn field(name: &str) -> Option<&'static ConfigField> {
    FIELDS.iter().find(|f| f.name == name)
}

/// The serialised value of a setting parsed from text (a CLI flag's value): numbers within the
/// row's range, `true`/`false`, a choice, or text (empty = none for the optional kinds).
pub fn parse_value(field: &ConfigField, text: &str) -> Result<Value> {
    let bad = |m: String| {
        EngineError::failed(format!(
            "train-lora: {} `{text}`: {m}",
            field.name.replace('_', "-")
        ))
    };
    let t = text.trim();
    Ok(match field.kind {
        FieldKind::Int { min, max } => {
            let v: u64 = t.parse().map_err(|e| bad(format!("{e}")))?;
            if !(min..=max).contains(&v) {
                return Err(bad(format!("must be in {min}..={max}")));
            }
            Value::from(v)
        }
        FieldKind::Float { min, max } | FieldKind::OptFloat { min, max } => {
            if matches!(field.kind, FieldKind::OptFloat { .. })
                && (t.is_empty() || t.eq_ignore_ascii_case("none"))
            {
                return Ok(Value::Null);
            }
            let v: f64 = t.parse().map_err(|e| bad(format!("{e}")))?;
            if !(v.is_finite() && v >= min && v <= max) {
                return Err(bad(format!("must be in {min}..={max}")));
            }
            Value::from(v)
        }
        FieldKind::Bool => Value::Bool(
            t.parse::<bool>()
                .map_err(|_| bad("must be true or false".into()))?,
        ),
        FieldKind::OptText | FieldKind::OptPath => {
            if t.is_empty() {
                Value::Null
            } else {
                Value::String(text.to_string())
            }
        }
        FieldKind::Choice(options) => {
            if !options.contains(&t) {
                return Err(bad(format!("must be one of {}", options.join(", "))));
            }
            Value::String(t.to_string())
        }
    })
}

/// `cfg` with the settings named in `values` parsed from their text ([`parse_value`]); an
/// unknown name is an error.
pub fn with_values<'a>(
    cfg: &TrainConfig,
    values: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<TrainConfig> {
    let mut v = serde_json::to_value(cfg)?;
    let Some(map) = v.as_object_mut() else {
        return Err(EngineError::failed(
            "train-lora: the settings are not an object",
        ));
    };
    for (name, text) in values {
        let row = field(name)
            .ok_or_else(|| EngineError::failed(format!("train-lora: unknown setting `{name}`")))?;
        map.insert(name.to_string(), parse_value(row, text)?);
    }
    serde_json::from_value(v).map_err(|e| EngineError::failed(format!("train-lora: {e}")))
}

/// The text a setting's value is written as on the command line (`None` for none).
pub fn value_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_every_serialised_field_once() {
        let mut rows: Vec<&str> = FIELDS.iter().map(|f| f.name).collect();
        rows.sort_unstable();
        let n = rows.len();
        rows.dedup();
        assert_eq!(rows.len(), n, "a field is listed twice");
        assert_eq!(
            rows,
            TrainConfig::field_names(),
            "FIELDS and TrainConfig differ"
        );
        for f in FIELDS {
            assert_eq!(f.flag, f.name.replace('_', "-"), "the flag of {}", f.name);
        }
    }

    #[test]
    fn every_default_parses_back_from_its_text() {
        let d = serde_json::to_value(TrainConfig::default()).unwrap();
        let texts: Vec<(&str, String)> = FIELDS
            .iter()
            .filter_map(|f| value_text(&d[f.name]).map(|t| (f.name, t)))
            .collect();
        let back = with_values(
            &TrainConfig {
                steps: 1,
                rank: 3,
                ..TrainConfig::default()
            },
            texts.iter().map(|(n, t)| (*n, t.as_str())),
        )
        .unwrap();
        assert_eq!(back, TrainConfig::default());
    }

    #[test]
    fn texts_are_checked() {
        let d = TrainConfig::default();
        let c = with_values(
            &d,
            [
                ("schedule", "cosine"),
                ("min_snr_gamma", "5"),
                ("save_dtype", "f16"),
                ("flip", "false"),
                ("class_data", "/data/class"),
            ],
        )
        .unwrap();
        assert_eq!(c.schedule, super::super::LrSchedule::Cosine);
        assert_eq!(c.min_snr_gamma, Some(5.0));
        assert_eq!(c.save_dtype, candle_core::DType::F16);
        assert!(!c.flip);
        assert_eq!(
            c.class_data.as_deref(),
            Some(std::path::Path::new("/data/class"))
        );
        for (name, text, says) in [
            ("rank", "0", "1..="),
            ("rank", "x", "rank `x`"),
            ("schedule", "linear", "constant, cosine"),
            ("flip", "maybe", "true or false"),
            ("nope", "1", "unknown setting `nope`"),
        ] {
            let e = with_values(&d, [(name, text)]).unwrap_err().to_string();
            assert!(e.contains(says), "{name}={text}: {e}");
        }
    }
}
