//! Converting the neutral form into our coarse graph: ComfyUI's latent chains collapse into our
//! sampler nodes (see [`super::sampler`]), the other known nodes map one to one, and every
//! ComfyUI node ends up in the report exactly once.

use std::collections::{BTreeMap, BTreeSet};

use nodes::{Catalogue, ParamValue};
use serde_json::Value;

use super::tables::{is_save_like, KNOWN, PICKLE_EXTENSIONS, PRIMITIVE_VALUES};
use super::{CNode, Flow, Input};
use crate::interop::{catalogue, clamp_f, clamp_i, text, GraphBuilder, ImportReport, ImportResult};

/// The conversion state.
pub(super) struct Conv<'a> {
    pub flow: &'a Flow,
    pub b: GraphBuilder,
    pub report: ImportReport,
    /// ComfyUI sampler id → our sampler node (`None`: could not be imported, or in progress).
    pub samplers: BTreeMap<String, Option<String>>,
    /// VAEDecode id → our sampler node id.
    pub decoded: BTreeMap<String, String>,
    /// Links to make once every node exists: (ComfyUI source, slot) → (our node, port).
    pub pending: Vec<(String, u64, String, &'static str)>,
    /// LoraLoaders found on a text encoder's CLIP path.
    pub clip_loras: BTreeSet<String>,
    /// Our node id → the ComfyUI node it came from (for nodes we add, e.g. a MaskOps grow).
    pub origin: BTreeMap<String, String>,
    /// ComfyUI nodes folded into one of our nodes (a prompt, a VAE, a latent size): (ComfyUI
    /// id, our node id).
    pub folded: Vec<(String, String)>,
    /// Links that could not be made: (our node, port) → why.
    pub unlinked: BTreeMap<(String, &'static str), String>,
    /// How deep [`Conv::sampler`] is in a chain of samplers.
    pub depth: usize,
}

impl<'a> Conv<'a> {
    pub fn new(flow: &'a Flow, report: ImportReport) -> Conv<'a> {
        Conv {
            flow,
            b: GraphBuilder::new(),
            report,
            samplers: BTreeMap::new(),
            decoded: BTreeMap::new(),
            pending: Vec::new(),
            clip_loras: BTreeSet::new(),
            origin: BTreeMap::new(),
            folded: Vec::new(),
            unlinked: BTreeMap::new(),
            depth: 0,
        }
    }

    pub fn node(&self, id: &str) -> Option<&'a CNode> {
        self.flow.get(id)
    }

    /// A literal input value, looked up through the API format's Primitive* value nodes.
    pub fn value(&self, id: &str, input: &str) -> Option<&'a Value> {
        let mut at = (id, input);
        for _ in 0..16 {
            match self.flow.get(at.0)?.inputs.get(at.1)? {
                Input::Value(v) => return Some(v),
                Input::Link(n, _) if PRIMITIVE_VALUES.contains(&self.class(n)) => {
                    at = (n.as_str(), "value");
                }
                Input::Link(..) => return None,
            }
        }
        None
    }

    pub fn link(&self, id: &str, input: &str) -> Option<(&'a str, u64)> {
        match self.flow.get(id)?.inputs.get(input)? {
            Input::Link(n, s) => Some((n.as_str(), *s)),
            Input::Value(_) => None,
        }
    }

    pub fn f64_of(&self, id: &str, input: &str) -> Option<f64> {
        self.value(id, input).and_then(Value::as_f64)
    }

    pub fn str_of(&self, id: &str, input: &str) -> Option<String> {
        self.value(id, input)
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    pub fn class(&self, id: &str) -> &'a str {
        self.flow.get(id).map(|n| n.class.as_str()).unwrap_or("")
    }

    /// `id (Kind)` of one of our nodes.
    pub fn target(&self, our: &str) -> String {
        match self.b.doc.nodes.get(our) {
            Some(n) => format!("{our} ({})", n.kind),
            None => our.to_string(),
        }
    }

    /// ComfyUI node `comfy` became our node `our`.
    pub fn imported(&mut self, comfy: &str, our: &str) {
        let t = self.target(our);
        let class = self.class(comfy).to_string();
        self.report.imported(comfy, &class, t);
        if comfy != our {
            self.origin.insert(our.to_string(), comfy.to_string());
        }
    }

    /// ComfyUI node `comfy` was folded into our node `our` as `what` (e.g. `prompt`).
    pub fn fold(&mut self, comfy: &str, what: &str, our: &str) {
        let t = format!("{what} of {}", self.target(our));
        let class = self.class(comfy).to_string();
        self.report.imported(comfy, &class, t);
        self.folded.push((comfy.to_string(), our.to_string()));
    }

    /// A difference (or, for a node that is not imported, a reason) about ComfyUI node `id`.
    pub fn approx(&mut self, id: &str, why: impl Into<String>) {
        let class = self.class(id).to_string();
        self.report.approximated(id, &class, why);
    }

    /// ComfyUI node `id` is not imported, because of `why`.
    pub fn drop_node(&mut self, id: &str, why: impl Into<String>) {
        let class = self.class(id).to_string();
        self.report.not_imported(id, &class, why);
    }

    pub fn place(&mut self, our: &str, comfy: &str) {
        if let Some(p) = self.node(comfy).and_then(|n| n.pos) {
            self.b.pos(our, p);
        }
    }

    /// Follows a model or conditioning input through unsupported nodes that pass it on (e.g. a
    /// ControlNetApply's `conditioning`), reporting each. Returns the first supported source.
    pub fn through(&mut self, mut src: (&'a str, u64), port: &str) -> (&'a str, u64) {
        for _ in 0..100 {
            // ControlNet apply nodes pass the conditioning on; they are imported as ControlNet
            // nodes on the sampler's `control` input (see `control.rs`).
            if port == "conditioning" {
                if let Some(next) = self.apply_input(src) {
                    src = next;
                    continue;
                }
            }
            let class = self.class(src.0);
            if KNOWN.contains(&class) {
                break;
            }
            let Some(next) = self.link(src.0, port) else {
                break;
            };
            self.drop_node(
                src.0,
                format!("no equivalent; its {port} input is used in its place"),
            );
            src = next;
        }
        src
    }

    /// The CheckpointLoaderSimple at the root of a model or clip chain.
    pub fn checkpoint_root(&self, mut at: Option<(&'a str, u64)>, port: &str) -> Option<String> {
        for _ in 0..100 {
            let (id, _) = at?;
            match self.class(id) {
                "CheckpointLoaderSimple" => return Some(id.to_string()),
                _ => at = self.link(id, port),
            }
        }
        None
    }

    /// Clamp and rounding notes about ComfyUI node `id`.
    pub fn approx_all(&mut self, id: &str, notes: Vec<String>) {
        for n in notes {
            self.approx(id, n);
        }
    }

    /// Notes a model file name that is a pickle (`.ckpt`, `.pt`, `.bin`, `.pth`).
    pub fn pickle_note(&mut self, id: &str, name: &str) {
        let lower = name.to_ascii_lowercase();
        if let Some(ext) = PICKLE_EXTENSIONS.iter().find(|e| lower.ends_with(*e)) {
            let stem = &name[..name.len() - ext.len()];
            self.approx(
                id,
                format!(
                    "\"{name}\" is a pickle file, which is never loaded (it can run code); \
                     {stem}.safetensors is used when the model folders hold it"
                ),
            );
        }
    }

    /// Our `(node, port)` for a ComfyUI output, creating the LoadImage mask inverter on demand.
    pub fn map_output(&mut self, from: &str, slot: u64) -> Option<(String, &'static str)> {
        if slot == u64::MAX {
            return self
                .decoded
                .get(&format!("{from}#grow"))
                .map(|g| (g.clone(), "mask"));
        }
        let class = self.class(from);
        if !self.b.doc.nodes.contains_key(from) && class != "VAEDecode" {
            return None;
        }
        match (class, slot) {
            ("CheckpointLoaderSimple" | "LoraLoader" | "LoraLoaderModelOnly", 0) => {
                Some((from.to_string(), "model"))
            }
            ("LoadImage" | "ImageScale", 0) => Some((from.to_string(), "image")),
            ("LoadImageMask", 0) => Some((from.to_string(), "mask")),
            (c, 0) if super::control::LOADERS.contains(&c) => {
                Some((from.to_string(), "controlnet"))
            }
            ("Canny" | "CannyEdgePreprocessor", 0) => Some((from.to_string(), "image")),
            ("LoadImage", 1) => {
                let inv = format!("{from}_mask_invert");
                if !self.b.doc.nodes.contains_key(&inv) {
                    self.b.node(&inv, "MaskOps", vec![("op", text("invert"))]);
                    self.origin.insert(inv.clone(), from.to_string());
                    if let Some(p) = self.node(from).and_then(|n| n.pos) {
                        self.b.pos(&inv, [p[0], p[1] + 360.0]);
                    }
                    self.b.link((from, "mask"), (&inv, "mask"));
                    self.approx(
                        from,
                        format!(
                            "ComfyUI's mask is 1 − alpha; ours is the alpha, so a MaskOps \
                             invert ({inv}) follows it"
                        ),
                    );
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
            let class = n.class.as_str();
            match class {
                "CheckpointLoaderSimple" => {
                    let ck = self.str_of(id, "ckpt_name").unwrap_or_default();
                    self.pickle_note(id, &ck);
                    self.b
                        .node(id, "LoadCheckpoint", vec![("checkpoint", text(ck))]);
                }
                "LoraLoader" | "LoraLoaderModelOnly" => {
                    let name = self.str_of(id, "lora_name").unwrap_or_default();
                    self.pickle_note(id, &name);
                    let sm = self.f64_of(id, "strength_model").unwrap_or(1.0);
                    let sc = if class == "LoraLoader" {
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
                    self.report.note(
                        "LoadImage paths are read relative to the recipe file (ComfyUI reads its \
                         input folder)",
                    );
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
                            notes.push(format!("channel {other} read as luma"));
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
                                "upscale_method \"{other}\" has no equivalent; bilinear used"
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
                _ if class == "SaveImage" || class == "PreviewImage" || is_save_like(class) => {
                    let template = if class == "PreviewImage" {
                        notes.push("becomes a SaveImage under preview/".into());
                        "preview/{run:05}-{item:04}-{node}.png".to_string()
                    } else {
                        if class != "SaveImage" {
                            notes.push(
                                "a custom save node: saved as a plain SaveImage; its other \
                                 options are dropped"
                                    .into(),
                            );
                        }
                        let prefix = self
                            .str_of(id, "filename_prefix")
                            .unwrap_or_else(|| "ComfyUI".into());
                        let safe = safe_prefix(&prefix);
                        if safe != prefix {
                            notes.push(format!(
                                "filename_prefix \"{prefix}\" written as \"{safe}\""
                            ));
                        }
                        format!("{safe}_{{run:05}}-{{item:04}}.png")
                    };
                    self.b
                        .node(id, "SaveImage", vec![("filename", text(template))]);
                    match self.link(id, "images") {
                        Some((m, s)) => {
                            self.pending.push((m.to_string(), s, id.clone(), "image"));
                        }
                        None => notes.push("its images input is not connected".into()),
                    }
                }
                _ => {
                    if !self.control_simple_node(id, &mut notes) {
                        continue;
                    }
                }
            }
            self.imported(id, id);
            self.place(id, id);
            self.approx_all(id, notes);
        }
    }

    /// Makes the pending links; a link whose source was not imported is left out and said.
    fn link_pending(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        let cat = catalogue();
        for (src, slot, to, port) in pending {
            match self.map_output(&src, slot) {
                Some((from, out)) => self.b.link((&from, out), (&to, port)),
                None => {
                    let class = self.class(&src).to_string();
                    let why = format!("its {port} comes from {class} {src}, which is not imported");
                    let optional = self
                        .b
                        .doc
                        .nodes
                        .get(&to)
                        .and_then(|n| cat.get(&n.kind))
                        .and_then(|spec| spec.input(port))
                        .is_some_and(|p| p.optional);
                    if optional {
                        let comfy = self.origin.get(&to).cloned().unwrap_or_else(|| to.clone());
                        self.approx(&comfy, format!("{why}; left unconnected"));
                    } else {
                        self.unlinked.insert((to.clone(), port), why);
                    }
                }
            }
        }
    }

    /// Removes our nodes that miss a required input (repeatedly: removing one can starve the
    /// next), and reports their ComfyUI nodes, and those folded into them, as not imported.
    fn prune(&mut self, catalogue: &Catalogue) {
        loop {
            let doc = &self.b.doc;
            let linked: BTreeSet<(&str, &str)> = doc
                .links
                .iter()
                .map(|l| (l.to.node(), l.to.port()))
                .collect();
            let starving: Vec<(String, &'static str)> = doc
                .nodes
                .iter()
                .filter_map(|(id, n)| {
                    let spec = catalogue.get(&n.kind)?;
                    let missing = spec
                        .inputs
                        .iter()
                        .find(|p| !p.optional && !linked.contains(&(id.as_str(), p.name)))?;
                    Some((id.clone(), missing.name))
                })
                .collect();
            if starving.is_empty() {
                return;
            }
            for (our, port) in starving {
                self.b.doc.nodes.remove(&our);
                self.b.doc.layout.remove(&our);
                self.b
                    .doc
                    .links
                    .retain(|l| l.to.node() != our && l.from.node() != our);
                let comfy = self
                    .origin
                    .get(&our)
                    .cloned()
                    .unwrap_or_else(|| our.clone());
                let why = self
                    .unlinked
                    .get(&(our.clone(), port))
                    .cloned()
                    .unwrap_or_else(|| format!("its {port} input has no imported source"));
                self.report.drop_target(&comfy, why);
                let folded: Vec<String> = self
                    .folded
                    .iter()
                    .filter(|(_, o)| *o == our)
                    .map(|(c, _)| c.clone())
                    .collect();
                for c in folded {
                    self.report
                        .drop_target(&c, format!("part of {our}, which was dropped"));
                }
            }
        }
    }

    /// Every ComfyUI node not accounted for yet gets its entry.
    fn report_rest(&mut self) {
        let flow = self.flow;
        // Who links from each node (for the Primitive* value nodes).
        let mut users: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (uid, m) in flow {
            for i in m.inputs.values() {
                if let Input::Link(src, _) = i {
                    users.entry(src.as_str()).or_default().push(uid.as_str());
                }
            }
        }
        for (id, n) in flow {
            if self.report.has(id) {
                continue;
            }
            let class = n.class.as_str();
            if PRIMITIVE_VALUES.contains(&class) {
                let mut used: Vec<&str> = users
                    .get(id.as_str())
                    .into_iter()
                    .flatten()
                    .copied()
                    .filter(|uid| self.report.get(uid).is_some_and(|e| e.target.is_some()))
                    .collect();
                used.dedup();
                if used.is_empty() {
                    self.drop_node(id, "its value feeds nothing that is imported");
                } else {
                    self.report.imported(
                        id,
                        class,
                        format!("its value, in node {}", used.join(", ")),
                    );
                }
            } else if KNOWN.contains(&class) {
                self.drop_node(id, "not part of a chain we import");
            } else {
                self.drop_node(id, "no equivalent node");
            }
        }
    }
}

/// A ComfyUI filename prefix made into a safe relative path (no `..`, no absolute path, only
/// letters, digits, `_ - . /`; ComfyUI's `%date%`-style tokens are dropped).
fn safe_prefix(prefix: &str) -> String {
    let cleaned: String = prefix
        .replace('\\', "/")
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

/// Converts the neutral form into our graph. `report` holds what reading the file found
/// (editor-only, muted and bypassed nodes of the UI format).
pub(super) fn convert(flow: &Flow, report: ImportReport) -> ImportResult {
    let mut c = Conv::new(flow, report);
    c.simple_nodes();
    let decoders: Vec<String> = flow
        .iter()
        .filter(|(_, n)| n.class == "VAEDecode")
        .map(|(id, _)| id.clone())
        .collect();
    for d in &decoders {
        c.decoder(d);
    }
    // Samplers no decoder reaches (e.g. a base pass whose second pass has no equivalent) are
    // still imported when their own chain is.
    for (id, n) in flow {
        if matches!(n.class.as_str(), "KSampler" | "KSamplerAdvanced")
            && !c.samplers.contains_key(id)
            && c.sampler(id).is_some()
        {
            c.approx(
                id,
                "its output is not decoded by anything that is imported; add a SaveImage to keep \
                 its image",
            );
        }
    }
    c.unused_clip_strength(!decoders.is_empty());
    c.link_pending();
    c.prune(&catalogue());
    c.report_rest();
    c.b.doc.meta.title = "Imported ComfyUI workflow".into();
    c.b.doc.meta.notes = crate::interop::a1111::report_text(&c.report);
    ImportResult {
        graph: c.b.doc,
        report: c.report,
    }
}
