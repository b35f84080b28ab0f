//! The BLIP model folder: finding it (by path, or by name in the model folders), checking that
//! it holds what captioning needs (one error listing everything missing), and reading its
//! `config.json` and image-processor config with transformers' defaults for absent keys.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::models::efficientnet::resize::PillowFilter;
use crate::models::manager::ModelManager;

/// What a `blip-image-captioning-base`-style folder must hold, in words (for messages).
pub const FOLDER_CONTENTS: &str = "config.json, model.safetensors, tokenizer.json or vocab.txt, \
     and preprocessor_config.json (as Salesforce/blip-image-captioning-base has them)";

/// The files of a complete BLIP folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlipFiles {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub weights: PathBuf,
    /// `tokenizer.json` when present (preferred), else `vocab.txt`.
    pub tokenizer: PathBuf,
    /// `tokenizer_config.json`, when present (lower-casing and the bos token for `vocab.txt`).
    pub tokenizer_config: Option<PathBuf>,
    /// `preprocessor_config.json`, or transformers 5's `processor_config.json`.
    pub image_processor: PathBuf,
}

/// Checks that `dir` is a complete BLIP folder; the error names the folder and lists every
/// missing file.
pub fn check_folder(dir: &Path) -> Result<BlipFiles, String> {
    if !dir.is_dir() {
        return Err(format!(
            "BLIP model folder {} does not exist",
            dir.display()
        ));
    }
    let file = |n: &str| Some(dir.join(n)).filter(|p| p.is_file());
    let config = file("config.json");
    let weights = file("model.safetensors");
    let tokenizer = file("tokenizer.json").or_else(|| file("vocab.txt"));
    let image_processor =
        file("preprocessor_config.json").or_else(|| file("processor_config.json"));
    let mut missing = Vec::new();
    if config.is_none() {
        missing.push("config.json");
    }
    if weights.is_none() {
        missing.push(if file("pytorch_model.bin").is_some() {
            "model.safetensors (pytorch_model.bin is a pickle and is never loaded: convert it)"
        } else {
            "model.safetensors"
        });
    }
    if tokenizer.is_none() {
        missing.push("tokenizer.json or vocab.txt");
    }
    if image_processor.is_none() {
        missing.push("preprocessor_config.json");
    }
    match (config, weights, tokenizer, image_processor) {
        (Some(config), Some(weights), Some(tokenizer), Some(image_processor)) => Ok(BlipFiles {
            dir: dir.to_path_buf(),
            config,
            weights,
            tokenizer,
            tokenizer_config: file("tokenizer_config.json"),
            image_processor,
        }),
        _ => Err(format!(
            "BLIP model folder {} is incomplete: missing {}",
            dir.display(),
            missing.join(", ")
        )),
    }
}

/// Finds the BLIP folder `value` names, through the default model folders: see [`locate_in`].
pub fn locate(value: &str) -> Result<PathBuf, String> {
    locate_in(&ModelManager::default_dirs(), value)
}

/// Finds the BLIP folder `value` names: an existing path (the folder, or a file in it such as
/// its `model.safetensors`), else a folder of that relative path or that name (any case, up to
/// three levels deep) in `manager`'s model folders. The folder must be complete
/// ([`check_folder`]). The error says what was looked for and where: the message the
/// missing-model report shows.
pub fn locate_in(manager: &ModelManager, value: &str) -> Result<PathBuf, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err("no BLIP model chosen".into());
    }
    let p = Path::new(value);
    let given = if p.is_file() {
        p.parent().map(Path::to_path_buf)
    } else if p.is_dir() {
        Some(p.to_path_buf())
    } else {
        None
    };
    let found = given.or_else(|| {
        let norm = value.replace('\\', "/");
        let wanted = norm.trim_end_matches('/').rsplit('/').next().unwrap_or("");
        manager
            .dirs
            .iter()
            .map(|d| d.join(&norm))
            .find(|d| d.is_dir())
            .or_else(|| {
                manager
                    .dirs
                    .iter()
                    .find_map(|d| find_dir_named(d, wanted, 3))
            })
    });
    match found {
        Some(dir) => check_folder(&dir).map(|f| f.dir),
        None => {
            let dirs: Vec<String> = manager
                .dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect();
            Err(format!(
                "BLIP model \"{value}\" not found: not a path, and not a folder in the model \
                 folders ({}); it needs {FOLDER_CONTENTS}",
                dirs.join(", ")
            ))
        }
    }
}

