#!/usr/bin/env bash
# CPU benchmark: EfficientNet-Lite0 at 224², batch 1 and 8, ours (candle, release) next to the
# PyTorch reference, alternating so both see the same machine load; prints the ratio
# ours / PyTorch per batch (target <= 1.0). Needs the weights installed
# (`defect-studio models fetch efficientnet-lite0`) and a Python with torch and
# efficientnet-lite-pytorch: PYTHON=/path/to/venv/bin/python (e.g. ~/.cache/fixtures-lite0).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
RUNS=${RUNS:-10}
ROUNDS=${ROUNDS:-2}
# Threads for both sides (candle reads RAYON_NUM_THREADS); default: all cores.
THREADS=${THREADS:-0}
if [ "$THREADS" -gt 0 ]; then export RAYON_NUM_THREADS=$THREADS; fi
cargo bench -p engine --bench lite0 --no-run >/dev/null 2>&1
out=$(mktemp)
for _ in $(seq "$ROUNDS"); do
  for b in 1 8; do
    cargo bench -q -p engine --bench lite0 -- "$RUNS" "$b" 2>/dev/null | grep '^{' | tee -a "$out"
    "$PYTHON" scripts/bench_lite0_torch.py --runs "$RUNS" --batches "$b" --threads "$THREADS" | tee -a "$out"
  done
done
"$PYTHON" - "$out" <<'PY'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(b, impl, key):
    return statistics.median(r[key] for r in rows if r["batch"] == b and r["impl"] == impl)
for b in sorted({r["batch"] for r in rows}):
    for key, what in (("ms", "wall"), ("cpu_ms", "CPU")):
        ours, ref = med(b, "candle", key), med(b, "pytorch", key)
        print(f"batch {b} ({what}): candle {ours:.1f} ms, PyTorch {ref:.1f} ms, ratio {ours / ref:.2f}x")
PY
rm -f "$out"
