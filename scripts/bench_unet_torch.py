"""PyTorch/diffusers side of the UNet benchmark (scripts/bench-cpu.sh on the CPU,
scripts/gpu-check.sh on a GPU).

Builds diffusers' UNet2DConditionModel with the real SD1.5 (or SDXL) configuration and random
weights, runs one warm-up and `--runs` forward passes (batch 1) at `--size`² pixels (latents
size/8) under `torch.inference_mode()`, eager mode with PyTorch's SDPA attention (diffusers'
default), and prints one JSON line (scripts/bench_report.py): seconds per evaluation (median),
it/s, peak resident memory (MiB).
"""
import argparse

import torch
from diffusers import UNet2DConditionModel

from bench_report import print_line, time_runs

SD15 = dict(
    sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
    block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    cross_attention_dim=768, attention_head_dim=8, norm_num_groups=32,
)
SDXL = dict(
    sample_size=128, in_channels=4, out_channels=4, layers_per_block=2,
    block_out_channels=(320, 640, 1280),
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    attention_head_dim=(5, 10, 20), use_linear_projection=True, addition_embed_type="text_time",
    addition_time_embed_dim=256, projection_class_embeddings_input_dim=2816,
    transformer_layers_per_block=(1, 2, 10), cross_attention_dim=2048, norm_num_groups=32,
)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--arch", choices=["sd15", "sdxl"], default="sd15")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", choices=["f32", "f16", "bf16"], default="f32")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    dtype = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}[a.dtype]
    dev = torch.device(a.device)
    torch.manual_seed(0)
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    with torch.inference_mode():
        with dev:  # random init on the device itself (SDXL's 2.6 B parameters init slowly on a CPU)
            unet = UNet2DConditionModel(**(SDXL if a.arch == "sdxl" else SD15)).eval().to(dtype)
        lat = a.size // 8
        x = torch.randn(1, 4, lat, lat, device=dev, dtype=dtype)
        ctx = torch.randn(1, 77, 2048 if a.arch == "sdxl" else 768, device=dev, dtype=dtype)
        added = None
        if a.arch == "sdxl":
            s = float(a.size)
            added = {"text_embeds": torch.randn(1, 1280, device=dev, dtype=dtype),
                     "time_ids": torch.tensor([[s, s, 0, 0, s, s]], device=dev, dtype=dtype)}
        warmup, times = time_runs(
            a.runs, lambda: unet(x, 500, encoder_hidden_states=ctx, added_cond_kwargs=added), sync)
    print_line("diffusers", "unet", a.size, warmup, times, torch=torch.__version__, arch=a.arch,
               device=a.device, dtype=a.dtype, threads=torch.get_num_threads())


if __name__ == "__main__":
    main()
