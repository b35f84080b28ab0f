//! ComfyUI's ControlNet nodes in our graph.
//!
//! | ComfyUI | ours |
//! |---|---|
//! | ControlNetLoader | LoadControlNet |
//! | DiffControlNetLoader | LoadControlNet (approximated: loaded as a full ControlNet) |
//! | ControlNetApply (strength) | ControlNet (strength) |
//! | ControlNetApplyAdvanced (strength, start_percent, end_percent) | ControlNet (strength, start, end) |
//! | ACN_AdvancedControlNetApply, ACN_AdvancedControlNetApply_v2 (ComfyUI-Advanced-ControlNet; the same three values) | ControlNet (strength, start, end); its optional mask, keyframe, weight and model inputs are reported as not imported |
//! | ControlNetLoaderAdvanced (ComfyUI-Advanced-ControlNet) | LoadControlNet (a timestep keyframe on it is reported) |
//! | Canny (low/high on 0..1) | Canny (low/high × 255, rounded) |
//! | CannyEdgePreprocessor (controlnet_aux; low/high on 0..255) | Canny |
//!
//! ComfyUI attaches a ControlNet to a **conditioning**: the apply nodes sit between the prompt's
//! CLIPTextEncode and the sampler. A sampler's controls are found by following its `positive`
//! input back through the apply nodes; each becomes a ControlNet node, chained through `control`
//! in the order they were applied (the first applied first), the last one wired into the
//! sampler's `control` input. Our ControlNet acts on both halves of classifier-free guidance, as
//! diffusers' pipelines do: that is what ControlNetApplyAdvanced does when its two outputs feed
//! the sampler's two inputs; the old ControlNetApply only controls the positive prompt, which is
//! said in the report.
//!
//! ComfyUI's `start_percent`/`end_percent` are fractions of the sampling schedule (turned into
//! sigmas by the model), diffusers' `control_guidance_start/end` fractions of the steps: a range
//! other than 0..1 is carried over as it is and reported as approximated.
//!
//! Preprocessor nodes we have no equivalent for (the controlnet_aux custom nodes: OpenPose,
//! depth, lineart, `AIO_Preprocessor` …) are reported, and the ControlNet they feed is not
//! imported, with the reason: its control image would be missing.

use nodes::ParamValue;

use super::convert::Conv;
use super::tables::KNOWN;
use crate::interop::{clamp_f, clamp_i, text};

/// ComfyUI's apply nodes we import: the old one (one conditioning) and those with positive
/// and negative conditioning, strength and a start/end range ([`ADVANCED_APPLY`]).
pub(super) const APPLY: &[&str] = &[
    "ControlNetApply",
    "ControlNetApplyAdvanced",
    "ACN_AdvancedControlNetApply",
    "ACN_AdvancedControlNetApply_v2",
];

/// The apply nodes with `positive`/`negative` in and out, `strength`, `start_percent` and
/// `end_percent`: ComfyUI's own and ComfyUI-Advanced-ControlNet's.
pub(super) const ADVANCED_APPLY: &[&str] = &[
    "ControlNetApplyAdvanced",
    "ACN_AdvancedControlNetApply",
    "ACN_AdvancedControlNetApply_v2",
];

/// ComfyUI-Advanced-ControlNet's optional apply inputs we have no equivalent for, with what
/// they do there.
const ACN_EXTRAS: &[(&str, &str)] = &[
    (
        "mask_optional",
        "an attention mask limiting where the control acts",
    ),
    ("timestep_kf", "timestep keyframes scheduling the strength"),
    ("latent_kf_override", "per-latent strengths"),
    (
        "weights_override",
        "custom per-block weights (soft weights)",
    ),
    (
        "model_optional",
        "a model for model-patching controls (SparseCtrl, reference)",
    ),
    ("vae_optional", "a VAE for controls that encode their image"),
];

/// ComfyUI's ControlNet loaders we import.
pub(super) const LOADERS: &[&str] = &[
    "ControlNetLoader",
    "DiffControlNetLoader",
    "ControlNetLoaderAdvanced",
];

/// Preprocessors that become our Canny node.
pub(super) const CANNY: &[&str] = &["Canny", "CannyEdgePreprocessor"];

/// The most apply nodes followed on one conditioning chain (a bound for hostile files).
const MAX_APPLY: usize = 64;

impl<'a> Conv<'a> {
    /// For an apply node, the conditioning input that its output `slot` passes on: an old
    /// ControlNetApply's `conditioning`; an advanced apply node's `positive` (slot 0) or
    /// `negative` (slot 1). `None` for any other node or slot.
    pub(super) fn apply_input(&self, src: (&str, u64)) -> Option<(&'a str, u64)> {
        match self.class(src.0) {
            "ControlNetApply" => self.link(src.0, "conditioning"),
            c if ADVANCED_APPLY.contains(&c) => match src.1 {
                0 => self.link(src.0, "positive"),
                1 => self.link(src.0, "negative"),
                // ACN's `model_opt` output is not a conditioning.
                _ => None,
            },
            _ => None,
        }
    }

