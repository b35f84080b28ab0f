//! The small process-wide caches of loaded networks (checkpoints, ControlNets): keyed by the
//! path, the sizes and modification times of its files and the load options, least recently
//! used evicted first, so a second run with the same file does not touch the disk.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::Result;

/// What identifies one load: the canonical path, its files' (size, mtime) and the options.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LoadKey {
    path: PathBuf,
    stamp: Vec<(u64, u128)>,
    opts: String,
}

impl LoadKey {
    /// `path` (a file, or a folder whose `subdirs` — or, with none, whose own entries — are
    /// stamped too) loaded with `opts` (any text that changes with the options).
    pub(crate) fn new(path: &Path, subdirs: &[&str], opts: String) -> LoadKey {
        LoadKey {
            path: path.canonicalize().unwrap_or_else(|_| path.to_path_buf()),
            stamp: stamp(path, subdirs),
            opts,
        }
    }
}

/// (size, mtime) of `path` and, for a folder, of the files in `subdirs` (or in the folder
/// itself when `subdirs` is empty), sorted.
pub(crate) fn stamp(path: &Path, subdirs: &[&str]) -> Vec<(u64, u128)> {
    let one = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| (m.len(), crate::models::manager::mtime_ns(&m)))
            .unwrap_or((0, 0))
    };
    let mut out = vec![one(path)];
    if path.is_dir() {
        let dirs: Vec<PathBuf> = if subdirs.is_empty() {
            vec![path.to_path_buf()]
        } else {
            subdirs.iter().map(|d| path.join(d)).collect()
        };
        for dir in dirs {
            if let Ok(rd) = std::fs::read_dir(&dir) {
                let mut v: Vec<_> = rd.flatten().map(|e| one(&e.path())).collect();
                v.sort();
                out.extend(v);
            }
        }
    }
    out
}

/// A cache of at most `capacity` loaded values.
pub(crate) struct LoadCache<T> {
    capacity: usize,
    entries: Mutex<Vec<(LoadKey, Arc<T>)>>,
}

impl<T> LoadCache<T> {
    pub(crate) const fn new(capacity: usize) -> Self {
        LoadCache {
            capacity,
            entries: Mutex::new(Vec::new()),
        }
    }

    /// The cached value for `key`, or `load()`'s, then kept (evicting the least recently used).
    pub(crate) fn get_or_load(
        &self,
        key: LoadKey,
        load: impl FnOnce() -> Result<T>,
    ) -> Result<Arc<T>> {
        if let Ok(mut c) = self.entries.lock() {
            if let Some(i) = c.iter().position(|(k, _)| *k == key) {
                let hit = c.remove(i);
                let value = hit.1.clone();
                c.push(hit);
                return Ok(value);
            }
        }
        let value = Arc::new(load()?);
        if let Ok(mut c) = self.entries.lock() {
            c.push((key, value.clone()));
            while c.len() > self.capacity {
                c.remove(0);
            }
        }
        Ok(value)
    }
}
