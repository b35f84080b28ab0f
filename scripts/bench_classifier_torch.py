"""PyTorch side of the classifier benchmark (scripts/bench-classifier.sh).

The same network as `engine::inspect::net`: the reference EfficientNet-Lite0
(`efficientnet-lite-pytorch` 0.1.0) with a 2-way head and every BatchNorm fused into its
convolution (`torch.nn.utils.fusion.fuse_conv_bn_eval`), random weights (speed does not depend
on them). One JSON line:
- `infer [--runs N]`: ms per forward pass at 224², batch 1 (median; wall `ms`, CPU `cpu_ms`);
- `train [--steps N --batch B --size S]`: images/s of forward + backward + AdamW step (median
  over steps after one warm-up; dropout on, drop-connect off, as ours) and peak RSS (MiB).
"""
import argparse
import json
import resource
import statistics
import time

import torch
import torch.nn.functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval

from efficientnet_lite_pytorch import EfficientNet


def fused_model(size):
    model = EfficientNet.from_name("efficientnet-lite0", num_classes=2, image_size=size,
                                   drop_connect_rate=0.0).eval()
    pairs = [(model, "_conv_stem", "_bn0"), (model, "_conv_head", "_bn1")]
    for b in model._blocks:
        if hasattr(b, "_expand_conv"):
            pairs.append((b, "_expand_conv", "_bn0"))
        pairs.append((b, "_depthwise_conv", "_bn1"))
        pairs.append((b, "_project_conv", "_bn2"))
    for mod, conv, bn in pairs:
        setattr(mod, conv, fuse_conv_bn_eval(getattr(mod, conv), getattr(mod, bn)))
        setattr(mod, bn, torch.nn.Identity())
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["infer", "train"])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    if a.mode == "infer":
        model = fused_model(224)
        x = torch.randn(1, 3, 224, 224)
        with torch.inference_mode():
            model(x)
            times, cpu = [], []
            for _ in range(a.runs):
                t, c = time.perf_counter(), time.process_time()
                model(x)
                times.append((time.perf_counter() - t) * 1000)
                cpu.append((time.process_time() - c) * 1000)
        print(json.dumps({"impl": "pytorch", "mode": "infer", "batch": 1,
                          "ms": round(statistics.median(times), 2),
                          "cpu_ms": round(statistics.median(cpu), 2), "runs": a.runs,
                          "threads": torch.get_num_threads()}))
        return
    model = fused_model(a.size)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randn(a.batch, 3, a.size, a.size)
    y = torch.arange(a.batch) % 2
    rates, cpu_rates = [], []
    for step in range(a.steps + 1):
        t, c = time.perf_counter(), time.process_time()
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        if step > 0:
            rates.append(a.batch / (time.perf_counter() - t))
            cpu_rates.append(a.batch / (time.process_time() - c))
    print(json.dumps({"impl": "pytorch", "mode": "train", "batch": a.batch, "size": a.size,
                      "images_per_s": round(statistics.median(rates), 3),
                      "cpu_images_per_s": round(statistics.median(cpu_rates), 3),
                      "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                      "steps": a.steps, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
