//! `.dsbundle`: a recipe packed to share with another machine. A zip holding
//!
//! - `bundle.json`: [`BundleInfo`] (format tag, version, when, the recipe's name);
//! - `recipe.json`: the graph, with its subgraph definitions (library references resolved) and
//!   its inline assets;
//! - `assets/<sha256>`: the external assets it refers to (large inputs kept in the data
//!   folder's `assets/`, and the image and mask files it names by path, which export turns into
//!   assets);
//! - `models.json`: the model manifest ([`super::manifest`]): every model it needs, with sha256,
//!   AutoV2, architecture, size and where it came from. Models themselves are never packed.
//!
//! [`import_bundle`] reads the archive in memory under [`BUNDLE_LIMITS`] and refuses the whole
//! bundle, writing nothing, when any entry is unsafe (`../`, an absolute path, a symbolic link),
//! duplicated, unexpected, or does not match its hash. It then writes the recipe into the data
//! folder's `recipes/` and the assets into `assets/` (never replacing a file), and reports every
//! model of the manifest this machine lacks, all at once.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use nodes::{Catalogue, FileRole, GraphDoc};
use serde::{Deserialize, Serialize};

use super::library::check_name;
use super::manifest::{self, Manifest, ManifestModel, ModelState, MANIFEST_FORMAT};
use crate::error::{EngineError, Result};
use crate::explore::import::ZipLimits;
use crate::explore::zipread::{read_zip_from, ZipItem};

/// The `format` of `bundle.json`.
pub const BUNDLE_FORMAT: &str = "defect-studio/bundle";
/// The bundle version this build writes and reads.
pub const BUNDLE_VERSION: u32 = 1;
/// The file extension of bundles.
pub const BUNDLE_EXTENSION: &str = "dsbundle";

const INFO_ENTRY: &str = "bundle.json";
const RECIPE_ENTRY: &str = "recipe.json";
const MODELS_ENTRY: &str = "models.json";
const ASSETS_PREFIX: &str = "assets/";

/// Limits on a bundle read for import (it is read whole into memory).
pub const BUNDLE_LIMITS: ZipLimits = ZipLimits {
    max_entries: 10_000,
    max_total_bytes: 2 << 30,
    max_entry_bytes: crate::paths::MAX_INPUT_FILE_BYTES,
    max_ratio: 100,
};

/// `bundle.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BundleInfo {
    pub format: String,
    pub version: u32,
    /// `YYYY-MM-DD HH:MM:SS` (UTC).
    pub created: String,
    /// The recipe's name (what import calls it unless told otherwise).
    pub recipe: String,
    /// The Defect Studio version that wrote it.
    #[serde(default)]
    pub tool: String,
}

/// What [`export_bundle`] wrote.
#[derive(Clone, Debug)]
pub struct BundleExport {
    pub path: PathBuf,
    pub models: Vec<ManifestModel>,
    /// External assets packed.
    pub assets: usize,
    /// What the bundle does not carry (models missing here, inputs named by a path on this
    /// machine, external assets not found).
    pub warnings: Vec<String>,
}

/// What [`import_bundle`] did.
#[derive(Clone, Debug)]
pub struct BundleImport {
    pub name: String,
    pub recipe_path: PathBuf,
    pub assets_written: usize,
    /// Assets already in the data folder (same sha256), left as they were.
    pub assets_present: usize,
    /// Every model of the manifest and where it is on this machine.
    pub models: Vec<(ManifestModel, ModelState)>,
    pub warnings: Vec<String>,
}

impl BundleImport {
    /// The models this machine lacks.
    pub fn missing(&self) -> Vec<&ManifestModel> {
        self.models
            .iter()
            .filter(|(_, s)| *s == ModelState::Missing)
            .map(|(m, _)| m)
            .collect()
    }

    /// The report, one line each: the recipe, then every missing model (all of them), models
    /// found under their name with other content, and warnings.
    pub fn report_lines(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "imported recipe \"{}\" to {} ({} asset(s) written, {} already present)",
            self.name,
            self.recipe_path.display(),
            self.assets_written,
            self.assets_present
        )];
        let missing = self.missing();
        if missing.is_empty() {
            lines.push(format!(
                "all {} model(s) it needs are present",
                self.models.len()
            ));
        } else {
            lines.push(format!(
                "{} of {} model(s) missing (put them in a model folder before running it):",
                missing.len(),
                self.models.len()
            ));
            lines.extend(missing.iter().map(|m| format!("  missing {m}")));
        }
        for (m, s) in &self.models {
            if let ModelState::Different { path, sha256 } = s {
                lines.push(format!(
                    "  different {} {}: {} has sha256 {sha256}, the bundle's has {}; a run \
                     would use this file",
                    m.role,
                    m.name,
                    path.display(),
                    m.sha256
                ));
            }
        }
        lines.extend(self.warnings.iter().map(|w| format!("warning: {w}")));
        lines
    }
}

