//! The missing-models dialog: an opened graph names models (its `models` references, each
//! with a sha256) that the model folders do not hold. For each, the user points at a file
//! ("Locate…", or a path typed in the field); the file is hashed off the UI thread and accepted
//! when its sha256 is the reference's. A file with another hash is refused with a warning that
//! says so, unless the user confirms with "Use anyway". Accepting points the graph's nodes (and
//! the reference) at the file.

use std::path::{Path, PathBuf};

use egui::Color32;
use nodes::ModelRef;

use super::ModelsCommand;
use crate::app::AppCommand;

/// Where one missing reference stands.
#[derive(Clone, Debug, PartialEq)]
pub enum RowState {
    /// Not located yet.
    Missing,
    /// The located file is being hashed: the fraction done.
    Hashing(f32),
    /// The located file's sha256 differs from the reference's: "Use anyway" accepts it.
    Mismatch { path: PathBuf, sha256: String },
    /// Accepted: the graph now names this file. `matched`: its sha256 is the reference's.
    Accepted { path: PathBuf, matched: bool },
    /// The file could not be read.
    Error(String),
}

/// One missing reference.
#[derive(Clone, Debug, PartialEq)]
pub struct MissingRow {
    pub model_ref: ModelRef,
    /// A file of the same name but other content in the model folders (never used silently).
    pub same_name: Option<PathBuf>,
    /// The path typed or picked.
    pub path: String,
    pub state: RowState,
    /// Matched by hash and waiting to be applied to the graph (next frame).
    matched: Option<(PathBuf, String)>,
}

impl MissingRow {
    pub fn new(model_ref: ModelRef, same_name: Option<PathBuf>) -> MissingRow {
        MissingRow {
            model_ref,
            same_name,
            path: String::new(),
            state: RowState::Missing,
            matched: None,
        }
    }
}

/// The dialog's rows.
#[derive(Clone, Debug, PartialEq)]
pub struct MissingDialog {
    pub rows: Vec<MissingRow>,
}

/// Whether a node's file parameter `value` names the reference `ref_name`: the same path, or
/// the same file stem (either separator, case-insensitive), as the model manager reads names.
pub fn same_model_name(value: &str, ref_name: &str) -> bool {
    let norm = |s: &str| s.trim().replace('\\', "/");
    let (v, r) = (norm(value), norm(ref_name));
    if v.is_empty() {
        return false;
    }
    let stem = |s: &str| {
        Path::new(s)
            .file_stem()
            .map(|x| x.to_string_lossy().to_lowercase())
    };
    v == r || (stem(&v).is_some() && stem(&v) == stem(&r))
}

impl MissingDialog {
    pub fn new(rows: Vec<MissingRow>) -> MissingDialog {
        MissingDialog { rows }
    }

    /// Starts checking row `row`'s typed path: the path to hash, if there is one.
    pub fn start_check(&mut self, row: usize) -> Option<PathBuf> {
        let r = self.rows.get_mut(row)?;
        let p = r.path.trim();
        if p.is_empty() {
            r.state = RowState::Error("type or pick a file first".into());
            return None;
        }
        r.state = RowState::Hashing(0.0);
        Some(PathBuf::from(p))
    }

    /// Row `row`'s file is hashed up to `fraction` (ignored once the row has an answer).
    pub fn hash_progress(&mut self, row: usize, fraction: f32) {
        if let Some(r) = self.rows.get_mut(row) {
            if let RowState::Hashing(f) = &mut r.state {
                *f = fraction.clamp(0.0, 1.0);
            }
        }
    }

    /// A located file's hash arrived: accepted when it matches, else a mismatch to confirm.
    pub fn hashed(&mut self, row: usize, path: PathBuf, result: Result<String, String>) {
        let Some(r) = self.rows.get_mut(row) else {
            return;
        };
        r.state = match result {
            Err(e) => RowState::Error(e),
            Ok(sha)
                if r.model_ref.sha256.is_empty()
                    || sha.eq_ignore_ascii_case(&r.model_ref.sha256) =>
            {
                r.matched = Some((path.clone(), sha));
                RowState::Accepted {
                    path,
                    matched: true,
                }
            }
            Ok(sha) => RowState::Mismatch { path, sha256: sha },
        };
    }

