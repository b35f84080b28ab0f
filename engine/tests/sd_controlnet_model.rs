//! The ControlNet network and its loading, against diffusers 0.42.1 (fixtures by
//! `tests/fixtures/sd/make_controlnet_models.py`): module outputs in float32 (max |got − ref| ≤
//! 1e-4 × max |ref|; run with `--nocapture` for the measured values), the UNet with residuals,
//! single files (original and diffusers names, f16/bf16/f32 storage) equal to the folders, and
//! one clear error for a wrong architecture, a truncated file, a pickle, a non-ControlNet.

mod sd_common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use engine::sd::controlnet::{
    ldm, load, load_cached, load_with_config, ControlNet, ControlNetConfig, ControlNetLoadOptions,
    ControlNetModel, ControlResiduals,
};
use engine::sd::model::Family;
use engine::sd::unet::AddedCond;
use serde_json::Value;

use sd_common::{manifest_dir, max_abs};

const TOL: f32 = 1e-4;

fn dir() -> PathBuf {
    manifest_dir().join("../tests/fixtures/sd/controlnet")
}

fn models() -> PathBuf {
    dir().join("models")
}

fn refs() -> HashMap<String, Tensor> {
    candle_core::safetensors::load(dir().join("unit/controlnet.safetensors"), &Device::Cpu)
        .expect("unit fixtures")
}

fn cases() -> Vec<Value> {
    let text = std::fs::read_to_string(dir().join("unit/cases.json")).expect("cases.json");
    serde_json::from_str(&text).expect("cases.json parses")
}

fn f32_opts() -> ControlNetLoadOptions {
    ControlNetLoadOptions::default()
}

fn rel_diff(got: &Tensor, want: &Tensor) -> f32 {
    assert_eq!(got.dims(), want.dims(), "shape");
    let got = got.to_dtype(DType::F32).unwrap();
    let d = max_abs(&(&got - want).unwrap());
    d / max_abs(want)
}

/// Inputs of a unit case's model ("sd15" | "sdxl").
struct Inputs {
    sample: Tensor,
    cond: Tensor,
    ehs: Tensor,
    added: Option<AddedCond>,
}

fn inputs(r: &HashMap<String, Tensor>, model: &str) -> Inputs {
    let t = |n: &str| r[&format!("{model}.{n}")].clone();
    Inputs {
        sample: t("sample"),
        cond: t("cond"),
        ehs: t("ehs"),
        added: (model == "sdxl").then(|| AddedCond {
            text_embeds: t("text_embeds"),
            time_ids: t("time_ids"),
        }),
    }
}

fn run(net: &ControlNet, i: &Inputs, t: f64, scale: f64, guess: bool) -> ControlResiduals {
    net.forward(
        &i.sample,
        t,
        &i.ehs,
        i.added.as_ref(),
        &i.cond,
        scale,
        guess,
    )
    .expect("forward")
}

/// Largest relative difference over all residuals; asserts the tolerance.
fn check_residuals(
    what: &str,
    got: &ControlResiduals,
    r: &HashMap<String, Tensor>,
    case: &str,
    tol: f32,
) -> f32 {
    let mut worst = 0f32;
    let n = r
        .keys()
        .filter(|k| k.starts_with(&format!("{case}.down.")))
        .count();
    assert_eq!(got.down.len(), n, "{what}: residual count");
    for (i, d) in got.down.iter().enumerate() {
        let e = rel_diff(d, &r[&format!("{case}.down.{i}")]);
        assert!(
            e <= tol,
            "{what}: down residual {i}: relative diff {e:.3e} > {tol:e}"
        );
        worst = worst.max(e);
    }
    let e = rel_diff(&got.mid, &r[&format!("{case}.mid")]);
    assert!(
        e <= tol,
        "{what}: mid residual: relative diff {e:.3e} > {tol:e}"
    );
    worst.max(e)
}

fn temp_config(over: &Value, base: &Path) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(base.join("config.json")).unwrap()).unwrap();
    for (k, v) in over.as_object().unwrap() {
        cfg[k] = v.clone();
    }
    std::fs::write(tmp.path().join("config.json"), cfg.to_string()).unwrap();
    tmp
}

