"""The reference side of `engine/benches/maps.rs`: scikit-learn's TSNE and umap-learn's UMAP on
the same 10,000 x 1,280 data (a seeded Gaussian mixture), plus the data file both sides read.

    python scripts/bench_maps_sklearn.py --write /tmp/maps-bench.f32      # make the data
    python scripts/bench_maps_sklearn.py --time /tmp/maps-bench.f32       # time the references

Prints one JSON line per measurement. Needs numpy, scikit-learn and umap-learn (the venv of
tests/fixtures/explore/maps/make_maps_fixtures.py). scripts/bench-maps.sh runs both sides.
"""
import argparse
import json
import time

import numpy as np

N, D, CLUSTERS, SEED = 10_000, 1_280, 20, 19


def make():
    rng = np.random.RandomState(SEED)
    centres = rng.normal(0.0, 1.0, size=(CLUSTERS, D))
    # Unequal clusters, each with its own spread, plus a shared low-rank direction so the data
    # is not just isotropic blobs.
    labels = rng.choice(CLUSTERS, size=N, p=rng.dirichlet(np.ones(CLUSTERS) * 2.0))
    spread = rng.uniform(0.3, 0.9, size=CLUSTERS)
    basis = rng.normal(0.0, 1.0, size=(4, D))
    t = rng.normal(0.0, 1.0, size=(N, 4))
    x = centres[labels] + rng.normal(0.0, 1.0, size=(N, D)) * spread[labels, None] + 0.5 * t @ basis
    return np.maximum(x, 0.0).astype(np.float32)  # non-negative, like pooled ReLU6 features


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--write")
    ap.add_argument("--time")
    a = ap.parse_args()
    if a.write:
        make().tofile(a.write)
        print(json.dumps({"wrote": a.write, "n": N, "d": D, "seed": SEED}))
    if a.time:
        x = np.fromfile(a.time, dtype="<f4").reshape(N, D)
        from sklearn.decomposition import PCA
        from sklearn.manifold import TSNE

        t0 = time.perf_counter()
        TSNE(n_components=2, random_state=0).fit_transform(x)
        print(json.dumps({"impl": "sklearn TSNE (raw 1280-d)", "seconds": time.perf_counter() - t0}), flush=True)
        t0 = time.perf_counter()
        x50 = PCA(50, random_state=0).fit_transform(x)
        TSNE(n_components=2, random_state=0).fit_transform(x50)
        print(json.dumps({"impl": "sklearn PCA-50 + TSNE", "seconds": time.perf_counter() - t0}), flush=True)
        import umap

        small = x[:500]
        umap.UMAP(random_state=42).fit_transform(small)  # numba JIT warm-up, not timed
        t0 = time.perf_counter()
        umap.UMAP(random_state=42).fit_transform(x)
        print(json.dumps({"impl": "umap-learn UMAP (raw 1280-d, warm JIT)", "seconds": time.perf_counter() - t0}), flush=True)


if __name__ == "__main__":
    main()
