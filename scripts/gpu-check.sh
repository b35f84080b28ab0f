#!/usr/bin/env bash
# GPU check of the `kernels` crate: correctness of every CUDA kernel against its cpu_ref, and
# attention TFLOP/s at SD shapes next to PyTorch SDPA on the same GPU; whole UNet it/s (SD1.5 at
# 512², SDXL at 1024², random weights, f16) next to diffusers on the same GPU.
#
#   scripts/gpu-check.sh build   # HERE (no GPU needed): CUDA 13.0.x pip wheels + release build of
#                                # kernels/examples/gpu_check.rs into .gpu-check/ (binary + libs)
#   scripts/gpu-check.sh run     # ON THE GPU MACHINE, from the repo root, with .gpu-check carried:
#                                # correctness, then benchmarks, then PyTorch SDPA at the same shapes
#
# Why this shape:
# - candle's `cuda` feature builds candle-kernels with nvcc at build time and links cudarc with
#   `dynamic-linking`, so the build needs a CUDA toolkit and the CUDA libraries. The toolkit comes
#   from pip wheels pinned to 13.0.x: the GPU machines' driver 580 is CUDA 13.0, and PTX from a
#   newer toolkit does not load there (DESIGN.md §4). CUDA_COMPUTE_CAP=90 (H100/H200).
# - Linking wants libcuda.so (the driver), which no wheel ships: we link against a stub made from
#   the driver symbols cudarc declares (soname libcuda.so.1); the real driver library is loaded on
#   the GPU machine.
# - Our own kernels are NOT built here: NVRTC compiles kernels/cuda/*.cu at first use on the GPU
#   machine (PTX cached under $DEFECT_STUDIO_PTX_CACHE), with the CUDA headers found through
#   $DEFECT_STUDIO_CUDA_INCLUDE / $CUDA_HOME / /usr/local/cuda/include.
#
# Device tool call (see /work/.library/device/README.md), after `echo /.gpu-check/ >> .git/info/exclude`
# (the binaries travel as .gpu-check/bins.tar.xz, under the tool's 64 MiB limit):
#   run(command="bash scripts/gpu-check.sh run 2>&1 | tee $OUT/gpu-check.log", carry=[".gpu-check"])
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-}
OUTDIR=.gpu-check

