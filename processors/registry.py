"""Which function does each queue's work. Runs inside the worker's child processes."""

from __future__ import annotations

import importlib
from typing import Any

from processors.base import JobInput

PROCESSORS: dict[str, str] = {
    "metadata_asset": "processors.metadata:extract_metadata",
    "thumbnail_asset": "processors.thumbnails:make_thumbnails",
    "transcode_asset": "processors.transcode:make_web_version",
}


def run(spec: str, job: JobInput) -> dict[str, Any]:
    """Entry point in the child process: import the processor named `module:function`, run it."""
    module_name, func_name = spec.split(":")
    func = getattr(importlib.import_module(module_name), func_name)
    job.derived_dir.mkdir(parents=True, exist_ok=True)
    return func(job)
