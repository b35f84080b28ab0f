#!/usr/bin/env bash
# Per-operator CPU profile of one bench run (issue 16; docs/ARCHITECTURE.md §11):
#
#   scripts/profile-cpu.sh BENCH [ARGS...]     e.g.  scripts/profile-cpu.sh unet 512 1
#                                                    scripts/profile-cpu.sh vae 512 1
#                                                    scripts/profile-cpu.sh isnet 1
#
# Builds the bench (the same release build scripts/bench-cpu.sh times), records it with
# `perf record` (call graphs by DWARF unwinding: release builds keep no frame pointers, and
# rayon closures and generic helpers are inlined into symbols that name no operator), then
# prints Markdown tables of self time by operator class (scripts/profile_cpu_summary.py holds
# the classes) and the top symbols. The unet, vae and isnet benches switch perf on for their
# timed runs only (PERF_CTL_FIFO, engine/benches/common/report.rs): neither building the model
# nor the warm-up count. Other benches are recorded whole.
#
# Environment:
#   FREQ        samples per second per thread (default 499)
#   CALL_GRAPH  perf's --call-graph (default dwarf,16384; `fp` for frame pointers, the `-g`
#               default, which attributes by innermost symbol only in these builds)
#   TOP         symbols in the second table (default 25)
#   OUT         folder for perf.data, the report and the logs (default: a new temporary folder)
#   BENCH_CARGO_ARGS  extra cargo arguments for the build
# Function symbols resolve in bench builds as they are (debug = 0 strips debug information,
# not the symbol table), so no rebuild with debug information is needed.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ]; then
  sed -n '2,7p' "$0" >&2
  exit 2
fi
BENCH=$1
shift
FREQ=${FREQ:-499}
CALL_GRAPH=${CALL_GRAPH:-dwarf,16384}
TOP=${TOP:-25}
OUT=${OUT:-$(mktemp -d -t profile-cpu.XXXXXX)}
PERF=${PERF:-perf}
mkdir -p "$OUT"
command -v "$PERF" >/dev/null || { echo "profile-cpu.sh: perf is not installed" >&2; exit 1; }

source scripts/bench-lib.sh
bench_build "$OUT" "$BENCH" || exit 1

declare -a control=()
case "$BENCH" in
  unet | vae | isnet)
    fifo="$OUT/perf-ctl.fifo"
    rm -f "$fifo"
    mkfifo "$fifo"
    control=(-D -1 --control "fifo:$fifo")
    export PERF_CTL_FIFO=$fifo
    ;;
esac

echo "recording: $PERF record -F $FREQ --call-graph $CALL_GRAPH ${control[*]} -- ${EXE[$BENCH]} $*" >&2
if ! "$PERF" record -F "$FREQ" --call-graph "$CALL_GRAPH" "${control[@]}" -o "$OUT/perf.data" \
  -- "${EXE[$BENCH]}" "$@" >"$OUT/bench.out" 2>"$OUT/perf-record.log"; then
  tail -20 "$OUT/perf-record.log" >&2
  echo "profile-cpu.sh: perf record failed (log: $OUT/perf-record.log)" >&2
  exit 1
fi
unset PERF_CTL_FIFO
grep '^{' "$OUT/bench.out" >&2 || true

{
  echo "Per-operator CPU profile: \`$BENCH $*\` ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs), perf at $FREQ Hz per thread, call graphs: $CALL_GRAPH."
  echo
  "$PERF" script -i "$OUT/perf.data" -F comm,tid,period,ip,sym,dso 2>"$OUT/perf-script.log" |
    python3 scripts/profile_cpu_summary.py "$TOP"
} | tee "$OUT/profile.md"
echo >&2
echo "perf.data, the report (profile.md) and the logs: $OUT" >&2
