//! Float32 parity of the UNets and the VAE with diffusers 0.42.1, against fixtures written by
//! `tests/fixtures/sd/unit/py/make_unet_ref.py` (SD1.5, inpaint and SDXL UNets are covered
//! end to end by sd_parity.rs; this keeps the SD2-style UNet and the VAE, tiled included). Tolerance: max |got - ref| <= 1e-4 * max |ref| (diffs are printed; run with
//! `--nocapture` to see them).

mod sd_common;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use engine::sd::config::{UNetConfig, VaeConfig};
use engine::sd::unet::{AddedCond, UNet2DConditionModel};
use engine::sd::vae::AutoencoderKL;
use std::collections::HashMap;
use std::path::PathBuf;

use sd_common::manifest_dir;

const TOL: f32 = 1e-4;

fn data(name: &str) -> PathBuf {
    manifest_dir().join("../tests/fixtures/sd/unit").join(name)
}

fn refs(name: &str) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(data(name).join("ref.safetensors"), &Device::Cpu).unwrap()
}

fn vb(name: &str) -> VarBuilder<'static> {
    let f = data(name).join("diffusion_pytorch_model.safetensors");
    unsafe { VarBuilder::from_mmaped_safetensors(&[f], DType::F32, &Device::Cpu).unwrap() }
}

/// Returns (max abs diff, max |ref|) and asserts the relative tolerance.
fn check(what: &str, got: &Tensor, want: &Tensor) -> f32 {
    assert_eq!(got.dims(), want.dims(), "{what}: shape");
    let d = (got - want)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    let m = want
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    println!(
        "{what}: max abs diff {d:.3e}, max |ref| {m:.3e}, rel {:.3e}",
        d / m
    );
    assert!(d <= TOL * m, "{what}: max abs diff {d} > {TOL} * {m}");
    d / m
}

fn unet_case(name: &str, sdxl: bool) {
    let cfg = UNetConfig::from_file(data(name).join("config.json")).unwrap();
    let model = UNet2DConditionModel::new(vb(name), &cfg).unwrap();
    let r = refs(name);
    let added = sdxl.then(|| AddedCond {
        text_embeds: r["text_embeds"].clone(),
        time_ids: r["time_ids"].clone(),
    });
    let ts: Vec<f32> = r["timesteps"].to_vec1().unwrap();
    let ctx = &r["encoder_hidden_states"];
    // Exact python timesteps (the stored f32 of 946.4 is not the f64 value diffusers used).
    let exact = [999.0, 500.0, 946.4, 1.0];
    for (i, t) in ts.iter().enumerate() {
        assert!((exact[i] as f32 - t).abs() < 1e-3);
        let out = model
            .forward(&r["sample"], exact[i], ctx, added.as_ref())
            .unwrap();
        check(
            &format!("{name} t={}", exact[i]),
            &out,
            &r[&format!("out_{i}")],
        );
    }
    // Latent size not a multiple of 2^(levels-1): diffusers forwards explicit upsample sizes.
    let out = model
        .forward(&r["odd_sample"], 500.0, ctx, added.as_ref())
        .unwrap();
    check(&format!("{name} odd 15x13"), &out, &r["odd_out"]);
}

#[test]
fn unet_sd2_parity() {
    unet_case("unet_sd2", false);
}

fn vae() -> (AutoencoderKL, HashMap<String, Tensor>) {
    let cfg = VaeConfig::from_file(data("vae").join("config.json")).unwrap();
    (AutoencoderKL::new(vb("vae"), &cfg).unwrap(), refs("vae"))
}

#[test]
fn vae_encode_decode_parity() {
    let (vae, r) = vae();
    let post = vae.encode(&r["x"]).unwrap();
    check("vae enc mean", &post.mean, &r["enc_mean"]);
    check("vae enc std", &post.std, &r["enc_std"]);
    check("vae enc logvar", &post.logvar, &r["enc_logvar"]);
    check(
        "vae enc sample",
        &post.sample_with(&r["noise"]).unwrap(),
        &r["enc_sample"],
    );
    check("vae dec", &vae.decode(&r["z"]).unwrap(), &r["dec"]);
    // Below the tile size the auto variants do not tile.
    check(
        "vae dec auto",
        &vae.decode_auto(&r["z"]).unwrap(),
        &r["dec"],
    );
    check(
        "vae enc auto",
        &vae.encode_auto(&r["x"]).unwrap().mean,
        &r["enc_mean"],
    );
}

#[test]
fn vae_tiled_parity() {
    let (mut vae, r) = vae();
    vae.tile_sample_min_size = 32;
    vae.tile_latent_min_size = 16;
    let post = vae.encode_auto(&r["tiled_x"]).unwrap();
    check("vae tiled enc mean", &post.mean, &r["tiled_enc_mean"]);
    check("vae tiled enc std", &post.std, &r["tiled_enc_std"]);
    check(
        "vae tiled dec",
        &vae.decode_auto(&r["tiled_z"]).unwrap(),
        &r["tiled_dec"],
    );
    check(
        "vae tiled dec explicit",
        &vae.decode_tiled(&r["tiled_z"]).unwrap(),
        &r["tiled_dec"],
    );
}

#[test]
fn config_defaults_and_errors() {
    let c = UNetConfig::from_json_str("{}").unwrap();
    assert_eq!(c.block_out_channels, vec![320, 640, 1280, 1280]);
    assert_eq!(c.heads_per_block().unwrap(), vec![8, 8, 8, 8]);
    assert_eq!(c.cross_attention_dim().unwrap(), 1280);
    assert!(c.flip_sin_to_cos);
    for (json, opt) in [
        (r#"{"time_cond_proj_dim": 256}"#, "time_cond_proj_dim"),
        (r#"{"class_embed_type": "projection"}"#, "class_embed_type"),
        (r#"{"only_cross_attention": true}"#, "only_cross_attention"),
        (r#"{"center_input_sample": true}"#, "center_input_sample"),
        (r#"{"addition_embed_type": "image"}"#, "addition_embed_type"),
        (
            r#"{"resnet_time_scale_shift": "scale_shift"}"#,
            "resnet_time_scale_shift",
        ),
        (
            r#"{"mid_block_type": "UNetMidBlock2DSimpleCrossAttn"}"#,
            "mid_block_type",
        ),
        (
            r#"{"cross_attention_dim": [768, 768, 768, 768]}"#,
            "cross_attention_dim",
        ),
        (r#"{"attention_head_dim": [5, 10]}"#, "attention_head_dim"),
    ] {
        let e = UNetConfig::from_json_str(json).unwrap_err().to_string();
        assert!(e.contains(opt), "{json}: {e}");
    }
    let v = VaeConfig::from_json_str(r#"{"block_out_channels": [128, 256, 512, 512], "sample_size": 1024,
        "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
        "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"], "scaling_factor": 0.13025, "force_upcast": true}"#).unwrap();
    assert_eq!(v.tile_sample_size().unwrap(), 1024);
    assert_eq!(v.scale_factor(), 8);
    assert!(v.use_quant_conv && v.use_post_quant_conv && v.mid_block_add_attention);
    assert_eq!(v.shift_factor, None);
    let e = VaeConfig::from_json_str(r#"{"act_fn": "gelu"}"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("act_fn"), "{e}");
}
