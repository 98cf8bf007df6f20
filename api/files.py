"""Serving stored files: ETag from the content hash, 304 on If-None-Match, Range as 206."""

from __future__ import annotations

import re
from urllib.parse import quote
from pathlib import Path

from aiohttp import web

from api.envelope import fail

CHUNK = 256 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _etag_matches(header: str, etag: str) -> bool:
    return header.strip() == "*" or etag in [t.strip().removeprefix("W/") for t in header.split(",")]


async def serve_file(
    request: web.Request, path: Path, content_type: str, etag_value: str, filename: str | None = None
) -> web.StreamResponse:
    if not path.is_file():
        return fail(404, "file not found", f"the stored file for this asset is missing: {path.name}")
    size = path.stat().st_size
    etag = f'"{etag_value}"'
    headers = {
        "ETag": etag,
        "Cache-Control": "private, max-age=31536000, immutable",
        "Accept-Ranges": "bytes",
    }
    if filename:
        # RFC 6266: an ASCII fallback plus the exact name, percent-encoded (no header injection).
        ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename)
        headers["Content-Disposition"] = f"inline; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"
    inm = request.headers.get("If-None-Match")
    if inm and _etag_matches(inm, etag):
        return web.Response(status=304, headers=headers)

    start, end, status = 0, size - 1, 200
    range_header = request.headers.get("Range")
    if_range = request.headers.get("If-Range")
    if range_header and (not if_range or if_range.strip() == etag):
        m = _RANGE.match(range_header.strip())
        if m is None or (m.group(1) == "" and m.group(2) == ""):
            return fail(416, "range not satisfiable", f"unsupported Range {range_header!r}",
                        **{"Content-Range": f"bytes */{size}"})
        if m.group(1) == "":  # suffix range: the last N bytes
            length = int(m.group(2))
            start = max(0, size - length)
        else:
            start = int(m.group(1))
            if m.group(2):
                end = min(int(m.group(2)), size - 1)
        if start >= size or start > end:
            return fail(416, "range not satisfiable", f"file has {size} bytes",
                        **{"Content-Range": f"bytes */{size}"})
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"

    response = web.StreamResponse(status=status, headers=headers)
    response.content_type = content_type
    response.content_length = end - start + 1
    await response.prepare(request)
    if request.method == "HEAD":
        return response
    with open(path, "rb") as f:
        f.seek(start)
        remaining = end - start + 1
        while remaining > 0:
            chunk = f.read(min(CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            await response.write(chunk)
    await response.write_eof()
    return response