    /// The apply nodes on a sampler's conditioning input, the first applied first. Unknown
    /// nodes that pass the conditioning on (reported by [`Conv::through`] when the prompt is
    /// looked up) are looked through.
    fn apply_chain(&self, ks: &str, input: &str) -> Vec<(&'a str, u64)> {
        let mut chain = Vec::new();
        let mut at = self.link(ks, input);
        for _ in 0..MAX_APPLY * 4 {
            let Some(src) = at else { break };
            if APPLY.contains(&self.class(src.0)) {
                if chain.len() >= MAX_APPLY || chain.iter().any(|(id, _)| *id == src.0) {
                    break;
                }
                chain.push(src);
                at = self.apply_input(src);
            } else if KNOWN.contains(&self.class(src.0)) {
                break;
            } else {
                at = self.link(src.0, "conditioning");
            }
        }
        chain.reverse();
        chain
    }

    /// Wires the ControlNets on sampler `ks`'s conditioning into its `control` input.
    pub(super) fn sampler_controls(&mut self, ks: &str) {
        let positive = self.apply_chain(ks, "positive");
        let negative = self.apply_chain(ks, "negative");
        let mut last: Option<String> = None;
        for (apply, slot) in &positive {
            let Some(ours) = self.control_node(apply) else {
                continue;
            };
            if let Some(prev) = &last {
                if !self.has_link(prev, &ours, "control") {
                    self.b.link((prev, "control"), (&ours, "control"));
                }
            }
            match self.class(apply) {
                "ControlNetApply" => self.approx(
                    apply,
                    "ComfyUI adds this control to the positive prompt only; here it acts on both \
                     halves of classifier-free guidance, as diffusers' ControlNet pipelines do",
                ),
                _ if *slot == 0 && !negative.iter().any(|(n, _)| n == apply) => self.approx(
                    apply,
                    format!(
                        "its negative output does not feed sampler {ks}'s negative; here the \
                         control acts on both halves of classifier-free guidance"
                    ),
                ),
                _ => {}
            }
            last = Some(ours);
        }
        if let Some(last) = last {
            self.b.link((&last, "control"), (ks, "control"));
        }
        for (apply, _) in negative {
            if !positive.iter().any(|(p, _)| *p == apply) && !self.b.doc.nodes.contains_key(apply) {
                self.drop_node(
                    apply,
                    format!(
                        "it controls only sampler {ks}'s negative conditioning; our ControlNet \
                         acts on both halves of guidance, so it is left out"
                    ),
                );
            }
        }
    }

    fn has_link(&self, from: &str, to: &str, port: &str) -> bool {
        self.b
            .doc
            .links
            .iter()
            .any(|l| l.from.node() == from && l.to.node() == to && l.to.port() == port)
    }

    /// Our ControlNet node for ComfyUI apply node `apply` (made once, same id), or `None` when
    /// it cannot be imported (the reason is in the report).
    fn control_node(&mut self, apply: &str) -> Option<String> {
        if let Some(n) = self.b.doc.nodes.get(apply) {
            return (n.kind == "ControlNet").then(|| apply.to_string());
        }
        if self.report.has(apply) {
            return None;
        }
        let net = self.control_net_source(apply)?;
        let image = self.control_image_source(apply)?;
        let mut notes = Vec::new();
        let strength = self.f64_of(apply, "strength").unwrap_or(1.0);
        let strength = clamp_f(strength, 0.0, 10.0, "strength", &mut notes);
        let mut params = vec![("strength", ParamValue::Float(strength))];
        let class = self.class(apply);
        if ADVANCED_APPLY.contains(&class) {
            let start = self.f64_of(apply, "start_percent").unwrap_or(0.0);
            let end = self.f64_of(apply, "end_percent").unwrap_or(1.0);
            let start = clamp_f(start, 0.0, 1.0, "start_percent", &mut notes);
            let end = clamp_f(end, 0.0, 1.0, "end_percent", &mut notes);
            if start != 0.0 || end != 1.0 {
                notes.push(format!(
                    "start_percent {start} / end_percent {end} are fractions of ComfyUI's sigma \
                     schedule; here (as diffusers' control_guidance_start/end) fractions of the \
                     steps"
                ));
            }
            params.push(("start", ParamValue::Float(start)));
            params.push(("end", ParamValue::Float(end)));
            if self.link(apply, "vae").is_some() {
                notes.push("its vae input is not needed here (SD1.5/SDXL ControlNets)".into());
            }
            for (input, what) in ACN_EXTRAS {
                if self.link(apply, input).is_some() {
                    notes.push(format!(
                        "its {input} input ({what}) is not imported: the control acts on the \
                         whole image at the given strength"
                    ));
                }
            }
        }
        self.b.node(apply, "ControlNet", params);
        self.place(apply, apply);
        self.imported(apply, apply);
        self.approx_all(apply, notes);
        self.pending
            .push((net.0.to_string(), net.1, apply.to_string(), "controlnet"));
        self.pending
            .push((image.0.to_string(), image.1, apply.to_string(), "image"));
        Some(apply.to_string())
    }

