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


@dataclass
class WalkStats:
    seen: int = 0  # regular files walked past
    skipped: int = 0  # symlinks leaving the library, undecodable names, unreadable folders


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _valid_name(name: str) -> bool:
    """UTF-8 on disk (no surrogate-escaped bytes) and no control characters: a name we can store,
    serve, and keep apart from the separators of `projections.libraries.Libraries.files`."""
    if not name.isascii():
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            return False
    return _CONTROL.search(name) is None


Known = dict[str, tuple[int, int, int, str]]  # relative path -> (size, mtime_ns, is_offline, file id)


def walk(library: Path, excluded: re.Pattern[str] | None, stats: WalkStats, start: str = "",
         known: Known | None = None) -> Iterator[tuple[str, int, int, tuple[int, int, int, str] | None]]:
    """Walk `library` (or its sub-folder `start`) depth first, and yield what differs from
    `known`: (relative path with "/" separators, size, mtime_ns, the known entry or None) for
    every regular file that is new, whose size or time changed, or that was offline. Each file
    seen is popped from `known`, so what is left there afterwards vanished.

    This is the scan's inner loop, kept lean because an unchanged rescan is all loop: folders
    are told by scandir's file type (no system call), files are `lstat`ed once, a name already
    known is not validated again, and an unchanged file yields nothing. A symlink costs a
    resolve, and is followed only to a file inside the library."""
    known = {} if known is None else known
    pop = known.pop
    real_library = library.resolve()
    stack = [start.strip("/")]
    seen_count = 0
    is_reg, is_link = stat_module.S_ISREG, stat_module.S_ISLNK
    while stack:
        relative_dir = stack.pop()
        prefix = f"{relative_dir}/" if relative_dir else ""
        try:
            entries = os.scandir(library / relative_dir if relative_dir else library)
        except OSError:
            stats.skipped += 1
            continue
        with entries:
            for entry in entries:
                name = entry.name
                relative = prefix + name
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if not _valid_name(name):
                            stats.skipped += 1
                        elif excluded is None or not excluded.match(relative):
                            stack.append(relative)
                        continue
                    seen = pop(relative, None)
                    if seen is None and not _valid_name(name):
                        stats.skipped += 1
                        continue
                    st = entry.stat(follow_symlinks=False)
                    if not is_reg(st.st_mode):
                        if not is_link(st.st_mode):
                            continue  # sockets, fifos, devices: not files of a library
                        target = Path(entry.path).resolve(strict=True)
                        st = target.stat()
                        if not inside(target, real_library) or not is_reg(st.st_mode):
                            stats.skipped += 1  # a link out of the library, or to a folder
                            continue
                except (OSError, RuntimeError):
                    stats.skipped += 1
                    continue
                if excluded is not None and excluded.match(relative):
                    if seen is not None:
                        known[relative] = seen  # excluded now: it counts as vanished
                    continue
                seen_count += 1
                if seen is None or seen[2] or seen[0] != st.st_size or seen[1] != st.st_mtime_ns:
                    yield relative, st.st_size, st.st_mtime_ns, seen
    stats.seen += seen_count


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
