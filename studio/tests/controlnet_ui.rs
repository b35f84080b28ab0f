//! The ControlNet ports in the editor: LoadControlNet → ControlNet → Txt2Img's `control`
//! connect through the inspector, and a value of another type offered to `control` (an image,
//! or the loaded net itself) is refused with a reason, leaving the link that was there.

mod common;
use common::*;

use egui::accesskit::Role;
use egui::{Key, Modifiers};
use egui_kittest::kittest::Queryable;

/// File → New, then the given kinds added from the add-node menu (Shift+A). The menu lists
/// categories as labels, so the kind is picked as a button ("ControlNet" is both).
fn with_nodes(kinds: &[&str]) -> H {
    let mut h = harness();
    h.run_steps(3);
    h.get_by_label("File").click();
    h.run_steps(2);
    h.get_by_label("New").click();
    h.run_steps(2);
    for kind in kinds {
        h.key_press_modifiers(Modifiers::SHIFT, Key::A);
        h.run_steps(2);
        h.get_by_role_and_label(Role::Button, kind).click();
        h.run_steps(3);
    }
    h
}

/// Picks `source` for input `input` of the node whose title is `title`, in the inspector.
fn connect(h: &mut H, title: &str, input: &str, source: &str) {
    h.get_all_by_label(title).next().unwrap().click_accesskit();
    h.run_steps(2);
    h.get_by_label(input).click();
    h.run_steps(2);
    h.get_by_label(source).click();
    h.run_steps(3);
}

fn links(h: &mut H) -> Vec<(String, String)> {
    doc(h)
        .links
        .iter()
        .map(|l| (l.from.to_string(), l.to.to_string()))
        .collect()
}

#[test]
fn controlnet_ports_connect_and_wrong_types_are_refused() {
    let mut h = with_nodes(&["LoadControlNet", "LoadImage", "ControlNet", "Txt2Img"]);
    let d = doc(&mut h);
    let mut ids: Vec<&str> = d.nodes.keys().map(String::as_str).collect();
    ids.sort();
    assert_eq!(
        ids,
        ["controlnet", "loadcontrolnet", "loadimage", "txt2img"]
    );
    connect(
        &mut h,
        "ControlNet",
        "controlnet (ControlNet)",
        "loadcontrolnet.controlnet (ControlNet)",
    );
    connect(
        &mut h,
        "ControlNet",
        "image (Image)",
        "loadimage.image (Image)",
    );
    connect(
        &mut h,
        "Txt2Img",
        "control (Control)",
        "controlnet.control (Control)",
    );
    let want = [
        ("controlnet.control", "txt2img.control"),
        ("loadcontrolnet.controlnet", "controlnet.controlnet"),
        ("loadimage.image", "controlnet.image"),
    ];
    let mut got = links(&mut h);
    got.sort();
    assert_eq!(
        got,
        want.map(|(a, b)| (a.to_string(), b.to_string())),
        "{got:?}"
    );
    // An image offered to the sampler's control input is refused, with the reason.
    connect(
        &mut h,
        "Txt2Img",
        "control (Control)",
        "loadimage.image (Image)",
    );
    h.get_by_label_contains("types differ");
    h.get_by_label_contains("txt2img.control (Control)");
    // So is the loaded net itself: it must go through a ControlNet node.
    connect(
        &mut h,
        "Txt2Img",
        "control (Control)",
        "loadcontrolnet.controlnet (ControlNet)",
    );
    h.get_by_label_contains("(ControlNet) to txt2img.control (Control)");
    let mut after = links(&mut h);
    after.sort();
    assert_eq!(after, got, "a refused link leaves the links as they were");
}