build() {
  VENV=${CUDA_VENV:-$HOME/.cache/defect-studio-cuda13}
  [ -x "$VENV/bin/pip" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "nvidia-cuda-nvcc==13.0.*" "nvidia-cuda-crt==13.0.*" "nvidia-nvvm==13.0.*" \
    "nvidia-cuda-runtime==13.0.*" "nvidia-cuda-cccl==13.0.*" "nvidia-cuda-nvrtc==13.0.*" \
    "nvidia-cublas==13.0.*" "nvidia-curand"
  SP=$("$VENV/bin/python" -c 'import site; print(site.getsitepackages()[0])')
  export CUDA_ROOT=$SP/nvidia/cu13 CUDA_PATH=$SP/nvidia/cu13 CUDA_HOME=$SP/nvidia/cu13
  export PATH=$CUDA_ROOT/bin:$PATH CUDA_COMPUTE_CAP=90
  # Link directory: unversioned names for the wheels' libraries, and the libcuda stub.
  LINKDIR=$PWD/$OUTDIR/link
  mkdir -p "$LINKDIR"
  for lib in cublas cublasLt curand nvrtc cudart; do
    f=$(ls "$CUDA_ROOT"/lib/lib$lib.so.* 2>/dev/null | grep -v alt | head -n1 || true)
    [ -n "$f" ] || { echo "gpu-check: lib$lib.so.* not found under $CUDA_ROOT/lib" >&2; exit 1; }
    ln -sf "$f" "$LINKDIR/lib$lib.so"
  done
  CUDARC=$(ls -d "$HOME"/.cargo/registry/src/*/cudarc-0.19.* | tail -n1)
  grep -oE '^\s+(pub )?fn cu[A-Za-z0-9_]+\(' "$CUDARC/src/driver/sys/mod.rs" \
    | sed -E 's/.*fn (cu[A-Za-z0-9_]+)\(/\1/' | sort -u \
    | awk '{print "void " $1 "(void) {}"}' > "$LINKDIR/cuda_stub.c"
  cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$LINKDIR/libcuda.so" "$LINKDIR/cuda_stub.c"
  # diffusers for the side-by-side UNet benchmark, in case the GPU machine's PyTorch venv lacks it
  # (pure-Python wheels, installed there with --no-deps beside its torch/transformers).
  rm -rf "$OUTDIR/wheels"
  "$VENV/bin/pip" download -q --no-deps -d "$OUTDIR/wheels" "diffusers==0.42.1" importlib_metadata zipp
  "$VENV/bin/pip" download -q --no-deps -d "$OUTDIR/wheels" pillow --python-version 3.12 \
    --only-binary=:all: --platform manylinux_2_28_x86_64
  export LIBRARY_PATH=$LINKDIR:${LIBRARY_PATH:-}
  CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/kernels-target} \
    cargo build --release -p kernels --features cuda --example gpu_check
  cp "${CARGO_TARGET_DIR:-/work/kernels-target}/release/examples/gpu_check" "$OUTDIR/gpu_check"
  # The UNet benchmark (engine/benches/unet.rs) with the cuda feature: whole UNet steps.
  CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/kernels-target} \
    cargo bench -p engine --features cuda --bench unet --no-run
  CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/kernels-target} \
    cargo bench -p engine --features cuda --bench train --no-run
  for b in unet train; do
    BIN=$(ls -t "${CARGO_TARGET_DIR:-/work/kernels-target}"/release/deps/$b-* | grep -v '\.d$' | head -n1)
    cp "$BIN" "$OUTDIR/${b}_bench"
  done
  strip "$OUTDIR"/gpu_check "$OUTDIR"/*_bench
  # The device tool carries at most 64 MiB; the binaries embed candle's PTX (text), which xz
  # shrinks several-fold.
  tar -cJf "$OUTDIR/bins.tar.xz" -C "$OUTDIR" gpu_check unet_bench train_bench
  rm -f "$OUTDIR"/gpu_check "$OUTDIR"/*_bench
  rm -rf "$LINKDIR"
  ls -l "$OUTDIR"
}

run() {
  [ -f "$OUTDIR/bins.tar.xz" ] && tar -xJf "$OUTDIR/bins.tar.xz" -C "$OUTDIR"
  [ -x "$OUTDIR/gpu_check" ] || { echo "gpu-check: build first (scripts/gpu-check.sh build) and carry $OUTDIR" >&2; exit 1; }
  nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv || true
  # The CUDA 13 libraries from the machine's PyTorch wheels (cuBLAS, cuRAND, NVRTC) and headers.
  PYLIBS=$(python3 - <<'PY'
import glob, os, site
dirs = set()
for sp in site.getsitepackages():
    for f in glob.glob(os.path.join(sp, "nvidia", "**", "lib*.so*"), recursive=True):
        dirs.add(os.path.dirname(f))
print(":".join(sorted(dirs)))
PY
)
  export LD_LIBRARY_PATH=$PYLIBS:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
  if ! python3 -c "import diffusers" 2>/dev/null && ls "$OUTDIR"/wheels/diffusers-*.whl >/dev/null 2>&1; then
    rm -rf /tmp/ds-pylib
    W=$(ls "$OUTDIR"/wheels/*.whl | grep -v pillow)
    python3 -c "import PIL" 2>/dev/null || W="$W $(ls "$OUTDIR"/wheels/pillow-*.whl)"
    python3 -m pip install -q --no-deps --target /tmp/ds-pylib $W
    export PYTHONPATH=/tmp/ds-pylib${PYTHONPATH:+:$PYTHONPATH}
  fi
  (nvcc --version | tail -n2; python3 -c "import torch, diffusers; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'diffusers', diffusers.__version__)") 2>&1 || true
  # Any CUDA 13 library still missing: look for it anywhere on the machine.
  for lib in $(ldd "$OUTDIR/train_bench" "$OUTDIR/gpu_check" | awk '/not found/ {print $1}' | sort -u); do
    f=$(timeout 30 find / \( -path /proc -o -path /sys \) -prune -o -name "$lib*" -print 2>/dev/null | head -n1)
    [ -n "$f" ] && export LD_LIBRARY_PATH=$(dirname "$f"):$LD_LIBRARY_PATH
    echo "gpu-check: $lib -> ${f:-MISSING}"
  done
  for inc in /usr/local/cuda/include $(timeout 30 find / \( -path /proc -o -path /sys \) -prune -o -name cuda_fp16.h -printf '%h\n' 2>/dev/null | head -n3); do
    [ -f "$inc/cuda_fp16.h" ] && { export DEFECT_STUDIO_CUDA_INCLUDE=$inc; break; }
  done
  echo "gpu-check: CUDA headers ${DEFECT_STUDIO_CUDA_INCLUDE:-MISSING}"
  export DEFECT_STUDIO_PTX_CACHE=/tmp/defect-studio-ptx
  ldd "$OUTDIR/gpu_check" | grep -E "not found|cuda|cublas|curand|nvrtc" || true
  set +e
  timeout 120 "$OUTDIR/gpu_check" check; CHECK=$?
  timeout 120 "$OUTDIR/gpu_check" bench
  # The same shapes on the CUDA-core kernel, for comparison with the tensor-core one.
  DEFECT_STUDIO_NO_TC_ATTENTION=1 timeout 120 "$OUTDIR/gpu_check" bench | sed 's/"bench"/"no_tc":true,"bench"/' 
  set -e
  # PyTorch SDPA at the same shapes (flash backend where it applies), for the side-by-side ratio.
  python3 - <<'PY' || CHECK=1
import json, torch
import torch.nn.functional as F
shapes = [("sd15_512_self_d40", 2, 8, 4096, 4096, 40), ("sd15_512_cross_d40", 2, 8, 4096, 77, 40),
          ("sd15_512_self_d80", 2, 8, 1024, 1024, 80), ("sd15_512_self_d160", 2, 8, 256, 256, 160),
          ("sdxl_1024_self_d64", 2, 10, 4096, 4096, 64), ("sdxl_1024_cross_d64", 2, 10, 4096, 77, 64),
          ("sdxl_1024_self_d64_h20", 2, 20, 1024, 1024, 64), ("vae_512_d512", 1, 1, 4096, 4096, 512),
          ("vae_1024_d512", 1, 1, 16384, 16384, 512)]
for dt in (torch.float16, torch.bfloat16):
    for label, b, h, lq, lk, d in shapes:
        q = torch.randn(b, h, lq, d, device="cuda", dtype=dt)
        k = torch.randn(b, h, lk, d, device="cuda", dtype=dt)
        v = torch.randn(b, h, lk, d, device="cuda", dtype=dt)
        flops = 4.0 * b * h * lq * lk * d
        iters = max(3, min(200, int(2e12 / flops)))
        for _ in range(3):
            F.scaled_dot_product_attention(q, k, v)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            F.scaled_dot_product_attention(q, k, v)
        end.record()
        torch.cuda.synchronize()
        ms = start.elapsed_time(end) / iters
        print(json.dumps({"bench": label, "dtype": str(dt).split(".")[-1].replace("float16", "f16").replace("bfloat16", "bf16"),
                          "torch_sdpa_ms": round(ms, 4), "torch_sdpa_tflops": round(flops / ms / 1e9, 2),
                          "torch": torch.__version__}))
PY
  # Whole UNet evaluations (random weights, batch 1, f16): ours next to diffusers eager + SDPA.
  # Each step is bounded, so that one hang does not eat the whole device budget.
  if [ -x "$OUTDIR/unet_bench" ]; then
    timeout 120 "$OUTDIR/unet_bench" 512 10 --arch sd15 --device cuda --dtype f16 || CHECK=1
    timeout 120 python3 scripts/bench_unet_torch.py --arch sd15 --size 512 --runs 10 --device cuda --dtype f16 || CHECK=1
    timeout 150 "$OUTDIR/unet_bench" 1024 10 --arch sdxl --device cuda --dtype f16 || CHECK=1
    timeout 150 python3 scripts/bench_unet_torch.py --arch sdxl --size 1024 --runs 10 --device cuda --dtype f16 || CHECK=1
  fi
  # LoRA training steps/s (SD1.5-shaped, batch 1, rank 8) at 512², with the peak GPU memory
  # in use sampled beside it (issue: it must fit a 24 GB card).
  if [ -x "$OUTDIR/train_bench" ]; then
    for dt in f16 f32; do
      nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 > /tmp/gpu-mem.txt &
      SMI=$!
      timeout 150 "$OUTDIR/train_bench" 10 --size 512 --device cuda --dtype $dt || CHECK=1
      kill $SMI 2>/dev/null || true
      echo "{\"train_gpu_mem_peak_mib\": $(sort -n /tmp/gpu-mem.txt | tail -n1), \"dtype\": \"$dt\"}"
    done
  fi
  exit $CHECK
}

case "$MODE" in
  build) build ;;
  run) run ;;
  *) sed -n '2,25p' "$0"; exit 2 ;;
esac
