"""PyTorch/diffusers side of the UNet CPU benchmark (see scripts/bench-unet.sh).

Builds diffusers' UNet2DConditionModel with the real SD1.5 configuration and random weights,
runs `--runs` forward passes (batch 1, float32, CPU) at `--size`² pixels (latents size/8) and
prints one JSON line: seconds per evaluation (median), peak resident memory (MiB).
"""
import argparse
import json
import resource
import statistics
import time

import torch
from diffusers import UNet2DConditionModel

SD15 = dict(
    sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
    block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    cross_attention_dim=768, attention_head_dim=8, norm_num_groups=32,
)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    with torch.no_grad():
        unet = UNet2DConditionModel(**SD15).eval()
        lat = a.size // 8
        x = torch.randn(1, 4, lat, lat)
        ctx = torch.randn(1, 77, 768)
        times = []
        for _ in range(a.runs):
            t0 = time.perf_counter()
            unet(x, 500, encoder_hidden_states=ctx)
            times.append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"impl": "diffusers", "torch": torch.__version__, "size": a.size,
                      "threads": torch.get_num_threads(),
                      "seconds": statistics.median(times), "all": times, "peak_mib": peak}))


if __name__ == "__main__":
    main()
