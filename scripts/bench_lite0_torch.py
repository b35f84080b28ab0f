"""PyTorch side of the EfficientNet-Lite0 benchmark (scripts/bench-lite0.sh).

Runs the reference implementation (`efficientnet-lite-pytorch` 0.1.0, eval mode, no grad,
random weights: speed does not depend on them) at 224², and prints one JSON line per batch size:
milliseconds per forward pass (median of --runs after one warm-up): wall time `ms` and process
CPU time `cpu_ms` (steadier on a loaded machine).
"""
import argparse
import json
import statistics
import time

import torch
from efficientnet_lite_pytorch import EfficientNet


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = EfficientNet.from_name("efficientnet-lite0").eval()
    with torch.inference_mode():
        for b in a.batches:
            x = torch.randn(b, 3, 224, 224)
            model(x)
            times, cpu = [], []
            for _ in range(a.runs):
                t, c = time.perf_counter(), time.process_time()
                model(x)
                times.append((time.perf_counter() - t) * 1000)
                cpu.append((time.process_time() - c) * 1000)
            print(json.dumps({"impl": "pytorch", "batch": b, "ms": round(statistics.median(times), 2),
                              "cpu_ms": round(statistics.median(cpu), 2), "runs": a.runs,
                              "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
