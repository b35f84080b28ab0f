//! `generate` and `remove-bg` build recipes whose flags come from the node catalogue: every
//! parameter of the node kinds they use has a flag, an omitted flag leaves the parameter out of
//! the recipe (so the node's default applies), and a given one lands on the right node.

use std::path::PathBuf;

use clap::{CommandFactory, Parser};
use nodes::diffusion::{IMG2IMG, INPAINT, LOAD_CHECKPOINT, TXT2IMG};
use nodes::{GraphDoc, ParamKind, ParamSpec, ParamValue};
use studio::cli::flags::{FlagSet, ParamFlags};
use studio::cli::{generate_recipe, remove_bg_recipe, Cli, Command, GenerateFlags, RemoveBgFlags};

fn fixtures() -> PathBuf {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
    dir.join("../tests/fixtures/sd")
}

fn parse(args: &[String]) -> Command {
    let mut all = vec!["defect-studio".to_string()];
    all.extend_from_slice(args);
    Cli::try_parse_from(&all)
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
        .command
        .expect("a subcommand")
}

fn generate(args: &[String]) -> GraphDoc {
    match parse(args) {
        Command::Generate(a) => generate_recipe(&a).unwrap_or_else(|e| panic!("{args:?}: {e:#}")),
        other => panic!("not generate: {other:?}"),
    }
}

/// A value other than the parameter's default, as the user would type it.
fn other_value(p: &ParamSpec) -> String {
    match &p.kind {
        ParamKind::Int { min, max, default } => if default == min { max } else { min }.to_string(),
        ParamKind::Float { min, max, default } => {
            if default == min { max } else { min }.to_string()
        }
        ParamKind::Bool { default } => (!default).to_string(),
        ParamKind::Choice {
            options, default, ..
        } => options
            .iter()
            .find(|o| *o != default)
            .expect("a choice has two options")
            .to_string(),
        _ => "some text".to_string(),
    }
}

/// The arguments that select the sampler kind whose parameter `name` is.
fn context_for(name: &str) -> Vec<String> {
    let init = fixtures().join("inputs/init.png").display().to_string();
    let mask = fixtures().join("inputs/mask.png").display().to_string();
    if TXT2IMG.param(name).is_some() || LOAD_CHECKPOINT.param(name).is_some() {
        vec![]
    } else if IMG2IMG.param(name).is_some() {
        vec!["--init-image".into(), init]
    } else {
        assert!(INPAINT.param(name).is_some(), "{name} belongs to no kind");
        vec!["--init-image".into(), init, "--mask".into(), mask]
    }
}

