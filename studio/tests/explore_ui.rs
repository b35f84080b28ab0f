//! The Explore window driven through egui_kittest on a synthetic view: box and lasso
//! selection (checked against the points' own coordinates), shift/ctrl to add and remove, and
//! the commands for tagging, a query and exporting the selection.

use std::collections::BTreeSet;
use std::path::PathBuf;

use egui::{Key, Modifiers, Pos2, Rect};
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use engine::dataset::Format;
use studio::app::explore::{ExploreCommand, ExplorePanel, ExploreView};
use studio::app::{Settings, StudioApp};

struct State {
    panel: ExplorePanel,
    cmds: Vec<ExploreCommand>,
}

const N: usize = 400;

fn harness() -> Harness<'static, State> {
    let mut panel = ExplorePanel::default();
    panel.set_view(ExploreView::demo(N, 5)).unwrap();
    assert!(panel.set_color_by(Some("label")));
    let mut h = Harness::builder()
        .with_size([1400.0, 900.0])
        .build_ui_state(
            |ui, s: &mut State| {
                let c = s.panel.explore_ui(ui);
                s.cmds.extend(c);
            },
            State {
                panel,
                cmds: Vec::new(),
            },
        );
    h.run_steps(3);
    h
}

/// Map coordinates of a screen point, from the camera's documented convention (scale screen
/// points per map unit about the plot's centre, map y up), written out here on its own.
fn to_map(h: &Harness<'static, State>, p: Pos2) -> [f32; 2] {
    let (cam, rect) = h.state().panel.camera();
    [
        cam.center[0] + (p.x - rect.center().x) / cam.scale,
        cam.center[1] - (p.y - rect.center().y) / cam.scale,
    ]
}

fn plot_rect(h: &Harness<'static, State>) -> Rect {
    h.state().panel.camera().1
}

/// Drags with the primary button through `path` (one frame per point), with `modifiers` held.
fn drag(h: &mut Harness<'static, State>, path: &[Pos2], modifiers: Modifiers) {
    drag_with(h, path, modifiers, egui::PointerButton::Primary);
}

fn drag_with(
    h: &mut Harness<'static, State>,
    path: &[Pos2],
    modifiers: Modifiers,
    button: egui::PointerButton,
) {
    h.event(egui::Event::ModifiersChanged(modifiers));
    h.event(egui::Event::PointerMoved(path[0]));
    h.step();
    h.event(egui::Event::PointerButton {
        pos: path[0],
        button,
        pressed: true,
        modifiers,
    });
    h.step();
    for p in &path[1..] {
        h.hover_at(*p);
        h.step();
    }
    let end = *path.last().unwrap();
    h.event(egui::Event::PointerButton {
        pos: end,
        button,
        pressed: false,
        modifiers,
    });
    h.step();
    h.event(egui::Event::ModifiersChanged(Modifiers::NONE));
    h.event(egui::Event::PointerGone);
    h.run_steps(2);
}

/// Ids of the items whose map coordinates lie inside the screen box from `a` to `b`.
fn ids_in_box(h: &Harness<'static, State>, a: Pos2, b: Pos2) -> BTreeSet<u64> {
    let (p, q) = (to_map(h, a), to_map(h, b));
    let (x0, x1) = (p[0].min(q[0]), p[0].max(q[0]));
    let (y0, y1) = (p[1].min(q[1]), p[1].max(q[1]));
    let v = h.state().panel.view();
    v.ids
        .iter()
        .zip(&v.xy)
        .filter(|(_, c)| c[0] >= x0 && c[0] <= x1 && c[1] >= y0 && c[1] <= y1)
        .map(|(id, _)| *id)
        .collect()
}

fn selected(h: &Harness<'static, State>) -> BTreeSet<u64> {
    h.state().panel.selected_ids().into_iter().collect()
}

/// Two boxes over different parts of the map.
fn boxes(h: &Harness<'static, State>) -> [(Pos2, Pos2); 2] {
    let r = plot_rect(h);
    let at = |fx: f32, fy: f32| Pos2::new(r.left() + fx * r.width(), r.top() + fy * r.height());
    [(at(0.45, 0.2), at(0.95, 0.6)), (at(0.1, 0.4), at(0.6, 0.9))]
}

