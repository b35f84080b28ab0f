//! Recipes as subgraphs: inserting a library recipe as a subgraph node, and resolving library
//! references by name, checked by definition hash (right hash resolves, a wrong or stale one is
//! an error naming both hashes, loops are refused).

use std::path::Path;

use engine::recipes::{insert_as_subgraph, resolve_library_refs, Library};
use nodes::subgraph::{SubgraphRef, SUBGRAPH_KIND};
use nodes::{Catalogue, GraphDoc, Link, NodeDoc, PortRef};

const GREY: &str = r#"{"format": "defect-studio/graph", "version": 2,
    "nodes": {"bg": {"kind": "SolidColor", "version": 1, "params": {"width": 8, "height": 8}},
              "save": {"kind": "SaveImage", "version": 1}},
    "links": [{"from": ["bg", "image"], "to": ["save", "image"]}],
    "meta": {"title": "Grey", "tags": ["plate"]}}"#;

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(format!("{name}.json"));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A graph with one subgraph node `plate` (a library reference to `name` with `hash`) saved.
fn graph_with_ref(name: &str, hash: &str) -> GraphDoc {
    let mut doc = GraphDoc::new();
    doc.nodes.insert("plate".into(), library_node(name, hash));
    doc.nodes
        .insert("save".into(), NodeDoc::new("SaveImage", 1));
    doc.links.push(Link {
        from: PortRef("plate".into(), "image".into()),
        to: PortRef("save".into(), "image".into()),
    });
    doc
}

fn library_node(name: &str, hash: &str) -> NodeDoc {
    let mut node = NodeDoc::new(SUBGRAPH_KIND, 1);
    node.subgraph = Some(SubgraphRef {
        hash: hash.into(),
        name: name.into(),
        library: true,
    });
    node
}

#[test]
fn library_refs_resolve_by_name_and_are_checked_by_hash() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "blocks/grey", GREY);
    let lib = Library::scan(&[t.path().to_path_buf()]);
    assert!(lib.problems().is_empty(), "{:?}", lib.problems());
    let hash = lib.get("blocks/grey").unwrap().definition_hash.clone();
    assert_eq!(hash.len(), 64);
    let catalogue = Catalogue::builtin();

    // Unresolved, the graph is refused (its definition is not in the file).
    let mut doc = graph_with_ref("blocks/grey", &hash);
    assert!(nodes::validate(&doc, &catalogue).is_err());
    // The right hash resolves; the graph is then complete.
    resolve_library_refs(&mut doc, &lib).unwrap();
    assert_eq!(doc.definitions.len(), 1);
    assert_eq!(doc.definitions[&hash].hash(), hash);
    nodes::validate(&doc, &catalogue).unwrap();
    let flat = nodes::subgraph::flatten(&doc, &catalogue).unwrap();
    assert!(
        flat.doc.nodes.keys().any(|k| k.ends_with("bg")),
        "{:?}",
        flat.doc.nodes.keys()
    );
    // Resolving again changes nothing.
    let before = doc.clone();
    resolve_library_refs(&mut doc, &lib).unwrap();
    assert_eq!(doc, before);

    // A wrong hash: the error names the recipe and both hashes; nothing is filled in.
    let wrong = "0".repeat(64);
    let mut doc = graph_with_ref("blocks/grey", &wrong);
    let err = resolve_library_refs(&mut doc, &lib)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"blocks/grey\"") && err.contains(&hash) && err.contains(&wrong),
        "{err}"
    );
    assert!(doc.definitions.is_empty());

    // The recipe changed since the graph used it: its hash no longer matches.
    write(
        t.path(),
        "blocks/grey",
        &GREY.replace("\"width\": 8", "\"width\": 9"),
    );
    let changed = Library::scan(&[t.path().to_path_buf()]);
    let mut doc = graph_with_ref("blocks/grey", &hash);
    let err = resolve_library_refs(&mut doc, &changed)
        .unwrap_err()
        .to_string();
    let new_hash = &changed.get("blocks/grey").unwrap().definition_hash;
    assert_ne!(new_hash, &hash);
    assert!(
        err.contains(&hash) && err.contains(new_hash.as_str()),
        "{err}"
    );

    // An unknown recipe is named.
    let mut doc = graph_with_ref("blocks/nope", &hash);
    let err = resolve_library_refs(&mut doc, &lib)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no recipe \"blocks/nope\""), "{err}");
}