/// Packs `doc` (recipe `name`; its relative inputs resolve against `base_dir`) into a new
/// bundle file `out` (never replacing a file). Library references are resolved from the
/// library; the recipe must be valid.
pub fn export_bundle(
    doc: &GraphDoc,
    name: &str,
    base_dir: &Path,
    out: &Path,
) -> Result<BundleExport> {
    check_name(name)?;
    let mut doc = doc.clone();
    super::resolve_from_library(&mut doc)?;
    super::check_valid(&doc, name)?;
    let (models, mut warnings) = manifest::collect(&doc, base_dir)?;
    let (mut assets, input_warnings) = pack_inputs(&mut doc, base_dir);
    warnings.extend(input_warnings);
    let dir = crate::paths::assets_dir();
    let packed: Vec<String> = assets.iter().map(|(sha, _)| sha.clone()).collect();
    for (sha, asset) in doc
        .assets
        .iter()
        .filter(|(sha, a)| a.external && !packed.iter().any(|p| p.eq_ignore_ascii_case(sha)))
    {
        let path = dir.join(sha);
        match crate::paths::read_regular_file(&path, crate::paths::MAX_INPUT_FILE_BYTES) {
            Ok(bytes) if crate::hashing::sha256_hex(&bytes).eq_ignore_ascii_case(sha) => {
                assets.push((sha.to_lowercase(), bytes))
            }
            Ok(_) => warnings.push(format!(
                "external asset {sha}: {} does not match its hash; not packed",
                path.display()
            )),
            Err(e) => warnings.push(format!(
                "external asset {sha} ({} bytes): not packed: {}: {e}",
                asset
                    .size
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "?".into()),
                path.display()
            )),
        }
    }
    let info = BundleInfo {
        format: BUNDLE_FORMAT.into(),
        version: BUNDLE_VERSION,
        created: crate::store::format_utc(crate::store::now_ms()),
        recipe: name.to_string(),
        tool: env!("CARGO_PKG_VERSION").to_string(),
    };
    let manifest = Manifest {
        format: MANIFEST_FORMAT.into(),
        models: models.clone(),
    };
    let zip_err = |e: zip::result::ZipError| EngineError::io(out, std::io::Error::other(e));
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default());
    let mut put = |name: &str, bytes: &[u8]| -> Result<()> {
        zip.start_file(name, opts).map_err(zip_err)?;
        zip.write_all(bytes).map_err(|e| EngineError::io(out, e))
    };
    put(INFO_ENTRY, &pretty(&info))?;
    put(RECIPE_ENTRY, doc.to_json().as_bytes())?;
    put(MODELS_ENTRY, &pretty(&manifest))?;
    for (sha, bytes) in &assets {
        put(&format!("{ASSETS_PREFIX}{sha}"), bytes)?;
    }
    let bytes = zip.finish().map_err(zip_err)?.into_inner();
    match crate::paths::write_new_file(out, &bytes) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(EngineError::Recipe(format!(
                "{} already exists; choose another name (nothing was replaced)",
                out.display()
            )))
        }
        Err(e) => return Err(EngineError::io(out, e)),
    }
    Ok(BundleExport {
        path: out.to_path_buf(),
        models,
        assets: assets.len(),
        warnings,
    })
}

fn pretty<T: Serialize>(v: &T) -> Vec<u8> {
    let mut b = serde_json::to_vec_pretty(v).unwrap_or_default();
    b.push(b'\n');
    b
}

