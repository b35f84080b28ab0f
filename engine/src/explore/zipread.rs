//! Reading a `.zip` of images into memory under limits, never extracting anything to disk:
//! the entry count, the total uncompressed size and each entry's size and compression ratio
//! are checked against [`ZipLimits`] before (declared sizes) and while (actual bytes) reading.
//! An archive that breaks a limit (a zip bomb) or that cannot be read is refused as a whole;
//! an entry that is unsafe (`../`, absolute path, symlink) or unsupported is skipped with its
//! reason.

use std::io::Read;
use std::path::Path;

use crate::error::{EngineError, Result};

/// Limits on one archive.
#[derive(Clone, Copy, Debug)]
pub struct ZipLimits {
    /// Most entries an archive may list.
    pub max_entries: usize,
    /// Most bytes its entries may hold in all, uncompressed.
    pub max_total_bytes: u64,
    /// Most bytes one entry may hold uncompressed (bigger entries are skipped as too big).
    pub max_entry_bytes: u64,
    /// Highest uncompressed/compressed ratio of an entry over 1 MiB (images barely compress:
    /// a photo is about 1:1, a flat PNG inside a zip a few times).
    pub max_ratio: u64,
}

impl Default for ZipLimits {
    fn default() -> ZipLimits {
        ZipLimits {
            max_entries: 100_000,
            max_total_bytes: 16 << 30,
            max_entry_bytes: super::import::MAX_FILE_BYTES,
            max_ratio: 100,
        }
    }
}

/// One entry of an archive, as read.
pub(crate) enum ZipItem {
    /// A regular file's name (as stored) and bytes.
    File { name: String, bytes: Vec<u8> },
    /// An entry left out, and why.
    Skipped { name: String, reason: String },
}

/// Whether a stored entry name tries to leave the archive: absolute (`/x`, `\x`, `C:…`) or
/// with a `..` component.
fn unsafe_name(name: &str) -> Option<&'static str> {
    let bytes = name.as_bytes();
    if name.starts_with(['/', '\\']) || (bytes.len() > 1 && bytes[1] == b':') {
        return Some("an absolute path in the archive (never written anywhere; skipped)");
    }
    if name.split(['/', '\\']).any(|c| c == "..") {
        return Some("a '../' path in the archive (never written anywhere; skipped)");
    }
    None
}

fn bomb(path: &Path, message: String) -> EngineError {
    EngineError::Import {
        path: path.to_path_buf(),
        message: format!("refused (zip bomb?): {message}; nothing was imported"),
    }
}

/// Reads every entry of the archive at `path`, in archive order, handing each to `each`.
pub(crate) fn read_zip(
    path: &Path,
    limits: &ZipLimits,
    each: impl FnMut(ZipItem) -> Result<()>,
) -> Result<()> {
    let file = std::fs::File::open(path).map_err(|e| EngineError::io(path, e))?;
    read_zip_from(path, std::io::BufReader::new(file), limits, each)
}