#[test]
fn a_box_selects_exactly_the_points_inside_it() {
    let mut h = harness();
    let (a, b) = boxes(&h)[0];
    let expected = ids_in_box(&h, a, b);
    assert!(
        expected.len() > 20 && expected.len() < N - 20,
        "{}",
        expected.len()
    );
    let mid = a + (b - a) * 0.5;
    drag(&mut h, &[a, mid, b], Modifiers::NONE);
    assert_eq!(selected(&h), expected);
    // The grid shows them.
    h.get_by_label_contains(&format!("Selection: {}", expected.len()));
}

#[test]
fn shift_adds_and_ctrl_removes() {
    let mut h = harness();
    let [(a, b), (c, d)] = boxes(&h);
    let first = ids_in_box(&h, a, b);
    let second = ids_in_box(&h, c, d);
    assert!(!first.is_disjoint(&second) && first != second);
    let rect = plot_rect(&h);
    drag(&mut h, &[a, a + (b - a) * 0.5, b], Modifiers::NONE);
    // Selecting must not move the map (the boxes were computed before).
    assert_eq!(plot_rect(&h), rect);
    drag(&mut h, &[c, c + (d - c) * 0.5, d], Modifiers::SHIFT);
    assert_eq!(selected(&h), first.union(&second).copied().collect());
    drag(&mut h, &[c, c + (d - c) * 0.5, d], Modifiers::COMMAND);
    assert_eq!(selected(&h), first.difference(&second).copied().collect());
}

/// Even-odd rule, written independently of the window's.
fn in_polygon(p: [f32; 2], poly: &[[f32; 2]]) -> bool {
    let mut crossings = 0;
    for k in 0..poly.len() {
        let (a, b) = (poly[k], poly[(k + 1) % poly.len()]);
        if (a[1] <= p[1]) != (b[1] <= p[1]) {
            let t = (p[1] - a[1]) / (b[1] - a[1]);
            if a[0] + t * (b[0] - a[0]) > p[0] {
                crossings += 1;
            }
        }
    }
    crossings % 2 == 1
}

#[test]
fn a_lasso_selects_exactly_the_points_inside_it() {
    let mut h = harness();
    h.get_by_label("Lasso").click();
    h.run_steps(2);
    let r = plot_rect(&h);
    let c = r.center();
    // A concave star around the map's centre.
    let path: Vec<Pos2> = (0..20)
        .map(|k| {
            let t = k as f32 / 20.0 * std::f32::consts::TAU;
            let rad = if k % 2 == 0 { 0.42 } else { 0.2 } * r.height();
            Pos2::new(c.x + rad * t.cos(), c.y + rad * t.sin())
        })
        .collect();
    let poly: Vec<[f32; 2]> = path.iter().map(|p| to_map(&h, *p)).collect();
    let v = h.state().panel.view();
    let expected: BTreeSet<u64> = v
        .ids
        .iter()
        .zip(&v.xy)
        .filter(|(_, xy)| in_polygon(**xy, &poly))
        .map(|(id, _)| *id)
        .collect();
    assert!(
        expected.len() > 20 && expected.len() < N - 20,
        "{}",
        expected.len()
    );
    drag(&mut h, &path, Modifiers::NONE);
    assert_eq!(selected(&h), expected);
}

#[test]
fn select_tag_query_and_export_emit_the_commands() {
    let mut h = harness();
    let (a, b) = boxes(&h)[0];
    drag(&mut h, &[a, a + (b - a) * 0.5, b], Modifiers::NONE);
    let ids = h.state().panel.selected_ids();
    assert!(!ids.is_empty());
    h.state_mut().cmds.clear();

    h.get_by_label("Tag").focus();
    h.step();
    h.get_by_label("Tag").type_text("reviewed");
    h.step();
    h.get_by_label("Add tag").click();
    h.run_steps(2);
    let tagged: Vec<_> = h
        .state()
        .cmds
        .iter()
        .filter(|c| matches!(c, ExploreCommand::Tag { .. }))
        .cloned()
        .collect();
    assert_eq!(
        tagged,
        vec![ExploreCommand::Tag {
            ids: ids.clone(),
            tag: "reviewed".into()
        }]
    );

    h.get_by_label("Query").focus();
    h.step();
    h.get_by_label("Query")
        .type_text("label:scratch AND NOT source:imported");
    h.step();
    h.key_press(Key::Enter);
    h.run_steps(2);
    assert!(
        h.state().cmds.contains(&ExploreCommand::Query(
            "label:scratch AND NOT source:imported".into()
        )),
        "{:?}",
        h.state().cmds
    );

    h.get_by_label("Folder").focus();
    h.step();
    h.get_by_label("Folder").type_text("/tmp/explore-export");
    h.step();
    h.get_by_label("Export").click();
    h.run_steps(2);
    let export: Vec<_> = h
        .state()
        .cmds
        .iter()
        .filter(|c| matches!(c, ExploreCommand::ExportSelection { .. }))
        .cloned()
        .collect();
    assert_eq!(
        export,
        vec![ExploreCommand::ExportSelection {
            ids,
            format: Format::Folder,
            dir: PathBuf::from("/tmp/explore-export"),
        }]
    );
}

