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
"""

from __future__ import annotations

import json
import math
import os
import queue
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import av
import pypdfium2
import pypdfium2.raw as pdfium_c
from exiftool import ExifToolHelper

from infra.media_types import RAW_MIME_TYPES
from processors.base import JobInput, UnprocessableMedia

# exiftool has no timeout of its own and PyExifTool waits forever for its answer: a watchdog
# kills a call that runs longer than this. PyAV's interrupt callback gets the same budget.
EXIFTOOL_TIMEOUT_S = 30.0
EXIFTOOL_START_TIMEOUT_S = 30.0
PYAV_TIMEOUT_S = 30.0

HEIF_MIME_TYPES = frozenset({"image/heic", "image/heif", "image/avif"})

# Tags asked of exiftool. `#` turns off print conversion for that tag (numbers stay numbers);
# LensID keeps its print conversion, which is the lens name.
_EXIFTOOL_TAGS = [
    "FileType", "MIMEType", "Error", "Warning",
    "ImageSize#", "Orientation#", "Rotation#", "Duration#",
    "Make", "Model", "UniqueCameraModel", "LensModel", "LensID",
    "FNumber#", "ExposureTime#", "FocalLength#", "ISO#",
    "DateTimeOriginal", "OffsetTimeOriginal", "CreateDate", "OffsetTimeDigitized",
    "CreationDate", "DateCreated",
    "GPSLatitude#", "GPSLongitude#",
    "XResolution#", "YResolution#", "ResolutionUnit#",
    "PixelsPerUnitX#", "PixelsPerUnitY#", "PixelUnits#",
    "ImageDescription", "Description", "Caption-Abstract", "Comment",
    "Title", "Author", "Creator", "Subject", "Artist", "Album", "Genre", "Year",
    "PageCount#",
]
# -a: every group's copy of a tag; -G1: group names specific enough to choose (IFD0, ExifIFD,
# Keys, Composite, ...); LargeFileSupport: videos over 2 GB.
_EXIFTOOL_ARGS = ["-a", "-G1", "-api", "LargeFileSupport=1"]

# ImageDescription values that cameras write on every picture: not a description.
_BOILERPLATE_DESCRIPTIONS = {
    "", "null", "none", "default", "image", "picture", "photo", "sony dsc", "digital camera",
    "olympus digital camera", "minolta digital camera", "konica minolta digital camera",
    "kodak digital still camera", "exif_jpeg_picture", "camera", "dcim", "untitled",
}


# -- exiftool, one stay-open process per Python process -------------------------------------------


class ExifToolFailed(Exception):
    """exiftool could not be asked (timeout, died, no answer)."""


_exiftool_lock = threading.Lock()
_pdfium_lock = threading.Lock()  # PDFium is not thread-safe
_exiftool: ExifToolHelper | None = None
_exiftool_pid: int | None = None
# A forked child must neither use nor terminate the parent's process (the pipes are shared):
# it keeps the inherited helper referenced forever so its finaliser never runs.
_inherited: list[ExifToolHelper] = []
# PyExifTool starts exiftool with PR_SET_PDEATHSIG, which Linux ties to the starting *thread*:
# a process started from a short-lived thread (a thread pool, a test's timer thread) would get
# SIGTERM when that thread ends, possibly in the middle of the next call. So exiftool is always
# started by one daemon thread that lives as long as the process.
_starter: queue.Queue[queue.Queue[tuple[bool, Any]]] | None = None


def _forget_inherited_exiftool() -> None:
    global _exiftool, _exiftool_pid, _starter, _exiftool_lock, _pdfium_lock
    if _exiftool is not None:
        _inherited.append(_exiftool)
    _exiftool, _exiftool_pid, _starter = None, None, None
    # Another thread may have held a lock at the fork; that thread does not exist here.
    _exiftool_lock, _pdfium_lock = threading.Lock(), threading.Lock()


os.register_at_fork(after_in_child=_forget_inherited_exiftool)


def _starter_loop(requests: queue.Queue[queue.Queue[tuple[bool, Any]]]) -> None:
    while True:
        reply = requests.get()
        try:
            helper = ExifToolHelper(
                common_args=_EXIFTOOL_ARGS, check_execute=False, check_tag_names=False,
                encoding="utf-8", auto_start=False,  # never started from the caller's thread
            )
            helper.run()
            reply.put((True, helper))
        except Exception as exc:  # handed to the caller
            reply.put((False, exc))


def _start_exiftool() -> ExifToolHelper:
    global _starter
    if _starter is None:
        _starter = queue.Queue()
        threading.Thread(target=_starter_loop, args=(_starter,), name="exiftool-starter",
                         daemon=True).start()
    reply: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=1)
    _starter.put(reply)
    try:
        ok, value = reply.get(timeout=EXIFTOOL_START_TIMEOUT_S)
    except queue.Empty:
        raise ExifToolFailed(f"exiftool did not start within {EXIFTOOL_START_TIMEOUT_S:g} s") from None
    if not ok:
        raise ExifToolFailed(f"exiftool did not start: {value}") from value
    return value


def _is_running(helper: ExifToolHelper) -> bool:
    with warnings.catch_warnings():  # "process died" is what we are checking for
        warnings.simplefilter("ignore")
        return helper.running


def _discard(helper: ExifToolHelper) -> None:
    """Kill a helper's process and release its pipes; `running` then reads False."""
    proc = getattr(helper, "_process", None)
    if proc is not None:
        try:
            proc.kill()
            proc.wait(timeout=5)
        except Exception:  # already gone
            pass
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            try:
                if pipe is not None:
                    pipe.close()
            except OSError:
                pass
    _is_running(helper)


