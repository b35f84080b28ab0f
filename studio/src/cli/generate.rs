//! `generate` and `remove-bg`: each builds the equivalent recipe and runs it through the same
//! executor, store and SaveImage sink as `run` (docs/ARCHITECTURE.md, "One path"):
//!
//! - `generate`: LoadCheckpoint → LoraLoader* → Txt2Img | Img2Img (with `--init-image`) |
//!   Inpaint (with `--init-image` and `--mask`) → SaveImage, with one LoadControlNet +
//!   LoadImage → ControlNet per `--control`, chained into the sampler's `control` input;
//! - `remove-bg`: LoadImage → RemoveBackground → SaveImage.
//!
//! Their node-parameter flags are made from the catalogue ([`super::flags`]), so an omitted flag
//! leaves the node's default, and their PNGs carry the recipe and the A1111 `parameters` text
//! that `run` writes; the runs are in `history`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use engine::run::{plan, BatchJob, PlanSpec};
use nodes::control::{CONTROLNET, LOAD_CONTROLNET};
use nodes::diffusion::{IMG2IMG, INPAINT, LOAD_CHECKPOINT, LORA_LOADER, TXT2IMG};
use nodes::{Catalogue, GraphDoc, Link, NodeDoc, NodeSpec, ParamKind, ParamValue, PortRef};

use super::flags::{FlagSet, ParamFlags};
use super::run::{execute, succeeded};

/// The node kinds `generate`'s flags come from.
#[derive(Debug, Clone)]
pub struct GenerateFlags;

impl FlagSet for GenerateFlags {
    fn specs() -> Vec<&'static NodeSpec> {
        vec![&TXT2IMG, &IMG2IMG, &INPAINT, &LOAD_CHECKPOINT]
    }
    /// `checkpoint` is `--model`; `seed` is the run seed (`--seed`), which the sampler's seed
    /// follows (mode "from run", offset 0), as in `run --seed`.
    fn skip() -> &'static [&'static str] {
        &["checkpoint", "seed"]
    }
    fn required() -> &'static [&'static str] {
        &["prompt"]
    }
    fn aliases(param: &str) -> &'static [&'static str] {
        match param {
            "config" => &["config-dir"],
            _ => &[],
        }
    }
}

/// The options of `generate` (docs/ARCHITECTURE.md, "CLI"). Besides these, every parameter of
/// LoadCheckpoint, Txt2Img, Img2Img and Inpaint is a flag (see `--help`).
#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    /// Checkpoint: a .safetensors file, a diffusers folder, or a name in the model folders.
    #[arg(long)]
    pub model: String,
    /// The run seed: the sampler's seed follows it (torch's CPU generator, as diffusers).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The image to start from: img2img, or inpaint with --mask.
    #[arg(long = "init-image")]
    pub init_image: Option<PathBuf>,
    /// Inpainting mask (white = repaint); must have the init image's size.
    #[arg(long)]
    pub mask: Option<PathBuf>,
    /// Apply a LoRA: PATH:WEIGHT[:TEXT_WEIGHT] (a path or a name in the model folders).
    /// Repeatable; stacked in order (one LoraLoader node each).
    #[arg(long = "lora", value_name = "PATH:WEIGHT[:TE_WEIGHT]")]
    pub lora: Vec<String>,
    /// Guide the sampler with a ControlNet: MODEL (a .safetensors file, a diffusers folder or a
    /// name in the model folders) and IMAGE (the control image, resized to the output as
    /// diffusers does), then optionally the ControlNet node's strength, start and end (fractions
    /// of the steps); an omitted or empty number keeps the node's default (1, 0, 1).
    /// Repeatable: chained in order, their residuals add up. Read from the right: IMAGE is the
    /// rightmost field with an image extension (.png, .jpg, .jpeg, .webp, .bmp, .tif, .tiff) or
    /// naming an existing file, the numbers follow it, and everything before it is MODEL, so
    /// MODEL may contain ':' and IMAGE only when the whole path exists.
    #[arg(long = "control", value_name = "MODEL:IMAGE[:STRENGTH[:START:END]]")]
    pub control: Vec<String>,
    /// The PNG to write; a batch writes OUT's stem + `-0`, `-1`, … An existing file is never
    /// overwritten (a numeric suffix is added, as SaveImage does).
    #[arg(long)]
    pub out: PathBuf,
    /// Store file to record the run in (default: the user store).
    #[arg(long)]
    pub store: Option<PathBuf>,
    #[command(flatten)]
    pub params: ParamFlags<GenerateFlags>,
}

