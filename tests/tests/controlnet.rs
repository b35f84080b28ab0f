//! `defect-studio generate --control` end to end, on the tiny SD 1.5 model and the tiny
//! ControlNets of `tests/fixtures/sd/controlnet`: the PNG equals diffusers'
//! `StableDiffusionControlNetPipeline` PNG of the matching fixture case (one ControlNet found by
//! name in the model folders; two chained, by path), the recipe in the PNG has the ControlNet
//! nodes, and a ControlNet for another architecture, a truncated ControlNet file or a bad
//! `--control` value fail with one line on stderr.

mod common;

use std::path::{Path, PathBuf};

use common::*;

fn sd() -> PathBuf {
    repo().join("tests/fixtures/sd")
}

fn cn() -> PathBuf {
    sd().join("controlnet")
}

/// A case of `controlnet/cases.json` by name.
fn case(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(cn().join("cases.json")).unwrap();
    let all: serde_json::Value = serde_json::from_str(&text).unwrap();
    all["cases"]
        .as_array()
        .expect("a cases list")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no case {name} in controlnet/cases.json"))
        .clone()
}

/// `generate` on the tiny sd15 model with `--control` flags, the model folders including the
/// tiny ControlNets (so `cn-sd15` is found by name).
fn generate(env: &Env, controls: &[String], out: &Path, extra: &[String]) -> std::process::Output {
    let mut a: Vec<String> = vec![
        "generate".into(),
        "--model".into(),
        sd().join("models/sd15").display().to_string(),
        "--out".into(),
        out.display().to_string(),
    ];
    for c in controls {
        a.extend(["--control".into(), c.clone()]);
    }
    if !extra.iter().any(|e| e == "--prompt") {
        a.extend(["--prompt".into(), "a crack".into()]);
    }
    a.extend_from_slice(extra);
    env.cmd()
        .env("DEFECT_STUDIO_MODEL_DIRS", cn().join("models"))
        .args(&a)
        .output()
        .unwrap()
}

/// Runs a txt2img case through `generate`, its ControlNets given as `models` (by name or by
/// path), and checks the PNG against diffusers' at the 8-bit bar.
fn check_case(name: &str, models: &[String]) {
    let c = case(name);
    let controls: Vec<String> = c["controls"]
        .as_array()
        .unwrap()
        .iter()
        .zip(models)
        .map(|(ctl, model)| {
            format!(
                "{model}:{}:{}:{}:{}",
                sd().join(ctl["image"].as_str().unwrap()).display(),
                ctl["strength"],
                ctl["start"],
                ctl["end"]
            )
        })
        .collect();
    assert_eq!(controls.len(), c["controls"].as_array().unwrap().len());
    let mut args = vec![
        "--prompt".to_string(),
        c["prompt"].as_str().unwrap().into(),
        "--steps".into(),
        c["steps"].to_string(),
        "--cfg".into(),
        c["cfg"].to_string(),
        "--seed".into(),
        c["seed"].to_string(),
        "--scheduler".into(),
        c["scheduler"].as_str().unwrap().into(),
        "--width".into(),
        c["width"].to_string(),
        "--height".into(),
        c["height"].to_string(),
    ];
    if let Some(n) = c["negative"].as_str() {
        args.extend(["--negative".into(), n.into()]);
    }
    let env = Env::new();
    std::fs::create_dir_all(env.out()).unwrap();
    let out = env.out().join(format!("{name}.png"));
    let o = generate(&env, &controls, &out, &args);
    assert!(o.status.success(), "{controls:?}: {}", stderr(&o));
    let db = psnr8(&rgb8(&out), &rgb8(&cn().join(format!("cases/{name}.png"))));
    assert!(db >= 55.0, "{name}: {db:.1} dB against diffusers' PNG");
    // The PNG's recipe has the ControlNet nodes.
    let bytes = std::fs::read(&out).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        text.contains("LoadControlNet") && text.contains("control_image1"),
        "no ControlNet in the recipe"
    );
}

#[test]
fn generate_with_a_controlnet_found_by_name_writes_what_diffusers_writes() {
    check_case("cn_sd15_euler", &["cn-sd15".into()]);
}

#[test]
fn generate_with_two_chained_controlnets_writes_what_diffusers_writes() {
    let c = case("cn_sd15_multi_ddim");
    let models: Vec<String> = c["controls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ctl| {
            sd().join(ctl["model"].as_str().unwrap())
                .display()
                .to_string()
        })
        .collect();
    assert_eq!(models.len(), 2);
    check_case("cn_sd15_multi_ddim", &models);
}

#[test]
fn a_controlnet_for_another_architecture_fails_with_one_line() {
    let env = Env::new();
    std::fs::create_dir_all(env.out()).unwrap();
    let image = sd().join("inputs/init.png");
    let control = format!(
        "{}:{}",
        cn().join("models/cn-sdxl").display(),
        image.display()
    );
    let o = generate(
        &env,
        &[control],
        &env.out().join("x.png"),
        &["--steps".into(), "1".into()],
    );
    assert_clean_failure(&o, &["cn-sdxl", "SDXL"]);
}

#[test]
fn a_truncated_controlnet_fails_with_one_line() {
    let env = Env::new();
    std::fs::create_dir_all(env.out()).unwrap();
    let bytes = std::fs::read(cn().join("models/cn-sd15.safetensors")).unwrap();
    let cut = env.dir.path().join("cut-cn.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let image = sd().join("inputs/init.png");
    let control = format!("{}:{}", cut.display(), image.display());
    let o = generate(
        &env,
        &[control],
        &env.out().join("x.png"),
        &["--steps".into(), "1".into()],
    );
    assert_clean_failure(&o, &["cut-cn.safetensors"]);
    let line = stderr(&o);
    assert_eq!(
        line.matches("cut-cn.safetensors").count(),
        1,
        "named more than once: {line}"
    );
}

#[test]
fn a_bad_control_flag_fails_before_anything_runs() {
    let env = Env::new();
    std::fs::create_dir_all(env.out()).unwrap();
    let o = generate(
        &env,
        &["a.safetensors:edge.png:x".into()],
        &env.out().join("x.png"),
        &[],
    );
    assert_clean_failure(
        &o,
        &["--control a.safetensors:edge.png:x: strength \"x\" is not a number"],
    );
    assert!(env.history().is_empty(), "a refused flag records no run");
}
