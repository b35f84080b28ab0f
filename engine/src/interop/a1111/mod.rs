//! AUTOMATIC1111's generation parameters ("infotext"), as stored in a PNG's `parameters` chunk.
//!
//! The text has three parts, and sometimes a fourth:
//!
//! ```text
//! a scratch on brushed steel, macro photo <lora:scratch_v2:0.8>     <- prompt (one or more lines)
//! Negative prompt: blurry, lowres                                    <- optional, may span lines
//! Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 42, Size: 512x512, Model: sd15
//! Template: a scratch on {brushed|polished} steel                    <- optional trailing fields
//! ```
//!
//! The parameters line is a comma-separated list of `Key: value` pairs. A value that contains a
//! comma, a colon or a newline is written as a JSON string (`Lora hashes: "a: 123, b: 456"`), as
//! A1111 itself does. Which line is the parameters line, what a pair is, and how LoRA tags leave
//! the prompt follow A1111's own code (see `text.rs`): the line is found wherever it is, and the
//! lines after it (sd-dynamic-prompts' `Template:` / `Negative Template:`) are kept as
//! [`A1111Params::trailing`] fields, not prompt text.
//!
//! Prompts are kept byte for byte: [`A1111Params::raw_prompt`] is the prompt as written and
//! [`A1111Params::prompt`] is what A1111's text encoder sees (the extra-network tags cut out,
//! nothing else touched: a trailing comma or a " ," changes the CLIP tokens). Line breaks are
//! read at `\n`, `\r\n` read as `\n`.
//!
//! [`parse_parameters`] reads the text into [`A1111Params`] (typed fields for the keys we use,
//! every other key kept in order in [`A1111Params::extra`]); [`format_parameters`] writes it
//! back, so that `format_parameters(&parse_parameters(t)?)` gives the same prompt and negative
//! bytes and the same fields (and, for text A1111 wrote, the same text). [`to_graph`] builds an
//! equivalent recipe and [`map_sampler`] maps sampler names onto our scheduler names;
//! [`from_graph`] and [`procedural_parameters`] write the parameters of our own outputs.
//!
//! ControlNet units (`ControlNet 0: "Module: canny, Model: …"` and the extension's two older
//! spellings) stay in [`A1111Params::extra`] as written; [`A1111Params::controlnets`] reads them
//! into [`ControlNetUnit`]s, [`to_graph_with_report`] turns them into LoadControlNet →
//! (Canny) → ControlNet nodes on the sampler's `control` input, and [`from_graph`] writes the
//! ControlNet nodes of a recipe back as units (see `controlnet.rs` for the spellings and the
//! Control Mode ↔ guess mode mapping).

mod controlnet;
mod controlnet_graph;
mod graph;
mod text;

pub use controlnet::{format_unit, parse_unit, ControlMode, ControlNetUnit};

