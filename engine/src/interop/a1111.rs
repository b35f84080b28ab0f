//! AUTOMATIC1111's generation parameters ("infotext"), as stored in a PNG's `parameters` chunk.
//!
//! The text has three parts:
//!
//! ```text
//! a scratch on brushed steel, macro photo <lora:scratch_v2:0.8>     <- prompt (one or more lines)
//! Negative prompt: blurry, lowres                                    <- optional, may span lines
//! Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 42, Size: 512x512, Model: sd15
//! ```
//!
//! The last line is a comma-separated list of `Key: value` pairs. A value that contains a comma,
//! a colon or a newline is written as a JSON string (`Lora hashes: "a: 123, b: 456"`), as A1111
//! itself does. [`parse_parameters`] reads it into [`A1111Params`] (typed fields for the keys we
//! use, every other key kept in order in [`A1111Params::extra`]); [`format_parameters`] writes it
//! back. [`to_graph`] builds an equivalent recipe and [`map_sampler`] maps sampler names onto our
//! scheduler names.

use crate::interop::{
    clamp_f, clamp_i, fixed_seed, size8, text, GraphBuilder, ImportReport, ImportResult,
    InteropError, Result,
};
use nodes::{GraphDoc, ParamValue};

/// One `<lora:name:te[:unet]>` tag taken out of the prompt.
///
/// A1111's extra-network syntax puts the text-encoder multiplier first and the UNet multiplier
/// second; with one number both get it. Named forms `te=`, `unet=` are also read.
#[derive(Clone, Debug, PartialEq)]
pub struct LoraTag {
    /// The LoRA's name as A1111 shows it (its file stem or alias).
    pub name: String,
    /// Weight on the text encoder(s).
    pub te: f64,
    /// Weight on the UNet.
    pub unet: f64,
}

impl LoraTag {
    /// The tag as A1111 writes it: `<lora:name:w>` or `<lora:name:te:unet>`.
    pub fn to_tag(&self) -> String {
        if self.te == self.unet {
            format!("<lora:{}:{}>", self.name, self.te)
        } else {
            format!("<lora:{}:{}:{}>", self.name, self.te, self.unet)
        }
    }
}

/// The parsed generation parameters. Keys we understand get typed fields; every other key is in
/// [`A1111Params::extra`], in the order it appeared.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct A1111Params {
    /// The prompt with the LoRA tags removed.
    pub prompt: String,
    /// The prompt exactly as written, with its tags (used to write the text back unchanged).
    pub raw_prompt: String,
    /// The negative prompt, if the text has a `Negative prompt:` part.
    pub negative: Option<String>,
    /// LoRA (and LyCORIS) tags from the prompt, in order.
    pub loras: Vec<LoraTag>,
    /// `Steps`.
    pub steps: Option<u32>,
    /// `Sampler`, e.g. `DPM++ 2M Karras` or `Euler a`.
    pub sampler: Option<String>,
    /// `Schedule type` (A1111 ≥ 1.9 writes the scheduler separately, e.g. `Karras`).
    pub schedule_type: Option<String>,
    /// `CFG scale`.
    pub cfg_scale: Option<f64>,
    /// `Seed`.
    pub seed: Option<u64>,
    /// `Size` as (width, height).
    pub size: Option<(u32, u32)>,
    /// `Model hash` (A1111's short hash, 10 hex digits for AutoV2).
    pub model_hash: Option<String>,
    /// `Model` (the checkpoint's name without extension).
    pub model: Option<String>,
    /// `Denoising strength` (img2img, inpaint, or the hires-fix second pass).
    pub denoising_strength: Option<f64>,
    /// `Clip skip`.
    pub clip_skip: Option<u32>,
    /// `Mask blur` (inpaint).
    pub mask_blur: Option<f64>,
    /// `VAE` (a separate VAE's name).
    pub vae: Option<String>,
    /// `Lora hashes` as (name, short hash) pairs.
    pub lora_hashes: Vec<(String, String)>,
    /// Every other key, in order, with its unquoted value.
    pub extra: Vec<(String, String)>,
    /// The order the keys appeared in; [`format_parameters`] follows it (keys set but not listed
    /// here are written after them, typed ones first).
    pub key_order: Vec<String>,
}

