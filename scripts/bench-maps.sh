#!/usr/bin/env bash
# t-SNE and UMAP on 10,000 x 1,280 (issue 19's target): ours (release) next to scikit-learn's
# TSNE and umap-learn on the same data file. PYTHON: a Python with numpy, scikit-learn and
# umap-learn (e.g. ~/.cache/fixtures-maps/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
DATA=${MAPS_BENCH_DATA:-/tmp/maps-bench-10000x1280.f32}
[ -f "$DATA" ] || "$PYTHON" scripts/bench_maps_sklearn.py --write "$DATA"
MAPS_BENCH_DATA="$DATA" cargo bench -q -p engine --bench maps
"$PYTHON" scripts/bench_maps_sklearn.py --time "$DATA"
