//! The exploration layer (`engine::explore::exploration`) over a real store: features computed
//! once and cached, ImageNet-style tags and statistics fields become queryable, maps, similar
//! items, planted near-duplicates, uniqueness, coverage of one set by another, and the analysis
//! download. The feature network is a fake whose embedding is the image's colour (the real
//! EfficientNet-Lite0 is tested against PyTorch elsewhere), so the expected neighbours are known.

use std::cell::Cell;
use std::path::PathBuf;

use engine::explore::features::{Embedded, Embedder};
use engine::explore::{
    coverage, explore, import_dataset, Catalog, ImportOptions, MapMethod, MapSpec,
};
use engine::Store;

/// Embedding = mean RGB / 255 plus a constant; "class" = the dominant channel.
struct ColourNet {
    images: Cell<usize>,
}

impl Embedder for ColourNet {
    fn id(&self) -> String {
        "colour@1".into()
    }
    fn class_name(&self, class: u16) -> String {
        ["red", "green", "blue"][usize::from(class) % 3].into()
    }
    fn embed(&self, images: &[image::RgbImage]) -> engine::Result<Vec<Embedded>> {
        self.images.set(self.images.get() + images.len());
        Ok(images
            .iter()
            .map(|im| {
                let n = (im.width() * im.height()) as f32;
                let mut m = [0f32; 3];
                for p in im.pixels() {
                    for c in 0..3 {
                        m[c] += f32::from(p[c]) / 255.0 / n;
                    }
                }
                let best = (0..3).max_by(|&a, &b| m[a].total_cmp(&m[b])).unwrap() as u16;
                Embedded {
                    embedding: vec![m[0], m[1], m[2], 0.05],
                    top5: vec![(best, 0.9), ((best + 1) % 3, 0.1)],
                }
            })
            .collect())
    }
}

