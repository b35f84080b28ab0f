//! The version history window: every save of the open graph is kept in the store
//! (`Store::save_graph`); this lists them, shows a readable diff of the selected version against
//! the current document and against the version before it, and restores one (an undoable edit
//! that leaves the document unsaved).

use engine::store::{format_utc, GraphVersion, Store};
use nodes::GraphDoc;

use super::{AppCommand, StudioApp};

/// What the version history window asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum VersionsCommand {
    /// Open the window on the current graph's versions (re-reading them from the store).
    Open,
    /// Show this version number's diffs.
    Select(u64),
    /// Replace the editor's document with this version.
    Restore(u64),
}

/// The window's state.
#[derive(Default)]
pub struct VersionsWindow {
    pub open: bool,
    /// The graph's name in the store (its title, else its file's stem).
    pub name: String,
    /// Its saved versions, newest first.
    pub versions: Vec<GraphVersion>,
    pub selected: Option<u64>,
    pub error: Option<String>,
    /// The diffs shown for `selected`: (current document they were made against, from the
    /// version to the current document, from the previous version to this one).
    diffs: Option<Diffs>,
}

struct Diffs {
    version: u64,
    current: GraphDoc,
    to_current: Result<Vec<String>, String>,
    from_previous: Option<Result<Vec<String>, String>>,
}

/// The readable changes from `a` to `b`, one line each (`nodes::diff`, as `defect-studio diff`
/// prints them).
pub fn diff_lines(a: &GraphDoc, b: &GraphDoc) -> Vec<String> {
    nodes::diff::diff(a, b)
        .lines()
        .iter()
        .map(|l| l.to_string())
        .collect()
}

fn parse(v: &GraphVersion) -> Result<GraphDoc, String> {
    GraphDoc::from_json(&v.json).map_err(|e| format!("version {}: {e}", v.version))
}

impl VersionsWindow {
    /// Re-reads the versions of graph `name` from the store; selects the newest.
    pub fn load(&mut self, store: Option<&Store>, name: &str) {
        self.name = name.to_string();
        self.diffs = None;
        let Some(store) = store else {
            self.versions.clear();
            self.error = Some("no store is open".into());
            return;
        };
        match store.graph_versions() {
            Ok(all) => {
                let mut mine: Vec<GraphVersion> =
                    all.into_iter().filter(|g| g.name == name).collect();
                mine.sort_by_key(|v| std::cmp::Reverse(v.version));
                self.versions = mine;
                self.error = None;
            }
            Err(e) => {
                self.versions.clear();
                self.error = Some(e.to_string());
            }
        }
        self.selected = self.versions.first().map(|v| v.version);
    }

    fn version(&self, n: u64) -> Option<&GraphVersion> {
        self.versions.iter().find(|v| v.version == n)
    }

    /// Recomputes the selected version's diffs when the selection or the document changed.
    fn update_diffs(&mut self, current: &GraphDoc) {
        let Some(sel) = self.selected else {
            self.diffs = None;
            return;
        };
        if self
            .diffs
            .as_ref()
            .is_some_and(|d| d.version == sel && &d.current == current)
        {
            return;
        }
        let Some(v) = self.version(sel) else {
            self.diffs = None;
            return;
        };
        let this = parse(v);
        let to_current = this
            .as_ref()
            .map(|d| diff_lines(d, current))
            .map_err(Clone::clone);
        let from_previous = self
            .versions
            .iter()
            .filter(|p| p.version < sel)
            .max_by_key(|p| p.version)
            .map(|p| {
                let prev = parse(p)?;
                let this = this.clone()?;
                Ok(diff_lines(&prev, &this))
            });
        self.diffs = Some(Diffs {
            version: sel,
            current: current.clone(),
            to_current,
            from_previous,
        });
    }

