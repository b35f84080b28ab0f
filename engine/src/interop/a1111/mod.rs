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

mod graph;

pub(crate) use graph::report_text;
pub use graph::{from_graph, sampler_name, to_graph, to_graph_with_report, GraphOptions};

use crate::interop::{InteropError, Result};

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
