"""PyTorch/diffusers side of the ControlNet benchmark (scripts/bench-cpu.sh, measurement
`controlnet:SIZE`; ours is engine/benches/controlnet.rs).

Builds diffusers' UNet2DConditionModel with the real SD1.5 configuration and a ControlNetModel
with the real `control_v11p_sd15_canny` configuration, random weights, and times at `--size`²
pixels (latents size/8), batch 1, under `torch.inference_mode()`, eager mode with PyTorch's SDPA
attention (diffusers' default): the UNet alone, then ControlNet + UNet with its residuals
(`down_block_additional_residuals`, `mid_block_additional_residual`, as the ControlNet pipelines
call them). Prints one JSON line (scripts/bench_report.py): `seconds` = median of ControlNet +
UNet, `unet_seconds` = median of the UNet alone, `added_seconds` their difference.
Written against diffusers 0.42.1 / torch 2.15.
"""
import argparse
import statistics

import torch
from diffusers import ControlNetModel, UNet2DConditionModel

from bench_report import print_line, time_runs
from bench_unet_torch import SD15

# The real lllyasviel/control_v11p_sd15_canny config.json (the keys that matter).
CONTROLNET = dict(
    in_channels=4, block_out_channels=(320, 640, 1280, 1280), layers_per_block=2,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    cross_attention_dim=768, attention_head_dim=8, norm_num_groups=32,
    conditioning_embedding_out_channels=(16, 32, 96, 256),
)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
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
        with dev:
            unet = UNet2DConditionModel(**SD15).eval().to(dtype)
            controlnet = ControlNetModel(**CONTROLNET).eval().to(dtype)
        lat = a.size // 8
        x = torch.randn(1, 4, lat, lat, device=dev, dtype=dtype)
        ctx = torch.randn(1, 77, 768, device=dev, dtype=dtype)
        cond = torch.rand(1, 3, a.size, a.size, device=dev, dtype=dtype)

        def both():
            down, mid = controlnet(x, 500, encoder_hidden_states=ctx, controlnet_cond=cond,
                                   conditioning_scale=1.0, guess_mode=False, return_dict=False)
            return unet(x, 500, encoder_hidden_states=ctx, down_block_additional_residuals=down,
                        mid_block_additional_residual=mid)

        unet_warmup, unet_times = time_runs(
            a.runs, lambda: unet(x, 500, encoder_hidden_states=ctx), sync)
        warmup, times = time_runs(a.runs, both, sync)
    unet_s, both_s = statistics.median_high(unet_times), statistics.median_high(times)
    print_line("diffusers", "controlnet", a.size, warmup, times, torch=torch.__version__,
               arch="sd15", device=a.device, dtype=a.dtype, threads=torch.get_num_threads(),
               unet_seconds=unet_s, unet_all=unet_times, unet_warmup=unet_warmup,
               added_seconds=both_s - unet_s)


if __name__ == "__main__":
    main()
