//! Where Defect Studio keeps its files, and how it touches files it did not make.
//!
//! - The data folder (`DEFECT_STUDIO_HOME`, else `dirs::data_dir()/defect-studio`) holds the
//!   store, the default output folder and models.
//! - Writing inside an output folder ([`real_dirs`], [`Scratch`], [`publish_new`],
//!   [`claim_new_dir`], [`write_new_file`]): never through a symbolic link the run did not make,
//!   never replacing a file (docs/ARCHITECTURE.md, "Hostile input").
//! - Reading input files ([`read_regular_file`]): regular files only, with a size cap.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

/// The environment variable that overrides the data folder (tests use it to isolate themselves).
pub const HOME_VAR: &str = "DEFECT_STUDIO_HOME";

/// The data folder.
pub fn home() -> PathBuf {
    match std::env::var_os(HOME_VAR) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => dirs::data_dir()
            .unwrap_or_else(|| PathBuf::from("."))
            .join("defect-studio"),
    }
}

/// The user store.
pub fn store_path() -> PathBuf {
    home().join("store.redb")
}

/// The default output folder.
pub fn default_out_dir() -> PathBuf {
    home().join("outputs")
}

/// The default model folder.
pub fn models_dir() -> PathBuf {
    home().join("models")
}

/// The recipe library's own folder (`recipes add`, bundle imports).
pub fn recipes_dir() -> PathBuf {
    home().join("recipes")
}

/// External assets (large inputs referenced by sha256), one file per hash.
pub fn assets_dir() -> PathBuf {
    home().join("assets")
}

// ---- Writing inside an output folder ----
//
// A recipe from someone else decides file names under the output folder, and the folder may
// hold links planted there. Every write below refuses to follow a symbolic link that the run
// did not make, and never replaces an existing file: files are written under a fresh name in a
// per-run temporary folder (created new, `O_EXCL | O_NOFOLLOW`) and then hard-linked to their
// final name, which fails instead of replacing when the name is taken (by another process too).

/// The folder, inside an output folder, that holds each run's temporary files.
pub const SCRATCH_DIR: &str = ".defect-studio-tmp";

/// The largest input file (LoadImage, LoadMask, folder items) read into memory, in bytes.
pub const MAX_INPUT_FILE_BYTES: u64 = 512 * 1024 * 1024;

fn refuse(path: &Path, what: &str) -> io::Error {
    io::Error::other(format!(
        "{} {what}; refusing to write through it",
        path.display()
    ))
}

/// Opens `path` as a new file for writing: fails if anything exists at that name, including a
/// symbolic link (which is never followed).
pub fn create_new_file(path: &Path) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NOFOLLOW).mode(0o644);
    }
    opts.open(path)
}

/// Writes `bytes` to a new file at `path` (see [`create_new_file`]).
pub fn write_new_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    create_new_file(path)?.write_all(bytes)
}

/// Makes `root/rel` exist as real folders: every component of `rel` must be a folder (not a
/// symbolic link, not a file) or missing, in which case it is created. `rel` must be relative
/// and hold only plain names. Returns `root/rel`. `root` itself (the user's choice) is created
/// with its parents when missing.
pub fn real_dirs(root: &Path, rel: &Path) -> io::Result<PathBuf> {
    std::fs::create_dir_all(root)?;
    let mut dir = root.to_path_buf();
    for c in rel.components() {
        let Component::Normal(name) = c else {
            return Err(io::Error::other(format!(
                "{} leaves the output folder {}",
                rel.display(),
                root.display()
            )));
        };
        dir.push(name);
        match std::fs::symlink_metadata(&dir) {
            Ok(md) if md.file_type().is_dir() => {}
            Ok(md) if md.file_type().is_symlink() => {
                return Err(refuse(&dir, "is a symbolic link"))
            }
            Ok(_) => return Err(refuse(&dir, "is not a folder")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => match std::fs::create_dir(&dir) {
                Ok(()) => {}
                // Another process made it meanwhile: check what it is.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if !std::fs::symlink_metadata(&dir)?.file_type().is_dir() {
                        return Err(refuse(&dir, "is not a folder"));
                    }
                }
                Err(e) => return Err(e),
            },
            Err(e) => return Err(e),
        }
    }
    Ok(dir)
}

