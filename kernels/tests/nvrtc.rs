//! The CUDA sources compile to PTX with NVRTC, on a machine without a GPU: runs
//! `scripts/nvrtc_check.py` (NVRTC from the pip wheel `nvidia-cuda-nvrtc-cu12`) with the Python
//! in `DEFECT_STUDIO_NVRTC_PYTHON` (`.ci/run` sets it up) or `~/.cache/defect-studio-nvrtc`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("DEFECT_STUDIO_NVRTC_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let home = std::env::var_os("HOME")?;
    let p = Path::new(&home).join(".cache/defect-studio-nvrtc/bin/python");
    p.is_file().then_some(p)
}

#[test]
fn nvrtc_compiles_every_kernel() {
    let Some(py) = python() else {
        eprintln!(
            "skipped: no NVRTC Python (run .ci/run, or set DEFECT_STUDIO_NVRTC_PYTHON to a Python \
             with nvidia-cuda-nvrtc-cu12 and nvidia-cuda-runtime-cu12)"
        );
        return;
    };
    let root = manifest_dir().join("..");
    let out = Command::new(&py)
        .arg(root.join("scripts/nvrtc_check.py"))
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", py.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "NVRTC check failed:\n{text}");
    // The PTX holds the kernels the engine launches.
    for kernel in [
        "flash_attn_fwd_f16_d40",
        "flash_attn_fwd_f16_d64",
        "flash_attn_fwd_bf16_d512",
        "group_norm_f16",
        "geglu_bf16",
    ] {
        assert!(text.contains(kernel), "no PTX entry {kernel}:\n{text}");
    }
    assert!(text.contains("0 failed"), "{text}");
}

/// This package's folder, read when the test runs: a test binary reused from another checkout
/// that shared the target folder would otherwise read that checkout's files.
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}
