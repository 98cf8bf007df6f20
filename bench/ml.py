"""CLIP image embedding throughput: our batched processor vs a plain transformers pipeline.

    python bench/ml.py [--images 64] [--batch-size 16] [--size b32|tiny] [--device auto]

A CLIP of the ViT-B/32 shape (12-layer 768-wide image tower, 32 px patches at 224 px, 512-wide
text tower; random weights, since no hub is reachable; throughput does not depend on the weights)
is built from its config and saved to a temp dir; both sides load it from there. The images are
the corpus's JPEG photos (real camera files, 0.1 to 20 MP), repeated up to --images, the same
paths for both sides, decode included on both sides:
  1. ours: `processors.ml.clip.embed_images(paths)` (pyvips shrink-on-load decode, batches of
     --batch-size, unit vectors);
  2. baseline: `transformers.pipeline("image-feature-extraction", model=<the CLIP image tower>,
     pool=True)` called on the same paths, as documented (one call for the list), and the same
     pipeline with batch_size=--batch-size.
Prints images/s for each and the ratio.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from transformers import (  # noqa: E402
    CLIPConfig,
    CLIPImageProcessor,
    CLIPModel,
    CLIPVisionModel,
    pipeline,
)
from transformers.utils import logging as hf_logging  # noqa: E402

from processors.ml.clip import embed_images, load_clip  # noqa: E402
from processors.ml.models import choice_for, resolve_device  # noqa: E402
from tests.ml_fixtures import build_clip, build_tokenizer  # noqa: E402

MEDIA = Path(__file__).resolve().parents[1] / "tests" / "media"
SHAPES = {
    # ViT-B/32 (openai/clip-vit-base-patch32): what a real deployment runs.
    "b32": dict(text=dict(hidden_size=512, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=8),
                vision=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                            image_size=224, patch_size=32),
                projection=512),
}


def build_b32(out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(out, max_length=77)
    shape = SHAPES["b32"]
    config = CLIPConfig(
        text_config=dict(vocab_size=len(tokenizer), max_position_embeddings=77,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, **shape["text"]),
        vision_config=shape["vision"], projection_dim=shape["projection"],
    )
    torch.manual_seed(0)
    CLIPModel(config).eval().save_pretrained(out)
    CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224}).save_pretrained(out)
    return out


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:7.2f} images/s ({seconds:.2f} s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--size", choices=["b32", "tiny"], default="b32")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    device = resolve_device(args.device)
    photos = sorted(p for p in (MEDIA / "photo").iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
    paths = [photos[i % len(photos)] for i in range(args.images)]
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_b32(Path(tmp) / "clip") if args.size == "b32" else build_clip(Path(tmp) / "clip")
        print(f"CLIP {args.size} ({sum(p.numel() for p in load_clip(choice_for('process_clip', str(model_dir), device, args.batch_size)).model.parameters()) / 1e6:.0f} M params) "
              f"on {device} ({torch.get_num_threads()} threads), {len(paths)} images from {len(photos)} corpus JPEGs, "
              f"batch size {args.batch_size}")

        # Ours (the model is loaded once, as in a worker child; a warm-up batch first).
        embed_images(paths[:2], model=str(model_dir), device=device, batch_size=args.batch_size)
        start = time.perf_counter()
        ours = embed_images(paths, model=str(model_dir), device=device, batch_size=args.batch_size)
        ours_s = time.perf_counter() - start
        assert len(ours) == len(paths)

        vision = CLIPVisionModel.from_pretrained(model_dir).to(device).eval()
        processor = CLIPImageProcessor.from_pretrained(model_dir)
        pipe = pipeline("image-feature-extraction", model=vision, image_processor=processor,
                        device=torch.device(device), pool=True)
        pipe([str(p) for p in paths[:2]])
        start = time.perf_counter()
        plain = pipe([str(p) for p in paths])
        plain_s = time.perf_counter() - start
        assert len(plain) == len(paths)
        start = time.perf_counter()
        pipe([str(p) for p in paths], batch_size=args.batch_size)
        batched_s = time.perf_counter() - start

    print(f"ours: embed_images (batched)          {rate(len(paths), ours_s)}")
    print(f"baseline: pipeline(paths)             {rate(len(paths), plain_s)}   ratio ours/baseline {plain_s / ours_s:.2f}")
    print(f"baseline: pipeline(paths, batch_size) {rate(len(paths), batched_s)}   ratio ours/baseline {batched_s / ours_s:.2f}")


if __name__ == "__main__":
    main()
