//! Subgraphs in the studio window, driven through egui_kittest: make a subgraph from nodes of
//! the example recipe, open it, expose an inner parameter, edit another one, go up through the
//! breadcrumb, undo and redo (the definitions' hashes follow), and run the recipe.

mod common;
use common::*;

use std::time::{Duration, Instant};

use egui_kittest::kittest::Queryable;
use nodes::subgraph::SUBGRAPH_KIND;
use nodes::ParamValue;
use studio::app::editor::EditorCommand;
use studio::app::editor::NodeRunState;
use studio::app::{AppCommand, RunState};

/// The one definition of the document, with its hash.
fn definition(d: &nodes::GraphDoc) -> (String, nodes::subgraph::Definition) {
    assert_eq!(d.definitions.len(), 1, "{:?}", d.definitions.keys());
    let (k, v) = d.definitions.iter().next().unwrap();
    (k.clone(), v.clone())
}

/// The example's `mark` and `stamp` nodes become one subgraph node.
fn make_mark_stamp_subgraph(h: &mut H) {
    let ctx = h.ctx.clone();
    app(h).apply(
        &ctx,
        AppCommand::Editor(EditorCommand::MakeSubgraph(vec![
            "mark".into(),
            "stamp".into(),
        ])),
    );
    h.run_steps(3);
}

fn menu(h: &mut H, top: &str, item: &str) {
    h.get_by_label(top).click();
    h.run_steps(2);
    h.get_by_label(item).click();
    h.run_steps(3);
}

