//! The ControlNet units of A1111's infotext (the sd-webui-controlnet extension), read and
//! written.
//!
//! Three spellings occur in real files, all read:
//!
//! - since extension 1.1.4xx (A1111 ≥ 1.6): one key per unit, `ControlNet 0: "Module: canny,
//!   Model: control_v11p_sd15_canny [d14c016b], Weight: 1, Resize Mode: Crop and Resize, Low
//!   Vram: False, Processor Res: 512, Threshold A: 100, Threshold B: 200, Guidance Start: 0,
//!   Guidance End: 1, Pixel Perfect: False, Control Mode: Balanced, …"` (the extension's
//!   `serialize_unit`: fields in title case, a field left at −1 is not written, values never hold
//!   `,` or `:`);
//! - extension 1.1.2xx (A1111 1.3–1.6): `ControlNet: "preprocessor: tile_resample, model: …,
//!   weight: 1, starting/ending: (0, 1), resize mode: Crop and Resize, pixel perfect: False,
//!   control mode: Balanced, preprocessor params: (512, 1, 64)"` (`ControlNet N:` with several
//!   units), the params being (processor res, threshold A, threshold B), −1 for unset;
//! - the first versions (early 2023): one key per field, `ControlNet-0 Enabled: True,
//!   ControlNet-0 Module: canny, ControlNet-0 Model: …, ControlNet-0 Weight: 0.5, ControlNet-0
//!   Guidance Start: 0, ControlNet-0 Guidance End: 1` (`ControlNet Module: …` with one unit).
//!
//! [`format_unit`] writes the first spelling. The units stay in [`A1111Params::extra`] as
//! written (so a text reads back byte for byte); [`A1111Params::controlnets`] reads them.
//!
//! **Control Mode** (the extension's `ControlMode`, `scripts/controlnet.py` and `hook.py`):
//! "Balanced" is a plain ControlNet; "My prompt is more important" scales the residuals by
//! 0.825^(12−i) along the 13 blocks (`soft_injection`) on both halves of guidance; "ControlNet is
//! more important" does that too and zeroes the residuals of the unconditional half
//! (`cfg_injection`). diffusers' `guess_mode` feeds the ControlNet the conditional half only and
//! scales the residuals by `logspace(-1, 0, 13)` = 10^(−(12−i)/12) = 0.8254^(12−i): so "ControlNet
//! is more important" ↔ `guess_mode` (the per-block scales agree within 0.6 %), and "My prompt is
//! more important" has no diffusers equivalent (imported as Balanced, reported). The extension's
//! API also writes the modes as numbers 0, 1, 2, read here too.

use crate::interop::{InteropError, Result};

use super::A1111Params;

/// A unit's Control Mode (see the module doc).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ControlMode {
    #[default]
    Balanced,
    /// "My prompt is more important": soft injection on both halves of guidance.
    PromptMoreImportant,
    /// "ControlNet is more important": soft injection, conditional half only (diffusers'
    /// guess mode).
    ControlNetMoreImportant,
}

impl ControlMode {
    /// The extension's text (also its numbers 0, 1, 2).
    pub fn parse(s: &str) -> Option<ControlMode> {
        match s.trim() {
            "Balanced" | "0" => Some(ControlMode::Balanced),
            "My prompt is more important" | "1" => Some(ControlMode::PromptMoreImportant),
            "ControlNet is more important" | "2" => Some(ControlMode::ControlNetMoreImportant),
            _ => None,
        }
    }

    /// The text the extension writes.
    pub fn as_str(self) -> &'static str {
        match self {
            ControlMode::Balanced => "Balanced",
            ControlMode::PromptMoreImportant => "My prompt is more important",
            ControlMode::ControlNetMoreImportant => "ControlNet is more important",
        }
    }

    /// Our ControlNet node's `guess_mode` for this mode.
    pub fn guess_mode(self) -> bool {
        self == ControlMode::ControlNetMoreImportant
    }
}

/// One ControlNet unit of an infotext.
#[derive(Clone, Debug, PartialEq)]
pub struct ControlNetUnit {
    /// The unit's number (`ControlNet 1` → 1; 0 for the one-unit spellings).
    pub index: usize,
    /// The infotext keys it was read from (one, or one per field for the first spelling).
    pub keys: Vec<String>,
    /// The preprocessor (`Module`), e.g. `canny`, `none`, `softedge_pidinet`.
    pub module: String,
    /// The model's name without its hash, e.g. `control_v11p_sd15_canny`; `None` in the text.
    pub model: String,
    /// The hash in brackets after the model's name (the extension shows A1111's old 8-digit
    /// hash; we write the 10-digit AutoV2 hash, as for LoRAs).
    pub model_hash: Option<String>,
    /// `Weight` (diffusers' `controlnet_conditioning_scale`).
    pub weight: f64,
    /// `Resize Mode` as written (`Just Resize`, `Crop and Resize`, `Resize and Fill`; or 0/1/2).
    pub resize_mode: Option<String>,
    /// `Processor Res`.
    pub processor_res: Option<f64>,
    /// `Threshold A` / `Threshold B` (canny: low and high).
    pub threshold_a: Option<f64>,
    pub threshold_b: Option<f64>,
    /// `Guidance Start` / `Guidance End`, fractions of the steps.
    pub guidance_start: f64,
    pub guidance_end: f64,
    /// `Pixel Perfect`.
    pub pixel_perfect: Option<bool>,
    pub control_mode: ControlMode,
    /// Every other field, in order (`Low Vram`, `Hr Option`, `Save Detected Map`, …).
    pub other: Vec<(String, String)>,
}

