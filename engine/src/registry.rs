//! Executors by kind name: the [`Registry`] the [`crate::Executor`] looks kinds up in.
//!
//! A kind is registered typed ([`Registry::register_typed`]): its executor receives one
//! parameter struct deserialised from the node's effective parameters (see [`nodes::typed`]),
//! and the registry keeps a check that the catalogue spec's defaults deserialise into that
//! struct, so a parameter renamed on one side fails a test instead of a user. The built-in
//! kinds are registered in `kinds` ([`Registry::builtin`]); see docs/ARCHITECTURE.md.

use std::collections::HashMap;
use std::sync::Arc;

use nodes::NodeSpec;
use serde::de::DeserializeOwned;

use crate::error::Result;
use crate::exec::NodeCtx;
use crate::value::Outputs;

/// A node kind's implementation.
pub type NodeFn = Arc<dyn Fn(&mut NodeCtx) -> Result<Outputs> + Send + Sync>;

/// Checks a kind's parameter struct against its spec (see [`nodes::typed::check_defaults`]).
type ParamCheck = fn(&NodeSpec) -> std::result::Result<(), String>;

/// Executors by kind name.
#[derive(Clone, Default)]
pub struct Registry {
    map: HashMap<String, NodeFn>,
    checks: HashMap<String, ParamCheck>,
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Registers an executor that reads its parameters itself (tests' fake kinds).
    pub fn register(
        &mut self,
        kind: &str,
        f: impl Fn(&mut NodeCtx) -> Result<Outputs> + Send + Sync + 'static,
    ) {
        self.checks.remove(kind);
        self.map.insert(kind.to_string(), Arc::new(f));
    }

    /// Registers an executor that takes its parameters as one struct `P`, deserialised from the
    /// node's effective parameters, and records the check that the spec's defaults fit `P`.
    pub fn register_typed<P, F>(&mut self, kind: &str, f: F)
    where
        P: DeserializeOwned + 'static,
        F: Fn(&mut NodeCtx, P) -> Result<Outputs> + Send + Sync + 'static,
    {
        self.map.insert(
            kind.to_string(),
            Arc::new(move |ctx: &mut NodeCtx| {
                let p = ctx.params::<P>()?;
                f(ctx, p)
            }),
        );
        self.checks
            .insert(kind.to_string(), nodes::typed::check_defaults::<P>);
    }

    pub fn get(&self, kind: &str) -> Option<&NodeFn> {
        self.map.get(kind)
    }

    pub fn contains(&self, kind: &str) -> bool {
        self.map.contains_key(kind)
    }

    /// Whether `kind` was registered with a typed parameter struct.
    pub fn is_typed(&self, kind: &str) -> bool {
        self.checks.contains_key(kind)
    }

    /// For a typed kind, whether the spec's default parameters deserialise into its parameter
    /// struct (the error names the parameter); `None` for a kind registered untyped or not at
    /// all.
    pub fn check_params(&self, spec: &NodeSpec) -> Option<std::result::Result<(), String>> {
        self.checks.get(spec.kind).map(|check| check(spec))
    }
}
