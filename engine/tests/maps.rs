//! engine::analysis against the reference numbers of `tests/fixtures/explore/maps/`
//! (`make_maps_fixtures.py`: scikit-learn, umap-learn, prdc, torch-fidelity on 1,500 real
//! handwritten digits).

use std::path::PathBuf;

use engine::analysis::{
    self, coverage::precision_recall_detail, kid_on_subsets, CosineQuery, KidParams, TsneParams,
    UmapParams,
};

const N: usize = 1500;
const D: usize = 64;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/explore/maps")
}

fn read_f32(name: &str) -> Vec<f32> {
    let bytes = std::fs::read(dir().join(name)).unwrap();
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn read_f64(name: &str) -> Vec<f64> {
    let bytes = std::fs::read(dir().join(name)).unwrap();
    bytes
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn reference() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir().join("reference.json")).unwrap()).unwrap()
}

fn num(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap()
}

#[test]
fn pca_equals_sklearn_with_svd_flip_signs() {
    let data = read_f32("data.f32");
    let want = read_f64("pca3_sklearn.f64");
    let got = analysis::pca(&data, N, D, 3).unwrap();
    for c in 0..3 {
        let scale = (0..N).map(|i| want[i * 3 + c].abs()).fold(0.0, f64::max);
        let err = (0..N)
            .map(|i| (got[i * 3 + c] as f64 - want[i * 3 + c]).abs())
            .fold(0.0, f64::max);
        assert!(
            err <= 1e-5 * scale,
            "component {c}: max error {err} (scale {scale})"
        );
    }
}

#[test]
fn trustworthiness_equals_sklearn_on_stored_embeddings() {
    let data = read_f32("data.f32");
    let r = reference();
    for (file, key) in [
        ("tsne_sklearn.f32", "trust_tsne_sklearn"),
        ("umap_learn.f32", "trust_umap_learn"),
    ] {
        let low = read_f32(file);
        let t = analysis::trustworthiness(&data, &low, N, D, 2, 10).unwrap();
        let want = num(&r[key]);
        assert!((t - want).abs() <= 1e-9, "{file}: ours {t}, sklearn {want}");
    }
}

#[test]
fn tsne_2d_is_as_trustworthy_as_sklearn() {
    let data = read_f32("data.f32");
    let want = num(&reference()["trust_tsne_sklearn"]);
    let y = analysis::tsne(&data, N, D, &TsneParams::default()).unwrap();
    let t = analysis::trustworthiness(&data, &y, N, D, 2, 10).unwrap();
    eprintln!("t-SNE trustworthiness: ours {t:.4}, sklearn {want:.4}");
    assert!((t - want).abs() <= 0.02, "ours {t}, sklearn {want}");
}

#[test]
fn umap_2d_is_as_trustworthy_as_umap_learn() {
    let data = read_f32("data.f32");
    let want = num(&reference()["trust_umap_learn"]);
    let y = analysis::umap(&data, N, D, &UmapParams::default()).unwrap();
    let t = analysis::trustworthiness(&data, &y, N, D, 2, 10).unwrap();
    eprintln!("UMAP trustworthiness: ours {t:.4}, umap-learn {want:.4}");
    assert!((t - want).abs() <= 0.02, "ours {t}, umap-learn {want}");
}

