#!/usr/bin/env bash
# CPU benchmark: one SD1.5-shaped UNet evaluation (batch 1, f32, random weights) at 256² and
# 512², ours (candle) next to diffusers/PyTorch, each size in its own process so peak memory
# is per size. Needs a Python with torch + diffusers: PYTHON=/path/to/venv/bin/python.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
RUNS=${RUNS:-3}
SIZES=${SIZES:-"256 512"}
cargo bench -p engine --bench unet --no-run >/dev/null 2>&1
for s in $SIZES; do
  cargo bench -q -p engine --bench unet -- "$s" "$RUNS" 2>/dev/null | grep '^{'
  HF_HUB_OFFLINE=1 "$PYTHON" scripts/bench_unet_torch.py --size "$s" --runs "$RUNS"
done
