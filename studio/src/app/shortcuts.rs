//! Keyboard shortcuts: one table, [`SHORTCUTS`], binds the keys ([`pressed`]) and makes the
//! shortcuts sheet ([`shortcuts_ui`], opened with F1 or `?`), so the sheet lists exactly the
//! keys that work and a new binding shows up in it by being added to the table.

use egui::{Key, KeyboardShortcut, Modifiers};

/// Where a shortcut works.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The main window, when no text field has the keyboard and the painter is closed.
    Graph,
    /// The mask painter.
    Painter,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Scope::Graph => "Graph editor",
            Scope::Painter => "Mask painter",
        }
    }
}

/// What a shortcut does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Undo,
    Redo,
    Save,
    Open,
    New,
    Library,
    Models,
    History,
    Run,
    Delete,
    FrameAll,
    MakeSubgraph,
    Duplicate,
    Copy,
    Paste,
    AddNode,
    Shortcuts,
    BrushSmaller,
    BrushLarger,
    ToggleEraser,
    ToolBrush,
    ToolRectangle,
    ToolEllipse,
    ToolLasso,
    /// Close the lasso polygon being clicked.
    CloseShape,
    /// Drop the shape being drawn.
    CancelShape,
}

/// How the key reaches us: as a key press, or as the clipboard event egui makes of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    Key,
    /// egui turns Ctrl+C into [`egui::Event::Copy`].
    CopyEvent,
    /// egui turns Ctrl+V into [`egui::Event::Paste`].
    PasteEvent,
}

/// One binding.
#[derive(Clone, Copy, Debug)]
pub struct Shortcut {
    pub scope: Scope,
    pub mods: Modifiers,
    pub key: Key,
    pub action: Action,
    pub via: Via,
    /// What it does, for the sheet.
    pub what: &'static str,
}

const fn bind(
    scope: Scope,
    mods: Modifiers,
    key: Key,
    action: Action,
    what: &'static str,
) -> Shortcut {
    Shortcut {
        scope,
        mods,
        key,
        action,
        via: Via::Key,
        what,
    }
}

const CMD: Modifiers = Modifiers::COMMAND;
const CMD_SHIFT: Modifiers = Modifiers {
    shift: true,
    ..Modifiers::COMMAND
};
const NONE: Modifiers = Modifiers::NONE;
const G: Scope = Scope::Graph;
const P: Scope = Scope::Painter;

/// Every binding. Order matters where one binding's keys include another's: egui matches
/// `Ctrl+Z` on `Ctrl+Shift+Z` too, so the longer one comes first.
pub const SHORTCUTS: &[Shortcut] = &[
    bind(G, CMD_SHIFT, Key::Z, Action::Redo, "Redo"),
    bind(G, CMD, Key::Z, Action::Undo, "Undo"),
    bind(G, CMD, Key::Y, Action::Redo, "Redo"),
    bind(G, CMD, Key::S, Action::Save, "Save the graph"),
    bind(
        G,
        CMD,
        Key::O,
        Action::Open,
        "Open a graph, workflow or PNG",
    ),
    bind(G, CMD, Key::N, Action::New, "New graph"),
    bind(G, CMD, Key::L, Action::Library, "Recipe library"),
    bind(
        G,
        CMD,
        Key::M,
        Action::Models,
        "Models: checkpoints, LoRAs, hashes, tags",
    ),
    bind(G, CMD, Key::H, Action::History, "Version history"),
    bind(G, CMD, Key::Enter, Action::Run, "Run the graph"),
    bind(
        G,
        NONE,
        Key::Delete,
        Action::Delete,
        "Delete the selected nodes",
    ),
    bind(G, NONE, Key::F, Action::FrameAll, "Frame all nodes"),
    bind(
        G,
        CMD,
        Key::G,
        Action::MakeSubgraph,
        "Make a subgraph of the selection",
    ),
    bind(G, CMD, Key::D, Action::Duplicate, "Duplicate the selection"),
    Shortcut {
        via: Via::CopyEvent,
        ..bind(G, CMD, Key::C, Action::Copy, "Copy the selection")
    },
    Shortcut {
        via: Via::PasteEvent,
        ..bind(G, CMD, Key::V, Action::Paste, "Paste")
    },
    bind(
        G,
        Modifiers::SHIFT,
        Key::A,
        Action::AddNode,
        "Add a node at the pointer",
    ),
    bind(
        G,
        NONE,
        Key::Tab,
        Action::AddNode,
        "Add a node at the pointer",
    ),
    bind(
        G,
        NONE,
        Key::F1,
        Action::Shortcuts,
        "This list of shortcuts",
    ),
    bind(
        G,
        NONE,
        Key::Questionmark,
        Action::Shortcuts,
        "This list of shortcuts",
    ),
    bind(P, CMD_SHIFT, Key::Z, Action::Redo, "Redo a stroke"),
    bind(P, CMD, Key::Z, Action::Undo, "Undo a stroke"),
    bind(P, CMD, Key::Y, Action::Redo, "Redo a stroke"),
    bind(
        P,
        NONE,
        Key::OpenBracket,
        Action::BrushSmaller,
        "Smaller brush",
    ),
    bind(
        P,
        NONE,
        Key::CloseBracket,
        Action::BrushLarger,
        "Larger brush",
    ),
    bind(P, NONE, Key::X, Action::ToggleEraser, "Paint ↔ erase"),
    bind(P, NONE, Key::B, Action::ToolBrush, "Brush tool"),
    bind(P, NONE, Key::R, Action::ToolRectangle, "Rectangle tool"),
    bind(P, NONE, Key::E, Action::ToolEllipse, "Ellipse tool"),
    bind(P, NONE, Key::L, Action::ToolLasso, "Polygon/lasso tool"),
    bind(P, NONE, Key::Enter, Action::CloseShape, "Close the polygon"),
    bind(
        P,
        NONE,
        Key::Escape,
        Action::CancelShape,
        "Drop the shape being drawn",
    ),
];

