//! UI frame time: CPU time of one studio frame (layout, widgets, tessellation input) through
//! egui_kittest, for a 200-node graph, and for the same canvas with 20 subgraph instances
//! (each of 5 inner nodes) against it plain, in the same run. Run with
//! `cargo bench -p studio --bench frame`. Each row gives wall-clock times and the median of the
//! thread's CPU time per frame (steadier when other processes share the cores).

use std::time::Instant;

use egui_kittest::Harness;
use nodes::subgraph::{SubgraphRef, SUBGRAPH_KIND, SUBGRAPH_VERSION};
use nodes::{Catalogue, GraphDoc, Link, NodeDoc, NodeLayout, PortRef};
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

fn link(a: &str, ap: &str, b: &str, bp: &str) -> Link {
    Link {
        from: PortRef(a.into(), ap.into()),
        to: PortRef(b.into(), bp.into()),
    }
}

/// [`big_graph`] with the Scratch node of chains 0–19 replaced by an instance of one subgraph
/// whose definition chains 5 defect nodes (Scratch → Crack → Dent → Stain → Chip) and exposes the
/// inner Scratch's parameters: the canvas still shows 200 nodes, 20 of them subgraph nodes with
/// the same parameter rows as the Scratch nodes they replace (280 nodes once flattened).
fn subgraph_graph(catalogue: &Catalogue) -> GraphDoc {
    let mut g = big_graph();
    let inner = ["Scratch", "Crack", "Dent", "Stain", "Chip"];
    g.nodes.remove("scr0");
    g.layout.remove("scr0");
    g.links.retain(|l| l.from.0 != "scr0" && l.to.0 != "scr0");
    let ids: Vec<String> = (0..inner.len()).map(|i| format!("d{i}")).collect();
    for (i, kind) in inner.iter().enumerate() {
        g.nodes.insert(ids[i].clone(), NodeDoc::new(*kind, 1));
        g.layout.insert(
            ids[i].clone(),
            NodeLayout {
                pos: [320.0 + 40.0 * i as f32, 0.0],
                collapsed: false,
            },
        );
        let from = if i == 0 { "tex0" } else { ids[i - 1].as_str() };
        g.links.push(link(from, "image", &ids[i], "image"));
    }
    g.links.push(link(&ids[4], "image", "cmp0", "bottom"));
    let sub =
        nodes::subgraph::make_subgraph(&mut g, &ids, "defects", catalogue).expect("make_subgraph");
    // The instances show the inner Scratch's parameters, as the Scratch nodes they stand for do.
    let old = g.nodes[&sub]
        .subgraph
        .clone()
        .expect("a subgraph node")
        .hash;
    let mut def = g.definitions[&old].clone();
    for p in catalogue.get("Scratch").expect("Scratch").params {
        nodes::subgraph::expose_param(&mut def, &ids[0], p.name, p.name).expect("expose");
    }
    nodes::subgraph::replace_definition(&mut g, &old, def).expect("replace_definition");
    let r = g.nodes[&sub].subgraph.clone().expect("a subgraph node");
    let iface = nodes::subgraph::interface(&g, &r.hash, catalogue).expect("interface");
    let (inp, out) = (iface.inputs[0].name.clone(), iface.outputs[0].name.clone());
    // Chain 0's instance takes scr0's place; chains 1–19 get instances of the same definition.
    let node = g.nodes.remove(&sub).expect("the instance");
    g.nodes.insert("scr0".into(), node);
    g.layout.remove(&sub);
    g.layout.insert(
        "scr0".into(),
        NodeLayout {
            pos: [320.0, 0.0],
            collapsed: false,
        },
    );
    for l in &mut g.links {
        for end in [&mut l.from, &mut l.to] {
            if end.0 == sub {
                end.0 = "scr0".into();
            }
        }
    }
    for c in 1..20 {
        let id = format!("scr{c}");
        let mut n = NodeDoc::new(SUBGRAPH_KIND, SUBGRAPH_VERSION);
        n.subgraph = Some(SubgraphRef {
            hash: r.hash.clone(),
            name: r.name.clone(),
            library: false,
        });
        g.nodes.insert(id.clone(), n);
        g.links.retain(|l| l.from.0 != id && l.to.0 != id);
        g.links.push(link(&format!("tex{c}"), "image", &id, &inp));
        g.links.push(link(&id, &out, &format!("cmp{c}"), "bottom"));
    }
    nodes::validate(&g, catalogue).expect("the subgraph graph is valid");
    g
}

/// This thread's CPU time in milliseconds: on a loaded machine it leaves out the time the
/// thread waited for a core, which the wall-clock times include.
fn thread_cpu_ms() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return f64::NAN;
    }
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6
}

