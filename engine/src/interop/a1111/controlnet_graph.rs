//! ControlNet units ↔ our graph: [`add_controls`] builds the nodes of an infotext's units,
//! [`units_from_graph`] writes the units of the ControlNet nodes upstream of a sampler.
//!
//! Each unit `ControlNet N` becomes:
//!
//! - `cnN_model` LoadControlNet: the model by name (`control_v11p_sd15_canny.safetensors`, looked
//!   up in the model folders; the bracketed hash is reported, not checked);
//! - `cnN_image` LoadImage with an **empty path**: A1111 does not store the control image (the
//!   report lists it as a missing input);
//! - the preprocessor: `canny` → `cnN_canny` Canny (Threshold A → low, Threshold B → high, on
//!   the same 0..255 scale, cv2.Canny in both); `none` → the image as it is; the `inpaint*`
//!   modules of an inpaint recipe → the recipe's image and mask (A1111 uses the img2img input
//!   and mask); any other module → the image as it is, reported: the user loads a control map
//!   made elsewhere;
//! - `cnN` ControlNet: Weight → strength, Guidance Start/End → start/end, Control Mode →
//!   guess_mode ([`ControlMode::guess_mode`]), chained through `control` in unit order and wired
//!   into the sampler's `control` input (with hires fix, into the passes `Hr Option` names).
//!
//! Written back, a ControlNet node gives `Module` (canny when a Canny node feeds it,
//! inpaint_global_harmonious with a mask, else none), `Model: name [AutoV2 hash]` (the hash from
//! the document's model list, like `Lora hashes`), `Weight`, `Resize Mode: Just Resize` (our
//! control image is resized to the output size, as diffusers does), `Threshold A/B` for canny,
//! `Guidance Start/End` and `Control Mode`.

use std::path::Path;

use nodes::{GraphDoc, NodeDoc, ParamValue};

use super::controlnet::{format_unit, ControlMode, ControlNetUnit};
use super::A1111Params;
use crate::interop::{clamp_f, clamp_i, text, GraphBuilder, ImportReport};

/// Where [`add_controls`] wires the controls.
pub(super) struct Targets<'s> {
    /// The first (or only) sampler node.
    pub first: &'s str,
    /// The hires-fix pass, if any.
    pub hires: Option<&'s str>,
    /// For an inpaint recipe: its LoadImage and LoadMask node ids.
    pub inpaint: Option<(&'s str, &'s str)>,
}