def _helper() -> ExifToolHelper:
    """The process's exiftool, started on first use and restarted if it died."""
    global _exiftool, _exiftool_pid
    if _exiftool is not None and _exiftool_pid == os.getpid() and _is_running(_exiftool):
        return _exiftool
    if _exiftool is not None and _exiftool_pid == os.getpid():
        _discard(_exiftool)
    _exiftool = None
    helper = _start_exiftool()
    _exiftool, _exiftool_pid = helper, os.getpid()
    return helper


def _make_reads_fail(proc: Any) -> None:
    """Kill exiftool and make the blocked reader in PyExifTool fail instead of spinning.

    PyExifTool reads stdout in a select/read loop that never ends at EOF. Putting a directory on
    the pipe's descriptor numbers (dup2 is atomic, the numbers stay owned by the Popen) makes the
    next read raise IsADirectoryError, which ends the call.
    """
    try:
        proc.kill()
    except OSError:
        pass
    try:
        dir_fd = os.open("/", os.O_RDONLY)
    except OSError:
        return
    try:
        for pipe in (proc.stdout, proc.stderr):
            try:
                os.dup2(dir_fd, pipe.fileno())
            except (OSError, ValueError):
                pass
    finally:
        os.close(dir_fd)


def _watch(proc: Any, done: threading.Event, fired: threading.Event, limit: float) -> None:
    """Until `done`: if exiftool dies (PyExifTool would then spin on EOF forever) or runs past
    `limit`, make the blocked call fail."""
    deadline = time.monotonic() + limit
    while not done.wait(0.05):
        if proc.poll() is not None or time.monotonic() >= deadline:
            fired.set()
            _make_reads_fail(proc)
            return