#[test]
fn hovering_a_point_asks_for_its_thumbnail() {
    let mut h = harness();
    let (cam, rect) = h.state().panel.camera();
    let xy = h.state().panel.view().xy[17];
    let id = h.state().panel.view().ids[17];
    let at = Pos2::new(
        rect.center().x + (xy[0] - cam.center[0]) * cam.scale,
        rect.center().y - (xy[1] - cam.center[1]) * cam.scale,
    );
    h.hover_at(at);
    h.run_steps(2);
    let hovered = h
        .state()
        .panel
        .hovered()
        .expect("a point under the pointer");
    let hid = h.state().panel.view().ids[hovered];
    // The nearest point may be another one at the same spot; it is within the pick radius.
    let hxy = h.state().panel.view().xy[hovered];
    assert!(
        (hxy[0] - xy[0]).hypot(hxy[1] - xy[1]) * cam.scale <= 6.0,
        "{hid} vs {id}"
    );
    assert!(h
        .state()
        .cmds
        .iter()
        .any(|c| matches!(c, ExploreCommand::WantThumbnails(v) if v.contains(&hid))));
}

#[test]
fn the_demo_window_opens_and_the_app_answers_thumbnail_requests() {
    let home = tempfile::tempdir().unwrap();
    std::env::set_var("DEFECT_STUDIO_HOME", home.path());
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
    h.run_steps(3);
    // (The menu path onto a real store is studio/tests/explore_app.rs.)
    h.state_mut().as_mut().unwrap().open_explore_demo();
    h.run_steps(3);
    let ids: Vec<u64> = {
        let app = h.state_mut().as_mut().unwrap();
        assert!(app.explore.open);
        assert!(!app.explore.view().is_empty());
        let ids = app.explore.view().ids[..3].to_vec();
        assert!(ids.iter().all(|id| app.explore.thumbnail(*id).is_none()));
        app.explore.select_ids(&ids);
        ids
    };
    h.get_by_label("map");
    h.run_steps(4);
    // The grid asked for the selected items' thumbnails and the app put them in.
    let app = h.state().as_ref().unwrap();
    assert!(ids.iter().all(|id| app.explore.thumbnail(*id).is_some()));
    assert_eq!(app.explore.selected_ids(), ids);
}

#[test]
fn in_3d_a_drag_orbits_and_a_right_drag_selects_what_is_on_screen_in_the_box() {
    let mut h = harness();
    h.get_by_label("3D").click();
    h.run_steps(2);
    let before = h.state().panel.orbit();
    let r = plot_rect(&h);
    drag(
        &mut h,
        &[
            r.center(),
            r.center() + egui::vec2(60.0, 20.0),
            r.center() + egui::vec2(120.0, 30.0),
        ],
        Modifiers::NONE,
    );
    let after = h.state().panel.orbit();
    assert!(
        after.yaw > before.yaw && after.pitch > before.pitch,
        "{before:?} → {after:?}"
    );
    assert!(
        h.state().panel.selected_ids().is_empty(),
        "a left drag in 3D rotates only"
    );
    // The expected points: projected with the camera now shown, inside the box.
    let (a, b) = (
        r.center() - egui::vec2(150.0, 120.0),
        r.center() + egui::vec2(40.0, 60.0),
    );
    let v = h.state().panel.view();
    let cloud = studio::app::explore::orbit::Cloud::new(v.xyz.as_ref().unwrap());
    let boxed = Rect::from_two_pos(a, b);
    let expected: BTreeSet<u64> = cloud
        .points
        .iter()
        .zip(&v.ids)
        .filter(|(p, _)| boxed.contains(after.project(r, **p).0))
        .map(|(_, id)| *id)
        .collect();
    assert!(
        expected.len() > 20 && expected.len() < N - 20,
        "{}",
        expected.len()
    );
    drag_with(
        &mut h,
        &[a, a + (b - a) * 0.5, b],
        Modifiers::NONE,
        egui::PointerButton::Secondary,
    );
    assert_eq!(h.state().panel.orbit(), after);
    assert_eq!(selected(&h), expected);
    // Back in 2D the selection is the same.
    h.get_by_label("2D").click();
    h.run_steps(2);
    assert_eq!(selected(&h), expected);
}

