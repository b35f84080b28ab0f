//! Where the mask painter opens besides a PaintMask node, and where its mask goes.

use super::StudioApp;

impl StudioApp {
    /// "Paint a mask here" on a gallery output: the painter over that output; applying the
    /// mask opens an Inpaint recipe ([`super::output_recipes::inpaint_recipe`]) with the output
    /// as its image and the mask painted.
    pub fn paint_on_output(&mut self, _ctx: &egui::Context, id: u64) {
        self.toast = Some(format!("contract stub: paint on output {id}"));
    }
}
