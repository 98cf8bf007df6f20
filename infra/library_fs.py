"""The file system side of external libraries: which folders may be libraries, and walking one.

Security rules, all here: a library lies inside one of the configured roots after every symlink
is resolved; the walk never follows a symlinked folder (no loops, no escape) and takes a
symlinked file only when its target lies inside the library too; names that are not valid UTF-8
are skipped (they could not be stored or served). Nothing here writes or deletes a file.
"""

from __future__ import annotations

import os
import re
import stat as stat_module
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from domain.errors import InvalidInput


def parse_roots(raw: str) -> list[Path]:
    """The configured roots (`library_roots`: separated by os.pathsep or commas), resolved;
    roots that do not exist are left out."""
    roots = []
    for part in re.split(rf"[{re.escape(os.pathsep)},]", raw or ""):
        if part.strip():
            try:
                roots.append(Path(part.strip()).resolve(strict=True))
            except OSError:
                continue
    return roots


def inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def check_library_path(raw: str, roots: list[Path]) -> Path:
    """The resolved folder for a new library; 400 when it is not a folder inside a root."""
    if not roots:
        raise InvalidInput("no library roots are configured (set DARKROOM_LIBRARY_ROOTS)", "path")
    if not isinstance(raw, str) or not raw.strip() or "\x00" in raw:
        raise InvalidInput("path must be an absolute folder path", "path")
    candidate = Path(raw)
    if not candidate.is_absolute():
        raise InvalidInput("path must be absolute", "path")
    try:
        resolved = candidate.resolve(strict=True)  # symlinks and .. resolved before the check
    except (OSError, RuntimeError):
        raise InvalidInput(f"path {raw!r} does not exist", "path") from None
    if not any(inside(resolved, root) for root in roots):
        raise InvalidInput(f"path {raw!r} is not inside a configured library root", "path")
    if not resolved.is_dir():
        raise InvalidInput(f"path {raw!r} is not a folder", "path")
    return resolved


def glob_regex(patterns: list[str]) -> re.Pattern[str] | None:
    """One regex for the exclusion globs, matched against paths relative to the library, with
    `/` separators: `**` spans folders (`**/@eaDir/**` excludes every @eaDir folder and its
    contents), `*` and `?` stay within one name, `[...]` is a class."""
    if not patterns:
        return None
    parts = []
    for pattern in patterns:
        p, i, out = pattern.strip().lstrip("/"), 0, ""
        while i < len(p):
            if p.startswith("**/", i):
                out += "(?:.*/)?"
                i += 3
            elif p.startswith("/**", i) and i + 3 == len(p):
                out += "(?:/.*)?"
                i += 3
            elif p.startswith("**", i):
                out += ".*"
                i += 2
            elif p[i] == "*":
                out += "[^/]*"
                i += 1
            elif p[i] == "?":
                out += "[^/]"
                i += 1
            elif p[i] == "[" and "]" in p[i + 1:]:
                end = p.index("]", i + 1)
                body = p[i + 1:end]
                out += "[" + ("^" + re.escape(body[1:]) if body.startswith("!") else re.escape(body)) + "]"
                i = end + 1
            else:
                out += re.escape(p[i])
                i += 1
        parts.append(out)
    return re.compile("(?:" + "|".join(parts) + r")\Z")


@dataclass(frozen=True)
class Found:
    """A regular file found by a walk."""

    relative_path: str  # with "/" separators
    size: int
    mtime_ns: int


@dataclass
class WalkStats:
    skipped: int = 0  # symlinks leaving the library, undecodable names, unreadable folders


def _valid_name(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # surrogate-escaped bytes: not UTF-8 on disk
        return False
    return not any(ord(c) < 32 for c in name)


def walk(library: Path, excluded: re.Pattern[str] | None, stats: WalkStats,
         start: str = "") -> Iterator[Found]:
    """Every regular file under `library` (or under its sub-folder `start`), depth first, with
    size and modification time from one `lstat` per entry (scandir's, cached)."""
    real_library = library.resolve()
    stack = [start.strip("/")]
    while stack:
        relative_dir = stack.pop()
        folder = library / relative_dir if relative_dir else library
        try:
            entries = list(os.scandir(folder))
        except OSError:
            stats.skipped += 1
            continue
        for entry in entries:
            name = entry.name
            if not _valid_name(name):
                stats.skipped += 1
                continue
            relative = f"{relative_dir}/{name}" if relative_dir else name
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                stats.skipped += 1
                continue
            mode = st.st_mode
            if stat_module.S_ISLNK(mode):
                # A link is followed only to a file inside the library (never to a folder).
                try:
                    target = Path(entry.path).resolve(strict=True)
                    st = target.stat()
                except (OSError, RuntimeError):
                    stats.skipped += 1
                    continue
                if not inside(target, real_library) or not stat_module.S_ISREG(st.st_mode):
                    stats.skipped += 1
                    continue
                mode = st.st_mode
            if stat_module.S_ISDIR(mode):
                if excluded is None or not excluded.match(relative):
                    stack.append(relative)
            elif stat_module.S_ISREG(mode):
                if excluded is None or not excluded.match(relative):
                    yield Found(relative, st.st_size, st.st_mtime_ns)


def resolve_in_library(library: Path, relative_path: str) -> Path | None:
    """The real path of a library file, or None when it (now) lies outside the library: a
    file swapped for a symlink that leaves the library is not served or read."""
    if not relative_path or relative_path.startswith("/") or ".." in Path(relative_path).parts:
        return None
    try:
        real_library = library.resolve(strict=True)
        target = (library / relative_path).resolve(strict=False)
    except (OSError, RuntimeError):
        return None
    return target if inside(target, real_library) else None
