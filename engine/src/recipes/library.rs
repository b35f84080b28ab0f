//! The recipe library: every `*.json` graph document in the recipe folders, listed with its
//! title, tags, notes and node kinds, searchable, loadable by name. A scan never fails: files it
//! cannot use (unreadable, not a graph, a symbolic link, a FIFO, too big, a name already taken
//! by an earlier folder) are listed in [`Library::problems`] with the reason.

use std::path::{Component, Path, PathBuf};

use nodes::{Catalogue, GraphDoc};

use crate::error::{EngineError, Result};

/// The largest recipe file the library reads, in bytes (a recipe with inline assets may be a
/// few MiB; nothing legitimate comes near this).
pub const MAX_RECIPE_BYTES: u64 = 64 * 1024 * 1024;

/// Most files one scan looks at, over all folders (a folder mistaken for the recipe folder,
/// such as `/`, must not hang the studio).
pub const MAX_SCAN_FILES: usize = 100_000;

/// One recipe of the library.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RecipeEntry {
    /// Its path relative to its recipe folder without `.json`, `/`-separated (`metal/scratch`).
    pub name: String,
    pub path: PathBuf,
    /// `meta.title` (may be empty).
    pub title: String,
    pub tags: Vec<String>,
    pub notes: String,
    /// Top-level nodes.
    pub nodes: usize,
    /// The hash of the definition the recipe becomes when dropped into a graph as a subgraph
    /// node ([`nodes::subgraph::definition_from_recipe`] under the recipe's name): what a library
    /// reference ([`nodes::subgraph::SubgraphRef`] with `library: true`) records. Empty when the
    /// recipe cannot be a subgraph (the reason is in [`Library::problems`]).
    pub definition_hash: String,
    /// The node kinds it uses (top level and inside its definitions), sorted, each once.
    pub kinds: Vec<String>,
}

/// The recipes found in a set of folders.
#[derive(Clone, Debug, Default)]
pub struct Library {
    dirs: Vec<PathBuf>,
    entries: Vec<RecipeEntry>,
    problems: Vec<(PathBuf, String)>,
}

impl Library {
    /// Scans `dirs` (recursively; regular `*.json` files only). The first folder holding a
    /// name wins; later files of that name are listed as problems. Entries are sorted by name.
    pub fn scan(dirs: &[PathBuf]) -> Library {
        let catalogue = Catalogue::builtin();
        let mut lib = Library {
            dirs: dirs.to_vec(),
            ..Library::default()
        };
        let mut budget = MAX_SCAN_FILES;
        for dir in dirs {
            let mut files = Vec::new();
            walk(dir, dir, &mut files, &mut lib.problems, &mut budget);
            files.sort();
            for (name, path) in files {
                if let Some(first) = lib.entries.iter().find(|e| e.name == name) {
                    let msg = format!(
                        "recipe \"{name}\" is also {}, which comes first; this one is hidden",
                        first.path.display()
                    );
                    lib.problems.push((path, msg));
                    continue;
                }
                match read_doc(&path) {
                    Ok(doc) => {
                        let (entry, problem) = entry_of(&name, &path, &doc, &catalogue);
                        if let Some(p) = problem {
                            lib.problems.push((path.clone(), p));
                        }
                        lib.entries.push(entry);
                    }
                    Err(e) => lib.problems.push((path, e)),
                }
            }
        }
        if budget == 0 {
            lib.problems.push((
                dirs.first().cloned().unwrap_or_default(),
                format!("stopped after {MAX_SCAN_FILES} files; is a recipe folder too wide?"),
            ));
        }
        lib.entries.sort_by(|a, b| a.name.cmp(&b.name));
        lib
    }

    /// The folders this library was scanned from.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    pub fn entries(&self) -> &[RecipeEntry] {
        &self.entries
    }

    /// Files that are not usable recipes, with the reason (never fatal to the scan).
    pub fn problems(&self) -> &[(PathBuf, String)] {
        &self.problems
    }

    /// The entry named `name`.
    pub fn get(&self, name: &str) -> Option<&RecipeEntry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// The entries matching every word of `text` (case-insensitive substrings of the name,
    /// title, tags, notes or node kinds) and carrying every tag of `tags` (exact).
    pub fn search(&self, text: &str, tags: &[String]) -> Vec<&RecipeEntry> {
        let words: Vec<String> = text.split_whitespace().map(str::to_lowercase).collect();
        self.entries
            .iter()
            .filter(|e| tags.iter().all(|t| e.tags.contains(t)))
            .filter(|e| {
                if words.is_empty() {
                    return true;
                }
                let hay = [
                    e.name.as_str(),
                    e.title.as_str(),
                    e.notes.as_str(),
                    &e.tags.join(" "),
                    &e.kinds.join(" "),
                ]
                .join("\n")
                .to_lowercase();
                words.iter().all(|w| hay.contains(w.as_str()))
            })
            .collect()
    }

    /// Reads recipe `name` from its file (as it is now).
    pub fn load(&self, name: &str) -> Result<GraphDoc> {
        let entry = self.get(name).ok_or_else(|| {
            let dirs: Vec<String> = self.dirs.iter().map(|d| d.display().to_string()).collect();
            EngineError::Recipe(format!(
                "no recipe \"{name}\" in the library (searched {})",
                if dirs.is_empty() {
                    "no folders".to_string()
                } else {
                    dirs.join(", ")
                }
            ))
        })?;
        read_doc(&entry.path).map_err(|e| {
            EngineError::Recipe(format!("recipe \"{name}\" ({}): {e}", entry.path.display()))
        })
    }
}