def read_exiftool(path: Path) -> dict[str, Any]:
    """exiftool's tags for `path` as {"Group:Tag": value}; raises ExifToolFailed on no answer."""
    encoded = os.fsencode(path)
    if b"\n" in encoded or b"\r" in encoded:  # arguments travel one per line
        raise ExifToolFailed("the path contains a line break")
    with _exiftool_lock:
        helper = _helper()
        proc = helper._process  # PyExifTool offers neither a timeout nor the process handle
        started = time.monotonic()
        done, fired = threading.Event(), threading.Event()
        watchdog = threading.Thread(target=_watch, args=(proc, done, fired, EXIFTOOL_TIMEOUT_S),
                                    name="exiftool-watchdog", daemon=True)
        watchdog.start()
        try:
            raw = helper.execute(
                "-j", *[f"-{t}" for t in _EXIFTOOL_TAGS], encoded, raw_bytes=True
            )
        except Exception as exc:  # whatever broke, the conversation is out of step: start over
            done.set()
            watchdog.join()
            _discard(helper)
            if time.monotonic() - started >= EXIFTOOL_TIMEOUT_S:
                raise ExifToolFailed(f"exiftool took longer than {EXIFTOOL_TIMEOUT_S:g} s") from exc
            if fired.is_set():
                raise ExifToolFailed("exiftool died while reading the file") from exc
            raise ExifToolFailed(f"exiftool failed: {exc}") from exc
        done.set()
        watchdog.join()
        if fired.is_set():  # fired just as the answer came: the process is gone
            _discard(helper)
    text = raw.decode("utf-8", errors="replace").strip() if isinstance(raw, bytes) else raw
    if not text:
        raise ExifToolFailed("exiftool gave no answer (file unreadable?)")
    try:
        parsed = json.loads(text)
    except ValueError as exc:
        raise ExifToolFailed(f"exiftool answered something that is not JSON: {exc}") from exc
    if not isinstance(parsed, list) or not parsed or not isinstance(parsed[0], dict):
        raise ExifToolFailed("exiftool answered with no record")
    return {k: v for k, v in parsed[0].items() if k != "SourceFile"}


# -- reading values --------------------------------------------------------------------------------


def _present(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return value.strip() != ""
    if isinstance(value, list):
        return any(_present(v) for v in value)
    return True


def _text(value: Any) -> str | None:
    if isinstance(value, list):
        parts = [t for t in (_text(v) for v in value) if t]
        return "; ".join(parts) or None
    if value is None or isinstance(value, (dict, bool)):
        return None
    text = str(value).replace("\x00", " ").strip()
    return text or None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        match = re.search(r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?", str(value))
        if not match:
            return None
        number = float(match.group())
    return number if math.isfinite(number) else None


def _positive(value: Any) -> float | None:
    number = _float(value)
    return number if number is not None and number > 0 else None


def _positive_int(value: Any) -> int | None:
    """The first positive integer in a value (ISO may read "0 200")."""
    if isinstance(value, bool) or value is None:
        return None
    candidates = [value] if isinstance(value, (int, float)) else re.findall(r"\d+(?:\.\d+)?", str(value))
    for candidate in candidates:
        number = _float(candidate)
        if number is not None and number > 0:
            return int(round(number))
    return None


class Tags:
    """exiftool's answer, looked up by tag name with a group preference."""

    def __init__(self, tags: dict[str, Any]) -> None:
        self.raw = tags
        self._by_name: dict[str, list[tuple[str, Any]]] = {}
        for key, value in tags.items():
            group, _, name = key.rpartition(":")
            self._by_name.setdefault(name, []).append((group, value))

    def values(self, name: str, groups: Iterable[str] = (), others: bool = True) -> list[Any]:
        """Present values of `name`: the preferred groups in order, then (if `others`) the rest
        in exiftool's order."""
        found = self._by_name.get(name, [])
        ordered: list[Any] = []
        wanted = list(groups)
        for group in wanted:
            ordered += [v for g, v in found if g == group]
        if others:
            ordered += [v for g, v in found if g not in wanted]
        return [v for v in ordered if _present(v)]

    def get(self, name: str, groups: Iterable[str] = (), others: bool = True,
            convert: Callable[[Any], Any] = _text) -> Any:
        for value in self.values(name, groups, others):
            converted = convert(value)
            if converted is not None:
                return converted
        return None

    @property
    def error(self) -> str | None:
        return _text(self.raw.get("ExifTool:Error"))

    @property
    def warning(self) -> str | None:
        return self.get("Warning")

    @property
    def useful(self) -> bool:
        """Whether exiftool read anything beyond the file type."""
        return any(
            _present(v) for k, v in self.raw.items()
            if k.rpartition(":")[0] not in ("File", "ExifTool", "System")
        )


# -- dates -----------------------------------------------------------------------------------------

_DATE_RE = re.compile(
    r"^\s*(\d{4})[:\-](\d{2})[:\-](\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?"
)
_OFFSET_RE = re.compile(r"^\s*(Z|[+-]\d{2}:?\d{2})\s*$")
_ZERO_TIMESTAMPS = {(1904, 1, 1, 0, 0, 0), (1970, 1, 1, 0, 0, 0)}  # QuickTime and Unix epochs


def _zone(text: str | None) -> timezone | None:
    if not text:
        return None
    if text == "Z":
        return timezone.utc
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4])
    if hours > 14 or minutes >= 60:
        return None
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _parse_date(value: Any, offset: Any = None, assume_utc: bool = False) -> datetime | None:
    """A full date and time (date-only values are not a taken time), aware when the value or
    `offset` names a zone, or when `assume_utc` (QuickTime/Matroska creation times are UTC)."""
    text = _text(value)
    if not text:
        return None
    match = _DATE_RE.match(text)
    if not match:
        return None
    year, month, day, hour, minute, second = (int(g) if g else 0 for g in match.groups()[:6])
    try:
        moment = datetime(year, month, day, hour, minute, second)
    except ValueError:  # 0000:00:00 and friends
        return None
    if year < 1800:
        return None
    if assume_utc and (year, month, day, hour, minute, second) in _ZERO_TIMESTAMPS:
        return None  # a container's "no date" (0 seconds since its epoch), not a date
    zone = _zone(match.group(7))
    if zone is None and offset is not None:
        off = _text(offset)
        off_match = _OFFSET_RE.match(off) if off else None
        zone = _zone(off_match.group(1)) if off_match else None
    if zone is None and assume_utc:
        zone = timezone.utc
    return moment.replace(tzinfo=zone) if zone else moment


