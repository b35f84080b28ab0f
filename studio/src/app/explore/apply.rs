//! The app's side of the Explore window: showing it, and carrying out its commands through the
//! engine's catalogue and explorations (`engine::explore`). Quick edits (tags, bookmarks, opening
//! a recipe) run here; maps, similarity, coverage and exports run as [`super::jobs`] off the UI
//! thread. `defect-studio --explore-demo` shows [`ExploreView::demo`] instead of the store.

use egui::{Color32, ColorImage, TextureOptions};
use engine::dataset::ExportOptions;
use engine::explore::Catalog;
use nodes::GraphDoc;

use super::jobs::{self, JobResult};
use super::{CoverageReadout, ExploreCommand, ExploreView};
use crate::app::painter::image_to_color;
use crate::app::{AppCommand, StudioApp};

/// Thumbnail size (pixels, longer side).
const THUMB: u32 = 128;
/// Thumbnails decoded per frame (the rest wait for the next frames).
const THUMBS_PER_FRAME: usize = 8;

impl StudioApp {
    /// Shows the Explore window (with demo data while there is nothing to show).
    pub(crate) fn open_explore(&mut self, ctx: &egui::Context) {
        self.explore.open = true;
        if self.explore.view().is_empty() && self.explore_jobs.busy.is_none() {
            let query = self.explore_jobs.query.clone();
            self.apply_explore(ctx, ExploreCommand::Query(query));
        }
    }

    /// Shows demo data (the README's screenshot and the UI tests without a store).
    pub fn open_explore_demo(&mut self) {
        self.explore.open = true;
        // The demo view is always consistent.
        let _ = self.explore.set_view(ExploreView::demo(600, 1));
        self.explore.set_color_by(Some("label"));
    }

    /// Takes a finished job's result into the window.
    pub(crate) fn poll_explore(&mut self, ctx: &egui::Context) {
        let Some(result) = self.explore_jobs.poll() else {
            return;
        };
        match result {
            Err(e) => self.error("Explore", e),
            Ok(JobResult::View(view)) => {
                let keep = self.explore.color_column_name().map(str::to_string);
                if let Err(e) = self.explore.set_view(view) {
                    self.error("Explore", e);
                } else if keep.is_none() {
                    self.explore.set_color_by(Some("label"));
                }
            }
            Ok(JobResult::Select { ids, note }) => {
                self.explore.select_ids(&ids);
                self.notify(ctx, note);
            }
            Ok(JobResult::Score { name, values, note }) => {
                let mut view = self.explore.view().clone();
                let by_id: std::collections::HashMap<u64, f32> = values.into_iter().collect();
                let column = view
                    .ids
                    .iter()
                    .map(|id| by_id.get(id).copied().unwrap_or(f32::NAN))
                    .collect();
                view.columns.retain(|(n, _)| n != &name);
                view.columns
                    .push((name.clone(), super::Column::Number(column)));
                if self.explore.set_view(view).is_ok() {
                    self.explore.set_color_by(Some(&name));
                }
                self.notify(ctx, note);
            }
            Ok(JobResult::Coverage(readout)) => {
                let mut view = self.explore.view().clone();
                view.coverage = Some(readout);
                let _ = self.explore.set_view(view);
            }
            Ok(JobResult::Done(msg)) => self.notify(ctx, msg),
        }
    }

    /// Starts a job, or says why not.
    fn explore_job(
        &mut self,
        ctx: &egui::Context,
        what: &str,
        job: impl FnOnce() -> Result<JobResult, String> + Send + 'static,
    ) {
        if let Err(e) = self.explore_jobs.start(what, ctx, job) {
            self.notify(ctx, e);
        }
    }

    pub(crate) fn explore_window_ui(&mut self, ctx: &egui::Context, cmds: &mut Vec<AppCommand>) {
        if !self.explore.open {
            return;
        }
        let mut open = true;
        egui::Window::new("Explore")
            .open(&mut open)
            .default_size([1300.0, 820.0])
            .resizable(true)
            .show(ctx, |ui| {
                if let Some(busy) = &self.explore_jobs.busy {
                    ui.horizontal(|ui| {
                        ui.spinner();
                        ui.label(format!("{busy}…"));
                    });
                }
                cmds.extend(
                    self.explore
                        .explore_ui(ui)
                        .into_iter()
                        .map(AppCommand::Explore),
                );
            });
        self.explore.open = open;
    }

