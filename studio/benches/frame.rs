//! UI frame time: CPU time of one studio frame (layout, widgets, tessellation input) through
//! egui_kittest, for a 200-node graph. Run with `cargo bench -p studio --bench frame`.

use std::time::Instant;

use egui_kittest::Harness;
use nodes::{GraphDoc, Link, NodeDoc, NodeLayout, PortRef};
use studio::app::doc::EditorDoc;
use studio::app::{Settings, StudioApp};

/// 50 chains of Texture → Scratch → Composite ← SolidColor: 200 nodes, 150 links.
fn big_graph() -> GraphDoc {
    let mut g = GraphDoc::new();
    let add = |g: &mut GraphDoc, id: String, kind: &str, x: f32, y: f32| {
        g.nodes.insert(
            id.clone(),
            NodeDoc {
                kind: kind.into(),
                version: 1,
                params: Default::default(),
                param_inputs: Default::default(),
                subgraph: None,
            },
        );
        g.layout.insert(
            id,
            NodeLayout {
                pos: [x, y],
                collapsed: false,
            },
        );
    };
    for c in 0..50 {
        let y = c as f32 * 320.0;
        add(&mut g, format!("tex{c}"), "Texture", 0.0, y);
        add(&mut g, format!("scr{c}"), "Scratch", 320.0, y);
        add(&mut g, format!("ink{c}"), "SolidColor", 320.0, y + 160.0);
        add(&mut g, format!("cmp{c}"), "Composite", 640.0, y);
        let l = |a: String, ap: &str, b: String, bp: &str| Link {
            from: PortRef(a, ap.into()),
            to: PortRef(b, bp.into()),
        };
        g.links
            .push(l(format!("tex{c}"), "image", format!("scr{c}"), "image"));
        g.links
            .push(l(format!("scr{c}"), "image", format!("cmp{c}"), "bottom"));
        g.links
            .push(l(format!("ink{c}"), "image", format!("cmp{c}"), "top"));
    }
    g
}

fn main() {
    let home = tempfile::tempdir().expect("tempdir");
    std::env::set_var("DEFECT_STUDIO_HOME", home.path());
    let graph = big_graph();
    assert_eq!(graph.nodes.len(), 200);
    let mut h = Harness::builder()
        .with_size([1600.0, 1000.0])
        .build_ui_state(
            |ui, app: &mut Option<StudioApp>| {
                let a =
                    app.get_or_insert_with(|| StudioApp::new(ui.ctx(), Settings::default(), None));
                a.ui(ui);
            },
            None,
        );
    h.step();
    if let Some(app) = h.state_mut().as_mut() {
        app.doc = EditorDoc::new(&graph, &app.catalogue, None);
    }
    let measure = |h: &mut Harness<'_, Option<StudioApp>>, what: &str| {
        for _ in 0..20 {
            h.step();
        }
        let frames = 100;
        let mut times = Vec::with_capacity(frames);
        for _ in 0..frames {
            let t = Instant::now();
            h.step();
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(|a, b| a.total_cmp(b));
        let mean = times.iter().sum::<f64>() / frames as f64;
        println!(
            "  {what:<46} mean {mean:6.2} ms   median {:6.2} ms   p95 {:6.2} ms",
            times[frames / 2],
            times[frames * 95 / 100]
        );
    };
    println!(
        "studio frame time, 200-node graph, 1600×1000, 100 frames each ({}):",
        if cfg!(debug_assertions) {
            "debug build"
        } else {
            "release build"
        }
    );
    measure(&mut h, "view at 100% (a few nodes on screen)");
    if let Some(app) = h.state_mut().as_mut() {
        app.push(studio::app::AppCommand::FrameAll);
    }
    measure(&mut h, "frame all (every node on screen, LOD)");
}
