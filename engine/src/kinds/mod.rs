//! The executors of the built-in node kinds (declared in `nodes::builtin`), each registered
//! with its typed parameter struct (see [`crate::registry`]): inputs and outputs in [`io`],
//! image operations in [`image`], masks in [`mask`], defect generators in [`defects`], the
//! inspection kinds in [`inspect`]. The
//! Stable Diffusion kinds are registered by `sd::nodes`.

mod control;
mod defects;
mod image;
pub mod inspect;
mod io;
mod mask;
mod values;

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::codec::check_size;
use crate::error::{EngineError, Result};
use crate::exec::{Executor, NodeCtx, DEFAULT_CACHE_BUDGET};
use crate::image::{Image, Mask};
use crate::registry::Registry;
use crate::value::{Outputs, Value};

impl Registry {
    /// The executors of every built-in kind.
    pub fn builtin() -> Registry {
        registry()
    }
}

impl Executor {
    /// The built-in catalogue and executors with the default cache budget.
    pub fn builtin() -> Executor {
        Executor::new(
            nodes::Catalogue::builtin(),
            Registry::builtin(),
            DEFAULT_CACHE_BUDGET,
        )
    }
}

/// Every built-in kind's executor.
fn registry() -> Registry {
    let mut r = Registry::new();
    io::register(&mut r);
    image::register(&mut r);
    mask::register(&mut r);
    defects::register(&mut r);
    inspect::register(&mut r);
    values::register(&mut r);
    control::register(&mut r);
    crate::sd::nodes::register(&mut r);
    crate::sd::control_nodes::register(&mut r);
    r
}

fn outputs(values: impl IntoIterator<Item = (&'static str, Value)>) -> Outputs {
    values.into_iter().collect::<BTreeMap<_, _>>()
}

/// The canvas size: from the image on the optional `like` input, else `width` × `height`.
fn canvas_size(ctx: &NodeCtx, width: u32, height: u32) -> Result<(u32, u32)> {
    if let Some(img) = ctx.opt_image("like")? {
        return Ok((img.width, img.height));
    }
    check_size(width, height).map_err(EngineError::failed)?;
    Ok((width, height))
}

fn same_size(what: &str, image: &Image, mask: &Mask) -> Result<()> {
    if (image.width, image.height) != (mask.width, mask.height) {
        return Err(EngineError::failed(format!(
            "{what}: the mask is {}×{} but the image is {}×{}",
            mask.width, mask.height, image.width, image.height
        )));
    }
    Ok(())
}

/// Deserialises a choice through a `from_name` function of a type this module does not own.
fn by_name<'de, D, T>(
    d: D,
    what: &str,
    parse: fn(&str) -> Option<T>,
) -> std::result::Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let s = String::deserialize(d)?;
    parse(&s)
        .ok_or_else(|| serde::de::Error::custom(format!("unknown {what} {}", nodes::quote(&s))))
}

/// A label parameter: trimmed, `defect` when empty.
fn label_or_defect(label: &str) -> String {
    match label.trim() {
        "" => "defect".to_string(),
        l => l.to_string(),
    }
}