#[test]
fn make_a_subgraph_expose_a_parameter_edit_inside_undo_redo_and_run() {
    let mut h = settled();
    let catalogue = nodes::Catalogue::builtin();
    let before = doc(&mut h);
    // Two nodes of the example become one subgraph node.
    make_mark_stamp_subgraph(&mut h);
    let made = doc(&mut h);
    nodes::validate(&made, &catalogue).unwrap();
    let (h_made, def) = definition(&made);
    let (sub_id, sub) = made
        .nodes
        .iter()
        .find(|(_, n)| n.kind == SUBGRAPH_KIND)
        .map(|(k, v)| (k.clone(), v.clone()))
        .expect("a subgraph node");
    assert_eq!(made.nodes.len(), before.nodes.len() - 1);
    assert_eq!(sub.subgraph.as_ref().unwrap().hash, h_made);
    assert_eq!(
        def.nodes.keys().collect::<Vec<_>>(),
        ["mark", "stamp"],
        "the selection moved inside"
    );
    // Its ports are the definition's interface: SaveImage still reads its image from it.
    assert!(made
        .links
        .iter()
        .any(|l| l.from.0 == sub_id && l.to.0 == "save"));

    // Open it from the inspector: the canvas shows the inner nodes and a breadcrumb.
    h.get_by_label("Open subgraph").click();
    h.run_steps(3);
    assert_eq!(app(&mut h).doc.path(), std::slice::from_ref(&sub_id));
    h.get_by_label_contains("⬆ brushed-metal-scratch");
    assert!(app(&mut h).doc.find("stamp").is_some());
    assert!(app(&mut h).doc.find("save").is_none());
    // Inspect the inner Composite and expose its opacity (right-click on the parameter).
    h.get_by_label("Composite").click_accesskit();
    h.run_steps(3);
    h.get_all_by_label("opacity")
        .next()
        .unwrap()
        .click_secondary();
    h.run_steps(2);
    h.get_by_label("Expose parameter").click();
    h.run_steps(3);
    let exposed = doc(&mut h);
    let (h_exposed, def) = definition(&exposed);
    assert_ne!(
        h_exposed, h_made,
        "exposing a parameter changes the definition"
    );
    assert_eq!(def.params.len(), 1);
    assert_eq!(def.params[0].name, "opacity");
    // Edit an inner parameter: the blend mode (the example multiplies).
    h.get_all_by_value("multiply").next().unwrap().click();
    h.run_steps(2);
    h.get_by_label("darken").click();
    h.run_steps(3);
    // Up to the top level through the breadcrumb.
    h.get_by_label_contains("⬆ brushed-metal-scratch").click();
    h.run_steps(3);
    assert!(app(&mut h).doc.scope.is_none());
    let edited = doc(&mut h);
    let (h_edited, def) = definition(&edited);
    assert_ne!(h_edited, h_exposed);
    assert_eq!(
        def.nodes["stamp"].params.get("blend"),
        Some(&ParamValue::Text("darken".into()))
    );
    assert_eq!(
        edited.nodes[&sub_id].subgraph.as_ref().unwrap().hash,
        h_edited,
        "the instance follows the edited definition"
    );
    // Undo: the inner edit is gone; redo: back.
    menu(&mut h, "Edit", "Undo");
    let undone = doc(&mut h);
    assert_eq!(undone, exposed);
    assert_eq!(definition(&undone).0, h_exposed);
    assert_eq!(
        definition(&undone).1.nodes["stamp"].params.get("blend"),
        Some(&ParamValue::Text("multiply".into()))
    );
    menu(&mut h, "Edit", "Redo");
    assert_eq!(doc(&mut h), edited);

    // The subgraph node shows the exposed parameter; the recipe still runs and saves.
    assert!(h.query_all_by_label("opacity").count() >= 1);
    let outputs = app(&mut h).gallery.outputs.len();
    h.get_by_label("▶ Run").click();
    let start = Instant::now();
    loop {
        h.step();
        let state = app(&mut h).runs.last().map(|r| r.state.clone());
        match state {
            Some(RunState::Succeeded) => break,
            Some(RunState::Failed(e)) => panic!("run failed: {e}"),
            _ => {}
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the run did not finish"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The gallery refreshes once the worker reports the run done.
    let start = Instant::now();
    while app(&mut h).gallery.outputs.len() < outputs + 1 && start.elapsed().as_secs() < 20 {
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(app(&mut h).gallery.outputs.len(), outputs + 1);
}

#[test]
fn ungroup_inlines_the_instance_again() {
    let mut h = settled();
    let before = doc(&mut h);
    make_mark_stamp_subgraph(&mut h);
    h.get_by_label("Ungroup").click();
    h.run_steps(3);
    let after = doc(&mut h);
    assert!(
        after.definitions.is_empty(),
        "the unused definition is dropped"
    );
    assert_eq!(after.nodes, before.nodes);
    // The same links (unpack lists them in its own order).
    let sorted = |d: &nodes::GraphDoc| {
        let mut l: Vec<String> = d
            .links
            .iter()
            .map(|l| format!("{} → {}", l.from, l.to))
            .collect();
        l.sort();
        l
    };
    assert_eq!(sorted(&after), sorted(&before));
}

/// "Run to here" on a node inside an open subgraph runs that node (the run names it by its
/// path in the flattened graph), and the canvas and the inspector show its state and outputs;
/// the sink outside the subgraph does not run.
#[test]
fn run_to_here_inside_a_subgraph() {
    let mut h = settled();
    make_mark_stamp_subgraph(&mut h);
    h.get_by_label("Open subgraph").click();
    h.run_steps(3);
    let sub_id = app(&mut h).doc.path()[0].clone();
    h.get_by_label("Composite").click_accesskit();
    h.run_steps(3);
    let outputs = app(&mut h).gallery.outputs.len();
    click_and_wait_for_run(&mut h, "▶ Run to here");
    let flat = format!("{sub_id}{}stamp", nodes::subgraph::PATH_SEP);
    assert_eq!(app(&mut h).doc.flat_id("stamp"), flat);
    let a = app(&mut h);
    assert!(
        matches!(
            a.states.get(&flat),
            Some(NodeRunState::Done { .. } | NodeRunState::Cached)
        ),
        "{:?}",
        a.states
    );
    assert!(!a.states.contains_key("save"), "only what stamp needs ran");
    assert_eq!(a.gallery.outputs.len(), outputs, "nothing was saved");
    // The inspector shows the inner node's last output.
    h.get_by_label_contains("image (");
}