impl Default for ControlNetUnit {
    fn default() -> Self {
        ControlNetUnit {
            index: 0,
            keys: Vec::new(),
            module: "none".into(),
            model: "None".into(),
            model_hash: None,
            weight: 1.0,
            resize_mode: None,
            processor_res: None,
            threshold_a: None,
            threshold_b: None,
            guidance_start: 0.0,
            guidance_end: 1.0,
            pixel_perfect: None,
            control_mode: ControlMode::Balanced,
            other: Vec::new(),
        }
    }
}

impl ControlNetUnit {
    /// The first key it was read from (`ControlNet 0`), or the key it is written under.
    pub fn key(&self) -> String {
        self.keys
            .first()
            .cloned()
            .unwrap_or_else(|| format!("ControlNet {}", self.index))
    }

    /// Whether the unit names a model (the extension writes `Model: None` for an empty unit).
    pub fn has_model(&self) -> bool {
        !self.model.is_empty() && self.model != "None"
    }

    /// `Model` as the extension writes it: `name [hash]`, or the name alone.
    pub fn model_text(&self) -> String {
        match &self.model_hash {
            Some(h) => format!("{} [{h}]", self.model),
            None => self.model.clone(),
        }
    }

    /// A value of `other` by field name.
    pub fn other(&self, field: &str) -> Option<&str> {
        self.other
            .iter()
            .find(|(k, _)| k == field)
            .map(|(_, v)| v.as_str())
    }

    /// Sets one field from its (title-case or lowercase) name; fields we do not type go to
    /// `other`.
    fn set(&mut self, key: &str, field: &str, value: &str) -> Result<()> {
        let v = value.trim();
        let bad = |what: &str| {
            InteropError::A1111(format!(
                "{key}: \"{field}: {v}\" is not valid: expected {what}"
            ))
        };
        let num = |what: &str| parse_num(v).ok_or_else(|| bad(what));
        match field.to_ascii_lowercase().as_str() {
            "module" | "preprocessor" => self.module = v.to_string(),
            "model" => {
                let (name, hash) = split_model(v);
                self.model = name;
                self.model_hash = hash;
            }
            "weight" => self.weight = num("a number")?,
            "resize mode" => self.resize_mode = Some(v.to_string()),
            "processor res" => self.processor_res = unset(num("a number")?),
            "threshold a" => self.threshold_a = unset(num("a number")?),
            "threshold b" => self.threshold_b = unset(num("a number")?),
            "guidance start" => self.guidance_start = num("a number")?,
            "guidance end" => self.guidance_end = num("a number")?,
            "pixel perfect" => {
                self.pixel_perfect = Some(parse_bool(v).ok_or_else(|| bad("True or False"))?)
            }
            "control mode" => {
                self.control_mode = ControlMode::parse(v).ok_or_else(|| {
                    bad("Balanced, My prompt is more important or ControlNet is more important")
                })?
            }
            "starting/ending" => {
                let (s, e) = pair(v).ok_or_else(|| bad("(start, end)"))?;
                self.guidance_start = s;
                self.guidance_end = e;
            }
            "preprocessor params" => {
                let p = tuple(v).ok_or_else(|| bad("(resolution, threshold a, threshold b)"))?;
                self.processor_res = p.first().copied().and_then(unset);
                self.threshold_a = p.get(1).copied().and_then(unset);
                self.threshold_b = p.get(2).copied().and_then(unset);
            }
            _ => self.other.push((field.to_string(), v.to_string())),
        }
        Ok(())
    }
}

/// −1 is the extension's "not set".
fn unset(v: f64) -> Option<f64> {
    (v != -1.0).then_some(v)
}

fn parse_num(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim() {
        "True" | "true" => Some(true),
        "False" | "false" => Some(false),
        _ => None,
    }
}

/// `(a, b, …)` as numbers.
fn tuple(s: &str) -> Option<Vec<f64>> {
    let inner = s.trim().strip_prefix('(')?.strip_suffix(')')?;
    inner.split(',').map(parse_num).collect()
}

fn pair(s: &str) -> Option<(f64, f64)> {
    match tuple(s)?.as_slice() {
        [a, b] => Some((*a, *b)),
        _ => None,
    }
}

/// `control_v11p_sd15_canny [d14c016b]` → (`control_v11p_sd15_canny`, `d14c016b`).
fn split_model(v: &str) -> (String, Option<String>) {
    let v = v.trim();
    if let Some(open) = v.rfind(" [") {
        if let Some(hash) = v[open + 2..].strip_suffix(']') {
            if !hash.is_empty() && hash.chars().all(|c| c.is_ascii_hexdigit()) {
                return (v[..open].trim().to_string(), Some(hash.to_string()));
            }
        }
    }
    (v.to_string(), None)
}

