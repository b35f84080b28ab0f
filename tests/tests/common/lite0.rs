//! The real EfficientNet-Lite0 weights for tests, installed once through the engine's own
//! `models fetch efficientnet-lite0` path and cached under `~/.cache/defect-studio`. Included by
//! path from the test suites that need them (`tests/tests/*`, `studio/tests/*`), so the rule
//! lives in one place: `DEFECT_STUDIO_SKIP_LITE0=1` skips those tests on a machine without pip
//! or the PyPI registry, and with `CI` set they never skip.

use std::path::PathBuf;
use std::sync::OnceLock;

/// `~/.cache/defect-studio`.
pub fn lite0_cache() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(".cache/defect-studio")
}

/// Whether the Lite0 tests are skipped here (never on CI).
pub fn skip_lite0() -> bool {
    if std::env::var_os("DEFECT_STUDIO_SKIP_LITE0").is_some() {
        assert!(
            std::env::var_os("CI").is_none(),
            "DEFECT_STUDIO_SKIP_LITE0 is set on CI: the Lite0 tests must run there"
        );
        eprintln!("DEFECT_STUDIO_SKIP_LITE0 is set: skipping the EfficientNet-Lite0 tests");
        return true;
    }
    false
}

/// The installed weights file (fetched and converted on first use), or `None` when skipped.
pub fn lite0_weights() -> Option<&'static PathBuf> {
    static W: OnceLock<Option<PathBuf>> = OnceLock::new();
    W.get_or_init(|| {
        if skip_lite0() {
            return None;
        }
        let cache = lite0_cache();
        let path = engine::models::efficientnet::install(&cache.join("models"), &cache, &mut |m| {
            eprintln!("{m}")
        })
        .unwrap_or_else(|e| {
            panic!("cannot fetch the Lite0 weights (DEFECT_STUDIO_SKIP_LITE0=1 skips): {e}")
        });
        Some(path)
    })
    .as_ref()
}

/// The folder holding the installed weights (a model folder for `DEFECT_STUDIO_MODEL_DIRS`).
pub fn lite0_models_dir() -> Option<PathBuf> {
    lite0_weights().and_then(|p| p.parent().map(PathBuf::from))
}
