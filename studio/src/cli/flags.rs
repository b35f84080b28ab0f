//! Command-line flags made from node parameters: a command that builds a recipe (`generate`,
//! `remove-bg`) gets one flag per parameter of the node kinds it uses, named as the parameter
//! (`mask_blur` → `--mask-blur`), documented by the parameter's doc, and with no default of its
//! own: an omitted flag leaves the parameter out of the recipe, so the node's default applies.
//! The catalogue stays the one source of every name, range and default.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use anyhow::{anyhow, Result};
use clap::{Arg, ArgAction, ArgMatches, Command};
use nodes::{NodeSpec, ParamKind, ParamSpec, ParamValue};

/// Which node kinds a command's flags come from, and which of their parameters are not flags.
pub trait FlagSet {
    /// The node kinds, in the order their parameters are listed in `--help`.
    fn specs() -> Vec<&'static NodeSpec>;
    /// Parameters that are not flags (they come from other arguments, or make no sense here).
    fn skip() -> &'static [&'static str];
    /// Flag names that must be given.
    fn required() -> &'static [&'static str] {
        &[]
    }
    /// Extra (hidden) spellings of a flag, by parameter name.
    fn aliases(_param: &str) -> &'static [&'static str] {
        &[]
    }
}

/// The raw values of the parameter flags that were given, by parameter name.
#[derive(Debug, Clone)]
pub struct ParamFlags<S> {
    pub values: BTreeMap<String, String>,
    set: PhantomData<S>,
}

impl<S: FlagSet> ParamFlags<S> {
    /// The parameters that have a flag, each once (the first kind declaring a name wins), in
    /// the order of [`FlagSet::specs`].
    pub fn params() -> Vec<&'static ParamSpec> {
        let mut seen = std::collections::BTreeSet::new();
        S::specs()
            .into_iter()
            .flat_map(|s| s.params.iter())
            .filter(|p| !S::skip().contains(&p.name) && seen.insert(p.name))
            .collect()
    }

    /// The flag of a parameter: `--mask-blur` for `mask_blur`.
    pub fn flag(param: &str) -> String {
        format!("--{}", param.replace('_', "-"))
    }

    /// The given value of `param`, parsed by `spec` (the kind of the node it goes to), with an
    /// error naming the flag.
    pub fn parse(&self, spec: &ParamSpec) -> Result<Option<ParamValue>> {
        let Some(raw) = self.values.get(spec.name) else {
            return Ok(None);
        };
        spec.parse_value(raw)
            .map(Some)
            .map_err(|m| anyhow!("{} {raw}: {m}", Self::flag(spec.name)))
    }
}

fn arg_for(p: &'static ParamSpec, required: bool, aliases: &'static [&'static str]) -> Arg {
    let long = p.name.replace('_', "-");
    let help = format!("{} [node default: {}]", p.doc, p.default_value().to_json());
    let arg = Arg::new(p.name)
        .long(long)
        .help(help)
        .required(required)
        .action(ArgAction::Set)
        .aliases(aliases.iter().copied());
    match &p.kind {
        // `--only-masked` alone means true; `--only-masked false` is accepted too.
        ParamKind::Bool { .. } => arg
            .num_args(0..=1)
            .default_missing_value("true")
            .value_name("BOOL"),
        ParamKind::Int { .. } | ParamKind::Float { .. } => {
            arg.allow_negative_numbers(true).value_name("N")
        }
        ParamKind::Choice { .. } => arg.value_name("CHOICE"),
        _ => arg.value_name("TEXT"),
    }
}

impl<S: FlagSet> clap::FromArgMatches for ParamFlags<S> {
    fn from_arg_matches(m: &ArgMatches) -> std::result::Result<Self, clap::Error> {
        let mut f = ParamFlags {
            values: BTreeMap::new(),
            set: PhantomData,
        };
        f.update_from_arg_matches(m)?;
        Ok(f)
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> std::result::Result<(), clap::Error> {
        for p in Self::params() {
            if let Some(v) = m.get_one::<String>(p.name) {
                self.values.insert(p.name.to_string(), v.clone());
            }
        }
        Ok(())
    }
}

impl<S: FlagSet> clap::Args for ParamFlags<S> {
    fn augment_args(mut cmd: Command) -> Command {
        for p in Self::params() {
            cmd = cmd.arg(arg_for(
                p,
                S::required().contains(&p.name),
                S::aliases(p.name),
            ));
        }
        cmd
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}
