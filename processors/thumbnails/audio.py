"""AUDIO thumbnails (and videos with sound only): a waveform drawn from the peaks of the
decoded samples (PyAV, streamed; numpy), one image per size name."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import av
import av.error
import numpy as np
import pyvips

from processors.base import UnprocessableMedia
from processors.thumbnails.renditions import Renditions
from processors.thumbnails.video import _decode_packet

# Audio waveform: (width, height) drawn for a size name; the waveform's own size is 1024x256.
WAVEFORM_SIZE = {"small": (256, 64), "medium": (1024, 256), "large": (1024, 256)}
WAVEFORM_BACKGROUND = (244, 244, 242)
WAVEFORM_BAR = (38, 42, 48)
WAVEFORM_NORMALISE_ABOVE = 0.02  # peak amplitude (-34 dBFS)


def _waveform_renditions(path: Path) -> Renditions:
    peaks = _audio_peaks(path)
    return {
        name: (lambda w=w, h=h: _draw_waveform(peaks, w, h))
        for name, (w, h) in WAVEFORM_SIZE.items()
    }


def _audio_peaks(path: Path, buckets: int = 4096) -> np.ndarray:
    """Peak amplitude (0..1) of `buckets` equal slices of the sound, streamed: memory holds one
    frame and one small block-peak array, whatever the length."""
    with av.open(os.fspath(path), metadata_errors="ignore") as container:
        streams = [s for s in container.streams.audio if s.codec_context is not None]
        if not streams:
            raise UnprocessableMedia("no decodable audio stream")
        stream = streams[0]
        stream.thread_type = "AUTO"
        rate = stream.codec_context.sample_rate or 44100
        duration = None
        if stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        elif container.duration:
            duration = container.duration / av.time_base
        total = int(duration * rate) if duration else 0
        block = max(1, total // (buckets * 2)) if total else 256
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        blocks: list[np.ndarray] = []
        carry = np.zeros(0, dtype=np.float32)
        decoded_any = False

        def take(frames: list[Any]) -> None:
            nonlocal carry
            for f in frames:
                samples = np.abs(f.to_ndarray().reshape(-1))
                samples = np.concatenate([carry, samples]) if carry.size else samples
                whole = samples.size // block * block
                if whole:
                    blocks.append(samples[:whole].reshape(-1, block).max(axis=1))
                carry = samples[whole:]

        try:
            for packet in container.demux(stream):
                for frame in _decode_packet(packet):
                    decoded_any = True
                    take(resampler.resample(frame))
            take(resampler.resample(None))
        except av.error.FFmpegError:
            if not decoded_any:
                raise
    if not decoded_any:
        raise UnprocessableMedia("no decodable audio")
    if carry.size:
        blocks.append(np.array([carry.max()], dtype=np.float32))
    peaks = np.clip(np.nan_to_num(np.concatenate(blocks) if blocks else np.zeros(1)), 0.0, 1.0)
    loudest = float(peaks.max())
    # Scaled to the loudest peak, as waveform views do; (near-)silence stays a flat line.
    return peaks / loudest if loudest > WAVEFORM_NORMALISE_ABOVE else peaks


def _draw_waveform(peaks: np.ndarray, width: int, height: int) -> pyvips.Image:
    bar, gap = (2, 1) if width <= 256 else (3, 1)
    n_bars = max(1, (width + gap) // (bar + gap))
    edges = np.linspace(0, peaks.size, n_bars + 1).astype(int)
    levels = np.array(
        [peaks[a:b].max() if b > a else peaks[min(a, peaks.size - 1)] for a, b in zip(edges[:-1], edges[1:])]
    )
    half = (height - 4) / 2.0
    heights = np.maximum(1.0, levels * half)  # a 1 px line even for silence
    column_bar = np.full(width, -1, dtype=int)
    for i in range(n_bars):
        x = i * (bar + gap)
        column_bar[x : min(width, x + bar)] = i
    column_h = np.where(column_bar >= 0, heights[np.clip(column_bar, 0, None)], -1.0)
    rows = np.abs(np.arange(height) + 0.5 - height / 2.0)[:, None]
    mask = rows <= column_h[None, :]
    canvas = np.empty((height, width, 3), dtype=np.uint8)
    canvas[:] = WAVEFORM_BACKGROUND
    canvas[mask] = WAVEFORM_BAR
    return pyvips.Image.new_from_memory(canvas.data, width, height, 3, "uchar").copy(
        interpretation="srgb"
    ).copy_memory()
