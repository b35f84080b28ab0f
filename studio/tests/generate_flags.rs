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

/// `generate` with the given extra arguments, or its error.
fn generate_with(extra: &[String]) -> anyhow::Result<GraphDoc> {
    let mut args = base();
    args.extend(extra.iter().cloned());
    match parse(&args) {
        Command::Generate(a) => generate_recipe(&a),
        other => panic!("not generate: {other:?}"),
    }
}

fn control(value: &str) -> Vec<String> {
    vec!["--control".into(), value.into()]
}

fn linked(doc: &GraphDoc, from: &str, to: &str) -> bool {
    doc.links
        .iter()
        .any(|l| l.from.to_string() == from && l.to.to_string() == to)
}

#[test]
fn control_builds_a_chain_of_controlnet_nodes_into_the_sampler() {
    let img = fixtures().join("inputs/init.png");
    let img_abs = std::fs::canonicalize(&img).unwrap().display().to_string();
    let img = img.display().to_string();
    let mut extra = control(&format!("cn-a.safetensors:{img}"));
    extra.extend(control(&format!("cn-b:{img}:0.5:0.1:0.9")));
    extra.extend([
        "--dtype".into(),
        "f16".into(),
        "--device".into(),
        "cpu".into(),
    ]);
    let doc = generate_with(&extra).unwrap();
    nodes::validate(&doc, &nodes::Catalogue::builtin()).unwrap();
    let kinds =
        |ids: &[&str]| -> Vec<String> { ids.iter().map(|i| doc.nodes[*i].kind.clone()).collect() };
    assert_eq!(
        kinds(&[
            "controlnet1",
            "control_image1",
            "control1",
            "controlnet2",
            "control2"
        ]),
        [
            "LoadControlNet",
            "LoadImage",
            "ControlNet",
            "LoadControlNet",
            "ControlNet"
        ]
    );
    // Names that are not paths stay as typed (found in the model folders at run time); the
    // image is absolute so the recipe in the PNG runs from anywhere.
    let p = |id: &str, name: &str| doc.nodes[id].params.get(name).cloned();
    assert_eq!(
        p("controlnet1", "controlnet"),
        Some(ParamValue::Text("cn-a.safetensors".into()))
    );
    assert_eq!(
        p("controlnet2", "controlnet"),
        Some(ParamValue::Text("cn-b".into()))
    );
    assert_eq!(
        p("control_image1", "source"),
        Some(ParamValue::Text(img_abs))
    );
    // The first one keeps every ControlNet default: nothing is set.
    assert!(
        doc.nodes["control1"].params.is_empty(),
        "{:?}",
        doc.nodes["control1"].params
    );
    assert_eq!(p("control2", "strength"), Some(ParamValue::Float(0.5)));
    assert_eq!(p("control2", "start"), Some(ParamValue::Float(0.1)));
    assert_eq!(p("control2", "end"), Some(ParamValue::Float(0.9)));
    // The ControlNets run where the checkpoint runs.
    for id in ["controlnet1", "controlnet2"] {
        assert_eq!(p(id, "dtype"), Some(ParamValue::Text("f16".into())));
        assert_eq!(p(id, "device"), Some(ParamValue::Text("cpu".into())));
    }
    // Chained in order, the last into the sampler.
    assert!(linked(
        &doc,
        "controlnet1.controlnet",
        "control1.controlnet"
    ));
    assert!(linked(&doc, "control_image1.image", "control1.image"));
    assert!(linked(&doc, "control1.control", "control2.control"));
    assert!(linked(&doc, "control2.control", "gen.control"));
    assert!(!linked(&doc, "control1.control", "gen.control"));
    // Without --dtype/--device the loader keeps its own defaults (auto).
    let doc = generate_with(&control(&format!("cn:{img}"))).unwrap();
    assert!(!doc.nodes["controlnet1"].params.contains_key("dtype"));
    assert!(linked(&doc, "control1.control", "gen.control"));
    // img2img and inpaint take it too.
    let mask = fixtures().join("inputs/mask.png").display().to_string();
    let mut extra = control(&format!("cn:{img}:0.3"));
    extra.extend(["--init-image".into(), img.clone(), "--mask".into(), mask]);
    let doc = generate_with(&extra).unwrap();
    assert_eq!(doc.nodes["gen"].kind, "Inpaint");
    assert_eq!(
        p_of(&doc, "control1", "strength"),
        Some(ParamValue::Float(0.3))
    );
    assert!(linked(&doc, "control1.control", "gen.control"));
    nodes::validate(&doc, &nodes::Catalogue::builtin()).unwrap();
}