    /// Carries out one Explore command.
    pub(crate) fn apply_explore(&mut self, ctx: &egui::Context, cmd: ExploreCommand) {
        match cmd {
            ExploreCommand::WantThumbnails(ids) => {
                let (now, later) = ids.split_at(ids.len().min(THUMBS_PER_FRAME));
                for id in now {
                    match self.explore_thumbnail(*id) {
                        Some(img) => {
                            let tex = ctx.load_texture(
                                format!("explore-thumb-{id}"),
                                img,
                                TextureOptions::LINEAR,
                            );
                            self.explore.insert_thumbnail(*id, tex);
                        }
                        None => self.explore.no_thumbnail(*id),
                    }
                }
                if !later.is_empty() {
                    self.push(AppCommand::Explore(ExploreCommand::WantThumbnails(
                        later.to_vec(),
                    )));
                    ctx.request_repaint();
                }
            }
            ExploreCommand::PickExportDir => {
                // No answer (cancelled, or no dialog here): the typed folder stays.
                if let Some(dir) = rfd::FileDialog::new().pick_folder() {
                    self.explore.set_export_dir(&dir);
                }
            }
            _ if self.explore.view().demo => {
                self.notify(
                    ctx,
                    "Explore: demo data (no store behind these items)".to_string(),
                );
            }
            ExploreCommand::Query(q) => {
                self.explore_jobs.query = q.clone();
                let spec = self.explore_jobs.spec;
                self.explore_job(ctx, &format!("exploring \"{q}\""), move || {
                    jobs::with_exploration(&q, |_, ex| jobs::view_of(ex, spec, &q))
                        .map(JobResult::View)
                });
            }
            ExploreCommand::Recompute { method, dims } => {
                let spec = jobs::spec(method, dims);
                self.explore_jobs.spec = spec;
                let q = self.explore_jobs.query.clone();
                self.explore_job(
                    ctx,
                    &format!("computing a {} map", method.label()),
                    move || {
                        jobs::with_exploration(&q, |_, ex| jobs::view_of(ex, spec, &q))
                            .map(JobResult::View)
                    },
                );
            }
            ExploreCommand::Tag { ids, tag } => self.explore_tag(ctx, &ids, &tag, true),
            ExploreCommand::Untag { ids, tag } => self.explore_tag(ctx, &ids, &tag, false),
            ExploreCommand::Bookmark(ids) => {
                // Outputs go into the gallery's bookmarks; every item gets the `bookmarked` tag.
                if let Some(store) = &self.store {
                    let cat = Catalog::new(store);
                    for id in &ids {
                        if let Ok(Some(out)) = cat.item(*id).map(|i| i.and_then(|i| i.output_id)) {
                            let _ = store.set_bookmark(out, "");
                        }
                    }
                }
                self.explore_tag(ctx, &ids, "bookmarked", true);
            }
            ExploreCommand::OpenRecipe(id) => match self.explore_recipe(id) {
                Ok(doc) => {
                    self.doc.replace(&doc, &self.catalogue);
                    self.frame_all = true;
                    self.notify(ctx, format!("opened the recipe of item {id}"));
                }
                Err(e) => self.error("Cannot open the recipe", e),
            },
            ExploreCommand::ExportSelection { ids, format, dir } => {
                self.explore_job(ctx, "exporting the selection", move || {
                    let store = engine::Store::open(&engine::paths::store_path())
                        .map_err(|e| e.to_string())?;
                    let cat = Catalog::new(&store);
                    let r = engine::explore::export_selection(
                        &cat,
                        &ids,
                        &ExportOptions::from(format),
                        &dir,
                    )
                    .map_err(|e| e.to_string())?;
                    Ok(JobResult::Done(format!(
                        "exported {} image(s) as {} to {}{}",
                        r.report.images,
                        format.name(),
                        dir.display(),
                        if r.left_out.is_empty() {
                            String::new()
                        } else {
                            format!(
                                "; {} left out (first: item {}: {})",
                                r.left_out.len(),
                                r.left_out[0].0,
                                r.left_out[0].1
                            )
                        }
                    )))
                });
            }
            ExploreCommand::FindSimilar { id, k } => {
                let q = self.explore_jobs.query.clone();
                self.explore_job(ctx, "finding similar items", move || {
                    jobs::with_exploration(&q, |_, ex| ex.similar(id, k)).map(|near| {
                        let mut ids = vec![id];
                        ids.extend(near.iter().map(|(i, _)| *i));
                        JobResult::Select {
                            note: format!(
                                "the {} item(s) most similar to #{id} are selected, nearest first",
                                near.len()
                            ),
                            ids,
                        }
                    })
                });
            }
            ExploreCommand::NearDuplicates { threshold } => {
                let q = self.explore_jobs.query.clone();
                // The window asks for a cosine similarity; the engine takes a distance.
                let distance = (1.0 - threshold).clamp(0.0, 2.0);
                self.explore_job(ctx, "finding near-duplicates", move || {
                    jobs::with_exploration(&q, |_, ex| ex.near_duplicates(distance)).map(|groups| {
                        let ids: Vec<u64> = groups.iter().flatten().copied().collect();
                        JobResult::Select {
                            note: format!(
                                "{} group(s) of near-duplicates ({} items) selected",
                                groups.len(),
                                ids.len()
                            ),
                            ids,
                        }
                    })
                });
            }
            ExploreCommand::RankUniqueness => {
                let q = self.explore_jobs.query.clone();
                self.explore_job(ctx, "ranking by uniqueness", move || {
                    jobs::with_exploration(&q, |_, ex| {
                        let u = ex.compute_uniqueness()?.to_vec();
                        Ok(ex.ids.iter().copied().zip(u).collect::<Vec<_>>())
                    })
                    .map(|values| JobResult::Score {
                        name: "uniqueness".into(),
                        note: format!(
                            "uniqueness of {} item(s): coloured by it (outliers are bright)",
                            values.len()
                        ),
                        values,
                    })
                });
            }
            ExploreCommand::Coverage { real, synthetic } => {
                self.explore_job(ctx, "measuring coverage", move || {
                    let store = engine::Store::open(&engine::paths::store_path())
                        .map_err(|e| e.to_string())?;
                    let net =
                        engine::explore::lite0::Lite0Embedder::installed(&candle_core::Device::Cpu)
                            .map_err(|e| e.to_string())?;
                    let cat = Catalog::new(&store);
                    let r =
                        engine::explore::coverage(&cat, &real, &synthetic, &net, &mut |_, _| {})
                            .map_err(|e| e.to_string())?;
                    Ok(JobResult::Coverage(CoverageReadout {
                        real_query: real,
                        synthetic_query: synthetic,
                        real_count: r.real,
                        synthetic_count: r.synthetic,
                        k: r.k,
                        precision: r.precision,
                        recall: r.recall,
                        kid: r.kid,
                        kid_se: r.kid_se,
                        uncovered: r.uncovered,
                    }))
                });
            }
        }
    }