fn main() {
    let home = tempfile::tempdir().expect("tempdir");
    std::env::set_var("DEFECT_STUDIO_HOME", home.path());
    let catalogue = Catalogue::builtin();
    let graph = big_graph();
    assert_eq!(graph.nodes.len(), 200);
    let with_subgraphs = subgraph_graph(&catalogue);
    assert_eq!(with_subgraphs.nodes.len(), 200);
    let flat = nodes::subgraph::flatten(&with_subgraphs, &catalogue)
        .expect("flatten")
        .doc;
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
    let measure = |h: &mut Harness<'_, Option<StudioApp>>, what: &str| -> f64 {
        for _ in 0..20 {
            h.step();
        }
        let frames = 100;
        let mut times = Vec::with_capacity(frames);
        let mut cpu = Vec::with_capacity(frames);
        for _ in 0..frames {
            let (t, c) = (Instant::now(), thread_cpu_ms());
            h.step();
            cpu.push(thread_cpu_ms() - c);
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(|a, b| a.total_cmp(b));
        cpu.sort_by(|a, b| a.total_cmp(b));
        let mean = times.iter().sum::<f64>() / frames as f64;
        let median = times[frames / 2];
        println!(
            "  {what:<46} mean {mean:6.2} ms   median {:6.2} ms   p95 {:6.2} ms   cpu median {:6.2} ms",
            median,
            times[frames * 95 / 100],
            cpu[frames / 2]
        );
        median
    };
    println!(
        "studio frame time, 200-node graph, 1600×1000, 100 frames each ({}):",
        if cfg!(debug_assertions) {
            "debug build"
        } else {
            "release build"
        }
    );
    let load = |h: &mut Harness<'_, Option<StudioApp>>, g: &GraphDoc, frame_all: bool| {
        if let Some(app) = h.state_mut().as_mut() {
            app.doc = EditorDoc::new(g, &app.catalogue, None);
            if frame_all {
                app.push(studio::app::AppCommand::FrameAll);
            }
        }
    };
    // Subgraph nodes against plain ones: same canvas, same view, same run, alternating so
    // drift in the machine's load falls on both. First the opening view (a few nodes on screen,
    // bodies drawn), then frame all (every node, LOD).
    measure(&mut h, "view at 100% (a few nodes on screen)");
    let mut plain_100 = Vec::new();
    let mut sub_100 = Vec::new();
    for round in 1..=3 {
        load(&mut h, &with_subgraphs, false);
        sub_100.push(measure(
            &mut h,
            &format!("20 subgraph instances, view at 100% ({round})"),
        ));
        load(&mut h, &graph, false);
        plain_100.push(measure(&mut h, &format!("plain, view at 100% ({round})")));
    }
    load(&mut h, &graph, true);
    measure(&mut h, "frame all (every node on screen, LOD)");
    let mut plain_all = Vec::new();
    let mut sub_all = Vec::new();
    for round in 1..=3 {
        load(&mut h, &with_subgraphs, false);
        sub_all.push(measure(
            &mut h,
            &format!("20 subgraph instances, frame all ({round})"),
        ));
        load(&mut h, &graph, false);
        plain_all.push(measure(&mut h, &format!("plain, frame all ({round})")));
    }
    load(&mut h, &flat, true);
    measure(&mut h, "the subgraph graph flattened (280 nodes), all");
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (sa, pa) = (median(&mut sub_all), median(&mut plain_all));
    let (s1, p1) = (median(&mut sub_100), median(&mut plain_100));
    println!(
        "subgraph / plain, median of the rounds' median frame times: frame all {sa:.2} / {pa:.2} ms \
         = {:.3}×, view at 100% {s1:.2} / {p1:.2} ms = {:.3}× (target ≤ 1.15×)",
        sa / pa,
        s1 / p1
    );

    // The new panels open over the same 200-node canvas: the Models window (four LoRA files
    // and a checkpoint folder in the model folder, listed and searched; the scan runs on a
    // thread) and the shortcuts sheet, against the plain canvas in the same run.
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/sd");
    let loras = home.path().join("models").join("loras");
    std::fs::create_dir_all(&loras).expect("models folder");
    for f in ["kohya_a", "kohya_b", "peft", "locon"] {
        let name = format!("{f}.safetensors");
        std::fs::copy(fixtures.join("lora").join(&name), loras.join(&name)).expect("copy LoRA");
    }
    let mut open_rows = Vec::new();
    let mut closed_rows = Vec::new();
    for round in 1..=3 {
        load(&mut h, &graph, false);
        if let Some(app) = h.state_mut().as_mut() {
            app.models.open = false;
            app.shortcuts_open = false;
        }
        closed_rows.push(measure(
            &mut h,
            &format!("no window, view at 100% ({round})"),
        ));
        if let Some(app) = h.state_mut().as_mut() {
            app.push(studio::app::AppCommand::Models(
                studio::app::models::ModelsCommand::Open,
            ));
            app.shortcuts_open = true;
        }
        let start = Instant::now();
        while h
            .state()
            .as_ref()
            .is_some_and(|a| a.models.entries.is_none())
            && start.elapsed().as_secs() < 60
        {
            h.step();
        }
        open_rows.push(measure(
            &mut h,
            &format!("Models window + shortcuts sheet open ({round})"),
        ));
    }
    let (o, c) = (median(&mut open_rows), median(&mut closed_rows));
    println!(
        "with the Models window and the shortcuts sheet open: {o:.2} ms vs {c:.2} ms without          (median of the rounds' medians; target < 8 ms)"
    );
}