fn base() -> Vec<String> {
    [
        "generate",
        "--model",
        "m.safetensors",
        "--prompt",
        "p",
        "--out",
        "o.png",
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn every_generate_flag_defaults_to_its_node_parameter() {
    let params = ParamFlags::<GenerateFlags>::params();
    // Every parameter of the four kinds has a flag, but the ones that come from other arguments.
    for spec in GenerateFlags::specs() {
        for p in spec.params {
            assert!(
                GenerateFlags::skip().contains(&p.name) || params.iter().any(|q| q.name == p.name),
                "{}.{} has no flag",
                spec.kind,
                p.name
            );
        }
    }
    assert!(params.len() >= 20, "{} flags", params.len());
    let mut checked = 0;
    for p in params {
        let ctx = context_for(p.name);
        let node = if LOAD_CHECKPOINT.param(p.name).is_some() {
            "ckpt"
        } else {
            "gen"
        };
        let node_spec = if node == "ckpt" {
            &LOAD_CHECKPOINT
        } else if ctx.len() == 4 {
            &INPAINT
        } else if ctx.len() == 2 {
            &IMG2IMG
        } else {
            &TXT2IMG
        };
        let spec = node_spec.param(p.name).expect("the node has the parameter");
        let mut args = base();
        args.extend(ctx.clone());
        if p.name != "prompt" {
            // Omitted: the recipe does not set it, so the node's default applies.
            let doc = generate(&args);
            assert!(
                !doc.nodes[node].params.contains_key(p.name),
                "--{}: omitted, yet the recipe sets {}",
                p.name,
                p.name
            );
        }
        // Given: it lands on its node, parsed as the node parses it.
        let v = other_value(spec);
        let flag = ParamFlags::<GenerateFlags>::flag(p.name);
        if p.name == "prompt" {
            args.retain(|a| a != "--prompt" && a != "p");
        }
        args.extend([flag.clone(), v.clone()]);
        let doc = generate(&args);
        let got = &doc.nodes[node].params[p.name];
        let want = spec.parse_value(&v).unwrap();
        match (got, &want) {
            // Paths given to --vae/--config stay as typed when they do not exist.
            (ParamValue::Text(g), ParamValue::Text(w)) => assert!(g.ends_with(w.as_str())),
            _ => assert_eq!(got, &want, "{flag} {v}"),
        }
        checked += 1;
    }
    assert!(checked >= 20);
}

#[test]
fn flags_carry_the_parameter_docs() {
    let cmd = Cli::command();
    let gen = cmd
        .get_subcommands()
        .find(|c| c.get_name() == "generate")
        .expect("generate");
    for p in ParamFlags::<GenerateFlags>::params() {
        let long = p.name.replace('_', "-");
        let arg = gen
            .get_arguments()
            .find(|a| a.get_long() == Some(long.as_str()))
            .unwrap_or_else(|| panic!("no --{long}"));
        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        assert!(help.starts_with(p.doc), "--{long}: {help}");
        assert!(
            arg.get_default_values().is_empty(),
            "--{long} has a default of its own"
        );
    }
}

#[test]
fn a_flag_of_another_pipeline_is_refused() {
    let mut args = base();
    args.extend(["--strength".into(), "0.5".into()]);
    let Command::Generate(a) = parse(&args) else {
        panic!()
    };
    let e = generate_recipe(&a).unwrap_err().to_string();
    assert!(
        e.contains("--strength") && e.contains("--init-image"),
        "{e}"
    );
    let mut args = base();
    args.extend([
        "--init-image".into(),
        fixtures().join("inputs/init.png").display().to_string(),
        "--mask-blur".into(),
        "4".into(),
    ]);
    let Command::Generate(a) = parse(&args) else {
        panic!()
    };
    let e = generate_recipe(&a).unwrap_err().to_string();
    assert!(
        e.contains("--mask-blur") && e.contains("--init-image and --mask"),
        "{e}"
    );
}

#[test]
fn the_recipe_is_the_pipeline_the_flags_ask_for() {
    let init = fixtures().join("inputs/init.png").display().to_string();
    let mask = fixtures().join("inputs/mask.png").display().to_string();
    let kind = |extra: &[&str]| {
        let mut args = base();
        args.extend(extra.iter().map(|s| s.to_string()));
        generate(&args).nodes["gen"].kind.clone()
    };
    assert_eq!(kind(&[]), "Txt2Img");
    assert_eq!(kind(&["--init-image", &init]), "Img2Img");
    assert_eq!(kind(&["--init-image", &init, "--mask", &mask]), "Inpaint");
    let mut args = base();
    args.extend(
        [
            "--lora",
            "a.safetensors:0.7",
            "--lora",
            "b.safetensors:0.5:0.2",
        ]
        .map(String::from),
    );
    let doc = generate(&args);
    assert_eq!(
        doc.nodes["lora2"].params["text_strength"],
        ParamValue::Float(0.2)
    );
    assert!(doc
        .links
        .iter()
        .any(|l| l.from.node() == "lora2" && l.to.node() == "gen"));
}

#[test]
fn remove_bg_flags_are_the_node_parameters() {
    let img = fixtures().join("inputs/init.png").display().to_string();
    let args: Vec<String> = ["remove-bg", &img, "--out", "cut.png", "--grow", "-2"]
        .map(String::from)
        .to_vec();
    let Command::RemoveBg(a) = parse(&args) else {
        panic!()
    };
    let doc = remove_bg_recipe(&a).unwrap();
    let cut = &doc.nodes["cut"];
    assert_eq!(cut.kind, "RemoveBackground");
    assert_eq!(cut.params.len(), 1, "only the given flag is set");
    assert_eq!(cut.params["grow"].as_f64(), Some(-2.0));
    for p in ParamFlags::<RemoveBgFlags>::params() {
        assert!(nodes::builtin::REMOVE_BACKGROUND.param(p.name).is_some());
    }
}