/// The node kinds `remove-bg`'s flags come from.
#[derive(Debug, Clone)]
pub struct RemoveBgFlags;

impl FlagSet for RemoveBgFlags {
    fn specs() -> Vec<&'static NodeSpec> {
        vec![&nodes::builtin::REMOVE_BACKGROUND]
    }
    /// The command saves the cut-out, not the composite.
    fn skip() -> &'static [&'static str] {
        &["background_color"]
    }
}

/// The options of `remove-bg`. Besides these, every parameter of RemoveBackground that shapes
/// the cut-out is a flag (`--model`, `--alpha`, `--threshold`, `--grow`, `--feather`).
#[derive(clap::Args, Debug)]
pub struct RemoveBgArgs {
    /// The photo.
    pub input: PathBuf,
    /// The RGBA cut-out PNG to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Also write the alpha mask here (SaveImage writes it beside OUT as OUT_mask.png; this is
    /// a copy of that file).
    #[arg(long = "mask-out")]
    pub mask_out: Option<PathBuf>,
    /// Store file to record the run in (default: the user store).
    #[arg(long)]
    pub store: Option<PathBuf>,
    #[command(flatten)]
    pub params: ParamFlags<RemoveBgFlags>,
}

/// A recipe under construction: nodes at their current kind version, params by name.
struct Recipe {
    doc: GraphDoc,
}

impl Recipe {
    fn new(title: &str) -> Recipe {
        let mut doc = GraphDoc::new();
        doc.meta.title = title.to_string();
        Recipe { doc }
    }

    fn node(&mut self, id: &str, spec: &NodeSpec, params: BTreeMap<String, ParamValue>) {
        self.doc.nodes.insert(
            id.to_string(),
            NodeDoc {
                kind: spec.kind.to_string(),
                version: spec.version,
                params,
                param_inputs: Default::default(),
                subgraph: None,
            },
        );
    }

    fn link(&mut self, from: (&str, &str), to: (&str, &str)) {
        self.doc.links.push(Link {
            from: PortRef(from.0.to_string(), from.1.to_string()),
            to: PortRef(to.0.to_string(), to.1.to_string()),
        });
    }
}

fn text(s: impl Into<String>) -> ParamValue {
    ParamValue::Text(s.into())
}

/// An existing path as an absolute one (so the recipe in the PNG runs from anywhere); a name
/// that is not a path (a model in the model folders) as given.
fn absolute_if_exists(s: &str) -> String {
    let p = Path::new(s);
    if p.exists() {
        std::fs::canonicalize(p)
            .map(|a| a.to_string_lossy().into_owned())
            .unwrap_or_else(|_| s.to_string())
    } else {
        s.to_string()
    }
}

/// An input file that must exist, as an absolute path; the error names the flag and the file.
fn input_file(flag: &str, p: &Path) -> Result<String> {
    let a = std::fs::canonicalize(p).with_context(|| format!("{flag} {}", p.display()))?;
    if !a.is_file() {
        bail!("{flag} {}: not a file", p.display());
    }
    Ok(a.to_string_lossy().into_owned())
}

