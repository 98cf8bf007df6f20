"""Machine-learning enrichment: CLIP embeddings, species, OCR, faces and captions.

Each task is a queue of its own and is optional: its model is named by a setting
(`DARKROOM_MODEL_CLIP`, ...; a local directory or a hub id) and an empty setting turns the task
off. This module is what the server imports (bootstrap, health): it never imports torch, so
Darkroom starts without the `[ml]` extra. The processors themselves (`processors.ml.clip`, ...)
import torch and transformers, and only run in worker child processes.
"""

from __future__ import annotations

import importlib.util
from typing import Any

# Queue -> the setting that names its model.
MODEL_SETTINGS: dict[str, str] = {
    "process_clip": "model_clip",
    "process_species": "model_species",
    "process_ocr": "model_ocr",
    "process_face": "model_face",
    "process_caption": "model_caption",
}


def setting_env(task: str) -> str:
    return "DARKROOM_" + MODEL_SETTINGS[task].upper()


def model_for(settings: Any, task: str) -> str:
    return str(getattr(settings, MODEL_SETTINGS[task], "") or "").strip()


def enabled_tasks(settings: Any) -> frozenset[str]:
    """The ML tasks with a model configured: the ones uploads enqueue."""
    return frozenset(task for task in MODEL_SETTINGS if model_for(settings, task))


def skipped_reason(task: str) -> str:
    return f"{task} is off: no model configured ({setting_env(task)} is empty)"


def ml_status(settings: Any) -> dict[str, Any]:
    """What health reports: each task on (with its model) or off (with why), and the device."""
    installed = all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers"))
    tasks: dict[str, Any] = {}
    for task in MODEL_SETTINGS:
        model = model_for(settings, task)
        if not model:
            tasks[task] = {"status": "off", "reason": f"no model configured ({setting_env(task)})"}
        elif not installed:
            tasks[task] = {"status": "unavailable", "model": model,
                           "reason": "torch/transformers not installed (pip install -e '.[ml]')"}
        else:
            tasks[task] = {"status": "on", "model": model}
    return {"installed": installed, "device": settings.ml_device,
            "batch_size": settings.ml_batch_size, "tasks": tasks}