    /// Adds or removes a manual tag, then shows it in the view.
    fn explore_tag(&mut self, ctx: &egui::Context, ids: &[u64], tag: &str, add: bool) {
        let Some(store) = &self.store else {
            self.error("Explore", "the store is not open");
            return;
        };
        let cat = Catalog::new(store);
        let r = if add {
            cat.add_tag(ids, tag)
        } else {
            cat.remove_tag(ids, tag)
        };
        match r {
            Ok(n) => {
                let mut view = self.explore.view().clone();
                let set: std::collections::HashSet<u64> = ids.iter().copied().collect();
                for (i, id) in view.ids.iter().enumerate() {
                    if !set.contains(id) {
                        continue;
                    }
                    if let Some(tags) = view.tags.get_mut(i) {
                        tags.retain(|t| t != tag);
                        if add {
                            tags.push(tag.to_string());
                        }
                    }
                }
                let _ = self.explore.set_view(view);
                let verb = if add { "tagged" } else { "untagged" };
                self.notify(ctx, format!("{verb} {n} item(s) \"{tag}\""));
            }
            Err(e) => self.error("Explore", e.to_string()),
        }
    }

    /// The recipe a generated item was made by (its run's graph).
    fn explore_recipe(&self, id: u64) -> Result<GraphDoc, String> {
        let store = self.store.as_ref().ok_or("the store is not open")?;
        let item = Catalog::new(store)
            .item(id)
            .map_err(|e| e.to_string())?
            .ok_or(format!("no item {id}"))?;
        let out = item
            .output_id
            .ok_or(format!("item {id} is an imported photo: it has no recipe"))?;
        let rec = store
            .outputs(None)
            .map_err(|e| e.to_string())?
            .into_iter()
            .find(|(o, _)| *o == out)
            .map(|(_, r)| r)
            .ok_or(format!("output {out} is not in the store"))?;
        let run = store
            .run(rec.run_id)
            .map_err(|e| e.to_string())?
            .ok_or(format!("run {} is not in the store", rec.run_id))?;
        GraphDoc::from_json(&run.graph_json).map_err(|e| e.to_string())
    }

    /// A stored output's thumbnail, else (demo data) a drawn one.
    fn explore_thumbnail(&self, id: u64) -> Option<ColorImage> {
        if self.explore.view().demo {
            let i = self.explore.view().ids.iter().position(|x| *x == id)?;
            return Some(demo_thumbnail(self.explore.colors().get(i).copied(), id));
        }
        let png = Catalog::new(self.store.as_ref()?).image_bytes(id).ok()??;
        let img = engine::codec::decode_image(&png, "output").ok()?;
        let s = (THUMB as f32 / img.width.max(img.height) as f32).min(1.0);
        let small = engine::ops::resize_image(
            &img,
            ((img.width as f32 * s) as u32).max(1),
            ((img.height as f32 * s) as u32).max(1),
            engine::ops::Filter::Bilinear,
        );
        Some(image_to_color(&small))
    }
}

/// A brushed-metal square with a streak in the item's colour (demo data only).
fn demo_thumbnail(color: Option<Color32>, id: u64) -> ColorImage {
    let n = 64usize;
    let c = color.unwrap_or(Color32::LIGHT_BLUE);
    let slope = ((id % 7) as f32 - 3.0) * 0.3;
    let offset = (id % 40) as f32 + 12.0;
    let pixels = (0..n * n)
        .map(|k| {
            let (x, y) = ((k % n) as f32, (k / n) as f32);
            let brush = ((y * 1.7 + (x * 0.05).sin() * 3.0).sin() * 10.0) as i32;
            let g = (150 + brush).clamp(0, 255) as u8;
            let d = (y - (offset + slope * (x - 32.0))).abs();
            if d < 1.6 && x > 8.0 && x < 56.0 {
                c
            } else {
                Color32::from_gray(g)
            }
        })
        .collect();
    ColorImage {
        size: [n, n],
        source_size: egui::Vec2::splat(n as f32),
        pixels,
    }
}
