#!/usr/bin/env bash
# Compile-check the `cuda` feature on a machine with no GPU and no CUDA toolkit.
#
#   scripts/cuda-check.sh            # cargo check -p kernels --features cuda, then -p engine
#   scripts/cuda-check.sh kernels    # only the kernels crate
#   scripts/cuda-check.sh env        # print the exports (eval "$(scripts/cuda-check.sh env)")
#
# candle's `cuda` feature builds candle-kernels, whose build script runs nvcc on its .cu files, and
# cudarc (`cuda-version-from-build-system`), which asks nvcc for the CUDA version. Both are served
# by the CUDA 13.0.x pip wheels below, installed once into a venv under ~/.cache (reused on later
# runs; the pinned list is stamped into the venv, so editing it reinstalls). 13.0.x because the GPU
# machines run driver 580 (CUDA 13.0): newer PTX ISA would not load there. CUDA_COMPUTE_CAP=90
# (H100/H200) stands in for the nvidia-smi query that candle-kernels would otherwise make.
# Nothing is linked (`cargo check`), so no libcuda is needed.
#
# The target folder is $CARGO_TARGET_DIR, else ~/.cache/defect-studio-target (as .ci/run): the
# cuda-featured candle crates get their own artifacts there, next to the default build's, and the
# other dependencies are shared. The first run compiles candle-kernels' CUDA sources with nvcc
# (minutes); later runs reuse them.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${DEFECT_STUDIO_CUDA_VENV:-$HOME/.cache/defect-studio-cuda13}"
PKGS=(
  "nvidia-cuda-nvcc==13.0.*"    # nvcc, ptxas, bin/crt
  "nvidia-cuda-crt==13.0.*"     # include/crt/*.h (host_defines.h, mma.h, ...)
  "nvidia-nvvm==13.0.*"         # nvvm/bin/cicc, libnvvm
  "nvidia-cuda-runtime==13.0.*" # cuda_runtime.h, cuda_fp16.h, cuda_bf16.h
  "nvidia-cuda-cccl==13.0.*"    # cuda/std/*, which the CUDA 13 fp16/bf16 headers include
)
stamp="$VENV/.defect-studio-pkgs"
if [ ! -x "$VENV/bin/python" ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "${PKGS[*]}" ]; then
  [ -x "$VENV/bin/pip" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "${PKGS[@]}" >&2
  printf '%s' "${PKGS[*]}" >"$stamp"
fi

# The CUDA 13 wheels share one prefix: site-packages/nvidia/cu13/{bin,include,lib,nvvm}.
CUDA_ROOT="$("$VENV/bin/python" - <<'EOF'
import os, nvidia
for p in nvidia.__path__:
    d = os.path.join(p, "cu13")
    if os.path.isfile(os.path.join(d, "bin", "nvcc")):
        print(d)
        break
else:
    raise SystemExit("cuda-check: nvidia/cu13/bin/nvcc not found in the venv")
EOF
)"
# The wheels' lib folder has only versioned sonames; give the linker-style names nvcc may want.
for lib in "$CUDA_ROOT"/lib/lib*.so.*; do
  [ -e "$lib" ] || continue
  base="${lib%%.so.*}.so"
  [ -e "$base" ] || ln -s "$(basename "$lib")" "$base"
done

env_lines() {
  cat <<EOF
export CUDA_ROOT="$CUDA_ROOT"
export CUDA_PATH="$CUDA_ROOT"
export CUDA_HOME="$CUDA_ROOT"
export CUDA_TOOLKIT_ROOT_DIR="$CUDA_ROOT"
export PATH="$CUDA_ROOT/bin:\$PATH"
export LD_LIBRARY_PATH="$CUDA_ROOT/lib:$CUDA_ROOT/nvvm/lib64\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
export CUDA_COMPUTE_CAP=90
export DEFECT_STUDIO_CUDA_INCLUDE="$CUDA_ROOT/include"
EOF
}

what="${1:-all}"
if [ "$what" = env ]; then
  env_lines
  exit 0
fi
eval "$(env_lines)"
nvcc --version | tail -2 >&2

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/defect-studio-target}"
case "$what" in
  kernels) cargo check -p kernels --features cuda --tests --examples ;;
  engine) cargo check -p engine --features cuda --tests ;;
  all)
    cargo check -p kernels --features cuda --tests --examples
    cargo check -p engine --features cuda --tests
    ;;
  *) echo "usage: $0 [all|kernels|engine|env]" >&2; exit 2 ;;
esac
echo "cuda-check: passed ($what)" >&2
