//! `explore`, `similar`, `duplicates`, `coverage` and `query --export`: the explorer's analysis
//! from the command line, through the same `engine::explore` explorations as the studio's
//! Explore window (docs/ARCHITECTURE.md §13). Features are computed where missing (a progress
//! bar on a terminal) and cached in the store.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use engine::dataset::{ExportOptions, Format};
use engine::explore::lite0::Lite0Embedder;
use engine::explore::{Catalog, Exploration, MapMethod, MapSpec};
use engine::Store;

fn open(store: Option<PathBuf>) -> Result<Store> {
    Ok(Store::open(
        &store.unwrap_or_else(engine::paths::store_path),
    )?)
}

fn network(device: &str) -> Result<Lite0Embedder> {
    let device = engine::sd::nodes::parse_device(device)?;
    Ok(Lite0Embedder::installed(&device)?)
}

/// A progress bar for feature extraction (on a terminal only).
fn bar() -> impl FnMut(usize, usize) {
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "features {bar:30} {pos}/{len} images ({per_sec}, {eta} left)",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    move |done, total| {
        if let Some(b) = &bar {
            b.set_length(total as u64);
            b.set_position(done as u64);
            if done >= total {
                b.finish_and_clear();
            }
        }
    }
}

fn exploration(cat: &Catalog, query: &str, device: &str) -> Result<Exploration> {
    let net = network(device)?;
    let started = std::time::Instant::now();
    let ex = engine::explore::explore(cat, query, &net, &mut bar())?;
    let secs = started.elapsed().as_secs_f64();
    if ex.summary.computed > 0 {
        eprintln!(
            "features: {} computed ({:.1} images/s), {} cached",
            ex.summary.computed,
            ex.summary.computed as f64 / secs.max(1e-9),
            ex.summary.cached
        );
    }
    for (id, why) in &ex.left_out {
        eprintln!("left out item {id}: {why}");
    }
    Ok(ex)
}