def _first_date(candidates: list[datetime | None]) -> datetime | None:
    """The first date; a naive one borrows the zone of another candidate with its wall clock
    (EXIF DateTimeOriginal without OffsetTimeOriginal, XMP's copy with an offset)."""
    dates = [d for d in candidates if d is not None]
    if not dates:
        return None
    first = dates[0]
    if first.tzinfo is None:
        for other in dates[1:]:
            if other.tzinfo is not None and other.replace(tzinfo=None) == first:
                return other
    return first


def _time_fields(moment: datetime | None) -> tuple[str | None, str | None]:
    if moment is None:
        return None, None
    return moment.isoformat(timespec="seconds"), moment.replace(tzinfo=None).isoformat(timespec="seconds")


# -- shared helpers --------------------------------------------------------------------------------


def _image_size(tags: Tags) -> tuple[int, int] | None:
    size = tags.get("ImageSize", ["Composite"], convert=_text)
    if not size:
        return None
    numbers = re.findall(r"\d+", size)
    if len(numbers) != 2:
        return None
    width, height = int(numbers[0]), int(numbers[1])
    return (width, height) if width > 0 and height > 0 else None


def _gps(tags: Tags) -> tuple[float | None, float | None]:
    """Composite GPS (signed decimal degrees); both or neither. An empty GPS IFD gives ''."""
    lat = tags.get("GPSLatitude", ["Composite"], others=False, convert=_float)
    lon = tags.get("GPSLongitude", ["Composite"], others=False, convert=_float)
    if lat is None or lon is None or abs(lat) > 90 or abs(lon) > 180:
        return None, None
    return lat, lon


def _iso6709(text: str | None) -> tuple[float | None, float | None]:
    """'+32.0929+034.8620+028.516/' -> (32.0929, 34.862); also ±DDMM.M and ±DDMMSS.S forms."""
    if not text:
        return None, None
    match = re.match(r"^\s*([+-]\d+(?:\.\d+)?)([+-]\d+(?:\.\d+)?)", text)
    if not match:
        return None, None

    def degrees(part: str, degree_digits: int) -> float:
        sign = -1.0 if part[0] == "-" else 1.0
        body = part[1:]
        whole, _, frac = body.partition(".")
        frac = "." + frac if frac else ""
        if len(whole) <= degree_digits:
            value = float(whole + frac)
        elif len(whole) <= degree_digits + 2:
            value = float(whole[:degree_digits]) + float(whole[degree_digits:] + frac) / 60
        else:
            value = (float(whole[:degree_digits]) + float(whole[degree_digits:degree_digits + 2]) / 60
                     + float(whole[degree_digits + 2:] + frac) / 3600)
        return sign * value

    lat, lon = degrees(match.group(1), 2), degrees(match.group(2), 3)
    if abs(lat) > 90 or abs(lon) > 180:
        return None, None
    return lat, lon