/// The first folder below `dir` (breadth first, at most `depth` levels) named `name` (ASCII
/// case ignored) that has a `config.json`.
fn find_dir_named(dir: &Path, name: &str, depth: usize) -> Option<PathBuf> {
    if name.is_empty() {
        return None;
    }
    let mut level = vec![dir.to_path_buf()];
    for _ in 0..depth {
        let mut next = Vec::new();
        for d in &level {
            let Ok(rd) = std::fs::read_dir(d) else {
                continue;
            };
            let mut subs: Vec<PathBuf> = rd
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect();
            subs.sort();
            if let Some(hit) = subs.iter().find(|s| {
                s.file_name()
                    .is_some_and(|n| n.to_string_lossy().eq_ignore_ascii_case(name))
                    && s.join("config.json").is_file()
            }) {
                return Some(hit.clone());
            }
            next.extend(subs);
        }
        level = next;
    }
    None
}

/// `config.json`'s `text_config`, with `BlipTextConfig`'s defaults (transformers 5 writes only
/// what differs from them in some versions).
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct TextConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub projection_dim: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub max_position_embeddings: usize,
    pub hidden_act: candle_nn::Activation,
    pub layer_norm_eps: f64,
    pub bos_token_id: u32,
    pub pad_token_id: u32,
    pub sep_token_id: u32,
    pub tie_word_embeddings: Option<bool>,
}

impl Default for TextConfig {
    fn default() -> Self {
        TextConfig {
            vocab_size: 30524,
            hidden_size: 768,
            intermediate_size: 3072,
            projection_dim: 768,
            num_hidden_layers: 12,
            num_attention_heads: 8,
            max_position_embeddings: 512,
            hidden_act: candle_nn::Activation::Gelu,
            layer_norm_eps: 1e-12,
            bos_token_id: 30522,
            pad_token_id: 0,
            sep_token_id: 102,
            tie_word_embeddings: None,
        }
    }
}

/// `config.json`'s `vision_config`, with `BlipVisionConfig`'s defaults.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct VisionConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub projection_dim: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub image_size: usize,
    pub patch_size: usize,
    pub hidden_act: candle_nn::Activation,
    pub layer_norm_eps: f64,
}

impl Default for VisionConfig {
    fn default() -> Self {
        VisionConfig {
            hidden_size: 768,
            intermediate_size: 3072,
            projection_dim: 512,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            image_size: 384,
            patch_size: 16,
            hidden_act: candle_nn::Activation::Gelu,
            layer_norm_eps: 1e-5,
        }
    }
}

/// A BLIP `config.json` (`BlipConfig`).
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct BlipConfig {
    pub text_config: TextConfig,
    pub vision_config: VisionConfig,
    pub projection_dim: usize,
    pub image_text_hidden_size: usize,
    pub tie_word_embeddings: bool,
}

impl Default for BlipConfig {
    fn default() -> Self {
        BlipConfig {
            text_config: TextConfig::default(),
            vision_config: VisionConfig::default(),
            projection_dim: 512,
            image_text_hidden_size: 256,
            tie_word_embeddings: true,
        }
    }
}

impl BlipConfig {
    /// Whether the LM head's decoder is the word embedding matrix (transformers ties them
    /// unless a config says otherwise; the text config's value wins, as for its sub-model).
    pub fn tied(&self) -> bool {
        self.text_config
            .tie_word_embeddings
            .unwrap_or(self.tie_word_embeddings)
    }