    /// The ControlNetLoader feeding an apply node's `control_net`, through nodes without an
    /// equivalent that pass it on (e.g. SetUnionControlNetType), which are reported. `None`
    /// (and the apply node reported) when there is none.
    fn control_net_source(&mut self, apply: &str) -> Option<(&'a str, u64)> {
        let Some(mut src) = self.link(apply, "control_net") else {
            self.drop_node(apply, "its control_net input is not connected");
            return None;
        };
        for _ in 0..100 {
            let class = self.class(src.0);
            if LOADERS.contains(&class) {
                return Some(src);
            }
            match self.link(src.0, "control_net") {
                Some(next) if !KNOWN.contains(&class) => {
                    self.drop_node(
                        src.0,
                        "no equivalent; the ControlNet on its control_net input is used as it is",
                    );
                    src = next;
                }
                _ => break,
            }
        }
        let class = self.class(src.0).to_string();
        self.drop_node(
            apply,
            format!(
                "its control_net comes from {class} {}, not a ControlNetLoader",
                src.0
            ),
        );
        None
    }

    /// The source of an apply node's control image when it is one we import (LoadImage,
    /// ImageScale, Canny, a decoded sampler image); otherwise the apply node and the
    /// preprocessor are reported and `None` is returned.
    fn control_image_source(&mut self, apply: &str) -> Option<(&'a str, u64)> {
        let Some(src) = self.link(apply, "image") else {
            self.drop_node(apply, "its image input is not connected");
            return None;
        };
        let class = self.class(src.0);
        let ok = match class {
            "LoadImage" | "ImageScale" => src.1 == 0,
            "VAEDecode" => true,
            c => CANNY.contains(&c) && src.1 == 0,
        };
        if ok {
            return Some(src);
        }
        let class = class.to_string();
        let why = if KNOWN.contains(&class.as_str()) {
            format!(
                "its image comes from output {} of {class} {}, which is not an image",
                src.1, src.0
            )
        } else {
            if !self.report.has(src.0) {
                self.drop_node(
                    src.0,
                    "a preprocessor (or custom image node) with no equivalent here; make the \
                     control image elsewhere and load it with LoadImage",
                );
            }
            format!(
                "its control image comes from {class} {}, which has no equivalent here (only \
                 LoadImage, ImageScale, Canny and CannyEdgePreprocessor are imported)",
                src.0
            )
        };
        self.drop_node(apply, why);
        None
    }

    /// The 1:1 ControlNet nodes: loaders and Canny preprocessors (called by `simple_nodes`).
    /// Returns whether `id` was one of them.
    pub(super) fn control_simple_node(&mut self, id: &str, notes: &mut Vec<String>) -> bool {
        let class = self.class(id);
        if LOADERS.contains(&class) {
            let name = self.str_of(id, "control_net_name").unwrap_or_default();
            self.pickle_note(id, &name);
            if self.link(id, "timestep_keyframe").is_some() {
                notes.push(
                    "its timestep_keyframe input (a strength schedule) is not imported".into(),
                );
            }
            if class == "DiffControlNetLoader" {
                notes.push(
                    "a difference ControlNet (its weights are added to the model's) is loaded \
                     as a plain ControlNet: the file must hold full ControlNet weights"
                        .into(),
                );
            }
            self.b
                .node(id, "LoadControlNet", vec![("controlnet", text(name))]);
            return true;
        }
        if !CANNY.contains(&class) {
            return false;
        }
        let (low, high) = if class == "Canny" {
            // ComfyUI: thresholds on 0..1 of a blurred grey image (kornia's canny).
            let low = self.f64_of(id, "low_threshold").unwrap_or(0.4);
            let high = self.f64_of(id, "high_threshold").unwrap_or(0.8);
            let (l, h) = ((low * 255.0).round(), (high * 255.0).round());
            notes.push(format!(
                "thresholds {low}/{high} are on ComfyUI's 0..1 scale; ours are OpenCV's 0..255 \
                 scale: {l}/{h}. ComfyUI's Canny (kornia) also blurs the grey image first and \
                 uses the L2 gradient, so its edges differ from cv2.Canny's"
            ));
            (l, h)
        } else {
            let low = self.f64_of(id, "low_threshold").unwrap_or(100.0);
            let high = self.f64_of(id, "high_threshold").unwrap_or(200.0);
            if let Some(res) = self.f64_of(id, "resolution") {
                notes.push(format!(
                    "it runs cv2.Canny on the image resized to {res} px; here on the image as it \
                     is"
                ));
            }
            (low.round(), high.round())
        };
        let low = clamp_i(low as i64, 0, 1000, "low threshold", notes);
        let high = clamp_i(high as i64, 0, 1000, "high threshold", notes);
        self.b.node(
            id,
            "Canny",
            vec![
                ("low", ParamValue::Int(low)),
                ("high", ParamValue::Int(high)),
            ],
        );
        if let Some((m, s)) = self.link(id, "image") {
            self.pending
                .push((m.to_string(), s, id.to_string(), "image"));
        }
        true
    }
}
