//! `dataset import`, `dataset list`, `query` and `tag add|remove`: the explorer's catalogue
//! from the command line (docs/ARCHITECTURE.md §13), through [`engine::explore`], the same
//! code the studio's Explore panel uses.

use std::path::PathBuf;

use anyhow::{anyhow, Result};
use engine::explore::{import_dataset, Catalog, ImportOptions, ItemRecord};
use engine::Store;

fn open(store: Option<PathBuf>) -> Result<Store> {
    Ok(Store::open(
        &store.unwrap_or_else(engine::paths::store_path),
    )?)
}

/// `dataset import PATH... --name NAME [--meta FILE]`: prints the report (every skipped file
/// and why, metadata rows naming files not imported); progress on stderr.
pub(crate) fn import_cmd(
    paths: &[PathBuf],
    name: &str,
    meta: Option<PathBuf>,
    store: Option<PathBuf>,
    json: bool,
) -> Result<i32> {
    let store = open(store)?;
    let mut opts = ImportOptions::new(name);
    opts.meta = meta;
    let report = import_dataset(&store, paths, &opts, &mut |n, file| {
        eprintln!("imported {n}: {file}");
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(0);
    }
    for s in &report.skipped {
        println!("skipped {}: {}", s.name, s.reason);
    }
    for (at, file) in &report.unmatched_meta {
        println!("metadata {at} names \"{file}\": no such file was imported");
    }
    let shared = report.added.len() - report.new_images;
    println!(
        "{} {} file(s) to dataset \"{}\"{} ({} new image(s), {} already in the store), {} skipped",
        if report.existed { "added" } else { "imported" },
        report.added.len(),
        report.dataset,
        if report.existed {
            " (it existed: the files were added to it)"
        } else {
            ""
        },
        report.new_images,
        shared,
        report.skipped.len()
    );
    Ok(0)
}

/// `dataset list`: every dataset with its item count.
pub(crate) fn list_cmd(store: Option<PathBuf>, json: bool) -> Result<i32> {
    let store = open(store)?;
    let sets = Catalog::new(&store).datasets()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&sets)?);
        return Ok(0);
    }
    if sets.is_empty() {
        println!("no datasets ({})", store.path().display());
    }
    for d in sets {
        println!(
            "{:<24} {:>6} item(s)  created {}",
            d.name,
            d.items,
            engine::store::format_utc(d.created_ms)
        );
    }
    Ok(0)
}

fn item_json(id: u64, it: &ItemRecord) -> serde_json::Value {
    serde_json::json!({
        "id": id,
        "source": it.source.name(),
        "name": it.name,
        "dataset": it.dataset,
        "output_id": it.output_id,
        "sha256": it.sha256,
        "width": it.width,
        "height": it.height,
        "tags": it.auto_tags,
        "manual_tags": it.tags,
        "fields": it.fields,
    })
}

/// `query "…" [--json]`: the matching items (id, source, path or dataset, tags).
pub(crate) fn query_cmd(query: &str, store: Option<PathBuf>, json: bool) -> Result<i32> {
    let store = open(store)?;
    let cat = Catalog::new(&store);
    let ids = cat.query(query)?;
    let mut items = Vec::with_capacity(ids.len());
    for id in &ids {
        if let Some(it) = cat.item(*id)? {
            items.push((*id, it));
        }
    }
    if json {
        let list: Vec<_> = items.iter().map(|(id, it)| item_json(*id, it)).collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(0);
    }
    for (id, it) in &items {
        let place = match &it.dataset {
            Some(d) => format!("{d}: {}", it.name),
            None => it.name.clone(),
        };
        let tags: Vec<&str> = it.all_tags().collect();
        println!(
            "#{id:<6} {:<9} {place}  [{}]",
            it.source.name(),
            tags.join(" ")
        );
    }
    eprintln!("{} item(s)", items.len());
    Ok(0)
}

/// `tag add|remove TAG (--query Q | ITEM_ID...)`.
pub(crate) fn tag_cmd(
    add: bool,
    tag: &str,
    query: Option<&str>,
    ids: &[u64],
    store: Option<PathBuf>,
) -> Result<i32> {
    let store = open(store)?;
    let cat = Catalog::new(&store);
    let ids = match (query, ids.is_empty()) {
        (Some(q), true) => cat.query(q)?,
        (None, false) => ids.to_vec(),
        _ => return Err(anyhow!("give either --query QUERY or item ids, not both")),
    };
    let n = if add {
        cat.add_tag(&ids, tag)?
    } else {
        cat.remove_tag(&ids, tag)?
    };
    println!(
        "{} \"{tag}\" {} {n} of {} item(s)",
        if add { "tagged" } else { "untagged" },
        if add { "on" } else { "from" },
        ids.len()
    );
    Ok(0)
}
