"""Processors that misbehave on purpose, run by real workers in child processes."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from processors.base import JobInput, UnprocessableMedia


def ok(job: JobInput) -> dict[str, Any]:
    return {"thumbnails": {}, "specific_metadata": {"title": job.original_filename}}


def raises(job: JobInput) -> dict[str, Any]:
    raise UnprocessableMedia(f"{job.original_filename}: not an image at all")


def hangs(job: JobInput) -> dict[str, Any]:
    time.sleep(3600)
    return {}


def dies(job: JobInput) -> dict[str, Any]:
    os.kill(os.getpid(), signal.SIGKILL)
    return {}


def flaky(job: JobInput) -> dict[str, Any]:
    """Fails on its first attempt for each asset, then works (state kept in a marker file)."""
    marker = Path(job.derived_dir) / "flaky-attempted"
    if not marker.exists():
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("1")
        raise RuntimeError("transient failure")
    return ok(job)


def refused(job: JobInput) -> dict[str, Any]:
    """A result the domain refuses: nested metadata."""
    return {"thumbnails": {}, "specific_metadata": {"title": {"nested": ["no"]}}}


def slow(job: JobInput) -> dict[str, Any]:
    """Takes two seconds: longer than a short queue timeout, shorter than a long one."""
    time.sleep(2)
    return ok(job)


def hog(job: JobInput) -> dict[str, Any]:
    """Allocates far more than a decoder's memory budget (as a runaway decoder would)."""
    blob = bytearray(3 * 1024**3)
    return {"thumbnails": {}, "size": len(blob)}
