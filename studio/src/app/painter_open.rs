//! Where the mask painter opens and where its mask goes: a PaintMask node (the painting in the
//! graph's assets), a LoadMask node (back to its file, atomically, or into the graph's
//! assets), any node's Mask input ("Paint this mask…": edits the PaintMask or LoadMask node
//! feeding it, else adds a PaintMask node there), and a gallery output ("paint a mask here":
//! applying opens an Inpaint recipe made by [`super::output_recipes::inpaint_recipe`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use egui::Vec2;
use engine::Mask;
use nodes::{GraphDoc, ParamValue};

use super::doc::EditorDoc;
use super::painter::{MaskPainter, PaintTarget, PainterAction, PainterCommand};
use super::{AppCommand, Dialog, StudioApp};

impl StudioApp {
    /// The image feeding a node's `image` input, from the last run.
    pub(super) fn input_image(&self, node: &str) -> Option<engine::Image> {
        let doc = self.doc.to_doc(&self.catalogue);
        let link = doc.link_into(node, "image")?;
        let v = self.outputs.get(&link.from.0)?.get(link.from.1.as_str())?;
        v.as_image().map(|i| (**i).clone())
    }

    /// The image to paint over for a target: a PaintMask node's input image; for a LoadMask
    /// node, the image of the first node its mask feeds (an Inpaint's image).
    fn background_of(&self, target: &PaintTarget) -> Option<engine::Image> {
        match target {
            PaintTarget::PaintMask(n) => self.input_image(n),
            PaintTarget::LoadMask { node, .. } => {
                let doc = self.doc.to_doc(&self.catalogue);
                doc.links
                    .iter()
                    .filter(|l| l.from.0 == *node)
                    .find_map(|l| self.input_image(&l.to.0))
            }
            PaintTarget::Output { .. } => None,
        }
    }

    /// Every Mask output of the last run, as `node.port` (for "Start from…").
    fn mask_sources(&self) -> Vec<(String, Arc<Mask>)> {
        let mut out: Vec<(String, Arc<Mask>)> = self
            .outputs
            .iter()
            .flat_map(|(node, outs)| {
                outs.iter().filter_map(move |(port, v)| {
                    v.as_mask()
                        .map(|m| (format!("{node}.{port}"), Arc::clone(m)))
                })
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Opens the painter on a PaintMask or LoadMask node.
    pub(super) fn open_painter(&mut self, ctx: &egui::Context, node: &str) {
        let Some(nid) = self.doc.find(node) else {
            return;
        };
        let kind = self
            .doc
            .snarl
            .get_node(nid)
            .map(|n| n.kind.clone())
            .unwrap_or_default();
        match kind.as_str() {
            "PaintMask" => self.open_paint_mask(ctx, node),
            "LoadMask" => {
                if let Err(e) = self.open_load_mask(ctx, node) {
                    self.error("Cannot paint this mask", e);
                }
            }
            _ => self.error(
                "Cannot paint this mask",
                format!("{node} is a {kind} node; the painter edits PaintMask and LoadMask nodes"),
            ),
        }
    }

    fn param_text(&self, node: &str, name: &str) -> Option<String> {
        let nid = self.doc.find(node)?;
        let n = self.doc.snarl.get_node(nid)?;
        n.params
            .get(name)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    }

    /// The bytes of an embedded `asset:<sha256>`.
    fn asset_bytes(&self, source: &str) -> Option<Vec<u8>> {
        let sha = source.strip_prefix("asset:")?;
        let a = self.doc.extra.assets.get(sha)?;
        engine::hashing::decode_base64(&a.data_base64).ok()
    }

    fn open_paint_mask(&mut self, ctx: &egui::Context, node: &str) {
        let painting = self
            .param_text(node, "painting")
            .and_then(|s| self.asset_bytes(&s))
            .and_then(|b| engine::codec::decode_image(&b, "painting").ok())
            .map(|img| Mask {
                width: img.width,
                height: img.height,
                data: img.data.chunks_exact(4).map(|p| p[0]).collect(),
            });
        let target = PaintTarget::PaintMask(node.to_string());
        let image = self.background_of(&target);
        let mut painter = MaskPainter::new(target, image.as_ref(), painting, ctx);
        if image.is_none() {
            painter.message =
                Some("Run the graph (or \"Run to here\") to paint over the input image.".into());
            self.apply(
                ctx,
                AppCommand::Run {
                    to_node: Some(node.to_string()),
                },
            );
        }
        self.painter = Some(painter);
    }

    /// Where a graph's relative path points: beside the graph file, else the working folder
    /// (as runs resolve it).
    fn resolve_path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            return p.to_path_buf();
        }
        self.doc
            .path
            .as_ref()
            .and_then(|g| g.parent())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| std::env::current_dir().unwrap_or_default())
            .join(p)
    }

