#!/usr/bin/env bash
# CPU speed side by side (issue 16; docs/ARCHITECTURE.md §11): ours next to the reference each
# user would otherwise run, in one call, every measurement in its own process (so peak resident
# memory is per model and size), then a Markdown table of median seconds, ratios and peaks.
#
#   SD1.5 UNet evaluation, 256² and 512²  engine/benches/unet.rs   vs scripts/bench_unet_torch.py
#   SD1.5 VAE decode, 512²                engine/benches/vae.rs    vs scripts/bench_vae_torch.py
#   ISNet, 1024²                          engine/benches/isnet.rs  vs scripts/bench_isnet_ort.py
#   ControlNet + UNet evaluation, 256²    engine/benches/controlnet.rs vs scripts/bench_controlnet_torch.py
#     (measurement controlnet:SIZE; the UNet alone is timed in the same process, and the table is
#     followed by the seconds the ControlNet adds on each side)
#
# Random weights for the UNet, VAE and ControlNet (the real SD1.5 / control_v11p_sd15_canny
# configurations), the real weights for ISNet
# (`defect-studio models fetch isnet` first). PyTorch runs as its users run it: default threads,
# torch.inference_mode(), diffusers' default attention processor (SDPA); onnxruntime with
# default session options on the f32 graph our port computes.
#
# Environment:
#   RUNS        timed runs per process, after one warm-up (default 5)
#   ROUNDS      rounds (default 1); each round runs every pair, ours and the reference one after
#               the other, the order swapped every other round, so that drift in the machine's
#               load falls on both sides; medians are over all rounds' timed runs, peaks the max
#   ONLY        which measurements (default "unet:256 unet:512 vae:512 isnet:1024 controlnet:256")
#   PYTHON      Python with torch + diffusers (default ~/.cache/sd-venv/bin/python)
#   ORT_PYTHON  Python with onnxruntime + onnx + numpy (default ~/.cache/fixtures-ort/bin/python)
#   OUT         folder for the raw JSON lines and logs (default: a new temporary folder)
# Example: RUNS=1 ONLY="vae:128" scripts/bench-cpu.sh
set -uo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
ROUNDS=${ROUNDS:-1}
ONLY=${ONLY:-"unet:256 unet:512 vae:512 isnet:1024 controlnet:256"}
PYTHON=${PYTHON:-$HOME/.cache/sd-venv/bin/python}
ORT_PYTHON=${ORT_PYTHON:-$HOME/.cache/fixtures-ort/bin/python}
OUT=${OUT:-$(mktemp -d -t bench-cpu.XXXXXX)}
mkdir -p "$OUT"

# One release build of the benches ONLY needs; their executables run directly afterwards.
source scripts/bench-lib.sh
BENCHES=$(for item in $ONLY; do echo "${item%%:*}"; done | sort -u | tr '\n' ' ')
# shellcheck disable=SC2086
bench_build "$OUT" $BENCHES || exit 1

# run SIDE WHAT SIZE: one process, its JSON line appended to $OUT/SIDE-WHAT-SIZE.jsonl.
run() {
  local side=$1 what=$2 size=$3 log="$OUT/$1-$2-$3.log"
  local -a cmd
  case "$side:$what" in
    ours:unet) cmd=("${EXE[unet]}" "$size" "$RUNS") ;;
    ours:vae) cmd=("${EXE[vae]}" "$size" "$RUNS") ;;
    ours:isnet) cmd=("${EXE[isnet]}" "$RUNS") ;;
    ours:controlnet) cmd=("${EXE[controlnet]}" "$size" "$RUNS") ;;
    ref:unet) cmd=("$PYTHON" scripts/bench_unet_torch.py --size "$size" --runs "$RUNS") ;;
    ref:vae) cmd=("$PYTHON" scripts/bench_vae_torch.py --size "$size" --runs "$RUNS") ;;
    ref:isnet) cmd=("$ORT_PYTHON" scripts/bench_isnet_ort.py --runs "$RUNS") ;;
    ref:controlnet) cmd=("$PYTHON" scripts/bench_controlnet_torch.py --size "$size" --runs "$RUNS") ;;
    *) echo "bench-cpu.sh: unknown measurement $what (ONLY takes unet:SIZE vae:SIZE isnet:1024 controlnet:SIZE)" >&2
       exit 1 ;;
  esac
  echo "[$(date -u +%H:%M:%S)] $side $what $size: ${cmd[*]}" >&2
  if HF_HUB_OFFLINE=1 "${cmd[@]}" >"$log.out" 2>"$log"; then
    grep '^{' "$log.out" >>"$OUT/$side-$what-$size.jsonl"
  else
    echo "  failed (exit $?): see $log" >&2
  fi
  grep -v '^{' "$log.out" >>"$log"
  rm -f "$log.out"
}