/// The recipe `generate` runs: LoadCheckpoint → LoraLoader* → sampler → SaveImage, with every
/// given flag set on its node and nothing else (so the rest keeps the nodes' defaults).
pub fn generate_recipe(a: &GenerateArgs) -> Result<GraphDoc> {
    let sampler: &NodeSpec = match (&a.init_image, &a.mask) {
        (Some(_), Some(_)) => &INPAINT,
        (Some(_), None) => &IMG2IMG,
        (None, None) => &TXT2IMG,
        (None, Some(_)) => bail!("--mask needs --init-image (the image to inpaint)"),
    };
    let mut ckpt = BTreeMap::new();
    ckpt.insert("checkpoint".into(), text(absolute_if_exists(&a.model)));
    let mut gen = BTreeMap::new();
    for p in ParamFlags::<GenerateFlags>::params() {
        let (target, spec) = if let Some(s) = LOAD_CHECKPOINT.param(p.name) {
            (&mut ckpt, s)
        } else if let Some(s) = sampler.param(p.name) {
            (&mut gen, s)
        } else {
            if a.params.values.contains_key(p.name) {
                let users: Vec<&str> = GenerateFlags::specs()
                    .iter()
                    .filter(|s| s.param(p.name).is_some())
                    .map(|s| s.kind)
                    .collect();
                bail!(
                    "{} is a parameter of {} and does not apply to {} (give {})",
                    ParamFlags::<GenerateFlags>::flag(p.name),
                    users.join(" and "),
                    sampler.kind,
                    if users.contains(&INPAINT.kind) && !users.contains(&IMG2IMG.kind) {
                        "--init-image and --mask"
                    } else {
                        "--init-image"
                    }
                );
            }
            continue;
        };
        if let Some(mut v) = a.params.parse(spec)? {
            if matches!(p.name, "vae" | "config") {
                if let ParamValue::Text(s) = &v {
                    v = text(absolute_if_exists(s));
                }
            }
            target.insert(p.name.to_string(), v);
        }
    }
    let mut r = Recipe::new("generate");
    r.node("ckpt", &LOAD_CHECKPOINT, ckpt.clone());
    let mut model_from = "ckpt".to_string();
    for (k, s) in a.lora.iter().enumerate() {
        let (path, unet, te) = parse_lora_arg(s)?;
        let id = format!("lora{}", k + 1);
        let params = BTreeMap::from([
            ("lora".to_string(), text(absolute_if_exists(&path))),
            ("strength".to_string(), ParamValue::Float(unet)),
            ("text_strength".to_string(), ParamValue::Float(te)),
        ]);
        r.node(&id, &LORA_LOADER, params);
        r.link((&model_from, "model"), (&id, "model"));
        model_from = id;
    }
    r.node("gen", sampler, gen);
    r.link((&model_from, "model"), ("gen", "model"));
    if let Some(init) = &a.init_image {
        let source = input_file("--init-image", init)?;
        r.node(
            "init",
            &nodes::builtin::LOAD_IMAGE,
            BTreeMap::from([("source".to_string(), text(source))]),
        );
        r.link(("init", "image"), ("gen", "image"));
    }
    if let Some(mask) = &a.mask {
        let source = input_file("--mask", mask)?;
        r.node(
            "mask",
            &nodes::builtin::LOAD_MASK,
            BTreeMap::from([("source".to_string(), text(source))]),
        );
        r.link(("mask", "mask"), ("gen", "mask"));
    }
    let mut control_from: Option<String> = None;
    for (k, s) in a.control.iter().enumerate() {
        let c = ControlArg::parse(s)?;
        let (load, image, apply) = (
            format!("controlnet{}", k + 1),
            format!("control_image{}", k + 1),
            format!("control{}", k + 1),
        );
        // The ControlNet runs where the checkpoint runs: the same --dtype and --device.
        let mut load_params = BTreeMap::from([("controlnet".to_string(), text(c.model.clone()))]);
        for name in ["dtype", "device"] {
            if let Some(v) = ckpt.get(name) {
                load_params.insert(name.to_string(), v.clone());
            }
        }
        r.node(&load, &LOAD_CONTROLNET, load_params);
        r.node(
            &image,
            &nodes::builtin::LOAD_IMAGE,
            BTreeMap::from([("source".to_string(), text(c.image.clone()))]),
        );
        r.node(&apply, &CONTROLNET, c.params.clone());
        r.link((&load, "controlnet"), (&apply, "controlnet"));
        r.link((&image, "image"), (&apply, "image"));
        if let Some(prev) = &control_from {
            r.link((prev, "control"), (&apply, "control"));
        }
        control_from = Some(apply);
    }
    if let Some(last) = &control_from {
        r.link((last, "control"), ("gen", "control"));
    }
    r.node("save", &nodes::builtin::SAVE_IMAGE, save_params(&a.out)?);
    r.link(("gen", "image"), ("save", "image"));
    r.doc.meta.seed = Some(a.seed);
    Ok(r.doc)
}

/// The extensions that mark the image field of `--control`.
const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff"];

/// One `--control MODEL:IMAGE[:STRENGTH[:START:END]]`: the model as the recipe names it, the
/// control image as an absolute path, and the ControlNet node's parameters that were given.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ControlArg {
    model: String,
    image: String,
    params: BTreeMap<String, ParamValue>,
}

