//! Output details: what made the selected gallery output (its recipe's parameters per node,
//! prompt and negative, seed, models with their hashes, per-node timings), "Copy as A1111
//! text", and "send to": use it as a LoadImage input of the open graph, open it in an Inpaint
//! recipe, compare it with another output, or paint a mask over it.
//!
//! [`OutputDetails::load`] reads and parses everything once, when the selection changes;
//! [`details_ui`] only lays out the strings it made.

use egui::{Color32, RichText};
use engine::interop::{a1111, png_meta};
use engine::store::{OutputRecord, RunRecord, Store};
use nodes::{Catalogue, GraphDoc, ParamValue, SeedValue};

use super::doc::EditorDoc;
use super::output_recipes;
use super::{AppCommand, Dialog, StudioApp};

/// What the details' "send to" asks for.
#[derive(Clone, Debug)]
pub enum DetailsCommand {
    /// Add a LoadImage node with the output to the open graph: embedded as an asset, or by
    /// the path of its file in the output folder.
    UseAsInput { output: u64, embed: bool },
    /// Open a new untitled document: an Inpaint recipe over the output
    /// ([`output_recipes::inpaint_recipe`]).
    OpenInInpaint(u64),
    /// The before/after viewer with `output` and `with` ("before").
    Compare { output: u64, with: u64 },
}

/// One parameter as the details show it.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamLine {
    pub name: String,
    pub value: String,
    /// The value is the kind's default (shown weaker).
    pub default: bool,
}

/// One node of the recipe.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeLine {
    pub id: String,
    pub kind: String,
    pub params: Vec<ParamLine>,
}

/// One model the run used.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelLine {
    pub role: String,
    pub name: String,
    pub sha256: String,
    /// A1111's AutoV2 short hash: the sha256's first 10 hex digits.
    pub autov2: String,
}

/// One node's time in the output's work item.
#[derive(Clone, Debug, PartialEq)]
pub struct TimingLine {
    pub node: String,
    pub kind: String,
    pub seconds: f64,
    pub cached: bool,
}

/// Everything the details panel shows about one output, read once per selection.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputDetails {
    pub id: u64,
    pub run_id: u64,
    pub item: u64,
    /// The work item's seed (the run's seed for this variation).
    pub seed: u64,
    /// The seed the sampler used, when the recipe has one (its own fixed seed, or the item's
    /// seed plus its offset), from the A1111 text.
    pub sampler_seed: Option<u64>,
    pub size: (u32, u32),
    pub path: String,
    pub graph_name: String,
    /// The prompt and negative the sampler used (from the A1111 text); `None` without a
    /// sampler node.
    pub prompt: Option<String>,
    pub negative: Option<String>,
    /// The A1111 text of the output: the `parameters` chunk our PNG writer put in it, or (an
    /// output without one) the same writer run on its recipe.
    pub infotext: String,
    /// The recipe as this output's work item ran it (the PNG's recipe chunk), else the run's
    /// graph snapshot.
    pub recipe: Option<GraphDoc>,
    pub nodes: Vec<NodeLine>,
    pub models: Vec<ModelLine>,
    pub timings: Vec<TimingLine>,
    /// What could not be read (shown, not fatal).
    pub problem: Option<String>,
}

/// The most characters of a parameter value shown (prompts are shown in full above).
const VALUE_CHARS: usize = 160;

