#!/usr/bin/env python3
"""Compile every kernels/cuda/*.cu to PTX with NVRTC, without a GPU (CI check).

NVRTC is loaded with ctypes from the pip wheels `nvidia-cuda-nvrtc-cu12` (libnvrtc),
`nvidia-cuda-runtime-cu12` (cuda_fp16.h, cuda_bf16.h, mma.h) and `nvidia-cuda-nvcc-cu12`
(crt/mma.h, for the tensor-core kernel). The CUDA 13 layout of the wheels
(`nvidia/cu13/{lib,include}`) is accepted too. Run it with the Python of the venv that holds them:

    python3 -m venv ~/.cache/defect-studio-nvrtc
    ~/.cache/defect-studio-nvrtc/bin/pip install -q nvidia-cuda-nvrtc-cu12 nvidia-cuda-runtime-cu12 \
        nvidia-cuda-nvcc-cu12
    ~/.cache/defect-studio-nvrtc/bin/python scripts/nvrtc_check.py

For each source and each architecture (compute_90 and compute_80 by default) it prints NVRTC's log,
checks that the PTX has an `.entry` for every kernel the source defines (`DEFINE_*(name, ...)` or
`extern "C" __global__ void name(`), and exits non-zero on any compile error or missing entry.
`--ptx-dir DIR` writes the PTX files.
"""
import argparse
import ctypes
import glob
import os
import re
import site
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CUDA_DIR = os.path.join(ROOT, "kernels", "cuda")


def site_dirs():
    dirs = list(site.getsitepackages())
    user = site.getusersitepackages()
    if isinstance(user, str):
        dirs.append(user)
    dirs += [p for p in sys.path if p.endswith("site-packages")]
    seen, out = set(), []
    for d in dirs:
        if d not in seen and os.path.isdir(d):
            seen.add(d)
            out.append(d)
    return out


def find_nvrtc(explicit):
    if explicit:
        return explicit
    cands = []
    for sp in site_dirs():
        for sub in ("nvidia/cuda_nvrtc/lib", "nvidia/cu13/lib"):
            cands += glob.glob(os.path.join(sp, sub, "libnvrtc.so*"))
    # The plain library, not the builtins nor the `.alt` variant.
    cands = [c for c in cands if re.search(r"/libnvrtc\.so(\.\d+)*$", c)]
    if not cands:
        sys.exit("nvrtc_check: libnvrtc.so not found under site-packages/nvidia/cuda_nvrtc/lib; "
                 "pip install nvidia-cuda-nvrtc-cu12 into this Python's environment")
    return sorted(cands)[0]


def find_includes(explicit):
    if explicit:
        return explicit
    incs = []
    for sp in site_dirs():
        for sub in ("nvidia/cuda_runtime/include", "nvidia/cu13/include"):
            d = os.path.join(sp, sub)
            if os.path.isfile(os.path.join(d, "cuda_fp16.h")):
                incs.append(d)
        # mma.h (WMMA) includes crt/mma.h, which the cu12 wheels ship in nvidia-cuda-nvcc-cu12.
        d = os.path.join(sp, "nvidia/cuda_nvcc/include")
        if os.path.isfile(os.path.join(d, "crt", "mma.h")):
            incs.append(d)
    return incs