/// Creates a new, empty folder `root/rel` (parents as by [`real_dirs`]), or, when that name is
/// taken, `rel-1`, `rel-2`, …: the first name no one (no other process either) holds.
pub fn claim_new_dir(root: &Path, rel: &Path) -> io::Result<PathBuf> {
    let parent = real_dirs(root, rel.parent().unwrap_or(Path::new("")))?;
    let name = rel
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| io::Error::other(format!("{} has no folder name", rel.display())))?;
    for n in 0u64.. {
        let dir = if n == 0 {
            parent.join(&name)
        } else {
            parent.join(format!("{name}-{n}"))
        };
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("no free folder name"))
}

/// A run's temporary folder, `OUT/.defect-studio-tmp/<pid>-<tag>/`, made new for this run
/// (so nothing planted there is used) and removed with everything in it when dropped.
pub struct Scratch {
    dir: PathBuf,
    next: u64,
}

impl Scratch {
    /// Creates the temporary folder of a run under the output folder `out_root`.
    pub fn new(out_root: &Path, tag: &str) -> io::Result<Scratch> {
        let pid = std::process::id();
        let (mut n, mut vanished) = (0u64, 0);
        loop {
            let base = real_dirs(out_root, Path::new(SCRATCH_DIR))?;
            let dir = base.join(format!("{pid}-{tag}-{n}"));
            match std::fs::create_dir(&dir) {
                Ok(()) => return Ok(Scratch { dir, next: 0 }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => n += 1,
                // Another run ending removed the (then empty) parent meanwhile: make it again.
                Err(e) if e.kind() == io::ErrorKind::NotFound && vanished < 100 => vanished += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes `bytes` to a new temporary file and returns its path.
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<PathBuf> {
        let path = self.dir.join(format!("{}.part", self.next));
        self.next += 1;
        write_new_file(&path, bytes)?;
        Ok(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        // Removed only when no other run is using it.
        if let Some(base) = self.dir.parent() {
            let _ = std::fs::remove_dir(base);
        }
    }
}

/// Gives temporary files their final names, all or none, never replacing anything: each
/// `(temporary, final)` pair is hard-linked (which fails when the final name is taken, even by
/// a dangling symbolic link) and the temporary name removed. Where the file system has no hard
/// links, the file is renamed without replacing (Linux `renameat2(RENAME_NOREPLACE)`). Returns
/// `Ok(false)`, having undone what it did, when some final name is taken.
pub fn publish_new(files: &[(&Path, &Path)]) -> io::Result<bool> {
    // (temporary, final, moved rather than linked)
    let mut made: Vec<(&Path, &Path, bool)> = Vec::new();
    for (tmp, dest) in files {
        let done = match std::fs::hard_link(tmp, dest) {
            Ok(()) => Ok(false),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
            Err(e) => rename_no_replace(tmp, dest).map(|()| true).map_err(|r| {
                if r.kind() == io::ErrorKind::AlreadyExists {
                    r
                } else {
                    e
                }
            }),
        };
        match done {
            Ok(moved) => made.push((tmp, dest, moved)),
            Err(e) => {
                for (t, d, moved) in &made {
                    let _ = if *moved {
                        std::fs::rename(d, t)
                    } else {
                        std::fs::remove_file(d)
                    };
                }
                return if e.kind() == io::ErrorKind::AlreadyExists {
                    Ok(false)
                } else {
                    Err(io::Error::new(
                        e.kind(),
                        format!("cannot create {}: {e}", dest.display()),
                    ))
                };
            }
        }
    }
    for (tmp, _, moved) in made {
        if !moved {
            let _ = std::fs::remove_file(tmp);
        }
    }
    Ok(true)
}

/// Renames `from` to `to` unless `to` exists (then fails with `AlreadyExists`).
#[cfg(target_os = "linux")]
fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|_| io::Error::other(format!("{} holds a NUL byte", p.display())))
    };
    let (f, t) = (c(from)?, c(to)?);
    // SAFETY: two valid NUL-terminated paths, resolved against the working directory.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn rename_no_replace(_from: &Path, _to: &Path) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

// ---- Reading input files ----

/// Reads an input image or mask file: [`read_regular_file`] with [`MAX_INPUT_FILE_BYTES`].
pub fn read_input_file(path: &Path) -> io::Result<Vec<u8>> {
    read_regular_file(path, MAX_INPUT_FILE_BYTES)
}

/// Reads an input file whole, refusing what is not a regular file (a folder, a FIFO, a device
/// such as `/dev/zero`) and files over `cap` bytes. A FIFO is opened non-blocking, so it is
/// refused instead of waited on.
pub fn read_regular_file(path: &Path, cap: u64) -> io::Result<Vec<u8>> {
    let mut opts = OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NONBLOCK);
    }
    let file = opts.open(path)?;
    let md = file.metadata()?;
    if !md.file_type().is_file() {
        return Err(io::Error::other(
            "not a regular file (a folder, pipe or device cannot be read as an image)",
        ));
    }
    let too_big = || {
        io::Error::other(format!(
            "larger than the limit of {} MiB for an input file",
            cap / (1024 * 1024)
        ))
    };
    if md.len() > cap {
        return Err(too_big());
    }
    let mut bytes = Vec::with_capacity(md.len() as usize);
    // The file may grow while read: never past the cap.
    file.take(cap.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(too_big());
    }
    Ok(bytes)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn real_dirs_refuse_links_and_files_and_create_the_rest() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("out");
        let made = real_dirs(&root, Path::new("a/b")).unwrap();
        assert!(made.is_dir() && made == root.join("a/b"));
        std::os::unix::fs::symlink(t.path(), root.join("link")).unwrap();
        let err = real_dirs(&root, Path::new("link/x"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("link") && err.contains("symbolic link"),
            "{err}"
        );
        assert!(!t.path().join("x").exists());
        std::fs::write(root.join("file"), b"").unwrap();
        let err = real_dirs(&root, Path::new("file/x"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a folder"), "{err}");
        assert!(real_dirs(&root, Path::new("../x")).is_err());
    }

    #[test]
    fn new_files_never_follow_or_replace() {
        let t = tempfile::tempdir().unwrap();
        let victim = t.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        assert!(write_new_file(&link, b"evil").is_err());
        assert!(write_new_file(&victim, b"evil").is_err());
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    }

    #[test]
    fn publishing_claims_both_names_or_neither() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("out");
        let mut scratch = Scratch::new(&out, "1").unwrap();
        let (img, mask) = (
            scratch.write(b"img").unwrap(),
            scratch.write(b"mask").unwrap(),
        );
        // The mask name is taken: nothing is published, the image name stays free.
        std::fs::write(out.join("a_mask.png"), b"theirs").unwrap();
        let pair = |stem: &str| {
            (
                out.join(format!("{stem}.png")),
                out.join(format!("{stem}_mask.png")),
            )
        };
        let (a, am) = pair("a");
        assert!(!publish_new(&[(&img, &a), (&mask, &am)]).unwrap());
        assert!(!a.exists());
        assert_eq!(std::fs::read(&am).unwrap(), b"theirs");
        let (b, bm) = pair("b");
        assert!(publish_new(&[(&img, &b), (&mask, &bm)]).unwrap());
        assert_eq!(std::fs::read(&b).unwrap(), b"img");
        assert_eq!(std::fs::read(&bm).unwrap(), b"mask");
        assert!(!img.exists() && !mask.exists());
        drop(scratch);
        assert!(!out.join(SCRATCH_DIR).exists());
        // Folders are claimed the same way.
        assert_eq!(claim_new_dir(&out, Path::new("d")).unwrap(), out.join("d"));
        assert_eq!(
            claim_new_dir(&out, Path::new("d")).unwrap(),
            out.join("d-1")
        );
    }

    #[test]
    fn only_regular_files_under_the_cap_are_read() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("f.png");
        std::fs::write(&f, vec![1u8; 100]).unwrap();
        assert_eq!(read_regular_file(&f, 100).unwrap().len(), 100);
        let err = read_regular_file(&f, 99).unwrap_err().to_string();
        assert!(err.contains("limit"), "{err}");
        for p in [t.path(), Path::new("/dev/zero")] {
            let err = read_regular_file(p, 1 << 20).unwrap_err().to_string();
            assert!(err.contains("not a regular file"), "{err}");
        }
        let fifo = t.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let err = read_regular_file(&fifo, 1 << 20).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
    }
}