#[test]
fn the_grid_inspects_a_click_and_picks_with_ctrl_and_actions_follow_the_picks() {
    let mut h = harness();
    let ids: Vec<u64> = h.state().panel.view().ids[10..14].to_vec();
    h.state_mut().panel.select_ids(&ids);
    h.run_steps(2);
    let name = |h: &Harness<'static, State>, id: u64| {
        let v = h.state().panel.view();
        v.name(v.ids.iter().position(|x| *x == id).unwrap())
    };
    let (second, third) = (name(&h, ids[1]), name(&h, ids[2]));
    h.get_by_label(&second).click();
    h.run_steps(2);
    // The inspector shows the item's id and its tags.
    h.get_by_label(&format!("item #{}", ids[1]));
    let tags = {
        let v = h.state().panel.view();
        v.tags_of(v.ids.iter().position(|x| *x == ids[1]).unwrap())
            .to_vec()
    };
    for t in &tags {
        h.get_by_label(t);
    }
    h.get_by_label_contains("on the 1 item(s) picked in the grid");
    h.get_by_label(&third).click_modifiers(Modifiers::COMMAND);
    h.run_steps(2);
    h.get_by_label_contains("on the 2 item(s) picked in the grid");
    h.get_by_label("Tag").focus();
    h.step();
    h.get_by_label("Tag").type_text("keep");
    h.step();
    h.state_mut().cmds.clear();
    h.get_by_label("Add tag").click();
    h.run_steps(2);
    let mut picked = vec![ids[1], ids[2]];
    picked.sort();
    let tagged: Vec<_> = h
        .state()
        .cmds
        .iter()
        .filter_map(|c| match c {
            ExploreCommand::Tag { ids, tag } => Some((ids.clone(), tag.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(tagged.len(), 1, "{:?}", h.state().cmds);
    let mut got = tagged[0].0.clone();
    got.sort();
    assert_eq!((got, tagged[0].1.as_str()), (picked, "keep"));
    // The selection itself is unchanged.
    assert_eq!(h.state().panel.selected_ids(), ids);
}

#[test]
fn colouring_by_a_number_shows_its_range_and_coverage_lists_the_uncovered() {
    let mut view = ExploreView::demo(N, 5);
    let uncovered = vec![view.ids[3], view.ids[7]];
    view.coverage = Some(studio::app::explore::CoverageReadout {
        real_query: "source:imported".into(),
        synthetic_query: "source:generated".into(),
        real_count: 160,
        synthetic_count: 240,
        k: 3,
        precision: 0.8125,
        recall: 0.6875,
        kid: 0.0123,
        kid_se: 0.0045,
        uncovered: uncovered.clone(),
    });
    let mut h = harness();
    h.state_mut().panel.set_view(view.clone()).unwrap();
    assert!(h.state_mut().panel.set_color_by(Some("area")));
    h.run_steps(2);
    let area = match &view.columns.iter().find(|(n, _)| n == "area").unwrap().1 {
        studio::app::explore::Column::Number(v) => v.clone(),
        _ => unreachable!(),
    };
    let max = area.iter().copied().fold(f32::MIN, f32::max);
    h.get_by_label(&format!("{max:.0}"));
    h.get_by_label("0.812");
    h.get_by_label("0.688");
    h.get_by_label("0.0123 ± 0.0045");
    h.get_by_label_contains("2 real item(s) not covered");
    h.get_by_label("Select the uncovered items").click();
    h.run_steps(2);
    assert_eq!(h.state().panel.selected_ids(), uncovered);
    h.state_mut().cmds.clear();
    h.get_by_label("Compute coverage").click();
    h.run_steps(2);
    assert!(h.state().cmds.contains(&ExploreCommand::Coverage {
        real: "source:imported".into(),
        synthetic: "source:generated".into(),
    }));
}
