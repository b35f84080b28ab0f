//! Building a recipe from A1111's parameters ([`to_graph`], [`to_graph_with_report`]) and the
//! parameters of a recipe ([`from_graph`] for one with a sampler node, [`procedural_parameters`]
//! for one without).
//!
//! What our `parameters` text says beyond the sampler settings:
//! - `ControlNet N: "Module: …, Model: name [hash], Weight: …"` for each ControlNet node chained
//!   into the sampler's `control` input, in A1111's spelling (see `controlnet_graph.rs`).
//! - `RNG: CPU` on every recipe with a sampler node: our initial noise is torch's CPU generator
//!   (`sd::torch_rng`), which is what A1111 means by it (its default, `GPU`, draws on the card).
//! - `Lora hashes: "name: hash, …"` in A1111's spelling, one entry per LoRA upstream of the
//!   sampler whose file has a sha256 in the document's `models` list (the batch runner adds
//!   every checkpoint and LoRA file it finds at run time, hashed through the model manager's
//!   cache). The hash is the **AutoV2** short hash, the first 10 hex digits of the file's
//!   sha256, the same hash as `Model hash`. Civitai resolves LoRAs by it. A1111 itself writes 12 hex digits of the
//!   sha256 of the tensor data after the safetensors header (kohya's "addnet" hash), so its own
//!   hash lookup does not match ours and falls back to the name in the `<lora:…>` tag.

use nodes::{GraphDoc, ParamValue};

use super::{parse_f64, A1111Params, LoraTag};
use crate::interop::{
    clamp_f, clamp_i, fixed_seed, size8, text, GraphBuilder, ImportReport, ImportResult,
    ReportEntry,
};

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
    "Defect studio version",
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
        // The prompt itself is imported (recorded later, which turns this entry into an
        // approximation); the tag is the difference.
        report.entries.push(ReportEntry::not_imported(
            "prompt",
            "text",
            "its hypernet tag is left out: hypernetworks have no equivalent",
        ));
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
            report.entries.push(ReportEntry::approximated(
                "Sampler",
                &p.sampler.clone().unwrap_or_default(),
                "the sampler node",
                format!("{why}; the model's default scheduler is used"),
            ));
        }
        None => {}
    }
    if let Some(s) = p.seed {
        common.push(("seed", fixed_seed(s)));
    }
    if p.random_seed {
        notes.push(
            "\"Seed: -1\" is A1111's random seed: the sampler takes the run's seed (run --seed)"
                .into(),
        );
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
                Some(other) => report.entries.push(ReportEntry::not_imported(
                    "Masked content",
                    other,
                    "only \"original\" has an equivalent",
                )),
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

    // ControlNet units.
    let hires = p.has_hires_fix();
    super::controlnet_graph::add_controls(
        &mut b,
        &mut report,
        p,
        &super::controlnet_graph::Targets {
            first: if hires { "txt2img" } else { sampler_id },
            hires: hires.then_some("hires"),
            inpaint: (sampler_id == "inpaint").then_some(("image", "mask")),
        },
    );

    b.node(
        "save",
        "SaveImage",
        vec![("filename", text("{graph}/{run:05}-{item:04}.png"))],
    );
    b.link((sampler_id, "image"), ("save", "image"));
    b.pos("save", step());

    for (k, v) in p.extra.iter().chain(&p.trailing) {
        if report.has(k) {
            // Read into nodes and recorded already (the ControlNet units).
        } else if k.is_empty() {
            report.notes.push(format!("not carried over: {}", v.trim()));
        } else if !QUIET_KEYS.contains(&k.as_str()) {
            report
                .notes
                .push(format!("not carried over: {k}: {}", v.trim()));
        }
    }
    let sampler_kind = b.doc.nodes.get(sampler_id).map(|n| n.kind.clone());
    crate::interop::settings_report::record_a1111(
        &mut report,
        p,
        &format!("{sampler_id} ({})", sampler_kind.unwrap_or_default()),
    );
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
    r.text()
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
                // A tag cannot hold ':' or '>' in its name (A1111 splits its args at ':').
                let tag = LoraTag {
                    te: num(up, "text_strength").unwrap_or(1.0),
                    unet: num(up, "strength").unwrap_or(1.0),
                    name: name.replace([':', '<', '>'], ""),
                };
                loras.push((name, tag));
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
    // A1111 drops ':' and ',' from the names it lists (they would break the list).
    p.lora_hashes = loras
        .iter()
        .filter_map(|(file, l)| hash_of(file).map(|h| (l.name.replace(',', ""), h)))
        .collect();
    let loras: Vec<LoraTag> = loras.into_iter().map(|(_, l)| l).collect();
    // The tags follow the prompt directly, as A1111 appends them, so cutting them out gives the
    // prompt back byte for byte.
    let tags: String = loras.iter().map(LoraTag::to_tag).collect();
    p.raw_prompt = format!("{}{tags}", p.prompt);
    p.loras = loras;
    let units = super::controlnet_graph::units_from_graph(doc, id, &hash_of);
    super::controlnet_graph::push_units(&mut p, &units);
    p.extra.push(("RNG".into(), "CPU".into()));
    p.extra.push(version_field());
    Some(p)
}

