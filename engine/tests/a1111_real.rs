//! Real A1111 / Forge infotexts (`tests/fixtures/interop/a1111-real/`, sources in its
//! `SOURCES.md`): every field each one holds, prompts byte for byte, the round trip, and a
//! comparison with A1111's own parsing rule (re-implemented here from
//! `modules/infotext_utils.py`, independently of the engine's parser).

mod interop_common;

use engine::interop::a1111::{
    format_parameters, parse_parameters, to_graph_with_report, A1111Params, GraphOptions,
};
use interop_common::*;

fn fixture(name: &str) -> String {
    let path = manifest_dir()
        .join("../tests/fixtures/interop/a1111-real")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every fixture file, by name.
fn all_fixtures() -> Vec<String> {
    let dir = manifest_dir().join("../tests/fixtures/interop/a1111-real");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".txt"))
        .collect();
    names.sort();
    names
}

/// Each line trimmed, as A1111 reads prompt lines.
fn trimmed_lines(s: &str) -> String {
    s.split('\n').map(str::trim).collect::<Vec<_>>().join("\n")
}

fn extra<'a>(p: &'a A1111Params, key: &str) -> &'a str {
    p.extra(key)
        .unwrap_or_else(|| panic!("no {key} in {:?} / {:?}", p.extra, p.trailing))
}