/// [`read_zip`] of an archive read from `reader` (bytes already in memory, say); `path` names
/// it in errors.
pub(crate) fn read_zip_from<R: Read + std::io::Seek>(
    path: &Path,
    reader: R,
    limits: &ZipLimits,
    mut each: impl FnMut(ZipItem) -> Result<()>,
) -> Result<()> {
    let mut zip = zip::ZipArchive::new(reader).map_err(|e| EngineError::Import {
        path: path.to_path_buf(),
        message: format!("not a readable zip file: {e}; nothing was imported"),
    })?;
    if zip.len() > limits.max_entries {
        return Err(bomb(
            path,
            format!(
                "{} entries, more than the limit of {}",
                zip.len(),
                limits.max_entries
            ),
        ));
    }
    // Declared sizes first: a bomb is refused before anything is inflated.
    let mut declared = 0u64;
    for i in 0..zip.len() {
        let Ok(e) = zip.by_index_raw(i) else {
            continue;
        };
        if e.is_dir() || e.size() > limits.max_entry_bytes {
            continue;
        }
        declared = declared.saturating_add(e.size());
        check_ratio(
            path,
            &e.name().unwrap_or_default(),
            e.size(),
            e.compressed_size(),
            limits,
        )?;
    }
    if declared > limits.max_total_bytes {
        return Err(bomb(
            path,
            format!(
                "its entries hold {declared} bytes uncompressed, more than the limit of {}",
                limits.max_total_bytes
            ),
        ));
    }
    let mut total = 0u64;
    for i in 0..zip.len() {
        let (name, skip) = match zip.by_index_raw(i) {
            Ok(e) => {
                let name = String::from_utf8_lossy(e.name_raw()).into_owned();
                let skip = if e.is_dir() {
                    Some(None)
                } else if let Some(why) = unsafe_name(&name) {
                    Some(Some(why.to_string()))
                } else if e.is_symlink() {
                    Some(Some("a symlink (regular files only)".to_string()))
                } else if e.encrypted() {
                    Some(Some("encrypted".to_string()))
                } else if e.size() > limits.max_entry_bytes {
                    Some(Some(format!(
                        "too big: {} bytes, more than the limit of {}",
                        e.size(),
                        limits.max_entry_bytes
                    )))
                } else {
                    None
                };
                (name, skip)
            }
            Err(e) => (
                format!("entry #{i}"),
                Some(Some(format!("unreadable: {e}"))),
            ),
        };
        match skip {
            Some(None) => continue,
            Some(Some(reason)) => {
                each(ZipItem::Skipped { name, reason })?;
                continue;
            }
            None => {}
        }
        let mut entry = match zip.by_index(i) {
            Ok(e) => e,
            Err(e) => {
                each(ZipItem::Skipped {
                    name,
                    reason: format!("unreadable: {e}"),
                })?;
                continue;
            }
        };
        let compressed = entry.compressed_size();
        // Never trust the declared size: read at most the limit, plus one byte to notice more.
        let cap = limits.max_entry_bytes.min(entry.size());
        let mut bytes = Vec::with_capacity(cap.min(64 << 20) as usize);
        let read = (&mut entry)
            .take(limits.max_entry_bytes + 1)
            .read_to_end(&mut bytes);
        drop(entry);
        if let Err(e) = read {
            each(ZipItem::Skipped {
                name,
                reason: format!("unreadable (corrupt data): {e}"),
            })?;
            continue;
        }
        check_ratio(path, &name, bytes.len() as u64, compressed, limits)?;
        if bytes.len() as u64 > limits.max_entry_bytes {
            each(ZipItem::Skipped {
                name,
                reason: format!(
                    "too big: more than the limit of {} bytes",
                    limits.max_entry_bytes
                ),
            })?;
            continue;
        }
        total += bytes.len() as u64;
        if total > limits.max_total_bytes {
            return Err(bomb(
                path,
                format!(
                    "its entries hold more than the limit of {} bytes uncompressed",
                    limits.max_total_bytes
                ),
            ));
        }
        each(ZipItem::File { name, bytes })?;
    }
    Ok(())
}

fn check_ratio(path: &Path, name: &str, size: u64, compressed: u64, l: &ZipLimits) -> Result<()> {
    if size > 1 << 20 && size > compressed.max(1).saturating_mul(l.max_ratio) {
        return Err(bomb(
            path,
            format!(
                "entry \"{name}\" inflates {compressed} bytes to {size} (more than {}:1)",
                l.max_ratio
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::unsafe_name;

    #[test]
    fn escaping_names_are_caught() {
        assert!(unsafe_name("../x.png").is_some());
        assert!(unsafe_name("a/../../x.png").is_some());
        assert!(unsafe_name("/etc/x.png").is_some());
        assert!(unsafe_name("C:\\x.png").is_some());
        assert!(unsafe_name("a/b..c.png").is_none());
        assert!(unsafe_name("a/x.png").is_none());
    }
}
