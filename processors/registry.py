"""Which function does each queue's work. Runs inside the worker's child processes.

A spec is `module:function`, optionally with options for the function as a query string
(`module:function?model=/models/clip&device=cpu`): child processes do not read the server's
settings, so the ML specs carry their model choice with them (`processors_for(settings)`). An ML
spec without options reads the settings from the environment (what `darkroom worker` runs with).
"""

from __future__ import annotations

import importlib
from typing import Any
from urllib.parse import parse_qsl, urlencode

from processors.base import JobInput
from processors.decoder_limits import DecodeLimits, limited

PROCESSORS: dict[str, str] = {
    "metadata_asset": "processors.metadata:extract_metadata",
    "thumbnail_asset": "processors.thumbnails:make_thumbnails",
    "transcode_asset": "processors.transcode:make_web_version",
    "process_clip": "processors.ml.clip:process_clip",
    "process_species": "processors.ml.species:process_species",
    "process_ocr": "processors.ml.ocr:process_ocr",
    "process_face": "processors.ml.faces:process_face",
    "process_caption": "processors.ml.caption:process_caption",
    "process_labels": "processors.ml.labels:process_labels",
}


def with_options(spec: str, **options: Any) -> str:
    """`spec` with these options added (later ones win)."""
    base, _, query = spec.partition("?")
    merged = dict(parse_qsl(query, keep_blank_values=True))
    merged.update({k: str(v) for k, v in options.items() if v is not None})
    return f"{base}?{urlencode(merged)}" if merged else base


def processors_for(settings: Any, concurrency: int | None = None) -> dict[str, str]:
    """The specs a worker of these settings runs: the ML ones carry model, device, batch size,
    and the intra-op threads of one job (the cores shared among the worker's slots, so N jobs
    at once never oversubscribe the machine)."""
    from processors.ml import MODEL_SETTINGS, model_for
    from processors.ml.models import threads_per_slot

    slots = settings.worker_concurrency if concurrency is None else concurrency
    specs = dict(PROCESSORS)
    for task in MODEL_SETTINGS:
        specs[task] = with_options(PROCESSORS[task], model=model_for(settings, task),
                                   device=settings.ml_device, batch_size=settings.ml_batch_size,
                                   threads=threads_per_slot(slots))
    return specs


def run(spec: str, job: JobInput, limits: DecodeLimits | None = None) -> dict[str, Any]:
    """Entry point in the child process: import the processor named `module:function`, run it
    under the decode limits (pixels, address space) the worker passes."""
    target, _, query = spec.partition("?")
    module_name, func_name = target.split(":")
    func = getattr(importlib.import_module(module_name), func_name)
    job.derived_dir.mkdir(parents=True, exist_ok=True)
    with limited(limits or DecodeLimits()):
        return func(job, **dict(parse_qsl(query, keep_blank_values=True)))
