//! The import report: every foreign node (or, for A1111, every setting) listed exactly once,
//! as imported, approximated or not imported, plus notes about the graph as a whole.
//!
//! Importers record what happens to a node as they go ([`ImportReport::imported`],
//! [`ImportReport::approximated`], [`ImportReport::not_imported`]); the outcome follows from what
//! was recorded, so a node can never be listed twice or in contradicting ways:
//!
//! - a node that became (part of) one of our nodes is **imported**, or **approximated** when
//!   anything was said about it (a dropped option, a changed value);
//! - a node that did not is **not imported**, with every reason given.

use std::collections::HashMap;
use std::fmt::Write as _;

/// What became of one foreign node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// Carried over as it is.
    Imported,
    /// Carried over, with differences listed in [`ReportEntry::why`].
    Approximated,
    /// Dropped, for the reasons in [`ReportEntry::why`].
    NotImported,
}

impl Outcome {
    /// The heading the report prints for this outcome.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Imported => "imported",
            Outcome::Approximated => "approximated",
            Outcome::NotImported => "not imported",
        }
    }
}

/// One foreign node (or setting) and what became of it.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportEntry {
    /// The node id in the foreign file (for A1111, the infotext key, e.g. `Sampler`).
    pub id: String,
    /// Its type (ComfyUI `class_type`; for A1111, the value).
    pub kind: String,
    /// Our node it became part of, as `id (Kind)`, or how it was carried (e.g. `prompt of 3
    /// (Txt2Img)`); `None` when it was not imported.
    pub target: Option<String>,
    /// Every difference or reason recorded for it, in order, without repeats.
    pub why: Vec<String>,
}

impl ReportEntry {
    /// An entry for a node that was dropped because of `why`.
    pub fn not_imported(id: &str, kind: &str, why: impl Into<String>) -> ReportEntry {
        ReportEntry {
            id: id.to_string(),
            kind: kind.to_string(),
            target: None,
            why: vec![why.into()],
        }
    }

    /// An entry for a node carried over into `target` with a difference, `why`.
    pub fn approximated(
        id: &str,
        kind: &str,
        target: impl Into<String>,
        why: impl Into<String>,
    ) -> ReportEntry {
        ReportEntry {
            id: id.to_string(),
            kind: kind.to_string(),
            target: Some(target.into()),
            why: vec![why.into()],
        }
    }

    /// What became of the node.
    pub fn outcome(&self) -> Outcome {
        match (&self.target, self.why.is_empty()) {
            (Some(_), true) => Outcome::Imported,
            (Some(_), false) => Outcome::Approximated,
            (None, _) => Outcome::NotImported,
        }
    }
}

/// What an importer carried over, approximated or dropped. Each foreign node appears once in
/// [`ImportReport::entries`], in the order it was first recorded.
#[derive(Clone, Debug, Default)]
pub struct ImportReport {
    pub entries: Vec<ReportEntry>,
    /// Notes about the graph as a whole (not about one node).
    pub notes: Vec<String>,
    /// id → position in `entries` (rebuilt when entries were pushed directly).
    index: HashMap<String, usize>,
}

impl PartialEq for ImportReport {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries && self.notes == other.notes
    }
}

impl ImportReport {
    /// The position of node `id` in `entries` (a map, so large graphs stay linear).
    fn position(&mut self, id: &str) -> Option<usize> {
        if self.index.len() != self.entries.len() {
            self.index = self
                .entries
                .iter()
                .enumerate()
                .map(|(i, e)| (e.id.clone(), i))
                .collect();
        }
        self.index.get(id).copied()
    }

    fn entry(&mut self, id: &str, kind: &str) -> &mut ReportEntry {
        let at = match self.position(id) {
            Some(i) => i,
            None => {
                self.entries.push(ReportEntry {
                    id: id.to_string(),
                    kind: kind.to_string(),
                    target: None,
                    why: Vec::new(),
                });
                self.index.insert(id.to_string(), self.entries.len() - 1);
                self.entries.len() - 1
            }
        };
        let e = &mut self.entries[at];
        if e.kind.is_empty() {
            e.kind = kind.to_string();
        }
        e
    }

    fn add_why(e: &mut ReportEntry, why: String) {
        if !why.is_empty() && !e.why.contains(&why) {
            e.why.push(why);
        }
    }

    /// Node `id` of type `kind` became (part of) our `target` (e.g. `3 (Txt2Img)`). A node
    /// recorded several times keeps its first target.
    pub fn imported(&mut self, id: &str, kind: &str, target: impl Into<String>) {
        let e = self.entry(id, kind);
        if e.target.is_none() {
            e.target = Some(target.into());
        }
    }

    /// Says something about node `id`: once it has a target it is approximated; without one
    /// it is not imported, with `why` among the reasons.
    pub fn approximated(&mut self, id: &str, kind: &str, why: impl Into<String>) {
        let e = self.entry(id, kind);
        Self::add_why(e, why.into());
    }

