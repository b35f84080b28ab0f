//! `models list` and `models fetch`: the model manager.

use std::io::IsTerminal;

use anyhow::Result;

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

/// `models fetch NAME`: one of `engine::models::browse::FETCHABLE` (the list the studio's
/// Models window offers too), installed by the same function.
pub(crate) fn models_fetch_cmd(name: &str) -> Result<i32> {
    use engine::models::browse;
    let models = engine::paths::models_dir();
    let path = browse::fetch(name, &models, &browse::cache_dir(), &mut |msg| {
        eprintln!("{msg}")
    })?;
    println!("installed {}", path.display());
    Ok(0)
}