fn png(rgb: [u8; 3], noise: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(16, 16, |x, y| {
        let j = ((x * 7 + y * 13 + noise * 31) % 5) as u8;
        image::Rgb([rgb[0].saturating_add(j), rgb[1], rgb[2]])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A store with two imported datasets: `real` (reds and blues) and `synth` (reds only, plus a
/// near-copy of one real red).
fn fixture() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store.redb")).unwrap();
    let write = |sub: &str, files: Vec<(String, Vec<u8>)>| -> PathBuf {
        let d = dir.path().join(sub);
        std::fs::create_dir_all(&d).unwrap();
        for (name, bytes) in files {
            std::fs::write(d.join(name), bytes).unwrap();
        }
        d
    };
    let mut real = Vec::new();
    for i in 0..12u32 {
        let red = i % 2 == 0;
        let v = (i * 9) as u8;
        let rgb = if red {
            [200 + v / 4, v, 10]
        } else {
            [10, v, 200 + v / 4]
        };
        real.push((format!("real{i:02}.png"), png(rgb, i)));
    }
    let mut synth = Vec::new();
    for i in 0..8u32 {
        let v = (i * 11) as u8;
        synth.push((
            format!("synth{i:02}.png"),
            png([205 + v / 4, v, 12], 100 + i),
        ));
    }
    let real_dir = write("real", real);
    let synth_dir = write("synth", synth);
    for (name, d) in [("real", real_dir), ("synth", synth_dir)] {
        import_dataset(&store, &[d], &ImportOptions::new(name), &mut |_, _| {}).unwrap();
    }
    (dir, store)
}

#[test]
fn features_once_then_tags_fields_maps_and_neighbours() {
    let (dir, store) = fixture();
    let net = ColourNet {
        images: Cell::new(0),
    };
    let cat = Catalog::new(&store);
    let mut ex = explore(&cat, "dataset:real", &net, &mut |_, _| {}).unwrap();
    assert_eq!(ex.ids.len(), 12);
    assert_eq!(ex.summary.computed, 12);
    assert_eq!(net.images.get(), 12);
    // The exploration's own items carry the tags and fields just computed.
    assert!(ex
        .items
        .iter()
        .all(|it| it.all_tags().any(|t| t == "imagenet:red")));
    assert!(ex.items.iter().all(|it| it.field("brightness").is_some()));
    // Cached: nothing is computed again.
    let again = explore(&cat, "dataset:real", &net, &mut |_, _| {}).unwrap();
    assert_eq!((again.summary.cached, again.summary.computed), (12, 0));
    assert_eq!(net.images.get(), 12);
    // The top classes are tags and the statistics are fields, usable in queries.
    let reds = cat.query("dataset:real AND imagenet:red").unwrap();
    let blues = cat
        .query("dataset:real AND imagenet:blue AND brightness>0")
        .unwrap();
    // Red items: top-5 = [red, green]; blue items: [blue, red].
    assert_eq!((reds.len(), blues.len()), (12, 6));
    let top_red = cat
        .query("dataset:real AND imagenet:red AND mean_r>150")
        .unwrap();
    assert_eq!(top_red.len(), 6);

    for method in MapMethod::ALL {
        for dims in [2, 3] {
            let coords = ex
                .compute_map(MapSpec {
                    method,
                    dims,
                    seed: 1,
                })
                .unwrap()
                .to_vec();
            assert_eq!(coords.len(), 12 * dims, "{method:?}");
            assert!(coords.iter().all(|v| v.is_finite()));
        }
    }
    // Similar items of a red one are red (embedding = colour).
    let red_id = ex.ids[0];
    let similar = ex.similar(red_id, 5).unwrap();
    assert_eq!(similar.len(), 5);
    for (id, _) in &similar {
        let i = ex.ids.iter().position(|x| x == id).unwrap();
        assert!(
            ex.features[i].embedding[0] > 0.5,
            "a blue item among a red one's neighbours"
        );
    }
    let u = ex.compute_uniqueness().unwrap().to_vec();
    assert_eq!(u.len(), 12);
    assert!(u.iter().all(|v| (0.0..=1.0).contains(v)));
    let a = ex.to_analysis();
    assert_eq!(a.rows.len(), 12);
    assert_eq!(a.dim, 4);
    assert!(a.rows[0].fields.contains_key("uniqueness"));
    let files = engine::explore::analysis_file::write_analysis(&dir.path().join("dl"), &a).unwrap();
    assert_eq!(files.len(), 4);
}

#[test]
fn planted_near_duplicates_are_grouped() {
    let (dir, store) = fixture();
    // Plant: a copy of real00 with one pixel changed, in a third dataset.
    let d = dir.path().join("planted");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("copy.png"), png([200, 0, 10], 999)).unwrap();
    import_dataset(&store, &[d], &ImportOptions::new("planted"), &mut |_, _| {}).unwrap();
    let net = ColourNet {
        images: Cell::new(0),
    };
    let cat = Catalog::new(&store);
    let ex = explore(&cat, "", &net, &mut |_, _| {}).unwrap();
    assert_eq!(ex.ids.len(), 21);
    let groups = ex.near_duplicates(1e-5).unwrap();
    let copy = cat.query("dataset:planted").unwrap()[0];
    let real00 = ex
        .ids
        .iter()
        .copied()
        .find(|id| cat.item(*id).unwrap().unwrap().name.ends_with("real00.png"))
        .unwrap();
    assert!(
        groups
            .iter()
            .any(|g| g.contains(&copy) && g.contains(&real00)),
        "planted pair not found in {groups:?}"
    );
}

#[test]
fn coverage_of_real_by_synthetic() {
    let (_dir, store) = fixture();
    let net = ColourNet {
        images: Cell::new(0),
    };
    let cat = Catalog::new(&store);
    let same = coverage(&cat, "dataset:real", "dataset:real", &net, &mut |_, _| {}).unwrap();
    assert_eq!((same.precision, same.recall), (1.0, 1.0));
    assert!(same.uncovered.is_empty());
    let r = coverage(&cat, "dataset:real", "dataset:synth", &net, &mut |_, _| {}).unwrap();
    assert_eq!((r.real, r.synthetic), (12, 8));
    // Reds only: the blue half of the real set is not covered, and nothing synthetic is blue.
    let blues: Vec<u64> = cat.query("dataset:real AND mean_b>150").unwrap();
    assert_eq!(r.uncovered, blues);
    assert!(r.recall <= 0.5 + 1e-9, "recall {}", r.recall);
    assert!(r.kid > same.kid);
    assert_eq!(r.kid_subset_size, 8);
    let err = coverage(
        &cat,
        "dataset:nothing",
        "dataset:real",
        &net,
        &mut |_, _| {},
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("dataset:nothing"), "{err}");
}