def _rotation(value: Any) -> int | None:
    number = _float(value)
    if number is None:
        return None
    return int(round(number)) % 360


def _displayed(size: tuple[int, int] | None, quarter_turn: bool) -> tuple[int | None, int | None]:
    if size is None:
        return None, None
    return (size[1], size[0]) if quarter_turn else size


def _description(tags: Tags, *names_and_groups: tuple[str, list[str]],
                 camera: Iterable[str | None] = ()) -> str | None:
    ignore = {c.strip().lower() for c in camera if c}
    for name, groups in names_and_groups:
        for value in tags.values(name, groups):
            text = _text(value)
            if not text:
                continue
            lowered = " ".join(text.lower().split())
            if lowered in _BOILERPLATE_DESCRIPTIONS or lowered in ignore:
                continue
            return text
    return None


def _format_number(value: float) -> str:
    return f"{round(value, 2):g}"


def _exposure_text(seconds: float | None) -> str | None:
    """exiftool's PrintExposureTime: '1/15' below a quarter second, else '2', '0.3'."""
    if seconds is None:
        return None
    if 0 < seconds < 0.25001:
        return f"1/{int(0.5 + 1 / seconds)}"
    text = f"{seconds:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _resolution(tags: Tags) -> str | None:
    """'72x72 dpi' from IFD0, else JFIF, else PNG pHYs; None when the file gives only an
    aspect ratio. Centimetres and metres are converted to dpi."""
    sources = (
        ("IFD0", "XResolution", "YResolution", "ResolutionUnit", {1: None, 2: 1.0, 3: 2.54}, 2),
        ("JFIF", "XResolution", "YResolution", "ResolutionUnit", {0: None, 1: 1.0, 2: 2.54}, 0),
        ("PNG", "PixelsPerUnitX", "PixelsPerUnitY", "PixelUnits", {0: None, 1: 0.0254}, 0),
    )
    for group, x_name, y_name, unit_name, factors, default_unit in sources:
        x = tags.get(x_name, [group], others=False, convert=_positive)
        y = tags.get(y_name, [group], others=False, convert=_positive)
        if x is None or y is None:
            continue
        unit = tags.get(unit_name, [group], others=False, convert=_float)
        factor = factors.get(int(unit) if unit is not None else default_unit)
        if factor is None:
            continue
        return f"{_format_number(x * factor)}x{_format_number(y * factor)} dpi"
    return None


# -- PyAV ------------------------------------------------------------------------------------------

_ATTACHED_PIC = 0x400  # AV_DISPOSITION_ATTACHED_PIC: cover art, not a video track


class StreamFacts:
    """What PyAV says about a video/audio file."""

    def __init__(self) -> None:
        self.duration: float | None = None
        self.bit_rate: int | None = None
        self.width: int | None = None
        self.height: int | None = None
        self.video_codec: str | None = None
        self.frame_rate: float | None = None
        self.video_bit_rate: int | None = None
        self.audio_codec: str | None = None
        self.audio_bit_rate: int | None = None
        self.sample_rate: int | None = None
        self.channels: int | None = None
        self.format_tags: dict[str, str] = {}
        self.video_tags: dict[str, str] = {}
        self.audio_tags: dict[str, str] = {}

    def tag(self, *names: str, audio_first: bool = False) -> str | None:
        """A container or stream tag, without regard to case."""
        scopes = [self.format_tags, self.audio_tags, self.video_tags] if audio_first else [
            self.format_tags, self.video_tags, self.audio_tags]
        for name in names:
            for scope in scopes:
                value = _text(scope.get(name.lower()))
                if value:
                    return value
        return None

    def creation_times(self) -> list[datetime | None]:
        raw = [self.format_tags.get("creation_time"), self.video_tags.get("creation_time"),
               self.audio_tags.get("creation_time")]
        return [_parse_date(v, assume_utc=True) for v in raw if v]


def _lower_tags(metadata: Any) -> dict[str, str]:
    tags: dict[str, str] = {}
    for key, value in dict(metadata or {}).items():
        tags.setdefault(str(key).lower(), value)
    return tags