    /// The window, while open; `current` is the editor's document.
    pub fn versions_ui(&mut self, ctx: &egui::Context, current: &GraphDoc) -> Vec<AppCommand> {
        let mut cmds = Vec::new();
        if !self.open {
            return cmds;
        }
        self.update_diffs(current);
        let mut open = true;
        egui::Window::new("Version history")
            .open(&mut open)
            .default_size([640.0, 420.0])
            .show(ctx, |ui| {
                ui.label(format!("Saved versions of \"{}\"", self.name));
                if let Some(e) = &self.error {
                    ui.colored_label(egui::Color32::LIGHT_RED, e);
                }
                if self.versions.is_empty() {
                    ui.label("No saved versions yet: every save keeps one.");
                    return;
                }
                ui.horizontal_top(|ui| {
                    ui.vertical(|ui| {
                        ui.set_width(200.0);
                        egui::ScrollArea::vertical()
                            .id_salt("versions-list")
                            .show(ui, |ui| {
                                for v in &self.versions {
                                    let text =
                                        format!("v{} · {}", v.version, format_utc(v.saved_ms));
                                    if ui
                                        .selectable_label(self.selected == Some(v.version), text)
                                        .clicked()
                                    {
                                        cmds.push(AppCommand::Versions(VersionsCommand::Select(
                                            v.version,
                                        )));
                                    }
                                }
                            });
                    });
                    ui.separator();
                    ui.vertical(|ui| self.diff_ui(ui, &mut cmds));
                });
            });
        if !open {
            self.open = false;
        }
        cmds
    }

    fn diff_ui(&self, ui: &mut egui::Ui, cmds: &mut Vec<AppCommand>) {
        let Some(d) = &self.diffs else {
            ui.label("Select a version.");
            return;
        };
        let lines = |ui: &mut egui::Ui, r: &Result<Vec<String>, String>| match r {
            Ok(l) if l.is_empty() => {
                ui.label(egui::RichText::new("no differences").weak());
            }
            Ok(l) => {
                for line in l {
                    let color = match line.chars().next() {
                        Some('+') => egui::Color32::LIGHT_GREEN,
                        Some('-') => egui::Color32::LIGHT_RED,
                        _ => ui.visuals().text_color(),
                    };
                    ui.label(egui::RichText::new(line).monospace().color(color));
                }
            }
            Err(e) => {
                ui.colored_label(egui::Color32::LIGHT_RED, e);
            }
        };
        egui::ScrollArea::vertical()
            .id_salt("versions-diff")
            .show(ui, |ui| {
                ui.strong(format!("From v{} to the current document", d.version));
                lines(ui, &d.to_current);
                ui.add_space(8.0);
                match &d.from_previous {
                    Some(r) => {
                        ui.strong(format!("From the previous version to v{}", d.version));
                        lines(ui, r);
                    }
                    None => {
                        ui.label(egui::RichText::new("the first saved version").weak());
                    }
                }
            });
        ui.add_space(8.0);
        if ui
            .add_enabled(
                d.to_current.is_ok(),
                egui::Button::new("Restore this version"),
            )
            .on_hover_text("Replaces the document (Undo brings the current one back)")
            .clicked()
        {
            cmds.push(AppCommand::Versions(VersionsCommand::Restore(d.version)));
        }
    }
}

impl StudioApp {
    /// The store name the open document's versions are saved under.
    fn versions_name(&self) -> String {
        let doc = self.doc.to_doc(&self.catalogue);
        match &self.doc.path {
            Some(p) => crate::graph_file::graph_name(&doc, p),
            None => doc.title_or("untitled").to_string(),
        }
    }

    /// Carries out a [`VersionsCommand`].
    pub(super) fn apply_versions(&mut self, ctx: &egui::Context, cmd: VersionsCommand) {
        match cmd {
            VersionsCommand::Open => {
                let name = self.versions_name();
                self.versions.load(self.store.as_ref(), &name);
                self.versions.open = true;
            }
            VersionsCommand::Select(n) => self.versions.selected = Some(n),
            VersionsCommand::Restore(n) => {
                let Some(v) = self.versions.version(n) else {
                    return;
                };
                match parse(v) {
                    Ok(doc) => {
                        // `commit_edits` records the replacement as one undoable edit, and the
                        // document differs from the saved file until it is saved again.
                        self.doc.replace(&doc, &self.catalogue);
                        self.frame_all = true;
                        let msg = format!("restored version {n} of {}", self.versions.name);
                        self.notify(ctx, msg);
                    }
                    Err(e) => self.error("Cannot restore the version", e),
                }
            }
        }
    }
}
