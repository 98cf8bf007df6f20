"""Image-embedding speed at real model size: CLIP ViT-B/32 and SigLIP 2 base, random weights.

    python bench/ml_size.py [--images 64] [--batch-size 16] [--threads 2] [--device auto]

No package ships CLIP or SigLIP weights, so these stay operator-supplied; this measures what such
a model costs here. Each image tower is built from a config with the shapes of
`openai/clip-vit-base-patch32` (12 layers, 768 wide, 32 px patches at 224 px, 512-d projection)
and of SigLIP 2 base (`google/siglip2-base-patch16-224`: 12 layers, 768 wide, 16 px patches at
224 px, attention-pooling head); throughput does not depend on the weights. Inputs are
preprocessed tensors (decode excluded, as in Immich's published 2.26 ms/image for ViT-B-32 on a
Ryzen 7800X3D with ONNX). Prints images/s at batch 1 (the baseline) and at --batch-size, and
their ratio, per model, on the CPU with --threads intra-op threads, and on a GPU when one is
present (fp16).
"""

from __future__ import annotations

import argparse
import time

import torch
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection, SiglipVisionConfig, SiglipVisionModel


def clip_b32() -> torch.nn.Module:
    config = CLIPVisionConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                              num_attention_heads=12, image_size=224, patch_size=32, projection_dim=512)
    return CLIPVisionModelWithProjection(config)


def siglip2_base() -> torch.nn.Module:
    config = SiglipVisionConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                num_attention_heads=12, image_size=224, patch_size=16)
    return SiglipVisionModel(config)


def rate(model: torch.nn.Module, images: int, batch: int, device: str, dtype: torch.dtype) -> float:
    """Images per second embedding `images` images `batch` at a time (after one warm-up batch)."""
    pixels = torch.randn(batch, 3, 224, 224, device=device, dtype=dtype)
    with torch.inference_mode():
        model(pixel_values=pixels)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        done = 0
        while done < images:
            model(pixel_values=pixels)
            done += batch
        if device.startswith("cuda"):
            torch.cuda.synchronize()
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    devices = ["cpu"]
    if args.device in ("auto", "cuda") and torch.cuda.is_available():
        devices.append("cuda")
    elif args.device not in ("auto", "cpu"):
        devices = [args.device]
    for name, build in (("CLIP ViT-B/32", clip_b32), ("SigLIP 2 base/16", siglip2_base)):
        model = build().eval()
        params = sum(p.numel() for p in model.parameters()) / 1e6
        for device in devices:
            dtype = torch.float16 if device.startswith("cuda") else torch.float32
            model = model.to(device=device, dtype=dtype)
            n = args.images if device == "cpu" else args.images * 16
            one = rate(model, max(4, n // 8), 1, device, dtype)
            many = rate(model, n, args.batch_size, device, dtype)
            where = f"{device} ({args.threads} threads)" if device == "cpu" else f"{device} fp16"
            print(f"{name:18} {params:5.1f}M params  {where:18} batch 1: {one:7.1f} img/s "
                  f"({1000 / one:6.2f} ms/img)   batch {args.batch_size}: {many:7.1f} img/s "
                  f"({1000 / many:6.2f} ms/img)   ratio {many / one:.2f}")
    if "cuda" not in devices:
        print("no GPU here: GPU figures not measured")


if __name__ == "__main__":
    main()
