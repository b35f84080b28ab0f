//! The model manager: model folders, scanning `.safetensors` files (checkpoints, LoRAs, our
//! converted models), their sha256 (computed once and cached by path, size and modification
//! time, with progress for large files), A1111's AutoV2 short hash, the architecture detected
//! from tensor names and shapes, size and metadata; and resolving a graph's model references by
//! hash first, then by file name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{EngineError, Result};

/// One model file found in a model folder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub name: String,
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
    /// A1111's short hash: the first 10 hex digits of the sha256.
    pub autov2: String,
    /// e.g. `sd1`, `sd1-inpaint`, `sd2`, `sdxl`, `lora-sd1`, `lora-sdxl`, `vae`, `isnet`,
    /// `efficientnet-lite0`, `blip`.
    pub arch: String,
    /// The file's `__metadata__` (kohya writes `ss_*` keys there).
    pub metadata: BTreeMap<String, String>,
    pub tensors: usize,
}

pub use super::safetensors_check::{read_header, Header};

/// The architecture a set of tensor names and shapes belongs to.
pub fn detect_arch(h: &Header) -> String {
    let has = |p: &str| h.tensors.keys().any(|k| k.starts_with(p));
    let shape = |k: &str| h.tensors.get(k).map(|(_, s)| s.clone()).unwrap_or_default();
    if has("stage1.rebnconvin") && has("conv_in") {
        return "isnet".into();
    }
    if has("_blocks.0._depthwise_conv") && has("_conv_head") && has("_fc") {
        return "efficientnet-lite0".into();
    }
    // A LoRA trainer's checkpoint (adapters + optimizer state), not a LoRA to load.
    if has("trainer.rng_mt") {
        return "lora-training-checkpoint".into();
    }
    // kohya and LyCORIS (LoCon, LoHa `hada_*`, LoKr `lokr_*`, DoRA `dora_scale`) files share
    // the kohya module names; SimpleTuner's LyCORIS files use `lycoris_<diffusers path>`, where
    // only SDXL has a second transformer block in a UNet attention.
    if has("lora_unet_") || has("lora_te") || has("lycoris_") {
        let sdxl = has("lora_te1_")
            || has("lora_te2_")
            || has("lora_unet_input_blocks")
            || has("lora_unet_output_blocks")
            || h.tensors
                .keys()
                .any(|k| k.starts_with("lycoris_") && k.contains("_transformer_blocks_1_"));
        return if sdxl {
            "lora-sdxl".into()
        } else {
            "lora-sd1".into()
        };
    }
    if h.tensors
        .keys()
        .any(|k| k.contains("lora_A") || k.contains("lora_B") || k.contains("lora.down"))
    {
        return "lora-peft".into();
    }
    let inpaint = shape("model.diffusion_model.input_blocks.0.0.weight").get(1) == Some(&9);
    if has("conditioner.embedders.1") {
        return "sdxl".into();
    }
    if has("cond_stage_model.model.transformer") {
        return if inpaint {
            "sd2-inpaint".into()
        } else {
            "sd2".into()
        };
    }
    if has("model.diffusion_model.") {
        return if inpaint {
            "sd1-inpaint".into()
        } else {
            "sd1".into()
        };
    }
    // A ControlNet (diffusers or LDM layout) has a UNet encoder too: before the UNet check.
    if has("controlnet_cond_embedding.") || has("control_model.input_hint_block") {
        return "controlnet".into();
    }
    if has("down_blocks.") && has("conv_in.") && has("time_embedding") {
        let ctx = shape("down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight");
        return match ctx.get(1) {
            Some(2048) => "diffusers-unet-sdxl".into(),
            Some(1024) => "diffusers-unet-sd2".into(),
            _ => "diffusers-unet-sd1".into(),
        };
    }
    if has("encoder.conv_in") && has("decoder.conv_in") {
        return "vae".into();
    }
    // BlipForConditionalGeneration (inspect::blip): the model.safetensors of a BLIP folder.
    if has("text_decoder.bert.") && has("vision_model.embeddings.") {
        return "blip".into();
    }
    if has("text_model.") || has("encoder.layers.") {
        return "clip-text".into();
    }
    "unknown".into()
}