impl OutputDetails {
    /// Reads output `id`'s PNG (its recipe and A1111 chunks) and its run's record.
    pub fn load(store: &Store, id: u64, rec: &OutputRecord, run: Option<&RunRecord>) -> Self {
        let mut problem = None;
        let png = match store.output_png(id) {
            Ok(Some(b)) => b,
            Ok(None) => {
                problem = Some(format!("output {id} has no image in the store"));
                Vec::new()
            }
            Err(e) => {
                problem = Some(e.to_string());
                Vec::new()
            }
        };
        let chunks = png_meta::read_text_chunks(&png).unwrap_or_default();
        let recipe = png_meta::find_text(&chunks, png_meta::GRAPH_KEYWORD)
            .and_then(|j| GraphDoc::from_json(&j).ok())
            .or_else(|| run.and_then(|r| GraphDoc::from_json(&r.graph_json).ok()));
        let infotext = png_meta::find_text(&chunks, png_meta::A1111_KEYWORD)
            .or_else(|| {
                let doc = recipe.as_ref()?;
                let mut p = a1111::from_graph(doc, rec.seed)
                    .unwrap_or_else(|| a1111::procedural_parameters(doc, rec.seed));
                p.size.get_or_insert((rec.width, rec.height));
                Some(a1111::format_parameters(&p))
            })
            .unwrap_or_default();
        let has_sampler = recipe.as_ref().is_some_and(|d| {
            flat_nodes(d)
                .iter()
                .any(|k| matches!(k.as_str(), "Txt2Img" | "Img2Img" | "Inpaint"))
        });
        let parsed = a1111::parse_parameters(&infotext).ok();
        let (prompt, negative, sampler_seed) = match (&parsed, has_sampler) {
            (Some(p), true) => (Some(p.prompt.clone()), p.negative.clone(), p.seed),
            _ => (None, None, None),
        };
        let catalogue = Catalogue::builtin();
        let nodes = recipe
            .as_ref()
            .map(|d| {
                d.nodes
                    .iter()
                    .map(|(nid, n)| node_line(nid, n, &catalogue))
                    .collect()
            })
            .unwrap_or_default();
        let models = run
            .map(|r| {
                r.stats
                    .models
                    .iter()
                    .map(|m| ModelLine {
                        role: m.role.clone(),
                        name: m.name.clone(),
                        sha256: m.sha256.clone(),
                        autov2: m.sha256.get(..10).unwrap_or("").to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let timings = run
            .map(|r| {
                r.node_timings
                    .iter()
                    .filter(|t| t.item == rec.item)
                    .map(|t| TimingLine {
                        node: t.node.clone(),
                        kind: t.kind.clone(),
                        seconds: t.seconds,
                        cached: t.cached,
                    })
                    .collect()
            })
            .unwrap_or_default();
        if recipe.is_none() && problem.is_none() {
            problem = Some("neither the PNG nor the run keeps a readable recipe".into());
        }
        OutputDetails {
            id,
            run_id: rec.run_id,
            item: rec.item,
            seed: rec.seed,
            sampler_seed,
            size: (rec.width, rec.height),
            path: rec.path.clone(),
            graph_name: run.map(|r| r.graph_name.clone()).unwrap_or_default(),
            prompt,
            negative,
            infotext,
            recipe,
            nodes,
            models,
            timings,
            problem,
        }
    }
}

/// The node kinds of the document with its subgraphs inlined.
fn flat_nodes(doc: &GraphDoc) -> Vec<String> {
    let flat = match nodes::subgraph::needs_flatten(doc) {
        true => nodes::subgraph::flatten(doc, &Catalogue::builtin())
            .map(|f| f.doc)
            .unwrap_or_else(|_| doc.clone()),
        false => doc.clone(),
    };
    flat.nodes.values().map(|n| n.kind.clone()).collect()
}

/// A node's parameters: every parameter of its kind (the default where the recipe sets none),
/// then any the kind does not know (a subgraph's exposed parameters).
fn node_line(id: &str, n: &nodes::NodeDoc, catalogue: &Catalogue) -> NodeLine {
    let mut params = Vec::new();
    let spec = catalogue.get(&n.kind);
    if let Some(spec) = spec {
        for p in spec.params {
            let set = n.params.get(p.name);
            let value = set.cloned().unwrap_or_else(|| p.default_value());
            params.push(ParamLine {
                name: p.name.to_string(),
                value: value_text(&value),
                default: set.is_none_or(|v| *v == p.default_value()),
            });
        }
    }
    for (k, v) in &n.params {
        if spec.is_some_and(|s| s.param(k).is_some()) {
            continue;
        }
        params.push(ParamLine {
            name: k.clone(),
            value: value_text(v),
            default: false,
        });
    }
    NodeLine {
        id: id.to_string(),
        kind: n.kind.clone(),
        params,
    }
}

/// A parameter value as text: embedded assets named as such, long texts cut.
pub fn value_text(v: &ParamValue) -> String {
    match v {
        ParamValue::Bool(b) => b.to_string(),
        ParamValue::Int(i) => i.to_string(),
        ParamValue::Float(f) => format!("{f}"),
        ParamValue::Seed(SeedValue::Fixed { value }) => format!("{value} (fixed)"),
        ParamValue::Seed(SeedValue::Run { offset: 0 }) => "run seed".into(),
        ParamValue::Seed(SeedValue::Run { offset }) => format!("run seed + {offset}"),
        ParamValue::Text(t) => match t.strip_prefix("asset:") {
            Some(sha) => format!("embedded asset {}…", sha.get(..12).unwrap_or(sha)),
            None if t.chars().count() > VALUE_CHARS => {
                let cut: String = t.chars().take(VALUE_CHARS).collect();
                format!("{cut}…")
            }
            None => t.clone(),
        },
    }
}

/// The details of `d`: `others` are the outputs it can be compared with (id, label).
pub fn details_ui(
    ui: &mut egui::Ui,
    d: &OutputDetails,
    others: &[(u64, String)],
) -> Vec<AppCommand> {
    let mut cmds = Vec::new();
    ui.heading(format!("Output {}", d.id));
    ui.label(
        RichText::new(format!(
            "{} · run #{} · item {} · {}×{}",
            d.graph_name, d.run_id, d.item, d.size.0, d.size.1
        ))
        .weak(),
    )
    .on_hover_text(&d.path);
    ui.horizontal_wrapped(|ui| {
        if ui
            .button("Copy as A1111 text")
            .on_hover_text("The generation parameters as AUTOMATIC1111 writes them (PNG info)")
            .clicked()
        {
            ui.ctx().copy_text(d.infotext.clone());
        }
        ui.menu_button("Send to…", |ui| {
            if ui
                .button("Use as input (embedded)")
                .on_hover_text("A LoadImage node in the open graph, the image inside the graph file")
                .clicked()
            {
                cmds.push(AppCommand::Details(DetailsCommand::UseAsInput {
                    output: d.id,
                    embed: true,
                }));
            }
            if ui
                .button("Use as input (by path)")
                .on_hover_text(format!("A LoadImage node reading {}", d.path))
                .clicked()
            {
                cmds.push(AppCommand::Details(DetailsCommand::UseAsInput {
                    output: d.id,
                    embed: false,
                }));
            }
            if ui
                .button("Open in an Inpaint recipe")
                .on_hover_text("A new recipe: this image → mask → Inpaint, with this recipe's model and prompts")
                .clicked()
            {
                cmds.push(AppCommand::Details(DetailsCommand::OpenInInpaint(d.id)));
            }
            if ui
                .button("Paint a mask here")
                .on_hover_text("Paint a mask over this output, then inpaint it")
                .clicked()
            {
                cmds.push(AppCommand::PaintOnOutput(d.id));
            }
            ui.menu_button("Compare with…", |ui| {
                if others.is_empty() {
                    ui.label("no other output");
                }
                egui::ScrollArea::vertical().max_height(300.0).show(ui, |ui| {
                    for (id, label) in others {
                        if ui.button(label).clicked() {
                            cmds.push(AppCommand::Details(DetailsCommand::Compare {
                                output: d.id,
                                with: *id,
                            }));
                        }
                    }
                });
            });
        });
    });
    if let Some(p) = &d.problem {
        ui.colored_label(Color32::LIGHT_RED, p);
    }
    egui::Grid::new("details-main")
        .num_columns(2)
        .show(ui, |ui| {
            ui.label("seed");
            match d.sampler_seed {
                Some(s) if s != d.seed => {
                    ui.horizontal(|ui| {
                        ui.label(format!("seed {s}"));
                        ui.label(RichText::new(format!("(run seed {})", d.seed)).weak());
                    });
                }
                Some(s) => {
                    ui.label(format!("seed {s}"));
                }
                None => {
                    ui.label(format!("seed {}", d.seed));
                }
            }
            ui.end_row();
            if let Some(p) = &d.prompt {
                ui.label("prompt");
                ui.add(egui::Label::new(p.as_str()).wrap());
                ui.end_row();
                ui.label("negative");
                ui.add(egui::Label::new(d.negative.as_deref().unwrap_or("—")).wrap());
                ui.end_row();
            }
        });
    egui::CollapsingHeader::new(format!("Models ({})", d.models.len()))
        .default_open(true)
        .show(ui, |ui| {
            if d.models.is_empty() {
                ui.label(RichText::new("no model files").weak());
            }
            for m in &d.models {
                ui.label(format!("{} · {} · {}", m.role, m.name, short(&m.autov2)))
                    .on_hover_text(format!("sha256 {}\nAutoV2 {}", m.sha256, m.autov2));
            }
        });
    egui::CollapsingHeader::new(format!("Parameters ({} nodes)", d.nodes.len()))
        .default_open(true)
        .show(ui, |ui| {
            for n in &d.nodes {
                egui::CollapsingHeader::new(format!("{} · {}", n.id, n.kind))
                    .id_salt(("details-node", &n.id))
                    .default_open(matches!(n.kind.as_str(), "Txt2Img" | "Img2Img" | "Inpaint"))
                    .show(ui, |ui| {
                        egui::Grid::new(("details-params", &n.id))
                            .num_columns(2)
                            .show(ui, |ui| {
                                for p in &n.params {
                                    ui.label(&p.name);
                                    let t = RichText::new(&p.value);
                                    ui.add(
                                        egui::Label::new(if p.default { t.weak() } else { t })
                                            .wrap(),
                                    );
                                    ui.end_row();
                                }
                            });
                    });
            }
        });
    let total: f64 = d.timings.iter().map(|t| t.seconds).sum();
    egui::CollapsingHeader::new(format!("Timings ({total:.2} s)"))
        .default_open(false)
        .show(ui, |ui| {
            egui::Grid::new("details-timings")
                .num_columns(3)
                .show(ui, |ui| {
                    for t in &d.timings {
                        ui.label(&t.node);
                        ui.label(RichText::new(&t.kind).weak());
                        ui.label(if t.cached {
                            "cached".to_string()
                        } else {
                            format!("{:.3} s", t.seconds)
                        });
                        ui.end_row();
                    }
                });
        });
    cmds
}

fn short(h: &str) -> &str {
    if h.is_empty() {
        "no hash"
    } else {
        h
    }
}

impl StudioApp {
    /// Carries out what the details' "send to" asks.
    pub(super) fn apply_details(&mut self, ctx: &egui::Context, cmd: DetailsCommand) {
        let Some(store) = &self.store else { return };
        match cmd {
            DetailsCommand::UseAsInput { output, embed } => {
                let source = if embed {
                    match store.output_png(output) {
                        Ok(Some(png)) => {
                            let mut assets = GraphDoc::new();
                            let r = output_recipes::embed(&mut assets, &png);
                            self.doc.extra.assets.append(&mut assets.assets);
                            r
                        }
                        Ok(None) => {
                            return self.error(
                                "Cannot use the output",
                                format!("output {output} has no image in the store"),
                            )
                        }
                        Err(e) => return self.error("Cannot use the output", e.to_string()),
                    }
                } else {
                    match self.gallery.outputs.iter().find(|(o, _)| *o == output) {
                        Some((_, rec)) => rec.path.clone(),
                        None => return,
                    }
                };
                let pos = self.graph_transform.inverse() * ctx.content_rect().center();
                let node = self.doc.add_node("LoadImage", pos);
                if let Some(n) = self.doc.snarl.get_node_mut(node) {
                    n.params.insert("source".into(), ParamValue::Text(source));
                    let id = n.id.clone();
                    self.inspected = Some(id.clone());
                    self.notify(ctx, format!("added {id} with output {output}"));
                }
            }
            DetailsCommand::OpenInInpaint(output) => {
                if self.doc.dirty(&self.catalogue) {
                    self.dialog = Some(Dialog::Unsaved(Box::new(AppCommand::Details(cmd))));
                    return;
                }
                let png = match store.output_png(output) {
                    Ok(Some(png)) => png,
                    Ok(None) => {
                        return self.error(
                            "Cannot open an Inpaint recipe",
                            format!("output {output} has no image in the store"),
                        )
                    }
                    Err(e) => return self.error("Cannot open an Inpaint recipe", e.to_string()),
                };
                let like = self
                    .gallery
                    .details
                    .as_ref()
                    .filter(|d| d.id == output)
                    .and_then(|d| d.recipe.clone())
                    .or_else(|| {
                        let rec = self.gallery.outputs.iter().find(|(o, _)| *o == output)?;
                        let run = self.gallery.runs.iter().find(|(r, _)| *r == rec.1.run_id)?;
                        GraphDoc::from_json(&run.1.graph_json).ok()
                    });
                match output_recipes::inpaint_recipe(&png, None, like.as_ref()) {
                    Ok(mut doc) => {
                        doc.meta.title = format!("Inpaint output {output}");
                        self.doc = EditorDoc::new(&doc, &self.catalogue, None);
                        // A new document not saved anywhere yet: closing it asks first.
                        self.doc.saved = GraphDoc::new();
                        self.outputs.clear();
                        self.states.clear();
                        self.frame_all = true;
                        self.inspected = Some("inpaint".into());
                        self.notify(
                            ctx,
                            "an Inpaint recipe over the output: paint the mask in its PaintMask node",
                        );
                    }
                    Err(e) => self.error("Cannot open an Inpaint recipe", e),
                }
            }
            DetailsCommand::Compare { output, with } => {
                self.gallery.compare(ctx, store, output, with);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::store::{NodeTiming, RunModel};

    /// An output whose PNG carries no chunks (written before they existed): the details come
    /// from the run's snapshot and record, and the A1111 text from the same writer.
    #[test]
    fn an_output_without_chunks_is_described_from_its_run() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store.redb")).unwrap();
        let graph = serde_json::json!({
            "format": "defect-studio/graph", "version": 2,
            "nodes": {
                "ckpt": {"kind": "LoadCheckpoint", "version": 1,
                         "params": {"checkpoint": "tiny.safetensors"}},
                "gen": {"kind": "Txt2Img", "version": 1,
                        "params": {"prompt": "a chipped edge", "steps": 3, "cfg": 4.0,
                                   "seed": {"mode": "run", "offset": 5}}},
                "save": {"kind": "SaveImage", "version": 1}
            },
            "links": [
                {"from": ["ckpt", "model"], "to": ["gen", "model"]},
                {"from": ["gen", "image"], "to": ["save", "image"]}
            ]
        });
        let sha = "0123456789abcdef".repeat(4);
        let mut run = RunRecord {
            graph_name: "chips".into(),
            graph_json: graph.to_string(),
            seed: 100,
            items: 2,
            ..RunRecord::default()
        };
        run.stats.models.push(RunModel {
            role: "checkpoint".into(),
            name: "tiny.safetensors".into(),
            sha256: sha.clone(),
            ..RunModel::default()
        });
        for item in 0..2 {
            run.node_timings.push(NodeTiming {
                item,
                node: "gen".into(),
                kind: "Txt2Img".into(),
                seconds: 1.0 + item as f64,
                cached: false,
            });
        }
        let run_id = store.begin_run(&run).unwrap();
        let png = engine::codec::encode_rgba8_png(8, 4, &[90; 8 * 4 * 4]).unwrap();
        let rec = OutputRecord {
            run_id,
            item: 1,
            node: "save".into(),
            seed: 101,
            path: "out/1.png".into(),
            sha256: engine::hashing::sha256_hex(&png),
            width: 8,
            height: 4,
            mask_path: None,
            mask_sha256: None,
            created_ms: 0,
            label: String::new(),
            overrides: serde_json::Value::Null,
            clean_path: None,
            clean_sha256: None,
            inspection: Default::default(),
        };
        let id = store.add_output(&rec, &png, None).unwrap();
        let d = OutputDetails::load(&store, id, &rec, Some(&run));
        assert_eq!(d.problem, None);
        assert_eq!(d.prompt.as_deref(), Some("a chipped edge"));
        assert_eq!(d.sampler_seed, Some(106), "the item's seed plus the offset");
        let p = a1111::parse_parameters(&d.infotext).unwrap();
        assert_eq!(
            (p.seed, p.steps, p.cfg_scale),
            (Some(106), Some(3), Some(4.0))
        );
        assert_eq!(p.size, Some((8, 4)), "{}", d.infotext);
        assert_eq!(d.models[0].autov2, sha[..10]);
        assert_eq!(d.timings.len(), 1);
        assert_eq!(d.timings[0].seconds, 2.0);
        let gen = d.nodes.iter().find(|n| n.id == "gen").unwrap();
        let steps = gen.params.iter().find(|p| p.name == "steps").unwrap();
        assert_eq!((steps.value.as_str(), steps.default), ("3", false));
        let sched = gen.params.iter().find(|p| p.name == "scheduler").unwrap();
        assert!(sched.default);
    }
}