fn p_of(doc: &GraphDoc, id: &str, name: &str) -> Option<ParamValue> {
    doc.nodes[id].params.get(name).cloned()
}

#[test]
fn control_is_read_from_the_right() {
    let dir = tempfile::tempdir().unwrap();
    let img = fixtures().join("inputs/init.png").display().to_string();
    // MODEL may contain ':' (everything before the image).
    let doc = generate_with(&control(&format!("models:v1/cn.safetensors:{img}:0.7"))).unwrap();
    assert_eq!(
        p_of(&doc, "controlnet1", "controlnet"),
        Some(ParamValue::Text("models:v1/cn.safetensors".into()))
    );
    assert_eq!(
        p_of(&doc, "control1", "strength"),
        Some(ParamValue::Float(0.7))
    );
    // IMAGE may contain ':' when the whole path exists.
    let odd = dir.path().join("a:b.png");
    std::fs::copy(fixtures().join("inputs/init.png"), &odd).unwrap();
    let doc = generate_with(&control(&format!("cn:{}:0.2", odd.display()))).unwrap();
    assert_eq!(
        p_of(&doc, "controlnet1", "controlnet"),
        Some(ParamValue::Text("cn".into()))
    );
    let source = p_of(&doc, "control_image1", "source").unwrap();
    assert!(source.as_str().unwrap().ends_with("a:b.png"), "{source:?}");
    // An empty number keeps the node's default.
    let doc = generate_with(&control(&format!("cn:{img}::0.25:0.75"))).unwrap();
    let params = &doc.nodes["control1"].params;
    assert!(!params.contains_key("strength"), "{params:?}");
    assert_eq!(params["start"], ParamValue::Float(0.25));
    // An image without an image extension works when it is the second of two fields.
    let bare = dir.path().join("edges");
    std::fs::copy(fixtures().join("inputs/init.png"), &bare).unwrap();
    let doc = generate_with(&control(&format!("cn:{}", bare.display()))).unwrap();
    assert!(doc.nodes.contains_key("control1"));
}

#[test]
fn control_errors_name_the_flag_and_the_bad_field() {
    let img = fixtures().join("inputs/init.png").display().to_string();
    let err = |v: &str| {
        let e = generate_with(&control(v)).unwrap_err();
        let text = format!("{e:#}");
        assert!(!text.contains('\n'), "one line: {text}");
        text
    };
    assert_eq!(
        err("a.safetensors:edge.png:x"),
        "--control a.safetensors:edge.png:x: strength \"x\" is not a number"
    );
    let e = err(&format!("cn:{img}:1:0.5:y"));
    assert!(e.ends_with("end \"y\" is not a number"), "{e}");
    let e = err(&format!("cn:{img}:11"));
    assert!(e.contains("strength 11 is outside 0..10"), "{e}");
    let e = err(&format!("cn:{img}:1:0.5"));
    assert!(
        e.contains("STRENGTH or STRENGTH:START:END") && e.contains("2 fields"),
        "{e}"
    );
    let e = err("cn:no-such-control.png");
    assert!(
        e.starts_with("--control cn:no-such-control.png: image no-such-control.png"),
        "{e}"
    );
    let e = err("cn:edges:0.5");
    assert!(e.contains("no field names an image file"), "{e}");
    let e = err(&format!(":{img}"));
    assert!(e.contains("MODEL is empty"), "{e}");
    let e = err(&img);
    assert!(e.contains("MODEL:IMAGE"), "{e}");
}

#[test]
fn control_is_documented_in_help() {
    let cmd = Cli::command();
    let gen = cmd
        .get_subcommands()
        .find(|c| c.get_name() == "generate")
        .expect("generate");
    let arg = gen
        .get_arguments()
        .find(|a| a.get_long() == Some("control"))
        .expect("--control");
    let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
    assert!(
        help.contains("Read from the right") && help.contains("MODEL may contain ':'"),
        "{help}"
    );
    assert!(arg.get_default_values().is_empty());
}