/// sha256 of a file, streaming; `progress(done, total)` is called as it goes.
pub fn hash_file(path: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<String> {
    let f = std::fs::File::open(path).map_err(|e| EngineError::io(path, e))?;
    let total = f.metadata().map_err(|e| EngineError::io(path, e))?.len();
    crate::hashing::sha256_reader(f, &mut |done| progress(done, total))
        .map_err(|e| EngineError::io(path, e))
}

/// `path`'s sha256 and size from `cache` if its size and modification time match, else hashed
/// (reporting `progress`) and stored in `cache` (setting `dirty`).
fn cached_sha256(
    cache: &mut BTreeMap<String, CachedHash>,
    dirty: &mut bool,
    path: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(String, u64)> {
    let meta = std::fs::metadata(path).map_err(|e| EngineError::io(path, e))?;
    let key = path.to_string_lossy().into_owned();
    let (size, mtime) = (meta.len(), mtime_ns(&meta));
    if let Some(c) = cache.get(&key) {
        if c.size == size && c.mtime_ns == mtime {
            return Ok((c.sha256.clone(), size));
        }
    }
    let sha = hash_file(path, progress)?;
    cache.insert(
        key,
        CachedHash {
            size,
            mtime_ns: mtime,
            sha256: sha.clone(),
        },
    );
    *dirty = true;
    Ok((sha, size))
}

/// A cached hash: valid while the file's size and modification time are unchanged.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct CachedHash {
    size: u64,
    mtime_ns: u128,
    sha256: String,
}

fn extra_dirs() -> &'static std::sync::RwLock<Vec<PathBuf>> {
    static EXTRA: std::sync::OnceLock<std::sync::RwLock<Vec<PathBuf>>> = std::sync::OnceLock::new();
    EXTRA.get_or_init(|| std::sync::RwLock::new(Vec::new()))
}

/// Adds model folders for this process (the studio passes its settings' folders); every
/// [`ModelManager::default_dirs`] after this searches them too.
pub fn set_extra_dirs(dirs: Vec<PathBuf>) {
    if let Ok(mut d) = extra_dirs().write() {
        *d = dirs;
    }
}

/// Model folders, with a cache of file hashes kept in `hash_cache`.
pub struct ModelManager {
    pub dirs: Vec<PathBuf>,
    hash_cache: PathBuf,
}

/// A file's modification time in nanoseconds since the epoch (0 when unknown).
pub(crate) fn mtime_ns(meta: &std::fs::Metadata) -> u128 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

impl ModelManager {
    /// A manager over `dirs`, caching hashes in `hash_cache` (a JSON file).
    pub fn new(dirs: Vec<PathBuf>, hash_cache: PathBuf) -> ModelManager {
        ModelManager { dirs, hash_cache }
    }

    /// The default: the data folder's `models/`, the folders set with [`set_extra_dirs`] (the
    /// studio's settings), and those in `DEFECT_STUDIO_MODEL_DIRS` (separated like `PATH`).
    pub fn default_dirs() -> ModelManager {
        let mut dirs = vec![crate::paths::models_dir()];
        if let Ok(extra) = extra_dirs().read() {
            dirs.extend(extra.iter().cloned());
        }
        if let Some(extra) = std::env::var_os("DEFECT_STUDIO_MODEL_DIRS") {
            dirs.extend(std::env::split_paths(&extra).filter(|p| !p.as_os_str().is_empty()));
        }
        dirs.dedup();
        ModelManager::new(dirs, crate::paths::home().join("model-hashes.json"))
    }