/// Our version, under a key of our own (A1111 reads `Version` as its own version number).
fn version_field() -> (String, String) {
    (
        "Defect studio version".into(),
        env!("CARGO_PKG_VERSION").into(),
    )
}

/// The most node kinds a recipe summary lists.
const SUMMARY_KINDS: usize = 12;

/// The A1111 parameters of a recipe without a sampler node (a procedural one): the seed, a
/// short summary of the recipe (`Recipe: Texture > Stain > SaveImage`, its node kinds in link
/// order) and our version, in A1111's key: value form. No prompt. `Size` is left for the writer
/// to fill from the image. A1111's parser reads such a one-line text as parameters (it holds
/// three pairs or more), so PNG-info readers show seed and size.
pub fn procedural_parameters(doc: &GraphDoc, run_seed: u64) -> A1111Params {
    let mut p = A1111Params {
        seed: Some(run_seed),
        ..A1111Params::default()
    };
    let mut kinds = link_order(doc)
        .into_iter()
        .map(|id| doc.nodes[id].kind.as_str())
        .collect::<Vec<_>>();
    if kinds.len() > SUMMARY_KINDS {
        kinds.truncate(SUMMARY_KINDS);
        kinds.push("…");
    }
    p.extra.push(("Recipe".into(), kinds.join(" > ")));
    p.extra.push(version_field());
    p
}

/// The node ids in link order (every node after the nodes feeding it; ties and cycles in id
/// order).
fn link_order(doc: &GraphDoc) -> Vec<&String> {
    let mut indegree: std::collections::BTreeMap<&String, usize> =
        doc.nodes.keys().map(|id| (id, 0)).collect();
    for l in &doc.links {
        if doc.nodes.contains_key(&l.from.0) {
            if let Some(d) = indegree.get_mut(&l.to.0) {
                *d += 1;
            }
        }
    }
    let mut order = Vec::with_capacity(indegree.len());
    let mut done = std::collections::BTreeSet::new();
    while order.len() < indegree.len() {
        // The first node (in id order) whose inputs are all placed; in a cycle, the first left.
        let next = indegree
            .iter()
            .find(|(id, d)| **d == 0 && !done.contains(*id))
            .or_else(|| indegree.iter().find(|(id, _)| !done.contains(*id)))
            .map(|(id, _)| *id);
        let Some(id) = next else { break };
        done.insert(id);
        order.push(id);
        for l in doc.links.iter().filter(|l| &l.from.0 == id) {
            if let Some(d) = indegree.get_mut(&l.to.0) {
                *d = d.saturating_sub(1);
            }
        }
    }
    order
}
