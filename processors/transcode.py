"""Web versions: a file every browser plays, made only when the original is not one already.

- VIDEO: MP4/MOV with H.264 (8-bit 4:2:0) and AAC or no sound is used as it is (served as
  video/mp4: the same ISO-BMFF family). Anything else, WebM included (the contract promises MP4,
  and Safari plays WebM only in part), becomes `web.mp4`: H.264 (libx264,
  preset veryfast, CRF 23, yuv420p) + AAC, at most 1080 px high, the display rotation baked into
  the pixels, `moov` before `mdat` (faststart) so playback starts before the download ends.
- AUDIO: MP3, AAC in MP4 and Opus/Vorbis in Ogg are used as they are; anything else (FLAC, WAV,
  ...) becomes `web.m4a` (AAC).

Everything is streamed packet by packet: memory does not grow with the length of the file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error

from processors.base import JobInput, UnprocessableMedia, relative_path

log = logging.getLogger(__name__)

MAX_HEIGHT = 1080
X264_OPTIONS = {"preset": "veryfast", "crf": "23"}
AAC_BITRATE_PER_CHANNEL = 64_000
AAC_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
MUXER_OPTIONS = {"movflags": "+faststart"}

_MP4_FAMILY = "mov"  # FFmpeg's demuxer "mov,mp4,m4a,3gp,3g2,mj2"
_WEB_VIDEO_MP4 = ({"h264"}, {"aac"})
_WEB_PIX_FMTS = {"yuv420p", "yuvj420p"}


def make_web_version(job: JobInput) -> dict[str, Any]:
    if job.asset_type not in ("VIDEO", "AUDIO"):
        return {"skipped": "not audio or video"}
    path = Path(job.original_path)
    derived_dir = Path(job.derived_dir)
    try:
        if job.asset_type == "VIDEO":
            why = _web_playable_video(path, job.mime_type)
            if why:
                return {"skipped": why}
            dest = derived_dir / "web.mp4"
            info = _atomic(dest, job.job_id, lambda tmp: _transcode_video(path, tmp))
            return {"web_video": {"path": relative_path(dest, job.derived_root), "mime_type": "video/mp4", **info}}
        why = _web_playable_audio(path)
        if why:
            return {"skipped": why}
        dest = derived_dir / "web.m4a"
        info = _atomic(dest, job.job_id, lambda tmp: _transcode_audio(path, tmp))
        return {"web_audio": {"path": relative_path(dest, job.derived_root), "mime_type": "audio/mp4", **info}}
    except UnprocessableMedia:
        raise
    except av.error.FFmpegError as e:
        raise UnprocessableMedia(f"cannot transcode: {e}") from e
    except (ValueError, OverflowError, ZeroDivisionError) as e:
        # PyAV reports some nonsense parameters of damaged streams this way.
        raise UnprocessableMedia(f"cannot transcode: {type(e).__name__}: {e}") from e


# --- deciding ------------------------------------------------------------------------------


def _open(path: Path) -> Any:
    return av.open(os.fspath(path), metadata_errors="ignore")


def _main_video_stream(container: Any) -> Any | None:
    for stream in container.streams.video:
        if stream.codec_context is None:  # no decoder for it
            continue
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    return None


def _main_audio_stream(container: Any) -> Any | None:
    for stream in container.streams.audio:
        if stream.codec_context is not None and stream.codec_context.sample_rate:
            return stream
    return None


def _codec_name(stream: Any) -> str:
    cc = stream.codec_context
    return (cc.name if cc is not None else "") or ""


def _web_playable_video(path: Path, mime_type: str) -> str | None:
    """Why the original plays in browsers as it is, or None when it needs a web version."""
    with _open(path) as c:
        video = _main_video_stream(c)
        if video is None:
            raise UnprocessableMedia("no video stream")
        vcodec = _codec_name(video)
        audio = {_codec_name(s) for s in c.streams.audio}  # all of them must play
        fmt = c.format.name or ""
        pix_fmt = video.codec_context.pix_fmt or ""
    if _MP4_FAMILY in fmt.split(","):
        vset, aset = _WEB_VIDEO_MP4
        kind = "MP4/MOV"
    else:
        return None
    if vcodec not in vset or not audio <= aset:
        return None
    if vcodec == "h264" and pix_fmt not in _WEB_PIX_FMTS:
        return None  # 10-bit or 4:2:2/4:4:4 H.264: browsers do not decode it
    sound = f" + {'/'.join(sorted(audio))}" if audio else ", no sound"
    return f"already web-playable ({kind}: {vcodec}{sound})"


def _web_playable_audio(path: Path) -> str | None:
    with _open(path) as c:
        stream = _main_audio_stream(c)
        if stream is None:
            raise UnprocessableMedia("no decodable audio stream")
        codec = _codec_name(stream)
        formats = set((c.format.name or "").split(","))
    if codec in ("mp3", "mp3float") and "mp3" in formats:
        return "already web-playable (MP3)"
    if codec == "aac" and _MP4_FAMILY in formats:
        return "already web-playable (AAC in MP4)"
    if codec in ("opus", "vorbis") and "ogg" in formats:
        return f"already web-playable ({codec.capitalize()} in Ogg)"
    return None


# --- writing -------------------------------------------------------------------------------


def _atomic(dest: Path, job_id: int, write: Any) -> dict[str, Any]:
    """Write through a per-job partial file, then rename: never a half file, and two jobs of
    one asset (a reprocess beside its superseded job) never write the same file."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.stem}.{job_id}.partial{dest.suffix}")
    try:
        info = write(partial)
        os.replace(partial, dest)
    finally:
        partial.unlink(missing_ok=True)
    return info



