//! Text chunks in PNGs, our graph chunk, and finding a recipe in a PNG.

mod interop_common;

use interop_common::*;
use std::collections::BTreeMap;

use engine::interop::png_meta::{
    base64_decoded_len, embed_graph, embed_text_chunks, graph_from_png, graph_from_png_with_report,
    is_asset_reference, prepare_assets, read_text_chunks, GraphSource, A1111_KEYWORD,
    COMFY_PROMPT_KEYWORD, COMFY_WORKFLOW_KEYWORD, GRAPH_KEYWORD, LARGE_ASSET_BYTES,
};
use nodes::{Asset, GraphDoc};

/// A 2×2 RGBA PNG with the given text chunks before the image data.
fn png_with(text: &[(&str, &str)], ztxt: &[(&str, &str)], itxt: &[(&str, &str)]) -> Vec<u8> {
    let mut buf = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut buf, 2, 2);
        enc.set_color(png::ColorType::Rgba);
        enc.set_depth(png::BitDepth::Eight);
        for (k, v) in text {
            enc.add_text_chunk(k.to_string(), v.to_string()).unwrap();
        }
        for (k, v) in ztxt {
            enc.add_ztxt_chunk(k.to_string(), v.to_string()).unwrap();
        }
        for (k, v) in itxt {
            enc.add_itxt_chunk(k.to_string(), v.to_string()).unwrap();
        }
        let mut w = enc.write_header().unwrap();
        w.write_image_data(&[7u8; 16]).unwrap();
        w.finish().unwrap();
    }
    buf
}

fn data(name: &str) -> String {
    std::fs::read_to_string(manifest_dir().join("../tests/fixtures/interop").join(name)).unwrap()
}

#[test]
fn reads_all_three_kinds() {
    let png = png_with(
        &[("a", "plain")],
        &[("b", "zipped text, ünïcode-free latin1: é")],
        &[("c", "utf-8 ✓ text")],
    );
    let chunks = read_text_chunks(&png).unwrap();
    assert_eq!(
        chunks,
        vec![
            ("a".to_string(), "plain".to_string()),
            (
                "b".to_string(),
                "zipped text, ünïcode-free latin1: é".to_string()
            ),
            ("c".to_string(), "utf-8 ✓ text".to_string()),
        ]
    );
}

#[test]
fn embedded_chunks_after_the_image_data_are_read_and_replaced() {
    let png = png_with(&[], &[], &[]);
    let once = embed_text_chunks(&png, &[("k", "one"), ("other", "x")], false).unwrap();
    let twice = embed_text_chunks(&once, &[("k", "two")], true).unwrap();
    let chunks = read_text_chunks(&twice).unwrap();
    assert_eq!(
        chunks,
        vec![
            ("other".to_string(), "x".to_string()),
            ("k".to_string(), "two".to_string())
        ]
    );
    // The image is untouched.
    let mut r = png::Decoder::new(std::io::Cursor::new(&twice[..]))
        .read_info()
        .unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    r.next_frame(&mut buf).unwrap();
    assert_eq!(buf, vec![7u8; 16]);
}

fn sample_graph() -> GraphDoc {
    let comfy = engine::interop::comfy::import_workflow(&data("txt2img_api.json")).unwrap();
    let mut g = comfy.graph;
    g.meta.title = "from a png".into();
    g
}

#[test]
fn graph_round_trips_through_png() {
    let g = sample_graph();
    let png = embed_graph(&png_with(&[], &[], &[]), &g, false).unwrap();
    let (src, r) = graph_from_png_with_report(&png).unwrap().unwrap();
    assert_eq!(src, GraphSource::DefectStudio);
    assert_eq!(r.graph, g);
    assert_eq!(graph_from_png(&png).unwrap(), Some(g));
}

#[test]
fn our_chunk_wins_over_a1111_and_comfy() {
    let g = sample_graph();
    let base = png_with(
        &[(A1111_KEYWORD, "x\nSteps: 1, Seed: 2, CFG scale: 3")],
        &[],
        &[],
    );
    let png = embed_graph(&base, &g, false).unwrap();
    assert_eq!(graph_from_png(&png).unwrap(), Some(g));
}

#[test]
fn a1111_png() {
    let text = "a scratch\nNegative prompt: blur\nSteps: 12, Sampler: Euler a, CFG scale: 6, Seed: 9, Size: 512x512, Model: sd15";
    let png = png_with(&[(A1111_KEYWORD, text)], &[], &[]);
    let (src, r) = graph_from_png_with_report(&png).unwrap().unwrap();
    assert_eq!(src, GraphSource::A1111);
    assert_eq!(
        r.graph.nodes["txt2img"].params["steps"],
        nodes::ParamValue::Int(12)
    );
    nodes::validate(&r.graph, &engine::interop::catalogue()).unwrap();
}

