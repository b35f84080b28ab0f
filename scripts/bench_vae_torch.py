"""PyTorch/diffusers side of the VAE decode benchmark (scripts/bench-cpu.sh; ours is
engine/benches/vae.rs).

Builds diffusers' AutoencoderKL with the real SD1.5 VAE configuration and random weights, runs
one warm-up and `--runs` decodes (batch 1, float32, no tiling or slicing) of random latents
4×(size/8)² under `torch.inference_mode()`, with diffusers' default attention processor (SDPA)
and PyTorch's default thread count, and prints one JSON line (scripts/bench_report.py).
"""
import argparse

import torch
from diffusers import AutoencoderKL

from bench_report import print_line, time_runs

# The real stable-diffusion-v1-5 vae/config.json (the same text as engine/benches/common/sd15.rs).
SD15_VAE = dict(
    in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2,
    block_out_channels=(128, 256, 512, 512),
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
    act_fn="silu", norm_num_groups=32, sample_size=512, scaling_factor=0.18215,
)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.size < 8 or a.size % 8:
        ap.error(f"--size must be a positive multiple of 8, got {a.size}")
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    vae = AutoencoderKL(**SD15_VAE).eval()
    lat = a.size // 8
    z = torch.randn(1, 4, lat, lat)

    def step():
        img = vae.decode(z).sample
        assert img.shape == (1, 3, a.size, a.size), img.shape

    with torch.inference_mode():
        warmup, times = time_runs(a.runs, step)
    print_line("diffusers", "vae-decode", a.size, warmup, times, torch=torch.__version__,
               device="cpu", dtype="f32", threads=torch.get_num_threads(),
               attn_processor=type(vae.decoder.mid_block.attentions[0].processor).__name__)


if __name__ == "__main__":
    main()
