"""What every processor receives, and how it says a file cannot be processed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class JobInput:
    """Everything a processor needs, as plain picklable values."""

    job_id: int
    asset_id: str
    asset_type: str  # PHOTO | VIDEO | AUDIO | DOCUMENT
    mime_type: str
    original_path: Path  # the original, read-only
    original_filename: str
    derived_dir: Path  # where this asset's derived files go (created by the worker)
    derived_root: Path  # results name files relative to this root


class UnprocessableMedia(Exception):
    """The file's content cannot be processed (garbage, truncated beyond use). Retrying will not
    help, but the job still goes through its attempts: the message names what failed."""