    fn load_cache(&self) -> BTreeMap<String, CachedHash> {
        std::fs::read(&self.hash_cache)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn save_cache(&self, cache: &BTreeMap<String, CachedHash>) {
        if let Some(dir) = self.hash_cache.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let tmp = self.hash_cache.with_extension("json.part");
        if std::fs::write(&tmp, serde_json::to_vec_pretty(cache).unwrap_or_default()).is_ok() {
            let _ = std::fs::rename(&tmp, &self.hash_cache);
        }
    }

    /// Every `.safetensors` file in the model folders (recursively), with hashes (cached),
    /// architecture and metadata. `progress(file, done, total)` reports hashing of large files.
    /// Files that cannot be read are listed with arch `unreadable: <reason>`.
    pub fn scan(&self, progress: &mut dyn FnMut(&Path, u64, u64)) -> Result<Vec<ModelInfo>> {
        let mut files = Vec::new();
        for d in &self.dirs {
            collect(d, &mut files);
        }
        files.sort();
        let mut cache = self.load_cache();
        let mut out = Vec::new();
        let mut dirty = false;
        for path in files {
            let (sha256, size) = cached_sha256(&mut cache, &mut dirty, &path, &mut |d, t| {
                progress(&path, d, t)
            })?;
            // The loaders' own validator: a file listed as readable loads, and one they
            // refuse is listed with their reason.
            let (arch, metadata, tensors) = match super::safetensors_check::check_file(&path) {
                Ok(h) => (detect_arch(&h), h.metadata.clone(), h.tensors.len()),
                Err(e) => (format!("unreadable: {e}"), BTreeMap::new(), 0),
            };
            out.push(ModelInfo {
                name: path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                autov2: sha256[..10.min(sha256.len())].to_string(),
                path,
                size,
                sha256,
                arch,
                metadata,
                tensors,
            });
        }
        if dirty {
            self.save_cache(&cache);
        }
        Ok(out)
    }

    /// The sha256 of one file, from the hash cache when its size and modification time are
    /// unchanged (else computed and cached), wherever the file lives.
    pub fn sha256(&self, path: &Path) -> Result<String> {
        self.sha256_with_progress(path, &mut |_, _| {})
    }

    /// [`ModelManager::sha256`], calling `progress(done, total)` (bytes) as a file is hashed
    /// (not at all when the cache answers).
    pub fn sha256_with_progress(
        &self,
        path: &Path,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<String> {
        let mut cache = self.load_cache();
        let mut dirty = false;
        let (sha, _) = cached_sha256(&mut cache, &mut dirty, path, progress)?;
        if dirty {
            self.save_cache(&cache);
        }
        Ok(sha)
    }

    /// Every `.safetensors` file in the model folders with its path relative to its folder
    /// (`/`-separated), sorted by path.
    fn files_with_names(&self) -> Vec<(PathBuf, String)> {
        let mut out = Vec::new();
        for d in &self.dirs {
            let mut files = Vec::new();
            collect(d, &mut files);
            for p in files {
                let rel = relative_name(d, &p);
                out.push((p, rel));
            }
        }
        out.sort();
        out
    }

    /// Finds a model by name, as recipes and other tools write it: a file name
    /// (`isnet-medium.safetensors` or `isnet-medium`), or a path relative to a model folder with
    /// either separator (ComfyUI's `SDXL\sd_xl_base_1.0.safetensors`). A pickle name (`.ckpt`,
    /// `.pt`, `.pth`, `.bin`) finds the `.safetensors` file of the same stem; pickles themselves
    /// are never loaded. The best match wins (see [`name_rank`]); among equals, the first path.
    pub fn find_by_name(&self, name: &str) -> Option<PathBuf> {
        let files = self.files_with_names();
        for wanted in name_candidates(name) {
            let best = files
                .iter()
                .filter_map(|(p, rel)| name_rank(rel, &wanted).map(|r| (r, p)))
                .min_by_key(|(r, _)| *r);
            if let Some((_, p)) = best {
                return Some(p.clone());
            }
        }
        None
    }

    /// Resolves a graph's model references: by sha256 first, then by file name. Missing ones
    /// are all listed in one error.
    pub fn resolve(&self, refs: &[nodes::ModelRef]) -> Result<Vec<(nodes::ModelRef, ModelInfo)>> {
        if refs.is_empty() {
            return Ok(Vec::new());
        }
        let models = self.scan(&mut |_, _, _| {})?;
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for r in refs {
            match self.lookup(&models, r) {
                Lookup::Found(m) => found.push((r.clone(), m.clone())),
                Lookup::Missing { same_name } => {
                    // A file with the right name but other content is not silently used.
                    let note = match same_name {
                        Some(m) => format!(
                            " (a file {} exists but its sha256 is {}, not {})",
                            m.path.display(),
                            m.autov2,
                            &r.sha256[..10.min(r.sha256.len())]
                        ),
                        None => String::new(),
                    };
                    missing.push(format!(
                        "{} [{}] sha256 {}{note}",
                        r.name,
                        if r.arch.is_empty() { "?" } else { &r.arch },
                        if r.sha256.is_empty() { "-" } else { &r.sha256 }
                    ));
                }
            }
        }
        if missing.is_empty() {
            Ok(found)
        } else {
            let dirs: Vec<String> = self.dirs.iter().map(|d| d.display().to_string()).collect();
            Err(EngineError::Plan(format!(
                "missing models: {} (searched {})",
                missing.join("; "),
                dirs.join(", ")
            )))
        }
    }

    /// The references of `refs` that [`Self::resolve`] would not find among the scanned
    /// `models`, each with the file of the same name but other content, if there is one.
    pub fn missing<'a>(
        &self,
        models: &'a [ModelInfo],
        refs: &[nodes::ModelRef],
    ) -> Vec<(nodes::ModelRef, Option<&'a ModelInfo>)> {
        refs.iter()
            .filter_map(|r| match self.lookup(models, r) {
                Lookup::Found(_) => None,
                Lookup::Missing { same_name } => Some((r.clone(), same_name)),
            })
            .collect()
    }

    /// One reference among the scanned `models`: by sha256 when it has one (a file of the same
    /// name with other content is reported, never used), else by name.
    fn lookup<'a>(&self, models: &'a [ModelInfo], r: &nodes::ModelRef) -> Lookup<'a> {
        let by_hash = models
            .iter()
            .find(|m| !r.sha256.is_empty() && m.sha256.eq_ignore_ascii_case(&r.sha256));
        let by_name = || {
            name_candidates(&r.name).into_iter().find_map(|wanted| {
                models
                    .iter()
                    .filter_map(|m| {
                        name_rank(&self.relative_name(&m.path), &wanted).map(|rank| (rank, m))
                    })
                    .min_by_key(|(rank, _)| *rank)
                    .map(|(_, m)| m)
            })
        };
        match by_hash.or_else(|| if r.sha256.is_empty() { by_name() } else { None }) {
            Some(m) => Lookup::Found(m),
            None => Lookup::Missing {
                same_name: by_name(),
            },
        }
    }

    /// How graphs name a model file: its path relative to the model folder holding it
    /// (`/`-separated), or the whole path for a file outside the model folders.
    pub fn relative_name(&self, path: &Path) -> String {
        match self.dirs.iter().find(|d| path.starts_with(d)) {
            Some(d) => relative_name(d, path),
            None => path.to_string_lossy().into_owned(),
        }
    }
}

