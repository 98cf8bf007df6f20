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
"""

from __future__ import annotations

import base64
import ctypes
import ctypes.util
import json
import logging
import os
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from concurrent.futures import Future, ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error
import numpy as np
import pypdfium2 as pdfium
import pyvips
import rawpy

from infra.media_types import RAW_MIME_TYPES
from processors.base import JobInput, UnprocessableMedia, relative_path
from processors.decoder_limits import check_pixels, within_pixel_limit

log = logging.getLogger(__name__)

SIZES: tuple[tuple[str, int], ...] = (("small", 256), ("medium", 1024), ("large", 2048))
WEBP_QUALITY = 80
# libwebp effort 2 encodes 2-3x faster than the default 4 for about 4% more bytes at the same
# quality; the 2048 px rendition is where most of the time goes.
WEBP_EFFORT = 2
MIME_TYPE = "image/webp"

EXIFTOOL = os.environ.get("DARKROOM_EXIFTOOL", "exiftool")
EXIFTOOL_TIMEOUT_S = 30
# An embedded RAW preview at least this long (longest side) is used as it is; a smaller one makes
# us try LibRaw first and keep the preview as the fallback.
RAW_PREVIEW_GOOD_ENOUGH = 1024
# Previews smaller than this, or of one flat colour, are placeholders (stripped files carry 8x8
# white JPEGs where the preview was).
RAW_PREVIEW_MIN_SIDE = 32
FLAT_DEVIATION = 0.5
# Video: frames decoded forward from the key frame before the poster time, at most.
MAX_FRAMES_AFTER_SEEK = 300
POSTER_FRACTIONS = (0.1, 0.25, 0.5)
POSTER_MIN_DETAIL = 8.0
# Audio waveform: (width, height) drawn for a size name; the waveform's own size is 1024x256.
WAVEFORM_SIZE = {"small": (256, 64), "medium": (1024, 256), "large": (1024, 256)}
WAVEFORM_BACKGROUND = (244, 244, 242)
WAVEFORM_BAR = (38, 42, 48)
WAVEFORM_NORMALISE_ABOVE = 0.02  # peak amplitude (-34 dBFS)


@contextmanager
def decoding(media: str = "media") -> Iterator[None]:
    """A decoder's error (libvips, FFmpeg, PDFium, LibRaw) becomes UnprocessableMedia with the
    decoder's message: a bad file fails its job, never the worker. `media` names what FFmpeg was
    decoding in the message."""
    try:
        yield
    except UnprocessableMedia:
        raise
    except pyvips.Error as e:
        raise UnprocessableMedia(f"cannot decode image: {_vips_message(e)}") from e
    except av.error.FFmpegError as e:
        raise UnprocessableMedia(f"cannot decode {media}: {e}") from e
    except pdfium.PdfiumError as e:
        raise UnprocessableMedia(f"cannot render PDF: {e}") from e
    except rawpy.LibRawError as e:
        raise UnprocessableMedia(f"cannot decode RAW: {type(e).__name__}: {e}") from e


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


# --- writing ---------------------------------------------------------------------------------

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


def _vips_message(e: pyvips.Error) -> str:
    detail = " ".join(line.strip() for line in str(e.detail or "").splitlines() if line.strip())
    return f"{e.message}: {detail}"[:500] if detail else str(e.message)


# --- photos ----------------------------------------------------------------------------------


def _photo_renditions(path: Path) -> Renditions:
    try:
        header = pyvips.Image.new_from_file(str(path), fail_on="error")
    except pyvips.Error as e:
        raise UnprocessableMedia(f"not a readable image: {_vips_message(e)}") from e
    check_pixels(header.width, header.height)  # from the header, before a pixel is decoded
    loader = header.get("vips-loader") if header.get_typeof("vips-loader") else ""
    if loader.startswith("heifload") and _heif_needs_libheif(header):
        return _from_image(_heif_decode(path))

    colour = _colour_args(header)
    # The large rendition straight from the file (shrink-on-load for JPEG and WebP, orientation,
    # colour management); medium and small are reduced from it in memory, which is faster than
    # decoding the file again and as good.
    large = pyvips.Image.thumbnail(
        str(path), 2048, height=2048, size="down", fail_on="error", **colour
    )
    if colour:
        large = large.copy()
        large.remove("icc-profile-data")  # now sRGB
    return _from_image(large)


# HEIC: the pyvips-binary wheel's libheif has no HEVC decoder (AVIF works). The system libheif
# (Debian libheif1, linked with libde265; a dependency of libvips-tools) does.
_pyvips_decodes_hevc: bool | None = None


def _heif_needs_libheif(header: pyvips.Image) -> bool:
    global _pyvips_decodes_hevc
    compression = header.get("heif-compression") if header.get_typeof("heif-compression") else ""
    if compression != "hevc":
        return False
    if _pyvips_decodes_hevc is None:
        try:
            header.crop(0, 0, min(16, header.width), min(16, header.height)).copy_memory()
            _pyvips_decodes_hevc = True
        except pyvips.Error as e:
            text = f"{e.message} {e.detail}"
            if any(k in text for k in ("HEVC", "libde265", "plugin", "not been built in")):
                _pyvips_decodes_hevc = False
            else:
                raise UnprocessableMedia(f"cannot decode HEIF: {_vips_message(e)}") from e
    return not _pyvips_decodes_hevc


class _HeifError(ctypes.Structure):
    _fields_ = [("code", ctypes.c_int), ("subcode", ctypes.c_int), ("message", ctypes.c_char_p)]


_libheif: Any = None
_HEIF_COLORSPACE_RGB = 1
_HEIF_CHROMA_RGB = 10
_HEIF_CHROMA_RGBA = 11
_HEIF_CHANNEL_INTERLEAVED = 10


def _load_libheif() -> Any:
    global _libheif
    if _libheif is not None:
        return _libheif
    name = ctypes.util.find_library("heif") or "libheif.so.1"
    try:
        lib = ctypes.CDLL(name)
    except OSError as e:
        raise UnprocessableMedia(
            "HEIC (HEVC) cannot be decoded here: libvips has no HEVC decoder and the system "
            f"libheif ({name}) is missing"
        ) from e
    vp, err = ctypes.c_void_p, _HeifError
    sig: dict[str, tuple[list[Any], Any]] = {
        "heif_context_alloc": ([], vp),
        "heif_context_free": ([vp], None),
        "heif_context_read_from_file": ([vp, ctypes.c_char_p, vp], err),
        "heif_context_get_primary_image_handle": ([vp, ctypes.POINTER(vp)], err),
        "heif_image_handle_release": ([vp], None),
        "heif_image_handle_has_alpha_channel": ([vp], ctypes.c_int),
        "heif_image_handle_get_raw_color_profile_size": ([vp], ctypes.c_size_t),
        "heif_image_handle_get_raw_color_profile": ([vp, vp], err),
        "heif_decode_image": ([vp, ctypes.POINTER(vp), ctypes.c_int, ctypes.c_int, vp], err),
        "heif_image_release": ([vp], None),
        "heif_image_get_width": ([vp, ctypes.c_int], ctypes.c_int),
        "heif_image_get_height": ([vp, ctypes.c_int], ctypes.c_int),
        "heif_image_get_plane_readonly": ([vp, ctypes.c_int, ctypes.POINTER(ctypes.c_int)], vp),
    }
    for fn, (argtypes, restype) in sig.items():
        f = getattr(lib, fn)
        f.argtypes, f.restype = argtypes, restype
    if hasattr(lib, "heif_init"):
        lib.heif_init.argtypes, lib.heif_init.restype = [vp], err
        lib.heif_init(None)
    _libheif = lib
    return lib


def _heif_check(e: _HeifError, what: str) -> None:
    if e.code != 0:
        msg = e.message.decode("utf-8", "replace") if e.message else f"error {e.code}"
        raise UnprocessableMedia(f"cannot decode HEIF ({what}): {msg}")


def _heif_decode(path: Path) -> pyvips.Image:
    """The primary image, with the HEIF transformations (irot/imir) applied, as 8-bit RGB(A).

    The EXIF Orientation is not applied on top: HEIF's own transformations already turned the
    picture (the Samsung file carries both, and must turn once)."""
    lib = _load_libheif()
    ctx = lib.heif_context_alloc()
    handle = ctypes.c_void_p()
    img = ctypes.c_void_p()
    try:
        _heif_check(lib.heif_context_read_from_file(ctx, os.fsencode(path), None), "read")
        _heif_check(lib.heif_context_get_primary_image_handle(ctx, ctypes.byref(handle)), "open")
        alpha = bool(lib.heif_image_handle_has_alpha_channel(handle))
        chroma = _HEIF_CHROMA_RGBA if alpha else _HEIF_CHROMA_RGB
        _heif_check(
            lib.heif_decode_image(handle, ctypes.byref(img), _HEIF_COLORSPACE_RGB, chroma, None),
            "decode",
        )
        w = lib.heif_image_get_width(img, _HEIF_CHANNEL_INTERLEAVED)
        h = lib.heif_image_get_height(img, _HEIF_CHANNEL_INTERLEAVED)
        stride = ctypes.c_int()
        plane = lib.heif_image_get_plane_readonly(img, _HEIF_CHANNEL_INTERLEAVED, ctypes.byref(stride))
        if not plane or w <= 0 or h <= 0:
            raise UnprocessableMedia("cannot decode HEIF: no pixel data")
        bands = 4 if alpha else 3
        rows = np.frombuffer(ctypes.string_at(plane, stride.value * h), dtype=np.uint8)
        pixels = np.ascontiguousarray(rows.reshape(h, stride.value)[:, : w * bands])
        image = pyvips.Image.new_from_memory(pixels.data, w, h, bands, "uchar").copy(
            interpretation="srgb"
        )
        icc_size = lib.heif_image_handle_get_raw_color_profile_size(handle)
        if icc_size:
            buf = ctypes.create_string_buffer(icc_size)
            if lib.heif_image_handle_get_raw_color_profile(handle, buf).code == 0:
                image = image.copy()
                image.set_type(pyvips.GValue.blob_type, "icc-profile-data", buf.raw)
        return image.copy_memory()
    finally:
        if img:
            lib.heif_image_release(img)
        if handle:
            lib.heif_image_handle_release(handle)
        lib.heif_context_free(ctx)


# --- RAW -------------------------------------------------------------------------------------

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


# --- video -----------------------------------------------------------------------------------


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


# --- audio -----------------------------------------------------------------------------------


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


# --- documents -------------------------------------------------------------------------------


def _pdf_first_page(path: Path, longest: int = 2048) -> pyvips.Image:
    """The first page rendered with its longest side `longest` px (a page has no pixel size of
    its own: it is drawn at the resolution asked). An encrypted PDF opens only with an empty
    user password."""
    try:
        pdf = pdfium.PdfDocument(os.fspath(path))
    except pdfium.PdfiumError as e:
        if "password" in str(e).lower():
            raise UnprocessableMedia("PDF is password-protected") from e
        raise
    try:
        if len(pdf) < 1:
            raise UnprocessableMedia("PDF has no pages")
        page = pdf[0]
        try:
            w, h = page.get_size()
            if not (w > 0 and h > 0):
                raise UnprocessableMedia(f"PDF page has no size ({w}x{h})")
            scale = longest / max(w, h)
            bitmap = page.render(scale=scale, rev_byteorder=True, may_draw_forms=True)
            pixels = np.ascontiguousarray(bitmap.to_numpy())
        finally:
            page.close()
    finally:
        pdf.close()
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    ph, pw, bands = pixels.shape
    image = pyvips.Image.new_from_memory(pixels.data, pw, ph, bands, "uchar")
    if bands == 4:  # RGBX/RGBA: drop the padding byte, pages are rendered on white
        image = image.extract_band(0, n=3)
    return image.copy(interpretation="srgb" if image.bands >= 3 else "b-w").copy_memory()