/// Adds the nodes of `p`'s ControlNet units (see the module doc) and records each unit in the
/// report. Units that cannot be read or name no model are reported as not imported.
pub(super) fn add_controls(
    b: &mut GraphBuilder,
    report: &mut ImportReport,
    p: &A1111Params,
    t: &Targets,
) {
    let units = match p.controlnets() {
        Ok(u) => u,
        Err(e) => {
            for (k, v) in &p.extra {
                if k.starts_with("ControlNet") {
                    report.not_imported(k, v, e.to_string());
                }
            }
            return;
        }
    };
    let mut prev: Option<String> = None;
    let mut y = 560.0;
    for u in &units {
        let key = u.key();
        let value = p.extra(&key).unwrap_or_default().to_string();
        if !u.has_model() {
            for k in &u.keys {
                report.not_imported(k, &value, "the unit names no model (Model: None)");
            }
            continue;
        }
        let id = format!("cn{}", u.index);
        let (model_id, image_id, canny_id) = (
            format!("{id}_model"),
            format!("{id}_image"),
            format!("{id}_canny"),
        );
        let mut why: Vec<String> = Vec::new();
        b.node(
            &model_id,
            "LoadControlNet",
            vec![("controlnet", text(format!("{}.safetensors", u.model)))],
        );
        b.pos(&model_id, [0.0, y]);
        why.push(format!(
            "model \"{}\" looked up as {}.safetensors{}",
            u.model_text(),
            u.model,
            u.model_hash
                .as_deref()
                .map(|h| format!(" (the hash {h} is not checked)"))
                .unwrap_or_default()
        ));

        // The control image and its preprocessor.
        let module = u.module.trim().to_ascii_lowercase();
        let mut mask_from: Option<&str> = None;
        let image_from: String = match (module.as_str(), t.inpaint) {
            (m, Some((image, mask))) if m.starts_with("inpaint") => {
                mask_from = Some(mask);
                if m != "inpaint_global_harmonious" && m != "inpaint" {
                    why.push(format!(
                        "module {m}: A1111 also blends the result into the input; here the plain \
                         inpaint ControlNet conditioning (inpaint_global_harmonious) is used"
                    ));
                }
                why.push(format!(
                    "its control image is the inpaint input ({image}) with the inpaint mask \
                     ({mask}), as A1111 uses them"
                ));
                image.to_string()
            }
            _ => {
                b.node(&image_id, "LoadImage", vec![("source", text(""))]);
                b.pos(&image_id, [280.0, y]);
                report.note(format!(
                    "missing input: A1111 does not store ControlNet images; LoadImage {image_id} \
                     ({key}) has an empty path: choose the control image"
                ));
                match module.as_str() {
                    "canny" => {
                        let mut notes = Vec::new();
                        let low = clamp_i(
                            u.threshold_a.unwrap_or(100.0).round() as i64,
                            0,
                            1000,
                            "Threshold A",
                            &mut notes,
                        );
                        let high = clamp_i(
                            u.threshold_b.unwrap_or(200.0).round() as i64,
                            0,
                            1000,
                            "Threshold B",
                            &mut notes,
                        );
                        why.extend(notes);
                        b.node(
                            &canny_id,
                            "Canny",
                            vec![
                                ("low", ParamValue::Int(low)),
                                ("high", ParamValue::Int(high)),
                            ],
                        );
                        b.pos(&canny_id, [560.0, y]);
                        b.link((&image_id, "image"), (&canny_id, "image"));
                        if let Some(res) = u.processor_res {
                            why.push(format!(
                                "A1111 runs canny on the image resized to Processor Res {res}; \
                                 here on the image at its own size"
                            ));
                        }
                        canny_id.clone()
                    }
                    "none" | "" => image_id.clone(),
                    m => {
                        why.push(format!(
                            "preprocessor {m} is not supported here: LoadImage {image_id} must \
                             read a control map made with {m} elsewhere"
                        ));
                        image_id.clone()
                    }
                }
            }
        };

        // The ControlNet node.
        let mut notes = Vec::new();
        let strength = clamp_f(u.weight, 0.0, 10.0, "Weight", &mut notes);
        let start = clamp_f(u.guidance_start, 0.0, 1.0, "Guidance Start", &mut notes);
        let end = clamp_f(u.guidance_end, 0.0, 1.0, "Guidance End", &mut notes);
        why.extend(notes);
        match u.control_mode {
            ControlMode::Balanced => {}
            ControlMode::ControlNetMoreImportant => why.push(
                "Control Mode \"ControlNet is more important\" → guess_mode (the residuals of the \
                 unconditional half are dropped and scaled 0.1…1 along the blocks; A1111 scales \
                 by 0.825^(12−i), diffusers by 10^(−(12−i)/12), within 0.6 %)"
                    .into(),
            ),
            ControlMode::PromptMoreImportant => why.push(
                "Control Mode \"My prompt is more important\" has no diffusers equivalent (A1111 \
                 damps the residuals by 0.825^(12−i) along the blocks); imported as Balanced"
                    .into(),
            ),
        }
        match u.resize_mode.as_deref() {
            None | Some("Just Resize") | Some("0") => {}
            Some(r) => why.push(format!(
                "Resize Mode \"{r}\": here the control image is stretched to the output size \
                 (Just Resize), as diffusers does"
            )),
        }
        if u.pixel_perfect == Some(true) {
            why.push("Pixel Perfect is an A1111 preprocessor-resolution option; ignored".into());
        }
        b.node(
            &id,
            "ControlNet",
            vec![
                ("strength", ParamValue::Float(strength)),
                ("start", ParamValue::Float(start)),
                ("end", ParamValue::Float(end)),
                ("guess_mode", ParamValue::Bool(u.control_mode.guess_mode())),
            ],
        );
        b.pos(&id, [840.0, y]);
        b.link((&model_id, "controlnet"), (&id, "controlnet"));
        b.link((&image_from, "image"), (&id, "image"));
        if let Some(m) = mask_from {
            b.link((m, "mask"), (&id, "mask"));
        }
        if let Some(prev) = &prev {
            b.link((prev, "control"), (&id, "control"));
        }
        prev = Some(id.clone());
        y += 240.0;

        let target = format!("{id} (ControlNet), {model_id} (LoadControlNet)");
        report.imported(&key, &value, target.clone());
        for w in why {
            report.approximated(&key, &value, w);
        }
        for k in u.keys.iter().skip(1) {
            let v = p.extra(k).unwrap_or_default().to_string();
            report.imported(k, &v, format!("part of {target}"));
        }
    }
    let Some(last) = prev else { return };
    let hr = units
        .iter()
        .find(|u| u.has_model())
        .and_then(|u| u.other("Hr Option").map(str::to_string));
    let (low, high) = match hr.as_deref() {
        Some("Low res only") => (true, false),
        Some("High res only") => (false, true),
        _ => (true, true),
    };
    if low || t.hires.is_none() {
        b.link((&last, "control"), (t.first, "control"));
    }
    if let (Some(h), true) = (t.hires, high) {
        b.link((&last, "control"), (h, "control"));
    }
}