#[test]
fn maps_are_deterministic_per_seed_and_work_in_3d() {
    let data = read_f32("data.f32");
    let n = 300;
    let part = &data[..n * D];
    let tp = TsneParams {
        out_dim: 3,
        max_iter: 300,
        ..TsneParams::default()
    };
    let a = analysis::tsne(part, n, D, &tp).unwrap();
    assert_eq!(a, analysis::tsne(part, n, D, &tp).unwrap());
    assert_eq!(a.len(), n * 3);
    assert!(analysis::trustworthiness(part, &a, n, D, 3, 10).unwrap() > 0.9);
    for dim in [2, 3] {
        let up = UmapParams {
            out_dim: dim,
            seed: 7,
            ..UmapParams::default()
        };
        let u = analysis::umap(part, n, D, &up).unwrap();
        assert_eq!(u.len(), n * dim);
        assert_eq!(
            u,
            analysis::umap(part, n, D, &up).unwrap(),
            "UMAP {dim}D, same seed"
        );
        let other = analysis::umap(part, n, D, &UmapParams { seed: 8, ..up }).unwrap();
        assert_ne!(u, other, "UMAP {dim}D: another seed gives another layout");
        assert!(analysis::trustworthiness(part, &u, n, D, dim, 10).unwrap() > 0.9);
    }
    // Fewer rows than n_neighbors: truncated to n − 1, as umap-learn does.
    let few = analysis::umap(&part[..10 * D], 10, D, &UmapParams::default()).unwrap();
    assert!(few.len() == 20 && few.iter().all(|v| v.is_finite()));
    // Bad input is an error naming the function, not a panic.
    let e = analysis::tsne(&part[..10], n, D, &TsneParams::default()).unwrap_err();
    assert!(e.to_string().contains("tsne"), "{e}");
    let e = analysis::umap(
        part,
        n,
        D,
        &UmapParams {
            out_dim: 4,
            ..UmapParams::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("umap"), "{e}");
}

#[test]
fn coverage_equals_prdc_and_torch_fidelity() {
    let data = read_f32("data.f32");
    let r = reference();
    let nr = 750;
    let real = &data[..nr * D];
    let subsets_raw: Vec<u16> = std::fs::read(dir().join("kid_subsets.u16"))
        .unwrap()
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    let (ns, m) = (50, 300);
    let fakes = [
        ("a_split", data[nr * D..].to_vec()),
        ("b_drawn_from_real", read_f32("cov_b_fake.f32")),
        ("c_disjoint", read_f32("cov_c_fake.f32")),
    ];
    for (case, (name, fake)) in fakes.iter().enumerate() {
        let want = &r["coverage"][name];
        let pr = precision_recall_detail(real, fake, D, 3).unwrap();
        assert!(
            (pr.precision - num(&want["precision"])).abs() <= 1e-6,
            "{name}: precision {} vs {}",
            pr.precision,
            want["precision"]
        );
        assert!(
            (pr.recall - num(&want["recall"])).abs() <= 1e-6,
            "{name}: recall {} vs {}",
            pr.recall,
            want["recall"]
        );
        assert_eq!(
            pr.uncovered.len(),
            ((1.0 - pr.recall) * nr as f64).round() as usize
        );
        let subsets: Vec<(Vec<usize>, Vec<usize>)> = (0..ns)
            .map(|s| {
                let base = (case * ns + s) * 2 * m;
                let pick = |o: usize| {
                    subsets_raw[base + o * m..base + (o + 1) * m]
                        .iter()
                        .map(|&v| v as usize)
                        .collect()
                };
                (pick(0), pick(1))
            })
            .collect();
        let (mean, std) = kid_on_subsets(real, fake, D, &subsets, &KidParams::default()).unwrap();
        for (got, key) in [(mean, "kid_mean"), (std, "kid_std")] {
            let w = num(&want[key]);
            assert!(
                (got - w).abs() <= 1e-6 * w.abs().max(1.0),
                "{name}: {key} {got} vs torch-fidelity {w}"
            );
        }
        match *name {
            "b_drawn_from_real" => assert!(pr.precision > 0.95 && pr.recall > 0.95, "{pr:?}"),
            "c_disjoint" => {
                assert_eq!((pr.precision, pr.recall), (0.0, 0.0));
                assert_eq!(pr.uncovered.len(), nr);
            }
            _ => {}
        }
    }
    // The seeded subsets give the same kind of number.
    let (mean, _) = analysis::kid(
        real,
        &fakes[2].1,
        D,
        &KidParams {
            subset_size: 300,
            ..KidParams::default()
        },
    )
    .unwrap();
    assert!(mean > 10.0 * num(&r["coverage"]["a_split"]["kid_mean"]).abs());
}

#[test]
fn planted_near_duplicates_are_found_and_uniqueness_ranks_the_outlier_first() {
    let data = read_f32("data.f32");
    let n0 = 300;
    let mut rows = data[..n0 * D].to_vec();
    // Plant near-copies of rows 5, 50 and 250 (two of row 5), then one far outlier.
    let planted = [5usize, 5, 50, 250];
    for (p, &src) in planted.iter().enumerate() {
        let copy: Vec<f32> = rows[src * D..(src + 1) * D]
            .iter()
            .enumerate()
            .map(|(j, v)| v * 1.001 + 0.002 * ((j + p) % 3) as f32)
            .collect();
        rows.extend(copy);
    }
    let outlier: Vec<f32> = (0..D)
        .map(|j| if j % 2 == 0 { 16.0 } else { 0.0 })
        .collect();
    rows.extend(&outlier);
    let n = n0 + planted.len() + 1;
    let nd = analysis::near_duplicates(&rows, n, D, 1e-4).unwrap();
    let groups: Vec<Vec<usize>> = nd.groups.clone();
    assert_eq!(
        groups,
        vec![vec![5, 300, 301], vec![50, 302], vec![250, 303]],
        "{nd:?}"
    );
    let sim = analysis::knn_cosine(&rows, n, D, CosineQuery::Index(302), 3).unwrap();
    assert_eq!(sim[0].0, 50);
    // The query row itself (distance ~0 in f32) and its planted copy, in either order.
    let by_vector =
        analysis::knn_cosine(&rows, n, D, CosineQuery::Vector(&rows[250 * D..251 * D]), 2).unwrap();
    let mut found: Vec<usize> = by_vector.iter().map(|p| p.0).collect();
    found.sort_unstable();
    assert_eq!(found, vec![250, 303]);
    let u = analysis::uniqueness(&rows, n, D).unwrap();
    let top = (0..n).max_by(|&a, &b| u[a].total_cmp(&u[b])).unwrap();
    assert_eq!(top, n - 1, "the outlier is the most unique");
    assert_eq!(u[n - 1], 1.0);
    assert!(u[5] < 0.5 && u[300] < 0.5, "duplicates are not unique");
    assert!(analysis::near_duplicates(&rows, n, D, 3.0).is_err());
}