for ((r = 0; r < ROUNDS; r++)); do
  for item in $ONLY; do
    what=${item%%:*} size=${item#*:}
    if [ "$what" = isnet ] && [ "$size" != 1024 ]; then
      echo "bench-cpu.sh: ISNet runs at 1024² only (got isnet:$size)" >&2
      exit 1
    fi
    if ((r % 2 == 0)); then
      run ours "$what" "$size"; run ref "$what" "$size"
    else
      run ref "$what" "$size"; run ours "$what" "$size"
    fi
  done
done

python3 - "$OUT" "$RUNS" "$ROUNDS" "$ONLY" <<'EOF'
import json, os, statistics, sys

out, runs, rounds, only = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split()
NAMES = {"unet": "SD1.5 UNet evaluation", "vae": "SD1.5 VAE decode", "isnet": "ISNet",
         "controlnet": "SD1.5 ControlNet + UNet evaluation"}


def load(side, what, size):
    path = os.path.join(out, f"{side}-{what}-{size}.jsonl")
    if not os.path.exists(path):
        return None
    lines = [json.loads(l) for l in open(path) if l.strip()]
    return lines or None


def cpu_model():
    try:
        for l in open("/proc/cpuinfo"):
            if l.startswith("model name"):
                return l.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


rows, refs, simd, threads, added = [], set(), set(), set(), []
for item in only:
    what, size = item.split(":")
    ours, ref = load("ours", what, size), load("ref", what, size)
    cells = []
    for lines in (ours, ref):
        if lines is None:
            cells.append((None, None))
            continue
        times = [t for l in lines for t in l["all"]]
        cells.append((statistics.median_high(times), max(l["peak_mib"] for l in lines)))
    for l in ours or []:
        simd.add(l.get("simd", "?"))
        threads.add(f"ours {l.get('threads')}")
    for l in ref or []:
        v = l.get("torch") or l.get("onnxruntime")
        refs.add(f"{l['impl']} ({'torch ' if 'torch' in l else 'onnxruntime '}{v})")
        threads.add(f"{l['impl']} {l.get('threads', l.get('cpus'))}")
    (os_, om), (rs, rm) = cells
    ref_name = (ref or [{}])[0].get("impl", "reference")
    fmt_s = lambda s: "—" if s is None else f"{s:.3f}"
    fmt_m = lambda m: "—" if m is None else f"{m:.0f}"
    ratio = "—" if os_ is None or rs is None else f"{os_ / rs:.2f}×"
    rows.append(f"| {NAMES.get(what, what)}, {size}² | {fmt_s(os_)} | {fmt_s(rs)} ({ref_name}) "
                f"| {ratio} | {fmt_m(om)} | {fmt_m(rm)} |")
    if what == "controlnet":
        # The UNet alone, timed in the same processes: what the ControlNet adds per evaluation.
        def split(lines):
            if lines is None:
                return None, None
            u = statistics.median_high([t for l in lines for t in l["unet_all"]])
            b = statistics.median_high([t for l in lines for t in l["all"]])
            return u, b - u
        (ou, oa), (ru, ra) = split(ours), split(ref)
        r = "—" if oa is None or ra is None else f"{oa / ra:.2f}×"
        added.append(f"ControlNet at {size}²: the UNet alone takes {fmt_s(ou)} s here and "
                     f"{fmt_s(ru)} s in {ref_name}; the ControlNet adds {fmt_s(oa)} s here and "
                     f"{fmt_s(ra)} s in {ref_name} (ratio {r})")

print()
print(f"CPU: {cpu_model()}, {os.cpu_count()} logical CPUs; our SIMD level: "
      f"{', '.join(sorted(simd)) or '?'}; threads: {', '.join(sorted(threads)) or '?'}; "
      f"references: {', '.join(sorted(refs)) or 'none ran'}; median of {runs} timed runs "
      f"× {rounds} round(s) per side, each side in its own process; ratio = ours / reference "
      f"(below 1: ours is faster); MiB = peak resident memory (raw lines: {out})")
print()
print("| what | ours s | reference s | ratio | ours MiB | reference MiB |")
print("| --- | --- | --- | --- | --- | --- |")
print("\n".join(rows))
for line in added:
    print()
    print(line)
EOF
