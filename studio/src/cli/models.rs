//! `models list` and `models fetch`: the model manager.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};

pub(crate) fn models_list_cmd(json: bool) -> Result<i32> {
    let manager = engine::models::manager::ModelManager::default_dirs();
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template("hashing {msg} {bar:30} {bytes}/{total_bytes}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let list = manager.scan(&mut |path, done, total| {
        if let Some(b) = &bar {
            b.set_length(total);
            b.set_position(done);
            b.set_message(
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            );
        }
    })?;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(0);
    }
    if list.is_empty() {
        let dirs: Vec<String> = manager
            .dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        println!("no models in {}", dirs.join(", "));
    }
    for m in &list {
        println!(
            "{:<40} {:<14} {}  {:>9.1} MiB  {}",
            m.name,
            m.arch,
            m.autov2,
            m.size as f64 / 1048576.0,
            m.path.display()
        );
        for (k, v) in m
            .metadata
            .iter()
            .filter(|(k, _)| k.starts_with("ss_"))
            .take(6)
        {
            println!("      {k}: {}", v.chars().take(80).collect::<String>());
        }
    }
    Ok(0)
}

/// An installer: (models folder, cache folder, progress) → the installed file.
type Installer = fn(&Path, &Path, &mut dyn FnMut(&str)) -> Result<PathBuf>;

fn install_isnet(models: &Path, cache: &Path, progress: &mut dyn FnMut(&str)) -> Result<PathBuf> {
    engine::models::isnet_weights::install(models, cache, progress).map_err(|e| anyhow!(e))
}

fn install_lite0(models: &Path, cache: &Path, progress: &mut dyn FnMut(&str)) -> Result<PathBuf> {
    Ok(engine::models::efficientnet::install(
        models, cache, progress,
    )?)
}

/// The models `models fetch` knows: the one list (names in errors come from it too).
const FETCHABLE: &[(&str, Installer)] = &[
    ("isnet", install_isnet),
    ("efficientnet-lite0", install_lite0),
];

pub(crate) fn models_fetch_cmd(name: &str) -> Result<i32> {
    let Some((_, install)) = FETCHABLE.iter().find(|(n, _)| *n == name) else {
        let known: Vec<&str> = FETCHABLE.iter().map(|(n, _)| *n).collect();
        bail!(
            "models fetch {name}: unknown model (known: {})",
            known.join(", ")
        );
    };
    let models = engine::paths::models_dir();
    let cache = dirs_cache().join("defect-studio");
    let path = install(&models, &cache, &mut |msg| eprintln!("{msg}"))?;
    println!("installed {}", path.display());
    Ok(0)
}

/// The user's cache folder (`~/.cache` on Linux), where downloads are kept.
fn dirs_cache() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
}
