"""Metadata extraction: what a file says about itself (size, time, place, camera, streams, tags).

Which library reads what, and why:

- **exiftool** 12.57 (the Debian package) through PyExifTool, one stay-open process per Python
  process: every still format (JPEG, HEIC, AVIF, WebP, PNG, TIFF, GIF), every RAW (CR2, CR3, NEF,
  RW2, RAF, DNG, ARW...), maker notes (lens names through the Composite `LensID`), the Composite
  GPS and `ImageSize` tags, container tags of videos (Apple `Keys` make/model/creation date,
  ISO 6709 locations, rotation, AVCHD make/model in the H.264 SEI) and the PDF info dictionary.
  pyvips only decodes the basic EXIF IFDs: no maker notes, no RAW, no video tags. exiftool is
  also the reference the test corpus was labelled with (tests/media/MANIFEST.tsv).
- **PyAV** for the stream facts of video and audio: codec, duration, bit rate, frame rate, sample
  rate, channels, stored frame size, and the container/stream tags (Opus keeps its tags on the
  stream). It is the library that will decode and transcode the file, so a file it cannot open
  is a file we cannot play. Attached pictures (cover art in M4A/FLAC/WAV/MP3) are not video.
- **pypdfium2** for the page count of PDFs; exiftool's `PageCount` is the fallback.

`extract_metadata` returns the asset-level facts (displayed `width`/`height`, `duration`,
`taken_time`, `taken_time_local`) and `specific_metadata` with exactly the keys API.md lists for
the asset type, None where the file does not say.

Bad files: when exiftool reports an error or reads nothing beyond the file type, and the type's
own library (PyAV for video/audio, PDFium for documents) cannot open the file either, the file is
garbage and UnprocessableMedia says why. A partly readable file (a truncated JPEG with intact
EXIF) returns what was read. Nothing waits forever: PyAV gets an interrupt timeout, and a
watchdog kills an exiftool call that runs past EXIFTOOL_TIMEOUT_S (PyExifTool has no timeout).

Where things are: `exiftool_process` (the stay-open exiftool and its watchdog), `tags` (reading
its answer), `dates` and `gps` (capture time and place), `streams` (PyAV), one module per asset
type (`photo`, `video`, `audio`, `document`) building that type's answer in the shape of
`result`, and here the entry point that chooses among them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import av

from processors.base import JobInput, UnprocessableMedia
from processors.metadata.audio import _audio
from processors.metadata.document import _document
from processors.metadata.exiftool_process import ExifToolFailed, read_exiftool
from processors.metadata.photo import _photo, raw_damage
from processors.metadata.streams import StreamFacts, read_streams
from processors.metadata.tags import Tags
from processors.metadata.video import _video

__all__ = ["extract_metadata", "raw_damage"]


def extract_metadata(job: JobInput) -> dict[str, Any]:
    """Read the original's metadata; see the module docstring for the shape.

    Raises UnprocessableMedia when nothing can be read: exiftool fails or finds nothing beyond
    the file type, and (for video/audio) PyAV cannot open the file, (for documents) PDFium
    cannot either. A file that is partly readable returns what was read.
    """
    path = Path(job.original_path)
    os.stat(path)  # a missing original is a storage problem, not bad media: let it raise
    kind = str(getattr(job.asset_type, "value", job.asset_type))
    name = job.original_filename or path.name

    try:
        tags = Tags(read_exiftool(path))
        # An error with tags read anyway is a partly readable file: keep what was read.
        exif_problem = None if tags.useful else (tags.error or (
            f"nothing readable ({tags.warning})" if tags.warning else "nothing readable"))
    except ExifToolFailed as exc:
        tags = Tags({})
        exif_problem = str(exc)

    if kind == "PHOTO":
        if exif_problem:
            raise UnprocessableMedia(f"{name}: exiftool: {exif_problem}")
        # Noise can hold an MPEG audio frame sync, which exiftool reads as MP3: not an image.
        detected = tags.get("MIMEType", ["File"], others=False)
        if isinstance(detected, str) and detected.startswith("audio/"):
            file_type = tags.get("FileType", ["File"], others=False) or detected
            raise UnprocessableMedia(f"{name}: exiftool reads it as {file_type} ({detected}), not an image")
        result = _photo(job, tags)
        damage = raw_damage(job.mime_type, tags.warning)
        if damage:
            result["problems"] = [damage]
        return result

    if kind in ("VIDEO", "AUDIO"):
        streams: StreamFacts | None
        try:
            streams = read_streams(path)
        except (av.FFmpegError, OSError, ValueError, EOFError) as exc:
            if exif_problem:
                raise UnprocessableMedia(
                    f"{name}: PyAV cannot open it ({exc}); exiftool: {exif_problem}") from exc
            streams = None
        return _video(job, tags, streams) if kind == "VIDEO" else _audio(job, tags, streams)

    if kind == "DOCUMENT":
        result, pdf_problem = _document(job, tags)
        if exif_problem and pdf_problem and pdf_problem != "password protected":
            raise UnprocessableMedia(f"{name}: PDFium: {pdf_problem}; exiftool: {exif_problem}")
        return result

    raise ValueError(f"unknown asset type {job.asset_type!r}")
