//! `recipes list|show|add|export|import`: the recipe library (`engine::recipes`) and
//! `.dsbundle` sharing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use clap::Subcommand;
use engine::recipes::{self, manifest, Library, RecipeEntry};
use nodes::{Catalogue, GraphDoc};

#[derive(Subcommand, Debug)]
pub enum RecipesCommand {
    /// The recipes in the recipe folders (the data folder's recipes/, the studio settings'
    /// folders, DEFECT_STUDIO_RECIPE_DIRS), matching every word of SEARCH (name, title, tags,
    /// notes, node kinds); files that are not usable recipes are listed on stderr.
    List {
        /// Words to look for (case-insensitive).
        search: Vec<String>,
        /// Only recipes with this tag (exact). Repeatable.
        #[arg(long = "tag", value_name = "T")]
        tags: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// One recipe: path, title, tags, notes, nodes by kind, its interface as a subgraph node,
    /// and the models it names.
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Copy a recipe file (ours, or any file `import` reads) into the data folder's recipes/
    /// (never replacing one).
    Add {
        file: PathBuf,
        /// The recipe's name (default: the file's stem); `a/b` makes a subfolder.
        #[arg(long)]
        name: Option<String>,
        /// Add a tag. Repeatable.
        #[arg(long = "tag", value_name = "T")]
        tags: Vec<String>,
    },
    /// Pack a recipe (a library name or a graph file) into a .dsbundle: the graph, its subgraph
    /// definitions, its assets and a manifest of the models it needs (models are not packed).
    Export {
        /// A recipe name from `recipes list`, or a graph file.
        recipe: String,
        /// The bundle file to write (new).
        #[arg(long)]
        out: PathBuf,
    },
    /// Import a .dsbundle into the data folder: the recipe into recipes/, its assets into
    /// assets/; lists every model it needs that the model folders lack.
    Import {
        bundle: PathBuf,
        /// Import under this name instead of the bundle's.
        #[arg(long)]
        name: Option<String>,
    },
}

pub(crate) fn recipes_cmd(cmd: RecipesCommand) -> Result<i32> {
    match cmd {
        RecipesCommand::List { search, tags, json } => list_cmd(&search.join(" "), &tags, json),
        RecipesCommand::Show { name, json } => show_cmd(&name, json),
        RecipesCommand::Add { file, name, tags } => add_cmd(&file, name, &tags),
        RecipesCommand::Export { recipe, out } => export_cmd(&recipe, &out),
        RecipesCommand::Import { bundle, name } => import_cmd(&bundle, name.as_deref()),
    }
}

fn library() -> Library {
    Library::scan(&recipes::recipe_dirs())
}

fn list_cmd(search: &str, tags: &[String], json: bool) -> Result<i32> {
    let lib = library();
    let hits = lib.search(search, tags);
    if json {
        let problems: Vec<serde_json::Value> = lib
            .problems()
            .iter()
            .map(|(p, m)| serde_json::json!({"path": p, "problem": m}))
            .collect();
        let v = serde_json::json!({"recipes": hits, "problems": problems, "dirs": lib.dirs()});
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    if hits.is_empty() {
        let dirs: Vec<String> = lib.dirs().iter().map(|d| d.display().to_string()).collect();
        println!("no recipes found in {}", dirs.join(", "));
    }
    for e in hits {
        let tags = if e.tags.is_empty() {
            String::new()
        } else {
            format!("  [{}]", e.tags.join(", "))
        };
        println!(
            "{:<32} {:<32} {:>3} nodes{tags}  {}",
            e.name,
            e.title,
            e.nodes,
            e.path.display()
        );
    }
    for (p, m) in lib.problems() {
        eprintln!("problem: {}: {m}", p.display());
    }
    Ok(0)
}

fn show_cmd(name: &str, json: bool) -> Result<i32> {
    let lib = library();
    let doc = lib.load(name)?;
    let entry = lib
        .get(name)
        .ok_or_else(|| anyhow!("no recipe \"{name}\""))?;
    let catalogue = Catalogue::builtin();
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for n in doc.nodes.values() {
        *kinds.entry(n.kind.as_str()).or_default() += 1;
    }
    let interface = recipes::recipe_interface(&doc, name, &catalogue);
    let models = models_of(&doc, &catalogue);
    if json {
        let iface = match &interface {
            Ok((hash, i)) => serde_json::json!({
                "definition_hash": hash,
                "inputs": i.inputs.iter().map(|p| serde_json::json!({"name": p.name, "type": p.ty.name(), "optional": p.optional, "doc": p.doc})).collect::<Vec<_>>(),
                "outputs": i.outputs.iter().map(|p| serde_json::json!({"name": p.name, "type": p.ty.name(), "doc": p.doc})).collect::<Vec<_>>(),
                "params": i.params.iter().map(|p| serde_json::json!({"name": p.name, "default": p.default, "min": p.min, "max": p.max, "doc": p.doc})).collect::<Vec<_>>(),
            }),
            Err(e) => serde_json::json!({"error": e.to_string()}),
        };
        let v = serde_json::json!({
            "recipe": entry, "kinds": kinds, "subgraph": iface,
            "models": models.iter().map(|(used_by, role, value)| serde_json::json!({"used_by": used_by, "role": role, "name": value})).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    println!("recipe  {}", entry.name);
    println!("path    {}", entry.path.display());
    if !entry.title.is_empty() {
        println!("title   {}", entry.title);
    }
    if !entry.tags.is_empty() {
        println!("tags    {}", entry.tags.join(", "));
    }
    if !entry.notes.is_empty() {
        println!("notes   {}", entry.notes);
    }
    let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
    println!("nodes   {} ({})", entry.nodes, kinds.join(", "));
    match &interface {
        Ok((hash, i)) => {
            println!(
                "as a subgraph node (definition {}):",
                &hash[..12.min(hash.len())]
            );
            for p in &i.inputs {
                let opt = if p.optional { ", optional" } else { "" };
                println!("  input  {} ({}{opt})", p.name, p.ty.name());
            }
            for p in &i.outputs {
                println!("  output {} ({})", p.name, p.ty.name());
            }
            for p in &i.params {
                println!("  param  {} = {}", p.name, p.default.to_json());
            }
        }
        Err(e) => println!("not usable as a subgraph: {e}"),
    }
    if models.is_empty() {
        println!("models  none");
    }
    for (used_by, role, value) in &models {
        println!("model   {role} \"{value}\" ({used_by})");
    }
    Ok(0)
}

/// The models a recipe names: its model parameters and its `models` list, as (used by, role,
/// name).
fn models_of(doc: &GraphDoc, catalogue: &Catalogue) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = manifest::model_params(doc, catalogue)
        .into_iter()
        .map(|(u, r, v)| (u, r.noun().to_string(), v))
        .collect();
    for m in &doc.models {
        let hash = if m.sha256.is_empty() {
            String::new()
        } else {
            format!(" sha256 {}", &m.sha256[..10.min(m.sha256.len())])
        };
        out.push(("models".into(), "model".into(), format!("{}{hash}", m.name)));
    }
    out
}

fn add_cmd(file: &Path, name: Option<String>, tags: &[String]) -> Result<i32> {
    let doc = crate::graph_file::load(file)?;
    let name = match name {
        Some(n) => n,
        None => file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .ok_or_else(|| anyhow!("{}: no file name to name the recipe by", file.display()))?,
    };
    let path = recipes::add_recipe(&doc, &name, tags)?;
    println!("added recipe \"{name}\": {}", path.display());
    Ok(0)
}

fn export_cmd(recipe: &str, out: &Path) -> Result<i32> {
    let as_file = Path::new(recipe);
    let (doc, name, base) = if as_file.is_file() {
        let doc = crate::graph_file::load(as_file)?;
        let stem = as_file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "recipe".into());
        (doc, stem, parent_dir(as_file))
    } else {
        let lib = library();
        let doc = lib.load(recipe)?;
        let base = lib
            .get(recipe)
            .map(|e: &RecipeEntry| parent_dir(&e.path))
            .unwrap_or_else(|| PathBuf::from("."));
        (doc, recipe.to_string(), base)
    };
    let done = recipes::export_bundle(&doc, &name, &base, out)?;
    println!(
        "wrote {}: recipe \"{name}\", {} model(s) listed, {} asset(s) packed",
        done.path.display(),
        done.models.len(),
        done.assets
    );
    for m in &done.models {
        println!("  {m}");
    }
    for w in &done.warnings {
        eprintln!("warning: {w}");
    }
    Ok(0)
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn import_cmd(bundle: &Path, name: Option<&str>) -> Result<i32> {
    let done = recipes::import_bundle(bundle, name)?;
    for line in done.report_lines() {
        println!("{line}");
    }
    Ok(0)
}