#[test]
fn network_matches_diffusers() {
    let r = refs();
    let cases = cases();
    assert!(cases.len() >= 7);
    for c in &cases {
        let name = c["name"].as_str().unwrap();
        let folder = models().join(c["net"].as_str().unwrap());
        let over = &c["config"];
        let net = if over.as_object().is_some_and(|o| !o.is_empty()) {
            let tmp = temp_config(over, &folder);
            load_with_config(&folder, &f32_opts(), Some(tmp.path())).expect("loads with config")
        } else {
            load(&folder, &f32_opts()).expect("loads")
        };
        let i = inputs(&r, c["model"].as_str().unwrap());
        let got = run(
            &net,
            &i,
            c["timestep"].as_f64().unwrap(),
            c["scale"].as_f64().unwrap(),
            c["guess_mode"].as_bool().unwrap(),
        );
        let e = check_residuals(name, &got, &r, name, TOL);
        println!("{name}: residuals max relative diff {e:.3e}");
    }
}

#[test]
fn unet_adds_the_residuals_as_diffusers() {
    let r = refs();
    for c in cases() {
        let name = c["name"].as_str().unwrap();
        let Some(want) = r.get(&format!("{name}.unet")) else {
            continue;
        };
        let model = c["model"].as_str().unwrap();
        let n = r
            .keys()
            .filter(|k| k.starts_with(&format!("{name}.down.")))
            .count();
        let res = ControlResiduals {
            down: (0..n)
                .map(|i| r[&format!("{name}.down.{i}")].clone())
                .collect(),
            mid: r[&format!("{name}.mid")].clone(),
        };
        let m = sd_common::model(model);
        let i = inputs(&r, model);
        let t = c["timestep"].as_f64().unwrap();
        let got = m
            .unet
            .forward_with_control(&i.sample, t, &i.ehs, i.added.as_ref(), Some(&res))
            .expect("UNet with residuals");
        let e = rel_diff(&got, want);
        println!("{name}: UNet with residuals max relative diff {e:.3e}");
        assert!(e <= TOL, "{name}: UNet with residuals: {e:.3e}");
        // The residuals matter: without them the output is far off.
        let plain = m
            .unet
            .forward(&i.sample, t, &i.ehs, i.added.as_ref())
            .unwrap();
        assert!(
            rel_diff(&plain, want) > 100.0 * TOL,
            "{name}: residuals change nothing"
        );
    }
}

/// Outputs of `net` for the sd15 (or sdxl) plain case.
fn plain(net: &ControlNet, model: &str) -> ControlResiduals {
    let r = refs();
    run(net, &inputs(&r, model), 500.0, 1.0, false)
}

fn assert_bit_equal(what: &str, a: &ControlResiduals, b: &ControlResiduals) {
    for (x, y) in a
        .down
        .iter()
        .chain([&a.mid])
        .zip(b.down.iter().chain([&b.mid]))
    {
        let d =
            max_abs(&(x.to_dtype(DType::F32).unwrap() - y.to_dtype(DType::F32).unwrap()).unwrap());
        assert_eq!(d, 0.0, "{what}: outputs differ by {d}");
    }
}

#[test]
fn single_files_equal_the_folders() {
    let folder = load(&models().join("cn-sd15"), &f32_opts()).unwrap();
    let want = plain(&folder, "sd15");
    for file in ["cn-sd15.safetensors", "cn-sd15-diffusers.safetensors"] {
        let net = load(&models().join(file), &f32_opts()).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(net.family, Family::Sd1, "{file}");
        assert_eq!(
            net.config.unet.heads_per_block().unwrap(),
            folder.config.unet.heads_per_block().unwrap()
        );
        assert_eq!(
            net.config.conditioning_embedding_out_channels,
            folder.config.conditioning_embedding_out_channels
        );
        assert_bit_equal(file, &plain(&net, "sd15"), &want);
    }

    // SDXL: the tiny net's heads (head width 16) and time-id width are not in the weights.
    let xl = models().join("cn-sdxl.safetensors");
    let e = load(&xl, &f32_opts()).unwrap_err().to_string();
    assert!(
        e.contains("cn-sdxl.safetensors") && e.contains("config.json"),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1, "{e}");
    let folder = load(&models().join("cn-sdxl"), &f32_opts()).unwrap();
    let net = load_with_config(&xl, &f32_opts(), Some(&models().join("cn-sdxl"))).unwrap();
    assert_eq!((net.family, folder.family), (Family::Sdxl, Family::Sdxl));
    assert_bit_equal(
        "cn-sdxl.safetensors",
        &plain(&net, "sdxl"),
        &plain(&folder, "sdxl"),
    );
}

