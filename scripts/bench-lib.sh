# Sourced by scripts/bench-cpu.sh and scripts/profile-cpu.sh: one release build (cargo's bench
# profile) of engine benches, whose executables are then run directly.
#
# bench_build LOGDIR BENCH...: builds the benches and fills the associative array EXE
# (bench name -> executable). Extra cargo arguments may come in BENCH_CARGO_ARGS.
declare -A EXE
bench_build() {
  local logdir=$1
  shift
  local -a args=()
  local b
  for b in "$@"; do args+=(--bench "$b"); done
  echo "building the benches $* (cargo bench --no-run) ..." >&2
  # shellcheck disable=SC2086
  if ! cargo bench -p engine "${args[@]}" --no-run --message-format=json ${BENCH_CARGO_ARGS:-} \
    >"$logdir/build.json" 2>"$logdir/build.log"; then
    tail -30 "$logdir/build.log" >&2
    echo "the build failed (log: $logdir/build.log)" >&2
    return 1
  fi
  for b in "$@"; do
    EXE[$b]=$(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == sys.argv[2] \
            and "bench" in m["target"]["kind"] and m.get("executable"):
        print(m["executable"])
' "$logdir/build.json" "$b" | tail -1)
    if [ ! -x "${EXE[$b]}" ]; then
      echo "no executable for bench $b in $logdir/build.json" >&2
      return 1
    fi
  done
}