impl Shortcut {
    /// The keys as the platform writes them (`Ctrl+Shift+Z`, `⌘Z`, `F1`).
    pub fn label(&self, ctx: &egui::Context) -> String {
        if self.key == Key::Questionmark {
            return "?".into();
        }
        ctx.format_shortcut(&KeyboardShortcut::new(self.mods, self.key))
    }
}

/// The keys bound to `action` in `scope`, for a button's hover text (`Ctrl+Z or Ctrl+Y`).
pub fn keys_of(ctx: &egui::Context, scope: Scope, action: Action) -> String {
    SHORTCUTS
        .iter()
        .filter(|s| s.scope == scope && s.action == action)
        .map(|s| s.label(ctx))
        .collect::<Vec<_>>()
        .join(" or ")
}

/// The actions of `scope` pressed this frame; their keys are consumed, so nothing else sees
/// them.
pub fn pressed(i: &mut egui::InputState, scope: Scope) -> Vec<Action> {
    let mut out = Vec::new();
    for s in SHORTCUTS.iter().filter(|s| s.scope == scope) {
        let hit = match s.via {
            Via::Key => i.consume_shortcut(&KeyboardShortcut::new(s.mods, s.key)),
            Via::CopyEvent => i.events.iter().any(|e| matches!(e, egui::Event::Copy)),
            Via::PasteEvent => i.events.iter().any(|e| matches!(e, egui::Event::Paste(_))),
        };
        if hit && !out.contains(&s.action) {
            out.push(s.action);
        }
    }
    out
}

/// The shortcuts sheet: every binding of the table, by scope.
pub fn shortcuts_ui(ctx: &egui::Context, open: &mut bool) {
    let mut still_open = *open;
    egui::Window::new("Keyboard shortcuts")
        .open(&mut still_open)
        .collapsible(false)
        .resizable(false)
        .show(ctx, |ui| {
            for scope in [Scope::Graph, Scope::Painter] {
                ui.heading(scope.name());
                egui::Grid::new(("shortcuts", scope.name()))
                    .num_columns(2)
                    .striped(true)
                    .show(ui, |ui| {
                        for s in SHORTCUTS.iter().filter(|s| s.scope == scope) {
                            ui.monospace(s.label(ctx));
                            ui.label(s.what);
                            ui.end_row();
                        }
                    });
                ui.add_space(6.0);
            }
        });
    if ctx.input(|i| i.key_pressed(Key::Escape)) {
        still_open = false;
    }
    *open = still_open;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A binding that another binding of the same scope shadows would never fire.
    #[test]
    fn no_binding_is_shadowed() {
        for (i, a) in SHORTCUTS.iter().enumerate() {
            for b in &SHORTCUTS[..i] {
                if a.scope == b.scope && a.key == b.key && a.via == b.via {
                    let shadowed = a.mods.matches_logically(b.mods);
                    assert!(
                        !shadowed,
                        "{:?} {:?}+{:?} is shadowed by {:?}",
                        a.action, a.mods, a.key, b.action
                    );
                }
            }
        }
    }
}
