//! Recipes as subgraphs: dropping a library recipe into a graph as one subgraph node
//! ([`insert_as_subgraph`]), and filling in the definitions of library references
//! ([`resolve_library_refs`]: a [`SubgraphRef`] with `library: true` names a recipe and the hash
//! its definition had; the recipe is turned into a definition again and must have that hash).

use std::collections::BTreeMap;

use nodes::subgraph::{Definition, Interface, SubgraphRef, PATH_SEP, SUBGRAPH_KIND};
use nodes::{Catalogue, GraphDoc, NodeDoc, NodeLayout};

use super::library::Library;
use crate::error::{EngineError, Result};

/// The version of subgraph nodes.
const SUBGRAPH_VERSION: u32 = 1;

/// How deep library references may nest (a recipe using a recipe using …).
const MAX_DEPTH: usize = 32;

/// Inserts `recipe` into `doc` as one subgraph node named `name` at `pos`: the recipe becomes a
/// definition ([`nodes::subgraph::definition_from_recipe`]), which is merged into
/// `doc.definitions` with the recipe's own definitions, and so are the recipe's assets and model
/// references. Returns the new node's id (the name's last part, made unique).
pub fn insert_as_subgraph(
    doc: &mut GraphDoc,
    recipe: &GraphDoc,
    name: &str,
    pos: [f32; 2],
    catalogue: &Catalogue,
) -> Result<String> {
    let (def, nested) = super::definition_of(recipe, name, catalogue)
        .map_err(|e| EngineError::Recipe(format!("recipe \"{name}\": {e}")))?;
    let hash = def.hash();
    merge(doc, recipe, def, nested);
    let id = unique_id(doc, name);
    let mut node = NodeDoc::new(SUBGRAPH_KIND, SUBGRAPH_VERSION);
    node.subgraph = Some(SubgraphRef {
        hash,
        name: name.to_string(),
        library: false,
    });
    doc.nodes.insert(id.clone(), node);
    doc.layout.insert(
        id.clone(),
        NodeLayout {
            pos,
            collapsed: false,
        },
    );
    Ok(id)
}

/// The interface recipe `name` shows as a subgraph node, and its definition's hash (what a
/// library reference to it records).
pub fn recipe_interface(
    recipe: &GraphDoc,
    name: &str,
    catalogue: &Catalogue,
) -> Result<(String, Interface)> {
    let (def, nested) = super::definition_of(recipe, name, catalogue)
        .map_err(|e| EngineError::Recipe(format!("recipe \"{name}\": {e}")))?;
    let hash = def.hash();
    let mut doc = GraphDoc::new();
    doc.definitions = nested;
    doc.definitions.insert(hash.clone(), def);
    let interface = nodes::subgraph::interface(&doc, &hash, catalogue).map_err(|e| {
        EngineError::Recipe(format!(
            "recipe \"{name}\": {}",
            e.to_string().trim().replace('\n', "; ")
        ))
    })?;
    Ok((hash, interface))
}

/// Fills in the definition of every library reference in `doc` (at any depth) that the document
/// does not hold: the recipe of the reference's name is loaded from `library`, its own library
/// references resolved the same way, and turned into a definition, which must have the
/// reference's hash (else an error names the recipe and both hashes: the recipe changed since it
/// was used). The recipe's definitions, assets and model references are merged in.
pub fn resolve_library_refs(doc: &mut GraphDoc, library: &Library) -> Result<()> {
    let catalogue = Catalogue::builtin();
    resolve(doc, library, &catalogue, &mut Vec::new())
}

/// Fills in `doc`'s library references from the recipe folders ([`super::recipe_dirs`]) when it
/// has any unresolved; scans nothing otherwise. What `run`, `validate`, bundle export and the
/// studio call before validating a graph.
pub fn resolve_from_library(doc: &mut GraphDoc) -> Result<()> {
    if unresolved(doc).is_empty() {
        return Ok(());
    }
    let library = Library::scan(&super::recipe_dirs());
    resolve_library_refs(doc, &library)
}