#[test]
fn storage_dtypes_load_as_the_asked_dtype() {
    let folder_path = models().join("cn-sd15");
    let folder = load(&folder_path, &f32_opts()).unwrap();
    let want = plain(&folder, "sd15");

    // f32 storage (written here: an f32 copy would pass the 2 MB fixture limit).
    let tmp = tempfile::tempdir().unwrap();
    let st = folder_path.join("diffusion_pytorch_model.safetensors");
    let tensors = candle_core::safetensors::load(&st, &Device::Cpu).unwrap();
    let f32s: HashMap<String, Tensor> = tensors
        .iter()
        .map(|(k, v)| (k.clone(), v.to_dtype(DType::F32).unwrap()))
        .collect();
    let f32_file = tmp.path().join("cn-f32.safetensors");
    candle_core::safetensors::save(&f32s, &f32_file).unwrap();
    assert_bit_equal(
        "f32 file",
        &plain(&load(&f32_file, &f32_opts()).unwrap(), "sd15"),
        &want,
    );

    // bf16 storage: equal to the folder's weights rounded to bf16, computed in f32.
    let bf = load(
        &models().join("cn-sd15-noprefix-bf16.safetensors"),
        &f32_opts(),
    )
    .unwrap();
    let rounded: HashMap<String, Tensor> = tensors
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.to_dtype(DType::BF16)
                    .unwrap()
                    .to_dtype(DType::F32)
                    .unwrap(),
            )
        })
        .collect();
    let vb = VarBuilder::from_tensors(rounded, DType::F32, &Device::Cpu);
    let cfg_json: Value =
        serde_json::from_str(&std::fs::read_to_string(folder_path.join("config.json")).unwrap())
            .unwrap();
    let cfg = ControlNetConfig::from_value(cfg_json).unwrap();
    let model = ControlNetModel::new(vb, &cfg).unwrap();
    let r = refs();
    let i = inputs(&r, "sd15");
    let by_hand = model
        .forward(&i.sample, 500.0, &i.ehs, None, &i.cond, 1.0, false)
        .unwrap();
    let from_file = plain(&bf, "sd15");
    assert_bit_equal("bf16 file", &from_file, &by_hand);
    // ...and not equal to the f16 folder (the rounding is real).
    assert!(rel_diff(&from_file.mid, &want.mid) > 0.0);

    // f16 compute on the CPU: close to f32.
    let half = ControlNetLoadOptions {
        dtype: DType::F16,
        device: Device::Cpu,
    };
    let h = load(&models().join("cn-sd15.safetensors"), &half).unwrap();
    let got = plain(&h, "sd15");
    assert_eq!(got.mid.dtype(), DType::F16);
    let e = rel_diff(&got.mid, &want.mid);
    println!("f16 compute: mid residual relative diff {e:.3e}");
    assert!(e < 2e-2, "f16 compute: {e}");

    // bf16 compute on the CPU: one clear line.
    let bf_opts = ControlNetLoadOptions {
        dtype: DType::BF16,
        device: Device::Cpu,
    };
    let e = load(&folder_path, &bf_opts).unwrap_err().to_string();
    assert!(e.contains("bf16") && e.contains("cn-sd15"), "{e}");
}

