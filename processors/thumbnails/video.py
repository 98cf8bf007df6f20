"""VIDEO poster frames with PyAV: a frame with detail at about 10% of the duration (25% and 50%
when that one is flat), turned upright by the stream's display matrix and its pixel aspect ratio
applied. The frame-seeking helpers are shared with the ML pictures (processors/ml/images.py)."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error
import numpy as np
import pyvips

from processors.base import UnprocessableMedia

# Video: frames decoded forward from the key frame before the poster time, at most.
MAX_FRAMES_AFTER_SEEK = 300
POSTER_FRACTIONS = (0.1, 0.25, 0.5)
POSTER_MIN_DETAIL = 8.0


def _video_poster(path: Path) -> pyvips.Image:
    with av.open(os.fspath(path), metadata_errors="ignore") as container:
        stream = _main_video_stream(container)
        stream.thread_type = "AUTO"
        frame = _poster_frame(container, stream)
        rgb = frame.to_ndarray(format="rgb24")
        rotation = getattr(frame, "rotation", 0) or 0
        sar = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
    h, w, _ = rgb.shape
    image = pyvips.Image.new_from_memory(
        np.ascontiguousarray(rgb).data, w, h, 3, "uchar"
    ).copy(interpretation="srgb")
    if sar and sar > 0 and sar != 1:
        image = image.resize(float(sar), vscale=1.0) if sar > 1 else image.resize(
            1.0, vscale=float(1 / Fraction(sar))
        )
    return _rotate_display(image, rotation).copy_memory()


def _has_picture(path: Path) -> bool:
    with av.open(os.fspath(path), metadata_errors="ignore") as container:
        pictures = [
            s for s in container.streams.video
            if s.codec_context is not None
            and not s.disposition & av.stream.Disposition.attached_pic
        ]
        return bool(pictures) or not container.streams.audio


def _main_video_stream(container: Any) -> Any:
    for stream in container.streams.video:
        if stream.codec_context is None:  # no decoder for it
            continue
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    raise UnprocessableMedia("no decodable video stream")


def _rotate_display(image: pyvips.Image, rotation: float) -> pyvips.Image:
    """FFmpeg's display-matrix angle is counter-clockwise: -90 means turn 90 degrees clockwise."""
    clockwise = int(round(-rotation / 90.0)) % 4
    return image.rot(("d0", "d90", "d180", "d270")[clockwise]) if clockwise else image


def _duration_s(container: Any, stream: Any) -> float | None:
    duration = None
    if stream.duration and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    elif container.duration:
        duration = container.duration / av.time_base
    return duration if duration and duration > 0 else None


def _poster_frame(container: Any, stream: Any) -> Any:
    """The frame at 10% of the duration; when that one is a flat colour (a fade from black or
    white, a title card) the first that is not, of those at 25% and 50%; else the busiest seen."""
    duration = _duration_s(container, stream)
    best, best_detail = None, -1.0
    for fraction in POSTER_FRACTIONS if duration else (None,):
        frame = _frame_near(container, stream, fraction * duration if fraction else None)
        if frame is None:
            continue
        detail = _detail(frame)
        if detail > best_detail:
            best, best_detail = frame, detail
        if detail >= POSTER_MIN_DETAIL:
            break
    if best is None:
        try:
            container.seek(0)
            best = _frame_near(container, stream, None)
        except av.error.FFmpegError:
            best = None
    if best is None:
        raise UnprocessableMedia("no decodable video frame")
    return best


def _detail(frame: Any) -> float:
    """Standard deviation of the luma of a 64x64 reduction: about 0 for a flat frame."""
    try:
        return float(frame.reformat(width=64, height=64, format="gray").to_ndarray().std())
    except (av.error.FFmpegError, ValueError):
        return 0.0


def _frame_near(container: Any, stream: Any, seconds: float | None) -> Any:
    """The first frame at or after `seconds` (the first decodable frame when None); a frame before
    it when decoding ends or breaks first."""
    target_pts = None
    if seconds is not None and stream.time_base:
        start = stream.start_time or 0
        target_pts = start + int(seconds / stream.time_base)
        try:
            container.seek(target_pts, stream=stream, backward=True)
        except av.error.FFmpegError:
            return None
    last = None
    count = 0
    try:
        for packet in container.demux(stream):
            for frame in _decode_packet(packet):
                last = frame
                count += 1
                if target_pts is None or frame.pts is None or frame.pts >= target_pts:
                    return frame
                if count >= MAX_FRAMES_AFTER_SEEK:
                    return frame
    except av.error.FFmpegError:
        if last is None:
            raise
    return last


def _decode_packet(packet: Any) -> list[Any]:
    try:
        return packet.decode()
    except av.error.InvalidDataError:
        return []  # a damaged packet: go on to the next
