"""Pictures for the models: a photo decoded the way the thumbnails are (orientation, colour,
RAW previews, HEIC), or a few key frames sampled across a video, as RGB PIL images."""

from __future__ import annotations

import os
from pathlib import Path

import av
import av.error
import numpy as np
import pyvips
from PIL import Image

from infra.media_types import RAW_MIME_TYPES
from processors import thumbnails
from processors.base import JobInput, UnprocessableMedia
from processors.decoder_limits import check_pixels

# Models look at a few hundred pixels (CLIP 224, captioners 224-384): decode no larger than this,
# with shrink-on-load. Face detectors and OCR ask for more (`longest`).
DECODE_LONGEST = 512
# Video: frames at these fractions of the duration (an evenly spread sample of the content).
VIDEO_FRACTIONS = (0.1, 0.35, 0.6, 0.85)


class NoPictures(UnprocessableMedia):
    """The asset has nothing to look at (a "video" with sound only): the task is skipped."""


def job_images(job: JobInput, frames: int = len(VIDEO_FRACTIONS),
               longest: int = DECODE_LONGEST) -> list[Image.Image]:
    """One picture for a photo; up to `frames` sampled frames for a video (in time order); the
    longest side at most `longest`."""
    path = Path(job.original_path)
    with thumbnails.decoding("video"):
        if job.asset_type == "PHOTO":
            return [photo(path, job.mime_type, longest)]
        if job.asset_type == "VIDEO":
            if not thumbnails._has_picture(path):
                raise NoPictures("the video has no picture stream (sound only): nothing to look at")
            return video_frames(path, frames, longest)
    raise UnprocessableMedia(f"no pictures to look at in a {job.asset_type}")


def photo(path: Path, mime_type: str = "", longest: int = DECODE_LONGEST) -> Image.Image:
    """The photo as displayed (orientation, sRGB), decoded straight at `longest` px: JPEG and
    WebP shrink on load, so a 20 MP file costs a fraction of a full decode."""
    if mime_type in RAW_MIME_TYPES:
        image = thumbnails._raw_image(path)
    else:
        try:
            header = pyvips.Image.new_from_file(str(path), fail_on="error")
        except pyvips.Error as e:
            raise UnprocessableMedia(f"not a readable image: {thumbnails._vips_message(e)}") from e
        check_pixels(header.width, header.height)
        loader = header.get("vips-loader") if header.get_typeof("vips-loader") else ""
        if loader.startswith("heifload") and thumbnails._heif_needs_libheif(header):
            image = thumbnails._heif_decode(path)
        else:
            image = pyvips.Image.thumbnail(str(path), longest, height=longest, size="down",
                                           fail_on="error", **thumbnails._colour_args(header))
    return to_pil(thumbnails._fit(image, longest))


def to_pil(image: pyvips.Image) -> Image.Image:
    """8-bit RGB, alpha flattened onto white."""
    if image.hasalpha():
        image = image.flatten(background=[255] * (image.bands - 1))
    if image.interpretation not in ("srgb", "b-w") or image.format != "uchar":
        image = image.colourspace("srgb")
    if image.bands == 1:
        image = image.bandjoin([image, image])
    image = image.extract_band(0, n=3).cast("uchar")
    array = np.ndarray(buffer=image.write_to_memory(), dtype=np.uint8,
                       shape=(image.height, image.width, 3))
    return Image.fromarray(array, "RGB")


def video_frames(path: Path, count: int = len(VIDEO_FRACTIONS), longest: int = DECODE_LONGEST) -> list[Image.Image]:
    """Frames at evenly spread points of the video, as displayed (rotation honoured)."""
    fractions = VIDEO_FRACTIONS if count == len(VIDEO_FRACTIONS) else tuple(
        (i + 0.5) / count for i in range(count))
    out: list[Image.Image] = []
    with av.open(os.fspath(path), metadata_errors="ignore") as container:
        stream = thumbnails._main_video_stream(container)
        stream.thread_type = "AUTO"
        duration = thumbnails._duration_s(container, stream)
        seen: set[int | None] = set()
        for fraction in fractions if duration else (None,):
            frame = thumbnails._frame_near(container, stream, fraction * duration if fraction else None)
            if frame is None or frame.pts in seen and frame.pts is not None:
                continue
            seen.add(frame.pts)
            picture = frame.to_image().convert("RGB")
            clockwise = int(round(-(getattr(frame, "rotation", 0) or 0) / 90.0)) % 4
            if clockwise:
                picture = picture.rotate(-90 * clockwise, expand=True)
            picture.thumbnail((longest, longest))
            out.append(picture)
    if not out:  # no seekable points (some AVCHD streams): the poster frame, as thumbnails find it
        out.append(to_pil(thumbnails._fit(thumbnails._video_poster(path), longest)))
    return out
