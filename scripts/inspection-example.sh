#!/usr/bin/env bash
# The inspection loop's worked example (README, "Worked example: does the synthetic data help?"):
#
#   generate → export → train-classifier → evaluate, on one texture family (brushed metal):
#   1. training set: examples/inspection/train-scratches.json, seeds 1..N_TRAIN; every item
#      saves a scratched plate (label scratch, exact mask) and the same plate as it is (good);
#   2. held-out sets from another texture seed range (100001..):
#      - the same defect generator (scratches): only the plates are new;
#      - another defect generator (examples/inspection/heldout-dents.json, dents): domain shift;
#   3. train-classifier (EfficientNet-Lite0 from its ImageNet weights, good vs defect);
#   4. evaluate on both held-out sets: image AUROC / AP / best F1, ROC and PR plots.
#
# Usage: scripts/inspection-example.sh            (full size, as in the README)
#        N_TRAIN=16 N_HELDOUT=8 EPOCHS=1 SIZE=64 scripts/inspection-example.sh   (a quick check)
# Environment: N_TRAIN, N_HELDOUT (work items; each gives two images), EPOCHS, SIZE (network
# input side), DEVICE (cpu, cuda), WORK (a new folder; default target/inspection-example),
# BIN (a built defect-studio binary; default: cargo run --release -p studio).
# Needs the Lite0 weights once: defect-studio models fetch efficientnet-lite0.
set -euo pipefail
cd "$(dirname "$0")/.."

N_TRAIN=${N_TRAIN:-150}
N_HELDOUT=${N_HELDOUT:-50}
EPOCHS=${EPOCHS:-6}
SIZE=${SIZE:-224}
DEVICE=${DEVICE:-cpu}
WORK=${WORK:-target/inspection-example}
BIN=${BIN:-}

ds() {
    if [ -n "$BIN" ]; then
        "$BIN" "$@"
    else
        cargo run --release -q -p studio -- "$@"
    fi
}

if [ -e "$WORK" ]; then
    echo "error: $WORK exists; remove it or set WORK to a new folder" >&2
    exit 1
fi
mkdir -p "$WORK"
STORE="$WORK/store.redb" # training and evaluation records (the sets have their own stores)
t0=$(date +%s)
step() { echo "== [$(($(date +%s) - t0)) s] $*"; }

gen() { # name recipe count seed
    step "generate $1: $2, $3 items from seed $4"
    ds run "$2" --count "$3" --seed "$4" --out "$WORK/$1/out" --store "$WORK/$1/store.redb" >/dev/null
    step "export $1 (folder layout)"
    ds export --store "$WORK/$1/store.redb" --format folder --out "$WORK/$1/dataset" >/dev/null
}

gen train examples/inspection/train-scratches.json "$N_TRAIN" 1
gen heldout-scratches examples/inspection/train-scratches.json "$N_HELDOUT" 100001
gen heldout-dents examples/inspection/heldout-dents.json "$N_HELDOUT" 100001

step "train-classifier: $EPOCHS epochs at ${SIZE}², $DEVICE"
ds train-classifier --data "$WORK/train/dataset" --out "$WORK/scratch-classifier.safetensors" \
    --epochs "$EPOCHS" --size "$SIZE" --device "$DEVICE" --store "$STORE"

for set in heldout-scratches heldout-dents; do
    step "evaluate on $set"
    mkdir -p "$WORK/eval-$set"
    # The JSON report: metrics, curves, and every image's path, true label and score.
    ds evaluate --model "$WORK/scratch-classifier.safetensors" --data "$WORK/$set/dataset" \
        --plots "$WORK/eval-$set" --device "$DEVICE" --store "$STORE" --json \
        >"$WORK/eval-$set/report.json"
done
step "done: the evaluations (first: held-out scratches, second: held-out dents)"
ds history --evaluations --store "$STORE"
echo "ROC and PR plots, JSON reports: $WORK/eval-heldout-scratches/, $WORK/eval-heldout-dents/"