#[test]
fn nested_library_refs_resolve_and_loops_are_refused() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "grey", GREY);
    let lib = Library::scan(&[t.path().to_path_buf()]);
    let grey = lib.get("grey").unwrap().definition_hash.clone();
    // "framed" uses "grey" through a library reference, and is itself used by reference.
    let framed = graph_with_ref("grey", &grey);
    write(t.path(), "framed", &framed.to_json());
    let lib = Library::scan(&[t.path().to_path_buf()]);
    let framed_hash = lib.get("framed").unwrap().definition_hash.clone();
    assert!(!framed_hash.is_empty(), "{:?}", lib.problems());
    let mut doc = graph_with_ref("framed", &framed_hash);
    resolve_library_refs(&mut doc, &lib).unwrap();
    assert!(doc.definitions.contains_key(&framed_hash));
    assert!(doc.definitions.contains_key(&grey));
    nodes::validate(&doc, &Catalogue::builtin()).unwrap();

    // a uses b uses a: refused, naming the chain.
    write(
        t.path(),
        "a",
        &graph_with_ref("b", &"1".repeat(64)).to_json(),
    );
    write(
        t.path(),
        "b",
        &graph_with_ref("a", &"2".repeat(64)).to_json(),
    );
    let lib = Library::scan(&[t.path().to_path_buf()]);
    let mut doc = graph_with_ref("a", &"3".repeat(64));
    let err = resolve_library_refs(&mut doc, &lib)
        .unwrap_err()
        .to_string();
    assert!(err.contains("a → b → a"), "{err}");
}

#[test]
fn a_recipe_inserts_as_a_subgraph_node_with_its_assets() {
    let t = tempfile::tempdir().unwrap();
    let sha = "ab".repeat(32);
    let with_asset = GREY.replace(
        r#""meta""#,
        &format!(
            r#""assets": {{"{sha}": {{"mime": "image/png", "data_base64": "AAAA"}}}}, "meta""#
        ),
    );
    write(t.path(), "metal/Grey plate", &with_asset);
    let lib = Library::scan(&[t.path().to_path_buf()]);
    let entry = lib.get("metal/Grey plate").unwrap();
    let recipe = lib.load(&entry.name).unwrap();
    let catalogue = Catalogue::builtin();

    let mut doc = GraphDoc::new();
    doc.nodes
        .insert("save".into(), NodeDoc::new("SaveImage", 1));
    let id = insert_as_subgraph(&mut doc, &recipe, &entry.name, [10.0, 20.0], &catalogue).unwrap();
    assert_eq!(id, "grey-plate");
    let r = doc.nodes[&id].subgraph.clone().unwrap();
    assert_eq!(
        r.hash, entry.definition_hash,
        "the library's hash is the inserted one"
    );
    assert!(!r.library);
    assert_eq!(doc.layout[&id].pos, [10.0, 20.0]);
    assert!(doc.assets.contains_key(&sha));
    doc.links.push(Link {
        from: PortRef(id.clone(), "image".into()),
        to: PortRef("save".into(), "image".into()),
    });
    nodes::validate(&doc, &catalogue).unwrap();
    // A second instance shares the definition.
    let id2 = insert_as_subgraph(&mut doc, &recipe, &entry.name, [0.0, 0.0], &catalogue).unwrap();
    assert_eq!(id2, "grey-plate-2");
    assert_eq!(doc.definitions.len(), 1);
}