/// The file stem of a path or name.
fn stem(s: &str) -> String {
    Path::new(s)
        .file_stem()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| s.to_string())
}

/// The units of the ControlNet nodes chained into `sampler`'s `control` input, the first
/// applied first, numbered from 0. `hash_of` gives a model's short hash by file stem.
pub(super) fn units_from_graph(
    doc: &GraphDoc,
    sampler: &str,
    hash_of: &dyn Fn(&str) -> Option<String>,
) -> Vec<ControlNetUnit> {
    let source = |node: &str, port: &str| {
        doc.links
            .iter()
            .find(|l| l.to.0 == node && l.to.1 == port)
            .map(|l| l.from.0.clone())
    };
    let num = |n: &NodeDoc, k: &str, d: f64| n.params.get(k).and_then(|v| v.as_f64()).unwrap_or(d);
    // The chain, from the sampler upstream, then reversed: the first applied first.
    let mut ids: Vec<String> = Vec::new();
    let mut at = source(sampler, "control");
    while let Some(id) = at {
        if ids.len() >= 64 || ids.contains(&id) {
            break;
        }
        if doc.nodes.get(&id).map(|n| n.kind.as_str()) != Some("ControlNet") {
            break;
        }
        at = source(&id, "control");
        ids.push(id);
    }
    ids.reverse();
    let mut units = Vec::new();
    for (index, id) in ids.iter().enumerate() {
        let Some(n) = doc.nodes.get(id) else { continue };
        let model = source(id.as_str(), "controlnet")
            .and_then(|m| doc.nodes.get(&m))
            .and_then(|m| m.params.get("controlnet"))
            .and_then(|v| v.as_str())
            .map(stem)
            .unwrap_or_else(|| "None".into());
        let mut u = ControlNetUnit {
            index,
            model_hash: hash_of(model.as_str()),
            model: model.replace([',', ':', '[', ']'], ""),
            weight: num(n, "strength", 1.0),
            guidance_start: num(n, "start", 0.0),
            guidance_end: num(n, "end", 1.0),
            resize_mode: Some("Just Resize".into()),
            control_mode: if matches!(n.params.get("guess_mode"), Some(ParamValue::Bool(true))) {
                ControlMode::ControlNetMoreImportant
            } else {
                ControlMode::Balanced
            },
            ..ControlNetUnit::default()
        };
        let image = source(id.as_str(), "image");
        let canny = image
            .as_ref()
            .and_then(|i| doc.nodes.get(i))
            .filter(|i| i.kind == "Canny");
        if let Some(c) = canny {
            u.module = "canny".into();
            u.threshold_a = Some(num(c, "low", 100.0));
            u.threshold_b = Some(num(c, "high", 200.0));
        } else if source(id.as_str(), "mask").is_some() {
            u.module = "inpaint_global_harmonious".into();
        }
        units.push(u);
    }
    units
}

/// Appends `ControlNet N` fields for the units to `p.extra`.
pub(super) fn push_units(p: &mut A1111Params, units: &[ControlNetUnit]) {
    for u in units {
        p.extra
            .push((format!("ControlNet {}", u.index), format_unit(u)));
    }
}