#[test]
fn comfy_png_prompt_with_workflow_positions() {
    // ComfyUI writes both chunks as tEXt.
    let png = png_with(
        &[
            (COMFY_PROMPT_KEYWORD, &data("txt2img_api.json")),
            (COMFY_WORKFLOW_KEYWORD, &data("txt2img_ui.json")),
        ],
        &[],
        &[],
    );
    let (src, r) = graph_from_png_with_report(&png).unwrap().unwrap();
    assert_eq!(src, GraphSource::ComfyPrompt);
    assert_eq!(r.graph.nodes["3"].kind, "Txt2Img");
    assert_eq!(r.graph.layout["3"].pos, [863.0, 186.0]);
    nodes::validate(&r.graph, &engine::interop::catalogue()).unwrap();

    let only_workflow = png_with(
        &[(COMFY_WORKFLOW_KEYWORD, &data("txt2img_ui.json"))],
        &[],
        &[],
    );
    let (src, _) = graph_from_png_with_report(&only_workflow).unwrap().unwrap();
    assert_eq!(src, GraphSource::ComfyWorkflow);
}

#[test]
fn no_recipe_and_not_a_png() {
    assert_eq!(
        graph_from_png(&png_with(&[("Software", "x")], &[], &[])).unwrap(),
        None
    );
    assert!(read_text_chunks(b"GIF89a....").is_err());
    assert!(embed_text_chunks(b"nope", &[("k", "v")], false).is_err());
    let bad = png_with(
        &[(GRAPH_KEYWORD, "{\"format\": \"something else\"}")],
        &[],
        &[],
    );
    assert!(graph_from_png(&bad).is_err());
}

fn b64_of_len(n: usize) -> String {
    // Any valid-looking base64 of n bytes (only the length matters here).
    let mut s = "A".repeat(n.div_ceil(3) * 4);
    let pad = (3 - n % 3) % 3;
    for i in 0..pad {
        let len = s.len();
        s.replace_range(len - 1 - i..len - i, "=");
    }
    s
}

#[test]
fn large_assets_become_references() {
    assert_eq!(base64_decoded_len(&b64_of_len(10)), 10);
    assert_eq!(base64_decoded_len(&b64_of_len(11)), 11);
    assert_eq!(base64_decoded_len(&b64_of_len(12)), 12);
    let mut g = sample_graph();
    let mut assets = BTreeMap::new();
    assets.insert(
        "aa".repeat(32),
        Asset {
            mime: "image/png".into(),
            data_base64: b64_of_len(LARGE_ASSET_BYTES),
            external: false,
            size: None,
        },
    );
    assets.insert(
        "bb".repeat(32),
        Asset {
            mime: "image/png".into(),
            data_base64: b64_of_len(LARGE_ASSET_BYTES + 1),
            external: false,
            size: None,
        },
    );
    g.assets = assets;
    let small_only = prepare_assets(&g, false);
    assert!(!is_asset_reference(&small_only.assets[&"aa".repeat(32)]));
    let big = &small_only.assets[&"bb".repeat(32)];
    assert!(is_asset_reference(big));
    assert_eq!(big.mime, "image/png");
    assert_eq!(prepare_assets(&g, true), g);

    // What goes into the PNG is the prepared copy, and it is still a valid document.
    let png = embed_graph(&png_with(&[], &[], &[]), &g, false).unwrap();
    let back = graph_from_png(&png).unwrap().unwrap();
    assert_eq!(back, small_only);
    assert!(png.len() < LARGE_ASSET_BYTES, "{}", png.len());
}

#[test]
fn compressed_text_is_inflated_only_up_to_the_cap() {
    use engine::interop::png_meta::MAX_TEXT_BYTES;
    // Over the png crate's own 2 MiB default, under our cap: read whole.
    let big = "g".repeat(3 << 20);
    let chunks = read_text_chunks(&png_with(&[], &[("big", &big)], &[])).unwrap();
    assert_eq!(chunks[0].1.len(), big.len());
    // One chunk inflating past the cap, in a file a fraction of its size.
    let bomb = " ".repeat(MAX_TEXT_BYTES + (1 << 20));
    let file = png_with(&[], &[("parameters", &bomb)], &[]);
    assert!(file.len() < bomb.len() / 50);
    let err = read_text_chunks(&file).expect_err("refused").to_string();
    assert!(err.contains("zTXt") && err.contains("MiB of text"), "{err}");
    // Chunks under the cap one by one but over it together.
    let half = "h".repeat(MAX_TEXT_BYTES / 2 + 1);
    let file = png_with(&[], &[("a", &half), ("b", &half)], &[]);
    let err = read_text_chunks(&file).expect_err("refused").to_string();
    assert!(
        err.contains("\"b\"") && err.contains("MiB of text"),
        "{err}"
    );
    // Stored text counts against the decoder's limit before anything is inflated.
    let stored = "s".repeat(65 << 20);
    let err = read_text_chunks(&png_with(&[], &[], &[("s", &stored)]))
        .expect_err("refused")
        .to_string();
    assert!(err.contains("64 MiB"), "{err}");
}
