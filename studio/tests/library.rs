//! The recipe library window: recipes in `DEFECT_STUDIO_RECIPE_DIRS` are listed, a tag chip
//! narrows the list, "Insert as subgraph" adds one subgraph node to the document, and "Save to
//! library" writes the current graph into the data folder's `recipes/` with its tags.

use std::path::PathBuf;
use std::sync::OnceLock;

use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use nodes::subgraph::SUBGRAPH_KIND;
use nodes::GraphDoc;
use studio::app::{Settings, StudioApp};

type H = Harness<'static, Option<StudioApp>>;

/// A data folder and a recipe folder for this test binary (both read from the environment).
fn home() -> &'static PathBuf {
    static HOME: OnceLock<PathBuf> = OnceLock::new();
    HOME.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let recipes = dir.join("team-recipes");
        std::fs::create_dir_all(recipes.join("aluminium")).unwrap();
        let mut scratch = GraphDoc::from_json(studio::app::EXAMPLE).unwrap();
        scratch.meta.title = "Scratch on anodised aluminium".into();
        scratch.meta.tags = vec!["aluminium".into(), "scratch".into()];
        std::fs::write(
            recipes.join("aluminium/scratch-block.json"),
            scratch.to_json(),
        )
        .unwrap();
        std::fs::write(
            recipes.join("grey-plate.json"),
            r#"{"format": "defect-studio/graph", "version": 2,
                "nodes": {"bg": {"kind": "SolidColor", "version": 1},
                          "save": {"kind": "SaveImage", "version": 1}},
                "links": [{"from": ["bg", "image"], "to": ["save", "image"]}],
                "meta": {"title": "Grey plate", "tags": ["steel"]}}"#,
        )
        .unwrap();
        std::env::set_var("DEFECT_STUDIO_HOME", &dir);
        std::env::set_var("DEFECT_STUDIO_RECIPE_DIRS", &recipes);
        // Made once here: two studios creating it in the same millisecond collide.
        engine::Store::open(&engine::paths::store_path()).unwrap();
        dir
    })
}

fn harness() -> H {
    home();
    Harness::builder()
        .with_size([1600.0, 1000.0])
        .build_ui_state(
            |ui, app: &mut Option<StudioApp>| {
                let a =
                    app.get_or_insert_with(|| StudioApp::new(ui.ctx(), Settings::default(), None));
                a.ui(ui);
            },
            None,
        )
}

fn app(h: &mut H) -> &mut StudioApp {
    h.state_mut().as_mut().unwrap()
}

fn doc(h: &mut H) -> GraphDoc {
    let a = app(h);
    a.doc.to_doc(&a.catalogue)
}

fn subgraph_nodes(d: &GraphDoc) -> Vec<(&String, &nodes::NodeDoc)> {
    d.nodes
        .iter()
        .filter(|(_, n)| n.kind == SUBGRAPH_KIND)
        .collect()
}

fn open_library(h: &mut H) {
    h.get_by_label("View").click();
    h.run_steps(2);
    h.get_by_label("Recipe library…").click();
    h.run_steps(3);
}

#[test]
fn find_a_recipe_by_tag_and_insert_it_as_a_subgraph() {
    let mut h = harness();
    h.run_steps(3);
    open_library(&mut h);
    h.get_by_label("aluminium/scratch-block");
    h.get_by_label("grey-plate");

    // The tag chip narrows the list to the recipe carrying it.
    h.get_by_label("#aluminium").click();
    h.run_steps(2);
    h.get_by_label_contains("1 of ");
    h.get_by_label("aluminium/scratch-block");
    assert!(
        h.query_by_label("grey-plate").is_none(),
        "the steel plate is hidden"
    );

    // `DEFECT_STUDIO_SCREENSHOTS=DIR` saves the window as it looks here.
    if let Some(dir) = std::env::var_os("DEFECT_STUDIO_SCREENSHOTS") {
        let img = h.render().expect("render");
        img.save(PathBuf::from(dir).join("library-panel.png"))
            .unwrap();
    }
    let before = doc(&mut h);
    assert!(subgraph_nodes(&before).is_empty());
    h.get_by_label("Insert as subgraph").click();
    h.run_steps(3);
    let after = doc(&mut h);
    assert_eq!(after.nodes.len(), before.nodes.len() + 1);
    let added = subgraph_nodes(&after);
    assert_eq!(added.len(), 1, "{:?}", after.nodes.keys());
    let r = added[0]
        .1
        .subgraph
        .as_ref()
        .expect("the node refers to its definition");
    assert_eq!(r.name, "aluminium/scratch-block");
    assert!(after.definitions.contains_key(&r.hash));
    nodes::validate(&after, &nodes::Catalogue::builtin()).unwrap();

    // A text search finds the other one by a word of its tags.
    h.get_by_label("#aluminium").click();
    h.run_steps(1);
    app(&mut h).library.search = "steel".into();
    h.run_steps(2);
    h.get_by_label_contains("1 of ");
    h.get_by_label("grey-plate");
}

#[test]
fn save_the_current_graph_to_the_library() {
    let mut h = harness();
    h.run_steps(3);
    open_library(&mut h);
    {
        let lib = &mut app(&mut h).library;
        lib.save_name = "mine/brushed".into();
        lib.save_tags = "metal, brushed".into();
    }
    h.run_steps(1);
    h.get_by_label("Save to library").click();
    h.run_steps(3);
    let file = home().join("recipes/mine/brushed.json");
    let saved = GraphDoc::from_json(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(saved.meta.tags, ["metal", "brushed"]);
    assert_eq!(saved.nodes, doc(&mut h).nodes);
    // The list is scanned again and shows it.
    h.get_by_label("mine/brushed");
}
