//! Shared helpers: spawning the CLI in an isolated data folder, reading results.

#![allow(dead_code)]

mod lite0;
#[allow(unused_imports)]
pub use lite0::*;

use std::path::PathBuf;
use std::process::{Command, Output};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_defect-studio-e2e")
}

pub fn repo() -> PathBuf {
    manifest_dir().parent().unwrap().to_path_buf()
}

pub fn example(name: &str) -> PathBuf {
    repo().join("examples").join(name)
}

/// A temporary data folder (DEFECT_STUDIO_HOME) with an output folder.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }
    pub fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }
    pub fn store(&self) -> PathBuf {
        self.home().join("store.redb")
    }
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(bin());
        c.env("DEFECT_STUDIO_HOME", self.home());
        // As many Rust users have it: every error must stay one line all the same.
        c.env("RUST_BACKTRACE", "1");
        c
    }
    /// Runs the CLI with `args` and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }
    /// Writes a graph file into the temp folder.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
    pub fn history(&self) -> Vec<serde_json::Value> {
        let o = self.run(&["history", "--json"]);
        assert!(
            o.status.success(),
            "history failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice::<Vec<serde_json::Value>>(&o.stdout).unwrap()
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The lower-case hex sha256 of `bytes`, through the engine's one helper.
pub fn sha256(bytes: &[u8]) -> String {
    engine::hashing::sha256_hex(bytes)
}

/// Asserts that the CLI failed with one clear `error:` line that contains every needle.
pub fn assert_clean_failure(o: &Output, needles: &[&str]) {
    assert!(
        !o.status.success(),
        "expected failure, stdout: {}",
        stdout(o)
    );
    let err = stderr(o);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line on stderr, got: {err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for n in needles {
        assert!(lines[0].contains(n), "stderr does not mention {n:?}: {err}");
    }
}

/// The paths printed as `saved PATH`.
pub fn saved_paths(o: &Output) -> Vec<PathBuf> {
    stdout(o)
        .lines()
        .filter_map(|l| l.strip_prefix("saved "))
        .map(PathBuf::from)
        .collect()
}

/// This package's folder, read when the test runs: a test binary reused from another checkout
/// that shared the target folder would otherwise read that checkout's files.
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}

/// An image file's pixels as 8-bit RGB.
pub fn rgb8(path: &std::path::Path) -> Vec<u8> {
    image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgb8()
        .into_raw()
}

/// PSNR of two 8-bit images of the same size, in dB (infinite when equal).
pub fn psnr8(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len(), "image sizes differ");
    let mse = a
        .iter()
        .zip(b)
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0 * 255.0 / mse).log10()
    }
}