/// Input files (images and masks named by a path, at any depth) travel in the bundle: each
/// becomes an external asset (`assets/<sha256>`) and the recipe names it `asset:<sha256>`, so
/// it runs on the importing machine as it ran here. What cannot travel stays a path with a
/// warning: folders (a batch's items, a diffusers config) and files that are missing, not
/// images or over the input-file limit. Returns the packed (sha256, bytes) and the warnings.
fn pack_inputs(doc: &mut GraphDoc, base_dir: &Path) -> (Vec<(String, Vec<u8>)>, Vec<String>) {
    let catalogue = Catalogue::builtin();
    let mut packed: Vec<(String, Vec<u8>)> = Vec::new();
    let mut warnings = Vec::new();
    let mut done: Vec<(FileRole, String)> = Vec::new();
    for (used_by, role, value) in manifest::file_params(doc, &catalogue, |r| !r.is_model()) {
        if done.contains(&(role, value.clone())) {
            continue;
        }
        let not_packed = |why: String| {
            format!(
                "{used_by}: the {} \"{}\" is a path on this machine and is not in the bundle \
                 ({why})",
                role.noun(),
                nodes::clip(&value)
            )
        };
        if !matches!(role, FileRole::Image | FileRole::Mask) {
            warnings.push(not_packed("a folder".into()));
            continue;
        }
        let path = match crate::files::locate(role, &value, base_dir) {
            Ok(p) if p.is_dir() => {
                warnings.push(not_packed("a folder of work items".into()));
                continue;
            }
            Ok(p) => p,
            Err(e) => {
                warnings.push(not_packed(e));
                continue;
            }
        };
        let bytes = match crate::paths::read_input_file(&path) {
            Ok(b) => b,
            Err(e) => {
                warnings.push(not_packed(format!("{}: {e}", path.display())));
                continue;
            }
        };
        let Ok(format) = image::guess_format(&bytes) else {
            warnings.push(not_packed(format!("{} is not an image", path.display())));
            continue;
        };
        let sha = crate::hashing::sha256_hex(&bytes);
        doc.assets.insert(
            sha.clone(),
            nodes::Asset {
                mime: format.to_mime_type().to_string(),
                data_base64: String::new(),
                external: true,
                size: Some(bytes.len() as u64),
            },
        );
        let wanted = value.clone();
        nodes::subgraph::repoint_file_params(
            doc,
            &catalogue,
            |r| r == role,
            |v| v.trim() == wanted,
            &format!("asset:{sha}"),
        );
        done.push((role, value));
        if !packed.iter().any(|(s, _)| *s == sha) {
            packed.push((sha, bytes));
        }
    }
    (packed, warnings)
}

/// The entries of a bundle, checked.
struct Contents {
    info: BundleInfo,
    doc: GraphDoc,
    manifest: Manifest,
    assets: BTreeMap<String, Vec<u8>>,
}

/// Reads and checks a bundle whole, in memory: one error (naming the file, and the entry when
/// one is at fault) refuses all of it.
fn read_bundle(path: &Path) -> Result<Contents> {
    let refuse = |message: String| EngineError::Import {
        path: path.to_path_buf(),
        message: format!("{message}; nothing was imported"),
    };
    let bytes = crate::paths::read_regular_file(path, BUNDLE_LIMITS.max_total_bytes)
        .map_err(|e| EngineError::io(path, e))?;
    let cursor = || std::io::Cursor::new(bytes.as_slice());
    if let Ok(zip) = zip::ZipArchive::new(cursor()) {
        if zip.has_duplicate_names() {
            return Err(refuse(
                "not a valid bundle: two entries have the same name".into(),
            ));
        }
    }
    let mut entries: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    read_zip_from(path, cursor(), &BUNDLE_LIMITS, |item| match item {
        ZipItem::File { name, bytes } => {
            if entries.insert(name.clone(), bytes).is_some() {
                return Err(refuse(format!("entry \"{name}\" appears twice")));
            }
            Ok(())
        }
        ZipItem::Skipped { name, reason } => {
            // The reader's reasons say what it would skip; a bundle is refused instead.
            let reason = reason.split(" (never").next().unwrap_or(&reason);
            Err(refuse(format!(
                "entry \"{}\" is {reason}",
                nodes::clip(&name)
            )))
        }
    })?;
    let take = |entries: &mut BTreeMap<String, Vec<u8>>, name: &str| {
        entries.remove(name).ok_or_else(|| {
            refuse(format!(
                "not a defect-studio bundle: it has no {name} entry"
            ))
        })
    };
    let text = |name: &str, bytes: Vec<u8>| {
        String::from_utf8(bytes).map_err(|_| refuse(format!("entry \"{name}\" is not UTF-8")))
    };
    let info_bytes = take(&mut entries, INFO_ENTRY)?;
    let info: BundleInfo = serde_json::from_str(&text(INFO_ENTRY, info_bytes)?)
        .map_err(|e| refuse(format!("entry \"{INFO_ENTRY}\": {e}")))?;
    if info.format != BUNDLE_FORMAT {
        return Err(refuse(format!(
            "entry \"{INFO_ENTRY}\": format \"{}\", expected \"{BUNDLE_FORMAT}\"",
            nodes::clip(&info.format)
        )));
    }
    if info.version > BUNDLE_VERSION {
        return Err(refuse(format!(
            "bundle version {} is newer than this build reads ({BUNDLE_VERSION}); update \
             Defect Studio",
            info.version
        )));
    }
    let recipe = text(RECIPE_ENTRY, take(&mut entries, RECIPE_ENTRY)?)?;
    let doc = GraphDoc::from_json(&recipe)
        .map_err(|e| refuse(format!("entry \"{RECIPE_ENTRY}\": {e}")))?;
    let models = text(MODELS_ENTRY, take(&mut entries, MODELS_ENTRY)?)?;
    let manifest: Manifest = serde_json::from_str(&models)
        .map_err(|e| refuse(format!("entry \"{MODELS_ENTRY}\": {e}")))?;
    if manifest.format != MANIFEST_FORMAT {
        return Err(refuse(format!(
            "entry \"{MODELS_ENTRY}\": format \"{}\", expected \"{MANIFEST_FORMAT}\"",
            nodes::clip(&manifest.format)
        )));
    }
    let mut assets = BTreeMap::new();
    for (name, bytes) in entries {
        let sha = name
            .strip_prefix(ASSETS_PREFIX)
            .filter(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| {
                refuse(format!(
                    "entry \"{}\" is not part of a bundle (expected {INFO_ENTRY}, \
                     {RECIPE_ENTRY}, {MODELS_ENTRY} and {ASSETS_PREFIX}<sha256>)",
                    nodes::clip(&name)
                ))
            })?
            .to_ascii_lowercase();
        if crate::hashing::sha256_hex(&bytes) != sha {
            return Err(refuse(format!(
                "entry \"{name}\" does not match its sha256 (damaged or altered)"
            )));
        }
        assets.insert(sha, bytes);
    }
    Ok(Contents {
        info,
        doc,
        manifest,
        assets,
    })
}

