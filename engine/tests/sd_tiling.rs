//! Sizes above the VAE's `sample_size` (the tiny models' VAEs tile at 64 px), against diffusers
//! (`tests/fixtures/sd/make_tiling_fixtures.py`): with tiling off the result equals diffusers'
//! default (one VAE pass), with tiling on it equals diffusers after `vae.enable_tiling()`, at the
//! three parity bars (docs/ARCHITECTURE.md, "Conventions"). Auto tiles only over its memory budget.

mod sd_common;

use engine::sd::pipeline::{generate, vae_pass_bytes, VaeTiling};
use sd_common::*;
use serde_json::Value;

fn tiling_cases() -> Vec<Value> {
    let text = std::fs::read_to_string(fixtures().join("tiling/cases.json")).expect("cases");
    serde_json::from_str(&text).expect("cases.json")
}

fn tiling_case(name: &str) -> Value {
    tiling_cases()
        .into_iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no case {name}"))
}

#[test]
fn every_tiling_case_matches_diffusers() {
    let cases = tiling_cases();
    // Off and on, txt2img at a non-square size, img2img (tiled encode), and SDXL.
    for needed in [
        "sd15_txt2img_euler_128x96_tiling_off",
        "sd15_txt2img_euler_128x96_tiling_on",
        "sd15_img2img_ddim_128x96_tiling_on",
        "sdxl_txt2img_euler_128x96_tiling_off",
        "sdxl_txt2img_euler_128x96_tiling_on",
    ] {
        assert!(
            cases.iter().any(|c| c["name"] == needed),
            "no case {needed}"
        );
    }
    let mut failures = Vec::new();
    for c in &cases {
        let name = c["name"].as_str().unwrap().to_string();
        let m = model(c["model"].as_str().unwrap());
        let tile = m.vae_config.tile_sample_size().unwrap();
        assert!(
            tile < c["width"].as_u64().unwrap() as usize,
            "{name} must exceed the VAE's sample_size ({tile})"
        );
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            check_against(c, &fixtures().join("tiling"), &m)
        }));
        if let Err(e) = r {
            failures.push(format!("{name}: {}", panic_message(e)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Auto tiles when one pass would exceed the budget (and says so), else it is one pass.
#[test]
fn auto_tiles_only_over_the_budget() {
    let m = model("sd15");
    let c = tiling_case("sd15_txt2img_euler_128x96_tiling_off");
    let mut p = params(&c);
    p.vae_tiling = VaeTiling::Auto;
    // Ours against ours: two steps are enough to compare the VAE paths.
    p.steps = 2;
    let need = vae_pass_bytes(&m, 128, 96);
    assert!(need > 1 << 20, "{need} bytes");
    let mut none = |_: usize, _: usize, _: &candle_core::Tensor| Ok(());
    // The budget is read per call; this test is the only one in this binary that sets it.
    std::env::set_var("DEFECT_STUDIO_VAE_BUDGET_MB", "1");
    let tight = generate(&m, &p, &mut none).unwrap();
    std::env::set_var("DEFECT_STUDIO_VAE_BUDGET_MB", "100000");
    let roomy = generate(&m, &p, &mut none).unwrap();
    std::env::remove_var("DEFECT_STUDIO_VAE_BUDGET_MB");
    assert!(
        tight
            .notes
            .iter()
            .any(|n| n.contains("VAE tiling (auto): on")),
        "{:?}",
        tight.notes
    );
    assert!(roomy.notes.is_empty(), "{:?}", roomy.notes);
    p.vae_tiling = VaeTiling::On;
    let on = generate(&m, &p, &mut none).unwrap();
    p.vae_tiling = VaeTiling::Off;
    let off = generate(&m, &p, &mut none).unwrap();
    assert_eq!(rgb(&tight.images[0]), rgb(&on.images[0]));
    assert_eq!(rgb(&roomy.images[0]), rgb(&off.images[0]));
    // And tiling matters at this size, so the comparisons above can fail.
    assert!(psnr(&rgb(&on.images[0]), &rgb(&off.images[0])) < 60.0);
}
