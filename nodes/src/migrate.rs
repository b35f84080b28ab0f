//! Migration of older graph documents to the current [`crate::VERSION`].
//!
//! Each [`DocMigration`] rewrites the raw JSON of version `from` into version `from + 1`;
//! [`migrate`] applies them in order. Version 1 is the first published format; version 2 added
//! only optional sections, so its step changes nothing but the version number.
//!
//! Node kinds have versions of their own (`kind@version`): when a kind's parameters or defaults
//! change, its version goes up and a [`NodeMigration`] rewrites older nodes so that they keep
//! giving the result they gave (for example by writing the old default explicitly).

use crate::error::NodesError;

/// One step: turns a version-`from` document into a version-`from + 1` one.
pub struct DocMigration {
    pub from: u32,
    pub describe: &'static str,
    pub apply: fn(&mut serde_json::Value) -> Result<(), String>,
}

/// The migrations of the shipped format, oldest first.
pub const DOC_MIGRATIONS: &[DocMigration] = &[DocMigration {
    from: 1,
    describe: "version 2 added subgraph definitions, param_inputs and frames (all optional)",
    apply: |_| Ok(()),
}];

/// One node kind's step: rewrites the parameters of a `kind@from` node into `kind@(from + 1)`.
pub struct NodeMigration {
    pub kind: &'static str,
    pub from: u32,
    pub describe: &'static str,
    pub apply: fn(&mut serde_json::Map<String, serde_json::Value>),
}

/// The node migrations of the shipped kinds, oldest first.
pub const NODE_MIGRATIONS: &[NodeMigration] = &[
    NodeMigration {
        kind: "Img2Img",
        from: 1,
        describe: "strength's default became diffusers' 0.8 (was 0.75)",
        apply: |p| {
            p.entry("strength").or_insert(serde_json::json!(0.75));
        },
    },
    NodeMigration {
        kind: "Inpaint",
        from: 1,
        describe: "defaults became diffusers' (mask_blur 0, no paste-back; were 4 and on)",
        apply: |p| {
            p.entry("mask_blur").or_insert(serde_json::json!(4.0));
            p.entry("paste_back").or_insert(serde_json::json!(true));
        },
    },
];

/// Brings every node of a raw document up to the newest version `steps` know for its kind,
/// the nodes inside its subgraph `definitions` too. Nodes of unknown kinds or without a step
/// are left alone (validation reports them). Returns the keys of the definitions whose nodes
/// changed: their content hash changed, so [`crate::GraphDoc::from_json`] re-keys them.
pub fn migrate_nodes(value: &mut serde_json::Value, steps: &[NodeMigration]) -> Vec<String> {
    migrate_node_map(value, steps);
    let mut changed = Vec::new();
    if let Some(defs) = value.get_mut("definitions").and_then(|d| d.as_object_mut()) {
        for (key, def) in defs.iter_mut() {
            if migrate_node_map(def, steps) {
                changed.push(key.clone());
            }
        }
    }
    changed
}

/// [`migrate_nodes`] for one `nodes` map (of a document or a definition); true when a node
/// changed.
fn migrate_node_map(value: &mut serde_json::Value, steps: &[NodeMigration]) -> bool {
    let mut changed = false;
    let Some(nodes) = value.get_mut("nodes").and_then(|n| n.as_object_mut()) else {
        return false;
    };
    for node in nodes.values_mut() {
        let Some(obj) = node.as_object_mut() else {
            continue;
        };
        let kind = obj
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or_default()
            .to_string();
        let mut version = obj.get("version").and_then(|v| v.as_u64()).unwrap_or(1);
        while let Some(step) = steps
            .iter()
            .find(|m| m.kind == kind && u64::from(m.from) == version)
        {
            let params = obj
                .entry("params")
                .or_insert_with(|| serde_json::Value::Object(Default::default()));
            if let Some(p) = params.as_object_mut() {
                (step.apply)(p);
            }
            version += 1;
            obj.insert("version".into(), serde_json::Value::from(version));
            changed = true;
        }
    }
    changed
}

/// Applies `steps` from version `from` upward, updating the `version` field after each.
pub fn migrate(
    mut value: serde_json::Value,
    from: u32,
    steps: &[DocMigration],
) -> Result<serde_json::Value, NodesError> {
    let mut version = from;
    while version < crate::VERSION {
        let step =
            steps
                .iter()
                .find(|m| m.from == version)
                .ok_or_else(|| NodesError::Migration {
                    from: version,
                    message: format!("no migration from version {version} to {}", version + 1),
                })?;
        (step.apply)(&mut value).map_err(|message| NodesError::Migration {
            from: version,
            message: format!("{}: {message}", step.describe),
        })?;
        version += 1;
        if let Some(obj) = value.as_object_mut() {
            obj.insert("version".into(), serde_json::Value::from(version));
        }
    }
    Ok(value)
}