def _decode(stream: Any, packet: Any) -> list[Any]:
    try:
        return stream.decode(packet)
    except av.error.InvalidDataError:
        return []  # a damaged packet: skip it, as players do


def _probe_frame(path: Path) -> tuple[int, int, int, Fraction]:
    """Width, height, display rotation (degrees counter-clockwise) and sample aspect ratio of the
    first decodable video frame."""
    with _open(path) as c:
        stream = _main_video_stream(c)
        if stream is None:
            raise UnprocessableMedia("no video stream")
        stream.thread_type = "AUTO"
        for packet in c.demux(stream):
            for frame in _decode(stream, packet):
                sar = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
                sar = Fraction(sar) if sar and sar > 0 else Fraction(1)
                return frame.width, frame.height, int(frame.rotation or 0), sar
    raise UnprocessableMedia("no decodable video frame")


def _output_size(width: int, height: int, rotation: int, sar: Fraction) -> tuple[int, int, int]:
    """(width, height, clockwise quarter turns) of the web version: upright, square pixels, at
    most MAX_HEIGHT high, even sides."""
    turns = int(round(-rotation / 90.0)) % 4
    w, h = width * float(sar), float(height)
    if turns % 2:
        w, h = h, w
    scale = min(1.0, MAX_HEIGHT / h) if h > 0 else 1.0
    return max(2, int(round(w * scale / 2)) * 2), max(2, int(round(h * scale / 2)) * 2), turns


def _video_filter(stream: Any, width: int, height: int, turns: int) -> Any:
    graph = av.filter.Graph()
    nodes = [graph.add_buffer(template=stream)]
    if turns == 1:
        nodes.append(graph.add("transpose", "clock"))
    elif turns == 3:
        nodes.append(graph.add("transpose", "cclock"))
    elif turns == 2:
        nodes += [graph.add("hflip"), graph.add("vflip")]
    nodes += [
        graph.add("scale", f"{width}:{height}"),
        graph.add("setsar", "1"),
        graph.add("format", "yuv420p"),
        graph.add("buffersink"),
    ]
    graph.link_nodes(*nodes).configure()
    return graph


def _pull(graph: Any) -> Iterator[Any]:
    while True:
        try:
            yield graph.pull()
        except (av.error.BlockingIOError, av.error.EOFError):
            return


def _add_audio_stream(out: Any, in_stream: Any) -> tuple[Any, av.AudioResampler, int]:
    cc = in_stream.codec_context
    rate = cc.sample_rate or 48000
    rate = rate if rate in AAC_RATES else 48000
    layout = "mono" if (cc.channels or 2) == 1 else "stereo"
    stream = out.add_stream("aac", rate=rate)
    stream.codec_context.layout = layout
    stream.codec_context.bit_rate = AAC_BITRATE_PER_CHANNEL * (1 if layout == "mono" else 2)
    stream.codec_context.time_base = Fraction(1, rate)
    resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate, frame_size=1024)
    return stream, resampler, rate


class _AudioWriter:
    """Resamples decoded sound to AAC's 1024-sample frames and numbers them by sample count."""

    def __init__(self, out: Any, in_stream: Any, start_offset_s: float = 0.0) -> None:
        self.stream, self.resampler, self.rate = _add_audio_stream(out, in_stream)
        self.out = out
        self.samples = max(0, int(round(start_offset_s * self.rate)))
        self.first = self.samples

    def write(self, frame: Any | None) -> None:
        for f in self.resampler.resample(frame):
            f.pts = self.samples
            f.time_base = Fraction(1, self.rate)
            self.samples += f.samples
            self.out.mux(self.stream.encode(f))

    def close(self) -> None:
        self.write(None)
        self.out.mux(self.stream.encode(None))

    @property
    def duration(self) -> float:
        return self.samples / self.rate