/// The typed keys, in the order A1111 writes them.
const TYPED_KEYS: &[&str] = &[
    "Steps",
    "Sampler",
    "Schedule type",
    "CFG scale",
    "Seed",
    "Size",
    "Model hash",
    "Model",
    "VAE",
    "Denoising strength",
    "Clip skip",
    "Mask blur",
    "Lora hashes",
];

const NEGATIVE_PREFIX: &str = "Negative prompt:";

impl A1111Params {
    /// The value of `key` (typed or extra) as it is written in the text, unquoted.
    pub fn get(&self, key: &str) -> Option<String> {
        let typed = match key {
            "Steps" => self.steps.map(|v| v.to_string()),
            "Sampler" => self.sampler.clone(),
            "Schedule type" => self.schedule_type.clone(),
            "CFG scale" => self.cfg_scale.map(|v| v.to_string()),
            "Seed" => self.seed.map(|v| v.to_string()),
            "Size" => self.size.map(|(w, h)| format!("{w}x{h}")),
            "Model hash" => self.model_hash.clone(),
            "Model" => self.model.clone(),
            "VAE" => self.vae.clone(),
            "Denoising strength" => self.denoising_strength.map(|v| v.to_string()),
            "Clip skip" => self.clip_skip.map(|v| v.to_string()),
            "Mask blur" => self.mask_blur.map(|v| v.to_string()),
            "Lora hashes" => (!self.lora_hashes.is_empty()).then(|| {
                self.lora_hashes
                    .iter()
                    .map(|(n, h)| format!("{n}: {h}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }),
            _ => return self.extra(key).map(str::to_string),
        };
        typed
    }

    /// An extra (untyped) key's value.
    pub fn extra(&self, key: &str) -> Option<&str> {
        self.extra
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Our scheduler name for this sampler and schedule type, or why there is none. `None` when
    /// the text names no sampler.
    pub fn scheduler(&self) -> Option<std::result::Result<&'static str, String>> {
        self.sampler
            .as_deref()
            .map(|s| map_sampler(s, self.schedule_type.as_deref()))
    }

    /// Whether the text carries hires-fix settings (a second, upscaled img2img pass).
    pub fn has_hires_fix(&self) -> bool {
        self.extra.iter().any(|(k, _)| k.starts_with("Hires "))
    }

    fn set_typed(&mut self, key: &str, value: &str) -> Result<bool> {
        let bad = |what: &str| {
            InteropError::A1111(format!("\"{key}: {value}\" is not valid: expected {what}"))
        };
        let v = value.trim();
        match key {
            "Steps" => self.steps = Some(v.parse().map_err(|_| bad("an integer"))?),
            "Sampler" => self.sampler = Some(v.to_string()),
            "Schedule type" => self.schedule_type = Some(v.to_string()),
            "CFG scale" => self.cfg_scale = Some(parse_f64(v).ok_or_else(|| bad("a number"))?),
            "Seed" => self.seed = Some(v.parse().map_err(|_| bad("a non-negative integer"))?),
            "Size" => {
                let (w, h) = v.split_once('x').ok_or_else(|| bad("WIDTHxHEIGHT"))?;
                let w = w.trim().parse().map_err(|_| bad("WIDTHxHEIGHT"))?;
                let h = h.trim().parse().map_err(|_| bad("WIDTHxHEIGHT"))?;
                self.size = Some((w, h));
            }
            "Model hash" => self.model_hash = Some(v.to_string()),
            "Model" => self.model = Some(v.to_string()),
            "VAE" => self.vae = Some(v.to_string()),
            "Denoising strength" => {
                self.denoising_strength = Some(parse_f64(v).ok_or_else(|| bad("a number"))?)
            }
            "Clip skip" => self.clip_skip = Some(v.parse().map_err(|_| bad("an integer"))?),
            "Mask blur" => self.mask_blur = Some(parse_f64(v).ok_or_else(|| bad("a number"))?),
            "Lora hashes" => {
                self.lora_hashes = v
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|pair| {
                        pair.rsplit_once(':')
                            .map(|(n, h)| (n.trim().to_string(), h.trim().to_string()))
                            .ok_or_else(|| bad("\"name: hash, name: hash\""))
                    })
                    .collect::<Result<_>>()?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

fn parse_f64(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Maps an A1111 sampler name (and the separate `Schedule type` of A1111 ≥ 1.9) to our scheduler
/// name, or says why it has no equivalent. `Automatic` (or no schedule type) means the sampler's
/// own schedule. Old combined names such as `DPM++ 2M Karras` are accepted. The names come from
/// the one scheduler table ([`nodes::schedulers::from_a1111`]).
pub fn map_sampler(
    sampler: &str,
    schedule_type: Option<&str>,
) -> std::result::Result<&'static str, String> {
    nodes::schedulers::from_a1111(sampler, schedule_type).map(|s| s.name)
}

/// Reads A1111's infotext. Errors name the key and value of a typed field that does not parse
/// (e.g. `Steps: many`). A text with no parameter line is all prompt.
pub fn parse_parameters(text: &str) -> Result<A1111Params> {
    let text = text.trim_end_matches(['\n', '\r', ' ', '\t']);
    let lines: Vec<&str> = text.lines().collect();
    let mut p = A1111Params::default();

    let mut body_end = lines.len();
    if let Some(last) = lines.last() {
        if let Some(pairs) = parse_kv_line(last) {
            let has_steps = pairs.iter().any(|(k, _)| k == "Steps");
            if pairs.len() >= 3 || has_steps {
                body_end -= 1;
                for (k, v) in pairs {
                    if !p.set_typed(&k, &v)? {
                        p.extra.push((k.clone(), v));
                    }
                    p.key_order.push(k);
                }
            }
        }
    }

    let body = &lines[..body_end];
    let neg_at = body.iter().position(|l| l.starts_with(NEGATIVE_PREFIX));
    let prompt_lines = &body[..neg_at.unwrap_or(body.len())];
    p.raw_prompt = prompt_lines.join("\n");
    if let Some(i) = neg_at {
        let first = body[i][NEGATIVE_PREFIX.len()..].trim_start();
        let mut neg = vec![first];
        neg.extend_from_slice(&body[i + 1..]);
        p.negative = Some(neg.join("\n"));
    }
    let (prompt, loras) = extract_lora_tags(&p.raw_prompt)?;
    p.prompt = prompt;
    p.loras = loras;
    Ok(p)
}

/// Takes the `<lora:…>` and `<lyco:…>` tags out of a prompt. Returns the tidied prompt (the
/// separators the tags leave behind are removed) and the tags in order.
pub fn extract_lora_tags(prompt: &str) -> Result<(String, Vec<LoraTag>)> {
    let mut out = String::with_capacity(prompt.len());
    let mut tags = Vec::new();
    let mut rest = prompt;
    while let Some(start) = rest.find('<') {
        let after = &rest[start + 1..];
        let body_len = after.find('>');
        let inner = body_len.map(|e| &after[..e]);
        let lora_body =
            inner.and_then(|b| b.strip_prefix("lora:").or_else(|| b.strip_prefix("lyco:")));
        match (lora_body, body_len) {
            (Some(b), Some(e)) => {
                tags.push(parse_lora_tag(b)?);
                out.push_str(&rest[..start]);
                rest = &after[e + 1..];
            }
            _ => {
                out.push_str(&rest[..start + 1]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    if tags.is_empty() {
        return Ok((out, tags));
    }
    Ok((tidy_after_removal(&out), tags))
}

fn parse_lora_tag(body: &str) -> Result<LoraTag> {
    let mut parts = body.split(':');
    let name = parts.next().unwrap_or("").trim().to_string();
    if name.is_empty() {
        return Err(InteropError::A1111(format!(
            "LoRA tag <lora:{body}> has no name"
        )));
    }
    let bad = |s: &str| InteropError::A1111(format!("LoRA tag <lora:{body}>: bad weight \"{s}\""));
    let mut positional = Vec::new();
    let (mut te, mut unet) = (None, None);
    for part in parts {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("te=") {
            te = Some(parse_f64(v).ok_or_else(|| bad(part))?);
        } else if let Some(v) = part.strip_prefix("unet=") {
            unet = Some(parse_f64(v).ok_or_else(|| bad(part))?);
        } else if part.contains('=') {
            // Other named options (e.g. dyn=) have no meaning for us; ignored.
        } else {
            positional.push(parse_f64(part).ok_or_else(|| bad(part))?);
        }
    }
    let te = te.or(positional.first().copied()).unwrap_or(1.0);
    let unet = unet.or(positional.get(1).copied()).unwrap_or(te);
    Ok(LoraTag { name, te, unet })
}

/// Cleans the separators a removed tag leaves: doubled commas and spaces, and trailing ones.
fn tidy_after_removal(s: &str) -> String {
    let lines: Vec<String> = s
        .lines()
        .map(|line| {
            let mut l = line.to_string();
            loop {
                let before = l.len();
                l = l.replace("  ", " ").replace(" ,", ",").replace(",,", ",");
                if l.len() == before {
                    break;
                }
            }
            l.trim_matches(|c: char| c == ',' || c.is_whitespace())
                .to_string()
        })
        .collect();
    lines.join("\n").trim().to_string()
}

/// Whether a key looks like an A1111 key: a word character, then word characters, spaces,
/// `-` or `/` (A1111's own pattern).
fn is_key(k: &str) -> bool {
    let mut chars = k.chars();
    let word = |c: char| c.is_alphanumeric() || c == '_';
    match chars.next() {
        Some(c) if word(c) => {}
        _ => return false,
    }
    k.chars().count() >= 2 && chars.all(|c| word(c) || c == ' ' || c == '-' || c == '/')
}

/// Parses `Key: value, Key: "quoted, value", …`. A segment without a key is appended to the
/// previous value (older A1111 versions left some commas unquoted). `None` if the line does not
/// start with a key.
fn parse_kv_line(line: &str) -> Option<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut rest = line.trim();
    while !rest.is_empty() {
        let colon = rest.find(':');
        let comma = rest.find(',');
        let key = match (colon, comma) {
            (Some(c), Some(m)) if m < c => None,
            (Some(c), _) if is_key(rest[..c].trim()) => Some(c),
            _ => None,
        };
        let Some(c) = key else {
            // Not a key: continuation of the previous value.
            let (seg, next) = match comma {
                Some(m) => (&rest[..m], &rest[m + 1..]),
                None => (rest, ""),
            };
            let last = out.last_mut()?;
            last.1.push_str(", ");
            last.1.push_str(seg.trim());
            rest = next.trim_start();
            continue;
        };
        let k = rest[..c].trim().to_string();
        rest = rest[c + 1..].trim_start();
        let value;
        if rest.starts_with('"') {
            let end = closing_quote(rest)?;
            value = serde_json::from_str::<String>(&rest[..=end]).ok()?;
            rest = rest[end + 1..].trim_start();
            if !rest.is_empty() {
                rest = rest.strip_prefix(',')?.trim_start();
            }
        } else {
            match rest.find(',') {
                Some(m) => {
                    value = rest[..m].trim().to_string();
                    rest = rest[m + 1..].trim_start();
                }
                None => {
                    value = rest.trim().to_string();
                    rest = "";
                }
            }
        }
        out.push((k, value));
    }
    (!out.is_empty()).then_some(out)
}

/// The byte index of the quote closing the JSON string that starts at `s[0]`.
fn closing_quote(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(i),
            _ => {}
        }
    }
    None
}

/// A value as A1111 writes it: JSON-quoted when it holds a comma, a colon or a newline.
fn quote(v: &str) -> String {
    if v.contains([',', ':', '\n']) || v.starts_with('"') {
        serde_json::to_string(v).unwrap_or_else(|_| v.to_string())
    } else {
        v.to_string()
    }
}

/// Writes the parameters in A1111's format. `parse_parameters(&format_parameters(p))` gives `p`
/// back for any `p` that came from [`parse_parameters`], and a text written in A1111's own
/// style comes back byte for byte (numbers are written in their shortest form, so `7.0` becomes
/// `7`).
pub fn format_parameters(p: &A1111Params) -> String {
    let mut out = String::new();
    let prompt = match extract_lora_tags(&p.raw_prompt) {
        Ok((clean, tags)) if clean == p.prompt && tags == p.loras => p.raw_prompt.clone(),
        _ => {
            let mut s = p.prompt.clone();
            for t in &p.loras {
                if !s.is_empty() {
                    s.push_str(", ");
                }
                s.push_str(&t.to_tag());
            }
            s
        }
    };
    out.push_str(&prompt);
    if let Some(neg) = &p.negative {
        out.push('\n');
        out.push_str(NEGATIVE_PREFIX);
        out.push(' ');
        out.push_str(neg);
    }
    let mut keys: Vec<&str> = p.key_order.iter().map(String::as_str).collect();
    for k in TYPED_KEYS
        .iter()
        .copied()
        .chain(p.extra.iter().map(|(k, _)| k.as_str()))
    {
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let pairs: Vec<String> = keys
        .iter()
        .filter_map(|k| p.get(k).map(|v| format!("{k}: {}", quote(&v))))
        .collect();
    if !pairs.is_empty() {
        out.push('\n');
        out.push_str(&pairs.join(", "));
    }
    out
}

/// Inputs of [`to_graph_with_report`] that the infotext cannot give.
#[derive(Clone, Debug)]
pub struct GraphOptions<'a> {
    /// Checkpoint file name or path for LoadCheckpoint. `None`: `<Model>.safetensors`.
    pub checkpoint_hint: Option<&'a str>,
    /// LoadImage source for img2img and inpaint (A1111 does not store the input image).
    pub init_image: &'a str,
    /// LoadMask source for inpaint (A1111 does not store the mask).
    pub mask_image: &'a str,
}

impl Default for GraphOptions<'_> {
    fn default() -> Self {
        GraphOptions {
            checkpoint_hint: None,
            init_image: "init.png",
            mask_image: "mask.png",
        }
    }
}

/// Extra keys that change nothing in the image, or that [`to_graph_with_report`] reads itself.
const QUIET_KEYS: &[&str] = &[
    "Version",
    "Inpaint area",
    "Masked area padding",
    "Masked content",
    "RNG",
    "Hires upscale",
    "Hires steps",
    "Hires upscaler",
    "Hires resize-1",
    "Hires resize-2",
];

/// An equivalent recipe: LoadCheckpoint → one LoraLoader per tag → Txt2Img → SaveImage; or
/// Img2Img (from a LoadImage of `init_image`) when a denoising strength is given without
/// hires-fix keys. Anything not carried over is written to the graph's `meta.notes`; use
/// [`to_graph_with_report`] for a structured report and inpaint placeholders.
pub fn to_graph(p: &A1111Params, checkpoint_hint: Option<&str>, init_image: &str) -> GraphDoc {
    to_graph_with_report(
        p,
        &GraphOptions {
            checkpoint_hint,
            init_image,
            ..GraphOptions::default()
        },
    )
    .graph
}

/// Like [`to_graph`], with a report. The kind of recipe follows the keys:
/// - hires fix (`Hires upscale` …): Txt2Img → Resize → Img2Img (the A1111 upscaler is replaced
///   by a Lanczos resize, noted);
/// - `Denoising strength` with `Mask blur`: Inpaint from LoadImage + LoadMask placeholders;
/// - `Denoising strength` alone: Img2Img from a LoadImage placeholder;
/// - otherwise Txt2Img.
pub fn to_graph_with_report(p: &A1111Params, opts: &GraphOptions) -> ImportResult {
    let mut b = GraphBuilder::new();
    let mut report = ImportReport::default();
    let notes = &mut report.notes;
    let mut x = 0.0f32;
    let mut step = || {
        let at = [x, 0.0];
        x += 280.0;
        at
    };

    // Checkpoint.
    let checkpoint = match (opts.checkpoint_hint, &p.model) {
        (Some(h), _) => h.to_string(),
        (None, Some(m)) => {
            notes.push(format!(
                "checkpoint taken from the Model name: \"{m}.safetensors\" (hash {})",
                p.model_hash.as_deref().unwrap_or("unknown")
            ));
            format!("{m}.safetensors")
        }
        (None, None) => {
            notes.push("no Model in the parameters: choose a checkpoint".into());
            String::new()
        }
    };
    let mut ck = vec![("checkpoint", text(checkpoint))];
    if let Some(v) = &p.vae {
        ck.push(("vae", text(v.clone())));
    }
    if let Some(c) = p.clip_skip {
        ck.push((
            "clip_skip",
            ParamValue::Int(clamp_i(i64::from(c), 1, 12, "Clip skip", notes)),
        ));
    }
    b.node("checkpoint", "LoadCheckpoint", ck);
    b.pos("checkpoint", step());
    let mut model_from = "checkpoint".to_string();

    // LoRAs.
    for (i, t) in p.loras.iter().enumerate() {
        let id = format!("lora{}", i + 1);
        let strength = clamp_f(t.unet, -4.0, 4.0, "LoRA UNet weight", notes);
        let te = clamp_f(t.te, -4.0, 4.0, "LoRA text weight", notes);
        b.node(
            &id,
            "LoraLoader",
            vec![
                ("lora", text(format!("{}.safetensors", t.name))),
                ("strength", ParamValue::Float(strength)),
                ("text_strength", ParamValue::Float(te)),
            ],
        );
        b.link((&model_from, "model"), (&id, "model"));
        b.pos(&id, step());
        model_from = id;
    }
    if !p.loras.is_empty() {
        notes.push("LoRA files are looked up as <name>.safetensors".into());
    }
    if p.raw_prompt.contains("<hypernet:") {
        report
            .unsupported
            .push(("prompt".into(), "hypernet tag".into()));
    }

    // Sampler settings shared by every sampler node.
    let mut common: Vec<(&str, ParamValue)> = vec![("prompt", text(p.prompt.clone()))];
    if let Some(n) = &p.negative {
        common.push(("negative", text(n.clone())));
    }
    if let Some(s) = p.steps {
        common.push((
            "steps",
            ParamValue::Int(clamp_i(i64::from(s), 1, 500, "Steps", notes)),
        ));
    }
    if let Some(c) = p.cfg_scale {
        common.push((
            "cfg",
            ParamValue::Float(clamp_f(c, 0.0, 30.0, "CFG scale", notes)),
        ));
    }
    match p.scheduler() {
        Some(Ok(s)) => common.push(("scheduler", text(s))),
        Some(Err(why)) => {
            report
                .unsupported
                .push(("Sampler".into(), p.sampler.clone().unwrap_or_default()));
            notes.push(format!("{why}; the model's default scheduler is used"));
        }
        None => {}
    }
    if let Some(s) = p.seed {
        common.push(("seed", fixed_seed(s)));
    }
    // A1111 always parses (emphasis) and long prompts.
    common.push(("prompt_weighting", ParamValue::Bool(true)));
    if p.extra("RNG").map(str::trim) != Some("CPU") && p.seed.is_some() {
        notes.push(
            "A1111 drew the noise on the GPU (no \"RNG: CPU\"); the same seed gives another \
             image here"
                .into(),
        );
    }
    let size = p.size.map(|(w, h)| {
        (
            size8(i64::from(w), "width", notes),
            size8(i64::from(h), "height", notes),
        )
    });
    let with_size = |mut v: Vec<(&'static str, ParamValue)>, s: Option<(i64, i64)>| {
        if let Some((w, h)) = s {
            v.push(("width", ParamValue::Int(w)));
            v.push(("height", ParamValue::Int(h)));
        }
        v
    };

    let sampler_id;
    if p.has_hires_fix() {
        b.node("txt2img", "Txt2Img", with_size(common.clone(), size));
        b.link((&model_from, "model"), ("txt2img", "model"));
        b.pos("txt2img", step());
        let scale = p.extra("Hires upscale").and_then(parse_f64);
        let explicit = (
            p.extra("Hires resize-1")
                .and_then(|v| v.parse::<i64>().ok()),
            p.extra("Hires resize-2")
                .and_then(|v| v.parse::<i64>().ok()),
        );
        let (w, h) = match (explicit, scale, size) {
            ((Some(w), Some(h)), _, _) if w > 0 && h > 0 => (w, h),
            (_, Some(s), Some((w, h))) => ((w as f64 * s) as i64, (h as f64 * s) as i64),
            _ => {
                notes.push("hires fix without a usable upscale or size; 2× assumed".into());
                size.map(|(w, h)| (w * 2, h * 2)).unwrap_or((1024, 1024))
            }
        };
        let (w, h) = (
            size8(w, "hires width", notes),
            size8(h, "hires height", notes),
        );
        b.node(
            "hires_resize",
            "Resize",
            vec![
                ("width", ParamValue::Int(w)),
                ("height", ParamValue::Int(h)),
                ("mode", text("stretch")),
                ("filter", text("lanczos")),
            ],
        );
        b.link(("txt2img", "image"), ("hires_resize", "image"));
        b.pos("hires_resize", step());
        notes.push(format!(
            "hires fix rebuilt as Resize (lanczos) + Img2Img; A1111's upscaler \"{}\" is not \
             reproduced",
            p.extra("Hires upscaler").unwrap_or("default")
        ));
        let mut second = with_size(common.clone(), Some((w, h)));
        if let Some(s) = p.extra("Hires steps").and_then(|v| v.parse::<i64>().ok()) {
            if s > 0 {
                second.retain(|(k, _)| *k != "steps");
                second.push((
                    "steps",
                    ParamValue::Int(clamp_i(s, 1, 500, "Hires steps", notes)),
                ));
            }
        }
        let strength = p.denoising_strength.unwrap_or(0.7);
        second.push((
            "strength",
            ParamValue::Float(clamp_f(strength, 0.0, 1.0, "Denoising strength", notes)),
        ));
        b.node("hires", "Img2Img", second);
        b.link((&model_from, "model"), ("hires", "model"));
        b.link(("hires_resize", "image"), ("hires", "image"));
        b.pos("hires", step());
        sampler_id = "hires";
    } else if let Some(strength) = p.denoising_strength {
        let strength = clamp_f(strength, 0.0, 1.0, "Denoising strength", notes);
        b.node(
            "image",
            "LoadImage",
            vec![("source", text(opts.init_image))],
        );
        b.pos("image", [0.0, 240.0]);
        notes.push(format!(
            "A1111 does not store the input image: LoadImage reads \"{}\"",
            opts.init_image
        ));
        let mut params = with_size(common, size);
        params.push(("strength", ParamValue::Float(strength)));
        if let Some(blur) = p.mask_blur {
            params.push((
                "mask_blur",
                ParamValue::Float(clamp_f(blur, 0.0, 64.0, "Mask blur", notes)),
            ));
            if p.extra("Inpaint area") == Some("Only masked") {
                params.push(("only_masked", ParamValue::Bool(true)));
            }
            if let Some(pad) = p
                .extra("Masked area padding")
                .and_then(|v| v.parse::<i64>().ok())
            {
                params.push((
                    "padding",
                    ParamValue::Int(clamp_i(pad, 0, 1024, "Masked area padding", notes)),
                ));
            }
            match p.extra("Masked content") {
                None | Some("original") => {}
                Some(other) => report
                    .unsupported
                    .push(("Masked content".into(), other.to_string())),
            }
            b.node("mask", "LoadMask", vec![("source", text(opts.mask_image))]);
            b.pos("mask", [0.0, 400.0]);
            notes.push(format!(
                "A1111 does not store the mask: LoadMask reads \"{}\"",
                opts.mask_image
            ));
            b.node("inpaint", "Inpaint", params);
            b.link(("mask", "mask"), ("inpaint", "mask"));
            sampler_id = "inpaint";
        } else {
            b.node("img2img", "Img2Img", params);
            sampler_id = "img2img";
        }
        b.link((&model_from, "model"), (sampler_id, "model"));
        b.link(("image", "image"), (sampler_id, "image"));
        b.pos(sampler_id, step());
    } else {
        b.node("txt2img", "Txt2Img", with_size(common, size));
        b.link((&model_from, "model"), ("txt2img", "model"));
        b.pos("txt2img", step());
        sampler_id = "txt2img";
    }

    b.node(
        "save",
        "SaveImage",
        vec![("filename", text("{graph}/{run:05}-{item:04}.png"))],
    );
    b.link((sampler_id, "image"), ("save", "image"));
    b.pos("save", step());

    for (k, v) in &p.extra {
        if !QUIET_KEYS.contains(&k.as_str()) {
            report.notes.push(format!("not carried over: {k}: {v}"));
        }
    }
    b.doc.meta.title = "Imported A1111 parameters".into();
    b.doc.meta.seed = p.seed;
    b.doc.meta.notes = report_text(&report);
    ImportResult {
        graph: b.doc,
        report,
    }
}

/// The report as lines of text, for `meta.notes`.
pub(crate) fn report_text(r: &ImportReport) -> String {
    r.unsupported
        .iter()
        .map(|(id, what)| format!("unsupported: {id} ({what})"))
        .chain(r.notes.iter().cloned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A1111's `Sampler:` text for one of ours (the inverse of [`map_sampler`]): the combined name
/// (`DPM++ 2M Karras`) that every A1111 version reads, from [`nodes::schedulers::a1111_name`].
pub fn sampler_name(ours: &str) -> Option<String> {
    nodes::schedulers::a1111_name(ours)
}

/// The A1111 "parameters" of a recipe: from its first sampler node (Txt2Img, Img2Img or
/// Inpaint), its seed resolved against `run_seed`, the checkpoint and LoRA chain upstream of
/// it, and model hashes from the document's model references. `None` when the recipe has no
/// sampler node.
pub fn from_graph(doc: &GraphDoc, run_seed: u64) -> Option<A1111Params> {
    // Missing parameters take their catalogue defaults, as the executor does.
    let catalogue = nodes::Catalogue::builtin();
    let mut doc = doc.clone();
    for n in doc.nodes.values_mut() {
        if let Some(spec) = catalogue.get(&n.kind) {
            for p in spec.params {
                n.params
                    .entry(p.name.to_string())
                    .or_insert_with(|| p.default_value());
            }
        }
    }
    let doc = &doc;
    let (id, node) = doc
        .nodes
        .iter()
        .find(|(_, n)| matches!(n.kind.as_str(), "Txt2Img" | "Img2Img" | "Inpaint"))?;
    let text =
        |n: &nodes::NodeDoc, k: &str| n.params.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let num = |n: &nodes::NodeDoc, k: &str| n.params.get(k).and_then(|v| v.as_f64());
    let mut p = A1111Params {
        prompt: text(node, "prompt").unwrap_or_default(),
        negative: text(node, "negative").filter(|s| !s.is_empty()),
        steps: num(node, "steps").map(|v| v as u32),
        cfg_scale: num(node, "cfg"),
        seed: node
            .params
            .get("seed")
            .and_then(|v| v.as_seed())
            .map(|s| s.resolve(run_seed)),
        ..A1111Params::default()
    };
    if let Some(s) = text(node, "scheduler").and_then(|s| sampler_name(&s)) {
        p.sampler = Some(s);
    }
    let (w, h) = (
        num(node, "width").unwrap_or(0.0),
        num(node, "height").unwrap_or(0.0),
    );
    if w > 0.0 && h > 0.0 {
        p.size = Some((w as u32, h as u32));
    }
    if node.kind != "Txt2Img" {
        p.denoising_strength = num(node, "strength");
    }
    if node.kind == "Inpaint" {
        p.mask_blur = num(node, "mask_blur");
    }
    // Walk the model chain upstream: LoraLoader* → LoadCheckpoint.
    let stem = |s: &str| {
        std::path::Path::new(s)
            .file_stem()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| s.to_string())
    };
    let hash_of = |name: &str| {
        doc.models
            .iter()
            .find(|m| stem(&m.name) == name && m.sha256.len() >= 10)
            .map(|m| m.sha256[..10].to_string())
    };
    let mut cur = id.clone();
    let mut loras = Vec::new();
    for _ in 0..64 {
        let Some(link) = doc
            .links
            .iter()
            .find(|l| l.to.0 == cur && l.to.1 == "model")
        else {
            break;
        };
        let Some(up) = doc.nodes.get(&link.from.0) else {
            break;
        };
        match up.kind.as_str() {
            "LoraLoader" => {
                let name = stem(&text(up, "lora").unwrap_or_default());
                loras.push(LoraTag {
                    te: num(up, "text_strength").unwrap_or(1.0),
                    unet: num(up, "strength").unwrap_or(1.0),
                    name,
                });
            }
            "LoadCheckpoint" => {
                let name = stem(&text(up, "checkpoint").unwrap_or_default());
                p.model_hash = hash_of(&name);
                p.model = Some(name);
                let skip = num(up, "clip_skip").unwrap_or(1.0);
                if skip > 1.0 {
                    p.clip_skip = Some(skip as u32);
                }
                let vae = text(up, "vae").unwrap_or_default();
                if !vae.is_empty() {
                    p.vae = Some(stem(&vae));
                }
                break;
            }
            _ => break,
        }
        cur = link.from.0.clone();
    }
    loras.reverse();
    p.lora_hashes = loras
        .iter()
        .filter_map(|l| hash_of(&l.name).map(|h| (l.name.clone(), h)))
        .collect();
    let tags: String = loras.iter().map(|l| format!(" {}", l.to_tag())).collect();
    p.raw_prompt = format!("{}{tags}", p.prompt);
    p.loras = loras;
    Some(p)
}