/// Reads and parses one recipe file: a regular file under [`MAX_RECIPE_BYTES`] holding our
/// graph format. The error is the reason, without the path.
pub fn read_doc(path: &Path) -> std::result::Result<GraphDoc, String> {
    let bytes =
        crate::paths::read_regular_file(path, MAX_RECIPE_BYTES).map_err(|e| e.to_string())?;
    let text = std::str::from_utf8(&bytes).map_err(|_| "not UTF-8 text".to_string())?;
    GraphDoc::from_json(text.trim_start_matches('\u{feff}')).map_err(|e| e.to_string())
}

/// The library's entry for a parsed recipe, and a problem to list when it cannot become a
/// subgraph.
fn entry_of(
    name: &str,
    path: &Path,
    doc: &GraphDoc,
    catalogue: &Catalogue,
) -> (RecipeEntry, Option<String>) {
    let mut kinds: Vec<String> = doc
        .nodes
        .values()
        .chain(doc.definitions.values().flat_map(|d| d.nodes.values()))
        .map(|n| n.kind.clone())
        .collect();
    kinds.sort();
    kinds.dedup();
    let (definition_hash, problem) = match super::definition_of(doc, name, catalogue) {
        Ok((def, _)) => (def.hash(), None),
        Err(e) => (
            String::new(),
            Some(format!("cannot be used as a subgraph: {e}")),
        ),
    };
    let entry = RecipeEntry {
        name: name.to_string(),
        path: path.to_path_buf(),
        title: doc.meta.title.clone(),
        tags: doc.meta.tags.clone(),
        notes: doc.meta.notes.clone(),
        nodes: doc.nodes.len(),
        definition_hash,
        kinds,
    };
    (entry, problem)
}

/// Collects `(name, path)` of the `*.json` regular files below `dir`; symbolic links, FIFOs and
/// other special files are listed as problems, never followed or opened.
fn walk(
    root: &Path,
    dir: &Path,
    out: &mut Vec<(String, PathBuf)>,
    problems: &mut Vec<(PathBuf, String)>,
    budget: &mut usize,
) {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        // A configured folder that does not exist (yet) is simply empty.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && dir == root => return,
        Err(e) => {
            problems.push((dir.to_path_buf(), format!("cannot list the folder: {e}")));
            return;
        }
    };
    let mut children: Vec<_> = rd.flatten().collect();
    children.sort_by_key(|e| e.file_name());
    for e in children {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        let path = e.path();
        let hidden = e.file_name().to_string_lossy().starts_with('.');
        let Ok(ft) = e.file_type() else {
            problems.push((path, "cannot read its file type".into()));
            continue;
        };
        let json = path
            .extension()
            .is_some_and(|x| x.eq_ignore_ascii_case("json"));
        if ft.is_dir() {
            if !hidden {
                walk(root, &path, out, problems, budget);
            }
        } else if ft.is_symlink() {
            if json || path.is_dir() {
                problems.push((
                    path,
                    "a symbolic link (skipped: recipes must be regular files)".into(),
                ));
            }
        } else if !ft.is_file() {
            if json {
                problems.push((
                    path,
                    "not a regular file (a FIFO, socket or device; skipped)".into(),
                ));
            }
        } else if json && !hidden {
            match recipe_name(root, &path) {
                Some(name) => out.push((name, path)),
                None => problems.push((path, "its path is not valid UTF-8 (skipped)".into())),
            }
        }
    }
}

/// A recipe's name: its path below its folder, without `.json`, `/`-separated.
fn recipe_name(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let mut parts = Vec::new();
    for c in rel.components() {
        let Component::Normal(s) = c else {
            return None;
        };
        parts.push(s.to_str()?.to_string());
    }
    let last = parts.pop()?;
    let stem = &last[..last.len().checked_sub(".json".len())?];
    parts.push(stem.to_string());
    Some(parts.join("/"))
}