    /// Node `id` was dropped because of `why` (unless it is also imported elsewhere, in which
    /// case `why` is listed as a difference).
    pub fn not_imported(&mut self, id: &str, kind: &str, why: impl Into<String>) {
        self.approximated(id, kind, why);
    }

    /// Whether node `id` has been recorded.
    pub fn has(&self, id: &str) -> bool {
        self.get(id).is_some()
    }

    /// The entry for node `id`.
    pub fn get(&self, id: &str) -> Option<&ReportEntry> {
        if self.index.len() == self.entries.len() {
            return self.index.get(id).and_then(|&i| self.entries.get(i));
        }
        self.entries.iter().find(|e| e.id == id)
    }

    /// Takes back a node's target (our node was removed again): it becomes not imported
    /// because of `why`, which replaces the differences listed so far.
    pub fn drop_target(&mut self, id: &str, why: impl Into<String>) {
        if let Some(e) = self.position(id).and_then(|i| self.entries.get_mut(i)) {
            e.target = None;
            e.why.clear();
            Self::add_why(e, why.into());
        }
    }

    /// A note about the graph as a whole.
    pub fn note(&mut self, s: impl Into<String>) {
        let s = s.into();
        if !self.notes.contains(&s) {
            self.notes.push(s);
        }
    }

    /// The entries with this outcome.
    pub fn with(&self, outcome: Outcome) -> impl Iterator<Item = &ReportEntry> {
        self.entries.iter().filter(move |e| e.outcome() == outcome)
    }

    /// `(id, kind)` of every node that was not imported.
    pub fn unsupported(&self) -> Vec<(String, String)> {
        self.with(Outcome::NotImported)
            .map(|e| (e.id.clone(), e.kind.clone()))
            .collect()
    }

    /// How many nodes were imported or approximated.
    pub fn usable(&self) -> usize {
        self.entries.iter().filter(|e| e.target.is_some()).count()
    }

    /// True when every node was imported as it is and there are no notes.
    pub fn is_clean(&self) -> bool {
        self.notes.is_empty()
            && self
                .entries
                .iter()
                .all(|e| e.outcome() == Outcome::Imported)
    }

    /// The report as text, the same for every source: one section per outcome (each node on
    /// one line, once), then the notes. Used for the CLI and for a recipe's `meta.notes`.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for outcome in [
            Outcome::Imported,
            Outcome::Approximated,
            Outcome::NotImported,
        ] {
            let entries: Vec<&ReportEntry> = self.with(outcome).collect();
            if entries.is_empty() {
                continue;
            }
            let _ = writeln!(out, "{} ({}):", outcome.label(), entries.len());
            for e in entries {
                let _ = write!(out, "  {} {}", e.id, e.kind);
                if let Some(t) = &e.target {
                    let _ = write!(out, " → {t}");
                }
                if !e.why.is_empty() {
                    let _ = write!(out, ": {}", e.why.join("; "));
                }
                out.push('\n');
            }
        }
        if !self.notes.is_empty() {
            out.push_str("notes:\n");
            for n in &self.notes {
                let _ = writeln!(out, "  {n}");
            }
        }
        out.trim_end().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_node_is_listed_once_with_one_outcome() {
        let mut r = ImportReport::default();
        r.not_imported(
            "3",
            "KSampler",
            "sampler dpmpp_sde/karras has no equivalent",
        );
        r.imported("3", "KSampler", "3 (Txt2Img)");
        r.imported("4", "CheckpointLoaderSimple", "4 (LoadCheckpoint)");
        r.not_imported("10", "ControlNetLoader", "no equivalent node");
        r.not_imported("10", "ControlNetLoader", "no equivalent node");
        assert_eq!(r.entries.len(), 3);
        assert_eq!(
            r.get("3").map(ReportEntry::outcome),
            Some(Outcome::Approximated)
        );
        assert_eq!(
            r.get("4").map(ReportEntry::outcome),
            Some(Outcome::Imported)
        );
        assert_eq!(
            r.get("10").map(ReportEntry::outcome),
            Some(Outcome::NotImported)
        );
        assert_eq!(r.get("10").map(|e| e.why.len()), Some(1));
        assert_eq!(
            r.unsupported(),
            vec![("10".into(), "ControlNetLoader".into())]
        );
        assert_eq!(r.usable(), 2);
        assert!(!r.is_clean());
        let text = r.text();
        assert_eq!(text.matches("\n  3 KSampler").count(), 1, "{text}");
        assert!(text.starts_with("imported (1):\n  4 CheckpointLoaderSimple → 4 (LoadCheckpoint)"));
        assert!(text.contains("not imported (1):\n  10 ControlNetLoader: no equivalent node"));
        r.drop_target("4", "its model output feeds nothing we import");
        assert_eq!(
            r.get("4").map(ReportEntry::outcome),
            Some(Outcome::NotImported)
        );
    }

    #[test]
    fn a_clean_report_has_only_imported_nodes() {
        let mut r = ImportReport::default();
        r.imported("1", "SaveImage", "1 (SaveImage)");
        assert!(r.is_clean());
        r.note("LoRA files are looked up as <name>.safetensors");
        assert!(!r.is_clean());
    }
}
