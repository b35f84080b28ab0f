//! Migration of older graph documents to the current [`crate::VERSION`].
//!
//! Each [`DocMigration`] rewrites the raw JSON of version `from` into version `from + 1`;
//! [`migrate`] applies them in order. Version 1 is the first published format, so
//! [`DOC_MIGRATIONS`] is empty until the format changes; the mechanism is tested with its own
//! steps.

use crate::error::NodesError;

/// One step: turns a version-`from` document into a version-`from + 1` one.
pub struct DocMigration {
    pub from: u32,
    pub describe: &'static str,
    pub apply: fn(&mut serde_json::Value) -> Result<(), String>,
}

/// The migrations of the shipped format, oldest first.
pub const DOC_MIGRATIONS: &[DocMigration] = &[];

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