def _codec_name(codec_context: Any) -> str | None:
    codec = getattr(codec_context, "codec", None)
    name = getattr(codec, "canonical_name", None) or getattr(codec_context, "name", None)
    return str(name) if name else None


def _rate(value: Any) -> float | None:
    try:
        number = float(value) if value else None
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return round(number, 3) if number and math.isfinite(number) and number > 0 else None


def read_streams(path: Path) -> StreamFacts:
    """Open the file with PyAV (bounded by PYAV_TIMEOUT_S) and read its stream facts."""
    facts = StreamFacts()
    with av.open(str(path), timeout=(PYAV_TIMEOUT_S, PYAV_TIMEOUT_S), metadata_errors="ignore") as container:
        if container.duration and container.duration > 0:
            facts.duration = round(container.duration / av.time_base, 3)
        facts.bit_rate = container.bit_rate or None
        facts.format_tags = _lower_tags(container.metadata)
        videos = [s for s in container.streams.video
                  if not (int(getattr(s, "disposition", 0) or 0) & _ATTACHED_PIC)]
        audios = list(container.streams.audio)
        if videos:
            stream = videos[0]
            ctx = stream.codec_context
            if ctx is not None:
                facts.width, facts.height = (ctx.width or None), (ctx.height or None)
                facts.video_codec = _codec_name(ctx)
                facts.video_bit_rate = ctx.bit_rate or None
            facts.frame_rate = _rate(stream.average_rate) or _rate(stream.guessed_rate)
            facts.video_tags = _lower_tags(stream.metadata)
            if facts.duration is None and stream.duration and stream.time_base:
                facts.duration = round(float(stream.duration * stream.time_base), 3)
        if audios:
            stream = audios[0]
            ctx = stream.codec_context
            if ctx is not None:
                facts.audio_codec = _codec_name(ctx)
                facts.audio_bit_rate = ctx.bit_rate or None
                facts.sample_rate = ctx.sample_rate or None
                layout = getattr(ctx, "layout", None)
                facts.channels = getattr(layout, "nb_channels", None) or getattr(ctx, "channels", None) or None
            facts.audio_tags = _lower_tags(stream.metadata)
            if facts.duration is None and stream.duration and stream.time_base:
                facts.duration = round(float(stream.duration * stream.time_base), 3)
    return facts


# -- per type --------------------------------------------------------------------------------------


def _photo(job: JobInput, tags: Tags) -> dict[str, Any]:
    make = tags.get("Make", ["IFD0"])
    model = tags.get("Model", ["IFD0"]) or tags.get("UniqueCameraModel", ["IFD0"])
    lens = tags.get("LensModel", ["ExifIFD", "XMP-exifEX", "XMP-aux"])
    if lens is None:
        lens_id = tags.get("LensID", ["Composite"], others=False)
        lens = lens_id if lens_id and not lens_id.lower().startswith("unknown") else None
    exif_first = ["ExifIFD", "IFD0", "XMP-exif"]
    exposure_time = tags.get("ExposureTime", exif_first, convert=_positive)
    f_number = tags.get("FNumber", exif_first, convert=_positive)
    focal_length = tags.get("FocalLength", exif_first, convert=_positive)
    iso = tags.get("ISO", ["ExifIFD", "Composite", "IFD0", "XMP-exif"], convert=_positive_int)

    orientation = tags.get("Orientation", ["IFD0", "XMP-tiff"], convert=_float)
    orientation = int(orientation) if orientation is not None and 1 <= orientation <= 8 else None
    size = _image_size(tags)
    if job.mime_type in HEIF_MIME_TYPES:
        # HEIF decoders apply the container's irot and ignore EXIF Orientation (informative only).
        irot = tags.get("Rotation", ["QuickTime", "Composite"], others=False, convert=_rotation)
        quarter_turn = irot in (90, 270)
    else:
        quarter_turn = orientation in (5, 6, 7, 8)
    width, height = _displayed(size, quarter_turn)

    taken = _first_date([
        _parse_date(tags.get("DateTimeOriginal", ["ExifIFD"], others=False),
                    tags.get("OffsetTimeOriginal", ["ExifIFD"])),
        _parse_date(tags.get("DateTimeOriginal", ["IFD0"], others=False),
                    tags.get("OffsetTimeOriginal", ["ExifIFD"])),
        _parse_date(tags.get("DateTimeOriginal", ["XMP-exif"], others=False)),
        _parse_date(tags.get("DateCreated", ["XMP-photoshop"], others=False)),
        _parse_date(tags.get("CreateDate", ["ExifIFD"], others=False),
                    tags.get("OffsetTimeDigitized", ["ExifIFD"])),
        _parse_date(tags.get("CreateDate", ["XMP-xmp"], others=False)),
        _parse_date(tags.get("CreateDate", ["QuickTime"], others=False), assume_utc=True),
        *[_parse_date(v) for v in tags.values("DateTimeOriginal")],
    ])
    taken_time = _time_fields(taken)[0]
    lat, lon = _gps(tags)
    specific = {
        "taken_time": taken_time,
        "camera_model": model,
        "camera_make": make,
        "lens_model": lens,
        "exposure_time": exposure_time,
        "f_number": f_number,
        "focal_length": focal_length,
        "iso_speed": iso,
        "exposure": _exposure_text(exposure_time),
        "dimensions": f"{size[0]}x{size[1]}" if size else None,
        "resolution": _resolution(tags),
        "gps_latitude": lat,
        "gps_longitude": lon,
        "is_raw": job.mime_type in RAW_MIME_TYPES,
        "orientation": orientation,
        "description": _description(
            tags, ("ImageDescription", ["IFD0"]), ("Description", ["XMP-dc"]),
            ("Caption-Abstract", ["IPTC"]), camera=(make, model),
        ),
    }
    return _result(width, height, None, taken, specific)


