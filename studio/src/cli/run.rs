//! `run` and `validate`: a recipe file, parameter overrides, sweeps and shards.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use engine::run::{plan, BatchEvent, BatchJob, BatchSummary, PlanSpec, Sweep};
use engine::{Event, Executor, RunStatus, Store, Worker, WorkerEvent};
use nodes::{Catalogue, GraphDoc, ParamValue};

use crate::graph_file;

/// Splits `NODE.PARAM=VALUE` and finds the parameter's spec.
fn split_assignment<'a>(
    doc: &GraphDoc,
    catalogue: &Catalogue,
    arg: &'a str,
    flag: &str,
) -> Result<(String, &'static nodes::ParamSpec, &'a str)> {
    let (target, value) = arg
        .split_once('=')
        .ok_or_else(|| anyhow!("{flag} {arg}: expected NODE.PARAM=VALUE"))?;
    let (node, param) = target
        .split_once('.')
        .ok_or_else(|| anyhow!("{flag} {arg}: expected NODE.PARAM=VALUE"))?;
    doc.nodes.get(node).ok_or_else(|| {
        let ids: Vec<&str> = doc.nodes.keys().map(String::as_str).collect();
        anyhow!(
            "{flag} {arg}: the graph has no node \"{node}\" (nodes: {})",
            ids.join(", ")
        )
    })?;
    // A subgraph node's parameters are its exposed ones.
    let p = nodes::subgraph::node_param(doc, node, param, catalogue)
        .map_err(|e| anyhow!("{flag} {arg}: {e}"))?;
    Ok((node.to_string(), p, value))
}

/// `--shard I/N`, or `auto[/N]`: from the scheduler's variables ([`engine::run::shard_from_env`]).
fn parse_shard(s: &str) -> Result<(u32, u32)> {
    if s.trim_start().starts_with("auto") {
        return Ok(engine::run::shard_from_env(s, |k| std::env::var(k).ok())?);
    }
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| anyhow!("--shard {s}: expected I/N, e.g. 0/4"))?;
    let i: u32 = i
        .trim()
        .parse()
        .map_err(|_| anyhow!("--shard {s}: I is not a number"))?;
    let n: u32 = n
        .trim()
        .parse()
        .map_err(|_| anyhow!("--shard {s}: N is not a number"))?;
    if n == 0 || i >= n {
        bail!("--shard {s}: need 0 <= I < N");
    }
    Ok((i, n))
}

fn validated(
    doc: &GraphDoc,
    catalogue: &Catalogue,
    path: &Path,
    skip: &[(String, String)],
) -> Result<()> {
    nodes::validate(doc, catalogue).map_err(|e| {
        anyhow!(
            "{}: invalid graph: {}",
            path.display(),
            e.to_string().replace('\n', "; ")
        )
    })?;
    // Every file the nodes name, and every model reference (found by content hash first, then
    // by name; never silently replaced), reported together.
    let mut problems = Vec::new();
    let missing = engine::files::missing_files(doc, catalogue, &base_dir(path), None, skip);
    if !missing.is_empty() {
        problems.push(engine::files::describe_missing(&missing));
    }
    if let Err(e) = engine::models::manager::ModelManager::default_dirs().resolve(&doc.models) {
        problems.push(e.to_string());
    }
    if !problems.is_empty() {
        bail!("{}: {}", path.display(), problems.join("; "));
    }
    Ok(())
}

