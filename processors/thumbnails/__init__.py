"""Thumbnails: three WebP renditions (longest side 256, 1024 and 2048 px, never upscaled).

Every asset type ends in a pyvips image that goes through the same writer:

- PHOTO: pyvips reads the file itself (shrink-on-load for JPEG, EXIF orientation applied). HEIC
  whose HEVC payload the libvips build cannot decode (the pyvips-binary wheel has no HEVC) is
  decoded with the system libheif through ctypes.
- RAW: the largest sound embedded preview (exiftool), else LibRaw (rawpy) for files that carry
  real image data, else a tiny embedded thumbnail; a file with none of these is unprocessable.
- VIDEO: a poster frame at about 10% of the duration (PyAV), turned upright by the stream's
  display matrix.
- AUDIO: a waveform (peaks of the decoded samples, PyAV + numpy).
- DOCUMENT: the first PDF page (pypdfium2).

Bad media raises `UnprocessableMedia`, never a library's own exception.

Where things are: `renditions` (sizes, fitting, sRGB, WebP encoding and writing), `errors`
(decoder errors as UnprocessableMedia), one module per source (`photo` with `heif`, `raw`,
`video`, `audio`, `document`), and here the entry point that chooses among them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from infra.media_types import RAW_MIME_TYPES
from processors.base import JobInput, UnprocessableMedia
from processors.thumbnails.audio import _waveform_renditions
from processors.thumbnails.document import _pdf_first_page
from processors.thumbnails.errors import _vips_message, decoding
from processors.thumbnails.heif import _heif_decode, _heif_needs_libheif
from processors.thumbnails.photo import _photo_renditions
from processors.thumbnails.raw import _raw_image
from processors.thumbnails.renditions import _colour_args, _fit, _from_image, _write_all
from processors.thumbnails.video import (
    _duration_s,
    _frame_near,
    _has_picture,
    _main_video_stream,
    _video_poster,
)

# Besides make_thumbnails: the helpers processors/ml/images.py uses to decode the pictures for
# the models the way the thumbnails are decoded.
__all__ = [
    "_colour_args",
    "_duration_s",
    "_fit",
    "_frame_near",
    "_has_picture",
    "_heif_decode",
    "_heif_needs_libheif",
    "_main_video_stream",
    "_raw_image",
    "_video_poster",
    "_vips_message",
    "decoding",
    "make_thumbnails",
]


def make_thumbnails(job: JobInput) -> dict[str, Any]:
    path = Path(job.original_path)
    with decoding():
        if job.asset_type == "PHOTO":
            if job.mime_type in RAW_MIME_TYPES:
                renditions = _from_image(_raw_image(path))
            else:
                renditions = _photo_renditions(path)
        elif job.asset_type == "VIDEO":
            if _has_picture(path):
                renditions = _from_image(_video_poster(path))
            else:  # a "video" with sound only
                renditions = _waveform_renditions(path)
        elif job.asset_type == "AUDIO":
            renditions = _waveform_renditions(path)
        elif job.asset_type == "DOCUMENT":
            renditions = _from_image(_pdf_first_page(path))
        else:
            raise UnprocessableMedia(f"no thumbnails for asset type {job.asset_type!r}")
        thumbnails = _write_all(job, renditions)
        result: dict[str, Any] = {"thumbnails": thumbnails}
        if job.asset_type == "PHOTO":  # for near-duplicates: made from the small rendition
            from processors.fingerprint import fingerprint_file

            result["fingerprint"] = fingerprint_file(Path(job.derived_root) / thumbnails["small"]["path"])
        return result
