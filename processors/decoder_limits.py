"""Limits on what one decode may cost, applied in the worker's child processes.

A decompression bomb (a 30k x 30k PNG of a few hundred KB, a huge HEIC) is refused by its header
before any pixel is decoded (`check_pixels`, and Pillow's own bomb check set to the same limit);
whatever a decoder still allocates is capped per task by an address-space limit
(`RLIMIT_AS`), so a runaway decoder fails its own job with a clear error instead of taking the
machine (and, in the embedded default, the server) with it.
"""

from __future__ import annotations

import os
import resource
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from processors.base import UnprocessableMedia

DEFAULT_MAX_PIXELS = 16384 * 16384  # 268 MP: far above any camera, far below a bomb
_max_pixels = int(os.environ.get("DARKROOM_MAX_IMAGE_PIXELS", DEFAULT_MAX_PIXELS))


@dataclass(frozen=True)
class DecodeLimits:
    """What the worker hands each task: pixels per image, bytes of address space per task (0: none)."""

    max_pixels: int = DEFAULT_MAX_PIXELS
    memory_bytes: int = 0


def within_pixel_limit(width: int, height: int) -> bool:
    return width * height <= _max_pixels


def check_pixels(width: int, height: int, what: str = "image") -> None:
    """Refuse, from its header, an image larger than the pixel limit."""
    if width * height > _max_pixels:
        raise UnprocessableMedia(
            f"the {what} is {width} x {height} = {width * height / 1e6:.0f} MP, more than the limit of "
            f"{_max_pixels / 1e6:.0f} MP (DARKROOM_MAX_IMAGE_PIXELS): refused as a possible "
            "decompression bomb")


def _address_space() -> int:
    """Bytes of address space this process maps now."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * resource.getpagesize()


@contextmanager
def limited(limits: DecodeLimits) -> Iterator[None]:
    """Run one task under `limits`: the pixel limit for vips and Pillow, and a soft address-space
    limit of what the process maps now plus `memory_bytes` (a child that already loaded a model
    keeps it; the task gets its budget on top). The soft limit is put back afterwards."""
    global _max_pixels
    saved_pixels, _max_pixels = _max_pixels, limits.max_pixels
    try:
        from PIL import Image

        saved_pil = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = limits.max_pixels
    except ImportError:  # Pillow is only installed with the ML extra
        Image, saved_pil = None, None  # type: ignore[assignment]
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if limits.memory_bytes:
        cap = _address_space() + limits.memory_bytes
        if hard != resource.RLIM_INFINITY:
            cap = min(cap, hard)
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        with warnings.catch_warnings():
            if Image is not None:  # past the limit: an error, not a warning
                warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except MemoryError:
        raise UnprocessableMedia(
            f"decoding needed more than its memory budget of {limits.memory_bytes // 2**20} MiB "
            "(DARKROOM_DECODER_MEMORY_BYTES)") from None
    finally:
        if limits.memory_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        _max_pixels = saved_pixels
        if Image is not None:
            Image.MAX_IMAGE_PIXELS = saved_pil