def _transcode_video(path: Path, dest: Path) -> dict[str, Any]:
    src_w, src_h, rotation, sar = _probe_frame(path)
    width, height, turns = _output_size(src_w, src_h, rotation, sar)
    with _open(path) as inp:
        vin = _main_video_stream(inp)
        assert vin is not None
        vin.thread_type = "AUTO"
        ain = _main_audio_stream(inp)
        time_base = vin.time_base or Fraction(1, 90000)
        rate = vin.average_rate or vin.guessed_rate or Fraction(30)
        if not 1 <= rate <= 240:
            rate = Fraction(30)
        with av.open(os.fspath(dest), "w", format="mp4", options=MUXER_OPTIONS) as out:
            vout = out.add_stream("libx264", rate=rate, options=dict(X264_OPTIONS))
            vout.width, vout.height, vout.pix_fmt = width, height, "yuv420p"
            vout.codec_context.time_base = time_base
            vout.thread_type = "AUTO"
            graph = _video_filter(vin, width, height, turns)
            start = _start_seconds(inp, vin, ain)
            audio = None
            if ain is not None:
                ain.thread_type = "AUTO"
                audio = _AudioWriter(out, ain, _stream_start(ain) - start)
            start_pts = int(round(start / time_base))
            streams = [vin] + ([ain] if ain is not None else [])
            last_pts = -1
            first_dts: int | None = None
            frames = 0
            step = max(1, int(round(1 / (rate * time_base))))

            def encode(frame: Any) -> None:
                nonlocal last_pts, frames
                pts = frame.pts - start_pts if frame.pts is not None else last_pts + step
                if pts <= last_pts:
                    return  # duplicate or backwards timestamp: x264 needs them increasing
                frame.pts, frame.time_base = pts, time_base
                last_pts = pts
                frames += 1
                mux_video(vout.encode(frame))

            def mux_video(packets: list[Any]) -> None:
                nonlocal first_dts
                if first_dts is None and packets:
                    first_dts = packets[0].dts
                out.mux(packets)

            for packet in inp.demux(streams):
                if packet.stream is vin:
                    for frame in _decode(vin, packet):
                        graph.push(frame)
                        for f in _pull(graph):
                            encode(f)
                elif audio is not None:
                    for frame in _decode(ain, packet):
                        audio.write(frame)
            graph.push(None)
            for f in _pull(graph):
                encode(f)
            if frames == 0:
                raise UnprocessableMedia("no decodable video frame")
            tail = vout.encode(None)
            if tail:
                # The MP4 track ends at the last packet's dts + duration. With B-frames and a
                # variable frame rate the last dts can lag far behind the last pts: stretch the
                # last packet so the track covers the last frame.
                # (The muxer starts the track at the first dts, negative with B-frames, and
                # shifts it to 0 with an edit list.)
                last = tail[-1]
                base = first_dts if first_dts is not None else tail[0].dts
                if last.dts is not None:
                    wanted = last_pts + step - (last.dts - (base or 0))
                    last.duration = max(last.duration or 0, wanted)
            mux_video(tail)
            if audio is not None:
                audio.close()
    return {"width": width, "height": height, "duration": _duration(dest)}


def _stream_start(stream: Any) -> float:
    if stream.start_time is not None and stream.time_base:
        return float(stream.start_time * stream.time_base)
    return 0.0


def _start_seconds(container: Any, *streams: Any) -> float:
    starts = [_stream_start(s) for s in streams if s is not None and s.start_time is not None]
    return min(starts) if starts else 0.0


def _transcode_audio(path: Path, dest: Path) -> dict[str, Any]:
    with _open(path) as inp:
        ain = _main_audio_stream(inp)
        if ain is None:
            raise UnprocessableMedia("no decodable audio stream")
        ain.thread_type = "AUTO"
        with av.open(os.fspath(dest), "w", format="mp4", options=MUXER_OPTIONS) as out:
            audio = _AudioWriter(out, ain)
            for packet in inp.demux(ain):
                for frame in _decode(ain, packet):
                    audio.write(frame)
            if audio.samples == audio.first:
                raise UnprocessableMedia("no decodable audio")
            audio.close()
    return {"duration": _duration(dest)}


def _duration(path: Path) -> float:
    with _open(path) as c:
        if c.duration:
            return round(c.duration / av.time_base, 3)
        s = c.streams[0]
        return round(float((s.duration or 0) * (s.time_base or 0)), 3)
