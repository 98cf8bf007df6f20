"""From one pyvips image to the three WebP files: the sizes, fitting each rendition from the
next larger one, colour management to sRGB, and the encoding and atomic writing of the files."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyvips

from processors.base import JobInput, relative_path

SIZES: tuple[tuple[str, int], ...] = (("small", 256), ("medium", 1024), ("large", 2048))
WEBP_QUALITY = 80
# libwebp effort 2 encodes 2-3x faster than the default 4 for about 4% more bytes at the same
# quality; the 2048 px rendition is where most of the time goes.
WEBP_EFFORT = 2
MIME_TYPE = "image/webp"


Renditions = dict[str, Callable[[], pyvips.Image]]


def _write_all(job: JobInput, renditions: Renditions) -> dict[str, dict[str, Any]]:
    derived_dir = Path(job.derived_dir)
    derived_dir.mkdir(parents=True, exist_ok=True)
    out: dict[str, dict[str, Any]] = {}

    def save(name: str, image: pyvips.Image) -> None:
        dest = derived_dir / f"thumb-{name}.webp"
        # Per-job partial names: a superseded job still running beside its reprocess never
        # interleaves writes with it; each final file is one job's complete output.
        partial = derived_dir / f".thumb-{name}.{job.job_id}.partial.webp"
        _webpsave(image, partial)
        os.replace(partial, dest)
        out[name] = {
            "path": relative_path(dest, Path(job.derived_root)),
            "width": image.width,
            "height": image.height,
            "mime_type": MIME_TYPE,
        }

    # Largest first: the smaller renditions are made from it. WebP encoding is single-threaded
    # and is most of the work, so the large one is encoded on a second thread while the smaller
    # ones are reduced and encoded here (libvips releases the GIL).
    pending: Future[None] | None = None
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="thumb-encode") as pool:
            for name, _ in reversed(SIZES):
                image = _saveable(renditions[name]())
                if name == "large":
                    pending = pool.submit(save, name, image)
                else:
                    save(name, image)
            if pending is not None:
                pending.result()
    except BaseException:
        # No partial file is left behind. Renditions already in place stay: they are complete,
        # no event names them, and another job for this asset may own them.
        for p in derived_dir.glob(f".thumb-*.{job.job_id}.partial.webp"):
            p.unlink(missing_ok=True)
        raise
    return {name: out[name] for name, _ in SIZES}


def _webpsave(image: pyvips.Image, dest: Path) -> None:
    if pyvips.at_least_libvips(8, 15):
        image.webpsave(str(dest), Q=WEBP_QUALITY, effort=WEBP_EFFORT, keep="none")
    else:  # pragma: no cover - older libvips (system library in ABI mode)
        image.webpsave(str(dest), Q=WEBP_QUALITY, reduction_effort=WEBP_EFFORT, strip=True)


def _saveable(image: pyvips.Image) -> pyvips.Image:
    """8-bit sRGB (with alpha when there is one), as WebP wants it."""
    if image.interpretation in ("rgb16", "grey16", "scrgb", "lab", "labs", "xyz", "cmyk"):
        image = image.colourspace("srgb")
    if image.format != "uchar":
        image = image.cast("uchar")
    return image


def _colour_args(image: pyvips.Image) -> dict[str, str]:
    """Colour-manage to sRGB only when there is a profile to convert from: asking libvips for an
    sRGB export of an untagged (already sRGB) image runs a full, useless LCMS transform that costs
    more than the decoding. CMYK without a profile is converted by `thumbnail` on its own."""
    return {"export_profile": "srgb"} if image.get_typeof("icc-profile-data") else {}


def _fit(image: pyvips.Image, size: int) -> pyvips.Image:
    """Longest side at most `size`, never upscaled, colour-managed to sRGB."""
    colour = _colour_args(image)
    if max(image.width, image.height) <= size and not colour:
        return image
    out = image.thumbnail_image(size, height=size, size="down", no_rotate=True, **colour)
    if colour:
        out = out.copy()
        out.remove("icc-profile-data")  # now sRGB: nothing left to convert downstream
    return out


def _from_image(image: pyvips.Image) -> Renditions:
    """Renditions of an in-memory (or lazily decoded) image: each from the next larger one."""
    cache: dict[str, pyvips.Image] = {}

    def large() -> pyvips.Image:
        if "large" not in cache:
            cache["large"] = _fit(image, 2048).copy_memory()
        return cache["large"]

    def medium() -> pyvips.Image:
        if "medium" not in cache:
            cache["medium"] = _fit(large(), 1024).copy_memory()
        return cache["medium"]

    return {"large": large, "medium": medium, "small": lambda: _fit(medium(), 256)}
