"""The model registry of a worker process: which model a task uses, on which device, loaded once.

Processors run in the worker's pool of child processes (forkserver: each child starts clean and
imports what it needs). A model is loaded the first time a child needs it and kept in this
module's cache for every later job that child runs, so a job never pays for loading twice in one
child. The cache is keyed by (kind, model, device): a changed setting loads the new model. Loading
is offline-first: a local directory is read with `local_files_only`, and with `HF_HUB_OFFLINE=1`
a hub id resolves from the local cache only. `release()` frees everything (and the CUDA cache) and
runs when the child exits.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from processors.ml import MODEL_SETTINGS, model_for

T = TypeVar("T")

_CACHE: dict[tuple[str, str, str], Any] = {}
LOADS: Counter[tuple[str, str, str]] = Counter()  # how often each was loaded in this process


@dataclass(frozen=True)
class ModelChoice:
    """What one task runs with: the model (local dir or hub id), the device, the batch size."""

    task: str
    model: str
    device: str
    batch_size: int


def choice_for(task: str, model: str | None = None, device: str | None = None,
               batch_size: int | str | None = None, threads: int | str | None = None) -> ModelChoice:
    """The processor's options as given in its spec, the rest from the settings (environment or
    TOML: what `darkroom worker` and `darkroom serve` read too). With a model, torch's intra-op
    threads are set to `threads` (the worker's share of the cores)."""
    if model is None or device is None or batch_size is None:
        from infra.settings import load_settings

        settings = load_settings()
        model = model_for(settings, task) if model is None else model
        device = settings.ml_device if device is None else device
        batch_size = settings.ml_batch_size if batch_size is None else batch_size
    assert task in MODEL_SETTINGS, task
    if str(model).strip() and threads is not None:
        import torch

        torch.set_num_threads(thread_count(threads))
    return ModelChoice(task, str(model).strip(), resolve_device(str(device)), max(1, int(batch_size)))


def resolve_device(setting: str) -> str:
    """`auto` is CUDA when a GPU is present, else the CPU; anything else is used as given."""
    setting = (setting or "auto").strip().lower()
    if setting != "auto":
        return setting
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def pretrained_kwargs(model: str) -> dict[str, Any]:
    """Offline loading: a directory never touches the hub; a hub id honours HF_HUB_OFFLINE."""
    if Path(model).expanduser().is_dir():
        return {"local_files_only": True}
    if os.environ.get("HF_HUB_OFFLINE", "").strip() in ("1", "true", "yes", "on"):
        return {"local_files_only": True}
    return {}


def model_path(model: str) -> str:
    path = Path(model).expanduser()
    return str(path) if path.is_dir() else model


def cached(kind: str, model: str, device: str, load: Callable[[], T]) -> T:
    """The loaded thing for (kind, model, device), loading it on first use in this process. A load
    that raises is not cached: the next job tries again (and fails its own attempt)."""
    key = (kind, model, device)
    if key not in _CACHE:
        _quiet()
        _CACHE[key] = load()
        LOADS[key] += 1
    return _CACHE[key]


def thread_count(threads: int | str | None) -> int:
    """Intra-op threads for one job: as the spec says (the cores shared among the worker's
    slots), else all cores (a lone process)."""
    if threads is not None and str(threads).strip():
        return max(1, int(threads))
    return max(1, os.cpu_count() or 1)


def threads_per_slot(slots: int) -> int:
    """The cores divided among `slots` jobs running at once, at least one each."""
    return max(1, (os.cpu_count() or 1) // max(1, slots))


def _quiet() -> None:
    """No progress bars in the worker's log for every model loaded."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # a built-in model of the default install: no transformers there
        return

    hf_logging.disable_progress_bar()


def loaded() -> dict[tuple[str, str, str], int]:
    """How many times each model was loaded in this process (1 each, unless released)."""
    return dict(LOADS)


def forget(kind: str, model: str, device: str) -> None:
    """Drop one loaded model (its memory goes once nothing else holds it)."""
    if _CACHE.pop((kind, model, device), None) is not None:
        gc.collect()
        _empty_cuda_cache()


def _empty_cuda_cache() -> None:
    # Only where torch is loaded already: a process that never imported it has no CUDA cache,
    # and importing it at exit (atexit) fails once the interpreter is shutting down.
    torch = sys.modules.get("torch")
    if torch is None:
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def release() -> None:
    """Drop every loaded model and return the memory (GPU memory included)."""
    _CACHE.clear()
    gc.collect()
    _empty_cuda_cache()


atexit.register(release)


def batches(items: list[T], size: int) -> list[list[T]]:
    return [items[i : i + size] for i in range(0, len(items), max(1, size))]