impl ControlArg {
    /// Parses the flag's value (see `--help`); errors name the flag, its value and the bad
    /// field.
    fn parse(s: &str) -> Result<ControlArg> {
        let flag = format!("--control {s}");
        let fields: Vec<&str> = s.split(':').collect();
        if fields.len() < 2 {
            bail!("{flag}: expected MODEL:IMAGE[:STRENGTH[:START:END]]");
        }
        let looks_like_image = |f: &str| {
            let lower = f.to_ascii_lowercase();
            IMAGE_EXTENSIONS
                .iter()
                .any(|e| lower.ends_with(&format!(".{e}")))
                || Path::new(f).is_file()
        };
        // The image's last field: the rightmost one that looks like an image (never the first,
        // which belongs to MODEL); with two fields, the second whatever it is.
        let last = match (1..fields.len())
            .rev()
            .find(|&i| looks_like_image(fields[i]))
        {
            Some(i) => i,
            None if fields.len() == 2 => 1,
            None => bail!(
                "{flag}: expected MODEL:IMAGE[:STRENGTH[:START:END]] (no field names an image \
                 file: give the control image a .png, .jpg, … name)"
            ),
        };
        // The image's first field: the longest path ending there that exists (so a path with
        // ':' works when it exists), else the last field alone.
        let first = (1..=last)
            .find(|&j| Path::new(&fields[j..=last].join(":")).is_file())
            .unwrap_or(last);
        let model = fields[..first].join(":");
        let image = fields[first..=last].join(":");
        if model.trim().is_empty() {
            bail!("{flag}: MODEL is empty (expected MODEL:IMAGE[:STRENGTH[:START:END]])");
        }
        let numbers = &fields[last + 1..];
        let names: &[&str] = match numbers.len() {
            0 => &[],
            1 => &["strength"],
            3 => &["strength", "start", "end"],
            n => bail!(
                "{flag}: expected STRENGTH or STRENGTH:START:END after the image {image}, got {n} \
                 fields"
            ),
        };
        let mut params = BTreeMap::new();
        for (name, raw) in names.iter().zip(numbers) {
            if raw.trim().is_empty() {
                continue;
            }
            params.insert(name.to_string(), control_number(&flag, name, raw)?);
        }
        let image = input_file(&format!("{flag}: image"), Path::new(&image))?;
        Ok(ControlArg {
            model: absolute_if_exists(&model),
            image,
            params,
        })
    }
}

/// A number of `--control` checked against the ControlNet node's range for `name`.
fn control_number(flag: &str, name: &str, raw: &str) -> Result<ParamValue> {
    let v: f64 = raw
        .trim()
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
        .ok_or_else(|| anyhow!("{flag}: {name} \"{raw}\" is not a number"))?;
    if let Some(ParamKind::Float { min, max, .. }) = CONTROLNET.param(name).map(|p| &p.kind) {
        if v < *min || v > *max {
            bail!("{flag}: {name} {v} is outside {min}..{max}");
        }
    }
    Ok(ParamValue::Float(v))
}

/// SaveImage's parameters for an `--out FILE`: the file name as the template (the folder is
/// the run's output folder).
fn save_params(out: &Path) -> Result<BTreeMap<String, ParamValue>> {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| anyhow!("--out {}: not a file name", out.display()))?;
    let name = if name.to_ascii_lowercase().ends_with(".png") {
        format!("{}.png", &name[..name.len() - 4])
    } else {
        format!("{name}.png")
    };
    Ok(BTreeMap::from([("filename".to_string(), text(name))]))
}