/// Imports the bundle at `path` into the data folder: its recipe into `recipes/` as `name` (or
/// the name it was exported under), its assets into `assets/`; then finds every model of its
/// manifest (see [`BundleImport::missing`]). A bundle that is not a zip, breaks the limits, or
/// holds an unsafe, duplicated or unexpected entry is refused whole with one error, and so is a
/// recipe name already taken: nothing is written then.
pub fn import_bundle(path: &Path, name: Option<&str>) -> Result<BundleImport> {
    let c = read_bundle(path)?;
    let name = name.unwrap_or(&c.info.recipe).to_string();
    check_name(&name)?;
    super::check_valid(&c.doc, &name)?;
    let mut warnings = Vec::new();
    for (sha, asset) in c.doc.assets.iter().filter(|(_, a)| a.external) {
        let sha = sha.to_ascii_lowercase();
        if !c.assets.contains_key(&sha) && !crate::paths::assets_dir().join(&sha).is_file() {
            warnings.push(format!(
                "external asset {sha} ({} bytes) is neither in the bundle nor in {}",
                asset
                    .size
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "?".into()),
                crate::paths::assets_dir().display()
            ));
        }
    }
    let recipe_path = super::add_recipe_in(&crate::paths::recipes_dir(), &c.doc, &name, &[])?;
    let (mut assets_written, mut assets_present) = (0, 0);
    if !c.assets.is_empty() {
        let home = crate::paths::home();
        let dir = crate::paths::real_dirs(&home, Path::new("assets"))
            .map_err(|e| EngineError::io(&home, e))?;
        for (sha, bytes) in &c.assets {
            let target = dir.join(sha);
            match crate::paths::write_new_file(&target, bytes) {
                Ok(()) => assets_written += 1,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let same =
                        crate::paths::read_regular_file(&target, BUNDLE_LIMITS.max_entry_bytes)
                            .is_ok_and(|b| crate::hashing::sha256_hex(&b) == *sha);
                    if same {
                        assets_present += 1;
                    } else {
                        warnings.push(format!(
                            "{} exists but does not hold asset {sha}; left as it is",
                            target.display()
                        ));
                    }
                }
                Err(e) => return Err(EngineError::io(&target, e)),
            }
        }
    }
    let states = manifest::resolve(&c.manifest.models)?;
    Ok(BundleImport {
        name,
        recipe_path,
        assets_written,
        assets_present,
        models: c.manifest.models.into_iter().zip(states).collect(),
        warnings,
    })
}