def _video_time(tags: Tags, streams: StreamFacts | None) -> datetime | None:
    """Capture time: a tag with the local zone first (Apple Keys, udta, AVCHD), then the
    container's creation time, which is UTC."""
    return _first_date([
        _parse_date(tags.get("CreationDate", ["Keys"], others=False)),
        _parse_date(tags.get("DateTimeOriginal", ["UserData"], others=False)),
        _parse_date(tags.get("DateTimeOriginal", ["H264"], others=False)),
        _parse_date(tags.get("DateTimeOriginal", ["Matroska"], others=False), assume_utc=True),
        _parse_date(tags.get("CreationDate", ["ItemList", "UserData"], others=False)),
        _parse_date(tags.get("CreateDate", ["QuickTime"], others=False), assume_utc=True),
        *(streams.creation_times() if streams else []),
    ])


def _video(job: JobInput, tags: Tags, streams: StreamFacts | None) -> dict[str, Any]:
    rotation = tags.get("Rotation", ["Composite", "QuickTime"], others=False, convert=_rotation)
    if streams is not None and streams.width and streams.height:
        size: tuple[int, int] | None = (streams.width, streams.height)
    else:
        size = _image_size(tags)
    width, height = _displayed(size, rotation in (90, 270))

    make = tags.get("Make", ["Keys", "UserData", "ItemList", "H264"])
    model = tags.get("Model", ["Keys", "UserData", "ItemList", "H264"])
    if streams is not None:
        make = make or streams.tag("com.apple.quicktime.make", "make")
        model = model or streams.tag("com.apple.quicktime.model", "model")
    # VIDEO has no camera_make field: the make goes in front of the model unless already there.
    if make and model and not model.lower().startswith(make.lower()):
        camera_model: str | None = f"{make} {model}"
    else:
        camera_model = model or make

    lat, lon = _gps(tags)
    if lat is None and streams is not None:
        lat, lon = _iso6709(streams.tag("com.apple.quicktime.location.iso6709", "location"))

    taken = _video_time(tags, streams)
    duration = streams.duration if streams and streams.duration else tags.get(
        "Duration", ["QuickTime", "Matroska", "M2TS", "Composite"], convert=_positive)
    description = streams.tag("description", "comment") if streams else None
    description = description or _description(tags, ("Description", []), ("Comment", []))
    specific = {
        "recorded_time": _time_fields(taken)[0],
        "camera_model": camera_model,
        "codec": streams.video_codec if streams else None,
        "bitrate": (streams.bit_rate or streams.video_bit_rate) if streams else None,
        "frame_rate": streams.frame_rate if streams else None,
        "gps_latitude": lat,
        "gps_longitude": lon,
        "rotation": rotation,
        "description": description,
    }
    return _result(width, height, round(duration, 3) if duration else None, taken, specific)