/// Where the feature network runs, which store, and the output form: every analysis command's
/// options.
#[derive(clap::Args, Debug)]
pub struct NetOpts {
    /// Where the feature network runs: cpu or cuda[:N].
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Store file (default: the user store).
    #[arg(long)]
    pub store: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

/// Options of `explore`.
#[derive(clap::Args, Debug)]
pub struct ExploreArgs {
    #[arg(default_value = "")]
    pub query: String,
    /// Folder to write (new or empty).
    #[arg(long)]
    pub out: PathBuf,
    /// Map: pca, tsne or umap.
    #[arg(long, default_value = "umap")]
    pub map: String,
    /// 2 or 3.
    #[arg(long, default_value_t = 2)]
    pub dims: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub net: NetOpts,
}

/// `explore [QUERY] --out DIR`: features, a map, uniqueness, and the analysis download
/// (`analysis.csv`, `analysis.json`, `embeddings.npy`, `ids.npy`).
pub(crate) fn explore_cmd(a: ExploreArgs) -> Result<i32> {
    let method = MapMethod::from_name(&a.map).ok_or_else(|| {
        let names: Vec<&str> = MapMethod::ALL.iter().map(|m| m.name()).collect();
        anyhow!("--map {}: unknown (known: {})", a.map, names.join(", "))
    })?;
    let store = open(a.net.store)?;
    let cat = Catalog::new(&store);
    let mut ex = exploration(&cat, &a.query, &a.net.device)?;
    if ex.ids.is_empty() {
        return Err(anyhow!(
            "the query \"{}\" selects no item with features",
            a.query
        ));
    }
    let spec = MapSpec {
        method,
        dims: a.dims,
        seed: a.seed,
    };
    if ex.ids.len() >= 4 {
        ex.compute_map(spec)?;
        ex.compute_uniqueness()?;
    } else {
        eprintln!("{} item(s): too few for a map", ex.ids.len());
    }
    let files = engine::explore::analysis_file::write_analysis(&a.out, &ex.to_analysis())?;
    if a.net.json {
        let list: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        println!(
            "{}",
            serde_json::json!({"items": ex.ids.len(), "left_out": ex.left_out.len(), "map": spec.to_string(), "files": list})
        );
    } else {
        for f in &files {
            println!("wrote {}", f.display());
        }
        println!("{} item(s), map {spec}", ex.ids.len());
    }
    Ok(0)
}

/// `similar ID [--k K] [--query Q]`: the nearest items by cosine distance of the embeddings.
pub(crate) fn similar_cmd(id: u64, k: usize, query: &str, net: &NetOpts) -> Result<i32> {
    let store = open(net.store.clone())?;
    let cat = Catalog::new(&store);
    let ex = exploration(&cat, query, &net.device)?;
    let near = ex.similar(id, k)?;
    if net.json {
        let list: Vec<_> = near
            .iter()
            .map(|(i, d)| serde_json::json!({"id": i, "distance": d}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(0);
    }
    for (i, d) in near {
        let name = ex
            .ids
            .iter()
            .position(|x| *x == i)
            .map(|p| ex.items[p].name.clone())
            .unwrap_or_default();
        println!("#{i:<6} {d:.4}  {name}");
    }
    Ok(0)
}

/// `duplicates [--query Q] [--threshold D]`: groups of near-duplicates (cosine distance ≤ D).
pub(crate) fn duplicates_cmd(query: &str, threshold: f32, net: &NetOpts) -> Result<i32> {
    let store = open(net.store.clone())?;
    let cat = Catalog::new(&store);
    let ex = exploration(&cat, query, &net.device)?;
    let groups = ex.near_duplicates(threshold)?;
    if net.json {
        println!("{}", serde_json::to_string_pretty(&groups)?);
        return Ok(0);
    }
    for g in &groups {
        let ids: Vec<String> = g.iter().map(|i| format!("#{i}")).collect();
        println!("{}", ids.join(" "));
    }
    eprintln!("{} group(s) at cosine distance ≤ {threshold}", groups.len());
    Ok(0)
}

/// `coverage --real Q --synthetic Q`: k-NN precision and recall (k = 3), KID with its
/// standard error, and the real items no synthetic item covers.
pub(crate) fn coverage_cmd(real: &str, synthetic: &str, opts: &NetOpts) -> Result<i32> {
    let store = open(opts.store.clone())?;
    let cat = Catalog::new(&store);
    let net = network(&opts.device)?;
    let r = engine::explore::coverage(&cat, real, synthetic, &net, &mut bar())?;
    if opts.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(0);
    }
    println!(
        "real \"{real}\": {} item(s); synthetic \"{synthetic}\": {} item(s)",
        r.real, r.synthetic
    );
    println!(
        "precision {:.4}  recall {:.4}  (k-NN, k = {})",
        r.precision, r.recall, r.k
    );
    println!(
        "KID {:.6} ± {:.6} (standard error; std {:.6} over {} subsets of {})",
        r.kid, r.kid_se, r.kid_std, r.kid_subsets, r.kid_subset_size
    );
    println!("{} real item(s) not covered:", r.uncovered.len());
    for id in &r.uncovered {
        let name = cat.item(*id)?.map(|i| i.name).unwrap_or_default();
        println!("  #{id:<6} {name}");
    }
    Ok(0)
}

/// `query Q --export DIR [--format F]`: the matching items written as a dataset.
pub(crate) fn export_query_cmd(
    query: &str,
    out: &Path,
    format: &str,
    store: Option<PathBuf>,
) -> Result<i32> {
    let format = Format::from_name(format).ok_or_else(|| {
        let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
        anyhow!("--format {format}: unknown (known: {})", names.join(", "))
    })?;
    let store = open(store)?;
    let cat = Catalog::new(&store);
    let ids = cat.query(query)?;
    let r = engine::explore::export_selection(&cat, &ids, &ExportOptions::from(format), out)?;
    for (id, why) in &r.left_out {
        eprintln!("left out item {id}: {why}");
    }
    println!(
        "exported {} image(s), {} instance(s) as {} to {}",
        r.report.images,
        r.report.instances,
        format.name(),
        out.display()
    );
    Ok(0)
}
