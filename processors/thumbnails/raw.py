"""RAW thumbnails: the largest sound embedded preview (exiftool), else LibRaw (rawpy) for files
that carry real image data, else a tiny embedded thumbnail; placeholders (tiny or flat previews,
stripped raw data) are recognised and skipped."""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pyvips
import rawpy

from processors.base import UnprocessableMedia
from processors.decoder_limits import within_pixel_limit
from processors.thumbnails.renditions import _colour_args

log = logging.getLogger(__name__)

EXIFTOOL = os.environ.get("DARKROOM_EXIFTOOL", "exiftool")
EXIFTOOL_TIMEOUT_S = 30
# An embedded RAW preview at least this long (longest side) is used as it is; a smaller one makes
# us try LibRaw first and keep the preview as the fallback.
RAW_PREVIEW_GOOD_ENOUGH = 1024
# Previews smaller than this, or of one flat colour, are placeholders (stripped files carry 8x8
# white JPEGs where the preview was).
RAW_PREVIEW_MIN_SIDE = 32
FLAT_DEVIATION = 0.5


_PREVIEW_TAGS = ("JpgFromRaw", "PreviewImage", "OtherImage", "ThumbnailImage")


def _raw_image(path: Path) -> pyvips.Image:
    orientation, blobs = _exiftool_previews(path)
    previews: list[pyvips.Image] = []
    for tag, data in blobs.items():
        preview = _decode_preview(data, orientation)
        if preview is not None:
            log.debug("%s: %s %dx%d", path.name, tag, preview.width, preview.height)
            previews.append(preview)
    best = max(previews, key=lambda im: im.width * im.height, default=None)
    if best is not None and max(best.width, best.height) >= RAW_PREVIEW_GOOD_ENOUGH:
        return best
    decoded, why = _rawpy_decode(path)
    if decoded is not None:
        return decoded
    if best is not None:  # only a small preview or thumbnail: better than nothing
        return best
    raise UnprocessableMedia(f"RAW file has no usable image: no embedded preview, and {why}")


def _exiftool_previews(path: Path) -> tuple[int, dict[str, bytes]]:
    arg = os.fspath(path)
    if arg.startswith("-"):
        arg = "./" + arg
    cmd = [EXIFTOOL, "-j", "-b", "-n", "-q", "-q", "-Orientation"]
    cmd += [f"-{t}" for t in _PREVIEW_TAGS] + [arg]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, timeout=EXIFTOOL_TIMEOUT_S, stdin=subprocess.DEVNULL
        )
        info = json.loads(proc.stdout or b"[{}]")[0]
    except FileNotFoundError:
        log.warning("exiftool not found (%s): RAW previews are not extracted", EXIFTOOL)
        return 1, {}
    except (subprocess.TimeoutExpired, ValueError, IndexError) as e:
        log.warning("%s: exiftool failed: %s", path.name, e)
        return 1, {}
    orientation = info.get("Orientation")
    orientation = orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else 1
    blobs: dict[str, bytes] = {}
    for tag in _PREVIEW_TAGS:
        value = info.get(tag)
        if isinstance(value, str) and value.startswith("base64:"):
            try:
                blobs[tag] = base64.b64decode(value[7:])
            except ValueError:
                continue
    return orientation, blobs


def _decode_preview(data: bytes, orientation: int) -> pyvips.Image | None:
    """A preview decoded at most 2048 px long and turned by the RAW's orientation, or None when it
    is broken, tiny or a flat placeholder."""
    try:
        header = pyvips.Image.new_from_buffer(data, "", fail_on="error")
        if not within_pixel_limit(header.width, header.height):
            return None  # a preview no camera makes: treat as broken
        image = pyvips.Image.thumbnail_buffer(
            data, 2048, height=2048, size="down", no_rotate=True, fail_on="error",
            **_colour_args(header),
        ).copy_memory()
    except pyvips.Error:
        return None
    if max(image.width, image.height) < RAW_PREVIEW_MIN_SIDE or image.deviate() < FLAT_DEVIATION:
        return None
    return _orient(image, orientation)


def _orient(image: pyvips.Image, orientation: int) -> pyvips.Image:
    """Apply an EXIF Orientation value (1-8) to pixels."""
    if orientation in (2, 4, 5, 7):
        image = image.fliphor()
    rotate = {3: "d180", 4: "d180", 5: "d270", 6: "d90", 7: "d90", 8: "d270"}.get(orientation)
    return image.rot(rotate) if rotate else image


def _rawpy_decode(path: Path) -> tuple[pyvips.Image | None, str]:
    try:
        with rawpy.imread(os.fspath(path)) as raw:
            if _raw_data_missing(raw):
                return None, "the raw image data is missing (stripped or pruned file)"
            # Half-size demosaicing (4x less work) while it still gives 2048 px or more.
            half = max(raw.sizes.width, raw.sizes.height) >= 2 * 2048
            rgb = raw.postprocess(use_camera_wb=True, half_size=half, output_bps=8)
    except (rawpy.LibRawError, MemoryError, ValueError) as e:
        return None, f"LibRaw cannot decode it ({type(e).__name__}: {e})"
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        return None, f"LibRaw returned an unexpected {rgb.shape} {rgb.dtype} image"
    rgb = np.ascontiguousarray(rgb)
    h, w, _ = rgb.shape
    image = pyvips.Image.new_from_memory(rgb.data, w, h, 3, "uchar").copy(interpretation="srgb")
    image = image.thumbnail_image(2048, height=2048, size="down", no_rotate=True).copy_memory()
    if image.deviate() < FLAT_DEVIATION:
        return None, "LibRaw decoded a blank image (the raw data is a stub)"
    return image, ""


def _raw_data_missing(raw: Any) -> bool:
    """Stripped files keep a raw-data stub: (almost) every sample at or below the black level."""
    data = raw.raw_image_visible
    if data.size == 0:
        return True
    sample = data[::7, ::7]
    black = max(int(v) for v in raw.black_level_per_channel) if raw.black_level_per_channel else 0
    return float(np.mean(sample <= black)) > 0.95