def _year(text: str | None) -> int | None:
    match = re.search(r"(?<!\d)(\d{4})(?!\d)", text or "")
    return int(match.group(1)) if match else None


def _audio(job: JobInput, tags: Tags, streams: StreamFacts | None) -> dict[str, Any]:
    def tag(name: str, *aliases: str) -> str | None:
        value = streams.tag(name, *aliases, audio_first=True) if streams else None
        return value or tags.get(name.capitalize())

    year = _year(tag("date", "year", "tyer", "tdrc")) or _year(tags.get("Year")) or _year(
        tags.get("DateCreated"))
    taken = _first_date([
        _parse_date(tags.get("CreateDate", ["QuickTime"], others=False), assume_utc=True),
        *(streams.creation_times() if streams else []),
    ])
    duration = streams.duration if streams and streams.duration else tags.get(
        "Duration", ["Composite", "QuickTime"], convert=_positive)
    description = streams.tag("comment", "description", audio_first=True) if streams else None
    description = description or _description(tags, ("Comment", []), ("Description", []))
    specific = {
        "title": tag("title"),
        "artist": tag("artist"),
        "album": tag("album"),
        "genre": tag("genre"),
        "year": year,
        "codec": streams.audio_codec if streams else None,
        "bitrate": (streams.audio_bit_rate or streams.bit_rate) if streams else None,
        "sample_rate": streams.sample_rate if streams else None,
        "channels": streams.channels if streams else None,
        "description": description,
    }
    return _result(None, None, round(duration, 3) if duration else None, taken, specific)


def _pdf_page_count(path: Path) -> tuple[int | None, str | None]:
    """(page count, why not); an encrypted PDF is tried with an empty user password."""
    with _pdfium_lock:
        try:
            pdf = pypdfium2.PdfDocument(str(path))
        except pypdfium2.PdfiumError as exc:
            if getattr(exc, "err_code", None) == pdfium_c.FPDF_ERR_PASSWORD:
                return None, "password protected"
            return None, str(exc)
        try:
            return len(pdf), None
        finally:
            pdf.close()


def _document(job: JobInput, tags: Tags) -> tuple[dict[str, Any], str | None]:
    page_count, why = _pdf_page_count(job.original_path)
    if page_count is None:
        page_count = tags.get("PageCount", ["PDF"], convert=_positive_int)
    taken = _first_date([
        _parse_date(tags.get("CreateDate", ["PDF"], others=False)),
        _parse_date(tags.get("CreateDate", ["XMP-xmp"], others=False)),
    ])
    specific = {
        "page_count": page_count,
        "title": tags.get("Title", ["PDF", "XMP-dc"], others=False),
        "author": tags.get("Author", ["PDF"], others=False) or tags.get("Creator", ["XMP-dc"], others=False),
        "description": tags.get("Subject", ["PDF"], others=False) or tags.get(
            "Description", ["XMP-dc"], others=False),
    }
    return _result(None, None, None, taken, specific), why


def _result(width: int | None, height: int | None, duration: float | None,
            taken: datetime | None, specific: dict[str, Any]) -> dict[str, Any]:
    taken_time, taken_local = _time_fields(taken)
    return {
        "width": width,
        "height": height,
        "duration": duration,
        "taken_time": taken_time,
        "taken_time_local": taken_local,
        "specific_metadata": specific,
    }


# -- entry point -----------------------------------------------------------------------------------


def raw_damage(mime_type: str, warning: str | None) -> str | None:
    """What is wrong with a RAW file whose structure exiftool could not follow (a truncated file
    whose directories point past its end). Its embedded preview may still show: the asset is
    then complete-looking but not whole, which the owner should know. Minor warnings (maker-note
    offsets, arrays not decoded) are about exiftool's reading, not about the file."""
    if mime_type not in RAW_MIME_TYPES or not warning or warning.lower().startswith("[minor]"):
        return None
    return f"the RAW file is damaged: {warning} (truncated or corrupted; its preview may still show)"


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
