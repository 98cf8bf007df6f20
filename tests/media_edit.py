"""Copies of corpus files with edited EXIF, made at test time (exiftool, as the metadata
processor reads them)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def with_taken_time(source: Path, target: Path, taken: str, offset: str | None = None) -> Path:
    """`source` copied to `target` with DateTimeOriginal `taken` ("2004:06:09 16:02:35") and
    OffsetTimeOriginal `offset` ("+09:00"), or none."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    args = ["exiftool", "-q", "-overwrite_original", f"-DateTimeOriginal={taken}", f"-CreateDate={taken}",
            f"-OffsetTimeOriginal={offset or ''}", f"-OffsetTime={offset or ''}", "-XMP:all=", str(target)]
    subprocess.run(args, check=True, capture_output=True, timeout=60)
    return target
