//! The recipe library (docs/ARCHITECTURE.md, *Recipes*): recipes kept as graph files in recipe
//! folders, found by name, searched, added, dropped into other graphs as subgraph nodes, and
//! shared as `.dsbundle` files.
//!
//! - Folders ([`recipe_dirs`]): the data folder's `recipes/` (where [`add_recipe`] and bundle
//!   imports write, never replacing a file), the studio settings' folders ([`set_extra_dirs`])
//!   and `DEFECT_STUDIO_RECIPE_DIRS` (separated like `PATH`).
//! - [`Library`] ([`library`]): a scan of those folders: each `*.json` regular file is a recipe
//!   named by its path without `.json` (`metal/scratch`), described by its `meta` (title, tags,
//!   notes); files that cannot be used are listed, never fatal.
//! - Subgraphs ([`refs`]): [`insert_as_subgraph`] drops a recipe into a graph as one subgraph
//!   node; [`resolve_library_refs`] fills in library references (`SubgraphRef.library`) from the
//!   library, checked by definition hash.
//! - [`thumbnail`]: the last output of the newest run of a recipe, from the store.
//! - [`bundle`]: `.dsbundle` export and import (recipe, definitions, assets, model manifest).

use std::path::{Path, PathBuf};

use nodes::{Catalogue, GraphDoc};

use crate::error::{EngineError, Result};
use crate::store::Store;

pub mod bundle;
pub mod library;
pub mod manifest;
pub mod refs;

pub use bundle::{export_bundle, import_bundle, BundleExport, BundleImport};
pub use library::{Library, RecipeEntry};
pub use refs::{insert_as_subgraph, recipe_interface, resolve_from_library, resolve_library_refs};

/// The environment variable naming extra recipe folders (separated like `PATH`).
pub const RECIPE_DIRS_VAR: &str = "DEFECT_STUDIO_RECIPE_DIRS";

fn extra_dirs() -> &'static std::sync::RwLock<Vec<PathBuf>> {
    static EXTRA: std::sync::OnceLock<std::sync::RwLock<Vec<PathBuf>>> = std::sync::OnceLock::new();
    EXTRA.get_or_init(|| std::sync::RwLock::new(Vec::new()))
}

/// Sets this process's extra recipe folders (the studio passes its settings' folders); every
/// [`recipe_dirs`] after this lists them.
pub fn set_extra_dirs(dirs: Vec<PathBuf>) {
    if let Ok(mut d) = extra_dirs().write() {
        *d = dirs;
    }
}

/// The recipe folders, in the order names are looked up: the data folder's `recipes/`, the
/// folders set with [`set_extra_dirs`], then those of `DEFECT_STUDIO_RECIPE_DIRS`.
pub fn recipe_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![crate::paths::recipes_dir()];
    if let Ok(extra) = extra_dirs().read() {
        dirs.extend(extra.iter().cloned());
    }
    if let Some(extra) = std::env::var_os(RECIPE_DIRS_VAR) {
        dirs.extend(std::env::split_paths(&extra).filter(|p| !p.as_os_str().is_empty()));
    }
    let mut seen = Vec::new();
    dirs.retain(|d| {
        let new = !seen.contains(d);
        seen.push(d.clone());
        new
    });
    dirs
}

/// Adds `doc` to the data folder's `recipes/` as `name` (`metal/scratch` makes a subfolder),
/// with `tags` added to its `meta.tags`. The document is validated first; an existing recipe of
/// that name is an error naming it (nothing is replaced). Returns the new file.
pub fn add_recipe(doc: &GraphDoc, name: &str, tags: &[String]) -> Result<PathBuf> {
    add_recipe_in(&crate::paths::recipes_dir(), doc, name, tags)
}