#[test]
fn wrong_architecture_is_one_line() {
    let xl = load(&models().join("cn-sdxl"), &f32_opts()).unwrap();
    let sd15 = load(&models().join("cn-sd15"), &f32_opts()).unwrap();
    let e = xl
        .check_compatible(&sd_common::model("sd15"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "ControlNet cn-sdxl: made for SDXL (cross-attention 40) but the checkpoint is SD 1.x (32)"
    );
    let e = sd15
        .check_compatible(&sd_common::model("sdxl"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "ControlNet cn-sd15: made for SD 1.x (cross-attention 32) but the checkpoint is SDXL (40)"
    );
    sd15.check_compatible(&sd_common::model("sd15"))
        .expect("fits sd15");
    sd15.check_compatible(&sd_common::model("sd15-inpaint"))
        .expect("fits sd15-inpaint");
    xl.check_compatible(&sd_common::model("sdxl"))
        .expect("fits sdxl");
}

#[test]
fn bad_files_give_one_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let one_line = |e: String, needles: &[&str]| {
        assert_eq!(e.lines().count(), 1, "{e}");
        for n in needles {
            assert!(e.contains(n), "`{n}` not in: {e}");
        }
    };

    // Truncated.
    let bytes = std::fs::read(models().join("cn-sd15.safetensors")).unwrap();
    let cut = tmp.path().join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    one_line(
        load(&cut, &f32_opts()).unwrap_err().to_string(),
        &["cut.safetensors"],
    );

    // Pickles: by extension (not even opened), and by content under a safetensors name.
    let pth = tmp.path().join("control_v11p_sd15_canny.pth");
    std::fs::write(&pth, b"\x80\x02}q\x00.").unwrap();
    one_line(
        load(&pth, &f32_opts()).unwrap_err().to_string(),
        &["control_v11p_sd15_canny.pth", "pickle"],
    );
    let zip = tmp.path().join("zip.safetensors");
    std::fs::write(&zip, b"PK\x03\x04\x14\x00\x00\x00\x08\x00 more bytes here").unwrap();
    one_line(
        load(&zip, &f32_opts()).unwrap_err().to_string(),
        &["zip.safetensors"],
    );
    let bin_dir = tmp.path().join("bin-net");
    std::fs::create_dir(&bin_dir).unwrap();
    std::fs::copy(
        models().join("cn-sd15/config.json"),
        bin_dir.join("config.json"),
    )
    .unwrap();
    std::fs::write(bin_dir.join("diffusion_pytorch_model.bin"), b"\x80\x02").unwrap();
    one_line(
        load(&bin_dir, &f32_opts()).unwrap_err().to_string(),
        &["diffusion_pytorch_model.bin", "pickle"],
    );

    // Not a ControlNet: a Stable Diffusion checkpoint.
    let ckpt = manifest_dir().join("../tests/fixtures/sd/models/sd15.safetensors");
    one_line(
        load(&ckpt, &f32_opts()).unwrap_err().to_string(),
        &[
            "sd15.safetensors",
            "Stable Diffusion checkpoint, not a ControlNet",
        ],
    );

    // Missing.
    one_line(
        load(&tmp.path().join("nope.safetensors"), &f32_opts())
            .unwrap_err()
            .to_string(),
        &["nope.safetensors", "no such ControlNet"],
    );
}

#[test]
fn cached_loads_share_the_net() {
    let p = models().join("cn-sd15-b");
    let a = load_cached(&p, &f32_opts()).unwrap();
    let b = load_cached(&p, &f32_opts()).unwrap();
    assert!(std::sync::Arc::ptr_eq(&a, &b));
    let half = ControlNetLoadOptions {
        dtype: DType::F16,
        device: Device::Cpu,
    };
    let c = load_cached(&p, &half).unwrap();
    assert!(!std::sync::Arc::ptr_eq(&a, &c));
    assert_eq!(c.dtype, DType::F16);
}

// The original-name map (engine::sd::controlnet::ldm) on the standard 4-level SD1.5 layout.
#[test]
fn maps_the_standard_sd15_names() {
    let names = [
        "control_model.input_hint_block.0.weight",
        "control_model.input_hint_block.2.bias",
        "control_model.input_hint_block.12.weight",
        "control_model.input_hint_block.14.weight",
        "control_model.zero_convs.11.0.weight",
        "control_model.middle_block_out.0.bias",
        "control_model.input_blocks.3.0.op.weight",
        "control_model.input_blocks.4.1.proj_in.weight",
        "control_model.middle_block.2.out_layers.3.weight",
        "control_model.time_embed.2.weight",
    ];
    assert_eq!(
        ldm::detect(&names),
        Ok(ldm::Naming::Original { prefixed: true })
    );
    let m = ldm::original_to_diffusers(&names, true).expect("maps");
    let get = |d: &str| m.get(d).map(String::as_str);
    assert_eq!(
        get("controlnet_cond_embedding.conv_in.weight"),
        Some(names[0])
    );
    assert_eq!(
        get("controlnet_cond_embedding.blocks.0.bias"),
        Some(names[1])
    );
    assert_eq!(
        get("controlnet_cond_embedding.blocks.5.weight"),
        Some(names[2])
    );
    assert_eq!(
        get("controlnet_cond_embedding.conv_out.weight"),
        Some(names[3])
    );
    assert_eq!(get("controlnet_down_blocks.11.weight"), Some(names[4]));
    assert_eq!(get("controlnet_mid_block.bias"), Some(names[5]));
    assert_eq!(
        get("down_blocks.0.downsamplers.0.conv.weight"),
        Some(names[6])
    );
    assert_eq!(
        get("down_blocks.1.attentions.0.proj_in.weight"),
        Some(names[7])
    );
    assert_eq!(get("mid_block.resnets.1.conv2.weight"), Some(names[8]));
    assert_eq!(get("time_embedding.linear_2.weight"), Some(names[9]));
}

#[test]
fn refuses_what_is_not_a_controlnet() {
    let e = ldm::detect(&["model.diffusion_model.input_blocks.0.0.weight"]).unwrap_err();
    assert!(e.contains("Stable Diffusion checkpoint"), "{e}");
    let e = ldm::original_to_diffusers(
        &[
            "input_hint_block.0.weight",
            "output_blocks.0.0.in_layers.0.weight",
        ],
        false,
    )
    .unwrap_err();
    assert!(e.contains("output_blocks.0.0.in_layers.0.weight"), "{e}");
}