class Nvrtc:
    def __init__(self, path):
        self.lib = ctypes.CDLL(path)
        L = self.lib
        L.nvrtcGetErrorString.restype = ctypes.c_char_p
        L.nvrtcCreateProgram.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p,
                                         ctypes.c_char_p, ctypes.c_int,
                                         ctypes.POINTER(ctypes.c_char_p),
                                         ctypes.POINTER(ctypes.c_char_p)]
        L.nvrtcCompileProgram.argtypes = [ctypes.c_void_p, ctypes.c_int,
                                          ctypes.POINTER(ctypes.c_char_p)]
        L.nvrtcGetProgramLogSize.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t)]
        L.nvrtcGetProgramLog.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        L.nvrtcGetPTXSize.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t)]
        L.nvrtcGetPTX.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        L.nvrtcDestroyProgram.argtypes = [ctypes.POINTER(ctypes.c_void_p)]

    def version(self):
        major, minor = ctypes.c_int(), ctypes.c_int()
        self.lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor))
        return major.value, minor.value

    def check(self, code, what):
        if code != 0:
            raise RuntimeError(f"{what}: {self.lib.nvrtcGetErrorString(code).decode()}")

    def compile(self, src, name, options):
        """Returns (ok, log, ptx)."""
        prog = ctypes.c_void_p()
        self.check(self.lib.nvrtcCreateProgram(ctypes.byref(prog), src.encode(), name.encode(),
                                               0, None, None), "nvrtcCreateProgram")
        try:
            opts = (ctypes.c_char_p * len(options))(*[o.encode() for o in options])
            res = self.lib.nvrtcCompileProgram(prog, len(options), opts)
            size = ctypes.c_size_t()
            self.check(self.lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size)), "log size")
            buf = ctypes.create_string_buffer(size.value)
            self.check(self.lib.nvrtcGetProgramLog(prog, buf), "log")
            log = buf.value.decode(errors="replace").strip()
            if res != 0:
                return False, log or self.lib.nvrtcGetErrorString(res).decode(), None
            self.check(self.lib.nvrtcGetPTXSize(prog, ctypes.byref(size)), "ptx size")
            buf = ctypes.create_string_buffer(size.value)
            self.check(self.lib.nvrtcGetPTX(prog, buf), "ptx")
            return True, log, buf.value.decode()
        finally:
            self.lib.nvrtcDestroyProgram(ctypes.byref(prog))


def expected_kernels(src):
    names = re.findall(r"^DEFINE_\w+\(\s*(\w+)", src, re.M)
    # Kernels written out directly (macro bodies, with their parameter names, left out).
    body = re.sub(r"^#\s*define(?:[^\n]*\\\n)*[^\n]*", "", src, flags=re.M)
    names += re.findall(r'extern\s+"C"\s+__global__\s+void\s+(?:__launch_bounds__\([^)]*\)\s+)?(\w+)\s*\(',
                        body)
    return sorted(set(names))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", action="append", help="e.g. compute_90 (repeatable; default 90 and 80)")
    ap.add_argument("--nvrtc", help="path to libnvrtc.so (default: found in site-packages)")
    ap.add_argument("--include", action="append", help="include dir (default: the runtime wheel's)")
    ap.add_argument("--ptx-dir", help="write the PTX files here")
    ap.add_argument("sources", nargs="*", help="default: kernels/cuda/*.cu")
    args = ap.parse_args()

    archs = args.arch or ["compute_90", "compute_80"]
    lib = find_nvrtc(args.nvrtc)
    incs = find_includes(args.include)
    nvrtc = Nvrtc(lib)
    print(f"nvrtc {nvrtc.version()[0]}.{nvrtc.version()[1]} from {lib}")
    print("include paths: " + (", ".join(incs) if incs else "(none)"))
    sources = args.sources or sorted(glob.glob(os.path.join(CUDA_DIR, "*.cu")))
    if not sources:
        sys.exit("nvrtc_check: no .cu sources found")

    failures = 0
    for path in sources:
        src = open(path, encoding="utf-8").read()
        name = os.path.basename(path)
        want = expected_kernels(src)
        for arch in archs:
            opts = [f"--gpu-architecture={arch}", "--std=c++17"]
            opts += [f"--include-path={d}" for d in incs]
            ok, log, ptx = nvrtc.compile(src, name, opts)
            status = "ok" if ok else "FAILED"
            print(f"== {name} [{arch}]: {status}")
            if log:
                print(log)
            if not ok:
                failures += 1
                continue
            entries = set(re.findall(r"^\.(?:visible\s+)?\.entry\s+(\w+)", ptx, re.M))
            missing = [k for k in want if k not in entries]
            version = re.search(r"^\.version\s+(\S+)", ptx, re.M)
            print(f"   PTX ISA {version.group(1) if version else '?'}, {len(ptx)} bytes, "
                  f"{len(entries)} entries: {', '.join(sorted(entries))}")
            if missing or not want:
                print(f"   missing entries: {missing or 'no kernels declared'}")
                failures += 1
            if args.ptx_dir:
                os.makedirs(args.ptx_dir, exist_ok=True)
                out = os.path.join(args.ptx_dir, f"{os.path.splitext(name)[0]}.{arch}.ptx")
                with open(out, "w", encoding="utf-8") as f:
                    f.write(ptx)
    print(f"nvrtc_check: {len(sources)} sources x {len(archs)} archs, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
