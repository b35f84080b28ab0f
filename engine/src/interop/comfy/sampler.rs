//! Collapsing ComfyUI's latent chains into our sampler nodes:
//! `EmptyLatentImage | VAEEncode | VAEEncodeForInpaint | SetLatentNoiseMask → KSampler |
//! KSamplerAdvanced → VAEDecode` becomes Txt2Img, Img2Img or Inpaint. A sampler whose latent
//! comes straight from another sampler (an SDXL refiner pass) becomes an Img2Img of the first
//! sampler's image, with the strength of the steps it has left.

use nodes::ParamValue;
use serde_json::Value;

use super::convert::Conv;
use super::tables::map_sampler;
use crate::interop::{clamp_f, clamp_i, fixed_seed, size8, text};

/// The longest chain of samplers feeding each other that is followed (a bound on recursion
/// for hostile files; real refiner chains have two).
const MAX_CHAIN: usize = 64;

/// The ComfyUI samplers we collapse.
const SAMPLERS: &[&str] = &["KSampler", "KSamplerAdvanced"];

impl Conv<'_> {
    /// A VAEDecode: its sampler becomes one of our nodes, whose image output stands for it.
    pub(super) fn decoder(&mut self, dec: &str) {
        let Some((ks, _)) = self.link(dec, "samples") else {
            self.drop_node(dec, "its samples input is not connected");
            return;
        };
        let ks_class = self.class(ks).to_string();
        if !SAMPLERS.contains(&ks_class.as_str()) {
            self.drop_node(
                dec,
                format!("decodes the output of {ks_class} {ks}, which has no equivalent"),
            );
            return;
        }
        let Some(our) = self.sampler(ks) else {
            self.drop_node(
                dec,
                format!("decodes the output of {ks_class} {ks}, which is not imported"),
            );
            return;
        };
        self.decoded.insert(dec.to_string(), our.clone());
        self.fold(dec, "image output", &our);
        // A separate VAE on the decoder goes to the sampler's checkpoint.
        let root = self
            .link(ks, "model")
            .and_then(|m| self.checkpoint_root(Some(m), "model"));
        if let (Some((v, _)), Some(root)) = (self.link(dec, "vae"), root) {
            match self.class(v) {
                "VAELoader" => {
                    if let Some(name) = self.str_of(v, "vae_name") {
                        self.b.set(&root, "vae", text(name.clone()));
                        self.fold(v, "vae", &root);
                        self.pickle_note(v, &name);
                    }
                }
                "CheckpointLoaderSimple" if v != root => {
                    self.approx(
                        dec,
                        format!(
                            "decodes with the VAE of checkpoint {v}; here the VAE of {root}, the \
                             sampler's checkpoint, is used"
                        ),
                    );
                }
                _ => {}
            }
        }
    }

    /// Our node for ComfyUI sampler `ks` (made once), or `None` when it cannot be imported.
    pub(super) fn sampler(&mut self, ks: &str) -> Option<String> {
        if let Some(done) = self.samplers.get(ks) {
            return done.clone();
        }
        // In progress: a cycle through this sampler finds nothing.
        self.samplers.insert(ks.to_string(), None);
        if self.depth >= MAX_CHAIN {
            self.drop_node(
                ks,
                format!("part of a chain of more than {MAX_CHAIN} samplers; not followed"),
            );
            return None;
        }
        self.depth += 1;
        let ours = self.make_sampler(ks);
        self.depth -= 1;
        self.samplers.insert(ks.to_string(), ours.clone());
        ours
    }

    fn make_sampler(&mut self, ks: &str) -> Option<String> {
        let advanced = self.class(ks) == "KSamplerAdvanced";
        let Some((lat, _)) = self.link(ks, "latent_image") else {
            self.drop_node(ks, "its latent_image input is not connected");
            return None;
        };
        let mut notes = Vec::new();
        let steps = self.f64_of(ks, "steps").map(|s| s as i64);
        // The share of the schedule this sampler runs: denoise, or for KSamplerAdvanced the
        // steps from start_at_step on.
        let denoise = if advanced {
            let total = steps.unwrap_or(20).max(1);
            let start = self.f64_of(ks, "start_at_step").unwrap_or(0.0) as i64;
            let end = self.f64_of(ks, "end_at_step").unwrap_or(10000.0) as i64;
            if end < total {
                notes.push(format!(
                    "stops at step {end} of {total} and hands on its leftover noise; here it \
                     runs all {total} steps and its image is passed on"
                ));
            }
            if self.str_of(ks, "add_noise").as_deref() == Some("disable") && start > 0 {
                notes.push(
                    "add_noise is disabled (it continues a latent); here fresh noise is added \
                     as Img2Img does"
                        .into(),
                );
            }
            (total - start.clamp(0, total)) as f64 / total as f64
        } else {
            self.f64_of(ks, "denoise").unwrap_or(1.0)
        };
        let strength = clamp_f(denoise, 0.0, 1.0, "denoise", &mut notes);

        let mut params: Vec<(&str, ParamValue)> = Vec::new();
        // Pending links (ComfyUI source, slot, our port), and links from our own nodes.
        let mut links: Vec<(String, u64, &'static str)> = Vec::new();
        let mut direct: Vec<(String, &'static str)> = Vec::new();
        let lat_class = self.class(lat).to_string();
        let kind = match lat_class.as_str() {
            "EmptyLatentImage" => {
                let w = self.f64_of(lat, "width").unwrap_or(512.0) as i64;
                let h = self.f64_of(lat, "height").unwrap_or(512.0) as i64;
                let mut lat_notes = Vec::new();
                params.push(("width", ParamValue::Int(size8(w, "width", &mut lat_notes))));
                params.push((
                    "height",
                    ParamValue::Int(size8(h, "height", &mut lat_notes)),
                ));
                let batch = self.f64_of(lat, "batch_size").unwrap_or(1.0);
                if batch > 1.0 {
                    lat_notes.push(format!(
                        "batch_size {batch} not carried over (use the run's --count)"
                    ));
                }
                self.approx_all(lat, lat_notes);
                if denoise < 1.0 {
                    notes.push(format!(
                        "denoise {denoise} on an empty latent is ignored by Txt2Img"
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
                        let mut gn = Vec::new();
                        let radius = clamp_f(grow, 0.0, 512.0, "grow_mask_by", &mut gn);
                        self.approx_all(lat, gn);
                        self.b.node(
                            &g,
                            "MaskOps",
                            vec![("op", text("grow")), ("radius", ParamValue::Float(radius))],
                        );
                        self.origin.insert(g.clone(), lat.to_string());
                        self.place(&g, lat);
                        self.pending.push((m.to_string(), s, g.clone(), "mask"));
                        self.pending
                            .push((lat.to_string(), u64::MAX, ks.to_string(), "mask"));
                        self.decoded.insert(format!("{lat}#grow"), g.clone());
                    } else {
                        links.push((m.to_string(), s, "mask"));
                    }
                }
                self.approx(
                    lat,
                    "ComfyUI greys out the masked pixels before encoding; our Inpaint keeps \
                     diffusers' masked-image conditioning",
                );
                params.push(("strength", ParamValue::Float(strength)));
                params.push(("mask_blur", ParamValue::Float(0.0)));
                params.push(("paste_back", ParamValue::Bool(false)));
                "Inpaint"
            }
            "SetLatentNoiseMask" => {
                let Some((enc, _)) = self.link(lat, "samples") else {
                    self.drop_node(ks, format!("SetLatentNoiseMask {lat} has no samples"));
                    return None;
                };
                if self.class(enc) != "VAEEncode" {
                    let c = self.class(enc).to_string();
                    self.drop_node(
                        ks,
                        format!(
                            "its SetLatentNoiseMask {lat} masks a latent from {c} {enc}, not a \
                             VAEEncode"
                        ),
                    );
                    return None;
                }
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
            c if SAMPLERS.contains(&c) => {
                let Some(prev) = self.sampler(lat) else {
                    self.drop_node(
                        ks,
                        format!("its latent comes from {c} {lat}, which is not imported"),
                    );
                    return None;
                };
                notes.push(format!(
                    "its latent comes straight from {c} {lat}; here {lat}'s decoded image is \
                     encoded again (Img2Img, strength {strength:.2})"
                ));
                direct.push((prev, "image"));
                params.push(("strength", ParamValue::Float(strength)));
                "Img2Img"
            }
            other => {
                let other = other.to_string();
                self.drop_node(
                    ks,
                    format!(
                        "its latent_image comes from {other} {lat}; only EmptyLatentImage, \
                         VAEEncode, VAEEncodeForInpaint, SetLatentNoiseMask and sampler chains \
                         are imported"
                    ),
                );
                return None;
            }
        };

        self.b.node(ks, kind, Vec::new());
        if let Some(t) = self.prompt_text(ks, "positive") {
            params.push(("prompt", text(t)));
        }
        if let Some(t) = self.prompt_text(ks, "negative") {
            params.push(("negative", text(t)));
        }
        if let Some(steps) = steps {
            params.push((
                "steps",
                ParamValue::Int(clamp_i(steps, 1, 500, "steps", &mut notes)),
            ));
        }
        if let Some(cfg) = self.f64_of(ks, "cfg") {
            params.push((
                "cfg",
                ParamValue::Float(clamp_f(cfg, 0.0, 30.0, "cfg", &mut notes)),
            ));
        }
        let seed_input = if advanced { "noise_seed" } else { "seed" };
        match self.value(ks, seed_input).and_then(Value::as_u64) {
            Some(v) => params.push(("seed", fixed_seed(v))),
            None => notes.push(format!("no literal {seed_input}; the run seed is used")),
        }
        if let Some(ctl) = self.str_of(ks, "control_after_generate") {
            if ctl != "fixed" {
                notes.push(format!(
                    "seed control \"{ctl}\": the saved seed may already be the next one, not \
                     the one the image was made with"
                ));
            }
        }
        let sname = self.str_of(ks, "sampler_name").unwrap_or_default();
        let sched = self.str_of(ks, "scheduler").unwrap_or_default();
        match map_sampler(&sname, &sched) {
            Ok(s) => params.push(("scheduler", text(s))),
            Err(why) => notes.push(format!("{why}; the model's default scheduler is used")),
        }
        if let Some((m, s)) = self.link(ks, "model") {
            let (m, s) = self.through((m, s), "model");
            links.push((m.to_string(), s, "model"));
        }

        self.b.node(ks, kind, params);
        self.place(ks, ks);
        self.imported(ks, ks);
        self.sampler_controls(ks);
        match lat_class.as_str() {
            "EmptyLatentImage" => self.fold(lat, "size", ks),
            c if SAMPLERS.contains(&c) => {}
            _ => self.fold(lat, "image input", ks),
        }
        if lat_class == "SetLatentNoiseMask" {
            if let Some((enc, _)) = self.link(lat, "samples") {
                self.fold(enc, "image input", ks);
            }
        }
        for (src, slot, port) in links {
            self.pending.push((src, slot, ks.to_string(), port));
        }
        for (from, port) in direct {
            self.b.link((&from, "image"), (ks, port));
        }
        self.approx_all(ks, notes);
        Some(ks.to_string())
    }

    /// The prompt text a sampler's conditioning input comes from.
    fn prompt_text(&mut self, ks: &str, input: &str) -> Option<String> {
        let Some(src) = self.link(ks, input) else {
            self.approx(ks, format!("{input} is not connected"));
            return None;
        };
        let (id, _) = self.through(src, "conditioning");
        if self.class(id) != "CLIPTextEncode" {
            let class = self.class(id).to_string();
            self.approx(
                ks,
                format!("{input} comes from {class} {id}, not a CLIPTextEncode; left empty"),
            );
            return None;
        }
        let what = if input == "negative" {
            "negative prompt"
        } else {
            "prompt"
        };
        self.fold(id, what, ks);
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
                    let stop = self.f64_of(c, "stop_at_clip_layer").unwrap_or(-1.0);
                    if let Some(root) = self.checkpoint_root(self.link(c, "clip"), "clip") {
                        let mut notes = Vec::new();
                        let skip = clamp_i(
                            (stop as i64).saturating_neg(),
                            1,
                            12,
                            "clip skip",
                            &mut notes,
                        );
                        self.b.set(&root, "clip_skip", ParamValue::Int(skip));
                        self.fold(c, "clip_skip", &root);
                        self.approx_all(c, notes);
                    }
                    clip = self.link(c, "clip");
                }
                _ => break,
            }
        }
        match self.value(id, "text") {
            Some(Value::String(s)) => Some(s.clone()),
            _ => {
                let from = self
                    .link(id, "text")
                    .map(|(n, _)| format!("{} {n}", self.class(n)))
                    .unwrap_or_else(|| "another node".into());
                self.approx(id, format!("its text comes from {from}; left empty"));
                None
            }
        }
    }

    /// LoRAs that no text encoder reads through: their CLIP weight does not apply.
    pub(super) fn unused_clip_strength(&mut self, any_decoder: bool) {
        let lora_ids: Vec<String> = self
            .flow
            .iter()
            .filter(|(_, n)| n.class == "LoraLoader")
            .map(|(id, _)| id.clone())
            .collect();
        for id in lora_ids {
            let sc = self
                .b
                .doc
                .nodes
                .get(&id)
                .and_then(|n| n.params.get("text_strength"))
                .and_then(ParamValue::as_f64)
                .unwrap_or(0.0);
            if sc != 0.0 && !self.clip_loras.contains(&id) && any_decoder {
                self.b.set(&id, "text_strength", ParamValue::Float(0.0));
                self.approx(
                    &id,
                    format!(
                        "no prompt is encoded through its CLIP output, so text_strength is 0 \
                         (was {sc})"
                    ),
                );
            }
        }
    }
}