/// Where [`ModelManager::lookup`] found a reference.
enum Lookup<'a> {
    Found(&'a ModelInfo),
    Missing { same_name: Option<&'a ModelInfo> },
}

/// `path` relative to the model folder `dir`, with `/` separators.
fn relative_name(dir: &Path, path: &Path) -> String {
    path.strip_prefix(dir)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// Pickle model formats: never loaded; a `.safetensors` file of the same stem stands in.
const PICKLE_EXTENSIONS: &[&str] = &["ckpt", "pt", "pth", "bin"];

/// The names to look for, best first: `name` with `\` read as `/` (ComfyUI on Windows), and for
/// a pickle name the `.safetensors` name of the same stem.
pub fn name_candidates(name: &str) -> Vec<String> {
    let norm = name.trim().replace('\\', "/");
    let norm = norm.trim_start_matches("./").to_string();
    let mut out = vec![norm.clone()];
    if let Some((stem, ext)) = norm.rsplit_once('.') {
        if PICKLE_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()) {
            out.push(format!("{stem}.safetensors"));
        }
    }
    out
}

/// How well a model file (its `/`-separated path `rel` relative to its model folder) matches a
/// wanted name (already through [`name_candidates`]); lower is better, `None` is no match:
/// 0 the relative path, 1 the relative path without `.safetensors`, 2 either ignoring ASCII
/// case; 3 the file name (or stem) when the wanted name's own file name matches, 4 the same
/// ignoring case. A wanted name with a folder prefers the file in that folder, and still finds
/// one elsewhere by its file name.
pub fn name_rank(rel: &str, wanted: &str) -> Option<u8> {
    let strip = |s: &str| -> String {
        match s.len().checked_sub(".safetensors".len()) {
            Some(i) if s.is_char_boundary(i) && s[i..].eq_ignore_ascii_case(".safetensors") => {
                s[..i].to_string()
            }
            _ => s.to_string(),
        }
    };
    if rel == wanted {
        return Some(0);
    }
    if strip(rel) == wanted {
        return Some(1);
    }
    if rel.eq_ignore_ascii_case(wanted) || strip(rel).eq_ignore_ascii_case(wanted) {
        return Some(2);
    }
    let file = rel.rsplit('/').next().unwrap_or(rel);
    let wanted_file = wanted.rsplit('/').next().unwrap_or(wanted);
    if wanted_file.is_empty() {
        return None;
    }
    if file == wanted_file || strip(file) == wanted_file {
        return Some(3);
    }
    if file.eq_ignore_ascii_case(wanted_file) || strip(file).eq_ignore_ascii_case(wanted_file) {
        return Some(4);
    }
    None
}

/// `.safetensors` files below `dir`, recursively (symlinked folders are not followed).
fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => collect(&p, out),
            Ok(_)
                if p.extension()
                    .is_some_and(|x| x.eq_ignore_ascii_case("safetensors")) =>
            {
                out.push(p)
            }
            _ => {}
        }
    }
}