/// A unit's text split at the commas outside parentheses, each item at its first `:`.
fn fields(key: &str, value: &str) -> Result<Vec<(String, String)>> {
    let mut items = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in value.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth <= 0 => {
                items.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&value[start..]);
    items
        .into_iter()
        .filter(|i| !i.trim().is_empty())
        .map(|item| {
            item.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| {
                    InteropError::A1111(format!(
                        "{key}: \"{}\" is not a \"Field: value\" pair",
                        item.trim()
                    ))
                })
        })
        .collect()
}

/// The unit number in `ControlNet 3` / `ControlNet-3 Module`, 0 when there is none.
fn unit_key(key: &str) -> Option<(usize, Option<&str>)> {
    let rest = key.strip_prefix("ControlNet")?;
    if rest.is_empty() {
        return Some((0, None));
    }
    if let Some(n) = rest.strip_prefix(' ') {
        if let Ok(i) = n.parse::<usize>() {
            return Some((i, None));
        }
        // `ControlNet Module` (the first spelling with one unit).
        return Some((0, Some(n)));
    }
    let rest = rest.strip_prefix('-')?;
    let (n, field) = rest.split_once(' ')?;
    Some((n.parse().ok()?, Some(field)))
}

/// Reads one unit from a `ControlNet N: "…"` value (either of the quoted spellings).
pub fn parse_unit(key: &str, value: &str) -> Result<ControlNetUnit> {
    let (index, _) = unit_key(key).unwrap_or((0, None));
    let mut u = ControlNetUnit {
        index,
        keys: vec![key.to_string()],
        ..ControlNetUnit::default()
    };
    for (field, v) in fields(key, value)? {
        u.set(key, &field, &v)?;
    }
    Ok(u)
}

/// A unit in the extension's current spelling (the value of `ControlNet N`, unquoted): Module,
/// Model, Weight, the fields that are set, Guidance Start/End, Control Mode, then `other`.
pub fn format_unit(u: &ControlNetUnit) -> String {
    let mut out: Vec<(String, String)> = vec![
        ("Module".into(), u.module.clone()),
        ("Model".into(), u.model_text()),
        ("Weight".into(), num_text(u.weight)),
    ];
    if let Some(r) = &u.resize_mode {
        out.push(("Resize Mode".into(), r.clone()));
    }
    for (k, v) in [
        ("Processor Res", u.processor_res),
        ("Threshold A", u.threshold_a),
        ("Threshold B", u.threshold_b),
    ] {
        if let Some(v) = v {
            out.push((k.into(), num_text(v)));
        }
    }
    out.push(("Guidance Start".into(), num_text(u.guidance_start)));
    out.push(("Guidance End".into(), num_text(u.guidance_end)));
    if let Some(p) = u.pixel_perfect {
        let v = if p { "True" } else { "False" };
        out.push(("Pixel Perfect".into(), v.into()));
    }
    out.push(("Control Mode".into(), u.control_mode.as_str().into()));
    out.extend(u.other.iter().cloned());
    out.iter()
        // The extension's values never hold ',' or ':' (they would break the unit).
        .map(|(k, v)| format!("{k}: {}", v.replace([',', ':'], " ")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A number in its shortest form (`1`, `0.5`).
fn num_text(v: f64) -> String {
    format!("{v}")
}

impl A1111Params {
    /// The ControlNet units of the text, in unit order, in whichever spelling they were
    /// written (see the module doc). A unit of the first spelling with `Enabled: False` is
    /// left out. Errors name the key and the field that does not parse.
    pub fn controlnets(&self) -> Result<Vec<ControlNetUnit>> {
        let mut units: Vec<ControlNetUnit> = Vec::new();
        for (k, v) in &self.extra {
            let Some((index, field)) = unit_key(k) else {
                continue;
            };
            match field {
                None => {
                    let mut u = parse_unit(k, v)?;
                    u.index = index;
                    units.push(u);
                }
                Some(field) => {
                    let at = match units.iter().position(|u| {
                        u.index == index
                            && u.keys
                                .first()
                                .is_some_and(|f| unit_key(f).and_then(|x| x.1).is_some())
                    }) {
                        Some(at) => at,
                        None => {
                            units.push(ControlNetUnit {
                                index,
                                ..ControlNetUnit::default()
                            });
                            units.len() - 1
                        }
                    };
                    let u = &mut units[at];
                    u.keys.push(k.clone());
                    if field == "Enabled" {
                        u.other.push((field.to_string(), v.trim().to_string()));
                    } else {
                        u.set(k, field, v)?;
                    }
                }
            }
        }
        units.retain(|u| u.other("Enabled") != Some("False"));
        for u in &mut units {
            u.other.retain(|(k, _)| k != "Enabled");
        }
        units.sort_by_key(|u| u.index);
        Ok(units)
    }
}