    /// The rows whose file matched since the last call, to apply to the graph: (reference,
    /// file, sha256).
    pub fn take_matched(&mut self) -> Vec<(ModelRef, PathBuf, String)> {
        self.rows
            .iter_mut()
            .filter_map(|r| {
                r.matched
                    .take()
                    .map(|(p, sha)| (r.model_ref.clone(), p, sha))
            })
            .collect()
    }

    /// The user confirmed a mismatched file for row `row`: (reference, file, its sha256).
    pub fn use_anyway(&mut self, row: usize) -> Option<(ModelRef, PathBuf, String)> {
        let r = self.rows.get_mut(row)?;
        let RowState::Mismatch { path, sha256 } = r.state.clone() else {
            return None;
        };
        r.state = RowState::Accepted {
            path: path.clone(),
            matched: false,
        };
        Some((r.model_ref.clone(), path, sha256))
    }

    /// Every row is accepted.
    pub fn all_done(&self) -> bool {
        self.rows
            .iter()
            .all(|r| matches!(r.state, RowState::Accepted { .. }))
    }
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(10)]
}

/// The dialog, while there is one.
pub fn missing_ui(dialog: &mut Option<MissingDialog>, ctx: &egui::Context) -> Vec<AppCommand> {
    let mut cmds = Vec::new();
    let Some(d) = dialog else {
        return cmds;
    };
    let cmd = |c| AppCommand::Models(c);
    egui::Window::new("Missing models")
        .collapsible(false)
        .default_width(640.0)
        .anchor(egui::Align2::CENTER_CENTER, [0.0, 0.0])
        .show(ctx, |ui| {
            ui.label(
                "This graph names models the model folders do not hold. Point at each file: \
                 it is used if its sha256 is the one the graph was made with.",
            );
            for (i, r) in d.rows.iter_mut().enumerate() {
                ui.separator();
                let m = &r.model_ref;
                ui.strong(&m.name);
                ui.label(
                    egui::RichText::new(format!(
                        "{} · sha256 {}",
                        if m.arch.is_empty() { "?" } else { &m.arch },
                        if m.sha256.is_empty() { "-" } else { &m.sha256 }
                    ))
                    .monospace()
                    .weak(),
                );
                if let Some(p) = &r.same_name {
                    ui.label(format!(
                        "{} has this name but other content: it is not used.",
                        p.display()
                    ));
                }
                let editable = !matches!(r.state, RowState::Accepted { .. } | RowState::Hashing(_));
                ui.add_enabled_ui(editable, |ui| {
                    ui.horizontal(|ui| {
                        let label = ui.label("File");
                        ui.add(
                            egui::TextEdit::singleline(&mut r.path)
                                .hint_text("path to the .safetensors file")
                                .desired_width(360.0),
                        )
                        .labelled_by(label.id);
                        if ui
                            .button("Locate…")
                            .on_hover_text("Pick the file in a file dialog")
                            .clicked()
                        {
                            // No portal: no dialog, and the path field stays for typing.
                            if let Some(p) = rfd::FileDialog::new()
                                .add_filter("safetensors", &["safetensors"])
                                .pick_file()
                            {
                                r.path = p.display().to_string();
                                cmds.push(cmd(ModelsCommand::CheckMissing(i)));
                            }
                        }
                        if ui
                            .button("Check")
                            .on_hover_text("Hash the file and use it if the hash matches")
                            .clicked()
                        {
                            cmds.push(cmd(ModelsCommand::CheckMissing(i)));
                        }
                    });
                });
                match &r.state {
                    RowState::Missing => {}
                    RowState::Hashing(f) => {
                        ui.add(
                            egui::ProgressBar::new(*f)
                                .desired_width(260.0)
                                .text(format!("hashing… {:.0}%", f * 100.0)),
                        );
                    }
                    RowState::Mismatch { path, sha256 } => {
                        ui.colored_label(
                            Color32::from_rgb(255, 180, 60),
                            format!(
                                "⚠ {}'s sha256 is {}, not {}: it is not the file this graph was \
                                 made with, and its images may differ.",
                                path.display(),
                                short(sha256),
                                short(&m.sha256)
                            ),
                        );
                        if ui
                            .button("Use anyway")
                            .on_hover_text("Point the graph at this file although its hash differs")
                            .clicked()
                        {
                            cmds.push(cmd(ModelsCommand::UseAnyway(i)));
                        }
                    }
                    RowState::Accepted { path, matched } => {
                        let how = if *matched {
                            "sha256 matches"
                        } else {
                            "used although its sha256 differs"
                        };
                        ui.colored_label(
                            Color32::LIGHT_GREEN,
                            format!("✔ {} ({how})", path.display()),
                        );
                    }
                    RowState::Error(e) => {
                        ui.colored_label(Color32::LIGHT_RED, e);
                    }
                }
            }
            ui.separator();
            if ui.button("Close").clicked() {
                cmds.push(cmd(ModelsCommand::CloseMissing));
            }
        });
    cmds
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dialog(sha: &str) -> MissingDialog {
        MissingDialog::new(vec![MissingRow::new(
            ModelRef {
                name: "loras\\gone.safetensors".into(),
                sha256: sha.into(),
                arch: "lora-sd1".into(),
            },
            None,
        )])
    }

    #[test]
    fn names_match_by_path_or_stem() {
        assert!(same_model_name(
            "gone.safetensors",
            "loras\\gone.safetensors"
        ));
        assert!(same_model_name("loras/gone", "loras\\Gone.safetensors"));
        assert!(!same_model_name("other.safetensors", "gone.safetensors"));
        assert!(!same_model_name("", "gone.safetensors"));
    }

    #[test]
    fn a_matching_hash_is_accepted_and_a_mismatch_needs_confirmation() {
        let mut d = dialog("AA11");
        assert_eq!(d.start_check(0), None, "no path typed");
        d.rows[0].path = "/x/a.safetensors".into();
        assert_eq!(d.start_check(0), Some(PathBuf::from("/x/a.safetensors")));
        d.hashed(0, "/x/a.safetensors".into(), Ok("bb22".into()));
        assert!(matches!(d.rows[0].state, RowState::Mismatch { .. }));
        assert!(d.take_matched().is_empty());
        assert!(!d.all_done());
        let (_, p, sha) = d.use_anyway(0).unwrap();
        assert_eq!(
            (p.to_str(), sha.as_str()),
            (Some("/x/a.safetensors"), "bb22")
        );
        assert!(d.all_done());

        let mut d = dialog("AA11");
        d.hashed(0, "/x/b.safetensors".into(), Ok("aa11".into()));
        assert_eq!(d.take_matched().len(), 1);
        assert!(d.take_matched().is_empty(), "applied once");
        assert!(d.use_anyway(0).is_none(), "nothing to confirm");
        assert!(d.all_done());
    }

    #[test]
    fn hashing_progress_shows_until_the_answer_arrives() {
        let mut d = dialog("aa11");
        d.rows[0].path = "/x/a.safetensors".into();
        d.start_check(0);
        assert_eq!(d.rows[0].state, RowState::Hashing(0.0));
        d.hash_progress(0, 0.4);
        assert_eq!(d.rows[0].state, RowState::Hashing(0.4));
        d.hash_progress(7, 0.9); // no such row: ignored
        d.hashed(0, "/x/a.safetensors".into(), Ok("aa11".into()));
        d.hash_progress(0, 1.0); // a late message does not undo the answer
        assert!(matches!(
            d.rows[0].state,
            RowState::Accepted { matched: true, .. }
        ));
    }
}
