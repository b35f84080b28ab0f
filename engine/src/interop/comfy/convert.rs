//! Converting the neutral form into our coarse graph: ComfyUI's latent chains collapse into our
//! sampler nodes.

use std::collections::{BTreeMap, BTreeSet};

use nodes::ParamValue;
use serde_json::Value;

use super::tables::{map_sampler, KNOWN};
use super::{CNode, Flow, Input};
use crate::interop::{
    a1111::report_text, clamp_f, clamp_i, fixed_seed, size8, text, GraphBuilder, ImportReport,
    ImportResult,
};

/// The conversion state.
struct Conv<'a> {
    flow: &'a Flow,
    b: GraphBuilder,
    report: ImportReport,
    /// ComfyUI nodes accounted for (mapped, folded or collapsed).
    handled: BTreeSet<String>,
    /// VAEDecode id → our sampler node id.
    decoded: BTreeMap<String, String>,
    /// Links to make once every node exists: (ComfyUI source, slot) → (our node, port).
    pending: Vec<(String, u64, String, &'static str)>,
    /// LoraLoaders found on a text encoder's CLIP path.
    clip_loras: BTreeSet<String>,
}

impl<'a> Conv<'a> {
    fn node(&self, id: &str) -> Option<&'a CNode> {
        self.flow.get(id)
    }

    fn value(&self, id: &str, input: &str) -> Option<&'a Value> {
        match self.flow.get(id)?.inputs.get(input)? {
            Input::Value(v) => Some(v),
            Input::Link(..) => None,
        }
    }

    fn link(&self, id: &str, input: &str) -> Option<(&'a str, u64)> {
        match self.flow.get(id)?.inputs.get(input)? {
            Input::Link(n, s) => Some((n.as_str(), *s)),
            Input::Value(_) => None,
        }
    }

    fn f64_of(&self, id: &str, input: &str) -> Option<f64> {
        self.value(id, input).and_then(Value::as_f64)
    }

    fn str_of(&self, id: &str, input: &str) -> Option<String> {
        self.value(id, input)
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    fn class(&self, id: &str) -> &'a str {
        self.flow.get(id).map(|n| n.class.as_str()).unwrap_or("")
    }

    fn note(&mut self, s: String) {
        if !self.report.notes.contains(&s) {
            self.report.notes.push(s);
        }
    }

    fn unsupported(&mut self, id: &str, what: String) {
        if !self.report.unsupported.iter().any(|(i, _)| i == id) {
            self.report.unsupported.push((id.to_string(), what));
        }
    }

    fn place(&mut self, our: &str, comfy: &str) {
        if let Some(p) = self.node(comfy).and_then(|n| n.pos) {
            self.b.pos(our, p);
        }
    }

    /// Follows a model or conditioning input through unsupported nodes that pass it on (e.g. a
    /// ControlNetApply's `conditioning`), noting each. Returns the first supported source.
    fn through(&mut self, mut src: (&'a str, u64), port: &str) -> (&'a str, u64) {
        for _ in 0..100 {
            let class = self.class(src.0);
            if KNOWN.contains(&class) {
                break;
            }
            let Some(next) = self.link(src.0, port) else {
                break;
            };
            self.unsupported(src.0, class.to_string());
            self.note(format!(
                "node {} ({class}) is not imported: its {port} input is used in its place",
                src.0
            ));
            src = next;
        }
        src
    }

    /// The prompt text a KSampler conditioning input comes from.
    fn prompt_text(&mut self, ks: &str, input: &str) -> Option<String> {
        let Some(src) = self.link(ks, input) else {
            self.note(format!("KSampler {ks}: {input} is not connected"));
            return None;
        };
        let (id, _) = self.through(src, "conditioning");
        if self.class(id) != "CLIPTextEncode" {
            let class = self.class(id).to_string();
            self.unsupported(id, class.clone());
            self.note(format!(
                "KSampler {ks}: {input} comes from {class} {id}, not a CLIPTextEncode; left empty"
            ));
            return None;
        }
        self.handled.insert(id.to_string());
        // Walk the CLIP path: LoRAs and clip skip.
        let mut clip = self.link(id, "clip");
        for _ in 0..100 {
            let Some((c, _)) = clip else { break };
            match self.class(c) {
                "LoraLoader" => {
                    self.clip_loras.insert(c.to_string());
                    clip = self.link(c, "clip");
                }
                "CLIPSetLastLayer" => {
                    self.handled.insert(c.to_string());
                    let stop = self.f64_of(c, "stop_at_clip_layer").unwrap_or(-1.0);
                    let root = self.checkpoint_root(self.link(c, "clip"), "clip");
                    if let Some(root) = root {
                        let mut notes = Vec::new();
                        let skip = clamp_i(
                            (stop as i64).saturating_neg(),
                            1,
                            12,
                            "clip skip",
                            &mut notes,
                        );
                        self.b.set(&root, "clip_skip", ParamValue::Int(skip));
                        for n in notes {
                            self.note(n);
                        }
                    }
                    clip = self.link(c, "clip");
                }
                _ => break,
            }
        }
        match self.value(id, "text") {
            Some(Value::String(s)) => Some(s.clone()),
            _ => {
                self.note(format!(
                    "CLIPTextEncode {id}: its text comes from another node; left empty"
                ));
                None
            }
        }
    }

    /// The CheckpointLoaderSimple at the root of a model or clip chain.
    fn checkpoint_root(&self, mut at: Option<(&'a str, u64)>, port: &str) -> Option<String> {
        for _ in 0..100 {
            let (id, _) = at?;
            match self.class(id) {
                "CheckpointLoaderSimple" => return Some(id.to_string()),
                _ => at = self.link(id, port),
            }
        }
        None
    }

    /// Builds our sampler node for `VAEDecode dec`, if its chain is one we know.
    fn sampler(&mut self, dec: &str) {
        let Some((ks, _)) = self.link(dec, "samples") else {
            return;
        };
        if self.class(ks) != "KSampler" {
            let class = self.class(ks).to_string();
            self.unsupported(ks, class.clone());
            self.note(format!(
                "VAEDecode {dec} decodes the output of {class} {ks}, which has no equivalent"
            ));
            return;
        }
        if let Some(existing) = self.decoded.values().find(|v| v.as_str() == ks).cloned() {
            self.decoded.insert(dec.to_string(), existing);
            self.handled.insert(dec.to_string());
            return;
        }
        let Some((lat, _)) = self.link(ks, "latent_image") else {
            self.unsupported(ks, "KSampler without latent_image".into());
            return;
        };
        let mut notes = Vec::new();
        let denoise = self.f64_of(ks, "denoise").unwrap_or(1.0);
        let strength = clamp_f(denoise, 0.0, 1.0, "denoise", &mut notes);

        // (our kind, params, pending links (comfy src, slot, our port)).
        let mut params: Vec<(&str, ParamValue)> = Vec::new();
        let mut links: Vec<(String, u64, &'static str)> = Vec::new();
        let kind = match self.class(lat) {
            "EmptyLatentImage" => {
                let w = self.f64_of(lat, "width").unwrap_or(512.0) as i64;
                let h = self.f64_of(lat, "height").unwrap_or(512.0) as i64;
                params.push(("width", ParamValue::Int(size8(w, "width", &mut notes))));
                params.push(("height", ParamValue::Int(size8(h, "height", &mut notes))));
                let batch = self.f64_of(lat, "batch_size").unwrap_or(1.0);
                if batch > 1.0 {
                    notes.push(format!(
                        "EmptyLatentImage {lat}: batch_size {batch} not carried over (use the run's --count)"
                    ));
                }
                if denoise < 1.0 {
                    notes.push(format!(
                        "KSampler {ks}: denoise {denoise} on an empty latent is ignored by Txt2Img"
                    ));
                }
                "Txt2Img"
            }
            "VAEEncode" => {
                if let Some((p, s)) = self.link(lat, "pixels") {
                    links.push((p.to_string(), s, "image"));
                }
                params.push(("strength", ParamValue::Float(strength)));
                "Img2Img"
            }
            "VAEEncodeForInpaint" => {
                if let Some((p, s)) = self.link(lat, "pixels") {
                    links.push((p.to_string(), s, "image"));
                }
                let grow = self.f64_of(lat, "grow_mask_by").unwrap_or(6.0);
                if let Some((m, s)) = self.link(lat, "mask") {
                    if grow > 0.0 {
                        let g = self.b.fresh_id(&format!("{lat}_grow"));
                        let radius = clamp_f(grow, 0.0, 512.0, "grow_mask_by", &mut notes);
                        self.b.node(
                            &g,
                            "MaskOps",
                            vec![("op", text("grow")), ("radius", ParamValue::Float(radius))],
                        );
                        self.place(&g, lat);
                        self.pending.push((m.to_string(), s, g.clone(), "mask"));
                        self.pending
                            .push((lat.to_string(), u64::MAX, ks.to_string(), "mask"));
                        self.decoded_grow(lat, &g);
                    } else {
                        links.push((m.to_string(), s, "mask"));
                    }
                }
                notes.push(format!(
                    "VAEEncodeForInpaint {lat}: ComfyUI greys out the masked pixels before encoding; \
                     our Inpaint keeps diffusers' masked-image conditioning"
                ));
                params.push(("strength", ParamValue::Float(strength)));
                params.push(("mask_blur", ParamValue::Float(0.0)));
                params.push(("paste_back", ParamValue::Bool(false)));
                "Inpaint"
            }
            "SetLatentNoiseMask" => {
                let Some((enc, _)) = self.link(lat, "samples") else {
                    self.unsupported(lat, "SetLatentNoiseMask without samples".into());
                    return;
                };
                if self.class(enc) != "VAEEncode" {
                    let c = self.class(enc).to_string();
                    self.unsupported(enc, c.clone());
                    self.note(format!(
                        "SetLatentNoiseMask {lat}: its latent comes from {c} {enc}, not a VAEEncode"
                    ));
                    return;
                }
                self.handled.insert(enc.to_string());
                if let Some((p, s)) = self.link(enc, "pixels") {
                    links.push((p.to_string(), s, "image"));
                }
                if let Some((m, s)) = self.link(lat, "mask") {
                    links.push((m.to_string(), s, "mask"));
                }
                params.push(("strength", ParamValue::Float(strength)));
                params.push(("mask_blur", ParamValue::Float(0.0)));
                params.push(("paste_back", ParamValue::Bool(false)));
                "Inpaint"
            }
            other => {
                let other = other.to_string();
                self.unsupported(ks, format!("KSampler fed by {other}"));
                self.note(format!(
                    "KSampler {ks}: its latent_image comes from {other} {lat}; only \
                     EmptyLatentImage, VAEEncode, VAEEncodeForInpaint and SetLatentNoiseMask \
                     chains are imported"
                ));
                return;
            }
        };
        self.handled
            .extend([dec.to_string(), ks.to_string(), lat.to_string()]);

        if let Some(t) = self.prompt_text(ks, "positive") {
            params.push(("prompt", text(t)));
        }
        if let Some(t) = self.prompt_text(ks, "negative") {
            params.push(("negative", text(t)));
        }
        if let Some(steps) = self.f64_of(ks, "steps") {
            params.push((
                "steps",
                ParamValue::Int(clamp_i(steps as i64, 1, 500, "steps", &mut notes)),
            ));
        }
        if let Some(cfg) = self.f64_of(ks, "cfg") {
            params.push((
                "cfg",
                ParamValue::Float(clamp_f(cfg, 0.0, 30.0, "cfg", &mut notes)),
            ));
        }
        match self.value(ks, "seed") {
            Some(v) if v.as_u64().is_some() => {
                params.push(("seed", fixed_seed(v.as_u64().unwrap_or(0))));
            }
            _ => notes.push(format!(
                "KSampler {ks}: no literal seed; the run seed is used"
            )),
        }
        if let Some(ctl) = self.str_of(ks, "control_after_generate") {
            if ctl != "fixed" {
                notes.push(format!(
                    "KSampler {ks}: seed control \"{ctl}\": the saved seed may already be the \
                     next one, not the one the image was made with"
                ));
            }
        }
        let sname = self.str_of(ks, "sampler_name").unwrap_or_default();
        let sched = self.str_of(ks, "scheduler").unwrap_or_default();
        match map_sampler(&sname, &sched) {
            Ok(s) => params.push(("scheduler", text(s))),
            Err(why) => {
                self.unsupported(ks, format!("KSampler sampler {sname}/{sched}"));
                notes.push(format!(
                    "KSampler {ks}: {why}; the model's default scheduler is used"
                ));
            }
        }
        if let Some((m, s)) = self.link(ks, "model") {
            let (m, s) = self.through((m, s), "model");
            links.push((m.to_string(), s, "model"));
            // A separate VAE on the decoder goes to the checkpoint.
            if let Some((v, _)) = self.link(dec, "vae") {
                if self.class(v) == "VAELoader" {
                    self.handled.insert(v.to_string());
                    if let (Some(root), Some(name)) = (
                        self.checkpoint_root(Some((m, s)), "model"),
                        self.str_of(v, "vae_name"),
                    ) {
                        self.b.set(&root, "vae", text(name));
                    }
                }
            }
        }

        self.b.node(ks, kind, params);
        self.place(ks, ks);
        for (src, slot, port) in links {
            self.pending.push((src, slot, ks.to_string(), port));
        }
        self.decoded.insert(dec.to_string(), ks.to_string());
        for n in notes {
            self.note(n);
        }
    }

    /// Remembers that the mask of `VAEEncodeForInpaint lat` reaches the sampler via MaskOps `g`
    /// (read by [`Conv::map_output`] for the special slot `u64::MAX`).
    fn decoded_grow(&mut self, lat: &str, g: &str) {
        self.decoded.insert(format!("{lat}#grow"), g.to_string());
    }

    /// Our `(node, port)` for a ComfyUI output, creating the LoadImage mask inverter on demand.
    fn map_output(&mut self, from: &str, slot: u64) -> Option<(String, &'static str)> {
        if slot == u64::MAX {
            return self
                .decoded
                .get(&format!("{from}#grow"))
                .map(|g| (g.clone(), "mask"));
        }
        let class = self.class(from);
        match (class, slot) {
            ("CheckpointLoaderSimple" | "LoraLoader" | "LoraLoaderModelOnly", 0) => {
                Some((from.to_string(), "model"))
            }
            ("LoadImage" | "ImageScale", 0) => Some((from.to_string(), "image")),
            ("LoadImageMask", 0) => Some((from.to_string(), "mask")),
            ("LoadImage", 1) => {
                let inv = format!("{from}_mask_invert");
                if !self.b.doc.nodes.contains_key(&inv) {
                    self.b.node(&inv, "MaskOps", vec![("op", text("invert"))]);
                    if let Some(p) = self.node(from).and_then(|n| n.pos) {
                        self.b.pos(&inv, [p[0], p[1] + 360.0]);
                    }
                    self.b.link((from, "mask"), (&inv, "mask"));
                    self.note(format!(
                        "LoadImage {from}: ComfyUI's mask is 1 − alpha; ours is the alpha, so a \
                         MaskOps invert ({inv}) follows it"
                    ));
                }
                Some((inv, "mask"))
            }
            ("VAEDecode", 0) => self.decoded.get(from).map(|s| (s.clone(), "image")),
            _ => None,
        }
    }

    /// Creates the 1:1 nodes.
    fn simple_nodes(&mut self) {
        for (id, n) in self.flow {
            let mut notes = Vec::new();
            match n.class.as_str() {
                "CheckpointLoaderSimple" => {
                    let ck = self.str_of(id, "ckpt_name").unwrap_or_default();
                    self.b
                        .node(id, "LoadCheckpoint", vec![("checkpoint", text(ck))]);
                }
                "LoraLoader" | "LoraLoaderModelOnly" => {
                    let name = self.str_of(id, "lora_name").unwrap_or_default();
                    let sm = self.f64_of(id, "strength_model").unwrap_or(1.0);
                    let sc = if n.class == "LoraLoader" {
                        self.f64_of(id, "strength_clip").unwrap_or(1.0)
                    } else {
                        0.0
                    };
                    let sm = clamp_f(sm, -4.0, 4.0, "strength_model", &mut notes);
                    let sc = clamp_f(sc, -4.0, 4.0, "strength_clip", &mut notes);
                    self.b.node(
                        id,
                        "LoraLoader",
                        vec![
                            ("lora", text(name)),
                            ("strength", ParamValue::Float(sm)),
                            ("text_strength", ParamValue::Float(sc)),
                        ],
                    );
                    if let Some((m, s)) = self.link(id, "model") {
                        let (m, s) = self.through((m, s), "model");
                        self.pending.push((m.to_string(), s, id.clone(), "model"));
                    }
                }
                "LoadImage" => {
                    let src = self.str_of(id, "image").unwrap_or_default();
                    notes.push(format!(
                        "LoadImage {id}: \"{src}\" is read relative to the graph file (ComfyUI \
                         reads its input folder)"
                    ));
                    self.b.node(id, "LoadImage", vec![("source", text(src))]);
                }
                "LoadImageMask" => {
                    let src = self.str_of(id, "image").unwrap_or_default();
                    let channel = self.str_of(id, "channel").unwrap_or_else(|| "alpha".into());
                    // ComfyUI: alpha gives 1 − alpha; colour channels are taken as they are.
                    let invert = channel == "alpha";
                    let ours = match channel.as_str() {
                        "alpha" | "red" | "green" | "blue" => channel.clone(),
                        other => {
                            notes.push(format!("LoadImageMask {id}: channel {other} read as luma"));
                            "luma".into()
                        }
                    };
                    self.b.node(
                        id,
                        "LoadMask",
                        vec![
                            ("source", text(src)),
                            ("channel", text(ours)),
                            ("invert", ParamValue::Bool(invert)),
                        ],
                    );
                }
                "ImageScale" => {
                    let method = self.str_of(id, "upscale_method").unwrap_or_default();
                    let filter = match method.as_str() {
                        "nearest-exact" => "nearest",
                        "bilinear" => "bilinear",
                        "bicubic" => "bicubic",
                        "lanczos" => "lanczos",
                        other => {
                            notes.push(format!(
                                "ImageScale {id}: upscale_method \"{other}\" has no equivalent; bilinear used"
                            ));
                            "bilinear"
                        }
                    };
                    let mode = match self.str_of(id, "crop").as_deref() {
                        Some("center") => "fill",
                        _ => "stretch",
                    };
                    let w = self.f64_of(id, "width").unwrap_or(512.0) as i64;
                    let h = self.f64_of(id, "height").unwrap_or(512.0) as i64;
                    self.b.node(
                        id,
                        "Resize",
                        vec![
                            (
                                "width",
                                ParamValue::Int(clamp_i(w, 0, 16384, "width", &mut notes)),
                            ),
                            (
                                "height",
                                ParamValue::Int(clamp_i(h, 0, 16384, "height", &mut notes)),
                            ),
                            ("mode", text(mode)),
                            ("filter", text(filter)),
                        ],
                    );
                    if let Some((m, s)) = self.link(id, "image") {
                        self.pending.push((m.to_string(), s, id.clone(), "image"));
                    }
                }
                "SaveImage" | "PreviewImage" => {
                    let template = if n.class == "SaveImage" {
                        let prefix = self
                            .str_of(id, "filename_prefix")
                            .unwrap_or_else(|| "ComfyUI".into());
                        let safe = safe_prefix(&prefix);
                        if safe != prefix {
                            notes.push(format!(
                                "SaveImage {id}: filename_prefix \"{prefix}\" written as \"{safe}\""
                            ));
                        }
                        format!("{safe}_{{run:05}}-{{item:04}}.png")
                    } else {
                        notes.push(format!(
                            "PreviewImage {id} becomes a SaveImage under preview/"
                        ));
                        "preview/{run:05}-{item:04}-{node}.png".to_string()
                    };
                    self.b
                        .node(id, "SaveImage", vec![("filename", text(template))]);
                    if let Some((m, s)) = self.link(id, "images") {
                        self.pending.push((m.to_string(), s, id.clone(), "image"));
                    }
                }
                _ => continue,
            }
            self.handled.insert(id.clone());
            self.place(id, id);
            for s in notes {
                self.note(s);
            }
        }
    }
}

/// A ComfyUI filename prefix made into a safe relative path (no `..`, no absolute path, only
/// letters, digits, `_ - . /`; ComfyUI's `%date%`-style tokens are dropped).
fn safe_prefix(prefix: &str) -> String {
    let cleaned: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let parts: Vec<&str> = cleaned
        .split('/')
        .filter(|p| !p.is_empty() && *p != "." && *p != "..")
        .collect();
    if parts.is_empty() {
        "ComfyUI".into()
    } else {
        parts.join("/")
    }
}

/// Converts the neutral form into our graph.
pub(super) fn convert(flow: &Flow, ui_notes: Vec<String>) -> ImportResult {
    let mut c = Conv {
        flow,
        b: GraphBuilder::new(),
        report: ImportReport {
            unsupported: Vec::new(),
            notes: ui_notes,
        },
        handled: BTreeSet::new(),
        decoded: BTreeMap::new(),
        pending: Vec::new(),
        clip_loras: BTreeSet::new(),
    };
    c.simple_nodes();
    let decoders: Vec<String> = flow
        .iter()
        .filter(|(_, n)| n.class == "VAEDecode")
        .map(|(id, _)| id.clone())
        .collect();
    for d in &decoders {
        c.sampler(d);
    }

    // LoRAs that no text encoder reads through: their CLIP weight does not apply.
    let lora_ids: Vec<String> = flow
        .iter()
        .filter(|(_, n)| n.class == "LoraLoader")
        .map(|(id, _)| id.clone())
        .collect();
    for id in lora_ids {
        let sc =
            c.b.doc
                .nodes
                .get(&id)
                .and_then(|n| n.params.get("text_strength"))
                .and_then(ParamValue::as_f64)
                .unwrap_or(0.0);
        if sc != 0.0 && !c.clip_loras.contains(&id) && !decoders.is_empty() {
            c.b.set(&id, "text_strength", ParamValue::Float(0.0));
            c.note(format!(
                "LoraLoader {id}: no prompt is encoded through its CLIP output, so text_strength \
                 is 0 (was {sc})"
            ));
        }
    }

    let pending = std::mem::take(&mut c.pending);
    for (src, slot, to, port) in pending {
        match c.map_output(&src, slot) {
            Some((from, out)) => c.b.link((&from, out), (&to, port)),
            None => {
                let class = c.class(&src).to_string();
                c.note(format!(
                    "{to}.{port}: its source {class} {src} (output {slot}) has no equivalent; left unconnected"
                ));
            }
        }
    }

    for (id, n) in flow {
        if c.handled.contains(id) {
            continue;
        }
        if KNOWN.contains(&n.class.as_str()) {
            c.note(format!(
                "node {id} ({}) is not part of a chain we import; dropped",
                n.class
            ));
        } else {
            c.unsupported(id, n.class.clone());
        }
    }
    c.b.doc.meta.title = "Imported ComfyUI workflow".into();
    c.b.doc.meta.notes = report_text(&c.report);
    ImportResult {
        graph: c.b.doc,
        report: c.report,
    }
}