/// Parses a fixture and checks what holds for every one: the round trip keeps the prompt and
/// negative bytes and every field, and the text converts into a valid recipe.
fn parse(name: &str) -> A1111Params {
    let text = fixture(name);
    let p = parse_parameters(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let again = parse_parameters(&format_parameters(&p)).unwrap();
    assert_eq!(again, p, "{name}: format → parse changed the parameters");
    assert_eq!(again.raw_prompt.as_bytes(), p.raw_prompt.as_bytes());
    let r = to_graph_with_report(&p, &GraphOptions::default());
    valid(&r.graph);
    p
}

#[test]
fn there_are_at_least_eight_real_infotexts() {
    assert!(all_fixtures().len() >= 8, "{:?}", all_fixtures());
}

#[test]
fn every_fixture_round_trips_byte_for_byte() {
    for name in all_fixtures() {
        let text = fixture(&name);
        let p = parse(&name);
        let written = format_parameters(&p);
        if name.starts_with("08-") {
            // Civitai wrote `Created Date` and its JSON values unquoted; A1111 (and we) quote a
            // value holding ':' or ','. The prompt, negative and fields still come back (above).
            assert!(written.starts_with(&text[..text.find("Steps:").unwrap()]));
            continue;
        }
        assert_eq!(written, text, "{name}");
    }
}

#[test]
fn where_a1111_reads_the_text_we_read_the_same() {
    for name in all_fixtures() {
        let text = fixture(&name);
        let p = parse(&name);
        let (prompt, negative, pairs) = a1111_reference(&text);
        if !p.trailing.is_empty() {
            // A1111 only looks at the last line: with template lines after `Steps:` it reads
            // no parameters at all, and the parameters line becomes prompt text.
            assert!(pairs.is_empty(), "{name}");
            assert!(prompt.contains("Steps: ") || negative.contains("Steps: "));
            assert!(p.steps.is_some() && p.seed.is_some(), "{name}");
            continue;
        }
        assert_eq!(trimmed_lines(&p.raw_prompt), prompt, "{name}");
        assert_eq!(
            trimmed_lines(p.negative.as_deref().unwrap_or("")),
            negative,
            "{name}"
        );
        assert_eq!(
            pairs.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            p.key_order.iter().map(String::as_str).collect::<Vec<_>>(),
            "{name}"
        );
        for (k, v) in &pairs {
            let ours = p.get(k).unwrap();
            if k == "Civitai resources" {
                // A1111 stops at the first unquoted comma; we keep the whole value.
                assert!(
                    ours.starts_with(v.as_str()) && ours.len() > v.len(),
                    "{name} {k}"
                );
            } else {
                assert_eq!(&ours, v, "{name} {k}");
            }
        }
    }
}

#[test]
fn dynamic_prompts_template_after_steps() {
    let p = parse("01-dynamic-prompts-template.txt");
    assert_eq!(
        p.prompt,
        "CGI Render of Cybernetic Man On a Digital Motorcycle Neon Lights, Computer Motif Facing the viewer"
    );
    assert_eq!(p.negative, None);
    assert_eq!(p.steps, Some(40));
    assert_eq!(p.sampler.as_deref(), Some("DPM++ 2M Karras"));
    assert_eq!(p.cfg_scale, Some(7.0));
    assert_eq!(p.seed, Some(4259953662));
    assert_eq!(p.size, Some((512, 512)));
    assert_eq!(p.model.as_deref(), Some("photon_v1"));
    assert_eq!(p.model_hash.as_deref(), Some("ec41bd2a82"));
    assert_eq!(extra(&p, "Version"), "1.6.0");
    assert_eq!(
        p.trailing,
        vec![(
            "Template".to_string(),
            " CGI Render of Cybernetic Man On a Digital Motorcycle\nNeon Lights, Computer Motif  \nFacing the viewer"
                .to_string()
        )]
    );
    assert_eq!(
        extra(&p, "Template"),
        "CGI Render of Cybernetic Man On a Digital Motorcycle\nNeon Lights, Computer Motif  \nFacing the viewer"
    );
    // The template is reported, not imported as prompt text.
    let r = to_graph_with_report(&p, &GraphOptions::default());
    assert!(r
        .report
        .notes
        .iter()
        .any(|n| n.starts_with("not carried over: Template: CGI")));
    assert_eq!(
        param(&r.graph, "txt2img", "prompt"),
        t("CGI Render of Cybernetic Man On a Digital Motorcycle Neon Lights, Computer Motif Facing the viewer")
    );
}

#[test]
fn controlnet_quoted_value() {
    let p = parse("02-controlnet-lineart.txt");
    assert_eq!(p.prompt, "sharp_two_hand_sword");
    let neg = p.negative.as_deref().unwrap();
    assert!(neg.starts_with("(painting by bad-artist-anime:0.9), (painting by bad-artist:0.9),"));
    assert!(neg.ends_with("bad anatomy, watermark, signature, text, logo"));
    assert_eq!(p.steps, Some(20));
    assert_eq!(p.sampler.as_deref(), Some("DPM++ 2M Karras"));
    assert_eq!(p.cfg_scale, Some(7.0));
    assert_eq!(p.seed, Some(238572726));
    assert_eq!(p.size, Some((512, 512)));
    assert_eq!(p.model.as_deref(), Some("counterfeitV30_v30"));
    assert_eq!(p.model_hash.as_deref(), Some("cbfba64e66"));
    assert_eq!(p.vae.as_deref(), Some("kl-f8-anime2.ckpt"));
    assert_eq!(extra(&p, "VAE hash"), "df3c506e51");
    assert_eq!(
        extra(&p, "ControlNet 0"),
        "Module: lineart_standard (from white bg & black line), Model: control_v11p_sd15_lineart \
         [43d4be0d], Weight: 1, Resize Mode: Resize and Fill, Low Vram: False, Processor Res: 512, \
         Guidance Start: 0, Guidance End: 1, Pixel Perfect: False, Control Mode: Balanced, Hr \
         Option: Both, Save Detected Map: True"
    );
    assert_eq!(extra(&p, "Version"), "v1.8.0");
    assert!(p.trailing.is_empty());
}

#[test]
fn adetailer_controlnet_and_inpaint_keys() {
    let p = parse("03-adetailer-controlnet-scribble.txt");
    assert_eq!(
        p.prompt,
        "lineart, white background, masterpiece, extremely detailed thick line drawing, 1girl , \
         hoodie, animal gloves, skirt, sneakers"
    );
    assert_eq!(p.negative, None);
    assert_eq!(p.seed, Some(3082143404));
    assert_eq!(p.size, Some((512, 704)));
    assert_eq!(p.denoising_strength, Some(0.4));
    assert_eq!(p.mask_blur, Some(4.0));
    assert_eq!(extra(&p, "ADetailer model"), "face_yolov8n.pt");
    assert_eq!(extra(&p, "ADetailer confidence"), "0.3");
    assert_eq!(extra(&p, "ADetailer inpaint only masked"), "True");
    assert_eq!(extra(&p, "ADetailer version"), "24.3.2");
    assert!(extra(&p, "ControlNet 0")
        .starts_with("Module: scribble_pidinet, Model: control_v11p_sd15_scribble [d4ba51ff],"));
    assert_eq!(extra(&p, "Inpaint area"), "Only masked");
    assert_eq!(extra(&p, "Masked area padding"), "32");
    // Denoising strength + Mask blur: an inpaint recipe, ADetailer reported; the ControlNet
    // unit is imported, its scribble_pidinet preprocessor reported as not supported.
    let r = to_graph_with_report(&p, &GraphOptions::default());
    assert_eq!(kind(&r.graph, "inpaint"), "Inpaint");
    assert_eq!(kind(&r.graph, "cn0"), "ControlNet");
    assert!(r
        .report
        .get("ControlNet 0")
        .unwrap()
        .why
        .iter()
        .any(|w| w.contains("scribble_pidinet")));
    for key in ["ADetailer model"] {
        assert!(
            r.report
                .notes
                .iter()
                .any(|n| n.starts_with(&format!("not carried over: {key}: "))),
            "{key}: {:?}",
            r.report.notes
        );
    }
}

#[test]
fn empty_prompt() {
    let p = parse("04-empty-prompt-inpaint.txt");
    assert_eq!(p.raw_prompt, "");
    assert_eq!(p.prompt, "");
    assert!(p
        .negative
        .as_deref()
        .unwrap()
        .starts_with("(painting by bad-artist-anime:0.9)"));
    assert_eq!(p.seed, Some(1068468216));
    assert_eq!(p.size, Some((352, 528)));
    assert_eq!(p.denoising_strength, Some(0.45));
    assert_eq!(extra(&p, "Masked content"), "fill");
    let r = to_graph_with_report(&p, &GraphOptions::default());
    assert_eq!(param(&r.graph, "inpaint", "prompt"), t(""));
}

#[test]
fn blank_line_stays_in_the_prompt() {
    let p = parse("05-blank-line-before-negative.txt");
    assert_eq!(
        p.prompt,
        "1 old man , (long hair:1), school palace, medium window, hogwarts legacy, palace, \
         hogwarts school uniform, 4k, arstation, intricate, elegant, highly detailed, bring \
         magic wand\n"
    );
    assert_eq!(
        p.negative.as_deref(),
        Some(
            "worst quality, low quality, normal quality, unclear architectural outline, \
             duplicate, missing_body, (missing_face:1.4), (missing_eyes:1.4), nsfw"
        )
    );
    assert_eq!(p.sampler.as_deref(), Some("Euler a"));
    assert_eq!(p.seed, Some(4223243398));
    assert_eq!(p.scheduler(), Some(Ok("euler_a")));
}

#[test]
fn forge_flux_lora_lines() {
    let p = parse("06-forge-flux-loras-blank-line.txt");
    assert_eq!(
        p.raw_prompt,
        "FredFraiStyle \"positive.\"\n\n<lora:FredFraiStyle-FLUX-Share:0.95>\n\
         <lora:Ars_MidJourney_Style_-_Flux:0.6>\n<lora:- Flux1 - vanta_black_V2.0:0.55>"
    );
    // Cutting the tags leaves their lines empty, as in A1111.
    assert_eq!(p.prompt, "FredFraiStyle \"positive.\"\n\n\n\n");
    let loras: Vec<(&str, f64, f64)> = p
        .loras
        .iter()
        .map(|l| (l.name.as_str(), l.te, l.unet))
        .collect();
    assert_eq!(
        loras,
        vec![
            ("FredFraiStyle-FLUX-Share", 0.95, 0.95),
            ("Ars_MidJourney_Style_-_Flux", 0.6, 0.6),
            ("- Flux1 - vanta_black_V2.0", 0.55, 0.55),
        ]
    );
    assert_eq!(p.negative, None);
    assert_eq!(p.sampler.as_deref(), Some("Euler"));
    assert_eq!(p.schedule_type.as_deref(), Some("Simple"));
    assert_eq!(p.cfg_scale, Some(1.0));
    assert_eq!(extra(&p, "Distilled CFG Scale"), "3.5");
    assert_eq!(p.seed, Some(3045329758));
    assert_eq!(p.size, Some((832, 1216)));
    assert_eq!(p.model.as_deref(), Some("flux_dev"));
    assert_eq!(p.model_hash.as_deref(), Some("06f96f89f6"));
    assert_eq!(
        p.lora_hashes,
        vec![
            (
                "FredFraiStyle-FLUX-Share".to_string(),
                "de92428f6411".to_string()
            ),
            (
                "Ars_MidJourney_Style_-_Flux".to_string(),
                "c4f0b45e6a60".to_string()
            ),
            (
                "- Flux1 - vanta_black_V2.0".to_string(),
                "5d8cf3724039".to_string()
            ),
        ]
    );
    assert_eq!(extra(&p, "Version"), "f2.0.1v1.10.1-previous-561-g82eb7566");
    let r = to_graph_with_report(&p, &GraphOptions::default());
    assert_eq!(
        param(&r.graph, "lora3", "lora"),
        t("- Flux1 - vanta_black_V2.0.safetensors")
    );
}

#[test]
fn forge_trailing_commas_are_kept() {
    let p = parse("07-forge-six-loras-multiline.txt");
    let first = p.prompt.lines().next().unwrap();
    assert!(
        first.ends_with("ethereal background, bright subject,"),
        "{first}"
    );
    assert!(p
        .prompt
        .contains("surreal luminous,\ndefined only by glowing contours"));
    assert!(
        p.prompt.ends_with("neon, (mad-wsps:0.8)\n\n\n\n\n\n"),
        "{:?}",
        p.prompt
    );
    assert_eq!(p.loras.len(), 6);
    assert_eq!(
        p.loras.iter().map(|l| l.unet).collect::<Vec<_>>(),
        vec![0.9, 1.2, 1.5, 0.7, 2.2, 1.0]
    );
    assert_eq!(
        p.loras[1].name,
        "Dramatic Lighting Slider-mid_1105685-vid_1242203"
    );
    assert!(p
        .negative
        .as_deref()
        .unwrap()
        .ends_with("(bra:1.5), glasses, dumb"));
    assert_eq!(p.steps, Some(30));
    assert_eq!(p.sampler.as_deref(), Some("DPM++ 3M SDE"));
    assert_eq!(p.schedule_type.as_deref(), Some("Karras"));
    assert_eq!(p.cfg_scale, Some(5.0));
    assert_eq!(p.seed, Some(2480865251));
    assert_eq!(p.size, Some((1152, 896)));
    assert_eq!(
        p.model.as_deref(),
        Some("albedobaseXL_v31Large-mid_140737-vid_1041855")
    );
    assert_eq!(p.lora_hashes.len(), 6);
    assert_eq!(
        p.lora_hashes[5],
        (
            "Add_color_PDXLv1-mid_1327644-vid_1498957".to_string(),
            "bc21d926bade".to_string()
        )
    );
    assert_eq!(extra(&p, "dynthres_mimic_mode"), "Linear Down");
    assert_eq!(extra(&p, "dynthres_interpolate_phi"), "1");
    assert_eq!(extra(&p, "Version"), "f2.0.1v1.10.1-previous-669-gdfdcbab6");
    // The recipe's prompt is the prompt the encoder sees, commas included.
    let r = to_graph_with_report(&p, &GraphOptions::default());
    assert_eq!(param(&r.graph, "txt2img", "prompt"), t(&p.prompt));
}

#[test]
fn civitai_spacing_and_unquoted_json() {
    let p = parse("08-civitai-spacing-resources.txt");
    assert!(
        p.prompt.ends_with("mentixis, metix, vivid colors "),
        "{:?}",
        p.prompt
    );
    assert!(p.prompt.contains("palms , cottage houses"));
    // Two spaces after the colon: A1111 writes one, the other belongs to the negative prompt.
    assert_eq!(p.negative.as_deref(), Some(" negativeXL_D, greyscale"));
    assert_eq!(p.steps, Some(22));
    assert_eq!(p.cfg_scale, Some(3.8));
    assert_eq!(p.seed, Some(894409639));
    assert_eq!(p.size, Some((832, 1216)));
    assert_eq!(p.clip_skip, Some(2));
    assert_eq!(extra(&p, "Created Date"), "2024-09-23T06:17:42.9952795Z");
    let resources: serde_json::Value =
        serde_json::from_str(extra(&p, "Civitai resources")).unwrap();
    assert_eq!(resources.as_array().unwrap().len(), 6);
    assert_eq!(resources[1]["modelName"], "Double Exposure");
    assert_eq!(extra(&p, "Civitai metadata"), "{}");
}

#[test]
fn empty_negative_prompt() {
    let p = parse("09-empty-negative-loras.txt");
    assert_eq!(p.negative.as_deref(), Some(""));
    assert!(
        p.prompt.ends_with("best quality, good quality     "),
        "{:?}",
        p.prompt
    );
    assert_eq!(
        p.loras.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(),
        vec![
            "marge",
            "haiz_ai_illu",
            "MeMaXL4",
            "Ghibli_Harem_V1.0",
            "dmd2_sdxl_4step_lora"
        ]
    );
    assert_eq!(p.steps, Some(24));
    assert_eq!(p.sampler.as_deref(), Some("Euler a"));
    assert_eq!(p.cfg_scale, Some(7.0));
    assert_eq!(p.seed, Some(3848979095));
    assert_eq!(p.size, Some((1024, 1024)));
    assert_eq!(p.model.as_deref(), Some("copaxTimelessxlSDXL1_v12"));
    assert_eq!(p.model_hash.as_deref(), Some("7c906a26f8"));
    let r = to_graph_with_report(&p, &GraphOptions::default());
    assert_eq!(param(&r.graph, "txt2img", "negative"), t(""));
}

#[test]
fn unprompted_and_face_restoration() {
    let p = parse("10-unprompted-face-restoration.txt");
    assert_eq!(
        p.prompt,
        "Photo of a red-haired man wearing a business suit"
    );
    assert_eq!(p.negative, None);
    assert_eq!(p.sampler.as_deref(), Some("DPM++ 2M"));
    assert_eq!(p.schedule_type.as_deref(), Some("Karras"));
    assert_eq!(p.scheduler(), Some(Ok("dpmpp_2m_karras")));
    assert_eq!(p.seed, Some(910164343));
    assert_eq!(p.model.as_deref(), Some("v1-5-pruned-emaonly"));
    assert_eq!(extra(&p, "Face restoration"), "CodeFormer");
    assert_eq!(extra(&p, "Unprompted Prompt"), "[call example]");
    assert_eq!(extra(&p, "Version"), "v1.10.1");
}

#[test]
fn template_and_negative_template_after_steps() {
    let p = parse("11-adetailer-template-negative-template.txt");
    assert_eq!(
        p.prompt,
        "breathtaking closeshot photo of ohwx man riding a dinosaur  . award-winning, \
         professional, highly detailed"
    );
    assert_eq!(p.loras.len(), 1);
    assert_eq!(
        (p.loras[0].name.as_str(), p.loras[0].unet),
        ("24gb_settings-000007", 1.0)
    );
    assert_eq!(
        p.negative.as_deref(),
        Some("deformed, ugly, deformed, noisy, blurry, distorted, grainy")
    );
    assert_eq!(p.steps, Some(20));
    assert_eq!(p.seed, Some(4007836056));
    assert_eq!(p.size, Some((1280, 720)));
    assert_eq!(p.model.as_deref(), Some("sd_xl_base_1.0"));
    assert_eq!(p.denoising_strength, Some(0.5));
    assert_eq!(
        extra(&p, "ADetailer prompt"),
        "ohwx man <lora:24gb_settings-000007:1>"
    );
    assert_eq!(extra(&p, "ADetailer dilate/erode"), "4");
    assert_eq!(extra(&p, "Hires upscale"), "2");
    assert_eq!(
        p.lora_hashes,
        vec![(
            "24gb_settings-000007".to_string(),
            "f99b38a8f85d".to_string()
        )]
    );
    assert_eq!(extra(&p, "Version"), "v1.5.1");
    assert_eq!(
        p.trailing,
        vec![
            (
                "Template".to_string(),
                " closeshot photo of ohwx man riding a dinosaur <lora:24gb_settings-000007:1>"
                    .to_string()
            ),
            ("Negative Template".to_string(), " deformed".to_string()),
        ]
    );
    // A hires-fix recipe: the template's LoRA tag is not read as a second LoRA.
    let r = to_graph_with_report(&p, &GraphOptions::default());
    assert_eq!(kind(&r.graph, "hires"), "Img2Img");
    assert!(!r.graph.nodes.contains_key("lora2"));
}

#[test]
fn blank_lines_in_prompt_and_template() {
    let p = parse("12-blank-lines-template-multiline.txt");
    assert_eq!(
        p.raw_prompt,
        "cinematic photo ohwx man riding dinosaur in a jungle with mud, sunny day shiny clear \
         sky . 35mm photograph,film,professional,4k,highly detailed\n\n\
         <lora:24gb_settings-000007:1>"
    );
    assert!(p.prompt.ends_with("highly detailed\n\n"));
    assert_eq!(
        p.negative.as_deref(),
        Some(
            "drawing,painting,crayon,sketch,graphite,impressionist,noisy,blurry,soft,deformed,ugly"
        )
    );
    assert_eq!(p.seed, Some(4114707048));
    assert_eq!(extra(&p, "Hires upscale"), "1.6");
    assert_eq!(p.trailing.len(), 2);
    assert_eq!(p.trailing[0].0, "Template");
    assert!(p.trailing[0]
        .1
        .ends_with("highly detailed\n\n<lora:24gb_settings-000007:1>"));
    assert_eq!(
        extra(&p, "Negative Template"),
        "drawing,painting,crayon,sketch,graphite,impressionist,noisy,blurry,soft,deformed,ugly"
    );
}
