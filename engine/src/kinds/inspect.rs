//! Inspection kinds (`nodes::inspect`, docs/ARCHITECTURE.md §15): LoadDetector, Classify,
//! FilterByScore, MaskFidelity, Caption.
//!
//! FilterByScore and MaskFidelity (`action: reject`) turn an item down with
//! [`NodeCtx::reject`]; the batch runner retries it (`crate::run`, *Retries*). Classify,
//! FilterByScore and MaskFidelity record what they found with [`NodeCtx::note`], so it is
//! stored with the item's outputs and reported by the run.

use std::path::Path;

use nodes::FileRole;
use serde::Deserialize;

use super::{outputs, same_size};
use crate::error::{EngineError, Result};
use crate::exec::NodeCtx;
use crate::image::Image;
use crate::registry::Registry;
use crate::value::{Outputs, Value};

pub(super) fn register(r: &mut Registry) {
    r.register_typed("LoadDetector", load_detector);
    r.register_typed("Classify", classify);
    r.register_typed("FilterByScore", filter_by_score);
    r.register_typed("MaskFidelity", mask_fidelity);
    r.register_typed("Caption", caption);
}

/// An image as the 8-bit RGB a saved PNG holds (alpha dropped), for a [`crate::inspect::Scorer`].
pub fn to_rgb(img: &Image) -> image::RgbImage {
    let to_u8 = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    let data = img
        .data
        .chunks_exact(4)
        .flat_map(|p| [to_u8(p[0]), to_u8(p[1]), to_u8(p[2])])
        .collect();
    image::RgbImage::from_raw(img.width, img.height, data).unwrap_or_default()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoadDetector {
    model: String,
    device: String,
}

fn load_detector(ctx: &mut NodeCtx, p: LoadDetector) -> Result<Outputs> {
    let path = crate::files::locate_for_node(FileRole::Detector, &p.model, Path::new(""))?;
    let device = crate::sd::nodes::parse_device(&p.device)?;
    ctx.progress(0, 1, None)?;
    let scorer = crate::inspect::load_scorer(&path, &device)?;
    ctx.progress(1, 1, None)?;
    ctx.status(format!(
        "{:?}, labels {}",
        scorer.kind(),
        scorer.labels().join(", ")
    ));
    Ok(outputs([("detector", Value::Detector(scorer))]))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Classify {
    threshold: f64,
}

fn classify(ctx: &mut NodeCtx, p: Classify) -> Result<Outputs> {
    let detector = ctx
        .input("detector")
        .and_then(|v| v.as_detector().cloned())
        .ok_or_else(|| EngineError::failed("input \"detector\" is not connected"))?;
    let image = ctx.image("image")?;
    let score = detector
        .score(&[to_rgb(&image)])?
        .into_iter()
        .next()
        .ok_or_else(|| EngineError::failed("the detector returned no score"))?;
    let value = f64::from(score.score);
    let detected = value >= p.threshold;
    ctx.note("score", value);
    ctx.note("label", score.label.clone());
    ctx.note("threshold", p.threshold);
    ctx.note("detected", detected);
    ctx.status(format!("score {value:.3}, {}", score.label));
    Ok(outputs([
        ("score", Value::Float(value)),
        ("label", Value::Text(score.label.into())),
        ("defect", Value::Int(i64::from(detected))),
    ]))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FilterByScore {
    threshold: f64,
    keep: Keep,
    max_attempts: u32,
}

#[derive(Clone, Copy, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
enum Keep {
    Above,
    Below,
}

fn filter_by_score(ctx: &mut NodeCtx, p: FilterByScore) -> Result<Outputs> {
    let score = match ctx.input("score") {
        Some(Value::Float(f)) => *f,
        Some(Value::Int(i)) => *i as f64,
        _ => return Err(EngineError::failed("input \"score\" is not connected")),
    };
    let kept = match p.keep {
        Keep::Above => score >= p.threshold,
        Keep::Below => score < p.threshold,
    };
    ctx.note("score", score);
    ctx.note("kept", kept);
    if !kept {
        let relation = if p.keep == Keep::Above {
            "below"
        } else {
            "at or above"
        };
        return Err(ctx.reject(
            format!(
                "score {score:.4} is {relation} the threshold {}",
                p.threshold
            ),
            p.max_attempts,
        ));
    }
    let mut out = outputs([("score", Value::Float(score))]);
    for port in ["image", "mask"] {
        if let Some(v) = ctx.input(port) {
            out.insert(port, v.clone());
        } else if ctx.wants(port) {
            return Err(EngineError::failed(format!(
                "output \"{port}\" is read but input \"{port}\" is not connected"
            )));
        }
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MaskFidelity {
    change_threshold: f32,
    mask_threshold: f32,
    max_outside: f64,
    action: Action,
    max_attempts: u32,
}

#[derive(Clone, Copy, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
enum Action {
    Flag,
    Reject,
}

/// How a step's change relates to a mask: see [`fidelity`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fidelity {
    /// |changed ∩ mask| / |changed ∪ mask|; 1 when both are empty.
    pub iou: f64,
    /// |changed \ mask| / |changed|; 0 when nothing changed.
    pub outside: f64,
    /// Pixels changed.
    pub changed: u64,
}

/// Compares the pixels that differ between `clean` and `changed` (some channel by more than
/// `change_threshold`) with the mask (values ≥ `mask_threshold`). The three must be the same
/// size.
pub fn fidelity(
    clean: &Image,
    changed: &Image,
    mask: &crate::image::Mask,
    change_threshold: f32,
    mask_threshold: f32,
) -> Result<Fidelity> {
    if (clean.width, clean.height) != (changed.width, changed.height) {
        return Err(EngineError::failed(format!(
            "the changed image is {}×{} but the clean one is {}×{}",
            changed.width, changed.height, clean.width, clean.height
        )));
    }
    same_size("mask", clean, mask)?;
    let (mut both, mut either, mut diff, mut out) = (0u64, 0u64, 0u64, 0u64);
    for ((a, b), m) in clean
        .data
        .chunks_exact(4)
        .zip(changed.data.chunks_exact(4))
        .zip(&mask.data)
    {
        let c = a
            .iter()
            .zip(b)
            .any(|(x, y)| (x - y).abs() > change_threshold);
        let inside = *m >= mask_threshold;
        both += u64::from(c && inside);
        either += u64::from(c || inside);
        diff += u64::from(c);
        out += u64::from(c && !inside);
    }
    Ok(Fidelity {
        iou: if either == 0 {
            1.0
        } else {
            both as f64 / either as f64
        },
        outside: if diff == 0 {
            0.0
        } else {
            out as f64 / diff as f64
        },
        changed: diff,
    })
}

fn mask_fidelity(ctx: &mut NodeCtx, p: MaskFidelity) -> Result<Outputs> {
    let clean = ctx.image("clean")?;
    let changed = ctx.image("changed")?;
    let mask = ctx.mask("mask")?;
    let f = fidelity(
        &clean,
        &changed,
        &mask,
        p.change_threshold,
        p.mask_threshold,
    )?;
    let flagged = f.outside > p.max_outside;
    ctx.note("iou", f.iou);
    ctx.note("outside", f.outside);
    ctx.note("flagged", flagged);
    ctx.status(format!(
        "IoU {:.3}, {:.1}% of the change outside the mask{}",
        f.iou,
        100.0 * f.outside,
        if flagged { " (flagged)" } else { "" }
    ));
    if flagged && p.action == Action::Reject {
        return Err(ctx.reject(
            format!(
                "{:.1}% of the changed pixels lie outside the mask (at most {:.1}% allowed)",
                100.0 * f.outside,
                100.0 * p.max_outside
            ),
            p.max_attempts,
        ));
    }
    Ok(outputs([
        ("iou", Value::Float(f.iou)),
        ("outside", Value::Float(f.outside)),
        ("flagged", Value::Int(i64::from(flagged))),
        ("image", Value::Image(changed)),
    ]))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Caption {
    mode: CaptionMode,
    model: String,
    device: String,
}

#[derive(Clone, Copy, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
enum CaptionMode {
    Recipe,
    Blip,
}

fn caption(ctx: &mut NodeCtx, p: Caption) -> Result<Outputs> {
    let text = match p.mode {
        CaptionMode::Recipe => {
            let doc = ctx.graph();
            let from: Vec<&str> = doc
                .links
                .iter()
                .filter(|l| l.to.node() == ctx.node && l.to.port() == "image")
                .map(|l| l.from.node())
                .collect();
            crate::inspect::caption::caption_upstream(doc, &from)?
        }
        CaptionMode::Blip => {
            let dir =
                crate::files::locate_for_node(FileRole::CaptionModel, &p.model, Path::new(""))?;
            let device = crate::sd::nodes::parse_device(&p.device)?;
            let image = ctx.image("image")?;
            ctx.progress(0, 1, None)?;
            let captioner = crate::inspect::caption::blip_captioner(&dir, &p.device, &device)?;
            let text = captioner
                .caption(&[to_rgb(&image)])?
                .into_iter()
                .next()
                .unwrap_or_default();
            ctx.progress(1, 1, None)?;
            text
        }
    };
    ctx.status(text.clone());
    Ok(outputs([("text", Value::Text(text.into()))]))
}
