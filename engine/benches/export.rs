//! Dataset export throughput: 200 synthetic 512×512 images with masks (two blobs each, every
//! fourth image "good") exported in every format, in images per second.
//! Run with `cargo bench -p engine --bench export`.

use std::time::Instant;

use engine::codec::{encode_gray8_png, encode_rgba8_png};
use engine::dataset::{export, ExportItem, Format};

const N: usize = 200;
const S: u32 = 512;

fn item(i: usize) -> ExportItem {
    let (w, h) = (S as usize, S as usize);
    let mut rgba = Vec::with_capacity(w * h * 4);
    let mut mask = Vec::with_capacity(w * h);
    let (cx, cy) = (100.0 + (i % 7) as f64 * 40.0, 200.0);
    for y in 0..h {
        for x in 0..w {
            let n =
                ((x as u32).wrapping_mul(2654435761) ^ (y as u32).wrapping_mul(40503) ^ i as u32)
                    >> 27;
            rgba.extend([
                (x / 2) as u8 + n as u8,
                (y / 2) as u8 + n as u8,
                128 + n as u8,
                255,
            ]);
            let d1 = (x as f64 - cx).hypot(y as f64 - cy) < 30.0;
            let d2 = (x as f64 - 400.0).hypot((y as f64 - 100.0) * 3.0) < 50.0;
            mask.push(if (d1 || d2) && !i.is_multiple_of(4) {
                255
            } else {
                0
            });
        }
    }
    ExportItem {
        name: format!("s0-r{i}-o1"),
        image_png: encode_rgba8_png(S, S, &rgba).expect("encode image"),
        mask_png: Some(encode_gray8_png(S, S, &mask).expect("encode mask")),
        label: if i.is_multiple_of(4) {
            "good"
        } else {
            ["scratch", "dent", "crack"][i % 3]
        }
        .to_string(),
        provenance: serde_json::json!({ "seed": i }),
        instance_png: None,
        clean_png: None,
    }
}

fn main() {
    let items: Vec<ExportItem> = (0..N).map(item).collect();
    let tmp = tempfile::tempdir().expect("temp dir");
    for f in Format::ALL {
        let dir = tmp.path().join(f.name());
        let t = Instant::now();
        let report = export(&items, &f.into(), &dir).expect("export");
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(report.images, N);
        println!(
            "{:>6}: {N} images {S}x{S}, {} instances in {secs:.2} s = {:.0} images/s",
            f.name(),
            report.instances,
            N as f64 / secs
        );
    }
}