    fn open_load_mask(&mut self, ctx: &egui::Context, node: &str) -> Result<(), String> {
        let source = self.param_text(node, "source").unwrap_or_default();
        let channel = self
            .param_text(node, "channel")
            .unwrap_or_else(|| "luma".into());
        let invert = self
            .doc
            .find(node)
            .and_then(|n| self.doc.snarl.get_node(n))
            .and_then(|n| n.params.get("invert"))
            .map(|v| matches!(v, ParamValue::Bool(true)))
            .unwrap_or(false);
        let (bytes, file) = if source.trim().is_empty() {
            (None, None)
        } else if source.starts_with("asset:") {
            let b = self
                .asset_bytes(&source)
                .ok_or_else(|| format!("{node}: the graph has no asset {source}"))?;
            (Some(b), None)
        } else {
            let path = self.resolve_path(&source);
            if path.is_dir() {
                return Err(format!(
                    "{node}: {} is a folder; the painter edits one mask file",
                    path.display()
                ));
            }
            let b = std::fs::read(&path).map_err(|e| format!("{node}: {}: {e}", path.display()))?;
            (Some(b), Some(path))
        };
        let mask = match &bytes {
            Some(b) => {
                Some(mask_of(b, &source, &channel, invert).map_err(|e| format!("{node}: {e}"))?)
            }
            None => None,
        };
        let png = file.as_ref().is_some_and(|f| {
            f.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e.eq_ignore_ascii_case("png"))
        });
        let note = (file.is_some() && !png).then(|| {
            "Only PNG files are written back: keep the painting in the graph, or Export PNG…"
                .to_string()
        });
        let target = PaintTarget::LoadMask {
            node: node.to_string(),
            file: file.filter(|_| png),
            channel,
            invert,
        };
        let image = self.background_of(&target);
        let mut painter = MaskPainter::new(target, image.as_ref(), mask, ctx);
        painter.message = note;
        self.painter = Some(painter);
        Ok(())
    }

    /// Stores a PNG in the document's assets; returns `asset:<sha256>`.
    fn embed_png(&mut self, png: Vec<u8>) -> String {
        let sha = engine::hashing::sha256_hex(&png);
        self.doc.extra.assets.insert(
            sha.clone(),
            nodes::Asset {
                mime: "image/png".into(),
                data_base64: engine::hashing::encode_base64(&png),
                external: false,
                size: None,
            },
        );
        format!("asset:{sha}")
    }

    fn set_param(&mut self, node: &str, name: &str, value: ParamValue) -> Result<(), String> {
        let nid = self
            .doc
            .find(node)
            .ok_or_else(|| format!("node {node} is gone"))?;
        if let Some(n) = self.doc.snarl.get_node_mut(nid) {
            n.params.insert(name.into(), value);
        }
        Ok(())
    }

    /// Stores a painted mask in the document's assets and points the PaintMask node at it.
    pub fn apply_painting(&mut self, node: &str, mask: &Mask) -> Result<(), String> {
        let png = engine::codec::encode_mask_png(mask, &[])?;
        let asset = self.embed_png(png);
        self.set_param(node, "painting", ParamValue::Text(asset))
    }

    /// Carries out what the painter window asked; `Ok(true)` closes it.
    fn store_painting(
        &mut self,
        ctx: &egui::Context,
        target: &PaintTarget,
        action: PainterAction,
    ) -> Result<bool, String> {
        match (target, action) {
            (_, PainterAction::Close) => Ok(true),
            (
                PaintTarget::PaintMask(node),
                PainterAction::Apply(m) | PainterAction::IntoGraph(m),
            ) => {
                self.apply_painting(node, &m)?;
                Ok(true)
            }
            (
                PaintTarget::LoadMask {
                    node,
                    file,
                    channel,
                    invert,
                },
                action,
            ) => {
                let (m, to_file) = match action {
                    PainterAction::Apply(m) => (m, file.clone()),
                    PainterAction::IntoGraph(m) => (m, None),
                    PainterAction::Close => return Ok(true),
                };
                let png = load_mask_png(&m, channel, *invert)?;
                match to_file {
                    Some(f) => {
                        write_atomically(&f, &png)?;
                        // The node reads the file again: forget its cached output.
                        self.outputs.remove(node);
                        self.notify(ctx, format!("saved the mask to {}", f.display()));
                    }
                    None => {
                        let asset = self.embed_png(png);
                        self.set_param(node, "source", ParamValue::Text(asset))?;
                        self.notify(
                            ctx,
                            format!("{node} now reads the painted mask from the graph"),
                        );
                    }
                }
                Ok(true)
            }
            (
                PaintTarget::Output {
                    image_png, like, ..
                },
                PainterAction::Apply(m) | PainterAction::IntoGraph(m),
            ) => {
                let mask_png = engine::codec::encode_mask_png(&m, &[])?;
                let doc = super::output_recipes::inpaint_recipe(
                    image_png,
                    Some(&mask_png),
                    like.as_deref(),
                )?;
                self.apply_painter(ctx, PainterCommand::OpenRecipe(Box::new(doc)));
                Ok(true)
            }
        }
    }

    /// The painter window, when open.
    pub(super) fn painter_window_ui(&mut self, ctx: &egui::Context) {
        // Once a run has produced the image under the mask, show it.
        let seen = self.outputs.len();
        if let Some(target) = self
            .painter
            .as_mut()
            .filter(|p| !p.has_background() && p.outputs_seen != Some(seen))
            .map(|p| {
                p.outputs_seen = Some(seen);
                p.target.clone()
            })
        {
            if let Some(img) = self.background_of(&target) {
                if let Some(p) = &mut self.painter {
                    p.set_background(&img, ctx);
                }
            }
        }
        let sources = if self.painter.is_some() {
            self.mask_sources()
        } else {
            return;
        };
        let Some(p) = &mut self.painter else {
            return;
        };
        let mut open = true;
        let mut action = None;
        egui::Window::new(format!("Mask painter · {}", p.target.title()))
            .open(&mut open)
            .default_size([820.0, 720.0])
            .show(ctx, |ui| {
                action = p.painter_ui(ui, &sources);
            });
        let target = p.target.clone();
        match action {
            Some(a) => match self.store_painting(ctx, &target, a) {
                Ok(true) => self.painter = None,
                Ok(false) => {}
                Err(e) => {
                    if let Some(p) = &mut self.painter {
                        p.message = Some(e.clone());
                    }
                    self.error("Cannot store the painting", e);
                }
            },
            None if !open => self.painter = None,
            None => {}
        }
    }

    /// "Paint a mask here" on a gallery output: the painter over that output; applying the
    /// mask opens an Inpaint recipe ([`super::output_recipes::inpaint_recipe`]) with the output
    /// as its image and the mask painted.
    pub fn paint_on_output(&mut self, ctx: &egui::Context, id: u64) {
        if let Err(e) = self.try_paint_on_output(ctx, id) {
            self.error("Cannot paint on this output", e);
        }
    }

    fn try_paint_on_output(&mut self, ctx: &egui::Context, id: u64) -> Result<(), String> {
        let store = self.store.as_ref().ok_or("the store is not open")?;
        let png = store
            .output_png(id)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("output #{id} has no image in the store"))?;
        let own_mask = store
            .output_mask_png(id)
            .map_err(|e| e.to_string())?
            .and_then(|b| mask_of(&b, "mask", "luma", false).ok());
        if !self.gallery.outputs.iter().any(|(o, _)| *o == id) {
            self.gallery.refresh(store);
        }
        let like = self
            .gallery
            .outputs
            .iter()
            .find(|(o, _)| *o == id)
            .and_then(|(_, rec)| self.gallery.runs.iter().find(|(r, _)| *r == rec.run_id))
            .and_then(|(_, run)| GraphDoc::from_json(&run.graph_json).ok())
            .map(Box::new);
        let image = engine::codec::decode_image(&png, &format!("output #{id}"))?;
        let target = PaintTarget::Output {
            id,
            image_png: Arc::new(png),
            like,
        };
        let mut painter = MaskPainter::new(target, Some(&image), None, ctx);
        if let Some(m) = own_mask {
            painter
                .extra_sources
                .push((format!("output #{id}'s mask"), Arc::new(m)));
        }
        self.painter = Some(painter);
        Ok(())
    }

    /// Carries out a [`PainterCommand`].
    pub(super) fn apply_painter(&mut self, ctx: &egui::Context, cmd: PainterCommand) {
        match cmd {
            PainterCommand::PaintInput { node, input } => self.paint_input(ctx, &node, &input),
            PainterCommand::OpenRecipe(doc) => {
                if self.doc.dirty(&self.catalogue) {
                    self.dialog = Some(Dialog::Unsaved(Box::new(AppCommand::Painter(
                        PainterCommand::OpenRecipe(doc),
                    ))));
                    return;
                }
                self.doc = EditorDoc::new(&doc, &self.catalogue, None);
                self.outputs.clear();
                self.states.clear();
                self.frame_all = true;
                self.notify(ctx, "opened the Inpaint recipe (unsaved)");
            }
        }
    }

    /// "Paint this mask…" on `node`'s Mask input `input`.
    fn paint_input(&mut self, ctx: &egui::Context, node: &str, input: &str) {
        let doc = self.doc.to_doc(&self.catalogue);
        let linked = doc.link_into(node, input).map(|l| l.from.clone());
        if let Some(nodes::PortRef(from, _)) = &linked {
            let kind = doc.nodes.get(from).map(|n| n.kind.as_str());
            if matches!(kind, Some("PaintMask" | "LoadMask")) {
                self.open_painter(ctx, from);
                return;
            }
        }
        let Some(nid) = self.doc.find(node) else {
            return;
        };
        let pos = self
            .doc
            .snarl
            .get_node_info(nid)
            .map(|n| n.pos)
            .unwrap_or_default()
            - Vec2::new(260.0, -120.0);
        let new = self.doc.add_node("PaintMask", pos);
        let Some(new_id) = self.doc.snarl.get_node(new).map(|n| n.id.clone()) else {
            return;
        };
        // Paint over what the node works on: the image feeding its own `image` input.
        if let Some(l) = doc.link_into(node, "image") {
            self.apply(
                ctx,
                AppCommand::Connect {
                    from: (l.from.0.clone(), l.from.1.clone()),
                    to: (new_id.clone(), "image".into()),
                },
            );
        }
        self.apply(
            ctx,
            AppCommand::Connect {
                from: (new_id.clone(), "mask".into()),
                to: (node.to_string(), input.to_string()),
            },
        );
        if let Some(nodes::PortRef(from, port)) = linked {
            self.notify(
                ctx,
                format!("{new_id} replaces {from}.{port} at {node}.{input} (Ctrl+Z undoes)"),
            );
        }
        self.open_painter(ctx, &new_id);
    }
}