pub(crate) use graph::report_text;
pub use graph::{
    from_graph, procedural_parameters, sampler_name, to_graph, to_graph_with_report, GraphOptions,
};

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
    /// The prompt the text encoder sees: [`A1111Params::raw_prompt`] with its extra-network
    /// tags (`<lora:…>`, `<hypernet:…>`, …) cut out, byte for byte otherwise.
    pub prompt: String,
    /// The prompt exactly as written, with its tags (used to write the text back unchanged).
    pub raw_prompt: String,
    /// The negative prompt, if the text has a `Negative prompt:` part: the bytes after
    /// `Negative prompt:` and the one space A1111 writes there.
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
    /// `Seed: -1`: A1111's "random seed" (its `get_fixed_seed` draws one); the recipe then uses
    /// the run's seed.
    pub random_seed: bool,
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
    /// Every other key of the parameters line, in order, with its unquoted value.
    pub extra: Vec<(String, String)>,
    /// Fields on the lines after the parameters line (sd-dynamic-prompts' `Template:`,
    /// `Negative Template:`), as `(key, text after "key:")`, byte for byte; a value may span
    /// lines. Written back after the parameters line.
    pub trailing: Vec<(String, String)>,
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
    /// The value of `key` (typed, extra or trailing) as it is written in the text, unquoted.
    pub fn get(&self, key: &str) -> Option<String> {
        self.get_line_value(key)
            .or_else(|| self.extra(key).map(str::to_string))
    }

    /// The value of `key` on the parameters line (typed or extra), unquoted.
    fn get_line_value(&self, key: &str) -> Option<String> {
        let typed = match key {
            "Steps" => self.steps.map(|v| v.to_string()),
            "Sampler" => self.sampler.clone(),
            "Schedule type" => self.schedule_type.clone(),
            "CFG scale" => self.cfg_scale.map(|v| v.to_string()),
            "Seed" if self.random_seed => Some("-1".to_string()),
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
            _ => {
                return self
                    .extra
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.clone())
            }
        };
        typed
    }

    /// An extra (untyped) key's value: from the parameters line, else from a trailing field
    /// (without the spaces after its colon).
    pub fn extra(&self, key: &str) -> Option<&str> {
        self.extra
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .or_else(|| {
                self.trailing
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.trim_start_matches(' '))
            })
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
            "Seed" if v == "-1" => {
                self.seed = None;
                self.random_seed = true;
            }
            "Seed" => {
                self.seed = Some(
                    v.parse()
                        .map_err(|_| bad("a non-negative integer, or -1 (random)"))?,
                )
            }
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
/// (e.g. `Steps: many`). A text with no parameters line is all prompt.
pub fn parse_parameters(text: &str) -> Result<A1111Params> {
    let lines = text::lines(text);
    let mut p = A1111Params::default();

    let body_end = match text::params_line(&lines) {
        Some(i) => {
            for (k, v) in text::pairs(lines[i]) {
                if !p.set_typed(&k, &v)? {
                    p.extra.push((k.clone(), v));
                }
                p.key_order.push(k);
            }
            p.trailing = text::trailing_fields(&lines[i + 1..]);
            i
        }
        None => lines.len(),
    };

    // A1111: the first line that starts (after spaces) with "Negative prompt:" begins the
    // negative prompt; everything before it is the prompt.
    let body = &lines[..body_end];
    let neg_at = body
        .iter()
        .position(|l| l.trim_start().starts_with(NEGATIVE_PREFIX));
    p.raw_prompt = body[..neg_at.unwrap_or(body.len())].join("\n");
    if let Some(i) = neg_at {
        let first = body[i].trim_start()[NEGATIVE_PREFIX.len()..].to_string();
        let first = first.strip_prefix(' ').unwrap_or(&first);
        let mut neg = vec![first];
        neg.extend_from_slice(&body[i + 1..]);
        p.negative = Some(neg.join("\n"));
    }
    let (prompt, loras) = extract_lora_tags(&p.raw_prompt)?;
    p.prompt = prompt;
    p.loras = loras;
    Ok(p)
}

/// Cuts the extra-network tags (`<lora:…>`, `<lyco:…>`, `<hypernet:…>`, any `<name:args>`)
/// out of a prompt, as A1111 does before encoding it: the tags' bytes go, nothing else (no
/// separators are tidied: they are tokens too). Returns that prompt and the LoRA / LyCORIS
/// tags in order. A LoRA tag without a name or with a weight that is not a number is an error.
pub fn extract_lora_tags(prompt: &str) -> Result<(String, Vec<LoraTag>)> {
    let mut out = String::with_capacity(prompt.len());
    let mut tags = Vec::new();
    let mut at = 0;
    for (net, args, range) in text::extra_networks(prompt) {
        if matches!(net, "lora" | "lyco") {
            tags.push(parse_lora_tag(args)?);
        }
        out.push_str(&prompt[at..range.start]);
        at = range.end;
    }
    out.push_str(&prompt[at..]);
    Ok((out, tags))
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

/// Writes the parameters in A1111's format. `parse_parameters(&format_parameters(p))` gives `p`
/// back for any `p` that came from [`parse_parameters`], and a text written in A1111's own
/// style comes back byte for byte (numbers are written in their shortest form, so `7.0` becomes
/// `7`). When [`A1111Params::raw_prompt`] does not hold `prompt` and `loras`, the prompt is
/// written as `prompt` followed directly by the tags (as A1111 appends them), so the prompt the
/// encoder sees is `prompt`, byte for byte.
pub fn format_parameters(p: &A1111Params) -> String {
    let mut out = String::new();
    let prompt = match extract_lora_tags(&p.raw_prompt) {
        Ok((clean, tags)) if clean == p.prompt && tags == p.loras => p.raw_prompt.clone(),
        _ => {
            let mut s = p.prompt.clone();
            for t in &p.loras {
                s.push_str(&t.to_tag());
            }
            s
        }
    };
    out.push_str(&prompt);
    if let Some(neg) = &p.negative {
        if !out.is_empty() {
            out.push('\n');
        }
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
        .filter_map(|k| {
            p.get_line_value(k)
                .map(|v| format!("{k}: {}", text::quote(&v)))
        })
        .collect();
    if !pairs.is_empty() {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&pairs.join(", "));
    }
    text::format_trailing(&mut out, &p.trailing);
    out
}