/// Checks a name for a new recipe: `/`-separated parts, none empty, starting with `.` or with
/// spaces around it, and no control characters or characters file systems refuse
/// (`\ : * ? " < > |`).
pub fn check_name(name: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(EngineError::Recipe(format!(
            "recipe name \"{}\" {why}",
            nodes::clip(name)
        )))
    };
    if name.trim().is_empty() {
        return bad("is empty");
    }
    if name.len() > 200 {
        return bad("is longer than 200 bytes");
    }
    for part in name.split('/') {
        if part.is_empty() || part.starts_with('.') || part != part.trim() {
            return bad("has an empty part, a part starting with '.', or spaces around a '/'");
        }
        if part
            .chars()
            .any(|c| c.is_control() || "\\:*?\"<>|".contains(c))
        {
            return bad("may not hold control characters or any of \\ : * ? \" < > |");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{"format": "defect-studio/graph", "version": 2,
        "nodes": {"bg": {"kind": "SolidColor", "version": 1},
                  "save": {"kind": "SaveImage", "version": 1}},
        "links": [{"from": ["bg", "image"], "to": ["save", "image"]}],
        "meta": {"title": "Plain grey", "notes": "A flat plate for tests", "tags": ["metal", "flat"]}}"#;

    #[test]
    fn names_come_from_relative_paths() {
        let root = Path::new("/r");
        assert_eq!(
            recipe_name(root, Path::new("/r/a.json")).as_deref(),
            Some("a")
        );
        assert_eq!(
            recipe_name(root, Path::new("/r/metal/b.c.json")).as_deref(),
            Some("metal/b.c")
        );
        assert!(check_name("metal/scratch block (v2)").is_ok());
        for bad in ["", "../x", "a//b", ".hidden", "a/b\\c", "x:y"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scan_lists_recipes_and_problems_and_searches() {
        let t = tempfile::tempdir().unwrap();
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        std::fs::create_dir_all(a.join("metal")).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(a.join("metal/grey.json"), DOC).unwrap();
        std::fs::write(a.join("broken.json"), "{ not json").unwrap();
        std::fs::write(a.join("notes.txt"), "ignored").unwrap();
        std::fs::write(b.join("metal").with_extension("json"), DOC).unwrap();
        // The same name in a later folder is hidden and listed.
        std::fs::create_dir_all(b.join("metal")).unwrap();
        std::fs::write(b.join("metal/grey.json"), DOC).unwrap();
        let lib = Library::scan(&[a.clone(), b.clone(), t.path().join("missing")]);
        let names: Vec<&str> = lib.entries().iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["metal", "metal/grey"]);
        let grey = lib.get("metal/grey").unwrap();
        assert_eq!(grey.path, a.join("metal/grey.json"));
        assert_eq!(grey.title, "Plain grey");
        assert_eq!(grey.nodes, 2);
        assert_eq!(grey.kinds, ["SaveImage", "SolidColor"]);
        let problem = |p: &Path| {
            lib.problems()
                .iter()
                .find(|(q, _)| q == p)
                .map(|(_, m)| m.clone())
                .unwrap_or_default()
        };
        assert!(
            problem(&a.join("broken.json")).contains("line 1"),
            "{:?}",
            lib.problems()
        );
        assert!(problem(&b.join("metal/grey.json")).contains("comes first"));
        // Search: words over name, title, tags, notes and kinds; tags exact.
        let hits = |text: &str, tags: &[&str]| -> Vec<String> {
            let tags: Vec<String> = tags.iter().map(|s| s.to_string()).collect();
            lib.search(text, &tags)
                .iter()
                .map(|e| e.name.clone())
                .collect()
        };
        assert_eq!(hits("GREY plate", &[]), ["metal", "metal/grey"]);
        assert_eq!(hits("solidcolor", &["flat"]), ["metal", "metal/grey"]);
        assert!(hits("grey scratch", &[]).is_empty());
        assert!(hits("", &["Flat"]).is_empty());
        assert_eq!(lib.load("metal/grey").unwrap().meta.title, "Plain grey");
        let err = lib.load("nope").unwrap_err().to_string();
        assert!(err.contains("no recipe \"nope\""), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn links_and_fifos_are_listed_not_read() {
        let t = tempfile::tempdir().unwrap();
        let real = t.path().join("real.json");
        std::fs::write(&real, DOC).unwrap();
        let dir = t.path().join("lib");
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(&real, dir.join("link.json")).unwrap();
        std::os::unix::fs::symlink(t.path(), dir.join("loop")).unwrap();
        let fifo = dir.join("pipe.json");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let lib = Library::scan(std::slice::from_ref(&dir));
        assert!(lib.entries().is_empty());
        let listed: Vec<&Path> = lib.problems().iter().map(|(p, _)| p.as_path()).collect();
        assert_eq!(
            listed,
            [dir.join("link.json"), dir.join("loop"), fifo.clone()]
        );
    }
}