/// A mask from an image file's bytes, read as a LoadMask node with `channel` and `invert`
/// reads it (luma is PIL's `convert('L')`).
fn mask_of(bytes: &[u8], name: &str, channel: &str, invert: bool) -> Result<Mask, String> {
    let img = engine::codec::decode_image(bytes, name)?;
    let pick = |p: &[f32]| -> f32 {
        match channel {
            "alpha" => p[3],
            "red" => p[0],
            "green" => p[1],
            "blue" => p[2],
            _ => (p[0] * 299.0 + p[1] * 587.0 + p[2] * 114.0) / 1000.0,
        }
    };
    Ok(Mask {
        width: img.width,
        height: img.height,
        data: img
            .data
            .chunks_exact(4)
            .map(|p| {
                let v = pick(p).clamp(0.0, 1.0);
                if invert {
                    1.0 - v
                } else {
                    v
                }
            })
            .collect(),
    })
}

/// The PNG a LoadMask node with `channel` and `invert` reads back as `m`: greyscale (every
/// colour channel and luma hold the value), or white with the value as alpha.
fn load_mask_png(m: &Mask, channel: &str, invert: bool) -> Result<Vec<u8>, String> {
    let v8 = |v: f32| {
        let v = if invert { 1.0 - v } else { v };
        (v.clamp(0.0, 1.0) * 255.0).round() as u8
    };
    if channel == "alpha" {
        let rgba: Vec<u8> = m
            .data
            .iter()
            .flat_map(|&v| [255, 255, 255, v8(v)])
            .collect();
        engine::codec::encode_rgba8_png(m.width, m.height, &rgba)
    } else {
        let grey: Vec<u8> = m.data.iter().map(|&v| v8(v)).collect();
        engine::codec::encode_gray8_png(m.width, m.height, &grey)
    }
}

/// Writes `bytes` to `path` through a temporary file beside it and a rename, so a reader never
/// sees half a file and a failed write leaves the old file.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| format!("{}: not a file name", path.display()))?;
    let tmp = path.with_file_name(format!(".{name}.painting.tmp"));
    let r = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = r {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("{}: {e}", path.display()));
    }
    Ok(())
}
