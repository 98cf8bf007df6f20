"""What every processor receives, and how it says a file cannot be processed."""

from __future__ import annotations

from dataclasses import dataclass
import os
from pathlib import Path, PurePosixPath


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


def relative_path(path: Path, root: Path) -> str:
    """`path` as a POSIX path relative to `root`: how results name derived files."""
    try:
        rel = path.relative_to(root)
    except ValueError:
        rel = Path(os.path.relpath(path, root))
    return str(PurePosixPath(*rel.parts))
