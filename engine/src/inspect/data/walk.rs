//! Folder listing for the data readers: regular files and folders only (symlinks, FIFOs and
//! devices are skipped with a reason, as `explore::import` does), sorted by name.

use std::path::{Component, Path, PathBuf};

use crate::error::{EngineError, Result};

/// The image file extensions a labelled set may hold (lower case).
pub(super) const IMAGE_EXTENSIONS: [&str; 7] = ["png", "jpg", "jpeg", "bmp", "webp", "tif", "tiff"];

/// What one folder holds.
#[derive(Default)]
pub(super) struct Listing {
    /// Regular files, sorted.
    pub files: Vec<PathBuf>,
    /// Sub-folders (not symlinked), sorted.
    pub dirs: Vec<PathBuf>,
}

impl Listing {
    /// The image files (by extension).
    pub fn images(&self) -> impl Iterator<Item = &PathBuf> {
        self.files.iter().filter(|p| is_image(p))
    }

    pub fn has_file(&self, name: &str) -> bool {
        self.files
            .iter()
            .any(|p| p.file_name().is_some_and(|n| n == name))
    }

    pub fn dir(&self, name: &str) -> Option<&PathBuf> {
        self.dirs
            .iter()
            .find(|p| p.file_name().is_some_and(|n| n == name))
    }
}

/// Whether `path` has an image extension.
pub(super) fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Lists `dir`, appending `path: why` to `skipped` for what is not a regular file or folder.
pub(super) fn list(dir: &Path, skipped: &mut Vec<String>) -> Result<Listing> {
    let rd = std::fs::read_dir(dir).map_err(|e| EngineError::io(dir, e))?;
    let mut out = Listing::default();
    for entry in rd {
        let entry = entry.map_err(|e| EngineError::io(dir, e))?;
        let path = entry.path();
        let md = match std::fs::symlink_metadata(&path) {
            Ok(md) => md,
            Err(e) => {
                skipped.push(format!("{}: unreadable: {e}", path.display()));
                continue;
            }
        };
        let ft = md.file_type();
        if ft.is_symlink() {
            skipped.push(format!(
                "{}: a symlink (regular files only)",
                path.display()
            ));
        } else if ft.is_dir() {
            out.dirs.push(path);
        } else if ft.is_file() {
            out.files.push(path);
        } else {
            skipped.push(format!(
                "{}: not a regular file (a FIFO, socket or device)",
                path.display()
            ));
        }
    }
    out.files.sort();
    out.dirs.sort();
    Ok(out)
}

/// Whether `path` is a regular file (not a symlink).
pub(super) fn is_regular_file(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file())
}

/// Reads a regular file (a symlink or anything else is refused, naming it).
pub(super) fn read_file(path: &Path) -> Result<Vec<u8>> {
    let md = std::fs::symlink_metadata(path).map_err(|e| EngineError::io(path, e))?;
    if !md.file_type().is_file() {
        return Err(EngineError::Inspect(format!(
            "{}: not a regular file (symlinks, FIFOs and devices are not read)",
            path.display()
        )));
    }
    std::fs::read(path).map_err(|e| EngineError::io(path, e))
}

/// `root/rel` for a relative path read from a manifest or annotation file; refuses absolute
/// paths and `..` (a file may not point outside its data set), naming `from`.
pub(super) fn join_inside(root: &Path, rel: &str, from: &Path) -> Result<PathBuf> {
    let p = Path::new(rel);
    let ok = !rel.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)));
    if !ok {
        return Err(EngineError::Inspect(format!(
            "{}: the path {rel:?} leaves the data set's folder",
            from.display()
        )));
    }
    Ok(root.join(p))
}