    /// candle-transformers' config (its `encoder_hidden_size` is the vision width, as
    /// `BlipConfig.__post_init__` sets it).
    pub fn to_candle(&self) -> candle_transformers::models::blip::Config {
        use candle_transformers::models::{blip, blip_text};
        let (t, v) = (&self.text_config, &self.vision_config);
        blip::Config {
            text_config: blip_text::Config {
                vocab_size: t.vocab_size,
                hidden_size: t.hidden_size,
                encoder_hidden_size: v.hidden_size,
                intermediate_size: t.intermediate_size,
                projection_dim: t.projection_dim,
                num_hidden_layers: t.num_hidden_layers,
                num_attention_heads: t.num_attention_heads,
                max_position_embeddings: t.max_position_embeddings,
                hidden_act: t.hidden_act,
                layer_norm_eps: t.layer_norm_eps,
                is_decoder: true,
            },
            vision_config: blip::VisionConfig {
                hidden_size: v.hidden_size,
                intermediate_size: v.intermediate_size,
                projection_dim: v.projection_dim,
                num_hidden_layers: v.num_hidden_layers,
                num_attention_heads: v.num_attention_heads,
                image_size: v.image_size,
                patch_size: v.patch_size,
                hidden_act: v.hidden_act,
                layer_norm_eps: v.layer_norm_eps,
            },
            projection_dim: self.projection_dim,
            image_text_hidden_size: self.image_text_hidden_size,
        }
    }
}

/// `size` of an image processor config: BLIP resizes to a fixed height × width.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Size {
    pub height: Option<usize>,
    pub width: Option<usize>,
    pub shortest_edge: Option<usize>,
}

/// `preprocessor_config.json` (`BlipImageProcessor`), with its defaults.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct ImageProcessorConfig {
    pub do_resize: bool,
    pub size: Size,
    /// Pillow's resample code: 2 bilinear, 3 bicubic (BLIP's).
    pub resample: u32,
    pub do_rescale: bool,
    pub rescale_factor: f64,
    pub do_normalize: bool,
    pub image_mean: [f32; 3],
    pub image_std: [f32; 3],
}

impl Default for ImageProcessorConfig {
    fn default() -> Self {
        ImageProcessorConfig {
            do_resize: true,
            size: Size {
                height: Some(384),
                width: Some(384),
                shortest_edge: None,
            },
            resample: 3,
            do_rescale: true,
            rescale_factor: 1.0 / 255.0,
            do_normalize: true,
            // OpenAI CLIP's (transformers' OPENAI_CLIP_MEAN / OPENAI_CLIP_STD), as float32.
            image_mean: [0.481_454_66, 0.457_827_5, 0.408_210_73],
            image_std: [0.268_629_54, 0.261_302_6, 0.275_777_1],
        }
    }
}

impl ImageProcessorConfig {
    /// Reads `preprocessor_config.json`, or the `image_processor` object of transformers 5's
    /// `processor_config.json`.
    pub fn read(path: &Path) -> Result<ImageProcessorConfig, String> {
        let v: serde_json::Value = read_json(path)?;
        let v = match v.get("image_processor") {
            Some(inner) if v.get("do_resize").is_none() => inner.clone(),
            _ => v,
        };
        serde_json::from_value(v).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The fixed output size (width, height) and the Pillow filter; an error for what BLIP's
    /// processor never does (aspect-preserving `shortest_edge`, other filters).
    pub fn resize_to(&self) -> Result<Option<(u32, u32, PillowFilter)>, String> {
        if !self.do_resize {
            return Ok(None);
        }
        let (Some(h), Some(w)) = (self.size.height, self.size.width) else {
            return Err(format!(
                "image processor size {:?}: only a fixed height and width are supported",
                self.size
            ));
        };
        let filter = PillowFilter::from_pil_code(self.resample).ok_or_else(|| {
            format!(
                "image processor resample {}: only Pillow's bilinear (2) and bicubic (3) are \
                 supported",
                self.resample
            )
        })?;
        Ok(Some((w as u32, h as u32, filter)))
    }
}

/// Reads and parses a JSON file; the error names it.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}