/// The folder `--out FILE` writes into (created if missing).
fn out_folder(out: &Path) -> Result<PathBuf> {
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// Validates a built recipe and runs it once (run seed `seed`) into `out_dir`, recording it in
/// `store`; returns the saved files.
fn run_recipe(
    doc: GraphDoc,
    what: &str,
    seed: u64,
    out_dir: PathBuf,
    store: Option<PathBuf>,
) -> Result<Vec<PathBuf>> {
    nodes::validate(&doc, &Catalogue::builtin()).map_err(|e| {
        anyhow!(
            "{what}: the flags make an invalid recipe: {}",
            e.to_string().replace('\n', "; ")
        )
    })?;
    let base_dir = std::env::current_dir().context("cannot read the current folder")?;
    let (items, _) = plan(&PlanSpec {
        doc: &doc,
        base_dir: &base_dir,
        count: 1,
        seed,
        sweeps: &[],
        shard: None,
    })?;
    let n_items = items.len();
    let job = BatchJob {
        graph_name: what.to_string(),
        doc,
        base_dir,
        items,
        base_seed: seed,
        shard: None,
        out_dir,
        store_path: store.unwrap_or_else(engine::paths::store_path),
        targets: None,
        graph_path: None,
        embed_assets: false,
        device: None,
    };
    let summary = succeeded(execute(job, n_items, |_| {})?)?;
    Ok(summary.saved.into_iter().map(|s| s.path).collect())
}

pub(crate) fn generate_cmd(a: &GenerateArgs) -> Result<i32> {
    let doc = generate_recipe(a)?;
    let out_dir = out_folder(&a.out)?;
    let saved = run_recipe(doc, "generate", a.seed, out_dir, a.store.clone())?;
    for p in &saved {
        println!("wrote {}", p.display());
    }
    Ok(0)
}

/// The recipe `remove-bg` runs: LoadImage → RemoveBackground → SaveImage (with the mask when
/// `--mask-out` is given).
pub fn remove_bg_recipe(a: &RemoveBgArgs) -> Result<GraphDoc> {
    let spec = &nodes::builtin::REMOVE_BACKGROUND;
    let mut params = BTreeMap::new();
    for p in ParamFlags::<RemoveBgFlags>::params() {
        if let Some(v) = a.params.parse(p)? {
            params.insert(p.name.to_string(), v);
        }
    }
    let mut r = Recipe::new("remove-bg");
    let source = input_file("remove-bg", &a.input)?;
    r.node(
        "photo",
        &nodes::builtin::LOAD_IMAGE,
        BTreeMap::from([("source".to_string(), text(source))]),
    );
    r.node("cut", spec, params);
    r.link(("photo", "image"), ("cut", "image"));
    r.node("save", &nodes::builtin::SAVE_IMAGE, save_params(&a.out)?);
    r.link(("cut", "image"), ("save", "image"));
    if a.mask_out.is_some() {
        r.link(("cut", "mask"), ("save", "mask"));
    }
    Ok(r.doc)
}

pub(crate) fn remove_bg_cmd(a: &RemoveBgArgs) -> Result<i32> {
    let doc = remove_bg_recipe(a)?;
    let out_dir = out_folder(&a.out)?;
    let saved = run_recipe(doc, "remove-bg", 0, out_dir, a.store.clone())?;
    let out = saved
        .first()
        .ok_or_else(|| anyhow!("remove-bg: the recipe saved nothing"))?;
    println!("wrote {}", out.display());
    if let Some(m) = &a.mask_out {
        let beside = mask_path(out);
        std::fs::copy(&beside, m)
            .with_context(|| format!("cannot copy {} to {}", beside.display(), m.display()))?;
        println!("wrote {}", m.display());
    }
    Ok(0)
}

/// Where SaveImage puts an output's mask: `<stem>_mask.png` beside it.
fn mask_path(out: &Path) -> PathBuf {
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    out.with_file_name(format!("{stem}_mask.png"))
}

/// `PATH:WEIGHT[:TE_WEIGHT]` → (path, UNet weight, text weight); the text weight defaults to the
/// weight, the weight to 1.
fn parse_lora_arg(s: &str) -> Result<(String, f64, f64)> {
    let parts: Vec<&str> = s.rsplitn(3, ':').collect();
    let num = |t: &str| t.parse::<f64>().ok();
    // rsplitn gives the pieces from the right: [te?, weight?, path].
    let (path, unet, text) = match parts.as_slice() {
        [te, w, p] if num(te).is_some() && num(w).is_some() => {
            (p.to_string(), num(w).unwrap_or(1.0), num(te).unwrap_or(1.0))
        }
        [w, rest @ ..] if num(w).is_some() => {
            let p: Vec<&str> = rest.iter().rev().copied().collect();
            let w = num(w).unwrap_or(1.0);
            (p.join(":"), w, w)
        }
        _ => (s.to_string(), 1.0, 1.0),
    };
    if path.is_empty() {
        bail!("--lora {s}: expected PATH:WEIGHT[:TE_WEIGHT]");
    }
    Ok((path, unet, text))
}
