#!/usr/bin/env bash
# CPU benchmark of the defect classifier (engine::inspect::net): inference at 224², batch 1
# (target <= 30 ms and <= 1.0x PyTorch), training throughput at BATCH x SIZE² (target: our time
# <= 1.2x PyTorch's, i.e. images/s ratio >= 0.83), and peak training memory, ours (candle,
# release) next to PyTorch on the same network, alternating so both see the same load.
# Needs the weights installed (`defect-studio models fetch efficientnet-lite0`) and a Python
# with torch and efficientnet-lite-pytorch: PYTHON=~/.cache/fixtures-lite0/bin/python.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
RUNS=${RUNS:-20}
STEPS=${STEPS:-3}
BATCH=${BATCH:-8}
SIZE=${SIZE:-224}
THREADS=${THREADS:-$(nproc)}
export RAYON_NUM_THREADS=$THREADS
cargo bench -p engine --bench classifier --no-run >/dev/null 2>&1
out=$(mktemp)
cargo bench -q -p engine --bench classifier -- infer "$RUNS" 2>/dev/null | grep '^{' | tee -a "$out"
"$PYTHON" scripts/bench_classifier_torch.py infer --runs "$RUNS" --threads "$THREADS" | tee -a "$out"
cargo bench -q -p engine --bench classifier -- train "$STEPS" "$BATCH" "$SIZE" 2>/dev/null | grep '^{' | tee -a "$out"
"$PYTHON" scripts/bench_classifier_torch.py train --steps "$STEPS" --batch "$BATCH" --size "$SIZE" --threads "$THREADS" | tee -a "$out"
"$PYTHON" - "$out" <<'PY'
import json, sys
rows = {(r["impl"], r["mode"]): r for r in map(json.loads, open(sys.argv[1]))}
c, p = rows[("candle", "infer")], rows[("pytorch", "infer")]
for key, what in (("ms", "wall"), ("cpu_ms", "CPU")):
    print(f"inference 224² batch 1 ({what}): candle {c[key]:.1f} ms, PyTorch {p[key]:.1f} ms, ratio {c[key] / p[key]:.2f}x")
c, p = rows[("candle", "train")], rows[("pytorch", "train")]
for key, what in (("images_per_s", "wall"), ("cpu_images_per_s", "CPU")):
    print(f"training batch {c['batch']} at {c['size']}² ({what}): candle {c[key]:.2f} img/s, PyTorch {p[key]:.2f} img/s, time ratio {p[key] / c[key]:.2f}x")
print(f"training peak RSS: candle {c['peak_rss_mib']:.0f} MiB, PyTorch {p['peak_rss_mib']:.0f} MiB")
PY
rm -f "$out"
