//! The app's side of the Explore window: showing it, and carrying out its commands. Until the
//! catalogue is connected the window shows [`ExploreView::demo`] and the catalogue actions
//! report what they would do.

use egui::{Color32, ColorImage, TextureOptions};

use super::{ExploreCommand, ExploreView};
use crate::app::painter::image_to_color;
use crate::app::{AppCommand, StudioApp};

/// Thumbnail size (pixels, longer side).
const THUMB: u32 = 128;
/// Thumbnails decoded per frame (the rest wait for the next frames).
const THUMBS_PER_FRAME: usize = 8;

impl StudioApp {
    /// Shows the Explore window (with demo data while there is nothing to show).
    pub(crate) fn open_explore(&mut self) {
        self.explore.open = true;
        if self.explore.view().is_empty() {
            // The demo view is always consistent.
            let _ = self.explore.set_view(ExploreView::demo(600, 1));
            self.explore.set_color_by(Some("label"));
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
            other => {
                let msg = format!("Explore: {other:?} (the catalogue is not connected yet)");
                self.notify(ctx, msg);
            }
        }
    }

    /// A stored output's thumbnail, else (demo data) a drawn one.
    fn explore_thumbnail(&self, id: u64) -> Option<ColorImage> {
        if self.explore.view().demo {
            let i = self.explore.view().ids.iter().position(|x| *x == id)?;
            return Some(demo_thumbnail(self.explore.colors().get(i).copied(), id));
        }
        let png = self.store.as_ref()?.output_png(id).ok()??;
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