/// The folder a graph file's relative input paths resolve against.
fn base_dir(graph: &Path) -> PathBuf {
    match graph.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Validates every `--sweep` value before the run starts: each value is set on a copy of the
/// (already valid) document and the copy validated, so a bad value is refused up front, naming
/// the node, the parameter and the value, instead of failing its work items. A range whose
/// two ends are both swept (`size_min` and `size_max`) depends on the grid cell and is left to
/// each work item.
fn check_sweeps(doc: &GraphDoc, catalogue: &Catalogue, sweeps: &[Sweep]) -> Result<()> {
    let swept = |node: &str, param: &str| sweeps.iter().any(|s| s.node == node && s.param == param);
    let mut work = doc.clone();
    for s in sweeps {
        let original = doc
            .nodes
            .get(&s.node)
            .and_then(|n| n.params.get(&s.param))
            .cloned();
        for v in &s.values {
            if let Some(n) = work.nodes.get_mut(&s.node) {
                n.params.insert(s.param.clone(), v.clone());
            }
            let Err(errors) = nodes::validate(&work, catalogue) else {
                continue;
            };
            let problems: Vec<String> = errors
                .0
                .iter()
                .filter(|e| match &e.problem {
                    nodes::Problem::InvertedRange { min, max, .. } => {
                        let other = if *min == s.param { max } else { min };
                        !swept(&s.node, other)
                    }
                    _ => true,
                })
                .map(ToString::to_string)
                .collect();
            if !problems.is_empty() {
                bail!(
                    "--sweep {}.{}: value {} is refused: {}",
                    s.node,
                    s.param,
                    nodes::clip(&v.to_json()),
                    problems.join("; ")
                );
            }
        }
        if let Some(n) = work.nodes.get_mut(&s.node) {
            match &original {
                Some(v) => n.params.insert(s.param.clone(), v.clone()),
                None => n.params.remove(&s.param),
            };
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn run_cmd(
    graph: &Path,
    set: &[String],
    out: Option<PathBuf>,
    count: u64,
    seed: Option<u64>,
    shard: Option<&str>,
    sweep: &[String],
    store: Option<PathBuf>,
    embed_assets: bool,
    device: Option<&str>,
) -> Result<i32> {
    let device = device
        .map(|d| engine::devices::normalize_device(d).map_err(|e| anyhow!("--device: {e}")))
        .transpose()?;
    let catalogue = Catalogue::builtin();
    let mut doc = graph_file::load(graph)?;
    // Library references run as the recipes they name (checked by hash); the outputs' embedded
    // recipe then carries the definitions.
    engine::recipes::resolve_from_library(&mut doc)?;
    for arg in set {
        let (node, p, value) = split_assignment(&doc, &catalogue, arg, "--set")?;
        let v = p
            .parse_value(value)
            .map_err(|m| anyhow!("--set {arg}: {m}"))?;
        if let Some(n) = doc.nodes.get_mut(&node) {
            n.params.insert(p.name.to_string(), v);
        }
    }
    let mut sweeps = Vec::new();
    for arg in sweep {
        let (node, p, values) = split_assignment(&doc, &catalogue, arg, "--sweep")?;
        let values: Vec<ParamValue> = values
            .split(',')
            .map(|v| {
                p.parse_value(v).map_err(|m| {
                    anyhow!(
                        "--sweep {}: value {}: {m}",
                        nodes::clip(arg),
                        nodes::quote(v)
                    )
                })
            })
            .collect::<Result<_>>()?;
        sweeps.push(Sweep {
            node,
            param: p.name.to_string(),
            values,
        });
    }
    let swept: Vec<(String, String)> = sweeps
        .iter()
        .map(|s| (s.node.clone(), s.param.clone()))
        .collect();
    validated(&doc, &catalogue, graph, &swept)?;
    check_sweeps(&doc, &catalogue, &sweeps)?;
    let shard = shard.map(parse_shard).transpose()?;
    let base_dir = base_dir(graph);
    let base_seed = seed.or(doc.meta.seed).unwrap_or(0);
    let (items, total) = plan(&PlanSpec {
        doc: &doc,
        base_dir: &base_dir,
        count,
        seed: base_seed,
        sweeps: &sweeps,
        shard,
    })?;
    let mut out_dir = out.unwrap_or_else(engine::paths::default_out_dir);
    if let Some((i, n)) = shard {
        out_dir = out_dir.join(format!("shard-{i}-of-{n}"));
    }
    let store_path = match (store, shard) {
        (Some(s), _) => s,
        (None, Some(_)) => out_dir.join("store.redb"),
        (None, None) => engine::paths::store_path(),
    };
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create output folder {}", out_dir.display()))?;
    let graph_name = graph_file::graph_name(&doc, graph);
    let graph_name_for_files: String = graph_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let n_items = items.len();
    let job = BatchJob {
        doc,
        graph_name,
        base_dir,
        items,
        base_seed,
        shard,
        out_dir: out_dir.clone(),
        store_path: store_path.clone(),
        targets: None,
        graph_path: Some(std::fs::canonicalize(graph).unwrap_or_else(|_| graph.to_path_buf())),
        embed_assets,
        device,
    };

    let summary = execute(job, n_items, |say| {
        if let Some((i, n)) = shard {
            say(format!("shard {i}/{n}: {n_items} of {total} work items"));
        }
    })?;
    let summary = succeeded(summary)?;
    println!(
        "run #{}: {} output(s) in {} ({:.2} s)",
        summary.run_id,
        summary.saved.len(),
        out_dir.display(),
        summary.seconds
    );
    if !sweeps.is_empty() && !summary.saved.is_empty() {
        let keys: Vec<String> = sweeps
            .iter()
            .map(|s| format!("{}.{}", s.node, s.param))
            .collect();
        let columns = sweeps.last().map(|s| s.values.len() as u32).unwrap_or(1);
        let ids: Vec<u64> = summary.saved.iter().filter_map(|s| s.output_id).collect();
        let store = Store::open(&store_path)?;
        let sheet = engine::contact::sheet_for_outputs(&store, &ids, &keys, columns)?;
        let path = out_dir.join(format!(
            "{}-contact-run{:05}.png",
            graph_name_for_files, summary.run_id
        ));
        let png = engine::codec::encode_image_png(&sheet, &[]).map_err(|e| anyhow!(e))?;
        // Like every output: created new, never through a planted link, never over a file.
        engine::paths::write_new_file(&path, &png)
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("contact sheet {}", path.display());
    }
    for (dir, images, instances) in &summary.datasets {
        println!(
            "dataset {} ({images} image(s), {instances} instance(s))",
            dir.display()
        );
    }
    report_retries(&summary);
    let classified = summary
        .items
        .iter()
        .any(|r| r.notes.values().any(|n| n.contains_key("detected")));
    if !sweeps.is_empty() && classified {
        let stem = format!("{}-pod-run{:05}", graph_name_for_files, summary.run_id);
        report_pod(&sweeps, &summary, &out_dir, &stem)?;
    }
    Ok(0)
}

/// Prints what FilterByScore and MaskFidelity did: items retried, attempts, items rejected.
fn report_retries(summary: &BatchSummary) {
    let retried: Vec<_> = summary
        .items
        .iter()
        .filter(|r| !r.reasons.is_empty())
        .collect();
    if retried.is_empty() {
        return;
    }
    let attempts: usize = retried.iter().map(|r| r.seeds.len()).sum();
    let rejected: Vec<_> = retried.iter().filter(|r| !r.kept).collect();
    println!(
        "filters: {} item(s) retried ({attempts} attempts in all), {} kept, {} rejected (saved \
         nothing)",
        retried.len(),
        retried.len() - rejected.len(),
        rejected.len()
    );
    for r in rejected.iter().take(20) {
        println!(
            "  item {} rejected after {} attempt(s): {}",
            r.index,
            r.seeds.len(),
            r.reasons.last().map(String::as_str).unwrap_or("")
        );
    }
    if rejected.len() > 20 {
        println!(
            "  … and {} more (see `history --json`)",
            rejected.len() - 20
        );
    }
}

/// Prints the probability-of-detection table of a sweep with a Classify node and writes it as
/// `<stem>.json` and `<stem>.csv` in the output folder, beside the contact sheet.
fn report_pod(sweeps: &[Sweep], summary: &BatchSummary, out_dir: &Path, stem: &str) -> Result<()> {
    let pod = engine::run::pod::pod_report(sweeps, &summary.items).map_err(|e| anyhow!(e))?;
    println!(
        "probability of detection over {} ({}; 95% Clopper-Pearson interval):",
        pod.parameter, pod.classifier
    );
    println!(
        "  {:>12}  {:>5}  {:>8}  {:>6}  95% CI",
        "value", "n", "detected", "rate"
    );
    let mut csv = String::from("value,n,detected,rate,ci_low,ci_high\n");
    for p in &pod.points {
        println!(
            "  {:>12}  {:>5}  {:>8}  {:>6.3}  [{:.3}, {:.3}]",
            p.value, p.n, p.detected, p.rate, p.ci_low, p.ci_high
        );
        csv.push_str(&format!(
            "{},{},{},{},{},{}\n",
            p.value, p.n, p.detected, p.rate, p.ci_low, p.ci_high
        ));
    }
    for (ext, bytes) in [
        ("json", serde_json::to_vec_pretty(&pod)?),
        ("csv", csv.into_bytes()),
    ] {
        let path = out_dir.join(format!("{stem}.{ext}"));
        engine::paths::write_new_file(&path, &bytes)
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("PoD {}", path.display());
    }
    Ok(())
}

/// The summary of a run that succeeded; a failed or cancelled run is an error naming why.
pub(crate) fn succeeded(summary: BatchSummary) -> Result<BatchSummary> {
    match summary.status {
        RunStatus::Succeeded => Ok(summary),
        status => {
            let why = summary.error.unwrap_or_else(|| status.name().to_string());
            bail!(
                "run #{} {} after {} output(s): {}",
                summary.run_id,
                status.name(),
                summary.saved.len(),
                why
            )
        }
    }
}

pub(crate) fn validate_cmd(graph: &Path) -> Result<i32> {
    let mut doc = graph_file::load(graph)?;
    engine::recipes::resolve_from_library(&mut doc)?;
    validated(&doc, &Catalogue::builtin(), graph, &[])?;
    println!(
        "ok: {} ({} nodes, {} links)",
        graph.display(),
        doc.nodes.len(),
        doc.links.len()
    );
    Ok(0)
}

/// Runs a batch on the engine worker (the same worker the studio drives), with a progress bar
/// on a terminal and a line per saved file; returns the batch summary. `first` may print lines
/// before the run starts.
pub(crate) fn execute(
    job: BatchJob,
    n_items: usize,
    first: impl FnOnce(&dyn Fn(String)),
) -> Result<BatchSummary> {
    let worker = Worker::spawn(Executor::builtin());
    let store_path = job.store_path.clone();
    worker.submit(job)?;
    follow(&worker, &store_path, n_items, 1, first)?
        .pop()
        .ok_or_else(|| anyhow!("the engine worker stopped unexpectedly"))?
        .map_err(|e| anyhow!(e))
}

/// Shows a worker's batches (into `store_path`) as they run, until `jobs` of them have ended:
/// a progress bar on a terminal (`n_items` long, reset as each batch starts) and a line per
/// saved file. Returns how each batch ended, in order. `first` may print lines before.
pub(crate) fn follow(
    worker: &Worker,
    store_path: &Path,
    n_items: usize,
    jobs: usize,
    first: impl FnOnce(&dyn Fn(String)),
) -> Result<Vec<std::result::Result<BatchSummary, String>>> {
    let bar = if std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new(n_items as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} items  {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b.enable_steady_tick(Duration::from_millis(120));
        Some(b)
    } else {
        None
    };
    let say = |line: String| match &bar {
        Some(b) => b.println(line),
        None => println!("{line}"),
    };
    first(&say);
    let mut ended = Vec::new();
    while ended.len() < jobs {
        let Ok(ev) = worker.events().recv() else {
            bail!("the engine worker stopped unexpectedly")
        };
        match ev {
            WorkerEvent::Batch(BatchEvent::RunStarted { run_id, items }) => {
                if let Some(b) = &bar {
                    b.set_length(items as u64);
                    b.set_position(0);
                }
                say(format!(
                    "run #{run_id}: {items} work item(s), store {}",
                    store_path.display()
                ))
            }
            WorkerEvent::Batch(BatchEvent::ItemStarted { item, seed, .. }) => {
                if let Some(b) = &bar {
                    b.set_position(item as u64);
                    b.set_message(format!("seed {seed}"));
                }
            }
            WorkerEvent::Batch(BatchEvent::Node { event, .. }) => match event {
                Event::NodeStarted { node } => {
                    if let Some(b) = &bar {
                        b.set_message(node);
                    }
                }
                Event::NodeProgress {
                    node, step, total, ..
                } => {
                    if let Some(b) = &bar {
                        b.set_message(format!("{node} {step}/{total}"));
                    }
                }
                Event::Saved { path, .. } => say(format!("saved {}", path.display())),
                Event::NodeStatus { node, message } => say(format!("{node}: {message}")),
                _ => {}
            },
            WorkerEvent::Batch(BatchEvent::ItemFinished { .. }) => {}
            WorkerEvent::Finished(result) => ended.push(result),
            // Only batches are queued here; the queue's changes are not shown.
            WorkerEvent::Train(_)
            | WorkerEvent::TrainFinished(_)
            | WorkerEvent::Detector(_)
            | WorkerEvent::DetectorFinished(_)
            | WorkerEvent::Queue(_) => {}
        }
    }
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    Ok(ended)
}
