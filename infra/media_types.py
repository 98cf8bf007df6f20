"""Recognise what an uploaded file is from its first bytes, not from its name.

`filetype` reads the magic numbers of the common formats. We add what it lacks: RAW formats
(most are TIFF containers that only the name tells apart; RAF, RW2, ORF and CR3 have their own
magic), MPEG transport streams (AVCHD .mts), ISO-BMFF brands for audio-only MP4 and HEIF, and
Ogg streams carrying Opus or Vorbis.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePath

import filetype

from domain.asset import AssetType

SNIFF_BYTES = 8192

# TIFF-container RAW formats, told apart by extension once the bytes say "TIFF".
_TIFF_RAW_BY_EXTENSION = {
    ".dng": "image/x-adobe-dng",
    ".nef": "image/x-nikon-nef",
    ".nrw": "image/x-nikon-nrw",
    ".cr2": "image/x-canon-cr2",
    ".arw": "image/x-sony-arw",
    ".srf": "image/x-sony-srf",
    ".sr2": "image/x-sony-sr2",
    ".pef": "image/x-pentax-pef",
    ".raw": "image/x-panasonic-raw",
    ".rw2": "image/x-panasonic-rw2",
    ".orf": "image/x-olympus-orf",
    ".srw": "image/x-samsung-srw",
    ".3fr": "image/x-hasselblad-3fr",
    ".iiq": "image/x-phaseone-iiq",
    ".erf": "image/x-epson-erf",
    ".mos": "image/x-leaf-mos",
    ".kdc": "image/x-kodak-kdc",
    ".dcr": "image/x-kodak-dcr",
}

RAW_MIME_TYPES = frozenset(_TIFF_RAW_BY_EXTENSION.values()) | {
    "image/x-fuji-raf",
    "image/x-canon-cr3",
}

_AUDIO_MP4_BRANDS = {b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "}
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}
_QUICKTIME_BRANDS = {b"qt  "}


@dataclass(frozen=True)
class MediaType:
    mime_type: str
    asset_type: AssetType
    extension: str

    @property
    def is_raw(self) -> bool:
        return self.mime_type in RAW_MIME_TYPES


def _is_mpeg_ts(head: bytes) -> bool:
    # 188-byte packets (broadcast TS) or 192-byte packets with a 4-byte timecode (AVCHD .mts).
    for size, offset in ((188, 0), (192, 4)):
        if len(head) >= offset + 2 * size + 1 and all(
            head[offset + i * size] == 0x47 for i in range(3)
        ):
            return True
    return False


def _iso_bmff(head: bytes) -> MediaType | None:
    if len(head) < 12 or head[4:8] != b"ftyp":
        return None
    box_size = int.from_bytes(head[0:4], "big")
    brands = {head[8:12]}
    for i in range(16, min(box_size, len(head)) - 3, 4):
        brands.add(head[i : i + 4])
    major = head[8:12]
    if major == b"crx ":
        return MediaType("image/x-canon-cr3", AssetType.PHOTO, ".cr3")
    if major in _AVIF_BRANDS:
        return MediaType("image/avif", AssetType.PHOTO, ".avif")
    if major in _HEIF_BRANDS or (brands & _HEIF_BRANDS and not brands & {b"isom", b"mp41", b"mp42"}):
        return MediaType("image/heic", AssetType.PHOTO, ".heic")
    if major in _AUDIO_MP4_BRANDS:
        return MediaType("audio/mp4", AssetType.AUDIO, ".m4a")
    if major in _QUICKTIME_BRANDS:
        return MediaType("video/quicktime", AssetType.VIDEO, ".mov")
    if major.startswith(b"3g"):
        return MediaType("video/3gpp", AssetType.VIDEO, ".3gp")
    return MediaType("video/mp4", AssetType.VIDEO, ".mp4")


def _ogg(head: bytes) -> MediaType | None:
    if not head.startswith(b"OggS"):
        return None
    if b"OpusHead" in head[:128]:
        return MediaType("audio/ogg", AssetType.AUDIO, ".opus")
    if b"theora" in head[:128]:
        return MediaType("video/ogg", AssetType.VIDEO, ".ogv")
    return MediaType("audio/ogg", AssetType.AUDIO, ".ogg")


_QT_TOP_LEVEL = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}
_MAX_MOOV_BYTES = 64 * 1024 * 1024


def _track_handlers(path: str) -> set[bytes]:
    """Handler types ('vide', 'soun', ...) of the tracks of an ISO-BMFF/QuickTime file.

    The `moov` box may come after the media data, so we walk the top-level boxes with seeks.
    """
    handlers: set[bytes] = set()
    with open(path, "rb") as f:
        f.seek(0, 2)
        end = f.tell()
        pos = 0
        while pos + 8 <= end:
            f.seek(pos)
            header = f.read(16)
            size = int.from_bytes(header[0:4], "big")
            kind = header[4:8]
            if size == 1 and len(header) >= 16:
                size = int.from_bytes(header[8:16], "big")
            elif size == 0:
                size = end - pos
            if size < 8:
                break
            if kind == b"moov":
                f.seek(pos)
                moov = f.read(min(size, _MAX_MOOV_BYTES))
                for m in re.finditer(rb"hdlr", moov):
                    # hdlr: version/flags (4), pre_defined (4), handler_type (4)
                    handlers.add(moov[m.end() + 8 : m.end() + 12])
                break
            pos += size
    return handlers


def sniff_file(path: str, filename: str = "") -> MediaType | None:
    """Like `sniff`, but may look past the head: an MP4 holding only sound is audio."""
    with open(path, "rb") as f:
        head = f.read(SNIFF_BYTES)
    found = sniff(head, filename)
    iso = head[4:8] == b"ftyp" or head[4:8] in _QT_TOP_LEVEL
    if iso and (found is None or found.asset_type is AssetType.VIDEO):
        handlers = _track_handlers(path)
        if b"soun" in handlers and b"vide" not in handlers:
            return MediaType("audio/mp4", AssetType.AUDIO, ".m4a")
        if found is None and b"vide" in handlers:
            return MediaType("video/quicktime", AssetType.VIDEO, ".mov")
    return found


def sniff(head: bytes, filename: str = "") -> MediaType | None:
    """What `head` (the first `SNIFF_BYTES` of a file) is, or None when it is none of ours."""
    ext = PurePath(filename).suffix.lower()
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        if b"webm" in head[:64]:
            return MediaType("video/webm", AssetType.VIDEO, ".webm")
        return MediaType("video/x-matroska", AssetType.VIDEO, ".mkv")
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        if ext in _TIFF_RAW_BY_EXTENSION:
            return MediaType(_TIFF_RAW_BY_EXTENSION[ext], AssetType.PHOTO, ext)
        return MediaType("image/tiff", AssetType.PHOTO, ".tif")
    if head[:4] == b"IIU\x00":
        return MediaType("image/x-panasonic-rw2", AssetType.PHOTO, ".rw2")
    if head[:4] in (b"IIRO", b"IIRS", b"MMOR"):
        return MediaType("image/x-olympus-orf", AssetType.PHOTO, ".orf")
    if head.startswith(b"FUJIFILMCCD-RAW"):
        return MediaType("image/x-fuji-raf", AssetType.PHOTO, ".raf")
    found = _iso_bmff(head) or _ogg(head)
    if found:
        return found
    if _is_mpeg_ts(head):
        return MediaType("video/mp2t", AssetType.VIDEO, ".mts")
    if head.startswith(b"%PDF-"):
        return MediaType("application/pdf", AssetType.DOCUMENT, ".pdf")
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return MediaType("audio/wav", AssetType.AUDIO, ".wav")
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06):
        # An ID3 tag or an MPEG audio frame sync (layer bits non-zero).
        kind = filetype.guess(head)
        if kind is None or kind.mime.startswith("audio/"):
            return MediaType("audio/mpeg", AssetType.AUDIO, ".mp3")
    kind = filetype.guess(head)
    if kind is None:
        return None
    mime = kind.mime
    for prefix, asset_type in (
        ("image/", AssetType.PHOTO),
        ("video/", AssetType.VIDEO),
        ("audio/", AssetType.AUDIO),
    ):
        if mime.startswith(prefix):
            if mime == "image/vnd.adobe.photoshop" or mime == "image/x-icon":
                return None
            return MediaType(mime, asset_type, "." + kind.extension)
    return None
