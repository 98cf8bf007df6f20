"""Serving stored files through aiohttp's `FileResponse` (Range, HEAD, conditional requests and
sendfile, with every stat, open and read off the event loop), under our own ETags.

Originals are content-addressed: their ETag is the BLAKE3 hash and they may be cached for a year.
Derived files (thumbnails, web versions) are rewritten by a reprocess, so their ETag adds the
file's own identity (modification time and size) and caches revalidate them.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web

from api.envelope import fail

# Shown in a browser's own viewer; anything else downloads (never rendered as a page).
_INLINE_PREFIXES = ("image/", "video/", "audio/")


def _etag_matches(header: str, etag: str) -> bool:
    return header.strip() == "*" or etag in [t.strip().removeprefix("W/") for t in header.split(",")]


class _StoredFile(web.FileResponse):
    """A FileResponse that keeps our ETag (aiohttp would set one from mtime and size)."""

    def __init__(self, path: Path, etag: str, ignore_range: bool, **kwargs: Any) -> None:
        self._fixed_etag = etag
        self._ignore_range = ignore_range
        super().__init__(path, **kwargs)

    @property  # type: ignore[override]
    def etag(self) -> Any:
        return web.StreamResponse.etag.fget(self)  # type: ignore[attr-defined]

    @etag.setter
    def etag(self, value: Any) -> None:
        self.headers["ETag"] = self._fixed_etag

    async def prepare(self, request: web.BaseRequest) -> Any:
        if self._ignore_range:  # If-Range named another version: the whole file, 200
            headers = request.headers.copy()
            headers.popall("Range", None)
            request = request.clone(headers=headers)
        return await super().prepare(request)


def _stat(path: Path) -> os.stat_result | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st if path.is_file() else None


def _unsatisfiable(request: web.Request, size: int) -> bool:
    try:
        rng = request.http_range
    except ValueError:
        return True
    if rng.start is None and rng.stop is None:
        return not request.headers["Range"].strip().startswith("bytes=")
    if rng.start is not None and rng.start >= 0:
        return rng.start >= size or (rng.stop is not None and rng.stop <= rng.start)
    return False


async def serve_file(
    request: web.Request, path: Path, content_type: str, etag_value: str, filename: str | None = None,
    derived: bool = False,
) -> web.StreamResponse:
    """The file at `path`; 404 in the envelope when it is missing."""
    st = await asyncio.get_running_loop().run_in_executor(None, _stat, path)
    if st is None:
        return fail(404, "file not found", "the stored file for this asset is missing")
    if derived:
        etag_value = f"{etag_value}-{st.st_mtime_ns:x}-{st.st_size:x}"
    etag = f'"{etag_value}"'
    headers = {
        "ETag": etag,
        "Cache-Control": "private, no-cache" if derived else "private, max-age=31536000, immutable",
        "X-Content-Type-Options": "nosniff",
        "Content-Type": content_type,
    }
    if filename:
        # RFC 6266: an ASCII fallback plus the exact name, percent-encoded (no header injection).
        ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\;' else "_" for c in filename)
        kind = "inline" if content_type.startswith(_INLINE_PREFIXES) else "attachment"
        headers["Content-Disposition"] = f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"
    inm = request.headers.get("If-None-Match")
    if inm and _etag_matches(inm, etag):
        return web.Response(status=304, headers={k: v for k, v in headers.items() if k != "Content-Type"})
    if_range = request.headers.get("If-Range", "").strip()
    ignore_range = bool(if_range) and if_range.startswith(('"', "W/")) and if_range != etag
    if "Range" in request.headers and not ignore_range and _unsatisfiable(request, st.st_size):
        # aiohttp would answer 416 with an empty body; every failure here is the envelope.
        return fail(416, "range not satisfiable", f"file has {st.st_size} bytes",
                    **{"Content-Range": f"bytes */{st.st_size}"})
    return _StoredFile(path, etag, ignore_range, headers=headers)