/// [`add_recipe`] into the recipe folder `root`.
pub fn add_recipe_in(root: &Path, doc: &GraphDoc, name: &str, tags: &[String]) -> Result<PathBuf> {
    library::check_name(name)?;
    let mut doc = doc.clone();
    for t in tags {
        let t = t.trim();
        if !t.is_empty() && !doc.meta.tags.iter().any(|x| x == t) {
            doc.meta.tags.push(t.to_string());
        }
    }
    check_valid(&doc, name)?;
    let rel = PathBuf::from(format!("{name}.json"));
    let parent = rel.parent().unwrap_or(Path::new(""));
    let dir = crate::paths::real_dirs(root, parent).map_err(|e| EngineError::io(root, e))?;
    let path = dir.join(rel.file_name().unwrap_or_default());
    match crate::paths::write_new_file(&path, doc.to_json().as_bytes()) {
        Ok(()) => Ok(path),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(EngineError::Recipe(format!(
                "recipe \"{name}\" already exists: {} (choose another name; nothing was replaced)",
                path.display()
            )))
        }
        Err(e) => Err(EngineError::io(&path, e)),
    }
}

/// Refuses a document the builtin catalogue does not accept, naming the recipe and every
/// problem on one line.
pub(crate) fn check_valid(doc: &GraphDoc, name: &str) -> Result<()> {
    nodes::validate(doc, &Catalogue::builtin()).map_err(|e| {
        EngineError::Recipe(format!(
            "recipe \"{name}\" is not a valid graph: {}",
            e.to_string().trim().replace('\n', "; ")
        ))
    })
}

/// The definition a recipe becomes as a subgraph named `name`, and the recipe's own
/// definitions (see [`nodes::subgraph::definition_from_recipe`]).
pub(crate) fn definition_of(
    recipe: &GraphDoc,
    name: &str,
    catalogue: &Catalogue,
) -> std::result::Result<
    (
        nodes::subgraph::Definition,
        std::collections::BTreeMap<String, nodes::subgraph::Definition>,
    ),
    nodes::NodesError,
> {
    nodes::subgraph::definition_from_recipe(recipe, name, catalogue)
}

/// The PNG of the newest output of the newest run of `entry` that saved any: a run whose graph
/// file is the recipe's file, or whose graph name is the recipe's (its title, else its file
/// stem, as `run` names graphs). `None` when no run of it saved anything. Only reads the store.
pub fn thumbnail(store: &Store, entry: &RecipeEntry) -> Result<Option<Vec<u8>>> {
    match thumbnail_outputs(store, std::slice::from_ref(entry))?.first() {
        Some(Some(id)) => store.output_png(*id),
        _ => Ok(None),
    }
}

/// For each entry, the id of the output [`thumbnail`] shows (fetch it with
/// [`Store::output_png`]), in one pass over the store's runs and outputs: what a panel listing
/// many recipes calls.
pub fn thumbnail_outputs(store: &Store, entries: &[RecipeEntry]) -> Result<Vec<Option<u64>>> {
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let keys: Vec<(String, PathBuf)> = entries
        .iter()
        .map(|e| {
            let stem = e.name.rsplit('/').next().unwrap_or(&e.name);
            let graph_name = if e.title.trim().is_empty() {
                stem
            } else {
                e.title.as_str()
            };
            (graph_name.to_string(), canonical(&e.path))
        })
        .collect();
    // Run id → the entries it is a run of.
    let mut runs: std::collections::BTreeMap<u64, Vec<usize>> = Default::default();
    for (id, r) in store.runs()? {
        let path = r.graph_path.as_deref().map(|p| canonical(Path::new(p)));
        let of: Vec<usize> = keys
            .iter()
            .enumerate()
            .filter(|(_, (name, file))| r.graph_name == *name || path.as_ref() == Some(file))
            .map(|(i, _)| i)
            .collect();
        if !of.is_empty() {
            runs.insert(id, of);
        }
    }
    let mut best: Vec<Option<(u64, u64)>> = vec![None; entries.len()];
    if runs.is_empty() {
        return Ok(vec![None; entries.len()]);
    }
    for (id, o) in store.outputs(None)? {
        for &i in runs.get(&o.run_id).map(Vec::as_slice).unwrap_or_default() {
            // The newest run first, then its newest output.
            if best[i].is_none_or(|b| (o.run_id, id) > b) {
                best[i] = Some((o.run_id, id));
            }
        }
    }
    Ok(best.into_iter().map(|b| b.map(|(_, id)| id)).collect())
}