fn resolve(
    doc: &mut GraphDoc,
    library: &Library,
    catalogue: &Catalogue,
    stack: &mut Vec<String>,
) -> Result<()> {
    // Each pass may bring definitions holding further references; every pass resolves at
    // least one or stops.
    loop {
        let wanted = unresolved(doc);
        let Some(r) = wanted.into_iter().next() else {
            return Ok(());
        };
        if stack.contains(&r.name) || stack.len() >= MAX_DEPTH {
            let mut chain = stack.clone();
            chain.push(r.name.clone());
            return Err(EngineError::Recipe(format!(
                "library references loop or nest too deep: {}",
                chain.join(" → ")
            )));
        }
        let mut recipe = library.load(&r.name)?;
        stack.push(r.name.clone());
        let inner = resolve(&mut recipe, library, catalogue, stack);
        stack.pop();
        inner?;
        let (def, nested) = super::definition_of(&recipe, &r.name, catalogue)
            .map_err(|e| EngineError::Recipe(format!("library recipe \"{}\": {e}", r.name)))?;
        let found = def.hash();
        if found != r.hash {
            return Err(EngineError::Recipe(format!(
                "library recipe \"{}\" has definition hash {found}, but the graph refers to \
                 hash {}: the recipe changed since the graph used it (re-insert it, or restore \
                 the recipe)",
                r.name, r.hash
            )));
        }
        merge(doc, &recipe, def, nested);
    }
}

/// The library references whose definitions `doc` lacks, first found first (top level, then
/// inside definitions), each once.
fn unresolved(doc: &GraphDoc) -> Vec<SubgraphRef> {
    let mut out: Vec<SubgraphRef> = Vec::new();
    let all = doc
        .nodes
        .values()
        .chain(doc.definitions.values().flat_map(|d| d.nodes.values()));
    for n in all {
        if let Some(r) = &n.subgraph {
            if r.library && !doc.definitions.contains_key(&r.hash) && !out.contains(r) {
                out.push(r.clone());
            }
        }
    }
    out
}

/// Merges a recipe's definition (under its hash), its nested definitions, assets and model
/// references into `doc`. Keys are content hashes, so a key already present holds the same.
fn merge(
    doc: &mut GraphDoc,
    recipe: &GraphDoc,
    def: Definition,
    nested: BTreeMap<String, Definition>,
) {
    for (k, d) in nested {
        doc.definitions.entry(k).or_insert(d);
    }
    doc.definitions.entry(def.hash()).or_insert(def);
    for (k, a) in &recipe.assets {
        doc.assets.entry(k.clone()).or_insert_with(|| a.clone());
    }
    for m in &recipe.models {
        if !doc.models.contains(m) {
            doc.models.push(m.clone());
        }
    }
}

/// A node id for a subgraph of recipe `name`: its last part, lower case, with runs of other
/// characters as `-`; `-2`, `-3`, … when taken.
fn unique_id(doc: &GraphDoc, name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    let mut base = String::new();
    for c in last.chars() {
        if c.is_alphanumeric() || c == '_' {
            base.extend(c.to_lowercase());
        } else if !base.ends_with('-') {
            base.push('-');
        }
    }
    let base = base.trim_matches('-');
    let base = if base.is_empty() { "recipe" } else { base };
    debug_assert!(!base.contains(PATH_SEP));
    if !doc.nodes.contains_key(base) {
        return base.to_string();
    }
    (2u64..)
        .map(|n| format!("{base}-{n}"))
        .find(|id| !doc.nodes.contains_key(id))
        .unwrap_or_else(|| base.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_slugs_made_unique() {
        let mut doc = GraphDoc::new();
        assert_eq!(unique_id(&doc, "metal/Scratch block!"), "scratch-block");
        doc.nodes
            .insert("scratch-block".into(), NodeDoc::new("SolidColor", 1));
        assert_eq!(unique_id(&doc, "metal/Scratch block!"), "scratch-block-2");
        assert_eq!(unique_id(&doc, "…"), "recipe");
    }
}
