"""HEIC with HEVC pictures through the system libheif (ctypes): the pyvips-binary wheel's
libheif has no HEVC decoder. `_heif_needs_libheif` finds out once per process whether libvips
can decode HEVC; `_heif_decode` decodes the primary image with its transformations."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyvips

from processors.base import UnprocessableMedia
from processors.thumbnails.errors import _vips_message

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
